"""Stage report: one self-contained HTML page (and a Markdown twin) comparing runs.

Every evaluation result (a ``*.json`` with ``task`` and ``metrics``, see ``evals.results``) found in the given
folders is gathered into: a Table-1-like metric table (rows = runs, columns = task metrics with 95% intervals),
paired-bootstrap differences of every run vs the first, reliability diagrams (of the results that name an
``items`` file of per-option ``label`` / ``p_true`` rows, as calibrate's do), and side-by-side answers (with the
reference) where runs answered the same item differently. A recipe run folder (``selfalign run``) gives one run per evaluated model (base / aligned /
sk-tuned, base first) and adds its training curves, settings, pair statistics and BioGEN's per-fact decisions
(``report_run``).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from selfalign.config import Config, opt, require
from selfalign.errors import InputError, SelfAlignError
from selfalign.evals.results import compare, load_result
from selfalign.store.guard import OutputGuard
from selfalign.store.io import iter_jsonl, read_json, write_text
from selfalign.report.run_folder import safe_png
from selfalign.store.lineage import result_settings
from selfalign.store.provenance import meta

TEXT_FIELDS = ("answer", "response", "generation", "text")
MAX_JSON_BYTES = 10 * 2 ** 20  # bigger JSON files (tokenizers, model configs) are never results


@dataclass
class ReportConfig(Config):
    run_dirs: list[str] = opt([], "recipe run folders (runs/demo: one run per evaluated model), other folders "
                                  "(searched recursively) or result JSON files; the first is the baseline",
                              positional=True, metavar="RUN_DIR")
    runs: list[str] = opt([], "more folders or result files, after the RUN_DIR arguments")
    output: Optional[str] = opt(None, "report HTML path (self-contained: inline CSS, embedded PNG plots; default: "
                                      "report.html in the first RUN_DIR)")
    markdown: Optional[str] = opt(None, "also write the report as Markdown to this path")
    names: list[str] = opt([], "labels for the runs, in the same order (default: folder or file names)")
    max_examples: int = opt(30, "side-by-side answers (and BioGEN bios): at most this many items per task", min=0)
    n_boot: int = opt(1000, "bootstrap resamples for the paired differences; 0 = none", min=0)
    bootstrap_seed: int = opt(0, "bootstrap seed", min=0, aliases=("--seed",))


@dataclass
class Run:
    name: str
    source: Path
    results: dict = field(default_factory=dict)  # key -> (summary, rows, path)
    root: Optional[Path] = None  # files named inside results are read only from here (the run folder)
    folder: Optional[Path] = None  # the recipe run folder this model's evaluations belong to


def _is_result(path: Path, explicit: bool) -> bool:
    """Whether a JSON file is an evaluation result (other JSON files are skipped; an error for an explicit file)."""
    try:
        if not explicit and path.stat().st_size > MAX_JSON_BYTES:
            return False
        obj = read_json(path, "result file")  # bounded: nesting, size, lone surrogates
    except OSError:
        return False
    except InputError:
        if explicit:
            raise
        return False
    if isinstance(obj, dict) and "task" in obj and "metrics" in obj:
        return True
    if explicit:
        raise InputError(path, "not an evaluation result (no 'task'/'metrics')")
    return False


def _unique(key: str, taken: dict, path: Path) -> str:
    return key if key not in taken else f"{key} ({path.stem})"


def load_runs(source: str, name: str, several: bool) -> list[Run]:
    """A recipe run folder: one run per evaluated model (labelled ``name: model`` when several sources are
    compared); anything else: one run."""
    from selfalign.report.run_folder import is_run_folder, model_labels

    path = Path(source)
    if not is_run_folder(path):
        return [load_run(source, name)]
    runs = [load_run(str(path / "eval" / label), f"{name}: {label}" if several else label, root=path)
            for label in model_labels(path)]
    for r in runs:
        r.folder = path
    return runs


def load_run(source: str, name: str, root: Optional[Path] = None) -> Run:
    path = Path(source)
    if not path.exists():
        raise InputError(path, "no such run folder or result file")
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*.json") if p.is_file())
    run = Run(name, path, root=root or (path.parent if path.is_file() else path))
    for f in files:
        if not _is_result(f, explicit=path.is_file()):
            continue
        summary, rows = load_result(f)
        run.results[_unique(result_key(summary), run.results, f)] = (summary, rows, f)
    if not run.results:
        raise InputError(path, "no evaluation results (*.json with 'task' and 'metrics')")
    return run


def result_key(summary: dict) -> str:
    """The column group of a result: its task, the set when the task runs on several (calibrate), the split."""
    return (summary["task"] + (f": {summary['set']}" if isinstance(summary.get("set"), str) else "")
            + (f" [{summary['split']}]" if summary.get("split") else ""))


def _items_file(report: dict, path: Path, root: Path) -> Path | None:
    """A result's per-option items file (calibrate): beside the result, else where it names, but only inside the
    run's folder."""
    from selfalign.report.run_folder import inside

    if not isinstance(report.get("items"), str):
        return None
    p = Path(report["items"])
    return inside(path.parent / p.name, root) or inside(p, root)


def _provenance(run: Run) -> dict:
    """Who made a run's results, from their ``meta`` (a part of the wrong shape reads as absent)."""
    def obj(v) -> dict:
        return v if isinstance(v, dict) else {}

    metas = [obj(s.get("meta")) for s, _, _ in run.results.values()]
    m = next((x for x in metas if obj(x.get("model_info")).get("model") or obj(x.get("config")).get("model")),
             metas[0] if metas else {})
    cfg, info = obj(m.get("config")), obj(m.get("model_info"))
    return {"name": run.name, "source": str(run.source), "model": info.get("model") or cfg.get("model"),
            "adapter": cfg.get("adapter"), "commit": m.get("git_commit"), "time": m.get("time")}


def _text(row: dict) -> tuple[str, str] | None:
    return next(((f, row[f]) for f in TEXT_FIELDS if isinstance(row.get(f), str)), None)


def _reference(row: dict) -> str:
    """The item's reference answer (TruthfulQA's best / true answer) when the row carries one."""
    ref = next((row[k] for k in ("reference", "best_answer") if isinstance(row.get(k), str) and row[k]), "")
    return ref


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
                          "reference": next((_reference(x) for x in rows.values() if _reference(x)), ""),
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
            g, fs = s.get("verifier_gate"), s.get("factscore")
            g = g if isinstance(g, dict) or g is None else {}  # a hand-edited result's junk reads as "not gated"
            fs = fs if isinstance(fs, dict) else {}
            if g is not None or "init_score" in fs:
                verdict = "passed" if g and g.get("passed") is True else "FAILS: FActScore not meaningful"
                gate = (f"verifier gate AUROC {g['auroc']:.2f} ({verdict})"
                        if g and isinstance(g.get("auroc"), (int, float)) else "verifier not gated")
                sc, init = fs.get("score"), fs.get("init_score")
                pub = s.get("verifier_published")  # a fact-check classifier's published figure, if it has one
                pub = f"; {pub}" if isinstance(pub, str) and pub else ""
                out.append(f"{r.name}: {key}: {gate}{pub}; FActScore {_f3(sc)}, supported fraction (no length "
                           f"penalty) {_f3(init)}, unverifiable bios {fs.get('unverifiable', 0)}")
    return out


def _f3(v) -> str:
    return f"{v:.3f}" if isinstance(v, (int, float)) else "n/a"


def build_model(runs: list[Run], cfg: ReportConfig) -> dict:
    """Everything the renderers show, as plain data (plots as base64 PNG)."""
    from selfalign.report import render as R

    keys = list(dict.fromkeys(k for r in runs for k in r.results))
    columns = [(k, m) for k in keys for m in dict.fromkeys(m for r in runs if k in r.results
                                                            for m in r.results[k][0]["metrics"])]
    table = {r.name: {(k, m): r.results[k][0]["metrics"].get(m) for k, m in columns if k in r.results}
             for r in runs}
    base = runs[0]
    diffs = {}
    for r in runs[1:]:
        diffs[r.name] = {(k, m): compare(r.results[k][1], base.results[k][1], m, cfg.n_boot, cfg.bootstrap_seed)
                         for k, m in columns if k in r.results and k in base.results}
    calib = []
    for r in runs:
        for key, (rep, _, path) in r.results.items():
            if "reliability_bins" not in rep:
                continue
            items = _items_file(rep, path, r.root)
            png = None
            if items:
                rows = list(iter_jsonl(items, ["label", "p_true"]))
                png = R.reliability_png([x["label"] for x in rows], [x["p_true"] for x in rows],
                                        f"{r.name}: {key}") if rows else None
            elif isinstance(rep.get("plot"), str):  # only a PNG the run itself wrote
                data = safe_png(rep["plot"], r.root)
                png = R.b64(data) if data else None
            calib.append({"run": r.name, "key": key, "png": png})
    bars = [(k, png) for k in keys for png in R.bar_pngs(k, [(r.name, r.results[k][0]["metrics"])
                                                               for r in runs if k in r.results])]
    answers = [a for a in (differing_answers(runs, k, cfg.max_examples) for k in keys) if a]
    return {"generated": time.strftime("%Y-%m-%d %H:%M:%S"), "runs": [_provenance(r) for r in runs],
            "baseline": base.name, "columns": columns, "table": table, "diffs": diffs, "calibration": calib,
            "bars": bars, "answers": answers, "n_boot": cfg.n_boot, "judges": judge_notes(runs),
            **run_sections(runs, keys, cfg.max_examples)}


def run_sections(runs: list[Run], keys: list[str], max_examples: int) -> dict:
    """What recipe run folders add: training curves, settings, pair statistics; BioGEN's per-fact decisions."""
    from selfalign.report import render as R
    from selfalign.report.run_folder import curves, hyperparameters, pair_stats, training_logs

    folders = list(dict.fromkeys(r.folder for r in runs if r.folder))
    label = {f: (f.resolve().name if len(folders) > 1 else "") for f in folders}
    training, settings, pairs = [], [], []
    for f in folders:
        for stage, rows in training_logs(f).items():
            panels = curves(stage, rows)
            if panels:
                training.append({"run": label[f], "stage": stage, "steps": rows[-1]["step"], "final": rows[-1],
                                 "png": R.curves_png(f"{label[f]} {stage}".strip(), panels)})
        hp = hyperparameters(f)
        if hp:
            settings.append({"run": label[f], "stages": hp})
        st = pair_stats(f)
        if st:
            pairs.append({"run": label[f], "stats": st})
    facts = []
    for k in keys:
        have = [r for r in runs if k in r.results and any("decisions" in x for x in r.results[k][1])]
        if not have:
            continue
        by_run = {r.name: {str(x["id"]): x for x in r.results[k][1]} for r in have}
        ids = list(dict.fromkeys(i for r in have for i in by_run[r.name]))[:max_examples]
        topic = {i: next((rs[i].get("topic") or rs[i].get("question") for rs in by_run.values() if i in rs), "")
                 for i in ids}
        facts.append({"key": k, "runs": [r.name for r in have], "items": [
            {"id": i, "topic": topic[i], "cells": {n: rs[i].get("decisions") or [] for n, rs in by_run.items() if i in rs}}
            for i in ids]})
    return {"training": training, "settings": settings, "pair_stats": pairs, "facts": facts}


def _names(cfg: ReportConfig, sources: list[str]) -> list[str]:
    if cfg.names and len(cfg.names) != len(sources):
        raise SelfAlignError(f"--names gives {len(cfg.names)} labels for {len(sources)} runs")
    names = list(cfg.names) or [Path(p).stem if Path(p).is_file() else Path(p).resolve().name for p in sources]
    if len(set(names)) < len(names) and not cfg.names:
        names = list(sources)  # two runs named alike: label them by the paths given
    if len(set(names)) < len(names):
        raise SelfAlignError("run labels must be unique; pass --names")
    return names


def run_report(cfg: ReportConfig) -> dict:
    from selfalign.report import render as R

    sources = list(cfg.run_dirs) + list(cfg.runs)
    if not sources:
        raise SelfAlignError("missing RUN_DIR (a run folder such as runs/demo, or result JSON files)")
    if not cfg.output and not Path(sources[0]).is_dir():
        require(cfg, "output")
    out = Path(cfg.output or Path(sources[0]) / "report.html")
    # rewritten whole: a report of other settings (or of unknown origin) is moved aside first; none of the results
    # it reads is ever written over
    with OutputGuard(out, files=[cfg.markdown], inputs=sources, settings=result_settings(cfg),
                     whole=[out, cfg.markdown]) as g:
        runs = [r for src, name in zip(sources, _names(cfg, sources)) for r in load_runs(src, name, len(sources) > 1)]
        model = build_model(runs, cfg)
        write_text(g.begin().output, R.to_html(model))
        if cfg.markdown:
            write_text(cfg.markdown, R.to_markdown(model))
        g.record(meta(cfg, stage="report", runs=[r.name for r in runs]))
    return {"output": str(out), "markdown": cfg.markdown, "runs": len(runs),
            "results": sum(len(r.results) for r in runs), "calibrations": len(model["calibration"]),
            "metric_columns": len(model["columns"]),
            "differing_answers": {a["key"]: a["n_differ"] for a in model["answers"]}}
