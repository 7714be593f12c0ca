"""Knowledge QA: the hash split (no held-out question in training), the oracle (gold-match) and its plan-time
check, and `selfalign eval knowledge-qa` (rows, metrics recomputed, resume)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from selfalign.errors import SelfAlignError
from selfalign.data.splits import split_of


def _read(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture
def gen_root(tmp_path, monkeypatch):
    """A data root with a generative task 'facts': 400 statements, one of them twice under two ids."""
    ex = [{"input": f"The capital of land {i} is", "target": f"City{i}"} for i in range(400)]
    ex.append({"input": "The capital of land 7 is", "target": ["Town7"]})  # a duplicate text, another target
    (tmp_path / "data" / "bigbench" / "facts").mkdir(parents=True)
    (tmp_path / "data" / "bigbench" / "facts" / "task.json").write_text(json.dumps({"examples": ex}))
    monkeypatch.setenv("SELFALIGN_DATA", str(tmp_path / "data"))
    return tmp_path / "data"


def _check_split(task):
    from selfalign.data import load_prompts
    from selfalign.data.knowledge_qa import HELDOUT_FRACTION, SPLIT_SEED, questions

    train, held = load_prompts(f"bigbench:{task}", "train"), load_prompts(f"bigbench:{task}", "heldout")
    tq, hq = {r["question"] for r in train}, {r["question"] for r in held}
    assert not tq & hq, "a held-out question is also a training question"
    assert len(tq) == len(train) and len(hq) == len(held)  # one row per distinct question
    train_ids = {r["id"] for r in train}
    for r in train + held:  # demonstrations are training questions only, never the question itself
        assert set(r["demo_ids"]) <= train_ids and r["id"] not in r["demo_ids"]
        assert r["prompt"].endswith(r["question"])
    for r in held:
        assert not any(d in r["prompt"] for d in hq - {r["question"]})
    # every id of a held-out question is held out by sk-data's own split (same seed, fraction <= its fraction)
    for q in questions(task):
        if q["split"] == "heldout":
            assert all(split_of(SPLIT_SEED, task, i, HELDOUT_FRACTION) == "heldout" for i in q["ids"])
            assert all(split_of(SPLIT_SEED, task, i, 0.2) == "heldout" for i in q["ids"])
    return train, held


def test_heldout_split_has_no_training_question(gen_root):
    from selfalign.data.knowledge_qa import questions

    train, held = _check_split("facts")
    assert len(train) + len(held) == 400 and held
    dup = next(q for q in questions("facts") if q["question"] == "The capital of land 7 is")
    assert dup["targets"] == ["City7", "Town7"] and len(dup["ids"]) == 2


def test_real_qa_wikidata_has_500_heldout_prompts():
    from selfalign.data import data_root

    root = data_root()
    if root is None or not (root / "bigbench" / "qa_wikidata" / "task.json").exists():
        pytest.skip("no shared data")
    train, held = _check_split("qa_wikidata")
    assert len(held) >= 500 and len(train) > 9000


def _samples(tmp_path):
    rows = []
    answers = {"a": (["Paris"], ["Paris", "Lyon", "paris.", "Nice"]), "b": (["Jupiter"], ["Mars", "Venus", "Mars", ""])}
    for qid, (targets, outs) in answers.items():
        for k, a in enumerate(outs):
            rows.append({"id": qid, "sample_idx": k, "question": f"Q {qid}", "prompt": f"P {qid}", "response": a,
                         "targets": targets})
    path = tmp_path / "samples.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_oracle_ranks_by_gold_match(tmp_path):
    from selfalign.stages.pairs import build_pairs
    from selfalign.stages.score import ScoreConfig, run_score

    out = tmp_path / "scores.jsonl"
    s = run_score(ScoreConfig(input=str(_samples(tmp_path)), output=str(out), method="gold-match"))
    assert s["new_rows"] == 8
    scored = _read(out)
    assert [r["score"] for r in scored] == [1, 0, 1, 0, 0, 0, 0, None]  # "" is no answer: unscored
    pairs, rep = build_pairs(scored, strategy="all")
    # the answers continue their plain prompt ("P a" -> " Paris", see pairs.continuation)
    assert pairs and all(p["chosen"] in (" Paris", " paris.") and p["rejected"] in (" Lyon", " Nice") for p in pairs)
    assert {(p["chosen"], p["rejected"]) for p in pairs} == {(" " + c, " " + r) for c in ("Paris", "paris.")
                                                             for r in ("Lyon", "Nice")}
    assert "b" in rep["no_pair_ids"]  # every answer wrong: nothing to prefer
    # without targets: one line naming the file and line
    bad = tmp_path / "bad.jsonl"
    rows = _read(_samples(tmp_path))
    rows[2].pop("targets")
    bad.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(SelfAlignError, match=r"bad\.jsonl:3: --method gold-match needs gold 'targets'"):
        run_score(ScoreConfig(input=str(bad), output=str(tmp_path / "s2.jsonl"), method="gold-match"))


def _recipe(tmp_path, source, method="gold-match"):
    path = tmp_path / "r.yaml"
    path.write_text(f"name: k\nmodel: m\nsample: {{input: {json.dumps(source)}, n: 2}}\nscore: {{method: {method}}}\n"
                    "pairs: {strategy: split}\n")
    return path


def test_oracle_without_targets_is_a_plan_time_error(tmp_path, gen_root, prompts_file):
    from selfalign.run.pipeline import RunConfig, run_recipe

    for src in ("builtin", str(prompts_file)):
        with pytest.raises(SelfAlignError, match="gold-match ranks samples by their gold targets"):
            run_recipe(RunConfig(recipe=str(_recipe(tmp_path, src)), output=str(tmp_path / "run"), dry_run=True))
    assert not (tmp_path / "run").exists()
    plan = run_recipe(RunConfig(recipe=str(_recipe(tmp_path, "bigbench:facts")), output=str(tmp_path / "run"),
                                dry_run=True))["plan"]
    assert plan == {"sample": "run", "score": "run", "pairs": "run"}
    run_recipe(RunConfig(recipe=str(_recipe(tmp_path, "builtin", "ptrue")), output=str(tmp_path / "r2"), dry_run=True))


def test_eval_knowledge_qa_rows_metrics_and_resume(tmp_path, gen_root, tiny_engine):
    from selfalign.data.knowledge_qa import load_knowledge_qa
    from selfalign.evals.knowledge_qa import KnowledgeQAConfig, abstains, run_knowledge_qa, score_answer
    from selfalign.selfeval.ptrue import p_true

    assert score_answer("City3.", ["City3"]) == {"accuracy": 1, "accuracy_lenient": 1, "answered_accuracy": 1,
                                                 "abstain": 0, "length": 1}
    assert score_answer("I don't know", ["City3"])["abstain"] == 1 and abstains("") and not abstains("Nonesuch")
    out = tmp_path / "ev" / "kq.json"
    cfg = KnowledgeQAConfig(output=str(out), data="bigbench:facts", limit=6, max_new_tokens=4, n_boot=20,
                            batch_size=4)
    s = run_knowledge_qa(cfg, engine=tiny_engine)
    rows = _read(tmp_path / "ev" / "kq.rows.jsonl")
    held = load_knowledge_qa("facts", "heldout")[:6]
    assert [r["id"] for r in rows] == [h["id"] for h in held] and s["prompts"] == 6
    for r in rows:
        assert {k: r[k] for k in ("accuracy", "accuracy_lenient", "answered_accuracy", "abstain", "length")} == score_answer(
            r["answer"], r["targets"])
    live = [r for r in rows if r["answer"].strip()]
    want = p_true(tiny_engine, [(r["question"], r["answer"]) for r in live])
    assert [r["selfeval"] for r in live] == pytest.approx([x.p_true for x in want], abs=1e-5)
    summary = json.loads(out.read_text())
    assert summary["metrics"]["accuracy"]["value"] == pytest.approx(sum(r["accuracy"] for r in rows) / 6)
    assert summary["metrics"]["length"]["value"] == pytest.approx(sum(r["length"] for r in rows) / 6)
    assert set(summary["metrics"]) == {"accuracy", "accuracy_lenient", "answered_accuracy", "abstain", "length",
                                       "selfeval"}
    # a run killed mid-write: the rerun answers only what is missing, and gives the same rows
    rp = tmp_path / "ev" / "kq.rows.jsonl"
    lines = rp.read_text().splitlines(keepends=True)
    rp.write_text("".join(lines[:3]) + lines[3][:15])
    assert run_knowledge_qa(cfg, engine=tiny_engine)["new_rows"] == 3
    assert _read(rp) == rows


def test_eval_knowledge_qa_answers_are_the_plain_paths(tmp_path, gen_root, tiny_engine):
    """Greedy evaluation with prefix reuse and early-ending rows (the default) writes the rows of the plain path
    (transformers' generate on every prompt in full)."""
    from selfalign.engines.hf import HFEngine
    from selfalign.evals.knowledge_qa import KnowledgeQAConfig, run_knowledge_qa

    plain = HFEngine(tiny_engine.model, tiny_engine.tok, prefix_cache=False)
    rows = {}
    for name, eng in (("cached", tiny_engine), ("plain", plain)):
        cfg = KnowledgeQAConfig(output=str(tmp_path / name / "kq.json"), data="bigbench:facts", limit=12,
                                max_new_tokens=6, n_boot=0, batch_size=5, selfeval=False)
        run_knowledge_qa(cfg, engine=eng)
        rows[name] = [{k: r[k] for k in ("id", "answer", "n_tokens")} for r in _read(tmp_path / name / "kq.rows.jsonl")]
    assert rows["cached"] == rows["plain"] and len(rows["plain"]) == 12


def test_demo_recipe_summary_has_both_measures_and_a_verdict(tmp_path, gen_root, tiny_model_dir):
    """recipes/demo.yaml at toy size (tiny model, a fake generative task): summary.md shows (i) the mean Self-Eval
    score of the greedy answers and (ii) accuracy against the gold answers, base vs aligned, with intervals and
    one sentence each on whether they moved; benchmarks/align/demo_summary.py reads the same run."""
    import sys

    import yaml

    from selfalign.run.pipeline import RunConfig, run_recipe
    from selfalign.run.recipe import load_recipe

    RECIPES_DIR = Path(__file__).resolve().parents[2] / "recipes"
    r = load_recipe(str(RECIPES_DIR / "demo.yaml"))
    assert r["eval"]["tasks"] == ["knowledge-qa"] and r["eval"]["knowledge-qa"]["split"] == "heldout"
    assert r["score"]["model"] == r["eval"]["knowledge-qa"]["verifier"] == "smollm2-135m-skt"  # one judge for all
    r.update(model=tiny_model_dir, device="cpu")
    r.pop("output")  # a recipe's run folder lies below the current folder; this one is given on the command line
    r["score"]["model"] = r["eval"]["knowledge-qa"]["verifier"] = tiny_model_dir  # the judge, at toy size
    r["sample"].update(input="bigbench:facts", limit=6, n=2, max_new_tokens=4)
    r["align"].update(max_steps=2, batch_size=2)
    r["eval"]["knowledge-qa"].update(data="bigbench:facts", limit=6, n_boot=20)
    path = tmp_path / "demo.yaml"
    path.write_text(yaml.safe_dump(r))
    run_recipe(RunConfig(recipe=str(path), output=str(tmp_path / "runs" / "demo")))
    run = tmp_path / "runs" / "demo"
    for label in ("base", "aligned"):  # one judge for both: the recipe's
        st = json.loads((run / "eval" / label / "knowledge-qa.stage.json").read_text())
        assert st["config"]["verifier"] == tiny_model_dir
    md = (run / "summary.md").read_text()
    for metric in ("accuracy", "selfeval"):
        line = next(ln for ln in md.splitlines() if ln.startswith(f"| knowledge-qa | {metric} |"))
        assert line.count("[") >= 3  # base and aligned with intervals, and the paired difference
    assert "**Factuality " in md and "accuracy against the gold answers" in md
    assert "**Self-Eval " in md and "paired over 6 held-out prompts" in md
    sys.path.insert(0, str(RECIPES_DIR.parent / "benchmarks" / "align"))
    from demo_summary import tables

    lines, out = tables(tmp_path / "runs")
    assert set(out["knowledge-qa"]) == {"base", "Self-Eval-SKT"}  # no demo-ptrue / demo-skt run: left out
    # every land has its own capital: the relation's commonest training answer is never a held-out land's
    assert out["shortcuts"]["knowledge-qa"]["relation_majority_accuracy"]["value"] == 0.0
    assert any("Factuality" in ln for ln in lines)
    # the prompts the DPO setting was not chosen on: all but the first CHOSEN_ON held-out prompts, as --limit takes
    # them; their paired difference is the plain mean difference over those prompts' rows
    import demo_summary

    from selfalign.data.knowledge_qa import load_knowledge_qa
    from selfalign.evals.results import load_result

    monkeypatch_chosen = demo_summary.CHOSEN_ON
    try:
        demo_summary.CHOSEN_ON = 2
        _, out = demo_summary.tables(tmp_path / "runs")
    finally:
        demo_summary.CHOSEN_ON = monkeypatch_chosen
    first = {str(q["id"]) for q in load_knowledge_qa("facts", "heldout")[:2]}
    rows = {lab: {str(r["id"]): r["accuracy"] for r in load_result(run / "eval" / lab / "knowledge-qa.json")[1]}
            for lab in ("base", "aligned")}
    fresh = [i for i in rows["base"] if i not in first]
    d = out["knowledge-qa"]["Self-Eval-SKT"]["diff_vs_base_fresh"]["accuracy"]
    assert d["n"] == len(fresh) == 4
    assert d["diff"] == pytest.approx(sum(rows["aligned"][i] - rows["base"][i] for i in fresh) / 4)


def test_relation_majority_shortcut_answers_each_relation_with_its_commonest_training_answer(tmp_path, monkeypatch):
    """Two relations: capitals (training answers mostly 'Rome') and genres (mostly 'jazz'); a held-out prompt is
    right exactly when its gold answer is its relation's commonest training answer."""
    from selfalign.data.knowledge_qa import load_knowledge_qa
    from selfalign.evals.knowledge_qa import relation_majority

    ex = [{"input": f"The capital of land {i} is", "target": "Rome" if i % 3 else f"City{i}"} for i in range(150)]
    ex += [{"input": f"The genre of band {i} is", "target": "jazz" if i % 4 else "rock"} for i in range(150)]
    (tmp_path / "bigbench" / "two").mkdir(parents=True)
    (tmp_path / "bigbench" / "two" / "task.json").write_text(json.dumps({"examples": ex}))
    monkeypatch.setenv("SELFALIGN_DATA", str(tmp_path))
    held = load_knowledge_qa("two", "heldout")
    want = [float(q["targets"][0] == ("Rome" if "capital" in q["question"] else "jazz")) for q in held]
    got = relation_majority("two", n_boot=50)
    assert got["n"] == len(held) > 10 and got["value"] == pytest.approx(sum(want) / len(want))
    five = relation_majority("two", limit=5, n_boot=0)
    assert five["n"] == 5 and five["value"] == pytest.approx(sum(want[:5]) / 5)


def test_an_empty_split_is_an_error_not_null_metrics(tmp_path, monkeypatch):
    from selfalign.data import knowledge_qa as kq
    from selfalign.errors import SelfAlignError
    from selfalign.evals.knowledge_qa import KnowledgeQAConfig, run_knowledge_qa

    monkeypatch.setattr(kq, "load_knowledge_qa", lambda task, split, **kw: [])
    with pytest.raises(SelfAlignError, match="no prompts in split 'heldout'"):
        run_knowledge_qa(KnowledgeQAConfig(output=str(tmp_path / "r.json"), split="heldout"))
    assert not (tmp_path / "r.json").exists()


@pytest.mark.parametrize("answer, strict, lenient", [
    ("Paris.", 1, 1), ("Paris, the capital", 1, 1), ("the Paris", 1, 1), ("Paris. It is large.", 1, 1),
    ("Paris or Lyon", 0, 1), ("Paris, Lyon", 0, 1), ("Lyon or Paris", 0, 1), ("Paris/Lyon", 0, 1),
    ("Paris and Lyon", 0, 1), ("Paris city", 0, 1), ("Lyon", 0, 0), ("I don't know", 0, 0),
])
def test_strict_accuracy_is_the_headline_and_lenient_stays_beside_it(answer, strict, lenient):
    from selfalign.evals.knowledge_qa import score_answer

    got = score_answer(answer, ["Paris"])
    assert (got["accuracy"], got["accuracy_lenient"]) == (strict, lenient)


def test_strict_match_takes_the_longest_gold_start():
    from selfalign.text import strict_match

    assert strict_match("Trinidad and Tobago", ["Trinidad and Tobago"]) == 1
    assert strict_match("Trinidad and Tobago", ["Trinidad"]) == 0  # names Tobago too
    assert strict_match("St. Louis", ["St. Louis"]) == 1 and strict_match("Washington, D.C.", ["Washington, D.C."]) == 1
    assert strict_match("  ", ["Paris"]) is None


def test_a_result_from_before_strict_match_is_read_as_lenient(tmp_path):
    """A knowledge-qa result written before 2026-12-07 (accuracy = the lenient match, no accuracy_lenient): its
    accuracy is read as accuracy_lenient and the strict accuracy is recomputed from its rows; the summary and its
    verdicts work on it."""
    from selfalign.evals.results import load_result
    from selfalign.run.summary import verdicts

    rows = [{"id": "a", "answer": "Paris or Lyon", "targets": ["Paris"], "accuracy": 1, "answered_accuracy": 1,
             "abstain": 0, "length": 3}, {"id": "b", "answer": "Rome.", "targets": ["Rome"], "accuracy": 1,
                                          "answered_accuracy": 1, "abstain": 0, "length": 1}]
    (tmp_path / "kq.rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    old = {"task": "knowledge-qa", "rows": "kq.rows.jsonl",
           "metrics": {m: {"value": v, "ci_low": v, "ci_high": v, "n": 2}
                       for m, v in (("accuracy", 1.0), ("answered_accuracy", 1.0), ("abstain", 0.0))}}
    (tmp_path / "kq.json").write_text(json.dumps(old))
    summary, got = load_result(tmp_path / "kq.json")
    assert summary["metrics"]["accuracy_lenient"]["value"] == 1.0 and summary["metrics"]["accuracy"]["value"] == 0.5
    assert [r["accuracy"] for r in got] == [0, 1] and [r["accuracy_lenient"] for r in got] == [1, 1]
    assert "upgraded" in summary and list(summary["metrics"])[:2] == ["accuracy", "accuracy_lenient"]
    assert summary["stored_accuracy"]["value"] == 1.0 and summary["metrics"]["answered_accuracy"]["value"] == 0.5
    again, _ = load_result(tmp_path / "kq.json")  # the file itself is not rewritten
    assert json.loads((tmp_path / "kq.json").read_text()) == old and again["metrics"] == summary["metrics"]
    d = {"diff": -0.5, "ci_low": -0.9, "ci_high": -0.1, "n": 2}
    said = verdicts({"knowledge-qa": {"diffs": {"accuracy": {"aligned": d}, "accuracy_lenient": {"aligned": d}}}})
    assert said[0].startswith("**Factuality fell**") and "strict" in said[0]
    assert said[1].startswith("**Lenient factuality fell**")
