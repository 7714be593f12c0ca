"""The cross-task SK-Tuning study's summary (benchmarks/effect/xtask_study.py): AUROC / ECE / Brier of every judge
on (a) and (b), 95 % bootstrap intervals over questions, paired differences against the base model (the same
questions resampled for both), the model-free shortcuts beside, training trajectories, the exact commands and the
data hashes; and compact per-row records (gzip JSONL, fixed bytes for the same content) so anyone can re-score.

    python benchmarks/effect/xtask_study.py --only summary

Reads only what has finished; a judge or set not yet measured is listed as pending.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
import common  # noqa: E402
import xtask_study as X  # noqa: E402
from selfalign.report.tables import md_table  # noqa: E402

from selfalign.selfeval import baselines as B  # noqa: E402
from selfalign import metrics as M  # noqa: E402
from selfalign.evals.calibrate import output_paths  # noqa: E402
from selfalign.store.io import iter_jsonl, read_jsonl  # noqa: E402
from selfalign.text import normalize  # noqa: E402

ROOT = common.ROOT
SKT2 = ROOT / "benchmarks/results/skt_table2.json"


def curve_sizes() -> list[int]:
    """The learning-curve points planned (X.SIZES) or run (any xtask-nN step in the ledger), ascending."""
    run = {int(k.split("/")[0][len("xtask-n"):]) for k in common.ledger()
           if k.startswith("xtask-n") and k.split("/")[0][len("xtask-n"):].isdigit()}
    return sorted(set(X.SIZES) | run)


JUDGES = ["base", "xtask-nall", *[f"xtask-n{n}" for n in curve_sizes()], "intask"]
DESC = {"base": "base model, 0-shot P(True)",
        "xtask-nall": "cross-task SK judge, all rows",
        **{f"xtask-n{n}": f"cross-task SK judge, {n} rows" for n in curve_sizes()},
        "intask": "in-task reference: smollm2-135m-skt (3,000 qa_wikidata rows)"}
SETS = {"a": "(a) held-out qa_wikidata questions, gold vs same-relation distractor (skt_study's set (a))",
        "b": "(b) the model's own sampled answers to held-out qa_wikidata knowledge-QA prompts, labelled against "
             "the gold targets (distinct answer strings per question)"}
METRICS = {"auroc": M.auroc, "ece": lambda y, p: M.ece(y, p, 10), "brier": M.brier}


def sha(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.is_file() else None


def finished(name: str) -> bool:
    recs = common.ledger().get(name, [])
    return bool(recs) and recs[-1]["finished"]


def items(judge: str, name: str) -> dict | None:
    """{(id, option_idx): row} of a finished calibrate run."""
    if not finished(f"{judge}/calibrate-{name}"):
        return None
    return {(str(r["id"]), int(r["option_idx"])): r for r in iter_jsonl(output_paths(X.EVAL / judge / f"{name}.json")[0])}


def ci(fn, *arrays, groups):
    v, lo, hi = M.bootstrap_ci(fn, *arrays, n_boot=X.N_BOOT, seed=0, groups=groups)
    return {"value": v, "low": lo, "high": hi}


def paired(fn, y, pa, pb, groups):
    d, lo, hi, p = M.paired_bootstrap(fn, [y, pa], [y, pb], n_boot=X.N_BOOT, seed=0, groups=groups)
    return {"diff": d, "low": lo, "high": hi, "p_le_0": p}


def options_hash(keys, rows) -> str:
    """skt_summary.options_hash of set (a) (part "a"), to check it is skt_table2's set."""
    h = hashlib.sha256()
    for k in keys:
        r = rows[k]
        h.update(json.dumps(["a", *k, r.get("question"), r.get("option"), r["label"]], ensure_ascii=False).encode())
    return h.hexdigest()[:16]


def own_info() -> dict:
    """(b): per (calibrate id, proposal text): samples with exactly that text, and the normalised-answer share."""
    path = X.DATA / "b.jsonl"
    out: dict = {}
    for r in read_jsonl(path) if path.exists() else []:
        key = (f"{r['task']}/{r['id']}", r["proposal"])
        o = out.setdefault(key, {"count": 0, "answer_freq": r["answer_freq"], "targets": r.get("targets")})
        o["count"] += 1
    return out


def shortcuts_a(keys, rows) -> dict:
    rs = [{"id": k[0], "option": rows[k]["option"], "label": rows[k]["label"], "task": "a"} for k in keys]
    train_path = X.DATA / "wd" / "wd.jsonl"
    train = [{"task": "a", "option": r["proposal"], "label": r["label"]} for r in iter_jsonl(train_path)] \
        if train_path.exists() else []
    out = {"longer_option": B.option_length(rs), "answer_frequency_across_questions": B.answer_frequency(rs)}
    if train:
        out["train_true_rate (qa_wikidata train rows)"] = B.train_true_rate(rs, train)
    return out


def set_stats(name: str) -> tuple[dict | None, list[dict]]:
    base = items("base", name)
    if base is None:
        return None, []
    runs = {j: r for j in JUDGES[1:] if (r := items(j, name)) is not None and set(r) == set(base)}
    keys = sorted(base)
    y = np.asarray([base[k]["label"] for k in keys], dtype=int)
    g = np.asarray([k[0] for k in keys])
    P = {"base": np.asarray([base[k]["p_true"] for k in keys], dtype=float)}
    P.update({j: np.asarray([r[k]["p_true"] for k in keys], dtype=float) for j, r in runs.items()})
    out = {"description": SETS[name], "n_questions": len(set(g)), "n_options": len(keys),
           "positive_rate": float(y.mean()), "judges": {}}
    for j, p in P.items():
        st = {m: ci(fn, y, p, groups=g) for m, fn in METRICS.items()}
        st["mean_p_true"] = float(p.mean())
        if j != "base":
            st["diff_vs_base"] = {m: paired(fn, y, p, P["base"], g) for m, fn in METRICS.items()}
        out["judges"][j] = st
    # P(True) at full precision: a judge saturated near 0 or 1 ties when rounded (ctl's records, kept at 6 decimals,
    # tie 672 of 1,008 answers, and their AUROC reads 0.657 where the unrounded scores gave 0.666)
    records = [{"set": name, "id": k[0], "option_idx": k[1], "question": base[k]["question"],
                "option": base[k]["option"], "label": int(base[k]["label"]),
                "p_true": {j: float(P[j][i]) for j in P}} for i, k in enumerate(keys)]
    if name == "a":
        out["options_hash"] = options_hash(keys, base)
        try:
            ref = json.loads(SKT2.read_text())["smollm2"]["sets"]["a"]
            out["skt_table2"] = {"options_hash": ref.get("options_hash"),
                                 "same_options": ref.get("options_hash") == out["options_hash"],
                                 "base_auroc": ref["base"]["auroc"]["value"]}
        except (OSError, KeyError, ValueError):
            pass
        out["shortcuts"] = {n: ci(M.auroc, y, np.asarray(s), groups=g) for n, s in shortcuts_a(keys, base).items()}
    else:
        info = own_info()
        freq = np.asarray([info[(k[0], base[k]["option"])]["answer_freq"] for k in keys], dtype=float)
        cnt = np.asarray([info[(k[0], base[k]["option"])]["count"] for k in keys], dtype=int)
        for rec, f, c in zip(records, freq, cnt):
            rec.update(answer_freq=round(float(f), 6), count=int(c))
        out["shortcuts"] = {"answer_frequency (own samples)": {
            **ci(M.auroc, y, freq, groups=g), "ece": ci(METRICS["ece"], y, freq, groups=g),
            "brier": ci(M.brier, y, freq, groups=g)}}
        out["judge_minus_frequency_auroc"] = {j: paired(M.auroc, y, p, freq, g) for j, p in P.items()}
        # per sample (duplicates counted, as DPO sees them): the same rows repeated by their sample counts
        idx = np.repeat(np.arange(len(keys)), cnt)
        out["per_sample"] = {"n_samples": int(cnt.sum()), "accuracy": float(y[idx].mean()),
                             "auroc": {j: ci(M.auroc, y[idx], p[idx], groups=g[idx]) for j, p in P.items()},
                             "answer_frequency_auroc": ci(M.auroc, y[idx], freq[idx], groups=g[idx])}
        dropped = X.DATA / "b.dropped.json"
        if dropped.exists():
            out["empty_answers_dropped"] = json.loads(dropped.read_text())["empty_answers_dropped"]
    out["pending"] = [j for j in JUDGES[1:] if j not in runs]
    return out, records


def training(judge: str) -> dict | None:
    if not finished(f"{judge}/sk-tune"):
        return None
    return common.train_record(X.XT / judge / "model", ("rows", "valid_rows", *common.TRAIN_KEYS[1:]))


def write_records(name: str, records: list[dict]) -> Path | None:
    if not records:
        return None
    X.RECORDS.mkdir(parents=True, exist_ok=True)
    dst = X.RECORDS / f"{name}.jsonl.gz"
    blob = gzip.compress("".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records).encode(),
                         mtime=0)
    if not dst.exists() or dst.read_bytes() != blob:
        dst.write_bytes(blob)
    return dst


def write_samples_record() -> Path | None:
    src = X.DATA / "own" / "samples.jsonl"
    if not finished("data/sample-own") or not src.exists():
        return None
    from selfalign.text import match_targets

    rows = [{"id": r["id"], "sample_idx": r["sample_idx"], "question": r["question"], "prompt": r["prompt"],
             "response": r["response"], "targets": r["targets"], "label": match_targets(r["response"], r["targets"]),
             "norm": normalize(r["response"])} for r in iter_jsonl(src)]
    rows.sort(key=lambda r: (r["id"], r["sample_idx"]))
    X.RECORDS.mkdir(parents=True, exist_ok=True)
    dst = X.RECORDS / "own_samples.jsonl.gz"
    blob = gzip.compress("".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows).encode(),
                         mtime=0)
    if not dst.exists() or dst.read_bytes() != blob:
        dst.write_bytes(blob)
    return dst


def record_files(records: Path) -> list[str]:
    """The kept per-row record files of a study, relative to the checkout."""
    return sorted(p.relative_to(ROOT).as_posix() for p in records.rglob("*") if p.is_file()) if records.is_dir() else []


def file_hashes(base: Path, paths) -> dict:
    """{path relative to ``base``: sha256[:16]} of the files that exist."""
    return {p.relative_to(base).as_posix(): sha(p) for p in paths if p.is_file()}


def publish(res: dict, out_md: Path, lines: list[str]) -> dict:
    """Write a study's summary: ``<out_md>.json`` (the figures) and ``out_md`` (the page made from them).

    On a machine without the study's ledger (``runs/`` is not committed) a committed page is kept, not overwritten:
    the per-row records bring back the evaluations, not every column (own-answer judges, commands, data hashes)."""
    if not (common.SMOKE or common.STEPS.exists()) and out_md.exists():
        raise SystemExit(f"no study ledger at {common.STEPS}: the committed {out_md.name} and its records are kept "
                         "(run the study to measure again)")
    out_json = out_md.with_suffix(".json")
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(res, indent=1, default=str) + "\n")
    out_md.write_text("\n".join(lines) + "\n")
    print(f"wrote {out_md} and {out_json}; {len(res.get('records') or [])} record files")
    return res


def commands(places: dict | None = None) -> list[str]:
    """The finished steps' commands, with no machine path: the checkout's root dropped, and each of ``places``
    (a folder -> the name to show, e.g. a study folder outside the checkout -> ``runs/ctl``) replaced."""
    out = []
    table = {str(ROOT) + "/": "", **{str(k).rstrip("/") + "/": v.rstrip("/") + "/" for k, v in (places or {}).items()}}

    def clean(a: str) -> str:
        for k, v in table.items():
            a = a.replace(k, v)
        return a

    for name, recs in common.ledger().items():
        fin = [r for r in recs if r["finished"]]
        if fin:
            argv = ["python", *[clean(str(a)) for a in fin[-1]["argv"][1:]]]
            out.append(f"{name}: `{' '.join(json.dumps(a) if (' ' in a or chr(10) in a) else a for a in argv)}` "
                       f"({fin[-1]['wall_s']:.0f} s wall, {fin[-1]['user_s']:.0f} s CPU)")
    return out


def data_hashes() -> dict:
    from selfalign.data import data_root

    d = X.DATA
    files = {p.relative_to(d).as_posix(): sha(p) for p in sorted(d.rglob("*.jsonl"))
             if p.is_file() and not p.name.endswith(".progress.jsonl")}
    bb = data_root() / "bigbench"
    src = {t: sha(bb / t / "task.json") for t in [*X.tasks(), "qa_wikidata"]}
    return {"files": files, "bigbench_task_json": src}


def f3(m: dict | None, d: int = 3) -> str:
    if not m or m.get("value") is None:
        return "-"
    lo, hi = m.get("low"), m.get("high")
    return f"{m['value']:.{d}f}" + (f" [{lo:.{d}f}, {hi:.{d}f}]" if lo is not None else "")


def fd(m: dict | None, d: int = 3) -> str:
    if not m or m.get("diff") is None:
        return "-"
    lo, hi = m.get("low"), m.get("high")
    return f"{m['diff']:+.{d}f}" + (f" [{lo:+.{d}f}, {hi:+.{d}f}]" if lo is not None else "")


def write() -> dict:
    sets, recs = {}, {}
    for name in ("a", "b"):
        sets[name], recs[name] = set_stats(name)
    if not (X.SMOKE or recs["a"] or recs["b"]):  # a fresh machine: runs/ is gone, the committed results stay
        raise SystemExit(f"no finished evaluation under {X.XT}: the committed {X.OUT_MD.name} and its records are kept "
                         "(run benchmarks/effect/xtask_run.sh to measure again)")
    train = {j: t for j in JUDGES if j.startswith("xtask") and (t := training(j))}
    rec_paths = [p for p in (write_records("a", recs["a"]), write_records("b", recs["b"]), write_samples_record()) if p]
    try:
        xt_counts = json.loads((X.DATA / "xt.jsonl.meta.json").read_text()).get("counts")
    except (OSError, ValueError):
        xt_counts = None
    res = {"study": "xtask_smollm2", "model": X.MODEL, "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "smoke": X.SMOKE, "sk": X.SKX, "dtype": X.DTYPE, "cap_per_task": X.CAP, "sizes": [*curve_sizes(), "all"],
           "tasks": X.tasks(), "excluded": X.EXCLUDE, "sampling": {**X.SAMPLING, "n": X.N_SAMPLES,
                                                                     "prompts": X.N_OWN},
           "sets": sets, "training": train, "xtask_rows_per_task": xt_counts, "commands": commands(),
           "data_hashes": data_hashes(), "records": [p.relative_to(ROOT).as_posix() for p in rec_paths],
           "bootstrap": {"n_boot": X.N_BOOT, "seed": 0, "unit": "question", "level": 0.95, "method": "percentile"}}
    return publish(res, X.OUT_MD, markdown(res))


def markdown(res: dict) -> list[str]:
    L = ["# Cross-task SK-Tuning on SmolLM2-135M: judging qa_wikidata with no Wikidata in the SK data (issue 36)", "",
         "`python benchmarks/effect/xtask_study.py` then `python benchmarks/effect/xtask_study.py --only summary` "
         f"(written {res['written']}{', SMOKE sizes' if res['smoke'] else ''}). SK data: `sk-data --mode options` on "
         f"{len(res['tasks'])} BIG-bench tasks/subtasks ({', '.join(res['tasks'])}), at most {res['cap_per_task']} "
         "questions per task, 20 % of questions held out; left out: "
         + "; ".join(f"{k} ({v})" for k, v in res["excluded"].items())
         + f". sk-tune {json.dumps(res['sk'])} ({res['dtype']}, one thread), best checkpoint on {X.NV} held-out "
         "questions of the same cross-task data (no Wikidata). Intervals: 95 % percentile bootstrap over questions "
         f"({res['bootstrap']['n_boot']} resamples, seed 0); Δ = paired bootstrap against the base model on the same "
         "rows. Every P(True) is 0-shot, read as every reader reads it (calibrate).", ""]
    for name in ("a", "b"):
        st = res["sets"].get(name)
        L.append(f"## {SETS[name]}")
        L.append("")
        if not st:
            L += ["pending (its base run has not finished)", ""]
            continue
        L.append(f"{st['n_questions']} questions, {st['n_options']} options, {st['positive_rate']:.3f} true."
                 + (f" Options hash {st['options_hash']} (skt_table2's set (a): "
                    f"{'the same' if st.get('skt_table2', {}).get('same_options') else 'DIFFERENT'}; its base AUROC "
                    f"{st.get('skt_table2', {}).get('base_auroc', float('nan')):.3f})." if name == "a" else "")
                 + (f" Empty answers dropped: {st.get('empty_answers_dropped', 0)}." if name == "b" else ""))
        L.append("")
        rows = []
        for j in JUDGES:
            s = st["judges"].get(j)
            if not s:
                rows.append([DESC[j], "pending", "", "", "", "", "", ""])
                continue
            dv = s.get("diff_vs_base", {})
            rows.append([DESC[j], f3(s["auroc"]), fd(dv.get("auroc")), f3(s["ece"]), fd(dv.get("ece")),
                         f3(s["brier"]), fd(dv.get("brier")), f"{s['mean_p_true']:.3f}"])
        L += md_table(["judge", "AUROC", "Δ AUROC", "ECE", "Δ ECE", "Brier", "Δ Brier", "mean P(True)"], rows)
        L.append("")
        for n, s in st.get("shortcuts", {}).items():
            extra = f"; ECE {f3(s['ece'])}, Brier {f3(s['brier'])}" if "ece" in s else ""
            L.append(f"- shortcut (no model) {n}: AUROC {f3(s)}{extra}")
        if name == "b":
            for j, d in st.get("judge_minus_frequency_auroc", {}).items():
                L.append(f"- {DESC[j]} minus the answer-frequency shortcut, AUROC: {fd(d)}")
            ps = st.get("per_sample", {})
            if ps:
                L.append(f"- per sample (duplicates counted, as DPO sees them; {ps['n_samples']} samples, accuracy "
                         f"{ps['accuracy']:.3f}): AUROC " + ", ".join(f"{j} {f3(v)}" for j, v in ps["auroc"].items())
                         + f"; answer frequency {f3(ps['answer_frequency_auroc'])}")
        L.append("")
    L += ["## Learning curve (cross-task rows → AUROC)", ""]
    for name in ("a", "b"):
        st = res["sets"].get(name) or {"judges": {}}
        parts = []
        for j in [*[f"xtask-n{n}" for n in curve_sizes()], "xtask-nall"]:
            s = st["judges"].get(j)
            rows = (res["training"].get(j) or {}).get("rows")
            parts.append(f"{rows or j.split('-n')[1]} rows: " + (f"{f3(s['auroc'])} (Δ {fd(s['diff_vs_base']['auroc'])})"
                                                               if s else "pending"))
        L.append(f"- ({name}): " + "; ".join(parts))
    L += ["", "## Training (validation = held-out cross-task questions)", ""]
    for j, t in res["training"].items():
        ev = ", ".join(f"{s}: {a:.2f}/{v:.2f}" for s, a, v, _ in t["evals"] if a is not None and v is not None)
        L.append(f"- {j}: {t['rows']} rows, {t['steps']}/{t['planned_steps']} steps"
                 f"{' (stopped early)' if t['stopped_early'] else ''}, best step {t['best_step']} (valid AUROC "
                 f"{t['best_valid_auroc']:.3f}), {t['seconds']:.0f} s + {t['encode_seconds']:.0f} s trunk/reference; "
                 f"step: train/valid AUROC {ev}")
    if not res["training"]:
        L.append("- none finished yet")
    L += ["", "## Commands (as run; finished steps of the ledger)", ""] + [f"- {c}" for c in res["commands"]]
    L += ["", "## Data", ""]
    if res.get("xtask_rows_per_task"):
        L.append("- cross-task SK rows per task (train / held-out): " + "; ".join(
            f"{t} {c.get('train', {}).get('true', 0) + c.get('train', {}).get('false', 0)}/"
            f"{c.get('heldout', {}).get('true', 0) + c.get('heldout', {}).get('false', 0)}"
            for t, c in res["xtask_rows_per_task"].items()))
    L.append(f"- sha256[:16] of the files under {X.DATA.relative_to(ROOT).as_posix()}: " + ", ".join(
        f"{k} {v}" for k, v in res["data_hashes"]["files"].items()))
    L.append("- BIG-bench task.json sha256[:16]: " + ", ".join(
        f"{k} {v}" for k, v in res["data_hashes"]["bigbench_task_json"].items()))
    L.append(f"- per-row records (re-score from these): {', '.join(res['records']) or 'none yet'}; each row of "
             "a/b: set, id, option_idx, question, option, label, p_true per judge (and for (b) answer_freq, count); "
             "own_samples: every sample with its prompt, label and normalised answer")
    return L
