"""The validity gates of ``eval wikifacts``, printed with every result; a result that fails one is marked invalid.

- **planted**: for every evaluation subject, its gold profile (its fields in template prose) must score above a
  copy with one single-valued value swapped for a same-relation distractor (a gold value of that relation for
  another subject), and a *listed* copy (the gold value beside two distractors in one sentence) must read as
  contradicted: 100% of the subjects, or the verifier is broken.
- **measurable** (the profile format): at most 50% of the evaluated responses' sentences with no statement, and
  coverage of the asked fields >= 0.3; defined for the base model, reported for every result.
- **extractor**: field statements from real model outputs, labelled by reading them
  (``benchmarks/longform/extractor_check.jsonl``; rows with ``label_statements`` filled). The verifier's
  statements of those sentences are compared with the labels as (sentence, relation, value) triples: extraction
  precision and recall must both be >= 0.9 (where the reader also wrote verdicts, their agreement with the
  verifier's is reported beside). Until the file holds labelled rows the gate reads "not run"."""
from __future__ import annotations

from pathlib import Path

from selfalign.data.splits import unit
from selfalign.data.wikifacts import Knowledge, gold_profile, kind, sentence
from selfalign.data.wikifacts_lexicon import canonical, related, relation_of_label
from selfalign.errors import InputError
from selfalign.evals.wikifacts_verify import VERDICTS
from selfalign.store.io import iter_numbered

MAX_UNMAPPED, MIN_COVERAGE, MIN_EXTRACTION = 0.5, 0.3, 0.9
EXTRACTOR_CHECK = Path("benchmarks") / "longform" / "extractor_check.jsonl"


def distractors(k: Knowledge, subject: str, relation: str, n: int) -> list[str]:
    """``n`` values of the relation's vocabulary that are no gold value of the subject (under any relation) and
    neither hold nor are held by one (Catholicism is no distractor for Christianity), fixed by hash."""
    gold = {v for vals in k.subjects[subject].values() for v in vals}
    cands = [v for v in k.vocab[relation] if v not in gold and v.lower() not in subject.lower()
             and not any(related(v, g) for g in gold)]
    cands.sort(key=lambda v: unit(0, "distractor", k.task, subject, relation, v))
    return cands[:n]


def planted_copies(k: Knowledge, subject: str) -> dict | None:
    """{relation, gold, swapped, listed} profiles of one subject (None when no single-valued field has two
    distractors)."""
    rels = k.fields(subject)
    r = next((r for r in k.single_fields(subject) if len(distractors(k, subject, r, 2)) == 2), None)
    if r is None:
        return None
    ds = distractors(k, subject, r, 2)

    def with_(values):
        return " ".join(sentence(x, subject, values) if x == r else gold_profile(k, subject, [x]) for x in rels)
    return {"relation": r, "gold": gold_profile(k, subject), "swapped": with_([ds[0]]),
            "listed": with_([k.subjects[subject][r][0], *ds])}


def planted_gate(k: Knowledge, verifier, subjects: list[str] | None = None) -> dict:
    """The planted gate over ``subjects`` (default: every evaluation subject)."""
    from selfalign.evals.wikifacts_metrics import score_response

    subjects = k.split["eval"] if subjects is None else subjects
    failures, n_ok = [], 0
    for s in subjects:
        cp = planted_copies(k, s)
        why = None
        if cp is None:
            why = "no single-valued field with two distractors"
        else:
            asked = k.fields(s)
            gold, swapped = (score_response(verifier, s, asked, cp[x]) for x in ("gold", "swapped"))
            listed = [x for x in verifier.sentences_of(s, cp["listed"]) if x["relation"] == cp["relation"]]
            if not (gold["precision"] is not None and (swapped["precision"] or 0) < gold["precision"]):
                why = f"swapped copy scores {swapped['precision']} against gold {gold['precision']}"
            elif not listed or any(x["verdict"] != "contradicted" for x in listed):
                why = f"listed copy reads {[x['verdict'] for x in listed] or 'no statement'}"
        if why:
            failures.append({"subject": s, "why": why, **(cp or {})})
        else:
            n_ok += 1
    n = len(subjects)
    return {"passed": bool(n) and n_ok == n, "value": n_ok / n if n else None, "n": n, "failures": failures[:5],
            "rule": "gold profile above a one-value swap, and gold + two distractors read as contradicted, for 100% "
                    "of the evaluation subjects"}


def measurable_gate(rows: list[dict], fmt: str) -> dict:
    from selfalign.evals.wikifacts_metrics import pooled

    p = pooled(rows)
    cov = [r["coverage"] for r in rows if r.get("coverage") is not None]
    coverage = sum(cov) / len(cov) if cov else None
    out = {"unmapped_share": p["unmapped_share"], "coverage": coverage, "applies": fmt == "profile",
           "rule": f"profile format: at most {MAX_UNMAPPED:.0%} of sentences unmapped and coverage >= {MIN_COVERAGE} "
                   "(defined for the base model)"}
    out["passed"] = (p["unmapped_share"] is not None and p["unmapped_share"] <= MAX_UNMAPPED
                     and coverage is not None and coverage >= MIN_COVERAGE) if fmt == "profile" else None
    return out


def default_check_file() -> Path | None:
    """The repository's labelled file, found from this package's own location (never the working directory), when
    the package runs from a checkout that has it; None for an installed package."""
    path = Path(__file__).resolve().parents[2] / EXTRACTOR_CHECK
    return path if path.is_file() else None


def check_file(path: str | Path | None) -> Path | None:
    """The extractor-check file of a run: the one named (a missing one is one line naming it), else the
    repository's (``default_check_file``)."""
    if path:
        if not Path(path).is_file():
            raise InputError(path, "no such extractor-check file (--extractor-check names a labelled JSONL such as "
                                   f"{EXTRACTOR_CHECK} of a selfalign checkout)")
        return Path(path)
    return default_check_file()


def read_labels(path: str | Path, k: Knowledge) -> list[dict]:
    """The labelled rows of an extractor-check file: {subject, sentence, labels: {(relation, value)}, verdicts:
    {(relation, values): verdict} where the reader gave one}."""
    out = []
    for line, r in iter_numbered(Path(path), ["subject", "sentence"]):
        lab = r.get("label_statements")
        if lab is None:
            continue
        if not isinstance(lab, list):
            raise InputError(path, "'label_statements' must be a list of {field, values} (or null: unlabelled)", line)
        got, verdicts = set(), {}
        for st in lab:
            rel = relation_of_label(st.get("field") or st.get("relation") or "") if isinstance(st, dict) else None
            vals = st.get("values") if isinstance(st, dict) else None
            if rel is None or not isinstance(vals, list) or not all(isinstance(v, str) for v in vals):
                raise InputError(path, f"label {st!r}: needs a known 'field' (or 'relation') and a list of 'values'",
                                 line)
            vals = [canonical(v, kind(rel)) for v in vals]
            got |= {(rel, v) for v in vals}
            if st.get("verdict") is not None:
                if st["verdict"] not in VERDICTS:
                    raise InputError(path, f"label verdict {st['verdict']!r}: one of {', '.join(VERDICTS)}", line)
                verdicts[(rel, tuple(vals))] = st["verdict"]
        out.append({"subject": r["subject"], "sentence": r["sentence"], "labels": got, "verdicts": verdicts,
                    "line": line})
    return out


def extractor_gate(k: Knowledge, verifier, path: str | Path | None) -> dict:
    """Extraction precision and recall of the verifier on the labelled statements (or "not run")."""
    rule = f"extraction precision and recall >= {MIN_EXTRACTION} on labelled statements of real outputs"
    rows = read_labels(path, k) if path and Path(path).is_file() else []
    if not rows:
        why = "no labelled rows in it" if path else (f"no labelled file: this package runs outside a checkout; pass "
                                                     f"--extractor-check {EXTRACTOR_CHECK.name}")
        return {"passed": None, "status": "not run", "why": why, "file": str(path) if path else None, "rule": rule}
    tp = n_pred = n_gold = 0
    agree = []
    for r in rows:
        sts = verifier.statements(r["subject"], r["sentence"])
        pred = {(st["relation"], v) for st in sts for v in st["values"]}
        tp += len(pred & r["labels"])
        n_pred += len(pred)
        n_gold += len(r["labels"])
        agree += [verifier.verdict(r["subject"], st["relation"], st["values"]) == r["verdicts"][key]
                  for st in sts if (key := (st["relation"], tuple(st["values"]))) in r["verdicts"]]
    prec = tp / n_pred if n_pred else None
    rec = tp / n_gold if n_gold else None
    return {"passed": prec is not None and rec is not None and prec >= MIN_EXTRACTION and rec >= MIN_EXTRACTION,
            "status": "run", "precision": prec, "recall": rec, "sentences": len(rows), "statements": n_gold,
            "verdict_agreement": sum(agree) / len(agree) if agree else None, "verdicts_labelled": len(agree),
            "file": str(path), "rule": rule}


def verdict_line(gates: dict) -> str:
    """One line for the terminal: each gate's state, and VALID / INVALID."""
    def state(g):
        return "not run" if g.get("passed") is None else ("pass" if g["passed"] else "FAIL")

    def num(x, fmt):
        return "-" if x is None else format(x, fmt)

    p, m, e = gates["planted"], gates["measurable"], gates["extractor"]
    parts = [f"planted {state(p)} ({num(p['value'], '.0%')} of {p['n']} subjects)",
             f"measurable {state(m)} (unmapped {num(m['unmapped_share'], '.0%')}, coverage "
             f"{num(m['coverage'], '.2f')})" if m["applies"] else "measurable n/a (free format)",
             f"extractor {state(e)}" + (f" (precision {num(e['precision'], '.2f')}, recall {num(e['recall'], '.2f')}"
                                        f", {e['sentences']} sentences)" if e.get("status") == "run" else "")]
    valid = not any(g.get("passed") is False for g in gates.values())
    return ("VALID" if valid else "INVALID") + ": " + "; ".join(parts)
