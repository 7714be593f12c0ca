"""SK-Tuning speed: training rows per second over a multi-epoch run, whole-model passes against the cached trunk.

    python benchmarks/speed/bench_sktune_speed.py [--model qwen2.5-coder-0.5b] [--rows 128] [--epochs 3] [--top-layers 8]

Every variant is one `selfalign sk-tune` child process on the same rows (0-shot qa_wikidata SK rows from
runs/effect/skt/data, or built here), timed and measured (peak RSS from wait4) in this one run, so the ratios compare
like with like on the same machine state. "plain bfloat16" is the path and dtype the effect study used before
(whole-model forward + backward every epoch). Writes benchmarks/results/sktune_speed.{md,json}.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: the shared formatter
from selfalign.report.tables import md_table  # noqa: E402


def rows_file(n: int) -> Path:
    src = ROOT / "runs/effect/skt/data/train1000.jsonl"
    if not src.exists():
        subprocess.run([sys.executable, str(ROOT / "benchmarks/effect/skt_study.py"), "--only", "data",
                        "--sizes", "1000"], check=True)
    lines = src.read_text().splitlines()[:n]
    path = ROOT / f"runs/bench/sktune_speed_{n}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def run(name: str, argv: list[str]) -> dict:
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "TOKENIZERS_PARALLELISM": "false"}
    t0 = time.time()
    p = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.time() - t0
    err = p.stderr.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{name} failed:\n{err[-2000:]}")
    return {"variant": name, "wall_s": round(wall, 1), "cpu_s": round(ru.ru_utime + ru.ru_stime, 1),
            "peak_rss_mb": round(ru.ru_maxrss / 1024)}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--rows", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--top-layers", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    data = rows_file(args.rows)
    variants = [("plain bfloat16 (before)", "bfloat16", []), ("plain float32", "float32", []),
                (f"top-{args.top_layers} cached trunk float32", "float32", ["--top-layers", str(args.top_layers)]),
                (f"top-{args.top_layers} cached trunk bfloat16", "bfloat16", ["--top-layers", str(args.top_layers)])]
    results = []
    for name, dtype, extra in variants:
        out = ROOT / "runs/bench/sktune_speed" / name.split()[0] / dtype
        subprocess.run(["rm", "-rf", str(out)])
        r = run(name, [sys.executable, "-m", "selfalign.cli", "sk-tune", "--model", args.model, "--data", str(data),
                       "--output", str(out), "--dtype", dtype, "--epochs", str(args.epochs), "--batch-size", "16",
                       "--learning-rate", "3e-4", "--train-eval-rows", "16", "--device", "cpu", *extra])
        s = json.loads((out / "train_summary.json").read_text())
        r.update(train_s=s["seconds"], encode_s=s["encode_seconds"], rows_x_epochs=args.rows * args.epochs,
                 rows_per_s=round(args.rows * args.epochs / r["wall_s"], 2))
        results.append(r)
        print(json.dumps(r), flush=True)
    base = results[0]["rows_per_s"]
    for r in results:
        r["ratio_vs_before"] = round(r["rows_per_s"] / base, 2)
    info = {"model": args.model, "rows": args.rows, "epochs": args.epochs, "threads": args.threads,
            "time": time.strftime("%Y-%m-%d %H:%M"), "results": results}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "sktune_speed.json").write_text(json.dumps(info, indent=1))
    md = render(info)
    (OUT / "sktune_speed.md").write_text(md)
    print(md, end="")


def render(info: dict) -> str:
    """benchmarks/results/sktune_speed.md from the results (sktune_speed.json)."""
    lines = [f"# SK-Tuning speed ({info['model']}, {info['rows']} rows x {info['epochs']} epochs, {info['threads']} "
             "thread)", "",
             "`python benchmarks/speed/bench_sktune_speed.py` — every variant a `selfalign sk-tune` child process in one run; "
             "wall time includes model load, encoding, reference margins and the trunk pass. Rows/s = rows x epochs / "
             "wall time.", ""]
    lines += md_table(["variant", "wall s", "of which encode s", "rows/s", "ratio vs before", "peak RSS MB"],
                      [[r["variant"], r["wall_s"], r["encode_s"], r["rows_per_s"], f"{r['ratio_vs_before']}x",
                        r["peak_rss_mb"]] for r in info["results"]])
    lines += ["", f"Measured {info['time']} on this 2-core machine (other work on the second core)."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
