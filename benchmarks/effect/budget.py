"""Expected wall time of every step, from the sizes (common.SIZES, the t1 recipes) and the measured rates (RATES).

    python benchmarks/effect/budget.py       (EFFECT_SMOKE=1: the smoke sizes)
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import HELDOUT_TASKS, RATES, SIZES, short  # noqa: E402

R = RATES


def data_counts() -> dict:
    """Rows (= options) per split of the SK-Tuning data these sizes give (computed without a model)."""
    from selfalign.stages.sk_data import SKDataConfig, option_rows, select_questions

    cfg = SKDataConfig(sources=SIZES["sources"], heldout_tasks=HELDOUT_TASKS, max_per_task=SIZES["max_per_task"],
                       heldout_fraction=SIZES["heldout_fraction"], seed=0, output="unused.jsonl")
    from table2 import is_valid

    out = {"train": 0, "valid": 0, "heldout": 0, "heldout_task": 0}
    for q in select_questions(cfg)[0]:
        split = "valid" if q["split"] == "train" and is_valid(q["task"], q["id"]) else q["split"]
        out[split] += len(option_rows(q, cfg))
    return out


def plan() -> list[tuple[str, float, str]]:
    """(step, expected seconds, how) in run order."""
    from selfalign.data import load_prompts
    from selfalign.data.mc import load_mc

    import table1

    n = data_counts()
    opts = {"a": n["heldout"], "b": n["heldout_task"],
            "c": sum(len(q["options"]) for q in load_mc("truthfulqa-mc", "test", SIZES["tqa_limit"]))}
    sk = SIZES["sk"]
    steps_per_epoch = math.ceil(n["train"] / sk["batch_size"])
    steps = min(sk.get("max_steps") or 10 ** 9, steps_per_epoch * sk["epochs"])
    evals = 1 + math.ceil(steps / (sk.get("eval_every") or steps_per_epoch))  # step 0, then every eval_every
    out = [("t2/sk-data", 5, "no model")]

    def t2(model, seeds):
        rows = []
        for label in ["base"] + [f"seed{s}" for s in seeds]:
            if label != "base":
                t = (R["process_s"] + (n["train"] + n["valid"] * (1 + evals)) * R["sk_ref_s_per_row"]
                     + steps * sk["batch_size"] * R["sk_train_s_per_row"])
                rows.append((f"t2/{short(model)}/{label}/sk-tune", t, f"{n['train']} rows, {steps} steps of "
                             f"{sk['batch_size']}, {evals} validations of {n['valid']} rows"))
            for k, o in opts.items():
                rows.append((f"t2/{short(model)}/{label}/calibrate-{k}",
                             R["process_s"] + o / R["calibrate_options_per_s"], f"{o} options"))
        return rows

    m1 = SIZES["t1_model"]
    out += t2(m1, SIZES["seeds"][:1])
    pt, skt, ev = (table1.load_recipe(r) for r in table1.RECIPES)
    lim = SIZES["t1_overrides"].get("prompt_limit")
    prompts = sum(len(load_prompts(*a)[:lim]) for a in (("truthfulqa", "train"), ("truthfulqa", "valid"), ("builtin",)))
    samples = prompts * pt["sample"]["n"]
    score = samples / R["score_rows_per_s"]
    out.append(("t1/ptrue", R["process_s"] + 3 * 5 + prompts * R["sample_s_per_prompt"] * pt["sample"]["n"] / 4 + score
                + pt["align"]["max_steps"] * R["align_s_per_step"],
                f"{prompts} prompts x {pt['sample']['n']} samples, {pt['align']['max_steps']} DPO steps"))
    out.append(("t1/skt", R["process_s"] + 2 * 5 + score + skt["align"]["max_steps"] * R["align_s_per_step"],
                f"{samples} samples scored, {skt['align']['max_steps']} DPO steps"))
    e = ev["eval"]
    mc, gen = e["truthfulqa-mc"].get("limit") or 730, e["truthfulqa-gen"].get("limit") or 730
    per = mc * R["mc_s_per_question"] + gen * R["gen_s_per_question"]
    out.append(("t1/eval", R["process_s"] + len(e["models"]) * (per + 2 * 5),
                f"{len(e['models'])} models x ({mc} MC + {gen} gen questions)"))
    done = {name for name, _, _ in out}
    out += [r for r in t2(m1, SIZES["seeds"]) if r[0] not in done]  # the base and seed-0 steps ran above
    for m in SIZES["models"]:
        if m != m1:
            out += t2(m, SIZES["seeds"])
    out.append(("summarize", 180 if SIZES["n_boot"] >= 100 else 10, "paired bootstraps"))
    return out


def main() -> None:
    rows = plan()
    for name, t, how in rows:
        print(f"{name:36s} {t:7.0f} s   {how}")
    print(f"{'total':36s} {sum(t for _, t, _ in rows) / 60:7.1f} min")


if __name__ == "__main__":
    main()
