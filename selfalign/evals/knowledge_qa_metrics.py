"""The per-answer numbers of ``eval knowledge-qa`` and the reading of its results written before strict match.

``accuracy`` (the headline, since 2026-12-07) is the strict match (``text.strict_match``: the first answer clause
is a gold target and no other candidate is named); ``accuracy_lenient`` is the match used before (``text.
match_targets``: one contains the other as whole words), which counts "Paris or Lyon" right for "Paris". An
abstention counts 0 in both. A result written before (its ``accuracy`` was the lenient match, and it has no
``accuracy_lenient``) is read as what it is: ``upgrade`` re-scores its rows from their answers and targets and
recomputes ``accuracy``, ``accuracy_lenient`` and ``answered_accuracy`` from them (the value it stored is kept as
``stored_accuracy``: the lenient match of its day, before ``normalize`` kept a one-letter answer); without rows its
``accuracy`` becomes ``accuracy_lenient``. Old and new results then compare metric for metric."""
from __future__ import annotations

import re

from selfalign.text import match_targets, normalize, strict_match

METRICS = ("accuracy", "accuracy_lenient", "answered_accuracy", "abstain", "length")
ABSTAIN = re.compile(r"^(i don ?t know|i do not know|unknown|not sure|i m not sure|no idea|i have no comment|"
                     r"no comment|none|n a)\b")
UPGRADED = ("written before 2026-12-07, when accuracy was the lenient match: accuracy (strict) and accuracy_lenient "
            "recomputed from the rows; the stored value is stored_accuracy")


def abstains(answer: str) -> bool:
    a = normalize(answer)
    return not a or bool(ABSTAIN.match(a))


def score_answer(answer: str, targets: list[str]) -> dict:
    """The per-prompt numbers of one answer (``selfeval`` is added by the caller)."""
    abst = abstains(answer)
    strict = 0 if abst else int(strict_match(answer, targets) or 0)
    lenient = 0 if abst else int(match_targets(answer, targets) or 0)
    return {"accuracy": strict, "accuracy_lenient": lenient, "answered_accuracy": None if abst else strict,
            "abstain": int(abst), "length": len(answer.split())}


def upgrade_rows(rows: list[dict]) -> int:
    """Re-score, in place, the rows written before strict match (no ``accuracy_lenient``); how many were."""
    old = [r for r in rows if "accuracy_lenient" not in r and isinstance(r.get("answer"), str)
           and isinstance(r.get("targets"), list)]
    for r in old:
        r.update(score_answer(r["answer"], r["targets"]))
    return len(old)


def upgrade(summary: dict, rows: list[dict], summarize) -> None:
    """A knowledge-qa result from before strict match, read as what it is (in place; ``summarize``:
    ``evals.results.summarize``). A current result is left as it is."""
    upgrade_rows(rows)
    metrics = summary.get("metrics") or {}
    if "accuracy_lenient" in metrics or "accuracy" not in metrics:
        return
    summary["stored_accuracy"] = metrics["accuracy_lenient"] = metrics.pop("accuracy")
    metrics.pop("answered_accuracy", None)
    if rows and all("accuracy_lenient" in r for r in rows):
        metrics.update(summarize(rows, ["accuracy", "accuracy_lenient", "answered_accuracy"]))
    summary["metrics"] = {m: metrics[m] for m in (*METRICS, *metrics) if m in metrics}
    summary["upgraded"] = UPGRADED
