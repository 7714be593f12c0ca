"""SK-Tuning data: Self-Eval prompts with single-token A/B preferences (chosen "A" for a true proposal).

Proposals come from multiple-choice sets, either the options themselves (``options``: balanced per question)
or the model's own sampled answers checked against the options (``samples``: the paper's way). Generative tasks
(gold ``targets``, no options, e.g. BIG-bench qa_wikidata) work in both modes: ``options`` pairs the gold answer
with a distractor (the gold answer of another question of the same task and relation), ``samples`` labels each
sampled answer by normalised match against the targets (no match: false). Questions are split by a hash of
(split_seed, task, id), so a question always lands in the same split, whatever the sampling ``seed``.
"""
from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from selfalign import prompts as P
from selfalign.config import ModelArgs, ParallelArgs, opt, require
from selfalign.errors import SelfAlignError
from selfalign.store.hashes import model_weights, row_hash
from selfalign.store.io import JsonlAppender, iter_jsonl, write_jsonl_atomic
from selfalign.store.progress import Progress
from selfalign.answering import SamplingArgs
from selfalign.store.provenance import meta
from selfalign.data import questions
from selfalign.data.questions import add_distractors
from selfalign.data.splits import fewshot_prompt, pick_demos
from selfalign.text import match_targets, matches, normalize
from selfalign.selfeval.prompt import SelfEvalArgs, SelfEvalPrompt
from selfalign.store.guard import OutputGuard
from selfalign.store.lineage import result_settings

MODES = ("options", "samples")
SPLITS = ("train", "heldout", "heldout_task")


@dataclass
class SKDataConfig(SelfEvalArgs, SamplingArgs, ParallelArgs, ModelArgs):
    sources: list[str] = opt([], "bigbench:TASK[/SUBTASK], bigbench:all, truthfulqa-mc[:SPLIT] (default split: "
                                 "train), or a JSONL of {id, question, options: [{text, label}]}")
    output: Optional[str] = opt(None, "train JSONL; <stem>.heldout.jsonl and <stem>.heldout_tasks.jsonl go beside it")
    mode: str = opt("options", "proposals: options (the gold and wrong options, balanced per question) or "
                               "samples (the model's answers, checked against the options)", choices=MODES)
    gen_shots: int = opt(3, "samples mode, generative tasks: demonstrations (other training questions of the same "
                            "task, with their gold answers) before the statement to complete", min=0)
    heldout_fraction: float = opt(0.2, "per task, this fraction of questions (by hash) goes to the held-out file",
                                  min=0, max=1)
    split_by: str = opt("question", "generative tasks: hold out questions (by hash) or subjects (no fact about a "
                                    "held-out subject, under any relation, in the train file, its distractors or "
                                    "its demonstrations); multiple-choice questions are split by question",
                        choices=("question", "subject"))
    heldout_tasks: list[str] = opt([], "tasks kept out entirely, written to <stem>.heldout_tasks.jsonl")
    max_per_task: Optional[int] = opt(None, "at most N questions per task (a deterministic choice by hash, made "
                                            "before the split)", min=1)
    max_train: Optional[int] = opt(None, "at most N training questions per task, a choice by hash made after the "
                                         "split (a held-out subject stays held out; --max-per-task moves the split)",
                                   min=1)
    max_heldout: Optional[int] = opt(None, "at most N held-out questions per task, chosen as --max-train", min=1)
    seed: int = opt(0, "sampling seed: the model's answers (--mode samples)", min=0)
    split_seed: int = opt(0, "seed of the held-out split, the per-task caps, the balancing of options, the "
                             "distractors and the demonstrations (apart from --seed, so new samples keep the split)",
                          min=0)
    n: int = opt(5, "samples: answers per question", min=1)
    max_new_tokens: int = opt(32, "samples: tokens per answer at most", min=1)


def select_questions(cfg: SKDataConfig) -> tuple[list[dict], dict]:
    """The stage's questions (``data.questions.select_questions`` with its flags) and the skipped tasks."""
    caps = {s: n for s, n in (("train", cfg.max_train), ("heldout", cfg.max_heldout)) if n is not None}
    return questions.select_questions(cfg.sources, cfg.heldout_tasks, cfg.max_per_task, cfg.split_seed,
                                      cfg.heldout_fraction, cfg.split_by, caps)


# --- rows --------------------------------------------------------------------------------------------------
def make_row(q: dict, proposal: str, label: int, cfg: SKDataConfig, **extra) -> dict:
    """A TRL preference row: the Self-Eval prompt, chosen/rejected "A"/"B", and where it came from."""
    good, bad = (P.TRUE_LABEL, P.FALSE_LABEL) if label else (P.FALSE_LABEL, P.TRUE_LABEL)
    return {"prompt": SelfEvalPrompt.of(cfg, chat=False).text(q["question"], proposal), "chosen": good,
            "rejected": bad, "id": q["id"], "task": q["task"], "question": q["question"], "proposal": proposal,
            "label": int(label), "source": q["source"], "mode": cfg.mode, "split": q["split"], **extra}


def option_rows(q: dict, cfg: SKDataConfig) -> list[dict]:
    """Equal numbers of true and false options (the larger side sampled down); [] if one side is empty.
    A generative question (no options, a ``distractor`` set by ``add_distractors``): its first gold target and
    the distractor."""
    if q.get("targets"):
        if not q.get("distractor"):
            return []
        return [make_row(q, q["targets"][0], 1, cfg, option_idx=0), make_row(q, q["distractor"], 0, cfg, option_idx=1)]
    idx = {1: [], 0: []}
    for k, o in enumerate(q["options"]):
        idx[int(o["label"])].append(k)
    m = min(len(idx[1]), len(idx[0]))
    rng = random.Random(f"{cfg.split_seed}\x1fbalance\x1f{q['task']}\x1f{q['id']}")
    keep = sorted(k for side in (1, 0) for k in rng.sample(idx[side], m))
    return [make_row(q, q["options"][k]["text"], q["options"][k]["label"], cfg, option_idx=k) for k in keep]




def match_answer(answer: str, options: list[dict]) -> Optional[int]:
    """1 if the answer matches a true option, 0 a false one, None if neither or both (an exact match wins)."""
    a = normalize(answer)
    norm = [(normalize(o["text"]), int(o["label"])) for o in options]
    exact = {lab for t, lab in norm if t and t == a}
    hits = exact or {lab for t, lab in norm if matches(a, t)}
    return hits.pop() if len(hits) == 1 else None


# --- output ------------------------------------------------------------------------------------------------
def output_paths(output: str) -> dict[str, Path]:
    out = Path(output)
    stem = out.name[:-len(out.suffix)] if out.suffix else out.name
    return {"train": out, "heldout": out.with_name(stem + ".heldout.jsonl"),
            "heldout_task": out.with_name(stem + ".heldout_tasks.jsonl")}


def count_rows(paths: dict[str, Path]) -> dict:
    """{task: {split: {"true": n, "false": n, "questions": n}}} read back from the written files."""
    counts: dict = {}
    for split, path in paths.items():
        qs: dict = {}
        for r in iter_jsonl(path) if path.exists() else []:
            c = counts.setdefault(r["task"], {}).setdefault(split, {"true": 0, "false": 0, "questions": 0})
            c["true" if r["label"] else "false"] += 1
            qs.setdefault(r["task"], set()).add(r["id"])
        for task, ids in qs.items():
            counts[task][split]["questions"] = len(ids)
    return counts


# --- stage -------------------------------------------------------------------------------------------------
def _check(cfg: SKDataConfig) -> None:
    """What the field declarations (modes, ranges) cannot say: the output must be given."""
    require(cfg, "output")


def _build_options(cfg: SKDataConfig, questions: list[dict], paths: dict) -> dict:
    rows = {s: [] for s in SPLITS}
    skipped = Counter()
    add_distractors(questions, cfg.split_seed, within_split=cfg.split_by == "subject")
    for q in questions:
        got = option_rows(q, cfg)
        if not got:
            skipped[q["task"]] += 1
        rows[q["split"]] += got
    if not any(rows.values()):
        raise SelfAlignError("no usable questions: every question lacks a true or a false option")
    for split, path in paths.items():
        write_jsonl_atomic(path, rows[split])
    return {"skipped_questions": dict(skipped)}


def _build_samples(cfg: SKDataConfig, questions: list[dict], paths: dict, engine) -> dict:
    """Sample, check and append; a progress file records finished questions (and dropped answers)."""
    from selfalign.answering import render, resolve_prompting

    tmpl, chat = resolve_prompting(engine, cfg.template, cfg.chat_template)
    gen = cfg.generation_config(chat)
    raw = cfg.generation_config(False)  # generative tasks: a raw few-shot completion, cut at the line's end
    raw.stop = ["\n"]
    pools: dict = {}
    for q in questions:
        if q.get("targets") and q["split"] == "train":
            pools.setdefault(q["task"], []).append(q)
    key = lambda r: (r["task"], r["id"], r["sample_idx"])  # noqa: E731
    qkey = lambda r: (r["task"], r["id"])  # noqa: E731
    # each question's answer prompt (its demonstrations included) and the hash of what decides its rows
    texts = {qkey(q): fewshot_prompt(q, pick_demos(q, pools.get(q["task"], []), cfg.gen_shots, cfg.split_seed))
             if q.get("targets") else render(engine, {"question": q["question"]}, tmpl, chat) for q in questions}
    hashes = {qkey(q): row_hash({"question": q["question"], "options": q.get("options"),
                                 "targets": q.get("targets"), "prompt": texts[qkey(q)]}) for q in questions}
    outs = {s: JsonlAppender(p, key) for s, p in paths.items()}
    progress = JsonlAppender(progress_path(cfg.output), key=qkey)
    fp, weights = settings_fingerprint(cfg), model_weights(cfg) or None
    try:
        done = list(iter_jsonl(progress.path)) if progress.finished else []
        if {r.get("settings") for r in done} - {fp}:
            raise SelfAlignError(f"{progress.path}: written with other settings (sources, split, shots, sampling); "
                                 "use a new --output or delete the old files")
        if any(r.get("weights", weights) != weights for r in done):
            raise SelfAlignError(f"{progress.path}: sampled from other weights at the same path: the model was "
                                 "replaced; use a new --output or delete the old files")
        # a question edited since it was sampled (its text, options, targets or prompt): its rows are dropped and
        # it is sampled again (rows first, then the progress line: a kill in between redoes it once more)
        edited = {qkey(r) for r in done if qkey(r) in hashes and r.get("input_hash") not in (None, hashes[qkey(r)])}
        if edited:
            for out in outs.values():
                out.drop(lambda r: qkey(r) in edited)
            progress.drop(lambda r: qkey(r) in edited)
        todo = [q for q in questions if not progress.done(q)]
        bar = Progress(len(todo), "sk-data", "question")
        for s in range(0, len(todo), cfg.batch_size):
            batch = todo[s:s + cfg.batch_size]
            gens_of = {}
            for kind, settings in (("mc", gen), ("gen", raw)):
                part = [q for q in batch if bool(q.get("targets")) == (kind == "gen")]
                if not part:
                    continue
                prompts = [texts[qkey(q)] for q in part]
                for q, text, gens in zip(part, prompts, engine.generate(prompts, settings, seed=cfg.seed)):
                    gens_of[id(q)] = (text, gens)
            for q in batch:
                text, gens = gens_of[id(q)]
                rows, unknown = [], []
                for k, g in enumerate(gens):
                    label = match_targets(g.text, q["targets"]) if q.get("targets") else match_answer(g.text, q["options"])
                    if label is None:
                        unknown.append(g.text)
                    else:
                        rows.append(make_row(q, g.text.strip(), label, cfg, sample_idx=k, answer_prompt=text))
                outs[q["split"]].write([r for r in rows if not outs[q["split"]].done(r)])
                progress.write([{"task": q["task"], "id": q["id"], "split": q["split"], "settings": fp,
                                 "kept": len(rows), "unknown": len(unknown), "unknown_answers": unknown,
                                 "input_hash": hashes[qkey(q)], **({"weights": weights} if weights else {})}])
            bar.update(len(batch))
        bar.close()
    finally:
        for a in (*outs.values(), progress):
            a.close()
    unknown = Counter()
    for r in iter_jsonl(progress_path(cfg.output)):
        unknown[r["task"]] += r["unknown"]
    return {"unknown_answers": dict(unknown), "new_questions": len(todo), "redone_edited_questions": len(edited),
            "answer_template": tmpl.id,
            "chat_template": chat, "generation": gen.params()}


def settings_fingerprint(cfg: SKDataConfig) -> str:
    """What decides the rows of a question: a resumed run must share it (else questions could change split)."""
    keys = ("sources", "shots", "instruction", "selfeval_prompt", "gen_shots", "heldout_fraction", "heldout_tasks",
            "max_per_task", "seed", "n", "temperature", "top_p", "top_k", "max_new_tokens", "template", "chat_template",
            "model", "adapter")
    values = {k: getattr(cfg, k) for k in keys}
    if cfg.split_seed != cfg.seed:  # one seed for both is what outputs made before split_seed used: same print
        values["split_seed"] = cfg.split_seed
    if cfg.split_by != "question":  # the default leaves the prints of earlier outputs as they were
        values["split_by"] = cfg.split_by
    for k in ("max_train", "max_heldout"):  # likewise: only when set
        if getattr(cfg, k) is not None:
            values[k] = getattr(cfg, k)
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]


def progress_path(output: str) -> Path:
    return Path(str(output) + ".progress.jsonl")


def run_sk_data(cfg: SKDataConfig, engine=None) -> dict:
    """Build the SK-Tuning preference files; returns counts per split and label."""
    _check(cfg)
    paths = output_paths(cfg.output)
    # options: the row files are rewritten whole (moved aside first when made with other settings); samples: they
    # are appended and resumed, the progress file refusing other settings
    with OutputGuard(cfg.output, inputs=cfg.sources, files=[paths["heldout"], paths["heldout_task"],
                                                            progress_path(cfg.output)],
                     settings=result_settings(cfg), whole=list(paths.values()) if cfg.mode == "options" else []) as g:
        return _sk_data(cfg, engine, g)


def _sk_data(cfg: SKDataConfig, engine, g: OutputGuard) -> dict:
    questions, skipped_tasks = select_questions(cfg)
    paths = output_paths(cfg.output)
    model_info = None
    if cfg.mode == "options":
        g.begin()
        extra = _build_options(cfg, questions, paths)
    else:
        if engine is None:
            from selfalign.engines import make_engine

            engine = make_engine(cfg.engine, **cfg.engine_kwargs())
        model_info = getattr(engine, "info", None)
        extra = _build_samples(cfg, questions, paths, engine)
    counts = count_rows(paths)
    totals = {s: {"true": sum(c.get(s, {}).get("true", 0) for c in counts.values()),
                  "false": sum(c.get(s, {}).get("false", 0) for c in counts.values()),
                  "questions": sum(1 for q in questions if q["split"] == s)} for s in SPLITS}
    summary = {"output": cfg.output, "files": {s: str(p) for s, p in paths.items()}, "mode": cfg.mode,
               "tasks": len(counts), "totals": totals, "skipped_tasks": sorted(skipped_tasks), **extra}
    g.record(meta(cfg, stage="sk-data", model_info=model_info, counts=counts,
                  selfeval_template=SelfEvalPrompt.of(cfg, chat=False).template_id,
                  skipped_task_reasons=skipped_tasks, **summary))
    return summary
