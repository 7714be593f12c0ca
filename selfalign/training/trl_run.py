"""What the stages that train through a TRL trainer share (``align``: ``DPOTrainer``; ``sft``: ``SFTTrainer``): the
training flags, TRL's config built from them (then a recipe's ``trl:`` fields, checked), the model loaded after the
processes are set up (``loading``), the held-out rows evaluated (``heldout``), the trackers' logs kept under
``OUTPUT/logs``, the newest checkpoint to resume from, the per-step log and the upload to the hub.

A killed run resumes from the newest complete checkpoint under ``OUTPUT/checkpoints`` (the Trainer's own resume);
the step log keeps the lines up to that checkpoint, so every step is logged once. ``checkpoints/`` is deleted when
the run finishes; ``logs/`` (TensorBoard's event files, wandb's run folder) is kept.
"""
from __future__ import annotations

import importlib.util
import json
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Optional

from selfalign.config import Config, flag, opt
from selfalign.errors import SelfAlignError
from selfalign.store.io import iter_jsonl, peek_json, repair_tail, write_text

CKPT = "checkpoints"
LOGS = "logs"
SWITCH = ("auto", "on", "off")
# where each tracker writes, unless its own variable is set: under OUTPUT/logs (kept when checkpoints/ is deleted)
TRACKER_DIRS = {"tensorboard": ("TENSORBOARD_LOGGING_DIR", "tensorboard"), "wandb": ("WANDB_DIR", "")}
# TrainArgs keys added after runs were made: a finished run recorded without them is the same run at their default
NEWER_DEFAULTS = {"attn_implementation": None, "load_in_4bit": False, "eval_fraction": 0.0, "eval_steps": None}


@dataclass
class TrainArgs(Config):
    """The optimisation flags of a TRL trainer's stage. A subclass names its TRL config class (``trl_class``), its
    stage (``STAGE``) and the TRL fields its flags own (``TRL_OWNED``: ``learning_rate`` is ``--learning-rate``)."""
    STAGE: ClassVar[str] = "train"
    TRL_NAME: ClassVar[str] = "TrainingArguments"  # the TRL config class's name, for --help (which imports no TRL)
    TRL_OWNED: ClassVar[Optional[dict]] = None  # None: trl_args.OWNED

    learning_rate: float = opt(5e-5, "AdamW learning rate", gt=0)
    epochs: float = opt(1.0, "passes over the training rows", gt=0)
    max_steps: Optional[int] = opt(None, "stop after this many optimizer steps (overrides --epochs)", min=1)
    grad_accum: int = opt(1, "batches per optimizer step", min=1)
    max_length: int = opt(1024, "truncate prompt+response to this many tokens (the end is cut)", min=1)
    warmup_steps: float = opt(0, "linear learning-rate warm-up: N steps, or a fraction of all steps if < 1", min=0)
    save_steps: int = opt(25, "write a resumable checkpoint every N steps", min=1)
    bf16: str = opt("auto", "bfloat16 mixed precision: auto (on with a GPU that supports it), on, off",
                    choices=SWITCH)
    gradient_checkpointing: str = opt("auto", "auto (on with a GPU), on, off", choices=SWITCH)
    seed: int = opt(0, "training seed: the data order and the adapter initialisation", min=0)
    report_to: str = opt("none", "training curves to: none, tensorboard (OUTPUT/logs/tensorboard) or wandb "
                                 "(OUTPUT/logs/wandb), kept after the run", choices=("none", *TRACKER_DIRS))
    attn_implementation: Optional[str] = opt(None, "attention kernel: eager, sdpa or flash_attention_2 (CUDA, the "
                                                   "flash-attn package); default: transformers' choice",
                                             choices=("eager", "sdpa", "flash_attention_2"))
    load_in_4bit: bool = opt(False, "QLoRA: load the base as 4-bit NF4 weights (bitsandbytes, a CUDA GPU) and train "
                                    "a LoRA adapter on them")
    eval_fraction: float = opt(0.0, "hold out this fraction of the prompts (by hash, with --seed) for TRL's "
                                    "evaluation; or give held-out rows as a file", min=0, lt=1)
    eval_steps: Optional[int] = opt(None, "with held-out rows: evaluate every N steps (default: --save-steps) and at "
                                          "the end; eval_loss etc. go to the step log", min=1)
    push_to_hub: bool = opt(False, "upload the finished output folder to the hub (repo: --trl.hub_model_id, else "
                                   "the folder's name); never without this flag")
    trl: dict = opt({}, "any other field of the trainer's TRL config (DPOConfig, SFTConfig) or TrainingArguments: "
                        "a `trl:` mapping in a recipe, --trl.KEY VALUE or TRL's --KEY VALUE on the command line "
                        "(lr_scheduler_type, weight_decay, ...)", cli=False)

    @staticmethod
    def trl_class():
        raise NotImplementedError

    @classmethod
    def epilog(cls) -> str:
        """--help's last paragraph: the pass-through of TRL's own fields."""
        return (f"--trl.KEY VALUE (or TRL's own --KEY VALUE; a bare --trl.KEY is true): any other field of TRL's "
                f"{cls.TRL_NAME} (transformers' TrainingArguments included), typed and checked against it; an "
                f"unknown field is one line (exit 2). E.g. --trl.lr_scheduler_type cosine --trl.weight_decay 0.01. "
                f"In a recipe: {cls.STAGE}: {{trl: {{lr_scheduler_type: cosine}}}}. A field that a flag above sets "
                f"(learning_rate: --learning-rate, model_init_kwargs: --attn-implementation / --dtype / "
                f"--load-in-4bit) is refused with that flag's name. Recorded in train_summary.json and the model card.")

    @classmethod
    def trl_owned(cls) -> dict:
        from selfalign.training import trl_args

        return trl_args.OWNED if cls.TRL_OWNED is None else cls.TRL_OWNED

    def __post_init__(self):
        super().__post_init__()  # every field against its declaration
        from selfalign.training import loading

        loading.check_flags(self)
        files = [flag(f) for f in ("eval_pairs", "eval_data") if getattr(self, f, None)]  # align's / sft's file
        if files and self.eval_fraction:
            raise SelfAlignError(f"held-out rows: give {files[0]} FILE or --eval-fraction, not both")
        if self.eval_steps is not None and not (files or self.eval_fraction):
            raise SelfAlignError("--eval-steps: there are no held-out rows to evaluate; give "
                                 f"{'--eval-pairs' if self.STAGE == 'align' else '--eval-data'} FILE or "
                                 "--eval-fraction F")
        if self.trl:  # unknown or owned keys fail when the config is made (a recipe: at `run --dry-run`)
            from selfalign.training import trl_args

            trl_args.trl_kwargs(self.trl_class(), {}, self.trl, owned=self.trl_owned(), where=f"{self.STAGE}: trl")


def switch(value: str, gpu: bool) -> bool:
    return gpu if value == "auto" else value == "on"


def checkpointing_field(cls) -> str:
    """transformers 5.x calls it ``activation_checkpointing`` (the old name warns on every run); older, the old."""
    from selfalign.training import trl_args

    return "activation_checkpointing" if "activation_checkpointing" in trl_args.fields(cls) else "gradient_checkpointing"


def training_args(cfg: TrainArgs, out: Path, steps: int, device: str, evaluate: bool = False, **extra):
    """The stage's TRL config: selfalign's flags (and ``extra``, the stage's own: ``beta``), then the recipe's /
    command line's ``trl`` fields (checked). ``evaluate``: there are held-out rows (evaluated every
    ``--eval-steps``)."""
    import torch

    from selfalign.training import trl_args

    gpu = device.startswith("cuda")
    if cfg.report_to != "none" and importlib.util.find_spec(cfg.report_to) is None:
        raise SelfAlignError(f"--report-to {cfg.report_to}: the package is not installed (pip install {cfg.report_to})")
    cls = cfg.trl_class()
    base = dict(
        output_dir=str(out / CKPT), learning_rate=cfg.learning_rate, num_train_epochs=cfg.epochs, max_steps=steps,
        per_device_train_batch_size=cfg.batch_size, gradient_accumulation_steps=cfg.grad_accum,
        max_length=cfg.max_length, warmup_steps=cfg.warmup_steps,
        bf16=switch(cfg.bf16, gpu and torch.cuda.is_bf16_supported()), use_cpu=device == "cpu",
        **{checkpointing_field(cls): switch(cfg.gradient_checkpointing, gpu)},
        logging_steps=1, save_strategy="steps", save_steps=cfg.save_steps, save_total_limit=2, seed=cfg.seed,
        data_seed=cfg.seed, report_to=[] if cfg.report_to == "none" else [cfg.report_to], disable_tqdm=True,
        dataloader_num_workers=0, per_device_eval_batch_size=cfg.batch_size,
        eval_strategy="steps" if evaluate else "no", eval_steps=(cfg.eval_steps or cfg.save_steps) if evaluate else None,
        **extra)
    args = trl_args.build(cls, base, cfg.trl or {}, owned=cfg.trl_owned(), where=f"{cfg.STAGE}: trl")
    if not evaluate and args.eval_strategy != "no":
        data = "--eval-pairs" if cfg.STAGE == "align" else "--eval-data"
        raise SelfAlignError(f"{cfg.STAGE}: trl.eval_strategy {args.eval_strategy.value}: there are no held-out rows "
                             f"to evaluate; give {data} FILE or --eval-fraction F")
    return args


@contextmanager
def tracker_logs(out: Path, report_to: str):
    """Inside, the tracker of ``report_to`` writes under ``OUTPUT/logs`` (its variable, unless the user set it):
    the Trainer's default for TensorBoard is inside ``checkpoints/``, which is deleted when the run finishes."""
    var, sub = TRACKER_DIRS.get(report_to, (None, ""))
    if var is None or os.environ.get(var):
        yield
        return
    where = (out / LOGS / sub).resolve()
    where.mkdir(parents=True, exist_ok=True)
    os.environ[var] = str(where)
    try:
        yield
    finally:
        os.environ.pop(var, None)


def fit(trainer, resume: Optional[Path], evaluate: bool) -> None:
    """``trainer.train`` (from ``resume``), then with held-out rows one more evaluation when the last step was not
    evaluated (the final model's metrics are the step log's last eval line)."""
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    step = trainer.state.global_step
    if evaluate and not any("eval_loss" in h and h.get("step") == step for h in trainer.state.log_history):
        trainer.evaluate()


def last(log: list[dict], key: str = "loss") -> dict:
    """The step log's last line holding ``key`` (``loss``: training; ``eval_loss``: the held-out rows)."""
    return next((r for r in reversed(log) if key in r), {})


def load_model(cfg, args):
    """The model, loaded after TRL's config has set up the processes (``args.device`` creates accelerate's state
    and, under ``accelerate launch``, the process group): each process loads onto its own device, and under ZeRO-3
    (``zero3_init_flag``) or FSDP's RAM-efficient loading transformers loads it sharded, and placing it is left to
    the trainer."""
    from selfalign import models
    from selfalign.training import loading

    device = str(args.device)  # creates the state; cuda:LOCAL_RANK per process
    where = device if args.world_size > 1 else cfg.device
    return models.load(cfg.model, adapter=cfg.adapter, device=where, dtype=cfg.dtype,
                       trust_remote_code=cfg.trust_remote_code, merge_adapters=True, place=not sharded_run(),
                       allow_pickle=cfg.allow_pickle, model_kwargs=loading.model_kwargs(cfg, models.pick_device(where)))


def sharded_run() -> bool:
    """ZeRO-3, or FSDP (``accelerate launch`` sets its variable): transformers loads the weights sharded."""
    from transformers.integrations import is_deepspeed_zero3_enabled

    return is_deepspeed_zero3_enabled() or os.environ.get("ACCELERATE_USE_FSDP", "false").lower() in ("1", "true")


def last_checkpoint(out: Path) -> Optional[Path]:
    """The newest complete checkpoint: the Trainer writes trainer_state.json last, so one that parses is whole."""
    def step(p: Path) -> int:
        tail = p.name.rsplit("-", 1)[-1]
        return int(tail) if tail.isdigit() else -1

    for ckpt in sorted((out / CKPT).glob("checkpoint-*"), key=step, reverse=True):
        if peek_json(ckpt / "trainer_state.json") is not None:
            return ckpt
    return None


def step_logger(path: Path, resume_step: int, keys: tuple):
    """A TrainerCallback that appends one JSON line per logged step (the ``keys`` of the Trainer's log that it has:
    loss, reward margins, ...)."""
    from transformers import TrainerCallback

    if path.exists():  # keep the lines up to the checkpoint we resume from; later ones are redone
        repair_tail(path)  # a line half-written by a killed run
        kept = [r for r in iter_jsonl(path) if isinstance(r.get("step"), int) and r["step"] <= resume_step]
        write_text(path, "".join(json.dumps(r) + "\n" for r in kept))

    keys = (*keys, *(f"eval_{k}" for k in keys))  # the held-out rows' metrics (TRL logs them as eval_KEY)

    class StepLog(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kw):
            rec = {"step": state.global_step, **{k: logs[k] for k in keys if k in (logs or {})}}
            if "loss" in rec or "rewards/margins" in rec or "eval_loss" in rec:
                with open(path, "a", encoding="utf-8") as f:
                    f.write(json.dumps(rec) + "\n")

    return StepLog()


def push(out: Path, trl: dict, stage: str) -> str:
    """Upload the output folder (not its checkpoints, nor the trackers' logs, whose recorded TrainingArguments
    name this machine's folders) to the hub; the repo is trl's hub_model_id or the name."""
    from huggingface_hub import HfApi

    repo = trl.get("hub_model_id") or out.resolve().name
    api = HfApi()  # the token: $HF_TOKEN or `hf auth login`, never a flag (flags are recorded)
    try:
        api.create_repo(repo, private=bool(trl.get("hub_private_repo")), exist_ok=True)
        api.upload_folder(folder_path=str(out), repo_id=repo, ignore_patterns=[f"{CKPT}/*", f"{LOGS}/*"],
                          commit_message=f"selfalign {stage}")
    except Exception as e:  # noqa: BLE001 - network, auth: the run itself is finished and saved
        raise SelfAlignError(f"--push-to-hub: the run is saved in {out}, but the upload to {repo!r} failed: "
                             f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    return repo
