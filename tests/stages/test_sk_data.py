"""SK-Tuning data: options and samples modes, balance, splits without leakage, held-out tasks, matching."""
from __future__ import annotations

import json
from collections import Counter

import pytest

from selfalign import prompts as P
from selfalign.engines.base import Generation
from selfalign.errors import SelfAlignError
from selfalign.stages.sk_data import SKDataConfig, match_answer, run_sk_data
from selfalign.store.paths import portable
from selfalign.text import normalize

ENDING = "The proposed answer is:"


def _read(path):
    return [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """A fake data root with two BIG-bench tasks: 'quiz' (20 questions) and 'yesno' (4 questions)."""
    root = tmp_path / "data"
    quiz = {"examples": [{"input": f"What is {i} plus one?",
                          "target_scores": {str(i + 1): 1, str(i + 2): 0, str(i + 3): 0, "none": 0}}
                         for i in range(19)]}
    # one question with two true options and one false: balanced to 1 + 1
    quiz["examples"].append({"input": "Name a primary colour.", "target_scores": {"red": 1, "blue": 1, "green": 0}})
    yesno = {"task_prefix": "Answer yes or no.",
             "examples": [{"input": f"Is {i} even?", "target_scores": {"Yes": int(i % 2 == 0), "No": int(i % 2)}}
                          for i in range(4)]}
    for name, task in (("quiz", quiz), ("yesno", yesno)):
        (root / "bigbench" / name).mkdir(parents=True)
        (root / "bigbench" / name / "task.json").write_text(json.dumps(task))
    monkeypatch.setenv("SELFALIGN_DATA", str(root))
    return root


@pytest.fixture
def mc_file(tmp_path):
    rows = [
        {"id": "m1", "question": "Capital of France?", "options": [{"text": "Paris", "label": 1},
                                                                  {"text": "Lyon", "label": 0}]},
        {"id": "m2", "question": "Largest planet?", "options": [{"text": "Jupiter", "label": 1},
                                                               {"text": "Mars", "label": 0},
                                                               {"text": "Venus", "label": 0}]},
        {"id": "m3", "question": "No false option here?", "options": [{"text": "yes", "label": 1}]},
    ]
    path = tmp_path / "mc.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_options_mode_mc_jsonl(tmp_path, mc_file):
    out = tmp_path / "sk.jsonl"
    s = run_sk_data(SKDataConfig(sources=[str(mc_file)], output=str(out), heldout_fraction=0.0, shots=2))
    rows = _read(out)
    # m1: 1 true + 1 false; m2: 1 true + 1 of 2 false; m3: skipped (no false option)
    assert len(rows) == 4
    assert Counter(r["id"] for r in rows) == {"m1": 2, "m2": 2}
    assert s["skipped_questions"] == {"mc": 1}
    assert s["totals"]["train"] == {"true": 2, "false": 2, "questions": 3}
    for r in rows:
        assert r["prompt"].endswith(ENDING)
        assert r["prompt"] == P.ptrue_prompt(r["question"], r["proposal"], 2)
        assert r["prompt"].count("Proposed Answer:") == 3  # two demos + the question
        assert (r["chosen"], r["rejected"]) == (("A", "B") if r["label"] == 1 else ("B", "A"))
        assert r["task"] == "mc" and r["mode"] == "options" and r["split"] == "train"
    truth = {("m1", "Paris"): 1, ("m1", "Lyon"): 0, ("m2", "Jupiter"): 1, ("m2", "Mars"): 0, ("m2", "Venus"): 0}
    assert all(truth[(r["id"], r["proposal"])] == r["label"] for r in rows)
    assert _read(tmp_path / "sk.heldout.jsonl") == [] and _read(tmp_path / "sk.heldout_tasks.jsonl") == []
    meta = json.loads((tmp_path / "sk.jsonl.meta.json").read_text())
    assert meta["counts"]["mc"]["train"] == {"true": 2, "false": 2, "questions": 2}
    assert meta["config"]["sources"] == [portable(str(mc_file))] and "versions" in meta  # no machine path


def test_options_mode_bigbench_balance_split_and_heldout_task(tmp_path, data_dir):
    out = tmp_path / "sk.jsonl"
    cfg = SKDataConfig(sources=["bigbench:all"], output=str(out), heldout_fraction=0.3, heldout_tasks=["yesno"],
                       seed=3, instruction="Judge the answer.")
    s = run_sk_data(cfg)
    files = {k: _read(v) for k, v in s["files"].items()}
    # yesno goes to its own file whole: 4 questions x (1 true + 1 false)
    assert {r["task"] for r in files["heldout_task"]} == {"yesno"} and len(files["heldout_task"]) == 8
    assert all(r["split"] == "heldout_task" for r in files["heldout_task"])
    assert files["heldout_task"][0]["question"].startswith("Answer yes or no.")
    quiz = files["train"] + files["heldout"]
    assert {r["task"] for r in quiz} == {"quiz"}
    # every quiz question gives exactly one true and one false proposal
    per_q = Counter((r["id"], r["label"]) for r in quiz)
    assert len(per_q) == 40 and set(per_q.values()) == {1}
    assert all(r["prompt"].startswith("Judge the answer.\n\n") and r["prompt"].endswith(ENDING) for r in quiz)
    # no question in two splits, and both splits used
    ids = {k: {r["id"] for r in v} for k, v in files.items()}
    assert not ids["train"] & ids["heldout"] and not (ids["train"] | ids["heldout"]) & ids["heldout_task"]
    assert ids["train"] and ids["heldout"] and len(ids["train"]) + len(ids["heldout"]) == 20
    assert all(r["split"] == "heldout" for r in files["heldout"])
    # the same question lands in the same split when another task is added or the cap changes
    run_sk_data(SKDataConfig(sources=["bigbench:quiz"], output=str(tmp_path / "b.jsonl"), heldout_fraction=0.3,
                             seed=3))
    assert {r["id"] for r in _read(tmp_path / "b.heldout.jsonl")} == ids["heldout"]
    # rerun is identical (deterministic), and the output loads with datasets
    before = out.read_text()
    run_sk_data(cfg)
    assert out.read_text() == before
    import datasets

    ds = datasets.load_dataset("json", data_files={"train": str(out), "heldout": s["files"]["heldout"]})
    assert ds["train"].num_rows == len(files["train"]) and {"prompt", "chosen", "rejected"} <= set(ds["train"].features)


def test_max_per_task_is_deterministic(tmp_path, data_dir):
    cfg = SKDataConfig(sources=["bigbench:quiz"], output=str(tmp_path / "a.jsonl"), heldout_fraction=0.0,
                       max_per_task=5, seed=1)
    s = run_sk_data(cfg)
    ids = {r["id"] for r in _read(tmp_path / "a.jsonl")}
    assert len(ids) == 5 and s["totals"]["train"]["questions"] == 5
    run_sk_data(cfg)
    assert {r["id"] for r in _read(tmp_path / "a.jsonl")} == ids


def test_bad_config(tmp_path, data_dir):
    with pytest.raises(SelfAlignError, match="heldout-tasks"):
        run_sk_data(SKDataConfig(sources=["bigbench:quiz"], output=str(tmp_path / "x.jsonl"), heldout_tasks=["nope"]))
    with pytest.raises(SelfAlignError, match="shots"):
        run_sk_data(SKDataConfig(sources=["bigbench:quiz"], output=str(tmp_path / "x.jsonl"), shots=9))
    with pytest.raises(SelfAlignError, match="sources"):
        run_sk_data(SKDataConfig(output=str(tmp_path / "x.jsonl")))


def test_normalised_matching():
    opts = [{"text": "Four", "label": 1}, {"text": "two", "label": 0}, {"text": "four hundred", "label": 0}]
    assert normalize("  The  Answer, is: FOUR! ") == "answer is four"
    assert match_answer("four.", opts) == 1                 # exact beats the longer wrong option
    assert match_answer("Horses have four legs.", opts) == 1  # contains the gold text
    assert match_answer("Two", opts) == 0
    assert match_answer("Fourteen", opts) is None           # whole words only
    assert match_answer("two or four", opts) is None        # both: ambiguous
    assert match_answer("a", opts) is None                  # nothing left after normalising
    assert match_answer("It is Jupiter", [{"text": "the planet Jupiter", "label": 1}]) is None
    assert match_answer("Jupiter", [{"text": "the planet Jupiter", "label": 1}]) == 1  # gold contains answer


class StubEngine:
    """Returns fixed answers in turn; records the prompts it saw."""

    info = {"model": "stub"}

    def __init__(self, answers):
        self.answers, self.prompts = answers, []

    def has_chat_template(self):
        return False

    def chat_prompt(self, text):
        return text

    def generate(self, prompts, cfg, seed):
        self.prompts += list(prompts)
        return [[Generation(self.answers[k % len(self.answers)], 2) for k in range(cfg.n)] for _ in prompts]


def test_samples_mode_with_stub_engine(tmp_path, mc_file):
    out = tmp_path / "s.jsonl"
    # per question: Paris/Jupiter are gold for m1/m2 only; "I don't know" matches nothing; "yes" is m3's gold
    eng = StubEngine(["Paris.", "It is Jupiter", "Mars", "I don't know", "Paris."])
    cfg = SKDataConfig(sources=[str(mc_file)], output=str(out), mode="samples", n=5, heldout_fraction=0.0)
    s = run_sk_data(cfg, engine=eng)
    rows = _read(out)
    assert eng.prompts[0] == P.answer_template("qa").render("Capital of France?")
    by_q = {q: [(r["proposal"], r["label"]) for r in rows if r["id"] == q] for q in ("m1", "m2", "m3")}
    # m1 (Paris/Lyon): Paris x2 true (duplicates kept); the rest match nothing
    assert by_q["m1"] == [("Paris.", 1), ("Paris.", 1)]
    # m2 (Jupiter/Mars/Venus): "It is Jupiter" true, "Mars" false
    assert by_q["m2"] == [("It is Jupiter", 1), ("Mars", 0)]
    assert by_q["m3"] == []
    assert s["unknown_answers"] == {"mc": 3 + 3 + 5}
    assert s["totals"]["train"] == {"true": 3, "false": 1, "questions": 3}
    assert all(r["mode"] == "samples" and r["prompt"].endswith(ENDING) for r in rows)
    assert [r["sample_idx"] for r in rows if r["id"] == "m1"] == [0, 4]
    # a rerun resumes: nothing new sampled, nothing duplicated
    eng2 = StubEngine(["Lyon"])
    s2 = run_sk_data(cfg, engine=eng2)
    assert eng2.prompts == [] and s2["new_questions"] == 0 and _read(out) == rows
    with pytest.raises(SelfAlignError, match="other settings"):
        run_sk_data(SKDataConfig(sources=[str(mc_file)], output=str(out), mode="samples", n=5, seed=9), engine=eng2)



def test_samples_mode_redoes_an_edited_question_and_only_it(tmp_path, mc_file):
    """Issue 34 (staleness): a question edited after it was sampled is sampled again (its old rows dropped, the
    other questions' rows kept byte for byte); an edited option (which changes its labels) counts as an edit."""
    out = tmp_path / "s.jsonl"
    cfg = SKDataConfig(sources=[str(mc_file)], output=str(out), mode="samples", n=2, heldout_fraction=0.0)
    run_sk_data(cfg, engine=StubEngine(["Jupiter", "Mars"]))
    before = out.read_text().splitlines()
    assert {json.loads(x)["id"] for x in before} == {"m2"}
    rows = _read(mc_file)
    rows[1]["question"] = "Which planet is the largest?"
    mc_file.write_text("".join(json.dumps(r) + "\n" for r in rows))
    eng = StubEngine(["Mars", "Venus"])
    s = run_sk_data(cfg, engine=eng)
    assert s["redone_edited_questions"] == 1 and s["new_questions"] == 1
    assert eng.prompts == [P.answer_template("qa").render("Which planet is the largest?")]
    got = _read(out)
    assert [(r["id"], r["question"], r["proposal"], r["label"]) for r in got] == [
        ("m2", "Which planet is the largest?", "Mars", 0), ("m2", "Which planet is the largest?", "Venus", 0)]
    progress = _read(str(out) + ".progress.jsonl")
    assert sorted(r["id"] for r in progress) == ["m1", "m2", "m3"]  # one line per question, none repeated
    # an option's label edited: m1's answers are labelled again (Lyon becomes the true option)
    rows[0]["options"] = [{"text": "Paris", "label": 0}, {"text": "Lyon", "label": 1}]
    mc_file.write_text("".join(json.dumps(r) + "\n" for r in rows))
    s = run_sk_data(cfg, engine=StubEngine(["Paris", "Lyon"]))
    assert s["redone_edited_questions"] == 1
    assert [(r["proposal"], r["label"]) for r in _read(out) if r["id"] == "m1"] == [("Paris", 0), ("Lyon", 1)]
    # nothing edited: nothing sampled
    eng = StubEngine(["x"])
    assert run_sk_data(cfg, engine=eng)["redone_edited_questions"] == 0 and eng.prompts == []

def test_real_general_knowledge_is_balanced(tmp_path):
    from selfalign.data import data_root

    root = data_root()
    if root is None or not (root / "bigbench" / "general_knowledge" / "task.json").exists():
        pytest.skip("no shared data")
    examples = json.loads((root / "bigbench" / "general_knowledge" / "task.json").read_text())["examples"]
    n_q = len(examples)
    # per question: min(#true, #false) rows of each label (target score > 0 is true)
    expect = sum(min(sum(v > 0 for v in e["target_scores"].values()), sum(v <= 0 for v in e["target_scores"].values()))
                 for e in examples)
    s = run_sk_data(SKDataConfig(sources=["bigbench:general_knowledge"], output=str(tmp_path / "gk.jsonl")))
    t = s["totals"]
    assert t["train"]["true"] == t["train"]["false"] and t["heldout"]["true"] == t["heldout"]["false"]
    assert t["train"]["true"] + t["heldout"]["true"] == expect
    assert t["train"]["questions"] + t["heldout"]["questions"] == n_q and t["heldout"]["questions"] > 0


def test_samples_mode_with_tiny_model(tmp_path, mc_file, tiny_engine):
    out = tmp_path / "t.jsonl"
    cfg = SKDataConfig(sources=[str(mc_file)], output=str(out), mode="samples", n=2, max_new_tokens=4,
                       heldout_fraction=0.0, chat_template="off")
    s = run_sk_data(cfg, engine=tiny_engine)
    kept = s["totals"]["train"]["true"] + s["totals"]["train"]["false"]
    assert kept + s["unknown_answers"].get("mc", 0) == 3 * 2 and len(_read(out)) == kept
    meta = json.loads((tmp_path / "t.jsonl.meta.json").read_text())
    assert meta["answer_template"] == "qa" and meta["model_info"] == portable(tiny_engine.info)
