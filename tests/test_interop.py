"""Interop: every evaluation also in lm-evaluation-harness's result shape; FActScore's own generation files."""
from __future__ import annotations

import json
import math

import pytest

from selfalign.evals.results import rows_path, save_result
from selfalign.store.io import write_jsonl_atomic


def test_results_export_in_lm_eval_shape(tmp_path):
    out = tmp_path / "truthfulqa-mc.json"
    rows = [{"id": f"tqa-{i}", "question": f"Q{i}?", "mc1": v, "mc2": v / 4, "answer": f"A{i}", "reference": "R"}
            for i, v in enumerate([1, 0, 0, 1, 1])]
    write_jsonl_atomic(rows_path(out), rows)
    save_result(out, "truthfulqa-mc", rows, ["mc1", "mc2"], {"model_info": {"model": "m"}}, n_boot=10)
    res = json.loads((tmp_path / "truthfulqa-mc.lm_eval.json").read_text())
    mc1 = res["results"]["truthfulqa_mc1"]
    # mean 3/5; stderr = sqrt(sum((x - .6)^2) / (n - 1) / n) = sqrt((3*.16 + 2*.36) / 4 / 5)
    assert mc1["acc,none"] == pytest.approx(0.6)
    assert mc1["acc_stderr,none"] == pytest.approx(math.sqrt((3 * 0.16 + 2 * 0.36) / 4 / 5))
    assert res["results"]["truthfulqa_mc2"]["acc,none"] == pytest.approx(0.15)
    assert res["n-samples"]["truthfulqa_mc1"] == {"original": 5, "effective": 5}
    samples = [json.loads(x) for x in (tmp_path / "truthfulqa-mc.samples_truthfulqa_mc1.jsonl").read_text().splitlines()]
    assert [s["acc"] for s in samples] == [1, 0, 0, 1, 1] and samples[0]["doc"] == {"id": "tqa-0", "question": "Q0?"}
    assert samples[0]["resps"] == [["A0"]] and samples[0]["target"] == "R"


def test_calibrate_exports_selection_and_direct_accuracy(tiny_engine, tmp_path):
    from selfalign.evals.calibrate import CalibrateConfig, run_calibrate

    mc = tmp_path / "mc.jsonl"
    mc.write_text("".join(json.dumps({"id": f"m{i}", "question": f"Q{i}?", "options": [
        {"text": "Paris", "label": 1}, {"text": "Rome", "label": 0}]}) + "\n" for i in range(4)))
    out = tmp_path / "cal.json"
    rep = run_calibrate(CalibrateConfig(data=str(mc), output=str(out), n_boot=10), engine=tiny_engine)
    res = json.loads((tmp_path / "cal.lm_eval.json").read_text())["results"]
    assert res["selfalign_calibrate_selection"]["acc,none"] == pytest.approx(rep["selection_accuracy"])
    assert res["selfalign_calibrate_direct"]["acc,none"] == pytest.approx(rep["direct_accuracy"])


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
