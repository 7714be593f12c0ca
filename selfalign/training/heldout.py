"""Held-out rows for TRL's evaluation (``align --eval-pairs FILE``, ``sft --eval-data FILE``, or ``--eval-fraction F``
of the training rows): TRL evaluates them every ``--eval-steps`` and at the end, and the metrics (``eval_loss``,
``eval_rewards/margins``, ...) go to the step log.

A fraction holds out whole prompts, chosen by a hash of the seed and the prompt text: every row of a prompt is on
the same side, and the same seed holds out the same prompts whatever the rows' order.
"""
from __future__ import annotations

import hashlib
from typing import Optional

from selfalign.errors import SelfAlignError


def held(prompt: str, fraction: float, seed: int) -> bool:
    """Whether ``prompt`` is held out: a larger fraction, same seed, holds out a superset."""
    h = hashlib.sha256(f"{seed}\0{prompt}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2 ** 64 < fraction


def split(rows: list[dict], fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    """(training rows, held-out rows) by prompt."""
    train, out = [], []
    for r in rows:
        (out if held(r["prompt"], fraction, seed) else train).append(r)
    return train, out


def eval_rows(rows: list[dict], given: Optional[list[dict]], fraction: float, seed: int, stage: str,
              what: str) -> tuple[list[dict], list[dict]]:
    """(training rows, evaluation rows): the rows of ``--eval-...`` FILE (``given``; the config refuses it with a
    fraction), else ``fraction`` of the prompts, else none. One line when either side would be empty; a warning when
    the file shares prompts with the training rows (its loss then measures memorisation)."""
    if given is not None:
        seen = {r["prompt"] for r in rows}
        shared = sum(r["prompt"] in seen for r in given)
        if shared:
            print(f"{stage}: warning: {shared} of {len(given)} held-out {what} share a prompt with a training row",
                  flush=True)
        return rows, given
    if not fraction:
        return rows, []
    train, out = split(rows, fraction, seed)
    if not out or not train:
        side = "no prompt was held out" if not out else "every prompt was held out"
        raise SelfAlignError(f"{stage}: --eval-fraction {fraction}: {side} of {len(rows)} {what} (seed {seed}); "
                             "change the fraction or give --eval-" + ("pairs" if what == "pairs" else "data") + " FILE")
    return train, out
