"""Cost of per-row sampling: tokens/s of today's HF engine (every sample its own generator) against the old
batch-seeded engine (one ``torch.manual_seed`` per batch, transformers' multinomial), in one run, interleaved.

The old engine is ``selfalign/engines/hf.py`` as of ``--before`` (a git revision), loaded from git into a temporary
module, so the library keeps one sampling path. Both engines wrap the same loaded model. Every row generates exactly
``--tokens`` tokens (``min_new_tokens``: EOS is masked until then), so both paths run the same number of decode
steps whatever they draw. Also checks, for both, whether a prompt's samples are the same alone and in a batch.

Writes benchmarks/results/sampling_rng.json and the section "Per-row sampling cost" of
benchmarks/results/reliability.md (other sections of that file are kept).

Run: `python benchmarks/speed/bench_sampling_rng.py [--prompts 16] [--n 4] [--tokens 32] [--batch-size 8] [--reps 2]`.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from selfalign.data import load_prompts
from selfalign.engines import GenerationConfig
from selfalign.engines.hf import HFEngine
from selfalign.store.provenance import meta

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: the shared formatter
from selfalign.report.tables import md_table  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "results"
ROOT = Path(__file__).resolve().parents[2]
SECTION = "Per-row sampling cost"


def old_engine_class(rev: str):
    """``HFEngine`` of ``selfalign/engines/hf.py`` at git revision ``rev``."""
    src = subprocess.run(["git", "show", f"{rev}:selfalign/engines/hf.py"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    if "manual_seed" not in src:
        raise SystemExit(f"{rev}: its hf.py does not seed per batch; pass the revision before per-row sampling")
    path = Path(tempfile.mkdtemp()) / "hf_batch_seeded.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("hf_batch_seeded", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.HFEngine


def timed(engine, prompts, cfg, seed=0) -> dict:
    """Wall and CPU seconds of one generate call. With one torch thread the CPU time of this process is what the
    call itself costs, whatever else the shared cores run; wall time moves with their load."""
    t, c = time.perf_counter(), time.process_time()
    out = engine.generate(prompts, cfg, seed=seed)
    dt, dc = time.perf_counter() - t, time.process_time() - c
    tokens = sum(g.n_tokens for gs in out for g in gs)
    return {"seconds": round(dt, 3), "cpu_seconds": round(dc, 3), "new_tokens": tokens,
            "tokens_per_s": round(tokens / dt, 2), "tokens_per_cpu_s": round(tokens / dc, 2)}


def step_cost(rows: int, vocab: int, cfg, reps: int = 200) -> dict:
    """CPU ms of the sampling step alone (one decode step's token choice for ``rows`` rows): RowSampler against
    transformers' warpers + softmax + one multinomial call, on the same random logits."""
    from selfalign.engines.rowsample import RowSampler, warpers

    logits = torch.randn(rows, vocab, generator=torch.Generator().manual_seed(0)) * 3
    ids = torch.zeros((rows, 1), dtype=torch.long)
    per_row = RowSampler(range(rows), cfg.temperature, cfg.top_k, cfg.top_p)
    warp = warpers(cfg.temperature, cfg.top_k, cfg.top_p)
    out = {}
    for name, fn in (("per_row", lambda: per_row(ids, logits)),
                     ("batch_multinomial", lambda: torch.multinomial(torch.softmax(warp(ids, logits), -1), 1))):
        fn()
        c = time.process_time()
        for _ in range(reps):
            fn()
        out[name] = round(1000 * (time.process_time() - c) / reps, 3)
    return out


def batch_independent(engine, prompts, cfg) -> bool:
    alone = [g.text for g in engine.generate(prompts[:1], cfg, seed=0)[0]]
    batched = [g.text for g in engine.generate(prompts, cfg, seed=0)[0]]
    return alone == batched


def runs_table(runs: dict, reps: int) -> list[str]:
    """One row per run of each path, interleaved as they ran."""
    return md_table(["path", "new tokens", "CPU s", "tokens per CPU s", "wall s", "tokens/s (wall)"],
                    [[f"{k} #{i + 1}", r["new_tokens"], r["cpu_seconds"], r["tokens_per_cpu_s"], r["seconds"],
                      r["tokens_per_s"]] for i in range(reps) for k in runs for r in [runs[k][i]]])


def write_section(path: Path, title: str, body: str) -> None:
    """Replace (or add) the ``## title`` section of a Markdown file, keeping the others."""
    text = path.read_text() if path.exists() else "# Reliability\n"
    block = f"## {title}\n\n{body.strip()}\n"
    pat = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = pat.sub(lambda _: block + "\n", text) if pat.search(text) else text.rstrip("\n") + "\n\n" + block
    path.write_text(text.rstrip("\n") + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--before", default="aed1b44", help="git revision of the batch-seeded hf.py")
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--tokens", type=int, default=24)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    load0 = os.getloadavg()[0]

    new = HFEngine.from_spec(args.model, batch_size=args.batch_size, device=args.device)
    old = old_engine_class(args.before)(new.model, new.tok, batch_size=args.batch_size)
    new.model.generation_config.min_new_tokens = args.tokens  # fixed work: every row runs --tokens decode steps
    prompts = [new.chat_prompt(r["question"]) for r in load_prompts("builtin", None, args.prompts)]
    cfg = GenerationConfig(n=args.n, temperature=1.0, top_p=0.9, top_k=10, max_new_tokens=args.tokens)
    timed(new, prompts[:2], cfg), timed(old, prompts[:2], cfg)  # warm-up
    runs = {"per_row": [], "batch_seeded": []}
    for _ in range(args.reps):  # interleaved, so that both see the same machine load
        runs["per_row"].append(timed(new, prompts, cfg))
        runs["batch_seeded"].append(timed(old, prompts, cfg))
    ratios = [a["tokens_per_cpu_s"] / b["tokens_per_cpu_s"] for a, b in zip(runs["per_row"], runs["batch_seeded"])]
    wall = [a["tokens_per_s"] / b["tokens_per_s"] for a, b in zip(runs["per_row"], runs["batch_seeded"])]
    med = statistics.median(ratios)
    step = step_cost(args.batch_size * args.n, len(new.tok), cfg)
    forward_ms = 1000 * statistics.median(r["cpu_seconds"] / (args.tokens * -(-len(prompts) // args.batch_size))
                                          for r in runs["batch_seeded"])
    indep = {"per_row": batch_independent(new, prompts, cfg), "batch_seeded": batch_independent(old, prompts, cfg)}
    res = {"model": args.model, "before": args.before, "device": args.device, "threads": args.threads,
           "prompts": len(prompts), "n": args.n, "tokens": args.tokens, "batch_size": args.batch_size, "runs": runs,
           "ratio_per_row_over_batch_seeded": [round(r, 3) for r in ratios], "median_ratio": round(med, 3),
           "wall_ratio": [round(r, 3) for r in wall],
           "alone_equals_batched": indep, "sampling_step_cpu_ms": step,
           "decode_step_cpu_ms": round(forward_ms, 2), "load_average": [round(load0, 1), round(os.getloadavg()[0], 1)],
           "meta": meta(None, script=Path(__file__).name)}
    OUT.mkdir(exist_ok=True)
    (OUT / "sampling_rng.json").write_text(json.dumps(res, indent=2) + "\n")

    table = "\n".join(runs_table(runs, args.reps))
    body = f"""`benchmarks/speed/bench_sampling_rng.py` ({res['meta']['git_commit']}; {args.model} on {args.device}, torch threads
{args.threads}; load average {res['load_average'][0]} at start, {res['load_average'][1]} at end, 2 shared cores).
{len(prompts)} chat prompts x {args.n} samples x {args.tokens} new tokens (EOS masked until then, so both paths run the
same decode steps), batch size {args.batch_size}, temperature 1, top-p 0.9, top-k 10; the two paths interleaved
{args.reps} times on the same loaded model. "batch-seeded" is `engines/hf.py` at {args.before} (one
`torch.manual_seed` per batch, transformers' multinomial), loaded from git by the benchmark.

{table}

- per-row / batch-seeded tokens per CPU second: median **{med:.3f}** ({', '.join(f'{r:.3f}' for r in ratios)};
  {args.reps} interleaved runs). One torch thread, so a call's CPU time is its own cost; the wall-clock ratios
  ({', '.join(f'{r:.2f}' for r in wall)}) move with the other jobs on the shared cores.
- The sampling step alone, {args.batch_size * args.n} rows x {len(new.tok)} tokens: per-row {step['per_row']} ms,
  warpers + one `multinomial` {step['batch_multinomial']} ms (CPU ms per decode step; a whole decode step of the
  model, sampling included, takes {forward_ms:.1f} ms here).
- A prompt's samples alone equal its samples in a batch of {len(prompts)}: per-row {indep['per_row']}, batch-seeded
  {indep['batch_seeded']}.
- What per-row sampling adds per step: one scalar draw per row from its CPU generator, a cumulative sum over the
  vocabulary and a `searchsorted`, in place of transformers' one `multinomial` call for the batch; both apply the
  same temperature / top-k / top-p warpers, which dominate the step on this CPU (top-p sorts the vocabulary).
"""
    write_section(OUT / "reliability.md", SECTION, body)
    print(json.dumps({k: res[k] for k in ("ratio_per_row_over_batch_seeded", "median_ratio", "wall_ratio",
                                          "alone_equals_batched")}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
