"""Answer text compared as words: the one ``normalize`` that every matcher uses (sk-data's labels, knowledge-qa's
accuracy, score's gold-match oracle, the answer-frequency baselines, self-consistency's support check)."""
from __future__ import annotations

import re
import string
from typing import Optional

_PUNCT = re.compile(f"[{re.escape(string.punctuation)}\u2018\u2019\u201c\u201d]")
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize(text: str) -> str:
    """Lowercase; punctuation (curly quotes too) becomes a space; no articles; single spaces (SQuAD-style)."""
    return " ".join(_ARTICLES.sub(" ", _PUNCT.sub(" ", text.lower())).split())


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
