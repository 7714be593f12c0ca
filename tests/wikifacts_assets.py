"""Hand-made qa_wikidata files for the wikifacts tests (tests/data/, tests/evals/)."""
from __future__ import annotations

import json
from pathlib import Path


def write_task(folder: Path, examples: list[tuple[str, object]]) -> Path:
    """A qa_wikidata-shaped task.json: {"examples": [{"input", "target"}]} under folder/qa_wikidata/."""
    path = folder / "qa_wikidata" / "task.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"examples": [{"input": i, "target": t} for i, t in examples]}, indent=1))
    return path


def lands(n: int = 30) -> list[tuple[str, object]]:
    """n made-up countries: three single-valued fields (capital, religion, continent) and a multi-valued one
    (borders, with seas: no land mentions another)."""
    ex = []
    for i in range(n):
        ex += [(f"The capital of Land{i} is", f"City{i}"), (f"The religion of Land{i} is", f"Faith{i % 4}"),
               (f"The continent of Land{i} is", ["Africa", "Asia", "Europe"][i % 3]),
               (f"Land{i} shares a border with", [f"Sea{i % 5}", f"Sea{(i + 1) % 5}"])]
    return ex
