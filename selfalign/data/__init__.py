"""Prompt sources: a JSONL file of {id, question|prompt}, a named data set (builtin, truthfulqa, biogen), a
generative BIG-bench task as knowledge QA (``bigbench:qa_wikidata``: few-shot prompts with gold targets), or the
Wikidata long-form prompts (``wikifacts`` / ``wikifacts:free``; split train, valid or eval: ``data.wikifacts``)."""
from __future__ import annotations

import os
from pathlib import Path

from selfalign.errors import SelfAlignError
from selfalign.store.io import read_jsonl

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


def load_prompts(source: str, split: str | None = None, limit: int | None = None,
                 split_by: str = "question") -> list[dict]:
    """Rows with at least ``id`` and ``question`` (or ``prompt``); ids are unique. ``split_by="subject"``: the
    subject split of a ``bigbench:TASK`` (``data.subjects``)."""
    if split_by != "question" and not source.startswith("bigbench:"):
        raise SelfAlignError(f"--split-by {split_by} applies to bigbench:TASK prompts, not to {source!r}")
    if source == "builtin":
        from selfalign.data.builtin import load_builtin

        rows = load_builtin()
    elif source == "biogen":
        from selfalign.data.biogen import load_biogen

        rows = load_biogen(split)
    elif source in ("wikifacts", "wikifacts:profile", "wikifacts:free"):
        from selfalign.data.wikifacts import load_named

        rows = load_named(source, split)
    elif source.startswith("bigbench:"):
        from selfalign.data.knowledge_qa import load_knowledge_qa

        rows = load_knowledge_qa(source.split(":", 1)[1], split or "train", split_by=split_by)
    elif source == "truthfulqa" or source.endswith(".csv"):
        from selfalign.data.truthfulqa import load_truthfulqa

        rows = load_truthfulqa(None if source == "truthfulqa" else source, split=split)
    else:
        if split:
            raise SelfAlignError("--split applies to named data sets (truthfulqa), not to a JSONL file")
        rows = read_jsonl(source, required=["id", ("question", "prompt")], unique=lambda r: str(r["id"]),
                          fields=["question", "prompt"])
        from selfalign.errors import InputError
        from selfalign.store.io import line_numbers

        for r, n in zip(rows, line_numbers(source)):
            if not str(r.get("prompt") or "").strip() and not str(r.get("question") or "").strip():
                raise InputError(source, "a prompt row needs a non-empty 'question' or 'prompt'", n)
    if limit:
        rows = rows[:limit]
    if not rows:
        raise SelfAlignError(f"{source}: no prompts selected")
    return rows


def has_targets(source: str, split: str | None = None) -> bool | None:
    """Whether every prompt of a source carries gold ``targets`` (None: the source cannot be read yet)."""
    try:
        if source.startswith("bigbench:"):  # prompts of a BIG-bench task are its generative examples only
            from selfalign.data.mc import load_bigbench

            return any(r.get("targets") for r in load_bigbench(source.split(":", 1)[1]))
        rows = load_prompts(source, split)
    except SelfAlignError:
        return None
    return all(r.get("targets") for r in rows)
