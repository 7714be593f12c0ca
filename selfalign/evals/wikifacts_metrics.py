"""The per-response numbers of ``eval wikifacts`` (targeted long-form precision on Wikidata attributes).

From the statements ``wikifacts_verify`` finds in a response about its subject:

- ``supported`` / ``contradicted``: statements of each verdict (the paper's #Cor / #Incor); a statement (relation
  and values) said twice counts once, and so does a sentence, so that repeating a line earns nothing;
- ``precision`` = supported / (supported + contradicted) (None when the response states nothing checkable), and
  ``precision_gamma``, times FActScore's length penalty ``exp(1 - gamma / n)`` when n = supported + contradicted
  <= gamma (``factscore.length_penalty``; gamma 2 by default, the fewest fields a profile asks for: a response that
  states both fields of a two-field subject is not penalised, one that states a single fact is, by exp(-1));
- ``coverage``: the share of the asked fields the response makes a statement about, whatever its verdict;
  ``field_recall``: the share with a supported statement;
- ``unverifiable``: sentences with no supported or contradicted statement (about a relation the data do not hold
  for the subject, a value outside an incomplete multi-valued relation, or nothing checkable); ``unmapped``: the
  share of sentences with no statement at all;
- ``abstain``: an empty answer, or one that opens with "I don't know", "I'm sorry", "I cannot", ...

Never read precision alone: saying less raises it. Every one of these is a mean over subjects with a bootstrap
interval, and two results are compared by a paired bootstrap over the subjects both have."""
from __future__ import annotations

import re

from selfalign.evals.factscore import length_penalty

METRICS = ("precision", "precision_gamma", "supported", "contradicted", "coverage", "field_recall",
           "unverifiable", "unmapped", "abstain", "length")
GAMMA = 2
ABSTAIN = re.compile(r"^\W*(?:i don'?t know|i do not know|i'?m sorry|i am sorry|i cannot|i can'?t|i'?m not sure|"
                     r"i am not sure|i have no|there is no information|no information|unknown\b)", re.I)


def abstains(response: str) -> bool:
    return not response.strip() or bool(ABSTAIN.match(response))


def score_response(verifier, subject: str, asked: list[str], response: str, gamma: int = GAMMA) -> dict:
    """The numbers of one response, and its sentence records (``sentences``)."""
    if abstains(response):
        return {"precision": None, "precision_gamma": None, "supported": 0, "contradicted": 0, "coverage": 0.0,
                "field_recall": 0.0, "unverifiable": 0, "unmapped": None, "abstain": 1,
                "length": len(response.split()), "n_sentences": 0, "sentences": []}
    recs = verifier.sentences_of(subject, response)
    facts = {(r["relation"], tuple(r["values"])): r["verdict"] for r in recs if r["relation"]}  # repeats count once
    sup = sum(v == "supported" for v in facts.values())
    con = sum(v == "contradicted" for v in facts.values())
    by_sentence: dict = {}
    for r in recs:
        by_sentence.setdefault(r["sentence"], set()).add(r["verdict"] if r["relation"] else None)
    n_sent = len(by_sentence)
    n = sup + con
    prec = sup / n if n else None
    stated = {r["relation"] for r in recs if r["relation"]}
    good = {r["relation"] for r in recs if r["verdict"] == "supported"}
    return {"precision": prec, "precision_gamma": prec * length_penalty(n, gamma) if n else None,
            "supported": sup, "contradicted": con,
            "coverage": len(stated & set(asked)) / len(asked) if asked else None,
            "field_recall": len(good & set(asked)) / len(asked) if asked else None,
            "unverifiable": sum(not v & {"supported", "contradicted"} for v in by_sentence.values()),
            "unmapped": sum(v == {None} for v in by_sentence.values()) / n_sent if n_sent else None,
            "abstain": 0, "length": len(response.split()), "n_sentences": n_sent, "sentences": recs}


def pooled(rows: list[dict]) -> dict:
    """Totals over responses: statements, sentences, the micro precision (supported over all checkable
    statements) and the share of sentences with no statement."""
    sup = sum(r.get("supported") or 0 for r in rows)
    con = sum(r.get("contradicted") or 0 for r in rows)
    n_sent = sum(r.get("n_sentences") or 0 for r in rows)
    unmapped = sum(round((r.get("unmapped") or 0) * (r.get("n_sentences") or 0)) for r in rows)
    return {"supported": sup, "contradicted": con, "precision_micro": sup / (sup + con) if sup + con else None,
            "sentences": n_sent, "unmapped_sentences": unmapped,
            "unmapped_share": unmapped / n_sent if n_sent else None}
