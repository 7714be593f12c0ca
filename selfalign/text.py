"""Answer text compared as words: the one ``normalize`` that every matcher uses (sk-data's labels, knowledge-qa's
accuracy, score's gold-match oracle, the answer-frequency baselines, self-consistency's support check)."""
from __future__ import annotations

import re
import string
from typing import Optional

_PUNCT = re.compile(f"[{re.escape(string.punctuation)}\u2018\u2019\u201c\u201d]")
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize(text: str) -> str:
    """Lowercase; punctuation (curly quotes too) becomes a space; no articles; single spaces (SQuAD-style). A text
    that is nothing but articles keeps them: "A" (a blood type, an option letter) is "a", not empty, so it matches
    itself and is never its own distractor; every other text normalises as before."""
    words = _PUNCT.sub(" ", text.lower())
    return " ".join(_ARTICLES.sub(" ", words).split()) or " ".join(words.split())


def matches(a: str, b: str) -> bool:
    """Two normalised answers: equal, or one contains the other as whole words."""
    return bool(a and b) and (a == b or f" {b} " in f" {a} " or f" {a} " in f" {b} ")


def match_targets(answer: str, targets: list[str]) -> Optional[int]:
    """A generative answer against its gold targets: 1 if it matches one (equal, or one contains the other as
    whole words, after normalisation), 0 if not, None for an empty answer."""
    a = normalize(answer)
    if not a:
        return None
    return int(any(matches(a, normalize(t)) for t in targets))


# Where an answer's clauses meet: a comma, semicolon, slash, bracket, line end, dash, "or" / "and", a sentence end.
_CLAUSE = re.compile(r"\s+(?:or|and)\s+|[,;/()\[\]\n:]|[.!?](?=\s|$)|\s[-\u2013\u2014]\s")
_HEDGE = re.compile(r"\s+or\s+|/")  # "Paris or Lyon", "Paris/Lyon": two candidates, always
_NOT_A_NAME = frozenset("the a an it its this that these those he she they his her their which who whose where when "
                        "in on at of for from with by as is was are were also not but both each".split())


def strict_match(answer: str, targets: list[str]) -> Optional[int]:
    """The strict knowledge-QA match: 1 if the answer's first clause *is* a gold target (equal after ``normalize``)
    and the answer names no other candidate, 0 if not, None for an empty answer.

    The first clause is a start of the answer, cut at a clause boundary (``,`` ``;`` ``/`` ``:`` a bracket, a dash,
    "or", "and", a sentence end), that equals a target with nothing after it naming another candidate: "Paris." and
    "Paris, the capital" are right for "Paris"; "Trinidad and Tobago" is right for itself (the whole answer). Another candidate is named when the rest
    holds an "or" or a "/" ("Paris or Lyon") or a clause that starts with a capital or a digit and not with a
    function word ("Paris, Lyon"; "Paris, the capital" and "Paris. It is ..." name none). ``match_targets`` (the
    lenient match: one contains the other) counts all of these right."""
    if not normalize(answer):
        return None
    return int(bool(first_clauses(answer) & ({normalize(t) for t in targets} - {""})))


def first_clauses(answer: str) -> set[str]:
    """The normalised starts of an answer that ``strict_match`` accepts as the whole answer: each start cut at a
    clause boundary with nothing after it naming another candidate ("Paris, the capital" -> {"paris", "paris
    capital"}; "Paris or Lyon" -> {"paris or lyon"}, which no single target equals). A target matches strictly when
    its normalised text is one of them."""
    text = answer.strip()
    return {normalize(text[:end]) for end in [m.start() for m in _CLAUSE.finditer(text)] + [len(text)]
            if not _names_another(text[end:])} - {""}


def _names_another(rest: str) -> bool:
    if _HEDGE.search(rest):
        return True
    for clause in _CLAUSE.split(rest):
        words = clause.split()
        if words and (words[0][0].isupper() or words[0][0].isdigit()) and words[0].lower().strip("'\"") not in _NOT_A_NAME:
            return True
    return False
