"""The lm-eval export: found and read by lm-evaluation-harness 0.4's own helpers (``lm_eval.utils``) when lm_eval is
installed, by the same rules written out here when it is not; every metric under its own name."""
import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest

from selfalign.evals.lm_eval_export import folder, sanitize_model_name
from selfalign.evals.results import rows_path, save_result
from selfalign.store.io import write_jsonl_atomic

try:
    from lm_eval import utils as LM  # not a dependency: used when installed
except ImportError:
    LM = None
# lm_eval/utils.py (0.4.13), as written there
OWN = SimpleNamespace(
    get_results_filenames=lambda fs: [f for f in fs if "/results_" in f and ".json" in f],
    get_sample_results_filenames=lambda fs: [f for f in fs if "/samples_" in f and ".json" in f],
    get_file_task_name=lambda fn: fn[fn.find("_") + 1: fn.rfind("_")],
    get_file_datetime=lambda fn: fn[fn.rfind("_") + 1:].replace(".jsonl", ""),
    sanitize_model_name=lambda name: __import__("re").sub(r"[\"<>:/|\\?*\[\]]+", "__", name))
OWN.get_latest_filename = lambda fs: max(fs, key=OWN.get_file_datetime)
H = LM or OWN


def read_export(output: Path, model: str):
    """(results dict, {task: sample rows}) as lm-eval's helpers find them in OUTPUT.lm_eval/<model>/."""
    model_dir = folder(output) / H.sanitize_model_name(model)
    files = [p.as_posix() for p in model_dir.iterdir() if p.is_file()]
    results = H.get_results_filenames(files)
    assert len(results) == 1, files
    latest = H.get_latest_filename(results)
    samples = {H.get_file_task_name(Path(f).name): [json.loads(x) for x in Path(f).read_text().splitlines()]
               for f in H.get_sample_results_filenames(files)}
    return json.loads(Path(latest).read_text()), samples


def check_schema(res: dict) -> None:
    """Every key lm-eval 0.4 writes and its readers use, with its type."""
    for key in ("results", "configs", "versions", "n-shot", "higher_is_better", "n-samples", "config", "git_hash",
                "date", "model_name", "model_name_sanitized", "group_subtasks"):
        assert key in res, key
    for task, metrics in res["results"].items():
        assert metrics["alias"] == task and isinstance(res["versions"][task], float)
        assert isinstance(res["n-shot"][task], int) and set(res["n-samples"][task]) == {"original", "effective"}
        cfg = res["configs"][task]
        assert cfg["task"] == task and cfg["output_type"] in ("generate_until", "multiple_choice")
        names = [m["metric"] for m in cfg["metric_list"]]
        assert sorted(names) == sorted(res["higher_is_better"][task])
        for m in names:
            assert f"{m},none" in metrics and f"{m}_stderr,none" in metrics
    assert isinstance(res["date"], float) and res["model_name_sanitized"] == OWN.sanitize_model_name(res["model_name"])


def stderr(xs):  # lm-eval's mean_stderr, by hand
    mu = sum(xs) / len(xs)
    return math.sqrt(sum((x - mu) ** 2 for x in xs) / (len(xs) - 1) / len(xs))


def test_knowledge_qa_export_each_metric_under_its_own_name(tmp_path):
    out = tmp_path / "kqa.json"
    rows = [{"id": f"q{i}", "question": f"Q{i}", "prompt": f"P{i}", "answer": a, "accuracy": acc, "length": ln,
             "abstain": 0.0} for i, (a, acc, ln) in enumerate([("Paris", 1.0, 1), ("Rome", 0.0, 1), ("a b", 1.0, 2),
                                                              ("x", 1.0, 1)])]
    write_jsonl_atomic(rows_path(out), rows)
    meta = {"config": {"model": "runs/demo/align/model", "adapter": None, "data": "bigbench:qa_wikidata",
                       "split": "heldout", "n_boot": 10, "batch_size": 4},
            "model_info": {"model": "runs/demo/align/model"}, "git_commit": "abc1234", "time": "t"}
    save_result(out, "knowledge-qa", rows, ["accuracy", "length", "abstain"], meta, n_boot=10)
    save_result(out, "knowledge-qa", rows, ["accuracy", "length", "abstain"], meta, n_boot=10)  # replaces it
    res, samples = read_export(out, "runs/demo/align/model")
    check_schema(res)
    assert sanitize_model_name("runs/demo/align/model") == H.sanitize_model_name("runs/demo/align/model")
    assert (folder(out) / "runs__demo__align__model").is_dir() and res["config"]["model"] == "runs/demo/align/model"
    assert res["config"]["model_args"] == "pretrained=runs/demo/align/model" and res["git_hash"] == "abc1234"
    r = res["results"]["selfalign_knowledge_qa"]
    assert r["accuracy,none"] == pytest.approx(0.75) and r["accuracy_stderr,none"] == pytest.approx(
        stderr([1, 0, 1, 1]))
    assert r["length,none"] == pytest.approx(1.25) and r["abstain,none"] == 0.0  # not labelled acc
    assert res["higher_is_better"]["selfalign_knowledge_qa"] == {"accuracy": True, "length": None, "abstain": None}
    assert res["versions"]["selfalign_knowledge_qa"] == 2.0 and res["n-shot"]["selfalign_knowledge_qa"] == 3
    assert res["configs"]["selfalign_knowledge_qa"]["dataset_path"] == "bigbench:qa_wikidata"
    s = samples["selfalign_knowledge_qa"]
    assert [x["accuracy"] for x in s] == [1.0, 0.0, 1.0, 1.0] and s[0]["resps"] == [["Paris"]]
    assert s[0]["arguments"]["gen_args_0"]["arg_0"] == "P0" and s[0]["metrics"] == ["accuracy", "length", "abstain"]
    if LM is not None:  # lm-eval's own table of it
        pytest.importorskip("pytablewriter")
        table = [ln.replace(" ", "") for ln in LM.make_table(res).splitlines()]
        assert "|selfalign_knowledge_qa|2|none|3|abstain||0.00|±|0.00|" in table
        assert "|||none|3|accuracy|↑|0.75|±|0.25|" in table and "|||none|3|length||1.25|±|0.25|" in table


def test_truthfulqa_mc_uses_the_harness_task_names(tmp_path):
    out = tmp_path / "truthfulqa-mc.json"
    rows = [{"id": f"tqa-{i}", "question": f"Q{i}?", "mc1": v, "mc2": v / 4, "selfeval_mc1": 1 - v, "answer": f"A{i}",
             "reference": "R"} for i, v in enumerate([1, 0, 0, 1, 1])]
    write_jsonl_atomic(rows_path(out), rows)
    save_result(out, "truthfulqa-mc", rows, ["mc1", "mc2", "selfeval_mc1"], {"model_info": {"model": "org/m"}},
                n_boot=10)
    res, samples = read_export(out, "org/m")
    check_schema(res)
    mc1 = res["results"]["truthfulqa_mc1"]
    # mean 3/5; stderr = sqrt(sum((x - .6)^2) / (n - 1) / n) = sqrt((3*.16 + 2*.36) / 4 / 5)
    assert mc1["acc,none"] == pytest.approx(0.6)
    assert mc1["acc_stderr,none"] == pytest.approx(math.sqrt((3 * 0.16 + 2 * 0.36) / 4 / 5))
    assert res["results"]["truthfulqa_mc2"]["acc,none"] == pytest.approx(0.15)
    assert res["results"]["selfalign_truthfulqa_mc"]["selfeval_mc1,none"] == pytest.approx(0.4)
    assert (res["versions"]["truthfulqa_mc1"], res["versions"]["truthfulqa_mc2"]) == (2.0, 3.0)
    assert res["n-samples"]["truthfulqa_mc1"] == {"original": 5, "effective": 5}
    assert [s["acc"] for s in samples["truthfulqa_mc1"]] == [1, 0, 0, 1, 1]
    assert samples["truthfulqa_mc1"][0]["doc"] == {"id": "tqa-0", "question": "Q0?"}
    assert samples["truthfulqa_mc1"][0]["target"] == "R"


def test_calibrate_exports_auroc_ece_brier_and_selection(tiny_engine, tmp_path):
    from selfalign.evals.calibrate import CalibrateConfig, run_calibrate

    mc = tmp_path / "mc.jsonl"
    mc.write_text("".join(json.dumps({"id": f"m{i}", "question": f"Q{i}?", "options": [
        {"text": "Paris", "label": 1}, {"text": "Rome", "label": 0}]}) + "\n" for i in range(4)))
    out = tmp_path / "cal.json"
    rep = run_calibrate(CalibrateConfig(data=str(mc), output=str(out), n_boot=10), engine=tiny_engine)
    result = json.loads(out.read_text())
    res, samples = read_export(out, result["meta"]["model_info"]["model"])
    check_schema(res)
    r = res["results"]["selfalign_calibrate"]
    for m in ("auroc", "ece", "brier", "selection_acc"):
        assert r[f"{m},none"] == pytest.approx(result["metrics"][m]["value"]), m
    assert r["selection_acc,none"] == pytest.approx(rep["selection_accuracy"])
    assert r["auroc_stderr,none"] == "N/A"  # a metric of the whole set: no per-item standard error
    assert res["higher_is_better"]["selfalign_calibrate"]["ece"] is False
    aggs = {m["metric"]: m["aggregation"] for m in res["configs"]["selfalign_calibrate"]["metric_list"]}
    assert aggs["auroc"] == "auroc" and aggs["selection_acc"] == "mean"
    assert len(samples["selfalign_calibrate"]) == 4
