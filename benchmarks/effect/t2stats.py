"""Table 2 numbers from the calibrate outputs: metrics per system, paired before/after differences, baselines."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from common import SIZES, T2, calibration_result, eval_sets, short, sk_data_path
from selfalign import baselines as B
from selfalign import metrics as M
from selfalign.evals.calibrate import output_paths
from selfalign.io import iter_jsonl, read_jsonl

HEAD = ("auroc", "ece", "brier", "selection_accuracy", "direct_accuracy", "mean_p_true")


def headline(report: dict) -> dict:
    """{metric: {value, low, high}} of a calibrate result (old reports upgraded by ``common.calibration_result``)."""
    r = calibration_result(report)

    def ci(name: str) -> dict:
        m = r["metrics"][name]
        return {"value": m["value"], "low": m["ci_low"], "high": m["ci_high"]}

    return {"auroc": ci("auroc"), "ece": ci("ece"), "brier": ci("brier"), "selection_accuracy": ci("selection_acc"),
            "direct_accuracy": ci("direct_acc"), "mean_p_true": {"value": r["mean_p_true"]}}


def load(model: str, label: str, name: str):
    """(report, {(id, option_idx): item row}) of one calibrate run, or None if it has not finished."""
    path = T2 / short(model) / label / f"{name}.json"
    if not path.exists():
        return None
    items = {(str(r["id"]), int(r["option_idx"])): r for r in iter_jsonl(output_paths(path)[0])}
    return calibration_result(json.loads(path.read_text())), items


def _task(set_name: str, qid: str) -> str:
    return qid.split("/", 1)[0] if set_name in ("a", "b") else "truthfulqa-mc"


def baseline_scores(set_name: str, rows: list[dict]) -> dict:
    """Model-free scores of the rows (each with id, option, label)."""
    rows = [{**r, "task": _task(set_name, str(r["id"]))} for r in rows]
    train = [{"task": r["task"], "option": r["proposal"], "label": r["label"]} for r in read_jsonl(sk_data_path())]
    return {"answer_frequency": B.answer_frequency(rows), "longer_option": B.option_length(rows),
            "train_true_rate": B.train_true_rate(rows, train)}


def _ci(fn, *arrays, groups):
    v, lo, hi = M.bootstrap_ci(fn, *arrays, n_boot=SIZES["n_boot"], seed=0, groups=groups)
    return {"value": v, "low": lo, "high": hi}


def _mean_of(fn):
    def f(y, *ps):
        vals = [fn(y, p) for p in ps]
        return None if any(v is None for v in vals) else float(np.mean(vals))
    return f


PAIRED = {"auroc": M.auroc, "brier": M.brier, "ece": lambda y, p: M.ece(y, p, 10)}


def paired(metric: str, y, after: list, before, groups) -> dict:
    """metric(after) − metric(before), the after side averaged over seeds; bootstrap over questions."""
    d, lo, hi, p = M.paired_bootstrap(_mean_of(PAIRED[metric]), [y, *after], [y, before],
                                      n_boot=SIZES["n_boot"], seed=0, groups=groups)
    return {"diff": d, "low": lo, "high": hi, "p_le_0": p, "excludes_zero": lo is not None and (lo > 0 or hi < 0)}


def set_stats(model: str, set_name: str, seeds: list[int]) -> dict | None:
    base = load(model, "base", set_name)
    if base is None:
        return None
    runs = {s: r for s in seeds if (r := load(model, f"seed{s}", set_name)) is not None}
    keys = sorted(set(base[1]).intersection(*(r[1] for r in runs.values())))
    y = np.asarray([base[1][k]["label"] for k in keys], dtype=int)
    g = np.asarray([k[0] for k in keys])
    pb = np.asarray([base[1][k]["p_true"] for k in keys], dtype=float)
    ps = {s: np.asarray([r[1][k]["p_true"] for k in keys], dtype=float) for s, r in runs.items()}
    out = {"n_questions": base[0]["n_questions"], "n_options": base[0]["n_options"],
           "positive_rate": base[0]["positive_rate"], "chance_accuracy": base[0]["chance_accuracy"],
           "base": headline(base[0]), "seeds": {}, "paired_n_options": len(keys)}
    for s, r in runs.items():
        out["seeds"][s] = {**headline(r[0]), "auroc_diff": paired("auroc", y, [ps[s]], pb, g)}
    if runs:
        out["seed_mean"] = {m: {"mean": float(np.mean([v[m]["value"] for v in out["seeds"].values()])),
                                "sd": float(np.std([v[m]["value"] for v in out["seeds"].values()], ddof=1))
                                if len(runs) > 1 else None} for m in HEAD}
        out["seed_mean_diff"] = {m: paired(m, y, list(ps.values()), pb, g) for m in PAIRED}
    rows = [{"id": k[0], "option": base[1][k]["option"], "label": base[1][k]["label"]} for k in keys]
    out["baselines"] = {name: _ci(M.auroc, y, np.asarray(sc), groups=g)
                        for name, sc in baseline_scores(set_name, rows).items()}
    return out


def table2() -> dict:
    """{model: {set: stats}} for every model and set with a finished base calibration."""
    out = {}
    for model in SIZES["models"]:
        sets = {n: st for n in eval_sets() if (st := set_stats(model, n, SIZES["seeds"])) is not None}
        if sets:
            out[model] = sets
    return out


def training(model: str) -> dict:
    """Per seed: the sk-tune summary (rows, steps, final loss / reward accuracy, seconds)."""
    out = {}
    for s in SIZES["seeds"]:
        p = T2 / short(model) / f"seed{s}" / "model" / "train_summary.json"
        if p.exists():
            d = json.loads(p.read_text())
            out[s] = {k: d.get(k) for k in ("rows", "steps", "final", "seconds", "saved", "best_step",
                                            "best_valid_auroc", "initial_valid")}
            log = p.with_name("train_log.jsonl")
            recs = [json.loads(x) for x in log.read_text().splitlines() if x.strip()] if log.exists() else []
            losses = [r["loss"] for r in recs if "loss" in r]
            k = max(1, len(losses) // 4)  # mean training loss over the first and the last quarter of the steps
            out[s]["loss_first_last_quarter"] = ([sum(losses[:k]) / k, sum(losses[-k:]) / k] if losses else None)
            out[s]["valid_checks"] = [(r["step"], r["valid"]["auroc"], r["valid"]["p_true_mean"])
                                      for r in recs if "valid" in r]
    return out


def data_counts() -> dict:
    p = Path(str(sk_data_path()) + ".meta.json")
    return json.loads(p.read_text()) if p.exists() else {}
