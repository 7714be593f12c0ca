"""Where a recipe file may make the runner read and write: the paths it names are confined (issue 34).

A recipe is a file people share, so what it names is held to the places a run owns, unless the user gives the path
on the command line (``--output /abs/run``, or an override ``sample.input=/abs/prompts.jsonl``,
``score.claim_cache=/abs/cache.jsonl``):

- the run folder (``output``) lies inside the current folder (``runs/demo``; not ``/etc/x`` nor ``../../x``);
- a stage does not name its own ``output``: the runner writes each stage into ``RUN/<stage>/`` (a section's
  ``output`` was ignored without a word before);
- a claim cache (``claim_cache``, written as well as read) lies inside the run folder or the data root;
- every file a stage reads (``READ``: prompts, data, sources, answers, knowledge, scores, ...) lies inside the run
  folder or the data root (``$SELFALIGN_DATA``): a shared recipe cannot read ``~/.ssh/id_rsa`` as its prompts and
  send them to the engine it names. Named data sets (``truthfulqa``, ``bigbench:TASK``, ``wikifacts``, ...) are
  not paths; a ``bigbench:TASK`` name stays inside the data root's ``bigbench`` folder (``data.mc.bigbench_path``,
  for every command); ``sk:PATH`` is PATH.

Models a recipe names are model specs (hub ids, aliases, folders), loaded from safetensors only, and are not
confined. A path escaping is one line, exit 2, naming the key and the places it may lie in.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator, Optional

from selfalign.errors import InputError

WRITTEN = ("claim_cache",)  # stage keys naming a file the stage writes (besides its output, which the runner sets)
# stage keys naming files a stage reads (a named data set in them is not a path: ``named``)
READ = ("input", "data", "sources", "valid_data", "answers", "knowledge", "judge_validation", "scores", "pairs",
        "responses", "compare", "extractor_check", "bow_labels", "eval_pairs", "eval_data", "rescore")
NAMED = ("builtin", "biogen", "truthfulqa", "truthfulqa-mc", "wikifacts")
NAMED_PREFIXES = ("bigbench:", "truthfulqa-mc:", "wikifacts:")


def named(value: str) -> bool:
    """A named data set (``truthfulqa``, ``bigbench:TASK``, ``wikifacts:free``, ...), not a file path."""
    return value in NAMED or value.startswith(NAMED_PREFIXES)


def inside(path: str | Path, root: Optional[str | Path]) -> bool:
    """Whether ``path`` (symlinks and ``..`` resolved) lies in ``root``."""
    if root is None:
        return False
    try:
        Path(path).resolve().relative_to(Path(root).resolve())
        return True
    except ValueError:
        return False


def _sections(recipe: dict) -> Iterator[tuple[str, dict]]:
    from selfalign import registry

    for name in registry.recipe_order():
        if isinstance(recipe.get(name), dict):
            yield name, recipe[name]
    ev = recipe.get("eval")
    if isinstance(ev, dict):
        for task, sec in ev.items():
            if isinstance(sec, dict):
                yield f"eval.{task}", sec


def _key(parts) -> tuple:
    return tuple(str(p).strip().replace("-", "_") for p in parts)


def _given(overrides) -> set:
    return {_key(str(o).partition("=")[0].split(".")) for o in overrides or ()}


def _paths(recipe: dict, keys, given: set) -> Iterator[tuple[str, str, str]]:
    """(section, key, value) of every string a section gives one of ``keys`` (list items each), but those the
    command line gave, stage references (``@STAGE``) and named data sets."""
    for name, sec in _sections(recipe):
        for key, value in sec.items():
            key = _key([key])[0]
            if key not in keys or _key([*name.split("."), key]) in given:
                continue
            for v in value if isinstance(value, list) and key in READ else [value]:  # sources: a list of files
                if isinstance(v, str) and v and not v.startswith("@") and not (key in READ and named(v)):
                    yield name, key, v


def _outside(where: str, name: str, key: str, value: str, run_dir: Path, what: str) -> InputError:
    return InputError(where, f"{name}.{key} {value!r} is outside the run folder ({run_dir}) and the data root: a "
                             f"recipe {what} files there only; give it on the command line ({name}.{key}=PATH) to "
                             "use it")


def check_recipe_paths(recipe: dict, run_dir: Path, where: str, cli_output: Optional[str], overrides=()) -> None:
    """The paths ``recipe`` writes (overrides applied) but those the command line gave (``--output``,
    ``overrides``: the user's own, not checked)."""
    from selfalign.data import data_root

    given = _given(overrides)
    if not cli_output and ("output",) not in given and isinstance(recipe.get("output"), str):
        if Path(recipe["output"]).is_absolute() or not inside(recipe["output"], Path.cwd()):
            raise InputError(where, f"output {recipe['output']!r} is outside the current folder; a recipe writes "
                                    "its run below it (runs/NAME): give another folder on the command line (--output)")
    for name, sec in _sections(recipe):
        if "output" in sec:
            raise InputError(where, f"{name}.output: the runner writes each stage into RUN/{name.split('.')[0]}/; "
                                    "remove the key (the run folder is `output` at the top, or --output)")
    for name, key, v in _paths(recipe, WRITTEN, given):
        if not (inside(v, run_dir) or inside(v, data_root())):
            raise _outside(where, name, key, v, run_dir, "writes")


def check_recipe_reads(recipe: dict, run_dir: Path, where: str, overrides=()) -> None:
    """The files ``recipe`` reads (``READ``; ``sk:PATH`` is PATH) lie in the run folder or the data root, but those
    the command line gave. Checked once the plan has checked every value (a bad value is named first)."""
    from selfalign.data import data_root

    for name, key, v in _paths(recipe, READ, _given(overrides)):
        path = v[3:] if v.startswith("sk:") else v
        if not (inside(path, run_dir) or inside(path, data_root())):
            raise _outside(where, name, key, v, run_dir, "reads")
