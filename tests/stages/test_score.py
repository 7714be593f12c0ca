"""score dispatches to the confidence method that ``registry.CONFIDENCE`` names: a new method is one function plus
one row, and the gold-match oracle reads the targets, not a model."""
from __future__ import annotations

from selfalign import registry


def test_a_new_confidence_method_is_one_function_plus_one_row(monkeypatch):
    """A toy method registered by one row is what ``score`` runs and what its flag accepts."""
    from selfalign.stages import score

    def length(engine, rows, cfg):  # a no-model confidence: the answer's length
        return [{**r, "score": float(len(r["response"])), "score_method": "length"} for r in rows]

    monkeypatch.setitem(registry.CONFIDENCE.rows, "length", length)
    cfg = score.ScoreConfig(method="length")
    rows = [{"id": "1", "question": "q", "response": "abc"}, {"id": "2", "question": "q", "response": "a"}]
    assert [r["score"] for r in score.score_rows(None, rows, cfg)] == [3.0, 1.0]


def test_the_gold_match_row_scores_by_the_targets_without_a_model():
    from selfalign.stages.score import ScoreConfig, score_rows

    rows = [{"id": "1", "question": "The capital of France is", "response": "Paris.", "targets": ["Paris"]},
            {"id": "2", "question": "The capital of France is", "response": "Lyon", "targets": ["Paris"]}]
    assert [r["score"] for r in score_rows(None, rows, ScoreConfig(method="gold-match"))] == [1, 0]
