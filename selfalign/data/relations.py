"""The templates of BIG-bench qa_wikidata: every prompt is one Wikidata relation rendered around its subject,
"The capital of <subject> is" or "<subject> is capital of" (the inverse relation: answer a country, not a city).

``parse`` finds the template of a prompt: the known template whose fixed text (prefix and suffix) surrounds a
non-empty subject, the longest such text when several do ("<subject> is located in or next to body of water" over
"<subject> is located in"). A relation is named by its template with ``_`` for the subject ("The capital of _ is",
"_ is capital of"); the three prompts ending in " [MASK]" share their template's relation. Every one of the 10,269
prompts of the shared file parses (tests/data/test_relations.py), and its subject re-renders it.

The table was read off the shared file (``The <relation> of <subject> is`` for 55 relations, some of them Wikidata
properties with an "of" of their own: "country of citizenship", "place of birth", "basic form of government"; five
other ``The ... <subject> is`` forms; 22 subject-first forms). The old guess ("the words before ' of ', else the
first two words") gave 1,098 of the 10,209 distinct prompts a relation of their own (e.g. "Abuja is capital of" ->
"abuja is capital", so its distractor came from anywhere in the task: "cricket") and merged seven relations into
three ("the country": country, country of citizenship, country for sport played by)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from selfalign.errors import InputError, SelfAlignError

OF = ("IUCN conservation status", "academic degree", "basic form of government", "basin country", "blood type",
      "capital", "color", "competition class", "continent", "country", "country of citizenship", "currency",
      "developer", "emergency phone number",
      "ethnic group", "eye color", "family name", "genre", "headquarters location", "health specialty",
      "historic county", "honorific prefix", "instrument", "language", "main subject", "manufacturer",
      "measured physical quantity", "military branch", "military rank", "month of the year", "native language",
      "newspaper format", "noble title", "office held by head of government", "official color", "official language",
      "official religion", "operating area", "operating system", "original broadcaster", "original country",
      "participant", "place of birth", "place of publication", "platform", "product or material produced", "public holiday", "publisher",
      "record label", "religion", "residence", "streak color", "team position", "voice type", "work location")
THE = ("sport played by", "country for sport played by", "material used in", "language used in",
       "languages spoken, written or signed by")
AFTER = ("is located in", "is located in or next to body of water", "shares a border with", "is capital of",
         "convicted of", "is facet of", "writing languages", "is indigenous to", "named after", "given name",
         "is followed by", "endemic to", "follows", "replaced by", "is territory claimed by", "is studied by",
         "influenced by", "programming language", "owned by", "practiced by", "calculated from", "is used by")
MASK = " [MASK]"


@dataclass(frozen=True)
class Template:
    relation: str  # the template with "_" for the subject, e.g. "The capital of _ is"
    prefix: str
    suffix: str

    def render(self, subject: str) -> str:
        return self.prefix + subject + self.suffix


@dataclass(frozen=True)
class Parsed:
    relation: str
    subject: str
    template: Template


def _templates() -> list[Template]:
    out = []
    for words in [f"{r} of" for r in OF] + list(THE):
        for suffix in (" is", " is" + MASK):
            out.append(Template(f"The {words} _ is", f"The {words} ", suffix))
    out += [Template(f"_ {words}", "", f" {words}") for words in AFTER]
    return sorted(out, key=lambda t: -(len(t.prefix) + len(t.suffix)))  # the most specific first


TEMPLATES = _templates()
RELATIONS = tuple(dict.fromkeys(t.relation for t in TEMPLATES))


def parse(prompt: str) -> Optional[Parsed]:
    """(relation, subject) of a qa_wikidata prompt; None when no known template fits."""
    p = prompt.strip()
    for t in TEMPLATES:
        if (len(p) > len(t.prefix) + len(t.suffix) and p.startswith(t.prefix) and p.endswith(t.suffix)):
            subject = p[len(t.prefix):len(p) - len(t.suffix)]
            if subject.strip() == subject and subject:
                return Parsed(t.relation, subject, t)
    return None


def parse_question(q: dict) -> Parsed:
    """``parse`` of a question row ({id, task, source, question}); a prompt of no known template is one
    ``InputError`` naming the task file and the line of that example."""
    got = parse(q["question"])
    if got is None:
        path, line = where(q)
        raise InputError(path, f"example {q['id']!r}: {q['question']!r} matches no known qa_wikidata template "
                               "(selfalign/data/relations.py); a relation and a subject are needed for "
                               "same-relation distractors and the subject split", line)
    return got


def relation(q: dict) -> str:
    return parse_question(q).relation


def subject(q: dict) -> str:
    return parse_question(q).subject


def where(q: dict) -> tuple[str, Optional[int]]:
    """(file, line) of a BIG-bench question: its task.json and the line of its example's "input"."""
    from selfalign.data import mc

    source, task = str(q.get("source") or ""), str(q.get("task") or "")
    try:
        path = Path(source) if source.endswith(".json") else mc.bigbench_path(task)
    except SelfAlignError:
        return source or task, None
    m = re.search(r"-(\d+)$", str(q.get("id", "")))
    return str(path), (example_line(path, int(m.group(1))) if m else None)


def example_line(path: Path, index: int) -> Optional[int]:
    """The line of the ``index``-th example's "input" key in a task.json (None when it cannot be found)."""
    from selfalign.errors import InputError
    from selfalign.store.io import read_text

    try:
        text = read_text(path)
    except InputError:
        return None
    for k, m in enumerate(re.finditer(r'(?<!\\)"input"\s*:', text)):
        if k == index:
            return text.count("\n", 0, m.start()) + 1
    return None
