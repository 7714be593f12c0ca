"""Files shipped inside the package: the recipes, the accelerate configs and the TruthfulQA split file.

In a checkout, ``recipes/`` and ``configs/`` at the repository root are links to ``selfalign/recipes`` and
``selfalign/configs``, so ``selfalign run recipes/demo.yaml`` and ``accelerate launch --config_file
configs/accelerate/zero3.yaml`` work there; after ``pip install selfalign`` the same files are found by name::

    selfalign run demo                                   # or demo.yaml, or recipes/demo.yaml
    python -m selfalign.resources                        # every shipped file, with its path
    accelerate launch --config_file "$(python -m selfalign.resources accelerate/zero3)" -m selfalign.cli align ...
"""
from __future__ import annotations

import sys
from importlib.resources import files
from pathlib import Path

from selfalign.errors import InputError

SPLITS_FILE = "data/truthfulqa_splits.json"  # the paper's TruthfulQA split (question lists), Apache-2.0


def root() -> Path:
    return Path(str(files("selfalign")))


def recipe_names() -> list[str]:
    return sorted(p.stem for p in (root() / "recipes").glob("*.yaml"))


def find_recipe(spec: str) -> Path:
    """A recipe file: ``spec`` itself when it exists, else a shipped recipe named by it (``demo``, ``demo.yaml``
    or ``recipes/demo.yaml``). One line naming the shipped recipes when neither exists."""
    path = Path(spec)
    if path.is_file():
        return path
    name = path.name[:-5] if path.name.endswith((".yaml", ".yml")) else path.name
    shipped = root() / "recipes" / f"{name}.yaml"
    if path.parent in (Path("."), Path("recipes")) and shipped.is_file():
        return shipped
    raise InputError(spec, f"recipe not found (a YAML file, or a shipped recipe: {', '.join(recipe_names())})")


def shipped_file(name: str) -> Path:
    """A shipped file by its path inside the package, ``.yaml`` optional (``accelerate/zero3``)."""
    for cand in (name, f"configs/{name}", f"{name}.yaml", f"configs/{name}.yaml"):
        p = root() / cand
        if p.is_file():
            return p
    raise InputError(name, "no such file shipped with selfalign (`python -m selfalign.resources` lists them)")


def listing() -> list[Path]:
    r = root()
    return sorted([*(r / "recipes").glob("*.yaml"), *(r / "configs").rglob("*.yaml"), r / SPLITS_FILE])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        for p in [shipped_file(a) for a in argv] if argv else listing():
            print(p)
    except InputError as e:
        print(f"selfalign.resources: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
