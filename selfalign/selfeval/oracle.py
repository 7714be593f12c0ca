"""The gold oracle as a confidence method (``score --method gold-match``): a sample scores 1 when it matches one
of its prompt's gold ``targets``, else 0. No model is read: it is the ceiling a Self-Eval judge is compared with."""
from __future__ import annotations

METHOD = "gold-match"


def score_rows(engine, rows: list[dict], cfg) -> list[dict]:
    from selfalign.text import match_targets

    return [{**r, "score": match_targets(r["response"], r["targets"]), "score_method": METHOD} for r in rows]
