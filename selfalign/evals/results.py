"""One result format for every evaluation, so that reports and paired comparisons work on any of them.

An evaluation writes per-item rows to ``<output>.rows.jsonl`` (one row per question / response, with an ``id``
and one numeric field per metric) and a summary ``<output>`` JSON::

    {"task": "truthfulqa-mc", "metrics": {"mc1": {"value": .., "ci_low": .., "ci_high": .., "n": ..}, ...},
     "rows": "<file name of the rows JSONL>", "judge": ..., "meta": {...provenance...}}

Every metric is the mean over items of a per-item value (None = not applicable, left out), with a percentile
bootstrap interval over items; model-vs-model differences use a paired bootstrap on the items both have.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from selfalign.errors import InputError
from selfalign.store.io import read_json, read_jsonl, write_json
from selfalign.metrics import bootstrap_ci, paired_bootstrap


def rows_path(output: str | Path) -> Path:
    output = Path(output)
    return output.with_name(output.stem + ".rows.jsonl")


def _mean(x):
    return float(np.mean(x)) if len(x) else None


def summarize(rows: Sequence[dict], metrics: Sequence[str], n_boot: int = 1000, seed: int = 0) -> dict:
    """{metric: {value, ci_low, ci_high, n}}: the mean of each per-item field with a bootstrap 95% interval."""
    out = {}
    for m in metrics:
        vals = np.asarray([float(r[m]) for r in rows if r.get(m) is not None], dtype=float)
        point, lo, hi = bootstrap_ci(_mean, vals, n_boot=n_boot, seed=seed) if len(vals) else (None, None, None)
        out[m] = {"value": point, "ci_low": lo, "ci_high": hi, "n": int(len(vals))}
    return out


def result_guard(cfg, inputs=(), files=(), shared=(), ignore=(), whole=()):
    """The output guard (``store.guard``) of an evaluation writing ``cfg.output``: the result JSON (and ``whole``),
    replaced whole and moved aside first when it was made with other settings (``lineage.result_settings``,
    recorded in its ``meta``), the rows beside it and their meta (moved aside too by ``--overwrite``), and the
    ``files`` and ``shared`` files it writes."""
    from selfalign.store.guard import OutputGuard
    from selfalign.store.lineage import result_settings
    from selfalign.store.provenance import meta_path

    rp = rows_path(cfg.output)
    return OutputGuard(cfg.output, inputs=inputs, files=[rp, meta_path(rp), *files], shared=shared,
                       settings=result_settings(cfg, ignore), whole=[cfg.output, *whole], record=cfg.output,
                       overwrite=bool(getattr(cfg, "overwrite", False)))


def save_result(output: str | Path, task: str, rows: Sequence[dict], metrics: Sequence[str], meta: dict,
                n_boot: int = 1000, seed: int = 0, guard=None, **extra) -> dict:
    """Write the summary JSON for rows already saved at ``rows_path(output)``; returns the summary. ``guard``: the
    evaluation's ``result_guard``, which moves an earlier result of other settings aside and records these."""
    from selfalign.evals.lm_eval_export import export

    from selfalign.store.paths import portable

    if guard is not None:
        meta = guard.begin().stamp(meta)
    summary = portable({"task": task, "metrics": summarize(rows, metrics, n_boot, seed),
                        "rows": rows_path(output).name, **extra, "meta": meta})  # no path of this machine
    export(output, task, rows, metrics, summary["meta"], summary["metrics"])  # the lm-eval-style copy
    write_json(output, summary)
    return summary


def _number(v) -> bool:
    """null, or a JSON number a float can hold (a 400-digit integer cannot)."""
    if v is None:
        return True
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return False
    try:
        float(v)
        return True
    except OverflowError:
        return False


def load_result(path: str | Path) -> tuple[dict, list[dict]]:
    """(summary, rows) of a saved evaluation."""
    path = Path(path)
    summary = read_json(path, "result file")
    if not isinstance(summary, dict) or "metrics" not in summary or "task" not in summary:
        raise InputError(path, "not a selfalign evaluation result (no 'task'/'metrics')")
    if not isinstance(summary["task"], str):
        raise InputError(path, f"'task' must be a string, got {summary['task']!r}")
    metrics = summary["metrics"]
    if not isinstance(metrics, dict) or not all(isinstance(v, dict) for v in metrics.values()):
        raise InputError(path, "'metrics' must be an object of {metric: {value, ci_low, ci_high, n}}")
    for m, v in metrics.items():
        if not all(_number(v.get(k)) for k in ("value", "ci_low", "ci_high", "n")):
            raise InputError(path, f"metric {m!r}: value, ci_low, ci_high and n must be numbers or null")
    name = summary.get("rows") or ""
    if not isinstance(name, str) or (name and (Path(name).name != name or name in (".", ".."))):
        raise InputError(path, f"'rows' must be the name of a file beside the result, got {str(summary['rows'])[:60]!r}")
    rp = path.with_name(summary.get("rows") or rows_path(path).name)
    rows = read_jsonl(rp, required=["id"]) if rp.exists() else []
    if summary["task"] == "knowledge-qa":  # written before strict match: its accuracy was the lenient one
        from selfalign.evals.knowledge_qa_metrics import upgrade

        upgrade(summary, rows, summarize)
    return summary, rows


def compare(rows_a: Sequence[dict], rows_b: Sequence[dict], metric: str, n_boot: int = 1000,
            seed: int = 0) -> dict:
    """Paired bootstrap of mean(metric) A − B over the items (ids) both have."""
    a = {str(r["id"]): r.get(metric) for r in rows_a}
    b = {str(r["id"]): r.get(metric) for r in rows_b}
    ids = [i for i in a if i in b and a[i] is not None and b[i] is not None]
    if not ids:
        return {"diff": None, "ci_low": None, "ci_high": None, "p_le_0": None, "n": 0}
    xa = np.asarray([float(a[i]) for i in ids])
    xb = np.asarray([float(b[i]) for i in ids])
    d, lo, hi, p = paired_bootstrap(_mean, [xa], [xb], n_boot=n_boot, seed=seed)
    return {"diff": d, "ci_low": lo, "ci_high": hi, "p_le_0": p, "n": len(ids)}
