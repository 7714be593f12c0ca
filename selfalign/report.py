"""Stage report: one self-contained HTML page (and a Markdown twin) comparing runs.

Every evaluation result (a ``*.json`` with ``task`` and ``metrics``, see ``evals.results``) and every calibration
report (``selfalign calibrate`` output) found in the given run folders is gathered into: a Table-1-like metric
table (rows = runs, columns = task metrics with 95% intervals), paired-bootstrap differences of every run vs
the first, reliability diagrams, and side-by-side answers where runs answered the same item differently.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from selfalign.config import opt, require
from selfalign.errors import InputError, SelfAlignError
from selfalign.evals.results import compare, load_result
from selfalign.io import iter_jsonl

TEXT_FIELDS = ("answer", "response", "generation", "text")
MAX_JSON_BYTES = 10 * 2 ** 20  # bigger JSON files (tokenizers, model configs) are never results


@dataclass
class ReportConfig:
    runs: list[str] = opt([], "run folders (searched recursively) or result JSON files; the first is the baseline")
    output: Optional[str] = opt(None, "report HTML path (self-contained: inline CSS, embedded PNG plots)")
    markdown: Optional[str] = opt(None, "also write the report as Markdown to this path")
    names: list[str] = opt([], "labels for the runs, in the same order (default: folder or file names)")
    max_examples: int = opt(30, "side-by-side answers: at most this many differing items per task")
    n_boot: int = opt(1000, "bootstrap resamples for the paired differences")
    seed: int = opt(0, "bootstrap seed")


@dataclass
class Run:
    name: str
    source: Path
    results: dict = field(default_factory=dict)  # key -> (summary, rows, path)
    calibrations: dict = field(default_factory=dict)  # key -> (report, path)


def _kind(path: Path, explicit: bool) -> tuple[str, dict] | None:
    """('result' | 'calibration', parsed JSON) or None for other JSON files (an error for an explicit file)."""
    try:
        if not explicit and path.stat().st_size > MAX_JSON_BYTES:
            return None
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        if explicit:
            raise InputError(path, f"not a readable JSON result ({type(e).__name__})") from None
        return None
    if isinstance(obj, dict) and "task" in obj and "metrics" in obj:
        return "result", obj
    if isinstance(obj, dict) and "reliability_bins" in obj and "ptrue" in obj:
        return "calibration", obj
    if explicit:
        raise InputError(path, "neither an evaluation result ('task'/'metrics') nor a calibration report")
    return None


def _unique(key: str, taken: dict, path: Path) -> str:
    return key if key not in taken else f"{key} ({path.stem})"


def load_run(source: str, name: str) -> Run:
    path = Path(source)
    if not path.exists():
        raise InputError(path, "no such run folder or result file")
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*.json") if p.is_file())
    run = Run(name, path)
    for f in files:
        found = _kind(f, explicit=path.is_file())
        if found is None:
            continue
        kind, obj = found
        if kind == "result":
            summary, rows = load_result(f)
            key = summary["task"] + (f" [{summary['split']}]" if summary.get("split") else "")
            run.results[_unique(key, run.results, f)] = (summary, rows, f)
        else:
            key = f"calibration: {obj.get('data')}" + (f" [{obj['split']}]" if obj.get("split") else "")
            run.calibrations[_unique(key, run.calibrations, f)] = (obj, f)
    if not run.results and not run.calibrations:
        raise InputError(path, "no evaluation results (*.json with 'task' and 'metrics') or calibration reports")
    return run


def _items_file(report: dict, path: Path) -> Path | None:
    if not report.get("items"):
        return None
    p = Path(report["items"])
    for cand in (p, path.parent / p.name):
        if cand.exists():
            return cand
    return None


def _provenance(run: Run) -> dict:
    metas = [s.get("meta") or {} for s, _, _ in run.results.values()] + [r.get("meta") or {}
                                                                           for r, _ in run.calibrations.values()]
    m = metas[0] if metas else {}
    cfg, info = m.get("config") or {}, m.get("model_info") or {}
    return {"name": run.name, "source": str(run.source), "model": info.get("model") or cfg.get("model"),
            "adapter": cfg.get("adapter"), "commit": m.get("git_commit"), "time": m.get("time")}


def _text(row: dict) -> tuple[str, str] | None:
    return next(((f, row[f]) for f in TEXT_FIELDS if isinstance(row.get(f), str)), None)


def differing_answers(runs: list[Run], key: str, max_examples: int) -> dict | None:
    """Items (by id) whose text answer differs between runs that have this task; None when <2 runs have it."""
    have = [r for r in runs if key in r.results]
    if len(have) < 2:
        return None
    by_run = {r.name: {str(x["id"]): x for x in r.results[key][1]} for r in have}
    metrics = list(have[0].results[key][0]["metrics"])
    ids = list(dict.fromkeys(i for r in have for i in by_run[r.name]))
    items, n_differ = [], 0
    for i in ids:
        rows = {name: rs[i] for name, rs in by_run.items() if i in rs and _text(rs[i])}
        if len(rows) < 2 or len({_text(x)[1].strip() for x in rows.values()}) < 2:
            continue
        n_differ += 1
        if len(items) < max_examples:
            first = next(iter(rows.values()))
            items.append({"id": i, "question": first.get("question") or first.get("topic") or "",
                          "cells": {n: {"field": _text(x)[0], "text": _text(x)[1],
                                        "metrics": {m: x.get(m) for m in metrics if x.get(m) is not None}}
                                    for n, x in rows.items()}})
    return {"key": key, "runs": [r.name for r in have], "n_differ": n_differ, "items": items} if items else None


def judge_notes(runs: list[Run]) -> list[str]:
    """One line per result that carries a judge validation (truthfulqa-gen) or a verifier gate (biogen)."""
    from selfalign.evals.judge_check import proxy_line

    out = []
    for r in runs:
        for key, (s, _, _) in r.results.items():
            if "judge_validation" in s:
                out.append(f"{r.name}: {key}: {proxy_line(s['judge_validation'])}")
            g, fs = s.get("verifier_gate"), s.get("factscore") or {}
            if g is not None or "init_score" in fs:
                verdict = "passed" if g and g.get("passed") else "FAILS: FActScore not meaningful"
                gate = (f"verifier gate AUROC {g['auroc']:.2f} ({verdict})" if g and g.get("auroc") is not None
                        else "verifier not gated")
                sc, init = fs.get("score"), fs.get("init_score")
                out.append(f"{r.name}: {key}: {gate}; FActScore {_f3(sc)}, supported fraction (no length penalty) "
                           f"{_f3(init)}, unverifiable bios {fs.get('unverifiable', 0)}")
    return out


def _f3(v) -> str:
    return f"{v:.3f}" if isinstance(v, (int, float)) else "n/a"


def build_model(runs: list[Run], cfg: ReportConfig) -> dict:
    """Everything the renderers show, as plain data (plots as base64 PNG)."""
    from selfalign import report_render as R

    keys = list(dict.fromkeys(k for r in runs for k in r.results))
    columns = [(k, m) for k in keys for m in dict.fromkeys(m for r in runs if k in r.results
                                                            for m in r.results[k][0]["metrics"])]
    table = {r.name: {(k, m): r.results[k][0]["metrics"].get(m) for k, m in columns if k in r.results}
             for r in runs}
    base = runs[0]
    diffs = {}
    for r in runs[1:]:
        diffs[r.name] = {(k, m): compare(r.results[k][1], base.results[k][1], m, cfg.n_boot, cfg.seed)
                         for k, m in columns if k in r.results and k in base.results}
    calib = []
    for r in runs:
        for key, (rep, path) in r.calibrations.items():
            items = _items_file(rep, path)
            png = None
            if items:
                rows = list(iter_jsonl(items))
                png = R.reliability_png([x["label"] for x in rows], [x["p_true"] for x in rows],
                                        f"{r.name}: {key}") if rows else None
            elif rep.get("plot") and Path(rep["plot"]).exists():
                png = R.b64(Path(rep["plot"]).read_bytes())
            calib.append({"run": r.name, "key": key, "report": rep, "png": png})
    bars = {k: R.bar_png(k, [(r.name, r.results[k][0]["metrics"]) for r in runs if k in r.results]) for k in keys}
    answers = [a for a in (differing_answers(runs, k, cfg.max_examples) for k in keys) if a]
    return {"generated": time.strftime("%Y-%m-%d %H:%M:%S"), "runs": [_provenance(r) for r in runs],
            "baseline": base.name, "columns": columns, "table": table, "diffs": diffs, "calibration": calib,
            "bars": bars, "answers": answers, "n_boot": cfg.n_boot, "judges": judge_notes(runs)}


def _names(cfg: ReportConfig) -> list[str]:
    if cfg.names and len(cfg.names) != len(cfg.runs):
        raise SelfAlignError(f"--names gives {len(cfg.names)} labels for {len(cfg.runs)} runs")
    names = list(cfg.names) or [Path(p).stem if Path(p).is_file() else Path(p).resolve().name for p in cfg.runs]
    if len(set(names)) < len(names) and not cfg.names:
        names = list(cfg.runs)  # two runs named alike: label them by the paths given
    if len(set(names)) < len(names):
        raise SelfAlignError("run labels must be unique; pass --names")
    return names


def run_report(cfg: ReportConfig) -> dict:
    from selfalign import report_render as R

    require(cfg, "output")
    if not cfg.runs:
        raise SelfAlignError("missing --runs")
    runs = [load_run(src, name) for src, name in zip(cfg.runs, _names(cfg))]
    model = build_model(runs, cfg)
    out = Path(cfg.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(R.to_html(model), encoding="utf-8")
    if cfg.markdown:
        Path(cfg.markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(cfg.markdown).write_text(R.to_markdown(model), encoding="utf-8")
    return {"output": str(out), "markdown": cfg.markdown, "runs": len(runs),
            "results": sum(len(r.results) for r in runs), "calibrations": len(model["calibration"]),
            "metric_columns": len(model["columns"]),
            "differing_answers": {a["key"]: a["n_differ"] for a in model["answers"]}}
