"""Stage 4, align: DPO on the Self-Eval preference pairs, through TRL's DPOTrainer.

The reference model is the base model (with LoRA: the same weights with the adapter switched off, so no second
copy is held). With ``--top-layers K`` the adapter is on the top K decoder layers only, and ``--share-trunk`` runs
the frozen layers below once per batch for both the policy and the reference (``training/trunk.py``).
Checkpoints are written every ``--save-steps``; a killed run resumes from the last one. ``--loss-type`` takes
several of TRL's DPO losses, summed with ``--loss-weights``; held-out pairs (``--eval-pairs``, ``--eval-fraction``)
are evaluated by TRL and their metrics logged. ``--no-lora`` from an adapter trains the merged model against a
frozen copy of it (``training/loading.py``).
"""
from __future__ import annotations

import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from selfalign.config import ModelArgs, opt, require
from selfalign.errors import SelfAlignError
from selfalign.store.io import iter_jsonl, line_numbers, peek_json, read_jsonl, write_json
from selfalign.store.provenance import meta
from selfalign.training import trl_run
from selfalign.training.lora import LOG, SUMMARY, LoraArgs, config_dict, finished_run
from selfalign.training.trl_run import CKPT, TrainArgs, last
from selfalign.store.guard import OutputGuard

# TRL 1.x DPOConfig.loss_type values (tests/stages/test_align_losses.py checks them against the installed TRL)
LOSS_TYPES = ("sigmoid", "hinge", "ipo", "exo_pair", "nca_pair", "robust", "bco_pair", "sppo_hard", "aot",
              "aot_unpaired", "apo_zero", "apo_down", "discopop", "sft", "sigmoid_norm")
LOGGED = ("loss", "rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "logps/chosen",
          "logps/rejected", "learning_rate", "grad_norm")


@dataclass
class AlignConfig(TrainArgs, LoraArgs, ModelArgs):
    STAGE = "align"
    TRL_NAME = "DPOConfig"

    pairs: Optional[str] = opt(None, "preference pairs JSONL (prompt, chosen, rejected; from `selfalign pairs`)")
    output: Optional[str] = opt(None, "output directory: an adapter (+ selfalign_base.json) or, with --merge, a model")
    beta: float = opt(0.1, "DPO beta", gt=0)
    loss_type: list[str] = opt(["sigmoid"], "TRL DPO loss type(s) (sigmoid = the DPO paper's loss); several are "
                                            "summed, weighted by --loss-weights (e.g. sigmoid sft: DPO + an SFT "
                                            "term on the chosen answers)", choices=LOSS_TYPES)
    loss_weights: Optional[list[float]] = opt(None, "one weight per --loss-type (default: 1 each)", min=0)
    eval_pairs: Optional[str] = opt(None, "held-out preference pairs JSONL for TRL's evaluation (eval_loss, "
                                          "eval_rewards/margins, ... in the step log); or --eval-fraction")
    merge: bool = opt(False, "merge the adapter into the base weights and save a full model")
    top_layers: Optional[int] = opt(None, "LoRA on the top N decoder layers only (default: all layers)", min=1)
    share_trunk: bool = opt(False, "with --top-layers: run the frozen layers below the top N once per batch, shared "
                                   "by the policy and the reference model (the same loss; fewer layer passes)")
    batch_size: int = opt(4, "pairs per device per step", min=1)

    @staticmethod
    def trl_class():
        from trl import DPOConfig

        return DPOConfig

    def __post_init__(self):
        if isinstance(self.loss_type, str):  # a recipe's `loss_type: sigmoid` (one loss, as before it took a list)
            self.loss_type = [self.loss_type]
        super().__post_init__()  # every field against its declaration, and the trl section (TrainArgs)
        if not self.loss_type or len(set(self.loss_type)) < len(self.loss_type):
            raise SelfAlignError(f"--loss-type: name each loss once, got {' '.join(self.loss_type) or 'none'}")
        if self.loss_weights is not None and len(self.loss_weights) != len(self.loss_type):
            raise SelfAlignError(f"--loss-weights: {len(self.loss_weights)} weights for {len(self.loss_type)} loss "
                                 f"types ({' '.join(self.loss_type)}); give one weight per loss type")
        if self.top_layers is not None and not self.lora:
            raise SelfAlignError("--top-layers trains LoRA on the top layers; it cannot be combined with --no-lora")
        if self.share_trunk and self.top_layers is None:
            raise SelfAlignError("--share-trunk needs --top-layers (the layers below them are the shared trunk)")


# --- data --------------------------------------------------------------------------------------------------
def load_pairs(path: str) -> list[dict]:
    from selfalign.errors import InputError

    rows = read_jsonl(path, required=["prompt", "chosen", "rejected"])  # and of type text (io.FIELDS)
    for r, n in zip(rows, line_numbers(path)):
        if r["chosen"] == r["rejected"]:
            raise InputError(path, "chosen and rejected are identical", n)
    if not rows:
        raise InputError(path, "no preference pairs: nothing to train on (did every prompt get identical samples?)")
    return [{"prompt": r["prompt"], "chosen": r["chosen"], "rejected": r["rejected"]} for r in rows]


# --- run state ---------------------------------------------------------------------------------------------
# keys added later: left out at default
NEWER_DEFAULTS = {"report_to": "none", "push_to_hub": False, "trl": {}, "top_layers": None, "share_trunk": False,
                  "loss_weights": None, "eval_pairs": None, **trl_run.NEWER_DEFAULTS}


def record(cfg: AlignConfig) -> dict:
    """The config as a run records it; one loss type as the text it was before ``--loss-type`` took a list."""
    d = config_dict(cfg, NEWER_DEFAULTS)
    if len(cfg.loss_type) == 1:
        d["loss_type"] = cfg.loss_type[0]
    return d


def _glued(rows: list[dict], tok) -> int:
    """Pairs whose prompt tokens are not a prefix of prompt + chosen or prompt + rejected (TRL then cuts the
    prompt's last tokens off and trains the answer in another context; see pairs.continuation)."""
    def prefix(a, b):
        return b[:len(a)] == a

    n = 0
    for r in rows:
        p = tok(r["prompt"], add_special_tokens=False)["input_ids"]
        if not all(prefix(p, tok(r["prompt"] + r[k], add_special_tokens=False)["input_ids"])
                   for k in ("chosen", "rejected")):
            n += 1
    return n


# --- training ----------------------------------------------------------------------------------------------
def _step_logger(path: Path, resume_step: int):
    """A TrainerCallback that appends one JSON line per logged step (reward margins, accuracies, loss)."""
    return trl_run.step_logger(path, resume_step, LOGGED)


def dpo_args(cfg: AlignConfig, out: Path, steps: int, device: str, evaluate: bool = False):
    """TRL's DPOConfig: selfalign's flags, then the recipe's / command line's ``trl`` fields (checked)."""
    from trl import DPOConfig

    from selfalign.training.trl_args import fields

    extra = {}
    if cfg.loss_weights is not None:
        if "loss_weights" not in fields(DPOConfig):
            raise SelfAlignError("--loss-weights: the installed TRL's DPOConfig has no loss_weights; upgrade trl")
        extra["loss_weights"] = list(cfg.loss_weights)
    return trl_run.training_args(cfg, out, steps, device, evaluate, beta=cfg.beta, loss_type=list(cfg.loss_type),
                                 **extra)


def run_align(cfg: AlignConfig) -> dict:
    """Train; the output directory is a model spec usable by every other command."""
    require(cfg, "pairs", "output")
    if cfg.adapter and cfg.lora and not cfg.merge:
        raise SelfAlignError("--adapter with a new LoRA adapter: pass the adapter directory as --model instead "
                             "(it names its base), or use --merge")
    with OutputGuard(cfg.output, folder=True, inputs=[cfg.pairs, cfg.eval_pairs]):  # one writer (the main rank of a launch)
        return _align(cfg)


def _align(cfg: AlignConfig) -> dict:
    out = Path(cfg.output)
    done = finished_run(out, cfg, "align", record=record(cfg))
    if done:
        return {**{k: done[k] for k in ("output", "steps", "pairs", "final", "eval") if k in done}, "resumed": True,
                "note": "finished earlier with the same config; nothing trained"}
    from selfalign.training.heldout import eval_rows

    rows, held = eval_rows(load_pairs(cfg.pairs), load_pairs(cfg.eval_pairs) if cfg.eval_pairs else None,
                           cfg.eval_fraction, cfg.seed, "align", "pairs")
    import torch  # (after the checks: a bad input is reported without importing TRL)
    from datasets import Dataset, disable_progress_bars

    from selfalign import models
    from selfalign.training import trunk
    from selfalign.training.loading import full_finetune

    torch.manual_seed(cfg.seed)
    steps = cfg.max_steps or math.ceil(math.ceil(len(rows) / cfg.batch_size) / cfg.grad_accum * cfg.epochs)
    args = dpo_args(cfg, out, steps, models.pick_device(cfg.device), evaluate=bool(held))
    model, tok = trl_run.load_model(cfg, args)
    ref = None if cfg.lora else full_finetune(model, trl_run.sharded_run())  # from an adapter: its frozen copy
    info = dict(model.selfalign_spec)
    tok.padding_side = "left"
    top = {} if cfg.top_layers is None else {"layers_to_transform": trunk.top_layer_ids(model, cfg.top_layers)}
    peft_config = cfg.lora_config(**top) if cfg.lora else None
    out.mkdir(parents=True, exist_ok=True)
    resume = trl_run.last_checkpoint(out)
    resume_step = int(resume.name.split("-")[-1]) if resume else 0
    glued = _glued(rows, tok)
    if glued:
        print(f"align: warning: in {glued} of {len(rows)} pairs the prompt's tokens are not a prefix of prompt + "
              "answer (an answer glued to its prompt?): TRL trains those on a context the model never sees",
              flush=True)
    disable_progress_bars()  # TRL's tokenising map() would draw a \r bar per dataset
    with trl_run.tracker_logs(out, cfg.report_to):  # (TensorBoard's callback reads its folder when it is made)
        try:
            trainer = trunk.dpo_trainer(cfg.top_layers if cfg.share_trunk else None)(
                model=model, ref_model=ref, args=args, train_dataset=Dataset.from_list(rows),
                eval_dataset=Dataset.from_list(held) if held else None, processing_class=tok,
                peft_config=peft_config,
                callbacks=[_step_logger(out / LOG, resume_step)] if args.process_index == 0 else [])
        except ValueError as e:
            raise SelfAlignError(f"cannot set up DPO on {cfg.model!r}: {str(e).splitlines()[0]}") from None
        return _train(cfg, trainer, tok, out, rows, held, resume, resume_step, info)


def _train(cfg: AlignConfig, trainer, tok, out: Path, rows: list, held: list, resume, resume_step: int,
           info: dict) -> dict:
    from selfalign.store.progress import quiet_trainer
    from selfalign.training import trunk

    sharded = trainer.is_deepspeed_enabled or trainer.is_fsdp_enabled
    if cfg.share_trunk:
        if sharded:
            raise SelfAlignError("--share-trunk under ZeRO-3 / FSDP: the layers are sharded; run without it")
        trunk.check_trunk_frozen(trainer.model, cfg.top_layers)
    if sharded and cfg.lora and cfg.merge:
        raise SelfAlignError("--merge under ZeRO-3 / FSDP: train the adapter, then merge it in one process "
                             "(selfalign align --merge is for a single process)")
    quiet_trainer(trainer, "align")  # one progress line as the other stages print, not TRL's per-step dicts
    t0 = time.time()
    trl_run.fit(trainer, resume, evaluate=bool(held))
    if sharded:  # gathering the shards is collective: every process calls it, the main one writes
        trainer.save_model(str(out))
    if not trainer.is_world_process_zero():  # with several processes, rank 0 alone writes the results
        return {"output": str(out), "rank": trainer.args.process_index}
    log = list(iter_jsonl(out / LOG)) if (out / LOG).exists() else []
    final = _save(trainer, tok, out, cfg, len(rows), log, weights=not sharded)
    summary = {"output": str(out), "finished": True, "steps": trainer.state.global_step, "pairs": len(rows),
               "resumed_from_step": resume_step, "saved": final, "final": last(log),
               **({"eval_pairs": len(held), "eval": last(log, "eval_loss")} if held else {}),
               "seconds": round(time.time() - t0, 2)}
    write_json(out / SUMMARY, {**meta(cfg, stage="align", model_info=info), **summary, "config": record(cfg)})
    shutil.rmtree(out / CKPT, ignore_errors=True)
    if cfg.push_to_hub:
        summary["hub"] = push(out, cfg.trl or {})
    return summary


def _card(cfg: AlignConfig, n_pairs: int, log: list[dict]):
    """The model card's content: method, judge and data from the pairs' provenance, the key settings."""
    from selfalign.store.paths import expand
    from selfalign.store.provenance import meta_path
    from selfalign.training.adapters import ModelCard, data_sources, hub_datasets

    judge, data = "", f"{n_pairs} preference pairs from `{Path(cfg.pairs).name}`"
    try:
        pm = peek_json(meta_path(cfg.pairs), {})
        pc = pm.get("config") or {}
        sm = peek_json(meta_path(expand(pc["input"])), {}) if pc.get("input") else {}
        sc = sm.get("config") or {}
        if sc:
            judge = f"Self-Eval `{sc.get('method')}` by `{sc.get('model')}`" + (
                f" + adapter `{sc['adapter']}`" if sc.get("adapter") else "")
        if pc.get("strategy"):
            data += f" (strategy `{pc['strategy']}`)"
    except (OSError, ValueError, KeyError, TypeError):
        pass
    hp = {k: getattr(cfg, k) for k in ("beta", "loss_type", "learning_rate", "epochs", "max_steps", "batch_size",
                                       "grad_accum", "max_length", "warmup_steps", "seed")}
    hp["loss_type"] = ", ".join(cfg.loss_type)
    if cfg.loss_weights is not None:
        hp["loss_weights"] = ", ".join(map(str, cfg.loss_weights))
    hp.update({k: getattr(cfg, k) for k in ("attn_implementation", "load_in_4bit") if getattr(cfg, k)})
    if cfg.lora:
        hp.update(lora_r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                  target_modules=", ".join(cfg.target_modules))
        if cfg.top_layers is not None:
            hp.update(top_layers=cfg.top_layers, share_trunk=cfg.share_trunk)
    hp.update({f"trl.{k}": v for k, v in (cfg.trl or {}).items()})
    end, ev = last(log), last(log, "eval_loss")
    training = {"optimizer steps": end.get("step"), "pairs": n_pairs,
                **{k: end[k] for k in ("loss", "rewards/margins", "rewards/accuracies") if k in end},
                **{f"held-out {k[5:]}": ev[k] for k in ("eval_loss", "eval_rewards/margins") if k in ev}}
    return ModelCard(method="DPO (TRL `DPOTrainer`) on Self-Eval preference pairs (Zhang et al., ACL 2024, "
                            "Self-Alignment for Factuality)", judge=judge, data=data, hyperparameters=hp,
                     datasets=hub_datasets(data_sources(cfg.pairs)),
                     training={k: v for k, v in training.items() if v is not None})


def _save(trainer, tok, out: Path, cfg: AlignConfig, n_pairs: int, log: list[dict], weights: bool = True) -> str:
    from selfalign.training.adapters import save_adapter

    return save_adapter(trainer.model, tok, out, base_spec=cfg.model, lora=cfg.lora, merged=cfg.lora and cfg.merge,
                        card=_card(cfg, n_pairs, log), weights=weights)


def push(out: Path, trl: dict) -> str:
    """Upload the output folder (not its checkpoints) to the hub; the repo is trl's hub_model_id or the name."""
    return trl_run.push(out, trl, "align")
