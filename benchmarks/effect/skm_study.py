"""SK-Tuning the paper's way (issue 36, items 1-2): SK data from the model's *own* sampled answers (``sk-data --mode
samples``), balanced by class weight, against the options-mode judge, and the two mixed; each judge measured where
DPO uses it, on the model's own answers to held-out questions, with the answer-frequency shortcut beside it.
SmolLM2-135M, float32, one CPU thread.

    python benchmarks/effect/skm_study.py                  # the whole study; rerun the same command to resume
    python benchmarks/effect/skm_study.py --only summary   # benchmarks/results/skm_smollm2.{md,json} + records
    EFFECT_SMOKE=1 python benchmarks/effect/skm_study.py   # tiny sizes, into runs/skm-smoke/

Split by subject exactly as ``ctl_study.py`` (so its judges' own-answer scores, kept in ``records/ctl/b.jsonl.gz``,
pair with these row by row): sk-data ``--split-by subject --heldout-fraction 0.2``, split seed 0; knowledge-qa's
held-out subjects (6 %) lie inside sk-data's held-out 20 %.
Data:
  own answers (the test set, as ctl_study): 300 knowledge-qa held-out prompts x 5 samples (the demo's sampling,
    seed 0), labelled by strict match against the gold targets; ``calibrate --data sk:b.jsonl`` per judge gives
    AUROC, ECE and Brier, and the answer-frequency shortcut (how often the same answer was sampled) beside it.
  samples-mode SK rows: ``sk-data --mode samples`` on qa_wikidata, 5 answers per question after 3 training
    demonstrations (the same sampling), each labelled by normalised match against the gold targets; only
    N_TRAIN_Q training questions (``--max-train``: a choice by hash *after* the subject split, so the split is the
    one above) and N_HELD_Q held-out ones (``--max-heldout``).
  validation (sk-tune keeps its best checkpoint by AUROC there; nothing reported steers it): the held-out
    samples-mode rows of at most N_VALID questions that mention no knowledge-qa held-out subject: the model's own
    answers to held-out-subject questions, the distribution the judge is used on.
  options-mode SK rows: ctl_study's (gold vs a same-relation distractor, whole questions in one fixed shuffle).
Judges (SK settings: skt_study.SK but ONE epoch over the rows, evaluated 8 times: the validation AUROC at each
evaluation is the learning curve in rows seen; class weight ``balanced`` where the classes are unequal):
  samples   N_ROWS samples-mode rows (whole questions), --class-weight balanced (the paper's way)
  mixed     N_ROWS/2 options-mode rows + N_ROWS/2 samples-mode rows (whole questions), balanced
  options   N_ROWS options-mode rows (balanced by construction), the same validation: options-mode at equal size
Each judge: ``calibrate`` on the own answers. Order: samples, mixed, options (the last is the comparison at equal
size; ctl_study's 3,000-row options judge, kept in records/ctl, is the small-size point).

Measured before sizing (2026-12-08, this machine, one thread, load ~3 on 2 cores): see PLAN_NOTE below.
"""
from __future__ import annotations

import argparse
import os
import random
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
import common  # noqa: E402
from common import ROOT, SMOKE  # noqa: E402

os.environ.setdefault("CTL_ROOT", str(ROOT / ("runs/skm-smoke" if SMOKE else "runs/skm")))
import ctl_study as ctl  # noqa: E402  (its split, sampling, own-answer rows and calibrate step; paths under CTL_ROOT)
import xtask_study as xt  # noqa: E402
from common import selfalign  # noqa: E402
from skt_study import DTYPE, SK  # noqa: E402

SK_ROOT = ctl.CT
DATA = ctl.DATA
if SMOKE:
    N_TRAIN_Q, N_HELD_Q, N_VALID, N_ROWS, N_EVALS = 12, 8, 4, 40, 2
else:
    N_TRAIN_Q, N_HELD_Q, N_VALID, N_ROWS, N_EVALS = 2100, 250, 150, 10000, 8
SKM = {**SK, "epochs": 1}
JUDGES = ("samples", "mixed", "options")
EXPECT = {"sk-data-samples": 1500, "sample-own": 200, "sk-tune": 2400, "calibrate": 110}
PLAN_NOTE = "sizes from ctl_study's rates (sample 8 answers/s; sk-tune ~0.33 s a row at 2 epochs); see skm_smollm2.md"


def kqa_held() -> set:
    return ctl.kqa_heldout_subjects()


def make_data() -> dict:
    from selfalign.data.subjects import mentions
    from selfalign.store.io import read_jsonl, write_jsonl_atomic

    data = {}
    full = ctl.sk_data_options()  # the same step (name, command) as ctl_study's
    ws = DATA / "ws.jsonl"
    xt.xstep("data/sk-data-samples",
             selfalign("sk-data", "--model", ctl.MODEL, "--dtype", DTYPE, "--sources", "bigbench:qa_wikidata",
                       "--mode", "samples", "--split-by", "subject", "--heldout-fraction", 0.2, "--split-seed", 0,
                       "--seed", 0, "--n", 5, "--max-train", N_TRAIN_Q, "--max-heldout", N_HELD_Q,
                       *[a for a in ctl.SAMPLING if a not in ("--stop", "\n")], "--output", ws),
             outputs=[ws])
    own = DATA / "own" / "samples.jsonl"
    own.parent.mkdir(parents=True, exist_ok=True)
    xt.xstep("data/sample-own", selfalign("sample", "--model", ctl.MODEL, "--dtype", DTYPE, "--input",
                                          "bigbench:qa_wikidata", "--split", "heldout", "--split-by", "subject",
                                          "--limit", ctl.N_OWN, "--n", 5, *ctl.SAMPLING, "--seed", 0,
                                          "--output", own), outputs=[own])
    xt.build_own(own, DATA / "b.jsonl")
    data["b"] = DATA / "b.jsonl"
    opts, samp = read_jsonl(full), read_jsonl(ws)
    sets = {"samples": common.whole_questions(samp, N_ROWS, 0),
            "mixed": common.whole_questions(opts, N_ROWS // 2, 0) + common.whole_questions(samp, N_ROWS // 2, 0),
            "options": common.whole_questions(opts, N_ROWS, 0)}
    for name, rows in sets.items():
        path = DATA / f"train-{name}.jsonl"
        if not path.exists():
            write_jsonl_atomic(path, rows)
        data[name] = path
    valid = DATA / "valid-own.jsonl"
    if not valid.exists():
        from selfalign.data.knowledge_qa import questions

        held, gold = kqa_held(), {q["question"]: q for q in questions("qa_wikidata", "subject")}
        wheld = read_jsonl(ws.with_name("ws.heldout.jsonl"))
        clean = lambda r: r["question"].strip() in gold and not mentions(gold[r["question"].strip()], held)  # noqa
        qs = sorted({str(r["id"]) for r in wheld if clean(r)})
        random.Random(1).shuffle(qs)
        ids = set(qs[:N_VALID])
        write_jsonl_atomic(valid, [r for r in wheld if str(r["id"]) in ids])
    data["valid"] = valid
    return data


def sk_tune(name: str, data: dict) -> Path:
    from selfalign.store.io import read_jsonl

    out = SK_ROOT / name / "model"
    rows = read_jsonl(data[name])
    labels = Counter(r["label"] for r in rows)
    weight = "balanced" if labels[1] != labels[0] else "none"
    flags = [x for k, v in SKM.items() for x in (f"--{k.replace('_', '-')}", v)]
    steps = max(1, len(rows) // SKM["batch_size"])
    xt.xstep(f"{name}/sk-tune", selfalign("sk-tune", "--model", ctl.MODEL, "--dtype", DTYPE, "--data", data[name],
                                          "--valid-data", data["valid"], *flags, "--class-weight", weight,
                                          "--eval-every", max(1, steps // N_EVALS), "--seed", 0, "--output", out),
             deps=[data[name], data["valid"]], outputs=[out])
    return out


def plan() -> list[tuple[str, float]]:
    E = EXPECT
    out = [("data/sk-data", 10), ("data/sk-data-samples", E["sk-data-samples"]), ("data/sample-own", E["sample-own"]),
           ("base/calibrate-b", E["calibrate"])]
    for j in JUDGES:
        out += [(f"{j}/sk-tune", E["sk-tune"]), (f"{j}/calibrate-b", E["calibrate"])]
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=("summary",), help="write the summary from what has finished, no model work")
    ap.add_argument("--judges", nargs="+", choices=JUDGES, default=list(JUDGES), help="judges to train, in order")
    args = ap.parse_args(argv)
    xt.check_checkout()
    if args.only == "summary":
        import skm_summary

        skm_summary.write()
        return
    with xt.driven(plan()) as hb:
        data = make_data()
        ctl.calibrate_own("base", ctl.MODEL, data, [])
        for name in args.judges:
            model = sk_tune(name, data)
            ctl.calibrate_own(name, str(model), data, [model / "train_summary.json"])
        hb.note("finished the model work")
        import skm_summary

        skm_summary.write()


if __name__ == "__main__":
    main()
