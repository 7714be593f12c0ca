"""One answer normalisation: sk-data's labels, knowledge-qa's accuracy, the baselines and self-consistency's
support check all compare answers through `text.normalize`, so they agree on what counts as the same answer."""
from __future__ import annotations

import pytest

from selfalign import text

from selfalign.selfeval import baselines
from selfalign.selfeval import consistency
from selfalign.stages import sk_data


@pytest.mark.parametrize("raw,want", [
    ("  The  Answer, is: FOUR! ", "answer is four"),
    ("U.S.", "u s"),                          # punctuation becomes a space, not nothing
    ("don\u2019t", "don t"),                  # curly quotes are punctuation too
    ("\u201cA Tale of Two Cities\u201d", "tale of two cities"),
    ("an apple and the theory", "apple and theory"),  # articles as whole words only ("theory" keeps its "the")
    ("", ""),
    ("A", "a"), ("a.", "a"), (" The ", "the"), ("A B", "b"), ("type A", "type"),  # only an all-article text keeps it
    ("AB", "ab"), ("...", ""),
])
def test_normalize_is_pinned(raw, want):
    assert text.normalize(raw) == want


def test_every_matcher_uses_the_one_normalize():
    assert sk_data.normalize is text.normalize and consistency.normalize is text.normalize
    assert baselines.answer_frequency([{"task": "t", "id": 1, "option": "The U.S."},
                                       {"task": "t", "id": 2, "option": "u s"}]) == [2.0, 2.0]
    assert sk_data.match_targets("the U.S.!", ["U.S."]) == 1


def test_one_letter_answer_matches_itself_and_is_not_its_own_distractor():
    from selfalign.data.questions import add_distractors
    from selfalign.evals.knowledge_qa import score_answer

    assert text.match_targets("A", ["A"]) == 1 and text.match_targets("B", ["A"]) == 0
    assert score_answer("A", ["A"])["abstain"] == 0 and score_answer("A.", ["A"])["accuracy"] == 1
    types = ["A", "A", "B", "O", "A", "AB", "A", "O"]
    qs = [{"id": str(i), "task": "t", "source": "t", "question": f"The blood type of P{i} is", "targets": [t]}
          for i, t in enumerate(types)]
    for seed in range(5):
        add_distractors(qs, seed)
        for q in qs:
            assert text.normalize(q["distractor"]) != text.normalize(q["targets"][0]), (seed, q)
