"""Fact-verifier sanity gate and an offline span verifier for FActScore-style scoring.

Gate: before ``eval biogen`` scores anything, facts are planted from the knowledge source itself: sentences of the
bios' entries (true) and copies with one span swapped in from another entry (altered): a year (``date``) or a
capitalised name / place (``name``) that the entry does not contain anywhere. The verifier scores every planted
fact the way it scores real ones (same retrieval, same prompt); its AUROC (true vs altered) goes into every result,
and below ``GATE_MIN`` the run warns that its FActScore is not meaningful. A verifier that says yes to everything
has AUROC 0.5.

Span verifier (``--verify-method spans``, offline, approximating FActScore's retrieval + ``npm`` option): a fact
is supported by the retrieved passages in proportion to how many of its key spans (numbers, capitalised words
other than the topic's) and content words occur in them: score = key recall x sqrt(content recall), halved when a
key span is missing (so a fact with a name or number absent from the passages is never supported).
"""
from __future__ import annotations

import random
import re
from typing import Callable, Sequence

import numpy as np

from selfalign.metrics import auroc

GATE_MIN = 0.6
YEAR = re.compile(r"\b(?:1[0-9]{3}|20[0-9]{2})\b")
CAPSPAN = re.compile(r"\b[A-Z][a-z]+(?:\s+(?:of\s+|de\s+|da\s+|von\s+|van\s+)?[A-Z][a-z]+)*")
STOP = set("a an the of to in on at by for with from as and or but is are was were be been being has have had "
           "he she it they his her its their this that these those who which what when where also who whom there "
           "into onto than then after before during while since until about over under between among".split())
PRONOUN_OPENERS = {"He", "She", "They", "It", "His", "Her", "Their", "Its", "The", "In", "After", "During", "A", "An"}


def _tokens(text: str) -> list[str]:
    return re.findall(r"[A-Za-z0-9]+", text)


def _present(tok: str, words: set, prefixes: set) -> bool:
    t = tok.lower()
    return t in words or (len(t) > 5 and t[:5] in prefixes)


def span_support(topic: str, fact: str, passages: Sequence[dict]) -> float:
    """Key-span x content-word presence of ``fact`` in the passages (1.0 = every span found)."""
    words = {w.lower() for p in passages for w in _tokens(p["text"])}
    prefixes = {w[:5] for w in words if len(w) > 5}
    topic_toks = {w.lower() for w in _tokens(topic)}
    toks = _tokens(fact)
    key = [t for i, t in enumerate(toks) if t.lower() not in topic_toks and (t.isdigit() or (
        t[0].isupper() and not (i == 0 and t in PRONOUN_OPENERS) and t.lower() not in STOP))]
    content = [t for t in toks if t.lower() not in STOP and t.lower() not in topic_toks and len(t) > 2]
    kr = np.mean([_present(t, words, prefixes) for t in key]) if key else 1.0
    cr = np.mean([_present(t, words, prefixes) for t in content]) if content else 1.0
    return float(kr * np.sqrt(cr) * (1.0 if kr == 1.0 else 0.5))


def _sentences(ks, topic: str) -> list[str]:
    from selfalign.selfeval.splitter import split_sentences

    out = []
    for p in ks.passages(topic):
        out += [s for s in split_sentences(p["text"]) if 5 <= len(s.split()) <= 40]
    return out


def _spans(sentence: str, topic: str) -> tuple[list[str], list[str]]:
    tt = {w.lower() for w in _tokens(topic)}
    names = [m.group(0) for m in CAPSPAN.finditer(sentence) if m.start() > 0
             and not ({w.lower() for w in _tokens(m.group(0))} & tt) and m.group(0) not in PRONOUN_OPENERS]
    return YEAR.findall(sentence), names


def plant_facts(ks, topics: Sequence[str], n: int = 40, seed: int = 0) -> list[dict]:
    """About ``n`` planted facts ({topic, fact, label, kind}), half true, half altered, from the topics' entries
    (titles of the source are added when fewer than 2 topics have an entry, so that swaps come from elsewhere)."""
    rng = random.Random(seed)
    topics = [t for t in dict.fromkeys(topics) if ks.has(t)]
    if len(topics) < 2:
        topics += [t for t in ks.titles(20) if t not in topics]
    sents = {t: _sentences(ks, t) for t in topics}
    text = {t: " ".join(p["text"] for p in ks.passages(t)) for t in topics}
    pool = {"date": [(t, y) for t in topics for s in sents[t] for y in _spans(s, t)[0]],
            "name": [(t, x) for t in topics for s in sents[t] for x in _spans(s, t)[1]]}
    cands = [(t, s) for t in topics for s in sents[t]]
    rng.shuffle(cands)
    out, per = [], max(1, n // 2)
    for t, s in cands:
        if len(out) >= 2 * per:
            break
        years, names = _spans(s, t)
        kinds = [k for k, have in (("date", years), ("name", names)) if have]
        rng.shuffle(kinds)
        for kind in kinds:
            old = rng.choice(years if kind == "date" else names)
            new = [x for src, x in pool[kind] if src != t and x not in text[t] and x != old]
            if not new:
                continue
            altered = s.replace(old, rng.choice(new), 1)
            out += [{"topic": t, "fact": s, "label": 1, "kind": kind},
                    {"topic": t, "fact": altered, "label": 0, "kind": kind}]
            break
    return out


def gate(score: Callable[[list[tuple[str, str]]], list[float]], facts: Sequence[dict], n_boot: int = 1000,
         seed: int = 0) -> dict:
    """AUROC of ``score`` ([(topic, fact)] -> P(supported)) on planted facts, a bootstrap interval over facts,
    supported rates (P > 0.5) of true and altered facts, and whether it passes ``GATE_MIN``."""
    if not facts:
        return {"auroc": None, "ci": [None, None], "n": 0, "passed": False,
                "note": "no facts could be planted (entries without years or names to swap)"}
    probs = np.asarray(score([(f["topic"], f["fact"]) for f in facts]), dtype=float)
    y = np.asarray([f["label"] for f in facts])
    a = auroc(y, probs)
    rng = np.random.default_rng(seed)
    boots = [auroc(y[i], probs[i]) for i in (rng.integers(0, len(y), len(y)) for _ in range(n_boot))]
    boots = [b for b in boots if b is not None]
    ci = [float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))] if boots else [None, None]
    by_kind = {k: auroc(y[m], probs[m]) for k in ("date", "name")
               for m in [np.asarray([f["kind"] == k for f in facts])] if m.any()}
    return {"auroc": a, "ci": ci, "n": int(len(y)), "n_true": int(y.sum()),
            "supported_true": float((probs[y == 1] > 0.5).mean()), "supported_false": float((probs[y == 0] > 0.5).mean()),
            "auroc_by_kind": by_kind, "passed": a is not None and a >= GATE_MIN, "threshold": GATE_MIN}


def gate_text(g: dict | None) -> str:
    """The gate's result in a few words, for the line printed beside a verifier's published figure."""
    if not g:
        return "not gated (--gate-facts 0)"
    if g.get("auroc") is None:
        return f"not gated ({g.get('note')})"
    return f"AUROC {g['auroc']:.2f} on {g['n']} planted facts ({'passed' if g['passed'] else 'FAILS'})"


def gate_warning(g: dict) -> str | None:
    if g.get("passed"):
        return None
    a = g.get("auroc")
    return (f"eval biogen: WARNING: the fact verifier fails the sanity gate (AUROC {a:.2f} < {GATE_MIN} on "
            f"{g['n']} planted true/altered facts): this FActScore is not meaningful" if a is not None else
            f"eval biogen: WARNING: the fact verifier could not be gated ({g.get('note')}): this FActScore is "
            "not validated")
