"""Deterministic verification of a long-form answer against a subject's Wikidata triples (``eval wikifacts``), no LM.

A response is split into sentences. A *statement* is a sentence's claim about one relation: a value of that
relation's vocabulary (every gold value the file holds for it, with the lexicon's aliases: France <-> French,
Islam <-> Muslim) in a sentence that holds a *cue* of the relation ("capital", "official language", "born",
"citizen"; ``data.wikifacts_lexicon``). A value with no cue of a relation whose vocabulary holds it says nothing
checkable; a cue with no value neither. A relation's vocabulary is the file's gold values of it, the lexicon's
extra values of its kind (United States, football: the file's targets are single words) and, for a place
(capital, residence, birthplace), every place and country known. Rules, in order:

- a sentence about another subject of the file (it opens with that subject's name, or "The <field> of <it>", and
  names neither the subject nor a pronoun) states nothing about this one;
- the subject's own name, or the last word of it ("China" in a profile of the People's Republic of China), is never
  a value; a place right after another with only a comma between ("Mumbai,
  India") qualifies it and is no value of its own unless a list goes on after it ("France, Spain and Italy");
- a cue that ends in a lookahead ("is a" before a demonym: ``NATIONALITY``; "is a" before "Muslim") licenses only
  the value it stands before: "She is an American actress born in Mumbai, India" states no citizenship India;
- a value that several relations could take goes to the relation of the nearest cue; on a tie (one phrase cues
  several: "located in") to a relation the subject holds, then to one where it is gold, then to the relation the
  cue names first (the location before the country), then to the lexicon's order;
- verdicts: a relation the subject does not hold -> *unverifiable*; single-valued: every value gold -> *supported*,
  any value outside gold -> *contradicted* (so listing the gold value beside distractors is contradicted);
  multi-valued: any gold value -> *supported*, else *unverifiable* (the data are incomplete; a padded list earns
  one supported statement, never more); a wrong value that held or was held by a gold one (United Kingdom for
  England, Soviet Union for Russia: ``wikifacts_lexicon.CONTAINS``) is unverifiable, not contradicted.

A sentence that is, as a whole, one relation's template ("The <field> of X is V", the demonstrations' prose) is
read by ``wikifacts_frames`` first: it names that relation whatever vocabulary V is in.

``sentences_of`` gives one record per statement and one per sentence without any ({sentence, index, relation,
field, values, verdict}); ``claims`` one gold verdict per (relation, value); ``claim_sk`` renders a claim as the
judge's SK-Tuning row: the relation's qa_wikidata prompt and the value ("The capital of Nigeria is" / "Abuja").
``fingerprint()`` names the extractor's code and tables: results scored by different extractors are re-scored
(``eval wikifacts --rescore``), never compared."""
from __future__ import annotations

import functools
import hashlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from selfalign.data.relations import MASK, TEMPLATES
from selfalign.data.wikifacts import Knowledge, kind
from selfalign.data.wikifacts_lexicon import EXTRA_VALUES, FIELDS, cue_patterns, related, surface_forms
from selfalign.evals.wikifacts_frames import frame_statement
from selfalign.text import normalize

VERDICTS = ("supported", "contradicted", "unverifiable")
_WORD = re.compile(r"\w+")
_END = re.compile(r"[.!?][\"'\u201d\u2019)\]]*\s+")
_NOT_END = re.compile(r"(?:\b[A-Z]|\b(?:St|Dr|Mr|Mrs|Ms|Jr|Sr|Mt|Ft|No|vs|Gen|Col|Capt|Lt|Sgt|Prof|Rev|Co|Inc|Ltd|"
                      r"U\.S|e\.g|i\.e|c|ca))\.$")
_BULLET = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s+")
_PRONOUNS = frozenset("he she it its his her they their him them".split())
_OPENING = re.compile(r"^(?:The [\w ,'-]{1,40}? of (?:the )?)?((?:[A-Z][\w'.-]*)(?: (?:[A-Z][\w'.-]*|of|de|the|and))*)")
_LIST_ON = re.compile(r"^\s*(?:,|,?\s*(?:and|or))\s*$")


def split_sentences(text: str) -> list[str]:
    """Sentences of a response: its lines, each cut after . ! ? before a capital letter, a digit or a quote (not
    after an initial, "R. K. Narayan", or an abbreviation, "St. Louis"); bullets dropped."""
    out = []
    for line in text.splitlines():
        line, start = _BULLET.sub("", line).strip(), 0
        for m in _END.finditer(line):
            nxt = line[m.end():m.end() + 1]
            if (nxt.isupper() or nxt.isdigit() or nxt in "\"'\u201c\u2018(") and \
                    not _NOT_END.search(line[start:m.start() + 1]):
                out.append(line[start:m.end()].strip())
                start = m.end()
        out.append(line[start:].strip())
    return [s for s in out if s]


@dataclass
class Mention:
    start: int
    end: int
    entries: dict      # relation -> (canonical value, whether only an anchored cue may license it)


@functools.lru_cache(maxsize=1)
def _cues() -> list[tuple[re.Pattern, str, bool, bool, int]]:
    return [(re.compile(p, re.I), rel, anchored, weak, rank) for p, rel, anchored, weak, rank in cue_patterns()]


@functools.lru_cache(maxsize=1)
def _weak_relations() -> dict:
    """{weak cue pattern: the relations it cues}"""
    out: dict = {}
    for p, rel, _, weak, _ in cue_patterns():
        if weak:
            out.setdefault(p, set()).add(rel)
    return out


class Verifier:
    """The statements, verdicts and claims of responses about the subjects of one ``Knowledge``."""

    def __init__(self, k: Knowledge):
        self.k = k
        self.names = {normalize(s) for s in k.subjects}
        self.vocab = vocabulary(k)
        self.index: dict = {}  # first word (lowercased) -> [(words, case_sensitive, anchored only, relation, value)]
        for rel, vals in self.vocab.items():
            for v in vals:
                for form, anchored in surface_forms(v, kind(rel)):
                    words = tuple(_WORD.findall(form))
                    if not words or (len(form) < 2 and not form.isdigit()):
                        continue  # a one-letter value ("E") would match everywhere
                    cs = form[:1].isupper()
                    self.index.setdefault(words[0].lower(), []).append(
                        (words if cs else tuple(w.lower() for w in words), cs, anchored, rel, v))

    # --- finding -------------------------------------------------------------------------------------------
    def mentions(self, text: str, subject: str, drop_qualifiers: bool = True) -> list[Mention]:
        """The values named in a text, longest first, none of them the subject itself under any of its names
        ("UK" in a profile of the United Kingdom); without a place that only qualifies the one before it."""
        toks = list(_WORD.finditer(text))
        own = tuple(w.lower() for w in _WORD.findall(subject))
        self_name = normalize(subject)
        head = own[-1] if own and len(own[-1]) > 3 else None  # "China" of "People's Republic of China"
        skip = set()
        for i in range(len(toks)):  # the subject's own name, and the last word of a longer one
            if own and tuple(t.group().lower() for t in toks[i:i + len(own)]) == own:
                skip.update(range(i, i + len(own)))
            if toks[i].group()[:1].isupper() and toks[i].group().lower() == head:
                skip.add(i)
        out, i = [], 0
        while i < len(toks):
            best = None
            for words, cs, anchored, rel, v in self.index.get(toks[i].group().lower(), ()):
                got = tuple(t.group() if cs else t.group().lower() for t in toks[i:i + len(words)])
                if got == words and not skip & set(range(i, i + len(words))):
                    if best is None or len(words) > best[0]:
                        best = (len(words), {})
                    if len(words) == best[0] and (rel not in best[1] or best[1][rel][1]):
                        best[1][rel] = (v, anchored)
            if best is None:
                i += 1
                continue
            entries = {r: e for r, e in best[1].items() if normalize(e[0]) != self_name}
            if entries:
                out.append(Mention(toks[i].start(), toks[i + best[0] - 1].end(), entries))
            i += best[0]
        return _drop_qualifiers(text, out) if drop_qualifiers else out

    def cues(self, text: str, held: dict | None = None) -> list[tuple[int, int, str, bool, int]]:
        """(start, end, relation, anchored, rank) of every cue in a sentence but those that end a longer one
        ("language" in "official language", "colors" in "official colors"), and, given the subject's ``held``
        relations, a weak cue of a subject that holds none of the relations it cues."""
        weak = _weak_relations()
        found = [(m.start(), m.end(), rel, anch, rank) for pat, rel, anch, is_weak, rank in _cues()
                 if not (is_weak and held is not None and not weak[pat.pattern] & set(held))
                 for m in pat.finditer(text)]
        return [c for c in found if not any(d[0] < c[0] and c[1] == d[1] and not d[3] for d in found)]

    # --- statements -------------------------------------------------------------------------------------
    def about_other(self, subject: str, text: str) -> bool:
        """Whether a sentence is about another subject of the file, not ``subject``: it names neither the subject
        (no word of its name) nor a pronoun, and opens with another subject's name ("Mumbai is in India." in a
        profile of Ahmedabad, a demonstration's subject repeated) or with "The <field> of <another subject>"."""
        words = [w.lower() for w in _WORD.findall(text)]
        own = {w.lower() for w in _WORD.findall(subject) if len(w) > 2} or {w.lower() for w in _WORD.findall(subject)}
        if own & set(words) or _PRONOUNS & set(words):
            return False
        m = _OPENING.match(text)
        if not m:
            return False
        toks = _WORD.findall(m.group(1))
        return any(normalize(" ".join(toks[:n])) in self.names for n in range(1, len(toks) + 1))

    def statements(self, subject: str, text: str, held: dict | None = None) -> list[dict]:
        """[{relation, values}] of one sentence, in the order their relations first appear ([] for a sentence
        about another subject). ``held`` ({relation: gold values}, default: the subject's) breaks ties between
        relations: a judge's extraction passes the asked fields with no values (``{relation: ()}``), so that
        nothing of the subject's gold steers which claims it sees (``selfeval.wikifacts_claims``)."""
        if self.about_other(subject, text):
            return []
        held = self.k.subjects.get(subject, {}) if held is None else held
        framed = frame_statement(self, subject, text, held)
        if framed is not None:
            return [framed]
        cues = self.cues(text, held)
        by_rel: dict = {}
        for m in self.mentions(text, subject):
            cands = []
            for rel, (v, anchored_only) in m.entries.items():
                near = [(c[0] - m.end if c[0] >= m.end else max(0, m.start - c[1]), c[4])
                        for c in cues if c[2] == rel and (c[1] == m.start if c[3] or anchored_only else True)]
                if near:
                    dist, rank = min(near)
                    cands.append((dist, rel not in held, v not in held.get(rel, ()), rank, _ORDER[rel], rel, v))
            if cands:
                *_, rel, v = min(cands)
                vals = by_rel.setdefault(rel, [])
                if v not in vals:
                    vals.append(v)
        return [{"relation": r, "values": vs} for r, vs in by_rel.items()]

    def verdict(self, subject: str, relation: str, values: list[str]) -> str:
        gold = self.k.subjects.get(subject, {}).get(relation)
        if not gold:
            return "unverifiable"
        hits = [v in gold for v in values]
        if self.k.is_multi(relation):
            return "supported" if any(hits) else "unverifiable"
        if all(hits):
            return "supported"
        wrong = [v for v, h in zip(values, hits) if not h]
        return "unverifiable" if all(any(related(v, g) for g in gold) for v in wrong) else "contradicted"

    def sentences_of(self, subject: str, response: str) -> list[dict]:
        """One record per statement, and one per sentence that has none: {sentence, index, relation, field,
        values, verdict}."""
        out = []
        for i, s in enumerate(split_sentences(response)):
            sts = self.statements(subject, s)
            for st in sts:
                out.append({"sentence": s, "index": i, "relation": st["relation"],
                            "field": FIELDS[st["relation"]].label, "values": st["values"],
                            "verdict": self.verdict(subject, st["relation"], st["values"])})
            if not sts:
                out.append({"sentence": s, "index": i, "relation": None, "field": None, "values": [],
                            "verdict": "unverifiable"})
        return out

    def claims(self, subject: str, response: str) -> list[dict]:
        """Gold verdicts, one per (relation, value) stated: {subject, relation, value, verdict, sentence}. A value
        outside gold is contradicted on a single-valued relation the subject holds, else unverifiable."""
        out, seen = [], set()
        for rec in self.sentences_of(subject, response):
            for v in rec["values"]:
                key = (rec["relation"], v)
                if key not in seen:
                    seen.add(key)
                    out.append({"subject": subject, "relation": rec["relation"], "value": v,
                                "verdict": self.verdict(subject, rec["relation"], [v]), "sentence": rec["sentence"]})
        return out


_ORDER = {rel: i for i, rel in enumerate(FIELDS)}


@functools.lru_cache(maxsize=1)
def fingerprint() -> str:
    """A hash of everything that decides statements, verdicts and scores (the wikifacts data, lexicon, frames,
    verifier and metrics modules, line endings normalised)."""
    from selfalign.data import wikifacts, wikifacts_lexicon
    from selfalign.evals import wikifacts_frames, wikifacts_metrics

    h = hashlib.sha256()
    for mod in (wikifacts, wikifacts_lexicon, wikifacts_frames, sys.modules[__name__], wikifacts_metrics):
        h.update(Path(mod.__file__).read_bytes().replace(b"\r\n", b"\n"))
    return h.hexdigest()[:12]


def vocabulary(k: Knowledge) -> dict:
    """{relation: values a statement of it may name}: the file's gold values of the relation, the lexicon's extra
    values of its kind (``EXTRA_VALUES``), and for a relation of kind "place" every place and country known."""
    places = [v for rel, vals in k.vocab.items() if kind(rel) in ("country", "place") for v in vals]
    places += EXTRA_VALUES["country"]
    out = {}
    for rel in FIELDS:
        vals = list(k.vocab.get(rel, ())) + list(EXTRA_VALUES.get(kind(rel), ()))
        out[rel] = list(dict.fromkeys(vals + (places if kind(rel) == "place" else [])))
    return out


def _drop_qualifiers(text: str, ms: list[Mention]) -> list[Mention]:
    """Without a place that only qualifies the one before it ("Mumbai, India"), unless a list goes on."""
    def place(m):
        return any(kind(r) in ("country", "place") for r in m.entries)

    out = []
    for i, m in enumerate(ms):
        prev = ms[i - 1] if i else None
        if prev is not None and place(m) and place(prev) and text[prev.end:m.start].strip() == ",":
            before = ms[i - 2] if i > 1 else None
            after = ms[i + 1] if i + 1 < len(ms) else None
            in_list = (before is not None and _LIST_ON.match(text[before.end:prev.start])) or \
                      (after is not None and _LIST_ON.match(text[m.end:after.start]))
            if not in_list:
                continue
        out.append(m)
    return out


def claim_sk(claim: dict, prompt=None) -> dict:
    """A claim as the judge's SK-Tuning row: {question: the relation's qa_wikidata prompt for the subject,
    answer: the value} ("The capital of Nigeria is" / "Abuja"); with a ``SelfEvalPrompt``, also its ``prompt``."""
    t = next(t for t in TEMPLATES if t.relation == claim["relation"] and not t.suffix.endswith(MASK))
    out = {"question": t.render(claim["subject"]), "answer": claim["value"]}
    if prompt is not None:
        out["prompt"] = prompt.text(out["question"], out["answer"])
    return out
