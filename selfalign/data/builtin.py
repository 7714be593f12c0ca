"""The built-in question set: 80 short factual questions across ten domains, each with a correct and an
incorrect reference answer. Written for this project, so the demo runs offline anywhere."""
from __future__ import annotations

from pathlib import Path

from selfalign.store.io import read_jsonl

PATH = Path(__file__).with_name("builtin_questions.jsonl")


def load_builtin() -> list[dict]:
    rows = read_jsonl(PATH, required=["id", "question", "correct", "incorrect"])
    return [{"id": r["id"], "question": r["question"], "domain": r.get("domain"),
             "correct_answers": [r["correct"]], "incorrect_answers": [r["incorrect"]]} for r in rows]
