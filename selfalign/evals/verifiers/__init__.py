"""Fact-check classifiers for ``eval biogen --verifier`` with your own ``--knowledge``: an opt-in tier for users
with the weights (from the hub, so with internet at least once) and, for speed, a GPU. They are evaluation
verifiers of long-form facts, like the FActScore True/False prompt they replace; never the Self-Eval judge.

``--verifier`` takes, besides an LM model spec (FActScore's prompt on that model, the default path):

- ``hhem`` / ``hhem:MODEL``: Vectara HHEM-2.1-Open (``hhem.py``; ships its own code: needs --trust-remote-code);
- ``minicheck`` / ``minicheck:MODEL``: MiniCheck Flan-T5-L (the default), RoBERTa-L or DeBERTa-L (``minicheck.py``);
- ``nli:MODEL``: any sequence-classification NLI model, P(entailment) (``nli.py``);
- the known hub ids alone (``lytang/MiniCheck-Flan-T5-Large``, ``vectara/hallucination_evaluation_model``, ...).

MODEL is a hub id (downloaded once into the HF cache) or a local directory (read offline, never the network).
Weights load from safetensors only unless --allow-pickle. The kinds are ``registry.VERIFIERS`` (one file each).
Each verifier reads a document built from the retrieved passages (``document``) and the claim, and prints its
published LLM-AggreFact figure beside the run's own sanity gate (or "not published").
"""
from __future__ import annotations

from typing import Optional

from selfalign.errors import SelfAlignError
from selfalign.evals.verifiers.base import HUB_ID, FactVerifier


def _kind(name: str):
    from selfalign.registry import VERIFIERS

    return VERIFIERS.load(name)


def parse(spec: Optional[str]) -> Optional[tuple[str, str]]:
    """(kind, model) when ``spec`` names a fact-check classifier; None for an LM model spec (or no spec)."""
    from selfalign.registry import VERIFIERS

    if not spec:
        return None
    name, sep, arg = spec.partition(":")
    if name in VERIFIERS.rows:
        model = arg if sep else _kind(name).DEFAULT
        if not model:
            raise SelfAlignError(f"--verifier {spec!r}: name the model: {name}:<hub id or local directory>")
        return name, model
    if HUB_ID.match(spec):  # a known hub id alone (or a local copy at that relative path)
        for name in VERIFIERS.rows:
            if spec in _kind(name).PUBLISHED:
                return name, spec
    return None


def check(spec: Optional[str], trust_remote_code: bool) -> Optional[str]:
    """The classifier kind ``spec`` names (None for an LM spec); a classifier that runs remote code without
    --trust-remote-code is refused here, before anything loads."""
    parsed = parse(spec)
    if parsed is None:
        return None
    kind, model = parsed
    if _kind(kind).needs_remote_code and not trust_remote_code:
        raise SelfAlignError(f"--verifier {spec}: {model} runs its own model code from its repository; pass "
                             "--trust-remote-code if you trust it")
    return kind


def make_verifier(spec: str, device: str = "auto", dtype: str = "auto", batch_size: int = 8,
                  trust_remote_code: bool = False, allow_pickle: bool = False) -> FactVerifier:
    kind = check(spec, trust_remote_code)
    if kind is None:
        raise SelfAlignError(f"--verifier {spec!r} names no fact-check classifier")
    return _kind(kind).build(parse(spec)[1], device=device, dtype=dtype, batch_size=batch_size,
                             trust_remote_code=trust_remote_code, allow_pickle=allow_pickle)


def is_classifier(verifier) -> bool:
    return isinstance(verifier, FactVerifier)


def document(topic: str, passages: list[dict]) -> str:
    """The premise a classifier reads for a fact about ``topic``: the topic's name, then the retrieved passages in
    retrieval order, one per line (FActScore's prompt shows them under "Title: <topic>")."""
    return "\n".join([topic, *(p["text"] for p in passages)])
