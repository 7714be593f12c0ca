"""TruthfulQA generation: answer each question (the paper's few-shot prompt, greedy), judge truth and
informativeness, report % true, % informative and % true*informative with bootstrap intervals."""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Optional


from selfalign.config import ModelArgs, ParallelArgs, opt, require
from selfalign.engines import GenerationConfig, make_engine
from selfalign.errors import InputError, SelfAlignError
from selfalign.evals.judges import make_judge
from selfalign.registry import JUDGES
from selfalign.evals.results import result_guard, rows_path, save_result
from selfalign.store.io import iter_jsonl, line_numbers, peek_json, read_jsonl
from selfalign.store.lineage import TrackedOutput, settings_of, stamp
from selfalign.store.provenance import meta
from selfalign.data.truthfulqa import SPLITS
from selfalign.store.progress import run_chunks
from selfalign.answering import CHAT_TEMPLATE, RAW_STOPS, answer_templates, render, resolve_prompting

TASK = "truthfulqa-gen"


@dataclass
class TruthfulQAGenConfig(ParallelArgs, ModelArgs):
    output: Optional[str] = opt(None, "result JSON; per-question rows go to <stem>.rows.jsonl (resumed on rerun)")
    split: str = opt("test", "TruthfulQA split of the paper (splits.json): test, valid, train, all", choices=SPLITS)
    data: Optional[str] = opt(None, "TruthfulQA CSV (splits.json beside it); default: the shared data, else the hub")
    limit: Optional[int] = opt(None, "first N questions only", min=1, hint="leave it out for all questions")
    template: str = opt("truthfulqa-paper", "answer prompt (see prompts.py): truthfulqa-paper, qa, plain",
                        choices=answer_templates)
    chat_template: str = opt("off", "wrap the prompt in the model's chat template: auto, on, off",
                             choices=CHAT_TEMPLATE)
    max_new_tokens: int = opt(64, "tokens per answer at most", min=1)
    temperature: float = opt(0.0, "sampling temperature (0 = greedy)", min=0)
    seed: int = opt(0, "sampling seed (used when --temperature > 0)", min=0)
    judge: str = opt("offline-ref", "offline-ref (reference-conditioned, validated), offline (MiniLM similarity + "
                                    "BLEU/ROUGE), lm-ref (local model shown the references), hf, openai",
                     choices=JUDGES.names)
    judge_model: Optional[str] = opt(None, "hf: truth judge model spec; openai: model name; offline: embedding dir")
    judge_info_model: Optional[str] = opt(None, "hf/openai: informativeness judge (default: 'not an abstention')")
    judge_endpoint: Optional[str] = opt(None, "openai: base URL of an OpenAI-compatible API (…/v1)")
    judge_api_key_env: str = opt("OPENAI_API_KEY", "openai: name of the environment variable holding the API key")
    judge_validation: Optional[str] = opt(None, "`eval judge-check` result of this judge (shown next to %True; "
                                                "default: the shipped figures of the offline judges)")
    answers: Optional[str] = opt(None, "judge this JSONL (id, question, response|answer) instead of generating, "
                                       "e.g. `selfalign sample` output; --split is not applied to it")
    n_boot: int = opt(1000, "bootstrap resamples for the 95% intervals; 0 = none", min=0, summary_only=True)
    bootstrap_seed: int = opt(0, "bootstrap seed", min=0, summary_only=True)
    overwrite: bool = opt(False, "answer and judge every question afresh (the rows beside --output and the result "
                                 "are moved aside)")


def _answer_items(cfg: TruthfulQAGenConfig) -> list[dict]:
    """Rows of an answers file (the lowest sample_idx of each id), with references from the row or TruthfulQA."""
    from selfalign.data.truthfulqa import load_truthfulqa

    rows = read_jsonl(cfg.answers, required=["id", "question", ("response", "answer")],
                      fields=["sample_idx", "response", "answer"])
    best: dict[str, tuple[dict, int]] = {}
    for r, line in zip(rows, line_numbers(cfg.answers)):
        key = str(r["id"])
        if key not in best or (r.get("sample_idx") or 0) < (best[key][0].get("sample_idx") or 0):
            best[key] = (r, line)
    refs = None
    items = []
    for key, (r, line) in best.items():
        if not (r.get("correct_answers") and r.get("incorrect_answers")):
            refs = refs or {t["question"]: t for t in load_truthfulqa(cfg.data, "all")}
            ref = refs.get(r["question"].strip())
            if ref is None:
                raise InputError(cfg.answers, "no correct_answers/incorrect_answers and the question is not in "
                                              "TruthfulQA", line)
            r = {**ref, **r, "correct_answers": ref["correct_answers"], "incorrect_answers": ref["incorrect_answers"]}
        for f in ("correct_answers", "incorrect_answers"):
            if not isinstance(r[f], list) or not all(isinstance(x, str) for x in r[f]):
                raise InputError(cfg.answers, f"{f} must be a list of strings", line)
        ans = r.get("response") if r.get("response") is not None else r.get("answer")
        items.append({**r, "id": key, "answer": ans})
    return items[:cfg.limit] if cfg.limit else items


def judge_validation(cfg: TruthfulQAGenConfig, judge) -> dict:
    """The judge's validation figures: from --judge-validation, else the shipped ones of an offline judge run with
    its bundled embedding model, else {"proxy": True, ...} (not validated)."""
    from selfalign.evals.judge_check import ASSET_VALIDATION, validation_summary

    if cfg.judge_validation:
        from selfalign.evals.results import load_result

        summary, _ = load_result(cfg.judge_validation)
        if summary.get("task") != "judge-check":
            raise InputError(cfg.judge_validation, "not a `selfalign eval judge-check` result")
        name = (summary.get("judge") or {}).get("name")
        if name != judge.name:
            raise InputError(cfg.judge_validation, f"validates judge {name!r}, not {judge.name!r}")
        return validation_summary(summary, source=str(cfg.judge_validation))
    shipped = peek_json(ASSET_VALIDATION, {})
    if judge.name in shipped and not cfg.judge_model:
        return shipped[judge.name]
    return {"judge": judge.name, "balanced_accuracy": None, "proxy": True, "source": None}


def _check_judge(path, judge: str) -> None:
    if not path.exists():
        return
    other = {r.get("judge") for r in iter_jsonl(path)} - {judge}
    if other:
        raise SelfAlignError(f"{path}: rows were judged by {sorted(map(str, other))}, not {judge!r}; "
                             f"use another --output")


def _earlier_meta(output, *keys) -> dict:
    earlier = peek_json(output)
    earlier = earlier.get("meta") if isinstance(earlier, dict) else None
    if not isinstance(earlier, dict):
        return {}
    return {k: earlier[k] for k in keys if earlier.get(k) is not None}


def _row(item: dict, answer: str, n_tokens, verdict, judge_name: str) -> dict:
    true, info, details = verdict
    return {"id": item["id"], "question": item["question"], "category": item.get("category"),
            "best_answer": item.get("best_answer"), "answer": answer, "n_tokens": n_tokens,
            "true": int(true), "info": int(info), "true_info": int(true and info), "judge": judge_name, **details}


def run_truthfulqa_gen(cfg: TruthfulQAGenConfig, engine=None, judge=None) -> dict:
    """Generate (or read) an answer per question, judge it, save rows + summary; returns a short summary."""
    from selfalign.data.truthfulqa import load_truthfulqa

    require(cfg, "output")
    judge_name = judge.name if judge is not None else cfg.judge
    if cfg.answers:
        items = _answer_items(cfg)
    else:
        items = load_truthfulqa(cfg.data, cfg.split)
        items = items[:cfg.limit] if cfg.limit else items
    if not items:
        raise SelfAlignError("no TruthfulQA questions selected")
    with result_guard(cfg, inputs=[cfg.answers, cfg.data, cfg.judge_validation]) as g:
        return _truthfulqa_gen(cfg, engine, judge, g, items, judge_name)


def _truthfulqa_gen(cfg: TruthfulQAGenConfig, engine, judge, g, items: list[dict], judge_name: str) -> dict:
    rp = rows_path(cfg.output)
    gen = GenerationConfig(n=1, temperature=cfg.temperature, top_p=1.0, top_k=0, max_new_tokens=cfg.max_new_tokens)
    prompting = {} if cfg.answers else {"prompt_template": cfg.template, "chat_template": cfg.chat_template,
                                        "generation": gen.params()}
    t0, n_new = time.time(), 0
    # opening it cuts a half-written last row before the check
    with TrackedOutput(rp, lambda r: str(r["id"]), settings_of(cfg), guard=g) as out:
        _check_judge(rp, judge_name)
        judge = judge or make_judge(cfg.judge, model=cfg.judge_model, info_model=cfg.judge_info_model,
                                    endpoint=cfg.judge_endpoint, api_key_env=cfg.judge_api_key_env,
                                    device=cfg.device, dtype=cfg.dtype, batch_size=cfg.batch_size,
                                    trust_remote_code=cfg.trust_remote_code)
        todo = out.todo(items, lambda it: [str(it["id"])])  # an edited question or answer is answered/judged again
        if todo and not cfg.answers:
            engine = engine or make_engine(cfg.engine, **cfg.engine_kwargs())
            tmpl, chat = resolve_prompting(engine, cfg.template, cfg.chat_template)
            gen.stop = [] if chat else RAW_STOPS
            prompting.update(prompt_template=tmpl.id, chat_template=chat)
        out.record(meta(cfg, task=TASK, model_info=getattr(engine, "info", None), answers_file=cfg.answers,
                        judge=judge.describe(), **prompting))

        def answer_and_judge(batch: list[dict]) -> list[dict]:
            if cfg.answers:
                answers = [(it["answer"], it.get("n_tokens")) for it in batch]
            else:
                gens = engine.generate([render(engine, it, tmpl, chat) for it in batch], gen, seed=cfg.seed)
                answers = [(g[0].text, g[0].n_tokens) for g in gens]
            verdicts = judge.judge_many([(it["question"], a, it["correct_answers"], it["incorrect_answers"])
                                         for it, (a, _) in zip(batch, answers)])
            return [stamp(_row(it, a, n, v, judge.name), it) for it, (a, n), v in zip(batch, answers, verdicts)]

        n_new = run_chunks(out, todo, cfg.batch_size, answer_and_judge, TASK, "question")
    wanted = {str(it["id"]) for it in items}
    rows = [r for r in read_jsonl(rp, required=["id"]) if str(r["id"]) in wanted]
    metrics = ["true", "info", "true_info", *judge.metrics]
    if engine is None and not cfg.answers:  # nothing left to generate: keep what the earlier run recorded
        prompting.update(_earlier_meta(cfg.output, "model_info", "prompt_template", "chat_template"))
    info = meta(cfg, task=TASK, model_info=getattr(engine, "info", None) or prompting.pop("model_info", None),
                answers_file=cfg.answers, judge=judge.describe(), **prompting)
    from selfalign.evals.judge_check import proxy_line

    validation = judge_validation(cfg, judge)
    summary = save_result(cfg.output, TASK, rows, metrics, info, n_boot=cfg.n_boot, seed=cfg.bootstrap_seed,
                          guard=g, judge=judge.name, judge_validation=validation,
                          split=None if cfg.answers else cfg.split)
    pct = summary["metrics"]["true"]["value"]
    print(f"eval truthfulqa-gen: %True {pct if pct is None else round(pct, 3)}; {proxy_line(validation)}",
          file=sys.stderr)
    return {"output": cfg.output, "rows": str(rp), "questions": len(rows), "new_rows": n_new,
            "seconds": round(time.time() - t0, 2), "judge": judge.name, "judge_proxy": validation["proxy"],
            "judge_balanced_accuracy": validation.get("balanced_accuracy"),
            **{m: summary["metrics"][m]["value"] for m in metrics}}
