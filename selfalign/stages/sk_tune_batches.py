"""SK-Tuning's batch plan: how the rows are cut into batches, each epoch's batches and optimizer steps, and which
batches every step takes (a fixed function of the seed and the step, so a resumed run continues where it stopped).
``cfg`` is an ``SKTuneConfig`` (``batch_size``, ``batch_by``, ``seed``, ``epochs``, ``grad_accum``)."""
from __future__ import annotations

import hashlib
import json
import math
import random


def make_batches(rows: list[dict], batch_size: int, rng: random.Random, by: str = "row") -> list[list[int]]:
    """One epoch's batches (row indices). ``row``: a shuffle cut into ``batch_size`` pieces. ``question``: the
    questions (task, id) shuffled, each question's rows kept together, packed greedily up to ``batch_size`` rows
    (a question with more rows than that is a batch of its own)."""
    if by == "row":
        order = list(range(len(rows)))
        rng.shuffle(order)
        return [order[s:s + batch_size] for s in range(0, len(order), batch_size)]
    groups: dict = {}
    for i, r in enumerate(rows):
        groups.setdefault((r.get("task"), r.get("id", r.get("prompt"))), []).append(i)
    order = list(groups.values())
    rng.shuffle(order)
    batches, cur = [], []
    for g in order:
        if cur and len(cur) + len(g) > batch_size:
            batches.append(cur)
            cur = []
        cur = cur + g
    return batches + ([cur] if cur else [])


def epoch_batches(train: list, cfg, epoch: int) -> list[list[int]]:
    """Epoch ``epoch``'s batches: a fixed shuffle of (seed, epoch), so a resumed run continues where it stopped."""
    return make_batches(train, cfg.batch_size, random.Random(f"{cfg.seed}/epoch/{epoch}"), cfg.batch_by)


def epoch_steps(train: list, cfg) -> list[int]:
    """Optimizer steps of each epoch. With ``--batch-by question`` each epoch packs its shuffled questions into its
    own number of batches, so the epochs differ (counting every epoch as the first once ended a 5-epoch run at step
    147 of 185, and would have skipped the last batches of an epoch that packed into more)."""
    return [math.ceil(len(epoch_batches(train, cfg, e)) / cfg.grad_accum) for e in range(cfg.epochs)]


def step_groups(train: list, cfg, step: int):
    """(epoch, batch group) of each optimizer step from ``step`` on, one per step taken, every epoch's batches in
    full."""
    done = 0
    for epoch, n in enumerate(epoch_steps(train, cfg)):
        if step < done + n:
            batches = epoch_batches(train, cfg, epoch)
            for g in range((step - done) * cfg.grad_accum, len(batches), cfg.grad_accum):
                yield epoch, batches[g:g + cfg.grad_accum]
            step = done + n
        done += n


def planned_steps(train: list, cfg) -> int:
    """Optimizer steps the run takes: every epoch's, or ``max_steps`` when fewer."""
    total = sum(epoch_steps(train, cfg))
    return total if cfg.max_steps is None else min(cfg.max_steps, total)


def plan_fingerprint(train: list, cfg) -> str:
    """A hash of every epoch's batches and the planned steps: a checkpoint resumes only under the plan it was
    written with (a change in how batches are made or counted would otherwise continue a run on other batches)."""
    plan = {"total": planned_steps(train, cfg), "grad_accum": cfg.grad_accum,
            "batches": [epoch_batches(train, cfg, e) for e in range(cfg.epochs)]}
    return hashlib.sha256(json.dumps(plan).encode()).hexdigest()[:16]


def class_weights(labels: list[int], how: str):
    """Per-row loss weights (a float tensor), or None for ``none``; ``balanced``: n / (2 n_label), so each class
    weighs n / 2 in all."""
    import torch

    from selfalign.errors import SelfAlignError

    if how == "none":
        return None
    n, n_true = len(labels), sum(labels)
    if n_true in (0, n):
        raise SelfAlignError("--class-weight balanced needs true and false rows; the training data hold one class")
    return torch.tensor([n / (2 * (n_true if y else n - n_true)) for y in labels], dtype=torch.float32)
