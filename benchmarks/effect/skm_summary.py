"""The samples-mode SK study's summary (benchmarks/effect/skm_study.py): each judge on the model's own answers to
held-out prompts, beside the answer-frequency shortcut, the base model's P(True) and ctl_study's 3,000-row
options-mode judge (the same own answers: its scores are kept in records/ctl/b.jsonl.gz), and each judge's
learning curve (validation AUROC on own answers of validation subjects, by rows seen).

    python benchmarks/effect/skm_study.py --only summary    # -> benchmarks/results/skm_smollm2.{md,json} + records
"""
from __future__ import annotations

import gzip
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
import skm_study as S  # noqa: E402  (points ctl_study's, common's and xtask_study's folders at this study's)
import ctl_study as C  # noqa: E402
import common  # noqa: E402
import xtask_study as X  # noqa: E402

from selfalign import metrics as M  # noqa: E402
from selfalign.report.tables import md_table  # noqa: E402
from selfalign.store.io import read_jsonl  # noqa: E402

ROOT = common.ROOT
OUT_MD = C.CT / "skm_smollm2.md" if C.SMOKE else ROOT / "benchmarks/results/skm_smollm2.md"
RECORDS = C.CT / "records" if C.SMOKE else ROOT / "benchmarks/results/records/skm"
CTL_B = ROOT / "benchmarks/results/records/ctl/b.jsonl.gz"
X.EVAL, X.DATA, X.N_BOOT, X.RECORDS = C.EVAL, C.DATA, C.N_BOOT, RECORDS
import xtask_summary as XS  # noqa: E402

XS.JUDGES = ["base", *S.JUDGES]
DESC = {"base": "base model, untuned P(True)",
        "samples": f"samples-mode SK, {S.N_ROWS:,} rows, class-balanced weights (the paper's way)",
        "mixed": f"mixed: {S.N_ROWS // 2:,} options-mode + {S.N_ROWS // 2:,} samples-mode rows, balanced weights",
        "options": f"options-mode SK (gold vs same-relation distractor), {S.N_ROWS:,} rows",
        "options-3k (ctl)": "options-mode SK, 3,000 rows, 2 epochs (ctl_study's in-task judge; its kept scores, rounded "
                            "to 6 decimals: 672 of 1,008 tie at 0 or 1, so AUROC 0.657 here, 0.666 unrounded in "
                            "ctl_smollm2.md)"}


def ctl_judge(recs: list[dict]) -> np.ndarray | None:
    """ctl_study's SKT judge's P(True) on the same own-answer rows, matched by (question id, answer text)."""
    if not CTL_B.exists() or not recs:
        return None
    with gzip.open(CTL_B, "rt", encoding="utf-8") as f:
        kept = {(r["id"], r["option"]): r["p_true"].get("skt") for r in map(json.loads, f)}
    vals = [kept.get((r["id"], r["option"])) for r in recs]
    return None if any(v is None for v in vals) else np.asarray(vals, dtype=float)


def curve(judge: str) -> dict | None:
    """The sk-tune run's rows, its evaluations by rows seen (one epoch: rows x step / planned steps)."""
    t = common.train_record(C.CT / judge / "model")
    if t is None:
        return None
    rows, planned = t.get("rows") or 0, t.get("planned_steps") or 1
    t["curve"] = [{"rows_seen": round(rows * step / planned), "train_auroc": tr, "valid_auroc": va,
                   "valid_mean_p_true": pm} for step, tr, va, pm in t.pop("evals")]
    return t


def sk_counts(judge: str) -> dict | None:
    p = C.DATA / f"train-{judge}.jsonl"
    if not p.exists():
        return None
    rows = read_jsonl(p)
    return {"rows": len(rows), "true": sum(r["label"] for r in rows), "questions": len({str(r["id"]) for r in rows}),
            "modes": dict(sorted(Counter(r.get("mode", "?") for r in rows).items()))}


def plot(curves: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for j, t in curves.items():
        pts = [(c["rows_seen"], c["valid_auroc"]) for c in t["curve"] if c["valid_auroc"] is not None]
        if pts:
            ax.plot(*zip(*pts), marker="o", label=j)
    ax.axhline(0.5, color="grey", lw=0.5)
    ax.set_xlabel("SK rows seen (one epoch)")
    ax.set_ylabel("validation AUROC (own answers)")
    ax.set_title("SmolLM2-135M: judges on the model's own answers")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write() -> dict:
    own, recs = XS.set_stats("b")
    if own is not None:
        y = np.asarray([r["label"] for r in recs], dtype=int)
        g = np.asarray([r["id"] for r in recs])
        freq = np.asarray([r["answer_freq"] for r in recs], dtype=float)
        base = np.asarray([r["p_true"]["base"] for r in recs], dtype=float)
        p3k = ctl_judge(recs)
        if p3k is not None:
            st = {m: XS.ci(fn, y, p3k, groups=g) for m, fn in XS.METRICS.items()}
            st["mean_p_true"] = float(p3k.mean())
            st["diff_vs_base"] = {m: XS.paired(fn, y, p3k, base, g) for m, fn in XS.METRICS.items()}
            own["judges"]["options-3k (ctl)"] = st
            own["judge_minus_frequency_auroc"]["options-3k (ctl)"] = XS.paired(M.auroc, y, p3k, freq, g)
            for r, v in zip(recs, p3k):
                r["p_true"]["options-3k (ctl)"] = float(v)
        own["vs_options_3k"] = {}
        for j in S.JUDGES:
            if p3k is not None and j in own["judges"]:
                pj = np.asarray([r["p_true"][j] for r in recs], dtype=float)
                own["vs_options_3k"][j] = XS.paired(M.auroc, y, pj, p3k, g)
    curves = {j: t for j in S.JUDGES if (t := curve(j))}
    counts = {j: c for j in S.JUDGES if (c := sk_counts(j))}
    rec_paths = [p for p in (XS.write_records("b", recs),) if p]
    png = OUT_MD.with_suffix(".png")
    if curves:
        plot(curves, png)
    res = {"study": "skm_smollm2", "model": C.MODEL, "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "smoke": C.SMOKE, "sk": S.SKM, "dtype": S.DTYPE,
           "sizes": {"train_questions_sampled": S.N_TRAIN_Q, "heldout_questions_sampled": S.N_HELD_Q,
                     "valid_questions": S.N_VALID, "rows": S.N_ROWS, "evaluations": S.N_EVALS},
           "sk_rows": counts, "own_answers": own, "training": curves, "commands": XS.commands({C.CT.resolve(): "runs/skm"}),
           "data_hashes": {"files": XS.file_hashes(C.DATA, sorted(C.DATA.glob("*.jsonl")))},
           "records": [p.relative_to(ROOT).as_posix() if p.is_relative_to(ROOT) else str(p) for p in rec_paths],
           "bootstrap": {"n_boot": C.N_BOOT, "seed": 0, "unit": "question", "level": 0.95, "method": "percentile"}}
    return XS.publish(res, OUT_MD, markdown(res))


def markdown(res: dict) -> list[str]:
    own = res["own_answers"]
    L = ["# SK-Tuning the paper's way on SmolLM2-135M: judges trained on the model's own answers (issue 36)", "",
         f"`python benchmarks/effect/skm_study.py`, then `--only summary` (written {res['written']}"
         f"{', SMOKE sizes' if res['smoke'] else ''}). Subject split as `ctl_smollm2.md`; float32, one thread; SK "
         f"settings {json.dumps(res['sk'])}; 95 % bootstrap intervals over questions "
         f"({res['bootstrap']['n_boot']} resamples).", "",
         "## The judges on the model's own answers to held-out prompts", ""]
    if own is None:
        return L + ["pending (the base calibrate step has not finished)"]
    sc = own["shortcuts"]["answer_frequency (own samples)"]
    L.append(f"{own['n_questions']} held-out questions, {own['n_options']} distinct own answers (5 samples each), "
             f"{own['positive_rate']:.3f} correct. No-model answer-frequency shortcut: AUROC {XS.f3(sc)}, ECE "
             f"{XS.f3(sc['ece'])}, Brier {XS.f3(sc['brier'])}.")
    L.append("")
    head = ["judge", "SK rows (true)", "AUROC", "− shortcut (paired)", "vs options-3k (paired)", "ECE", "Brier",
            "mean P(True)", "best validation AUROC"]
    table = []
    for j, st in own["judges"].items():
        c = res["sk_rows"].get(j) or {}
        t = res["training"].get(j) or {}
        table.append([f"{j}: {DESC.get(j, j)}", f"{c['rows']:,} ({c['true']:,})" if c else "",
                      XS.f3(st["auroc"]), XS.fd(own["judge_minus_frequency_auroc"].get(j)),
                      XS.fd(own.get("vs_options_3k", {}).get(j)), XS.f3(st["ece"]), XS.f3(st["brier"]),
                      f"{st['mean_p_true']:.3f}", XS.f3({"value": t.get("best_valid_auroc")}) if t else ""])
    for j in S.JUDGES:
        if j not in own["judges"]:
            table.append([f"{j}: {DESC[j]}", "", "pending", *[""] * 6])
    L += md_table(head, table)
    L += ["", "Target (issue 36): AUROC ≥ 0.78 on the model's own held-out answers, above the shortcut by its paired "
          "interval, ECE below the base judge's.", "", "## Learning curves (validation: own answers of validation "
          "subjects)", "", f"![learning curves]({OUT_MD.with_suffix('.png').name})", ""]
    for j, t in res["training"].items():
        pts = ", ".join(f"{c['rows_seen']:,}: {c['valid_auroc']:.3f}" for c in t["curve"] if c["valid_auroc"] is not None)
        L.append(f"- {j}: rows seen → validation AUROC: {pts}; best step {t.get('best_step')}, "
                 f"{'stopped early' if t.get('stopped_early') else 'ran its planned steps'}; {t.get('seconds', 0):.0f} s")
    L += ["", "## Commands (as run; finished steps of the ledger)", ""] + [f"- {c}" for c in res["commands"]]
    L += ["", "## Data and records", "",
          "- sha256[:16]: " + ", ".join(f"{k} {v}" for k, v in res["data_hashes"]["files"].items()),
          f"- per-row records: {', '.join(res['records']) or 'none yet'} (every own answer with its label, the "
          "answer frequency and every judge's P(True), ctl_study's options-3k judge included)"]
    return L


if __name__ == "__main__":
    write()
