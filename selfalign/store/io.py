"""Files in and out: errors that name file and line, append+flush writing, resume by finished keys.

Every reader and writer of the package goes through here, so that a bad file is one ``InputError`` naming the
file (and line) whatever the stage: a missing file, a directory where a file belongs, bytes that are not UTF-8,
malformed JSON, a row whose fields have the wrong JSON types (``FIELDS``), an output that cannot be written
(permissions, a full disk: the rows written before stay intact).
"""
from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional, Sequence

from selfalign.errors import InputError

# The record vocabulary the stages hand each other: where a reader uses one of these fields (its ``required`` and
# ``fields``), a row's value must have this JSON type (null is "absent", except where a field may not be null).
# Fields a reader does not use are never checked: a user's extra columns are theirs.
_TEXT = ((str,), "a string")
FIELDS = {
    "id": ((str, int), "a string or an integer"),
    "question": _TEXT, "prompt": _TEXT, "response": _TEXT, "answer": _TEXT, "topic": _TEXT, "proposal": _TEXT,
    "chosen": _TEXT, "rejected": _TEXT, "continuation": _TEXT, "completion": _TEXT,
    "sample_idx": ((int,), "an integer"),
    "score": ((int, float), "a number"),
    "label": ((int,), "0 or 1"),
    "claims": ((list,), "a list"),
}
NOT_NULL = {"chosen", "rejected", "label", "sample_idx"}


def _kind(v) -> str:
    return "null" if v is None else {bool: "boolean", str: "string", int: "integer", float: "number",
                                     list: "list", dict: "object"}.get(type(v), type(v).__name__)


def _names(required: Sequence[str | tuple[str, ...]], fields: Sequence[str] = ()) -> tuple[str, ...]:
    flat = [n for f in required for n in (f if isinstance(f, tuple) else (f,))]
    return tuple(dict.fromkeys(n for n in [*flat, *fields] if n in FIELDS))


def _finite(v) -> bool:
    """Not infinite and not too large for a float (NaN passes: a sample whose judge gave none, left unscored)."""
    try:
        return not math.isinf(float(v))
    except OverflowError:
        return False


def check_fields(row: dict, path, line: Optional[int], names: Sequence[str]) -> None:
    """InputError naming ``path``:``line`` for the first of ``names`` whose JSON type in ``row`` is not FIELDS'."""
    for name in names:
        types, want = FIELDS[name]
        if name not in row:
            continue
        v = row[name]
        if v is None:
            if name in NOT_NULL:
                raise InputError(path, f"{name} must be {want}, got null", line)
            continue
        ok = isinstance(v, types) and not (isinstance(v, bool) and name != "label")
        if name == "label":
            ok = v in (0, 1) and not isinstance(v, float)
        elif ok and float in types and not _finite(v):  # Infinity, or a 400-digit integer
            raise InputError(path, f"{name} must be a finite number or NaN, got {str(v)[:20]}{'...' if len(str(v)) > 20 else ''}",
                             line)
        if not ok:
            shown = json.dumps(v, ensure_ascii=False)
            shown = shown if len(shown) <= 40 else shown[:37] + "..."
            raise InputError(path, f"{name} must be {want}, got {_kind(v)} {shown}", line)


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


def read_text(path: str | os.PathLike, what: str = "file") -> str:
    """A whole UTF-8 text file (a leading BOM dropped); InputError naming the line of a byte that is not UTF-8."""
    path = input_file(path, what)
    try:
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


def parse_json(text: str, where):
    """JSON text; InputError naming the line of a syntax error, of a lone surrogate escape (\\ud800), or for
    nesting deeper than Python can read."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(where, f"malformed JSON ({e.msg} at column {e.colno})", e.lineno) from None
    except RecursionError:
        raise InputError(where, "JSON nested too deeply to read") from None
    if ("\\ud" in text or "\\uD" in text) and not _encodable(obj):
        m = LONE_SURROGATE.search(text)
        raise InputError(where, "holds a lone surrogate escape (such as \\ud800), which is not text",
                         text.count("\n", 0, m.start()) + 1 if m else None)
    return obj


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
    typed = _names(required, fields)
    try:
        f = open(path, "rb")
    except OSError as e:
        raise InputError(path, f"cannot read it ({e.strerror})") from None
    with f:
        for lineno, raw in enumerate(f, 1):
            line = _decode(raw, path, lineno)
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(path, f"malformed JSON ({e.msg} at column {e.colno})", lineno) from None
            except RecursionError:
                raise InputError(path, "JSON nested too deeply to read", lineno) from None
            if not isinstance(row, dict):
                raise InputError(path, f"expected a JSON object, got {type(row).__name__}", lineno)
            if ("\\ud" in line or "\\uD" in line) and not _encodable(row):
                raise InputError(path, "holds a lone surrogate escape (such as \\ud800), which is not text", lineno)
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


def output_dir(path: str | os.PathLike) -> Path:
    """``path`` if it is (or can be made) a writable directory; else InputError."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(path, "is a file; give a directory")
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
