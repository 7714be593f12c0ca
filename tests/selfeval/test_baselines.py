import pytest
from selfalign.selfeval import baselines as B

# two tasks; "Yes" is offered in three questions of t1, "No" in two, "Paris" once; t2 has its own "Yes"
ROWS = [
    {"task": "t1", "id": "1", "option": "Yes", "label": 1},
    {"task": "t1", "id": "1", "option": "No", "label": 0},
    {"task": "t1", "id": "2", "option": "yes.", "label": 0},   # normalises to "yes"
    {"task": "t1", "id": "2", "option": "No", "label": 1},
    {"task": "t1", "id": "3", "option": "Yes", "label": 1},
    {"task": "t1", "id": "3", "option": "The Paris", "label": 0},  # "paris" (article dropped)
    {"task": "t2", "id": "1", "option": "Yes", "label": 0},
    {"task": "t2", "id": "1", "option": "A much longer answer", "label": 1},
]


def test_answer_frequency_by_hand():
    assert B.answer_frequency(ROWS) == [3, 2, 3, 2, 3, 1, 1, 1]


def test_answer_frequency_counts_a_question_once():
    rows = [{"task": "t", "id": "q", "option": "Yes", "label": 1},
            {"task": "t", "id": "q", "option": "yes", "label": 0}]
    assert B.answer_frequency(rows) == [1, 1]


def test_option_length_by_hand():
    assert B.option_length(ROWS) == [3, 2, 4, 2, 3, 9, 3, 20]
    assert B.option_length([{"option": "  ab  "}]) == [2]


def test_train_true_rate_by_hand():
    train = [{"task": "t1", "option": "Yes", "label": 1}, {"task": "t1", "option": "YES", "label": 1},
             {"task": "t1", "option": "yes", "label": 0}, {"task": "t1", "option": "No", "label": 0},
             {"task": "t2", "option": "No", "label": 1}]
    got = B.train_true_rate(ROWS[:2] + ROWS[5:7], train)
    # t1 "yes": (2 + 1) / (3 + 2); t1 "no": (0 + 1) / (1 + 2); unseen: 0.5; t2 "yes" unseen in t2: 0.5
    assert got == pytest.approx([3 / 5, 1 / 3, 0.5, 0.5])
    assert B.train_true_rate(ROWS[:1], train, prior=0.0) == pytest.approx([2 / 3])


def test_option_length_auroc_by_hand():
    from selfalign.metrics import auroc

    # true lengths 3, 2, 3, 20 vs false 2, 4, 9, 3: pairs won 1.5 + 0.5 + 1.5 + 4 (ties count half) of 16
    assert auroc([r["label"] for r in ROWS], B.option_length(ROWS)) == pytest.approx(7.5 / 16)
