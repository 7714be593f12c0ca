"""Bad flag and recipe values drawn by Hypothesis from the config declarations (tests/test_property_inputs.py; the
files' bad contents are drawn in tests/property_inputs.py)."""
from __future__ import annotations

import dataclasses
import math
import re
import typing

from hypothesis import strategies as st

from property_inputs import VALUES
from selfalign.config import _choices, _hints, _unwrap, flag

# --- flags and recipe values from the config declarations ------------------------------------------------------
def _accepted(f: dataclasses.Field, tp, value) -> bool:
    """Whether the declaration takes ``value`` (already of the field's Python type or not)."""
    base, optional = _unwrap(tp)
    if typing.get_origin(base) is list:
        return isinstance(value, list) and all(_accepted(f, typing.get_args(base)[0], v) for v in value)
    if value is None:
        return optional
    if base is bool:
        return isinstance(value, bool)
    if base is int and (not isinstance(value, int) or isinstance(value, bool)):
        return False
    if base is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        try:
            if not math.isfinite(float(value)):
                return False
        except OverflowError:  # an integer too large for a float
            return False
    if base is str and not isinstance(value, str):
        return False
    if (base is dict or typing.get_origin(base) is dict) and not isinstance(value, dict):
        return False
    md = f.metadata
    choices = _choices(md)
    if choices is not None and value not in choices:
        return False
    pattern = md["pattern"]() if callable(md.get("pattern")) else md.get("pattern")
    if pattern and not re.fullmatch(pattern, value):
        return False
    return all(md.get(k) is None or test(value, md[k]) for k, test in
               (("min", lambda a, b: a >= b), ("max", lambda a, b: a <= b), ("gt", lambda a, b: a > b),
                ("lt", lambda a, b: a < b)))


def _flag_text(base, text: str):
    """A flag string as argparse's ``type`` reads it (None: argparse refuses it)."""
    try:
        return base(text) if base in (int, float) else text
    except ValueError:
        return None


def constrained(cls) -> list[dataclasses.Field]:
    """The fields whose declaration refuses some value: a number, a choice, a pattern, a boolean."""
    hints = _hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        base = _unwrap(hints[f.name])[0]
        if f.metadata.get("positional") or f.metadata.get("cli") is False:
            continue
        if base in (int, float) or _choices(f.metadata) is not None or f.metadata.get("pattern"):
            out.append(f)
    return out


def _numbers(f):
    md = f.metadata
    edges = [md[k] + d for k in ("min", "max", "gt", "lt") if md.get(k) is not None for d in (-1, 0, 1, -0.5, 0.5)]
    return st.sampled_from(edges or [0]) | st.integers(-10 ** 6, 10 ** 6) | st.floats()


@st.composite
def flag_value(draw, cls) -> tuple[str, str, bool]:
    """(flag, its text, whether the declaration refuses it)."""
    fields = constrained(cls)
    f = draw(st.sampled_from(fields))
    tp = _hints(cls)[f.name]
    base = _unwrap(tp)[0]
    inner = typing.get_args(base)[0] if typing.get_origin(base) is list else base
    text = draw(_numbers(f).map(lambda v: repr(v) if isinstance(v, float) else str(v))
                | st.sampled_from(["", "nan", "inf", "-inf", "1e400", "four", "0x10", "1_0", "tpu9", "bogus",
                                   *map(str, _choices(f.metadata) or ())])
                | st.text(max_size=8))
    if text.startswith("-") and not re.fullmatch(r"-[\d.]+(e[-+]?\d+)?|-inf", text):
        text = " " + text  # argparse would read it as a flag
    value = _flag_text(inner, text)
    ok = value is not None and _accepted(f, tp, [value] if typing.get_origin(base) is list else value)
    return flag(f.name), text, not ok


@st.composite
def recipe_value(draw, cls) -> tuple[str, object, bool]:
    """(field, a YAML value, whether the declaration refuses it)."""
    f = draw(st.sampled_from(dataclasses.fields(cls)))
    tp = _hints(cls)[f.name]
    value = draw(_numbers(f) | VALUES | st.sampled_from(list(_choices(f.metadata) or ["x"])))
    return f.name, value, not _accepted(f, tp, value)
