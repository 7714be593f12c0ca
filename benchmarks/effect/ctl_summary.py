"""The self-vs-supervision study's summary (benchmarks/effect/ctl_study.py): one row per judge on knowledge QA by
subject split, from what has finished.

    python benchmarks/effect/ctl_study.py --only summary    # -> benchmarks/results/ctl_smollm2.{md,json} + records

Per row: strict accuracy (the headline; lenient beside) on the held-out prompts, the mean of the DPO seeds with a
95 % bootstrap interval over prompts, and each seed's; the paired difference against the base model, the seeds
pooled by averaging each prompt's accuracy over them (the same prompts resampled for both), and likewise against
the prior and the random controls; the judge's pair agreement with gold (gold labels used for evaluation only):
among its pairs whose two answers differ in gold correctness (strict match), the share where the chosen one is the
correct one, and the share of pairs whose answers are equal in gold correctness; and where the judge is a model
(or a model-free score), its figures on the model's own sampled answers to held-out prompts (data/b.jsonl: AUROC,
ECE, Brier with the answer-frequency shortcut beside; xtask_summary.set_stats reads them, as for the cross-task
study). Every evaluation read is kept as a compact record under benchmarks/results/records/ctl/ (records.py) and
read back from there when runs/ lacks it; the pairs as compact gzip JSONL beside.
"""
from __future__ import annotations

import gzip
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
import ctl_study as C  # noqa: E402  (points common's ledger and xtask_study's folder at this study's)
import common  # noqa: E402
import records as R  # noqa: E402
import xtask_study as X  # noqa: E402

from selfalign import metrics as M  # noqa: E402
from selfalign.evals.results import compare, load_result  # noqa: E402
from selfalign.report.tables import diff, fmt, md_table, num  # noqa: E402
from selfalign.store.io import iter_jsonl  # noqa: E402

ROOT = common.ROOT
OUT_MD = C.CT / "ctl_smollm2.md" if C.SMOKE else ROOT / "benchmarks/results/ctl_smollm2.md"
RECORDS = C.CT / "records" if C.SMOKE else ROOT / "benchmarks/results/records/ctl"
X.EVAL, X.DATA, X.N_BOOT, X.RECORDS = C.EVAL, C.DATA, C.N_BOOT, RECORDS  # set_stats("b") reads this study's files
import xtask_summary as XS  # noqa: E402

XS.JUDGES = ["base", "skt"]  # the calibrated judges of this study (eval/<judge>/b.json)
XS.DESC.update(skt="in-task SK judge (this study's, subject split)")
ROWS = {"base": "base (no DPO)", "ptrue": "Self-Eval-P(True)", "skt": "Self-Eval-SKT in-task",
        "prior": "*control*: prior (relation's training answer frequency, no model)",
        "random": "*control*: random (seeded scores, no model)",
        "sft-gold": "*control*: SFT on the in-task judge's gold facts", "oracle": "oracle (gold labels)"}
OWN = {"ptrue": "base", "skt": "skt"}  # the row's judge, as calibrated on the own answers
CONTROL_ROWS = ("prior", "random")
METRICS = ("accuracy", "accuracy_lenient")


def labels(row: str) -> list[str]:
    return ["base"] if row == "base" else [f"{row}-s{s}" for s in C.SEEDS]


def load_eval(label: str):
    """(summary, rows) of kqa/eval-<label>.json, kept as a record; from the record when runs/ lacks it."""
    path = C.KQA / f"eval-{label}.json"
    if path.exists() and XS.finished(f"kqa/eval-{label}"):
        summary, rows = load_result(path)
        R.keep(path, summary, rows, runs=C.CT, archive=RECORDS)
        return summary, rows
    return R.restore(path, runs=C.CT, archive=RECORDS)


def pooled(evals: dict) -> list[dict]:
    """Per prompt the mean over the seeds' evaluations (prompts every seed answered)."""
    rows = [{str(r["id"]): r for r in rs} for _, rs in evals.values()]
    ids = [i for i in rows[0] if all(i in r for r in rows)]
    return [{"id": i, **{m: float(np.mean([r[i][m] for r in rows])) for m in METRICS}} for i in ids]


def mean_ci(rows: list[dict], metric: str) -> dict:
    v, lo, hi = M.bootstrap_ci(lambda x: float(x.mean()), np.asarray([r[metric] for r in rows], dtype=float),
                               n_boot=C.N_BOOT, seed=0)
    return {"value": v, "ci_low": lo, "ci_high": hi, "n": len(rows)}


def gold_targets() -> dict:
    path = C.KQA / "samples.jsonl"
    return {str(r["id"]): r["targets"] for r in iter_jsonl(path)} if path.exists() else {}


def pair_records(judge: str, targets: dict) -> list[dict] | None:
    """The judge's pairs with the gold correctness (strict) of chosen and rejected; kept as compact gzip JSONL, read
    back from there when runs/ lacks the pairs."""
    from selfalign.text import strict_match

    src, kept = C.KQA / f"pairs-{judge}.jsonl", RECORDS / f"pairs-{judge}.jsonl.gz"
    if not (src.exists() and XS.finished(f"kqa/pairs-{judge}") and targets):
        return [json.loads(x) for x in gzip.decompress(kept.read_bytes()).decode().splitlines()] if kept.exists() \
            else None
    recs = [{"id": str(p["id"]), "chosen": p["chosen"], "rejected": p["rejected"], "chosen_score": p["chosen_score"],
             "rejected_score": p["rejected_score"],
             "chosen_correct": strict_match(p["chosen"], targets[str(p["id"])]) or 0,
             "rejected_correct": strict_match(p["rejected"], targets[str(p["id"])]) or 0} for p in iter_jsonl(src)]
    blob = gzip.compress("".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in recs).encode(),
                         mtime=0)
    if not kept.exists() or kept.read_bytes() != blob:
        kept.parent.mkdir(parents=True, exist_ok=True)
        kept.write_bytes(blob)
    return recs


def agreement(recs: list[dict]) -> dict:
    """Pair agreement with gold: among pairs differing in gold correctness, the share with the correct answer
    chosen; the share of pairs equal in gold correctness (both right or both wrong)."""
    c = np.asarray([r["chosen_correct"] for r in recs], dtype=int)
    r = np.asarray([r["rejected_correct"] for r in recs], dtype=int)
    differ = c != r
    return {"pairs": len(recs), "prompts": len({x["id"] for x in recs}), "differing": int(differ.sum()),
            "agreement": float((c[differ] == 1).mean()) if differ.any() else None,
            "equal_share": float((~differ).mean()) if len(recs) else None,
            "both_right": int(((c == 1) & (r == 1)).sum()), "both_wrong": int(((c == 0) & (r == 0)).sum())}


def training(row: str) -> dict:
    """The trainer's figures per seed (steps, rows or pairs, the last logged step; sft: the first too)."""
    out = {}
    for lab in labels(row):
        d = C.KQA / (f"aligned-{lab}" if row != "sft-gold" else lab)
        path = R.keep_file(d / "train_summary.json", runs=C.CT, archive=RECORDS) if (d / "train_summary.json").exists() \
            else RECORDS / (d / "train_summary.json").relative_to(C.CT)
        if path.exists():
            s = json.loads(path.read_text())
            out[lab] = {k: s.get(k) for k in ("steps", "pairs", "rows", "first", "final", "seconds")}
    return out


def judge_rows() -> tuple[dict, dict]:
    res, pools = {}, {}
    for row in ROWS:
        evals = {lab: ev for lab in labels(row) if (ev := load_eval(lab))[0] is not None}
        entry = {"description": ROWS[row], "seeds_done": [lab for lab in evals]}
        if row in C.JUDGES or row in C.CONTROLS:
            none = C.no_pairs_path(row)
            if none.exists():
                entry["no_pairs"] = none.read_text().strip()
        entry["seeds_complete"] = len(evals) == len(labels(row))
        if evals:  # a row with some seeds finished is shown with them (marked), not held back
            pools[row] = pooled(evals)
            entry["mean"] = {m: mean_ci(pools[row], m) for m in METRICS}
            entry["per_seed"] = {lab: {m: s["metrics"][m] for m in METRICS} for lab, (s, _) in evals.items()}
            entry["n_prompts"] = len(pools[row])
        res[row] = entry
    for row, entry in res.items():
        if row == "base" or row not in pools:
            continue
        for other in ("base", *CONTROL_ROWS):
            if other != row and other in pools:
                entry[f"diff_vs_{other}"] = {m: compare(pools[row], pools[other], m, n_boot=C.N_BOOT, seed=0)
                                             for m in METRICS}
    return res, pools


def own_answers() -> tuple[dict | None, list[dict]]:
    """The judges on the model's own answers to held-out prompts (xtask_summary.set_stats on data/b.jsonl), and the
    two model-free control scores on the same rows."""
    st, recs = XS.set_stats("b")
    if st is None:
        return None, []
    from selfalign.selfeval import prior, random_judge
    from selfalign.stages.score import ScoreConfig

    y = np.asarray([r["label"] for r in recs], dtype=int)
    g = np.asarray([r["id"] for r in recs])
    freq = np.asarray([r["answer_freq"] for r in recs], dtype=float)
    rows = [{"id": r["id"].split("/", 1)[1], "question": r["question"], "response": r["option"],
             "task": "qa_wikidata", "source": "bigbench:qa_wikidata"} for r in recs]
    scores = {"prior": [x["score"] for x in prior.score_rows(None, rows, ScoreConfig(method="prior",
                                                                                     prior_split_by="subject"))],
              "random": [random_judge.random_score(0, r["id"], r["option_idx"]) for r in recs]}
    st["controls"] = {}
    for name, s in scores.items():
        p = np.asarray(s, dtype=float)
        st["controls"][name] = {m: XS.ci(fn, y, p, groups=g) for m, fn in XS.METRICS.items()}
        st["controls"][name]["minus_frequency_auroc"] = XS.paired(M.auroc, y, p, freq, g)
        for rec, v in zip(recs, p):
            rec.setdefault("control_score", {})[name] = float(v)
    return st, recs


def write() -> dict:
    base_ev = load_eval("base")
    if base_ev[0] is None and not C.SMOKE:
        raise SystemExit(f"no finished base evaluation under {C.CT} nor kept in {RECORDS}: nothing to summarise")
    rows, _ = judge_rows()
    targets = gold_targets()
    for row in ROWS:
        recs = pair_records(row, targets) if row in C.JUDGES or row in C.CONTROLS else None
        if recs is not None:
            rows[row]["pair_agreement"] = agreement(recs)
        rows[row]["training"] = training(row) if row != "base" else {}
    own, own_recs = own_answers()
    if own_recs:
        XS.write_records("b", own_recs)
    res = {"study": "ctl_smollm2", "model": C.MODEL, "smoke": C.SMOKE,
           "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "seeds": list(C.SEEDS),
           "align": [str(x) for x in C.ALIGN], "sft": [str(x) for x in C.SFT], "rows": rows, "own_answers": own,
           "commands": XS.commands({C.CT: "runs/ctl-smoke" if C.SMOKE else "runs/ctl"}),
           "data_hashes": XS.file_hashes(C.CT, [*sorted(C.DATA.glob("*.jsonl")), C.KQA / "samples.jsonl"]),
           "records": XS.record_files(RECORDS),
           "bootstrap": {"n_boot": C.N_BOOT, "seed": 0, "unit": "prompt", "level": 0.95, "method": "percentile"}}
    return XS.publish(res, OUT_MD, markdown(res))


def _own_cells(row: str, own: dict | None) -> list[str]:
    if own is None:
        return ["pending"] * 3
    if row == "oracle":
        return ["(gold)"] * 3
    s = own["judges"].get(OWN.get(row)) if row in OWN else (own.get("controls") or {}).get(row)
    if not s:
        return ["-"] * 3
    d = s.get("minus_frequency_auroc") or own.get("judge_minus_frequency_auroc", {}).get(OWN.get(row))
    return [f"{fmt(s['auroc'], missing='-')} (Δ freq {diff(d, missing='-')})", fmt(s["ece"], missing="-"),
            fmt(s["brier"], missing="-")]


def markdown(res: dict) -> list[str]:
    rows, own = res["rows"], res["own_answers"]
    L = ["# Self vs supervision on knowledge QA, SmolLM2-135M, subject split (issue 36)", "",
         f"`python benchmarks/effect/ctl_study.py` then `--only summary` (written {res['written']}"
         f"{', SMOKE sizes' if res['smoke'] else ''}). Every judge scores the same samples (the first "
         f"{C.N_PROMPTS} training prompts of qa_wikidata by subject split, 4 answers each), pairs `--strategy split`, "
         f"DPO `{' '.join(res['align'])}` (LoRA, seeds {', '.join(map(str, res['seeds']))}); SFT-on-gold "
         f"`sft --from-sk {' '.join(res['sft'])}` on the in-task judge's SK training rows. Evaluation: greedy "
         "answers to every held-out prompt (no fact about a held-out subject in any training prompt, SK row or "
         "demonstration). Strict accuracy is the headline (the first answer clause is a gold target, no second "
         "candidate), lenient beside. Intervals: 95 % percentile bootstrap over prompts "
         f"({res['bootstrap']['n_boot']} resamples, seed 0); Δ: paired, the seeds pooled by averaging each prompt's "
         "accuracy over them.", ""]
    head = ["judge", "strict acc (mean of seeds)", "lenient", "strict per seed", "Δ strict vs base", "Δ vs prior",
            "Δ vs random", "pair agreement with gold", "equal-gold pairs", "own answers: AUROC", "ECE", "Brier"]
    table = []
    for row, e in rows.items():
        if "mean" not in e:
            state = "no pairs" if e.get("no_pairs") else f"pending ({len(e['seeds_done'])}/{len(labels(row))} done)"
            table.append([e["description"], state, *[""] * 7, *_own_cells(row, own)])
            continue
        seeds = ", ".join(num(s["accuracy"]["value"]) for s in e["per_seed"].values()) if row != "base" else ""
        if row != "base" and not e.get("seeds_complete", True):
            seeds += f" ({len(e['per_seed'])} of {len(labels(row))} seeds)"
        pa = e.get("pair_agreement") or {}
        table.append([e["description"], fmt(e["mean"]["accuracy"]), fmt(e["mean"]["accuracy_lenient"]), seeds,
                      *[diff((e.get(f"diff_vs_{o}") or {}).get("accuracy"), missing="") for o in ("base", *CONTROL_ROWS)],
                      (f"{num(pa['agreement'])} ({pa['differing']} of {pa['pairs']} pairs differ)" if pa.get("pairs") else
                       ""), num(pa.get("equal_share"), missing=""), *_own_cells(row, own)])
    L += md_table(head, table) + [""]
    L.append("Δ lenient vs base: " + "; ".join(
        f"{r} {diff(e['diff_vs_base']['accuracy_lenient'])}" for r, e in rows.items() if "diff_vs_base" in e) + ".")
    for r, e in rows.items():
        if e.get("no_pairs"):
            L.append(f"- {r}: no pairs ({e['no_pairs']})")
    L += ["", "## The judges on the model's own answers to held-out prompts (data/b.jsonl)", ""]
    if own is None:
        L.append("pending (the base calibrate step has not finished)")
    else:
        sc = own["shortcuts"]["answer_frequency (own samples)"]
        L.append(f"{own['n_questions']} questions, {own['n_options']} distinct answers, {own['positive_rate']:.3f} "
                 f"correct (lenient match, as sk-data labels samples). Answer-frequency shortcut (no model): AUROC "
                 f"{fmt(sc)}, ECE {fmt(sc['ece'])}, Brier {fmt(sc['brier'])}. Mean P(True): " + ", ".join(
                     f"{j} {s['mean_p_true']:.3f}" for j, s in own["judges"].items()) + ".")
    L += ["", "## Training", ""]
    for r, e in rows.items():
        for lab, t in (e.get("training") or {}).items():
            f, last = t.get("first") or {}, t.get("final") or {}
            loss = (f"{num(f['loss'])} → " if "loss" in f else "") + num(last.get("loss"), missing="?")
            L.append(f"- {lab}: {t.get('steps')} steps on {t.get('pairs') or t.get('rows')} "
                     f"{'pairs' if t.get('pairs') else 'rows'}; loss {loss}"
                     + (f", reward margin {num(last['rewards/margins'])}, reward accuracy "
                        f"{num(last.get('rewards/accuracies'))}" if "rewards/margins" in last else ""))
    L += ["", "## Commands (as run; finished steps of the ledger)", ""] + [f"- {c}" for c in res["commands"]]
    L += ["", "## Data and records", "",
          "- sha256[:16]: " + ", ".join(f"{k} {v}" for k, v in res["data_hashes"].items()),
          f"- per-row records: {', '.join(res['records']) or 'none yet'} (evaluations: summary + rows, "
          "records.py; pairs-<judge>: every pair with its gold correctness; b: the own-answer rows with every "
          "judge's score)"]
    return L


if __name__ == "__main__":
    write()
