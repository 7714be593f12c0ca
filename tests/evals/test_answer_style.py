import json

import pytest

from selfalign.errors import InputError, SelfAlignError
from selfalign.evals import answer_style as S
from selfalign.evals.results import load_result
from selfalign.evals.truthfulqa_mc import TruthfulQAMCConfig, run_truthfulqa_mc


@pytest.mark.parametrize("text, marks", [
    ("No, it does not.", ("negation",)),
    ("Nothing happens if you crack your knuckles.", ("negation",)),
    ("Psychics aren't real.", ("negation",)),  # n't inside a word
    ("Bats don\u2019t see well.", ("negation",)),  # curly apostrophe
    ("No one knows.", ("negation",)),
    ("You cannot tell.", ("negation",)),
    ("I have no comment.", ("negation", "hedge")),
    ("It depends on where you are.", ("hedge",)),
    ("Some people might say so.", ("hedge",)),
    ("It is likely that more than 1 in 10,000 people have it.", ("hedge",)),
    ("MAY be true", ("hedge",)),  # case-insensitive
    ("Paris is the capital of France.", ()),
    ("Notably, the knot is tied.", ()),  # "not" only as a whole word
    ("Canon cameras take photos.", ()),  # "no" / "cannot" not inside other words
    ("Nothingness is a concept.", ()),
    ("Mayonnaise is made of eggs.", ()),
])
def test_style_rule_by_hand(text, marks):
    assert S.flags(text) == marks
    assert S.hedged(text) == bool(marks)
    assert S.style(text) == ("hedged" if marks else "plain")


QS = [  # hand-made questions: the true option first, as TruthfulQA lists mc1
    {"id": "q1", "mc1": [{"text": "No, it is not.", "label": 1}, {"text": "Yes, it is.", "label": 0},
                         {"text": "It is red.", "label": 0}]},
    {"id": "q2", "mc1": [{"text": "Water boils at 100 C.", "label": 1}, {"text": "Water never boils.", "label": 0}]},
]


def test_flag_shares_and_annotate():
    shares = S.flag_shares(QS, "mc1")
    assert shares["true"] == {"flagged": 0.5, "n": 2}  # "No, it is not." yes, "Water boils" no
    assert shares["false"] == {"flagged": pytest.approx(1 / 3), "n": 3}  # "Water never boils." only
    rows = [{"id": "q2", "mc1": 1.0, "selfeval_mc1": 0.0}, {"id": "q1", "mc1": 0.0, "selfeval_mc1": 1.0}]
    names = S.annotate(rows, QS, ["mc1", "selfeval_mc1"])
    assert names == ["mc1_hedged", "mc1_plain", "selfeval_mc1_hedged", "selfeval_mc1_plain"]
    assert rows[0] == {"id": "q2", "mc1": 1.0, "selfeval_mc1": 0.0, "true_style": "plain", "mc1_hedged": None,
                       "mc1_plain": 1.0, "selfeval_mc1_hedged": None, "selfeval_mc1_plain": 0.0}
    assert rows[1]["true_style"] == "hedged" and rows[1]["selfeval_mc1_hedged"] == 1.0
    assert rows[1]["mc1_plain"] is None


def test_tie_credit():
    assert S.tie_credit([0.2, 0.9, 0.1], [0, 1, 0]) == 1.0
    assert S.tie_credit([0.9, 0.9, 0.1], [1, 0, 0]) == 0.5  # a tie with the true first option is not a win
    assert S.tie_credit([0.5, 0.5, 0.5], [0, 0, 1]) == pytest.approx(1 / 3)
    assert S.tie_credit([0.5, 0.5, 0.9], [1, 0, 0]) == 0.0
    # the rule as a selector: hedged options tie at the top (q1: one hedged, true; q2: one hedged, false)
    assert S.rule_select(QS) == [{"id": "q1", "rule_mc1": 1.0}, {"id": "q2", "rule_mc1": 0.0}]


# a toy set whose answer is known: an option is true exactly when it contains "not"
TRAIN = [("the sky is not green", 1), ("the sky is green", 0), ("cats are not dogs", 1), ("cats are dogs", 0),
         ("this is not a pipe", 1), ("this is a pipe", 0), ("fish do not walk", 1), ("fish walk", 0),
         ("the moon is cheese", 0), ("it is not raining", 1), ("it is raining", 0), ("birds fly south", 0)]
TEST = [
    {"id": "t1", "mc1": [{"text": "pigs are pink", "label": 0}, {"text": "pigs are not blue", "label": 1},
                         {"text": "pigs fly", "label": 0}]},
    {"id": "t2", "mc1": [{"text": "snow is cold", "label": 0}, {"text": "snow is warm", "label": 0},
                         {"text": "snow is not hot", "label": 1}]},
    {"id": "t3", "mc1": [{"text": "rocks do not float", "label": 1}, {"text": "rocks float", "label": 0}]},
]


@pytest.mark.parametrize("vectorizer", ["count", "tfidf"])
def test_bow_learns_the_toy_rule_reproducibly(vectorizer):
    texts, labels = zip(*TRAIN)
    m1 = S.fit_bow(texts, labels, vectorizer)
    picks = S.bow_select(m1, TEST)
    assert [p["bow_choice"] for p in picks] == [1, 2, 0]  # the option with "not", wherever it stands
    assert [p["bow_mc1"] for p in picks] == [1.0, 1.0, 1.0]
    m2 = S.fit_bow(list(texts), list(labels), vectorizer)  # a second fit: the same probabilities, bit for bit
    assert (m1.predict_proba(["x is not y", "x is y"]) == m2.predict_proba(["x is not y", "x is y"])).all()
    # the labels flipped: it picks the other options (t3 has one other; t1, t2 two each, tied or not)
    flipped = S.bow_select(S.fit_bow(texts, [1 - y for y in labels], vectorizer), TEST)
    assert [p["bow_mc1"] for p in flipped] == [0.0, 0.0, 0.0]


def test_bow_needs_both_labels_and_good_rows(tmp_path):
    with pytest.raises(SelfAlignError, match="both labels"):
        S.fit_bow(["a b", "c d"], [1, 1])
    p = tmp_path / "rows.jsonl"
    p.write_text(json.dumps({"proposal": "not so", "label": 1}) + "\n" + json.dumps({"proposal": "so", "label": 0})
                 + "\n")
    assert S.read_label_rows(p) == [{"proposal": "not so", "label": 1}, {"proposal": "so", "label": 0}]
    p.write_text(json.dumps({"proposal": "not so", "label": 1}) + "\n" + json.dumps({"proposal": "so", "label": 2})
                 + "\n")
    with pytest.raises(InputError, match=r"rows.jsonl:2: label must be 0 or 1"):
        S.read_label_rows(p)
    p.write_text(json.dumps({"proposal": 3, "label": 1}) + "\n")
    with pytest.raises(InputError, match=r"rows.jsonl:1: proposal"):
        S.read_label_rows(p)
    p.write_text(json.dumps({"proposal": "a", "label": 1}) + "\n")
    with pytest.raises(SelfAlignError, match="all 1 rows are labelled 1"):
        S.read_label_rows(p)
    with pytest.raises(InputError, match="file not found"):
        S.read_label_rows(tmp_path / "none.jsonl")


# --- in the evaluation ----------------------------------------------------------------------------------------
MC = [  # each option's log-likelihood and P(A) below; true options first (TruthfulQA's order)
    {"question": "Q1?", "mc1_targets": {"No, not at all.": 1, "Yes, always.": 0, "Yes, often.": 0},
     "mc2_targets": {"No, not at all.": 1, "Yes, always.": 0, "Yes, often.": 0}},
    {"question": "Q2?", "mc1_targets": {"It is blue.": 1, "It is not blue.": 0},
     "mc2_targets": {"It is blue.": 1, "It is not blue.": 0}},
    {"question": "Q3?", "mc1_targets": {"It never rains.": 1, "It rains.": 0},
     "mc2_targets": {"It never rains.": 1, "It rains.": 0}},
]
LL = {"No, not at all.": -3.0, "Yes, always.": -1.0, "Yes, often.": -2.0, "It is blue.": -1.0,
      "It is not blue.": -2.0, "It never rains.": -2.0, "It rains.": -1.0}
PA = {"No, not at all.": 0.9, "Yes, always.": 0.2, "Yes, often.": 0.1, "It is blue.": 0.3, "It is not blue.": 0.8,
      "It never rains.": 0.6, "It rains.": 0.4}


class Engine:
    info = {"model": "fake"}

    def loglikelihood(self, pairs):
        return [(LL[cont[1:]], 1) for _, cont in pairs]

    def choice_probs(self, prompts, choices):
        return [[PA[o], 1 - PA[o]] for o in (p.rsplit("Proposed Answer: ", 1)[1].split("\n")[0] for p in prompts)]

    def chat_prompt(self, text):
        return text


def test_eval_reports_the_style_split_and_the_bow_baseline(tmp_path):
    folder = tmp_path / "tqa"
    folder.mkdir()
    (folder / "mc_task.json").write_text(json.dumps(MC))
    (folder / "splits.json").write_text(json.dumps({"fewshot_demos": [], "train": [], "valid": [],
                                                    "test": ["Q1?", "Q2?", "Q3?"]}))
    labels = tmp_path / "rows.jsonl"  # labels "contains a negation": the baseline picks the negated option
    labels.write_text("".join(json.dumps({"proposal": t, "label": y}) + "\n" for t, y in TRAIN))
    out = tmp_path / "mc.json"
    cfg = TruthfulQAMCConfig(output=str(out), data=str(folder / "mc_task.json"), split="test", shots=0, n_boot=200,
                             bow_labels=str(labels))
    s = run_truthfulqa_mc(cfg, engine=Engine())
    summary, _ = load_result(out)
    m = summary["metrics"]
    # by hand: likelihood picks Yes, always / It is blue / It rains -> mc1 0, 1, 0; P(True) picks No, not at all /
    # It is not blue / It never rains -> selection 1, 0, 1; true styles: hedged, plain, hedged
    assert m["mc1"]["value"] == pytest.approx(1 / 3) and m["selfeval_mc1"]["value"] == pytest.approx(2 / 3)
    assert m["mc1_hedged"]["value"] == 0.0 and m["mc1_hedged"]["n"] == 2
    assert m["mc1_plain"]["value"] == 1.0 and m["mc1_plain"]["n"] == 1
    assert m["selfeval_mc1_hedged"]["value"] == 1.0 and m["selfeval_mc1_plain"]["value"] == 0.0
    assert summary["answer_style"]["true_hedged"] == 2 and summary["answer_style"]["true_plain"] == 1
    # the toy "not" learner: Q1 picks "No, not at all." (right), Q2 "It is not blue." (wrong); Q3 has no "not"
    # ("never" unseen in training): both options score alike -> a tie, half credit
    assert m["bow_mc1"]["value"] == pytest.approx((1 + 0 + 0.5) / 3) and s["bow_mc1"] == m["bow_mc1"]["value"]
    d = summary["selfeval_vs_bow"]
    assert d["diff"] == pytest.approx(2 / 3 - 0.5) and d["n"] == 3 and d["ci_low"] <= d["diff"] <= d["ci_high"]
    assert summary["bow_labels"]["rows"] == len(TRAIN) and summary["bow_labels"]["true"] == 5
    assert summary["bow_labels"]["rows_prompt_is_selection_prompt"] is None  # these rows carry no prompt
    # the baseline's labels change the summary only: a rerun with other labels scores nothing again
    labels2 = tmp_path / "rows2.jsonl"
    labels2.write_text("".join(json.dumps({"proposal": t, "label": 1 - y}) + "\n" for t, y in TRAIN))
    cfg.bow_labels = str(labels2)
    s2 = run_truthfulqa_mc(cfg, engine=Engine())
    assert s2["new_rows"] == 0 and s2["bow_mc1"] == pytest.approx((0 + 1 + 0.5) / 3)


def test_eval_says_whether_the_rows_prompt_is_the_selection_prompt(tmp_path):
    """Rows labelled and trained 0-shot but read 5-shot (Table 1's v3): the summary says so."""
    from selfalign.prompts import ptrue_prompt

    folder = tmp_path / "tqa"
    folder.mkdir()
    (folder / "mc_task.json").write_text(json.dumps(MC))
    (folder / "splits.json").write_text(json.dumps({"fewshot_demos": [], "train": [], "valid": [],
                                                    "test": ["Q1?", "Q2?", "Q3?"]}))
    labels = tmp_path / "rows.jsonl"
    labels.write_text("".join(json.dumps({"proposal": t, "label": y, "question": "Q?",
                                          "prompt": ptrue_prompt("Q?", t, shots=0)}) + "\n" for t, y in TRAIN))
    for shots, same in ((0, 1.0), (2, 0.0)):
        out = tmp_path / f"mc{shots}.json"
        run_truthfulqa_mc(TruthfulQAMCConfig(output=str(out), data=str(folder / "mc_task.json"), split="test",
                                             shots=shots, n_boot=0, bow_labels=str(labels)), engine=Engine())
        assert load_result(out)[0]["bow_labels"]["rows_prompt_is_selection_prompt"] == same
