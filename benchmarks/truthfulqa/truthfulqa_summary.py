"""The embedded model's TruthfulQA table, from benchmarks/truthfulqa/truthfulqa_smollm2.sh's two result files.

    python benchmarks/truthfulqa/truthfulqa_summary.py WORKDIR [--mc-seconds S] [--gen-seconds S] [--threads N]
MC1 / MC2 / Self-Eval selection on all 817 questions and on the paper's 730 test questions (the test rows of the
same per-question file, re-summarised with their own bootstrap), generation metrics on the test split.
Writes benchmarks/results/truthfulqa_smollm2.{md,json}.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from selfalign.evals.results import compare, load_result, summarize
from selfalign.evals.truthfulqa_mc import load_questions

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: the shared formatter
from selfalign.report.tables import diff, fmt, md_table  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
MC = ("mc1", "mc2", "selfeval_mc1")
GEN = ("true", "info", "true_info", "bleu_acc", "rouge_acc")


def row(title: str, metrics: dict, names) -> list:
    return [title, metrics[names[0]]["n"], *(fmt({k: metrics[m].get(k) for k in ("value", "ci_low", "ci_high")})
                                             for m in names)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("workdir")
    ap.add_argument("--mc-seconds", type=float)
    ap.add_argument("--gen-seconds", type=float)
    ap.add_argument("--threads", type=int)
    a = ap.parse_args()
    w = Path(a.workdir)
    mc_sum, mc_rows = load_result(w / "mc_all.json")
    test_ids = {q["id"] for q in load_questions(None, "test")[1]}
    test_rows = [r for r in mc_rows if str(r["id"]) in test_ids]
    if len(mc_rows) != 817 or len(test_rows) != 730:
        raise SystemExit(f"{w / 'mc_all.rows.jsonl'}: {len(mc_rows)} of 817 questions scored ({len(test_rows)} of "
                         "730 test questions): rerun benchmarks/truthfulqa/truthfulqa_smollm2.sh to finish it")
    mc_test = summarize(test_rows, MC, mc_sum["meta"]["config"]["n_boot"], mc_sum["meta"]["config"]["seed"])
    gen_sum, gen_rows = load_result(w / "gen_test.json")
    gm = [m for m in GEN if m in gen_sum["metrics"]]
    lines = ["# TruthfulQA on the embedded model (SmolLM2-135M-Instruct)", "",
             "Written by `bash benchmarks/truthfulqa/truthfulqa_smollm2.sh` (→ benchmarks/truthfulqa/truthfulqa_summary.py). Model: "
             f"`{mc_sum['meta'].get('model_info', {}).get('model')}`, float32, git "
             f"`{str(mc_sum['meta'].get('git_commit'))[:10]}`. Means over questions with 95% bootstrap intervals "
             "(1000 resamples of questions).", "",
             "## Multiple choice", "",
             f"Scored as {mc_sum['meta'].get('harness')} (QA primer, summed continuation log-likelihood; checked "
             "equal to lm_eval 0.4.13 on 40 questions: benchmarks/results/truthfulqa_mc_crosscheck.md). "
             "selfeval_mc1 = the paper's Self-Eval selection: the MC1 option with the highest 5-shot P(True).", "",
             *md_table(["questions", "n", *MC], [row("test split (paper)", mc_test, MC),
                                                 row("all 817", mc_sum["metrics"], MC)])]
    n_opts = sum(len(r["mc1_lls"]) for r in test_rows) / len(test_rows)
    n_pt = sum(len(r["mc1_lls"]) for r in mc_rows)
    n_ll = sum(len(set(o["text"] for o in q["mc1"] + q["mc2"])) for q in load_questions(None, "all")[1])
    qs_test = {q["id"]: q for q in load_questions(None, "test")[1]}
    longest = [{"id": r["id"], "mc1": float(max(qs_test[str(r["id"])]["mc1"], key=lambda o: len(o["text"]))["label"])}
               for r in test_rows]  # shortcut baseline, no model: pick the longest MC1 option
    long_sum = summarize(longest, ["mc1"], 1000, 0)["mc1"]
    sel = compare([{**r, "mc1": r["selfeval_mc1"]} for r in test_rows], test_rows, "mc1")
    lines += ["", f"Chance on the test split: MC1 = mean 1/#options = "
              f"{sum(1 / len(r['mc1_lls']) for r in test_rows) / len(test_rows):.3f} ({n_opts:.1f} MC1 options "
              "per question). Self-Eval selection − likelihood MC1 on the test split (paired bootstrap): "
              f"{diff(sel)}. Shortcut baseline (no model): "
              f"picking the longest MC1 option scores {fmt(long_sum)}.", "",
              "## Generation (test split)", "",
              f"Greedy answers, prompt `{gen_sum['meta'].get('config', {}).get('template')}`, at most "
              f"{gen_sum['meta'].get('config', {}).get('max_new_tokens')} tokens; judge: {gen_sum.get('judge')}.",
              "", *md_table(["questions", "n", *gm], [row("test split", gen_sum["metrics"], gm)])]
    abst = sum(1 for r in gen_rows if not r.get("info")) if gen_rows and "info" in gen_rows[0] else None
    lines += ["", f"Uninformative answers (abstentions or empty): {abst} of {len(gen_rows)}.", "",
              "## Cost", "",
              f"MC (817 questions: {n_ll:,} option log-likelihoods, {n_pt:,} 5-shot P(True) of MC1 options): "
              f"{a.mc_seconds} s; generation + judging (730 questions): {a.gen_seconds} s; torch threads "
              f"{a.threads}, the other core busy with the effect benchmark (wall times of the last invocation)."]
    md = "\n".join(lines) + "\n"
    (ROOT / "benchmarks/results/truthfulqa_smollm2.md").write_text(md)
    out = {"mc_test": mc_test, "selfeval_minus_mc1_test": sel, "longest_option_mc1_test": long_sum, "mc_all": mc_sum["metrics"], "gen_test": gen_sum["metrics"],
           "judge": gen_sum.get("judge"), "seconds": {"mc": a.mc_seconds, "gen": a.gen_seconds},
           "threads": a.threads, "meta": {"mc": mc_sum["meta"], "gen": gen_sum["meta"]}}
    (ROOT / "benchmarks/results/truthfulqa_smollm2.json").write_text(json.dumps(out, indent=1, default=str))
    print(md)


if __name__ == "__main__":
    from selfalign.errors import SelfAlignError

    try:
        main()
    except (SelfAlignError, FileNotFoundError) as e:
        raise SystemExit(f"error: {e}")
