"""Evaluation calibrate (``selfalign eval calibrate``, also ``selfalign calibrate``): P(True) of every option of
a multiple-choice set; AUROC, ECE, Brier, selection and direct accuracy.

The result JSON has ``evals.results``' shape: ``metrics`` holds ``auroc``, ``ece`` and ``brier`` (set-level, over
the options), ``selection_acc``, ``direct_acc`` and ``direct_acc_norm`` (means over the questions with a real
choice), each ``{value, ci_low, ci_high, n}``; beside them the set's facts (``n_questions``, ``positive_rate``,
``mean_p_true``, ``reliability_bins``, ...). Beside the JSON go ``<name>.items.jsonl`` (one row per (question,
option), appended and resumable), ``<name>.rows.jsonl`` (one row per question: the per-item values, for paired
differences) and ``<name>.reliability.png``. Intervals are percentile bootstraps that resample questions.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from selfalign import prompts as P
from selfalign.config import ModelArgs, ParallelArgs, opt, require
from selfalign.engines import make_engine
from selfalign.errors import SelfAlignError
from selfalign.data.truthfulqa import SPLITS as TRUTHFULQA_SPLITS
from selfalign.evals.results import result_guard, rows_path
from selfalign.store.io import iter_jsonl, write_json, write_jsonl_atomic
from selfalign.store.lineage import TrackedOutput, settings_of, stamp
from selfalign.store.paths import portable
from selfalign.store.provenance import meta, meta_path
from selfalign.store.progress import run_chunks
from selfalign.selfeval.prompt import SelfEvalArgs, SelfEvalPrompt

TASK = "calibrate"
N_BINS = 10
ALPHA = 0.05


@dataclass
class CalibrateConfig(SelfEvalArgs, ParallelArgs, ModelArgs):
    data: Optional[str] = opt(None, "multiple-choice set: a JSONL of {id, question, options: [{text, label}]}, "
                                    "truthfulqa-mc, bigbench:TASK (bigbench:TASK/SUBTASK), or sk:PATH (held-out SK-Tuning rows)")
    split: Optional[str] = opt(None, "truthfulqa-mc split: fewshot_demos, train, valid, test, all",
                               choices=TRUTHFULQA_SPLITS)
    limit: Optional[int] = opt(None, "use only the first N questions", min=1, hint="leave it out for all questions")
    output: Optional[str] = opt(None, "report JSON; the per-option rows (resumable) and the PNG go beside it")
    samples: int = opt(4, "a generative task (BIG-bench targets, no options): the model's own sampled answers per "
                          "question, labelled by normalised match against the targets (sk-data --mode samples)", min=1)
    direct: bool = opt(True, "also score each option's answer log-likelihood (direct accuracy); --no-direct halves "
                             "the cost when only P(True) is wanted")
    chat: bool = opt(False, "P(True): wrap the prompt in the model's chat template (the direct-answer "
                            "likelihood always uses the raw QA prompt)")
    n_boot: int = opt(1000, "bootstrap resamples (of questions) for the 95 percent intervals; 0 = none", min=0,
                      summary_only=True)
    bootstrap_seed: int = opt(0, "bootstrap seed", min=0, aliases=("--seed",), summary_only=True)
    sample_seed: int = opt(0, "a generative task: sampling seed of the model's answers (--samples)", min=0)
    batch_size: int = opt(16, "rows per forward pass", min=1)
    overwrite: bool = opt(False, "score every option afresh (the rows beside --output are moved aside) instead of "
                                 "resuming")


def output_paths(output: str | Path) -> tuple[Path, Path]:
    """(items JSONL, reliability PNG) beside the report: ``x.json`` -> ``x.items.jsonl``, ``x.reliability.png``."""
    out = Path(output)
    stem = out.name[:-len(".json")] if out.name.endswith(".json") else out.name
    return out.with_name(stem + ".items.jsonl"), out.with_name(stem + ".reliability.png")


def _key(r: dict):
    return (str(r["id"]), int(r["option_idx"]))


def score_items(engine, items: list[dict], cfg: CalibrateConfig, scorer: str) -> list[dict]:
    """Add P(True), the A/B mass and the answer log-likelihood to (question, option) rows."""
    from selfalign.selfeval import ptrue

    res = ptrue.p_true(engine, [(r["question"], r["option"]) for r in items], SelfEvalPrompt.of(cfg))
    pairs = [P.mc_pair(r["question"], r["option"]) for r in items]
    lls = engine.loglikelihood(pairs) if cfg.direct else [(None, None)] * len(items)
    return [{**r, "p_true": x.p_true, "p_true_mass": x.mass, "ll_sum": s, "ll_tokens": n, "ll_chars": len(cont),
             "scorer": scorer} for r, x, (s, n), (_, cont) in zip(items, res, lls, pairs)]


METRICS = ("auroc", "ece", "brier", "selection_acc", "direct_acc", "direct_acc_norm")


def _set_metric(fn, y, p, ids, cfg: CalibrateConfig) -> dict:
    """A set-level metric of the options (AUROC, ECE, Brier) in ``evals.results``' shape; the bootstrap resamples
    whole questions, ``n`` counts the options."""
    from selfalign.metrics import bootstrap_ci

    if not len(y):
        return {"value": None, "ci_low": None, "ci_high": None, "n": 0}
    v, lo, hi = bootstrap_ci(fn, y, p, n_boot=cfg.n_boot, seed=cfg.bootstrap_seed, alpha=ALPHA, groups=ids)
    return {"value": v, "ci_low": lo, "ci_high": hi, "n": int(len(y))}


def _by_question(rows: list[dict]) -> dict[str, list[dict]]:
    questions: dict[str, list[dict]] = {}
    for r in rows:
        questions.setdefault(str(r["id"]), []).append(r)
    return questions


def question_rows(rows: list[dict]) -> list[dict]:
    """One row per question with a real choice (two or more options, one of them true): ``selection_acc`` (the
    top-P(True) option is true) and, when the answer likelihoods were scored, ``direct_acc`` (top summed
    log-likelihood) and ``direct_acc_norm`` (top log-likelihood per character)."""
    from selfalign import metrics as M

    choice = [(i, qs) for i, qs in _by_question(rows).items() if len(qs) > 1 and any(r["label"] for r in qs)]
    direct = all(r.get("ll_sum") is not None for r in rows)

    def sel(score):
        return M.selection_correct([[(score(r), r["label"]) for r in qs] for _, qs in choice]) if choice else []

    cols = {"selection_acc": sel(lambda r: r["p_true"])}
    if direct:
        cols.update(direct_acc=sel(lambda r: r["ll_sum"]), direct_acc_norm=sel(lambda r: r["ll_sum"] / r["ll_chars"]))
    return [{"id": i, "question": qs[0].get("question"), "n_options": len(qs),
             **{m: (float(cols[m][k]) if m in cols else None) for m in METRICS[3:]}}
            for k, (i, qs) in enumerate(choice)]


def build_report(rows: list[dict], cfg: CalibrateConfig) -> tuple[dict, list[dict]]:
    """(result fields, question rows) of scored rows (one per option, grouped by ``id``): the metrics in
    ``evals.results``' shape ``{value, ci_low, ci_high, n}`` (intervals resample questions) and the set's facts."""
    from selfalign import metrics as M
    from selfalign.evals.results import summarize

    y = np.asarray([r["label"] for r in rows], dtype=int)
    p = np.asarray([r["p_true"] for r in rows], dtype=float)
    ids = np.asarray([str(r["id"]) for r in rows])
    qrows = question_rows(rows)
    choice = [qs for qs in _by_question(rows).values() if len(qs) > 1 and any(r["label"] for r in qs)]
    mass = np.asarray([r["p_true_mass"] for r in rows], dtype=float)
    metrics = {"auroc": _set_metric(M.auroc, y, p, ids, cfg),
               "ece": _set_metric(lambda a, b: M.ece(a, b, N_BINS), y, p, ids, cfg),
               "brier": _set_metric(M.brier, y, p, ids, cfg),
               **summarize(qrows, METRICS[3:], n_boot=cfg.n_boot, seed=cfg.bootstrap_seed)}
    return {
        "metrics": metrics,
        "n_questions": len(set(ids)), "n_options": len(rows), "n_true_options": int(y.sum()),
        "positive_rate": float(y.mean()),
        "mean_p_true": float(p.mean()), "mean_mass": float(mass.mean()), "min_mass": float(mass.min()),
        "ece_binning": {"n_bins": N_BINS, "rule": M.ECE_BINNING},
        "reliability_bins": M.reliability_bins(y, p, N_BINS),
        "n_choice_questions": len(choice),
        "chance_accuracy": float(np.mean([sum(r["label"] for r in qs) / len(qs) for qs in choice])) if choice else None,
        "bootstrap": {"n_boot": cfg.n_boot, "seed": cfg.bootstrap_seed, "level": 1 - ALPHA, "method": "percentile",
                      "unit": "question"},
    }, qrows


def _generative(data: str) -> bool:
    from selfalign.data.mc import is_generative

    return is_generative(data)


def _generative_questions(cfg: CalibrateConfig, engine) -> list[dict]:
    """A generative task's questions with the model's own sampled answers as options (labelled by target match),
    sampled (resumably) into ``<name>.samples.jsonl`` beside the report."""
    from selfalign.data.mc import load_sk_rows
    from selfalign.stages.sk_data import SKDataConfig, run_sk_data

    out = Path(cfg.output)
    samples = out.with_name((out.name[:-5] if out.name.endswith(".json") else out.name) + ".samples.jsonl")
    run_sk_data(SKDataConfig(model=cfg.model, adapter=cfg.adapter, sources=[cfg.data], output=str(samples),
                             mode="samples", n=cfg.samples, heldout_fraction=0.0, max_per_task=cfg.limit,
                             seed=cfg.sample_seed, batch_size=cfg.batch_size, max_new_tokens=16), engine=engine)
    return load_sk_rows(samples)


def _export(output: str, qrows: list[dict], result: dict) -> None:
    """In lm-evaluation-harness's shape (evals.lm_eval_export): AUROC, ECE and Brier of the whole set, and per
    question with a real choice selection (top P(True) option true) and direct (top likelihood) accuracy."""
    from selfalign.evals.lm_eval_export import export

    per_item = [m for m in METRICS[3:] if any(r.get(m) is not None for r in qrows)]
    export(output, TASK, qrows, per_item, result["meta"], result["metrics"], whole_set=METRICS[:3])


def save_calibration(output: str | Path, rows: list[dict], cfg: CalibrateConfig, run_meta: dict,
                     model_info: dict | None = None, guard=None) -> dict:  # model_info: unused (run_meta holds it)
    """Write the result JSON (``evals.results``' shape), the question rows beside it and the lm-eval copy, from
    scored option rows; returns the result. ``guard``: the command's ``result_guard`` (an earlier result of other
    settings moved aside, these recorded)."""
    fields, qrows = build_report(rows, cfg)
    if guard is not None:
        run_meta = guard.begin().stamp(run_meta)
    write_jsonl_atomic(rows_path(output), qrows)
    items, png = output_paths(output)
    result = portable({"task": TASK, "set": cfg.data, "data": cfg.data, "split": cfg.split,
                       "rows": rows_path(output).name, **fields, "items": str(items), "plot": str(png),
                       "meta": run_meta})
    _export(output, qrows, result)
    write_json(output, result)
    return result


def _check_scorer(items_path: Path, keys: set, scorer: str) -> None:
    if not items_path.exists():
        return
    for r in iter_jsonl(items_path):
        if _key(r) in keys and r.get("scorer") != scorer:
            raise SelfAlignError(f"{items_path}: rows were scored by {r.get('scorer')!r}, not {scorer!r}; "
                                 f"choose another --output or delete that file")


def run_calibrate(cfg: CalibrateConfig, engine=None) -> dict:
    """Score every (question, option) (resuming finished rows), then write the report, rows and PNG."""
    require(cfg, "data", "output")
    items_path, png_path = output_paths(cfg.output)
    with result_guard(cfg, inputs=[cfg.data], files=[items_path, meta_path(items_path), png_path],
                      whole=[rows_path(cfg.output), png_path]) as g:
        return _calibrate(cfg, engine, g)


def _calibrate(cfg: CalibrateConfig, engine, g) -> dict:
    from selfalign.data.mc import load_mc
    from selfalign.plots import reliability_diagram

    # a multiple-choice file is read (and refused) before the model loads; a generative task needs the model
    questions = None if _generative(cfg.data) else load_mc(cfg.data, cfg.split, cfg.limit)
    engine = engine or make_engine(cfg.engine, **cfg.engine_kwargs())
    questions = questions if questions is not None else _generative_questions(cfg, engine)
    items = [{"id": str(q["id"]), "option_idx": k, "question": q["question"], "option": o["text"], "label": o["label"]}
             for q in questions for k, o in enumerate(q["options"])]
    items_path, png_path = output_paths(cfg.output)
    tid = SelfEvalPrompt.of(cfg).template_id
    scorer = (f"model={engine.info.get('model')};adapter={cfg.adapter};{tid};"
              f"{P.MC_TEMPLATE_ID if cfg.direct else 'no-direct'}")
    run_meta = dict(stage="calibrate", model_info=engine.info, selfeval_template=tid, mc_template=P.MC_TEMPLATE_ID)
    t0, n_new = time.time(), 0
    with TrackedOutput(items_path, _key, settings_of(cfg), guard=g) as out:  # opening it cuts a partial last line
        _check_scorer(items_path, {_key(r) for r in items}, scorer)
        out.record(meta(cfg, **run_meta))
        todo = out.todo(items, lambda r: [_key(r)])  # an edited question or option is scored again

        def score(part: list[dict]) -> list[dict]:
            return [stamp(r, it) for r, it in zip(score_items(engine, part, cfg, scorer), part)]

        n_new = run_chunks(out, todo, cfg.batch_size * 4, score, "calibrate", "option")
    stored = {_key(r): r for r in iter_jsonl(items_path)}
    # the current data's text and labels win over what a row stored
    rows = [{**stored[_key(it)], **it} for it in items]
    title = f"{Path(str(engine.info.get('model'))).name} on {cfg.data}" + (f" ({cfg.split})" if cfg.split else "")
    g.begin()  # an earlier result of other settings (its rows and plot too) is moved aside before any is replaced
    reliability_diagram([r["label"] for r in rows], [r["p_true"] for r in rows], png_path, title, N_BINS)
    fields = save_calibration(cfg.output, rows, cfg, meta(cfg, **run_meta), engine.info, guard=g)
    m = {k: v["value"] for k, v in fields["metrics"].items()}
    return {"output": cfg.output, "questions": fields["n_questions"], "options": len(rows), "new_rows": n_new,
            "skipped_rows": len(rows) - n_new, "auroc": m["auroc"], "ece": m["ece"], "brier": m["brier"],
            "selection_accuracy": m["selection_acc"], "direct_accuracy": m["direct_acc"],
            "direct_accuracy_norm": m["direct_acc_norm"], "mean_mass": fields["mean_mass"],
            "seconds": round(time.time() - t0, 2)}
