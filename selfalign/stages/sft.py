"""sft: supervised fine-tuning on prompt/completion rows through TRL's SFTTrainer (LoRA by default), the control
that separates a self-alignment gain from plain supervision: the gold facts a judge was tuned on, taught directly.

``--data`` is a JSONL of {prompt, completion}; the loss is on the completion only (TRL's ``completion_only_loss``
for prompt/completion rows), and TRL ends each completion with the end-of-text token, as its DPO trainer does with
an answer. With ``--from-sk`` the file is an ``sk-data`` file of a generative BIG-bench task (qa_wikidata) and the
rows are built from it (``gold_rows``): for each question with a gold (label 1) row, the knowledge-QA prompt of
that question exactly as ``eval knowledge-qa`` and ``sample --input bigbench:TASK`` render it (3 demonstrations and
the statement, under ``--split-by``) and the gold answer continuing it (" Nairobi", ``pairs.continuation``). A
question that knowledge QA holds out under that split is refused: training on it would train on the evaluation.

The output folder is a model spec as ``align``'s is (an adapter + ``selfalign_base.json``, or with ``--merge`` a
model), with ``train_summary.json``, ``train_log.jsonl``, a model card and ``sft_rows.jsonl`` (the rows trained
on). Checkpoints are written every ``--save-steps``; a killed run resumes from the last one, a finished one is not
redone. Held-out rows (``--eval-data``, ``--eval-fraction``) are evaluated by TRL and their metrics logged.
"""
from __future__ import annotations

import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from selfalign.config import ModelArgs, opt, require
from selfalign.errors import InputError, SelfAlignError
from selfalign.store.io import iter_jsonl, line_numbers, read_jsonl, write_json, write_jsonl_atomic
from selfalign.store.guard import OutputGuard
from selfalign.store.provenance import meta
from selfalign.training import trl_run
from selfalign.training.lora import LOG, SUMMARY, LoraArgs, config_dict, finished_run
from selfalign.training.trl_args import OWNED
from selfalign.training.trl_run import CKPT, NEWER_DEFAULTS, TrainArgs, last

ROWS = "sft_rows.jsonl"
NEWER = {"eval_data": None, **NEWER_DEFAULTS}  # keys added after runs were made: left out at their default
LOGGED = ("loss", "mean_token_accuracy", "num_tokens", "learning_rate", "grad_norm")


@dataclass
class SFTConfig(TrainArgs, LoraArgs, ModelArgs):
    STAGE = "sft"
    TRL_NAME = "SFTConfig"
    TRL_OWNED = {k: v for k, v in OWNED.items() if k not in ("beta", "loss_type", "loss_weights")}

    data: Optional[str] = opt(None, "training rows JSONL: {prompt, completion}, or with --from-sk an sk-data file")
    output: Optional[str] = opt(None, "output directory: an adapter (+ selfalign_base.json) or, with --merge, a model")
    from_sk: bool = opt(False, "--data is an sk-data file of a generative BIG-bench task: train on its gold facts, "
                               "each as its knowledge-QA prompt + the gold answer")
    split_by: str = opt("question", "with --from-sk: the knowledge-QA split whose prompts (demonstrations) are "
                                    "rendered and whose held-out questions are refused", choices=("question", "subject"))
    merge: bool = opt(False, "merge the adapter into the base weights and save a full model")
    batch_size: int = opt(4, "rows per device per step", min=1)
    eval_data: Optional[str] = opt(None, "held-out {prompt, completion} rows JSONL for TRL's evaluation (eval_loss, "
                                         "eval_mean_token_accuracy in the step log); or --eval-fraction")

    @staticmethod
    def trl_class():
        from trl import SFTConfig as TRLSFTConfig

        return TRLSFTConfig


# --- data --------------------------------------------------------------------------------------------------
def load_rows(path: str) -> list[dict]:
    rows = read_jsonl(path, required=["prompt", "completion"])  # and of type text (io.FIELDS)
    for r, n in zip(rows, line_numbers(path)):
        if not r["completion"].strip():
            raise InputError(path, "an empty completion: nothing to train on", n)
    return [{"prompt": r["prompt"], "completion": r["completion"]} for r in rows]


def gold_rows(path: str, split_by: str = "question") -> list[dict]:
    """{prompt, completion, id, question, task} for each question with a gold (label 1) row in an sk-data file of
    a generative BIG-bench task: its knowledge-QA training prompt (``load_knowledge_qa``) and the gold answer
    (the row's ``proposal``) continuing it; one row per question, in the file's order."""
    from selfalign.data.knowledge_qa import load_knowledge_qa, questions
    from selfalign.stages.pairs import continuation

    rows = read_jsonl(path, required=["question", "proposal", "label"], fields=["id"])
    prompts: dict = {}
    out, seen = [], set()
    for r, n in zip(rows, line_numbers(path)):
        if r["label"] != 1:
            continue
        src = str(r.get("source") or "")
        task = str(r.get("task") or src.removeprefix("bigbench:"))
        if not src.startswith("bigbench:") or not task:
            raise InputError(path, "--from-sk needs sk-data rows of a generative BIG-bench task (source "
                                   f"bigbench:TASK, e.g. bigbench:qa_wikidata), not {src or 'no source'!r}", n)
        if task not in prompts:
            split = {q["question"]: q["split"] for q in questions(task, split_by)}
            prompts[task] = (split, {p["question"]: p for p in load_knowledge_qa(task, "train", split_by=split_by)})
        split, by_text = prompts[task]
        text = r["question"].strip()
        if split.get(text) is None:
            raise InputError(path, f"{text!r} is no generative question of bigbench:{task}", n)
        if split[text] != "train":
            raise InputError(path, f"{text!r} is held out from knowledge QA under --split-by {split_by}: "
                                   "training on its gold answer would train on the evaluation", n)
        if text in seen:
            continue
        seen.add(text)
        p = by_text[text]
        out.append({"prompt": p["prompt"], "completion": continuation(p["prompt"], r["proposal"].strip()),
                    "id": p["id"], "question": text, "task": task})
    if not out:
        raise InputError(path, "no gold (label 1) rows: nothing to train on")
    return out


# --- training ----------------------------------------------------------------------------------------------
def run_sft(cfg: SFTConfig) -> dict:
    """Train; the output directory is a model spec usable by every other command."""
    require(cfg, "data", "output")
    if cfg.adapter and cfg.lora and not cfg.merge:
        raise SelfAlignError("--adapter with a new LoRA adapter: pass the adapter directory as --model instead "
                             "(it names its base), or use --merge")
    with OutputGuard(cfg.output, folder=True, inputs=[cfg.data, cfg.eval_data]):
        return _sft(cfg)


def _sft(cfg: SFTConfig) -> dict:
    out = Path(cfg.output)
    done = finished_run(out, cfg, "sft", NEWER)
    if done:
        return {**{k: done[k] for k in ("output", "steps", "rows", "final", "eval") if k in done}, "resumed": True,
                "note": "finished earlier with the same config; nothing trained"}
    from selfalign.training.heldout import eval_rows

    rows, held = eval_rows(gold_rows(cfg.data, cfg.split_by) if cfg.from_sk else load_rows(cfg.data),
                           load_rows(cfg.eval_data) if cfg.eval_data else None, cfg.eval_fraction, cfg.seed, "sft",
                           "rows")
    import torch  # (after the checks: a bad input is reported without importing TRL)
    from datasets import Dataset, disable_progress_bars

    from selfalign import models
    from selfalign.store.progress import quiet_trainer
    from selfalign.training.loading import full_finetune

    torch.manual_seed(cfg.seed)
    steps = cfg.max_steps or math.ceil(math.ceil(len(rows) / cfg.batch_size) / cfg.grad_accum * cfg.epochs)
    args = trl_run.training_args(cfg, out, steps, models.pick_device(cfg.device), evaluate=bool(held))
    model, tok = trl_run.load_model(cfg, args)
    if not cfg.lora:
        full_finetune(model, trl_run.sharded_run(), reference=False)
    info = dict(model.selfalign_spec)
    out.mkdir(parents=True, exist_ok=True)
    write_jsonl_atomic(out / ROWS, rows)
    resume = trl_run.last_checkpoint(out)
    resume_step = int(resume.name.split("-")[-1]) if resume else 0
    disable_progress_bars()  # TRL's tokenising map() would draw a \r bar per dataset
    from trl import SFTTrainer

    def dataset(rs):
        return Dataset.from_list([{"prompt": r["prompt"], "completion": r["completion"]} for r in rs])

    with trl_run.tracker_logs(out, cfg.report_to):  # (TensorBoard's callback reads its folder when it is made)
        try:
            trainer = SFTTrainer(model=model, args=args, processing_class=tok, train_dataset=dataset(rows),
                                 eval_dataset=dataset(held) if held else None,
                                 peft_config=cfg.lora_config() if cfg.lora else None,
                                 callbacks=[trl_run.step_logger(out / LOG, resume_step, LOGGED)]
                                 if args.process_index == 0 else [])
        except ValueError as e:
            raise SelfAlignError(f"cannot set up SFT on {cfg.model!r}: {str(e).splitlines()[0]}") from None
        sharded = trainer.is_deepspeed_enabled or trainer.is_fsdp_enabled
        if sharded and cfg.lora and cfg.merge:
            raise SelfAlignError("--merge under ZeRO-3 / FSDP: train the adapter, then merge it in one process")
        quiet_trainer(trainer, "sft")
        t0 = time.time()
        trl_run.fit(trainer, resume, evaluate=bool(held))
    if sharded:  # gathering the shards is collective: every process calls it, the main one writes
        trainer.save_model(str(out))
    if not trainer.is_world_process_zero():
        return {"output": str(out), "rank": trainer.args.process_index}
    log = list(iter_jsonl(out / LOG)) if (out / LOG).exists() else []
    from selfalign.training.adapters import save_adapter

    saved = save_adapter(trainer.model, tok, out, base_spec=cfg.model, lora=cfg.lora, merged=cfg.lora and cfg.merge,
                         card=_card(cfg, len(rows), log), weights=not sharded)
    summary = {"output": str(out), "finished": True, "steps": trainer.state.global_step, "rows": len(rows),
               "resumed_from_step": resume_step, "saved": saved, "final": last(log),
               "first": next((r for r in log if "loss" in r), {}),
               **({"eval_rows": len(held), "eval": last(log, "eval_loss")} if held else {}),
               "seconds": round(time.time() - t0, 2)}
    write_json(out / SUMMARY, {**meta(cfg, stage="sft", model_info=info), **summary,
                               "config": config_dict(cfg, NEWER)})
    shutil.rmtree(out / CKPT, ignore_errors=True)
    if cfg.push_to_hub:
        summary["hub"] = trl_run.push(out, cfg.trl or {}, "sft")
    return summary


def _card(cfg: SFTConfig, n_rows: int, log: list[dict]):
    from selfalign.training.adapters import ModelCard

    data = f"{n_rows} prompt/completion rows from `{Path(cfg.data).name}`"
    if cfg.from_sk:
        data += (f" (the gold answers of its sk-data label-1 rows, each after its knowledge-QA prompt, --split-by "
                 f"{cfg.split_by})")
    hp = {k: getattr(cfg, k) for k in ("learning_rate", "epochs", "max_steps", "batch_size", "grad_accum",
                                       "max_length", "warmup_steps", "seed")}
    if cfg.lora:
        hp.update(lora_r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                  target_modules=", ".join(cfg.target_modules))
    hp.update({k: getattr(cfg, k) for k in ("attn_implementation", "load_in_4bit") if getattr(cfg, k)})
    hp.update({f"trl.{k}": v for k, v in (cfg.trl or {}).items()})
    end, ev = last(log), last(log, "eval_loss")
    training = {"optimizer steps": end.get("step"), "rows": n_rows,
                **{k: end[k] for k in ("loss", "mean_token_accuracy") if k in end},
                **({"held-out loss": ev["eval_loss"]} if ev else {})}
    return ModelCard(method="supervised fine-tuning (TRL `SFTTrainer`, loss on the completion only): a control of "
                            "self-alignment, not self-alignment", data=data, hyperparameters=hp,
                     training={k: v for k, v in training.items() if v is not None})
