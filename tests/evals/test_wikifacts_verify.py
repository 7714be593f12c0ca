"""The deterministic verifier of `eval wikifacts` on hand-made triples: cue and value, the single- and
multi-valued rules, listed values, "born in Mumbai, India" (a birthplace, never a citizenship), claims and their
SK rendering, and the planted gate (which a broken verifier fails); then each cue rule added on the development
set's errors (benchmarks/longform/extractor_dev.jsonl), on hand-made sentences."""
from __future__ import annotations

import pytest

from wikifacts_assets import profiles, write_task

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


# --- cue rules (each from an error kind of the development set) -------------------------------------------------
@pytest.fixture(scope="module")
def pv(tmp_path_factory):
    from selfalign.data.wikifacts import load_knowledge
    from selfalign.evals.wikifacts_verify import Verifier

    return Verifier(load_knowledge(str(write_task(tmp_path_factory.mktemp("wfp"), profiles()))))


def said(v, subject, text):
    return [(r["field"], r["values"], r["verdict"]) for r in v.sentences_of(subject, text) if r["relation"]]


def test_is_in_counts_for_places_only(pv):
    assert said(pv, "La Paz", "La Paz is in Bolivia.") == [("country", ["Bolivia"], "supported")]
    assert said(pv, "Marie Curie", "Marie Curie is in Europe.") == []  # a person holds no place relation
    # the judge's extraction passes the asked fields: the same rule
    assert pv.statements("La Paz", "La Paz is in India.", held={"The country of _ is": ()})[0]["values"] == ["India"]
    assert pv.statements("Marie Curie", "She is in India.", held={"The country of citizenship of _ is": ()}) == []


def test_nationality_forms(pv):
    assert said(pv, "Victor Hugo", "Victor Hugo is a Frenchman.") == [
        ("country of citizenship", ["France"], "supported")]
    assert said(pv, "Victor Hugo", "He is a native Frenchman.") == [("country of citizenship", ["France"], "supported")]
    assert said(pv, "Paul Warburg", "Paul Warburg is a banker from Germany.") == [
        ("country of citizenship", ["Germany"], "supported")]
    assert said(pv, "Paul Warburg", "Paul Warburg is a member of the African nation of Egypt.") == [
        ("country of citizenship", ["Egypt"], "contradicted")]
    assert said(pv, "Paul Warburg", "He was a citizen of the French Republic.") == [
        ("country of citizenship", ["France"], "contradicted")]
    # "Native American" is no nationality
    assert said(pv, "Ojibwe", "The Ojibwe are a Native American people.") == []


def test_demonym_born_is_a_birthplace(pv):
    assert said(pv, "Paul Warburg", "Paul Warburg is a German-born American banker.") == [
        ("place of birth", ["Germany"], "unverifiable"), ("country of citizenship", ["United States"], "contradicted")]
    assert said(pv, "Asha Rao", "She was born in the city of Mumbai.") == [("place of birth", ["Mumbai"], "supported")]


def test_a_works_demonym_is_its_origin_and_a_persons_their_citizenship(pv):
    assert said(pv, "Le Monde", "Le Monde is a French newspaper.") == [("country of origin", ["France"], "supported")]
    assert said(pv, "Le Monde", "Le Monde is a newspaper from France.") == [
        ("country of origin", ["France"], "supported")]
    assert said(pv, "Le Monde", "Le Monde is a native of France.") == [("country of origin", ["France"], "supported")]
    assert said(pv, "Paul Warburg", "Paul Warburg is a native of Mumbai.") == [
        ("place of birth", ["Mumbai"], "unverifiable")]


def test_language_forms(pv):
    assert said(pv, "Marie Claire", "Marie Claire is a French-speaking magazine.") == [
        ("language", ["French"], "supported")]
    assert said(pv, "Marie Claire", "Marie Claire is a French-language magazine.") == [
        ("language", ["French"], "supported")]
    assert said(pv, "Marie Curie", "Marie Curie is a native Polish-speaker.") == [
        ("native language", ["Polish"], "supported")]  # not a nationality


def test_sport_country_genre_and_faith(pv):
    assert said(pv, "Lionel Messi", "Lionel Messi is an Argentina international.") == [
        ("country represented in sport", ["Argentina"], "supported")]
    assert said(pv, "Lionel Messi", "Messi is a member of Argentina's national team.") == [
        ("country represented in sport", ["Argentina"], "supported")]
    assert said(pv, "Friends", "Friends is a comedy show.") == [("genre", ["comedy"], "supported")]
    # a faith's branch is not contradicted by the faith (and is no planted distractor for it)
    assert said(pv, "Louis XVI", "Louis XVI is a Christian.") == [("religion", ["Christianity"], "unverifiable")]
    assert said(pv, "Asha Rao", "She is a Sikh.") == [("religion", ["Sikhism"], "contradicted")]


def test_a_sentence_about_another_subject_of_the_file(pv):
    assert said(pv, "Marie Curie", "The capital of the United Kingdom is London.") == []


# --- rules added on the second development set (benchmarks/longform/extractor_dev2.jsonl) ----------------------
def test_compound_demonyms_name_the_last_part(pv):
    # "a French-American": an American (of French descent), not a French citizen; "Austro-Hungarian" is one demonym
    assert said(pv, "Marie Curie", "Marie Curie is a French-American.") == [
        ("country of citizenship", ["United States"], "contradicted")]
    assert said(pv, "Paul Warburg", "Paul Warburg was a German-born Mexican-American banker.") == [
        ("place of birth", ["Germany"], "unverifiable"), ("country of citizenship", ["United States"], "contradicted")]
    assert said(pv, "Paul Warburg", "He was an Austro-Hungarian officer.") == [
        ("country of citizenship", ["Austria-Hungary"], "contradicted")]


def test_a_demonym_describing_another_person_or_thing_is_no_nationality(pv):
    # behind a preposition, or with one between article and demonym: another person's, or a work's
    assert said(pv, "Paul Warburg", "Paul Warburg was a writer of French literature.") == []
    assert said(pv, "Paul Warburg", "The story of Paul Warburg is about a French artist.") == []
    assert said(pv, "Paul Warburg", "He was born to a Jewish father.") == []
    # a title after "is the": the subject's own
    assert said(pv, "Victor Hugo", "Victor Hugo is the French President.") == [
        ("country of citizenship", ["France"], "supported")]


def test_faith_and_instrument_nouns(pv):
    assert said(pv, "Sridevi", "Sridevi is also a Hindu.") == [("religion", ["Hinduism"], "supported")]
    assert said(pv, "Sridevi", "She is a member of the Muslim Brotherhood.") == []  # a membership, no faith
    assert said(pv, "Andrea Bocelli", "He is also a pianist.") == [("instrument", ["piano"], "supported")]
    assert said(pv, "Andrea Bocelli", "Andrea Bocelli is a famous singer.") == []  # a singer plays no instrument


def test_continent_cues_and_a_place_in_a_country(pv):
    assert said(pv, "Nigeria", "Nigeria is a country in Africa.") == [("continent", ["Africa"], "supported")]
    assert said(pv, "Nigeria", "Nigeria is an African country.") == [("continent", ["Africa"], "supported")]
    assert said(pv, "Kolkata", "Kolkata is an Asian city.") == [("continent", ["Asia"], "supported")]
    assert said(pv, "Kolkata", "Kolkata is located on the continent of Eurasia.") == [
        ("continent", ["Eurasia"], "contradicted")]
    # a place that holds neither a country nor a location "is in" a country: its country
    assert said(pv, "Temple Mount", "The Temple Mount is in India.") == [("country", ["India"], "unverifiable")]


def test_a_demonym_of_a_subject_that_holds_no_national_relation(pv):
    # a person (holds a native language): citizenship; a state or a work: its country
    assert said(pv, "Mongkut", "Mongkut is a French king.") == [("country of citizenship", ["France"], "unverifiable")]
    assert said(pv, "Joseon", "Joseon was an Indian nation.") == [("country", ["India"], "unverifiable")]
    assert said(pv, "SpongeBob", "SpongeBob is a British cartoon.") == [("country", ["United Kingdom"], "unverifiable")]


def test_language_forms_of_the_second_set(pv):
    assert said(pv, "Marie Curie", "Marie Curie is a Polish-speaking scientist.") == [
        ("language", ["Polish"], "unverifiable")]  # "-speaking" is the language, not the languages spoken
    assert said(pv, "SpongeBob", "SpongeBob is in English.") == [("language", ["English"], "supported")]
    # a language the file names under another language relation is a language under every one
    assert said(pv, "Mongkut", "The native language of Mongkut is Malaysian.") == [
        ("native language", ["Malay"], "contradicted")]
    assert said(pv, "Lionel Messi", "Lionel Messi plays American football.") == [
        ("sport", ["American football"], "unverifiable")]


def test_a_sentence_opening_with_an_unknown_name_is_about_another_entity(pv):
    assert said(pv, "Marie Curie", "Lyon is a city in France.") == []
    assert said(pv, "Nigeria", "Lyon is the capital of Kenya.") == []
    # a misspelt subject is the subject; the subject's alias is no unknown name
    assert said(pv, "Sridevi", "Sridvi is a citizen of Turkey.") == [
        ("country of citizenship", ["Turkey"], "contradicted")]
    assert said(pv, "United Kingdom", "UK is the capital of Nigeria.") == [
        ("country it is the capital of", ["Nigeria"], "unverifiable")]


def test_open_values_after_precise_cues(pv):
    # a name no vocabulary knows, after "developed by" (lower-case words and demonyms before it skipped)
    assert said(pv, "Final Fantasy VII", "Final Fantasy VII is a game developed by the Japanese game company "
                                         "Final Fantasy XV.") == [("developer", ["Final Fantasy XV"], "contradicted")]
    assert said(pv, "Final Fantasy VII", "It was developed by Square.") == [("developer", ["Square"], "supported")]
    # a birthplace outside the vocabulary, the known country only qualifying it; a month is no place
    assert said(pv, "Asha Rao", "She was born on December 23, 1878, in Pune, India.") == [
        ("place of birth", ["Pune"], "unverifiable")]
    assert said(pv, "Asha Rao", "She was born in December.") == []
    # "is in": a place's location, a person's nothing; a region whose head is a continent is the continent
    assert said(pv, "Temple Mount", "The Temple Mount is in the European Union.") == [
        ("location", ["European Union"], "unverifiable")]
    assert said(pv, "Marie Curie", "Marie Curie is in the European Union.") == []
    assert said(pv, "Phnom Penh", "Phnom Penh is in Southeast Asia.") == [("continent", ["Asia"], "unverifiable")]
    assert said(pv, "Paul Warburg", "Paul Warburg is a citizen of the African nation of Djibouti.") == [
        ("country of citizenship", ["Djibouti"], "contradicted")]


def test_rules_of_the_third_set(pv):
    """Rules added on the third development set (extractor_dev3.jsonl: aligned models' profiles)."""
    # a demonym before a noun is a person's citizenship, never the country represented in sport
    assert said(pv, "Lionel Messi", "Lionel Messi is an American professional footballer.") == [
        ("country of citizenship", ["United States"], "unverifiable"), ("sport", ["football"], "unverifiable")]
    assert said(pv, "Lionel Messi", "Lionel Messi is an Argentina international.") == [
        ("country represented in sport", ["Argentina"], "supported")]
    # no nationality after a verb in -ing: "killing a British soldier" is another person
    assert said(pv, "Ted Bundy", "He was convicted of killing a British soldier.") == []
    assert said(pv, "Victor Hugo", "Victor Hugo is a French writer.") == [
        ("country of citizenship", ["France"], "supported")]
    # a multi-word value in title case ("American Football")
    assert said(pv, "Edgardo Alfonzo", "Edgardo Alfonzo plays American Football.") == [
        ("sport", ["American football"], "contradicted")]
    # "played in" a country: the country, of a subject that holds one only
    assert said(pv, "Super Rugby", "Super Rugby is a sport that is played in Australia.") == [
        ("country", ["Australia"], "supported")]
    assert said(pv, "Edgardo Alfonzo", "Edgardo Alfonzo played in Venezuela.") == []
    # "existed in": where a state was
    assert said(pv, "Joseon", "Joseon was a kingdom that existed in East Asia.") == [
        ("continent", ["Asia"], "supported")]
