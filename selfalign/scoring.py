"""Stage 2, score: Self-Eval confidence for every sample (P(True) by default, sequence likelihood, or claim-level
P(True) / self-consistency for long-form answers)."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional

from selfalign import prompts as P
from selfalign.config import ModelArgs, opt, require
from selfalign.engines import make_engine
from selfalign.errors import SelfAlignError
from selfalign.io import JsonlAppender, read_jsonl, write_json
from selfalign.provenance import meta, meta_path
from selfalign.progress import run_chunks

METHODS = ("ptrue", "likelihood", "claims", "consistency")


@dataclass
class ScoreConfig(ModelArgs):
    input: Optional[str] = opt(None, "samples JSONL (rows with id, sample_idx, question, response)")
    output: Optional[str] = opt(None, "scores JSONL (appended; finished rows are skipped on rerun)")
    method: str = opt("ptrue", "confidence method: ptrue (Self-Eval P(True)), likelihood (mean token log-prob), "
                               "claims (P(True) per atomic claim), consistency (claim re-answer agreement)")
    shots: int = opt(0, "P(True): number of the paper's demonstrations before the prompt (0-5)")
    instruction: Optional[str] = opt(None, "P(True): an instruction line placed before the prompt")
    chat: bool = opt(False, "P(True): wrap the prompt in the model's chat template (off: raw text, as the paper)")
    batch_size: int = opt(16, "rows per forward pass")
    claim_method: str = opt("rules", "claims/consistency: decomposition by rules (offline) or llm (FActScore prompt)")
    claim_questions: str = opt("template", "claims/consistency: question per claim: template (= yesno, "
                                                "'Is it true that X?') or llm (= wh, a wh-question)")
    claim_agg: str = opt("mean", "claims/consistency: response score = mean or min over its claims")
    claim_context: str = opt("claim-question", "claims: P(True) question = the claim's question, or prompt (the "
                                               "row's own question)")
    claim_cache: Optional[str] = opt(None, "claims/consistency: JSONL cache of decompositions (reused across runs)")
    consistency_k: int = opt(5, "consistency: sampled answers per claim question")
    consistency_max_new_tokens: int = opt(32, "consistency: tokens per sampled answer at most")
    seed: int = opt(0, "consistency: sampling seed")


def _key(r: dict):
    return (str(r["id"]), r.get("sample_idx", 0))


def score_rows(engine, rows: list[dict], cfg: ScoreConfig) -> list[dict]:
    """Add ``score`` (and for P(True): ``p_true``, ``p_true_mass``) to rows; pure function of its inputs."""
    from selfalign.selfeval import likelihood, ptrue

    if cfg.method == "ptrue":
        res = ptrue.p_true(engine, [(r["question"], r["response"]) for r in rows], cfg.shots, cfg.instruction,
                           cfg.chat)
        tid = P.ptrue_template_id(cfg.shots, cfg.instruction, cfg.chat)
        return [{**r, "p_true": x.p_true, "p_true_mass": x.mass, "score": x.p_true, "score_method": "ptrue",
                 "selfeval_template": tid} for r, x in zip(rows, res)]
    if cfg.method in ("claims", "consistency"):
        from selfalign.selfeval.claimscore import score_claim_rows

        return score_claim_rows(engine, rows, cfg)
    if cfg.method == "likelihood":
        res = likelihood.mean_logprob(engine, [(r["prompt"], r["response"]) for r in rows])
        return [{**r, "mean_logprob": x, "score": x, "score_method": "likelihood"} for r, x in zip(rows, res)]
    raise SelfAlignError(f"unknown --method {cfg.method!r}; choose one of {', '.join(METHODS)}")


def run_score(cfg: ScoreConfig, engine=None) -> dict:
    require(cfg, "input", "output")
    if cfg.method not in METHODS:
        raise SelfAlignError(f"unknown --method {cfg.method!r}; choose one of {', '.join(METHODS)}")
    need = ["id", "question", "response"] + (["prompt"] if cfg.method == "likelihood" else [])
    rows = read_jsonl(cfg.input, required=need)
    engine = engine or make_engine(cfg.engine, **cfg.engine_kwargs())
    write_json(meta_path(cfg.output), meta(cfg, stage="score", model_info=engine.info,
                                           selfeval_template=P.ptrue_template_id(cfg.shots, cfg.instruction, cfg.chat)
                                           if cfg.method == "ptrue" else None))
    t0, n_new = time.time(), 0
    with JsonlAppender(cfg.output, key=_key) as out:
        todo = [r for r in rows if not out.done(r)]
        # chunks of several batches: the engine sorts each chunk by length, and every chunk is written at once
        n_new = run_chunks(out, todo, cfg.batch_size * 4, lambda part: score_rows(engine, part, cfg),
                           f"score ({cfg.method})", "row")
    dt = time.time() - t0
    return {"output": cfg.output, "rows": len(rows), "new_rows": n_new, "skipped_rows": len(rows) - n_new,
            "seconds": round(dt, 2), "rows_per_s": round(n_new / dt, 2) if dt and n_new else None}
