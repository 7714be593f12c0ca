"""Data sets that ship inside the package, so that the demo runs from a wheel in an empty folder, offline.

Only BIG-bench ``qa_wikidata`` (the demo's prompts; Apache-2.0, source and canary in ``data/bigbench/README.md``)
ships, gzip-compressed (131 KB). A data root's own copy wins; the shipped one is unpacked once into
``$SELFALIGN_CACHE/data/bigbench/<task>/task.json`` (sha256-checked), so every reader sees a plain task file.
"""
from __future__ import annotations

import gzip
import hashlib
import os
from pathlib import Path

from selfalign.errors import SelfAlignError

BIGBENCH = {"qa_wikidata": ("bigbench/qa_wikidata.task.json.gz",
                            "eb558eb3fc593bd1817e0baf4ef0d52e513c0c3d76323b54161b42504de0075e")}


def has_bigbench(task: str) -> bool:
    return task in BIGBENCH and (Path(__file__).parent / BIGBENCH[task][0]).is_file()


def bigbench(task: str) -> Path:
    """The shipped copy of a BIG-bench task's task.json, unpacked (once) into the cache."""
    from selfalign.model_cache import cache_root

    name, sha = BIGBENCH[task]
    out = cache_root() / "data" / "bigbench" / task / "task.json"
    if out.is_file() and out.stat().st_size > 0:
        return out
    data = gzip.decompress((Path(__file__).parent / name).read_bytes())
    if hashlib.sha256(data).hexdigest() != sha:
        raise SelfAlignError(f"selfalign/data/{name}: damaged (sha256 differs); reinstall selfalign")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"task.json.tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, out)
    return out
