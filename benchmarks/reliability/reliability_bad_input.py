"""Bad input, every command: run the generated cases of tests/fuzz_inputs.py and count what held.

    python benchmarks/reliability/reliability_bad_input.py
A case holds when the command exits 2 with exactly one line on stderr (no traceback, no warning) that names the
flag, the recipe key, or the file and line. Rewrites the "## Bad input" section of
benchmarks/results/reliability.md (other sections are left as they are).
"""
from __future__ import annotations

import collections
import os
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))  # the shared formatter
from selfalign.report.tables import BLANK, md_table  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "reliability.md"
SECTION = "## Bad input"
HEADER = """# Reliability

What happens to selfalign on input an adversarial user would give it, on crashes and on concurrent use.
Each section is written by the benchmark named in it; `make test` runs the same cases as tests.
"""


def run_all() -> tuple[list, dict, float]:
    sys.path.insert(0, str(ROOT / "tests"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from conftest import build_tiny
    from fuzz_inputs import cases, run_case, table_name

    work = Path(tempfile.mkdtemp(prefix="selfalign-fuzz-"))
    all_cases = cases(work / "cases", build_tiny(work / "tiny"))
    t0 = time.time()
    results = [(c, run_case(c).held(c)) for c in all_cases]
    return results, {"table_name": table_name}, time.time() - t0


def section(results, table_name, seconds: float) -> str:
    per = collections.OrderedDict()
    kinds = collections.Counter()
    held_kinds = collections.Counter()
    for c, held in results:
        row = per.setdefault(table_name(c), [0, 0, []])
        row[0] += 1
        row[1] += held
        kinds[c.kind] += 1
        held_kinds[c.kind] += held
        if not held:
            row[2].append(c)
    tried, held = len(results), sum(h for _, h in results)
    lines = [SECTION, "",
             f"`python benchmarks/reliability/reliability_bad_input.py` (the cases of `tests/fuzz_inputs.py`, run in-process through "
             f"`selfalign.cli.main`): **{held} of {tried} held** ({seconds:.0f} s). A case holds when the command "
             "exits 2 with exactly one line on stderr, no traceback, that names the flag, the recipe key (file, "
             "stage, key) or the file and line. Flag and recipe cases are generated from the declarations on the "
             "config fields (every type, choice, pattern and bound, just past it), file cases from the record each "
             "command reads. Before this work the issue counted 181 tried, 110 held.", ""]
    rows = [[f"`{name}`", n, h, "; ".join(sorted({f"{c.kind} ({c.what}): {c.known or 'unexplained'}" for c in bad}))
             or "-"] for name, (n, h, bad) in per.items()]
    lines += md_table(["command", "cases tried", "held", "not held"],
                      rows + [["**all**", f"**{tried}**", f"**{held}**", BLANK]], align="lrrl")
    lines += ["", *md_table(["kind of bad input", "tried", "held"], [[k, n, held_kinds[k]] for k, n in kinds.most_common()],
                           align="lrr")]
    lines += ["", "Decisions: `--limit 0` is an error (leave the flag out for no limit); a recipe boolean must be a YAML "
              "boolean (`trust_remote_code: \"false\"` is refused); `5e-5` in YAML is text, refused with a hint to "
              "write `5.0e-5`; an int is accepted where a float is expected."
              + (f" Not held: {tried - held} (see the table)." if held < tried else ""), ""]
    return "\n".join(lines)


def write(text: str) -> None:
    old = RESULTS.read_text() if RESULTS.exists() else HEADER
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    new = pattern.sub(lambda m: text + "\n", old) if pattern.search(old) else old.rstrip("\n") + "\n\n" + text + "\n"
    RESULTS.write_text(new)


def main() -> None:
    results, helpers, seconds = run_all()
    text = section(results, helpers["table_name"], seconds)
    write(text)
    print(text)


if __name__ == "__main__":
    main()
