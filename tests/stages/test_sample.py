"""sample's input rows: a row whose question and prompt are both empty is one line naming the file and line, exit 2
(it was a KeyError), and nothing is written."""
from __future__ import annotations

import json

import pytest

from selfalign.cli import main


@pytest.mark.parametrize("row", [{"id": "b", "question": ""}, {"id": "b", "prompt": ""},
                                 {"id": "b", "question": " ", "prompt": ""}])
def test_an_empty_prompt_row_is_one_line(row, tmp_path, capsys):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"id": "a", "question": "Capital of France?"}) + "\n" + json.dumps(row) + "\n")
    out = tmp_path / "s.jsonl"
    assert main(["sample", "--input", str(path), "--output", str(out), "--model", "/nonexistent-model"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{path}:2" in err[0] and "non-empty 'question' or 'prompt'" in err[0]
    assert not out.exists()
