"""The one Markdown formatter of the benchmark summaries: tables, and values with intervals (``fmt``: the recipe
summary's own, ``selfalign.summary.fmt``, for ``{value, ci_low, ci_high}``). A script in a study folder imports it
after ``sys.path.insert(0, str(Path(__file__).resolve().parents[1]))``."""
from __future__ import annotations

from selfalign.summary import fmt  # noqa: F401 - re-exported: "0.512 [0.480, 0.544]", "–" for no value


def md_table(header, rows) -> list[str]:
    """A Markdown table (header line, separator, one line per row), cells as given (str() of anything else)."""
    return ["| " + " | ".join(map(str, header)) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(map(str, r)) + " |" for r in rows)]
