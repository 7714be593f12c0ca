"""TruthfulQA MC1 / MC2, scored as lm-evaluation-harness's ``truthfulqa_mc1`` / ``truthfulqa_mc2`` do.

Each option is scored by the summed log-likelihood of " {option}" after the harness's QA primer and
"Q: {question}\\nA:" (``prompts.truthfulqa_mc_pair``). MC1 = 1 if the top option of ``mc1_targets`` is the true
one (ties: the first option, as ``np.argmax``). MC2 = the normalised probability mass (exp of the
log-likelihoods) on the true options of ``mc2_targets`` (lm_eval >= 0.4.9 ``process_results_mc2``: by label).
With ``selfeval`` the paper's Self-Eval selection is scored too: ``selfeval_mc1`` = 1 if the ``mc1_targets``
option with the highest P(True) is the true one.

Every result also splits ``mc1`` (and ``selfeval_mc1``) by the style of each question's true option
(``<metric>_hedged`` / ``<metric>_plain``: a negation or hedge, or not; ``answer_style``). With ``bow_labels`` (the
rows a model was trained on) a bag-of-words logistic regression fitted on those labels selects each question's MC1
option too (``bow_mc1``), and ``selfeval_vs_bow`` is the paired difference: a selection gain counts only beyond it.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from selfalign import prompts as P
from selfalign.config import ModelArgs, ParallelArgs, opt, require
from selfalign.engines import make_engine
from selfalign.errors import InputError, SelfAlignError
from selfalign.data.truthfulqa import SPLITS
from selfalign.evals import answer_style
from selfalign.evals.results import compare, result_guard, rows_path, save_result
from selfalign.store.io import iter_jsonl, read_json
from selfalign.store.lineage import TrackedOutput, settings_of, stamp
from selfalign.store.provenance import meta
from selfalign.store.progress import run_chunks
from selfalign.selfeval.prompt import SelfEvalArgs, SelfEvalPrompt

TASK = "truthfulqa-mc"
HARNESS = "lm_eval truthfulqa_mc1 (v2.0) / truthfulqa_mc2 (v3.0)"


@dataclass
class TruthfulQAMCConfig(SelfEvalArgs, ParallelArgs, ModelArgs):
    output: Optional[str] = opt(None, "summary JSON; per-question rows go beside it (<name>.rows.jsonl, resumable)")
    data: Optional[str] = opt(None, "TruthfulQA mc_task.json (default: $SELFALIGN_DATA/truthfulqa/mc_task.json, else "
                                    "fetched from the hub; the paper's split ships with selfalign, a splits.json "
                                    "beside the file overrides it)")
    split: str = opt("test", "the paper's split: train, valid, test, all (fewshot_demos also works)",
                     choices=SPLITS)
    limit: Optional[int] = opt(None, "use only the first N questions of the split", min=1,
                               hint="leave it out for the whole split")
    selfeval: bool = opt(True, "also score the Self-Eval selection: the option with the highest P(True)")
    # SelfEvalArgs' field with this task's default: the paper's 5 demonstrations
    shots: int = opt(5, "P(True): number of the paper's Self-Eval demonstrations before the prompt",
                     min=0, max=len(P.PTRUE_DEMOS))
    chat: bool = opt(False, "P(True): wrap the prompt in the model's chat template (off: raw text, as the paper)")
    n_boot: int = opt(1000, "bootstrap resamples (of questions) for the 95 percent intervals; 0 = none", min=0,
                      summary_only=True)
    bootstrap_seed: int = opt(0, "bootstrap seed", min=0, aliases=("--seed",), summary_only=True)
    batch_size: int = opt(16, "rows per forward pass", min=1)
    overwrite: bool = opt(False, "score every question afresh (the rows beside --output and the result are moved "
                                 "aside)")
    bow_labels: Optional[str] = opt(None, "an sk-tune rows JSONL (proposal, label): the labels a model was trained "
                                          "on; a bag-of-words logistic regression fitted on them selects each "
                                          "question's MC1 option (bow_mc1), the baseline beside the selection",
                                    summary_only=True)


# --- scoring (pure) ---------------------------------------------------------------------------------------
def mc1_score(lls: Sequence[float], labels: Sequence[int]) -> float:
    """1.0 if the option with the highest log-likelihood is labelled true (ties: the first)."""
    return float(bool(labels[int(np.argmax(np.asarray(lls, dtype=float)))]))


def mc2_score(lls: Sequence[float], labels: Sequence[int]) -> float:
    """Share of exp(log-likelihood) on the true options (a max-shifted softmax: same value, no underflow)."""
    ll = np.asarray(lls, dtype=float)
    p = np.exp(ll - ll.max())
    return float(p[np.asarray(labels) == 1].sum() / p.sum())


# --- data ------------------------------------------------------------------------------------------------
def _options(path, targets, name: str, question: str) -> list[dict]:
    if not isinstance(targets, dict) or not targets or not any(v == 1 for v in targets.values()):
        raise InputError(path, f"question {question!r}: {name!r} must be a non-empty object with a true option")
    if any(v not in (0, 1) for v in targets.values()):
        raise InputError(path, f"question {question!r}: {name!r} labels must be 0 or 1")
    return [{"text": t, "label": int(v)} for t, v in targets.items()]


def load_questions(data: str | None, split: str, limit: int | None = None) -> tuple[Path, list[dict]]:
    """(mc_task.json path, [{id, question, split, mc1: [{text, label}], mc2: [...]}]) in split order."""
    from selfalign.data.mc import _truthfulqa_dir, load_truthfulqa_mc

    path = Path(data) if data else _truthfulqa_dir() / "mc_task.json"
    base = load_truthfulqa_mc(path, split)  # ids (those of TruthfulQA.csv), split order, file checks
    raw = {ex["question"].strip(): ex for ex in read_json(path)}  # load_truthfulqa_mc checked the entries
    out = []
    for r in base[:limit] if limit else base:
        ex = raw[r["question"]]
        out.append({"id": str(r["id"]), "question": ex["question"], "split": split,
                    "mc1": _options(path, ex.get("mc1_targets"), "mc1_targets", r["question"]),
                    "mc2": _options(path, ex.get("mc2_targets"), "mc2_targets", r["question"])})
    if not out:
        raise SelfAlignError(f"{path}: no questions selected (split {split!r})")
    return path, out


# --- evaluation ------------------------------------------------------------------------------------------
def score_questions(engine, qs: list[dict], cfg: TruthfulQAMCConfig, scorer: str) -> list[dict]:
    """One row per question: log-likelihoods of every option (each distinct text scored once), MC1, MC2,
    the model's likelihood answer and, with ``cfg.selfeval``, P(True) of the MC1 options."""
    from selfalign.selfeval import ptrue

    texts = list(dict.fromkeys((q["question"], o["text"]) for q in qs for o in q["mc1"] + q["mc2"]))
    lls = dict(zip(texts, (s for s, _ in engine.loglikelihood([P.truthfulqa_mc_pair(*t) for t in texts]))))
    pt = []
    if cfg.selfeval:
        items = [(q["question"], o["text"]) for q in qs for o in q["mc1"]]
        pt = [x.p_true for x in ptrue.p_true(engine, items, SelfEvalPrompt.of(cfg))]
    rows, k = [], 0
    for q in qs:
        l1 = [lls[(q["question"], o["text"])] for o in q["mc1"]]
        l2 = [lls[(q["question"], o["text"])] for o in q["mc2"]]
        lab1 = [o["label"] for o in q["mc1"]]
        row = {"id": q["id"], "question": q["question"], "split": q["split"],
               "mc1": mc1_score(l1, lab1), "mc2": mc2_score(l2, [o["label"] for o in q["mc2"]]),
               "answer": q["mc1"][int(np.argmax(l1))]["text"], "mc1_lls": l1, "mc2_lls": l2,
               "reference": next(o["text"] for o in q["mc1"] if o["label"])}
        if cfg.selfeval:
            p = pt[k:k + len(l1)]
            k += len(l1)
            top = int(np.argmax(p))
            row.update(selfeval_mc1=float(bool(lab1[top])), selfeval_answer=q["mc1"][top]["text"], mc1_p_true=p)
        rows.append({**row, "scorer": scorer})
    return rows


def _check_scorer(path: Path, ids: set, scorer: str) -> None:
    if not path.exists():
        return
    for r in iter_jsonl(path):
        if str(r.get("id")) in ids and r.get("scorer") != scorer:
            raise SelfAlignError(f"{path}: rows were scored by {r.get('scorer')!r}, not {scorer!r}; "
                                 f"choose another --output or delete that file")


def run_truthfulqa_mc(cfg: TruthfulQAMCConfig, engine=None) -> dict:
    """Score every question of the split (resuming finished rows), then write the summary JSON."""
    require(cfg, "output")
    data_path, qs = load_questions(cfg.data, cfg.split, cfg.limit)
    with result_guard(cfg, inputs=[data_path, cfg.bow_labels]) as g:  # before the model loads: never written over
        return _truthfulqa_mc(cfg, engine, g, data_path, qs)


def _truthfulqa_mc(cfg: TruthfulQAMCConfig, engine, g, data_path: Path, qs: list[dict]) -> dict:
    rp = rows_path(cfg.output)
    bow = answer_style.read_label_rows(cfg.bow_labels) if cfg.bow_labels else None  # bad file: before any work
    engine = engine or make_engine(cfg.engine, **cfg.engine_kwargs())
    tid = SelfEvalPrompt.of(cfg).template_id if cfg.selfeval else None
    scorer = f"model={engine.info.get('model')};adapter={cfg.adapter};{P.TRUTHFULQA_MC_TEMPLATE_ID};selfeval={tid}"
    t0, n_new = time.time(), 0
    run_meta = meta(cfg, stage=f"eval {TASK}", model_info=engine.info, mc_template=P.TRUTHFULQA_MC_TEMPLATE_ID,
                    selfeval_template=tid, harness=HARNESS)
    with TrackedOutput(rp, lambda r: str(r["id"]), settings_of(cfg, ignore=("bow_labels",)),
                       guard=g) as out:  # opening it cuts a partial last line
        _check_scorer(rp, {q["id"] for q in qs}, scorer)
        out.record(run_meta)
        todo = out.todo(qs, lambda q: [str(q["id"])])  # an edited question is scored again

        def score(part: list[dict]) -> list[dict]:
            return [stamp(r, q) for r, q in zip(score_questions(engine, part, cfg, scorer), part)]

        # cfg.batch_size // 2 questions per write (about 12 options each)
        n_new = run_chunks(out, todo, cfg.batch_size // 2, score, TASK, "question")
    stored = {str(r["id"]): r for r in iter_jsonl(rp)}
    rows = [stored[q["id"]] for q in qs]
    metrics = ["mc1", "mc2"] + (["selfeval_mc1"] if cfg.selfeval else [])
    extra = style_and_bow(rows, qs, metrics, bow, cfg)
    summary = save_result(cfg.output, TASK, rows, [*metrics, *extra.pop("metrics")], run_meta, n_boot=cfg.n_boot,
                          seed=cfg.bootstrap_seed, guard=g, data=str(data_path), split=cfg.split, n_questions=len(rows),
                          **extra)
    res = {m: summary["metrics"][m]["value"] for m in metrics + (["bow_mc1"] if bow else [])}
    return {"output": cfg.output, "questions": len(rows), "new_rows": n_new, "skipped_rows": len(rows) - n_new,
            **res, "seconds": round(time.time() - t0, 2)}


def style_and_bow(rows: list[dict], qs: list[dict], metrics: list[str], bow, cfg: TruthfulQAMCConfig) -> dict:
    """The rows annotated in place (``answer_style.annotate``: the style split; with ``bow``, the rows of
    ``--bow-labels``: the baseline's ``bow_mc1``): {metrics: the added metric names, answer_style, and with bow:
    bow_labels, selfeval_vs_bow}."""
    added = answer_style.annotate(rows, qs, [m for m in metrics if m != "mc2"])
    out = {"metrics": added, "answer_style": {"true_hedged": sum(r["true_style"] == "hedged" for r in rows),
                                              "true_plain": sum(r["true_style"] == "plain" for r in rows),
                                              "option_flags": answer_style.flag_shares(qs, "mc1")}}
    if bow is None:
        return out
    labels = [int(r["label"]) for r in bow]
    picks = {p["id"]: p for p in answer_style.bow_select(answer_style.fit_bow([r["proposal"] for r in bow], labels),
                                                         qs)}
    options = {q["id"]: q["mc1"] for q in qs}
    for r in rows:
        p = picks[str(r["id"])]
        r.update(bow_mc1=p["bow_mc1"], bow_answer=options[str(r["id"])][p["bow_choice"]]["text"])
    out["metrics"].append("bow_mc1")
    # were the rows' prompts this evaluation's Self-Eval prompt? (rows built 0-shot and read 5-shot: not the same)
    prompt = SelfEvalPrompt.of(cfg)
    same = [r["prompt"] == prompt.text(r["question"], r["proposal"]) for r in bow
            if isinstance(r.get("prompt"), str) and isinstance(r.get("question"), str)]
    out["bow_labels"] = {"file": str(cfg.bow_labels), "rows": len(labels), "true": sum(labels),
                         "model": "CountVectorizer(binary) + LogisticRegression(C=1)",
                         "rows_prompt_is_selection_prompt": sum(same) / len(same) if same else None}
    if cfg.selfeval:  # the selection against the baseline, paired on the same questions
        base = [{"id": r["id"], "selfeval_mc1": r["bow_mc1"]} for r in rows]
        out["selfeval_vs_bow"] = compare(rows, base, "selfeval_mc1", n_boot=cfg.n_boot, seed=cfg.bootstrap_seed)
    return out
