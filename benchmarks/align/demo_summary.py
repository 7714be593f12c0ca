"""Base vs the demo's Self-Eval-SKT-aligned model vs the other judges' runs (recipes/demo*.yaml).

    selfalign run recipes/demo.yaml [&& selfalign run recipes/demo-ptrue.yaml && selfalign run recipes/demo-skt.yaml]
    python benchmarks/align/demo_summary.py
Rows: base and Self-Eval-SKT (`demo`: the packaged SK-tuned judge), Self-Eval-P(True) (`demo-ptrue`: the base
model's own P(True)), Self-Eval-SKT tuned in the run (`demo-skt`). Writes benchmarks/results/demo_smollm2.json and
prints the Markdown tables. A missing demo-ptrue / demo-skt run is left out; a missing demo run is a one-line error.
Each run's Self-Eval column is judged by its own recipe's judge.

The demo evaluates every held-out prompt (604). Its DPO setting (lr 5e-4 x 60 steps) was chosen on the first 200 of
them (``--limit 200``, dpo_sweep_smollm2-135m.md), so each paired difference is also given on the other 404 alone
(``fresh``: prompts no setting was chosen on). Per-prompt records of every evaluation read are kept under
benchmarks/results/records/demo/ (records.py), so anyone can re-score them.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from selfalign.errors import SelfAlignError
from selfalign.evals.results import compare, load_result
from selfalign.run.summary import VERDICTS, verdict

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: the shared formatter
from selfalign.report.tables import diff, fmt, md_table  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CHOSEN_ON = 200  # the first N held-out prompts the demo's DPO setting was chosen on (dpo_sweep_smollm2-135m.md)
RECORDS = ROOT / "benchmarks/results/records/demo"


def chosen_on_ids(data: str) -> set:
    """The ids of the held-out prompts the DPO setting was chosen on: the first CHOSEN_ON of the split, as
    ``--limit`` takes them."""
    from selfalign.data.knowledge_qa import load_knowledge_qa

    return {str(it["id"]) for it in load_knowledge_qa(data.split(":", 1)[1], "heldout")[:CHOSEN_ON]}


def keep_records(runs: Path) -> list[str]:
    """Compact per-prompt records of every evaluation the tables read (records.keep), paths relative to the
    checkout."""
    sys.path.insert(0, str(ROOT / "benchmarks" / "effect"))
    import records

    out = []
    for path in sorted(runs.glob("demo*/eval/*/*.json")):
        if path.name.endswith(".meta.json") or path.stem not in METRICS:
            continue
        summary, rows = load_result(path)
        out.append(records.keep(path, summary, rows, runs=runs, archive=RECORDS).relative_to(ROOT).as_posix())
    return out
RUNS = {"base": ("demo", "base"), "Self-Eval-SKT": ("demo", "aligned"), "Self-Eval-P(True)": ("demo-ptrue", "aligned"),
        "Self-Eval-SKT, tuned in the run": ("demo-skt", "aligned")}
METRICS = {"knowledge-qa": ("accuracy", "selfeval", "abstain", "length"),
           "truthfulqa-mc": ("mc1", "mc2", "selfeval_mc1")}


def tables(runs: Path) -> tuple[list[str], dict]:
    tasks = sorted(p.stem for p in (runs / "demo" / "eval" / "base").glob("*.json") if p.stem in METRICS)
    if not tasks:
        raise SelfAlignError(f"{runs / 'demo'}: no finished evaluation; run `selfalign run recipes/demo.yaml` first")
    lines, out = [], {}
    for task in tasks:
        metrics = METRICS[task]
        res = {}
        for name, (run, label) in RUNS.items():
            path = runs / run / "eval" / label / f"{task}.json"
            if path.exists() or run == "demo":
                res[name] = load_result(path)
        base_rows = res["base"][1]
        table = []
        for name, (summary, rows) in res.items():
            table.append([name, *(fmt({k: summary["metrics"].get(m, {}).get(k) for k in ("value", "ci_low", "ci_high")})
                                  for m in metrics)])
            out.setdefault(task, {})[name] = {"metrics": summary["metrics"], "n": len(rows)}
            if name != "base":  # against the base as its own run judged it (the Self-Eval column is per judge)
                run, _ = RUNS[name]
                own = runs / run / "eval" / "base" / f"{task}.json"
                ref = load_result(own)[1] if own.exists() else base_rows
                out[task][name]["diff_vs_base"] = {m: compare(rows, ref, m) for m in metrics}
                if task == "knowledge-qa":  # the prompts no setting was chosen on
                    seen = chosen_on_ids(res["base"][0].get("data") or "bigbench:qa_wikidata")
                    fresh = lambda rs: [r for r in rs if str(r["id"]) not in seen]  # noqa: E731
                    out[task][name]["diff_vs_base_fresh"] = {m: compare(fresh(rows), fresh(ref), m)
                                                             for m in ("accuracy", "accuracy_lenient")}
        if task == "knowledge-qa":  # the no-model shortcut on the same prompts, beside the accuracies
            from selfalign.evals.knowledge_qa import relation_majority

            data = res["base"][0].get("data") or "bigbench:qa_wikidata"
            rm = relation_majority(data.split(":", 1)[1], limit=len(base_rows))
            out.setdefault("shortcuts", {})[task] = {"relation_majority_accuracy": rm}
            table.append(["*shortcut, no model: the relation's commonest training answer*", fmt(rm),
                          *([""] * (len(metrics) - 1))])
        lines += [f"### {task}", "", *md_table(["model", *metrics], table), ""]
        said, table = [], []
        for name in list(res)[1:]:
            d = out[task][name]["diff_vs_base"]
            table.append([f"{name} − base", *(diff(d[m]) for m in metrics)])
            said += [verdict(*VERDICTS[(task, m)], name, d[m]) for m in metrics
                     if (task, m) in VERDICTS and d[m]["diff"] is not None and d[m]["ci_low"] is not None]
        lines += md_table(["paired difference vs base", *metrics], table) + [""] + [s + "\n" for s in said]
        fresh = {n: d["diff_vs_base_fresh"] for n, d in out[task].items() if "diff_vs_base_fresh" in d}
        if fresh:
            lines += [f"On the held-out prompts the DPO setting was not chosen on (all but the first {CHOSEN_ON}; "
                      f"n = {next(iter(fresh.values()))['accuracy']['n']}):", ""]
            lines += md_table(["paired difference vs base", "accuracy (strict)", "accuracy_lenient"],
                              [[f"{n} − base", diff(d["accuracy"]), diff(d["accuracy_lenient"])]
                               for n, d in fresh.items()]) + [""]
    return lines, out


def main(runs_dir: str = "runs") -> str:
    runs = Path(runs_dir)
    try:
        lines, out = tables(runs)
    except SelfAlignError as e:
        raise SystemExit(f"error: {e}")
    stages = {}
    for run in ("demo", "demo-ptrue", "demo-skt"):
        for st in sorted((runs / run).glob("*/stage.json")) + sorted((runs / run).glob("eval/*/*.stage.json")):
            s = json.loads(st.read_text())
            stages[f"{run}/{s['stage']}"] = s.get("seconds")
    lines += md_table(["stage", "seconds"], stages.items())
    out["stage_seconds"] = stages
    out["records"] = keep_records(runs)
    (ROOT / "benchmarks/results/demo_smollm2.json").write_text(json.dumps(out, indent=1, default=str))
    print("\n".join(lines))
    return "\n".join(lines)


if __name__ == "__main__":
    main(*sys.argv[1:])
