"""A recipe file: YAML read and checked, ``KEY=VALUE`` overrides applied, its run name (see ``pipeline``).

Top-level keys are the shared ones (``model``, ``seed``, ...: checked as the fields they fill), ``name``,
``description``, ``output``, and one section per recipe stage of the registry, plus ``eval``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from selfalign import registry
from selfalign.config import Config, ModelArgs, ParallelArgs, check_key, opt
from selfalign.errors import InputError, SelfAlignError
from selfalign.store.io import read_text
from selfalign.store.yamlfile import parse_yaml

SHARED = ("model", "adapter", "engine", "device", "dtype", "trust_remote_code", "allow_pickle", "seed", "device_map",
          "tensor_parallel_size", "data_parallel_size")


def top_keys() -> set[str]:
    """The keys a recipe may have at its top level."""
    return set(SHARED) | {"name", "description", "output"} | set(registry.recipe_order())


def _value(text: str):
    """An override's value as YAML reads it, with numbers PyYAML leaves as text (``1e-4``) made numbers."""
    try:
        v = parse_yaml(text, "override")
    except InputError:
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
        if parts[0].replace("_", "-") in registry.recipe_order():
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
    data = parse_yaml(read_text(path, "recipe"), path)
    if not isinstance(data, dict):
        raise InputError(path, "a recipe is a mapping of keys to values")
    data = apply_overrides(data, overrides, path)
    top = top_keys()
    unknown = sorted(set(data) - top)
    if unknown:
        raise InputError(path, f"unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(top))}")
    for k in SHARED:  # shared keys are checked as the fields they fill
        if k in data:
            cls = RunSeed if k == "seed" else ModelArgs if k in ModelArgs.__dataclass_fields__ else ParallelArgs
            check_key(cls, k, data[k], where=path)
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
