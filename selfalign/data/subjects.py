"""The subject split (``--split-by subject``): a held-out set of *subjects*, not of questions, so that no fact about
a held-out subject, under any relation, reaches training.

A generative question's subject is its qa_wikidata template's subject (``relations.parse``), compared after
``text.normalize``. A subject is held out by hash of (seed, task, subject) at the given fraction, so the same seed
and a larger fraction hold out a superset (knowledge-qa's 6% with seed 0 lies inside sk-data's 20% with split seed
0). A question is held out when it mentions a held-out subject: as its subject ("The capital of Nigeria is") or as
a gold answer ("Abuja is capital of" -> Nigeria, the same fact the other way round). Every other question is a
training question: SK data, DPO prompts and few-shot demonstrations are drawn from those only. A subject named only
inside another ("flag of Afghanistan" and "Afghanistan") counts as another subject."""
from __future__ import annotations

from selfalign.data.relations import parse_question
from selfalign.data.splits import split_of
from selfalign.text import normalize

SPLIT_BY = ("question", "subject")


def subject_of(q: dict) -> str:
    """The normalised subject of a generative question (an ``InputError`` for a prompt of no known template)."""
    return normalize(parse_question(q).subject)


def is_held(seed: int, task: str, subject: str, fraction: float) -> bool:
    """Whether a (normalised) subject of ``task`` is held out at ``fraction``: a larger fraction, same seed, holds
    out a superset."""
    return split_of(seed, task, "subject\x1f" + subject, fraction) == "heldout"


def held_subjects(questions: list[dict], seed: int, fraction: float) -> dict[str, set]:
    """{task: held-out subjects} over the generative questions."""
    out: dict = {}
    for q in questions:
        if q.get("targets"):
            s = subject_of(q)
            if is_held(seed, q["task"], s, fraction):
                out.setdefault(q["task"], set()).add(s)
    return out


def mentions(q: dict, held: set) -> bool:
    """Whether a generative question states a fact about a subject of ``held`` (its subject or a gold answer)."""
    return subject_of(q) in held or any(normalize(t) in held for t in q["targets"])


def subject_splits(questions: list[dict], seed: int, fraction: float) -> list[str]:
    """"heldout" or "train" for each generative question, in order (non-generative ones: None)."""
    held = held_subjects(questions, seed, fraction)
    return [("heldout" if mentions(q, held.get(q["task"], set())) else "train") if q.get("targets") else None
            for q in questions]
