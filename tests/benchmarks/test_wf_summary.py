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


def test_an_evaluation_scored_by_an_older_extractor_is_rescored_without_a_model(tmp_path, monkeypatch):
    """The study's evaluations (runs/wf/loop/eval-<row>.json, or the kept record when runs/ is gone) read by this
    checkout's extractor: re-verified from the saved answers, no model; the record stays as generated."""
    import json

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from wikifacts_assets import lands, write_task

    from selfalign.data.wikifacts import gold_profile, load_knowledge, prompt_rows
    from selfalign.evals import wikifacts_gates
    from selfalign.evals.wikifacts import WikiFactsConfig, run_wikifacts
    from selfalign.evals.wikifacts_verify import fingerprint

    data = write_task(tmp_path / "data", lands())
    k = load_knowledge(str(data))
    wf = tmp_path / "runs" / "wf"
    monkeypatch.setattr(S.S, "WF", wf)
    monkeypatch.setattr(S.S, "LOOP", wf / "loop")
    monkeypatch.setattr(S, "RECORDS", tmp_path / "records")
    monkeypatch.setattr(S.XS, "finished", lambda step: True)
    monkeypatch.setattr(wikifacts_gates, "default_check_file", lambda: None)
    (wf / "loop").mkdir(parents=True)
    answers = tmp_path / "answers.jsonl"
    answers.write_text("".join(json.dumps({"id": r["id"], "response": gold_profile(k, r["subject"])}) + "\n"
                               for r in prompt_rows(str(data), limit=4)))
    out = S.S.eval_path("base")
    run_wikifacts(WikiFactsConfig(data=str(data), responses=str(answers), output=str(out), n_boot=0))
    fresh = json.loads(out.read_text())["metrics"]
    summary = json.loads(out.read_text())  # as an older extractor left it: another fingerprint, other scores
    summary["verifier"], summary["metrics"]["supported"]["value"] = None, 99.0
    out.write_text(json.dumps(summary))
    got, rows = S.load_eval("base")
    assert got["verifier"] == fingerprint() and got["metrics"]["supported"]["value"] == fresh["supported"]["value"] == 4
    assert len(rows) == 4 and (wf / "loop" / "eval-base.rescored.json").exists()
    kept = S.R.archive_path(out, runs=wf, archive=tmp_path / "records")
    assert kept.exists()  # the record is the evaluation as generated
    out.unlink()  # a new machine: runs/ has no evaluation, the kept record is re-scored
    monkeypatch.setattr(S.XS, "finished", lambda step: False)
    got2, _ = S.load_eval("base")
    assert got2["verifier"] == fingerprint() and got2["metrics"]["supported"]["value"] == 4
