"""``score --method wikifacts-gold``: the gold oracle of the Wikidata long-form loop. The benchmark's deterministic
verifier (``evals.wikifacts_verify``, the subject's qa_wikidata triples) ranks the samples: a response scores

    supported - contradicted

its statements of each verdict as ``eval wikifacts`` counts them (``wikifacts_metrics.score_response``: a repeated
statement counts once, a single-valued value listed beside distractors is contradicted). The number of facts right
net of the facts wrong: it prefers a correct profile to a wrong one and a fuller correct one to a shorter one, so it
cannot gain by saying less (as precision alone could) nor by padding (a wrong value costs as much as a right one
earns). A response with no statement at all (no checkable fact, an empty answer, an abstention) scores None, as in
``wikifacts-claims``: ``pairs`` drops it. Rows also record ``gold_supported``, ``gold_contradicted`` and
``gold_precision``.

It reads gold: an upper bound of what a judge could do with these samples, not self-alignment. No model is loaded.
"""
from __future__ import annotations

from selfalign.selfeval.wikifacts_claims import check_rows  # noqa: F401  (the same wikifacts rows)

METHOD = "wikifacts-gold"
NEEDS_MODEL = False


def gold_score(verifier, k, subject: str, response: str) -> dict:
    """{score, gold_supported, gold_contradicted, gold_precision} of one response."""
    from selfalign.evals.wikifacts_metrics import score_response

    got = score_response(verifier, subject, k.fields(subject), response)
    stated = any(s["relation"] for s in got["sentences"])
    return {"score": got["supported"] - got["contradicted"] if stated else None,
            "gold_supported": got["supported"], "gold_contradicted": got["contradicted"],
            "gold_precision": got["precision"]}


def score_rows(engine, rows: list[dict], cfg) -> list[dict]:
    from selfalign.selfeval.wikifacts_claims import resources

    out = []
    for r in rows:
        k, v = resources(r)
        out.append({**r, **gold_score(v, k, r["subject"], r["response"]), "score_method": METHOD})
    return out
