import csv
import json

import numpy as np
import pytest

from selfalign.evals.calibrate import CalibrateConfig, output_paths, run_calibrate
from selfalign.data.mc import load_bigbench, load_mc, load_mc_jsonl, load_truthfulqa_mc
from selfalign.errors import InputError, SelfAlignError

MC = [
    {"question": "Q zero?", "mc1_targets": {"a": 1, "b": 0}, "mc2_targets": {"a": 1, "a2": 1, "b": 0}},
    {"question": "Q one?", "mc1_targets": {"c": 1, "d": 0}, "mc2_targets": {"c": 1, "d": 0, "e": 0, "f": 0}},
    {"question": "Q two?", "mc1_targets": {"g": 1, "h": 0}, "mc2_targets": {"g": 1, "h": 0}},
]


def _write_tqa(folder, with_csv=False):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "mc_task.json").write_text(json.dumps(MC))
    (folder / "splits.json").write_text(json.dumps({"fewshot_demos": [], "train": ["Q two?"], "valid": [],
                                                    "test": ["Q one?", "Q zero?"]}))
    if with_csv:  # CSV order differs from mc_task.json: ids follow the CSV
        with open(folder / "TruthfulQA.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["Type", "Category", "Question", "Best Answer", "Correct Answers", "Incorrect Answers"])
            for q in ("Q two?", "Q zero?", "Q one?"):
                w.writerow(["Adversarial", "Misc", q, "x", "x", "y"])
    return folder / "mc_task.json"


def test_truthfulqa_mc_uses_mc2_targets_and_splits(tmp_path):
    path = _write_tqa(tmp_path / "truthfulqa")
    rows = load_truthfulqa_mc(path, "all")
    assert [r["id"] for r in rows] == ["tqa-mc-000", "tqa-mc-001", "tqa-mc-002"]
    assert [len(r["options"]) for r in rows] == [3, 4, 2]
    assert [[o["label"] for o in r["options"]] for r in rows] == [[1, 1, 0], [1, 0, 0, 0], [1, 0]]
    assert rows[0]["options"][1] == {"text": "a2", "label": 1}
    test = load_truthfulqa_mc(path, "test")
    assert [r["question"] for r in test] == ["Q one?", "Q zero?"] and test[0]["split"] == "test"
    assert [r["question"] for r in load_truthfulqa_mc(path, "train")] == ["Q two?"]
    with pytest.raises(SelfAlignError, match="split"):
        load_truthfulqa_mc(path, "dev")


def test_truthfulqa_mc_ids_follow_the_csv(tmp_path, monkeypatch):
    _write_tqa(tmp_path / "truthfulqa", with_csv=True)
    monkeypatch.setenv("SELFALIGN_DATA", str(tmp_path))
    rows = load_mc("truthfulqa-mc", "test")
    assert [(r["id"], r["question"]) for r in rows] == [("tqa-002", "Q one?"), ("tqa-001", "Q zero?")]
    assert len(load_mc("truthfulqa-mc", None, limit=2)) == 2


def test_mc_jsonl_loader_and_errors(tmp_path):
    good = tmp_path / "mc.jsonl"
    good.write_text(json.dumps({"id": 1, "question": "q", "options": [{"text": "x", "label": 1},
                                                                       {"text": "y", "label": False}]}) + "\n\n"
                    + json.dumps({"id": "b", "question": "r", "options": [{"text": "z", "label": 0}]}) + "\n")
    rows = load_mc_jsonl(good)
    assert [r["id"] for r in rows] == ["1", "b"]
    assert rows[0]["options"] == [{"text": "x", "label": 1}, {"text": "y", "label": 0}]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": 1, "question": "q", "options": [{"text": "x", "label": 1}]}) + "\n\n"
                   + json.dumps({"id": 2, "question": "q", "options": [{"text": "x", "label": 2}]}) + "\n")
    with pytest.raises(InputError, match=r"bad.jsonl:3: option 0: 'label' must be 0 or 1"):
        load_mc_jsonl(bad)
    bad.write_text(json.dumps({"id": 1, "question": "q", "options": []}) + "\n")
    with pytest.raises(InputError, match=r"bad.jsonl:1: 'options' must be a non-empty list"):
        load_mc_jsonl(bad)
    bad.write_text(json.dumps({"id": 1, "question": "q", "options": [{"text": "x", "label": 1}]}) + "\n" +
                   json.dumps({"id": 1, "question": "q", "options": [{"text": "x", "label": 1}]}) + "\n")
    with pytest.raises(InputError, match=r"bad.jsonl:2: duplicate id '1'"):
        load_mc_jsonl(bad)
    with pytest.raises(SelfAlignError, match="--split"):
        load_mc(str(good), "test")


def test_bigbench_loader(tmp_path, monkeypatch):
    task = {"name": "fake", "task_prefix": "Decide.", "example_input_prefix": "\nStatement: ",
            "example_output_prefix": "\nPlausible? ",
            "examples": [{"input": "A dog barks", "target_scores": {"plausible": 1, "implausible": 0}},
                         {"input": "free text only", "target": "x"},
                         {"input": "A fish sings", "target_scores": {"plausible": 0.0, "implausible": 1.0,
                                                                      "maybe": 0.5}}]}
    (tmp_path / "bigbench" / "fake").mkdir(parents=True)
    (tmp_path / "bigbench" / "fake" / "task.json").write_text(json.dumps(task))
    rows = load_bigbench("fake", tmp_path / "bigbench")
    assert len(rows) == 3  # the generative example (a target, no target_scores) has targets and no options
    assert rows[0]["question"] == "Decide.\nStatement: A dog barks\nPlausible?"
    assert rows[0]["input"] == "A dog barks" and rows[0]["id"] == "fake-00000"
    assert [[o["label"] for o in r["options"]] for r in rows] == [[1, 0], [], [0, 1, 1]]
    assert rows[1]["targets"] == ["x"] and "targets" not in rows[0]
    assert rows[2]["id"] == "fake-00002"

    sub = tmp_path / "bigbench" / "multi" / "subtask_0"
    sub.mkdir(parents=True)
    (tmp_path / "bigbench" / "multi" / "task.json").write_text(json.dumps({"name": "multi"}))
    (sub / "task.json").write_text(json.dumps({"examples": [{"input": "Element 1?",
                                                             "target_scores": {"hydrogen": 1, "helium": 0}}]}))
    monkeypatch.setenv("SELFALIGN_DATA", str(tmp_path))
    rows = load_mc("bigbench:multi/subtask_0")
    assert rows[0]["question"] == "Element 1?" and rows[0]["id"] == "multi.subtask_0-00000"
    with pytest.raises(InputError, match="bigbench:multi/subtask_0"):
        load_mc("bigbench:multi")
    with pytest.raises(InputError, match="no such BIG-bench task"):
        load_mc("bigbench:nope")


QUESTIONS = [
    {"id": "q0", "question": "What is the capital of France?",
     "options": [{"text": "Paris", "label": 1}, {"text": "Lyon", "label": 0}, {"text": "Nice", "label": 0}]},
    {"id": "q1", "question": "What is two plus two?",
     "options": [{"text": "Four", "label": 1}, {"text": "Five", "label": 0}]},
    {"id": "q2", "question": "Which planet is largest?",
     "options": [{"text": "Jupiter", "label": 1}, {"text": "Mars", "label": 0}]},
]


def _recompute_selection(rows, score):
    by_q = {}
    for r in rows:
        by_q.setdefault(r["id"], []).append(r)
    return float(np.mean([max(qs, key=score)["label"] for qs in by_q.values()]))


def test_run_calibrate_end_to_end_and_resume(tiny_engine, tmp_path):
    from selfalign.selfeval.ptrue import p_true

    data = tmp_path / "mc.jsonl"
    data.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    out = tmp_path / "run" / "cal.json"
    cfg = CalibrateConfig(data=str(data), output=str(out), n_boot=50, batch_size=2)
    summary = run_calibrate(cfg, engine=tiny_engine)
    items, png = output_paths(out)
    assert items.name == "cal.items.jsonl" and png.name == "cal.reliability.png"
    assert summary["new_rows"] == 7 and summary["options"] == 7 and summary["questions"] == 3
    assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = json.loads(out.read_text())
    # evals.results' shape: set-level AUROC / ECE / Brier and per-question accuracies, all {value, ci_low, ci_high, n}
    from selfalign.evals.results import load_result
    summary_, qrows = load_result(out)
    assert summary_["task"] == "calibrate" and report["rows"] == "cal.rows.jsonl"
    assert list(report["metrics"]) == ["auroc", "ece", "brier", "selection_acc", "direct_acc", "direct_acc_norm"]
    assert all(set(m) == {"value", "ci_low", "ci_high", "n"} for m in report["metrics"].values())
    assert report["metrics"]["auroc"]["n"] == 7 and report["metrics"]["selection_acc"]["n"] == 3
    for k in ("ece_binning", "reliability_bins", "bootstrap", "meta", "items", "plot", "chance_accuracy",
              "mean_p_true", "mean_mass", "min_mass"):
        assert k in report
    assert [q["id"] for q in qrows] == ["q0", "q1", "q2"] and qrows[0]["n_options"] == 3
    assert report["ece_binning"]["n_bins"] == 10 and "equal-width" in report["ece_binning"]["rule"]
    from selfalign.store.paths import portable

    recorded = report["meta"]["config"]["data"]
    assert recorded == portable(str(data)) and not recorded.startswith("/")
    assert report["n_options"] == 7 and report["n_true_options"] == 3

    rows = [json.loads(line) for line in items.read_text().splitlines()]
    assert len(rows) == 7 and len({(r["id"], r["option_idx"]) for r in rows}) == 7
    # P(True) per row is what p_true gives for that (question, option) alone
    one = p_true(tiny_engine, [(QUESTIONS[1]["question"], "Five")])[0]
    row = next(r for r in rows if r["id"] == "q1" and r["option_idx"] == 1)
    assert row["p_true"] == pytest.approx(one.p_true, abs=1e-5)
    assert row["ll_chars"] == len(" Five") and row["ll_sum"] < 0
    # metrics recomputed independently from the rows
    y, p = [r["label"] for r in rows], [r["p_true"] for r in rows]
    from sklearn.metrics import brier_score_loss, roc_auc_score
    m = report["metrics"]
    assert m["auroc"]["value"] == pytest.approx(roc_auc_score(y, p))
    assert m["brier"]["value"] == pytest.approx(brier_score_loss(y, p))
    assert m["selection_acc"]["value"] == _recompute_selection(rows, lambda r: r["p_true"])
    assert m["direct_acc"]["value"] == _recompute_selection(rows, lambda r: r["ll_sum"])
    assert m["direct_acc_norm"]["value"] == _recompute_selection(rows, lambda r: r["ll_sum"] / r["ll_chars"])
    assert [q["selection_acc"] for q in qrows] == [
        float(max((r for r in rows if r["id"] == q), key=lambda r: r["p_true"])["label"]) for q in ("q0", "q1", "q2")]
    assert report["mean_p_true"] == pytest.approx(float(np.mean(p)))
    assert report["chance_accuracy"] == pytest.approx((1 / 3 + 1 / 2 + 1 / 2) / 3)
    e = m["ece"]
    assert e["ci_low"] <= e["value"] <= e["ci_high"]
    assert summary["auroc"] == m["auroc"]["value"] and summary["selection_accuracy"] == m["selection_acc"]["value"]

    # a rerun finds every row done; the report is the same
    assert run_calibrate(cfg, engine=tiny_engine)["new_rows"] == 0
    assert len(items.read_text().splitlines()) == 7
    again = json.loads(out.read_text())
    assert again["metrics"] == report["metrics"]

    # a run killed mid-write: 4 whole rows and half a row left; the rerun scores the other 3 only
    lines = items.read_text().splitlines(keepends=True)
    items.write_text("".join(lines[:4]) + lines[4][:20])
    assert run_calibrate(cfg, engine=tiny_engine)["new_rows"] == 3
    rows2 = [json.loads(line) for line in items.read_text().splitlines()]
    assert len(rows2) == 7 and len({(r["id"], r["option_idx"]) for r in rows2}) == 7
    assert json.loads(out.read_text())["metrics"]["auroc"]["value"] == pytest.approx(m["auroc"]["value"], abs=1e-5)

    # other P(True) settings on the same output: refuse rather than mix rows
    with pytest.raises(SelfAlignError, match="made with shots 0, not 1; use a new --output or --overwrite"):
        run_calibrate(CalibrateConfig(data=str(data), output=str(out), n_boot=0, shots=1), engine=tiny_engine)


def test_reliability_diagram_png(tmp_path):
    from selfalign.plots import reliability_diagram

    path = reliability_diagram([0, 1, 1, 0, 1], [0.1, 0.9, 0.7, 0.4, 1.0], tmp_path / "sub" / "r.png", "test")
    assert path.exists() and path.read_bytes()[:4] == b"\x89PNG"


def test_sk_rows_group_back_into_questions(tmp_path):
    import json

    from selfalign.data.mc import load_mc

    rows = [{"id": "q1", "task": "t", "question": "Q1?", "proposal": "yes", "label": 1},
            {"id": "q1", "task": "t", "question": "Q1?", "proposal": "no", "label": 0},
            {"id": "q1", "task": "t", "question": "Q1?", "proposal": "yes", "label": 1},
            {"id": "q1", "task": "u", "question": "Other?", "proposal": "x", "label": 0}]
    path = tmp_path / "sk.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    got = load_mc(f"sk:{path}")
    assert got == [{"id": "t/q1", "question": "Q1?", "options": [{"text": "yes", "label": 1}, {"text": "no", "label": 0}]},
                   {"id": "u/q1", "question": "Other?", "options": [{"text": "x", "label": 0}]}]


def test_old_calibrate_reports_upgrade_to_the_results_shape_for_the_benchmark_readers(tiny_engine, tmp_path):
    """benchmarks/effect/common.calibration_result: a report written before calibrate moved to evals/ (metrics under
    "ptrue", intervals as low/high) reads as the new result; a new result passes through unchanged."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks" / "effect"))
    from common import calibration_result

    data = tmp_path / "mc.jsonl"
    data.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    out = tmp_path / "cal.json"
    run_calibrate(CalibrateConfig(data=str(data), output=str(out), n_boot=20), engine=tiny_engine)
    new = json.loads(out.read_text())
    assert calibration_result(new) is new
    ci = {name: {"value": m["value"], "low": m["ci_low"], "high": m["ci_high"]} for name, m in new["metrics"].items()}
    old = {k: v for k, v in new.items() if k not in ("task", "set", "metrics", "rows", "mean_p_true", "mean_mass",
                                                     "min_mass")}
    old.update(ptrue={"auroc": ci["auroc"], "ece": ci["ece"], "brier": ci["brier"], "mean_p_true": new["mean_p_true"],
                      "mean_mass": new["mean_mass"], "min_mass": new["min_mass"]},
               selection_accuracy=ci["selection_acc"],
               direct_accuracy={"sum": ci["direct_acc"], "length_normalised": ci["direct_acc_norm"]})
    up = calibration_result(old)
    from selfalign.store.paths import portable

    assert up["metrics"] == new["metrics"] and up["task"] == "calibrate" and up["set"] == portable(str(data))
    assert {k: up[k] for k in new if k != "rows"} == {k: new[k] for k in new if k != "rows"}
