"""Fact-verifier sanity gate (planted true / swapped facts), the offline span verifier, unverifiable bios."""
import json
from pathlib import Path

import pytest

from selfalign.evals.fact_gate import GATE_MIN, gate, gate_warning, plant_facts, span_support
from selfalign.evals.factscore import BioGenEvalConfig, run_biogen_eval
from selfalign.evals.knowledge import KnowledgeSource

ASSETS = Path(__file__).parents[1] / "assets"
KNOWLEDGE = ASSETS / "bio_knowledge.jsonl"
ANSWERS = ASSETS / "bio_answers.jsonl"


@pytest.fixture
def ks():
    k = KnowledgeSource(KNOWLEDGE)
    yield k
    k.close()


def test_planted_facts_come_from_the_source_and_alter_one_span(ks):
    facts = plant_facts(ks, ["Marta Ellingsen", "Tobias Quennell", "Aiko Varga", "Rafael Oduya"], n=20)
    assert len(facts) >= 10 and sum(f["label"] for f in facts) == len(facts) // 2
    for t, f in zip(facts[::2], facts[1::2]):
        entry = " ".join(p["text"] for p in ks.passages(t["topic"]))
        assert t["label"] == 1 and f["label"] == 0 and t["topic"] == f["topic"] and t["kind"] == f["kind"]
        assert t["fact"] in entry and f["fact"] != t["fact"]
        new = set(f["fact"].split()) - set(t["fact"].split())
        assert new and not any(w.strip(".,") in entry.split() for w in new)  # the swapped-in span is not there
    assert plant_facts(ks, ["Marta Ellingsen", "Aiko Varga"], n=20, seed=1) != plant_facts(
        ks, ["Marta Ellingsen", "Aiko Varga"], n=20, seed=2)


def test_gate_flags_a_yes_verifier_and_passes_a_perfect_one(ks):
    facts = plant_facts(ks, ["Marta Ellingsen", "Tobias Quennell", "Aiko Varga", "Rafael Oduya"], n=20)
    truth = {(f["topic"], f["fact"]): f["label"] for f in facts}
    yes = gate(lambda pairs: [0.9] * len(pairs), facts, n_boot=50)
    assert yes["auroc"] == 0.5 and not yes["passed"] and yes["supported_false"] == 1.0
    assert "not meaningful" in gate_warning(yes)
    perfect = gate(lambda pairs: [float(truth[p]) for p in pairs], facts, n_boot=50)
    assert perfect["auroc"] == 1.0 and perfect["passed"] and gate_warning(perfect) is None
    assert perfect["auroc_by_kind"] and GATE_MIN == 0.6


def test_span_verifier_passes_the_gate(ks):
    facts = plant_facts(ks, ["Marta Ellingsen", "Tobias Quennell", "Aiko Varga", "Rafael Oduya"], n=20)
    res = gate(lambda pairs: [span_support(t, f, ks.retrieve(t, f, 5)) for t, f in pairs], facts, n_boot=50)
    assert res["passed"] and res["auroc"] > 0.9
    psg = [{"text": "Aiko Varga (born 1970) is a Hungarian architect. She was born in Budapest."}]
    assert span_support("Aiko Varga", "Aiko Varga was born in Budapest.", psg) == 1.0
    assert span_support("Aiko Varga", "Aiko Varga was born in Vienna.", psg) < 0.5
    assert span_support("Aiko Varga", "Aiko Varga was born in 1971.", psg) < 0.5


def test_biogen_records_gate_and_unverifiable_bios(tmp_path, capsys):
    ans = tmp_path / "a.jsonl"
    rows = [json.loads(x) for x in ANSWERS.read_text().splitlines()]
    rows.append({"id": "nobody", "topic": "Nobody Known", "response": "Nobody Known was a baker in Paris."})
    ans.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "o.json"
    s = run_biogen_eval(BioGenEvalConfig(output=str(out), answers=str(ans), knowledge=str(KNOWLEDGE),
                                         verify_method="spans", gate_facts=20),
                        engine=type("NoModel", (), {"info": {"model": "none"}})())
    saved = json.loads(out.read_text())
    assert saved["verifier_gate"]["passed"] and s["verifier_gate_passed"] and s["verifier_gate_auroc"] > 0.9
    assert s["unverifiable"] == 1 and saved["factscore"]["unverifiable"] == 1
    assert "1 bio(s) unverifiable" in capsys.readouterr().err
    got = {r["id"]: r for r in map(json.loads, (tmp_path / "o.rows.jsonl").read_text().splitlines())}
    assert got["nobody"]["unverifiable"] and got["nobody"]["score"] is None and got["nobody"]["respond"] is None
    for p in ("ellingsen", "quennell", "varga", "oduya"):
        assert got[f"{p}-true"]["init_score"] > got[f"{p}-false"]["init_score"]
    assert s["init_score"] is not None and s["score"] <= s["init_score"]


def test_biogen_warns_when_the_verifier_fails_the_gate(tmp_path, capsys):
    class Yes:
        info = {"model": "yes-verifier"}

        def choice_probs(self, prompts, choices):
            return [[0.9, 0.1] for _ in prompts]

    s = run_biogen_eval(BioGenEvalConfig(output=str(tmp_path / "y.json"), answers=str(ANSWERS),
                                         knowledge=str(KNOWLEDGE), gate_facts=20), engine=Yes())
    err = capsys.readouterr().err
    assert s["verifier_gate_passed"] is False and s["verifier_gate_auroc"] == 0.5
    assert sum("not meaningful" in line for line in err.splitlines()) == 1
