"""Evaluation judges of TruthfulQA answers (``base.py`` says what a judge is); their names are
``registry.JUDGES``."""
from __future__ import annotations


def make_judge(name: str, model: str | None = None, info_model: str | None = None, endpoint: str | None = None,
               api_key_env: str = "OPENAI_API_KEY", device: str = "auto", **engine_kwargs):
    """A judge by name; ``model`` / ``info_model`` are HF specs (hf, lm-ref), model names (openai), or a local
    sentence-embedding directory (offline, offline-ref; optional)."""
    from selfalign.registry import JUDGES

    return JUDGES.load(name).build(model=model, info_model=info_model, endpoint=endpoint, api_key_env=api_key_env,
                                   device=device, **engine_kwargs)
