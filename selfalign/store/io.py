"""Files in and out: errors that name file and line, append+flush writing, resume by finished keys.

Every reader and writer of the package goes through here (YAML: ``store.yamlfile``), so that a bad file is one
``InputError`` naming the file (and line) whatever the stage: a missing file, a directory where a file belongs,
bytes that are not UTF-8, malformed JSON, a row whose fields have the wrong JSON types (``store.fields``), an
output that cannot be written (permissions, a full disk: the rows written before stay intact). The readers are
bounded: a JSON value nested deeper than ``MAX_JSON_DEPTH``, a JSONL line longer than ``MAX_LINE_BYTES`` and a
whole file larger than ``MAX_FILE_BYTES`` are one line too, never a traceback or a machine out of memory.
``peek_json`` reads a file the package wrote itself (a state, a meta record), where a damaged or missing file only
means "unknown".
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional, Sequence

from selfalign.errors import InputError
from selfalign.store.fields import FIELDS, NOT_NULL, check_fields, field_names  # noqa: F401 - the row vocabulary

MAX_JSON_DEPTH = 100  # nesting of a JSON value (results and configs nest under 10)
MAX_LINE_BYTES = 16 * 2 ** 20  # one JSONL row
MAX_FILE_BYTES = 2 ** 30  # a whole file read at once (JSON, CSV, YAML, text)


# --- reading -----------------------------------------------------------------------------------------------
def input_file(path: str | os.PathLike, what: str = "file") -> Path:
    """``path`` if it is a readable file; else InputError (not found, a directory, not readable)."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, f"{what} not found" if what != "file" else "file not found")
    if path.is_dir():
        raise InputError(path, f"is a directory, not a {what}")
    if not os.access(path, os.R_OK):
        raise InputError(path, "cannot read it (permission denied)")
    return path


def _decode(data: bytes, path, line: Optional[int] = None, offset: int = 0) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        if line is None:  # a whole file: find the line of the first bad byte
            line = data.count(b"\n", 0, e.start) + 1
            offset = e.start - (data.rfind(b"\n", 0, e.start) + 1)
        else:
            offset = e.start
        raise InputError(path, f"not UTF-8 text (byte 0x{data[e.start]:02x} at column {offset + 1})", line) from None


def read_text(path: str | os.PathLike, what: str = "file", limit: Optional[int] = None) -> str:
    """A whole UTF-8 text file (a leading BOM dropped); InputError naming the line of a byte that is not UTF-8, or
    for a file over ``limit`` bytes (default ``MAX_FILE_BYTES``)."""
    path = input_file(path, what)
    limit = MAX_FILE_BYTES if limit is None else limit
    try:
        if path.stat().st_size > limit:
            raise InputError(path, f"{path.stat().st_size:,} bytes: larger than the {limit:,} read at once")
        data = path.read_bytes()
    except OSError as e:
        raise InputError(path, f"cannot read it ({e.strerror})") from None
    return _decode(data, path).removeprefix("\ufeff")


def read_json(path: str | os.PathLike, what: str = "file"):
    """A JSON file; InputError with the line of a syntax error, or for nesting deeper than Python can read."""
    return parse_json(read_text(path, what), path)


# a \uXXXX escape of a surrogate that is not half of a pair: JSON can say it, but it is not text (no UTF-8 for it)
LONE_SURROGATE = re.compile(r"(?<!\\)(?:\\\\)*\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
                            r"|(?<![dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}")


def parse_json(text: str, where, line: Optional[int] = None):
    """JSON text; InputError naming the line of a syntax error, of a lone surrogate escape (\\ud800), or for
    nesting deeper than ``MAX_JSON_DEPTH`` (``line``: the text is that line of ``where``)."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(where, f"malformed JSON ({e.msg} at column {e.colno})", line or e.lineno) from None
    except RecursionError:
        raise InputError(where, f"JSON nested deeper than {MAX_JSON_DEPTH}", line) from None
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH and json_depth(obj) > MAX_JSON_DEPTH:
        raise InputError(where, f"JSON nested deeper than {MAX_JSON_DEPTH}", line)
    if ("\\ud" in text or "\\uD" in text) and not _encodable(obj):
        m = LONE_SURROGATE.search(text) if line is None else None
        raise InputError(where, "holds a lone surrogate escape (such as \\ud800), which is not text",
                         line or (text.count("\n", 0, m.start()) + 1 if m else None))
    return obj


def json_depth(obj, stop: Optional[int] = None) -> int:
    """How deep lists and objects nest in ``obj`` (a scalar: 0), counted without recursion up to ``stop`` + 1
    (default ``MAX_JSON_DEPTH``)."""
    stop = MAX_JSON_DEPTH if stop is None else stop
    best, stack = 0, [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (dict, list)):
            best = max(best, depth)
            if best > stop:
                return best
            stack.extend((v, depth + 1) for v in (value.values() if isinstance(value, dict) else value))
    return best


def read_json_gz(path: str | os.PathLike, what: str = "file"):
    """A gzip-compressed JSON file (a kept record), with the bounds of ``read_json`` (at most ``MAX_FILE_BYTES``
    once decompressed: a gzip bomb stops there)."""
    import gzip
    import zlib

    path = input_file(path, what)
    try:
        with gzip.open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except (OSError, EOFError, zlib.error) as e:
        raise InputError(path, f"not a gzip file ({e})") from None
    if len(data) > MAX_FILE_BYTES:
        raise InputError(path, f"more than the {MAX_FILE_BYTES:,} bytes read at once, decompressed")
    return parse_json(_decode(data, path).removeprefix("\ufeff"), path)


def peek_json(path: str | os.PathLike | None, default=None):
    """A JSON file this package wrote (a stage's state, a meta record, a checkpoint's state), read with the same
    bounds; ``default`` when it is missing, unreadable or damaged (what it would have said is unknown)."""
    if path is None:
        return default
    try:
        return read_json(path)
    except InputError:
        return default


def read_jsonl(path: str | os.PathLike, required: Sequence[str | tuple[str, ...]] = (),
               unique: Optional[Callable[[dict], object]] = None, unique_name: str = "id",
               fields: Sequence[str] = ()) -> list[dict]:
    """Read every row of a JSONL file.

    ``required`` lists field names; a tuple inside it means "one of these"; ``fields`` lists optional fields the
    caller uses. Both are type-checked (``FIELDS``). Blank lines are skipped.
    ``unique`` gives a row's key (None: no key); a key seen twice is an error naming both lines.
    Raises InputError naming the file and line for bytes that are not UTF-8, malformed JSON, non-object rows,
    missing fields, fields of the wrong type (``FIELDS``), duplicate keys, and for a file with no rows at all.
    """
    path = input_file(path)
    rows, seen = [], {}
    for lineno, row in iter_numbered(path, required, fields):
        if unique is not None:
            key = unique(row)
            if key is not None and key in seen:
                raise duplicate(path, unique_name, key, seen[key], lineno)
            seen.setdefault(key, lineno)
        rows.append(row)
    if not rows:
        raise InputError(path, "no rows (the file is empty)")
    return rows


def duplicate(path, name: str, key, first: int, line: int) -> InputError:
    """The error for a row whose key (``name``: "id", "(id, sample_idx)") an earlier line already had."""
    shown = repr(key) if not isinstance(key, tuple) else "(" + ", ".join(map(repr, key)) + ")"
    return InputError(path, f"duplicate {name} {shown} (first on line {first})", line)


def iter_jsonl(path: Path, required: Sequence[str | tuple[str, ...]] = (), fields: Sequence[str] = ()) -> Iterator[dict]:
    for _, row in iter_numbered(path, required, fields):
        yield row


def line_numbers(path: str | os.PathLike) -> list[int]:
    """The file line of every row read_jsonl returns (the k-th row came from the k-th number)."""
    return [n for n, _ in iter_numbered(Path(path))]


def iter_numbered(path: Path, required: Sequence[str | tuple[str, ...]] = (),
                  fields: Sequence[str] = ()) -> Iterator[tuple[int, dict]]:
    """(line number, row) for every non-blank line, so later checks can name the line too."""
    path = input_file(path)
    typed = field_names(required, fields)
    try:
        f = open(path, "rb")
    except OSError as e:
        raise InputError(path, f"cannot read it ({e.strerror})") from None
    with f:
        for lineno, raw in enumerate(iter(lambda: f.readline(MAX_LINE_BYTES + 1), b""), 1):
            if len(raw) > MAX_LINE_BYTES:
                raise InputError(path, f"a line longer than {MAX_LINE_BYTES:,} bytes", lineno)
            line = _decode(raw, path, lineno)
            if not line.strip():
                continue
            row = parse_json(line, path, lineno)
            if not isinstance(row, dict):
                raise InputError(path, f"expected a JSON object, got {type(row).__name__}", lineno)
            for field in required:
                names = field if isinstance(field, tuple) else (field,)
                if not any(n in row and row[n] is not None for n in names):
                    raise InputError(path, "missing field " + " or ".join(repr(n) for n in names), lineno)
            check_fields(row, path, lineno, typed)
            yield lineno, row


def _encodable(row) -> bool:
    try:
        json.dumps(row, ensure_ascii=False).encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


# --- writing -----------------------------------------------------------------------------------------------
def _cannot_write(path, e: OSError, kept: str = "") -> InputError:
    return InputError(path, f"cannot write it ({e.strerror or e}){kept}")


def _make_folder(path: Path, folder: Path) -> None:
    above = next((p for p in [folder, *folder.parents] if p.exists()), None)
    if above is not None and not above.is_dir():
        raise InputError(path, f"cannot write it ({above} is a file, not a folder)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _cannot_write(path, e) from None


def output_file(path: str | os.PathLike) -> Path:
    """``path`` if a file can be written there (its folder is made); else InputError: a directory in its place,
    a file where its folder should be, no permission."""
    path = Path(path)
    if path.is_dir():
        raise InputError(path, "is a directory; give a file name")
    _make_folder(path, path.parent)
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise InputError(path, "cannot write it (permission denied)")
    return path


def output_dir(path: str | os.PathLike, make: bool = True) -> Path:
    """``path`` if it is (or can be made) a writable directory; else InputError. ``make=False``: only checked (the
    nearest folder that exists must be writable), not made."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(path, "is a file; give a directory")
    if not make:
        above = next((p for p in [path, *path.parents] if p.exists()), None)
        if above is not None and not above.is_dir():
            raise InputError(path, f"cannot write it ({above} is a file, not a folder)")
        if above is not None and not os.access(above, os.W_OK):
            raise InputError(path, "cannot write it (permission denied)")
        return path
    _make_folder(path, path)
    if not os.access(path, os.W_OK):
        raise InputError(path, "cannot write it (permission denied)")
    return path


def _replace_from_tmp(path: Path, write: Callable) -> None:
    output_file(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise _cannot_write(path, e, "; the file as it was is kept") from None


def write_json(path: str | os.PathLike, obj) -> None:
    """Write a JSON file atomically (temp file + rename)."""
    _replace_from_tmp(Path(path), lambda f: f.write(json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n"))


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write a text file atomically (temp file + rename)."""
    _replace_from_tmp(Path(path), lambda f: f.write(text))


def write_jsonl_atomic(path: str | os.PathLike, rows: Iterable[dict]) -> None:
    """Write a whole JSONL file via a temp file + rename: a kill never leaves a partial file."""
    _replace_from_tmp(Path(path), lambda f: f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def repair_tail(path: str | os.PathLike) -> None:
    """Cut a trailing partial line (a run killed mid-write) off a JSONL file."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        return
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        if f.read(1) == b"\n":
            return
    data = path.read_bytes()
    try:
        with open(path, "r+b") as f:
            f.truncate(data.rfind(b"\n") + 1)
    except OSError as e:
        raise _cannot_write(path, e) from None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class JsonlAppender:
    """Append rows to a JSONL output so that a killed run loses nothing it wrote.

    On open, a trailing partial line (a run killed mid-write) is cut off. ``done(key)`` tells which
    rows are already there, so a rerun skips them. Each ``write`` call writes whole lines, then fsyncs; a write
    that fails (a full disk) is cut back to the rows before it and raises InputError.
    """

    def __init__(self, path: str | os.PathLike, key: Callable[[dict], object]):
        self.path = output_file(path)
        self.key = key
        repair_tail(self.path)
        self.finished = set()
        for lineno, r in iter_numbered(self.path) if self.path.exists() else ():
            try:
                self.finished.add(key(r))
            except (KeyError, TypeError, ValueError) as e:
                raise InputError(self.path, f"not a row of this output (its key field {e} is missing or wrong); "
                                            "use a new output file", lineno) from None
        self._open()

    def _open(self) -> None:
        try:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        except OSError as e:
            raise _cannot_write(self.path, e) from None

    def done(self, row: dict) -> bool:
        return self.key(row) in self.finished

    def drop(self, gone: Callable[[dict], bool]) -> int:
        """Remove the rows ``gone`` picks (the file rewritten atomically: a kill leaves it whole, old or new); their
        keys are no longer done. Returns how many rows went."""
        rows = list(iter_jsonl(self.path)) if self.finished else []
        kept = [r for r in rows if not gone(r)]
        if len(kept) == len(rows):
            return 0
        JsonlAppender.close(self)  # the file only (a subclass's close may release its lock too)
        write_jsonl_atomic(self.path, kept)
        self.finished = {self.key(r) for r in kept}
        self._open()
        return len(rows) - len(kept)

    def write(self, rows: Iterable[dict]) -> None:
        rows = list(rows)
        if not rows:
            return
        data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")
        size = os.fstat(self._fd).st_size
        try:
            _write_all(self._fd, data)
            os.fsync(self._fd)
        except OSError as e:
            try:
                os.ftruncate(self._fd, size)
            except OSError:
                pass  # the partial line is cut when the file is opened again
            raise _cannot_write(self.path, e, f"; the {len(self.finished)} rows written before are kept") from None
        self.finished.update(self.key(r) for r in rows)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
