"""selfalign's cache of model files, one per user, shared by every venv and checkout.

Where: ``$SELFALIGN_CACHE``, else ``$XDG_CACHE_HOME/selfalign``, else ``~/.cache/selfalign``. What:

- ``models/<gguf stem>-<sha256[:12]>/``: a GGUF file dequantised once into safetensors (``models.convert_gguf``),
  keyed by the GGUF's *content* hash, so the same file installed in two venvs is converted and stored once;
  ``selfalign_source.json`` inside records the GGUF's name, hash and quantisation type.
- ``gguf/<sha256[:12]>/``: a split alias's GGUF assembled from its parts (``models.assemble_gguf``).
- ``data/``: data sets fetched from the hub once (TruthfulQA's MC file).
- ``hashes.json``: the content hash of each GGUF seen, by path, size and modification time (hashing a 4 GB file
  takes seconds; it is done once).

``selfalign cache`` lists it; ``selfalign cache clean`` removes the entries no longer used (folders keyed by a
GGUF's path, made by an older selfalign, and unfinished conversions); ``--all`` removes everything.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import time
from pathlib import Path

from selfalign.store.io import peek_json

SOURCE_FILE = "selfalign_source.json"
HASHES = "hashes.json"
QUANT_IN_NAME = re.compile(r"(?i)[.\-_]((?:I?Q\d[\w]*?)|F16|BF16|F32)$")


def cache_root() -> Path:
    env = os.environ.get("SELFALIGN_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "selfalign"


def _write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=1, sort_keys=True))
    os.replace(tmp, path)


def file_sha256(path: str | Path) -> str:
    """The file's sha256, computed once per (path, size, modification time) and remembered in ``hashes.json``."""
    p = Path(path).resolve()
    st = p.stat()
    key = f"{p}|{st.st_size}|{st.st_mtime_ns}"
    memo_file = cache_root() / HASHES
    memo = peek_json(memo_file, {})
    if isinstance(memo, dict) and isinstance(memo.get(key), str):
        return memo[key]
    h = hashlib.sha256()
    with open(p, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    memo = memo if isinstance(memo, dict) else {}
    memo[key] = h.hexdigest()
    try:
        _write_json(memo_file, memo)
    except OSError:  # a read-only cache: hash again next time
        pass
    return memo[key]


def gguf_facts(path: str | Path) -> dict:
    """What a GGUF file says about itself: ``quantization`` (``Q4_1``), and where present ``license`` and the
    hub id of the model it was made from (``hub_id``, from ``general.base_model.0.repo_url`` or
    ``general.source.repo_url``). Read with the ``gguf`` package (transformers needs it for GGUF); the file name's
    quantisation suffix when the file cannot be read that way."""
    facts: dict = {}
    try:
        import gguf

        reader = gguf.GGUFReader(str(path))

        def field(name):
            f = reader.fields.get(name)
            return f.contents() if f is not None else None

        ftype = field("general.file_type")
        if isinstance(ftype, int):
            facts["quantization"] = gguf.LlamaFileType(ftype).name.removeprefix("MOSTLY_")
        if isinstance(field("general.license"), str):
            facts["license"] = field("general.license")
        for key in ("general.base_model.0.repo_url", "general.source.repo_url"):
            url = field(key)
            if isinstance(url, str) and url.startswith("https://huggingface.co/"):
                facts["hub_id"] = url.removeprefix("https://huggingface.co/").strip("/")
                break
    except Exception:  # noqa: BLE001 - not a GGUF the package reads (or no package): the name may say
        pass
    if "quantization" not in facts:
        m = QUANT_IN_NAME.search(Path(path).stem)
        if m:
            facts["quantization"] = m.group(1).upper()
    return facts


def dequantized_dir(gguf_path: str | Path) -> Path:
    """Where the dequantised copy of this GGUF lives: keyed by its content hash, not its path."""
    p = Path(gguf_path)
    return cache_root() / "models" / f"{p.stem}-{file_sha256(p)[:12]}"


def source_record(gguf_path: str | Path) -> dict:
    """What ``selfalign_source.json`` records for a conversion of ``gguf_path``."""
    p = Path(gguf_path)
    return {"gguf_file": p.name, "gguf_sha256": file_sha256(p), "dequantized": True, **gguf_facts(p),
            "made": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


# --- listing and cleaning (selfalign cache) ------------------------------------------------------------------
def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def entries() -> list[dict]:
    """Every entry of the cache: ``path`` (relative to the root), ``kind``, ``bytes``, ``stale`` (what ``clean``
    removes) and ``note``."""
    root, out = cache_root(), []
    for d in sorted((root / "models").glob("*")) if (root / "models").is_dir() else []:
        rec = peek_json(d / SOURCE_FILE, {})
        sha = rec.get("gguf_sha256") if isinstance(rec, dict) else None
        if ".tmp" in d.name or not (d / "config.json").exists():
            kind, stale, note = "unfinished", True, "a conversion that did not finish"
        elif sha and d.name.endswith("-" + sha[:12]):
            kind, stale = "dequantised GGUF", False
            note = f"{rec.get('gguf_file', '?')} ({rec.get('quantization', 'quantisation unknown')})"
        else:
            kind, stale = "legacy", True
            note = f"keyed by the path {rec.get('gguf', '?')} (an older selfalign)"
        out.append({"path": f"models/{d.name}", "kind": kind, "bytes": _size(d), "stale": stale, "note": note})
    for d in sorted((root / "gguf").glob("*")) if (root / "gguf").is_dir() else []:
        names = [f.name for f in d.iterdir()] if d.is_dir() else []
        done = [n for n in names if n.endswith(".gguf")]
        out.append({"path": f"gguf/{d.name}", "kind": "assembled GGUF" if done else "unfinished", "bytes": _size(d),
                    "stale": not done, "note": f"{', '.join(done) or 'no file'}: a split alias's parts, joined"})
    for d in sorted((root / "data").glob("*")) if (root / "data").is_dir() else []:
        out.append({"path": f"data/{d.name}", "kind": "data", "bytes": _size(d), "stale": False,
                    "note": "fetched from the hub once"})
    return out


def remove(entry: dict) -> None:
    import shutil

    p = cache_root() / entry["path"]
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p)
    else:
        p.unlink(missing_ok=True)
