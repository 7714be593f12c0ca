"""Long-form factuality on the embedded SmolLM2-135M (CPU): claim-level P(True) AUROC on labelled facts, the
FActScore-style verifier, self-consistency, end-to-end bio scoring, and throughput.

Labelled facts: benchmarks/assets/longform_people.jsonl (20 well-known people, a short true paragraph each (the
knowledge source) and 5 true facts each with a hand-altered false copy: 100 true + 100 false claims).
Run: `python benchmarks/biogen/longform_smollm2.py [section ...]` (sections: ptrue-q0 ptrue-q5 ptrue-bio0 ptrue-qchat0
verifier consistency e2e decompose biogen; default all; each a few minutes on 2 free cores). Writes
benchmarks/results/longform_smollm2.json (merged per section).
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from selfalign import prompts as P
from selfalign.engines.hf import HFEngine
from selfalign.evals.factscore import BioGenEvalConfig, run_biogen_eval, verify
from selfalign.evals.knowledge import KnowledgeSource
from selfalign.metrics import auroc
from selfalign.store.provenance import meta
from selfalign.selfeval.claims import decompose, template_question
from selfalign.selfeval.consistency import consistency
from selfalign.selfeval.prompt import SelfEvalPrompt
from selfalign.selfeval.ptrue import p_true

HERE = Path(__file__).resolve().parents[1]  # benchmarks/
PEOPLE = HERE / "assets" / "longform_people.jsonl"
OUT = HERE / "results" / "longform_smollm2.json"


def people():
    return [json.loads(line) for line in PEOPLE.read_text().splitlines()]


def claims():
    """(person, claim, label) for every true fact and its altered copy."""
    return [(p["title"], c, lab) for p in people() for t, f in p["facts"] for c, lab in ((t, 1), (f, 0))]


def auroc_ci(labels, scores, groups, n_boot=1000, seed=0):
    """AUROC with a 95% bootstrap interval over people (all claims of a resampled person move together)."""
    labels, scores, groups = map(np.asarray, (labels, scores, groups))
    uniq = np.unique(groups)
    rng = np.random.default_rng(seed)
    idx_of = {g: np.flatnonzero(groups == g) for g in uniq}
    boots = []
    for _ in range(n_boot):
        idx = np.concatenate([idx_of[g] for g in rng.choice(uniq, len(uniq))])
        a = auroc(labels[idx], scores[idx])
        if a is not None:
            boots.append(a)
    return {"auroc": round(auroc(labels, scores), 3), "ci": [round(float(np.percentile(boots, q)), 3)
                                                          for q in (2.5, 97.5)], "n": int(len(labels))}


PTRUE_VARIANTS = {"ptrue-q0": ("claim-question, 0 shots", dict(ctx="q", shots=0)),
                  "ptrue-q5": ("claim-question, 5 shots", dict(ctx="q", shots=5)),
                  "ptrue-bio0": ("bio prompt, 0 shots", dict(ctx="bio", shots=0)),
                  "ptrue-qchat0": ("claim-question, chat template, 0 shots", dict(ctx="q", shots=0, chat=True))}


def sec_ptrue(engine, variant):
    """Self-Eval P(True) per claim, no evidence: question = the claim's yes/no question or "Tell me a bio of X."."""
    cl = claims()
    v = PTRUE_VARIANTS[variant][1]
    items = [(template_question(c, who) if v["ctx"] == "q" else f"Tell me a bio of {who}.", c) for who, c, _ in cl]
    t = time.perf_counter()
    res = p_true(engine, items, SelfEvalPrompt(shots=v["shots"], chat=v.get("chat", False)))
    dt = time.perf_counter() - t
    out = {**auroc_ci([lab for *_, lab in cl], [r.p_true for r in res], [w for w, *_ in cl]),
           "mean_p_true_true": round(float(np.mean([r.p_true for r, x in zip(res, cl) if x[2]])), 3),
           "mean_p_true_false": round(float(np.mean([r.p_true for r, x in zip(res, cl) if not x[2]])), 3),
           "claims_per_s": round(len(items) / dt, 2)}
    print(variant, out, flush=True)
    return out


def sec_verifier(engine):
    ks = KnowledgeSource(PEOPLE)
    cl = claims()
    prompts = [P.factscore_verify_prompt(w, ks.retrieve(w, c, 5), c) for w, c, _ in cl]
    t = time.perf_counter()
    probs = verify(engine, prompts)
    dt = time.perf_counter() - t
    labels = [lab for *_, lab in cl]
    acc = float(np.mean([(p > 0.5) == bool(lab) for p, lab in zip(probs, labels)]))
    res = {**auroc_ci(labels, probs, [w for w, *_ in cl]), "accuracy_p_gt_0.5": round(acc, 3),
           "supported_rate_true": round(float(np.mean([p > 0.5 for p, l in zip(probs, labels) if l])), 3),
           "supported_rate_false": round(float(np.mean([p > 0.5 for p, l in zip(probs, labels) if not l])), 3),
           "facts_per_s": round(len(prompts) / dt, 2),
           "mean_prompt_tokens": round(float(np.mean([len(engine.encode(p)) for p in prompts])), 1)}
    print("verifier", res, flush=True)
    return res


def sec_consistency(engine, n_people=8, k=5):
    cl = [x for x in claims() if x[0] in {p["title"] for p in people()[:n_people]}]
    items = [(template_question(c, w), c) for w, c, _ in cl]
    t = time.perf_counter()
    res = consistency(engine, items, k=k, max_new_tokens=8, chat=True)
    dt = time.perf_counter() - t
    out = {**auroc_ci([lab for *_, lab in cl], [r["p_agree"] for r in res], [w for w, *_ in cl]), "k": k,
           "question": "template yes/no, chat", "claims_per_s": round(len(items) / dt, 3),
           "example_answers": res[0]["answers"][:3]}
    print("consistency", out, flush=True)
    return out


def sec_e2e(engine, n_people=10):
    """Truthful vs altered bios (the 5 facts joined) of the first people through `eval biogen` with the knowledge
    source."""
    with tempfile.TemporaryDirectory() as d:
        ans = Path(d) / "bios.jsonl"
        with open(ans, "w") as f:
            for p in people()[:n_people]:
                for lab, j in (("true", 0), ("false", 1)):
                    f.write(json.dumps({"id": f"{p['title']}|{lab}", "topic": p["title"], "response":
                                        " ".join(x[j] for x in p["facts"])}) + "\n")
        t = time.perf_counter()
        s = run_biogen_eval(BioGenEvalConfig(output=f"{d}/r.json", answers=str(ans), knowledge=str(PEOPLE),
                                             batch_size=16), engine=engine)
        dt = time.perf_counter() - t
        rows = {r["id"]: r for r in map(json.loads, Path(f"{d}/r.rows.jsonl").read_text().splitlines())}
    tr = [rows[f"{p['title']}|true"] for p in people()[:n_people]]
    fa = [rows[f"{p['title']}|false"] for p in people()[:n_people]]
    out = {"truthful_bio_ranked_higher": f"{sum(a['init_score'] > b['init_score'] for a, b in zip(tr, fa))}/{len(tr)}",
           "ties": sum(a["init_score"] == b["init_score"] for a, b in zip(tr, fa)),
           "init_score_true_bios": round(float(np.mean([r["init_score"] for r in tr])), 3),
           "init_score_false_bios": round(float(np.mean([r["init_score"] for r in fa])), 3),
           "factscore_true_bios": round(float(np.mean([r["score"] for r in tr])), 3),
           "factscore_false_bios": round(float(np.mean([r["score"] for r in fa])), 3),
           "facts_per_bio": round(float(np.mean([r["num_facts"] for r in tr + fa])), 2),
           "seconds": round(dt, 1), "facts_per_s": round(s["facts"] / dt, 2)}
    print("e2e", out, flush=True)
    return out


def sec_decompose(engine, n_bios=3):
    from selfalign.data import data_root

    bios = [json.loads(line)["output"] for line in
            (data_root() / "factscore" / "unlabeled" / "GPT-4.jsonl").read_text().splitlines()]
    t = time.perf_counter()
    rules = decompose(None, bios)
    dt_rules = time.perf_counter() - t
    few = [b.split("\n")[0] for b in bios[:n_bios]]
    t = time.perf_counter()
    llm = decompose(engine, few, claims="llm")
    dt_llm = time.perf_counter() - t
    n_sent = sum(len({c["sentence"] for c in cs}) for cs in llm)
    out = {"rules": {"bios": len(bios), "claims": sum(map(len, rules)), "claims_per_bio": round(
               sum(map(len, rules)) / len(bios), 1), "claims_per_s": round(sum(map(len, rules)) / dt_rules, 1)},
           "llm (FActScore prompt, 4 demos, greedy)": {
               "paragraphs": n_bios, "sentences": n_sent, "claims": sum(map(len, llm)),
               "claims_from_rules_fallback": sum(c["source"] == "rules" for cs in llm for c in cs),
               "sentences_per_s": round(n_sent / dt_llm, 3), "claims_per_s": round(sum(map(len, llm)) / dt_llm, 3),
               "example": {"sentence": llm[0][0]["sentence"], "claims": [c["text"] for c in llm[0]
                                                                          if c["sentence"] == llm[0][0]["sentence"]]},
               "rules_on_same_sentence": [c["text"] for c in rules[0] if c["sentence"] == llm[0][0]["sentence"]]}}
    print("decompose", json.dumps(out, indent=1), flush=True)
    return out


def sec_biogen(engine, n=3):
    """Real BioGEN test people, generated bios, no knowledge source: the labelled self-consistency fallback."""
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        s = run_biogen_eval(BioGenEvalConfig(output=f"{d}/r.json", split="test", limit=n, max_new_tokens=96,
                                             consistency_k=3, batch_size=n), engine=engine)
        dt = time.perf_counter() - t
        rows = [json.loads(line) for line in Path(f"{d}/r.rows.jsonl").read_text().splitlines()]
    out = {"people": n, "score_method": s["score_method"], "score": s["score"], "init_score": s["init_score"],
           "respond_ratio": s["respond_ratio"], "num_facts_per_response": s["num_facts_per_response"],
           "seconds": round(dt, 1), "tokens_generated": sum(r["n_tokens"] for r in rows),
           "example": {"topic": rows[0]["topic"], "response": rows[0]["response"][:300]}}
    print("biogen", out, flush=True)
    return out


SECTIONS = {**{k: (lambda e, k=k: sec_ptrue(e, k)) for k in PTRUE_VARIANTS}, "verifier": sec_verifier,
            "consistency": sec_consistency, "e2e": sec_e2e, "decompose": sec_decompose, "biogen": sec_biogen}


def main(names):
    torch.set_num_threads(2)
    engine = HFEngine.from_spec("smollm2-135m", device="cpu", batch_size=16)
    results = json.loads(OUT.read_text()) if OUT.exists() else {}
    for name in names or list(SECTIONS):
        t = time.perf_counter()
        results[name] = SECTIONS[name](engine)
        results.setdefault("seconds", {})[name] = round(time.perf_counter() - t, 1)
        results["meta"] = meta({"sections": names or list(SECTIONS)}, model_info=engine.info,
                               threads=torch.get_num_threads())
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(json.dumps(results, indent=2, ensure_ascii=False, default=str) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
