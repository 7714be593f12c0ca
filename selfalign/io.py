"""JSONL in and out: errors that name file and line, append+flush writing, resume by finished keys."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

from selfalign.errors import InputError, SelfAlignError


def read_jsonl(path: str | os.PathLike, required: Sequence[str | tuple[str, ...]] = ()) -> list[dict]:
    """Read every row of a JSONL file.

    ``required`` lists field names; a tuple inside it means "one of these". Blank lines are skipped.
    Raises InputError naming the file and line for malformed JSON, non-object rows, missing fields,
    and for a file with no rows at all.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "file not found")
    rows = list(iter_jsonl(path, required))
    if not rows:
        raise InputError(path, "no rows (the file is empty)")
    return rows


def iter_jsonl(path: Path, required: Sequence[str | tuple[str, ...]] = ()) -> Iterator[dict]:
    for _, row in iter_numbered(path, required):
        yield row


def line_numbers(path: str | os.PathLike) -> list[int]:
    """The file line of every row read_jsonl returns (the k-th row came from the k-th number)."""
    return [n for n, _ in iter_numbered(Path(path))]


def iter_numbered(path: Path, required: Sequence[str | tuple[str, ...]] = ()) -> Iterator[tuple[int, dict]]:
    """(line number, row) for every non-blank line, so later checks can name the line too."""
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(path, f"malformed JSON ({e.msg} at column {e.colno})", lineno) from None
            if not isinstance(row, dict):
                raise InputError(path, f"expected a JSON object, got {type(row).__name__}", lineno)
            for field in required:
                names = field if isinstance(field, tuple) else (field,)
                if not any(n in row and row[n] is not None for n in names):
                    raise InputError(path, "missing field " + " or ".join(repr(n) for n in names), lineno)
            yield lineno, row


def write_json(path: str | os.PathLike, obj) -> None:
    """Write a JSON file atomically (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def write_jsonl_atomic(path: str | os.PathLike, rows: Iterable[dict]) -> None:
    """Write a whole JSONL file via a temp file + rename: a kill never leaves a partial file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class JsonlAppender:
    """Append rows to a JSONL output so that a killed run loses nothing it wrote.

    On open, a trailing partial line (a run killed mid-write) is cut off. ``done(key)`` tells which
    rows are already there, so a rerun skips them. Each ``write`` call writes whole lines in one
    system call, then flushes and fsyncs.
    """

    def __init__(self, path: str | os.PathLike, key: Callable[[dict], object]):
        self.path = Path(path)
        self.key = key
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._repair()
        self.finished = {key(r) for r in iter_jsonl(self.path)} if self.path.exists() else set()
        self._f = open(self.path, "a", encoding="utf-8")

    def _repair(self) -> None:
        if not self.path.exists() or self.path.stat().st_size == 0:
            return
        data = self.path.read_bytes()
        if data.endswith(b"\n"):
            return
        cut = data.rfind(b"\n") + 1
        with open(self.path, "r+b") as f:
            f.truncate(cut)

    def done(self, row: dict) -> bool:
        return self.key(row) in self.finished

    def write(self, rows: Iterable[dict]) -> None:
        rows = list(rows)
        if not rows:
            return
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        self._f.write(text)
        self._f.flush()
        os.fsync(self._f.fileno())
        self.finished.update(self.key(r) for r in rows)

    def close(self) -> None:
        self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# --- what an output was made from: row and file hashes, one writer per output ---------------------------------
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


def lock_path(output: str | os.PathLike) -> Path:
    output = Path(output)
    return output.with_name(output.name + ".lock")


class OutputLock:
    """An exclusive lock on an output: ``<output>.lock`` holds the writer's pid under ``flock``.

    A second writer is refused with SelfAlignError naming the pid. The kernel drops a ``flock`` when its process
    dies, so a lock file left by a killed run (kill -9, a crash) is simply taken over.
    """

    def __init__(self, output: str | os.PathLike):
        self.output, self.path, self._fd = Path(output), lock_path(output), None

    def acquire(self) -> "OutputLock":
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(5):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pid = os.read(fd, 32).decode("ascii", "replace").strip() or "?"
                os.close(fd)
                raise SelfAlignError(f"{self.output} is being written by another process (pid {pid}, lock "
                                     f"{self.path}); wait for it to finish or write to another --output") from None
            try:  # the holder may have removed the file between our open and flock: lock the file on disk
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
                self._fd = fd
                return self
            os.close(fd)
        raise SelfAlignError(f"{self.path}: could not take the lock (other processes keep replacing it)")

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        os.close(self._fd)
        self._fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
