"""The records each command reads, valid, and the wrong values of their fields (tests/fuzz_inputs.py)."""
from __future__ import annotations

GOOD = {
    "prompts": {"id": "q1", "question": "What is the capital of France?"},
    "samples": {"id": "q1", "sample_idx": 0, "question": "Capital of France?", "prompt": "Q: Capital of France?\nA:",
                "response": "Paris."},
    "scores": {"id": "q1", "sample_idx": 0, "question": "Capital?", "prompt": "Q: Capital?\nA:", "response": "Paris.",
               "score": 0.9},
    "mc": {"id": "m1", "question": "Capital of France?", "options": [{"text": "Paris", "label": 1},
                                                                    {"text": "Rome", "label": 0}]},
    "mc_text": {"id": "m1", "question": "Capital of France?", "options": [{"text": "Paris"}, {"text": "Rome"}]},
    "sk": {"id": "m1", "task": "t", "prompt": "Question: Q?\nProposed Answer: A\nThe proposed answer is:",
           "chosen": "A", "rejected": "B", "label": 1},
    "pairs": {"prompt": "Q: Capital?\nA:", "chosen": " Paris.", "rejected": " Rome."},
    "sft": {"prompt": "Q: Capital?\nA:", "completion": " Paris."},
    "answers": {"id": "a1", "question": "Capital of France?", "response": "Paris.",
                "correct_answers": ["Paris"], "incorrect_answers": ["Rome"]},
    "people": {"id": "p1", "topic": "Marta Ellingsen"},
    "bios": {"id": "b1", "topic": "Marta Ellingsen", "response": "Marta Ellingsen is a glaciologist."},
    "knowledge": {"title": "Marta Ellingsen", "text": "Marta Ellingsen is a Norwegian glaciologist."},
    "claims": {"key": "k1", "method": "claims=rules/questions=template", "claims": []},
}
# (field, wrong value, what the error must say) per record kind: a wrong JSON type in the second row
WRONG = {
    "prompts": [("question", 5, "question must be a string"), ("question", ["q"], "question must be a string"),
                ("id", 1.5, "id must be a string or an integer"), ("id", ["x"], "id must be"),
                ("prompt", {"a": 1}, "prompt must be a string")],
    "samples": [("question", 5, "question must be a string"), ("response", 5, "response must be a string"),
                ("response", ["x"], "response must be"), ("sample_idx", "0", "sample_idx must be an integer"),
                ("sample_idx", None, "sample_idx must be an integer, got null"), ("id", True, "id must be")],
    "scores": [("score", "high", "score must be a number"), ("score", True, "score must be a number"),
               ("response", 5, "response must be a string"), ("prompt", ["p"], "prompt must be a string"),
               ("sample_idx", 1.5, "sample_idx must be an integer")],
    "mc": [("question", 5, "question must be a string"), ("options", "x", "'options' must be a non-empty list"),
           ("options", [{"text": 5, "label": 1}], "option 0: needs a non-empty string 'text'"),
           ("options", [{"text": "a", "label": None}], "option 0: 'label' must be 0 or 1"),
           ("options", [{"text": "a", "label": "1"}], "option 0: 'label' must be 0 or 1"), ("id", [1], "id must be")],
    "mc_text": [("question", 5, "question must be a string"), ("options", "x", "'options' must be a non-empty list"),
                ("options", [{"text": 5}], "option 0: needs a non-empty string 'text'"), ("id", [1], "id must be")],
    "sk": [("chosen", ["A"], "chosen must be a string"), ("rejected", 5, "rejected must be a string"),
           ("prompt", 5, "prompt must be a string"), ("chosen", "C", "chosen/rejected must be"),
           ("label", None, "label must be 0 or 1")],
    "pairs": [("chosen", ["A"], "chosen must be a string"), ("rejected", 5, "rejected must be a string"),
              ("prompt", 5, "prompt must be a string"), ("rejected", " Paris.", "chosen and rejected are identical")],
    "sft": [("completion", 5, "completion must be a string"), ("prompt", ["p"], "prompt must be a string"),
            ("completion", None, "missing field 'completion'"), ("completion", " ", "an empty completion")],
    "answers": [("question", 5, "question must be a string"), ("response", 5, "response must be a string"),
                ("correct_answers", "Paris", "correct_answers must be a list of strings"),
                ("incorrect_answers", [1], "incorrect_answers must be a list of strings")],
    "people": [("topic", 5, "topic must be a string"), ("id", [1], "id must be")],
    "bios": [("response", 5, "response must be a string"), ("topic", ["x"], "topic must be a string"),
             ("sample_idx", "0", "sample_idx must be an integer")],
    "knowledge": [("text", 5, "'text' must be a string or a list"),
                  ("text", ["ok", None], "'text' must be a string or a list of sentences"),  # found by the property suite
                  ("title", 5, "'title' must be a string"), ("title", ["x"], "'title' must be a string")],
    "claims": [("claims", "x", "claims must be a list")],
}
# Cases known not to hold yet: (command, kind, what) -> why. None at present.
KNOWN: dict = {}
DUPLICATES = {"prompts": "duplicate id", "samples": "duplicate (id, sample_idx)", "scores": "duplicate (id, sample_idx)",
              "mc": "duplicate id", "mc_text": "duplicate id", "people": "duplicate id", "bios": "duplicate (id, sample_idx)"}
MC_TASK = [{"question": "Capital of France?", "mc1_targets": {"Paris": 1, "Rome": 0},
            "mc2_targets": {"Paris": 1, "Rome": 0}}]
CSV = "Type,Category,Question,Best Answer,Correct Answers,Incorrect Answers,Source\n" \
      "Adversarial,Geo,Capital of France?,Paris,Paris,Rome,x\n"
RESULT = {"task": "t", "metrics": {"m": {"value": 0.5, "ci_low": 0.4, "ci_high": 0.6, "n": 2}},
          "rows": "result.rows.jsonl"}
