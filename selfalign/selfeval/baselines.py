"""Model-free shortcut baselines for P(True) discrimination: confidence scores that use no model at all.

Each function takes the rows of a multiple-choice evaluation, one per (question, option), with ``option``
(text), ``task`` (a question's task; rows of the same task share answer statistics) and, where needed,
``label``, and returns one score per row. A high AUROC of such a score means the labels can be guessed
from the surface of the options, so a P(True) AUROC is only interesting above it.
"""
from __future__ import annotations

from collections import Counter
from typing import Sequence

from selfalign.text import normalize


def _norm(text: str) -> str:
    return normalize(str(text))


def answer_frequency(rows: Sequence[dict]) -> list[float]:
    """Per row: in how many questions of its task the same option string (normalised) is offered as an answer.

    Uses no labels. Each question counts once per string, its own question included (a constant +1, which
    does not change a ranking within a task)."""
    seen = Counter()
    for task, qid, text in {(r["task"], str(r["id"]), _norm(r["option"])) for r in rows}:
        seen[(task, text)] += 1
    return [float(seen[(r["task"], _norm(r["option"]))]) for r in rows]


def option_length(rows: Sequence[dict]) -> list[float]:
    """Per row: the option's length in characters (the "longer option is the true one" shortcut)."""
    return [float(len(str(r["option"]).strip())) for r in rows]


def train_true_rate(rows: Sequence[dict], train_rows: Sequence[dict], prior: float = 1.0) -> list[float]:
    """Per row: how often the same option string (normalised) was labelled true in ``train_rows`` of the same
    task, smoothed towards 0.5 with ``prior`` pseudo-counts on each side: (true + prior) / (seen + 2·prior).

    The label prior a tuned model could learn without any knowledge (e.g. "Yes" is usually true in a task)."""
    true, seen = Counter(), Counter()
    for r in train_rows:
        key = (r["task"], _norm(r["option"]))
        seen[key] += 1
        true[key] += int(r["label"])
    return [(true[k] + prior) / (seen[k] + 2 * prior) for k in ((r["task"], _norm(r["option"])) for r in rows)]
