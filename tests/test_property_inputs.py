"""Property-based bad inputs (Hypothesis): for every command, inputs drawn from its fields' declarations and its
files' row schemas (tests/property_inputs.py), mutated. Each case runs in-process and stops where a model would
load. A draw the declaration refuses must exit 2 with one line naming the flag, or the file and line, never a
traceback and never reaching the model; any draw must give no traceback and leave every file that existed before
unchanged.

Profiles: the default (``make test``) is derandomized (a fixed seed) and small; ``SELFALIGN_HYPOTHESIS=long`` draws
20 times as many cases with a random seed (run it by hand). Both print their case count at the end.
"""
from __future__ import annotations

import collections
import hashlib
import os
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from fuzz_inputs import Case, Files, commands, config_class, run_case
from property_flags import constrained, flag_value, recipe_value
from property_inputs import Draw, csv_file, jsonl_file, mc_task_file, recipe_text, result_file
from selfalign import registry

PROFILE = os.environ.get("SELFALIGN_HYPOTHESIS", "default")
SCALE = {"default": 1, "long": 20}[PROFILE]
COUNTS: collections.Counter = collections.Counter()


def profile(n: int):
    return settings(max_examples=n * SCALE, derandomize=PROFILE == "default", deadline=None, database=None,
                    suppress_health_check=list(HealthCheck), print_blob=True)


class Env(tuple):
    """(Files, commands): shown short in a failure report."""

    def __repr__(self):
        return "env"


@pytest.fixture(scope="module")
def env(tmp_path_factory, tiny_model_dir):
    files = Files(tmp_path_factory.mktemp("props"))
    return Env((files, commands(files, tiny_model_dir)))


def summary() -> str:
    """The line tests/conftest.py prints at the end of a run: cases per property."""
    return (f"property suite ({PROFILE} profile): {sum(COUNTS.values())} cases: "
            + ", ".join(f"{k} {v}" for k, v in sorted(COUNTS.items())))


def _snapshot(*roots: Path) -> dict:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for r in roots for p in (r.rglob("*") if r.is_dir() else [r])
            if p.is_file()}


def check(test: str, argv: list, draw: Draw | None, invalid: bool, want: str, roots: list[Path]) -> None:
    """Run ``argv``; a refused draw: exit 2, one line holding ``want``; any draw: no traceback, no model reached
    when refused, every file under ``roots`` as it was."""
    COUNTS[test] += 1
    before = _snapshot(*roots)
    res = run_case(Case(test, "property", argv, want), stop_at_model=True)
    lines = res.err.strip().splitlines()
    where = f"{draw.what if draw else ''}\n  argv: {argv}\n  exit {res.code}, stderr: {res.err[-600:]!r}"
    assert "Traceback" not in res.err, where
    if invalid:
        assert res.code == 2, f"refused input not refused: {where}"
        assert len(lines) == 1 and want in lines[0], f"want one line holding {want!r}: {where}"
    else:
        assert res.code in (0, 2, "model"), where
        assert res.code != 2 or len(lines) == 1, where
    after = _snapshot(*roots)
    changed = [str(p) for p, h in before.items() if after.get(p) != h]
    assert not changed, f"files that existed before changed: {changed}: {where}"


def _write(files: Files, name: str, draw: Draw) -> Path:
    path = files.fresh(name)
    path.write_bytes(draw.data)
    return path


ROW_INPUTS = [("sample", "--input"), ("score", "--input"), ("score (claims)", "--claim-cache"), ("pairs", "--input"),
              ("sk-data", "--sources"), ("sk-tune", "--data"), ("sk-tune", "--valid-data"), ("mc-data", "--data"),
              ("calibrate", "--data"), ("align", "--pairs"), ("eval truthfulqa-gen", "--answers"),
              ("eval biogen", "--input"), ("eval biogen", "--knowledge"), ("eval biogen", "--claim-cache"),
              ("eval biogen (answers)", "--answers"), ("eval calibrate", "--data")]


@pytest.mark.parametrize("command, fl", ROW_INPUTS)
@profile(16)
@given(data=st.data())
def test_jsonl_rows(env, command, fl, data):
    files, cmds = env
    argv, inputs, _ = cmds[command]
    kind = inputs[fl]
    draw = data.draw(jsonl_file(kind), label="file")
    path = _write(files, f"{kind}.jsonl", draw)
    want = f"{path}:{draw.line}" if draw.line else str(path)
    check("rows", argv({fl: path}), draw, draw.invalid, want, [files.root / "good", path])


@pytest.mark.parametrize("command, fl, strategy, name", [
    ("eval truthfulqa-mc", "--data", mc_task_file, "mc_task.json"), ("report", "--runs", result_file, "result.json"),
    ("eval truthfulqa-gen (csv)", "--data", csv_file, "tqa.csv")])
@profile(60)
@given(data=st.data())
def test_json_and_csv_files(env, command, fl, strategy, name, data):
    files, cmds = env
    argv, _, _ = cmds[command]
    draw = data.draw(strategy(), label="file")
    path = _write(files, name, draw)
    want = f"{path}:{draw.line}" if draw.line else str(path)
    check("json/csv", argv({fl: path}), draw, draw.invalid, want, [files.root / "good", path])


COMMANDS = sorted({name for name in registry.commands() if name != "run"} | {f"eval {t}" for t in registry.evals()})


@pytest.mark.parametrize("command", COMMANDS)
@profile(16)
@given(data=st.data())
def test_flags(env, command, data):
    files, cmds = env
    argv = cmds[command][0] if command in cmds else (
        lambda over=None: [*command.split(), "--output", files.out("o.json"), *(over or {}).get("extra", [])])
    cls = config_class(argv())
    if not constrained(cls):
        return
    fl, text, refused = data.draw(flag_value(cls), label="flag")
    check("flags", argv({"extra": [fl, text]}), None, refused, fl, [files.root / "good"])


def _run_folder(files: Files) -> tuple[Path, Path]:
    """A fresh run folder holding a copy of the good prompts: a recipe reads files in its run folder or the data
    root only (run.confine), so the drawn value, not the prompts' place, decides the case."""
    run = files.fresh("run")
    run.mkdir()
    prompts = run / "prompts.jsonl"
    prompts.write_bytes(files.good["prompts"].read_bytes())
    return run, prompts


@profile(100)
@given(data=st.data())
def test_recipe_values(env, data):
    files, _ = env
    stages = {**{k: v.config_class for k, v in registry.recipe_stages().items()},
              **{f"eval.{k}": v.config_class for k, v in registry.evals().items()}}
    where = data.draw(st.sampled_from(sorted(stages)), label="section")
    name, value, refused = data.draw(recipe_value(stages[where]), label="value")
    run, prompts = _run_folder(files)
    recipe = {"model": "m", "sample": {"input": str(prompts)}}
    if where.startswith("eval."):
        task = where[5:]
        if name == "model":
            return
        recipe["eval"] = {"tasks": [task], task: {name: value}}
    else:
        recipe[where] = {**recipe.get(where, {}), name: value}
    path = files.fresh("recipe.yaml")
    path.write_text(yaml.safe_dump(recipe, sort_keys=False, allow_unicode=True))
    d = Draw(path.read_bytes(), f"{where}.{name} = {value!r}"[:200], refused)
    check("recipe values", ["run", path, "--dry-run", "--output", run], d, refused, f"{path}: ",
          [files.root / "good", path])


@profile(60)
@given(data=st.data())
def test_recipe_yaml(env, data):
    files, _ = env
    run, prompts = _run_folder(files)
    draw = data.draw(recipe_text(str(prompts)), label="recipe")
    path = _write(files, "recipe.yaml", draw)
    want = f"{path}:{draw.line}" if draw.line else str(path)
    out = [] if b"\noutput:" in draw.data else ["--output", run]  # --output would replace it
    check("recipe yaml", ["run", path, "--dry-run", *out], draw, draw.invalid, want, [files.root / "good", path])


PATH_COMMANDS = sorted(n for n in ("sample", "score", "pairs", "sk-data", "sk-tune", "mc-data", "calibrate", "align",
                                   "report", "eval truthfulqa-mc", "eval truthfulqa-gen", "eval biogen",
                                   "eval calibrate"))


@pytest.mark.parametrize("command", PATH_COMMANDS)
@profile(10)
@given(data=st.data())
def test_paths(env, command, data):
    """Inputs that are missing or directories; outputs that are directories, files, under a file, equal to an
    input, named with bytes that are not UTF-8, or read-only."""
    files, cmds = env
    argv, inputs, outputs = cmds[command]
    hows = ["input missing", "input is a directory"] + (["output is a directory", "output under a file",
                                                          "output is an input", "output name not UTF-8",
                                                          "output read-only"] if outputs else [])
    how = data.draw(st.sampled_from(hows), label="how")
    fl = data.draw(st.sampled_from(sorted(inputs)), label="input")
    if how.startswith("input"):
        path = files.fresh("in.jsonl")
        if how.endswith("directory"):
            path.mkdir()
        elif inputs[fl] == "claims":  # a claim cache that does not exist yet is made
            return
        check("paths", argv({fl: path}), None, True, str(path), [files.root / "good"])
        return
    out = data.draw(st.sampled_from(sorted(outputs)), label="output")
    is_dir = outputs[out] == "dir"
    if how == "output read-only" and os.geteuid() == 0:
        return  # root writes anyway
    if how == "output is a directory":
        target = files.fresh("d")
        (target.mkdir() if not is_dir else target.write_text("x"))
        check("paths", argv({out: target}), None, True, str(target), [files.root / "good", target])
    elif how == "output under a file":
        parent = files.fresh("f")
        parent.write_text("x")
        check("paths", argv({out: parent / "o.json"}), None, True, str(parent), [files.root / "good", parent])
    elif how == "output is an input":
        src = files.fresh(files.good[inputs[fl]].name)
        src.write_bytes(files.good[inputs[fl]].read_bytes())
        if inputs[fl] in ("claims",) or is_dir:
            return
        check("paths", argv({fl: src, out: src}), None, True, str(src), [files.root / "good", src])
    elif how == "output name not UTF-8":
        target = files.fresh("x").with_name(os.fsdecode(b"out\xff.json"))
        check("paths", argv({out: target}), None, False, "", [files.root / "good"])
    else:
        d = files.fresh("ro")
        d.mkdir()
        d.chmod(0o555)
        check("paths", argv({out: d / "o.json"}), None, True, str(d), [files.root / "good"])
