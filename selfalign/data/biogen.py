"""BioGEN (the paper's long-form task): people's names, asked as "Tell me a bio of <topic>."

Splits: ``train`` (50) and ``test`` (100) from biogen/{train,test}.jsonl ({topic, cat}), and ``factscore`` (the 500
names of FActScore's unlabeled set, biogen-free). Rows: {id, question, topic, cat}. The 5-shot answer template
takes its demonstrations from FActScore's GPT-4 bios (factscore/unlabeled/GPT-4.jsonl; first paragraph each).
"""
from __future__ import annotations

import re
from pathlib import Path

from selfalign import prompts as P
from selfalign.errors import SelfAlignError
from selfalign.store.io import input_file, iter_numbered, read_text

SPLITS = ("train", "test", "factscore")
FEWSHOT_K = 5
_BIO_Q = re.compile(r"Tell me a bio of (?P<topic>.+?)\.?\s*$")


def _root() -> Path:
    from selfalign.data import data_root

    root = data_root()
    if root is None or not (root / "biogen").is_dir():
        raise SelfAlignError("BioGEN data not found: set SELFALIGN_DATA to the shared data folder (with biogen/)")
    return root


def bio_question(topic: str) -> str:
    """"Tell me a bio of <topic>." (no doubled period after "Jr.")."""
    return P.BIOGEN_QUESTION.format(topic=topic).replace("..", ".")


def _row(split: str, i: int, topic: str, cat) -> dict:
    return {"id": f"biogen-{split}-{i:03d}", "question": bio_question(topic), "topic": topic,
            "cat": cat}


def _gpt4_bios(root: Path) -> list[dict]:
    path = input_file(root / "factscore" / "unlabeled" / "GPT-4.jsonl", "file (FActScore GPT-4 bios)")
    return [r for _, r in iter_numbered(path, required=["topic", "output"])]


def load_biogen(split: str | None = "test") -> list[dict]:
    split = split or "test"
    if split not in SPLITS:
        raise SelfAlignError(f"unknown BioGEN split {split!r}; choose one of {', '.join(SPLITS)}")
    root = _root()
    if split == "factscore":
        path = root / "factscore" / "unlabeled" / "prompt_entities.txt"
        text = read_text(path, "file (FActScore's 500 entities)")
        cats = {r["topic"]: r.get("cat") for r in _gpt4_bios(root)}
        names = [n.strip() for n in text.splitlines() if n.strip()]
        return [_row(split, i, n, cats.get(n)) for i, n in enumerate(names)]
    path = root / "biogen" / f"{split}.jsonl"
    return [_row(split, i, r["topic"], r.get("cat")) for i, (_, r) in enumerate(iter_numbered(path, ["topic"]))]


def topic_of(row: dict) -> str:
    """The person a row is about: its ``topic``, else parsed from "Tell me a bio of X.", else ''."""
    if row.get("topic"):
        return str(row["topic"])
    m = _BIO_Q.search(str(row.get("question") or ""))
    return m.group("topic").strip() if m else ""


def fewshot_demos(k: int = FEWSHOT_K) -> list[tuple[str, str]]:
    """k (question, first-paragraph bio) pairs from FActScore's GPT-4 bios, none of them a BioGEN person; chosen
    deterministically: the first k "very freq" people in file order whose first paragraph has 40-120 words."""
    root = _root()
    biogen = {r["topic"] for s in ("train", "test") for _, r in iter_numbered(root / "biogen" / f"{s}.jsonl",
                                                                              ["topic"])}
    out = []
    for r in _gpt4_bios(root):
        para = r["output"].strip().split("\n")[0].strip()
        if r["topic"] in biogen or (r.get("cat") or [None])[0] != "very freq" or not 40 <= len(para.split()) <= 120:
            continue
        out.append((bio_question(r["topic"]), para))
        if len(out) == k:
            return out
    raise SelfAlignError(f"FActScore GPT-4 bios: fewer than {k} usable demonstrations")


def fewshot_template(k: int = FEWSHOT_K) -> P.AnswerTemplate:
    """The ``biogen-5shot`` answer template (built on first use by ``prompting.answer_template``)."""
    return P.AnswerTemplate(f"biogen-{k}shot", None, tuple(fewshot_demos(k)))
