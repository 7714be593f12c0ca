"""The *length* judge (``score --method length``), a control with no model and no labels: a sample scores by its
length in words (whitespace-separated, as ``eval wikifacts`` counts ``length``).

Direction (``--length-prefer``): ``shorter`` (the default) scores minus the word count, so the shorter answer of a
pair is chosen; ``longer`` scores the word count. Shorter is the default because it is the shortcut a long-form
precision gain must be told apart from: saying less can raise precision while the supported facts fall (an empty
answer is the shortest of all and is chosen over any other). Equal lengths tie, and ``pairs`` drops ties. Every
sample is scored, also one with nothing checkable in it (unlike ``wikifacts-claims``, which leaves such a sample
unscored).
"""
from __future__ import annotations

METHOD = "length"
NEEDS_MODEL = False
DIRECTIONS = ("shorter", "longer")


def length_score(response: str, prefer: str = "shorter") -> int:
    n = len(response.split())
    return -n if prefer == "shorter" else n


def score_rows(engine, rows: list[dict], cfg) -> list[dict]:
    prefer = getattr(cfg, "length_prefer", "shorter")
    return [{**r, "score": length_score(r["response"], prefer), "score_method": METHOD, "length_prefer": prefer}
            for r in rows]
