"""Every evaluation also as lm-evaluation-harness (0.4.x) writes its output, so that its readers find and read it.

Beside ``OUTPUT.json`` a folder ``OUTPUT.lm_eval/`` laid out as ``lm_eval --output_path OUTPUT.lm_eval`` lays
out its own (``EvaluationTracker.save_results_aggregated`` / ``save_results_samples``)::

    OUTPUT.lm_eval/<model name, sanitised as lm-eval does>/results_<date>.json
    OUTPUT.lm_eval/<model name>/samples_<task>_<date>.jsonl       (one line per item)

so ``lm_eval.utils.get_results_filenames`` / ``get_sample_results_filenames`` / ``get_latest_filename`` /
``get_file_task_name`` find them. An export replaces the evaluation's earlier one (one results file per folder).

The results file has lm-eval's keys: ``results.{task}`` with each metric under its own name
(``"accuracy,none"``, ``"accuracy_stderr,none"``: the harness's ``mean_stderr``, sample standard deviation over
sqrt(n); ``"N/A"`` for a metric of the whole set), ``configs`` (``metric_list`` with aggregation and
``higher_is_better``), numeric ``versions``, ``n-shot``, ``higher_is_better``, ``n-samples``, ``config``
(``model``: the model spec; ``model_args``: ``pretrained=BASE,peft=ADAPTER``), ``git_hash`` (selfalign's
commit), ``date`` (seconds since the epoch) and ``model_name``. TruthfulQA MC1 / MC2 are the harness's own
``truthfulqa_mc1`` / ``truthfulqa_mc2`` (metric ``acc``); every other metric is in ``selfalign_<task>``.
Calibration's AUROC, ECE and Brier are there too, as metrics of the whole set (aggregation ``auroc`` / ``ece`` /
``brier``). The 95% intervals selfalign reports are in ``configs.{task}.metadata.intervals``.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
import time
from datetime import datetime
from pathlib import Path
from typing import Sequence

from selfalign.store.io import write_json, write_jsonl_atomic

# (selfalign task, metric) -> (lm-eval task, metric name) where the harness has the task itself
HARNESS_NAMES = {("truthfulqa-mc", "mc1"): ("truthfulqa_mc1", "acc"),
                 ("truthfulqa-mc", "mc2"): ("truthfulqa_mc2", "acc")}
# task versions: the harness's for its own tasks; selfalign's raised when a task's scoring changes
VERSIONS = {"truthfulqa_mc1": 2.0, "truthfulqa_mc2": 3.0, "knowledge-qa": 2.0}  # knowledge-qa 2: strict match
HIGHER_IS_BETTER = {
    **dict.fromkeys(("acc", "mc1", "mc2", "selfeval_mc1", "accuracy", "accuracy_lenient", "answered_accuracy",
                     "selfeval", "selection_acc", "direct_acc", "direct_acc_norm", "auroc", "true", "info",
                     "true_info", "bleu_acc", "rouge_acc", "score", "init_score"), True),
    "ece": False, "brier": False,
}  # any other metric (answer length, abstention, fact counts): neither
OUTPUT_TYPE = {"truthfulqa-mc": "multiple_choice", "calibrate": "multiple_choice"}  # else generate_until
DOC_FIELDS = ("id", "question", "topic", "split", "category")
RESPONSE_FIELDS = ("answer", "response", "generation", "text")


def task_and_metric(task: str, metric: str) -> tuple[str, str]:
    return HARNESS_NAMES.get((task, metric), (f"selfalign_{task.replace('-', '_')}", metric))


def stderr(values: Sequence[float]) -> float | None:
    """lm-eval's ``mean_stderr``: sample standard deviation (n - 1) / sqrt(n); None below two values."""
    n = len(values)
    if n < 2:
        return None
    mu = sum(values) / n
    return math.sqrt(sum((v - mu) ** 2 for v in values) / (n - 1) / n)


def sanitize_model_name(name: str) -> str:
    """lm-eval's ``utils.sanitize_model_name``: the folder a model's results go in."""
    return re.sub(r"[\"<>:/|\\?*\[\]]+", "__", name)


def folder(output: str | Path) -> Path:
    """``OUTPUT.lm_eval`` beside the evaluation's ``OUTPUT.json``."""
    output = Path(output)
    return output.with_name(output.stem + ".lm_eval")


def _hash(x) -> str:
    return hashlib.sha256(json.dumps(x, sort_keys=True, default=str, ensure_ascii=False).encode()).hexdigest()


def _model(meta: dict) -> tuple[str, str]:
    """(the model spec, lm-eval's ``model_args`` string) from a result's provenance."""
    from selfalign.store.paths import portable

    cfg, info = meta.get("config") or {}, meta.get("model_info") or {}
    spec = portable(str(info.get("model") or cfg.get("model") or "unknown"))
    args = f"pretrained={spec}"
    if cfg.get("adapter"):
        args += f",peft={cfg['adapter']}"
    return spec, args


def _config(meta: dict, spec: str, args: str) -> dict:
    cfg = meta.get("config") or {}
    return {"model": spec, "model_args": args, "model_source": "selfalign", "batch_size": cfg.get("batch_size"),
            "device": cfg.get("device"), "limit": cfg.get("limit"), "bootstrap_iters": cfg.get("n_boot"),
            "random_seed": cfg.get("seed"), "gen_kwargs": meta.get("generation"),
            "selfalign": {k: meta.get(k) for k in ("stage", "task", "versions", "time") if meta.get(k)}}


def _sample(i: int, r: dict, metrics: dict) -> dict:
    doc = {k: r[k] for k in DOC_FIELDS if k in r}
    prompt = r.get("prompt") if isinstance(r.get("prompt"), str) else str(r.get("question", ""))
    target = r.get("reference") or r.get("best_answer") or r.get("targets") or ""
    resp = next((r[k] for k in RESPONSE_FIELDS if isinstance(r.get(k), str)), "")
    return {"doc_id": i, "doc": doc, "target": target, "arguments": {"gen_args_0": {"arg_0": prompt, "arg_1": {}}},
            "resps": [[resp]], "filtered_resps": [resp], "filter": "none", "metrics": list(metrics),
            "doc_hash": _hash(doc), "prompt_hash": _hash(prompt), "target_hash": _hash(str(target)), **metrics}


def export(output: str | Path, task: str, rows: Sequence[dict], metrics: Sequence[str], meta: dict | None = None,
           summary: dict | None = None, whole_set: Sequence[str] = ()) -> Path:
    """Write the harness-style results and samples files of one evaluation; returns the results file.

    ``metrics``: per-item fields of ``rows`` (their mean is the metric); ``whole_set``: metrics of the whole set
    (calibration's auroc, ece, brier) taken from ``summary`` ({metric: {value, ci_low, ci_high, n}}), which also
    gives every metric's interval."""
    from selfalign.store.paths import portable

    meta, summary = meta or {}, summary or {}
    spec, args = _model(meta)
    results, configs, hib, n_samples, samples = {}, {}, {}, {}, {}
    for m in [*metrics, *whole_set]:
        name, metric = task_and_metric(task, m)
        res = results.setdefault(name, {"alias": name})
        if m in whole_set:
            value, err, n = (summary.get(m) or {}).get("value"), "N/A", (summary.get(m) or {}).get("n") or 0
        else:
            items = [(i, float(r[m])) for i, r in enumerate(rows) if isinstance(r.get(m), (int, float))]
            vals = [v for _, v in items]
            value, err, n = (sum(vals) / len(vals) if vals else None), stderr(vals), len(vals)
            for i, v in items:
                samples.setdefault(name, {}).setdefault(i, {})[metric] = v
        res[f"{metric},none"] = value
        res[f"{metric}_stderr,none"] = "N/A" if err is None else err
        hib.setdefault(name, {})[metric] = HIGHER_IS_BETTER.get(metric, HIGHER_IS_BETTER.get(m))
        cfg = meta.get("config") or {}
        c = configs.setdefault(name, {
            "task": name, "tag": ["selfalign"], "dataset_path": str(cfg.get("data") or cfg.get("input") or task),
            "test_split": cfg.get("split"), "output_type": OUTPUT_TYPE.get(task, "generate_until"),
            "metric_list": [], "num_fewshot": n_shot(task),
            "metadata": {"version": version(task, name), "selfalign_task": task, "intervals": {}}})
        c["metric_list"].append({"metric": metric, "aggregation": m if m in whole_set else "mean",
                                 "higher_is_better": hib[name][metric]})
        s = summary.get(m) or {}
        c["metadata"]["intervals"][metric] = [s.get("ci_low"), s.get("ci_high")]
        eff = max(n, n_samples.get(name, {}).get("effective", 0))
        n_samples[name] = {"original": len(rows), "effective": eff}
    date = datetime.now()
    out_dir = folder(output) / sanitize_model_name(spec)
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in [*out_dir.glob("results_*.json"), *out_dir.glob("samples_*.jsonl")]:
        old.unlink()  # one export per evaluation: this one replaces the earlier
    stamp = date.isoformat().replace(":", "-")
    for name, by_row in samples.items():
        write_jsonl_atomic(out_dir / f"samples_{name}_{stamp}.jsonl",
                           [_sample(i, rows[i], by_row[i]) for i in sorted(by_row)])
    path = out_dir / f"results_{stamp}.json"
    write_json(path, portable({
        "results": results, "group_subtasks": {k: [] for k in results}, "configs": configs,
        "versions": {k: version(task, k) for k in results}, "n-shot": {k: n_shot(task) for k in results},
        "higher_is_better": hib, "n-samples": n_samples, "config": _config(meta, spec, args),
        "git_hash": meta.get("git_commit"), "date": date.timestamp(), "model_name": spec,
        "model_name_sanitized": sanitize_model_name(spec), "model_source": "selfalign", "task_hashes": {},
        "selfalign_result": Path(output).name, "written": time.strftime("%Y-%m-%dT%H:%M:%S%z")}))
    return path


def version(task: str, name: str) -> float:
    return float(VERSIONS.get(name, VERSIONS.get(task, 1.0)))


def n_shot(task: str) -> int:
    """Demonstrations in the task's answer prompt (knowledge-qa: 3; the harness's TruthfulQA tasks count 0)."""
    if task == "knowledge-qa":
        from selfalign.data.knowledge_qa import SHOTS

        return SHOTS
    return 0
