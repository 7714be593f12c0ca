"""Frames of the wikifacts verifier: a sentence that is, as a whole, one relation's template names that relation,
whatever vocabulary its value belongs to. The cue rules (``wikifacts_verify``) see only values of a relation's own
vocabulary, so "The continent of Kolkata is India." or "The crime convicted of X is Egypt." stated nothing and a
wrong value went uncounted; and a nearer cue could take the value from the relation the sentence names ("He was
born in the country of Australia": a birthplace, not a country).

- **label frame**: "The <field> of <subject> is|are|was|were <values>" with a field's label ("crime convicted of",
  "country of origin": the longest label that fits) or its qa_wikidata prompt ("The sport played by"), one word
  allowed between label and preposition ("The languages spoken by X are ..."), or "Its|His|Her|Their <field> is
  <values>";
- **prose frame**: the sentence a demonstration states the field in (``Field.prose``: "{s} is a citizen of {v}.",
  "{s} was born in {v}.", "{s} represents {v} in sport."), is / was / are / were interchangeable, the subject part
  holding no verb and no cue of any relation;
- **predicate demonym**: "<subject> is Italian." (no article: "is a Canadian" is the nationality cue's): the
  citizenship, or the country of origin / country / country represented in sport where the subject holds that
  and not a citizenship.

The value part loses a leading "in" and place words ("the country of", "the African nation of") and is read as a
list ("A, B and C"): each item a value any of the verifier's vocabularies knows (with aliases; "Mumbai, India"
stays one place), or an unknown name (capitalised words, at most four: "Middle East"), or, in a label frame of a
relation whose values are lower-case words (crimes, positions, genres), one or two lower-case words ("human
trafficking"). Anything else in it (a description: "a large city", "1749 in Paris") and the sentence is left to the
cue rules. A value outside the relation's vocabulary is then a statement like any other: contradicted on a
single-valued relation the subject holds, unverifiable elsewhere. "The country of <a person>" (a subject that holds
a citizenship and no country) is the citizenship (``wikifacts_lexicon.FRAME_FALLBACK``)."""
from __future__ import annotations

import functools
import re

from selfalign.data.wikifacts import kind
from selfalign.data.wikifacts_lexicon import DEMONYMS, FIELDS, FRAME_FALLBACK, canonical, demonym_pattern
from selfalign.text import normalize

_VERB = r"(?:is|are|was|were)"
_PLACE_WORDS = re.compile(r"^(?:(?:in|at|on|within)\s+)?(?:the\s+)?(?:(?:[\w-]+\s+)?(?:country|nation|state|city|"
                          r"region|province|town|village|continent) of\s+(?:the\s+)?)?", re.I)
_ITEM_SEP = re.compile(r"\s*(?:,|;|&|\band\b|\bor\b)\s*", re.I)
_ARTICLE = re.compile(r"^(?:(?:the|a|an)\s+)+", re.I)
_NAME = re.compile(r"^[A-Z][\w'.-]*(?:\s+(?:[A-Z][\w'.-]*|of|de|the))*$")
_LOWER = re.compile(r"^[a-z][a-z-]+(?:\s+[a-z][a-z-]+)?$")
_NOT_VALUES = frozenset("he she it they his her its their him them this that unknown none not known unclear".split())
_DEMONYM_OF = {d: c for c, ds in DEMONYMS.items() for d in ds}
PREDICATE = ("The country of citizenship of _ is", "The original country of _ is", "The country of _ is",
             "The country for sport played by _ is")


@functools.lru_cache(maxsize=1)
def _frames() -> list[tuple[re.Pattern, str, bool]]:
    """(pattern with groups s and v, relation, label frame) of every relation, the longest label first."""
    labels = [(f.label, rel) for rel, f in FIELDS.items()]
    labels += [(rel.split("_")[0].strip()[4:], rel) for rel in FIELDS if rel.startswith("The ") and "_" in rel]
    out = []
    for text, rel in sorted(set(labels), key=lambda x: -len(x[0])):
        lab = r"\s+".join(map(re.escape, text.split()))
        of = "" if text.split()[-1] in ("of", "by", "in", "for") else r"(?:\s+\w+)?\s+(?:of|by|in|for)"
        out.append((re.compile(rf"^the\s+{lab}(?:{of}\s+(?P<s>.{{1,80}}?))?\s+{_VERB}\s+(?P<v>.+?)[\s.!]*$", re.I),
                    rel, True))
        out.append((re.compile(rf"^(?:its|his|her|their)\s+{lab}\s+{_VERB}\s+(?P<v>.+?)[\s.!]*$", re.I), rel, True))
    for rel, f in FIELDS.items():
        if f.prose.startswith("{s}"):
            lit = re.escape(f.prose[len("{s}"):].rstrip(".")).replace(r"\{v\}", "(?P<v>.+?)")
            lit = re.sub(r"\b(?:is|was)\b", _VERB, lit).replace(r"\ ", r"\s+")
            out.append((re.compile(rf"^(?P<s>.{{1,80}}?){lit}[\s.!]*$", re.I), rel, False))
    return out


@functools.lru_cache(maxsize=1)
def _predicate() -> re.Pattern:
    return re.compile(rf"^(?P<s>.{{1,80}}?)\s+{_VERB}\s+(?P<v>{demonym_pattern()})[\s.!]*$")


def frame_statement(verifier, subject: str, text: str, held: dict) -> dict | None:
    """{relation, values} when the whole sentence is one relation's frame with a readable value part, else None."""
    for pat, rel, is_label in _frames():
        m = pat.match(text)
        s = m.groupdict().get("s") if m else None
        if m is None or (not _plain_subject(verifier, s, rel) if is_label else not _plain_subject(verifier, s or "")):
            continue
        vals = slot_values(verifier, subject, rel, m.group("v"), lower_ok=is_label)
        if vals is None:
            return None  # the sentence's frame, but a description for a value: the cue rules read it
        if vals:
            alt = FRAME_FALLBACK.get(rel) if is_label else None
            if alt and rel not in held and alt in held:
                rel, vals = alt, [canonical(v, kind(alt)) for v in vals]
            return {"relation": rel, "values": vals}
        return None
    m = _predicate().match(text)
    if m and _plain_subject(verifier, m.group("s")):
        rel = next((r for r in PREDICATE if r in held), PREDICATE[0])
        value = _DEMONYM_OF[m.group("v")]
        return None if normalize(value) == normalize(subject) else {"relation": rel, "values": [value]}
    return None


def _plain_subject(verifier, s: str | None, relation: str | None = None) -> bool:
    """The subject part of a frame: in a prose frame no verb and no cue of any relation ("He", "Paul Warburg"; not
    "Paul Warburg is a British explorer who"); in a label frame (``relation``) no cue of another relation ("The
    language of the capital of X" is about the capital)."""
    if relation is not None:
        return s is None or all(c[2] == relation for c in verifier.cues(s))
    return not re.search(rf"\b{_VERB}\b|,", s, re.I) and not verifier.cues(s) and len(s.split()) <= 8


def slot_values(verifier, subject: str, relation: str, slot: str, lower_ok: bool) -> list[str] | None:
    """The values of a frame's value part, in order ([]: only the subject's own name; None: not a list of
    values)."""
    slot = _PLACE_WORDS.sub("", slot.strip())
    raw = verifier.mentions(slot, subject, drop_qualifiers=False)
    kept = {(m.start, m.end) for m in verifier.mentions(slot, subject)}
    cuts = [c for c in _ITEM_SEP.finditer(slot) if not any(m.start <= c.start() < m.end for m in raw)]
    bounds = [0] + [x for c in cuts for x in (c.start(), c.end())] + [len(slot)]
    own = {w.lower() for w in re.findall(r"\w+", subject)}
    countries = set(verifier.vocab.get("The country of _ is", ()))
    out = []
    for a, b in zip(bounds[::2], bounds[1::2]):
        item, a = _trim(slot[a:b], a)
        words = {w.lower() for w in re.findall(r"\w+", item)}
        if not item or words <= own:
            continue  # the subject's own name is never a value
        whole = next((m for m in raw if (m.start, m.end) == (a, a + len(item))), None) or \
            _agreeing(raw, relation, a, a + len(item), slot)
        if whole is not None:
            if (whole.start, whole.end) not in kept:
                continue  # "Mumbai, India": India only qualifies Mumbai
            v, _ = whole.entries.get(relation) or (item, False)
            out.append(v if relation in whole.entries else canonical(v, kind(relation)))
        elif _NAME.match(item) and len(item.split()) <= 4 and not words & _NOT_VALUES:
            out.append(canonical(item, kind(relation)))  # a name outside every vocabulary: "Middle East"
        elif lower_ok and _lower_case(verifier, relation) and _LOWER.match(item) and not words & _NOT_VALUES \
                and not words & set(FIELDS[relation].label.split()):
            out.append(item)  # "human trafficking" as a crime
        else:
            return None
    if len(out) == 2 and len(cuts) == 1 and cuts[0].group().strip() == "," and out[0] not in countries \
            and out[1] in countries:
        out = out[:1]  # "Saint-Denis, France": the country only qualifies the place before it
    return list(dict.fromkeys(out))


def _agreeing(raw: list, relation: str, a: int, b: int, slot: str):
    """The one mention that names the relation's value in an item covered by mentions that agree on it, the rest
    demonyms ("Mandarin Chinese", "American English"), else None."""
    ms = [m for m in raw if a <= m.start and m.end <= b]
    if not ms or re.search(r"\w", re.sub("|".join(re.escape(slot[m.start:m.end]) for m in ms), "", slot[a:b])):
        return None
    named = [m for m in ms if relation in m.entries and not m.entries[relation][1]]
    if len({m.entries[relation][0] for m in named}) != 1 or any(
            m not in named and not all(anch for _, anch in m.entries.values()) for m in ms):
        return None
    return named[0]


def _trim(piece: str, start: int) -> tuple[str, int]:
    """A list item without surrounding punctuation and leading articles, and where it starts in the slot."""
    lead = len(piece) - len(piece.lstrip(" .!'\""))
    core = piece.strip(" .!'\"")
    art = _ARTICLE.match(core)
    n = len(art.group()) if art else 0
    return core[n:], start + lead + n


@functools.lru_cache(maxsize=64)
def _lower_case_of(values: tuple) -> bool:
    return bool(values) and sum(v[:1].islower() for v in values) * 2 > len(values)


def _lower_case(verifier, relation: str) -> bool:
    """Whether a relation's values are mostly lower-case words (crimes, positions, colours, genres)."""
    return _lower_case_of(tuple(verifier.k.vocab.get(relation, ())))
