"""DPO settings by measurement: learning rate x steps of `selfalign align` on knowledge-QA Self-Eval pairs.

    python benchmarks/align/dpo_sweep.py [--model smollm2-135m] [--lrs 5e-5 5e-4 2e-3] [--steps 10 30] [--prompts 48]
    python benchmarks/align/dpo_sweep.py --model qwen2.5-coder-0.5b --pairs runs/effect/t1x/qwen/kqa4/pairs-skt.jsonl \
        --accuracy --base-eval runs/effect/t1x/qwen/kqa/eval-base.json --runs 5e-5:40 1e-4:20 1e-4:40:1 2e-4:40

Pipeline (library calls, cached under runs/dpo-sweep/<model>/): sample N answers to bigbench:qa_wikidata training
prompts, score them with the base model's P(True), build `split` pairs; sample base answers to held-out prompts
(the drift set). For every (lr, steps): train a LoRA DPO adapter (`run_align`, beta 0.1, batch 4) and record
  - the reward margin and reward accuracy of the last quarter of the steps (TRL's rewards/margins, /accuracies),
  - on all training pairs after training: the mean change of log pi(chosen) and log pi(rejected) against the base,
    and the DPO reward margin beta * (change of chosen - change of rejected), the fraction of pairs it favours,
  - the drift on held-out prompts: KL(base || policy) estimated by the mean of log pi_base(y|x) - log pi(y|x) over
    pure samples y of the base model (temperature 1, no top-p / top-k, so the estimate is unbiased), with its
    standard error, and the same difference per token.
With ``--pairs`` the runs train on given pairs (e.g. Table 1's Self-Eval-SKT pairs) instead of the sweep's own;
with ``--accuracy`` every run is also evaluated on the held-out knowledge-QA prompts (greedy answers against the gold
targets, ``eval knowledge-qa``), paired against the base model's answers (``--base-eval``, or evaluated here).
A run is ``LR:STEPS[:SEED][@DIR]`` (``@DIR``: an align run made elsewhere with the same settings, reused as it is).
Writes benchmarks/results/dpo_sweep_<model>.{json,md}. Resumable: each run is its own align dir, its measures are
kept in ``sweep_record.json`` beside it, and the evaluation rows resume.
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
from selfalign.report.tables import diff, fmt, md_table  # noqa: E402

SOURCE = "bigbench:qa_wikidata"


def prepare(model: str, work: Path, n_prompts: int, n_heldout: int, device: str, dtype: str,
            pairs: str | None = None) -> tuple[Path, Path]:
    """(pairs file, held-out base samples file), built once (the pairs only when none are given)."""
    common = dict(model=model, device=device, dtype=dtype, chat_template="off", stop=["\n"], max_new_tokens=12, seed=0)
    if not pairs:
        run_sample(SampleConfig(input=SOURCE, split="train", limit=n_prompts, n=4,
                                output=str(work / "samples.jsonl"), **common))
        run_score(ScoreConfig(input=str(work / "samples.jsonl"), output=str(work / "scores.jsonl"), model=model,
                              device=device, dtype=dtype))
        run_pairs(PairsConfig(input=str(work / "scores.jsonl"), output=str(work / "pairs.jsonl")))
    pure = dict(common, temperature=1.0, top_p=1.0, top_k=0)  # ancestral samples: an unbiased KL estimate
    run_sample(SampleConfig(input=SOURCE, split="heldout", limit=n_heldout, n=4, output=str(work / "drift-pure.jsonl"),
                            **pure))
    return Path(pairs) if pairs else work / "pairs.jsonl", work / "drift-pure.jsonl"


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


def run_spec(spec: str) -> tuple[float, int, int, str]:
    """``LR:STEPS[:SEED][@DIR]`` -> (lr, steps, seed, DIR or ""); argparse's type for ``--runs`` (a bad value is its
    one-line usage error, exit 2)."""
    text, _, where = spec.partition("@")
    parts = text.split(":")
    try:
        if not 2 <= len(parts) <= 3:
            raise ValueError
        lr, steps, seed = float(parts[0]), int(parts[1]), int(parts[2]) if len(parts) == 3 else 0
        if not (lr > 0 and steps > 0 and seed >= 0):
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(f"{spec!r}: want LR:STEPS[:SEED][@DIR], LR > 0, STEPS > 0, SEED >= 0, "
                                         "e.g. 1e-4:40:1") from None
    return lr, steps, seed, where


def parse_run(spec: tuple[float, int, int, str], work: Path) -> tuple[float, int, int, Path]:
    """``run_spec``'s tuple -> (lr, steps, seed, align dir: DIR, or the grid's folder under ``work``)."""
    lr, steps, seed, where = spec
    return lr, steps, seed, Path(where) if where else work / f"lr{lr:g}_steps{steps}" / f"seed{seed}"


def accuracy(args, model: str, out: Path, base_rows: list | None) -> dict:
    """Held-out knowledge-QA accuracy, abstention and length of ``model``, paired against the base's rows."""
    from selfalign.evals.knowledge_qa import KnowledgeQAConfig, run_knowledge_qa
    from selfalign.evals.results import compare, load_result

    run_knowledge_qa(KnowledgeQAConfig(model=model, dtype=args.dtype, device=args.device, split="heldout",
                                       limit=args.accuracy_limit, selfeval=False, output=str(out)))
    summary, rows = load_result(out)
    rec = {f"heldout_{m}": summary["metrics"][m] for m in ("accuracy", "abstain", "length")}
    if base_rows is not None:
        for m in ("accuracy", "length"):
            rec[f"delta_{m}"] = compare(rows, base_rows, m, n_boot=1000, seed=0)
    return rec


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--lrs", type=float, nargs="+", default=[5e-5, 5e-4, 2e-3])
    ap.add_argument("--steps", type=int, nargs="+", default=[10, 30])
    ap.add_argument("--runs", nargs="+", default=None, type=run_spec, metavar="LR:STEPS[:SEED][@DIR]",
                    help="explicit runs instead of the grid --lrs x --steps, e.g. 5e-5:10 5e-4:30:1")
    ap.add_argument("--prompts", type=int, default=48, help="training prompts (4 samples each)")
    ap.add_argument("--pairs", help="train on these pairs (prompt, chosen, rejected) instead of building the sweep's own")
    ap.add_argument("--heldout", type=int, default=24, help="held-out prompts of the drift set (4 samples each)")
    ap.add_argument("--accuracy", action="store_true", help="evaluate every run's held-out knowledge-QA accuracy")
    ap.add_argument("--accuracy-limit", type=int, default=None, help="the first N held-out prompts (default: all)")
    ap.add_argument("--base-eval", help="the base model's `eval knowledge-qa` result on the same prompts "
                                        "(default with --accuracy: evaluated here)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--work", default=None, help="run directory (default runs/dpo-sweep/<model>)")
    ap.add_argument("--out", default=None, help="results stem (default benchmarks/results/dpo_sweep_<model>)")
    ap.add_argument("--table", metavar="JSON", help="print the table of a finished sweep's results file and stop")
    args = ap.parse_args(argv)
    if args.table:
        try:
            runs = json.loads(Path(args.table).read_text())["runs"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            ap.error(f"--table {args.table}: not a sweep results file ({type(e).__name__}: {e})")
        return print("\n".join(table(runs)))
    hf_logging.disable_progress_bar()
    name = Path(args.model).name
    work = Path(args.work) if args.work else ROOT / "runs" / "dpo-sweep" / name
    t0 = time.time()
    pairs_file, drift_file = prepare(args.model, work, args.prompts, args.heldout, args.device, args.dtype, args.pairs)
    rows = [json.loads(ln) for ln in drift_file.read_text().splitlines() if ln.strip()]
    held = [(r["prompt"], r["response"]) for r in rows if r["response"].strip()]
    prs = [json.loads(ln) for ln in pairs_file.read_text().splitlines() if ln.strip()]
    # the drift measures need text to score: a pair with an empty answer (the model ended at once) trains, unmeasured
    measured = [p for p in prs if p["chosen"].strip() and p["rejected"].strip()]
    chosen, rejected = [(p["prompt"], p["chosen"]) for p in measured], [(p["prompt"], p["rejected"]) for p in measured]
    base_rows = None
    if args.accuracy:
        from selfalign.evals.results import load_result

        base_eval = Path(args.base_eval) if args.base_eval else work / "kqa-base.json"
        if not args.base_eval:
            accuracy(args, args.model, base_eval, None)
        base_rows = load_result(base_eval)[1]
    grid = ([parse_run(r, work) for r in args.runs] if args.runs else
            [(lr, steps, 0, work / f"lr{lr:g}_steps{steps}" / "seed0") for lr in args.lrs for steps in args.steps])
    cache = work / "base_loglik.json"  # the base model's log-likelihoods, computed once
    key = {"pairs": str(pairs_file), "n_pairs": len(prs), "drift": len(held), "dtype": args.dtype}
    try:
        cached = json.loads(cache.read_text())
        assert cached["key"] == key
        base_ll, base_c, base_r = cached["held"], cached["chosen"], cached["rejected"]
    except (OSError, ValueError, AssertionError, KeyError):
        base = make_engine("hf", model=args.model, device=args.device, dtype=args.dtype, batch_size=16)
        base_ll, base_c, base_r = base.loglikelihood(held), base.loglikelihood(chosen), base.loglikelihood(rejected)
        del base
        cache.write_text(json.dumps({"key": key, "held": base_ll, "chosen": base_c, "rejected": base_r}))
    results = []
    for lr, steps, seed, out in grid:
        record = out / "sweep_record.json"
        cfg = AlignConfig(model=args.model, pairs=str(pairs_file), output=str(out), beta=0.1, learning_rate=lr,
                          max_steps=steps, batch_size=4, device=args.device, dtype=args.dtype, seed=seed)
        rec = json.loads(record.read_text()) if record.exists() else None
        made = {"pairs_file": str(pairs_file), "pairs": len(prs), "base_eval": str(args.base_eval)}
        stale = rec is not None and rec.get("made_with", made) != made  # other pairs or base: measure afresh
        if rec is None or stale or (args.accuracy and not rec.get("accuracy_measured")):
            t_run = time.time()
            run_align(cfg)
            log = [json.loads(ln) for ln in (out / "train_log.jsonl").read_text().splitlines() if ln.strip()]
            tail = log[-max(1, len(log) // 4):]  # the last quarter of the steps
            pol = make_engine("hf", model=str(out), device=args.device, dtype=args.dtype, batch_size=16)
            rec = {"lr": lr, "steps": steps, "seed": seed, "pairs": len(prs), "pairs_measured": len(measured), "epochs": round(steps * 4 / len(prs), 2),
                   "reward_margin_last_quarter": sum(r["rewards/margins"] for r in tail) / len(tail),
                   "reward_accuracy_last_quarter": sum(r["rewards/accuracies"] for r in tail) / len(tail),
                   **pair_drift(pol, base_c, base_r, chosen, rejected, 0.1), **drift(pol, base_ll, held),
                   "train_seconds": json.loads((out / "train_summary.json").read_text()).get("seconds")}
            del pol
            if args.accuracy:
                rec.update(accuracy(args, str(out), out / "kqa-heldout.json", base_rows), accuracy_measured=True)
            rec["sweep_seconds"], rec["made_with"] = round(time.time() - t_run, 1), made
            record.write_text(json.dumps(rec, indent=1))
        results.append(rec)
        print(json.dumps({k: v for k, v in rec.items() if not isinstance(v, dict)}), flush=True)
    stem = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / f"dpo_sweep_{name}"
    stem.parent.mkdir(parents=True, exist_ok=True)
    meta = {"model": args.model, "source": SOURCE, "prompts": None if args.pairs else args.prompts,
            "pairs_file": str(pairs_file), "heldout_prompts": args.heldout, "pairs": len(prs),
            "drift_answers": len(held), "beta": 0.1, "batch_size": 4, "lora_r": 8, "dtype": args.dtype,
            "base_eval": str(args.base_eval) if args.base_eval else None, "wall_seconds": round(time.time() - t0, 1)}
    stem.with_suffix(".json").write_text(json.dumps({"meta": meta, "runs": results}, indent=1))
    print("\n".join(table(results)))
    print(f"\nwrote {stem}.json ({meta['wall_seconds']} s)")


def table(results: list[dict]) -> list[str]:
    """The sweep as a markdown table (the accuracy columns when the runs have them)."""
    names = {"lr": "lr", "steps": "steps", "seed": "seed", "epochs": "epochs",
             "reward_margin_last_quarter": "TRL margin, last quarter", "train_reward_margin": "margin, all pairs",
             "train_reward_accuracy": "pairs favoured", "train_chosen_change": "Δ log p chosen",
             "train_rejected_change": "Δ log p rejected", "kl_base_policy": "KL(base‖policy)", "kl_se": "± s.e.",
             "train_seconds": "train s"}
    cols = list(names)
    body = [[f"{r[c]:.3g}" if isinstance(r[c], float) else str(r[c]) for c in cols] for r in results]
    head = list(names.values())
    if all("heldout_accuracy" in r for r in results):
        head += ["held-out accuracy", "Δ accuracy", "Δ length (words)"]
        for line, r in zip(body, results):
            line += [fmt(r["heldout_accuracy"]), diff(r["delta_accuracy"]), diff(r["delta_length"], 2)]
    return md_table(head, body)


if __name__ == "__main__":
    main()
