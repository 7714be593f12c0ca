"""Questions split and demonstrations picked by hash: a question lands in the same split, and gets the same
few-shot demonstrations, whatever the sampling seed, the order of the sources or the machine (sk-data, mc-data,
the knowledge-QA prompts)."""
from __future__ import annotations

import hashlib


def unit(*parts) -> float:
    """A number in [0, 1) fixed by ``parts``."""
    h = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(h[:8], "big") / 2 ** 64


def split_of(seed: int, task: str, qid: str, fraction: float) -> str:
    return "heldout" if unit(seed, "split", task, qid) < fraction else "train"


def fewshot_prompt(q: dict, demos: list[dict]) -> str:
    """A completion prompt for a generative question: demonstrations "statement answer", one per paragraph."""
    return "\n\n".join([f"{d['question']} {d['targets'][0]}" for d in demos] + [q["question"]])


def pick_demos(q: dict, pool: list[dict], k: int, seed: int) -> list[dict]:
    """k training questions of the same task (never the question itself), fixed by hash of the question."""
    cands = [d for d in demo_pool(pool, seed) if d["id"] != q["id"]]
    cands.sort(key=lambda d: unit(seed, "demo", q["task"], q["id"], d["id"]))
    return cands[:k]


def demo_pool(pool: list[dict], seed: int, size: int = 64) -> list[dict]:
    """A fixed set of candidate demonstrations per task (the first ``size`` training questions by hash)."""
    key = (id(pool), seed)
    if key not in _POOLS:
        _POOLS.clear()
        _POOLS[key] = sorted(pool, key=lambda d: unit(seed, "pool", d["task"], d["id"]))[:size]
    return _POOLS[key]


_POOLS: dict = {}
