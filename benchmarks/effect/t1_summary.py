"""Table 1 from the Table 1 study's evaluations (benchmarks/effect/t1_study.py): four rows, intervals, paired
differences against the base model, the no-model shortcuts beside them, and a diagnostic of the pairs.

    python benchmarks/effect/t1_summary.py [--model qwen2.5-coder-0.5b]   # -> benchmarks/results/t1_<model>.{md,json}
    python benchmarks/effect/t1_summary.py --model smollm2-135m --parts mc3   # -> t1_smollm2_mc3.{md,json}

``--parts`` writes those parts alone to their own file (the whole table reads every part's runs, and runs/ does not
outlive a machine: a part measured on another machine would otherwise drop out). Every evaluation read is kept as a
compact per-question record in ``benchmarks/results/records/`` (``records.py``; commit it), and read from there when
runs/ lacks it, so a row measured on another machine keeps its paired differences against a base re-measured here;
rows of ``t1_<model>_<part>.json`` measured before records were kept are carried over (marked †) when this base
equals that file's.

Only finished evaluations are read; a missing one is "-". Intervals: 95 % percentile bootstrap over prompts /
questions (1000 resamples, seed 0); differences are paired (the same items resampled for both models).
The pair diagnostic uses the gold targets (evaluation only, never training): of each judge's pairs, the share
whose chosen answer is correct and rejected wrong ("right"), the reverse ("wrong"), and both wrong / both right.
``first_clause`` (diagnostic): the accuracy of the answer cut at its first comma, semicolon, " and " or ". ", so a
run-on answer that starts with the right entity counts; ``accuracy`` is the eval's own (the whole answer).
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: the shared formatter
import records  # noqa: E402
from selfalign.report import tables  # noqa: E402
from common import short  # noqa: E402
from t1_study import ALIGN, CURVE_STEPS, JUDGES, KQA2, KQA_SAMPLE, MC3_JUDGE, MC_EXTRA, MC_LIMIT, MC_TUNE, MC_TUNE_HI, \
    MC_TUNED_LIMIT, T1X, TQA_GEN_LIMIT  # noqa: E402

from selfalign.evals.knowledge_qa import relation_majority  # noqa: E402
from selfalign.evals.results import compare, load_result  # noqa: E402
from selfalign.store.io import iter_jsonl  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
ROWS = {"base": "base", "ptrue": "Self-Eval-P(True)", "skt": "Self-Eval-SKT", "oracle": "oracle (gold labels)",
        "oracle-hi": "oracle, trained harder (lr 1e-3, 5 epochs)", "skt-bal": "Self-Eval-SKT, balanced rows",
        "ptrue-bal": "Self-Eval-P(True), balanced rows", "skt-bal-hi": "Self-Eval-SKT, balanced rows, lr 1e-3 x 5 epochs",
        "ptrue-bal-hi": "Self-Eval-P(True), balanced rows, lr 1e-3 x 5 epochs",
        "rand-bal-hi": "*control: random labels*, balanced rows, lr 1e-3 x 5 epochs"}
KQA_COLS = ["accuracy", "first_clause", "abstain", "length"]
COLS = {"kqa": KQA_COLS, "kqa2": KQA_COLS, "kqa3": KQA_COLS, "kqa4": KQA_COLS, "mc": ["selfeval_mc1", "mc1", "mc2"],
        "mc2": ["selfeval_mc1", "mc1", "mc2"], "mc3": ["selfeval_mc1", "mc1", "mc2"], "tqa-gen": ["true", "info", "true_info"]}
BASE_OF = {"kqa2": "kqa", "kqa3": "kqa", "kqa4": "kqa", "mc2": "mc"}  # v2 and v3 are read against v1's base evaluation (the same greedy answers)


def fmt(v, digits=3) -> str:
    return tables.num(v, digits, missing="-")


def cell(m: dict | None) -> str:
    return tables.fmt(m, missing="-")


def _mean_ci(x) -> dict:
    from selfalign.metrics import bootstrap_ci

    v, lo, hi = bootstrap_ci(lambda a: float(np.mean(a)), np.asarray(x, dtype=float), n_boot=1000, seed=0)
    return {"value": v, "ci_low": lo, "ci_high": hi, "n": len(x)}


def diff_cell(d: dict | None) -> str:
    return tables.diff(d, missing="-")


_LOADED: dict = {}


def load(path: Path):
    """(summary, rows) of an evaluation in runs/ (its compact record kept in benchmarks/results/records/), or of
    its kept record when runs/ lacks it (another machine measured it); (None, None) when neither exists. Read once
    per run of this script (the tables and the length check read the same evaluations)."""
    if path not in _LOADED:
        _LOADED[path] = _load(path)
    return _LOADED[path]


def _load(path: Path):
    if path.exists():
        summary, rows = load_result(path)
        records.keep(path, summary, rows)
    else:
        summary, rows = records.restore(path)
        if summary is None:
            return None, None
    if summary["task"] == "knowledge-qa":  # diagnostic: the answer's first clause (a run-on answer that starts right)
        import re

        from selfalign.evals.knowledge_qa import score_answer
        from selfalign.metrics import bootstrap_ci

        for r in rows:
            r["first_clause"] = score_answer(re.split(r",|;| and |\. ", r["answer"])[0], r["targets"])["accuracy"]
        x = np.asarray([r["first_clause"] for r in rows], dtype=float)
        v, lo, hi = bootstrap_ci(lambda a: float(np.mean(a)), x, n_boot=1000, seed=0)
        summary["metrics"]["first_clause"] = {"value": v, "ci_low": lo, "ci_high": hi, "n": len(x)}
    return summary, rows


def pair_quality(root: Path, part: str = "kqa") -> dict:
    """Per judge: how its pairs sit against gold match (from the oracle's scores of the same samples), and how often
    the judge's top-scored sample of a prompt is correct (best-of-N selection; greedy decoding is the bar)."""
    oracle = root / part / "scores-oracle.jsonl"
    if not oracle.exists():
        return {}
    gold = {(str(r["id"]), r["response"].strip()): r.get("score") for r in iter_jsonl(oracle)}  # pairs collapse
    # duplicate answers by their stripped text, as here
    by_prompt: dict = {}
    for (i, _), g in gold.items():
        by_prompt.setdefault(i, []).append(g)
    out = {"answers_correct": sum(g == 1 for g in gold.values()) / max(1, len(gold)),
           "prompts_with_a_correct_answer": sum(any(g == 1 for g in v) for v in by_prompt.values()) / max(1, len(by_prompt))}
    for judge in JUDGES:
        path = root / part / f"pairs-{judge}.jsonl"
        if not path.exists():
            continue
        top: dict = {}
        for r in iter_jsonl(root / part / f"scores-{judge}.jsonl"):
            g = gold.get((str(r["id"]), r["response"].strip()))
            if r.get("score") is not None and (str(r["id"]) not in top or r["score"] > top[str(r["id"])][0]):
                top[str(r["id"])] = (r["score"], g == 1)
        counts = {"right": 0, "wrong": 0, "both_wrong": 0, "both_right": 0, "unknown": 0}
        n = 0
        for p in iter_jsonl(path):
            n += 1
            c, r = gold.get((str(p["id"]), p["chosen"].strip())), gold.get((str(p["id"]), p["rejected"].strip()))
            key = ("unknown" if c is None or r is None else "right" if c > r else "wrong" if c < r
                   else "both_right" if c == 1 else "both_wrong")
            counts[key] += 1
        out[judge] = {"pairs": n, **{k: v / max(1, n) for k, v in counts.items()},
                      "top_sample_correct": sum(c for _, c in top.values()) / max(1, len(top))}
    return out


def steps_curve(root: Path, base_rows, data: dict) -> list[str]:
    """v2: held-out accuracy after 25, 50 and all 80 DPO steps (the checkpoints TRL wrote on the way)."""
    total = KQA2["align"]["--max-steps"]
    rows, curve = [], {}
    for judge in ("skt", "oracle"):
        for n in (*CURVE_STEPS, total):
            name = f"eval-{judge}-step{n}.json" if n != total else f"eval-{judge}.json"
            summary, r = load(root / "kqa2" / name)
            if summary is None:
                continue
            m, dd = summary["metrics"]["accuracy"], compare(r, base_rows, "accuracy")
            curve[f"{judge}/{n}"] = {"accuracy": m, "diff_vs_base": dd}
            rows.append([ROWS[judge], n, cell(m), diff_cell(dd), cell(summary["metrics"].get("length"))])
    data["kqa2_steps_curve"] = curve
    if not any(k.split("/")[1] != str(total) for k in curve):  # no checkpoint was evaluated: the table says nothing new
        return []
    return ["Held-out accuracy against the number of DPO steps (v2; 4 pairs a step):", "",
            *tables.md_table(["row", "DPO steps", "accuracy", "Δ accuracy", "length"], rows), ""]


def longest_option(limit: int) -> dict:
    """The no-model shortcut for TruthfulQA MC1: pick the longest option (ties: the first)."""
    from selfalign.evals.truthfulqa_mc import load_questions

    _, qs = load_questions(None, "test", limit)
    hits = [q["mc1"][int(np.argmax([len(o["text"]) for o in q["mc1"]]))]["label"] for q in qs]
    return _mean_ci(hits)


def footnote(data: dict, part: str, prev: Path, table: dict, cols: list) -> list[str]:
    """The † line under a table with rows carried from an earlier results file."""
    if not any(x.startswith(f"{part}/") for x in data.get("earlier_rows", [])):
        return []
    was = (records.earlier(prev, part, "base") or {}).get("metrics", {}).get(cols[0], {}).get("value")
    now = (table.get("base") or {}).get("metrics", {}).get(cols[0], {}) or {}
    first = sorted({v["from"].split(" ")[0] for v in table.values() if isinstance(v, dict) and v.get("from")})
    return ["", f"† measured on an earlier machine whose per-question records were not kept (before "
            f"`benchmarks/effect/records.py`): values and paired differences as {', '.join(first)} gave them, "
            f"against that run's base ({cols[0]} {fmt(was)}; this base: {fmt(now.get('value'))})."]


def option_lengths() -> dict:
    """{question id: [character length of each MC1 option]} of the TruthfulQA MC test split."""
    from selfalign.evals.truthfulqa_mc import load_questions

    _, qs = load_questions(None, "test", None)
    return {str(q["id"]): [len(o["text"]) for o in q["mc1"]] for q in qs}


def length_reliance(rows: list, options: dict) -> dict:
    """Does a row's selection lean on option length (the no-model shortcut)? From its per-question P(True) of the MC1
    options: the share of questions whose top-P(True) option is the longest one, and the mean per-question Spearman
    correlation of P(True) with option length (questions whose P(True) or lengths are all tied are skipped)."""
    from scipy.stats import spearmanr

    top_longest, rhos = [], []
    for r in rows:
        p, lens = r.get("mc1_p_true"), options.get(str(r["id"]))
        if not p or lens is None or len(p) != len(lens):
            continue
        top_longest.append(float(int(np.argmax(p)) == int(np.argmax(lens))))
        if len(set(p)) > 1 and len(set(lens)) > 1:
            rhos.append(float(spearmanr(p, lens).statistic))
    return {"top_is_longest": _mean_ci(top_longest) if top_longest else None,
            "spearman_ptrue_length": _mean_ci(rhos) if rhos else None}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--parts", nargs="+", choices=tuple(COLS), help="these parts only, to t1_<model>_<parts>.{md,json}")
    args = ap.parse_args(argv)
    root = T1X / short(args.model)
    data: dict = {"model": args.model, "settings": {"sample": KQA_SAMPLE, "align": ALIGN, "mc_tune": MC_TUNE, "mc_tune_hi": MC_TUNE_HI,
                                                   "mc_limit": MC_LIMIT, "kqa_v2": KQA2}, "tables": {}}
    lines = [f"# Table 1 at laptop scale: {args.model}", "",
             "Made by `python benchmarks/effect/t1_summary.py` from `benchmarks/effect/t1_study.py` (see its docstring "
             "for the settings). 95 % bootstrap intervals; Δ = paired difference against the base model.", ""]
    titles = {"kqa": "Knowledge QA: greedy answers on the 604 held-out qa_wikidata prompts",
              "kqa2": "Knowledge QA, v2 settings (samples at T=0.7, 600 prompts, pairs with a judge margin >= 0.4, "
                      "80 DPO steps), trained with the pairs bug of v1 (answers glued to the prompt: \"isEgypt\"): "
                      "the same 604 held-out prompts, against the same base",
              "kqa3": "Knowledge QA, v3 = v2's settings, samples and scores, pairs fixed (\" Egypt\", the answer as it "
                      "continued the prompt): the same 604 held-out prompts, against the same base",
              "kqa4": "Knowledge QA, v4 = v3 with gentler DPO (lr 1e-4, 40 steps instead of 5e-4 x 80): the same 604 "
                      "held-out prompts, against the same base",
              "mc": f"TruthfulQA MC: the base model on the first {MC_LIMIT} test questions, the tuned models on the first "
                    f"{MC_TUNED_LIMIT} (selection = selfeval_mc1, the MC1 option with the top P(True))",
              "mc2": f"TruthfulQA MC, v2: the SKT row labelled by the 3k-row SK-tuned judge (v1: the 1k judge); the "
                     f"first {MC_TUNED_LIMIT} test questions, against v1's base",
              "mc3": "TruthfulQA MC, v3: every row on all 730 test questions; the SKT row labelled by the model's best "
                     f"SK-tuned judge ({Path(str(MC3_JUDGE.get(args.model, 'the --skt adapter'))).name}); selection = "
                     "selfeval_mc1, the MC1 option with the top P(True) of the row's own model",
              "tqa-gen": f"TruthfulQA generation: greedy answers (the paper's few-shot prompt) of the base and the v4 "
                         f"knowledge-QA models on the first {TQA_GEN_LIMIT} test questions; %True / %Info by the offline "
                         "reference judge (balanced accuracy 0.79 on unseen questions, judges.md: read differences "
                         "of a few points as within its error); nothing here was trained on TruthfulQA"}
    for part, cols in COLS.items():
        if args.parts and part not in args.parts:
            continue
        if part in ("kqa2", "kqa3", "kqa4", "mc2", "mc3", "tqa-gen") and not (root / part).exists():
            continue
        base_summary, base_rows = load(root / BASE_OF.get(part, part) / "eval-base.json")
        table = {}
        lines += [f"## {titles[part]}", "", "| row | " + " | ".join(cols) + " | " + " | ".join(f"Δ {c}" for c in cols)
                  + " |", "|---" * (1 + 2 * len(cols)) + "|"]
        prev = ROOT / "benchmarks" / "results" / f"t1_{short(args.model)}_{part}.json"  # an earlier run of --parts
        if not prev.exists():  # or of the whole table
            prev = prev.with_name(f"t1_{short(args.model)}.json")
        extra = [x for x in MC_EXTRA if part.startswith("mc") and (load(root / part / f"eval-{x}.json")[0] is not None
                                                                    or records.earlier(prev, part, x))]
        for label in ("base", *JUDGES, *extra):
            summary, rows = load(root / (BASE_OF.get(part, part) if label == "base" else part) / f"eval-{label}.json")
            if summary is None and records.earlier(prev, part, label) and not records.same_base(
                    records.earlier(prev, part, "base"), table.get("base"), cols):
                print(f"[not kept] {part}/{label}: measured against another base than this one", file=sys.stderr)
            elif summary is None and records.earlier(prev, part, label):  # measured before records were kept
                old = table[label] = {"from": f"{prev.name} (records not kept)", **records.earlier(prev, part, label)}
                data.setdefault("earlier_rows", []).append(f"{part}/{label}")
                lines.append(f"| {ROWS[label]} † | " + " | ".join(cell(old["metrics"].get(c)) for c in cols) + " | "
                             + " | ".join(diff_cell((old.get("diff_vs_base") or {}).get(c)) for c in cols) + " |")
                continue
            if summary is None:
                lines.append(f"| {ROWS[label]} | " + " | ".join("-" for _ in cols * 2) + " |")
                continue
            ms = {c: summary["metrics"].get(c) for c in cols}
            ds = {c: compare(rows, base_rows, c) if label != "base" and base_rows else None for c in cols}
            if label != "base" and base_rows and len(rows) < len(base_rows) and "base_same" not in table:
                ids = {str(r["id"]) for r in rows}  # the base model on the same (fewer) questions, for reading across
                same = [r for r in base_rows if str(r["id"]) in ids]
                bs = {c: _mean_ci([r[c] for r in same if r.get(c) is not None]) for c in cols}
                table["base_same"] = {"metrics": bs, "n": len(same)}
                lines.append(f"| base, on the {len(same)} questions below | " + " | ".join(cell(bs[c]) for c in cols)
                             + " |" + " |" * len(cols))
            table[label] = {"metrics": ms, "diff_vs_base": ds}
            records.keep_file(root / part / f"tuned-{label}" / "train_summary.json")  # the trainer's figures
            lines.append(f"| {ROWS[label]} | " + " | ".join(cell(ms[c]) for c in cols) + " | "
                         + " | ".join(diff_cell(ds[c]) for c in cols) + " |")
        data["tables"][part] = table
        if part == "mc3":
            lo = longest_option(None)
            data["shortcuts_mc1_longest_option_730"] = lo
            lines.append(f"| *shortcut, no model: the longest MC1 option* | {cell(lo)} (all {lo['n']}) |" + " |" * 5)
            rel, lengths = {}, option_lengths()
            before = records.earlier_part(prev, "length_reliance")
            for label in ("base", *JUDGES, *extra):
                _, rows = load(root / part / f"eval-{label}.json")
                if rows:
                    rel[label] = length_reliance(rows, lengths)
                elif label in before and f"{part}/{label}" in data.get("earlier_rows", []):
                    rel[label] = before[label]
            data["length_reliance"] = rel
            if rel:
                lines += ["", "Does the selection lean on option length? Top = longest: the share of questions whose "
                          "top-P(True) option is also the longest MC1 option (the shortcut picks the longest: "
                          f"{fmt(lo['value'])} correct); ρ: the mean per-question Spearman correlation of P(True) with "
                          "option length (0: no reliance).", "", "| row | top = longest | ρ(P(True), length) |",
                          "|---|---|---|"]
                lines += [f"| {ROWS[k]} | {cell(v['top_is_longest'])} | {cell(v['spearman_ptrue_length'])} |"
                          for k, v in rel.items()]
        elif part in ("mc", "mc2"):
            lo = {n: longest_option(n) for n in (MC_LIMIT, MC_TUNED_LIMIT)}
            data["shortcuts_mc1_longest_option"] = lo
            lines.append(f"| *shortcut, no model: the longest MC1 option* | {cell(lo[MC_LIMIT])} (first {MC_LIMIT}); "
                         f"{cell(lo[MC_TUNED_LIMIT])} (first {MC_TUNED_LIMIT}) |" + " |" * 5)
        if part.startswith("kqa"):
            rm = data.get("shortcuts", {}).get("relation_majority_accuracy") or relation_majority("qa_wikidata")
            data["shortcuts"] = {"relation_majority_accuracy": rm}
            lines.append(f"| *shortcut, no model: the relation's commonest training answer* | {cell(rm)} |" + " |" * 7)
        lines += footnote(data, part, prev, table, cols)
        lines.append("")
        if part == "kqa2":
            lines += steps_curve(root, base_rows, data)
    # v3/v4's pairs are v2's, each answer with its leading space (v4 adds P(True)'s)
    for part in [p for p in ("kqa", "kqa4") if not args.parts or p in args.parts]:
        for judge in JUDGES:  # the pairs a DPO sweep trains on (records.py restore puts them back)
            records.keep_file(root / part / f"pairs-{judge}.jsonl")
        pq = pair_quality(root, part)
        data["pairs" if part == "kqa" else "pairs_v2"] = pq
        if not pq:
            continue
        lines += [f"## The pairs against the gold targets ({'v1' if part == 'kqa' else 'v2-v4'} settings; diagnostic, "
                  "gold used for this table only)", "",
                  f"Sampled answers correct: {fmt(pq['answers_correct'])}; prompts with at least one correct answer: "
                  f"{fmt(pq['prompts_with_a_correct_answer'])}. Top sample correct: the judge's highest-scored "
                  "sample of a prompt is right (best-of-N; the base model's greedy answers on the held-out prompts: "
                  "the kqa table's base accuracy).", "",
                  "| judge | pairs | chosen right, rejected wrong | reverse | both wrong | both right | top sample correct |",
                  "|---|---|---|---|---|---|---|"]
        for judge in JUDGES:
            if judge in pq:
                q = pq[judge]
                lines.append(f"| {ROWS[judge]} | {q['pairs']} | {fmt(q['right'])} | {fmt(q['wrong'])} | "
                             f"{fmt(q['both_wrong'])} | {fmt(q['both_right'])} | {fmt(q['top_sample_correct'])} |")
        lines.append("")
    out = ROOT / "benchmarks" / "results" / "_".join(["t1", short(args.model), *(args.parts or [])])
    out.with_suffix(".md").write_text("\n".join(lines))
    out.with_suffix(".json").write_text(json.dumps(data, indent=1, default=str))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
