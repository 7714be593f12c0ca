"""Where a recipe file may make the runner write: the paths it names are confined (issue 34).

A recipe is a file people share, so what it names is held to the places a run owns, unless the user gives the path
on the command line (``--output /abs/run``, or an override ``score.claim_cache=/abs/cache.jsonl``):

- the run folder (``output``) lies inside the current folder (``runs/demo``; not ``/etc/x`` nor ``../../x``);
- a stage does not name its own ``output``: the runner writes each stage into ``RUN/<stage>/`` (a section's
  ``output`` was ignored without a word before);
- a claim cache (``claim_cache``, written as well as read) lies inside the run folder or the data root;
- a ``bigbench:TASK`` name stays inside the data root's ``bigbench`` folder (``data.mc.bigbench_path``, for
  every command).

Input files and models a recipe names by path are read where they are. A path escaping is one line, exit 2.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator, Optional

from selfalign.errors import InputError

WRITTEN = ("claim_cache",)  # stage keys naming a file the stage writes (besides its output, which the runner sets)


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


def check_recipe_paths(recipe: dict, run_dir: Path, where: str, cli_output: Optional[str], overrides=()) -> None:
    """The paths of ``recipe`` (overrides applied) but those the command line gave (``--output``, ``overrides``:
    the user's own, not checked)."""
    from selfalign.data import data_root

    given = {_key(str(o).partition("=")[0].split(".")) for o in overrides or ()}
    own = recipe
    if not cli_output and ("output",) not in given and isinstance(own.get("output"), str):
        if Path(own["output"]).is_absolute() or not inside(own["output"], Path.cwd()):
            raise InputError(where, f"output {own['output']!r} is outside the current folder; a recipe writes its "
                                    "run below it (runs/NAME): give another folder on the command line (--output)")
    for name, sec in _sections(own):
        if "output" in sec:
            raise InputError(where, f"{name}.output: the runner writes each stage into RUN/{name.split('.')[0]}/; "
                                    "remove the key (the run folder is `output` at the top, or --output)")
        for key in WRITTEN:
            value = next((v for k, v in sec.items() if _key([k]) == (key,)), None)
            if not isinstance(value, str) or _key([*name.split("."), key]) in given:
                continue
            if not (inside(value, run_dir) or inside(value, data_root())):
                raise InputError(where, f"{name}.{key} {value!r} is outside the run folder ({run_dir}) and the data "
                                        f"root; give it on the command line ({name}.{key}=PATH) to use it")
