"""Claim decomposition (rules + FActScore-style LLM prompt), claim questions, cache, and claim-level scoring."""
import json
import re

import pytest

from selfalign.engines.base import Generation
from selfalign.errors import SelfAlignError
from selfalign.stages.score import ScoreConfig, run_score, score_rows
from selfalign.selfeval import consistency as C
from selfalign import prompts as P
from selfalign.selfeval.claims import (ClaimCache, clean_facts, decompose, is_fragment, method_tag, parse_facts,
                                       template_question)
from selfalign.selfeval.splitter import split_claims, split_sentences


class FakeEngine:
    """generate: canned completions chosen by a function of the prompt; choice_probs: P(A) by keyword."""
    info = {"model": "fake"}

    def __init__(self, complete=lambda p, k: "", p_a=lambda p: 0.5):
        self.complete, self.p_a, self.generate_calls, self.prompts = complete, p_a, 0, []

    def has_chat_template(self):
        return False

    def generate(self, prompts, cfg, seed):
        self.generate_calls += 1
        self.prompts += list(prompts)
        return [[Generation(self.complete(p, k), 1) for k in range(cfg.n)] for p in prompts]

    def choice_probs(self, prompts, choices):
        self.prompts += list(prompts)
        return [[self.p_a(p), 1 - self.p_a(p)] for p in prompts]


# --- sentences ----------------------------------------------------------------------------------------------
def test_sentences_abbreviations_initials_dates_decimals():
    text = ("Dr. Jane Q. Smith was born on Jan. 5, 1990 in St. Louis. She earned a Ph.D. from M.I.T. in 2015 and "
            "moved to the U.S. state of Ohio. Her GPA was 3.95 out of 4.0! She works for Acme Inc. and Mr. Brown "
            "Co. She moved to the U.K. In 2020 she won a prize, i.e. the top one.\nJohn F. Kennedy was president "
            "of the U.S. He died on Nov. 22, 1963. Was it 5 p.m.? Yes.")
    assert split_sentences(text) == [
        "Dr. Jane Q. Smith was born on Jan. 5, 1990 in St. Louis.",
        "She earned a Ph.D. from M.I.T. in 2015 and moved to the U.S. state of Ohio.",
        "Her GPA was 3.95 out of 4.0!",
        "She works for Acme Inc. and Mr. Brown Co.",
        "She moved to the U.K.",
        "In 2020 she won a prize, i.e. the top one.",
        "John F. Kennedy was president of the U.S.",
        "He died on Nov. 22, 1963.",
        "Was it 5 p.m.? Yes.",  # a one-word sentence joins the one before it (FActScore's fix-up)
    ]


def test_sentences_numeric_abbreviations_and_acronym_endings():
    text = ("He said no. The end came. It was No. 1 in 1990. She (b. 1950) sang. He lived in Washington, D.C. "
            "In 2001 he left. Main St. is long.")
    assert split_sentences(text) == ["He said no.", "The end came.", "It was No. 1 in 1990.", "She (b. 1950) sang.",
                                     "He lived in Washington, D.C.", "In 2001 he left.", "Main St. is long."]


def test_sentences_paragraphs_and_quotes():
    text = 'He said "It is over." Then he left.\n\nA new paragraph starts here. (It ends.) Fine, really.'
    assert split_sentences(text) == ['He said "It is over."', "Then he left.", "A new paragraph starts here.",
                                     "(It ends.)", "Fine, really."]


# --- claims within a sentence -------------------------------------------------------------------------------
@pytest.mark.parametrize("sentence,claims", [
    ("He was born in Brookline, Massachusetts, and died in Dallas on Nov. 22, 1963.",
     ["He was born in Brookline, Massachusetts.", "He died in Dallas on Nov. 22, 1963."]),
    ("Michael Collins (born October 31, 1930) is an astronaut who was the pilot of Apollo 11.",
     ["Michael Collins was born on October 31, 1930.", "Michael Collins is an astronaut.",
      "Michael Collins was the pilot of Apollo 11."]),
    ("He was an American composer, conductor, and musical director.",
     ["He was an American composer.", "He was a conductor.", "He was a musical director."]),
    ("She studied law in Paris and later moved to Rome; she died in 1990.",
     ["She studied law in Paris.", "She later moved to Rome.", "She died in 1990."]),
    ("Ada Lovelace (1815–1852) was an English mathematician.",
     ["Ada Lovelace was born in 1815.", "Ada Lovelace died in 1852.", "Ada Lovelace was an English mathematician."]),
    ("He liked salt and pepper.", ["He liked salt and pepper."]),
    ("She met a man who played chess.", ["She met a man who played chess."]),
    ("The team won the cup in 1998 and 2002.", ["The team won the cup in 1998 and 2002."]),
])
def test_split_claims(sentence, claims):
    assert split_claims(sentence) == claims


def test_template_question():
    assert template_question("She was born in Paris.", "Ada Byron") == "Is it true that Ada Byron was born in Paris?"
    assert template_question("In 1990 he moved.") == "Is it true that in 1990 he moved?"
    assert template_question("Paris is big.") == "Is it true that Paris is big?"


# --- LLM decomposition --------------------------------------------------------------------------------------
def test_parse_facts_like_factscore():
    assert parse_facts("- A is b.\n- C is d\n\nignored") == ["A is b.", "C is d."]
    assert parse_facts("nothing here") == []


def test_llm_decomposition_prompt_parse_fallback_and_cache(tmp_path):
    def complete(prompt, k):
        if "Statement:" in prompt:
            return " What was Ann?"
        if prompt.rsplit("independent facts: ", 1)[1].startswith("Ann was a poet"):
            return "- Ann was a poet.\n- Ann was Irish\n\nPlease breakdown"
        return "no list here"

    eng = FakeEngine(complete)
    path = tmp_path / "cache.jsonl"
    cache = ClaimCache(path)
    texts = ["Ann was a poet from Ireland. She wrote ten books and won a prize.", "Ann was a poet from Ireland."]
    out = decompose(eng, texts, ["Ann", "Ann"], claims="llm", questions="llm", cache=cache, n_demos=2)
    cache.close()
    first = out[0]
    assert [c["text"] for c in first] == ["Ann was a poet.", "Ann was Irish.", "She wrote ten books.",
                                          "She won a prize."]
    assert [c["source"] for c in first] == ["llm", "llm", "rules", "rules"]
    assert all(c["question"] == "What was Ann?" for c in first)
    # FActScore's prompt: two demos, one retrieved by BM25, then the sentence; one prompt per distinct sentence
    demo_prompts = [p for p in eng.prompts if p.startswith("Please breakdown")]
    assert len(demo_prompts) == 2 and demo_prompts[0].count("Please breakdown") == 4
    assert "- The Moon is the Sun's Dream is a film.\n" in demo_prompts[0]
    calls = eng.generate_calls
    again = decompose(eng, texts, ["Ann", "Ann"], claims="llm", questions="llm", cache=ClaimCache(path), n_demos=2)
    assert again == out and eng.generate_calls == calls  # served from the JSONL cache
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) == 2 and all(re.fullmatch(r"[0-9a-f]{24}", r["key"]) for r in rows)
    decompose(eng, texts[:1], ["Ann"], claims="llm", questions="template", cache=ClaimCache(path), n_demos=2)
    assert len(path.read_text().splitlines()) == 3  # another method = another key


def test_factscore_prompt_has_seven_demos_and_one_retrieved():
    s = "During his career, he played for the Chicago Bulls and the Boston Celtics."
    p = P.atomic_facts_prompt(s)
    assert p.count("Please breakdown the following sentence into independent facts:") == 9
    assert p.index("McCoy played for the Broncos.") > p.index("Love and Destiny premiered in 2019.")  # retrieved last
    assert p.endswith(f"independent facts: {s}\n")
    demo = P.ATOMIC_FACTS_DEMOS[5][0]
    assert P.atomic_facts_prompt(demo, exclude=demo).count(demo) == 1  # left out of its own prompt
    assert P.retrieved_demos(demo, 1)[0][0] == demo  # like FActScore, the pool includes the fixed demos


def test_clean_up_drops_fragments_invented_numbers_and_repeats():
    sent = "Jessie Mae Brown Beavers (born 1908) was an American social worker and activist."
    facts = ["Jessie Mae Brown Beavers was born in 1908.", "Jessie Mae Brown Beavers was a social worker.",
             "Jessie Mae Brown Beavers.", "She.", "He died in 1975.", "Jessie Mae Brown Beavers was a social worker.",
             "Jessie Mae Brown Beavers was born.", "She was an activist."]
    assert clean_facts(sent, facts) == ["Jessie Mae Brown Beavers was born in 1908.",
                                        "Jessie Mae Brown Beavers was a social worker.", "She was an activist."]
    assert is_fragment("She.") and is_fragment("Jessie Mae Brown Beavers.") and not is_fragment("He was American.")


def test_claim_question_aliases():
    (c,) = decompose(None, ["Ann was a poet."], ["Ann"], questions="yesno")
    assert c[0]["question"] == "Is it true that Ann was a poet?"
    assert method_tag("rules", "yesno") == method_tag("rules", "template")
    assert method_tag("llm", "wh").startswith("claims=llm/demos=7+1/clean=v1/questions=llm")


def test_decompose_errors():
    with pytest.raises(SelfAlignError):
        decompose(None, ["x."], claims="llm")
    with pytest.raises(SelfAlignError):
        decompose(None, ["x."], claims="magic")


# --- consistency rule ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("answer,claim,question,want", [
    ("Paris", "She was born in Paris.", "Where was Ann born?", True),
    # new words of the answer {paris, france}, shared with the claim {paris}: 1/2 >= 0.5
    ("She was born in Paris, France.", "She was born in Paris.", "Where was Ann born?", True),
    ("Rome, Italy, Europe", "She was born in Rome.", "Where was Ann born?", False),  # 1/3 < 0.5
    ("Rome", "She was born in Paris.", "Where was Ann born?", False),
    ("Ann was born.", "She was born in Paris.", "Where was Ann born?", False),  # only repeats the question
    ("Yes, it is.", "Ann was born in Paris.", "Is it true that Ann was born in Paris?", True),
    ("No.", "Ann was born in Paris.", "Is it true that Ann was born in Paris?", False),
    ("Ann Lee was indeed born in Paris.", "Ann was born in Paris.", "Is it true that Ann was born in Paris?", True),
    ("Ann wasn't born in Paris.", "Ann was born in Paris.", "Is it true that Ann was born in Paris?", False),
    ("That is a false claim.", "Ann was born in Paris.", "Is it true that Ann was born in Paris?", False),
    ("She was a painter.", "Ann was born in Paris.", "Is it true that Ann was born in Paris?", False),
    ("", "Ann was born in Paris.", "Where was Ann born?", False),
])
def test_agreement_rule(answer, claim, question, want):
    assert C.agrees(answer, claim, question) is want


def test_consistency_fraction_by_hand():
    answers = {0: "Paris", 1: "Rome", 2: "Paris.", 3: "in Paris", 4: "London"}
    eng = FakeEngine(lambda p, k: answers[k])
    res = C.consistency(eng, [("Where was Ann born?", "Ann was born in Paris."),
                              ("Where was Ann born?", "Ann was born in Rome.")], k=5)
    assert [r["p_agree"] for r in res] == [3 / 5, 1 / 5]
    assert eng.generate_calls == 1 and len(eng.prompts) == 1  # one distinct question, sampled once


def test_consistency_answers_do_not_depend_on_the_other_questions(tiny_engine):
    """Batched sampling used to draw from one random stream: a question's K answers changed with its batch mates,
    so an identical bio got different scores from base and aligned runs. Now each sample has its own generator,
    and all questions go to the engine in one batched call."""
    q = ("Where was Ann born?", "Ann was born in Paris.")
    others = [("Who wrote Hamlet?", "Shakespeare wrote Hamlet."), ("What is two plus two?", "Two plus two is four.")]
    alone = C.consistency(tiny_engine, [q], k=3, max_new_tokens=6, seed=7)[0]["answers"]
    mixed = C.consistency(tiny_engine, others + [q], k=3, max_new_tokens=6, seed=7)[-1]["answers"]
    assert alone == mixed
    assert C.consistency(tiny_engine, [q], k=3, max_new_tokens=6, seed=8)[0]["answers"] != alone


def test_consistency_samples_all_questions_in_one_call():
    eng = FakeEngine(lambda p, k: "Paris")
    C.consistency(eng, [("Where was Ann born?", "Ann was born in Paris."), ("Who wrote Hamlet?", "Shakespeare.")],
                  k=2)
    assert eng.generate_calls == 1 and len(eng.prompts) == 2


# --- scoring: --method claims / consistency -----------------------------------------------------------------
ROWS = [{"id": "b1", "sample_idx": 0, "question": "Tell me a bio of Ann Lee.",
         "response": "Ann Lee was born in Paris and studied in Rome. She was a painter."},
        {"id": "b2", "sample_idx": 0, "question": "Tell me a bio of Ann Lee.", "response": "I'm sorry."}]


def test_score_claims_ptrue_mean_and_min():
    eng = FakeEngine(p_a=lambda p: 0.9 if "Paris" in p.rsplit("Question:", 1)[1] else 0.3)
    out = score_rows(eng, ROWS, ScoreConfig(method="claims"))
    cl = out[0]["claims"]
    assert [c["text"] for c in cl] == ["Ann Lee was born in Paris.", "Ann Lee studied in Rome.",
                                       "She was a painter."]
    assert cl[2]["question"] == "Is it true that Ann Lee was a painter?"  # topic parsed from the question
    assert [round(c["p_true"], 6) for c in cl] == [0.9, 0.3, 0.3]
    assert out[0]["score"] == pytest.approx((0.9 + 0.3 + 0.3) / 3)
    assert out[0]["n_claims"] == 3 and out[0]["score_method"] == "claims"
    assert out[1]["n_claims"] == 1  # "I'm sorry." is one (short) claim by the rules
    low = score_rows(eng, ROWS, ScoreConfig(method="claims", claim_agg="min"))
    assert low[0]["score"] == pytest.approx(0.3)
    eng.prompts = []
    prm = score_rows(eng, ROWS[:1], ScoreConfig(method="claims", claim_context="prompt"))
    assert prm[0]["claim_context"] == "prompt" and len(eng.prompts) == 3
    assert all(p.endswith("Question: Tell me a bio of Ann Lee.\nProposed Answer: " + c["text"] +
                          "\nIs the proposed answer:\n A. True\n B. False\nThe proposed answer is:")
               for p, c in zip(eng.prompts, prm[0]["claims"]))
    with pytest.raises(SelfAlignError):
        score_rows(eng, ROWS, ScoreConfig(method="claims", claim_agg="median"))


def test_score_consistency_method():
    eng = FakeEngine(lambda p, k: "Yes" if (k < 2 or "painter" in p) else "No")
    out = score_rows(eng, ROWS[:1], ScoreConfig(method="consistency", consistency_k=4))
    assert [c["p_agree"] for c in out[0]["claims"]] == [0.5, 0.5, 1.0]
    assert out[0]["score"] == pytest.approx(2 / 3) and "consistency_rule" in out[0]


def test_run_score_claims_tiny_engine_resume(tiny_engine, tmp_path):
    inp, outp = tmp_path / "s.jsonl", tmp_path / "scores.jsonl"
    inp.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    cfg = ScoreConfig(input=str(inp), output=str(outp), method="claims", claim_cache=str(tmp_path / "c.jsonl"))
    s1 = run_score(cfg, engine=tiny_engine)
    rows = [json.loads(line) for line in outp.read_text().splitlines()]
    assert s1["new_rows"] == 2 and len(rows) == 2
    for r in rows:
        ps = [c["p_true"] for c in r["claims"]]
        assert all(0 <= p <= 1 for p in ps) and r["score"] == pytest.approx(sum(ps) / len(ps))
    assert run_score(cfg, engine=tiny_engine)["new_rows"] == 0
