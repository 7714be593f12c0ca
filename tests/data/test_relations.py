"""The qa_wikidata template parser: every prompt of the shared file parses to a known template whose subject
re-renders it; inverse relations stay apart; an unknown template is one line naming the file and line (exit 2)."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from selfalign.data.relations import RELATIONS, parse

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "bigbench" / "qa_wikidata" / "task.json"


@pytest.mark.parametrize("prompt, relation, subject", [
    ("The capital of Nigeria is", "The capital of _ is", "Nigeria"),
    ("Abuja is capital of", "_ is capital of", "Abuja"),  # the old guess: "abuja is capital", a relation of one
    ("The language used in Kingdom of Denmark is", "The language used in _ is", "Kingdom of Denmark"),
    ("The official language of Khanate of Sibir is [MASK]", "The official language of _ is", "Khanate of Sibir"),
    ("The Gambia shares a border with", "_ shares a border with", "The Gambia"),
    ("Aswan Dam is located in or next to body of water", "_ is located in or next to body of water", "Aswan Dam"),
    ("Aswan Dam is located in", "_ is located in", "Aswan Dam"),
    ("The languages spoken, written or signed by Charles, Prince of Wales is",
     "The languages spoken, written or signed by _ is", "Charles, Prince of Wales"),
    ("The blood type of Lionel Messi is", "The blood type of _ is", "Lionel Messi"),
    ("The country of citizenship of Alexander IV of Macedon is", "The country of citizenship of _ is",
     "Alexander IV of Macedon"),  # a relation with an "of" of its own: the longest template wins
    ("The country of 1924 Summer Olympics is", "The country of _ is", "1924 Summer Olympics"),
])
def test_parse(prompt, relation, subject):
    got = parse(prompt)
    assert (got.relation, got.subject) == (relation, subject) and got.template.render(subject) == prompt


@pytest.mark.parametrize("prompt", ["The capital of is", "is capital of", "Who wrote Hamlet?", "The mayor of X is"])
def test_unknown_template_is_none(prompt):
    assert parse(prompt) is None


@pytest.mark.skipif(not SHARED.exists(), reason="needs ../shared/data (BIG-bench qa_wikidata)")
def test_every_shared_prompt_parses_and_re_renders():
    prompts = [e["input"].strip() for e in json.loads(SHARED.read_text())["examples"]]
    assert len(prompts) == 10269 and len(set(prompts)) == 10209
    by_relation = Counter()
    for p in prompts:
        got = parse(p)
        assert got is not None, p
        assert got.relation in RELATIONS and got.template.render(got.subject) == p
        assert got.subject and got.subject == got.subject.strip()
        by_relation[got.relation] += 1
    assert len(by_relation) == 82
    assert by_relation["The country of _ is"] == 1324 and by_relation["The country of citizenship of _ is"] == 1977
    assert by_relation["_ is capital of"] == 130 and by_relation["The place of birth of _ is"] == 6
    assert by_relation["The capital of _ is"] == 173 and by_relation["_ shares a border with"] == 226


def test_sk_data_refuses_an_unknown_template_naming_file_and_line(tmp_path, monkeypatch, capsys):
    from selfalign.cli import main

    task = {"examples": [{"input": "The capital of C0 is", "target": "City0"},
                         {"input": "The capital of C1 is", "target": "City1"},
                         {"input": "Who founded C2?", "target": "Someone"}]}
    (tmp_path / "bigbench" / "geo").mkdir(parents=True)
    path = tmp_path / "bigbench" / "geo" / "task.json"
    path.write_text(json.dumps(task, indent=1))
    monkeypatch.setenv("SELFALIGN_DATA", str(tmp_path))
    line = next(n for n, ln in enumerate(path.read_text().splitlines(), 1) if "Who founded" in ln)
    assert main(["sk-data", "--sources", "bigbench:geo", "--output", str(tmp_path / "o.jsonl")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{path}:{line}: example 'geo-00002'" in err[0] and "no known qa_wikidata template" in err[0]


@pytest.mark.skipif(not SHARED.exists(), reason="needs ../shared/data (BIG-bench qa_wikidata)")
def test_real_distractors_are_answers_of_the_same_relation(monkeypatch):
    """"Abuja is capital of" gets a country, not "cricket": 50 of 10,269 distractors are off-relation (relations
    whose every other answer matches the gold one), 1,082 with the old guess."""
    from selfalign.data.questions import add_distractors, select_questions
    from selfalign.data.relations import relation

    monkeypatch.setenv("SELFALIGN_DATA", str(SHARED.parents[2]))
    qs, _ = select_questions(["bigbench:qa_wikidata"])
    add_distractors(qs, 0)
    golds: dict = {}
    for q in qs:
        golds.setdefault(relation(q), set()).add(q["targets"][0])
    off = [q for q in qs if q["distractor"] not in golds[relation(q)]]
    assert len(off) == 50
    abuja = next(q for q in qs if q["question"] == "Abuja is capital of")
    assert abuja["distractor"] in golds["_ is capital of"] and abuja["distractor"] != "Nigeria"
