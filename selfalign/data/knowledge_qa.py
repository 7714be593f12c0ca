"""Knowledge QA prompts from a generative BIG-bench task (``bigbench:qa_wikidata``): few-shot completion prompts
with gold ``targets``, split by hash into training prompts and held-out prompts.

A question (its text: duplicates under several ids are one question, their targets joined) is held out when
every id it has is held out by ``splits.split_of(SPLIT_SEED, task, id, HELDOUT_FRACTION)``. So no held-out
question is a training question, and an ``sk-data`` run on the same task with seed 0 and a held-out fraction
≥ ``HELDOUT_FRACTION`` keeps every held-out question out of its training file too. Demonstrations are
training questions only (``splits.pick_demos``), so a held-out question never appears in any prompt but
its own. Rows come in an order fixed by hash, so ``--limit N`` takes a spread of relations, not the first N.

``split_by="subject"`` (``--split-by subject``) holds out subjects instead (``data.subjects``, same seed and
fraction): a held-out prompt is one that mentions a held-out subject, as its subject or its answer, and no
training prompt or demonstration mentions one; an ``sk-data --split-by subject`` run with split seed 0 and a
held-out fraction >= ``HELDOUT_FRACTION`` keeps every such fact out of its training file too.
"""
from __future__ import annotations

from selfalign.errors import SelfAlignError

HELDOUT_FRACTION = 0.06  # qa_wikidata: 10,269 examples -> ~600 held-out questions
SPLIT_SEED = 0
SHOTS = 3
SPLITS = ("train", "heldout")


def questions(task: str, split_by: str = "question") -> list[dict]:
    """The task's generative questions, one per distinct text: {id, ids, question, targets, task, split}."""
    from selfalign.data.mc import load_bigbench
    from selfalign.data.splits import split_of

    by_text: dict[str, dict] = {}
    for r in load_bigbench(task):
        if not r.get("targets"):
            continue
        q = by_text.setdefault(r["question"].strip(), {"id": r["id"], "ids": [], "question": r["question"].strip(),
                                                       "targets": [], "task": task})
        q["ids"].append(r["id"])
        q["targets"] += [t for t in r["targets"] if t not in q["targets"]]
    if not by_text:
        raise SelfAlignError(f"bigbench:{task}: no generative examples (gold 'target' strings); knowledge QA needs them")
    if split_by == "subject":
        from selfalign.data.subjects import subject_splits

        qs = list(by_text.values())
        for q, split in zip(qs, subject_splits(qs, SPLIT_SEED, HELDOUT_FRACTION)):
            q["split"] = split
        return qs
    if split_by != "question":
        raise SelfAlignError(f"--split-by must be question or subject, not {split_by!r}")
    for q in by_text.values():
        held = all(split_of(SPLIT_SEED, task, i, HELDOUT_FRACTION) == "heldout" for i in q["ids"])
        q["split"] = "heldout" if held else "train"
    return list(by_text.values())


def load_knowledge_qa(task: str, split: str = "train", shots: int = SHOTS, split_by: str = "question") -> list[dict]:
    """Prompt rows {id, question, prompt, targets, task, split, source} of one split, in hash order."""
    from selfalign.data.splits import fewshot_prompt, pick_demos, unit

    if split not in SPLITS:
        raise SelfAlignError(f"bigbench:{task}: --split must be one of {', '.join(SPLITS)}, not {split!r}")
    qs = questions(task, split_by)
    pool = [q for q in qs if q["split"] == "train"]
    rows = []
    for q in sorted((q for q in qs if q["split"] == split), key=lambda q: unit(SPLIT_SEED, "order", task, q["id"])):
        demos = pick_demos(q, pool, shots, SPLIT_SEED)
        rows.append({"id": q["id"], "question": q["question"], "prompt": fewshot_prompt(q, demos),
                     "targets": q["targets"], "task": task, "split": split, "source": f"bigbench:{task}",
                     "demo_ids": [d["id"] for d in demos]})
    return rows
