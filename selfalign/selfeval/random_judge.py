"""The *random* judge (``score --method random``), a control with no model and no labels: every sample scores a
number in [0, 1) fixed by hash of (``--seed``, prompt id, sample index) (``splits.unit``), so a prompt's samples
come out in a random order that does not depend on the batch, the row order or the machine.

Why uniform scores and not another judge's scores shuffled within each prompt (the issue's words; the MC study's
``permuted_scores`` does that for options): the pair rules compare scores within a prompt, and with ``--margin 0``
they read only the order of a prompt's distinct answers. A shuffle of distinct scores and independent uniform scores
both put those in a uniformly random order, so for distinct answers the two controls make the same pairs in
distribution; uniform scores need no second judge's file (nor its run). Where an answer was sampled more than once
(``pairs`` scores it by the mean over its copies) they differ, and uniform scores are the cleaner control: the mean
of independent uniforms is symmetric about 0.5, so a repeated answer is chosen over a single one exactly half the
time, while a shuffle of skewed scores (P(True) mostly high, one low) favours or disfavours the repeated answer, and
how often an answer recurs predicts its correctness (the answer-frequency shortcut). Rules that read score values
(``--margin``) would see different gaps; the control is meant for rank rules.
"""
from __future__ import annotations

METHOD = "random"
NEEDS_MODEL = False


def random_score(seed: int, prompt_id, sample_idx) -> float:
    from selfalign.data.splits import unit

    return unit(seed, "random-judge", prompt_id, sample_idx)


def score_rows(engine, rows: list[dict], cfg) -> list[dict]:
    return [{**r, "score": random_score(cfg.seed, r["id"], r.get("sample_idx", 0)), "score_method": METHOD}
            for r in rows]
