"""The control judges of issue 36 (``score --method prior`` / ``random``): no model, hand-made rows, expected values
computed here by hand."""
from __future__ import annotations

import hashlib
import json

import pytest

from selfalign.cli import main
from selfalign.stages.score import ScoreConfig, run_score, score_rows


class HeldOut(dict):
    """A held-out question whose gold targets must never be read by the prior judge."""

    def __getitem__(self, key):
        if key == "targets":
            raise AssertionError(f"the prior judge read the gold of held-out question {dict.get(self, 'id')}")
        return dict.__getitem__(self, key)

    def get(self, key, default=None):
        return self[key] if key in self else default


def _q(qid, question, targets, split="train"):
    q = {"id": qid, "ids": [qid, f"{qid}-dup"], "question": question, "targets": targets, "task": "qa_wikidata",
         "split": split}
    return HeldOut(q) if split == "heldout" else q


QUESTIONS = [_q("t1", "The capital of Kenya is", ["Nairobi"]), _q("t2", "The capital of Peru is", ["Lima"]),
             _q("t3", "The capital of Chile is", ["Santiago", "Santiago de Chile"]),
             _q("t4", "The capital of Ruritania is", ["Lima"]), _q("t5", "The official language of Peru is", ["Spanish"]),
             _q("t6", "The capital of Spain is", ["Madrid"]),
             _q("h1", "The capital of Atlantis is", ["Poseidonia"], split="heldout")]


@pytest.fixture
def pool(monkeypatch):
    from selfalign.data import knowledge_qa
    from selfalign.selfeval import prior

    calls = []

    def questions(task, split_by="question"):
        calls.append((task, split_by))
        return QUESTIONS

    monkeypatch.setattr(knowledge_qa, "questions", questions)
    prior.training_pool.cache_clear()
    yield calls
    prior.training_pool.cache_clear()


def _row(qid, question, response, k=0, split="train"):
    return {"id": qid, "sample_idx": k, "question": question, "prompt": f"... {question}", "response": response,
            "task": "qa_wikidata", "source": "bigbench:qa_wikidata", "split": split}


def test_prior_is_the_smoothed_share_of_same_relation_training_golds(pool):
    spain = "The capital of Spain is"
    rows = [_row("t6", spain, a, k) for k, a in enumerate(
        ["Lima", "Lima, the capital", "Lima or Quito", "Madrid", "Spanish", "Poseidonia", "", "Nairobi", "Santiago",
         "santiago de chile."])]
    got = score_rows(None, rows, ScoreConfig(method="prior", prior_split_by="subject"))
    # the relation "The capital of _ is" has training questions t1, t2, t3, t4 besides t6's own: n = 4;
    # Lima is the gold of t2 and t4 (k = 2): (2 + 1) / (4 + 2); an answer naming two candidates, the own gold
    # (Madrid), another relation's gold (Spanish), a held-out gold (Poseidonia) and an empty answer: k = 0
    assert [r["score"] for r in got] == pytest.approx([3 / 6, 3 / 6, 1 / 6, 1 / 6, 1 / 6, 1 / 6, 1 / 6, 2 / 6,
                                                       2 / 6, 2 / 6])
    assert [(r["prior_k"], r["prior_n"]) for r in got][:4] == [(2, 4), (2, 4), (0, 4), (0, 4)]
    assert {r["score_method"] for r in got} == {"prior"}
    assert got[0]["prior_pool"] == "bigbench:qa_wikidata train questions (--split-by subject)"
    assert pool == [("qa_wikidata", "subject")]  # the pool is the named split's, built once
    alpha2 = score_rows(None, rows[7:8], ScoreConfig(method="prior", prior_split_by="subject", prior_alpha=2))
    assert alpha2[0]["score"] == pytest.approx((1 + 2) / (4 + 4))


def test_prior_never_reads_a_held_out_gold_and_scores_a_held_out_sample_from_training_golds(pool):
    rows = [_row("h1", "The capital of Atlantis is", a, k, split="heldout") for k, a in enumerate(["Poseidonia",
                                                                                                   "Lima"])]
    got = score_rows(None, rows, ScoreConfig(method="prior", prior_split_by="question"))
    # its own question is held out, so not in the pool: t1, t2, t3, t4, t6 (n = 5); HeldOut raises if read
    assert [r["score"] for r in got] == pytest.approx([1 / 7, 3 / 7])


def test_prior_refuses_samples_of_another_split_or_without_the_pool_setting(pool, tmp_path, capsys):
    samples = tmp_path / "s.jsonl"
    rows = [_row("t6", "The capital of Spain is", "Lima"), _row("h1", "The capital of Atlantis is", "Lima", split="train")]
    samples.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "scores.jsonl"
    assert main(["score", "--method", "prior", "--prior-split-by", "subject", "--input", str(samples),
                 "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{samples}:2:" in err and "another --split-by" in err and "\n" not in err.strip()
    assert main(["score", "--method", "prior", "--input", str(samples), "--output", str(out)]) == 2
    assert "--prior-split-by" in capsys.readouterr().err
    assert not out.exists() or not out.read_text().strip()


def test_prior_and_random_run_through_score_without_loading_a_model(pool, tmp_path):
    samples = tmp_path / "s.jsonl"
    rows = [_row("t6", "The capital of Spain is", a, k) for k, a in enumerate(["Lima", "Nairobi"])]
    samples.write_text("".join(json.dumps(r) + "\n" for r in rows))
    for method, extra in (("prior", {"prior_split_by": "subject"}), ("random", {"seed": 3})):
        out = tmp_path / f"{method}.jsonl"
        s = run_score(ScoreConfig(method=method, model=str(tmp_path / "no-such-model"), input=str(samples),
                                  output=str(out), **extra))
        assert s["new_rows"] == 2
        written = [json.loads(ln) for ln in out.read_text().splitlines()]
        assert [r["score_method"] for r in written] == [method, method]
    meta = json.loads((tmp_path / "prior.jsonl.meta.json").read_text())
    assert meta["made_with"]["prior_split_by"] == "subject"  # the pool is recorded with the output


def _expected(seed, pid, k) -> float:
    h = hashlib.sha256(f"{seed}\x1frandom-judge\x1f{pid}\x1f{k}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2 ** 64


def test_random_scores_are_seeded_per_prompt_and_sample_whatever_the_batch():
    rows = [{"id": f"q{i}", "sample_idx": k, "question": "q", "response": f"a{k}"} for i in range(3) for k in range(4)]
    cfg = ScoreConfig(method="random", seed=7)
    whole = {(r["id"], r["sample_idx"]): r["score"] for r in score_rows(None, rows, cfg)}
    assert whole == {(r["id"], r["sample_idx"]): pytest.approx(_expected(7, r["id"], r["sample_idx"])) for r in rows}
    parts = score_rows(None, rows[7:][::-1], cfg) + score_rows(None, rows[:7], cfg)  # other batches, other order
    assert {(r["id"], r["sample_idx"]): r["score"] for r in parts} == whole
    again = score_rows(None, rows, ScoreConfig(method="random", seed=7))
    assert [r["score"] for r in again] == [whole[(r["id"], r["sample_idx"])] for r in rows]
    other = score_rows(None, rows, ScoreConfig(method="random", seed=8))
    assert all(r["score"] != whole[(r["id"], r["sample_idx"])] for r in other)
    assert all(0 <= s < 1 for s in whole.values()) and len(set(whole.values())) == len(rows)
