"""Claim-level Self-Eval of long-form responses: decompose each response into claims, score every claim by
P(True) (``claims``) or by self-consistency (``consistency``), and aggregate to a response score (mean or min)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

from selfalign.selfeval.prompt import SelfEvalPrompt

AGGREGATES = {"mean": lambda xs: sum(xs) / len(xs), "min": min}
CONTEXTS = ("claim-question", "prompt")


def aggregate(scores: Sequence[float], how: str = "mean") -> float | None:
    return AGGREGATES[how](list(scores)) if len(scores) else None


@dataclass(frozen=True)
class ClaimScoring:
    """How to score claims: what ``score_claim_rows`` needs, and nothing about the stage that calls it."""
    method: str                                   # claims (P(True) per claim) or consistency (re-answer agreement)
    selfeval: SelfEvalPrompt                      # claims: the Self-Eval prompt each claim is asked with
    claim_method: str = "rules"                   # decomposition: rules or llm
    claim_questions: str = "template"             # question per claim: template or llm
    claim_agg: str = "mean"                       # response score: mean or min over its claims
    claim_context: str = "claim-question"         # claims: P(True) asked with the claim's question, or the prompt
    claim_cache: Optional[str] = None             # JSONL cache of decompositions
    chat: bool = False
    consistency_k: int = 5
    consistency_max_new_tokens: int = 32
    seed: int = 0


def score_claim_rows(engine, rows: list[dict], cfg: ClaimScoring) -> list[dict]:
    """Rows gain ``claims`` ([{text, question, p_true}] or [{text, question, p_agree}]), ``n_claims`` and ``score``.

    P(True) of a claim is asked with the claim's question and the claim as the proposed answer
    (``claim_context=claim-question``) or with the row's own question, e.g. "Tell me a bio of X." (``prompt``).
    The topic a leading pronoun stands for: the row's ``topic`` (BioGEN), else its ``subject`` (wikifacts).
    """
    from selfalign.data.biogen import topic_of
    from selfalign.selfeval import consistency, ptrue
    from selfalign.selfeval.claims import ClaimCache, decompose, method_tag

    cache = ClaimCache(cfg.claim_cache)
    try:
        decs = decompose(engine, [r["response"] for r in rows], [topic_of(r) or str(r.get("subject") or "")
                                                                 for r in rows], cfg.claim_method,
                         cfg.claim_questions, cache)
    finally:
        cache.close()
    flat = [(i, c) for i, cs in enumerate(decs) for c in cs]
    if cfg.method == "claims":
        items = [(c["question"] if cfg.claim_context == "claim-question" else rows[i]["question"], c["text"])
                 for i, c in flat]
        res = ptrue.p_true(engine, items, cfg.selfeval)
        for (_, c), x in zip(flat, res):
            c.update(p_true=x.p_true, p_true_mass=x.mass)
        key, extra = "p_true", {"selfeval_template": cfg.selfeval.template_id,
                                "claim_context": cfg.claim_context}
    else:
        res = consistency.consistency(engine, [(c["question"], c["text"]) for _, c in flat], k=cfg.consistency_k,
                                      max_new_tokens=cfg.consistency_max_new_tokens, chat=cfg.chat, seed=cfg.seed)
        for (_, c), x in zip(flat, res):
            c.update(p_agree=x["p_agree"])
        key, extra = "p_agree", {"consistency_k": cfg.consistency_k, "consistency_rule": consistency.RULE}
    tag = method_tag(cfg.claim_method, cfg.claim_questions, engine)
    out = []
    for r, cs in zip(rows, decs):
        claims = [{"text": c["text"], "question": c["question"], key: c[key]} for c in cs]
        out.append({**r, "claims": claims, "n_claims": len(claims), "score": aggregate([c[key] for c in claims],
                    cfg.claim_agg), "score_method": cfg.method, "claim_agg": cfg.claim_agg, "claim_method": tag,
                    **extra})
    return out


def claim_scoring(cfg) -> ClaimScoring:
    """The claim-level settings of a score config (read by attribute), as the claim scorer takes them."""
    return ClaimScoring(method=cfg.method, selfeval=SelfEvalPrompt.of(cfg), claim_method=cfg.claim_method,
                        claim_questions=cfg.claim_questions, claim_agg=cfg.claim_agg, claim_context=cfg.claim_context,
                        claim_cache=cfg.claim_cache, chat=cfg.chat, consistency_k=cfg.consistency_k,
                        consistency_max_new_tokens=cfg.consistency_max_new_tokens, seed=cfg.seed)


def score_rows(engine, rows: list[dict], cfg) -> list[dict]:
    """``score``'s confidence methods ``claims`` and ``consistency`` (``cfg.method`` says which)."""
    return score_claim_rows(engine, rows, claim_scoring(cfg))
