"""benchmarks/effect/ctl_summary.py: a judge's pair agreement with gold, and the DPO seeds pooled per prompt."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks" / "effect"))
import ctl_summary as S  # noqa: E402


def test_pair_agreement_reads_only_pairs_that_differ_in_gold_correctness():
    cr = [(1, 0), (1, 0), (0, 1), (1, 1), (0, 0), (0, 0)]
    recs = [{"id": f"q{k // 2}", "chosen_correct": c, "rejected_correct": r} for k, (c, r) in enumerate(cr)]
    a = S.agreement(recs)
    # 3 pairs differ in gold correctness, 2 of them with the correct answer chosen; 3 of 6 pairs equal
    assert a == {"pairs": 6, "prompts": 3, "differing": 3, "agreement": pytest.approx(2 / 3),
                 "equal_share": pytest.approx(0.5), "both_right": 1, "both_wrong": 2}
    assert S.agreement([{"id": "q", "chosen_correct": 0, "rejected_correct": 0}])["agreement"] is None


def test_seeds_are_pooled_by_averaging_each_prompt():
    def row(i, a, lenient):
        return {"id": i, "accuracy": a, "accuracy_lenient": lenient}

    evals = {"x-s0": ({}, [row("a", 1, 1), row("b", 0, 1), row("c", 1, 1)]),
             "x-s1": ({}, [row("b", 0, 0), row("a", 0, 1)])}
    assert S.pooled(evals) == [{"id": "a", "accuracy": 0.5, "accuracy_lenient": 1.0},
                               {"id": "b", "accuracy": 0.0, "accuracy_lenient": 0.5}]  # c: one seed only, left out
