"""The BioGEN fact verifier and FActScore-style claims sections of benchmarks/judges/judges.py (issue 15): the verifier
gate (planted true / swapped facts) with the embedded model and the offline span verifier, on a knowledge source
built from FActScore's GPT-4 bios, plus the held-out sets; facts per sentence against FActScore's gold demos; claim
P(True) with yes/no vs wh questions. Run through `python benchmarks/judges/judges.py gate-model|gate-spans|decompose|claims-q`.
"""
from __future__ import annotations

import json
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from judges import HERE, _save  # noqa: E402


def _bios_source(d: Path, first: int, last: int) -> tuple[Path, list[str]]:
    """A JSONL knowledge source of FActScore's GPT-4 bios (topics first..last): no Wikipedia is available offline,
    so the measurement's 'truth' is what the GPT-4 bio says."""
    from selfalign.data import data_root

    rows = [json.loads(x) for x in (data_root() / "factscore" / "unlabeled" / "GPT-4.jsonl").read_text().splitlines()]
    rows = rows[first:last]
    path = d / "gpt4_bios.jsonl"
    path.write_text("".join(json.dumps({"title": r["topic"], "text": r["output"]}) + "\n" for r in rows))
    return path, [r["topic"] for r in rows]


def _heldout(ks, topics, seed=0):
    """Facts from the bios' sentences (rule claims, true) and altered copies the gate does not make: a year or a
    name swapped with another from the SAME bio (present in the passages), and an inserted negation."""
    import random
    import re

    from selfalign.evals.fact_gate import YEAR, _sentences, _spans
    from selfalign.selfeval.splitter import split_claims

    rng = random.Random(seed)
    out = []
    for t in topics:
        sents = _sentences(ks, t)
        years = sorted({y for s in sents for y in YEAR.findall(s)})
        names = sorted({x for s in sents for x in _spans(s, t)[1]})
        for s in sents[:6]:
            for c in split_claims(s)[:2]:
                ys, ns = YEAR.findall(c), _spans(c, t)[1]
                alts = []
                if ys and len(years) > 1:
                    alts.append(("same-entry year", c.replace(ys[0], rng.choice([y for y in years if y != ys[0]]))))
                if ns and len(names) > 1:
                    alts.append(("same-entry name", c.replace(ns[0], rng.choice([x for x in names if x != ns[0]]))))
                m = re.search(r"\b(is|was|has|had)\b", c)
                if m:
                    alts.append(("negation", c[:m.end()] + " not" + c[m.end():]))
                if alts:
                    kind, alt = rng.choice(alts)
                    out += [{"topic": t, "fact": c, "label": 1, "kind": kind},
                            {"topic": t, "fact": alt, "label": 0, "kind": kind}]
    return out


def _score_facts(method, ks, engine):
    from selfalign.evals.factscore import verify_facts

    return lambda pairs: verify_facts(engine, ks, pairs, 5, method)[0]


def sec_gate(method):
    from selfalign.evals.fact_gate import gate, plant_facts
    from selfalign.evals.knowledge import KnowledgeSource
    from selfalign.metrics import auroc

    engine = None
    if method == "model":
        from selfalign.engines import make_engine

        engine = make_engine("hf", model="smollm2-135m", device="cpu", batch_size=8)
    res = {}
    with tempfile.TemporaryDirectory() as d:
        path, topics = _bios_source(Path(d), 0, 100)
        ks = KnowledgeSource(path)
        t0 = time.time()
        facts = plant_facts(ks, topics[:50], 30 if method == "model" else 200)
        res["gate"] = gate(_score_facts(method, ks, engine), facts)
        res["gate"]["seconds"] = round(time.time() - t0, 1)
        held = _heldout(ks, topics[50:100] if method == "spans" else topics[50:53])
        probs = _score_facts(method, ks, engine)([(f["topic"], f["fact"]) for f in held])
        y = [f["label"] for f in held]
        res["heldout_gpt4_bios"] = {"auroc": auroc(y, probs), "n": len(y), "by_kind": {
            k: auroc([f["label"] for f in held if f["kind"] == k], [p for p, f in zip(probs, held) if f["kind"] == k])
            for k in sorted({f["kind"] for f in held})}}
    people = HERE / "assets" / "longform_people.jsonl"
    ks = KnowledgeSource(people)
    cl = [(p["title"], c, lab) for p in map(json.loads, people.read_text().splitlines()) for tr, fa in p["facts"]
          for c, lab in ((tr, 1), (fa, 0))]
    if method == "spans":
        probs = _score_facts(method, ks, engine)([(w, c) for w, c, _ in cl])
        res["heldout_longform_people"] = {"auroc": auroc([lab for *_, lab in cl], probs), "n": len(cl)}
    _save(f"gate-{method}", res)


def sec_decompose(n_llm=0):
    """Facts per sentence on FActScore's gold decompositions (its demo sentences): rules, and the LLM route
    (SmolLM2, FActScore's prompt with the sentence itself left out of the demos) on the first n_llm."""
    from selfalign import prompts as P
    from selfalign.selfeval.claims import clean_facts, parse_facts
    from selfalign.selfeval.splitter import split_claims

    gold = P.ATOMIC_FACTS_DEMOS + P.ATOMIC_FACTS_EXTRA_DEMOS
    rules = [len(split_claims(s)) for s, _ in gold]
    g = [len(f) for _, f in gold]
    ent = [sum(1 for f in facts if not any(w in f for w in ("He ", "She ", "he ", "she ", "His ", "his ", "Her ",
                                                                    s.split()[0]))) for s, facts in gold]
    res = {"sentences": len(gold), "gold_facts": sum(g), "rules_facts": sum(rules),
           "rules_to_gold_ratio": sum(rules) / sum(g), "per_sentence": list(zip(g, rules)),
           "first7_gold": sum(g[:7]), "first7_rules": sum(rules[:7]),
           "gold_facts_without_entity_or_pronoun": sum(ent)}
    if n_llm:
        from selfalign.engines import GenerationConfig, make_engine

        eng = make_engine("hf", model="smollm2-135m", device="cpu", batch_size=4)
        cfg = GenerationConfig(n=1, temperature=0.0, max_new_tokens=128, stop=["\n\n", "\nPlease breakdown"])
        t0 = time.time()
        outs = eng.generate([P.atomic_facts_prompt(s, exclude=s) for s, _ in gold[:n_llm]], cfg, seed=0)
        raw = [parse_facts(o[0].text) for o in outs]
        clean = [clean_facts(s, r) for (s, _), r in zip(gold[:n_llm], raw)]
        res["llm"] = {"sentences": n_llm, "gold": sum(g[:n_llm]), "raw": sum(map(len, raw)),
                      "clean": sum(map(len, clean)), "rules": sum(rules[:n_llm]),
                      "seconds_per_sentence": round((time.time() - t0) / n_llm, 1), "examples": clean[:2]}
    _save("decompose", res)


def sec_claims_q(n_people=4):
    """Claim-level Self-Eval P(True) (0 shots) with the claim's yes/no question vs its wh-question (generated by the
    same model), on the labelled claims of the first n_people of benchmarks/assets/longform_people.jsonl."""
    from selfalign.engines import make_engine
    from selfalign.metrics import auroc
    from selfalign.selfeval.claims import llm_questions, template_question
    from selfalign.selfeval.ptrue import p_true

    people = [json.loads(x) for x in (HERE / "assets" / "longform_people.jsonl").read_text().splitlines()][:n_people]
    cl = [(p["title"], c, lab) for p in people for tr, fa in p["facts"] for c, lab in ((tr, 1), (fa, 0))]
    eng = make_engine("hf", model="smollm2-135m", device="cpu", batch_size=8)
    res = {"claims": len(cl), "people": n_people}
    t0 = time.time()
    wh = llm_questions(eng, [c for _, c, _ in cl], [w for w, _, _ in cl])
    res["wh_seconds"] = round(time.time() - t0, 1)
    for name, qs in (("yesno", [template_question(c, w) for w, c, _ in cl]), ("wh", wh)):
        pt = [r.p_true for r in p_true(eng, [(q, c) for q, (_, c, _) in zip(qs, cl)])]
        res[name] = {"auroc": auroc([lab for *_, lab in cl], pt), "examples": qs[:3]}
    _save("claims-q", res)
