"""Table 1 steps: base vs aligned with Self-Eval-P(True) vs aligned with Self-Eval-SKT, via `selfalign run`.

    python benchmarks/effect/table1.py            (EFFECT_SMOKE=1: tiny sizes, the embedded model)

Writes the training prompts (TruthfulQA train + valid questions and the built-in set), then runs the recipes
t1-ptrue.yaml, t1-skt.yaml and t1-eval.yaml (copied to RUN/t1/recipes/, with the smoke sizes and paths when
EFFECT_SMOKE is set). The SKT judge is Table 2's seed-0 SK-tuned model, so run table2.py for that seed first.
"""
from __future__ import annotations

import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import FULL, HERE, ROOT, RUN, SIZES, T1, selfalign, short, step  # noqa: E402

RECIPES = ("t1-ptrue", "t1-skt", "t1-eval")


def write_prompts(limit: int | None = None) -> Path:
    """TruthfulQA train + valid and the built-in questions as {id, question, source}; fails on a test question."""
    from selfalign.data import load_prompts
    from selfalign.io import write_jsonl_atomic

    groups = [load_prompts("truthfulqa", "train"), load_prompts("truthfulqa", "valid"), load_prompts("builtin")]
    rows = [{"id": r["id"], "question": r["question"], "source": src}
            for src, g in zip(("truthfulqa-train", "truthfulqa-valid", "builtin"), groups) for r in g[:limit]]
    test = {r["question"].strip() for r in load_prompts("truthfulqa", "test")}
    leaked = [r["question"] for r in rows if r["question"].strip() in test]
    if leaked:
        raise SystemExit(f"training prompts include TruthfulQA test questions, e.g. {leaked[0]!r}")
    path = T1 / "prompts.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_jsonl_atomic(path, rows)
    return path


def _rewrite(obj, subs: dict):
    """Every string with the full run's paths and model replaced (smoke runs)."""
    if isinstance(obj, dict):
        return {k: _rewrite(v, subs) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_rewrite(v, subs) for v in obj]
    if isinstance(obj, str):
        if obj == FULL["t1_model"]:
            return SIZES["t1_model"]
        for a, b in subs.items():
            obj = obj.replace(a, b)
    return obj


def load_recipe(name: str) -> dict:
    """The recipe as run: the shipped file, with smoke sizes / paths / model when EFFECT_SMOKE is set."""
    recipe = yaml.safe_load((HERE / f"{name}.yaml").read_text())
    subs = {"runs/effect/": f"{RUN.relative_to(ROOT)}/", f"/t2/{short(FULL['t1_model'])}/":
            f"/t2/{short(SIZES['t1_model'])}/"}
    recipe = _rewrite(recipe, subs)
    o = SIZES["t1_overrides"]
    for stage in ("sample", "align"):
        if stage in recipe and stage in o:
            recipe[stage].update(o[stage])
    if "eval" in recipe and "eval" in o:
        for task in recipe["eval"]["tasks"]:
            recipe["eval"][task].update({k: v for k, v in o["eval"].items()
                                         if k != "max_new_tokens" or task == "truthfulqa-gen"})
    return recipe


def effective_recipe(name: str) -> Path:
    """Write the recipe as run to RUN/t1/recipes/NAME.yaml."""
    recipe = load_recipe(name)
    out = T1 / "recipes" / f"{name}.yaml"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(f"# written by benchmarks/effect/table1.py from benchmarks/effect/{name}.yaml\n"
                   + yaml.safe_dump(recipe, sort_keys=False))
    return out


def inputs(recipe: dict) -> tuple[list[Path], list[str]]:
    """Files a recipe reads that its own stage hashes do not cover, and the flag that redoes it if they change."""
    if "sample" in recipe:
        return [ROOT / recipe["sample"]["input"]], ["--from", "sample"]
    if "score" in recipe:
        return [ROOT / recipe["score"]["input"], ROOT / recipe["score"]["model"] / "train_summary.json"], \
            ["--from", "score"]
    return [ROOT / m / "train_summary.json" for lab, m in recipe["eval"]["models"].items() if lab != "base"], \
        ["--from", "eval"]


def main() -> None:
    write_prompts(SIZES["t1_overrides"].get("prompt_limit"))
    for name in RECIPES:
        path = effective_recipe(name)
        deps, redo = inputs(load_recipe(name))
        step(f"t1/{name.removeprefix('t1-')}", selfalign("run", path.relative_to(ROOT)), deps=[path, *deps],
             redo_flags=redo)


if __name__ == "__main__":
    main()
