"""What produced a result: package versions, git commit, model, config. Recorded beside every output, with no path
of this machine in it (``store.paths.portable``: relative, ``$SELFALIGN_DATA/...``, ``site-packages/...``)."""
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
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        if out.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def versions() -> dict:
    out = {"python": platform.python_version()}
    for p in PACKAGES:
        try:
            out[p] = importlib.metadata.version(p)
        except importlib.metadata.PackageNotFoundError:
            out[p] = None
    return out


def meta(config=None, **extra) -> dict:
    """A provenance record: config (a dataclass or dict), versions, git commit, host, time, and extras; URL
    credentials redacted, paths made portable."""
    from selfalign.store.paths import portable

    cfg = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else (config or {})
    return portable(redact({"config": cfg, "versions": versions(), "git_commit": git_commit(),
                            "platform": platform.platform(), "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **extra}))


def meta_path(output: str | Path) -> Path:
    output = Path(output)
    return output.with_name(output.name + ".meta.json")
