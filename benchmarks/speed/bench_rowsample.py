"""Per-row sampling with top-k: the top-k fast path of ``engines/rowsample.py`` against the full-vocabulary path, in
one run, interleaved, on the same loaded model and prompts; checks that both draw exactly the same answers.

The workload is the paper's SK data at scale (``sk-data --mode samples``): qa_wikidata statements after 3 training
demonstrations, ``--n`` samples per prompt at T=1, top-k 10, top-p 0.9, cut at the end of the line. Writes
benchmarks/results/rowsample.{json,md}.

Run: `python benchmarks/speed/bench_rowsample.py [--model qwen2.5-coder-0.5b] [--prompts 8] [--n 30] [--reps 2]`.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import sys
import time
from pathlib import Path

import torch

import selfalign.engines.hf as hf
from selfalign.data.mc import load_bigbench
from selfalign.data.splits import fewshot_prompt, pick_demos
from selfalign.engines import GenerationConfig
from selfalign.engines.rowsample import RowSampler
from selfalign.store.provenance import meta

OUT = Path(__file__).resolve().parents[1] / "results"
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: the shared formatter
from selfalign.report.tables import md_table  # noqa: E402


def prompts(k: int) -> list[str]:
    qs = load_bigbench("qa_wikidata")
    return [fewshot_prompt(q, pick_demos(q, qs[k:], 3, 0)) for q in qs[:k]]


def run(engine, texts, cfg, fast: bool) -> tuple[float, list]:
    hf.RowSampler = RowSampler if fast else functools.partial(RowSampler, fast=False)
    t0 = time.perf_counter()
    out = engine.generate(texts, cfg, seed=0)
    return time.perf_counter() - t0, [[(g.text, g.n_tokens) for g in x] for x in out]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--reps", type=int, default=2)
    args = ap.parse_args(argv)
    engine = hf.HFEngine.from_spec(args.model, dtype=args.dtype, batch_size=args.batch_size)
    cfg = GenerationConfig(n=args.n, temperature=1.0, top_p=0.9, top_k=10, max_new_tokens=12, stop=("\n",))
    texts = prompts(args.prompts)
    runs = {"full": [], "fast": []}
    answers = {}
    for _ in range(args.reps):
        for name in ("full", "fast"):
            s, answers[name] = run(engine, texts, cfg, name == "fast")
            runs[name].append(s)
            print(f"{name}: {s:.1f} s", flush=True)
    rows = args.prompts * args.n
    best = {k: min(v) for k, v in runs.items()}
    res = {**vars(args), "threads": torch.get_num_threads(), "rows": rows, "seconds": runs,
           "rows_per_s": {k: round(rows / v, 2) for k, v in best.items()},
           "ratio_fast_over_full": round(best["full"] / best["fast"], 2),
           "identical_answers": answers["full"] == answers["fast"],
           "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
           "load_average": os.getloadavg()[0], "provenance": meta()}
    OUT.mkdir(exist_ok=True)
    (OUT / "rowsample.json").write_text(json.dumps(res, indent=2, default=str) + "\n")
    (OUT / "rowsample.md").write_text(
        "# Per-row sampling: the top-k fast path\n\n"
        f"Made by `python benchmarks/speed/bench_rowsample.py` ({args.model}, {args.dtype}, {res['threads']} threads, "
        f"load average {res['load_average']:.1f}): {args.prompts} qa_wikidata few-shot prompts x {args.n} samples, "
        "T=1, top-k 10, top-p 0.9, <= 12 tokens, cut at the line end; best of "
        f"{args.reps} interleaved runs.\n\n"
        + "\n".join(md_table(["path", "seconds", "rows/s"],
                             [["full vocabulary (top-k, top-p, softmax, cumsum over all tokens)", f"{best['full']:.1f}",
                               res["rows_per_s"]["full"]],
                              ["top-k candidates only", f"{best['fast']:.1f}", res["rows_per_s"]["fast"]]])) + "\n\n"
        f"Ratio: **{res['ratio_fast_over_full']}x**; answers identical: {res['identical_answers']}.\n")
    print(json.dumps({k: res[k] for k in ("rows_per_s", "ratio_fast_over_full", "identical_answers")}))


if __name__ == "__main__":
    main()
