"""mc-data: self-labelled A/B rows from the judge's per-option P(True), bad input, resume, the recipe runner."""
from __future__ import annotations

import json

import pytest

from conftest import n_lines
from selfalign import prompts as P
from selfalign.errors import SelfAlignError
from selfalign.stages.mc_data import MCDataConfig, run_mc_data, scores_path, self_labels
from selfalign.stages.sk_tune import load_rows

QUESTIONS = [
    {"id": "q0", "question": "Capital of France?", "options": [{"text": "Paris", "label": 1},
                                                              {"text": "Lyon", "label": 0},
                                                              {"text": "Nice", "label": 0}]},
    {"id": "q1", "question": "Largest planet?", "options": [{"text": "Mars", "label": 0},
                                                           {"text": "Jupiter", "label": 1}]},
    {"id": "q2", "question": "Two plus two?", "options": [{"text": "Three", "label": 0}, {"text": "Four", "label": 1},
                                                         {"text": "Five", "label": 0}, {"text": "Six", "label": 0}]},
]
# hand-made judge scores (a calibrate items file): the judge prefers Lyon, Jupiter and Three/Four (a tie)
SCORES = {("q0", 0): 0.40, ("q0", 1): 0.70, ("q0", 2): 0.10, ("q1", 0): 0.20, ("q1", 1): 0.55,
          ("q2", 0): 0.60, ("q2", 1): 0.60, ("q2", 2): 0.50, ("q2", 3): 0.05}


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _read(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture
def mc_file(tmp_path):
    return _write(tmp_path / "mc.jsonl", QUESTIONS)


@pytest.fixture
def scores_file(tmp_path):
    return _write(tmp_path / "cal.items.jsonl", [{"id": i, "option_idx": k, "p_true": p, "label": 0}
                                                 for (i, k), p in SCORES.items()])


@pytest.mark.parametrize("rule,threshold,expected", [
    # top: one true option per question, the first of a tie (q2: Three), labels never read from the data
    ("top", 0.5, {"q0": [0, 1, 0], "q1": [0, 1], "q2": [1, 0, 0, 0]}),
    ("threshold", 0.5, {"q0": [0, 1, 0], "q1": [0, 1], "q2": [1, 1, 1, 0]}),
    ("threshold", 0.6, {"q0": [0, 1, 0], "q1": [0, 0], "q2": [1, 1, 0, 0]}),
])
def test_rows_built_exactly_from_hand_made_scores(tmp_path, mc_file, scores_file, rule, threshold, expected):
    out = tmp_path / "out" / "mc.jsonl"
    s = run_mc_data(MCDataConfig(data=str(mc_file), scores=str(scores_file), output=str(out), rule=rule,
                                 threshold=threshold, shots=2))
    rows = _read(out)
    assert [(r["id"], r["option_idx"]) for r in rows] == list(SCORES)  # every option once, in order
    for r in rows:
        q = next(q for q in QUESTIONS if q["id"] == r["id"])
        lab = expected[r["id"]][r["option_idx"]]
        assert r["label"] == lab and r["p_true"] == SCORES[(r["id"], r["option_idx"])]
        assert (r["chosen"], r["rejected"]) == (("A", "B") if lab else ("B", "A"))
        assert r["proposal"] == q["options"][r["option_idx"]]["text"] and r["question"] == q["question"]
        assert r["prompt"] == P.ptrue_prompt(q["question"], r["proposal"], shots=2)
        assert r["task"] == "mc" and r["split"] == "train" and r["mode"] == f"judge-{rule}"
    # the gold labels differ from the self-labels (Lyon is labelled true): they were not used ...
    assert rows[1]["label"] == 1 and QUESTIONS[0]["options"][1]["label"] == 0
    # ... except for the diagnostic agreement: recomputed here
    gold = [q["options"][k]["label"] for q in QUESTIONS for k in range(len(q["options"]))]
    assert s["label_agreement_with_gold"] == pytest.approx(
        sum(int(g == r["label"]) for g, r in zip(gold, rows)) / len(rows))
    assert s["counts"]["train"] == {"rows": 9, "true": sum(map(sum, expected.values())), "questions": 3,
                                       "copies": 0}
    assert (tmp_path / "out" / "mc.heldout.jsonl").read_text() == ""
    # the rows are what sk-tune reads
    assert [r["label"] for r in load_rows(str(out))] == [r["label"] for r in rows]


@pytest.mark.parametrize("rule,copies", [
    # top: q0 [0,1,0] -> Lyon once more; q1 [0,1] as it was; q2 [1,0,0,0] -> Three twice more
    ("top", [("q0", 1, 1), ("q2", 0, 1), ("q2", 0, 2)]),
    # threshold 0.5: q0 [0,1,0] -> Lyon once more; q1 [0,1]; q2 [1,1,1,0] -> the false option (Six) twice more
    ("threshold", [("q0", 1, 1), ("q2", 3, 1), ("q2", 3, 2)]),
])
def test_balance_repeats_the_minority_label(tmp_path, mc_file, scores_file, rule, copies):
    out = tmp_path / "out" / "rows.jsonl"
    plain = run_mc_data(MCDataConfig(data=str(mc_file), scores=str(scores_file), output=str(out), rule=rule))
    base = _read(out)
    s = run_mc_data(MCDataConfig(data=str(mc_file), scores=str(scores_file), output=str(out), rule=rule, balance=True))
    rows = _read(out)
    assert [r for r in rows if not r.get("copy")] == base  # the plain rows, unchanged and in order
    extra = [r for r in rows if r.get("copy")]
    assert [(r["id"], r["option_idx"], r["copy"]) for r in extra] == copies
    for r in extra:  # a copy is its option's row, label and prompt included
        assert {k: v for k, v in r.items() if k != "copy"} == next(
            b for b in base if (b["id"], b["option_idx"]) == (r["id"], r["option_idx"]))
    for q in QUESTIONS:  # every question with both labels now has as many of each
        labels = [r["label"] for r in rows if r["id"] == q["id"]]
        assert labels.count(1) == labels.count(0)
    assert s["counts"]["train"]["copies"] == len(copies) and s["balance"] is True
    assert s["label_agreement_with_gold"] == plain["label_agreement_with_gold"]  # copies are not counted twice


def test_self_labels_rules():
    assert self_labels([0.1, 0.9, 0.9], "top") == [0, 1, 0]
    assert self_labels([0.1, 0.5, 0.49], "threshold", 0.5) == [0, 1, 0]
    with pytest.raises(SelfAlignError, match="--rule"):
        self_labels([0.1], "gold")


def test_one_option_and_missing_scores_name_file_and_line(tmp_path, mc_file, scores_file, cli):
    bad = _write(tmp_path / "bad.jsonl", [QUESTIONS[0], {"id": "solo", "question": "Only one?",
                                                          "options": [{"text": "yes"}]}])
    with pytest.raises(SelfAlignError, match=r"bad\.jsonl:2: question 'solo' has only 1 option"):
        run_mc_data(MCDataConfig(data=str(bad), scores=str(scores_file), output=str(tmp_path / "o.jsonl")))
    few = _write(tmp_path / "few.items.jsonl", [{"id": i, "option_idx": k, "p_true": p}
                                                for (i, k), p in SCORES.items() if i != "q1"])
    with pytest.raises(SelfAlignError, match=r"mc\.jsonl:2: question 'q1' has no judge scores in .*few\.items"):
        run_mc_data(MCDataConfig(data=str(mc_file), scores=str(few), output=str(tmp_path / "o.jsonl")))
    part = _write(tmp_path / "part.items.jsonl", [{"id": i, "option_idx": k, "p_true": p}
                                                  for (i, k), p in SCORES.items() if (i, k) != ("q2", 3)])
    with pytest.raises(SelfAlignError, match=r"mc\.jsonl:3: question 'q2' has no judge score for option\(s\) \[3\]"):
        run_mc_data(MCDataConfig(data=str(mc_file), scores=str(part), output=str(tmp_path / "o.jsonl")))
    r = cli.run(cli.cmd("mc-data", "--data", bad, "--scores", scores_file, "--output", tmp_path / "o.jsonl"))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "bad.jsonl:2:" in r.stderr
    badp = _write(tmp_path / "badp.items.jsonl", [{"id": "q0", "option_idx": 0, "p_true": 1.5}])
    with pytest.raises(SelfAlignError, match=r"badp\.items\.jsonl:1: p_true must be a number in \[0, 1\]"):
        run_mc_data(MCDataConfig(data=str(mc_file), scores=str(badp), output=str(tmp_path / "o.jsonl")))


def test_fresh_judge_pass_matches_p_true(tmp_path, mc_file, tiny_engine):
    from selfalign.selfeval.ptrue import p_true

    out = tmp_path / "rows.jsonl"  # not the questions file, mc.jsonl: an output may not be one of its inputs
    run_mc_data(MCDataConfig(data=str(mc_file), output=str(out), heldout_fraction=0.5, batch_size=2),
                engine=tiny_engine)
    scored = _read(scores_path(out))
    assert len(scored) == 9 and "label" not in scored[0]
    want = p_true(tiny_engine, [(q["question"], o["text"]) for q in QUESTIONS for o in q["options"]])
    assert [r["p_true"] for r in scored] == pytest.approx([x.p_true for x in want], abs=1e-5)
    rows = _read(out) + _read(tmp_path / "rows.heldout.jsonl")
    assert len(rows) == 9 and {r["split"] for r in rows} <= {"train", "heldout"}
    for qid in ("q0", "q1", "q2"):  # a question's rows share one split; top rule: one true option each
        mine = [r for r in rows if r["id"] == qid]
        assert len({r["split"] for r in mine}) == 1 and sum(r["label"] for r in mine) == 1
        best = max(mine, key=lambda r: r["p_true"])
        assert best["label"] == 1


def test_kill_during_judge_pass_then_rerun(tmp_path, tiny_model_dir, cli):
    qs = [{"id": f"m{i}", "question": f"Question number {i}?", "options": [{"text": f"answer {i} {k}"}
                                                                           for k in range(4)]} for i in range(40)]
    data = _write(tmp_path / "many.jsonl", qs)
    out = tmp_path / "run" / "mc.jsonl"
    cmd = cli.cmd("mc-data", "--data", data, "--output", out, "--model", tiny_model_dir, "--device", "cpu",
                  "--batch-size", "1")
    sp = scores_path(out)
    cli.kill_when(cmd, lambda: n_lines(sp) >= 8)
    before = sp.read_text().splitlines()
    assert 8 <= len(before) < 160 and not out.exists()
    r = cli.run(cmd)
    assert r.returncode == 0, r.stderr[-2000:]
    after = sp.read_text().splitlines()
    keys = [(json.loads(x)["id"], json.loads(x)["option_idx"]) for x in after]
    assert len(keys) == len(set(keys)) == 160 and after[:len(before)] == before
    assert n_lines(out) == 160


def test_recipe_runs_mc_data_then_mc_tune_then_eval(tmp_path, tiny_model_dir, mc_file):
    from selfalign.run.pipeline import RunConfig, run_recipe

    recipe = tmp_path / "mc.yaml"
    recipe.write_text(f"name: mc\nmodel: {tiny_model_dir}\ndevice: cpu\nseed: 0\n"
                      f"mc-data: {{data: {mc_file}, heldout_fraction: 0.5}}\n"
                      "mc-tune: {max_steps: 2, batch_size: 4, learning_rate: 0.01}\n"
                      f"eval: {{tasks: [calibrate], models: [base, mc-aligned], calibrate: {{data: {mc_file}, n_boot: 10}}}}\n")
    run = tmp_path / "run"
    s = run_recipe(RunConfig(recipe=str(recipe), output=str(run)))
    assert list(s["stages"]) == ["mc-data", "mc-tune", "eval/base/calibrate", "eval/mc-aligned/calibrate"]
    st = json.loads((run / "mc-tune" / "stage.json").read_text())
    assert st["config"]["data"] == str(run / "mc-data" / "mc.jsonl") and st["result"]["steps"] == 2
    ev = json.loads((run / "eval" / "mc-aligned" / "calibrate.stage.json").read_text())
    assert ev["config"]["model"] == str(run / "mc-tune" / "model")
    assert set(run_recipe(RunConfig(recipe=str(recipe), output=str(run)))["stages"].values()) == {"skip"}
