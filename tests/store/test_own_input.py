"""An output that is one of the command's own inputs is refused in one line, exit 2, and the input is left as it
was: mc-data (--data, --scores), sk-data (a source file), calibrate and judge-check (--data), report (a result file).
Each is refused before any model loads."""
from __future__ import annotations

import json

import pytest

from selfalign.cli import main

MC = {"id": "q1", "question": "Capital of France?", "options": [{"text": "Paris", "label": 1},
                                                                 {"text": "Lyon", "label": 0}]}
SCORES = {"id": "q1", "option_idx": 0, "question": "Capital of France?", "option": "Paris", "p_true": 0.7}
RESULT = {"task": "calibrate", "metrics": {"auroc": {"value": 0.5, "ci_low": 0.4, "ci_high": 0.6, "n": 2}}}


def _file(tmp_path, name, rows):
    path = tmp_path / name
    text = json.dumps(rows) if name.endswith(".json") else "".join(json.dumps(r) + "\n" for r in rows)
    path.write_text(text)
    return path


CASES = {
    "mc-data --output = --data": lambda t: (["mc-data", "--data", "{mc}", "--output", "{mc}"], "mc"),
    "mc-data --output = --scores": lambda t: (["mc-data", "--data", "{mc}", "--scores", "{scores}", "--output",
                                               "{scores}"], "scores"),
    "sk-data --output = its source": lambda t: (["sk-data", "--sources", "{mc}", "--output", "{mc}"], "mc"),
    "calibrate --output = --data": lambda t: (["calibrate", "--data", "{mcjson}", "--output", "{mcjson}"], "mcjson"),
    "judge-check --output = --data": lambda t: (["eval", "judge-check", "--data", "{mcjson}", "--output",
                                                 "{mcjson}"], "mcjson"),
    "report --output = a result": lambda t: (["report", "{result}", "--output", "{result}"], "result"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_an_output_that_is_an_input_is_refused_and_the_input_kept(case, tmp_path, capsys):
    files = {"mc": _file(tmp_path, "mc.jsonl", [MC]), "scores": _file(tmp_path, "scores.jsonl", [SCORES]),
             "mcjson": _file(tmp_path, "task.json", {"examples": [{"input": "Capital of France?",
                                                                    "target_scores": {"Paris": 1, "Lyon": 0}}]}),
             "result": _file(tmp_path, "r.json", RESULT)}
    before = {k: p.read_bytes() for k, p in files.items()}
    argv, which = CASES[case](tmp_path)
    argv = [a.format(**{k: str(p) for k, p in files.items()}) for a in argv]
    assert main(argv + ["--model", "/nonexistent-model"] if argv[0] not in ("report",) else argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is the input file" in err[0] and "Traceback" not in err[0]
    assert {k: p.read_bytes() for k, p in files.items()} == before


def test_a_result_nested_too_deep_is_one_line(tmp_path, capsys):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    assert main(["report", str(deep), "--output", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "deep.json" in err[0] and "nested deeper than 100" in err[0]


def test_a_result_with_a_lone_surrogate_is_one_line(tmp_path, capsys):
    bad = tmp_path / "r.json"
    bad.write_text(json.dumps(RESULT).replace('"calibrate"', '"\\ud800"'))
    assert main(["report", str(bad), "--output", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "lone surrogate" in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]
