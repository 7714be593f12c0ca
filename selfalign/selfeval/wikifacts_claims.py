"""``score --method wikifacts-claims``: claim-level Self-Eval of Wikidata profiles (samples of ``sample --input
wikifacts``), each claim asked in the judge's own SK format.

**Decomposition.** A profile is cut into (relation, value) claims by the benchmark's deterministic extractor
(``evals.wikifacts_verify``: a sentence holds a cue of a relation and a value of that relation's vocabulary). The
extraction reads the relation vocabularies of the whole file and the fields the prompt asks for, never the subject's
gold values nor a verdict: where one phrase cues several relations, the tie goes to an asked field
(``Verifier.statements`` with ``held`` = the asked fields without values), not to the relation where the value is
gold. A (relation, value) stated twice is one claim.

**Scoring.** Each claim is rendered as an SK-Tuning row (``claim_sk``: the relation's qa_wikidata prompt and the
value, "The capital of Nigeria is" / "Abuja"), the very format ``sk-data --mode options`` trains on, and scored by
the judge's P(True) under the Self-Eval prompt flags. The response's ``score`` is the mean claim P(True). Rows keep
every claim ({relation, field, value, question, sentence, p_true, p_true_mass}), so that a claim-level AUROC
against the gold verdicts (``Verifier.verdict``) can be computed afterwards.

**A response with no claim** (nothing checkable stated, an empty answer, an abstention) scores None: ``pairs``
drops it (counted as ``unscored_samples``), so it neither wins nor loses a pair. Saying nothing cannot win; and a
fixed low score was not chosen because it would add a preference (state something checkable) that no P(True)
expressed and that the random and length controls, which score every response, do not have.

The rows must be wikifacts samples: a ``subject`` of the knowledge file that their ``source`` names (``bigbench:
qa_wikidata`` or a task.json of its shape); anything else is one error naming the samples file and line.
"""
from __future__ import annotations

import functools

METHOD = "wikifacts-claims"


@functools.lru_cache(maxsize=4)
def _resources(source: str, _root: str):
    from selfalign.data.wikifacts import load_knowledge
    from selfalign.evals.wikifacts_verify import Verifier

    k = load_knowledge(source)
    return k, Verifier(k)


def resources(row: dict):
    """(Knowledge, Verifier) of the file a wikifacts sample row was drawn from (read once per process)."""
    from selfalign.data import data_root
    from selfalign.data.wikifacts import DEFAULT_DATA

    return _resources(str(row.get("source") or DEFAULT_DATA), str(data_root()))


def asked(row: dict, k) -> list[str]:
    """The relations the row's prompt asks for (its ``fields`` labels; else the subject's profile fields, which
    are the same list)."""
    from selfalign.data.wikifacts_lexicon import relation_of_label

    labels = row.get("fields")
    if isinstance(labels, list) and labels:
        return [r for r in map(relation_of_label, labels) if r is not None]
    return k.fields(row["subject"])


def extract(verifier, subject: str, response: str, relations: list[str]) -> list[dict]:
    """The (relation, value) claims of a response, in order, each once: {subject, relation, field, value,
    sentence}. Reads no gold value of the subject (ties between relations go to ``relations``, the asked fields)."""
    from selfalign.data.wikifacts_lexicon import FIELDS
    from selfalign.evals.wikifacts_verify import split_sentences

    held = {r: () for r in relations}
    out, seen = [], set()
    for s in split_sentences(response):
        for st in verifier.statements(subject, s, held=held):
            for v in st["values"]:
                if (st["relation"], v) not in seen:
                    seen.add((st["relation"], v))
                    out.append({"subject": subject, "relation": st["relation"], "field": FIELDS[st["relation"]].label,
                                "value": v, "sentence": s})
    return out


def check_rows(rows: list[dict], path, cfg) -> None:
    """Every row a wikifacts sample: a ``subject`` the knowledge file of its ``source`` holds."""
    from selfalign.errors import InputError
    from selfalign.store.io import line_numbers

    for r, n in zip(rows, line_numbers(path)):
        subject = r.get("subject")
        if not isinstance(subject, str) or not subject:
            raise InputError(path, f"--method {cfg.method} needs wikifacts samples (a 'subject' on every row: "
                                   "sample --input wikifacts)", n)
        k, _ = resources(r)
        if subject not in k.subjects:
            raise InputError(path, f"subject {subject!r} is not in {k.path}", n)


def score_rows(engine, rows: list[dict], cfg) -> list[dict]:
    from selfalign.evals.wikifacts_verify import claim_sk
    from selfalign.selfeval import ptrue
    from selfalign.selfeval.claimscore import aggregate
    from selfalign.selfeval.prompt import SelfEvalPrompt

    prompt = SelfEvalPrompt.of(cfg)
    claims = []
    for r in rows:
        k, v = resources(r)
        claims.append(extract(v, r["subject"], r["response"], asked(r, k)))
    flat = [(c, claim_sk(c)) for cs in claims for c in cs]
    res = ptrue.p_true(engine, [(sk["question"], sk["answer"]) for _, sk in flat], prompt)
    for (c, sk), x in zip(flat, res):
        c.update(question=sk["question"], p_true=x.p_true, p_true_mass=x.mass)
    out = []
    for r, cs in zip(rows, claims):
        cs = [{k: c[k] for k in ("relation", "field", "value", "question", "sentence", "p_true", "p_true_mass")}
              for c in cs]
        out.append({**r, "claims": cs, "n_claims": len(cs), "score": aggregate([c["p_true"] for c in cs]),
                    "score_method": METHOD, "selfeval_template": prompt.template_id})
    return out
