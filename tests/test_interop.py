"""Interop: FActScore's own generation files (the lm-eval export: tests/evals/test_lm_eval_export.py)."""
from __future__ import annotations

import json

import pytest


def test_biogen_answers_accept_factscore_generation_files(tmp_path):
    from selfalign.evals.factscore import BioGenEvalConfig, _items

    f = tmp_path / "factscore_gen.jsonl"
    f.write_text(json.dumps({"topic": "Marta Ellingsen", "output": "Marta Ellingsen is a glaciologist.",
                             "cat": ["rare"]}) + "\n" + json.dumps({"topic": "Ann Lee", "response": "Ann Lee sings."}) + "\n")
    rows = _items(BioGenEvalConfig(answers=str(f), output=str(tmp_path / "o.json")))
    assert [(r["topic"], r["response"]) for r in rows] == [("Marta Ellingsen", "Marta Ellingsen is a glaciologist."),
                                                            ("Ann Lee", "Ann Lee sings.")]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"topic": "X"}) + "\n")
    from selfalign.errors import InputError

    with pytest.raises(InputError, match="bad.jsonl:1"):
        _items(BioGenEvalConfig(answers=str(bad), output=str(tmp_path / "o.json")))
