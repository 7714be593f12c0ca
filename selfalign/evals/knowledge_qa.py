"""Knowledge QA: greedy answers to held-out few-shot prompts of a generative BIG-bench task (``bigbench:qa_wikidata``),
scored against the gold targets.

Per prompt (``knowledge_qa_metrics``): ``accuracy``, the headline (1 if the answer's first clause is a gold target
after normalisation and it names no other candidate, ``text.strict_match``; an abstention counts 0),
``accuracy_lenient`` (one contains the other as whole words, ``text.match_targets``: "Paris or Lyon" counts),
``answered_accuracy`` (strict, over answers that are not abstentions), ``abstain``
(an empty answer or an "I don't know"), ``length`` (words) and, with ``selfeval``, ``selfeval``: the Self-Eval
P(True) of the answer by a fixed judge (``--verifier``; the recipe runner sets it to the base model, so every
compared model is judged by the same judge: the score DPO optimised). Intervals: bootstrap over prompts.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional

from selfalign.config import ModelArgs, ParallelArgs, opt, require
from selfalign.errors import SelfAlignError
from selfalign.engines import GenerationConfig, make_engine
from selfalign.evals.knowledge_qa_metrics import METRICS, abstains, score_answer, upgrade_rows  # noqa: F401
from selfalign.evals.results import result_guard, rows_path, save_result
from selfalign.store.io import iter_jsonl
from selfalign.store.lineage import TrackedOutput, settings_of, stamp
from selfalign.store.progress import run_chunks
from selfalign.store.provenance import meta
from selfalign.selfeval.prompt import SelfEvalArgs, SelfEvalPrompt

TASK = "knowledge-qa"


@dataclass
class KnowledgeQAConfig(SelfEvalArgs, ParallelArgs, ModelArgs):
    output: Optional[str] = opt(None, "summary JSON; per-prompt rows go beside it (<name>.rows.jsonl, resumable)")
    data: str = opt("bigbench:qa_wikidata", "a generative BIG-bench task with gold targets (bigbench:TASK)",
                    pattern=r"bigbench:.+")
    split: str = opt("heldout", "heldout (never a training prompt nor a demonstration) or train",
                     choices=("heldout", "train"))
    split_by: str = opt("question", "hold out questions (by hash) or subjects (no fact about a held-out subject, "
                                    "under any relation, in a training prompt or demonstration)",
                        choices=("question", "subject"))
    limit: Optional[int] = opt(None, "use only the first N prompts of the split (a spread fixed by hash)", min=1)
    max_new_tokens: int = opt(16, "tokens per answer at most (the answer stops at the end of its line)", min=1)
    selfeval: bool = opt(True, "also score each answer's Self-Eval P(True) by --verifier")
    verifier: Optional[str] = opt(None, "the Self-Eval judge (model spec; default: the evaluated model itself; "
                                        "`selfalign run` sets the recipe's base model)")
    n_boot: int = opt(1000, "bootstrap resamples (of prompts) for the 95 percent intervals; 0 = none", min=0)
    seed: int = opt(0, "bootstrap seed", min=0)
    batch_size: int = opt(16, "rows per forward pass", min=1)
    overwrite: bool = opt(False, "start afresh (the rows file and the result are moved aside) instead of resuming")


def relation_majority(task: str = "qa_wikidata", limit: Optional[int] = None, n_boot: int = 1000,
                      split_by: str = "question") -> dict:
    """The no-model shortcut: answer each held-out prompt (the first ``limit``, as ``--limit`` picks them) with the
    most frequent gold answer of its relation among the training prompts ("The genre of X is" -> the commonest
    genre), scored as the eval scores an answer. {value, ci_low, ci_high, n}: a model's accuracy means something
    only above it."""
    from collections import Counter

    import numpy as np

    from selfalign.data.knowledge_qa import load_knowledge_qa
    from selfalign.metrics import bootstrap_ci
    from selfalign.data.relations import relation

    votes: dict = {}
    for q in load_knowledge_qa(task, "train", split_by=split_by):
        votes.setdefault(relation(q), Counter())[q["targets"][0]] += 1
    overall = Counter(t for c in votes.values() for t in c.elements()).most_common(1)[0][0]
    held = load_knowledge_qa(task, "heldout", split_by=split_by)
    held = held[:limit] if limit else held
    acc = [score_answer((votes.get(relation(q)) or Counter({overall: 1})).most_common(1)[0][0],
                        q["targets"])["accuracy"] for q in held]
    v, lo, hi = bootstrap_ci(lambda x: float(np.mean(x)), np.asarray(acc, dtype=float), n_boot=n_boot, seed=0)
    return {"value": v, "ci_low": lo, "ci_high": hi, "n": len(acc)}


def run_knowledge_qa(cfg: KnowledgeQAConfig, engine=None, verifier=None) -> dict:
    """Answer every prompt of the split greedily (resuming finished rows), score, write rows + summary."""
    from selfalign.data.knowledge_qa import load_knowledge_qa

    require(cfg, "output")
    items = load_knowledge_qa(cfg.data.split(":", 1)[1], cfg.split, split_by=cfg.split_by)
    items = items[:cfg.limit] if cfg.limit else items
    if not items:
        raise SelfAlignError(f"{cfg.data}: no prompts in split {cfg.split!r}; nothing to evaluate")
    from selfalign.data.mc import bigbench_path

    # a directory in its place, the task file itself: one line now, before the model loads
    with result_guard(cfg, inputs=[bigbench_path(cfg.data.split(":", 1)[1])], ignore=("n_boot", "seed")) as g:
        return _knowledge_qa(cfg, engine, verifier, g, items)


def _knowledge_qa(cfg: KnowledgeQAConfig, engine, verifier, g, items: list[dict]) -> dict:
    from selfalign.selfeval import ptrue

    engine = engine or make_engine(cfg.engine, **cfg.engine_kwargs())
    judge = None
    if cfg.selfeval:  # the evaluated model itself unless another judge is named
        same = not cfg.verifier or (cfg.verifier == cfg.model and not cfg.adapter)
        judge = verifier or (engine if same else make_engine(cfg.engine, **{**cfg.engine_kwargs(),
                                                                            "model": cfg.verifier, "adapter": None}))
    gen = GenerationConfig(n=1, temperature=0.0, top_p=1.0, top_k=0, max_new_tokens=cfg.max_new_tokens, stop=["\n"])
    prompt = SelfEvalPrompt.of(cfg, chat=False)
    judge_id = (f"verifier={judge.info.get('model')};{prompt.template_id}" if judge is not None else None)
    scorer = f"model={engine.info.get('model')};adapter={cfg.adapter};{gen.params()};selfeval={judge_id}"
    rp = rows_path(cfg.output)

    def answer(batch: list[dict]) -> list[dict]:
        gens = engine.generate([it["prompt"] for it in batch], gen, seed=0)
        rows = [{"id": it["id"], "question": it["question"], "targets": it["targets"], "answer": g[0].text,
                 "n_tokens": g[0].n_tokens, **score_answer(g[0].text, it["targets"]), "scorer": scorer}
                for it, g in zip(batch, gens)]
        if judge is not None:
            live = [r for r in rows if r["answer"].strip()]
            pairs = [(r["question"], r["answer"]) for r in live]
            res = ptrue.p_true(judge, pairs, prompt) if live else []
            for r in rows:
                r["selfeval"] = None
            for r, x in zip(live, res):
                r["selfeval"] = x.p_true
        return [stamp(r, it) for r, it in zip(rows, batch)]

    t0 = time.time()
    # the rows' settings are checked on resume (a changed model, judge or prompt is refused); a changed prompt is redone
    with TrackedOutput(rp, lambda r: str(r["id"]), settings_of(cfg, ignore=("seed",)), guard=g) as out:
        out.record(meta(cfg, stage=f"eval {TASK}", model_info=engine.info, scorer=scorer, selfeval_template=prompt.template_id))
        todo = out.todo(items, lambda it: [str(it["id"])])
        n_new = run_chunks(out, todo, cfg.batch_size, answer, f"eval {TASK}", "prompt")
    stored = {str(r["id"]): r for r in iter_jsonl(rp)}
    rows = [stored[it["id"]] for it in items]
    upgrade_rows(rows)  # rows answered before strict match: scored as they are now (load_result does the same)
    metrics = list(METRICS) + (["selfeval"] if judge is not None else [])
    info = meta(cfg, stage=f"eval {TASK}", model_info=engine.info, generation=gen.params(), stop=gen.stop,
                verifier_info=judge.info if judge is not None else None, selfeval_template=prompt.template_id)
    summary = save_result(cfg.output, TASK, rows, metrics, info, n_boot=cfg.n_boot, seed=cfg.seed, guard=g,
                          data=cfg.data, split=cfg.split, n_prompts=len(rows))
    return {"output": cfg.output, "prompts": len(rows), "new_rows": n_new, "skipped_rows": len(rows) - n_new,
            **{m: summary["metrics"][m]["value"] for m in metrics}, "seconds": round(time.time() - t0, 2)}
