"""The before/after table of a run: every evaluation of every model, with intervals and paired differences."""
from __future__ import annotations

import json
from pathlib import Path

from selfalign.io import write_json


def headline(result: dict) -> dict:
    """{metric: {value, ci_low, ci_high}} from an evaluation result (evals.results format or a calibrate report)."""
    if "metrics" in result:
        return {k: v for k, v in result["metrics"].items() if isinstance(v, dict)}
    if "ptrue" in result:  # selfalign calibrate
        def ci(d):
            return {"value": d.get("value"), "ci_low": d.get("low"), "ci_high": d.get("high")}

        return {"auroc": ci(result["ptrue"]["auroc"]), "ece": ci(result["ptrue"]["ece"]),
                "brier": ci(result["ptrue"]["brier"]), "selection_acc": ci(result["selection_accuracy"]),
                "direct_acc": ci(result["direct_accuracy"]["sum"])}
    return {}


def fmt(m: dict | None, digits: int = 3) -> str:
    if not m or m.get("value") is None:
        return "–"
    s = f"{m['value']:.{digits}f}"
    if m.get("ci_low") is not None:
        s += f" [{m['ci_low']:.{digits}f}, {m['ci_high']:.{digits}f}]"
    return s


def collect(eval_steps) -> dict:
    """{task: {model label: (result JSON, rows)}} for the evaluations that have finished."""
    from selfalign.evals.results import load_result

    out: dict = {}
    for s in eval_steps:
        _, label, task = s.name.split("/", 2)
        path = s.directory / s.output_name
        if not path.exists():
            continue
        result = json.loads(path.read_text())
        rows = load_result(path)[1] if "metrics" in result else []
        out.setdefault(task, {})[label] = (result, rows)
    return out


def write_summary(run_dir: Path, eval_steps) -> str | None:
    """Write RUN/summary.md and summary.json; return the Markdown table (None when nothing was evaluated)."""
    from selfalign.evals.results import compare

    results = collect(eval_steps)
    if not results:
        return None
    lines, data = ["| task | metric | " + " | ".join(_labels(results)) + " | differences vs base (paired) |",
                   "|---|---|" + "---|" * (len(_labels(results)) + 1)], {}
    for task, by_model in results.items():
        heads = {m: headline(r) for m, (r, _) in by_model.items()}
        metrics = list(dict.fromkeys(k for h in heads.values() for k in h))
        for metric in metrics:
            diffs = []
            base = by_model.get("base")
            for m, (_, rows) in by_model.items():
                if m != "base" and base and rows and base[1]:
                    d = compare(rows, base[1], metric)
                    if d["diff"] is not None:
                        diffs.append(f"{m} {d['diff']:+.3f} [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}]")
                        data.setdefault(task, {}).setdefault("diffs", {}).setdefault(metric, {})[m] = d
            cells = [fmt(heads.get(m, {}).get(metric)) for m in _labels(results)]
            lines.append(f"| {task} | {metric} | " + " | ".join(cells) + f" | {'; '.join(diffs) or '–'} |")
        data.setdefault(task, {})["metrics"] = heads
    table = "\n".join(lines)
    note = ("Values are means with 95% bootstrap intervals; differences are paired bootstraps over the same "
            "questions (model − base).")
    said = verdicts(data)
    note += "".join(f"\n\n{s}" for s in said)
    (run_dir / "summary.md").write_text(f"# Run summary: {run_dir.name}\n\n{table}\n\n{note}\n")
    write_json(run_dir / "summary.json", data)
    return table


# (task, metric) -> what the metric measures, for the plain sentence on whether the model moved
VERDICTS = {("knowledge-qa", "accuracy"): ("Factuality", "accuracy against the gold answers"),
            ("knowledge-qa", "selfeval"): ("Self-Eval", "the mean Self-Eval P(True) of the greedy answers (what DPO "
                                                        "optimised)")}


def verdict(what: str, measure: str, model: str, d: dict) -> str:
    """One plain sentence on a paired difference: did the measure move, by how much, is the interval clear of 0."""
    diff, lo, hi = d["diff"], d["ci_low"], d["ci_high"]
    span = f"{diff:+.3f} [{lo:+.3f}, {hi:+.3f}], paired over {d['n']} held-out prompts"
    if lo > 0:
        return f"**{what} rose** for {model}: {measure} changed by {span}; the interval excludes 0."
    if hi < 0:
        return f"**{what} fell** for {model}: {measure} changed by {span}; the interval excludes 0."
    return (f"**{what} did not measurably move** for {model}: {measure} changed by {span}; the interval "
            "includes 0.")


def verdicts(data: dict) -> list[str]:
    out = []
    for (task, metric), (what, measure) in VERDICTS.items():
        for model, d in data.get(task, {}).get("diffs", {}).get(metric, {}).items():
            if d.get("diff") is not None and d.get("ci_low") is not None:
                out.append(verdict(what, measure, model, d))
    return out


def _labels(results: dict) -> list[str]:
    return list(dict.fromkeys(m for by_model in results.values() for m in by_model))
