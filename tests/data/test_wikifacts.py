"""The Wikidata long-form benchmark's data: subjects and fields from qa_wikidata prompts, the single/multi-valued
rule, prompts, and the subject split (no training prompt or demonstration mentions an evaluation subject: on the
real shared file, skipped without it)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from selfalign.text import normalize
from wikifacts_assets import lands, write_task

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


def test_subjects_fields_and_values(tmp_path):
    from selfalign.data.wikifacts import load_knowledge

    path = write_task(tmp_path, [("The capital of Nigeria is", "Abuja"), ("Abuja is capital of", "Nigeria"),
                                 ("The country of citizenship of Hamid Karzai is", "Afghan"),
                                 ("The country of citizenship of Hamid Karzai is", "Afghanistan"),
                                 ("The blood type of Hamid Karzai is", "A")])
    k = load_knowledge(str(path))
    # the subject-first template is a field of its own subject, not folded into Nigeria's capital
    assert k.subjects["Nigeria"] == {"The capital of _ is": ["Abuja"]}
    assert k.subjects["Abuja"] == {"_ is capital of": ["Nigeria"]}
    # a demonym the file uses as a country is that country: one value, not two
    assert k.subjects["Hamid Karzai"]["The country of citizenship of _ is"] == ["Afghanistan"]
    # blood type has no row in the lexicon: held, never asked
    assert k.fields("Hamid Karzai") == ["The country of citizenship of _ is"]


def test_multi_valued_rule():
    from selfalign.data.wikifacts import multi_valued

    subjects = {f"s{i}": {"The religion of _ is": ["a"], "The capital of _ is": ["c"]} for i in range(20)}
    subjects["s0"]["The religion of _ is"] = ["a", "b"]
    subjects["s1"]["The religion of _ is"] = ["a", "b"]  # 2 of 20 subjects = 10%: multi-valued
    subjects["s2"]["The capital of _ is"] = ["c", "d"]   # 1 of 20: single-valued
    got = multi_valued(subjects)
    assert "The religion of _ is" in got and "The capital of _ is" not in got
    assert "_ shares a border with" in got  # many-valued by nature, whatever the file holds


def test_prompts_and_split_on_made_up_lands(tmp_path):
    from selfalign.data.wikifacts import load_knowledge, prompt_rows

    path = write_task(tmp_path, lands() + [("Land0 is capital of", "Land1")])  # Land0's fact about Land1
    k = load_knowledge(str(path))
    ev, tr, va = (set(k.split[s]) for s in ("eval", "train", "valid"))
    assert ev and tr and va and not ev & tr and not ev & va and not tr & va
    assert ev | tr | va == {f"Land{i}" for i in range(30)} - ({"Land0"} if "Land1" in ev else set())
    row = prompt_rows(str(path), "eval", "profile", shots=2)[0]
    s = row["subject"]
    assert row["id"] == f"wf:{s}" and row["question"].startswith(f"Write a short factual profile of {s} covering: ")
    assert sorted(row["fields"]) == ["capital", "continent", "neighbours", "religion"]
    parts = row["prompt"].split("\n\n")
    assert len(parts) == 3 and parts[-1] == row["question"] + "\n"
    assert all(d in tr for d in row["demo_subjects"])
    d = row["demo_subjects"][0]
    i = int(d[4:])
    assert f"The capital of {d} is City{i}." in parts[0] and f"The religion of {d} is Faith{i % 4}." in parts[0]
    assert f"{d} shares a border with Sea{i % 5} and Sea{(i + 1) % 5}." in parts[0]
    free = prompt_rows(str(path), "eval", "free", shots=2)[0]
    fparts = free["prompt"].split("\n\n")
    assert free["question"] == f"Tell me about {s}." and fparts[-1] == free["question"] + "\n"
    assert [p.split("\n")[1] for p in fparts[:2]] == [p.split("\n")[1] for p in parts[:2]]  # the same demonstrations
    assert fparts[0].startswith(f"Tell me about {d}.\n")


def test_wikifacts_is_a_prompt_source_of_sample(tmp_path, monkeypatch):
    from selfalign.data import load_prompts

    write_task(tmp_path / "bigbench", lands())
    monkeypatch.setenv("SELFALIGN_DATA", str(tmp_path))
    rows = load_prompts("wikifacts", "valid", limit=2)
    assert len(rows) == 2 and all(r["split"] == "valid" and r["prompt"] for r in rows)
    assert load_prompts("wikifacts:free", "train", limit=1)[0]["question"].startswith("Tell me about ")


@pytest.mark.skipif(not (SHARED / "bigbench" / "qa_wikidata").is_dir(), reason="needs ../shared/data")
def test_no_training_prompt_or_demonstration_mentions_an_evaluation_subject(monkeypatch):
    from selfalign.data.knowledge_qa import questions
    from selfalign.data.relations import parse
    from selfalign.data.subjects import held_subjects
    from selfalign.data.wikifacts import eval_subjects, load_knowledge, mentions_eval, prompt_rows

    monkeypatch.setenv("SELFALIGN_DATA", str(SHARED))
    k = load_knowledge()
    held = eval_subjects(k)
    assert 200 <= len(held) <= 250 and len(k.split["train"]) >= 250 and len(k.split["valid"]) == 60
    names = re.compile("(?<!\\w)(?:" + "|".join(sorted(map(re.escape, k.split["eval"]), key=len, reverse=True))
                       + ")(?!\\w)")
    used = set()  # the subjects whose facts a training prompt or a demonstration shows
    for split in ("train", "valid", "eval"):
        for r in prompt_rows(split=split, fmt="profile") + prompt_rows(split=split, fmt="free"):
            used |= set(r["demo_subjects"]) | ({r["subject"]} if split != "eval" else set())
            shown = r["prompt"] if split != "eval" else r["prompt"].rsplit("\n\n", 1)[0]
            assert not names.search(shown), (split, r["subject"], names.search(shown))
    assert used <= set(k.split["train"]) | set(k.split["valid"])
    qs = questions("qa_wikidata")
    shown_subjects = {normalize(s) for s in used}
    about_used = [q for q in qs if normalize(parse(q["question"]).subject) in shown_subjects]
    assert len(about_used) > 600
    for q in about_used:  # neither its subject nor a gold answer is an evaluation subject, under any relation
        assert not mentions_eval(q, k), q["question"]
        assert normalize(parse(q["question"]).subject) not in held and not {normalize(t) for t in q["targets"]} & held
    # sk-data's subject split at fraction 0.4 (split seed 0) holds out every evaluation subject, so all their facts
    assert held <= held_subjects(qs, 0, 0.4)["qa_wikidata"]
    assert sum(mentions_eval(q, k) for q in qs) > len(held)
