"""Table 2, the paper's way at laptop scale: SK-Tuning on qa_wikidata knowledge, a learning curve, three held-out sets.

    python benchmarks/effect/skt_study.py [--models M ...] [--sizes 1000 3000 10000] [--seeds 0 1 2]
        [--only data|base|curve|seeds] [--sets a b c a-paper]   # one phase / some evaluation sets only

Data (one set for every model and seed): ``sk-data --mode options`` on BIG-bench qa_wikidata (10,269 Wikidata
prompts), each question's gold answer against a distractor (another question's gold answer for the same relation),
questions split by hash: 80 % training, 20 % held out. Training subsets of 1k / 3k / 10k rows (whole questions, a
fixed shuffle; each smaller subset is inside the larger). The held-out questions are cut into a validation set (150
questions: sk-tune keeps its best checkpoint there) and set (a), 500 questions never seen in training.

Evaluation (``calibrate --no-direct``, 0-shot P(True) as every reader computes it):
  (a) 500 held-out qa_wikidata questions (gold vs distractor);
  (b) four whole BIG-bench tasks never trained on: general_knowledge, human_organs_senses, known_unknowns,
      misconceptions (all their options);
  (c) the first 300 TruthfulQA MC test questions (mc2 options);
  (a-paper) set (a) with the paper's Self-Eval prompt (instruction header + 5 demos) instead of 0-shot.
Steps run in priority order (base, then the learning curve on seed 0, then more seeds) through the resumable step
ledger of ``common.py``: rerun the command to continue; finished steps are skipped. Runs go to runs/effect/skt/.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RUN, selfalign, short, step  # noqa: E402

SKT = RUN / "skt"
DATA = SKT / "data"
HELDOUT_TASKS = ["general_knowledge", "human_organs_senses", "known_unknowns", "misconceptions"]
TQA_LIMIT = 300
N_VALID, N_TEST = 150, 500
SK = {"top_layers": 8, "epochs": 2, "learning_rate": 3e-4, "batch_size": 16, "lora_r": 8, "beta": 0.1,
      "batch_by": "question", "warmup_ratio": 0.1, "patience": 4, "train_eval_rows": 256}
DTYPE = "float32"  # one thread on this CPU: float32 matmuls ran 1.5x faster than bfloat16 (measured 2026-12-01)


def sets() -> dict:
    """Set name -> (calibrate --data, extra flags)."""
    out = {"a": (f"sk:{DATA / 'test.jsonl'}", [])}
    out.update({f"b-{t}": (f"bigbench:{t}", []) for t in HELDOUT_TASKS})
    out["c"] = ("truthfulqa-mc", ["--split", "test", "--limit", str(TQA_LIMIT)])
    out["a-paper"] = (f"sk:{DATA / 'test.jsonl'}", ["--selfeval-prompt", "paper"])  # the paper's header + 5 demos
    return out


def make_data(sizes: list[int]) -> None:
    full = DATA / "wd.jsonl"
    step("skt/sk-data", selfalign("sk-data", "--sources", "bigbench:qa_wikidata", "--mode", "options",
                                  "--heldout-fraction", 0.2, "--seed", 0, "--output", full))
    from selfalign.store.io import read_jsonl, write_jsonl_atomic

    rows = read_jsonl(full)
    qs = sorted({r["id"] for r in rows})
    random.Random(0).shuffle(qs)
    for n in sizes:
        path = DATA / f"train{n}.jsonl"
        if not path.exists():
            keep = set(qs[:n // 2])  # two rows (gold, distractor) per question
            write_jsonl_atomic(path, [r for r in rows if r["id"] in keep])
    held = read_jsonl(full.with_name("wd.heldout.jsonl"))
    hq = sorted({r["id"] for r in held})
    random.Random(1).shuffle(hq)
    for name, ids in (("valid", set(hq[:N_VALID])), ("test", set(hq[N_VALID:N_VALID + N_TEST]))):
        if not (DATA / f"{name}.jsonl").exists():
            write_jsonl_atomic(DATA / f"{name}.jsonl", [r for r in held if r["id"] in ids])


def calibrate(model: str, spec: str, label: str, only: list[str] | None = None) -> None:
    from selfalign.evals.calibrate import output_paths

    trained = [Path(spec) / "train_summary.json"] if label != "base" else []
    for name, (data, extra) in sets().items():
        if only and not any(name == o or (o == "b" and name.startswith("b-")) for o in only):
            continue
        out = SKT / short(model) / label / f"{name}.json"
        items, png = output_paths(out)
        step(f"skt/{short(model)}/{label}/calibrate-{name}",
             selfalign("calibrate", "--model", spec, "--dtype", DTYPE, "--data", data, *extra, "--no-direct",
                       "--n-boot", 1000, "--seed", 0, "--batch-size", 16, "--output", out),
             deps=[*trained, *([data[3:]] if data.startswith("sk:") else [])],
             outputs=[out, items, Path(f"{items}.meta.json"), png])


def sk_tune(model: str, n: int, seed: int) -> str:
    out = SKT / short(model) / f"n{n}-seed{seed}" / "model"
    flags = [x for k, v in SK.items() for x in (f"--{k.replace('_', '-')}", v)]
    train = DATA / f"train{n}.jsonl"
    step(f"skt/{short(model)}/n{n}-seed{seed}/sk-tune",
         selfalign("sk-tune", "--model", model, "--dtype", DTYPE, "--data", train, "--valid-data",
                   DATA / "valid.jsonl", *flags, "--eval-every", max(1, n // SK["batch_size"] // 4), "--seed", seed,
                   "--output", out),
         deps=[train, DATA / "valid.jsonl"], outputs=[out])
    return str(out)


def record_invocation(args) -> None:
    """Append this call to plan.json's ``invocations`` (every phase run so far, in order; a list, not the last call).
    Calls started side by side (one per core) wait for each other's read-modify-write (``flock``): none is lost."""
    import fcntl

    from selfalign.store.io import write_json

    path = SKT / "plan.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name("plan.json.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        plan = json.loads(path.read_text()) if path.exists() else {}
        calls = plan.get("invocations", [])
        calls.append({**vars(args), "at": time.strftime("%Y-%m-%dT%H:%M:%S")})
        write_json(path, {"sk": SK, "dtype": DTYPE, "sets": sets(), "invocations": calls})


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["qwen2.5-coder-0.5b", "smollm2-135m"])
    ap.add_argument("--sizes", nargs="+", type=int, default=[1000, 3000, 10000])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--only", choices=("data", "base", "curve", "seeds"), help="run one phase only")
    ap.add_argument("--sets", nargs="+", choices=("a", "b", "c", "a-paper"),
                    help="evaluate these sets only (default: all); (b) is its four tasks")
    args = ap.parse_args(argv)
    make_data(args.sizes)
    record_invocation(args)
    for model in args.models:
        if args.only in (None, "base"):
            calibrate(model, model, "base", args.sets)
        if args.only in (None, "curve"):
            for n in args.sizes:
                calibrate(model, sk_tune(model, n, args.seeds[0]), f"n{n}-seed{args.seeds[0]}", args.sets)
        if args.only in (None, "seeds"):
            for seed in args.seeds[1:]:
                calibrate(model, sk_tune(model, args.sizes[-1], seed), f"n{args.sizes[-1]}-seed{seed}", args.sets)


if __name__ == "__main__":
    main()
