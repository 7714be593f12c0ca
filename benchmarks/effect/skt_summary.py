"""Table 2 from the SK-Tuning study's calibrate outputs (benchmarks/effect/skt_study.py): AUROC before/after with
paired bootstrap differences, the learning curve, shortcut baselines on the same options, training trajectories.

    python benchmarks/effect/skt_summary.py        # writes benchmarks/results/skt_table2.{md,json}

Only finished steps are read; a missing run is shown as "-". A run measured earlier whose outputs are not on this
machine (runs/ is not committed) is carried from the previous ``skt_table2.json`` and marked "(kept)", but only
where this machine's base model, on the same set, has the same options (their hash) and the same AUROC to 1e-4
(the data are rebuilt by seed and hash split; float32 kernels differ a little between CPUs): otherwise it is
dropped with a warning, never mixed with another base. A run measured here on a set whose base is not measured here
is not shown (a warning names it). Intervals: 95 % percentile bootstrap over questions (1000 resamples, seed 0);
differences are paired (the same questions resampled for both).
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: the shared formatter
from selfalign.report import tables  # noqa: E402
from selfalign.report.tables import md_table  # noqa: E402
import common  # noqa: E402
from skt_study import DATA, HELDOUT_TASKS, SK, SKT, TQA_LIMIT  # noqa: E402

from selfalign.selfeval import baselines as B  # noqa: E402
from selfalign import metrics as M  # noqa: E402
from selfalign.evals.calibrate import output_paths  # noqa: E402
from selfalign.store.io import iter_jsonl, read_jsonl  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "benchmarks/results"
SETS = {"a": ["a"], "b": [f"b-{t}" for t in HELDOUT_TASKS], "c": ["c"], "a-paper": ["a-paper"]}
DESC = {"a": "500 held-out qa_wikidata questions (gold vs same-relation distractor)",
        "b": f"4 whole held-out BIG-bench tasks ({', '.join(HELDOUT_TASKS)}), all options",
        "c": f"TruthfulQA MC test, first {TQA_LIMIT} questions (mc2 options)",
        "a-paper": "set (a) read with the paper's Self-Eval prompt (instruction header + 5 demos); trained 0-shot"}
MODELS = {"qwen": "qwen2.5-coder-0.5b", "smollm2": "smollm2-135m"}
BASE_TOL = 1e-4  # a kept run's base and this machine's may differ by float noise only


def items(model: str, label: str, set_name: str) -> dict | None:
    """{(part, id, option_idx): row} of the finished calibrate runs of a set (every part of (b) must be there)."""
    out = {}
    for part in SETS[set_name]:
        path = SKT / model / label / f"{part}.json"
        if not path.exists():
            return None
        for r in iter_jsonl(output_paths(path)[0]):
            out[(part, str(r["id"]), int(r["option_idx"]))] = r
    return out


def ci(fn, *arrays, groups):
    v, lo, hi = M.bootstrap_ci(fn, *arrays, n_boot=1000, seed=0, groups=groups)
    return {"value": v, "low": lo, "high": hi}


def shortcuts(keys, rows) -> dict:
    """Model-free scores on the same options: the longer option, answer frequency, the training true rate."""
    rs = [{"id": f"{k[0]}/{k[1]}", "option": rows[k]["option"], "label": rows[k]["label"], "task": k[0]} for k in keys]
    train = [{"task": "a", "option": r["proposal"], "label": r["label"]} for r in read_jsonl(DATA / "train10000.jsonl")] \
        if (DATA / "train10000.jsonl").exists() else []
    return {"longer_option": B.option_length(rs), "answer_frequency": B.answer_frequency(rs),
            "train_true_rate": B.train_true_rate(rs, train)}


def options_hash(keys: list, rows: dict) -> str:
    """What a set's AUROC is computed on: every (part, id, option index), its question, option text and label."""
    h = hashlib.sha256()
    for k in keys:
        r = rows[k]
        h.update(json.dumps([*k, r.get("question"), r.get("option"), r["label"]], ensure_ascii=False).encode())
    return h.hexdigest()[:16]


def same_base(cur: dict, old: dict) -> bool:
    """The same options (by hash where both record it, else by count) and the same base AUROC within ``BASE_TOL``:
    float32 kernels differ between CPUs (Qwen's base (a) AUROC 0.552229 on one machine, 0.552233 on another)."""
    if cur.get("options_hash") and old.get("options_hash"):
        if cur["options_hash"] != old["options_hash"]:
            return False
    elif (cur.get("n_options"), cur.get("n_questions")) != (old.get("n_options"), old.get("n_questions")):
        return False
    return abs(cur["base"]["auroc"]["value"] - old["base"]["auroc"]["value"]) <= BASE_TOL


def set_stats(model: str, set_name: str, labels: list[str]) -> dict | None:
    base = items(model, "base", set_name)
    if base is None:
        if lost := [lab for lab in labels if items(model, lab, set_name) is not None]:
            print(f"not shown: ({set_name}) {', '.join(lost)} of {model}: no base measured here", file=sys.stderr)
        return None
    runs = {lab: r for lab in labels if (r := items(model, lab, set_name)) is not None}
    keys = sorted(base)
    y = np.asarray([base[k]["label"] for k in keys], dtype=int)
    g = np.asarray([f"{k[0]}/{k[1]}" for k in keys])
    pb = np.asarray([base[k]["p_true"] for k in keys], dtype=float)

    def headline(p):
        return {"auroc": ci(M.auroc, y, p, groups=g), "ece": ci(lambda a, b: M.ece(a, b, 10), y, p, groups=g),
                "brier": ci(M.brier, y, p, groups=g), "mean_p_true": float(p.mean())}

    out = {"n_questions": len(set(g)), "n_options": len(keys), "positive_rate": float(y.mean()),
           "options_hash": options_hash(keys, base), "base": headline(pb), "runs": {}}
    for lab, r in runs.items():
        if set(r) != set(base):
            continue
        pa = np.asarray([r[k]["p_true"] for k in keys], dtype=float)
        d, lo, hi, p = M.paired_bootstrap(M.auroc, [y, pa], [y, pb], n_boot=1000, seed=0, groups=g)
        out["runs"][lab] = {**headline(pa), "auroc_diff": {"diff": d, "low": lo, "high": hi, "p_le_0": p}}
    out["shortcuts"] = {n: ci(M.auroc, y, np.asarray(s), groups=g) for n, s in shortcuts(keys, base).items()}
    return out


def training(model: str, label: str) -> dict | None:
    return common.train_record(SKT / model / label / "model")


def kept_mark(st: dict, lab: str) -> str:
    return " (kept)" if st["runs"].get(lab, {}).get("kept") else ""


def fmt(x, d=3):
    return tables.num(x, d, missing="-")


def fci(c):
    return tables.fmt(c, missing="-")


def fdiff(c):
    return tables.diff(c, missing="-")


def seed_lines(sets: dict, labels: list[str]) -> list[str]:
    """Per training size with several seeds: each set's AUROC and Δ per seed, their mean and spread (sd)."""
    import statistics

    out = []
    for n in sorted({lab.split("-")[0] for lab in labels}, key=lambda x: int(x[1:])):
        seeds = [lab for lab in labels if lab.split("-")[0] == n]
        if len(seeds) < 2:
            continue
        lines = []
        for set_name, st in sets.items():
            got = [(lab, st["runs"][lab]) for lab in seeds if lab in st["runs"]]
            if len(got) < 2:
                continue
            v = [r["auroc"]["value"] for _, r in got]
            d = [r["auroc_diff"]["diff"] for _, r in got]
            lines.append(f"- ({set_name}): AUROC mean {fmt(statistics.fmean(v))} (sd {fmt(statistics.stdev(v))}), "
                       f"Δ mean {tables.num(statistics.fmean(d), 3, sign=True)}; per seed "
                       + ", ".join(f"{lab.split('-')[1]} {fmt(r['auroc']['value'])} (Δ {fdiff(r['auroc_diff'])})"
                                   for lab, r in got))
        if lines:
            out += ["", f"Seeds, {n[1:]} SK rows ({len(seeds)} seeds: data order and adapter initialisation):", "",
                    *lines]
    return out


def carry(prev: dict, new: dict) -> list[str]:
    """Fill ``new`` (one model's result) with the runs of ``prev`` that are not measured here; returns their labels."""
    kept = set()
    for set_name, old in prev.get("sets", {}).items():
        cur = new["sets"].get(set_name)
        if cur is None:
            new["sets"][set_name] = cur = {**old, "runs": {}}
        elif not same_base(cur, old):
            print(f"not kept: ({set_name}) base AUROC {cur['base']['auroc']['value']:.6f} here, "
                  f"{old['base']['auroc']['value']:.6f} before", file=sys.stderr)
            continue
        for lab, r in old["runs"].items():
            if lab not in cur["runs"]:
                cur["runs"][lab] = {**r, "kept": True}
                kept.add(lab)
    for lab, t in prev.get("training", {}).items():
        if new["training"].get(lab) is None and t is not None:
            new["training"][lab] = t
    new["sets"] = {k: new["sets"][k] for k in SETS if k in new["sets"]}
    return sorted(kept)


ARGS = ("models", "sizes", "seeds", "only", "sets")


def invocations(plan: dict) -> list[dict]:
    """The study calls a plan records; a plan of the older format (the last call only) counts as one call."""
    if "invocations" in plan:
        return list(plan["invocations"])
    return [{k: plan[k] for k in ARGS if k in plan}] if any(k in plan for k in ARGS) else []


def merge_plans(prev: dict, here: dict) -> dict:
    """This machine's plan, its ``invocations`` preceded by the earlier machines' calls (kept runs were made by
    them; each call appears once)."""
    calls = [c for c in invocations(prev) if c not in invocations(here)] + invocations(here)
    return {**prev, **here, "invocations": calls} if (prev or here) else {}


def main() -> None:
    plan = json.loads((SKT / "plan.json").read_text()) if (SKT / "plan.json").exists() else {}
    prev = json.loads((OUT / "skt_table2.json").read_text()) if (OUT / "skt_table2.json").exists() else {}
    res, md = {}, ["# Table 2: P(True) calibration before and after SK-Tuning (qa_wikidata study)", "",
                   "`python benchmarks/effect/skt_study.py` then `python benchmarks/effect/skt_summary.py`. SK data: "
                   "`sk-data --mode options` on BIG-bench qa_wikidata (gold answer vs a same-relation distractor), "
                   f"0-shot Self-Eval prompt; sk-tune {json.dumps(SK)} (float32, LoRA r8 on the top layers, cached "
                   "trunk), best checkpoint on 150 held-out validation questions. AUROC with 95 % bootstrap intervals "
                   "over questions; Δ = paired bootstrap against the base model on the same options.", ""]
    md += [f"- ({k}) {v}" for k, v in DESC.items()] + [""]
    for short, model in MODELS.items():
        here = sorted(p.name for p in (SKT / short).iterdir() if p.is_dir() and p.name != "base") \
            if (SKT / short).exists() else []
        if not here and short not in prev:
            continue
        res[short] = {"sets": {}, "training": {lab: training(short, lab) for lab in here}}
        for set_name in SETS:
            if (st := set_stats(short, set_name, here)) is not None:
                res[short]["sets"][set_name] = st
        carry(prev.get(short, {}), res[short])
        shown = {lab for st in res[short]["sets"].values() for lab in st["runs"]}  # a run not yet evaluated: no column
        labels = sorted(shown, key=lambda x: (int(x.split("-")[0][1:]), x))
        rows = []
        for set_name, st in res[short]["sets"].items():
            best = max(st["shortcuts"].items(), key=lambda kv: kv[1]["value"] or 0)
            cells = [c for lab in labels for c in (fci(st["runs"].get(lab, {}).get("auroc")) + kept_mark(st, lab),
                                                   fdiff(st["runs"].get(lab, {}).get("auroc_diff")))]
            rows.append([f"({set_name}) {st['n_questions']} q / {st['n_options']} opt", fci(st["base"]["auroc"]),
                         *cells, f"{best[0]} {fci(best[1])}"])
        head = ["set", "base AUROC", *(h for lab in labels for h in (f"{lab} AUROC", f"Δ {lab}")), "best shortcut"]
        md += [f"## {model}", "", *md_table(head, rows)]
        md += ["", "ECE / Brier / mean P(True):", ""]
        for set_name, st in res[short]["sets"].items():
            parts = [f"base {fmt(st['base']['ece']['value'])} / {fmt(st['base']['brier']['value'])} / "
                     f"{fmt(st['base']['mean_p_true'])}"]
            parts += [f"{lab} {fmt(r['ece']['value'])} / {fmt(r['brier']['value'])} / {fmt(r['mean_p_true'])}"
                      for lab, r in st["runs"].items()]
            md.append(f"- ({set_name}): " + "; ".join(parts))
        md += ["", "Learning curve, set (a) AUROC by SK rows (seed 0):", ""]
        a = res[short]["sets"].get("a", {})
        for lab in labels:
            if lab.endswith("seed0") and lab in a.get("runs", {}):
                md.append(f"- {lab.split('-')[0][1:]} rows: {fci(a['runs'][lab]['auroc'])} "
                          f"(Δ {fdiff(a['runs'][lab]['auroc_diff'])})")
        md += seed_lines(res[short]["sets"], labels)
        md += ["", "Training (validation AUROC at each evaluation; training-set AUROC on a fixed 256-row sample):", ""]
        for lab, t in res[short]["training"].items():
            if t:
                ev = ", ".join(f"{s}: {fmt(tr, 2)}/{fmt(va, 2)}" for s, tr, va, _ in t["evals"])
                md.append(f"- {lab}: {t['rows']} rows, {t['steps']}/{t['planned_steps']} steps"
                          f"{' (stopped early)' if t['stopped_early'] else ''}, best step {t['best_step']} "
                          f"(valid AUROC {fmt(t['best_valid_auroc'])}), {t['seconds']:.0f} s + {t['encode_seconds']:.0f} s "
                          f"trunk/reference; step: train/valid AUROC {ev}")
        md.append("")
    res["plan"] = merge_plans(prev.get("plan", {}), plan)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "skt_table2.json").write_text(json.dumps(res, indent=1, default=str))
    (OUT / "skt_table2.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
