"""benchmarks/longform/wf_summary.py: a judge's claim labels and claim-level AUROC, and its pairs' agreement with the
oracle; hand-made records, expected values computed by hand."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks" / "longform"))
import wf_summary as S  # noqa: E402


def test_claim_auroc_reads_supported_against_contradicted_and_leaves_unverifiable_out():
    def rec(subject, *claims):
        return {"subject": subject, "claims": [{"p_true": p, "gold": g} for p, g in claims]}

    recs = [rec("A", (0.9, 1), (0.2, 0), (0.99, None)), rec("B", (0.6, 1), (0.7, 0)), rec("C", (0.5, None))]
    got = S.claim_auroc(recs)
    # 2 supported (0.9, 0.6) vs 2 contradicted (0.2, 0.7): 3 of the 4 (supported, contradicted) pairs ordered right
    assert got["value"] == pytest.approx(3 / 4)
    assert (got["claims"], got["supported"], got["contradicted"]) == (4, 2, 2)
    only_unverifiable = S.claim_auroc([rec("C", (0.5, None))])
    assert only_unverifiable["value"] is None and only_unverifiable["claims"] == 0
    assert S.claim_auroc(None) is None  # no scores yet


def test_claim_label_for_sk_claims_and_for_text_claims():
    class V:  # a verifier with canned verdicts
        def verdict(self, subject, relation, values):
            return {"Abuja": "supported", "Lima": "contradicted", "Niger": "unverifiable"}[values[0]]

        def sentences_of(self, subject, text):
            return [{"relation": r, "verdict": v} for r, v in {
                "a": [("cap", "supported")], "b": [("cap", "supported"), ("lang", "contradicted")],
                "c": [(None, "unverifiable")]}[text]]

    assert [S.claim_label(V(), "X", {"relation": "cap", "value": v}) for v in ("Abuja", "Lima", "Niger")] == [1, 0,
                                                                                                             None]
    assert [S.claim_label(V(), "X", {"text": t}) for t in "abc"] == [1, 0, None]


def test_pair_agreement_with_the_oracle():
    pairs = [(2, 0), (1, 1), (0, 1), (None, -1), (1, -1)]
    recs = [{"id": f"p{k // 2}", "chosen_gold": c, "rejected_gold": r} for k, (c, r) in enumerate(pairs)]
    # differing and both stated: (2, 0), (0, 1), (1, -1): 2 of 3 chosen higher; one pair has an unstated side
    assert S.agreement(recs) == {"pairs": 5, "prompts": 3, "differing": 3, "agreement": pytest.approx(2 / 3),
                                 "unstated_side": 1}
