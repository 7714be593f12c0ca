"""What an output was made from: short content hashes of rows and files, and whether two paths are one file."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

HASH_LIMIT = 256 * 2 ** 20  # files above this are identified by size and mtime instead of their content


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


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two paths name one existing file (symlinks and relative paths resolved)."""
    try:
        return Path(a).resolve() == Path(b).resolve() or os.path.samefile(a, b)
    except OSError:
        return False
