"""Multiple choice the paper's way, read honestly (issue 36 item 5): SmolLM2-135M (``smollm2-135m``) aligned on the
authors' mc1 rows, every row read beside the bag-of-words baseline trained on the same labels and split by the
style of the true option. One CPU thread.

    python benchmarks/effect/mc_style_study.py                  # the whole study; rerun the same command to resume
    python benchmarks/effect/mc_style_study.py --only summary   # benchmarks/results/mc_style_smollm2.{md,json}
    EFFECT_SMOKE=1 python benchmarks/effect/mc_style_study.py   # tiny sizes, into runs/mcstyle-smoke/

Run it with ``PYTHONPATH=<this checkout>`` and the project's venv python. Progress: a line every 30 s in
``runs/mcstyle/progress.log``; each step's output in ``runs/mcstyle/logs/``; the step ledger (``common.step``) in
``runs/mcstyle/steps.jsonl``; the driver claim, heartbeat and step wrapper are xtask_study's (after ``kill -9``
rerun the same command: it ends the killed driver's leftover child and resumes).

Rows (``mc-data --options mc1``: the 234 mc1 options of the 41 TruthfulQA training questions, the authors'
``mc_train_tf_judge234.json``; ``--rule top --balance``: the top option true, repeated once per other option):
  base    no training
  skt     Self-Eval-SKT: labels by the packaged SK-tuned judge ``smollm2-135m-skt`` (qa_wikidata, tuned 0-shot)
  ptrue   Self-Eval-P(True): labels by the base model itself
  oracle  gold mc1 labels (an upper bound, not self-alignment): a scores file whose P(True) is the gold label, read
          by the same ``mc-data --rule top --balance``, so its rows have the same shape and balance
  rand    random labels: the base model's scores shuffled within each question (t1_study.permuted_scores)
Every row but base: ``sk-tune`` of the base model at t1_study's MC_TUNE with MC_TUNE_HI (lr 1e-3, 5 epochs, batch
8 by question, LoRA on the top 8 layers, beta 0.1, seed 0), float32. Evaluation: ``eval truthfulqa-mc`` on the first
``N_TEST`` questions of the 730-question test split (the same for every row): Self-Eval selection (``selfeval_mc1``),
MC1, MC2, the selection split by the style of the true option (``answer_style``), and with ``--bow-labels`` the
row's own rows file: the bag-of-words baseline on the labels the row was trained on, and the paired difference.

Shots: the labelling judge, the rows' training prompt and the evaluation's selection all use ``SHOTS`` = 0
demonstrations (mc-data defaults to 0, eval truthfulqa-mc to 5: Table 1's v3 rows were built 0-shot and read
5-shot). 0, not the paper's 5 + instruction: the SK-tuned judge was tuned 0-shot and judges best so (its qa_wikidata
AUROC 0.842 0-shot, 0.661 with the paper's prompt, benchmarks/results/skt_table2.md).

Measured (2026-12-07 22:15-22:23 UTC, this machine, one thread, float32, load average 4-5 on 2 cores):
``eval truthfulqa-mc --shots 0 --selfeval`` 1.65 s of CPU per test question for the base model, 1.78 s with the
SK-tuned adapter (26 vs 2 questions; process start ~10 s of CPU); wall time 3.5-4.4 s per question under that load
(on a free core wall ~ CPU time).
Plan for N_TEST = 200 on a free core: 5 evaluations x (15 + 200 x 1.75 s) = 1,825 s (~30 min); mc-data scoring of
234 options x 2 judges ~120 s; 4 sk-tunes of 386 balanced rows (41 questions x 5 epochs, ~205 steps; Table 1 v3's
SmolLM2 rows at these settings: 205 steps in 269 s + 43 s trunk/reference, records/t1x/smollm2/mc3) ~360 s each; in
all about 3,400 s (57 min) of one core (EXPECT below; the heartbeat's ETA follows it).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
import common  # noqa: E402
import xtask_study as xt  # noqa: E402  (the process hygiene and heartbeat, shared)
from common import ROOT, SMOKE, selfalign  # noqa: E402
from t1_study import DTYPE, MC_TUNE, MC_TUNE_HI, _set, permuted_scores  # noqa: E402

MS = ROOT / ("runs/mcstyle-smoke" if SMOKE else "runs/mcstyle")
xt.XT = MS  # xtask_study's driver claim and heartbeat write into this study's folder
common.RUN, common.STEPS, common.LOGS = MS, MS / "steps.jsonl", MS / "logs"
DATA, EVAL = MS / "data", MS / "eval"
MODEL, SKT = "smollm2-135m", "smollm2-135m-skt"
SHOTS = 0  # the same for labelling, the rows' prompt and the selection (see the docstring)
ROWS = ("base", "skt", "ptrue", "oracle", "rand")
TRAINED = ("skt", "oracle", "ptrue", "rand")  # run order: the most informative first
if SMOKE:
    N_TEST, N_TRAIN_Q, N_BOOT, TUNE = 3, ["--limit", 3], 50, [*MC_TUNE, "--max-steps", 2]  # MC_TUNE: 1 epoch in smoke
else:
    N_TEST, N_TRAIN_Q, N_BOOT, TUNE = 200, [], 1000, _set(MC_TUNE, MC_TUNE_HI)
OUT_MD = MS / "mc_style_smollm2.md" if SMOKE else ROOT / "benchmarks/results/mc_style_smollm2.md"
RECORDS = MS / "records" if SMOKE else ROOT / "benchmarks/results/records/mcstyle"
EXPECT = {"mc-data": 60, "mc-data-file": 10, "eval": 15 + 1.75 * N_TEST, "sk-tune": 360}
JUDGE = {"skt": SKT, "ptrue": MODEL}


def rows_file(row: str) -> Path:
    return DATA / f"rows-{row}.jsonl"


def mc_data(row: str, how: list, deps=()) -> Path:
    out = rows_file(row)
    xt.xstep(f"data/rows-{row}",
             selfalign("mc-data", *how, "--data", "truthfulqa-mc", "--split", "train", "--options", "mc1", "--rule",
                       "top", "--balance", "--shots", SHOTS, *N_TRAIN_Q, "--output", out),
             deps=deps, outputs=[out, out.with_name(f"{out.stem}.heldout.jsonl")])
    return out


def gold_scores(path: Path) -> None:
    """The oracle's 'judge': P(True) = the gold mc1 label of every training option (rewritten only when it
    changes), so ``mc-data --rule top --balance`` builds gold rows exactly as it builds self-labelled ones."""
    from selfalign.data.mc import load_truthfulqa_mc

    qs = load_truthfulqa_mc(None, "train", "mc1")
    qs = qs[:int(N_TRAIN_Q[1])] if N_TRAIN_Q else qs
    text = "".join(json.dumps({"id": q["id"], "option_idx": k, "option": o["text"], "mc": "mc1",
                               "p_true": float(o["label"]), "scorer": "gold mc1 label"}) + "\n"
                   for q in qs for k, o in enumerate(q["options"]))
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def make_rows() -> dict:
    DATA.mkdir(parents=True, exist_ok=True)
    out = {row: mc_data(row, ["--model", judge, "--dtype", DTYPE]) for row, judge in JUDGE.items()}
    gold = DATA / "gold.scores.jsonl"
    gold_scores(gold)
    out["oracle"] = mc_data("oracle", ["--scores", gold], deps=[gold])
    rand = DATA / "rand.scores.jsonl"
    permuted_scores(DATA / "rows-ptrue.scores.jsonl", rand)
    out["rand"] = mc_data("rand", ["--scores", rand], deps=[rand])
    return out


def evaluate(row: str, spec: str, labels: Path | None, deps: list) -> Path:
    out = EVAL / f"{row}.json"
    xt.xstep(f"{row}/eval",
             selfalign("eval", "truthfulqa-mc", "--model", spec, "--dtype", DTYPE, "--split", "test", "--limit",
                       N_TEST, "--shots", SHOTS, "--selfeval", *(["--bow-labels", labels] if labels else []),
                       "--n-boot", N_BOOT, "--output", out),
             deps=deps, outputs=[out])
    return out


def tune(row: str, rows: Path) -> Path:
    out = MS / row / "model"
    xt.xstep(f"{row}/sk-tune", selfalign("sk-tune", "--model", MODEL, "--dtype", DTYPE, "--data", rows, *TUNE,
                                         "--output", out), deps=[rows], outputs=[out])
    return out


def plan() -> list[tuple[str, float]]:
    E = EXPECT
    out = [("data/rows-skt", E["mc-data"]), ("data/rows-ptrue", E["mc-data"]),
           ("data/rows-oracle", E["mc-data-file"]), ("data/rows-rand", E["mc-data-file"]), ("base/eval", E["eval"])]
    for row in TRAINED:
        out += [(f"{row}/sk-tune", E["sk-tune"]), (f"{row}/eval", E["eval"])]
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=("summary",), help="write the summary from what has finished, no model work")
    ap.add_argument("--rows", nargs="+", choices=TRAINED, default=list(TRAINED),
                    help="the trained rows to run (default: all; base and the label files always)")
    args = ap.parse_args(argv)
    xt.check_checkout()
    import mc_style_summary

    if args.only == "summary":
        mc_style_summary.write()
        return
    with xt.driven(plan()) as hb:
        rows = make_rows()
        evaluate("base", MODEL, None, [])
        for row in [r for r in TRAINED if r in args.rows]:
            model = tune(row, rows[row])
            evaluate(row, str(model), rows[row], [rows[row], model / "train_summary.json"])
        mc_style_summary.write()
        hb.note(f"finished; summary in {OUT_MD}")


if __name__ == "__main__":
    main()
