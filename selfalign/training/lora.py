"""The training kit the two trainers share (``align``: TRL's DPO; ``sk-tune``: single-token DPO): the LoRA
flags, the output folder's file names and the finished-run check. Both save what they trained with
``adapters.save_adapter`` (adapter or full model, tokenizer, base spec, model card).

A trainer's output folder holds ``train_summary.json`` (written last, with ``finished`` and the config the run was
made with) and ``train_log.jsonl`` (one line per step). Rerunning a finished run with the same config trains
nothing; with another config it is refused.
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from selfalign.config import Config, opt
from selfalign.errors import SelfAlignError
from selfalign.store.io import peek_json

SUMMARY = "train_summary.json"
LOG = "train_log.jsonl"


@dataclass
class LoraArgs(Config):
    """LoRA settings (PEFT ``LoraConfig``); ``--no-lora`` trains every weight."""
    lora: bool = opt(True, "train a LoRA adapter (--no-lora: full fine-tuning)")
    lora_r: int = opt(8, "LoRA rank", min=1)
    lora_alpha: int = opt(16, "LoRA alpha", min=1)
    lora_dropout: float = opt(0.0, "LoRA dropout", min=0, lt=1)
    target_modules: list[str] = opt(["q_proj", "k_proj", "v_proj", "o_proj"], "LoRA target modules")

    def lora_config(self, **extra):
        """PEFT's ``LoraConfig`` of these flags (``extra``: e.g. ``layers_to_transform``)."""
        from peft import LoraConfig

        return LoraConfig(r=self.lora_r, lora_alpha=self.lora_alpha, lora_dropout=self.lora_dropout,
                          target_modules=list(self.target_modules), task_type="CAUSAL_LM", **extra)


def config_dict(cfg, newer_defaults: Optional[dict] = None) -> dict:
    """The config as JSON, as a run records it; ``newer_defaults`` (keys added after runs were made) are left out
    when they hold their default, so that a run finished before they existed is still recognised."""
    d = json.loads(json.dumps(dataclasses.asdict(cfg), default=str))
    for k, v in (newer_defaults or {}).items():
        if d.get(k) == v:
            d.pop(k)
    return d


def finished_run(out: Path, cfg, stage: str, newer_defaults: Optional[dict] = None,
                 record: Optional[dict] = None) -> Optional[dict]:
    """The summary of a finished run of this config in ``out`` (None when there is none, or it did not finish);
    an error for a finished run of another config. ``record``: the config as the stage records it (default
    ``config_dict(cfg, newer_defaults)``)."""
    s = peek_json(Path(out) / SUMMARY)
    if not isinstance(s, dict) or not s.get("finished"):
        return None
    from selfalign.store.paths import portable

    if portable(s.get("config")) != portable(record if record is not None else config_dict(cfg, newer_defaults)):  # recorded portable (or before)
        raise SelfAlignError(f"{out}: holds a finished {stage} run with another config; use a new --output or "
                             "delete it")
    return s


# --- a hand-written loop under `accelerate launch` (sk-tune; align's TRL trainer has its own) ---------------
def accelerator():
    """An Accelerator when launched with several processes (`accelerate launch`), else None."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    import torch
    from accelerate import Accelerator

    return Accelerator(cpu=not torch.cuda.is_available())  # CPU-only: gloo processes


def rank_checksums(model, acc) -> list[float]:
    """Sum of the trainable weights on every process: equal on all ranks when the processes stayed in sync."""
    import torch

    with torch.no_grad():
        total = sum(p.double().sum() for p in model.parameters() if p.requires_grad)
        t = torch.as_tensor([float(total)], dtype=torch.float64, device=next(model.parameters()).device)
    return [float(x) for x in (acc.gather(t) if acc else t).cpu()]
