"""`selfalign run RECIPE.yaml`: the stages of a recipe into one run directory, skipping what is done.

A recipe is YAML: shared keys (``model``, ``device``, ``dtype``, ``seed``, ...) and one section per stage whose
keys are that command's flags (``sample: {n: 4, top_p: 0.9}``). Inputs and outputs are wired by the runner;
a value ``"@STAGE"`` names another stage's output (``score: {model: "@sk-tune"}`` judges with the SK-tuned
model). Every stage runs in ``RUN/<stage>/`` and is keyed by a hash of its settings and its inputs' hashes:
a finished stage with the same hash is skipped, an unfinished one resumes (stages append rows / checkpoint),
a changed one is moved aside and redone, and so is everything downstream of it. Settings that only change how
finished rows are summarised (``summary_only`` fields: an evaluation's bootstrap seed and resamples) are not part of
the hash: changing them resumes the stage, which recomputes its summary from the rows it has.

Every value is checked when the plan is made (types, choices, ranges: see ``config``), so ``--dry-run`` rejects
a bad recipe before anything runs, naming the recipe file, the stage and the key.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from selfalign.config import Config, ModelArgs, check_key, from_dict, normalize_keys, opt, require, summary_only
from selfalign.errors import InputError, SelfAlignError
from selfalign.io import file_hash, read_text, write_json
from selfalign.progress import interruptible
from selfalign.provenance import meta, redact

ORDER = ("sk-data", "sk-tune", "mc-data", "mc-tune", "sample", "score", "pairs", "align", "eval")
SHARED = ("model", "adapter", "engine", "device", "dtype", "trust_remote_code", "allow_pickle", "seed")
TOP = set(SHARED) | {"name", "description", "output"} | set(ORDER)
STAGE_FILE = "stage.json"
MODEL_LABELS = {"aligned": "@align", "sk-tuned": "@sk-tune", "mc-aligned": "@mc-tune"}  # eval.models labels that name a stage's model


def _stage_defs():
    from selfalign.align import AlignConfig, run_align
    from selfalign.mc_data import MCDataConfig, run_mc_data
    from selfalign.pairs import PairsConfig, run_pairs
    from selfalign.sampling import SampleConfig, run_sample
    from selfalign.scoring import ScoreConfig, run_score
    from selfalign.sktune import SKTuneConfig, run_sk_tune
    from selfalign.sktuning_data import SKDataConfig, run_sk_data

    # stage -> (config class, run function, {field: default wiring}, main output (file or dir) under RUN/<stage>/)
    return {
        "sk-data": (SKDataConfig, run_sk_data, {}, "sk.jsonl"),
        "sk-tune": (SKTuneConfig, run_sk_tune, {"data": "@sk-data", "valid_data": "@sk-data:heldout"}, "model"),
        # multiple-choice self-alignment: self-labelled A/B rows, trained by SK-Tuning's single-token DPO
        "mc-data": (MCDataConfig, run_mc_data, {}, "mc.jsonl"),
        "mc-tune": (SKTuneConfig, run_sk_tune, {"data": "@mc-data"}, "model"),
        "sample": (SampleConfig, run_sample, {}, "samples.jsonl"),
        "score": (ScoreConfig, run_score, {"input": "@sample"}, "scores.jsonl"),
        "pairs": (PairsConfig, run_pairs, {"input": "@score"}, "pairs.jsonl"),
        "align": (AlignConfig, run_align, {"pairs": "@pairs"}, "model"),
    }


@dataclass
class RunConfig(Config):
    recipe: Optional[str] = opt(None, "recipe YAML file, or the name of a shipped recipe (demo, demo-skt, biogen-demo, "
                                         "paper-truthfulqa-llama2-7b, ...)", positional=True)
    output: Optional[str] = opt(None, "run directory (default: the recipe's `output`, else runs/<recipe name>)")
    from_stage: Optional[str] = opt(None, "redo this stage and every stage that depends on it", choices=list(ORDER),
                                     aliases=("--from",))
    dry_run: bool = opt(False, "print the plan (stages, hashes, skip/run) and stop")
    overrides: list[str] = opt([], "recipe keys to change, after the recipe: model=PATH align.learning_rate=1e-4 "
                                   "eval.truthfulqa-mc.limit=20 (values are YAML)", positional=True,
                               metavar="STAGE.KEY=VALUE")


# --- recipe -> plan ----------------------------------------------------------------------------------------
def _value(text: str):
    """An override's value as YAML reads it, with numbers PyYAML leaves as text (``1e-4``) made numbers."""
    import yaml

    try:
        v = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(v, str):
        for tp in (int, float):
            try:
                return tp(v)
            except ValueError:
                pass
    return v


def apply_overrides(recipe: dict, overrides, where: str) -> dict:
    """The recipe with ``KEY=VALUE`` / ``STAGE.KEY=VALUE`` / ``eval.TASK.KEY=VALUE`` overrides applied (a copy)."""
    import copy

    out = copy.deepcopy(recipe)
    for item in overrides or ():
        key, eq, text = str(item).partition("=")
        parts = [p for p in key.strip().split(".")]
        if not eq or not all(parts):
            raise SelfAlignError(f"{where}: override {item!r}: expected KEY=VALUE, e.g. align.learning_rate=1e-4")
        if parts[0].replace("_", "-") in ORDER:
            parts[0] = parts[0].replace("_", "-")
        node = out
        for p in parts[:-1]:
            if node.get(p) is None:
                node[p] = {}
            node = node[p]
            if not isinstance(node, dict):
                raise SelfAlignError(f"{where}: override {item!r}: {p!r} is not a section")
        node[parts[-1]] = _value(text)
    return out


def load_recipe(path: str, overrides=()) -> dict:
    import yaml

    text = read_text(path, "recipe")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise InputError(path, f"not valid YAML ({getattr(e, 'problem', e)})", mark.line + 1 if mark else None) from None
    if not isinstance(data, dict):
        raise InputError(path, "a recipe is a mapping of keys to values")
    data = apply_overrides(data, overrides, path)
    unknown = sorted(set(data) - TOP)
    if unknown:
        raise InputError(path, f"unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(TOP))}")
    for k in SHARED:  # shared keys are checked as the fields they fill
        if k in data:
            check_key(ModelArgs if k != "seed" else RunSeed, k, data[k], where=path)
    for k in ("name", "description", "output"):
        if k in data and not isinstance(data[k], str):
            raise InputError(path, f"{k} must be a string, got {data[k]!r}")
    return data


RUN_NAME = re.compile(r"^[\w][\w.-]*$")


def run_name(name, where: str) -> str:
    """A recipe's ``name`` is one plain path component, so ``runs/<name>`` stays inside ``runs/``."""
    name = str(name)
    if not RUN_NAME.match(name):
        raise InputError(where, f"name {name!r} must be a plain name (letters, digits, '_', '.', '-'; no '/' and no "
                                f"leading '.'); to write elsewhere set `output` or --output")
    return name


@dataclass
class RunSeed(Config):
    """A recipe's shared ``seed``: the sampling and training seed of every stage with a ``seed`` field (sample,
    score's consistency sampling, sk-data, sk-tune, align, the generating evaluations); evaluation bootstrap seeds
    are their own ``bootstrap_seed`` keys."""
    seed: int = opt(0, "sampling and training seed", min=0)


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
    output_field: str
    output_name: str
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


def plan(recipe: dict, run_dir: Path, where: str) -> list[Step]:
    """The recipe's stages in order, with configs validated and hashes computed (nothing is run)."""
    defs, steps, by_name = _stage_defs(), [], {}
    for name in ORDER[:-1]:
        if name not in recipe:
            continue
        cls, fn, wiring, out_name = defs[name]
        section = _mapping(recipe[name], f"section {name!r}", where)
        vals = {**wiring, **_fill(cls, section, recipe, f"{where}: {name}")}
        out_field = "output"
        step = Step(name, cls, fn, vals, {}, run_dir / name, out_field, out_name)
        steps.append(step)
        by_name[name] = step
    if "eval" in recipe:
        steps += _eval_steps(recipe, run_dir, where, by_name)
    for s in steps:
        _resolve_refs(s, by_name, where)
        from_dict(s.cls, {k: v for k, v in s.values.items()}, where=f"{where}: {s.name}")  # validates the keys
        upstream = {f: by_name[st].hash + (f":{part}" if part else "") for f, (st, part) in s.refs.items()}
        work = {k: v for k, v in s.values.items() if k not in summary_only(s.cls)}
        key = {"stage": s.name.split("/")[0], "values": work, "inputs": upstream}
        files = _input_files(s)
        if files:  # an edited input file changes the hash (a recipe without file inputs keeps its old hashes)
            key["files"] = files
        s.hash = _hash(key)
        by_name.setdefault(s.name, s)
    if "score" in by_name:  # the oracle (score.method gold-match) needs prompts with gold targets
        from selfalign.scoring import plan_check

        sc = by_name["score"]
        plan_check(sc.values, {k: by_name[st].values for k, (st, _) in sc.refs.items()}, where)
    return steps


NOT_INPUTS = ("output", "claim_cache")  # files a stage writes, not reads


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
    return out


def _eval_steps(recipe, run_dir, where, by_name) -> list[Step]:
    from selfalign import evals

    sec = dict(_mapping(recipe["eval"], "section 'eval'", where))
    tasks = sec.pop("tasks", None)
    models = sec.pop("models", None) or ["base"]
    base = recipe.get("model", ModelArgs.model)
    if not tasks:
        raise SelfAlignError(f"{where}: eval needs `tasks` (available: {', '.join(evals.TASKS)})")
    if not isinstance(tasks, list) or not all(isinstance(t, str) for t in tasks):
        raise SelfAlignError(f"{where}: eval.tasks must be a list of task names, got {tasks!r}")
    if isinstance(models, list) and all(isinstance(m, str) for m in models):
        # labels: base = the recipe's model, aligned = @align, sk-tuned = @sk-tune
        models = {m: base if m == "base" else MODEL_LABELS.get(m, m) for m in models}
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
                cls, fn, _ = evals.task(t)
            except SelfAlignError as e:
                raise SelfAlignError(f"{where}: eval: {e}") from None
            settings = _mapping(sec.get(t), f"eval.{t}", where)
            if "model" in settings:
                raise SelfAlignError(f"{where}: eval.{t}.model: the models to evaluate are eval.models")
            vals = _fill(cls, {**settings, "model": spec}, recipe, f"{where}: eval.{t}")
            if "verifier" in {f.name for f in dataclasses.fields(cls)} and not vals.get("verifier"):
                vals["verifier"] = base  # one fixed fact checker for every compared model, not each its own
            if label != "base":  # the base's adapter must not carry over to a different model
                vals.pop("adapter", None)
            label = re.sub(r"[^\w.-]+", "_", str(label))
            steps.append(Step(f"eval/{label}/{t}", cls, fn, vals, {}, run_dir / "eval" / label, "output",
                              f"{t}.json"))
    return steps


def _resolve_refs(step: Step, by_name: dict, where: str) -> None:
    for k, v in list(step.values.items()):
        if isinstance(v, str) and v.startswith("@"):
            stage, _, part = v[1:].partition(":")
            if stage not in by_name:
                if k in _stage_defs().get(step.name, (None, None, {}))[2]:  # a default wiring with no such stage
                    raise SelfAlignError(f"{where}: stage {step.name!r} needs its input: add a {stage!r} section "
                                         f"or set {step.name}.{k}")
                raise SelfAlignError(f"{where}: {step.name}.{k} = {v!r} names a stage the recipe does not run")
            step.refs[k] = (stage, part)


def _path_of(step: Step, part: str = "") -> str:
    p = step.directory / step.output_name
    if part == "heldout":  # sk-data writes <stem>.heldout.jsonl beside its train file
        p = p.with_name(p.stem + ".heldout.jsonl")
    return str(p)


# --- running -----------------------------------------------------------------------------------------------
def _state(step: Step) -> dict:
    try:
        return json.loads(_state_path(step).read_text())
    except (OSError, ValueError):
        return {}


def _state_path(step: Step) -> Path:
    return (step.directory / STAGE_FILE if not step.name.startswith("eval/")
            else step.directory / f"{Path(step.output_name).stem}.stage.json")


def _move_aside(step: Step, old_hash: str) -> None:
    if step.name.startswith("eval/"):
        stem = Path(step.output_name).stem
        for p in step.directory.glob(f"{stem}.*"):
            p.unlink()
        return
    if step.directory.exists():
        dest = step.directory.with_name(f"{step.directory.name}.old-{old_hash or 'unknown'}")
        shutil.rmtree(dest, ignore_errors=True)
        step.directory.rename(dest)


def status(step: Step, redo: bool) -> str:
    st = _state(step)
    if not st:
        return "run"
    if redo or st.get("hash") != step.hash:
        return "redo"
    same_summary = st.get("summary", {}) == _summary_values(step)  # else: the rows stay, the summary is redone
    return "skip" if st.get("finished") and same_summary else "resume"


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
    steps = plan(recipe, run_dir, where=recipe_file)
    if not steps:
        raise SelfAlignError(f"{recipe_file}: no stages (sections: {', '.join(ORDER)})")
    redo = downstream(steps, cfg.from_stage) if cfg.from_stage else set()
    decisions = [(s, status(s, s.name in redo)) for s in steps]
    print(f"run {name} → {run_dir}")
    for s, d in decisions:
        print(f"  {s.name:28s} {s.hash}  {d}")
    if cfg.dry_run:
        return {"run_dir": str(run_dir), "plan": {s.name: d for s, d in decisions}}
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / "recipe.json", meta(None, recipe=recipe, recipe_file=recipe_file,
                                                overrides=list(cfg.overrides or [])))
    by_name = {s.name: s for s in steps}
    timings = {}
    for s, d in decisions:
        if d == "skip":
            timings[s.name] = _state(s).get("seconds")
            continue
        if d == "redo":
            _move_aside(s, _state(s).get("hash", ""))
        values = dict(s.values)
        for k, (stage, part) in s.refs.items():
            values[k] = _path_of(by_name[stage], part)
        values[s.output_field] = _path_of(s)
        s.directory.mkdir(parents=True, exist_ok=True)
        write_json(_state_path(s), redact({"stage": s.name, "hash": s.hash, "finished": False, "config": values}))
        print(f"\n== {s.name} ({'resume' if d == 'resume' else 'run'}) ==", flush=True)
        t0 = time.time()
        with interruptible(lambda: f"stage {s.name} unfinished in {s.directory}; rerun to resume"):
            result = s.run(from_dict(s.cls, values, where=f"{recipe_file}: {s.name}"))
        timings[s.name] = round(time.time() - t0, 2)
        write_json(_state_path(s), redact({"stage": s.name, "hash": s.hash, "finished": True, "config": values,
                                           "summary": _summary_values(s), "seconds": timings[s.name],
                                           "result": result}))
    from selfalign.summary import write_summary

    table = write_summary(run_dir, [s for s in steps if s.name.startswith("eval/")])
    if table:
        print("\n" + table)
        _card_results(steps, by_name)
    return {"run_dir": str(run_dir), "stages": {s.name: d for s, d in decisions}, "seconds": timings,
            "summary": str(run_dir / "summary.md") if table else None}


def _card_results(steps: list[Step], by_name: dict) -> None:
    """The evaluations of a model this run trained, with their intervals, into that model's card (README.md)."""
    from selfalign.adapters import add_results
    from selfalign.summary import headline

    found: dict = {}
    for s in steps:
        stage = s.refs.get("model", ("", ""))[0]
        path = s.directory / s.output_name
        if not s.name.startswith("eval/") or stage not in ("align", "sk-tune") or not path.exists():
            continue
        res = json.loads(path.read_text())
        task = s.name.split("/", 2)[2] + (f" [{res['split']}]" if res.get("split") else "")
        found.setdefault(stage, []).extend({"task": task, "metric": k, **v} for k, v in headline(res).items())
    for stage, results in found.items():
        add_results(_path_of(by_name[stage]), results)
