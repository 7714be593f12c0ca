"""The record vocabulary the stages hand each other, and the check of a row's JSON types against it (``store.io``'s
readers call it with the fields they use)."""
from __future__ import annotations

import json
import math
from typing import Optional, Sequence

from selfalign.errors import InputError

# Where a reader uses one of these fields (its ``required`` and ``fields``), a row's value must have this JSON type
# (null is "absent", except where a field may not be null). Fields a reader does not use are never checked: a
# user's extra columns are theirs.
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


def field_names(required: Sequence[str | tuple[str, ...]], fields: Sequence[str] = ()) -> tuple[str, ...]:
    """The names among ``required`` (a tuple: one of them) and ``fields`` that ``FIELDS`` types."""
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
