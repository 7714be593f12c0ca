"""The before/after table of a run: every evaluation of every model, with intervals and paired differences."""
from __future__ import annotations

from pathlib import Path

from selfalign.report.tables import diff, fmt
from selfalign.store.io import write_json


def headline(result: dict) -> dict:
    """{metric: {value, ci_low, ci_high, n}} of an evaluation result (``evals.results``' shape)."""
    return {k: v for k, v in (result.get("metrics") or {}).items() if isinstance(v, dict)}


def collect(eval_steps) -> dict:
    """{task: {model label: (result JSON, rows)}} for the evaluations that have finished."""
    from selfalign.evals.results import load_result

    out: dict = {}
    for s in eval_steps:
        _, label, task = s.name.split("/", 2)
        path = s.directory / s.output_name
        if not path.exists():
            continue
        out.setdefault(task, {})[label] = load_result(path)
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
                        diffs.append(f"{m} {diff(d)}")
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
# knowledge-qa's accuracy is the strict match since 2026-12-07 (results written before are read with their accuracy
# as accuracy_lenient, evals.knowledge_qa_metrics.upgrade); the lenient match gets its own sentence beside it
VERDICTS = {("knowledge-qa", "accuracy"): ("Factuality", "accuracy against the gold answers (strict: the first "
                                                         "answer clause is a gold answer, no other candidate named)"),
            ("knowledge-qa", "accuracy_lenient"): ("Lenient factuality", "lenient accuracy (the answer contains a "
                                                                         "gold answer or is contained in one)"),
            ("knowledge-qa", "selfeval"): ("Self-Eval", "the mean Self-Eval P(True) of the greedy answers (what DPO "
                                                        "optimised)")}


def verdict(what: str, measure: str, model: str, d: dict) -> str:
    """One plain sentence on a paired difference: did the measure move, by how much, is the interval clear of 0."""
    lo, hi = d["ci_low"], d["ci_high"]
    span = f"{diff(d)}, paired over {d['n']} held-out prompts"
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
