"""DPO settings by measurement: learning rate x steps of `selfalign align` on knowledge-QA Self-Eval pairs.

    python benchmarks/align/dpo_sweep.py [--model smollm2-135m] [--lrs 5e-5 5e-4 2e-3] [--steps 10 30] [--prompts 48]

Pipeline (library calls, cached under runs/dpo-sweep/<model>/): sample N answers to bigbench:qa_wikidata training
prompts, score them with the base model's P(True), build `split` pairs; sample base answers to held-out prompts
(the drift set). For every (lr, steps): train a LoRA DPO adapter (`run_align`, beta 0.1, batch 4) and record
  - the reward margin and reward accuracy of the last quarter of the steps (TRL's rewards/margins, /accuracies),
  - on all training pairs after training: the mean change of log pi(chosen) and log pi(rejected) against the base,
    and the DPO reward margin beta * (change of chosen - change of rejected), the fraction of pairs it favours,
  - the drift on held-out prompts: KL(base || policy) estimated by the mean of log pi_base(y|x) - log pi(y|x) over
    pure samples y of the base model (temperature 1, no top-p / top-k, so the estimate is unbiased), with its
    standard error, and the same difference per token.
Writes benchmarks/results/dpo_sweep_<model>.{json,md}. Runs are resumable (each (lr, steps) is its own align dir).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from transformers.utils import logging as hf_logging  # noqa: E402

from selfalign.stages.align import AlignConfig, run_align  # noqa: E402
from selfalign.engines import make_engine  # noqa: E402
from selfalign.stages.pairs import PairsConfig, run_pairs  # noqa: E402
from selfalign.stages.sample import SampleConfig, run_sample  # noqa: E402
from selfalign.stages.score import ScoreConfig, run_score  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: the shared formatter
from tables import md_table  # noqa: E402

SOURCE = "bigbench:qa_wikidata"


def prepare(model: str, work: Path, n_prompts: int, n_heldout: int, device: str) -> tuple[Path, Path]:
    """(pairs file, held-out base samples file), built once."""
    common = dict(model=model, device=device, chat_template="off", stop=["\n"], max_new_tokens=12, seed=0)
    run_sample(SampleConfig(input=SOURCE, split="train", limit=n_prompts, n=4, output=str(work / "samples.jsonl"),
                            **common))
    run_score(ScoreConfig(input=str(work / "samples.jsonl"), output=str(work / "scores.jsonl"), model=model,
                          device=device))
    run_pairs(PairsConfig(input=str(work / "scores.jsonl"), output=str(work / "pairs.jsonl")))
    pure = dict(common, temperature=1.0, top_p=1.0, top_k=0)  # ancestral samples: an unbiased KL estimate
    run_sample(SampleConfig(input=SOURCE, split="heldout", limit=n_heldout, n=4, output=str(work / "drift-pure.jsonl"),
                            **pure))
    return work / "pairs.jsonl", work / "drift-pure.jsonl"


def drift(policy, base_ll: list[tuple[float, int]], pairs: list[tuple[str, str]]) -> dict:
    """KL(base || policy) per answer, estimated on base samples, with its standard error."""
    import statistics

    pol = policy.loglikelihood(pairs)
    d = [b - p for (p, _), (b, _) in zip(pol, base_ll)]
    toks = sum(n for _, n in base_ll)
    return {"kl_base_policy": statistics.fmean(d), "kl_se": statistics.stdev(d) / len(d) ** 0.5,
            "kl_per_token": sum(d) / toks, "n_answers": len(d)}


def pair_drift(policy, base_c, base_r, chosen, rejected, beta: float) -> dict:
    """On every training pair: mean change of log p(chosen) and log p(rejected), the reward margin, its sign."""
    dc = [p - b for (p, _), (b, _) in zip(policy.loglikelihood(chosen), base_c)]
    dr = [p - b for (p, _), (b, _) in zip(policy.loglikelihood(rejected), base_r)]
    m = [beta * (c - r) for c, r in zip(dc, dr)]
    return {"train_chosen_change": sum(dc) / len(dc), "train_rejected_change": sum(dr) / len(dr),
            "train_reward_margin": sum(m) / len(m), "train_reward_accuracy": sum(x > 0 for x in m) / len(m)}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--lrs", type=float, nargs="+", default=[5e-5, 5e-4, 2e-3])
    ap.add_argument("--steps", type=int, nargs="+", default=[10, 30])
    ap.add_argument("--runs", nargs="+", default=None, metavar="LR:STEPS",
                    help="explicit (lr, steps) runs instead of the grid --lrs x --steps, e.g. 5e-5:10 5e-4:30")
    ap.add_argument("--prompts", type=int, default=48, help="training prompts (4 samples each)")
    ap.add_argument("--heldout", type=int, default=24, help="held-out prompts of the drift set (4 samples each)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=None, help="results stem (default benchmarks/results/dpo_sweep_<model>)")
    args = ap.parse_args(argv)
    hf_logging.disable_progress_bar()
    name = Path(args.model).name
    work = ROOT / "runs" / "dpo-sweep" / name
    t0 = time.time()
    pairs_file, drift_file = prepare(args.model, work, args.prompts, args.heldout, args.device)
    rows = [json.loads(ln) for ln in drift_file.read_text().splitlines() if ln.strip()]
    held = [(r["prompt"], r["response"]) for r in rows if r["response"].strip()]
    prs = [json.loads(ln) for ln in pairs_file.read_text().splitlines() if ln.strip()]
    chosen, rejected = [(p["prompt"], p["chosen"]) for p in prs], [(p["prompt"], p["rejected"]) for p in prs]
    base = make_engine("hf", model=args.model, device=args.device, batch_size=16)
    base_ll, base_c, base_r = base.loglikelihood(held), base.loglikelihood(chosen), base.loglikelihood(rejected)
    del base
    results = []
    grid = ([(float(a), int(b)) for a, b in (r.split(":") for r in args.runs)] if args.runs else
            [(lr, steps) for lr in args.lrs for steps in args.steps])
    for lr, steps in grid:
        out = work / f"lr{lr:g}_steps{steps}"
        run_align(AlignConfig(model=args.model, pairs=str(pairs_file), output=str(out), beta=0.1,
                              learning_rate=lr, max_steps=steps, batch_size=4, device=args.device,
                              save_steps=max(steps, 1)))
        log = [json.loads(ln) for ln in (out / "train_log.jsonl").read_text().splitlines() if ln.strip()]
        tail = log[-max(1, len(log) // 4):]  # the last quarter of the steps
        pol = make_engine("hf", model=str(out), device=args.device, batch_size=16)
        rec = {"lr": lr, "steps": steps, "pairs": len(prs), "epochs": round(steps * 4 / len(prs), 2),
               "reward_margin_last_quarter": sum(r["rewards/margins"] for r in tail) / len(tail),
               "reward_accuracy_last_quarter": sum(r["rewards/accuracies"] for r in tail) / len(tail),
               **pair_drift(pol, base_c, base_r, chosen, rejected, 0.1), **drift(pol, base_ll, held),
               "train_seconds": json.loads((out / "train_summary.json").read_text()).get("seconds")}
        del pol
        results.append(rec)
        print(json.dumps(rec), flush=True)
    stem = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / f"dpo_sweep_{name}"
    stem.parent.mkdir(parents=True, exist_ok=True)
    meta = {"model": args.model, "source": SOURCE, "prompts": args.prompts, "heldout_prompts": args.heldout,
            "pairs": len(prs), "drift_answers": len(held), "beta": 0.1, "batch_size": 4, "lora_r": 8,
            "wall_seconds": round(time.time() - t0, 1)}
    stem.with_suffix(".json").write_text(json.dumps({"meta": meta, "runs": results}, indent=1))
    cols = ["lr", "steps", "epochs", "reward_margin_last_quarter", "reward_accuracy_last_quarter",
            "train_reward_margin", "train_reward_accuracy", "train_chosen_change", "train_rejected_change",
            "kl_base_policy", "kl_se", "train_seconds"]
    print("\n".join(md_table(cols, [[f"{r[c]:.4g}" if isinstance(r[c], float) else str(r[c]) for c in cols]
                                    for r in results])))
    print(f"\nwrote {stem}.json ({meta['wall_seconds']} s)")


if __name__ == "__main__":
    main()
