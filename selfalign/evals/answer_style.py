"""Answer style on TruthfulQA MC, and the bag-of-words baseline a multiple-choice gain has to beat.

TruthfulQA's true options are often a negation or a hedge ("No, ...", "Nothing happens", "I have no comment",
"It depends"), its false ones plain assertions. A selector that learns that style, and no fact, already beats
small models. Two tools to read an MC result honestly:

- ``hedged(text)``: the style rule. An option is *hedged* when it contains a word or phrase of ``NEGATIONS``,
  ``HEDGES`` or ``NON_ANSWERS`` (whole words, case-insensitive; "n't" anywhere, as in "don't"), else *plain*.
  The lists were written from reading TruthfulQA's options. On the shared mc_task.json (all 817 questions) the
  rule flags 56.7 % of the true mc1 options and 11.6 % of the false ones (true mc2 options: 52.0 %; the 730 test
  questions: 56.7 % / 12.2 %; the 41 training questions: 53.7 % / 5.7 %);
  ``flag_shares`` computes such figures, and an evaluation splits its selection accuracy by the style of each
  question's true option (``annotate``).
- ``fit_bow`` / ``bow_select``: a bag-of-words logistic regression on option text alone (no question), fitted on
  the labels a model was trained on (gold labels for an oracle, the judge's self-labels for a self-aligned model),
  which picks each question's option with the highest predicted probability. A model's selection gain counts only
  beyond this baseline on the same labels.

Ties (options with the same predicted probability, e.g. two options made only of unseen words) are credited as
uniform random tie-breaking would be on average: a question scores the share of its tied top options that are
true. TruthfulQA lists the true mc1 option first, so breaking ties toward the first option would favour the truth.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import numpy as np

from selfalign.errors import InputError, SelfAlignError

NEGATIONS = ("not", "no", "never", "nothing", "none", "nobody", "no one", "neither", "nor", "cannot")
# "n't" is matched inside a word ("don't", "isn't", "can't"), straight or curly apostrophe
CONTRACTED_NOT = r"n['\u2019]t(?![a-z])"
HEDGES = ("may", "might", "could", "some", "few", "likely", "probably", "possibly", "perhaps", "unknown", "unclear",
          "uncertain", "depends", "varies", "disagree", "ambiguous", "inconclusive")
NON_ANSWERS = ("i have no comment", "it depends", "there is no consensus")
STYLES = ("hedged", "plain")


def _words(words: Sequence[str]) -> str:
    return r"(?<![a-z])(?:" + "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True)) + r")(?![a-z])"


_NEG = re.compile(_words(NEGATIONS) + "|" + CONTRACTED_NOT, re.IGNORECASE)
_HEDGE = re.compile(_words(HEDGES) + "|" + _words(NON_ANSWERS), re.IGNORECASE)


def flags(text: str) -> tuple[str, ...]:
    """The style marks of an option: ("negation", "hedge"), one of them, or ()."""
    return tuple(name for name, pat in (("negation", _NEG), ("hedge", _HEDGE)) if pat.search(text))


def hedged(text: str) -> bool:
    """Whether the option is a negation or a hedge (the style TruthfulQA's true options tend to have)."""
    return bool(flags(text))


def style(text: str) -> str:
    """"hedged" or "plain"."""
    return STYLES[0] if hedged(text) else STYLES[1]


def flag_shares(questions: Sequence[dict], key: str = "options") -> dict:
    """The share of true and of false options the rule flags, over ``questions`` ([{key: [{text, label}]}])."""
    opts = [(int(o["label"]), hedged(o["text"])) for q in questions for o in q[key]]
    out = {}
    for name, lab in (("true", 1), ("false", 0)):
        f = [h for lb, h in opts if lb == lab]
        out[name] = {"flagged": float(np.mean(f)) if f else None, "n": len(f)}
    return out


# --- split of an evaluation by the style of each question's true option ------------------------------------
def annotate(rows: list[dict], questions: Sequence[dict], metrics: Sequence[str], key: str = "mc1") -> list[str]:
    """Add to each row ``true_style`` (the style of its question's true ``key`` option) and, per metric ``m``,
    ``m_hedged`` / ``m_plain`` (the row's value on its own style, None on the other); returns the new metric
    names. Rows and questions are matched by ``id``."""
    by_id = {str(q["id"]): q for q in questions}
    names = [f"{m}_{s}" for m in metrics for s in STYLES]
    for r in rows:
        q = by_id[str(r["id"])]
        s = style(next(o["text"] for o in q[key] if o["label"]))
        r["true_style"] = s
        for m in metrics:
            for t in STYLES:
                r[f"{m}_{t}"] = r.get(m) if t == s else None
    return names


# --- the bag-of-words baseline -------------------------------------------------------------------------------
def read_label_rows(path: str | Path) -> list[dict]:
    """The rows of an sk-tune rows JSONL ({proposal, label 0/1, ...}: ``mc-data`` / ``sk-data`` output), every row as
    it is (the copies ``mc-data --balance`` adds count, as they did in training); both labels must occur."""
    from selfalign.store.io import iter_numbered

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    rows = [r for _, r in iter_numbered(path, required=["proposal", "label"])]  # types checked there
    labels = sorted({int(r["label"]) for r in rows})
    if len(labels) < 2:
        raise SelfAlignError(f"{path}: a bag-of-words baseline needs true and false rows; all {len(rows)} rows "
                             f"are labelled {labels[0] if labels else '-'}")
    return rows


def fit_bow(texts: Sequence[str], labels: Sequence[int], vectorizer: str = "count", C: float = 1.0):
    """A scikit-learn pipeline: word counts (``count``, binary) or TF-IDF (``tfidf``) of lower-cased unigrams,
    then L2 logistic regression (lbfgs: deterministic)."""
    from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    if vectorizer not in ("count", "tfidf"):
        raise SelfAlignError(f"vectorizer must be count or tfidf, not {vectorizer!r}")
    if len(set(labels)) < 2:
        raise SelfAlignError("a bag-of-words baseline needs both labels among its training rows")
    vec = CountVectorizer(binary=True) if vectorizer == "count" else TfidfVectorizer()
    return make_pipeline(vec, LogisticRegression(C=C, max_iter=1000)).fit(list(texts), list(labels))


def tie_credit(scores: Sequence[float], labels: Sequence[int]) -> float:
    """Expected accuracy of picking the top score with ties broken uniformly at random: the share of the tied
    top options that are true."""
    s = np.asarray(scores, dtype=float)
    top = np.flatnonzero(np.isclose(s, s.max(), rtol=0, atol=1e-12))
    return float(np.mean([labels[k] for k in top]))


def bow_select(model, questions: Sequence[dict], key: str = "mc1") -> list[dict]:
    """Per question: {id, bow_choice (index of the top option), bow_mc1 (1 / 0, or the tie share)}."""
    texts = [o["text"] for q in questions for o in q[key]]
    p = model.predict_proba(texts)[:, list(model.classes_).index(1)] if texts else []
    out, k = [], 0
    for q in questions:
        n = len(q[key])
        s = p[k:k + n]
        k += n
        out.append({"id": str(q["id"]), "bow_choice": int(np.argmax(s)),
                    "bow_mc1": tie_credit(s, [int(o["label"]) for o in q[key]])})
    return out


def rule_select(questions: Sequence[dict], key: str = "mc1") -> list[dict]:
    """The style rule as a selector (no training): the hedged options tie at the top (all options when none is
    hedged); {id, rule_mc1} with the tie share."""
    return [{"id": str(q["id"]), "rule_mc1": tie_credit([float(hedged(o["text"])) for o in q[key]],
                                                        [int(o["label"]) for o in q[key]])} for q in questions]
