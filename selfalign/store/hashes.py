"""What an output was made from: short content hashes of rows and files, cheap fingerprints of model weights and of
finished outputs, and whether two paths are one file."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Iterable, Optional

HASH_LIMIT = 256 * 2 ** 20  # files above this are identified by size and mtime instead of their content
WEIGHTS_FULL = 32 * 2 ** 20  # weights files up to this size are hashed whole; larger ones are sampled
EDGE, BLOCK, BLOCKS = 2 ** 20, 2 ** 16, 62  # a sampled file: first and last MiB, 62 blocks of 64 KiB between
WEIGHT_SUFFIXES = frozenset({".safetensors", ".bin", ".gguf", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".npz"})
# the small files of a model folder that change what it computes, besides its weights
MODEL_FILES = frozenset({"config.json", "adapter_config.json", "generation_config.json", "tokenizer.json",
                         "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model", "vocab.json",
                         "merges.txt", "chat_template.jinja", "selfalign_base.json"})


def row_hash(row: dict) -> str:
    """A short hash of a row's content (key order does not matter)."""
    text = json.dumps(row, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def file_hash(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes (first 16 hex digits); a file over HASH_LIMIT: of its size and mtime."""
    path = Path(path)
    st = path.stat()
    h = hashlib.sha256()
    if st.st_size > HASH_LIMIT:
        h.update(f"size={st.st_size};mtime_ns={st.st_mtime_ns}".encode())
        return "stat:" + h.hexdigest()[:16]
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()[:16]


def fingerprint(path: str | os.PathLike, full: int = WEIGHTS_FULL) -> str:
    """A file's identity at a bounded cost: sha256 of its bytes up to ``full`` bytes; above, of its size, its
    first and last MiB and ``BLOCKS`` evenly spaced 64 KiB blocks (about 6 MiB read, milliseconds on a local disk,
    where the whole of a 14 GB checkpoint takes 10-30 s). The mtime is left out on purpose: a copy or a fresh
    download of the same file keeps its fingerprint. A replacement of the same size that differs only between the
    sampled blocks is not seen (weights trained further change every block)."""
    path = Path(path)
    size = path.stat().st_size
    h = hashlib.sha256()
    with open(path, "rb") as f:
        if size <= max(full, 2 * EDGE + BLOCKS * BLOCK):
            while chunk := f.read(1 << 20):
                h.update(chunk)
            return h.hexdigest()[:16]
        h.update(f"size={size}".encode())
        step = (size - 2 * EDGE - BLOCK) // (BLOCKS + 1)
        for offset, n in [(0, EDGE), *((EDGE + (k + 1) * step, BLOCK) for k in range(BLOCKS)), (size - EDGE, EDGE)]:
            f.seek(offset)
            h.update(f.read(n))
    return "fp:" + h.hexdigest()[:16]


def _model_file(f: Path) -> bool:
    return f.suffix in WEIGHT_SUFFIXES or f.name in MODEL_FILES


def weights_fingerprint(spec) -> Optional[str]:
    """The fingerprint of the model a spec names when it is a local path: a weights file (``.gguf``,
    ``.safetensors``, ...), or a folder holding one (its weights, configs and tokenizer files, not its README or
    logs). None for anything else (an alias, a hub id, a folder without weights)."""
    if not isinstance(spec, (str, os.PathLike)) or not str(spec):
        return None
    p = Path(spec).expanduser()
    try:
        if p.is_file():
            return fingerprint(p) if p.suffix in WEIGHT_SUFFIXES else None
        if not p.is_dir():
            return None
        files = sorted((f for f in p.iterdir() if f.is_file() and _model_file(f)), key=lambda f: f.name)
        if not any(f.suffix in WEIGHT_SUFFIXES for f in files):
            return None
        h = hashlib.sha256()
        for f in files:
            h.update(f"{f.name}\0{fingerprint(f)}\n".encode())
        return "w:" + h.hexdigest()[:16]
    except OSError:
        return None


MODEL_FIELDS = ("model", "adapter", "verifier", "judge_model", "judge_info_model")  # config fields naming weights


def model_weights(cfg) -> dict[str, str]:
    """{field: weights fingerprint} of a config's ``MODEL_FIELDS`` that name local weights (a dict works too)."""
    get = cfg.get if isinstance(cfg, dict) else lambda k: getattr(cfg, k, None)
    return {k: fp for k in MODEL_FIELDS if (fp := weights_fingerprint(get(k)))}


def tree_hashes(root: str | os.PathLike, skip: Iterable[str] = ()) -> dict[str, str]:
    """{relative path: content hash} of every file under ``root`` but those whose name is in ``skip`` or ends in
    ``.lock``; files are hashed whole up to HASH_LIMIT, larger ones (checkpoints) fingerprinted."""
    root, skip = Path(root), set(skip)
    out = {}
    for f in sorted(root.rglob("*")) if root.is_dir() else []:
        if f.is_file() and f.name not in skip and not f.name.endswith(".lock"):
            out[f.relative_to(root).as_posix()] = fingerprint(f, HASH_LIMIT)
    return out


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two paths name one existing file (symlinks and relative paths resolved)."""
    try:
        return Path(a).resolve() == Path(b).resolve() or os.path.samefile(a, b)
    except OSError:
        return False
