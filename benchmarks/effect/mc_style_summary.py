"""The MC-style study's summary (benchmarks/effect/mc_style_study.py): per row the Self-Eval selection, MC1, MC2,
the selection split by the style of the true option, and the bag-of-words baseline trained on the row's own labels
(paired), with paired differences against the base model; and the no-model "style shortcut": the bag-of-words
baseline on the *gold* labels of the 41 training questions, on the study's questions and on all 730.

    python benchmarks/effect/mc_style_study.py --only summary

Reads only what has finished (a row not yet measured is "pending"). Every evaluation read is kept as a compact
record under benchmarks/results/records/mcstyle/ (records.py: gzip JSON, the per-question id, mc1, mc2,
selfeval_mc1, mc1_p_true; the eval's summary with its bag-of-words figures), with each row's training summary and
mc-data meta; when runs/ lacks them (another machine), they are read from there.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
import common  # noqa: E402
import mc_style_study as M  # noqa: E402
import records  # noqa: E402
from xtask_summary import commands, publish  # noqa: E402  (finished commands; the summary writer)
from selfalign.report import tables  # noqa: E402

from selfalign.evals import answer_style as S  # noqa: E402
from selfalign.evals.results import compare, load_result  # noqa: E402
from selfalign.metrics import bootstrap_ci  # noqa: E402

ROOT = common.ROOT
DESC = {"base": "base (no training)", "skt": "Self-Eval-SKT (labels: smollm2-135m-skt)",
        "ptrue": "Self-Eval-P(True) (labels: the base model)", "oracle": "oracle (gold mc1 labels)",
        "rand": "*control: random labels*"}
SPLIT = ("selfeval_mc1_hedged", "selfeval_mc1_plain")


def cell(m) -> str:
    return tables.fmt(m, missing="-")


def dcell(d) -> str:
    return tables.diff(d, missing="-")


def mean_ci(x) -> dict:
    v, lo, hi = bootstrap_ci(lambda a: float(np.mean(a)), np.asarray(x, dtype=float), n_boot=1000, seed=0)
    return {"value": v, "ci_low": lo, "ci_high": hi, "n": len(x)}


def kept(path: Path) -> dict | None:
    """A small JSON file of the run (kept under the records folder; read back from there when runs/ lacks it)."""
    dst = records.keep_file(path, M.MS, M.RECORDS) or M.RECORDS / Path(path).resolve().relative_to(M.MS.resolve())
    return json.loads(dst.read_text()) if dst.exists() else None


def load(row: str, qs: list[dict]):
    """(summary, rows annotated with the style split) of a row's evaluation, or (None, None)."""
    path = M.EVAL / f"{row}.json"
    if path.exists():
        summary, rows = load_result(path)
        records.keep(path, summary, rows, M.MS, M.RECORDS)
    else:
        summary, rows = records.restore(path, M.MS, M.RECORDS)
        if summary is None:
            return None, None
    S.annotate(rows, qs, ["selfeval_mc1"])
    return summary, rows


def training(row: str) -> dict:
    model = M.MS / row / "model"
    for f in ("train_summary.json", "train_log.jsonl"):
        records.keep_file(model / f, M.MS, M.RECORDS)
    t = common.train_record(model) or common.train_record(M.RECORDS / row / "model")
    meta = kept(M.rows_file(row).with_name(M.rows_file(row).name + ".meta.json")) or {}
    train = (meta.get("counts") or {}).get("train") or {}
    return {"train": t and {k: t[k] for k in ("rows", "steps", "seconds")}, "rows": train.get("rows"),
            "true_rows": train.get("true"), "copies": train.get("copies"),
            "label_agreement_with_gold": meta.get("label_agreement_with_gold")}


def shortcuts(qs: list[dict], all_qs: list[dict]) -> dict:
    """No model: the bag-of-words baseline on gold labels of the 41 training questions (mc1: the authors' 234
    rows; mc2: 358), count and TF-IDF, the style rule, chance; on the study's questions and on all 730 test
    questions. ``first_wins``: the same selections with a tie going to the first option (TruthfulQA lists the true
    mc1 option first), as a reading that ignores ties gets."""
    from selfalign.data.mc import load_truthfulqa_mc

    out = {}
    for opts in ("mc1", "mc2"):
        train = [(o["text"], o["label"]) for q in load_truthfulqa_mc(None, "train", opts) for o in q["options"]]
        for vec in ("count", "tfidf"):
            model = S.fit_bow(*zip(*train), vectorizer=vec)
            res = {"train_rows": len(train)}
            for name, sub in (("study", qs), ("all", all_qs)):
                picks = S.bow_select(model, sub)
                res[name] = mean_ci([p["bow_mc1"] for p in picks])
                res[name]["first_wins"] = float(np.mean([q["mc1"][p["bow_choice"]]["label"]
                                                         for p, q in zip(picks, sub)]))
                res[name]["per_question"] = {p["id"]: p["bow_mc1"] for p in picks}
            out[f"bow_gold_{opts}_{vec}"] = res
    out["style_rule"] = {name: mean_ci([p["rule_mc1"] for p in S.rule_select(sub)])
                         for name, sub in (("study", qs), ("all", all_qs))}
    out["chance"] = {name: mean_ci([1 / len(q["mc1"]) for q in sub]) for name, sub in (("study", qs), ("all", all_qs))}
    return out


def write() -> dict:
    from selfalign.data.mc import load_truthfulqa_mc
    from selfalign.evals.truthfulqa_mc import load_questions

    _, all_qs = load_questions(None, "test")
    qs = all_qs[:M.N_TEST]
    base_summary, base_rows = load("base", qs)
    prev = M.OUT_MD.with_suffix(".json")
    if base_summary is None and not M.SMOKE and prev.exists() and any(json.loads(prev.read_text())["rows"].values()):
        raise SystemExit(f"no base evaluation under {M.MS} nor in {M.RECORDS}: the committed {M.OUT_MD.name} (with "
                         "measured rows) is kept")
    short = shortcuts(qs, all_qs)
    gold = short["bow_gold_mc1_count"]["study"].pop("per_question")
    for v in short.values():  # per-question values: only the headline's, for the paired differences below
        for sub in ("study", "all"):
            if isinstance(v.get(sub), dict):
                v[sub].pop("per_question", None)
    out_rows = {}
    for row in M.ROWS:
        summary, rows = load(row, qs)
        if summary is None:
            out_rows[row] = None
            continue
        m = summary["metrics"]
        r = {"metrics": {k: m.get(k) for k in ("selfeval_mc1", "mc1", "mc2", *SPLIT, "bow_mc1")},
             "selfeval_vs_bow": summary.get("selfeval_vs_bow"),
             "bow_labels": summary.get("bow_labels") and {**summary["bow_labels"],
                                                          "file": Path(summary["bow_labels"]["file"]).name},
             "selfeval_vs_gold_bow": compare(rows, [{"id": i, "selfeval_mc1": v} for i, v in gold.items()],
                                             "selfeval_mc1")}
        if base_rows is not None and row != "base":
            r["diff_vs_base"] = {k: compare(rows, base_rows, k) for k in ("selfeval_mc1", "mc1", "mc2", *SPLIT)}
        if row != "base":
            r.update(training(row))
        out_rows[row] = r
    res = {"study": "mc_style_smollm2", "model": M.MODEL, "judge": M.SKT, "smoke": M.SMOKE,
           "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "n_test": len(qs), "shots": M.SHOTS,
           "tune": [str(x) for x in M.TUNE], "dtype": M.DTYPE, "rows": out_rows, "shortcuts": short,
           "answer_style": {"words": {"negations": [*S.NEGATIONS, "n't"], "hedges": list(S.HEDGES),
                                      "non_answers": list(S.NON_ANSWERS)},
                            "flagged_mc1": {sp: S.flag_shares(load_truthfulqa_mc(None, sp, "mc1"))
                                            for sp in ("train", "test")},
                            "flagged_mc2": {sp: S.flag_shares(load_truthfulqa_mc(None, sp, "mc2"))
                                            for sp in ("train", "test")},
                            "study_true_hedged": sum(S.hedged(next(o["text"] for o in q["mc1"] if o["label"]))
                                                     for q in qs)},
           "commands": commands(),
           "bootstrap": {"n_boot": M.N_BOOT, "seed": 0, "unit": "question", "level": 0.95, "method": "percentile"}}
    return publish(res, M.OUT_MD, markdown(res))


def markdown(res: dict) -> list[str]:
    n, st = res["n_test"], res["answer_style"]
    sc = res["shortcuts"]
    L = ["# TruthfulQA MC on SmolLM2-135M, the paper's mc1 rows, read beside answer style (issue 36, item 5)", "",
         f"`python benchmarks/effect/mc_style_study.py` then `--only summary` (written {res['written']}"
         f"{', SMOKE sizes' if res['smoke'] else ''}). Rows: `mc-data --options mc1 --rule top --balance --shots "
         f"{res['shots']}` on the 41 TruthfulQA training questions (the authors' 234 mc1 options); `sk-tune` of the "
         f"base model {' '.join(res['tune'])} ({res['dtype']}); evaluated on the first {n} of the 730 test questions "
         f"with the same {res['shots']}-shot Self-Eval prompt. Selection = `selfeval_mc1`, the MC1 option with the "
         "top P(True) of the row's own model. Intervals: 95 % percentile bootstrap over questions "
         f"({res['bootstrap']['n_boot']} resamples, seed 0); Δ = paired against the base model; *BoW* = a "
         "bag-of-words logistic regression on option text, "
         "trained on the rows the model was trained on (self-labels or gold), selecting the option with the top "
         "predicted probability (ties shared: `selfalign.evals.answer_style`). A selection gain counts only beyond "
         "its BoW.", ""]
    rows, rows2 = [], []
    for row, r in res["rows"].items():
        if r is None:
            rows.append([DESC[row], "pending", "", "", "", "", "", ""])
            rows2.append([DESC[row], "pending", "", "", "", "", "", "", ""])
            continue
        m, d = r["metrics"], r.get("diff_vs_base") or {}
        agree = r.get("label_agreement_with_gold")
        rows.append([DESC[row], tables.num(agree, missing="-"), cell(m["selfeval_mc1"]), dcell(d.get("selfeval_mc1")),
                     cell(m.get("bow_mc1")), dcell(r.get("selfeval_vs_bow")), cell(m.get(SPLIT[0])),
                     cell(m.get(SPLIT[1]))])
        t = r.get("train") or {}
        same = (r.get("bow_labels") or {}).get("rows_prompt_is_selection_prompt")  # share of rows
        rows2.append([DESC[row], cell(m["mc1"]), dcell(d.get("mc1")), cell(m["mc2"]), dcell(d.get("mc2")),
                      dcell(d.get(SPLIT[0])), dcell(d.get(SPLIT[1])), dcell(r.get("selfeval_vs_gold_bow")),
                      "-" if not r.get("rows") else f"{r['rows']} rows ({r['true_rows']} A), {t.get('steps', '-')} "
                                                     f"steps, {tables.num(t.get('seconds'), 0, '-')} s; prompt = "
                                                     f"selection's: {tables.num(same, 2, '-')}"])
    hedged = st["study_true_hedged"]
    L += tables.md_table(["row", "labels = gold", "selection", "Δ selection", "BoW (its labels)", "selection − BoW",
                          f"selection, true hedged ({hedged} q)", f"selection, true plain ({n - hedged} q)"], rows)
    skt = res["rows"].get("skt") or {}
    if skt.get("selfeval_vs_bow"):
        d = skt["selfeval_vs_bow"]
        met = d.get("ci_low") is not None and d["ci_low"] > 0
        L += ["", f"**Target** (issue 36: Self-Eval-SKT's selection above the bag-of-words baseline on its own "
                  f"self-labels, interval above 0): {dcell(d)}: **{'met' if met else 'not met'}**."]
    L += ["", *tables.md_table(["row", "MC1", "Δ MC1", "MC2", "Δ MC2", "Δ sel. hedged", "Δ sel. plain",
                                "selection − style shortcut", "training"], rows2), ""]
    g = sc["bow_gold_mc1_count"]
    L += [f"**Style shortcut (no model):** a bag-of-words logistic regression trained on the gold labels of the 41 "
          f"training questions' mc1 rows ({g['train_rows']} rows) selects the true option on "
          f"{cell(g['study'])} of these {n} questions and {cell(g['all'])} of all 730.", "",
          *tables.md_table(["no-model shortcut", f"first {n}", "all 730", "all 730, ties to the first option"], [
              [f"BoW, gold {k.split('_')[2]} labels ({v['train_rows']} rows), {k.split('_')[3]}", cell(v["study"]),
               cell(v["all"]), tables.num(v["all"]["first_wins"])] for k, v in sc.items() if k.startswith("bow_")]
              + [["style rule: a hedged option (ties shared)", cell(sc["style_rule"]["study"]),
                  cell(sc["style_rule"]["all"]), "-"],
                 ["chance (1 / options)", cell(sc["chance"]["study"]), cell(sc["chance"]["all"]), "-"]]), "",
          "TruthfulQA lists the true mc1 option first, so a selector whose ties go to the first option gains from "
          "every tie (options made only of words unseen in training score alike); the last column reads it that way "
          "(the issue's 0.65–0.66), the others share a tie among the tied options.", "",
          "**Answer style** (`answer_style.hedged`: a negation " + ", ".join(st["words"]["negations"]) + "; a hedge "
          + ", ".join(st["words"]["hedges"]) + "; or " + ", ".join(f'"{w}"' for w in st["words"]["non_answers"])
          + "; whole words, case-insensitive): flagged true / false options — "
          + "; ".join(f"{o} {sp} {v['true']['flagged']:.3f} / {v['false']['flagged']:.3f}"
                      for o in ("mc1", "mc2") for sp, v in st[f"flagged_{o}"].items())
          + f". Of these {n} questions, {hedged} have a hedged true mc1 option.", "",
          "## Commands (as run; finished steps of the ledger)", "", *[f"- {c}" for c in res["commands"]]]
    return L
