"""Every shipped recipe plans the same stage hashes as it did before the package was re-laid (2026-12-07): moving a
module must not redo anyone's finished stages. The hashes were recorded with ``selfalign run RECIPE --dry-run``."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from selfalign.cli import main

ROOT = Path(__file__).resolve().parents[2]
RECORDED = json.loads((ROOT / "tests/assets/recipe_stage_hashes.json").read_text())
LINE = re.compile(r"^  (\S+)\s+([0-9a-f]{16})\s+\w+$")


def test_every_shipped_recipe_is_recorded():
    shipped = sorted(p.stem for p in (ROOT / "selfalign/recipes").glob("*.yaml"))
    assert shipped == sorted(RECORDED)


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_stage_hashes_unchanged(name, capsys, monkeypatch):
    if not (ROOT.parent / "shared/data").is_dir():
        pytest.skip("the shipped recipes read ../shared/data")
    monkeypatch.chdir(ROOT)
    code = main(["run", f"recipes/{name}.yaml", "--dry-run"])
    out, err = capsys.readouterr()
    # the plan is printed before the inputs are checked: FActScore's Wikipedia dump is the user's to download, and
    # to give on the command line (a recipe reads files in the run folder or the data root only: run.confine)
    assert code == 0 or (name == "paper-biogen-llama2-7b" and "eval.biogen.knowledge=PATH" in err), err
    planned = {m.group(1): m.group(2) for m in map(LINE.match, out.splitlines()) if m}
    assert planned == RECORDED[name]
