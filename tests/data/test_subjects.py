"""The subject split (--split-by subject): no fact about a held-out subject, under any relation, in SK data, DPO
prompts or few-shot demonstrations; checked on the real shared qa_wikidata file (subjects from the template parser)
and on a toy task; the default split is unchanged."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from selfalign.text import normalize

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


def _facts(q: dict) -> set:
    """The subjects a question states a fact about: its own and its gold answers."""
    from selfalign.data.subjects import subject_of

    return {subject_of(q)} | {normalize(t) for t in q["targets"]}


@pytest.mark.skipif(not (SHARED / "bigbench" / "qa_wikidata").is_dir(), reason="needs ../shared/data")
def test_no_fact_about_a_heldout_subject_reaches_training_on_the_real_file(tmp_path, monkeypatch):
    from selfalign.data import load_prompts
    from selfalign.data.knowledge_qa import HELDOUT_FRACTION, SPLIT_SEED, questions
    from selfalign.data.subjects import held_subjects
    from selfalign.stages.sk_data import SKDataConfig, run_sk_data

    monkeypatch.setenv("SELFALIGN_DATA", str(SHARED))
    qs = {q["id"]: q for q in questions("qa_wikidata", "subject")}
    held = held_subjects(list(qs.values()), SPLIT_SEED, HELDOUT_FRACTION)["qa_wikidata"]
    test = [q for q in qs.values() if q["split"] == "heldout"]
    assert len(held) > 400 and len(test) > 600 and all(_facts(q) & held for q in test)
    # knowledge-qa's prompts: the held-out ones and the DPO (train) ones; demonstrations are training facts only
    train_prompts = load_prompts("bigbench:qa_wikidata", "train", split_by="subject")
    heldout_prompts = load_prompts("bigbench:qa_wikidata", "heldout", split_by="subject")
    assert {r["id"] for r in heldout_prompts} == {q["id"] for q in test}
    for r in train_prompts:
        assert not _facts(qs[r["id"]]) & held, r["question"]
    for r in train_prompts + heldout_prompts:
        assert r["demo_ids"] and not any(_facts(qs[d]) & held for d in r["demo_ids"])
    # sk-data, same seed and a larger fraction: every knowledge-qa held-out subject is kept out of its train file
    out = tmp_path / "sk.jsonl"
    run_sk_data(SKDataConfig(sources=["bigbench:qa_wikidata"], output=str(out), split_by="subject"))
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    held_sk = held_subjects([{**q, "source": "bigbench:qa_wikidata"} for q in qs.values()], 0, 0.2)["qa_wikidata"]
    assert held <= held_sk
    by_text = {q["question"]: q for q in qs.values()}
    for r in rows:  # the question's subject and answers, and the distractor offered in the row
        assert not (_facts(by_text[r["question"]]) | {normalize(r["proposal"])}) & held_sk, r["question"]
    heldout = {json.loads(x)["question"] for x in (tmp_path / "sk.heldout.jsonl").read_text().splitlines()}
    assert len(rows) > 10000 and heldout and all(_facts(by_text[q]) & held_sk for q in heldout)


def test_subject_split_holds_out_a_subject_under_every_relation(tmp_path, monkeypatch):
    """Each land has a capital, a language and a capital-of fact the other way round: a held-out land is held out
    with all three (its name as the subject or as the answer), and no training question names a held-out subject;
    the default split still splits by question."""
    from selfalign.data.knowledge_qa import questions
    from selfalign.data.questions import select_questions
    from selfalign.data.subjects import held_subjects

    ex = []
    for i in range(60):
        ex += [{"input": f"The capital of Land{i} is", "target": f"City{i}"},
               {"input": f"The official language of Land{i} is", "target": f"Tongue{i % 7}"},
               {"input": f"City{i} is capital of", "target": f"Land{i}"}]
    (tmp_path / "bigbench" / "lands").mkdir(parents=True)
    (tmp_path / "bigbench" / "lands" / "task.json").write_text(json.dumps({"examples": ex}))
    monkeypatch.setenv("SELFALIGN_DATA", str(tmp_path))
    for qs, fraction in ((questions("lands", "subject"), 0.06), (select_questions(["bigbench:lands"],
                                                                                  split_by="subject")[0], 0.2)):
        held = held_subjects(qs, 0, fraction)["lands"]
        lands = {s for s in held if s.startswith("land")}
        assert lands and len(held) < len({f for q in qs for f in _facts(q)})
        for q in qs:
            assert (q["split"] == "heldout") == bool(_facts(q) & held), q
        for land in lands:  # all three facts of a held-out land
            assert sum(land in _facts(q) for q in qs if q["split"] == "heldout") == 3
    by_question = {q["question"]: q["split"] for q in questions("lands")}
    assert len(set(by_question.values())) == 2  # the default: by question hash, as before


def test_caps_after_the_split_keep_the_subject_split(tmp_path, monkeypatch):
    """--max-train / --max-heldout choose within each split after it is made: the capped splits are subsets of the
    uncapped ones (a held-out subject stays held out), at most N per split, the same on a rerun; --max-per-task caps
    before the split and so moves it."""
    from selfalign.data.questions import select_questions

    ex = []
    for i in range(60):
        ex += [{"input": f"The capital of Land{i} is", "target": f"City{i}"},
               {"input": f"City{i} is capital of", "target": f"Land{i}"}]
    (tmp_path / "bigbench" / "lands").mkdir(parents=True)
    (tmp_path / "bigbench" / "lands" / "task.json").write_text(json.dumps({"examples": ex}))
    monkeypatch.setenv("SELFALIGN_DATA", str(tmp_path))
    split = lambda qs: {q["id"]: q["split"] for q in qs}  # noqa: E731
    full = split(select_questions(["bigbench:lands"], split_by="subject")[0])
    capped = split(select_questions(["bigbench:lands"], split_by="subject", max_split={"train": 30, "heldout": 5})[0])
    n = {s: sum(v == s for v in full.values()) for s in ("train", "heldout")}
    assert n["train"] > 30 and n["heldout"] > 5
    assert all(full[i] == s for i, s in capped.items())
    assert sorted(capped.values()).count("train") == 30 and sorted(capped.values()).count("heldout") == 5
    again = split(select_questions(["bigbench:lands"], split_by="subject", max_split={"train": 30, "heldout": 5})[0])
    assert again == capped
    only_train = split(select_questions(["bigbench:lands"], split_by="subject", max_split={"train": 10})[0])
    assert sum(v == "heldout" for v in only_train.values()) == n["heldout"]


def test_split_by_subject_is_refused_for_other_prompt_sources():
    from selfalign.data import load_prompts
    from selfalign.errors import SelfAlignError

    with pytest.raises(SelfAlignError, match="--split-by subject applies to bigbench:TASK"):
        load_prompts("builtin", split_by="subject")
