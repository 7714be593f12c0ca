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
