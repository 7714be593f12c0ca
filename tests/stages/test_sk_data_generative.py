"""Generative BIG-bench tasks (qa_wikidata-style: prompts with gold targets) make SK data: samples labelled by
target match, options that pair the gold answer with a same-relation distractor, bad task files named by file
and example, and a killed sampling run that loses and duplicates nothing."""
from __future__ import annotations

import json

import pytest

from selfalign.errors import InputError, SelfAlignError

@pytest.fixture
def gen_root(tmp_path, monkeypatch):
    root = tmp_path / "data"
    task = {"examples": [{"input": f"The capital of C{i} is", "target": [f"City{i}", f"Town{i}"]} for i in range(6)]
            + [{"input": "The language of Foo is", "target": "Fooish"},
               {"input": "The language of Bar is", "target": "Barish"}]}
    (root / "bigbench" / "geo").mkdir(parents=True)
    (root / "bigbench" / "geo" / "task.json").write_text(json.dumps(task))
    monkeypatch.setenv("SELFALIGN_DATA", str(root))
    return root


class Stub:
    info = {"model": "stub"}

    def __init__(self, answer):
        self.answer, self.prompts = answer, []

    def has_chat_template(self):
        return False

    def generate(self, prompts, cfg, seed):
        from selfalign.engines.base import Generation

        self.prompts += list(prompts)
        return [[Generation(self.answer(p, k), 1) for k in range(cfg.n)] for p in prompts]


def test_generative_samples_are_labelled_by_match(gen_root, tmp_path):
    from selfalign.stages.sk_data import SKDataConfig, run_sk_data

    def answer(prompt, k):  # sample 0: the first target; 1: the second, in other case; 2: wrong; 3: empty
        last = prompt.split("\n\n")[-1]
        if "language" in last:
            return ["Fooish" if "Foo" in last else "Barish", "x", "", ""][k]
        i = last.split("C")[1].split()[0]
        return [f"City{i}.", f"the town{i}", "Paris", " "][k]

    eng = Stub(answer)
    out = tmp_path / "g.jsonl"
    s = run_sk_data(SKDataConfig(sources=["bigbench:geo"], output=str(out), mode="samples", n=4,
                                 heldout_fraction=0.0, gen_shots=2), engine=eng)
    rows = [json.loads(x) for x in open(out)]
    capital = [(r["proposal"], r["label"]) for r in rows if r["question"] == "The capital of C3 is"]
    assert capital == [("City3.", 1), ("the town3", 1), ("Paris", 0)]  # the empty answer is dropped, not labelled
    assert s["unknown_answers"] == {"geo": 6 * 1 + 2 * 2}
    first = eng.prompts[0].split("\n\n")
    assert len(first) == 3 and first[-1] in {r["question"] for r in rows}
    assert all(d not in first[-1] for d in first[:-1])  # a demonstration is never the question itself
    assert all(d.rsplit(" ", 1)[1].startswith(("City", "Town", "Fooish", "Barish")) for d in first[:-1])


def test_generative_options_pair_gold_with_same_relation_distractor(gen_root, tmp_path):
    from selfalign.stages.sk_data import SKDataConfig, run_sk_data

    out = tmp_path / "o.jsonl"
    run_sk_data(SKDataConfig(sources=["bigbench:geo"], output=str(out), heldout_fraction=0.0))
    rows = [json.loads(x) for x in open(out)]
    by_q: dict = {}
    for r in rows:
        by_q.setdefault(r["question"], []).append((r["proposal"], r["label"]))
    assert len(by_q) == 8
    foo = dict(by_q["The language of Foo is"])
    assert foo["Fooish"] == 1 and foo.get("Barish") == 0  # the other language, not a city
    for i in range(6):
        (gold, g), (dis, d) = by_q[f"The capital of C{i} is"]
        assert (gold, g, d) == (f"City{i}", 1, 0) and dis.startswith("City") and dis != gold


@pytest.mark.parametrize("example, msg", [({"input": "x"}, "example 1: has neither 'target_scores'"),
                                          ({"input": "x", "target": ""}, "example 1: 'target' must be"),
                                          ({"input": "x", "target": []}, "example 1: 'target' must be")])
def test_bad_generative_task_names_file_and_example(example, msg, tmp_path, monkeypatch):
    from selfalign.data.mc import load_bigbench

    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "task.json").write_text(json.dumps({"examples": [{"input": "ok", "target": "y"}, example]}))
    with pytest.raises(InputError, match=f"bad/task.json: {msg}"):
        load_bigbench("bad", tmp_path)


def test_letter_that_is_not_one_token_is_a_clear_error(tiny_engine):
    with pytest.raises(SelfAlignError, match="not a single token"):
        tiny_engine.choice_ids("The proposed answer is:", "Zebra-crossing")


def test_calibrate_measures_the_judge_on_a_generative_task_file(tmp_path, tiny_engine):
    from selfalign.evals.calibrate import CalibrateConfig, output_paths, run_calibrate

    task = tmp_path / "mytask" / "task.json"
    task.parent.mkdir()
    task.write_text(json.dumps({"examples": [{"input": f"The capital of C{i} is", "target": f"City{i}"}
                                             for i in range(4)]}))
    out = tmp_path / "cal.json"
    s = run_calibrate(CalibrateConfig(data=str(task), output=str(out), samples=2, n_boot=0, direct=False,
                                      batch_size=4), engine=tiny_engine)
    samples = [json.loads(x) for x in open(tmp_path / "cal.samples.jsonl")]
    items = [json.loads(x) for x in open(output_paths(out)[0])]
    # every distinct sampled answer of a question is one option, labelled by match against the targets
    expect = {(r["id"], r["proposal"], r["label"]) for r in samples}
    assert {(r["id"].split("/")[-1], r["option"], r["label"]) for r in items} == expect
    assert s["options"] == len(items) > 0 and json.loads(out.read_text())["metrics"]["direct_acc"]["value"] is None


def test_killed_generative_samples_run_loses_and_duplicates_nothing(gen_root, tmp_path, tiny_model_dir, cli):
    out = tmp_path / "k.jsonl"
    args = cli.cmd("sk-data", "--sources", "bigbench:geo", "--mode", "samples", "--model", tiny_model_dir, "--n", 3,
                   "--max-new-tokens", 6, "--batch-size", 1, "--heldout-fraction", 0.5, "--device", "cpu",
                   "--output", out)
    cli.env = {**cli.env, "SELFALIGN_DATA": str(gen_root)}
    progress = tmp_path / "k.jsonl.progress.jsonl"
    cli.kill_when(args, lambda: progress.exists() and len(progress.read_text().splitlines()) >= 3)
    done_before = len(progress.read_text().splitlines())
    assert 3 <= done_before < 8
    r = cli.run(args)
    assert r.returncode == 0, r.stderr
    prog = [json.loads(x) for x in progress.read_text().splitlines()]
    assert sorted(p["id"] for p in prog) == sorted({p["id"] for p in prog}) and len(prog) == 8  # each question once
    rows = [json.loads(x) for f in (out, tmp_path / "k.heldout.jsonl") if f.exists() for x in f.read_text().splitlines()]
    keys = [(r["id"], r["sample_idx"]) for r in rows]
    assert len(keys) == len(set(keys))  # no row twice
    assert len(rows) == sum(p["kept"] for p in prog)  # every kept row of every finished question is on disk
