"""Knowledge sources for FActScore-style verification: a FActScore SQLite ``documents(title, text)`` or a JSONL of
{title, text}, split into passages like FActScore, with BM25 retrieval (rank-bm25) over the topic's passages.

Passages: FActScore's builder packs a document's sentences (``text`` as a list, or one string) into passages of at
most 256 RoBERTa tokens; here the unit is a whitespace word (256 words), the packing rule is the same. A SQLite
text that already holds FActScore's passage separator is split on it (a prebuilt FActScore DB) instead.
Retrieval (FActScore's ``get_bm25_passages``): query = topic + " " + fact, whitespace tokens, top k by BM25 score.
"""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np

from selfalign.errors import InputError, SelfAlignError
from selfalign.store.io import input_file, iter_numbered

SPECIAL_SEPARATOR = "####SPECIAL####SEPARATOR####"  # FActScore's passage separator inside a DB text
MAX_WORDS = 256
SQLITE_MAGIC = b"SQLite format 3\x00"


def chunk(text, max_words: int = MAX_WORDS) -> list[str]:
    """FActScore's packing: fill the current passage sentence by sentence; a sentence that does not fit fills the
    passage up to ``max_words`` and continues in new passages of ``max_words``."""
    sents = [text] if isinstance(text, str) else list(text)
    passages: list[list[str]] = [[]]
    for sent in sents:
        words = str(sent).split()
        room = max_words - len(passages[-1])
        if len(words) <= room:
            passages[-1].extend(words)
            continue
        passages[-1].extend(words[:room])
        for off in range(room, len(words), max_words):
            passages.append(words[off:off + max_words])
    return [" ".join(p) for p in passages if p]


class KnowledgeSource:
    """Passages per title from SQLite or JSONL, BM25 retrieval per (topic, fact)."""

    def __init__(self, path: str | Path, max_words: int = MAX_WORDS):
        self.path, self.max_words = input_file(path, "knowledge source"), max_words
        with open(self.path, "rb") as f:
            self.kind = "sqlite" if f.read(16) == SQLITE_MAGIC else "jsonl"
        self._docs = self._load_jsonl() if self.kind == "jsonl" else None
        self._conn = self._open_sqlite() if self.kind == "sqlite" else None
        self._cache: dict[str, tuple[list[dict], object]] = {}

    def _load_jsonl(self) -> dict:
        docs: dict[str, object] = {}
        for lineno, r in iter_numbered(self.path, required=["title", "text"]):
            text = r["text"]
            if not isinstance(text, (str, list)) or (isinstance(text, list) and not all(isinstance(x, str) for x in text)):
                raise InputError(self.path, "'text' must be a string or a list of sentences (strings)", lineno)
            if not isinstance(r["title"], str):
                raise InputError(self.path, f"'title' must be a string, got {json.dumps(r['title'])[:40]}", lineno)
            docs.setdefault(str(r["title"]), r["text"])  # FActScore keeps the first document of a title
        if not docs:
            raise InputError(self.path, "no documents (the file is empty)")
        return docs

    def _open_sqlite(self):
        conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
        try:
            cols = {r[1] for r in conn.execute("PRAGMA table_info(documents)")}
        except sqlite3.DatabaseError as e:
            raise InputError(self.path, f"not a readable SQLite database ({e})") from None
        if not {"title", "text"} <= cols:
            raise InputError(self.path, "SQLite knowledge source needs a table documents(title, text)")
        return conn

    def describe(self) -> dict:
        return {"path": str(self.path), "kind": self.kind, "max_words": self.max_words}

    def titles(self, limit: int = 20) -> list[str]:
        """The first ``limit`` titles of the source (the sanity gate swaps spans in from other entries)."""
        if self.kind == "jsonl":
            return list(self._docs)[:limit]
        return [r[0] for r in self._conn.execute("SELECT title FROM documents LIMIT ?", (limit,))]

    def has(self, title: str) -> bool:
        return bool(self.passages(title))

    def passages(self, title: str) -> list[dict]:
        """[{title, text, idx}] of a title; [] when the source has no such title."""
        return self._entry(title)[0]

    def _entry(self, title: str):
        if title not in self._cache:
            if self.kind == "jsonl":
                text = self._docs.get(title)
            else:
                row = self._conn.execute("SELECT text FROM documents WHERE title = ?", (title,)).fetchone()
                text = row[0] if row else None
            if text is None:
                psgs = []
            elif isinstance(text, str) and SPECIAL_SEPARATOR in text:
                psgs = [p for p in text.split(SPECIAL_SEPARATOR) if p.strip()]
            else:
                psgs = chunk(text, self.max_words)
            psgs = [{"title": title, "text": p, "idx": i} for i, p in enumerate(psgs)]
            bm25 = None
            if psgs:
                from rank_bm25 import BM25Okapi

                bm25 = BM25Okapi([p["text"].replace("<s>", "").replace("</s>", "").split() for p in psgs])
            self._cache[title] = (psgs, bm25)
        return self._cache[title]

    def retrieve(self, topic: str, fact: str, k: int = 5) -> list[dict]:
        """Top-k passages of ``topic`` for ``fact`` (best first; ties keep document order)."""
        psgs, bm25 = self._entry(topic)
        if not psgs:
            return []
        scores = bm25.get_scores((topic + " " + fact.strip()).split())
        order = np.argsort(-np.asarray(scores), kind="stable")[:k]
        return [psgs[i] for i in order]

    def close(self):
        if self._conn is not None:
            self._conn.close()


def open_source(path: str | Path | None) -> KnowledgeSource | None:
    if not path:
        return None
    try:
        import rank_bm25  # noqa: F401
    except ImportError:
        raise SelfAlignError("--knowledge needs rank-bm25: pip install rank-bm25") from None
    return KnowledgeSource(path)
