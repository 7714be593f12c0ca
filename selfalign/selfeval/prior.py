"""The *prior* judge (``score --method prior``), a control with no model: how often the sample's answer is the gold
answer of a training question of the same relation.

A sample of a knowledge-QA prompt (``bigbench:TASK``, e.g. qa_wikidata: "The capital of Kenya is") scores

    (k + alpha) / (n + 2 alpha)

where n counts the *training* questions of the prompt's relation (``data.relations``: "The capital of _ is") other
than the prompt's own question, and k those of them with a gold target equal to the sample's answer under the strict
first-clause match of the headline metric (``text.strict_match``: the answer's first clause, after
``text.normalize``, is the target). With the default alpha 1 (add-one over "is / is not that answer") a relation
with few training questions is pulled towards 0.5; within a prompt (what the pair rule compares) the score is
monotone in k, so the ranking is the answer frequency itself. An empty answer counts no match.

The pool is explicit: ``--prior-split-by question|subject`` names the split the prompts were drawn under
(knowledge-qa's ``--split-by``), and only its *training* questions are read (``knowledge_qa.questions``), never a
held-out question's targets. Each row records the pool, n and k. A sample row that carries its ``split`` must agree
with that split (a prompt drawn under another ``--split-by`` is refused: its pool would hold facts the evaluation
holds out).
"""
from __future__ import annotations

from functools import lru_cache

METHOD = "prior"
NEEDS_MODEL = False


def pool_name(task: str, split_by: str) -> str:
    return f"bigbench:{task} train questions (--split-by {split_by})"


@lru_cache(maxsize=4)
def training_pool(task: str, split_by: str) -> tuple[dict, dict]:
    """({relation: {normalised target: {question ids}}} over the task's training questions, {question id or text:
    (split, question id)} over every question). Held-out questions give only their split, never their targets."""
    from selfalign.data import knowledge_qa
    from selfalign.data.relations import relation
    from selfalign.text import normalize

    index: dict = {}
    known: dict = {}
    for q in knowledge_qa.questions(task, split_by):
        split = q["split"]
        for key in (*q["ids"], q["question"]):
            known[str(key)] = (split, str(q["id"]))
        if split != "train":
            continue
        by_target = index.setdefault(relation(q), {})
        for t in q["targets"]:
            by_target.setdefault(normalize(t), set()).add(str(q["id"]))
        by_target.setdefault(None, set()).add(str(q["id"]))  # every question of the relation: n
    return index, known


def task_of(row: dict):
    """The BIG-bench task of a knowledge-QA sample row (its ``task``, else its ``source`` "bigbench:TASK")."""
    if row.get("task"):
        return str(row["task"])
    src = str(row.get("source") or "")
    return src.split(":", 1)[1] if src.startswith("bigbench:") else None


def _find(row: dict, task: str, split_by: str):
    """(split, question id) of a sample's question (by id, else by its text); None when the task has no such one."""
    _, known = training_pool(task, split_by)
    return known.get(str(row["id"])) or known.get(str(row.get("question") or "").strip())


def check_rows(rows: list[dict], path, cfg) -> None:
    """Every row a knowledge-QA sample of a task whose pool can be built, drawn under ``--prior-split-by``; else one
    ``InputError`` naming the file and line."""
    from selfalign.errors import InputError, SelfAlignError
    from selfalign.store.io import line_numbers

    if cfg.prior_split_by is None:
        raise SelfAlignError("--method prior needs --prior-split-by question|subject: the split the prompts were "
                             "drawn under (knowledge-qa's --split-by), whose training questions are the pool")
    for r, n in zip(rows, line_numbers(path)):
        task = task_of(r)
        if task is None:
            raise InputError(path, "--method prior needs knowledge-QA samples (a 'task' or a 'source' "
                                   "bigbench:TASK, e.g. from sample --input bigbench:qa_wikidata)", n)
        found = _find(r, task, cfg.prior_split_by)
        if found is None:
            raise InputError(path, f"id {r['id']!r} is no question of bigbench:{task}; the prior judge scores "
                                   "knowledge-QA samples only", n)
        got = found[0]
        if r.get("split") is not None and r["split"] != got:
            raise InputError(path, f"id {r['id']!r} was drawn from the {r['split']!r} split, but under "
                                   f"--prior-split-by {cfg.prior_split_by} it is {got!r}: the prompts were drawn "
                                   "under another --split-by (use the same one)", n)


def score_rows(engine, rows: list[dict], cfg) -> list[dict]:
    from selfalign.data.relations import relation
    from selfalign.text import first_clauses, normalize

    out = []
    for r in rows:
        task = task_of(r)
        index, _ = training_pool(task, cfg.prior_split_by)
        q = {"id": r["id"], "task": task, "source": r.get("source") or f"bigbench:{task}", "question": r["question"]}
        by_target = index.get(relation(q), {})
        own = (_find(r, task, cfg.prior_split_by) or (None, str(r["id"])))[1]
        pool = by_target.get(None, set()) - {own}
        hits = set().union(*(by_target.get(c, set()) for c in first_clauses(r["response"])))
        hits = (hits - {own}) if normalize(r["response"]) else set()
        k, n = len(hits), len(pool)
        out.append({**r, "score": (k + cfg.prior_alpha) / (n + 2 * cfg.prior_alpha), "score_method": METHOD,
                    "prior_k": k, "prior_n": n, "prior_pool": pool_name(task, cfg.prior_split_by)})
    return out
