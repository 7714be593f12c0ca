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
from selfalign.errors import InputError, SelfAlignError
from selfalign.io import line_numbers, read_jsonl, write_json
from selfalign.metrics import auroc
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
    learning_rate: float = opt(1e-4, "AdamW learning rate", gt=0)
    epochs: int = opt(1, "passes over the training rows", min=1)
    max_steps: Optional[int] = opt(None, "stop after this many optimizer steps", min=1)
    grad_accum: int = opt(1, "batches per optimizer step", min=1)
    eval_every: Optional[int] = opt(None, "validate every N steps (default: once per epoch)", min=1)
    seed: int = opt(0, "training seed: the shuffling and the LoRA initialisation", min=0)
    max_rows: Optional[int] = opt(None, "use at most the first N training rows", min=1)
    batch_by: str = opt("row", "batch composition: row (rows shuffled one by one, as TRL) or question (all rows of "
                               "a question in one batch: its true and false options' pulls on the A/B base rate "
                               "cancel within the batch, leaving the part that tells them apart)",
                        choices=("row", "question"))


# --- data --------------------------------------------------------------------------------------------------
def load_rows(path: str, max_rows: Optional[int] = None) -> list[dict]:
    """Rows with prompt/chosen/rejected; chosen and rejected must be "A" and "B" (either order)."""
    rows = read_jsonl(path, required=["prompt", "chosen", "rejected"])
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


def label_token_ids(tok) -> dict[str, int]:
    """Token id of "A" and "B" without a leading space (the prompt ends with ':'); each must be one token."""
    out = {}
    for c in LABELS:
        ids = tok.encode(c, add_special_tokens=False)
        if len(ids) != 1:
            raise SelfAlignError(f"label {c!r} is not a single token for this tokenizer ({ids})")
        out[c] = ids[0]
    return out


# --- the loss ----------------------------------------------------------------------------------------------
def margins(model, engine, seqs: list[list[int]], chosen_ids: list[int], rejected_ids: list[int]) -> torch.Tensor:
    """logit(chosen) − logit(rejected) at the last position of each sequence, in input order (with grad)."""
    out = [None] * len(seqs)
    for idx, ids, mask, pos in engine.batches(seqs):
        logits = model(input_ids=ids, attention_mask=mask, position_ids=pos, logits_to_keep=1).logits[:, -1].float()
        c = torch.tensor([chosen_ids[i] for i in idx], device=logits.device)
        r = torch.tensor([rejected_ids[i] for i in idx], device=logits.device)
        m = logits.gather(-1, c[:, None]).squeeze(-1) - logits.gather(-1, r[:, None]).squeeze(-1)
        for k, i in enumerate(idx):
            out[i] = m[k]
    return torch.stack(out)


def dpo_loss(margin: torch.Tensor, ref_margin: torch.Tensor, beta: float):
    """Mean DPO loss, and the per-row reward margins beta·(policy margin − reference margin)."""
    reward = beta * (margin - ref_margin.to(margin.device))
    return -F.logsigmoid(reward).mean(), reward.detach()


class _Rows:
    """Encoded rows: token ids, chosen/rejected ids, labels, and the cached reference margins."""

    def __init__(self, rows: list[dict], engine, ids: dict[str, int]):
        self.seqs = [engine.encode(r["prompt"]) for r in rows]
        self.c = [ids[r["chosen"]] for r in rows]
        self.r = [ids[r["rejected"]] for r in rows]
        self.sign = [1.0 if r["chosen"] == P.TRUE_LABEL else -1.0 for r in rows]
        self.labels = [r["label"] for r in rows]
        self.ref: Optional[torch.Tensor] = None

    def margins(self, model, engine, idx=None) -> torch.Tensor:
        idx = range(len(self.seqs)) if idx is None else idx
        return margins(model, engine, [self.seqs[i] for i in idx], [self.c[i] for i in idx], [self.r[i] for i in idx])

    @torch.no_grad()
    def evaluate(self, model, engine, beta: float) -> dict:
        """P(True) AUROC (p_true = softmax over the A/B logits), loss and reward accuracy."""
        was = model.training
        model.eval()
        m = self.margins(model, engine).cpu()
        model.train(was)
        p_true = torch.sigmoid(m * torch.tensor(self.sign))
        loss, reward = dpo_loss(m, self.ref, beta)
        return {"auroc": auroc(self.labels, p_true.tolist()), "loss": float(loss),
                "reward_accuracy": float((reward > 0).float().mean()), "p_true_mean": float(p_true.mean())}


# --- training ----------------------------------------------------------------------------------------------
def _check(cfg: SKTuneConfig) -> None:
    require(cfg, "data", "output")
    for name in ("epochs", "batch_size", "grad_accum", "lora_r"):
        if getattr(cfg, name) < 1:
            raise SelfAlignError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(cfg, name)}")
    if cfg.batch_by not in ("row", "question"):
        raise SelfAlignError(f"--batch-by must be row or question, got {cfg.batch_by!r}")
    for name in ("max_steps", "eval_every", "max_rows"):
        if getattr(cfg, name) is not None and getattr(cfg, name) < 1:
            raise SelfAlignError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(cfg, name)}")


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


def _wrap(model, cfg: SKTuneConfig):
    if not cfg.lora:
        return model
    from peft import LoraConfig, get_peft_model

    lc = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                    target_modules=list(cfg.target_modules), task_type="CAUSAL_LM")
    try:
        return get_peft_model(model, lc)
    except ValueError as e:
        raise SelfAlignError(f"cannot apply LoRA to {cfg.model!r}: {str(e).splitlines()[0]}") from None


def _save(model, tok, out: Path, cfg: SKTuneConfig) -> None:
    from selfalign.models import BASE_FILE

    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    if cfg.lora:  # the adapter's base: the spec we trained on (an earlier adapter merged into it included)
        (out / BASE_FILE).write_text(json.dumps({"base_model": cfg.adapter or cfg.model}))
    else:
        tok.save_pretrained(out)


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


def run_sk_tune(cfg: SKTuneConfig) -> dict:
    """Train; the output directory is a model spec (adapter + selfalign_base.json, or a full model)."""
    from selfalign import models
    from selfalign.engines.hf import HFEngine

    _check(cfg)
    out = Path(cfg.output)
    done = _finished(out, cfg)
    if done:
        return {**done, "resumed": True, "note": "finished earlier with the same config; nothing trained"}
    train = load_rows(cfg.data, cfg.max_rows)
    valid = load_rows(cfg.valid_data) if cfg.valid_data else None
    torch.manual_seed(cfg.seed)
    acc = _accelerator()  # under `accelerate launch`: one process per device, each trains on its share of a batch
    device = str(acc.device) if acc and cfg.device == "auto" else cfg.device
    model, tok = models.load(cfg.model, adapter=cfg.adapter, device=device, dtype=cfg.dtype,
                             trust_remote_code=cfg.trust_remote_code, merge_adapters=True)
    info = dict(model.selfalign_spec)
    engine = HFEngine(model, tok, batch_size=cfg.batch_size)
    ids = label_token_ids(tok)
    tr, va = _Rows(train, engine, ids), (_Rows(valid, engine, ids) if valid else None)
    model.eval()
    with torch.no_grad():  # reference margins, once, before any update
        for d in filter(None, (tr, va)):
            d.ref = d.margins(model, engine).detach().cpu()
    model = _wrap(model, cfg)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt_ = torch.optim.AdamW(params, lr=cfg.learning_rate)
    rank, world, inner = (acc.process_index, acc.num_processes, model) if acc else (0, 1, model)
    if acc:
        model, opt_ = acc.prepare(model, opt_)

    n_batches = len(make_batches(train, cfg.batch_size, random.Random(cfg.seed), cfg.batch_by))
    steps_per_epoch = math.ceil(n_batches / cfg.grad_accum)
    total = steps_per_epoch * cfg.epochs if cfg.max_steps is None else min(cfg.max_steps, steps_per_epoch * cfg.epochs)
    eval_every = cfg.eval_every or steps_per_epoch
    out.mkdir(parents=True, exist_ok=True)
    log_f = open(out / LOG if rank == 0 else os.devnull, "w", encoding="utf-8")

    def log(rec):
        log_f.write(json.dumps(rec) + "\n")
        log_f.flush()

    rng = random.Random(cfg.seed)
    best, best_step, step, t0 = None, None, 0, time.time()
    initial = va.evaluate(model, engine, cfg.beta) if va else None
    if initial:
        log({"step": 0, "valid": initial})
    bar = Progress(total, "sk-tune", "step", enabled=rank == 0)
    last = {}
    try:
        while step < total:
            batches = make_batches(train, cfg.batch_size, rng, cfg.batch_by)
            for g in range(0, len(batches), cfg.grad_accum):
                if step >= total:
                    break
                group = batches[g:g + cfg.grad_accum]
                losses, rewards = [], []
                for b in group:
                    b = b[rank::world] or b[:1]  # this process's share of the batch
                    loss, reward = dpo_loss(tr.margins(model, engine, b), tr.ref[b], cfg.beta)
                    scaled = loss * len(b) / sum(len(x[rank::world] or x[:1]) for x in group)
                    acc.backward(scaled) if acc else scaled.backward()
                    losses.append(loss.item() * len(b))
                    rewards.append(reward.cpu())
                opt_.step()
                opt_.zero_grad(set_to_none=True)
                step += 1
                rw = torch.cat(rewards)
                last = {"step": step, "loss": sum(losses) / len(rw), "reward_margin": float(rw.mean()),
                        "reward_accuracy": float((rw > 0).float().mean())}
                if va and (step % eval_every == 0 or step == total):
                    last["valid"] = va.evaluate(inner, engine, cfg.beta)
                    key = (last["valid"]["auroc"], -last["valid"]["loss"])  # ties: the lower loss
                    if key[0] is not None and (best is None or key > best):
                        best, best_step = key, step
                        if rank == 0:
                            _save(inner, tok, out, cfg)
                log(last)
                bar.update(1, f"loss {last['loss']:.4f}, acc {last['reward_accuracy']:.2f}")
    finally:
        bar.close()
        log_f.close()
    checksums = _rank_checksums(inner, acc)
    if rank != 0:
        return {"output": str(out), "rank": rank}
    if best_step is None:  # no validation (or one class only): keep the last weights
        _save(inner, tok, out, cfg)
    summary = {"output": str(out), "finished": True, "resumed": False, "steps": step, "rows": len(train),
               "valid_rows": len(valid) if valid else 0, "saved": "best" if best_step else "last",
               "best_step": best_step, "best_valid_auroc": best[0] if best else None, "initial_valid": initial, "final": last,
               "label_token_ids": ids, "processes": world, "trainable_checksums": checksums,
               "seconds": round(time.time() - t0, 2)}
    write_json(out / SUMMARY, meta(cfg, stage="sk-tune", model_info=info, **summary))
    return summary
