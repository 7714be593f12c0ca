"""Before any work: which data root is in use, and whether every data source and model a recipe names is there.

``selfalign run`` (``--dry-run`` too) prints ``root_line()`` once and calls ``check_step`` on every stage it will
run: a missing file is one line naming it and the folder to place it in (exit 2), before a model is loaded.
Nothing is loaded, fetched or unpacked here; a source that is fetched from the hub when online (TruthfulQA) is
refused only when the hub is switched off (``HF_HUB_OFFLINE=1``).
"""
from __future__ import annotations

import os
from pathlib import Path

from selfalign.errors import InputError, SelfAlignError

DATA_FIELDS = ("input", "data", "sources", "valid_data", "answers", "knowledge", "judge_validation")
MODEL_FIELDS = ("model", "adapter", "verifier")
# evaluations whose data default to a named source when their `data` is not given
DEFAULT_SOURCE = {"truthfulqa-mc": "truthfulqa-mc", "truthfulqa-gen": "truthfulqa"}


def root_line() -> str:
    """Which data root is in use and why (the run's header prints it once)."""
    from selfalign.data import data_root

    root = data_root()
    if os.environ.get("SELFALIGN_DATA"):
        return f"data: {root} ($SELFALIGN_DATA)" + ("" if root and root.is_dir() else ": no such folder")
    if root:
        return (f"data: {root} (a shared/data folder beside or above the working directory; $SELFALIGN_DATA sets "
                "another)")
    return ("data: no data root ($SELFALIGN_DATA is not set, no shared/data above the working directory): the data "
            "shipped with selfalign (BIG-bench qa_wikidata, the built-in questions) and the hub when online")


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def _truthfulqa(spec: str) -> None:
    from selfalign.data import data_root, truthfulqa
    from selfalign.model_cache import cache_root

    root = data_root()
    if spec.startswith("truthfulqa-mc"):
        found = [p for p in ([root / "truthfulqa" / "mc_task.json"] if root else [])
                 + [cache_root() / "data" / "truthfulqa" / "mc_task.json"] if p.exists()]
        place = truthfulqa.PLACE_MC
    else:
        found = [truthfulqa.default_dir()] if truthfulqa.default_dir() else []
        place = ("place TruthfulQA.csv (github.com/sylinrl/TruthfulQA) at $SELFALIGN_DATA/truthfulqa/TruthfulQA.csv, "
                 "or pass the CSV's path")
    if not found and _offline():
        raise SelfAlignError(f"{spec}: no local copy and the hub is off (HF_HUB_OFFLINE): {place}")


def check_source(spec: str) -> None:
    """One line (InputError / SelfAlignError) when the files of data source ``spec`` are not there."""
    from selfalign.data import data_root, mc, shipped

    if spec == "builtin":
        return
    if spec.startswith("bigbench:"):
        task = spec.split(":", 1)[1]
        root = data_root()
        if task == "all":
            if not root or not (root / "bigbench").is_dir():
                raise InputError("bigbench/", "bigbench:all needs every BIG-bench task: place them in "
                                              "$SELFALIGN_DATA/bigbench/<task>/task.json")
            return
        if shipped.has_bigbench(task) and not (root and (root / "bigbench" / task / "task.json").exists()):
            return  # the shipped copy
        mc.bigbench_path(task)  # the data root's copy, or the one-line error naming file and folder
    elif spec == "truthfulqa" or spec.startswith("truthfulqa-mc"):
        _truthfulqa(spec)
    elif spec == "biogen":
        root = data_root()
        if not root or not (root / "biogen").is_dir():
            raise InputError("biogen/", "BioGEN data not found: place the BioGEN files in $SELFALIGN_DATA/biogen/")
    else:
        path = spec[3:] if spec.startswith("sk:") else spec
        if ("/" in path or path.endswith((".json", ".jsonl", ".csv", ".db"))) and not Path(path).exists():
            raise InputError(path, "no such file")


def check_model(spec: str) -> None:
    """An alias's package installed, a local model folder or file present (hub ids are not checked)."""
    from selfalign import models

    base = spec
    if spec in models.PACKAGED_ADAPTERS:
        base = models._adapter_base(models.packaged_adapter(spec))
    if base in models.ALIASES:
        models.alias_files(base)  # ModelError naming the pip command
    elif spec.startswith(("/", "./", "../", "~")) and not Path(spec).expanduser().exists():
        raise InputError(spec, "no such model folder or file")


def check_step(name: str, values: dict, refs: dict) -> None:
    """Every data source and model a planned step names (values another stage makes are left out)."""
    def own(field):
        v = values.get(field)
        return [] if field in refs or v is None else [x for x in (v if isinstance(v, list) else [v])
                                                      if isinstance(x, str) and not x.startswith("@")]

    task = name.split("/")[-1]
    for f in DATA_FIELDS:
        for spec in own(f):
            check_source(spec)
    if task in DEFAULT_SOURCE and values.get("data") is None and not values.get("answers"):
        check_source(DEFAULT_SOURCE[task])
    for f in MODEL_FIELDS:
        for spec in own(f):
            check_model(spec)
