"""The judges of the Wikidata long-form loop (``score --method wikifacts-claims | wikifacts-gold | length``) on
hand-made triples and responses; expected values computed here by hand."""
from __future__ import annotations

import json

import pytest

from wikifacts_assets import write_task

FACTS = [
    ("The capital of Nigeria is", "Abuja"), ("The official language of Nigeria is", "English"),
    ("The continent of Nigeria is", "Africa"), ("Nigeria shares a border with", ["Niger", "Chad"]),
    ("The capital of Kenya is", "Nairobi"), ("The official language of Kenya is", "Swahili"),
    ("The capital of Peru is", "Lima"), ("The official language of Peru is", "Spanish"),
    ("The continent of Peru is", "Americas"), ("Chad shares a border with", "Cameroon"),
]
CAPITAL, LANGUAGE = "The capital of _ is", "The official language of _ is"
P_A = {"Abuja": 0.9, "Nairobi": 0.2, "English": 0.7, "Lima": 0.4}  # the fake judge's P(True) per proposed answer


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return str(write_task(tmp_path_factory.mktemp("wfj"), FACTS))


class Judge:
    """choice_probs: P(A) by the proposed answer of the Self-Eval prompt (P_A), and every prompt it was asked."""
    info = {"model": "fake-judge"}

    def __init__(self):
        self.prompts = []

    def choice_probs(self, prompts, choices):
        self.prompts += list(prompts)
        out = []
        for p in prompts:
            answer = p.split("Proposed Answer: ", 1)[1].split("\n", 1)[0]
            out.append([P_A[answer] / 2, (1 - P_A[answer]) / 2])  # mass 0.5: P(True) is normalised over A/B
        return out


def row(source, response, k=0, subject="Nigeria", fields=("capital", "official language")):
    return {"id": f"wf:{subject}", "sample_idx": k, "subject": subject, "fields": list(fields), "source": source,
            "question": f"Write a short factual profile of {subject} covering: {', '.join(fields)}.",
            "prompt": f"Write a short factual profile of {subject} covering: {', '.join(fields)}.\n",
            "response": response}


def cfg(method, **kw):
    from selfalign.stages.score import ScoreConfig

    return ScoreConfig(method=method, **kw)


class GoldGuard(dict):
    """The knowledge's subjects, where reading one subject's facts (its gold values) fails the test."""

    def __init__(self, subjects, guarded):
        super().__init__(subjects)
        self.guarded = guarded

    def __getitem__(self, key):
        if key == self.guarded:
            raise AssertionError(f"the judge's extraction read the gold of {key}")
        return dict.__getitem__(self, key)

    def get(self, key, default=None):
        return self[key] if key in self else default


def test_extraction_finds_the_claims_and_reads_no_gold_of_the_subject(source, monkeypatch):
    from selfalign.selfeval import wikifacts_claims as W

    k, v = W.resources({"source": source})
    monkeypatch.setattr(v.k, "subjects", GoldGuard(k.subjects, "Nigeria"))
    text = ("The capital of Nigeria is Abuja. Its official language is English. Nigeria is large. "
            "Its capital is Abuja, Nairobi and Lima.")
    got = W.extract(v, "Nigeria", text, [CAPITAL, LANGUAGE])
    # one claim per (relation, value), in order; a listed sentence gives each value; prose gives none
    assert [(c["relation"], c["value"]) for c in got] == [(CAPITAL, "Abuja"), (LANGUAGE, "English"),
                                                          (CAPITAL, "Nairobi"), (CAPITAL, "Lima")]
    assert got[1]["field"] == "official language" and got[1]["sentence"] == "Its official language is English."


def test_wikifacts_claims_scores_the_mean_claim_p_true_in_the_sk_format(source):
    from selfalign.stages.pairs import build_pairs
    from selfalign.stages.score import score_rows

    judge = Judge()
    rows = [row(source, "The capital of Nigeria is Abuja. Its official language is English.", 0),
            row(source, "The capital of Nigeria is Nairobi.", 1),
            row(source, "Nigeria is a big country with many people.", 2),  # no claim
            row(source, "", 3)]                                              # nothing at all
    got = score_rows(judge, rows, cfg("wikifacts-claims"))
    assert [r["score"] for r in got[:2]] == pytest.approx([(0.9 + 0.7) / 2, 0.2])
    assert [r["score"] for r in got[2:]] == [None, None] and [r["n_claims"] for r in got] == [2, 1, 0, 0]
    assert [(c["value"], c["p_true"], c["p_true_mass"]) for c in got[0]["claims"]] == [
        ("Abuja", pytest.approx(0.9), pytest.approx(0.5)), ("English", pytest.approx(0.7), pytest.approx(0.5))]
    assert got[0]["claims"][1]["question"] == "The official language of Nigeria is"
    assert got[0]["score_method"] == "wikifacts-claims"
    # the judge was asked each claim exactly as an SK-Tuning row of sk-data --mode options (hand-written)
    assert judge.prompts[0] == ("Question: The capital of Nigeria is\nProposed Answer: Abuja\nIs the proposed "
                                "answer:\n A. True\n B. False\nThe proposed answer is:")
    assert len(judge.prompts) == 3
    # a response with no claim neither wins nor loses a pair: pairs drops it
    pairs, rep = build_pairs(got, strategy="all")
    assert [(p["chosen"].strip(), p["rejected"].strip()) for p in pairs] == [
        ("The capital of Nigeria is Abuja. Its official language is English.", "The capital of Nigeria is Nairobi.")]
    assert rep["unscored_samples"] == 2


def test_wikifacts_gold_is_supported_minus_contradicted(source):
    from selfalign.stages.score import score_rows

    rows = [row(source, "The capital of Nigeria is Abuja. Its official language is English.", 0),   # 2 - 0
            row(source, "The capital of Nigeria is Nairobi. Its official language is English.", 1),  # 1 - 1
            row(source, "Its capital is Abuja, Nairobi and Lima.", 2),         # listed: one contradicted statement
            row(source, "Nigeria shares a border with Cameroon.", 3),          # multi-valued, outside gold: 0 - 0
            row(source, "Nigeria is a big country.", 4)]                       # no statement: unscored
    got = score_rows(None, rows, cfg("wikifacts-gold"))
    assert [r["score"] for r in got] == [2, 0, -1, 0, None]
    assert [(r["gold_supported"], r["gold_contradicted"]) for r in got] == [(2, 0), (1, 1), (0, 1), (0, 0), (0, 0)]
    assert got[1]["gold_precision"] == pytest.approx(0.5) and got[4]["gold_precision"] is None


def test_length_control_prefers_the_shorter_answer_by_default(source):
    from selfalign.stages.score import score_rows

    rows = [row(source, "The capital of Nigeria is Abuja.", 0), row(source, "Abuja.", 1), row(source, "", 2)]
    assert [r["score"] for r in score_rows(None, rows, cfg("length"))] == [-6, -1, 0]
    assert [r["score"] for r in score_rows(None, rows, cfg("length", length_prefer="longer"))] == [6, 1, 0]


def test_score_stage_runs_the_model_free_judges_and_names_a_bad_row(source, tmp_path, capsys):
    from selfalign.cli import main
    from selfalign.stages.score import run_score

    src = tmp_path / "samples.jsonl"
    src.write_text("".join(json.dumps(row(source, t, k)) + "\n" for k, t in enumerate(
        ["The capital of Nigeria is Abuja.", "The capital of Nigeria is Lima."])))
    out = tmp_path / "gold.jsonl"
    got = run_score(cfg("wikifacts-gold", input=str(src), output=str(out)))  # no model is loaded
    assert got["new_rows"] == 2 and [json.loads(x)["score"] for x in out.read_text().splitlines()] == [1, -1]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(row(source, "x", 0)) + "\n" + json.dumps({**row(source, "y", 1), "subject": None}) + "\n")
    for method in ("wikifacts-gold", "wikifacts-claims"):  # before any model is loaded
        assert main(["score", "--method", method, "--input", str(bad), "--output", str(tmp_path / "o.jsonl")]) == 2
        assert f"{bad}:2: --method {method} needs wikifacts samples" in capsys.readouterr().err
    err = tmp_path / "other.jsonl"
    err.write_text(json.dumps({**row(source, "y", 0), "subject": "Atlantis"}) + "\n")
    assert main(["score", "--method", "wikifacts-gold", "--input", str(err), "--output", str(tmp_path / "p.jsonl")]) \
        == 2
    assert f"{err}:1: subject 'Atlantis' is not in" in capsys.readouterr().err


def test_a_recipe_scoring_wikifacts_claims_of_other_prompts_is_refused_at_plan_time(tmp_path, capsys):
    from selfalign.cli import main

    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: r\noutput: runs/r\nsample:\n  input: builtin\nscore:\n  method: wikifacts-claims\n")
    assert main(["run", str(recipe), "--dry-run"]) == 2
    assert "score.method wikifacts-claims reads the claims of wikifacts profiles" in capsys.readouterr().err
