"""Every evaluation also in lm-evaluation-harness's shape, for tools that read its output.

Beside ``OUTPUT.json``: ``OUTPUT.lm_eval.json`` with ``results.{task}.{"acc,none", "acc_stderr,none"}`` (one task
per metric; TruthfulQA MC1 / MC2 under the harness's own names ``truthfulqa_mc1`` / ``truthfulqa_mc2``, the rest
as ``selfalign_<task>_<metric>``) and ``OUTPUT.samples_<task>.jsonl`` with one line per item (``doc_id``,
``doc``, ``target``, ``resps``, the metric value). The standard error is the harness's: sample standard deviation
over the square root of n.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

from selfalign.store.io import write_json, write_jsonl_atomic

HARNESS_NAMES = {("truthfulqa-mc", "mc1"): "truthfulqa_mc1", ("truthfulqa-mc", "mc2"): "truthfulqa_mc2"}
DOC_FIELDS = ("id", "question", "topic", "split", "category")
RESPONSE_FIELDS = ("answer", "response", "generation", "text")


def task_name(task: str, metric: str) -> str:
    return HARNESS_NAMES.get((task, metric), f"selfalign_{task.replace('-', '_')}_{metric}")


def stderr(values: Sequence[float]) -> float | None:
    """lm-eval's ``mean_stderr``: sample standard deviation (n - 1) / sqrt(n); None below two values."""
    n = len(values)
    if n < 2:
        return None
    mu = sum(values) / n
    return math.sqrt(sum((v - mu) ** 2 for v in values) / (n - 1) / n)


def paths(output: str | Path) -> tuple[Path, Path]:
    """(the results JSON, the folder of the samples files) beside ``output``."""
    output = Path(output)
    return output.with_name(output.stem + ".lm_eval.json"), output.parent


def export(output: str | Path, task: str, rows: Sequence[dict], metrics: Sequence[str],
           model: dict | None = None) -> Path:
    """Write the harness-style results and samples files for these rows; returns the results path."""
    output = Path(output)
    results, n_samples = {}, {}
    for m in metrics:
        name = task_name(task, m)
        items = [(i, r) for i, r in enumerate(rows) if isinstance(r.get(m), (int, float))]
        vals = [float(r[m]) for _, r in items]
        results[name] = {"alias": name, "acc,none": sum(vals) / len(vals) if vals else None,
                         "acc_stderr,none": stderr(vals)}
        n_samples[name] = {"original": len(rows), "effective": len(vals)}
        write_jsonl_atomic(output.with_name(f"{output.stem}.samples_{name}.jsonl"), [
            {"doc_id": i, "doc": {k: r[k] for k in DOC_FIELDS if k in r},
             "target": r.get("reference") or r.get("best_answer") or "",
             "resps": [[next((r[k] for k in RESPONSE_FIELDS if isinstance(r.get(k), str)), "")]],
             "filter": "none", "metrics": ["acc"], "acc": float(r[m])} for i, r in items])
    res_path, _ = paths(output)
    write_json(res_path, {"results": results, "n-samples": n_samples,
                          "versions": {k: f"selfalign:{task}" for k in results},
                          "config": {"model": "selfalign", "model_args": model or {}},
                          "source": f"selfalign {task} ({output.name}); per-item rows: samples_<task>.jsonl"})
    return res_path
