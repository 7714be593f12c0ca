"""SK-Tuning: DPO on a single A/B answer token, which calibrates the Self-Eval P(True).

With one answer token, DPO's loss is a logistic loss on the policy's logit margin (chosen − rejected) minus
the reference model's margin: the log-softmax normalisers cancel. One forward pass (last position) per row.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F

from selfalign import prompts as P
from selfalign.config import ModelArgs, opt, require
from selfalign.errors import InputError, Interrupted, SelfAlignError
from selfalign.io import line_numbers, output_dir, read_jsonl, write_json
from selfalign.metrics import auroc
from selfalign import checkpoint as ckpt
from selfalign.progress import Progress
from selfalign.provenance import meta

LABELS = (P.TRUE_LABEL, P.FALSE_LABEL)
SUMMARY = "train_summary.json"
LOG = "train_log.jsonl"


@dataclass
class SKTuneConfig(ModelArgs):
    data: Optional[str] = opt(None, "SK-Tuning training JSONL (rows with prompt, chosen, rejected; from sk-data)")
    valid_data: Optional[str] = opt(None, "validation JSONL: keep the checkpoint with the best P(True) AUROC")
    output: Optional[str] = opt(None, "output directory (adapter, or full model with --no-lora)")
    beta: float = opt(0.1, "DPO beta", gt=0)
    lora: bool = opt(True, "train a LoRA adapter (--no-lora: full fine-tuning)")
    lora_r: int = opt(8, "LoRA rank", min=1)
    lora_alpha: int = opt(16, "LoRA alpha", min=1)
    lora_dropout: float = opt(0.0, "LoRA dropout", min=0, lt=1)
    target_modules: list[str] = opt(["q_proj", "k_proj", "v_proj", "o_proj"], "LoRA target modules")
    top_layers: Optional[int] = opt(None, "LoRA on the top N decoder layers only; the frozen lower layers' hidden "
                                          "states are computed once per row and reused every epoch (default: all "
                                          "layers, whole-model passes)", min=1)
    learning_rate: float = opt(1e-4, "AdamW learning rate (peak, after warmup; 0 keeps the weights: a baseline run)",
                               min=0)
    lr_scheduler: str = opt("cosine", "learning-rate schedule after warmup (transformers get_scheduler)",
                            choices=("cosine", "linear", "constant"))
    warmup_ratio: float = opt(0.1, "fraction of the steps spent warming the learning rate up from 0", min=0, lt=1)
    weight_decay: float = opt(0.01, "AdamW weight decay", min=0)
    max_grad_norm: float = opt(1.0, "clip the gradient norm to this (0 = no clipping)", min=0)
    epochs: int = opt(3, "passes over the training rows", min=1)
    max_steps: Optional[int] = opt(None, "stop after this many optimizer steps", min=1)
    grad_accum: int = opt(1, "batches per optimizer step", min=1)
    eval_every: Optional[int] = opt(None, "validate (and checkpoint) every N steps (default: once per epoch)", min=1)
    patience: int = opt(0, "stop when the validation AUROC has not improved for N evaluations (0 = never)", min=0)
    train_eval_rows: int = opt(256, "training rows (a fixed sample) whose P(True) AUROC is logged at each evaluation",
                               min=1)
    selfeval_prompt: Optional[str] = opt(None, "re-render every row's prompt from its question and proposal with a "
                                               "named Self-Eval prompt (zero-shot, paper); default: the rows' prompts",
                                         choices=tuple(P.PTRUE_PRESETS))
    seed: int = opt(0, "training seed: the shuffling and the LoRA initialisation", min=0)
    max_rows: Optional[int] = opt(None, "use at most the first N training rows", min=1)
    batch_by: str = opt("row", "batch composition: row (rows shuffled one by one, as TRL) or question (all rows of "
                               "a question in one batch: its true and false options' pulls on the A/B base rate "
                               "cancel within the batch, leaving the part that tells them apart)",
                        choices=("row", "question"))


# --- data --------------------------------------------------------------------------------------------------
def load_rows(path: str, max_rows: Optional[int] = None) -> list[dict]:
    """Rows with prompt/chosen/rejected; chosen and rejected must be "A" and "B" (either order)."""
    rows = read_jsonl(path, required=["prompt", "chosen", "rejected"],  # of the JSON types io.FIELDS says
                      fields=["label", "id", "question", "proposal"])
    for r, n in zip(rows, line_numbers(path)):
        if {r["chosen"], r["rejected"]} != set(LABELS):
            raise InputError(path, f"chosen/rejected must be {LABELS[0]!r} and {LABELS[1]!r}, got "
                                   f"{r['chosen']!r}/{r['rejected']!r}", n)
        r["label"] = int(r.get("label", int(r["chosen"] == P.TRUE_LABEL)))
    return rows[:max_rows] if max_rows else rows


def make_batches(rows: list[dict], batch_size: int, rng: random.Random, by: str = "row") -> list[list[int]]:
    """One epoch's batches (row indices). ``row``: a shuffle cut into ``batch_size`` pieces. ``question``: the
    questions (task, id) shuffled, each question's rows kept together, packed greedily up to ``batch_size`` rows
    (a question with more rows than that is a batch of its own)."""
    if by == "row":
        order = list(range(len(rows)))
        rng.shuffle(order)
        return [order[s:s + batch_size] for s in range(0, len(order), batch_size)]
    groups: dict = {}
    for i, r in enumerate(rows):
        groups.setdefault((r.get("task"), r.get("id", r.get("prompt"))), []).append(i)
    order = list(groups.values())
    rng.shuffle(order)
    batches, cur = [], []
    for g in order:
        if cur and len(cur) + len(g) > batch_size:
            batches.append(cur)
            cur = []
        cur = cur + g
    return batches + ([cur] if cur else [])


def encode_rows(rows: list[dict], engine, model, cfg: "SKTuneConfig", progress=None):
    """The rows as margin computers (``sk_tune_trunk``): token ids, in-context A/B ids, the chosen side's sign."""
    from selfalign.stages import sk_tune_trunk

    prompts = [r["prompt"] for r in rows]
    seqs = [engine.encode(t) for t in prompts]
    a = [engine.choice_ids(t, P.TRUE_LABEL) for t in prompts]
    b = [engine.choice_ids(t, P.FALSE_LABEL) for t in prompts]
    sign = [1.0 if r["chosen"] == P.TRUE_LABEL else -1.0 for r in rows]
    if cfg.top_layers is None:
        return sk_tune_trunk.PlainRows(seqs, a, b, sign, engine)
    return sk_tune_trunk.TrunkRows(seqs, a, b, sign, model, cfg.top_layers, cfg.batch_size, progress=progress)


def dpo_loss(margin: torch.Tensor, ref_margin: torch.Tensor, beta: float):
    """Mean DPO loss, and the per-row reward margins beta·(policy margin − reference margin)."""
    reward = beta * (margin - ref_margin.to(margin.device))
    return -F.logsigmoid(reward).mean(), reward.detach()


@torch.no_grad()
def evaluate(model, rows, ref: torch.Tensor, labels: list[int], beta: float) -> dict:
    """P(True) AUROC (P(True) = sigmoid(lse A − lse B), as every reader computes it), DPO loss, reward accuracy,
    mean P(True)."""
    was = model.training
    model.eval()
    m = rows.margins(model).cpu()
    model.train(was)
    p_true = torch.sigmoid(m * rows.sign)
    loss, reward = dpo_loss(m, ref, beta)
    return {"auroc": auroc(labels, p_true.tolist()), "loss": float(loss),
            "reward_accuracy": float((reward > 0).float().mean()), "p_true_mean": float(p_true.mean())}


# --- training ----------------------------------------------------------------------------------------------
def _check(cfg: SKTuneConfig) -> None:
    """What the field declarations cannot say: the inputs that must be given, and flags that exclude each other."""
    require(cfg, "data", "output")
    if cfg.top_layers is not None and not cfg.lora:
        raise SelfAlignError("--top-layers trains LoRA on the top layers; it cannot be combined with --no-lora")


def _config_dict(cfg) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(cfg), default=str))


def _finished(out: Path, cfg) -> Optional[dict]:
    """The summary of a finished run with this config; an error for one with another config."""
    try:
        s = json.loads((out / SUMMARY).read_text())
    except (OSError, ValueError):
        return None
    if not s.get("finished"):
        return None
    if s.get("config") != _config_dict(cfg):
        raise SelfAlignError(f"{out}: holds a finished sk-tune run with another config; use a new --output "
                             "or delete it")
    return s


def _wrap(model, cfg: SKTuneConfig, n_layers: int):
    if not cfg.lora:
        return model
    from peft import LoraConfig, get_peft_model

    top = {} if cfg.top_layers is None else {"layers_to_transform": list(range(n_layers - cfg.top_layers, n_layers))}
    lc = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                    target_modules=list(cfg.target_modules), task_type="CAUSAL_LM", **top)
    try:
        return get_peft_model(model, lc)
    except ValueError as e:
        raise SelfAlignError(f"cannot apply LoRA to {cfg.model!r}: {str(e).splitlines()[0]}") from None


def _card(cfg: SKTuneConfig, training: Optional[dict] = None):
    from selfalign.adapters import ModelCard

    return ModelCard(method="SK-Tuning (single-token DPO on the Self-Eval P(True) answer letter)",
                     judge="the model itself (Self-Eval P(True), letters read in context)", data=str(cfg.data),
                     hyperparameters={k: getattr(cfg, k) for k in ("beta", "learning_rate", "lr_scheduler",
                                                                   "warmup_ratio", "weight_decay", "epochs",
                                                                   "batch_size", "lora_r", "top_layers", "seed")},
                     training={k: v for k, v in (training or {}).items() if v is not None})


def _save(model, tok, out: Path, cfg: SKTuneConfig) -> None:
    """The adapter (or full model), the tokenizer, the base as the user named it, and a model card."""
    from selfalign.adapters import save_adapter

    save_adapter(model, tok, out, base_spec=cfg.adapter or cfg.model, lora=cfg.lora, card=_card(cfg))


def _accelerator():
    """An Accelerator when launched with several processes (`accelerate launch`), else None."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    from accelerate import Accelerator

    return Accelerator(cpu=not torch.cuda.is_available())  # CPU-only: gloo processes


def _rank_checksums(model, acc) -> list[float]:
    """Sum of the trainable weights on every process: equal on all ranks when the processes stayed in sync."""
    with torch.no_grad():
        total = sum(p.double().sum() for p in model.parameters() if p.requires_grad)
        t = torch.as_tensor([float(total)], dtype=torch.float64, device=next(model.parameters()).device)
    return [float(x) for x in (acc.gather(t) if acc else t).cpu()]


def _rerender(rows: list[dict], preset: Optional[str]) -> list[dict]:
    if preset is None:
        return rows
    shots, instruction = P.ptrue_settings(preset, 0, None)
    for r in rows:
        if not isinstance(r.get("question"), str) or not isinstance(r.get("proposal"), str):
            raise SelfAlignError("--selfeval-prompt re-renders rows from 'question' and 'proposal'; these rows "
                                 "lack them (build them with selfalign sk-data)")
    return [dict(r, prompt=P.ptrue_prompt(r["question"], r["proposal"], shots, instruction)) for r in rows]


def run_sk_tune(cfg: SKTuneConfig) -> dict:
    """Train; the output directory is a model spec (adapter + selfalign_base.json, or a full model).

    A killed run resumes from its newest checkpoint (``checkpoint/``: weights, optimizer, scheduler, RNG, step)."""
    from transformers import get_scheduler

    from selfalign import models
    from selfalign.stages import sk_tune_trunk
    from selfalign.engines.hf import HFEngine

    _check(cfg)
    out = Path(cfg.output)
    done = _finished(out, cfg)
    if done:
        return {**done, "resumed": True, "note": "finished earlier with the same config; nothing trained"}
    train = _rerender(load_rows(cfg.data, cfg.max_rows), cfg.selfeval_prompt)
    valid = _rerender(load_rows(cfg.valid_data), cfg.selfeval_prompt) if cfg.valid_data else None
    output_dir(out)  # a file in its place, no permission: one line, before a model loads
    torch.manual_seed(cfg.seed)
    acc = _accelerator()  # under `accelerate launch`: one process per device, each trains on its share of a batch
    if acc and cfg.top_layers is not None:
        raise SelfAlignError("--top-layers runs in one process; launch without accelerate")
    device = str(acc.device) if acc and cfg.device == "auto" else cfg.device
    model, tok = models.load(cfg.model, adapter=cfg.adapter, device=device, dtype=cfg.dtype,
                             trust_remote_code=cfg.trust_remote_code, merge_adapters=True,
                             allow_pickle=cfg.allow_pickle)
    info = dict(model.selfalign_spec)
    engine = HFEngine(model, tok, batch_size=cfg.batch_size)
    t_enc = time.time()
    probe = random.Random(f"{cfg.seed}/train-eval").sample(range(len(train)), min(cfg.train_eval_rows, len(train)))
    n_rows = len(train) + len(valid or [])
    prep = Progress(n_rows * (2 if cfg.top_layers else 1), "sk-tune: trunk states + reference margins"
                    if cfg.top_layers else "sk-tune: reference margins", "row", enabled=not acc or acc.is_main_process)
    tr = encode_rows(train, engine, model, cfg, prep.update)
    va = encode_rows(valid, engine, model, cfg, prep.update) if valid else None
    model.eval()
    ref = {"train": sk_tune_trunk.reference_margins(tr, model, prep.update),  # once, before any update
           "valid": sk_tune_trunk.reference_margins(va, model, prep.update) if va else None}
    prep.close()
    t_enc = time.time() - t_enc
    model = _wrap(model, cfg, sk_tune_trunk.n_layers(model) if cfg.top_layers else 0)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt_ = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    n_batches = len(make_batches(train, cfg.batch_size, random.Random(0), cfg.batch_by))
    steps_per_epoch = math.ceil(n_batches / cfg.grad_accum)
    total = steps_per_epoch * cfg.epochs if cfg.max_steps is None else min(cfg.max_steps, steps_per_epoch * cfg.epochs)
    sched = get_scheduler(cfg.lr_scheduler, opt_, num_warmup_steps=int(cfg.warmup_ratio * total),
                          num_training_steps=total)
    rank, world, inner = (acc.process_index, acc.num_processes, model) if acc else (0, 1, model)
    if acc:
        model, opt_ = acc.prepare(model, opt_)
    eval_every = cfg.eval_every or steps_per_epoch
    out.mkdir(parents=True, exist_ok=True)
    state = ckpt.load(out, cfg, inner, opt_, sched)  # resume: the newest complete checkpoint of this config
    step, best, best_step, stale = state["step"], state["best"], state["best_step"], state["stale"]
    log_f = open(out / LOG if rank == 0 else os.devnull, "a", encoding="utf-8")
    if rank == 0:
        ckpt.truncate_log(out / LOG, step)
        log_f.seek(0, 2)

    def log(rec):
        log_f.write(json.dumps(rec) + "\n")
        log_f.flush()

    def evaluation():
        rec = {"train": evaluate(inner, sk_tune_trunk.Subset(tr, probe), ref["train"][probe],
                                 [train[i]["label"] for i in probe], cfg.beta)}
        if va:
            rec["valid"] = evaluate(inner, va, ref["valid"], [r["label"] for r in valid], cfg.beta)
        return rec

    t0 = time.time()
    initial = None
    if step == 0:
        initial = evaluation()
        log({"step": 0, **initial, "lr": 0.0})
    else:
        initial = state.get("initial")
    bar = Progress(total - step, "sk-tune", "step", enabled=rank == 0)
    last, stop = {}, ckpt.StopFlag()
    try:
        while step < total and not stop.set:
            epoch, pos = divmod(step, steps_per_epoch)
            batches = make_batches(train, cfg.batch_size, random.Random(f"{cfg.seed}/epoch/{epoch}"), cfg.batch_by)
            for g in range(pos * cfg.grad_accum, len(batches), cfg.grad_accum):
                if step >= total or stop.set:
                    break
                group = batches[g:g + cfg.grad_accum]
                losses, rewards = [], []
                for b in group:
                    b = b[rank::world] or b[:1]  # this process's share of the batch
                    loss, reward = dpo_loss(tr.margins(model, b), ref["train"][b], cfg.beta)
                    scaled = loss * len(b) / sum(len(x[rank::world] or x[:1]) for x in group)
                    acc.backward(scaled) if acc else scaled.backward()
                    losses.append(loss.item() * len(b))
                    rewards.append(reward.cpu())
                grad_norm = (torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm) if cfg.max_grad_norm > 0
                             else torch.sqrt(sum((p.grad.float() ** 2).sum() for p in params if p.grad is not None)))
                lr = sched.get_last_lr()[0]
                opt_.step()
                sched.step()
                opt_.zero_grad(set_to_none=True)
                step += 1
                rw = torch.cat(rewards)
                last = {"step": step, "epoch": epoch, "loss": sum(losses) / len(rw), "reward_margin": float(rw.mean()),
                        "reward_accuracy": float((rw > 0).float().mean()), "lr": lr, "grad_norm": float(grad_norm)}
                if step % eval_every == 0 or step == total:
                    last.update(evaluation())
                    key = (last["valid"]["auroc"], -last["valid"]["loss"]) if va else None  # ties: the lower loss
                    if key and key[0] is not None and (best is None or key > tuple(best)):
                        best, best_step, stale = list(key), step, 0
                        if rank == 0:
                            _save(inner, tok, out, cfg)
                    elif key:
                        stale += 1
                    log(last)
                    if rank == 0:
                        ckpt.save(out, cfg, inner, opt_, sched, {"step": step, "best": best, "best_step": best_step,
                                                                  "stale": stale, "initial": initial})
                    if cfg.patience and stale >= cfg.patience:
                        break
                else:
                    log(last)
                bar.update(1, f"loss {last['loss']:.4f}, acc {last['reward_accuracy']:.2f}")
            if cfg.patience and stale >= cfg.patience:
                break
    finally:
        bar.close()
        log_f.close()
        stop.restore()
    if stop.set:  # SIGTERM: the newest checkpoint is on disk; a rerun continues from it
        if rank == 0:
            ckpt.save(out, cfg, inner, opt_, sched, {"step": step, "best": best, "best_step": best_step,
                                                      "stale": stale, "initial": initial})
        raise Interrupted(f"at step {step}/{total}; checkpoint in {out / ckpt.DIR}; rerun the same command to "
                          "continue", 143)
    checksums = _rank_checksums(inner, acc)
    if rank != 0:
        return {"output": str(out), "rank": rank}
    if best_step is None:  # no validation (or one class only): keep the last weights
        _save(inner, tok, out, cfg)
    _card_training(out, cfg, {"rows": len(train), "steps": step, "best step": best_step,
                              "best validation AUROC": best[0] if best else None,
                              "initial validation AUROC": ((initial or {}).get("valid") or {}).get("auroc")})
    shots = P.ptrue_settings(cfg.selfeval_prompt, 0, None) if cfg.selfeval_prompt else None
    summary = {"output": str(out), "finished": True, "resumed": state["step"] > 0, "steps": step, "planned_steps": total,
               "stopped_early": step < total, "rows": len(train), "valid_rows": len(valid) if valid else 0,
               "saved": "best" if best_step else "last", "best_step": best_step,
               "best_valid_auroc": best[0] if best else None, "initial": initial,
               "initial_valid": (initial or {}).get("valid"), "final": last,
               "answer_token_ids": {"A": sorted({i for x in tr.a for i in x}), "B": sorted({i for x in tr.b for i in x})},
               "selfeval_template": P.ptrue_template_id(*shots, False, cfg.selfeval_prompt) if shots else "rows' own",
               "processes": world, "trainable_checksums": checksums, "encode_seconds": round(t_enc, 2),
               "seconds": round(time.time() - t0, 2)}
    ckpt.clear(out)
    write_json(out / SUMMARY, meta(cfg, stage="sk-tune", model_info=info, **summary))
    return summary


def _card_training(out: Path, cfg: SKTuneConfig, training: dict) -> None:
    """Rewrite the saved model card with the training figures (the weights saved are the best checkpoint's)."""
    from selfalign.adapters import CARD, portable_spec, render_card

    if (out / CARD).exists():
        (out / CARD).write_text(render_card(portable_spec(cfg.adapter or cfg.model), "adapter" if cfg.lora else "model",
                                            _card(cfg, training)), encoding="utf-8")
