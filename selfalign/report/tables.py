"""The one table formatter: numbers, values with their intervals, paired differences, Markdown tables. Used by the
recipe summary (``run.summary``), the report (``report.render``) and every benchmark summary.

Every cell function takes ``digits`` (3 unless a table was published with other precision) and ``missing``, the
text of an absent value: "–" (the recipe summary's), "n/a" (the report's) or "-" where a table was published with
it. An interval is read from ``ci_low``/``ci_high`` (the evaluations' results) or ``low``/``high`` (the effect
studies' own dicts)."""
from __future__ import annotations


def _bounds(m: dict):
    return m.get("ci_low", m.get("low")), m.get("ci_high", m.get("high"))


BLANK = object()  # a blank table cell, "| |" ("" is written as given, "|  |")


def md_table(header, rows, align: str | None = None) -> list[str]:
    """A Markdown table (header line, separator, one line per row), cells as given (str() of anything else, "| x |");
    ``BLANK`` is a blank cell, "| |" (a filler column). ``align``: one letter per column, "l" or "r" (right-aligned,
    "---:"); default all left."""
    def line(cells):
        return "|" + "".join(" |" if c is BLANK else f" {c} |" for c in cells)
    sep = ["---:" if a == "r" else "---" for a in (align or "l" * len(header))]
    return [line(header), "|" + "".join(f"{s}|" for s in sep), *(line(r) for r in rows)]


def num(x, digits: int = 3, missing: str = "–", sign: bool = False) -> str:
    """A number with ``digits`` decimals ("0.512"; ``sign``: "+0.512"), ``missing`` for None."""
    return missing if x is None else f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def interval(lo, hi, digits: int = 3, sign: bool = False, missing: str = "–") -> str:
    """"[0.480, 0.544]" (``sign``: "[-0.008, +0.046]")."""
    return f"[{num(lo, digits, missing, sign)}, {num(hi, digits, missing, sign)}]"


def fmt(m: dict | None, digits: int = 3, missing: str = "–") -> str:
    """A value with its interval, "0.512 [0.480, 0.544]" (no interval: "0.512"), of ``{value, ci_low, ci_high}``
    (or ``low``/``high``); ``missing`` for no value."""
    if not m or m.get("value") is None:
        return missing
    lo, hi = _bounds(m)
    return num(m["value"], digits) + ("" if lo is None else " " + interval(lo, hi, digits))


def diff(d: dict | None, digits: int = 3, missing: str = "–") -> str:
    """A signed paired difference with its interval, "+0.018 [-0.008, +0.046]" (no interval: "+0.018"), of
    ``{diff, ci_low, ci_high}`` (or ``low``/``high``); ``missing`` for no difference."""
    if not d or d.get("diff") is None:
        return missing
    lo, hi = _bounds(d)
    s = num(d["diff"], digits, sign=True)
    return s if lo is None else f"{s} {interval(lo, hi, digits, sign=True)}"
