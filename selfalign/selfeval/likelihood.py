"""Sequence likelihood: the mean token log-probability of the response given the prompt that produced it."""
from __future__ import annotations

from typing import Sequence


def _join(prompt: str, response: str) -> tuple[str, str]:
    # answers are stored stripped; a raw prompt ending in "Answer:" was continued with a space
    return prompt, response if prompt.endswith((" ", "\n", ">")) else " " + response


def mean_logprob(engine, items: Sequence[tuple[str, str]]) -> list[float | None]:
    """items: (prompt as fed to the model, response). Mean log-prob per response token; None for empty ones."""
    keep = [i for i, (_, r) in enumerate(items) if r.strip()]
    scores = engine.loglikelihood([_join(*items[i]) for i in keep])
    out: list[float | None] = [None] * len(items)
    for i, (s, n) in zip(keep, scores):
        out[i] = s / n
    return out


def score_rows(engine, rows: list[dict], cfg) -> list[dict]:
    """``score``'s confidence method ``likelihood``: the mean token log-prob of each sample given its prompt."""
    res = mean_logprob(engine, [(r["prompt"], r["response"]) for r in rows])
    return [{**r, "mean_logprob": x, "score": x, "score_method": "likelihood"} for r, x in zip(rows, res)]
