"""Splice the two study tables into benchmarks/results/effect.md: the Table 2 section from skt_table2.md and the
Table 1 tables from t1_<model>.md (their headings one level down), keeping every hand-written part of effect.md
(the targets summary, the "Reading Table 1" commentary and the older sections).

    python benchmarks/effect/effect_md.py [--model qwen]   # after skt_summary.py and t1_summary.py
"""
from __future__ import annotations

import argparse
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"
T2_HEAD = "## Table 2: P(True) calibration before and after SK-Tuning"
T1_HEAD = "## Table 1:"
READING = "### Reading Table 1"
NEXT = "## Steps: wall time and peak memory"


def body(md: str) -> str:
    """A results file without its title line, its sections one heading level down."""
    lines = md.splitlines()[1:]
    return "\n".join(("#" + ln) if ln.startswith("## ") else ln for ln in lines).strip("\n")


def splice(text: str, start: str, stop: str, new: str) -> str:
    i, j = text.index(start), text.index(stop)
    return text[:i] + new.rstrip("\n") + "\n\n" + text[j:]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="qwen")
    args = ap.parse_args(argv)
    path = RESULTS / "effect.md"
    text = path.read_text(encoding="utf-8")
    t2_title = text[text.index(T2_HEAD):].splitlines()[0]
    text = splice(text, T2_HEAD, T1_HEAD, t2_title + "\n" + body((RESULTS / "skt_table2.md").read_text()))
    t1_title = text[text.index(T1_HEAD):].splitlines()[0]
    text = splice(text, T1_HEAD, READING, t1_title + "\n\n" + body((RESULTS / f"t1_{args.model}.md").read_text()))
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
