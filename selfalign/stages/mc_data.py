"""Multiple-choice self-alignment data: the judge's P(True) of every option, turned into self-labelled A/B rows.

The authors' multiple-choice alignment (``main_dpo_tf.py`` + ``data_utils_dpo_tf.py``) trains single-token DPO on
True/False Self-Eval prompts of TruthfulQA MC *train* options whose A/B answer is the judge's own verdict
(``mc_train_tf_judge234.json``); ``data_utils_dpo_mc.py`` ranks a question's options by the judge's probability
and prefers the top one to every other. Here: the judge (a model, or a ``selfalign calibrate`` items file) gives
each option a P(True); ``rule=top`` labels the option with the highest P(True) true and the others false,
``rule=threshold`` labels an option true when its P(True) reaches ``--threshold``. No gold label is read.
``balance`` repeats a question's minority-label rows: with ``rule=top`` one true row faces ~7 false ones on
TruthfulQA, and single-token DPO then mostly learns "B" (measured: reward accuracy 0.875 = the share of B rows).
The rows have exactly the shape ``selfalign sk-tune`` trains on (``sk_data.make_row``). See
docs/alignment.md, "Multiple-choice alignment".
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from selfalign.config import ModelArgs, ParallelArgs, opt, require
from selfalign.errors import InputError, SelfAlignError
from selfalign.store.io import JsonlAppender, duplicate, iter_jsonl, iter_numbered, write_jsonl_atomic
from selfalign.store.progress import run_chunks
from selfalign.store.hashes import model_weights
from selfalign.store.provenance import meta
from selfalign.selfeval.prompt import SelfEvalArgs, SelfEvalPrompt
from selfalign.store.guard import OutputGuard
from selfalign.store.lineage import result_settings

RULES = ("top", "threshold")


@dataclass
class MCDataConfig(SelfEvalArgs, ParallelArgs, ModelArgs):
    data: Optional[str] = opt(None, "multiple-choice set: truthfulqa-mc, bigbench:TASK, or a JSONL of {id, question, "
                                    "options: [{text}]} (option labels, if any, are not read)")
    split: Optional[str] = opt("train", "truthfulqa-mc split (train, valid, test, all); ignored for other sets")
    options: str = opt("mc2", "truthfulqa-mc option set: mc2 (every reference answer, several true) or mc1 (the "
                              "paper's: one true option per question; the 41 training questions give the 234 rows "
                              "of the authors' mc_train_tf_judge234.json)", choices=("mc1", "mc2"))
    limit: Optional[int] = opt(None, "use only the first N questions", min=1)
    scores: Optional[str] = opt(None, "the judge's per-option P(True): a `selfalign calibrate` items JSONL (id, "
                                      "option_idx, p_true); default: score every option here with --model (the "
                                      "judge), appended to <output stem>.scores.jsonl (resumable)")
    output: Optional[str] = opt(None, "train JSONL (sk-tune rows); <stem>.heldout.jsonl goes beside it")
    rule: str = opt("top", "label rule: top (the option with the highest P(True) is true, the others false) or "
                           "threshold (true when P(True) >= --threshold)", choices=RULES)
    threshold: float = opt(0.5, "threshold rule: P(True) at or above which an option is labelled true",
                            min=0, max=1)
    balance: bool = opt(False, "repeat each question's minority-label rows until its true and false rows are "
                               "equally many (rule top: the top option once per other option), so the trainer "
                               "cannot lower its loss by the label prior alone (answering B to everything)")
    heldout_fraction: float = opt(0.0, "this fraction of questions (by hash) goes to the held-out file (validation)",
                                    min=0, lt=1)
    seed: int = opt(0, "seed of the held-out split", min=0)
    batch_size: int = opt(16, "rows per forward pass (scoring)", min=1)

    @property
    def mode(self) -> str:  # recorded in every row, as sk-data's mode is
        return f"judge-{self.rule}"


# --- questions ---------------------------------------------------------------------------------------------
def load_questions(cfg: MCDataConfig) -> list[dict]:
    """[{id, question, options: [{text}], task, source, where}] (``where``: the file and line for messages)."""
    from selfalign.data import mc

    src = cfg.data
    if cfg.options != "mc2" and src != "truthfulqa-mc":
        raise SelfAlignError(f"--options {cfg.options} applies to truthfulqa-mc only, not to {src!r}")
    if src == "truthfulqa-mc":
        path = mc._truthfulqa_dir() / "mc_task.json"
        rows = [dict(r, where=f"{path} ({r['id']})") for r in mc.load_truthfulqa_mc(None, cfg.split, cfg.options)]
    elif src.startswith("bigbench:"):
        rows = [dict(r, where=f"{mc.bigbench_path(r['task'])} ({r['id']})") for r in mc.load_bigbench(src[9:])]
        rows = [r for r in rows if not r.get("targets")]
        if not rows:
            raise SelfAlignError(f"{src}: a generative task (no options); multiple-choice alignment needs options")
    else:
        rows = [dict(r, where=f"{src}:{n}") for n, r in _numbered_mc(src)]
    rows = rows[:cfg.limit] if cfg.limit else rows
    if not rows:
        raise SelfAlignError(f"{src}: no questions selected")
    task = "truthfulqa-mc" if src == "truthfulqa-mc" else Path(src).stem
    out = []
    for r in rows:
        if len(r["options"]) < 2:
            raise SelfAlignError(f"{r['where']}: question {r['id']!r} has only {len(r['options'])} option(s); "
                                 "a choice needs at least two")
        out.append({"id": str(r["id"]), "question": r["question"], "options": [{"text": o["text"]} for o in r["options"]],
                    "task": str(r.get("task") or task), "source": src, "where": r["where"],
                    **({"mc": r["mc"]} if r.get("mc") else {})})
    return out


def _numbered_mc(path: str):
    """(line, {id, question, options}) of an MC JSONL whose options need only a text (labels are not read)."""
    from selfalign.data import mc

    if not Path(path).exists():
        raise InputError(path, "file not found")
    seen: dict = {}
    for n, r in iter_numbered(Path(path), required=["id", "question", "options"]):
        r["options"] = mc._check_options(path, r["options"], n, labels=False)
        if str(r["id"]) in seen:
            raise InputError(path, f"duplicate id {r['id']!r} (first on line {seen[str(r['id'])]})", n)
        seen[str(r["id"])] = n
        yield n, r


# --- the judge's scores ------------------------------------------------------------------------------------
def _key(r: dict):
    return (str(r["id"]), int(r["option_idx"]))


def scores_path(output: str) -> Path:
    out = Path(output)
    stem = out.name[:-len(out.suffix)] if out.suffix else out.name
    return out.with_name(stem + ".scores.jsonl")


def read_scores(path: str | Path, expect: Optional[str] = None) -> dict:
    """{(id, option_idx): p_true} of a calibrate items file (or this stage's own scores file); a file whose rows
    name their TruthfulQA option set (``mc``) holds one, ``expect`` when given."""
    from selfalign.data.mc import check_one_set

    numbered = list(iter_numbered(Path(path), required=["id", "option_idx", "p_true"]))
    check_one_set(path, numbered, expect)
    out, seen = {}, {}
    for n, r in numbered:
        k = r["option_idx"]
        if not isinstance(k, int) or isinstance(k, bool) or k < 0:  # 1.7 was truncated, "x" or [1] a traceback
            raise InputError(path, f"option_idx must be a whole number >= 0, got {k!r}", n)
        p = r["p_true"]
        if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0 <= p <= 1:
            raise InputError(path, f"p_true must be a number in [0, 1], got {p!r}", n)
        if _key(r) in seen:  # a second score of one option would silently replace the first (and flip its label)
            raise duplicate(path, "(id, option_idx)", _key(r), seen[_key(r)], n)
        seen[_key(r)] = n
        out[_key(r)] = float(p)
    return out


def check_option_texts(path: str | Path, questions: list[dict]) -> None:
    """A scores row that names its option (``option``, as calibrate's items and this stage's scores do) must name
    the question's option at that index: scores of another option set (TruthfulQA mc2 for mc1 questions) are one
    line naming the file and line, not silently taken for other options."""
    text = {(q["id"], k): o["text"] for q in questions for k, o in enumerate(q["options"])}
    for n, r in iter_numbered(Path(path), required=["id", "option_idx"]):
        want = text.get(_key(r))
        if want is not None and isinstance(r.get("option"), str) and r["option"] != want:
            raise InputError(path, f"option {r['option_idx']} of {r['id']!r} is {r['option']!r} here but "
                                   f"{want!r} in {questions[0]['source']} (scores of another option set?)", n)


def score_options(cfg: MCDataConfig, questions: list[dict], engine) -> tuple[Path, str, int]:
    """P(True) of every option by the judge, appended to the scores file (finished options are skipped; options
    whose text or question changed since they were scored are scored again: their count is returned)."""
    from selfalign.selfeval import ptrue

    prompt = SelfEvalPrompt.of(cfg, chat=False)  # the judge's prompt is also the rows' prompt
    tid = prompt.template_id
    scorer = f"model={engine.info.get('model')};adapter={cfg.adapter};{tid}"
    items = [{"id": q["id"], "option_idx": k, "question": q["question"], "option": o["text"],
              **({"mc": q["mc"]} if q.get("mc") else {})} for q in questions for k, o in enumerate(q["options"])]
    path = scores_path(cfg.output)
    weights = model_weights(cfg) or None  # local weights (model, adapter): recorded in each row, checked on resume
    stamp = {"weights": weights} if weights else {}
    if path.exists():  # scores of the other option set would be taken for these options (same id, option_idx)
        from selfalign.data.mc import check_one_set

        check_one_set(path, iter_numbered(path), _mc_set(questions))

    def score(part):
        res = ptrue.p_true(engine, [(r["question"], r["option"]) for r in part], prompt)
        return [{**r, "p_true": x.p_true, "p_true_mass": x.mass, "scorer": scorer, **stamp}
                for r, x in zip(part, res)]

    with JsonlAppender(path, key=_key) as out:  # opening it cuts a partial last line
        wanted = {_key(r): r for r in items}
        for r in iter_jsonl(path) if out.finished else ():
            if _key(r) in wanted and r.get("scorer") != scorer:
                raise SelfAlignError(f"{path}: scored by {r.get('scorer')!r}, not {scorer!r}; use another --output "
                                     "or delete that file")
            if _key(r) in wanted and r.get("weights", weights) != weights:
                raise SelfAlignError(f"{path}: scored by other weights at the same path ({r.get('weights')}, now "
                                     f"{weights}): the model was replaced; use another --output or delete that file")
        # an option (or its question) edited since it was scored is scored again, not labelled by its old P(True)
        rescored = out.drop(lambda r: _key(r) in wanted and _edited(r, wanted[_key(r)]))
        todo = [r for r in items if not out.done(r)]
        run_chunks(out, todo, cfg.batch_size * 4, score, "mc-data (judge)", "option")
    return path, scorer, rescored


def _edited(row: dict, item: dict) -> bool:
    return row.get("question") != item["question"] or row.get("option") != item["option"]


def _mc_set(questions: list[dict]) -> Optional[str]:
    return next((q["mc"] for q in questions if q.get("mc")), None)


# --- labels and rows ---------------------------------------------------------------------------------------
def self_labels(p_true: list[float], rule: str, threshold: float = 0.5) -> list[int]:
    """The judge's verdict on each option of one question: ``top`` = 1 for the highest P(True) (ties: the first,
    as the Self-Eval selection picks), else 0; ``threshold`` = 1 where P(True) >= threshold."""
    if rule == "top":
        top = int(np.argmax(np.asarray(p_true, dtype=float)))
        return [int(k == top) for k in range(len(p_true))]
    if rule == "threshold":
        return [int(p >= threshold) for p in p_true]
    raise SelfAlignError(f"--rule must be one of {', '.join(RULES)}, not {rule!r}")


def build_rows(questions: list[dict], scores: dict, cfg: MCDataConfig, scores_file: str, judge: str) -> list[dict]:
    """Self-labelled rows, one per option, in question order; each question's ``split`` by hash."""
    from selfalign.data.splits import split_of
    from selfalign.stages.sk_data import make_row

    rows = []
    for q in questions:
        missing = [k for k in range(len(q["options"])) if (q["id"], k) not in scores]
        if missing:
            what = "no judge scores" if len(missing) == len(q["options"]) else f"no judge score for option(s) {missing}"
            raise SelfAlignError(f"{q['where']}: question {q['id']!r} has {what} in {scores_file}")
        p = [scores[(q["id"], k)] for k in range(len(q["options"]))]
        q = {**q, "split": split_of(cfg.seed, q["task"], q["id"], cfg.heldout_fraction)}
        mc = {"mc": q["mc"]} if q.get("mc") else {}
        own = [make_row(q, o["text"], lab, cfg, option_idx=k, p_true=p[k], judge=judge, **mc)
               for k, (o, lab) in enumerate(zip(q["options"], self_labels(p, cfg.rule, cfg.threshold)))]
        rows += balanced(own) if cfg.balance else own
    return rows


def balanced(rows: list[dict]) -> list[dict]:
    """One question's rows with its minority label repeated (in option order, cyclically) until both labels have
    as many rows as the majority; unchanged when one label is absent. Copies carry ``copy`` = 1, 2, ..."""
    sides = {lab: [r for r in rows if r["label"] == lab] for lab in (0, 1)}
    small, big = sorted(sides.values(), key=len)
    if not small:
        return rows
    extra = [{**small[i % len(small)], "copy": 1 + i // len(small)} for i in range(len(big) - len(small))]
    return rows + extra


def output_paths(output: str) -> dict[str, Path]:
    from selfalign.stages.sk_data import output_paths as sk_paths

    return {k: v for k, v in sk_paths(output).items() if k in ("train", "heldout")}


def run_mc_data(cfg: MCDataConfig, engine=None) -> dict:
    """Score (or read) every option's P(True), label by the rule, write the train / held-out row files."""
    require(cfg, "data", "output")
    paths = output_paths(cfg.output)
    # the row files are rewritten whole (moved aside first when made with other settings); the judge's scores file
    # is resumed across settings (--scores is read, and then no scores file is written)
    with OutputGuard(cfg.output, inputs=[cfg.data, cfg.scores], files=[paths["heldout"]],
                     shared=[] if cfg.scores else [scores_path(cfg.output)], settings=result_settings(cfg),
                     whole=list(paths.values())) as g:
        return _mc_data(cfg, engine, g)


def _mc_data(cfg: MCDataConfig, engine, g: OutputGuard) -> dict:
    t0 = time.time()
    questions = load_questions(cfg)
    model_info, judge, rescored = None, None, 0
    if cfg.scores:
        src, judge = Path(cfg.scores), f"file={cfg.scores}"
        if not src.exists():
            raise InputError(src, "file not found")
    else:
        if engine is None:
            from selfalign.engines import make_engine

            engine = make_engine(cfg.engine, **cfg.engine_kwargs())
        model_info = engine.info
        src, judge, rescored = score_options(cfg, questions, engine)
    scores = read_scores(src, _mc_set(questions))
    check_option_texts(src, questions)
    rows = build_rows(questions, scores, cfg, str(src), judge)
    paths = output_paths(cfg.output)
    g.begin()
    for split, path in paths.items():
        write_jsonl_atomic(path, [r for r in rows if r["split"] == split])
    counts = {s: {"rows": sum(r["split"] == s for r in rows), "true": sum(r["label"] for r in rows if r["split"] == s),
                  "questions": len({r["id"] for r in rows if r["split"] == s}),
                  "copies": sum(bool(r.get("copy")) for r in rows if r["split"] == s)} for s in paths}
    summary = {"output": cfg.output, "files": {s: str(p) for s, p in paths.items()}, "scores": str(src),
               "rule": cfg.rule, "balance": cfg.balance, "options": _mc_set(questions), "questions": len(questions),
               "counts": counts, "rescored_edited_options": rescored,
               "label_agreement_with_gold": _agreement(cfg, rows), "seconds": round(time.time() - t0, 2)}
    g.record(meta(cfg, stage="mc-data", model_info=model_info, judge=judge,
                  selfeval_template=SelfEvalPrompt.of(cfg, chat=False).template_id, **summary))
    return summary


def _agreement(cfg: MCDataConfig, rows: list[dict]) -> Optional[float]:
    """Diagnostics only, never used to build rows: the share of self-labels equal to the set's gold labels,
    when it has them (truthfulqa-mc, bigbench, a JSONL with 0/1 labels)."""
    from selfalign.data.mc import load_mc

    try:
        qs = load_mc(cfg.data, cfg.split if cfg.data == "truthfulqa-mc" else None, cfg.limit, cfg.options)
    except SelfAlignError:
        return None
    gold = {(str(q["id"]), k): o["label"] for q in qs for k, o in enumerate(q["options"])}
    hits = [int(gold[(r["id"], r["option_idx"])] == r["label"]) for r in rows
            if (r["id"], r["option_idx"]) in gold and not r.get("copy")]
    return float(np.mean(hits)) if hits else None
