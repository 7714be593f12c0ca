"""The deterministic verifier of `eval wikifacts` on hand-made triples: cue and value, the single- and
multi-valued rules, listed values, "born in Mumbai, India" (a birthplace, never a citizenship), claims and their
SK rendering, and the planted gate (which a broken verifier fails)."""
from __future__ import annotations

import pytest

from wikifacts_assets import write_task

FACTS = [
    ("The capital of Nigeria is", "Abuja"), ("The official language of Nigeria is", "English"),
    ("The continent of Nigeria is", "Africa"), ("Nigeria shares a border with", ["Niger", "Chad"]),
    ("The capital of Kenya is", "Nairobi"), ("The continent of Kenya is", "Africa"),
    ("The capital of Peru is", "Lima"), ("The continent of Peru is", "Americas"),
    ("The capital of Nepal is", "Kathmandu"), ("The continent of Nepal is", "Asia"),
    ("Chad shares a border with", "Cameroon"), ("Abuja is capital of", "Nigeria"),
    ("The country of citizenship of Ravi Shankar is", "India"), ("The instrument of Ravi Shankar is", "sitar"),
    ("The country of citizenship of Asha Rao is", "India"), ("The place of birth of Asha Rao is", "Mumbai"),
    ("The country of citizenship of Marie Curie is", "France"), ("The native language of Marie Curie is", "Polish"),
    ("The country of citizenship of Yo-Yo Ma is", "France"), ("The instrument of Yo-Yo Ma is", "cello"),
    ("The religion of Marie Curie is", "atheist"), ("The religion of Asha Rao is", "Hinduism"),
    ("The religion of Ravi Shankar is", "Hinduism"), ("The country of citizenship of Ayaan Hirsi is", "Somalia"),
    ("The country of citizenship of Ayaan Hirsi is", "Netherlands"), ("The religion of Ayaan Hirsi is", "atheist"),
    ("The native language of Yo-Yo Ma is", "French"), ("The native language of Ayaan Hirsi is", "Somali"),
    ("The country of citizenship of Frederic Chopin is", "Poland"),
]


@pytest.fixture(scope="module")
def kv(tmp_path_factory):
    from selfalign.data.wikifacts import load_knowledge
    from selfalign.evals.wikifacts_verify import Verifier

    k = load_knowledge(str(write_task(tmp_path_factory.mktemp("wf"), FACTS)))
    return k, Verifier(k)


def one(v, subject, text):
    """(relation, values, verdict) of each statement of one sentence."""
    return [(r["relation"], r["values"], r["verdict"]) for r in v.sentences_of(subject, text) if r["relation"]]


CAPITAL, CITIZEN, BORN = "The capital of _ is", "The country of citizenship of _ is", "The place of birth of _ is"
BORDER = "_ shares a border with"


def test_cue_and_value(kv):
    _, v = kv
    assert one(v, "Nigeria", "The capital of Nigeria is Abuja.") == [(CAPITAL, ["Abuja"], "supported")]
    assert one(v, "Nigeria", "Its capital is Nairobi.") == [(CAPITAL, ["Nairobi"], "contradicted")]
    assert one(v, "Nigeria", "Abuja is a large city.") == []          # a value without a cue
    assert one(v, "Nigeria", "The capital is beautiful.") == []       # a cue without a value
    assert one(v, "Nigeria", "Its official language is English.") == [
        ("The official language of _ is", ["English"], "supported")]
    # several fields in one sentence: each value goes to its nearest cue
    assert one(v, "Nigeria", "Its capital is Abuja and its official language is English.") == [
        (CAPITAL, ["Abuja"], "supported"), ("The official language of _ is", ["English"], "supported")]


def test_born_in_mumbai_india_is_a_birthplace_not_a_citizenship(kv):
    _, v = kv
    # Asha Rao holds a birthplace: accepted as one; "India" only qualifies Mumbai
    assert one(v, "Asha Rao", "Asha Rao was born in Mumbai, India.") == [(BORN, ["Mumbai"], "supported")]
    # Ravi Shankar holds a citizenship (India) but no birthplace: the sentence says nothing about his citizenship
    got = one(v, "Ravi Shankar", "Ravi Shankar was born in Mumbai, India.")
    assert got == [(BORN, ["Mumbai"], "unverifiable")] and all(r != CITIZEN for r, _, _ in got)
    # a demonym counts as a nationality behind its cue ("an Indian musician"), and not elsewhere
    assert one(v, "Ravi Shankar", "Ravi Shankar is an Indian musician.") == [(CITIZEN, ["India"], "supported")]
    assert one(v, "Ravi Shankar", "He is a citizen of India.") == [(CITIZEN, ["India"], "supported")]
    assert one(v, "Ravi Shankar", "She is an American actress born in Mumbai, India.") == [
        (CITIZEN, ["United States"], "contradicted"), (BORN, ["Mumbai"], "unverifiable")]
    assert one(v, "Marie Curie", "Her native language is French.") == [
        ("The native language of _ is", ["French"], "contradicted")]


def test_single_valued_listing_and_multi_valued(kv):
    k, v = kv
    assert not k.is_multi(CAPITAL) and k.is_multi(BORDER)
    # single-valued: the gold value beside distractors is contradicted
    assert one(v, "Nigeria", "The capital of Nigeria is Abuja, Nairobi and Lima.") == [
        (CAPITAL, ["Abuja", "Nairobi", "Lima"], "contradicted")]
    # multi-valued: a value outside gold is unverifiable, a gold one supported
    assert one(v, "Nigeria", "Nigeria shares a border with Cameroon.") == [(BORDER, ["Cameroon"], "unverifiable")]
    assert one(v, "Nigeria", "Nigeria shares a border with Chad and Cameroon.") == [
        (BORDER, ["Chad", "Cameroon"], "supported")]
    # two gold values of a single-valued relation: either is supported
    assert one(v, "Ayaan Hirsi", "She is a citizen of the Netherlands.") == [(CITIZEN, ["Netherlands"], "supported")]
    # a relation the subject does not hold
    assert one(v, "Kenya", "Its official language is English.") == [
        ("The official language of _ is", ["English"], "unverifiable")]


def test_sentence_records_and_claims(kv):
    from selfalign.evals.wikifacts_verify import split_sentences

    _, v = kv
    text = "Marie Curie is a citizen of Poland. She was a scientist. Her religion: atheist."
    assert split_sentences("R. K. Narayan was born in Madras. He lived in St. Louis.\n- Its capital is Abuja.") == [
        "R. K. Narayan was born in Madras.", "He lived in St. Louis.", "Its capital is Abuja."]
    recs = v.sentences_of("Marie Curie", text)
    assert [(r["index"], r["field"], r["verdict"]) for r in recs] == [
        (0, "country of citizenship", "contradicted"), (1, None, "unverifiable"), (2, "religion", "supported")]
    claims = v.claims("Nigeria", "Its capital is Abuja, Nairobi and Lima. It borders Chad and Cameroon.")
    assert [(c["relation"], c["value"], c["verdict"]) for c in claims] == [
        (CAPITAL, "Abuja", "supported"), (CAPITAL, "Nairobi", "contradicted"), (CAPITAL, "Lima", "contradicted"),
        (BORDER, "Chad", "supported"), (BORDER, "Cameroon", "unverifiable")]


def test_claim_in_the_judges_sk_format():
    from selfalign.evals.wikifacts_verify import claim_sk
    from selfalign.selfeval.prompt import SelfEvalPrompt

    got = claim_sk({"subject": "Nigeria", "relation": CAPITAL, "value": "Abuja"}, SelfEvalPrompt())
    assert got["question"] == "The capital of Nigeria is" and got["answer"] == "Abuja"
    assert got["prompt"] == ("Question: The capital of Nigeria is\nProposed Answer: Abuja\nIs the proposed answer:\n"
                             " A. True\n B. False\nThe proposed answer is:")
    assert claim_sk({"subject": "Abuja", "relation": "_ is capital of", "value": "Nigeria"}) == {
        "question": "Abuja is capital of", "answer": "Nigeria"}


def test_planted_gate_passes_and_a_broken_verifier_fails_it(kv):
    from selfalign.evals.wikifacts_gates import planted_copies, planted_gate

    k, v = kv
    subjects = ["Nigeria", "Kenya", "Peru", "Nepal"]
    cp = planted_copies(k, "Kenya")
    assert cp["gold"] in ("The capital of Kenya is Nairobi. Kenya is on the continent of Africa.",
                          "Kenya is on the continent of Africa. The capital of Kenya is Nairobi.")
    assert cp["relation"] in (CAPITAL, "The continent of _ is")
    gold_value = {CAPITAL: "Nairobi", "The continent of _ is": "Africa"}[cp["relation"]]
    listed = [r for r in v.sentences_of("Kenya", cp["listed"]) if r["relation"] == cp["relation"]]
    assert len(listed) == 1 and listed[0]["verdict"] == "contradicted" and listed[0]["values"][0] == gold_value
    assert len(listed[0]["values"]) == 3 and gold_value not in cp["swapped"]
    got = planted_gate(k, v, subjects)
    assert got["passed"] and got["value"] == 1.0 and got["n"] == 4

    class Lenient:  # a verifier that believes everything fails the gate
        def sentences_of(self, s, text):
            return [{**r, "verdict": "supported"} for r in v.sentences_of(s, text)]

    assert not planted_gate(k, Lenient(), subjects)["passed"]
