"""Prompt sources: a JSONL file of {id, question|prompt}, or a named data set (builtin, truthfulqa, biogen)."""
from __future__ import annotations

import os
from pathlib import Path

from selfalign.errors import SelfAlignError
from selfalign.io import read_jsonl

NAMED = ("builtin", "truthfulqa", "biogen")


def data_root() -> Path | None:
    """Where the shared data sets live: $SELFALIGN_DATA, else a ``shared/data`` beside or above the cwd."""
    env = os.environ.get("SELFALIGN_DATA")
    if env:
        return Path(env)
    for base in [Path.cwd(), *Path.cwd().parents][:4]:
        for cand in (base / "shared" / "data", base / ".." / "shared" / "data"):
            if cand.is_dir():
                return cand.resolve()
    return None


def load_prompts(source: str, split: str | None = None, limit: int | None = None) -> list[dict]:
    """Rows with at least ``id`` and ``question`` (or ``prompt``); ids are unique."""
    if source == "builtin":
        from selfalign.data.builtin import load_builtin

        rows = load_builtin()
    elif source == "biogen":
        from selfalign.data.biogen import load_biogen

        rows = load_biogen(split)
    elif source == "truthfulqa" or source.endswith(".csv"):
        from selfalign.data.truthfulqa import load_truthfulqa

        rows = load_truthfulqa(None if source == "truthfulqa" else source, split=split)
    else:
        if split:
            raise SelfAlignError("--split applies to named data sets (truthfulqa), not to a JSONL file")
        rows = read_jsonl(source, required=["id", ("question", "prompt")], unique=lambda r: str(r["id"]),
                          fields=["question", "prompt"])
    if limit:
        rows = rows[:limit]
    if not rows:
        raise SelfAlignError(f"{source}: no prompts selected")
    return rows
