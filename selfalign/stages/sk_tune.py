"""SK-Tuning: DPO on a single A/B answer token, which calibrates the Self-Eval P(True).

With one answer token, DPO's loss is a logistic loss on the policy's logit margin (chosen − rejected) minus
the reference model's margin: the log-softmax normalisers cancel. One forward pass (last position) per row.
"""
from __future__ import annotations

import json
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
from selfalign.store.hashes import file_hash
from selfalign.store.io import line_numbers, read_jsonl, write_json
from selfalign.metrics import auroc
from selfalign.training import checkpoint as ckpt
from selfalign.store.progress import Progress
from selfalign.store.provenance import meta
from selfalign.stages.sk_tune_batches import (  # noqa: F401 - make_batches: API
    class_weights, epoch_steps, make_batches, plan_fingerprint, planned_steps, step_groups)
from selfalign.stages.sk_tune_trunk import CACHE as ENCODE_CACHE, encode_rows  # noqa: F401 - encode_rows: API
from selfalign.training.lora import LOG, SUMMARY, LoraArgs, accelerator, finished_run, rank_checksums
from selfalign.selfeval.prompt import SelfEvalPrompt
from selfalign.store.guard import OutputGuard

LABELS = (P.TRUE_LABEL, P.FALSE_LABEL)


@dataclass
class SKTuneConfig(LoraArgs, ModelArgs):
    data: Optional[str] = opt(None, "SK-Tuning training JSONL (rows with prompt, chosen, rejected; from sk-data)")
    valid_data: Optional[str] = opt(None, "validation JSONL: keep the checkpoint with the best P(True) AUROC")
    output: Optional[str] = opt(None, "output directory (adapter, or full model with --no-lora)")
    beta: float = opt(0.1, "DPO beta", gt=0)
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
    class_weight: str = opt("none", "weight each row's loss: none, or balanced (true and false rows weigh equally in "
                                    "all, n / (2 n_class) each, so a judge cannot learn the rows' base rate: the "
                                    "model's own answers are mostly false)", choices=("none", "balanced"))


# --- data --------------------------------------------------------------------------------------------------
def load_rows(path: str, max_rows: Optional[int] = None) -> list[dict]:
    """Rows with prompt/chosen/rejected; chosen and rejected must be "A" and "B" (either order)."""
    rows = read_jsonl(path, required=["prompt", "chosen", "rejected"],  # of the JSON types io.FIELDS says
                      fields=["label", "id", "question", "proposal"])
    from selfalign.data.mc import check_one_set

    lines = line_numbers(path)
    check_one_set(path, zip(lines, rows))  # mc-data rows of TruthfulQA name their option set: one per file
    for r, n in zip(rows, lines):
        if {r["chosen"], r["rejected"]} != set(LABELS):
            raise InputError(path, f"chosen/rejected must be {LABELS[0]!r} and {LABELS[1]!r}, got "
                                   f"{r['chosen']!r}/{r['rejected']!r}", n)
        r["label"] = int(r.get("label", int(r["chosen"] == P.TRUE_LABEL)))
    return rows[:max_rows] if max_rows else rows


def dpo_loss(margin: torch.Tensor, ref_margin: torch.Tensor, beta: float, weight: Optional[torch.Tensor] = None):
    """Mean DPO loss (each row's loss times its ``weight`` when given), and the per-row reward margins
    beta·(policy margin − reference margin)."""
    reward = beta * (margin - ref_margin.to(margin.device))
    loss = -F.logsigmoid(reward)
    return (loss if weight is None else loss * weight.to(loss.device)).mean(), reward.detach()



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


def _wrap(model, cfg: SKTuneConfig):
    if not cfg.lora:
        return model
    from peft import get_peft_model

    from selfalign.training.trunk import top_layer_ids

    top = {} if cfg.top_layers is None else {"layers_to_transform": top_layer_ids(model, cfg.top_layers)}
    try:
        return get_peft_model(model, cfg.lora_config(**top))
    except ValueError as e:
        raise SelfAlignError(f"cannot apply LoRA to {cfg.model!r}: {str(e).splitlines()[0]}") from None


def _card(cfg: SKTuneConfig, training: Optional[dict] = None):
    from selfalign.store.paths import portable
    from selfalign.training.adapters import ModelCard, data_sources, hub_datasets

    return ModelCard(method="SK-Tuning (single-token DPO on the Self-Eval P(True) answer letter)",
                     judge="the model itself (Self-Eval P(True), letters read in context)",
                     data=f"`{portable(str(cfg.data))}`", datasets=hub_datasets(data_sources(cfg.data)),
                     tags=["sk-tuning", "dpo"],
                     hyperparameters={k: getattr(cfg, k) for k in ("beta", "learning_rate", "lr_scheduler",
                                                                   "warmup_ratio", "weight_decay", "epochs",
                                                                   "batch_size", "lora_r", "top_layers", "seed")},
                     training={k: v for k, v in (training or {}).items() if v is not None})


def _save(model, tok, out: Path, cfg: SKTuneConfig) -> None:
    """The adapter (or full model), the tokenizer, the base as the user named it, and a model card."""
    from selfalign.training.adapters import save_adapter

    save_adapter(model, tok, out, base_spec=cfg.adapter or cfg.model, lora=cfg.lora, card=_card(cfg))


def _rerender(rows: list[dict], preset: Optional[str]) -> list[dict]:
    if preset is None:
        return rows
    prompt = SelfEvalPrompt.named(preset)
    for r in rows:
        if not isinstance(r.get("question"), str) or not isinstance(r.get("proposal"), str):
            raise SelfAlignError("--selfeval-prompt re-renders rows from 'question' and 'proposal'; these rows "
                                 "lack them (build them with selfalign sk-data)")
    return [dict(r, prompt=prompt.text(r["question"], r["proposal"])) for r in rows]


@dataclass
class _Setup:
    """What the training loop works with: the rows (encoded, with their reference margins), the model and its
    optimizer, the schedule, and this process's place among the processes."""
    train: list
    valid: Optional[list]
    tr: object  # encode_rows of train / valid; ref: their reference margins, computed once before any update
    va: object
    ref: dict
    probe: list  # the training rows whose AUROC is logged at each evaluation
    model: object  # what the loop calls (accelerate's wrapper under `accelerate launch`); inner: the model itself
    inner: object
    tok: object
    info: dict
    params: list
    opt: object
    sched: object
    acc: object
    rank: int
    world: int
    total: int  # optimizer steps planned
    steps_per_epoch: int
    encode_seconds: float
    weights: Optional[torch.Tensor] = None  # per training row (--class-weight), or None


def _setup(cfg: SKTuneConfig, train: list, valid: Optional[list]) -> _Setup:
    """Load the model, encode the rows and their reference margins, wrap LoRA, build optimizer and schedule."""
    from transformers import get_scheduler

    from selfalign import models
    from selfalign.engines.hf import HFEngine
    from selfalign.stages import sk_tune_trunk

    acc = accelerator()  # under `accelerate launch`: one process per device, each trains on its share of a batch
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
    model.eval()  # the reference margins: once, before any update; kept in the output folder until the run ends
    tr, va, ref = sk_tune_trunk.encode_all(train, valid, engine, model, cfg, info, None if acc else Path(cfg.output),
                                           prep.update)
    prep.close()
    t_enc = time.time() - t_enc
    model = _wrap(model, cfg)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt_ = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    per_epoch = epoch_steps(train, cfg)
    steps_per_epoch = per_epoch[0]  # the default evaluation interval
    total = planned_steps(train, cfg)
    sched = get_scheduler(cfg.lr_scheduler, opt_, num_warmup_steps=int(cfg.warmup_ratio * total),
                          num_training_steps=total)
    rank, world, inner = (acc.process_index, acc.num_processes, model) if acc else (0, 1, model)
    if acc:
        model, opt_ = acc.prepare(model, opt_)
    return _Setup(train, valid, tr, va, ref, probe, model, inner, tok, info, params, opt_, sched, acc, rank, world,
                  total, steps_per_epoch, t_enc, class_weights([r["label"] for r in train], cfg.class_weight))


def _train_step(s: _Setup, group: list[list[int]], cfg: SKTuneConfig) -> dict:
    """One optimizer step over a group of batches (each process on its share); the step's training figures."""
    losses, rewards = [], []
    for b in group:
        b = b[s.rank::s.world] or b[:1]  # this process's share of the batch
        loss, reward = dpo_loss(s.tr.margins(s.model, b), s.ref["train"][b], cfg.beta,
                                None if s.weights is None else s.weights[b])
        scaled = loss * len(b) / sum(len(x[s.rank::s.world] or x[:1]) for x in group)
        s.acc.backward(scaled) if s.acc else scaled.backward()
        losses.append(loss.item() * len(b))
        rewards.append(reward.cpu())
    grad_norm = (torch.nn.utils.clip_grad_norm_(s.params, cfg.max_grad_norm) if cfg.max_grad_norm > 0
                 else torch.sqrt(sum((p.grad.float() ** 2).sum() for p in s.params if p.grad is not None)))
    lr = s.sched.get_last_lr()[0]
    s.opt.step()
    s.sched.step()
    s.opt.zero_grad(set_to_none=True)
    rw = torch.cat(rewards)
    return {"loss": sum(losses) / len(rw), "reward_margin": float(rw.mean()),
            "reward_accuracy": float((rw > 0).float().mean()), "lr": lr, "grad_norm": float(grad_norm)}


def _evaluation(s: _Setup, cfg: SKTuneConfig) -> dict:
    """P(True) AUROC, loss and reward accuracy on the probe of training rows and on the validation rows."""
    from selfalign.stages import sk_tune_trunk

    rec = {"train": evaluate(s.inner, sk_tune_trunk.Subset(s.tr, s.probe), s.ref["train"][s.probe],
                             [s.train[i]["label"] for i in s.probe], cfg.beta)}
    if s.va:
        rec["valid"] = evaluate(s.inner, s.va, s.ref["valid"], [r["label"] for r in s.valid], cfg.beta)
    return rec


def _keep_best(s: _Setup, st: dict, rec: dict, out: Path, cfg: SKTuneConfig) -> None:
    """Save the weights when the validation AUROC improved (ties: the lower loss); count the evaluations since."""
    key = (rec["valid"]["auroc"], -rec["valid"]["loss"]) if s.va else None
    if key and key[0] is not None and (st["best"] is None or key > tuple(st["best"])):
        st.update(best=list(key), best_step=st["step"], stale=0)
        if s.rank == 0:
            _save(s.inner, s.tok, out, cfg)
    elif key:
        st["stale"] += 1


def _check_plan(out: Path, plan: str) -> None:
    """A checkpoint of another batch plan (or an older sk-tune's, which recorded none) is refused, not resumed."""
    state = ckpt.peek(out)
    if state and state.get("step", 0) > 0 and state.get("plan") != plan:
        raise SelfAlignError(f"{out / ckpt.DIR}: a checkpoint at step {state['step']} of another batch plan ("
                             f"{'not recorded: an older sk-tune' if 'plan' not in state else 'other batches'}); "
                             "resuming would mix two runs: delete it or use a new --output")


def run_sk_tune(cfg: SKTuneConfig) -> dict:
    """Train; the output directory is a model spec (adapter + selfalign_base.json, or a full model).

    A killed run resumes from its newest checkpoint (``checkpoint/``: weights, optimizer, scheduler, RNG, step); a
    second writer of the same output is refused (``<output>.lock``)."""
    _check(cfg)
    with OutputGuard(cfg.output, folder=True, inputs=[cfg.data, cfg.valid_data]):
        return _train(cfg)


def _train(cfg: SKTuneConfig) -> dict:
    out = Path(cfg.output)
    done = finished_run(out, cfg, "sk-tune")
    if done:
        return {**done, "resumed": True, "note": "finished earlier with the same config; nothing trained"}
    train = _rerender(load_rows(cfg.data, cfg.max_rows), cfg.selfeval_prompt)
    valid = _rerender(load_rows(cfg.valid_data), cfg.selfeval_prompt) if cfg.valid_data else None
    plan = plan_fingerprint(train, cfg)
    _check_plan(out, plan)  # before the model loads and the rows are encoded
    torch.manual_seed(cfg.seed)
    s = _setup(cfg, train, valid)
    eval_every = cfg.eval_every or s.steps_per_epoch
    out.mkdir(parents=True, exist_ok=True)
    state = ckpt.load(out, cfg, s.inner, s.opt, s.sched)  # resume: the newest complete checkpoint of this config
    st = {k: state.get(k) for k in ("step", "best", "best_step", "stale", "initial")}  # what a checkpoint keeps
    st["plan"] = plan
    log_f = open(out / LOG if s.rank == 0 else os.devnull, "a", encoding="utf-8")
    if s.rank == 0:
        ckpt.truncate_log(out / LOG, st["step"])
        log_f.seek(0, 2)

    def log(rec):
        log_f.write(json.dumps(rec) + "\n")
        log_f.flush()

    t0 = time.time()
    if st["step"] == 0:
        st["initial"] = _evaluation(s, cfg)
        log({"step": 0, **st["initial"], "lr": 0.0})
    bar = Progress(s.total - st["step"], "sk-tune", "step", enabled=s.rank == 0)
    last, stop = {}, ckpt.StopFlag()
    try:
        for epoch, group in step_groups(train, cfg, st["step"]):
            if st["step"] >= s.total or stop.set:
                break
            figures = _train_step(s, group, cfg)
            st["step"] += 1
            last = {"step": st["step"], "epoch": epoch, **figures}
            if st["step"] % eval_every == 0 or st["step"] == s.total:
                last.update(_evaluation(s, cfg))
                _keep_best(s, st, last, out, cfg)
                log(last)
                if s.rank == 0:
                    ckpt.save(out, cfg, s.inner, s.opt, s.sched, st)
                if cfg.patience and st["stale"] >= cfg.patience:
                    break
            else:
                log(last)
            bar.update(1, f"loss {last['loss']:.4f}, acc {last['reward_accuracy']:.2f}")
    finally:
        bar.close()
        log_f.close()
        stop.restore()
    if stop.set:  # SIGTERM: the newest checkpoint is on disk; a rerun continues from it
        if s.rank == 0:
            ckpt.save(out, cfg, s.inner, s.opt, s.sched, st)
        raise Interrupted(f"at step {st['step']}/{s.total}; checkpoint in {out / ckpt.DIR}; rerun the same command "
                          "to continue", 143)
    return _finish(s, st, last, state["step"] > 0, out, cfg, t0)


def _finish(s: _Setup, st: dict, last: dict, resumed: bool, out: Path, cfg: SKTuneConfig, t0: float) -> dict:
    """The last weights when no validation chose any, the model card's figures, train_summary.json."""
    checksums = rank_checksums(s.inner, s.acc)
    if s.rank != 0:
        return {"output": str(out), "rank": s.rank}
    best, best_step, initial = st["best"], st["best_step"], st["initial"]
    if best_step is None:  # no validation (or one class only): keep the last weights
        _save(s.inner, s.tok, out, cfg)
    _card_training(out, cfg, {"rows": len(s.train), "steps": st["step"], "best step": best_step,
                              "best validation AUROC": best[0] if best else None,
                              "initial validation AUROC": ((initial or {}).get("valid") or {}).get("auroc")})
    summary = {"output": str(out), "finished": True, "resumed": resumed, "steps": st["step"],
               "planned_steps": s.total, "stopped_early": st["step"] < s.total, "rows": len(s.train),
               "valid_rows": len(s.valid) if s.valid else 0, "saved": "best" if best_step else "last",
               "best_step": best_step, "best_valid_auroc": best[0] if best else None, "initial": initial,
               "initial_valid": (initial or {}).get("valid"), "final": last,
               "answer_token_ids": {"A": sorted({i for x in s.tr.a for i in x}),
                                    "B": sorted({i for x in s.tr.b for i in x})},
               "selfeval_template": (SelfEvalPrompt.named(cfg.selfeval_prompt).template_id if cfg.selfeval_prompt
                                     else "rows' own"),
               "input_hashes": {k: file_hash(v) for k, v in (("data", cfg.data), ("valid_data", cfg.valid_data))
                                if v and Path(v).is_file()},
               "processes": s.world, "trainable_checksums": checksums, "encode_seconds": round(s.encode_seconds, 2),
               "seconds": round(time.time() - t0, 2)}
    ckpt.clear(out)
    (out / ENCODE_CACHE).unlink(missing_ok=True)
    write_json(out / SUMMARY, meta(cfg, stage="sk-tune", model_info=s.info, **summary))
    return summary


def _card_training(out: Path, cfg: SKTuneConfig, training: dict) -> None:
    """Rewrite the saved model card with the training figures (the weights saved are the best checkpoint's)."""
    from selfalign.training.adapters import CARD, write_card

    if (out / CARD).exists():
        write_card(out, cfg.adapter or cfg.model, "adapter" if cfg.lora else "model", _card(cfg, training))
