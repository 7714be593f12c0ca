"""Shared by the effect benchmark scripts: the sizes (full and smoke), the paths, and a step runner.

A step is one ``selfalign`` command run as a child process. Its output goes to ``LOGS/<step>.log``; its wall
time, CPU time, exit code and peak memory (``os.wait4`` rusage of that child: ru_maxrss) are appended to
``RUN/steps.jsonl``. A step recorded as finished with the same command and inputs is skipped; an unfinished one is
simply run again, and the stage resumes its own work (calibrate / sampling rows are appended, recipe stages are
hashed, a finished sk-tune is not redone); one whose command or inputs changed is redone (see ``step``).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
SMOKE = os.environ.get("EFFECT_SMOKE", "") not in ("", "0")

# BIG-bench multiple-choice tasks used for SK-Tuning. Left out: fact_checker and periodic_elements (split into
# subtasks), identify_math_theorems and physics (prompts 2-4x longer than the rest: CPU budget).
BIGBENCH_TRAIN = ["anachronisms", "date_understanding", "emoji_movie", "hindu_knowledge", "known_unknowns",
                  "misconceptions", "movie_recommendation", "physical_intuition", "sports_understanding",
                  "strategyqa"]
HELDOUT_TASKS = ["general_knowledge", "human_organs_senses"]  # kept out of training entirely: set (b)

FULL = {
    "models": ["qwen2.5-coder-0.5b", "smollm2-135m"],
    "dtype": "bfloat16",              # scoring: ~2x faster than float32 on this CPU (avx512_bf16)
    "train_dtype": "bfloat16",        # sk-tune too (1.8x faster than float32 with the LM-head fix in models.load)
    "seeds": [0, 1, 2],
    "sources": [f"bigbench:{t}" for t in BIGBENCH_TRAIN + HELDOUT_TASKS] + ["truthfulqa-mc"],  # TruthfulQA: train split
    "max_per_task": 24,               # questions per task (by hash), before the split
    "heldout_fraction": 0.35,         # of each training task's questions -> set (a)
    "tqa_limit": 25,                  # set (c): the first N questions of the TruthfulQA MC test split
    "valid_fraction": 0.1,            # of training questions; sk-tune keeps the checkpoint with the best AUROC there
    # lr 5e-4 x 1 epoch did not learn (flat loss, P(True) drifted to 0.93); 1e-3 x 4 epochs fits 96 rows (.52 -> .96);
    # 1e-3 x 2 epochs, rows shuffled one by one: the mean P(True) swung 0.44 -> 0.85 -> 0.08 -> 0.88 between
    # validations (the A/B base rate, not the answers, moved); batches by question keep a question's true and false
    # options together so that pull cancels (pilot: swings 0.44 -> 0.50 -> 0.30 -> 0.39; training loss still ~ln 2)
    "sk": {"learning_rate": 1e-3, "batch_size": 8, "epochs": 1, "eval_every": 12, "beta": 0.1, "lora_r": 8,
           "batch_by": "question"},
    "n_boot": 1000,
    "t1_model": "qwen2.5-coder-0.5b",
    "t1_overrides": {},               # Table 1 sizes live in t1_study.py
}
SMOKE_SIZES = {
    **FULL,
    "models": ["smollm2-135m"],
    "seeds": [0, 1],
    "max_per_task": 2,
    "heldout_fraction": 0.5,
    "tqa_limit": 2,
    "sk": {**FULL["sk"], "max_steps": 2, "batch_size": 4, "eval_every": 1},
    "n_boot": 50,
    "t1_model": "smollm2-135m",
    "t1_overrides": {"prompt_limit": 3, "sample": {"n": 2, "max_new_tokens": 8}, "align": {"max_steps": 1},
                     "eval": {"limit": 2, "max_new_tokens": 8}},
}
# Measured on this 2-core machine (2026-11-24, load average 1.5-2, i.e. another worker half-active), qwen2.5-coder-0.5b;
# smollm2-135m costs about the same on CPU (30 thin layers vs 24: per-layer overhead dominates).
# Scoring with an adapter (SK-tuned / aligned models) runs at the base model's rate only with the LM-head fix in
# selfalign/models.py (_contiguous_input); without it, 5-10x slower.
RATES = {
    "process_s": 10,                  # start-up of one command: imports + model load (cached)
    "calibrate_options_per_s": 3.1,   # P(True) + answer log-likelihood per option, bfloat16, 0-shot, BIG-bench prompts
    "sk_ref_s_per_row": 0.1,          # sk-tune reference margins / validation (no grad), bfloat16
    "sk_train_s_per_row": 0.34,       # sk-tune forward + backward, bfloat16 (2.75 s per step of 8)
    "sample_s_per_prompt": 2.0,       # 4 samples x <= 40 tokens, bfloat16 (73 tokens/s)
    "score_rows_per_s": 7.0,          # P(True) of a sample, bfloat16
    "align_s_per_step": 6.0,          # TRL DPO, 4 pairs per step, bfloat16 (4 s with 12-token answers)
    "mc_s_per_question": 0.63,        # truthfulqa-mc, likelihood only, bfloat16
    "gen_s_per_question": 0.85,       # truthfulqa-gen, <= 40 tokens greedy + offline judge, bfloat16
}
SIZES = SMOKE_SIZES if SMOKE else FULL
RUN = ROOT / ("runs/effect-smoke" if SMOKE else "runs/effect")
LOGS = RUN / "logs" if SMOKE else HERE / "logs"  # smoke logs stay in the git-ignored run directory
RESULTS_MD = RUN / "effect.md" if SMOKE else ROOT / "benchmarks/results/effect.md"
STEPS = RUN / "steps.jsonl"
T2 = RUN / "t2"
T1 = RUN / "t1"


def short(model: str) -> str:
    return {"qwen2.5-coder-0.5b": "qwen", "smollm2-135m": "smollm2"}.get(model, Path(model).name)


def sk_data_path() -> Path:
    return T2 / "data" / "sk.jsonl"


def eval_sets() -> dict:
    """Set name -> (calibrate --data, extra flags, description)."""
    d = sk_data_path()
    return {
        "a": (f"sk:{d.with_name('sk.heldout.jsonl')}", [],
              "held-out questions of the training tasks"),
        "b": (f"sk:{d.with_name('sk.heldout_tasks.jsonl')}", [],
              f"held-out BIG-bench tasks ({', '.join(HELDOUT_TASKS)}), never trained on"),
        "c": ("truthfulqa-mc", ["--split", "test", "--limit", str(SIZES["tqa_limit"])],
              f"TruthfulQA MC test split, first {SIZES['tqa_limit']} questions (mc2 options, several may be true)"),
    }


def calibration_result(report: dict) -> dict:
    """A calibrate result in ``evals.results``' shape (``metrics``: auroc, ece, brier, selection_acc, direct_acc,
    direct_acc_norm as {value, ci_low, ci_high, n}; the set's facts beside). Reports written before calibrate moved
    to selfalign/evals (metrics under "ptrue" etc., intervals as low/high) are upgraded; new ones pass through."""
    if "metrics" in report:
        return report
    pt, da = report["ptrue"], report.get("direct_accuracy") or {}

    def m(d: dict | None, n) -> dict:
        d = d or {}
        return {"value": d.get("value"), "ci_low": d.get("low"), "ci_high": d.get("high"),
                "n": n if d.get("value") is not None else 0}

    n_opt, n_q = report.get("n_options"), report.get("n_choice_questions")
    rest = {k: v for k, v in report.items() if k not in ("ptrue", "selection_accuracy", "direct_accuracy")}
    return {"task": "calibrate", "set": report.get("data"), **rest,
            "metrics": {"auroc": m(pt["auroc"], n_opt), "ece": m(pt["ece"], n_opt), "brier": m(pt["brier"], n_opt),
                        "selection_acc": m(report.get("selection_accuracy"), n_q),
                        "direct_acc": m(da.get("sum"), n_q), "direct_acc_norm": m(da.get("length_normalised"), n_q)},
            **{k: pt.get(k) for k in ("mean_p_true", "mean_mass", "min_mass")}}


def selfalign(*args) -> list[str]:
    return [sys.executable, "-m", "selfalign.cli", *map(str, args)]


# --- the step ledger ------------------------------------------------------------------------------------------
def ledger() -> dict[str, list[dict]]:
    """Step name -> its records, oldest first."""
    out: dict[str, list[dict]] = {}
    if STEPS.exists():
        for line in STEPS.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                out.setdefault(r["step"], []).append(r)
    return out


def fingerprint(argv: list[str], deps=()) -> str:
    """A hash of the command and of the contents of the files it reads (missing files hash as absent)."""
    h = hashlib.sha256(json.dumps([str(a) for a in argv]).encode())
    for d in deps:
        d = Path(d)
        h.update(str(d).encode() + (d.read_bytes() if d.is_file() else b"<absent>"))
    return h.hexdigest()[:16]


def current(records: list[dict]) -> list[dict]:
    """The records of a step made with its latest fingerprint (earlier settings left out)."""
    return [r for r in records if r.get("fingerprint") == records[-1].get("fingerprint")] if records else []


def _newer(deps, record: dict) -> bool:
    """Whether an input file was written after the step's record (for records made before fingerprints)."""
    end = time.mktime(time.strptime(record["ended"], "%Y-%m-%dT%H:%M:%S"))
    return any(Path(d).is_file() and Path(d).stat().st_mtime > end for d in deps)


def step(name: str, argv: list[str], deps=(), outputs=(), redo_flags=(), env: dict | None = None) -> dict:
    """Run ``argv`` unless it finished before with the same fingerprint (command + contents of ``deps``).

    When an earlier finished run had another fingerprint (changed settings or inputs), ``outputs`` are moved
    aside to ``<path>.old-<fingerprint>`` and ``redo_flags`` are added (e.g. ``--from sample`` for a recipe), so
    nothing stale is reused. Raises SystemExit on failure.
    """
    fp = fingerprint(argv, deps)
    finished = [r for r in ledger().get(name, []) if r["finished"]]
    legacy = finished and "fingerprint" not in finished[-1]  # a record from before fingerprints
    if legacy and finished[-1]["argv"] == argv and not _newer(deps, finished[-1]):
        finished[-1]["fingerprint"] = fp  # the same command, and no input written since: done
    if finished and finished[-1].get("fingerprint") == fp:
        print(f"[skip] {name} (finished earlier in {finished[-1]['wall_s']:.0f} s)", flush=True)
        return finished[-1]
    if finished:
        old = finished[-1].get("fingerprint", "unknown")
        print(f"[redo] {name}: its settings or inputs changed since it finished", flush=True)
        for o in map(Path, outputs):
            if o.exists():
                dest = o.with_name(f"{o.name}.old-{old}")
                shutil.rmtree(dest, ignore_errors=True) if dest.is_dir() else dest.unlink(missing_ok=True)
                o.rename(dest)
        argv = [*argv, *redo_flags]
    LOGS.mkdir(parents=True, exist_ok=True)
    STEPS.parent.mkdir(parents=True, exist_ok=True)
    log = LOGS / f"{name.replace('/', '__')}.log"
    print(f"[run ] {name} -> {log.relative_to(ROOT) if log.is_relative_to(ROOT) else log}", flush=True)
    t0 = time.time()
    with open(log, "a", encoding="utf-8") as f:
        f.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(argv)}\n")
        f.flush()
        # OMP_WAIT_POLICY=PASSIVE: idle OpenMP threads sleep instead of spinning; with other processes on the
        # same 2 cores this made scoring and training 3x faster (measured), and it costs little when alone
        e = {"OMP_WAIT_POLICY": "PASSIVE", **os.environ, "TOKENIZERS_PARALLELISM": "false",
             "TRANSFORMERS_VERBOSITY": "error", "TQDM_MININTERVAL": "30", **(env or {})}
        p = subprocess.Popen(argv, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT, env=e)
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = rc = os.waitstatus_to_exitcode(status)
    rec = {"step": name, "argv": argv, "fingerprint": fp, "rc": rc, "finished": rc == 0,
           "wall_s": round(time.time() - t0, 1), "user_s": round(ru.ru_utime, 1), "sys_s": round(ru.ru_stime, 1),
           "maxrss_mb": round(ru.ru_maxrss / 1024, 1), "ended": time.strftime("%Y-%m-%dT%H:%M:%S")}
    with open(STEPS, "a", encoding="utf-8") as f:
        f.write(json.dumps(rec) + "\n")
    print(f"       {'ok' if rc == 0 else f'FAILED rc={rc}'} in {rec['wall_s']:.0f} s, peak {rec['maxrss_mb']:.0f} MB",
          flush=True)
    if rc != 0:
        tail = log.read_text(errors="replace").splitlines()[-15:]
        raise SystemExit(f"step {name} failed (rc {rc}); see {log}:\n" + "\n".join(tail))
    return rec


TRAIN_KEYS = ("rows", "steps", "planned_steps", "stopped_early", "best_step", "best_valid_auroc", "seconds",
              "encode_seconds")


def whole_questions(rows: list[dict], n: int, seed: int = 0) -> list[dict]:
    """SK rows of whole questions: the question ids in one fixed shuffle (``seed``), taken until at least ``n`` rows;
    the rows in file order (ctl_study, skm_study and wf_study choose their SK-Tuning rows so)."""
    import random
    from collections import Counter

    n_of = Counter(str(r["id"]) for r in rows)
    qs = sorted(n_of)
    random.Random(seed).shuffle(qs)
    keep, total = set(), 0
    for q in qs:
        if total >= n:
            break
        keep.add(q)
        total += n_of[q]
    return [r for r in rows if str(r["id"]) in keep]


def train_record(model_dir: Path, keys=TRAIN_KEYS) -> dict | None:
    """A finished sk-tune's summary figures and its logged evaluations [(step, train AUROC, valid AUROC, valid mean
    P(True))], from ``model_dir``'s train_summary.json and train_log.jsonl; None when it has not finished."""
    p = Path(model_dir) / "train_summary.json"
    if not p.exists():
        return None
    s = json.loads(p.read_text())
    log = [json.loads(x) for x in (p.parent / "train_log.jsonl").read_text().splitlines() if x.strip()]
    evals = [(r["step"], r["train"]["auroc"], r.get("valid", {}).get("auroc"), r.get("valid", {}).get("p_true_mean"))
             for r in log if "train" in r]
    return {k: s.get(k) for k in keys} | {"evals": evals}
