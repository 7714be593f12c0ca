"""Stage 4, align: DPO on the Self-Eval preference pairs, through TRL's DPOTrainer.

The reference model is the base model (with LoRA: the same weights with the adapter switched off, so no second
copy is held). Checkpoints are written every ``--save-steps``; a killed run resumes from the last one.
"""
from __future__ import annotations

import dataclasses
import json
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from selfalign.config import ModelArgs, opt, require
from selfalign.errors import SelfAlignError
from selfalign.io import line_numbers, read_jsonl, write_json
from selfalign.provenance import meta

SUMMARY = "train_summary.json"
LOG = "train_log.jsonl"
CKPT = "checkpoints"
LOGGED = ("loss", "rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "logps/chosen",
          "logps/rejected", "learning_rate", "grad_norm")


@dataclass
class AlignConfig(ModelArgs):
    pairs: Optional[str] = opt(None, "preference pairs JSONL (prompt, chosen, rejected; from `selfalign pairs`)")
    output: Optional[str] = opt(None, "output directory: an adapter (+ selfalign_base.json) or, with --merge, a model")
    beta: float = opt(0.1, "DPO beta")
    loss_type: str = opt("sigmoid", "TRL DPO loss type (sigmoid = the DPO paper's loss)")
    lora: bool = opt(True, "train a LoRA adapter (--no-lora: full fine-tuning)")
    lora_r: int = opt(8, "LoRA rank")
    lora_alpha: int = opt(16, "LoRA alpha")
    lora_dropout: float = opt(0.0, "LoRA dropout")
    target_modules: list[str] = opt(["q_proj", "k_proj", "v_proj", "o_proj"], "LoRA target modules")
    merge: bool = opt(False, "merge the adapter into the base weights and save a full model")
    learning_rate: float = opt(5e-5, "AdamW learning rate")
    epochs: float = opt(1.0, "passes over the pairs")
    max_steps: Optional[int] = opt(None, "stop after this many optimizer steps (overrides --epochs)")
    batch_size: int = opt(4, "pairs per device per step")
    grad_accum: int = opt(1, "batches per optimizer step")
    max_length: int = opt(1024, "truncate prompt+response to this many tokens (the end is cut)")
    warmup_steps: float = opt(0, "linear learning-rate warm-up: N steps, or a fraction of all steps if < 1")
    save_steps: int = opt(25, "write a resumable checkpoint every N steps")
    bf16: str = opt("auto", "bfloat16 mixed precision: auto (on with a GPU that supports it), on, off")
    gradient_checkpointing: str = opt("auto", "auto (on with a GPU), on, off")
    seed: int = opt(0, "seed of the data order and the adapter initialisation")


# --- data --------------------------------------------------------------------------------------------------
def load_pairs(path: str) -> list[dict]:
    from selfalign.errors import InputError

    rows = read_jsonl(path, required=["prompt", "chosen", "rejected"])
    for r, n in zip(rows, line_numbers(path)):
        for k in ("prompt", "chosen", "rejected"):
            if not isinstance(r[k], str):
                raise InputError(path, f"{k!r} must be text, got {type(r[k]).__name__}", n)
        if r["chosen"] == r["rejected"]:
            raise InputError(path, "chosen and rejected are identical", n)
    if not rows:
        raise InputError(path, "no preference pairs: nothing to train on (did every prompt get identical samples?)")
    return [{"prompt": r["prompt"], "chosen": r["chosen"], "rejected": r["rejected"]} for r in rows]


# --- run state ---------------------------------------------------------------------------------------------
def _config_dict(cfg) -> dict:
    d = json.loads(json.dumps(dataclasses.asdict(cfg), default=str))
    d.pop("batch_size_eval", None)
    return d


def finished(out: Path, cfg) -> Optional[dict]:
    """The summary of a finished run with this config (None if unfinished); an error for another config."""
    try:
        s = json.loads((out / SUMMARY).read_text())
    except (OSError, ValueError):
        return None
    if s.get("finished") and s.get("config") == _config_dict(cfg):
        return s
    raise SelfAlignError(f"{out}: holds an align run with another config; use a new --output or delete it")


def _last_checkpoint(out: Path) -> Optional[Path]:
    """The newest complete checkpoint: the Trainer writes trainer_state.json last, so one that parses is whole."""
    def step(p: Path) -> int:
        tail = p.name.rsplit("-", 1)[-1]
        return int(tail) if tail.isdigit() else -1

    for ckpt in sorted((out / CKPT).glob("checkpoint-*"), key=step, reverse=True):
        try:
            json.loads((ckpt / "trainer_state.json").read_text())
            return ckpt
        except (OSError, ValueError):
            continue
    return None


def _flag(value: str, name: str, gpu: bool) -> bool:
    if value not in ("auto", "on", "off"):
        raise SelfAlignError(f"--{name} must be auto, on or off, not {value!r}")
    return gpu if value == "auto" else value == "on"


def _step_logger(path: Path, resume_step: int):
    """A TrainerCallback that appends one JSON line per logged step (reward margins, accuracies, loss)."""
    from transformers import TrainerCallback

    if path.exists():  # keep the lines up to the checkpoint we resume from; later ones are redone
        kept = [ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln)["step"] <= resume_step]
        path.write_text("".join(ln + "\n" for ln in kept))

    class StepLog(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kw):
            rec = {"step": state.global_step, **{k: logs[k] for k in LOGGED if k in (logs or {})}}
            if "loss" in rec or "rewards/margins" in rec:
                with open(path, "a", encoding="utf-8") as f:
                    f.write(json.dumps(rec) + "\n")

    return StepLog()


# --- training ----------------------------------------------------------------------------------------------
def run_align(cfg: AlignConfig) -> dict:
    """Train; the output directory is a model spec usable by every other command."""
    import torch
    from datasets import Dataset
    from datasets import disable_progress_bars
    from trl import DPOConfig, DPOTrainer

    from selfalign import models
    from selfalign.progress import quiet_trainer

    require(cfg, "pairs", "output")
    for name in ("batch_size", "grad_accum", "lora_r", "save_steps"):
        if getattr(cfg, name) < 1:
            raise SelfAlignError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(cfg, name)}")
    if cfg.adapter and cfg.lora and not cfg.merge:
        raise SelfAlignError("--adapter with a new LoRA adapter: pass the adapter directory as --model instead "
                             "(it names its base), or use --merge")
    out = Path(cfg.output)
    done = finished(out, cfg) if (out / SUMMARY).exists() else None
    if done:
        return {**{k: done[k] for k in ("output", "steps", "pairs", "final") if k in done}, "resumed": True,
                "note": "finished earlier with the same config; nothing trained"}
    rows = load_pairs(cfg.pairs)
    torch.manual_seed(cfg.seed)
    model, tok = models.load(cfg.model, adapter=cfg.adapter, device=cfg.device, dtype=cfg.dtype,
                             trust_remote_code=cfg.trust_remote_code, merge_adapters=True)
    info = dict(model.selfalign_spec)
    tok.padding_side = "left"
    gpu = next(model.parameters()).device.type == "cuda"
    bf16 = _flag(cfg.bf16, "bf16", gpu and torch.cuda.is_bf16_supported())
    peft_config = None
    if cfg.lora:
        from peft import LoraConfig

        peft_config = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                                 target_modules=list(cfg.target_modules), task_type="CAUSAL_LM")
    out.mkdir(parents=True, exist_ok=True)
    resume = _last_checkpoint(out)
    resume_step = int(resume.name.split("-")[-1]) if resume else 0
    steps = cfg.max_steps or math.ceil(math.ceil(len(rows) / cfg.batch_size) / cfg.grad_accum * cfg.epochs)
    args = DPOConfig(
        output_dir=str(out / CKPT), beta=cfg.beta, loss_type=[cfg.loss_type], learning_rate=cfg.learning_rate,
        num_train_epochs=cfg.epochs, max_steps=steps, per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum, max_length=cfg.max_length, warmup_steps=cfg.warmup_steps,
        bf16=bf16, use_cpu=not gpu and next(model.parameters()).device.type == "cpu",
        gradient_checkpointing=_flag(cfg.gradient_checkpointing, "gradient-checkpointing", gpu),
        logging_steps=1, save_strategy="steps", save_steps=cfg.save_steps, save_total_limit=2, seed=cfg.seed,
        data_seed=cfg.seed, report_to=[], disable_tqdm=True, dataloader_num_workers=0)
    disable_progress_bars()  # TRL's tokenising map() would draw a \r bar per dataset
    try:
        trainer = DPOTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tok,
                             peft_config=peft_config,
                             callbacks=[_step_logger(out / LOG, resume_step)] if args.process_index == 0 else [])
    except ValueError as e:
        raise SelfAlignError(f"cannot set up DPO on {cfg.model!r}: {str(e).splitlines()[0]}") from None
    quiet_trainer(trainer, "align")  # one progress line as the other stages print, not TRL's per-step dicts
    t0 = time.time()
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    if not trainer.is_world_process_zero():  # with several processes, rank 0 alone writes the results
        return {"output": str(out), "rank": trainer.args.process_index}
    final = _save(trainer, tok, out, cfg)
    log = [json.loads(ln) for ln in (out / LOG).read_text().splitlines() if ln.strip()]
    summary = {"output": str(out), "finished": True, "steps": trainer.state.global_step, "pairs": len(rows),
               "resumed_from_step": resume_step, "saved": final, "final": log[-1] if log else {},
               "seconds": round(time.time() - t0, 2)}
    write_json(out / SUMMARY, {**meta(cfg, stage="align", model_info=info), **summary,
                               "config": _config_dict(cfg)})
    shutil.rmtree(out / CKPT, ignore_errors=True)
    return summary


def _save(trainer, tok, out: Path, cfg: AlignConfig) -> str:
    from selfalign.models import BASE_FILE

    model = trainer.model
    if cfg.lora and cfg.merge:
        model = model.merge_and_unload()
        model.save_pretrained(out, safe_serialization=True)
        tok.save_pretrained(out)
        return "merged model"
    model.save_pretrained(out, safe_serialization=True)
    if cfg.lora:  # the adapter's base: the spec we trained on
        (out / BASE_FILE).write_text(json.dumps({"base_model": cfg.model}))
        return "adapter"
    tok.save_pretrained(out)
    return "full model"
