"""``selfalign cache``: where selfalign's model cache is, what it holds, and cleaning it (``selfalign.model_cache``).

    selfalign cache                 # the folder, then one line per entry: size, kind, what it is
    selfalign cache clean           # remove what nothing uses any more: folders keyed by a GGUF's path (made by
                                    # an older selfalign) and conversions that did not finish
    selfalign cache clean --all     # remove every entry (a model is converted again when next loaded)
    selfalign cache clean --dry-run # say what would go
"""
from __future__ import annotations

from dataclasses import dataclass

from selfalign.config import Config, opt


@dataclass
class CacheConfig(Config):
    action: str = opt("list", "list (the default) or clean", positional=True, choices=("list", "clean"))
    all: bool = opt(False, "clean: every entry, not only the stale ones")
    dry_run: bool = opt(False, "clean: print what would be removed, remove nothing")


def _mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"


def run_cache(cfg: CacheConfig) -> dict:
    from selfalign import model_cache as C

    root = C.cache_root()
    found = C.entries()
    print(f"selfalign cache: {root} ($SELFALIGN_CACHE, else $XDG_CACHE_HOME/selfalign, else ~/.cache/selfalign)")
    gone = [e for e in found if cfg.all or e["stale"]] if cfg.action == "clean" else []
    for e in found:
        mark = ("would remove " if cfg.dry_run else "removed ") if e in gone else ""
        print(f"  {_mb(e['bytes']):>12}  {e['path']}  {mark}{e['kind']}: {e['note']}")
    if not found:
        print("  (empty)")
    if not cfg.dry_run:
        for e in gone:
            C.remove(e)
    out = {"root": str(root), "entries": len(found), "size": _mb(sum(e["bytes"] for e in found))}
    if cfg.action == "clean":
        freed = 0 if cfg.dry_run else sum(e["bytes"] for e in gone)
        removed = 0 if cfg.dry_run else len(gone)
        out.update(removed=removed, freed=_mb(freed), kept=len(found) - removed)
    else:
        stale = [e for e in found if e["stale"]]
        if stale:
            out["stale"] = f"{len(stale)} ({_mb(sum(e['bytes'] for e in stale))}): `selfalign cache clean` removes them"
    return out
