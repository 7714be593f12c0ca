"""Questions for SK-Tuning data and the knowledge evaluations: every question source by name (BIG-bench tasks,
TruthfulQA MC, a JSONL of options), deduplicated, capped and split by hash (or by subject, ``data.subjects``); and
same-relation distractors for gold answers (a prompt's relation: ``data.relations``). Used by the ``sk-data`` stage
and by ``eval knowledge-qa``; no stage config here, only explicit arguments."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from selfalign.data.relations import relation
from selfalign.data.splits import split_of, unit
from selfalign.errors import SelfAlignError
from selfalign.text import matches, normalize


def _bigbench_all() -> list[str]:
    from selfalign.data import data_root, mc

    root = data_root()
    if not root or not (root / "bigbench").is_dir():
        raise SelfAlignError("bigbench:all: no bigbench folder under the data root (set SELFALIGN_DATA)")
    return mc.bigbench_tasks(root / "bigbench")


def load_source(source: str, skipped_tasks: dict) -> list[dict]:
    """Questions of one source, each with ``task`` and ``source`` set (and ``targets`` for a generative task)."""
    from selfalign.data import mc

    if source == "bigbench:all":  # every task, a task split into subtasks as its subtasks
        return [r for task in _bigbench_all() for r in load_source(f"bigbench:{task}", skipped_tasks)]
    if source.startswith("bigbench:"):
        task = source.split(":", 1)[1]
        return [dict(r, task=task, source=source) for r in mc.load_bigbench(task)]
    if source.endswith(".json"):  # a BIG-bench task.json given by path
        rows = mc.load_bigbench_source(source)
        return [dict(r, task=r["task"], source=source) for r in rows]
    if source == "truthfulqa-mc" or source.startswith("truthfulqa-mc:"):
        split = source.split(":", 1)[1] if ":" in source else "train"
        return [dict(r, task="truthfulqa-mc", source=source) for r in mc.load_truthfulqa_mc(None, split)]
    return [dict(r, task=str(r.get("task") or Path(source).stem), source=source) for r in mc.load_mc_jsonl(source)]


def select_questions(sources: list[str], heldout_tasks: list[str] = (), max_per_task: Optional[int] = None,
                     split_seed: int = 0, heldout_fraction: float = 0.2,
                     split_by: str = "question", max_split: Optional[dict] = None) -> tuple[list[dict], dict]:
    """All questions of ``sources``, deduplicated, capped at ``max_per_task`` per task (a choice by hash), each with
    its ``split`` (train / heldout by hash / heldout_task for ``heldout_tasks``); and the skipped tasks.
    ``split_by="subject"``: a generative question is held out when it mentions a held-out subject
    (``data.subjects``; the subjects of the capped questions, by ``split_seed`` and ``heldout_fraction``).
    ``max_split`` ({split: N}): at most N questions of that split per task, a choice by hash made *after* the split,
    so every question about a held-out subject stays out of the training split (``max_per_task`` caps before the
    split, which moves the subject split itself)."""
    if not sources:
        raise SelfAlignError("missing --sources (e.g. bigbench:all truthfulqa-mc)")
    skipped_tasks: dict = {}
    by_task: dict[str, dict[str, dict]] = {}
    for source in sources:
        for r in load_source(source, skipped_tasks):
            by_task.setdefault(r["task"], {}).setdefault(str(r["id"]), r)
    held = {t.removeprefix("bigbench:") for t in heldout_tasks}
    unknown = sorted(held - set(by_task))
    if unknown:
        raise SelfAlignError(f"--heldout-tasks {', '.join(unknown)} not among the loaded tasks: {', '.join(by_task)}")
    out = []
    for task, qs in by_task.items():
        rows = list(qs.values())
        if max_per_task is not None and len(rows) > max_per_task:
            keep = set(sorted(qs, key=lambda i: unit(split_seed, "cap", task, i))[:max_per_task])
            rows = [r for r in rows if str(r["id"]) in keep]
        for r in rows:
            split = ("heldout_task" if task in held
                     else split_of(split_seed, task, str(r["id"]), heldout_fraction))
            out.append({"id": str(r["id"]), "task": task, "question": r["question"], "options": r["options"],
                        "source": r["source"], "split": split,
                        **({"targets": r["targets"]} if r.get("targets") else {})})
    if split_by == "subject":
        from selfalign.data.subjects import subject_splits

        for q, split in zip(out, subject_splits(out, split_seed, heldout_fraction)):
            if split is not None and q["split"] != "heldout_task":
                q["split"] = split
    return cap_splits(out, max_split or {}, split_seed), skipped_tasks


def cap_splits(questions: list[dict], max_split: dict, seed: int) -> list[dict]:
    """At most ``max_split[split]`` questions of each split per task, the first by hash (order kept)."""
    keep = set()
    groups: dict = {}
    for q in questions:
        groups.setdefault((q["task"], q["split"]), []).append(q["id"])
    for (task, split), ids in groups.items():
        cap = max_split.get(split)
        chosen = ids if cap is None else sorted(ids, key=lambda i: unit(seed, "cap-split", task, split, i))[:cap]
        keep.update((task, i) for i in chosen)
    return [q for q in questions if (q["task"], q["id"]) in keep]


def add_distractors(questions: list[dict], seed: int, within_split: bool = False) -> None:
    """Give each generative question a distractor: the first gold target of another *question* of the same task and
    relation (of the same task when the relation has no other), chosen by hash, that matches none of the question's
    own targets (candidates probed in order from the hashed position). The relation is the prompt's qa_wikidata
    template (``relations.relation``); a prompt of no known template is an ``InputError`` naming file and line.

    Candidates are questions, not distinct answers, so an answer is offered as a distractor as often as it is gold
    (a common answer such as "English" is common on both sides): its surface then says nothing about its label. With
    distinct answers as candidates, frequent answers were true 9 times in 10 and a model-free "training true rate of
    this answer string" scored AUROC 0.81 on held-out questions.

    ``within_split`` (the subject split): a training question draws only from training questions, so no held-out
    answer, nor a held-out subject, is offered in a training row."""
    pools: dict = {}
    gen = [q for q in questions if q.get("targets")]
    side = (lambda q: q["split"] == "train") if within_split else (lambda q: None)  # noqa: E731
    rel = {id(q): (side(q), relation(q)) for q in gen}
    for q in sorted(gen, key=lambda q: (q["task"], q["id"])):
        for key in ((q["task"], rel[id(q)]), (q["task"], side(q))):
            pools.setdefault(key, []).append((normalize(q["targets"][0]), q["targets"][0], q["id"]))
    for q in gen:
        own = {normalize(t) for t in q["targets"]}
        for key in ((q["task"], rel[id(q)]), (q["task"], side(q))):
            pool = pools[key]
            start = int(unit(seed, "distractor", q["task"], q["id"]) * len(pool))
            hit = next((c[1] for c in (pool[(start + j) % len(pool)] for j in range(len(pool)))
                        if c[2] != q["id"] and not any(matches(c[0], t) for t in own)), None)
            if hit is not None:
                q["distractor"] = hit
                break
