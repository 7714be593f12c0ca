"""benchmarks/effect/skt_summary.carry: a run measured earlier is kept only beside the same base measurement."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks" / "effect"))
import skt_summary as S  # noqa: E402


def _set(base, runs, n=10):
    return {"n_options": n, "n_questions": n // 2, "base": {"auroc": {"value": base}}, "runs": {k: {"auroc": {"value": v}} for k, v in runs.items()}}


def test_carry_keeps_only_runs_beside_the_same_base(capsys):
    prev = {"sets": {"a": _set(0.55, {"n1000-seed0": 0.74, "n1000-seed1": 0.70}), "b": _set(0.42, {"n1000-seed0": 0.53}),
                     "a-paper": _set(0.56, {"n1000-seed0": 0.71}),
                     "c": _set(0.29, {"n1000-seed0": 0.30})},
            "training": {"n1000-seed0": {"rows": 1000}, "n1000-seed1": None}}
    new = {"sets": {"a": _set(0.55, {"n1000-seed1": 0.71}), "c": _set(0.31, {}),
                    "a-paper": _set(0.56, {}, n=12)}, "training": {"n1000-seed1": None}}
    kept = S.carry(prev, new)
    assert kept == ["n1000-seed0"]
    a = new["sets"]["a"]["runs"]
    assert a["n1000-seed1"] == {"auroc": {"value": 0.71}}  # measured here: not replaced
    assert a["n1000-seed0"] == {"auroc": {"value": 0.74}, "kept": True}
    assert new["sets"]["b"]["runs"]["n1000-seed0"]["kept"] and new["sets"]["b"]["base"]["auroc"]["value"] == 0.42
    assert new["sets"]["c"]["runs"] == {}  # another base here: nothing mixed
    assert new["sets"]["a-paper"]["runs"] == {}  # the same AUROC on other options: nothing mixed either
    err = capsys.readouterr().err
    assert "not kept: (c)" in err and "not kept: (a-paper)" in err
    assert list(new["sets"]) == ["a", "b", "c", "a-paper"] and new["training"]["n1000-seed0"] == {"rows": 1000}


def test_plans_list_every_call_once_the_old_format_as_one_call():
    old = {"sk": {"epochs": 2}, "models": ["qwen"], "sizes": [1000], "seeds": [0, 2], "only": "seeds", "sets": ["b"]}
    here = {"sk": {"epochs": 2}, "invocations": [{"models": ["smollm2"], "sizes": [10000], "only": "curve", "at": "t"}]}
    merged = S.merge_plans(old, here)
    assert merged["invocations"] == [{"models": ["qwen"], "sizes": [1000], "seeds": [0, 2], "only": "seeds",
                                      "sets": ["b"]}, here["invocations"][0]]
    again = S.merge_plans(merged, here)  # the summary run twice on one machine: no call repeated
    assert again["invocations"] == merged["invocations"]
    assert S.merge_plans({}, {}) == {}


def test_study_appends_each_call_to_its_plan(tmp_path, monkeypatch):
    import argparse
    import json

    import skt_study
    monkeypatch.setattr(skt_study, "SKT", tmp_path)
    for only in ("data", "curve"):
        skt_study.record_invocation(argparse.Namespace(models=["m"], sizes=[1000], seeds=[0], only=only, sets=None))
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert [c["only"] for c in plan["invocations"]] == ["data", "curve"] and plan["sk"] == skt_study.SK


def test_a_base_kept_across_cpus_within_float_noise_but_not_on_other_options(capsys):
    old = {**_set(0.552229, {"n1000-seed0": 0.738}), "options_hash": "h1"}
    new = {"sets": {"a": {**_set(0.552233, {}), "options_hash": "h1"}}, "training": {}}
    assert S.carry({"sets": {"a": old}}, new) == ["n1000-seed0"]  # 4e-6 apart: another CPU's float32 kernels
    other = {"sets": {"a": {**_set(0.552229, {}), "options_hash": "h2"}}, "training": {}}
    assert S.carry({"sets": {"a": old}}, other) == [] and "not kept: (a)" in capsys.readouterr().err
    far = {"sets": {"a": {**_set(0.5524, {}), "options_hash": "h1"}}, "training": {}}
    assert S.carry({"sets": {"a": old}}, far) == []


def test_options_hash_changes_with_a_label_or_an_option():
    keys = [("a", "q1", 0), ("a", "q1", 1)]
    rows = {keys[0]: {"question": "Q", "option": "x", "label": 1}, keys[1]: {"question": "Q", "option": "y", "label": 0}}
    h = S.options_hash(keys, rows)
    assert h == S.options_hash(keys, {k: dict(v) for k, v in rows.items()})
    assert h != S.options_hash(keys, {**rows, keys[1]: {**rows[keys[1]], "label": 1}})
    assert h != S.options_hash(keys, {**rows, keys[1]: {**rows[keys[1]], "option": "z"}})


def test_calls_started_side_by_side_are_all_recorded(tmp_path, monkeypatch):
    import argparse
    import json
    import threading

    import skt_study
    monkeypatch.setattr(skt_study, "SKT", tmp_path)
    calls = [argparse.Namespace(models=[f"m{i}"], sizes=[1000], seeds=[0], only="base", sets=None) for i in range(8)]
    threads = [threading.Thread(target=skt_study.record_invocation, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = json.loads((tmp_path / "plan.json").read_text())["invocations"]
    assert sorted(c["models"][0] for c in got) == [f"m{i}" for i in range(8)]
