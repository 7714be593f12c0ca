"""The Wikidata long-form benchmark's data (``eval wikifacts``): subjects with their fields from BIG-bench
qa_wikidata, a subject-level split, and the profile prompts.

**Subjects and fields.** Every prompt of the file is parsed into (relation, subject) by ``relations.parse`` and its
gold targets are that subject's values of that relation: "The capital of Nigeria is" -> Nigeria {capital: Abuja}.
A subject-first template is a field of its own subject too: "Abuja is capital of" -> Abuja {country it is the
capital of: Nigeria}. It is *not* folded into Nigeria's capital: Wikidata's "capital of" also lists former
capitals (Japan: Ōsaka; Prussia: Königsberg, where the forward relation says Tokyo and Berlin), so the file's two
directions disagree on 2 of the 31 countries that have both. For the split it states a fact about both (below). A
*field* is a held relation that the lexicon (``wikifacts_lexicon.FIELDS``) can ask about and recognise; values are
canonical (a demonym the file uses as a country, "Afghan", is Afghanistan).

**Single or multi-valued.** A relation is multi-valued when at least ``MULTI_SHARE`` (10%) of its subjects have two
gold values or more (borders, colours, official languages, instruments, ...), or when it is many-valued by nature
(``wikifacts_lexicon.MULTI_VALUED``: genres, ranks over a career, and places that contain one another). On a
multi-valued relation a value outside gold is unverifiable (the data are incomplete); on a single-valued one it is
contradicted. A subject with two gold values of a single-valued relation (the 2019-20 Persian Gulf crisis: Iraq,
Iran) keeps both, and either is supported.

**Splits, by subject.** Evaluation subjects are the subjects with >= 2 single-valued fields that the subject split
of ``data.subjects`` holds out at ``EVAL_FRACTION`` (0.4) with seed 0, the first ``EVAL_SIZE`` in hash order (0.4,
not sk-data's 0.2: at 0.2 the shared file has only ~110 such subjects). Training subjects are the other subjects
with >= 2 single-valued fields none of whose prompts mentions an evaluation subject (as its subject or as a gold
answer, under any relation); in hash order the first ``VALID_SIZE`` (at most a fifth) are the validation slice (for
choosing settings) and the next ``TRAIN_SIZE`` the training split (DPO prompts): the two never overlap.
Demonstrations come from training subjects only. Other stages keep evaluation subjects out with ``mentions_eval``
(any question), or with the subject split itself: ``sk-data --split-by subject --heldout-fraction 0.4`` (split seed
0) holds out every qa_wikidata prompt that mentions one, since a larger fraction holds out a superset.

**Prompts.** *profile*: "Write a short factual profile of X covering: f1, f2, ..." (the subject's fields in an order
fixed by hash), after ``shots`` demonstrations (training subjects' fields in template prose); *free*: "Tell me about
X." after the same demonstrations. A completion ends at a blank line."""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

from selfalign.data.relations import example_line, parse
from selfalign.data.splits import unit
from selfalign.data.subjects import is_held
from selfalign.data.wikifacts_lexicon import FIELDS, MULTI_VALUED
from selfalign.data.wikifacts_values import canonical
from selfalign.errors import InputError, SelfAlignError
from selfalign.text import normalize

SPLIT_SEED = 0
EVAL_FRACTION = 0.4   # sk-data --split-by subject --heldout-fraction 0.4 keeps every evaluation subject out
EVAL_SIZE, TRAIN_SIZE, VALID_SIZE = 250, 300, 60
MULTI_SHARE = 0.1
SHOTS = 2
MAX_FIELDS = 6
MIN_VOCAB = 3
DEMO_POOL = 32
SPLITS = ("eval", "valid", "train")
FORMATS = ("profile", "free")
DEFAULT_DATA = "bigbench:qa_wikidata"


@dataclass
class Knowledge:
    """The subjects of one qa_wikidata file: {subject: {relation: [gold values]}} and what follows from them."""
    task: str
    path: str
    subjects: dict                                  # subject -> relation -> canonical gold values (ordered)
    vocab: dict = field(default_factory=dict)       # relation -> every canonical gold value of the file
    multi: frozenset = frozenset()
    split: dict = field(default_factory=dict)       # "eval" / "valid" / "train" -> subjects, in hash order
    eval_names: frozenset = frozenset()             # the evaluation subjects, normalised

    def fields(self, subject: str) -> list[str]:
        """The relations a profile of ``subject`` asks about, in the prompt's order (fixed by hash)."""
        rels = [r for r in self.subjects[subject] if r in FIELDS]
        rels.sort(key=lambda r: unit(SPLIT_SEED, "field", self.task, subject, r))
        return rels[:MAX_FIELDS]

    def single_fields(self, subject: str) -> list[str]:
        """Its single-valued fields that a wrong value can contradict: the relation's vocabulary holds a value
        besides the gold one and two distractors (the file's only currency, "euro", can never be contradicted)."""
        return [r for r in self.fields(subject) if r not in self.multi and len(self.vocab[r]) >= MIN_VOCAB]

    def is_multi(self, relation: str) -> bool:
        return relation in self.multi

    def split_of(self, subject: str) -> str | None:
        return next((s for s, names in self.split.items() if subject in names), None)


def kind(relation: str) -> str:
    return FIELDS[relation].kind if relation in FIELDS else "other"


def data_path(source: str) -> Path:
    from selfalign.data.mc import bigbench_path

    return bigbench_path(source.split(":", 1)[1]) if source.startswith("bigbench:") else Path(source)


def load_knowledge(source: str = DEFAULT_DATA) -> Knowledge:
    """The subjects of a qa_wikidata file (``bigbench:TASK`` or a task.json path), split; read once per process.
    A file that is not qa_wikidata's shape (a multiple-choice example, a prompt of no known template) is one
    ``InputError`` naming the file and the line."""
    from selfalign.data import data_root

    return _load(source, str(data_root()))


@functools.lru_cache(maxsize=4)
def _load(source: str, _root: str) -> Knowledge:
    from selfalign.data.mc import load_bigbench_source

    path = data_path(source)
    rows = load_bigbench_source(source)
    subjects: dict = {}
    for i, r in enumerate(rows):
        if not r.get("targets"):
            raise InputError(path, f"example {i} is multiple choice ('target_scores'); wikifacts needs qa_wikidata's "
                                   "shape: a statement to complete and its gold 'target'", example_line(path, i))
        got = parse(r["question"])
        if got is None:
            raise InputError(path, f"example {i}: {r['question']!r} matches no known qa_wikidata template, so it has "
                                   "no relation and no subject (selfalign/data/relations.py)", example_line(path, i))
        vals = subjects.setdefault(got.subject, {}).setdefault(got.relation, [])
        vals += [v for v in (canonical(t, kind(got.relation)) for t in r["targets"]) if v not in vals]
    task = rows[0]["task"]
    k = Knowledge(task=task, path=str(path), subjects=subjects)
    for fs in subjects.values():
        for rel, vals in fs.items():
            voc = k.vocab.setdefault(rel, [])
            voc += [v for v in vals if v not in voc]
    k.multi = multi_valued(subjects)
    _split(k)
    return k


def multi_valued(subjects: dict) -> frozenset:
    """Relations where >= ``MULTI_SHARE`` of the subjects (and at least two) hold several gold values, and the
    relations many-valued by nature (``wikifacts_lexicon.MULTI_VALUED``)."""
    n, m = {}, {}
    for fs in subjects.values():
        for rel, vals in fs.items():
            n[rel] = n.get(rel, 0) + 1
            m[rel] = m.get(rel, 0) + (len(vals) > 1)
    return frozenset({r for r in n if m[r] >= 2 and m[r] >= MULTI_SHARE * n[r]} | MULTI_VALUED)


def _mentioned(subject: str, fs: dict) -> set:
    """The normalised subjects the prompts about ``subject`` state a fact about: itself and its gold answers."""
    return {normalize(subject)} | {normalize(v) for vals in fs.values() for v in vals}


def _split(k: Knowledge) -> None:
    able = [s for s in k.subjects if len(k.single_fields(s)) >= 2]
    order = sorted(able, key=lambda s: unit(SPLIT_SEED, "wikifacts", k.task, s))
    held = [s for s in order if is_held(SPLIT_SEED, k.task, normalize(s), EVAL_FRACTION)][:EVAL_SIZE]
    k.eval_names = frozenset(normalize(s) for s in held)
    clean = [s for s in order if not _mentioned(s, k.subjects[s]) & k.eval_names]
    n_valid = min(VALID_SIZE, len(clean) // 5)  # a small file keeps most of its training subjects for training
    k.split = {"eval": held, "valid": clean[:n_valid], "train": clean[n_valid:n_valid + TRAIN_SIZE]}


def eval_subjects(k: Knowledge) -> frozenset:
    """The normalised evaluation subjects."""
    return k.eval_names


def mentions_eval(q: dict, k: Knowledge) -> bool:
    """Whether a generative qa_wikidata question ({question, targets}) states a fact about an evaluation subject,
    as its subject or as a gold answer, under any relation: such a question must stay out of SK data, DPO prompts
    and demonstrations (``sk-data --split-by subject`` with split seed 0 and a held-out fraction >= 0.4 keeps it
    out already)."""
    got = parse(q["question"])
    names = eval_subjects(k)
    return (got is not None and normalize(got.subject) in names) or any(normalize(t) in names
                                                                        for t in q.get("targets") or [])


# --- prose and prompts -------------------------------------------------------------------------------------
def join(values: list[str]) -> str:
    return values[0] if len(values) == 1 else ", ".join(values[:-1]) + " and " + values[-1]


def sentence(relation: str, subject: str, values: list[str]) -> str:
    """One field in template prose: "The official language of Burkina Faso is French." """
    text = FIELDS[relation].prose.format(s=subject, v=join(values))
    return text[0].upper() + text[1:]


def gold_profile(k: Knowledge, subject: str, relations: list[str] | None = None) -> str:
    """The subject's fields stated in template prose (one value of a single-valued field, up to two of a
    multi-valued one): a demonstration, and the planted gate's gold profile."""
    rels = k.fields(subject) if relations is None else relations
    return " ".join(sentence(r, subject, k.subjects[subject][r][:2 if r in k.multi else 1]) for r in rels)


def instruction(k: Knowledge, subject: str, fmt: str) -> str:
    if fmt == "free":
        return f"Tell me about {subject}."
    return f"Write a short factual profile of {subject} covering: " + \
        ", ".join(FIELDS[r].label for r in k.fields(subject)) + "."


def demos(k: Knowledge, subject: str, shots: int) -> list[str]:
    """``shots`` training subjects (never ``subject``), fixed by hash of the subject."""
    pool = sorted(k.split["train"], key=lambda s: unit(SPLIT_SEED, "demo-pool", k.task, s))[:DEMO_POOL]
    pool = [s for s in pool if s != subject]
    pool.sort(key=lambda s: unit(SPLIT_SEED, "demo", k.task, subject, s))
    return pool[:shots]


def prompt_text(k: Knowledge, subject: str, fmt: str, shots: int = SHOTS) -> tuple[str, list[str]]:
    """(the completion prompt, its demonstration subjects)."""
    if fmt not in FORMATS:
        raise SelfAlignError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    ds = demos(k, subject, shots)
    parts = [f"{instruction(k, d, fmt)}\n{gold_profile(k, d)}" for d in ds]
    return "\n\n".join(parts + [instruction(k, subject, fmt)]) + "\n", ds


def prompt_id(subject: str) -> str:
    return f"wf:{subject}"


def prompt_rows(source: str = DEFAULT_DATA, split: str = "eval", fmt: str = "profile", shots: int = SHOTS,
                limit: int | None = None) -> list[dict]:
    """JSONL-able prompt rows {id, subject, question, prompt, fields, split, format, demo_subjects, source} of one
    split, in hash order (``--limit N`` takes a spread): ``selfalign sample --input wikifacts:FORMAT --split
    SPLIT`` samples them, and ``eval wikifacts`` answers them."""
    if split not in SPLITS:
        raise SelfAlignError(f"wikifacts: --split must be one of {', '.join(SPLITS)}, not {split!r}")
    k = load_knowledge(source)
    rows = []
    for s in k.split[split][:limit or None]:
        text, ds = prompt_text(k, s, fmt, shots)
        rows.append({"id": prompt_id(s), "subject": s, "question": instruction(k, s, fmt), "prompt": text,
                     "fields": [FIELDS[r].label for r in k.fields(s)], "split": split, "format": fmt,
                     "demo_subjects": ds, "source": source})
    if not rows:
        raise SelfAlignError(f"{k.path}: no {split} subjects (a subject needs >= 2 single-valued fields)")
    return rows


def load_named(source: str, split: str | None, limit: int | None = None) -> list[dict]:
    """``wikifacts`` or ``wikifacts:FORMAT`` as a prompt source of ``selfalign sample`` (default split: train)."""
    fmt = source.split(":", 1)[1] if ":" in source else "profile"
    return prompt_rows(DEFAULT_DATA, split or "train", fmt, limit=limit)
