"""Write benchmarks/results/effect.md whole: a short reading, then the current study tables, copied from the summary
files (their headings one level down): Table 2 from skt_table2.md, knowledge QA v4 from t1_qwen_kqa4.md, TruthfulQA MC
v3 from t1_smollm2_mc3.md and t1_qwen_mc3.md, and from t1_qwen.md only its current sections (TruthfulQA generation
of the v4 models, the v2-v4 pair diagnostic). Nothing else is kept: the history up to 2026-12-03 is in
benchmarks/results/archive/2026-12-07-effect-history.md, the claims with their commands in
benchmarks/results/README.md.

    python benchmarks/effect/records.py restore             # the kept per-question records into a fresh runs/
    python benchmarks/effect/skt_summary.py                  # -> skt_table2.{md,json}
    python benchmarks/effect/t1_summary.py --parts kqa4      # -> t1_qwen_kqa4.{md,json}
    python benchmarks/effect/t1_summary.py --parts mc3       # -> t1_qwen_mc3.{md,json}
    python benchmarks/effect/t1_summary.py --model smollm2-135m --parts mc3   # -> t1_smollm2_mc3.{md,json}
    python benchmarks/effect/effect_md.py                    # -> effect.md (file reads only, no model)
"""
from __future__ import annotations

import argparse
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"

# (summary file, the "## " section titles to keep by prefix; None: every section)
SOURCES = [
    ("skt_table2.md", None),
    ("t1_qwen_kqa4.md", None),
    ("t1_smollm2_mc3.md", None),
    ("t1_qwen_mc3.md", None),
    ("t1_qwen.md", ("TruthfulQA generation", "The pairs against the gold targets (v2-v4")),
]

HEADER = """# Effect of SK-Tuning and of Self-Eval-SKT alignment: the current tables

Written by `python benchmarks/effect/effect_md.py` from the summary files named in each section (commands in its
docstring; claims, dates and commands one row each in [README.md](README.md)). Earlier studies and their readings:
[archive/2026-12-07-effect-history.md](archive/2026-12-07-effect-history.md) (superseded).
"""

# At most 15 lines: what the tables below say. Every figure is in a table below.
READING = """## Reading

- SK-Tuning on qa_wikidata A/B rows lifts held-out P(True) AUROC (set (a)): SmolLM2 0.503 → 0.842 (3k rows) → 0.890
  (10k), Qwen 0.552 → 0.835 (3k); best no-model shortcut 0.559. On whole other tasks (b) it stays below the
  answer-frequency shortcut (0.660); on TruthfulQA (c) at most level with the longer-option shortcut (0.553).
- Knowledge QA, Qwen, DPO on the SK-tuned judge's pairs: strict 0.409 → 0.464, +5.5 [+3.1, +7.6] (lenient 0.422 → 0.477) on 604 held-out prompts
  (gold-ranked pairs +6.0; the base model's own P(True) −2.2; shortcut 0.285).
- TruthfulQA MC selection, SmolLM2 (balanced self-labels, lr 1e-3): SK-tuned judge +15.2 [+11.0, +19.5] vs its untuned
  judge −3.6 and random labels −1.0; gold labels +27.9. Qwen: −0.5 [−3.4, +2.1] (target +5 not met).
  Rows marked † were measured before per-question records were kept. Options are TruthfulQA's mc2 sets.
- Alignment on Wikidata facts leaves TruthfulQA generation where it was (every Δ within ±2 points, every interval
  includes 0).
- What these tables do not show (transfer, a control for supervision, answer style, long-form truth): README.md.
"""


def sections(md: str, keep: tuple[str, ...] | None) -> str:
    """A results file without its title line, its sections one heading level down; ``keep``: only the "## "
    sections whose title starts with one of these (the text before the first section is kept either way)."""
    out, on = [], True
    for ln in md.splitlines()[1:]:
        if ln.startswith("## "):
            on = keep is None or ln[3:].startswith(keep)
        if on:
            out.append(("#" + ln) if ln.startswith("## ") else ln)
    return "\n".join(out).strip("\n")


def build(results: Path = RESULTS) -> str:
    parts = [HEADER.rstrip("\n"), READING.rstrip("\n")]
    for name, keep in SOURCES:
        md = (results / name).read_text(encoding="utf-8")
        title = md.splitlines()[0].lstrip("# ").strip()
        parts.append(f"## {title} (`{name}`)\n\n" + sections(md, keep))
    return "\n\n".join(parts) + "\n"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.parse_args(argv)
    path = RESULTS / "effect.md"
    path.write_text(build(), encoding="utf-8")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
