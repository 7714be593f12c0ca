"""The main job until the alignment loop lands: sample and Self-Eval the built-in questions, and check how
well P(True) separates each question's correct reference answer from its incorrect one."""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

from selfalign.config import ModelArgs, opt
from selfalign.data import load_prompts
from selfalign.engines import make_engine
from selfalign.io import JsonlAppender, read_jsonl, write_json
from selfalign.metrics import auroc
from selfalign.provenance import meta
from selfalign.sampling import SampleConfig, run_sample
from selfalign.scoring import ScoreConfig, run_score


@dataclass
class DemoConfig(ModelArgs):
    output: str = opt("runs/demo", "run directory")
    input: str = opt("builtin", "prompts (builtin: the shipped 80-question set)")
    limit: int = opt(0, "use only the first N prompts (0 = all)")
    n: int = opt(4, "samples per prompt")
    max_new_tokens: int = opt(40, "tokens per answer at most")
    seed: int = opt(0, "random seed")


def run_demo(cfg: DemoConfig) -> dict:
    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    engine = make_engine(cfg.engine, **cfg.engine_kwargs())
    rows = load_prompts(cfg.input, limit=cfg.limit or None)
    common = cfg.engine_kwargs()
    s = run_sample(SampleConfig(**common, output=str(out / "samples.jsonl"), n=cfg.n,
                                max_new_tokens=cfg.max_new_tokens, seed=cfg.seed), engine=engine, rows=rows)
    c = run_score(ScoreConfig(**{**common, "batch_size": max(cfg.batch_size, 16)}, input=str(out / "samples.jsonl"),
                              output=str(out / "scores.jsonl")), engine=engine)
    # reference answers: one correct and one incorrect per question (when the source has them)
    refs = [{"id": f"{r['id']}/{lab}", "sample_idx": 0, "question": r["question"], "response": a, "label": lab == "correct"}
            for r in rows if r.get("correct_answers") and r.get("incorrect_answers")
            for lab, a in (("correct", r["correct_answers"][0]), ("incorrect", r["incorrect_answers"][0]))]
    ref_summary = {}
    if refs:
        ref_path = out / "references.jsonl"
        with JsonlAppender(ref_path, key=lambda r: r["id"]) as w:
            w.write([r for r in refs if not w.done(r)])
        run_score(ScoreConfig(**{**common, "batch_size": max(cfg.batch_size, 16)}, input=str(ref_path),
                              output=str(out / "references_scored.jsonl")), engine=engine)
        scored = read_jsonl(out / "references_scored.jsonl")
        pos = [r["p_true"] for r in scored if r["label"]]
        neg = [r["p_true"] for r in scored if not r["label"]]
        ref_summary = {"reference_answers": len(scored), "mean_p_true_correct": statistics.fmean(pos),
                       "mean_p_true_incorrect": statistics.fmean(neg),
                       "auroc_p_true": auroc([r["label"] for r in scored], [r["p_true"] for r in scored])}
    scores = read_jsonl(out / "scores.jsonl")
    summary = {"model": cfg.model, "prompts": len(rows), "samples": len(scores),
               "mean_p_true_samples": statistics.fmean(r["p_true"] for r in scores),
               "mean_p_true_mass": statistics.fmean(r["p_true_mass"] for r in scores),
               "sampling": s, "scoring": c, **ref_summary}
    write_json(out / "summary.json", {**summary, "meta": meta(cfg, stage="demo", model_info=engine.info)})
    return summary
