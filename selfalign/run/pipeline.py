"""`selfalign run RECIPE.yaml`: the stages of a recipe into one run directory, skipping what is done.

A recipe is YAML: shared keys (``model``, ``device``, ``dtype``, ``seed``, ...) and one section per stage whose
keys are that command's flags (``sample: {n: 4, top_p: 0.9}``). Inputs and outputs are wired by the runner;
a value ``"@STAGE"`` names another stage's output (``score: {model: "@sk-tune"}`` judges with the SK-tuned
model). Every stage runs in ``RUN/<stage>/`` and is keyed by a hash of its settings and its inputs' hashes:
a finished stage with the same hash is skipped, an unfinished one resumes (stages append rows / checkpoint),
a changed one is moved aside and redone, and so is everything downstream of it. A local model folder among a
stage's inputs counts by its weights' fingerprint (weights replaced at the same path redo the stage). A finished
stage records the content hash of every file it wrote; one edited, added or removed by hand since is one line
(exit 2), neither used nor silently redone: ``--from STAGE`` redoes it (the edited output moved aside) or the
file is restored. Settings that only change how
finished rows are summarised (``summary_only`` fields: an evaluation's bootstrap seed and resamples) are not part of
the hash: changing them resumes the stage, which recomputes its summary from the rows it has. Nor are the settings
that only place the work on devices (``device_map``, ``tensor_parallel_size``, ``data_parallel_size``): a run moved
to more GPUs resumes where it stopped.

Every value is checked when the plan is made (types, choices, ranges: see ``config``), so ``--dry-run`` rejects
a bad recipe before anything runs, naming the recipe file, the stage and the key.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from selfalign import registry
from selfalign.config import (Config, ModelArgs, from_dict, normalize_keys, opt, placement_only, require,
                              summary_only)
from selfalign.errors import SelfAlignError
from selfalign.store.guard import OutputGuard
from selfalign.store.hashes import file_hash, weights_fingerprint
from selfalign.store.io import peek_json, write_json
from selfalign.store.progress import interruptible
from selfalign.store.provenance import meta, redact
from selfalign.run.confine import check_recipe_paths, check_recipe_reads
from selfalign.run.recipe import SHARED, load_recipe, run_name
from selfalign.run.state import edited, move_aside, outputs, state, state_path

@dataclass
class RunConfig(Config):
    recipe: Optional[str] = opt(None, "recipe YAML file, or the name of a shipped recipe (demo, demo-skt, biogen-demo, "
                                         "paper-truthfulqa-llama2-7b, ...)", positional=True)
    output: Optional[str] = opt(None, "run directory (default: the recipe's `output`, else runs/<recipe name>)")
    from_stage: Optional[str] = opt(None, "redo this stage and every stage that depends on it", choices=registry.recipe_order,
                                     aliases=("--from",))
    to_stage: Optional[str] = opt(None, "stop after this stage: run it and only the stages it needs",
                                  choices=registry.recipe_order, aliases=("--to",))
    dry_run: bool = opt(False, "print the plan (stages, hashes, skip/run) and stop")
    overrides: list[str] = opt([], "recipe keys to change, after the recipe: model=PATH align.learning_rate=1e-4 "
                                   "eval.truthfulqa-mc.limit=20 (values are YAML)", positional=True,
                               metavar="STAGE.KEY=VALUE")


def _hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class Step:
    name: str                       # sample, score, ..., or eval/<model label>/<task>
    cls: type
    run: object
    values: dict                    # config values, "@ref" strings unresolved
    refs: dict                      # field -> (stage, part)
    directory: Path
    output_name: str
    stage: registry.Stage = None    # its registry entry (evaluations: the task's)
    hash: str = ""


def _fill(cls, section: dict, recipe: dict, where: str) -> dict:
    fields = {f.name for f in dataclasses.fields(cls)}
    vals = {k: recipe[k] for k in SHARED if k in recipe and k in fields}
    vals.update(normalize_keys(cls, section, where))
    return vals


def _mapping(value, what: str, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SelfAlignError(f"{where}: {what} must be a mapping of keys to values, got {value!r}")
    return value


def plan(recipe: dict, run_dir: Path, where: str, skipped: list | None = None) -> list[Step]:
    """The recipe's stages in order, with configs validated and hashes computed (nothing is run). ``skipped``, when
    given, receives (step name, why) for each stage set to null and each step that needs one."""
    steps, by_name = [], {}
    nulled = {name for name in registry.recipe_order() if name in recipe and recipe[name] is None}
    for name, st in registry.recipe_stages().items():
        if name not in recipe or name in nulled:  # `align: null` (or the override align=null): not run
            continue
        cls, fn = st.load()
        section = _mapping(recipe[name], f"section {name!r}", where)
        vals = {**st.inputs, **_fill(cls, section, recipe, f"{where}: {name}")}
        step = Step(name, cls, fn, vals, {}, run_dir / name, st.output, st)
        steps.append(step)
        by_name[name] = step
    if recipe.get("eval") is not None:
        steps += _eval_steps(recipe, run_dir, where, by_name)
    kept = _without(steps, nulled)
    if skipped is not None:
        skipped.extend((n, "null in the recipe") for n in registry.recipe_order() if n in nulled)
        skipped.extend((s.name, f"needs {', '.join(sorted(_needs(s) & nulled)) or 'a skipped stage'}, which is null")
                       for s in steps if s not in kept)
    steps = kept
    for s in steps:
        _resolve_refs(s, by_name, where)
        from_dict(s.cls, {k: v for k, v in s.values.items()}, where=f"{where}: {s.name}")  # validates the keys
        upstream = {f: by_name[st].hash + (f":{part}" if part else "") for f, (st, part) in s.refs.items()}
        work = {k: v for k, v in s.values.items() if k not in summary_only(s.cls) | placement_only(s.cls)}
        key = {"stage": s.name.split("/")[0], "values": work, "inputs": upstream}
        if s.stage.revision:  # a fixed stage: its earlier outputs are not reused (0 keeps the old hashes)
            key["revision"] = s.stage.revision
        files = _input_files(s)
        if files:  # an edited input file changes the hash (a recipe without file inputs keeps its old hashes)
            key["files"] = files
        s.hash = _hash(key)
        by_name.setdefault(s.name, s)
    for s in steps:  # a stage's own plan-time check (score's oracle needs prompts with gold targets)
        s.stage.check_plan(s.values, {k: by_name[st].values for k, (st, _) in s.refs.items()}, where)
    return steps


NOT_INPUTS = ("output", "claim_cache")  # files a stage writes, not reads


def _without(steps: list[Step], nulled: set[str]) -> list[Step]:
    """The steps that need none of the nulled stages, directly or through another step (the evaluation of the
    aligned model goes with ``align: null``)."""
    gone, kept = set(nulled), []
    for s in steps:  # in dependency order
        if _needs(s) & gone:
            gone.add(s.name)
        else:
            kept.append(s)
    return kept


def _needs(step: Step) -> set[str]:
    """The stages a step reads from (its ``@STAGE`` values)."""
    return {v[1:].partition(":")[0] for v in step.values.values() if isinstance(v, str) and v.startswith("@")}


def upstream(steps: list[Step], stage: str) -> set[str]:
    """``stage``'s steps (every eval step for "eval") and every step they depend on, directly or not."""
    out = {s.name for s in steps if s.name.split("/")[0] == stage}
    for s in reversed(steps):  # dependencies come first
        if s.name in out:
            out |= {st for st, _ in s.refs.values()}
    return out


def _input_files(step: Step) -> dict:
    """{field: content hash} of every value naming an existing file (``sk:PATH`` too), upstream stages aside."""
    out = {}
    for k, v in sorted(step.values.items()):
        if k in NOT_INPUTS or k in step.refs or not isinstance(v, str) or v.startswith("@"):
            continue
        for cand in (v, v.partition(":")[2]):
            if cand and Path(cand).is_file():
                out[k] = file_hash(cand)
                break
            if cand and (fp := weights_fingerprint(cand)):  # a model folder: weights replaced there redo the stage
                out[k] = fp
                break
    return out


def _eval_steps(recipe, run_dir, where, by_name) -> list[Step]:
    sec = dict(_mapping(recipe["eval"], "section 'eval'", where))
    tasks = sec.pop("tasks", None)
    models = sec.pop("models", None) or ["base"]
    base = recipe.get("model", ModelArgs.model)
    if not tasks:
        raise SelfAlignError(f"{where}: eval needs `tasks` (available: {', '.join(registry.evals())})")
    if not isinstance(tasks, list) or not all(isinstance(t, str) for t in tasks):
        raise SelfAlignError(f"{where}: eval.tasks must be a list of task names, got {tasks!r}")
    if isinstance(models, list) and all(isinstance(m, str) for m in models):
        # labels: base = the recipe's model, aligned = @align, sk-tuned = @sk-tune
        models = {m: base if m == "base" else registry.model_labels().get(m, m) for m in models}
    if not isinstance(models, dict) or not all(isinstance(v, str) for v in models.values()):
        raise SelfAlignError(f"{where}: eval.models must be a list of labels or a mapping of label to model spec, "
                             f"got {models!r}")
    unknown = sorted(set(sec) - set(tasks))
    if unknown:
        raise SelfAlignError(f"{where}: eval has settings for {', '.join(unknown)}, which are not in its tasks")
    steps = []
    for label, spec in models.items():
        for t in tasks:
            try:
                st = registry.evaluation(t)
                cls, fn = st.load()
            except SelfAlignError as e:
                raise SelfAlignError(f"{where}: eval: {e}") from None
            settings = _mapping(sec.get(t), f"eval.{t}", where)
            if "model" in settings:
                raise SelfAlignError(f"{where}: eval.{t}.model: the models to evaluate are eval.models")
            vals = _fill(cls, {**settings, "model": spec}, recipe, f"{where}: eval.{t}")
            if "verifier" in {f.name for f in dataclasses.fields(cls)} and vals.get("verifier") in (None, ""):
                vals["verifier"] = base  # one fixed fact checker for every compared model, not each its own
            if label != "base":  # the base's adapter must not carry over to a different model
                vals.pop("adapter", None)
            label = re.sub(r"[^\w.-]+", "_", str(label))
            steps.append(Step(f"eval/{label}/{t}", cls, fn, vals, {}, run_dir / "eval" / label, f"{t}.json", st))
    return steps


def _resolve_refs(step: Step, by_name: dict, where: str) -> None:
    for k, v in list(step.values.items()):
        if isinstance(v, str) and v.startswith("@"):
            stage, _, part = v[1:].partition(":")
            if stage not in by_name:
                if k in step.stage.inputs:  # a default wiring with no such stage
                    raise SelfAlignError(f"{where}: stage {step.name!r} needs its input: add a {stage!r} section "
                                         f"or set {step.name}.{k}")
                raise SelfAlignError(f"{where}: {step.name}.{k} = {v!r} names a stage the recipe does not run")
            if part and part not in by_name[stage].stage.parts:
                raise SelfAlignError(f"{where}: {step.name}.{k} = {v!r}: stage {stage!r} writes no {part!r} file"
                                     + (f" (it has: {', '.join(by_name[stage].stage.parts)})"
                                        if by_name[stage].stage.parts else ""))
            step.refs[k] = (stage, part)


def _path_of(step: Step, part: str = "") -> str:
    """The file a ``@STAGE[:PART]`` reference names: the stage's output, or a part it writes beside it."""
    return str(step.directory / (step.stage.parts[part] if part else step.output_name))


# --- running -----------------------------------------------------------------------------------------------
def status(step: Step, redo: bool) -> str:
    st = state(step)
    if not st:
        return "run"
    if redo or st.get("hash") != step.hash:
        return "redo"
    same_summary = st.get("summary", {}) == _summary_values(step)  # else: the rows stay, the summary is redone
    if not (st.get("finished") and same_summary):
        return "resume"
    return "edited" if edited(step) else "skip"


def _summary_values(step: Step) -> dict:
    return {k: v for k, v in step.values.items() if k in summary_only(step.cls)}


def downstream(steps: list[Step], stage: str) -> set[str]:
    """``stage`` (every eval step for "eval") and every step that depends on it, directly or not."""
    out = {s.name for s in steps if s.name.split("/")[0] == stage}
    for s in steps:  # steps are in dependency order
        if any(st in out for st, _ in s.refs.values()):
            out.add(s.name)
    return out


def run_recipe(cfg: RunConfig) -> dict:
    from selfalign.resources import find_recipe

    require(cfg, "recipe")
    recipe_file = str(find_recipe(cfg.recipe))  # a file, or a shipped recipe by name (`selfalign run demo`)
    recipe = load_recipe(recipe_file, cfg.overrides)
    name = run_name(recipe.get("name") or Path(recipe_file).stem, recipe_file)
    run_dir = Path(cfg.output or recipe.get("output") or f"runs/{name}")
    check_recipe_paths(recipe, run_dir, recipe_file, cfg.output, cfg.overrides)  # the file's paths stay in the run's places
    skipped: list = []
    steps = plan(recipe, run_dir, where=recipe_file, skipped=skipped)
    if not steps:
        raise SelfAlignError(f"{recipe_file}: no stages (sections: {', '.join(registry.recipe_order())})")
    if cfg.to_stage:
        keep = upstream(steps, cfg.to_stage)
        if not keep:
            why = " (it is null in the recipe)" if any(n == cfg.to_stage for n, _ in skipped) else ""
            raise SelfAlignError(f"{recipe_file}: --to {cfg.to_stage}: the recipe has no {cfg.to_stage!r} stage{why}")
        skipped += [(s.name, f"after --to {cfg.to_stage}") for s in steps if s.name not in keep]
        steps = [s for s in steps if s.name in keep]
    redo = downstream(steps, cfg.from_stage) if cfg.from_stage else set()
    reads = lambda: check_recipe_reads(recipe, run_dir, recipe_file, cfg.overrides)  # noqa: E731 - a shared recipe's
    if cfg.dry_run:
        decisions = _decide(steps, redo, skipped, name, run_dir, reads)
        return {"run_dir": str(run_dir), "plan": {s.name: d for s, d in decisions}, "not_run": dict(skipped)}
    # one runner of a run folder at a time; recipe.json records the recipe (a changed one moves the old aside)
    recipe_json = run_dir / "recipe.json"
    overrides = list(cfg.overrides or [])
    with OutputGuard(recipe_json, inputs=[recipe_file], settings=redact({"recipe": recipe, "overrides": overrides}),
                     whole=[recipe_json], record=recipe_json) as g:
        decisions = _decide(steps, redo, skipped, name, run_dir, reads)  # under the lock: no other runner now
        for s, d in decisions:  # a finished stage's output changed by hand: neither silently used nor redone
            if d == "edited":
                raise SelfAlignError(f"{edited(s)} differs from what stage {s.name} wrote when it finished; rerun "
                                     f"with --from {s.name.split('/')[0]} to redo it and the stages after it (the "
                                     "changed output is moved aside, not deleted), or restore the file")
        g.record(meta(None, recipe=recipe, recipe_file=recipe_file, overrides=overrides))
        return _run(steps, decisions, skipped, recipe_file, run_dir)


def _decide(steps: list[Step], redo: set, skipped: list, name: str, run_dir: Path,
            reads) -> list[tuple[Step, str]]:
    """Each step's decision (run, skip, resume, redo, edited) and each step left out, printed; then the files the
    recipe reads confined (``reads``) and every input of what will run checked."""
    from selfalign.data.sources import check_step, root_line

    decisions = [(s, status(s, s.name in redo)) for s in steps]
    print(f"run {name} → {run_dir}")
    print(f"  {root_line()}")
    for s, d in decisions:
        print(f"  {s.name:28s} {s.hash}  {d}")
    for left, why in skipped:  # `align: null`, `align=null`, --to pairs: said, not silently left out
        print(f"  {left:28s} {'-' * 16}  not run: {why}")
    reads()
    for s, d in decisions:  # every input of what will run is there (files, alias packages): one line if not
        if d != "skip":
            check_step(s.name, s.values, s.refs)
    return decisions


def _run(steps: list[Step], decisions: list[tuple[Step, str]], skipped: list, recipe_file: str,
         run_dir: Path) -> dict:
    by_name = {s.name: s for s in steps}
    timings = {}
    for s, d in decisions:
        if d == "skip":
            timings[s.name] = state(s).get("seconds")
            continue
        if d == "redo":
            move_aside(s, state(s).get("hash", ""))
        values = dict(s.values)
        for k, (stage, part) in s.refs.items():
            values[k] = _path_of(by_name[stage], part)
        values["output"] = _path_of(s)
        s.directory.mkdir(parents=True, exist_ok=True)
        write_json(state_path(s), redact({"stage": s.name, "hash": s.hash, "finished": False, "config": values}))
        print(f"\n== {s.name} ({'resume' if d == 'resume' else 'run'}) ==", flush=True)
        t0 = time.time()
        with interruptible(lambda: f"stage {s.name} unfinished in {s.directory}; rerun to resume"):
            result = s.run(from_dict(s.cls, values, where=f"{recipe_file}: {s.name}"))
        timings[s.name] = round(time.time() - t0, 2)
        write_json(state_path(s), redact({"stage": s.name, "hash": s.hash, "finished": True, "config": values,
                                           "summary": _summary_values(s), "seconds": timings[s.name],
                                           "result": result, "outputs": outputs(s)}))
    from selfalign.run.summary import write_summary

    table = write_summary(run_dir, [s for s in steps if s.name.startswith("eval/")])
    if table:
        print("\n" + table)
        _card_results(steps, by_name)
    return {"run_dir": str(run_dir), "stages": {s.name: d for s, d in decisions}, "not_run": dict(skipped),
            "seconds": timings,
            "summary": str(run_dir / "summary.md") if table else None}


def _card_results(steps: list[Step], by_name: dict) -> None:
    """The evaluations of a model this run trained, with their intervals, into that model's card (README.md)."""
    from selfalign.training.adapters import add_results
    from selfalign.run.summary import headline

    found: dict = {}
    for s in steps:
        stage = s.refs.get("model", ("", ""))[0]
        path = s.directory / s.output_name
        if not s.name.startswith("eval/") or stage not in ("align", "sk-tune") or not path.exists():
            continue
        res = peek_json(path)
        if not isinstance(res, dict):
            continue
        task = s.name.split("/", 2)[2] + (f" [{res['split']}]" if res.get("split") else "")
        found.setdefault(stage, []).extend({"task": task, "metric": k, **v} for k, v in headline(res).items())
    for stage, results in found.items():
        add_results(_path_of(by_name[stage]), results)
