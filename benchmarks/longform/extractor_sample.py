"""Sentences of real model outputs for the wikifacts extractor check, to be labelled by reading them.

    python benchmarks/longform/extractor_sample.py base=runs/wf/base.rows.jsonl aligned=runs/wf/dpo.rows.jsonl \
        --n 300 --output benchmarks/longform/extractor_check.jsonl

Each ``NAME=ROWS`` is the rows file of an ``eval wikifacts`` run (or any JSONL of {id, subject, response}: ``selfalign
sample --input wikifacts`` output too, its ``sample_idx`` in the row id). The
sentences of every response are pooled per model and drawn by hash (the same files give the same sample): an equal
share per model, and in each model about ``--unmapped-share`` of sentences in which the verifier found no statement
(so that recall can be measured), the rest sentences where it found some. Each output row holds what the verifier
extracted now, and empty labels::

    {"id", "model", "subject", "sentence", "extracted": [{field, values, verdict}],
     "label_statements": null, "label_note": ""}

To label a row, write in ``label_statements`` the field statements the sentence really makes about its subject,
``[{"field": "capital", "values": ["Abuja"]}]`` (field names as in the profile prompts, values as the file names
them: "France" for "a French citizen"), or ``[]`` when it makes none; a statement may also carry the reader's
``"verdict"`` (supported / contradicted / unverifiable, from the subject's triples). ``eval wikifacts`` then reads
the labelled rows (``evals.wikifacts_gates.extractor_gate``) and reports extraction precision and recall (and the
verdict agreement where verdicts are given). An existing output keeps its
labels: rows already there (same model, subject and sentence) are kept as they are, new ones are appended."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from selfalign.data.splits import unit
from selfalign.data.wikifacts import DEFAULT_DATA, load_knowledge
from selfalign.data.wikifacts_lexicon import label_of
from selfalign.errors import SelfAlignError
from selfalign.evals.wikifacts_verify import Verifier, split_sentences
from selfalign.store.io import iter_numbered, read_jsonl, write_jsonl_atomic


def pool(name: str, path: str, verifier: Verifier) -> list[dict]:
    """Every sentence of every response in a rows file, with the verifier's statements."""
    out, seen = [], set()
    for _, r in iter_numbered(Path(path), ["id", "response"], ["subject"]):
        subject = r.get("subject") or str(r["id"]).removeprefix("wf:")
        rid = f"{r['id']}#{r['sample_idx']}" if "sample_idx" in r else str(r["id"])  # sample output: n per id
        for i, s in enumerate(split_sentences(r["response"])):
            if (subject, s) in seen:  # a sentence repeated in a response is one sentence
                continue
            seen.add((subject, s))
            sts = verifier.statements(subject, s)
            out.append({"id": f"{name}:{rid}:{i}", "model": name, "subject": subject, "sentence": s,
                        "extracted": [{"field": label_of(st["relation"]), "values": st["values"],
                                       "verdict": verifier.verdict(subject, st["relation"], st["values"])}
                                      for st in sts],
                        "label_statements": None, "label_note": ""})
    return out


def sample(sources: list[tuple[str, str]], n: int, unmapped_share: float, data: str = DEFAULT_DATA) -> list[dict]:
    verifier = Verifier(load_knowledge(data))
    per_model = max(1, n // len(sources))
    out = []
    for name, path in sources:
        rows = sorted(pool(name, path, verifier), key=lambda r: unit("extractor-check", r["id"]))
        empty = [r for r in rows if not r["extracted"]]
        full = [r for r in rows if r["extracted"]]
        k_empty = min(len(empty), round(per_model * unmapped_share))
        out += full[:per_model - k_empty] + empty[:k_empty]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sources", nargs="+", metavar="NAME=ROWS", help="a model name and its wikifacts rows file")
    ap.add_argument("--n", type=int, default=300, help="sentences in all (default 300)")
    ap.add_argument("--unmapped-share", type=float, default=0.3, help="share of sentences with no statement")
    ap.add_argument("--data", default=DEFAULT_DATA, help="the qa_wikidata file the rows were scored against")
    ap.add_argument("--output", required=True, help="the JSONL to write (labels already in it are kept)")
    args = ap.parse_args(argv)
    if any("=" not in s for s in args.sources) or args.n < 1 or not 0 <= args.unmapped_share <= 1:
        ap.error("sources are NAME=ROWS; --n >= 1; --unmapped-share in [0, 1]")
    try:
        rows = sample([tuple(s.split("=", 1)) for s in args.sources], args.n, args.unmapped_share, args.data)
        out = Path(args.output)
        old = read_jsonl(out) if out.exists() and out.stat().st_size else []
        have = {(r.get("model"), r.get("subject"), r.get("sentence")) for r in old}
        new = [r for r in rows if (r["model"], r["subject"], r["sentence"]) not in have]
        write_jsonl_atomic(out, old + new)
    except SelfAlignError as e:
        print(f"extractor_sample: error: {e}", file=sys.stderr)
        return 2
    print(f"{out}: {len(old)} rows kept, {len(new)} added "
          f"({sum(not r['extracted'] for r in new)} without a statement); label them in 'label_statements'")
    return 0


if __name__ == "__main__":
    sys.exit(main())
