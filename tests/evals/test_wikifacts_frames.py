"""Frames of the wikifacts verifier (``evals/wikifacts_frames.py``) on hand-made sentences: a sentence that is one
relation's template names that relation whatever vocabulary its value is in (a value outside it is a statement,
contradicted on a single-valued relation the subject holds); the longest label; "The country of <a person>"; prose
frames and their subject part; the predicate demonym; the value part (lists, qualifiers, the subject's own name,
descriptions left to the cue rules)."""
from __future__ import annotations

import pytest

from wikifacts_assets import profiles, write_task


@pytest.fixture(scope="module")
def v(tmp_path_factory):
    from selfalign.data.wikifacts import load_knowledge
    from selfalign.evals.wikifacts_verify import Verifier

    return Verifier(load_knowledge(str(write_task(tmp_path_factory.mktemp("wf"), profiles()))))


def said(v, subject, text):
    """(field, values, verdict) of each statement of one sentence."""
    return [(r["field"], r["values"], r["verdict"]) for r in v.sentences_of(subject, text) if r["relation"]]


def test_a_value_outside_the_relations_vocabulary_is_stated(v):
    # a country as a continent, a country as a crime: contradicted on the single-valued relation the subject holds
    assert said(v, "Kolkata", "The continent of Kolkata is India.") == [("continent", ["India"], "contradicted")]
    assert said(v, "Hosni Mubarak", "The crime convicted of Hosni Mubarak is Egypt.") == [
        ("crime convicted of", ["Egypt"], "contradicted")]
    # lower-case words where the relation's values are lower-case words (crimes), in a label frame
    assert said(v, "Hosni Mubarak", "The crime convicted of Hosni Mubarak is human trafficking.") == [
        ("crime convicted of", ["human trafficking"], "contradicted")]
    # a description is no value: the sentence goes to the cue rules, which find none
    assert said(v, "Nigeria", "The capital of Nigeria is a large city.") == []
    assert said(v, "Nigeria", "Its capital is Lima.") == [("capital", ["Lima"], "contradicted")]


def test_the_longest_label_and_the_country_of_a_person(v):
    assert said(v, "Le Monde", "The country of origin of Le Monde is Morocco.") == [
        ("country of origin", ["Morocco"], "contradicted")]
    # a person holds a citizenship and no country: "the country of" them is their citizenship; a place's is a country
    assert said(v, "Marie Curie", "The country of Marie Curie is Poland.") == [
        ("country of citizenship", ["Poland"], "contradicted")]
    assert said(v, "Kolkata", "The country of Kolkata is India.") == [("country", ["India"], "supported")]
    # only in a label frame: the country template said of a person stays a country
    assert said(v, "Victor Hugo", "Victor Hugo is in the country of France.") == [
        ("country", ["France"], "unverifiable")]


def test_prose_frames_and_their_subject_part(v):
    assert said(v, "Paul Warburg", "He was born in the country of Australia.") == [
        ("place of birth", ["Australia"], "unverifiable")]  # a birthplace, not a country
    assert said(v, "La Paz", "La Paz is the capital of Africa.") == [
        ("country it is the capital of", ["Africa"], "contradicted")]
    # the subject part holds a verb: no frame, the cue rules read both statements
    assert said(v, "Asha Rao", "Asha Rao is a British singer who was born in Mumbai.") == [
        ("country of citizenship", ["United Kingdom"], "contradicted"), ("place of birth", ["Mumbai"], "supported")]


def test_predicate_demonym(v):
    assert said(v, "Marie Curie", "Marie Curie is Polish.") == [("country of citizenship", ["Poland"], "contradicted")]
    assert said(v, "Le Monde", "Le Monde is French.") == [("country of origin", ["France"], "supported")]
    assert said(v, "Marie Curie", "Her native language is Polish.") == [("native language", ["Polish"], "supported")]


def test_the_value_part(v):
    # a list on a single-valued relation: contradicted; an unknown place qualified by a country: the place only
    assert said(v, "Nigeria", "The capital of Nigeria is Abuja, Nairobi and Lima.") == [
        ("capital", ["Abuja", "Nairobi", "Lima"], "contradicted")]
    assert said(v, "Asha Rao", "Asha Rao was born in Pune, India.") == [("place of birth", ["Pune"], "unverifiable")]
    assert said(v, "Asha Rao", "Asha Rao was born in Mumbai, India.") == [("place of birth", ["Mumbai"], "supported")]
    assert said(v, "Marie Curie", "Marie Curie was born in Bosnia and Herzegovina.") == [
        ("place of birth", ["Bosnia and Herzegovina"], "unverifiable")]
    # the subject's own name, under any of its names, is never a value
    assert said(v, "Ojibwe", "The native language of the Ojibwe is Ojibwe.") == []
    assert said(v, "United Kingdom", "The capital of the UK is London.") == [("capital", ["London"], "supported")]
    # a demonym beside the value names the same one
    assert said(v, "Zhang Wei", "The native language of Zhang Wei is Mandarin Chinese.") == [
        ("native language", ["Chinese"], "supported")]
    # the subject part names another relation: about something else, left to the cue rules
    assert said(v, "Kolkata", "The language of the capital of Kolkata is Hindi.") == []


def test_planted_gate_still_passes(v):
    from selfalign.evals.wikifacts_gates import planted_gate

    subjects = [s for s in v.k.split["eval"] + v.k.split["train"] + v.k.split["valid"]]
    got = planted_gate(v.k, v, subjects)
    assert got["passed"] and got["n"] == len(subjects) > 0


def test_label_frames_of_the_second_development_set(v):
    # singular or plural label words; a shorter label; "The country of <a novel>": its country of origin
    assert said(v, "Charles IV", "The language spoken by Charles IV was French.") == [
        ("languages spoken", ["French"], "supported")]
    assert said(v, "Lionel Messi", "The country represented by the team is Spain.") == [
        ("country represented in sport", ["Spain"], "contradicted")]
    assert said(v, "Pedro Paramo", "The country of Pedro Paramo is Argentina.") == [
        ("country of origin", ["Argentina"], "contradicted")]
    # the field's own name is no value; a frame about something of the subject's states nothing of it
    assert said(v, "Asha Rao", "The voice type of Asha Rao is voice.") == []
    assert said(v, "Nigeria", "The official language of the capital of Nigeria is French.") == []
    assert said(v, "Nigeria", "The official language of the country of Nigeria is French.") == [
        ("official language", ["French"], "unverifiable")]
    assert said(v, "Asha Rao", "Asha Rao was born in December.") == []  # a month is no place


def test_country_of_representation_label(v):
    # "The country of representation in sports is V" in a sportsman's profile: the country he represents
    assert said(v, "Lionel Messi", "The country of representation in sports is Spain.") == [
        ("country represented in sport", ["Spain"], "contradicted")]
