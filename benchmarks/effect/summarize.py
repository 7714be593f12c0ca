"""Write benchmarks/results/effect.md + effect.json from whatever the effect benchmark has finished so far.

    python benchmarks/effect/summarize.py        (EFFECT_SMOKE=1: the smoke run, written to runs/effect-smoke/)
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: the shared formatter
import t1stats  # noqa: E402
import t2stats  # noqa: E402
from common import (BIGBENCH_TRAIN, HERE, RESULTS_MD, ROOT, SIZES, SMOKE, T1, current, eval_sets,  # noqa: E402
                    ledger)
import tables  # noqa: E402
from tables import BLANK, fmt, md_table, num  # noqa: E402

SET_TITLES = {k: v[2] for k, v in eval_sets().items()}
TARGET_AUROC_GAIN = 0.05


def diff(d):
    """A paired difference (tables.diff), marked **≠0** when its interval excludes zero."""
    s = tables.diff(d)
    return s + " **≠0**" if s.endswith("]") and d.get("excludes_zero") else s  # only a difference with an interval


# --- sections ------------------------------------------------------------------------------------------------
def what_was_run(t2: dict, t1: dict) -> list[str]:
    data = t2stats.data_counts().get("totals", {})
    sk = SIZES["sk"]
    tr, ho, ht = (data.get(s, {}) for s in ("train", "heldout", "heldout_task"))
    seeds = ", ".join(map(str, SIZES["seeds"]))
    t1m = SIZES["t1_model"]
    return [
        "## What was trained on what, and what was held out",
        "",
        f"- **Models**: {', '.join(f'`{m}`' for m in SIZES['models'])}, on CPU (dtype {SIZES['dtype']} for scoring, "
        f"{SIZES['train_dtype']} for SK-Tuning).",
        f"- **SK-Tuning data** (`selfalign sk-data --mode options`, 0-shot Self-Eval prompt, classes balanced per "
        f"question): BIG-bench tasks {', '.join(BIGBENCH_TRAIN)} and the TruthfulQA MC *train* split, at most "
        f"{SIZES['max_per_task']} questions per task. By a hash of each question, {SIZES['heldout_fraction']:.0%} of "
        f"each task's questions are held out; of the rest, {SIZES['valid_fraction']:.0%} of the questions (by "
        f"hash) are the validation set. Training + validation rows: {tr.get('true', 0) + tr.get('false', 0)} "
        f"({tr.get('questions', '?')} questions).",
        f"- **SK-Tuning**: single-token DPO on the A/B answer, LoRA r={sk['lora_r']} on q/k/v/o, beta {sk['beta']}, "
        f"lr {sk['learning_rate']}, batch {sk['batch_size']} (rows grouped {sk.get('batch_by', 'row')}-wise: "
        + ("a question's true and false options share a batch), " if sk.get("batch_by") == "question" else "shuffled), ")
        + f"{sk.get('epochs', 1)} epoch(s)"
        + (f", at most {sk['max_steps']} steps" if sk.get("max_steps") else "")
        + f"; validation AUROC every {sk.get('eval_every')} steps, the best checkpoint is kept; "
        f"**{len(SIZES['seeds'])} seeds** ({seeds}): the seed "
        "changes the LoRA initialisation and the data order; the data are the same for every seed.",
        "- **Evaluation sets** (Table 2; every option of every question scored with P(True) and with the answer "
        "log-likelihood, `selfalign calibrate`):",
        f"  - (a) {SET_TITLES['a']}: {ho.get('questions', '?')} questions never trained on, from the same tasks;",
        f"  - (b) {SET_TITLES['b']}: {ht.get('questions', '?')} questions;",
        f"  - (c) {SET_TITLES['c']}. TruthfulQA *train* questions were in the SK-Tuning data; test questions never.",
        f"- **Alignment (Table 1)**, `{t1m}`: {t1.get('prompts', '?')} training prompts = TruthfulQA train + valid "
        f"questions and the built-in set (no test question: checked), {t1.get('samples', '?')} samples in all; the "
        "samples are judged twice, by the base model's P(True) (Self-Eval-P(True)) and by the seed-0 SK-tuned "
        "model of Table 2 (Self-Eval-SKT); each judge's preference pairs (top half vs bottom half of a prompt's "
        "samples) train one DPO LoRA adapter on the base model. Recipes: `benchmarks/effect/t1-ptrue.yaml`, "
        "`t1-skt.yaml`, `t1-eval.yaml`.",
        "- **Intervals**: 95% percentile bootstraps over questions (all options of a question move together). A "
        "difference is marked **≠0** when its paired-bootstrap interval excludes zero.",
        "",
    ]


def verdict(t2: dict, t1: dict) -> list[str]:
    out = ["## Against the targets", ""]
    q = t2.get(SIZES["t1_model"], {}).get("a", {})
    d = q.get("seed_mean_diff", {}).get("auroc")
    if d and d.get("diff") is not None:
        met = d["diff"] >= TARGET_AUROC_GAIN and d["low"] is not None and d["low"] > 0
        per = "; ".join(f"seed {s}: {diff(v['auroc_diff'])}" for s, v in q["seeds"].items())
        base, after = q["base"]["auroc"]["value"], q["seed_mean"]["auroc"]["mean"]
        pt0, pt1 = q["base"]["mean_p_true"]["value"], q["seed_mean"]["mean_p_true"]["mean"]
        out.append(f"- SK-Tuning raises P(True) AUROC on held-out questions (a) of `{SIZES['t1_model']}` by ≥ "
                   f"{TARGET_AUROC_GAIN} with an interval excluding zero: **{'met' if met else 'not met'}**. "
                   f"Seed-averaged gain {diff(d)} ({per}); AUROC {num(base)} → {num(after)}, mean P(True) "
                   f"{num(pt0)} → {num(pt1)}.")
        if met and (base < 0.5 or after < 0.55):
            out.append(f"  Caution: the gain takes AUROC from {num(base)} to {num(after)}, i.e. from below or near chance "
                       "to about chance; that is P(True) losing a wrong ranking, not learning a right one.")
        if abs(pt1 - 0.5) > 0.3 and abs(pt1 - 0.5) > abs(pt0 - 0.5) + 0.1:
            out.append(f"  Caution: after SK-Tuning the mean P(True) is {num(pt1)} (base {num(pt0)}) on a set that is "
                       "half true: the judge has drifted towards always answering "
                       + ("True" if pt1 > 0.5 else "False") + ".")
    else:
        out.append("- SK-Tuning AUROC target: not evaluated (Table 2 did not finish for this model).")
    for model, sets in t2.items():  # every other significant change, next to what a model-free shortcut gets
        for name, st in sets.items():
            dd = (st.get("seed_mean_diff") or {}).get("auroc")
            if not dd or not dd.get("excludes_zero") or (model == SIZES["t1_model"] and name == "a"):
                continue
            b = st["baselines"]
            best = max((v["value"], k) for k, v in b.items() if v and v.get("value") is not None)
            after = st["seed_mean"]["auroc"]["mean"]
            out.append(f"- `{model}`, ({name}) {SET_TITLES[name]}: seed-averaged ΔAUROC {diff(dd)} "
                       f"({num(st['base']['auroc']['value'])} → {num(after)}). Best model-free shortcut on the same "
                       f"options: {best[1].replace('_', ' ')} {num(best[0])}"
                       + (" — the tuned judge does not beat it." if after <= best[0] else "."))
    mc = t1.get("truthfulqa-mc", {}).get("diffs", {}).get("mc1", {})
    d1 = mc.get("selfeval-skt − base")
    if d1:
        raised = d1["diff"] > 0
        out.append(f"- Alignment with Self-Eval-SKT raises MC1 on the TruthfulQA test split: MC1 difference "
                   f"{diff(d1)}: **{'raised' if raised else 'not raised'}**"
                   + ("" if not raised else (", and the interval excludes zero" if d1.get("excludes_zero")
                                             else ", but the interval includes zero (not significant)"))
                   + f". Against Self-Eval-P(True): {diff(mc.get('selfeval-skt − selfeval-ptrue'))}.")
    else:
        out.append("- MC1 target: not evaluated (Table 1 did not finish).")
    return out + [""]


def training_md(model: str) -> list[str]:
    """How each seed's SK-Tuning went: did the training loss leave ln 2, what did validation see."""
    tr = t2stats.training(model)
    if not tr:
        return []
    out = [f"SK-Tuning runs of `{model}` (training loss starts at ln 2 = 0.693; validation = "
           f"{SIZES['valid_fraction']:.0%} of the training questions):", ""]
    for s, r in tr.items():
        lq = r.get("loss_first_last_quarter") or [None, None]
        checks = ", ".join(f"{st}: {num(a, 2)}/{num(p, 2)}" for st, a, p in r.get("valid_checks") or [])
        out.append(f"- seed {s}: {r.get('steps')} steps, {num(r.get('seconds'), 0)} s; mean training loss first / "
                   f"last quarter {num(lq[0])} / {num(lq[1])}; kept step {r.get('best_step')} (validation AUROC "
                   f"{num((r.get('initial_valid') or {}).get('auroc'))} → {num(r.get('best_valid_auroc'))}); "
                   f"validation AUROC / mean P(True) by step: {checks}.")
    return out + [""]


def table2_md(t2: dict) -> list[str]:
    out = ["## Table 2: P(True) calibration before and after SK-Tuning", ""]
    for model in t2:
        out += training_md(model)
    for model, sets in t2.items():
        for name, st in sets.items():
            cols = t2stats.HEAD
            rows = [["base", *(fmt(st["base"][m]) for m in cols), BLANK]]
            rows += [[f"SK-tuned, seed {s}", *(fmt(v[m]) for m in cols), diff(v["auroc_diff"])]
                     for s, v in st["seeds"].items()]
            if "seed_mean" in st:
                sm = st["seed_mean"]
                rows.append(["SK-tuned, mean ± sd over seeds", *(f"{num(sm[m]['mean'])} ± {num(sm[m]['sd'])}"
                                                                 for m in cols), diff(st["seed_mean_diff"]["auroc"])])
            out += [f"### `{model}`, ({name}) {SET_TITLES[name]}", "",
                    f"{st['n_questions']} questions, {st['n_options']} options, {st['positive_rate']:.0%} of options "
                    f"true; chance selection accuracy {num(st['chance_accuracy'])}.", "",
                    *md_table(["system", "AUROC", "ECE", "Brier", "selection acc", "direct acc", "mean P(True)",
                               "ΔAUROC vs base (paired)"], rows)]
            if "seed_mean" in st:
                dd = st["seed_mean_diff"]
                out += ["", f"Seed-averaged paired differences (after − before): AUROC {diff(dd['auroc'])}, "
                            f"ECE {diff(dd['ece'])}, Brier {diff(dd['brier'])} (lower ECE / Brier is better)."]
            b = st["baselines"]
            out += ["", "Shortcut baselines (no model), AUROC on the same options: answer-string frequency "
                        f"{fmt(b['answer_frequency'])}; longer option {fmt(b['longer_option'])}; rate at which the "
                        "option string was true in the SK-Tuning training rows of its task "
                        f"{fmt(b['train_true_rate'])}.",
                    ""]
    if not t2:
        out += ["(no finished calibration yet)", ""]
    return out


def table1_md(t1: dict, tr: dict) -> list[str]:
    out = ["## Table 1: alignment with Self-Eval-P(True) vs Self-Eval-SKT (TruthfulQA test split; MC on every test question, generation on the first ones)", ""]
    for task, data in t1.items():
        labels = [lab for lab in t1stats.LABELS if lab in data["metrics"]] or list(data["metrics"])
        metrics = t1stats.TASKS.get(task) or t1stats.FALLBACK.get(task) or ()
        rows = [[m, *(fmt(data["metrics"][lab].get(m)) for lab in labels),
                 "; ".join(f"{k} {diff(v)}" for k, v in data["diffs"].get(m, {}).items()) or "–"] for m in metrics]
        out += [f"### {task}", "", *md_table(["metric", *labels, "paired differences"], rows)]
        n = next((v.get("n") for lab in labels for v in data["metrics"][lab].values() if v.get("n")), None)
        out += ["", f"{n} questions." if n else "", ""]
    if not t1:
        out += ["(not finished)", ""]
    for run, title in (("ptrue", "Self-Eval-P(True)"), ("skt", "Self-Eval-SKT")):
        r = tr.get(run, {})
        a = r.get("align", {})
        fin = a.get("final") or {}
        out.append(f"- {title}: {r.get('scored')} samples scored (mean P(True) {num(r.get('mean_p_true'))}), "
                   f"{r.get('pairs')} pairs, DPO {a.get('steps')} steps (last logged: loss "
                   f"{num(fin.get('loss'))}, reward accuracy {num(fin.get('rewards/accuracies'))}, margin "
                   f"{num(fin.get('rewards/margins'))}).")
    return out + [""]


def steps_md() -> tuple[list[str], dict]:
    import budget

    led, plan = ledger(), {name: (t, how) for name, t, how in budget.plan()}
    rows, total = [], 0.0
    for name, recs in led.items():
        recs = current(recs)
        wall = sum(r["wall_s"] for r in recs)
        total += wall
        rows.append({"step": name, "what": plan.get(name, (None, ""))[1], "expected_s": plan.get(name, (None,))[0],
                     "wall_s": round(wall, 1), "user_s": round(sum(r["user_s"] for r in recs), 1),
                     "peak_mb": max(r["maxrss_mb"] for r in recs), "attempts": len(recs),
                     "finished": recs[-1]["finished"]})
    out = ["## Steps: wall time and peak memory", "",
           "Each step is one child process; peak memory is its maximum resident set size (`os.wait4` rusage). "
           "Wall time sums all attempts of a step (an interrupted step resumes). *Expected* is the plan of "
           "`benchmarks/effect/budget.py` (the sizes below at the measured rates).", ""]
    out += md_table(["step", "size", "expected (s)", "wall (s)", "CPU user (s)", "peak RSS (MB)", "attempts", "finished"],
                    [[r["step"], r["what"], num(r["expected_s"], 0), num(r["wall_s"], 0), num(r["user_s"], 0),
                      num(r["peak_mb"], 0), r["attempts"], "yes" if r["finished"] else "no"] for r in rows])
    missing = [n for n in plan if n not in led and n != "summarize"]
    out += ["", f"Total wall time of the steps: {total / 60:.1f} min (planned: "
                f"{sum(t for t, _ in plan.values()) / 60:.1f} min)."
            + (f" Not run: {', '.join(missing)}." if missing else ""), ""]
    return out, {"steps": rows, "total_wall_s": round(total, 1), "plan": plan}


def sizes_md() -> list[str]:
    import table1
    from common import RATES

    ev = table1.load_recipe("t1-eval")["eval"]
    rates = "; ".join(f"{k} {v}" for k, v in RATES.items())
    return ["## Sizes, and why", "",
            "The whole benchmark has to fit one background run of about 2 hours on 2 shared CPU cores. The "
            "sizes were chosen from rates measured with short runs (`benchmarks/effect/budget.py` turns sizes "
            f"into the expected time of each step): {rates}.",
            "",
            "- smollm2-135m costs about as much as qwen2.5-coder-0.5b per token on this CPU (30 thin layers against "
            "24: per-layer overhead dominates), so both models get the same data.",
            f"- SK-Tuning data: {SIZES['max_per_task']} questions per task, {SIZES['heldout_fraction']:.0%} held "
            f"out, {SIZES['sk']['epochs']} epoch(s): one SK-Tuning run costs 3-11 minutes (Steps above), and six are needed "
            "(2 models x 3 seeds). "
            "Two BIG-bench tasks with prompts 2-4x longer than the rest were left out for cost.",
            f"- Set (c) uses the first {SIZES['tqa_limit']} TruthfulQA test questions (each has about 8 options); "
            "Table 1: " + ("all" if not ev['truthfulqa-mc'].get('limit') else f"the first {ev['truthfulqa-mc']['limit']}")
            + f" (MC) and the first {ev['truthfulqa-gen'].get('limit') or 730} (generation) of the 730 test questions "
            "(`t1-eval.yaml`; generation costs about 0.85 s per question and model).",
            "- Table 1: 4 samples per prompt (the paper: 10), the short `qa` prompt instead of the paper's 6-shot "
            "primer (5x the tokens in sampling and DPO), at most 30 DPO steps of 4 pairs.",
            f"- dtype: {SIZES['dtype']} for scoring, sampling and DPO (about 2x faster than float32 on this CPU), "
            f"{SIZES['train_dtype']} for SK-Tuning; LoRA weights are float32 throughout.",
            "- With these sizes the intervals are wide: a real gain of a few points of AUROC or MC1 can go "
            "undetected. Larger sizes need a GPU or a longer run (`common.FULL`, the t1 recipes).", ""]


def main() -> None:
    t2 = t2stats.table2()
    t1 = t1stats.results()
    tr = t1stats.training()
    steps, steps_json = steps_md()
    head = ["# Effect of SK-Tuning and of Self-Eval-SKT alignment" + (" (SMOKE RUN: tiny sizes, meaningless numbers)"
                                                                      if SMOKE else ""), "",
            f"Generated by `bash benchmarks/effect/run_all.sh{' --smoke' if SMOKE else ''}` "
            f"(summariser: `benchmarks/effect/summarize.py`), {time.strftime('%Y-%m-%d %H:%M')}, "
            f"{os.cpu_count()} CPU cores. Run directory: `{T1.parent.relative_to(ROOT)}/`.", ""]
    tried = (HERE / "tried.md").read_text().splitlines() + [""] if (HERE / "tried.md").exists() else []
    md = (head + verdict(t2, t1) + what_was_run(t2, tr) + table2_md(t2) + table1_md(t1, tr) + steps
          + ([] if SMOKE else sizes_md() + tried))
    RESULTS_MD.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_MD.write_text("\n".join(md).rstrip() + "\n")
    from selfalign.io import write_json
    from selfalign.provenance import meta

    write_json(RESULTS_MD.with_suffix(".json"), {
        "table2": t2, "table1": t1, "table1_training": tr, "table2_training":
        {m: t2stats.training(m) for m in SIZES["models"]}, "sk_data": t2stats.data_counts().get("totals"),
        "sizes": SIZES, **steps_json, "meta": meta(None, smoke=SMOKE)})
    print(f"wrote {RESULTS_MD} and {RESULTS_MD.with_suffix('.json').name}")


if __name__ == "__main__":
    main()
