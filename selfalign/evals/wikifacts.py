"""``selfalign eval wikifacts``: targeted long-form precision on Wikidata attributes, offline.

A model writes a profile of each subject of a split (``data.wikifacts``: "Write a short factual profile of X
covering: ...", or ``--format free``: "Tell me about X."), greedily, after template-prose demonstrations of training
subjects; or ``--responses FILE`` scores answers written elsewhere (rows {id, response}; ids are the prompt rows'
``wf:<subject>``). Every response is checked against the subject's qa_wikidata triples by the deterministic verifier
(``wikifacts_verify``) and scored per subject (``wikifacts_metrics``): precision with and without FActScore's length
penalty, supported and contradicted statements per response, coverage of the asked fields, unverifiable sentences,
abstention. Intervals: bootstrap over subjects; ``--compare RESULT`` adds paired-bootstrap differences against
another wikifacts result over the subjects both have. The validity gates (``wikifacts_gates``) are printed with
every result, and a result that fails one is marked invalid. This is not FActScore: its facts are the fields a
Wikidata file holds, not the atomic facts of a biography checked against Wikipedia.

Rows go beside ``--output`` (``<name>.rows.jsonl``), one per subject; generation resumes after an interruption, and
every run re-scores the stored responses with the current verifier. ``--rescore RESULT`` re-verifies a saved result
without a model and writes it as a new one: a result JSON with its rows beside it, or a kept record (``.json.gz``,
{summary, rows}); its data, format, split, shots and gamma are the saved result's. The summary records the
extractor's ``fingerprint``: ``--compare`` refuses a result scored by another extractor (re-score it first)."""
from __future__ import annotations

import dataclasses
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from selfalign.config import ModelArgs, ParallelArgs, opt, require
from selfalign.data.wikifacts import DEFAULT_DATA, FORMATS, SHOTS, SPLITS, load_knowledge, prompt_rows
from selfalign.errors import InputError, SelfAlignError
from selfalign.evals.results import result_guard, rows_path, save_result
from selfalign.evals.wikifacts_metrics import GAMMA, METRICS, pooled, score_response
from selfalign.store.io import iter_jsonl, iter_numbered, read_json_gz, write_jsonl_atomic
from selfalign.store.provenance import meta

TASK = "wikifacts"
LABEL = "targeted long-form precision on Wikidata attributes"
STOP = ["\n\n", "\nWrite a short factual profile", "\nTell me about"]


@dataclass
class WikiFactsConfig(ParallelArgs, ModelArgs):
    output: Optional[str] = opt(None, "summary JSON; per-subject rows go beside it (<name>.rows.jsonl, resumable)")
    data: str = opt(DEFAULT_DATA, "the Wikidata facts: bigbench:qa_wikidata or a task.json of its shape",
                    pattern=r"bigbench:.+|.+\.json")
    format: str = opt("profile", "profile (\"Write a short factual profile of X covering: ...\") or free (\"Tell me "
                                 "about X.\")", choices=FORMATS)
    split: str = opt("eval", "subjects: eval (held out), valid (for choosing settings) or train (DPO prompts)",
                     choices=SPLITS)
    limit: Optional[int] = opt(None, "use only the first N subjects of the split (a spread fixed by hash)", min=1)
    responses: Optional[str] = opt(None, "score existing answers instead of generating: JSONL rows {id, response} "
                                         "with the prompt rows' ids (wf:<subject>), one per subject")
    shots: int = opt(SHOTS, "demonstrations (training subjects' fields in template prose) before the prompt",
                     min=0, max=3)
    max_new_tokens: int = opt(160, "tokens per answer at most (an answer also ends at a blank line)", min=1)
    gamma: int = opt(GAMMA, "FActScore's length penalty on precision_gamma: exp(1 - gamma/n) when n <= gamma "
                            "checkable statements (0 = none)", min=0, summary_only=True)
    compare: Optional[str] = opt(None, "another wikifacts result JSON: paired-bootstrap differences (this one minus "
                                       "it) over the subjects both have", summary_only=True)
    rescore: Optional[str] = opt(None, "re-verify a saved wikifacts result without a model: its JSON (rows beside "
                                       "it) or a kept record (.json.gz); data, format, split, shots and gamma are "
                                       "the saved result's")
    extractor_check: Optional[str] = opt(None, "labelled extractor-check JSONL (default: benchmarks/longform/"
                                               "extractor_check.jsonl of the checkout this package runs from, "
                                               "whatever the working directory)", summary_only=True)
    n_boot: int = opt(1000, "bootstrap resamples (of subjects) for the 95 percent intervals; 0 = none", min=0,
                      summary_only=True)
    seed: int = opt(0, "bootstrap seed", min=0, summary_only=True)
    overwrite: bool = opt(False, "start afresh (the rows file and the result are moved aside) instead of resuming")


def read_responses(path: str, items: list[dict], split: str) -> dict:
    """{id: response} of a responses file; an id that is no prompt of the split, a repeated id or an empty
    profile is one line naming the file and line."""
    ids, out, seen = {it["id"] for it in items}, {}, {}
    for line, r in iter_numbered(Path(path), ["id", "response"]):
        key = str(r["id"])
        if key in seen:
            raise InputError(path, f"duplicate id {key!r} (first on line {seen[key]}): one response per subject "
                                   "(keep one sample of each)", line)
        seen[key] = line
        if key not in ids:
            raise InputError(path, f"id {key!r} is not a prompt of the {split} split (ids are 'wf:<subject>'; see "
                                   "data.wikifacts.prompt_rows)", line)
        if not r["response"].strip():
            raise InputError(path, f"id {key!r}: an empty profile (write an abstention as text: \"I don't know.\")",
                             line)
        out[key] = r["response"]
    if not out:
        raise InputError(path, "no rows (the file is empty)")
    return out


def _generate(cfg: WikiFactsConfig, items: list[dict], engine, g) -> tuple[list[dict], dict]:
    """Answer every prompt greedily (resuming finished rows); (rows in item order, engine info)."""
    from selfalign.engines import GenerationConfig, make_engine
    from selfalign.store.lineage import TrackedOutput, settings_of, stamp
    from selfalign.store.progress import run_chunks

    rp = rows_path(cfg.output)
    ignore = ("seed", "gamma", "compare", "extractor_check", "responses", "rescore")
    with TrackedOutput(rp, lambda r: str(r["id"]), settings_of(cfg, ignore=ignore), guard=g) as out:
        todo = out.todo(items, lambda it: [it["id"]])
        info = (out.recorded or {}).get("model_info")
        if todo:  # a finished run is re-scored without loading the model
            engine = engine or make_engine(cfg.engine, **cfg.engine_kwargs())
            gen = GenerationConfig(n=1, temperature=0.0, top_p=1.0, top_k=0, max_new_tokens=cfg.max_new_tokens,
                                   stop=list(STOP))
            info = engine.info
            out.record(meta(cfg, stage=f"eval {TASK}", model_info=info, generation=gen.params()))

            def answer(batch: list[dict]) -> list[dict]:
                gens = engine.generate([it["prompt"] for it in batch], gen, seed=0)
                return [stamp({"id": it["id"], "subject": it["subject"], "question": it["question"],
                               "format": it["format"], "response": g[0].text.strip(), "n_tokens": g[0].n_tokens}, it)
                        for it, g in zip(batch, gens)]

            run_chunks(out, todo, cfg.batch_size, answer, f"eval {TASK}", "subject")
    stored = {str(r["id"]): r for r in iter_jsonl(rp)}
    return [stored[it["id"]] for it in items], info


def run_wikifacts(cfg: WikiFactsConfig, engine=None) -> dict:
    """Generate (or read) one answer per subject, verify and score them, check the gates, write rows + summary."""
    require(cfg, "output")
    saved = [cfg.rescore, rows_path(cfg.rescore)] if cfg.rescore else []
    with result_guard(cfg, inputs=[cfg.responses, cfg.compare, cfg.data, cfg.extractor_check, *saved]) as g:
        return _wikifacts(cfg, engine, g)


def _wikifacts(cfg: WikiFactsConfig, engine, g) -> dict:
    from selfalign.evals.wikifacts_gates import check_file, extractor_gate, measurable_gate, planted_gate, \
        verdict_line
    from selfalign.evals.wikifacts_verify import Verifier, fingerprint

    t0 = time.time()
    if cfg.rescore:
        if cfg.responses:
            raise SelfAlignError("--rescore re-verifies a saved result's answers; --responses scores other answers: "
                                 "give one")
        old, old_rows = read_saved(cfg.rescore)
        cfg = dataclasses.replace(cfg, **{f: old[f] for f in ("data", "format", "split", "shots", "gamma")})
    baseline = _baseline(cfg) if cfg.compare else None  # a wrong --compare fails before any work
    check = check_file(cfg.extractor_check)  # and a missing --extractor-check
    k = load_knowledge(cfg.data)
    verifier = Verifier(k)
    if cfg.rescore:
        _keep_generated(cfg)
        rows = _saved_rows(cfg.rescore, old_rows, k)
        missing, model_info = old.get("missing_responses") or 0, (old.get("meta") or {}).get("model_info")
    elif cfg.responses:
        items = prompt_rows(cfg.data, cfg.split, cfg.format, cfg.shots, cfg.limit)
        _keep_generated(cfg)
        answers = read_responses(cfg.responses, items, cfg.split)
        missing = sum(it["id"] not in answers for it in items)
        rows = [{"id": it["id"], "subject": it["subject"], "question": it["question"], "format": it["format"],
                 "response": answers[it["id"]]} for it in items if it["id"] in answers]
        model_info = None
    else:
        items = prompt_rows(cfg.data, cfg.split, cfg.format, cfg.shots, cfg.limit)
        rows, model_info = _generate(cfg, items, engine, g)
        missing = 0
    for r in rows:  # scored by the current verifier on every run
        r.update(score_response(verifier, r["subject"], k.fields(r["subject"]), r["response"], cfg.gamma))
    write_jsonl_atomic(rows_path(cfg.output), rows)
    gates = {"planted": planted_gate(k, verifier), "measurable": measurable_gate(rows, cfg.format),
             "extractor": extractor_gate(k, verifier, check)}
    valid = not any(g.get("passed") is False for g in gates.values())
    line = verdict_line(gates)
    print(f"eval {TASK}: {line}", file=sys.stderr)
    info = meta(cfg, stage=f"eval {TASK}", model_info=model_info, responses=cfg.responses,
                **({"rescored_from": cfg.rescore, "generated": old.get("meta")} if cfg.rescore else {}))
    summary = save_result(cfg.output, TASK, rows, METRICS, info, n_boot=cfg.n_boot, seed=cfg.seed, guard=g,
                          label=LABEL, data=cfg.data, knowledge=k.path, split=cfg.split, format=cfg.format,
                          shots=cfg.shots, gamma=cfg.gamma, n_subjects=len(rows), missing_responses=missing,
                          pooled=pooled(rows), gates=gates, valid=valid, validity=line, verifier=fingerprint(),
                          comparison=_compare(cfg, rows, *baseline) if baseline else None)
    return {"output": cfg.output, "label": LABEL, "subjects": len(rows), "valid": valid, "gates": line,
            **{m: summary["metrics"][m]["value"] for m in METRICS}, "seconds": round(time.time() - t0, 2),
            **({"compare": {m: d["diff"] for m, d in summary["comparison"]["metrics"].items()}}
               if cfg.compare else {})}


def read_saved(path: str) -> tuple[dict, list[dict]]:
    """(summary, rows) of a saved wikifacts result: a result JSON (rows beside it) or a kept record (``.json.gz``,
    {summary, rows}); anything else is one line naming the file."""
    from selfalign.evals.results import load_result

    if str(path).endswith(".gz"):
        if not Path(path).exists():
            raise InputError(path, "no such file")
        d = read_json_gz(path, "kept record")  # bounded; not gzip, not JSON: one line naming the file
        if not (isinstance(d, dict) and isinstance(d.get("summary"), dict) and isinstance(d.get("rows"), list)):
            raise InputError(path, "a kept record is {\"summary\": {...}, \"rows\": [...]}")
        summary, rows = d["summary"], d["rows"]
    else:
        summary, rows = load_result(path)
    if summary.get("task") != TASK or any(summary.get(f) is None for f in ("data", "format", "split", "shots")):
        raise InputError(path, f"not a wikifacts result (task {summary.get('task')!r}; --rescore needs its data, "
                               "format, split and shots)")
    summary.setdefault("gamma", GAMMA)
    from selfalign.store.paths import expand

    summary["data"] = summary["data"] if summary["data"].startswith("bigbench:") else expand(summary["data"])
    return summary, rows


def _saved_rows(path: str, rows: list[dict], k) -> list[dict]:
    """The saved rows as answers to re-verify: their own fields (id, subject, question, response, ...) without the
    old scores; a row without a response or of an unknown subject is one line naming the file and row."""
    keep, out = ("id", "subject", "question", "format", "response", "n_tokens", "input_hash"), []
    for i, r in enumerate(rows, 1):
        if not isinstance(r, dict) or not isinstance(r.get("response"), str) or r.get("subject") not in k.subjects:
            raise InputError(path, f"row {i}: needs a 'response' and a 'subject' of {k.path} (got subject "
                                   f"{(r or {}).get('subject')!r})")
        out.append({f: r[f] for f in keep if f in r})
    if not out:
        raise InputError(path, "no rows to re-score")
    return out


def _keep_generated(cfg: WikiFactsConfig) -> None:
    """Scoring --responses (or --rescore) rewrites the rows beside --output: never over a model's generations
    (--overwrite has moved them aside already)."""
    from selfalign.store.provenance import meta_path

    rp = rows_path(cfg.output)
    if meta_path(rp).exists():
        raise SelfAlignError(f"{rp} holds a model's generations; score --responses into another --output (or "
                             "--overwrite: they are moved aside)")


def _baseline(cfg: WikiFactsConfig) -> tuple[dict, list[dict]]:
    from selfalign.evals.results import load_result

    from selfalign.evals.wikifacts_verify import fingerprint

    base, base_rows = load_result(cfg.compare)
    if base.get("task") != TASK or base.get("format") != cfg.format:
        raise SelfAlignError(f"--compare {cfg.compare}: not a wikifacts result in the {cfg.format} format "
                             f"(task {base.get('task')!r}, format {base.get('format')!r})")
    if base.get("verifier") != fingerprint():
        raise SelfAlignError(f"--compare {cfg.compare}: scored by another extractor (verifier "
                             f"{base.get('verifier') or 'unrecorded'}, this one {fingerprint()}); re-score it first: "
                             f"selfalign eval wikifacts --rescore {cfg.compare} --output NEW.json")
    return base, base_rows


def _compare(cfg: WikiFactsConfig, rows: list[dict], base: dict, base_rows: list[dict]) -> dict:
    """Paired bootstrap of every metric, this result minus ``--compare``, over the subjects both have."""
    from selfalign.evals.results import compare

    return {"baseline": cfg.compare, "baseline_valid": base.get("valid"),
            "metrics": {m: compare(rows, base_rows, m, n_boot=cfg.n_boot, seed=cfg.seed) for m in METRICS}}
