"""Judges you can trust (issue 15): fit and validate the offline TruthfulQA judges, gate the BioGEN fact verifiers,
count FActScore-style decompositions against FActScore's gold.

Sections (`python benchmarks/judges/judges.py SECTION ...`; results merged into benchmarks/results/judges.json):
- train: fit the offline-ref judge (selfalign/evals/assets/ref_judge.json) on TruthfulQA's references,
  leave-one-out, and its human-labelled model answers (finetune_truth.jsonl), 5 question folds; fit its informativeness threshold on the train+valid split questions.
- check-offline, check-offline-ref: `selfalign eval judge-check` on the TruthfulQA test split (730 questions).
- check-lm-ref: the embedded SmolLM2-135M as a reference-conditioned judge, on the first LMREF_N test questions.
- human: each offline judge against the human labels of TruthfulQA's GPT-judge / GPT-info training data
  (finetune_truth.jsonl / finetune_info.jsonl; answers that are verbatim references left out), test questions.
- gate-model, gate-spans (these and decompose, claims-q are in judges_facts.py): the biogen verifier gate (planted true / swapped facts) with the embedded model and
  with the offline span verifier, on a knowledge source built from FActScore's GPT-4 bios; plus the held-out sets.
- decompose: facts per sentence of the rule splitter and of the LLM route against FActScore's gold demos.
- claims-q: claim P(True) AUROC with yes/no and wh questions on benchmarks/assets/longform_people.jsonl.
Run from the repository root with PYTHONPATH=. (the data comes from ../shared/data or $SELFALIGN_DATA).
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parents[1]  # benchmarks/
OUT = HERE / "results" / "judges.json"
CACHE = Path(tempfile.gettempdir()) / "selfalign-judges-emb.npz"
LMREF_N = 60
# weight of one human-labelled model answer in the offline-ref fit, against 1 for a reference row: 18,220 human
# rows vs 5,490 references; at weight 1 they pulled the reference balanced accuracy from 0.813 to 0.783
HUMAN_WEIGHT = float(__import__("os").environ.get("JUDGE_HUMAN_WEIGHT", "0.3"))


def _save(section: str, res) -> None:
    data = json.loads(OUT.read_text()) if OUT.exists() else {}
    data[section] = res
    OUT.write_text(json.dumps(data, indent=1, default=float) + "\n")
    print(section, json.dumps(res, default=float)[:2000], flush=True)


def _embeddings(texts):
    """{text: vector}, cached in a temp file between sections (MiniLM on 2 CPU cores: ~150 s for TruthfulQA)."""
    from selfalign.evals.judges.embedding import Embedder

    have = {}
    if CACHE.exists():
        z = np.load(CACHE, allow_pickle=False)
        have = dict(zip(z["texts"].tolist(), z["vecs"]))
    todo = sorted(set(texts) - set(have))
    if todo:
        have.update(zip(todo, Embedder().encode(todo).numpy()))
        keys = sorted(have)
        np.savez(CACHE, texts=np.array(keys), vecs=np.stack([have[k] for k in keys]))
    return have


AUX = ("is", "are", "was", "were", "will", "can", "does", "do", "did", "has", "have", "should", "would", "could")


def negate_aux(text: str) -> str | None:
    """A natural negation: "not" after the first auxiliary verb ("X is Y" -> "X is not Y"); None without one."""
    import re

    m = re.search(r"\b(" + "|".join(AUX) + r")\b(?! not\b)", text)
    return text[:m.end()] + " not" + text[m.end():] if m else None


def augmented(qs):
    """Training-only negations (different wording from the probe's "It is false that" / "It is not true that"):
    "It is not the case that <ref>" and an auxiliary-verb negation, for the best answer and the first incorrect
    answer of every question, labels flipped; the judge sees all references."""
    from selfalign.evals.judge_check import _negate

    out = []
    for q in qs:
        C = [c for c in q["correct_answers"] if c.strip()]
        I = [c for c in q["incorrect_answers"] if c.strip() and c not in C]
        for ref, lab in ((q["best_answer"], 1), (I[0] if I else None, 0)):
            if not ref:
                continue
            for text in ("It is not the case that " + _negate(ref) + ".", negate_aux(ref)):
                if text:
                    out.append({"question": q["question"], "answer": text, "correct": C, "incorrect": I,
                                "label_true": 1 - lab, "kind": "augmented"})
    return out


def human_items(qs) -> list[dict]:
    """TruthfulQA's human-labelled model answers (finetune_truth.jsonl: the data GPT-judge was fine-tuned on), with
    the question's references; answers that are verbatim references are left out (the reference rows have them)."""
    from selfalign.data import data_root

    refs = {q["question"]: q for q in qs}
    out, seen = [], set()
    for line in (data_root() / "truthfulqa" / "finetune_truth.jsonl").read_text().splitlines():
        r = json.loads(line)
        q, a = r["prompt"].split("\nA: ", 1)
        q, a = q[3:], a.rsplit("\n", 1)[0]
        if q not in refs or (q, a) in seen:
            continue
        C = [c for c in refs[q]["correct_answers"] if c.strip()]
        I = [c for c in refs[q]["incorrect_answers"] if c.strip() and c not in C]
        if a in C or a in I or not a.strip():
            continue
        seen.add((q, a))
        out.append({"question": q, "answer": a, "correct": C, "incorrect": I,
                    "label_true": int(r["completion"].strip() == "yes"), "kind": "human"})
    return out


def sec_train():
    from sklearn.linear_model import LogisticRegression

    from selfalign.data.truthfulqa import load_splits, load_truthfulqa, default_dir
    from selfalign.evals.judge_check import check_items
    from selfalign.evals.judges.reference import FEATURES, NON_ANSWER, expand, features, fold_of
    from selfalign.evals.judges.base import NO_COMMENT, abstains

    qs = load_truthfulqa(None, "all")
    items = check_items(qs, probe=True)
    vec = _embeddings({t for it in items for t in [it["question"], it["answer"], *it["correct"], *it["incorrect"],
                                                     NO_COMMENT]})
    ref = [it for it in items if it["kind"] == "ref"]
    aug = augmented(qs) + human_items(qs)
    vec.update(_embeddings({it["answer"] for it in aug}))
    t0 = time.time()
    X = np.array([features(it["question"], it["answer"], it["correct"], it["incorrect"], vec.__getitem__)
                  for it in ref + aug])
    y = np.array([it["label_true"] for it in ref + aug])
    is_ref = np.array([it["kind"] == "ref" for it in ref + aug])
    folds = np.array([fold_of(it["question"], 5) for it in ref + aug])
    w = np.array([HUMAN_WEIGHT if it["kind"] == "human" else 1.0 for it in ref + aug])
    spec = {"features": list(FEATURES), "trained_on": "TruthfulQA.csv (all 817 questions) reference answers, "
            "leave-one-out, plus TruthfulQA's human-labelled model answers (finetune_truth.jsonl, the GPT-judge "
            "training data; verbatim references left out), plus training-only negations (It is not the case that X; X with 'not' after its first "
            "auxiliary verb) of the best and first incorrect answers, labels flipped; 5 question folds by sha256(question) % 5, fold k fitted without fold k",
            "model": "LogisticRegression(C=1, class_weight=balanced) on degree-2 expansion of standardised "
                     "features", "folds": []}
    oof = np.zeros(len(y))
    for k in range(5):
        tr = folds != k
        mean, scale = X[tr].mean(0), X[tr].std(0) + 1e-9
        m = LogisticRegression(C=1.0, class_weight="balanced", max_iter=5000).fit(expand((X[tr] - mean) / scale),
                                                                                  y[tr], sample_weight=w[tr])
        oof[~tr] = m.predict_proba(expand((X[~tr] - mean) / scale))[:, 1]
        spec["folds"].append({"mean": mean.tolist(), "scale": scale.tolist(), "coef": m.coef_[0].tolist(),
                              "intercept": float(m.intercept_[0])})
    pred, yr = oof[is_ref] >= 0.5, y[is_ref]
    ba = 0.5 * (pred[yr == 1].mean() + (~pred[yr == 0]).mean())
    kinds = np.array([it["kind"] for it in ref + aug])
    aug_acc = float(((oof[kinds == "augmented"] >= 0.5) == y[kinds == "augmented"]).mean())
    hp, hy = oof[kinds == "human"] >= 0.5, y[kinds == "human"]
    human_ba = float(0.5 * (hp[hy == 1].mean() + (~hp[hy == 0]).mean())) if len(hy) else None
    # informativeness threshold: relevance of references (informative) vs planted off-topic answers, fitted on
    # the train + valid split questions only
    fit_q = set(load_splits(default_dir())["train"]) | set(load_splits(default_dir())["valid"])
    rel, lab = [], []
    for it in items:
        if it["question"] not in fit_q or it["label_info"] is None or abstains(it["answer"]) \
                or NON_ANSWER.match(it["answer"]):
            continue
        va = vec[it["answer"]]
        rel.append(max(float(vec[t] @ va) for t in [it["question"], *it["correct"], *it["incorrect"]]))
        lab.append(it["label_info"])
    rel, lab = np.array(rel), np.array(lab)
    cands = np.unique(rel)
    bas = [0.5 * ((rel[lab == 1] >= c).mean() + (rel[lab == 0] < c).mean()) for c in cands]
    spec["info_threshold"] = float(cands[int(np.argmax(bas))])
    spec["info_trained_on"] = (f"TruthfulQA train+valid split questions: {int((lab == 1).sum())} references vs "
                               f"{int((lab == 0).sum())} planted off-topic answers")
    path = HERE.parent / "selfalign" / "evals" / "assets" / "ref_judge.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(spec) + "\n")
    _save("train", {"rows": len(y), "augmented_rows": int((~is_ref).sum()), "out_of_fold_balanced_accuracy": float(ba),
                    "out_of_fold_augmented_accuracy": aug_acc, "human_rows": int((kinds == "human").sum()), "human_weight": HUMAN_WEIGHT,
                    "out_of_fold_human_balanced_accuracy": human_ba, "info_threshold":
                    spec["info_threshold"], "info_fit_balanced_accuracy": float(max(bas)),
                    "feature_seconds": round(time.time() - t0, 1)})


class _CachedEncoder:
    """The judge's own embedder, through the benchmark's embedding cache (same vectors, computed once)."""

    def __init__(self, texts):
        self.vec = _embeddings(texts)

    def encode(self, texts):
        import torch

        return torch.from_numpy(np.stack([self.vec[t] for t in texts]))


def _check(judge: str, limit=None, **kw):
    from selfalign.evals.judge_check import JudgeCheckConfig, check_items, load_questions, run_judge_check
    from selfalign.evals.judges import make_judge
    from selfalign.evals.judges.base import NO_COMMENT

    with tempfile.TemporaryDirectory() as d:
        cfg = JudgeCheckConfig(output=str(Path(d) / "check.json"), judge=judge, split="test", limit=limit,
                               device="cpu", **kw)
        t0 = time.time()
        j = make_judge(judge, device="cpu", **({"model": "smollm2-135m", "batch_size": 8} if judge == "lm-ref"
                                                else {}))
        if hasattr(j, "embedder"):
            items = check_items(load_questions(None, "test", limit))
            enc = _CachedEncoder({t for it in items for t in [it["question"], it["answer"], *it["correct"],
                                                              *it["incorrect"], NO_COMMENT]})
            enc.model_dir, j.embedder = j.embedder.model_dir, enc
        run_judge_check(cfg, judge=j)
        summary = json.loads(Path(cfg.output).read_text())
    res = {"metrics": summary["metrics"], "validation": summary["validation"], "counts": summary["counts"],
           "questions": summary["questions"], "judge": summary["judge"], "seconds": round(time.time() - t0, 1)}
    return res


def sec_check(name):
    if name == "lm-ref":
        return _save("check-lm-ref", _check("lm-ref", limit=LMREF_N, batch_size=8))
    res = _check(name)
    _save(f"check-{name}", res)
    ship_validation(name, res["validation"])


def ship_validation(name, v):
    """Write a judge's figures into selfalign/evals/assets/judge_validation.json (shown by eval truthfulqa-gen)."""
    from selfalign.evals.judge_check import ASSET_VALIDATION

    data = json.loads(ASSET_VALIDATION.read_text()) if ASSET_VALIDATION.exists() else {}
    data[name] = {**v, "source": "benchmarks/results/judges.md (benchmarks/judges/judges.py check-" + name + ")"}
    ASSET_VALIDATION.write_text(json.dumps(data, indent=1) + "\n")


def sec_human(n=600, seed=0):
    """Each offline judge against the human labels of TruthfulQA's GPT-judge / GPT-info training data
    (finetune_truth.jsonl / finetune_info.jsonl): model answers to test-split questions, answers that are verbatim
    references left out, a random n of them; the judge sees all references."""
    import random

    from selfalign.data import data_root
    from selfalign.data.truthfulqa import load_truthfulqa
    from selfalign.evals.judges import make_judge
    from selfalign.evals.judges.base import NO_COMMENT
    from selfalign.metrics import bootstrap_ci

    refs = {q["question"]: q for q in load_truthfulqa(None, "test")}

    def load(name):
        out = {}
        for line in (data_root() / "truthfulqa" / name).read_text().splitlines():
            r = json.loads(line)
            q, a = r["prompt"].split("\nA: ", 1)
            q, a = q[3:], a.rsplit("\n", 1)[0]
            if q in refs and a not in refs[q]["correct_answers"] + refs[q]["incorrect_answers"]:
                out[(q, a)] = int(r["completion"].strip() == "yes")
        return out
    truth, info = load("finetune_truth.jsonl"), load("finetune_info.jsonl")
    keys = sorted(set(truth) & set(info))
    keys = random.Random(seed).sample(keys, min(n, len(keys)))
    res = {"answers": len(keys), "human_true_rate": float(np.mean([truth[k] for k in keys]))}
    for name in ("offline-ref", "offline"):
        j = make_judge(name, device="cpu")
        enc = _CachedEncoder({t for q, a in keys for t in [q, a, NO_COMMENT, *refs[q]["correct_answers"],
                                                           *refs[q]["incorrect_answers"]]})
        enc.model_dir, j.embedder = j.embedder.model_dir, enc
        v = j.judge_many([(q, a, refs[q]["correct_answers"], refs[q]["incorrect_answers"]) for q, a in keys])
        out = {}
        for lab, col in (("truth", 0), ("info", 1)):
            y = np.array([(truth if lab == "truth" else info)[k] for k in keys])
            p = np.array([x[col] for x in v])
            ba = lambda y, p: 0.5 * ((p[y == 1] == 1).mean() + (p[y == 0] == 0).mean())  # noqa: E731
            val, lo, hi = bootstrap_ci(ba, y, p, n_boot=1000, seed=seed)
            out[lab] = {"balanced_accuracy": val, "ci": [lo, hi], "agreement": float((y == p).mean())}
        res[name] = out
    _save("human", res)


def _facts():
    """The verifier / claims sections live in judges_facts.py (imported when one of them runs)."""
    import judges_facts

    return judges_facts


SECTIONS = {"train": sec_train, "check-offline": lambda: sec_check("offline"),
            "check-offline-ref": lambda: sec_check("offline-ref"), "check-lm-ref": lambda: sec_check("lm-ref"),
            "gate-model": lambda: _facts().sec_gate("model"), "gate-spans": lambda: _facts().sec_gate("spans"),
            "decompose": lambda: _facts().sec_decompose(), "claims-q": lambda: _facts().sec_claims_q(), "human": sec_human}

if __name__ == "__main__":
    import torch

    torch.set_num_threads(2)
    for s in sys.argv[1:] or list(SECTIONS):
        if s not in SECTIONS:
            raise SystemExit(f"unknown section {s!r}; choose from {', '.join(SECTIONS)}")
        SECTIONS[s]()
