"""DPO settings by measurement: learning rate x steps of `selfalign align` on knowledge-QA Self-Eval pairs.

    python benchmarks/dpo_sweep.py [--model smollm2-135m] [--lrs 5e-5 5e-4 2e-3] [--steps 10 30] [--prompts 48]

Pipeline (library calls, cached under runs/dpo-sweep/<model>/): sample N answers to bigbench:qa_wikidata training
prompts, score them with the base model's P(True), build `split` pairs; sample base answers to held-out prompts
(the drift set). For every (lr, steps): train a LoRA DPO adapter (`run_align`, beta 0.1, batch 4) and record
  - the reward margin and reward accuracy of the last steps (TRL's rewards/margins, rewards/accuracies),
  - the drift on held-out prompts: mean log pi(y|x) - log pi_base(y|x) over base samples y (per answer and per
    token), and KL(base || policy) estimated by its Monte-Carlo mean over those samples (log pi_base - log pi),
  - the change of the chosen and rejected log-probabilities on the training pairs (TRL's logps/*, last - first).
Writes benchmarks/results/dpo_sweep_<model>.{json,md}. Runs are resumable (each (lr, steps) is its own align dir).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from selfalign.align import AlignConfig, run_align  # noqa: E402
from selfalign.engines import make_engine  # noqa: E402
from selfalign.pairs import PairsConfig, run_pairs  # noqa: E402
from selfalign.sampling import SampleConfig, run_sample  # noqa: E402
from selfalign.scoring import ScoreConfig, run_score  # noqa: E402

SOURCE = "bigbench:qa_wikidata"


def prepare(model: str, work: Path, n_prompts: int, n_heldout: int, device: str) -> tuple[Path, Path]:
    """(pairs file, held-out base samples file), built once."""
    common = dict(model=model, device=device, chat_template="off", stop=["\n"], max_new_tokens=12, seed=0)
    run_sample(SampleConfig(input=SOURCE, split="train", limit=n_prompts, n=4, output=str(work / "samples.jsonl"),
                            **common))
    run_score(ScoreConfig(input=str(work / "samples.jsonl"), output=str(work / "scores.jsonl"), model=model,
                          device=device))
    run_pairs(PairsConfig(input=str(work / "scores.jsonl"), output=str(work / "pairs.jsonl")))
    run_sample(SampleConfig(input=SOURCE, split="heldout", limit=n_heldout, n=2, output=str(work / "drift.jsonl"),
                            **common))
    return work / "pairs.jsonl", work / "drift.jsonl"


def drift(policy, base_ll: list[tuple[float, int]], pairs: list[tuple[str, str]]) -> dict:
    pol = policy.loglikelihood(pairs)
    d = [p - b for (p, _), (b, _) in zip(pol, base_ll)]
    toks = sum(n for _, n in base_ll)
    return {"logp_drift_per_answer": sum(d) / len(d), "logp_drift_per_token": sum(d) / toks,
            "kl_base_policy_per_answer": -sum(d) / len(d), "n_answers": len(d)}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--lrs", type=float, nargs="+", default=[5e-5, 5e-4, 2e-3])
    ap.add_argument("--steps", type=int, nargs="+", default=[10, 30])
    ap.add_argument("--prompts", type=int, default=48, help="training prompts (4 samples each)")
    ap.add_argument("--heldout", type=int, default=24, help="held-out prompts of the drift set (2 samples each)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=None, help="results stem (default benchmarks/results/dpo_sweep_<model>)")
    args = ap.parse_args(argv)
    name = Path(args.model).name
    work = ROOT / "runs" / "dpo-sweep" / name
    t0 = time.time()
    pairs_file, drift_file = prepare(args.model, work, args.prompts, args.heldout, args.device)
    rows = [json.loads(ln) for ln in drift_file.read_text().splitlines() if ln.strip()]
    held = [(r["prompt"], r["response"]) for r in rows if r["response"].strip()]
    base = make_engine("hf", model=args.model, device=args.device, batch_size=16)
    base_ll = base.loglikelihood(held)
    del base
    n_pairs = sum(1 for ln in pairs_file.read_text().splitlines() if ln.strip())
    results = []
    for lr in args.lrs:
        for steps in args.steps:
            out = work / f"lr{lr:g}_steps{steps}"
            t1 = time.time()
            s = run_align(AlignConfig(model=args.model, pairs=str(pairs_file), output=str(out), beta=0.1,
                                      learning_rate=lr, max_steps=steps, batch_size=4, device=args.device,
                                      save_steps=max(steps, 1)))
            log = [json.loads(ln) for ln in (out / "train_log.jsonl").read_text().splitlines() if ln.strip()]
            tail = log[-max(1, len(log) // 4):]  # the last quarter of the steps
            pol = make_engine("hf", model=str(out), device=args.device, batch_size=16)
            rec = {"lr": lr, "steps": steps, "pairs": n_pairs, "epochs": round(steps * 4 / n_pairs, 2),
                   "reward_margin_last_quarter": sum(r["rewards/margins"] for r in tail) / len(tail),
                   "reward_accuracy_last_quarter": sum(r["rewards/accuracies"] for r in tail) / len(tail),
                   "logps_chosen_change": log[-1]["logps/chosen"] - log[0]["logps/chosen"],
                   "logps_rejected_change": log[-1]["logps/rejected"] - log[0]["logps/rejected"],
                   **drift(pol, base_ll, held), "train_seconds": s.get("seconds"),
                   "seconds": round(time.time() - t1, 1)}
            del pol
            results.append(rec)
            print(json.dumps(rec), flush=True)
    stem = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / f"dpo_sweep_{name}"
    stem.parent.mkdir(parents=True, exist_ok=True)
    meta = {"model": args.model, "source": SOURCE, "prompts": args.prompts, "heldout_prompts": args.heldout,
            "pairs": n_pairs, "beta": 0.1, "batch_size": 4, "lora_r": 8, "wall_seconds": round(time.time() - t0, 1)}
    stem.with_suffix(".json").write_text(json.dumps({"meta": meta, "runs": results}, indent=1))
    cols = ["lr", "steps", "epochs", "reward_margin_last_quarter", "reward_accuracy_last_quarter",
            "logps_chosen_change", "logps_rejected_change", "logp_drift_per_token", "kl_base_policy_per_answer",
            "seconds"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in results:
        lines.append("| " + " | ".join(f"{r[c]:.4g}" if isinstance(r[c], float) else str(r[c]) for c in cols) + " |")
    print("\n".join(lines))
    print(f"\nwrote {stem}.json ({meta['wall_seconds']} s)")


if __name__ == "__main__":
    main()
