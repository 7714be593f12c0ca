"""Table 2 steps: SK-Tuning data, then per model P(True) calibration before and after SK-Tuning (several seeds).

    python benchmarks/effect/table2.py [--models M ...] [--seeds S ...]     (EFFECT_SMOKE=1: tiny sizes)

Writes under RUN/t2/: data/sk*.jsonl (one data set for every model and seed; sk.jsonl is split by question into
train.jsonl and valid.jsonl, the checkpoint choice), <model>/base/{a,b,c}.json and <model>/seed<S>/{model/, a.json,
b.json, c.json} (calibrate reports; per-option rows in *.items.jsonl).
"""
from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import HELDOUT_TASKS, SIZES, T2, eval_sets, selfalign, short, sk_data_path, step  # noqa: E402


def sk_data() -> None:
    step("t2/sk-data", selfalign("sk-data", "--sources", *SIZES["sources"], "--heldout-tasks", *HELDOUT_TASKS,
                                 "--max-per-task", SIZES["max_per_task"], "--heldout-fraction",
                                 SIZES["heldout_fraction"], "--mode", "options", "--shots", 0, "--seed", 0,
                                 "--output", sk_data_path()))
    split_train_valid()


def split_train_valid() -> None:
    """sk.jsonl -> train.jsonl + valid.jsonl: every question whose hash falls in the validation share, with all its
    rows (the held-out sets (a) and (b) stay untouched: they are other files)."""
    from selfalign.io import read_jsonl, write_jsonl_atomic

    rows = read_jsonl(sk_data_path())
    valid = [is_valid(r["task"], r["id"]) for r in rows]
    write_jsonl_atomic(train_path(), [r for r, v in zip(rows, valid) if not v])
    write_jsonl_atomic(train_path("valid"), [r for r, v in zip(rows, valid) if v])


def is_valid(task: str, qid) -> bool:
    h = hashlib.sha256(f"valid/{task}/{qid}".encode()).hexdigest()
    return int(h[:8], 16) / 16 ** 8 < SIZES["valid_fraction"]


def train_path(part: str = "train") -> Path:
    return sk_data_path().with_name(f"{part}.jsonl")


def calibrate(model: str, spec: str, label: str) -> None:
    """Calibrate on the three sets; redone when the set's file or the SK-tuned model changed."""
    from selfalign.evals.calibrate import output_paths

    trained = [Path(spec) / "train_summary.json"] if label != "base" else []
    for name, (data, extra, _) in eval_sets().items():
        out = T2 / short(model) / label / f"{name}.json"
        items, png = output_paths(out)
        step(f"t2/{short(model)}/{label}/calibrate-{name}",
             selfalign("calibrate", "--model", spec, "--dtype", SIZES["dtype"], "--data", data, *extra,
                       "--shots", 0, "--n-boot", SIZES["n_boot"], "--seed", 0, "--output", out),
             deps=[*trained, *([data[3:]] if data.startswith("sk:") else [])],
             outputs=[out, items, Path(f"{items}.meta.json"), png])


def sk_tune(model: str, seed: int) -> str:
    out = T2 / short(model) / f"seed{seed}" / "model"
    flags = [x for k, v in SIZES["sk"].items() for x in (f"--{k.replace('_', '-')}", v)]
    step(f"t2/{short(model)}/seed{seed}/sk-tune",
         selfalign("sk-tune", "--model", model, "--dtype", SIZES["train_dtype"], "--data", train_path(),
                   "--valid-data", train_path("valid"), *flags, "--seed", seed, "--output", out),
         deps=[train_path(), train_path("valid")], outputs=[out])
    return str(out)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=SIZES["models"])
    ap.add_argument("--seeds", nargs="+", type=int, default=SIZES["seeds"])
    args = ap.parse_args(argv)
    sk_data()
    for model in args.models:
        calibrate(model, model, "base")
        for seed in args.seeds:
            calibrate(model, sk_tune(model, seed), f"seed{seed}")


if __name__ == "__main__":
    main()
