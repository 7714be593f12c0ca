"""Sampling tokens/s and P(True) scoring pairs/s on the embedded model, batched vs one at a time.

Run: `make bench` (or `python benchmarks/speed/bench_foundation.py`). Writes benchmarks/results/foundation.json and .md.
"""
from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

import torch

from selfalign.data import load_prompts
from selfalign.engines import GenerationConfig
from selfalign.engines.hf import HFEngine
from selfalign.store.provenance import meta
from selfalign.selfeval.ptrue import p_true

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: the shared formatter
from selfalign.report.tables import md_table  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "results"


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(n_prompts: int = 16, n_pairs: int = 96):
    engine = HFEngine.from_spec("smollm2-135m", device="cpu")
    rows = load_prompts("builtin")
    prompts = [engine.chat_prompt(r["question"]) for r in rows[:n_prompts]]
    pairs = [(r["question"], a) for r in rows for a in (r["correct_answers"][0], r["incorrect_answers"][0])][:n_pairs]
    gen = GenerationConfig(n=4, temperature=1.0, top_p=0.9, top_k=10, max_new_tokens=32)
    results = {"sampling": [], "scoring": [], "threads": torch.get_num_threads(), "peak_rss_mib_after_load": peak_mib()}
    for bs in (1, 4, 8):  # batch 1 = the naive one-prompt-at-a-time loop
        engine.batch_size = bs
        t = time.perf_counter()
        outs = engine.generate(prompts, gen, seed=0)
        dt = time.perf_counter() - t
        toks = sum(g.n_tokens for o in outs for g in o)
        results["sampling"].append({"batch_prompts": bs, "sequences_per_batch": bs * gen.n, "tokens": toks,
                                    "seconds": round(dt, 2), "tokens_per_s": round(toks / dt, 1)})
        print(results["sampling"][-1], flush=True)
    for bs in (1, 8, 16, 32):
        engine.batch_size = bs
        t = time.perf_counter()
        p_true(engine, pairs)
        dt = time.perf_counter() - t
        results["scoring"].append({"batch": bs, "pairs": len(pairs), "seconds": round(dt, 2),
                                   "pairs_per_s": round(len(pairs) / dt, 2)})
        print(results["scoring"][-1], flush=True)
    results["peak_rss_mib"] = round(peak_mib(), 1)
    s0, c0 = results["sampling"][0]["tokens_per_s"], results["scoring"][0]["pairs_per_s"]
    results["best_sampling_speedup_vs_naive"] = round(max(r["tokens_per_s"] for r in results["sampling"]) / s0, 2)
    results["best_scoring_speedup_vs_naive"] = round(max(r["pairs_per_s"] for r in results["scoring"]) / c0, 2)
    results["meta"] = meta({"n_prompts": n_prompts, "n_pairs": n_pairs, "generation": gen.params(), "n": gen.n},
                           model_info=engine.info)
    OUT.mkdir(exist_ok=True)
    (OUT / "foundation.json").write_text(json.dumps(results, indent=2) + "\n")
    md = render(results)
    (OUT / "foundation.md").write_text(md)
    print(md, end="")


def render(results: dict) -> str:
    """benchmarks/results/foundation.md from the results (foundation.json)."""
    return "\n".join([
        "# Foundation benchmark (embedded SmolLM2-135M, CPU)", "",
        f"threads={results['threads']}, peak RSS {results['peak_rss_mib']} MiB, commit {results['meta']['git_commit']}", "",
        *md_table(["sampling: prompts/batch (x4 samples)", "tokens", "s", "tokens/s"],
                  [[f"{r['batch_prompts']}{' (one prompt per call)' if r['batch_prompts'] == 1 else ''}", r["tokens"],
                    r["seconds"], r["tokens_per_s"]] for r in results["sampling"]]), "",
        *md_table(["P(True) scoring: batch", "pairs", "s", "pairs/s"],
                  [[f"{r['batch']}{' (naive)' if r['batch'] == 1 else ''}", r["pairs"], r["seconds"], r["pairs_per_s"]]
                   for r in results["scoring"]])]) + "\n"


if __name__ == "__main__":
    main(*map(int, sys.argv[1:]))
