"""Resumable training checkpoints for the hand-written sk-tune loop (``align`` resumes through TRL's own).

``<output>/checkpoint/`` holds the trainable weights (safetensors), the optimizer and scheduler states, the torch RNG
state and ``state.json`` (step, best validation key, config). It is written into ``checkpoint.tmp/`` and renamed, so
the directory on disk is always a complete checkpoint. A finished run removes it.
"""
from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path

import torch

from selfalign.errors import SelfAlignError
from selfalign.errors import InputError
from selfalign.store.io import parse_json, peek_json, read_text
from selfalign.training.lora import config_dict

DIR = "checkpoint"


def _trainable(model) -> dict:
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def save(out: Path, cfg, model, opt, sched, state: dict) -> None:
    from safetensors.torch import save_file

    tmp, final = out / (DIR + ".tmp"), out / DIR
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file({n: p.detach().contiguous().cpu() for n, p in _trainable(model).items()}, str(tmp / "weights.safetensors"))
    torch.save({"optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "rng": torch.get_rng_state()},
               tmp / "optimizer.pt")
    (tmp / "state.json").write_text(json.dumps({**state, "config": config_dict(cfg)}))
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)


def peek(out: Path) -> dict | None:
    """The state of the checkpoint in ``out`` (step, plan, ...) without loading it; None when there is none."""
    state = peek_json(out / DIR / "state.json")
    return state if isinstance(state, dict) else None


def load(out: Path, cfg, model, opt, sched) -> dict:
    """Restore the newest checkpoint into model/opt/sched; its state, or a fresh state when there is none."""
    fresh = {"step": 0, "best": None, "best_step": None, "stale": 0}
    path = out / DIR
    state = peek_json(path / "state.json")
    if not isinstance(state, dict):
        return fresh
    if state.pop("config", None) != config_dict(cfg):
        raise SelfAlignError(f"{path}: a checkpoint of an sk-tune run with another config; use a new --output "
                             "or delete it")
    from safetensors.torch import load_file

    weights = load_file(str(path / "weights.safetensors"))
    params = _trainable(model)
    if set(weights) != set(params):
        raise SelfAlignError(f"{path}: its weights do not fit this model; delete the checkpoint")
    with torch.no_grad():
        for n, p in params.items():
            p.copy_(weights[n].to(p.device, p.dtype))
    rest = torch.load(path / "optimizer.pt", weights_only=True)
    opt.load_state_dict(rest["optimizer"])
    sched.load_state_dict(rest["scheduler"])
    torch.set_rng_state(rest["rng"])
    return {**fresh, **state}


def truncate_log(path: Path, step: int) -> None:
    """Keep the log records up to ``step`` (a killed run may have logged steps past its checkpoint) and drop a
    half-written last line."""
    if not path.exists():
        return
    keep = []
    for line in read_text(path).splitlines():
        try:
            rec = parse_json(line, path)
        except InputError:
            break
        if not isinstance(rec, dict):
            break
        if rec.get("step", 0) > step or (step == 0 and rec.get("step", 0) == 0):
            break
        keep.append(line + "\n")
    path.write_text("".join(keep), encoding="utf-8")


def clear(out: Path) -> None:
    shutil.rmtree(out / DIR, ignore_errors=True)


class StopFlag:
    """Catches SIGTERM: ``set`` turns true and the loop stops after its current step (then saves)."""

    def __init__(self):
        self.set = False
        try:
            self._old = signal.signal(signal.SIGTERM, self._handle)
        except ValueError:  # not the main thread
            self._old = None

    def _handle(self, *_):
        self.set = True

    def restore(self) -> None:
        if self._old is not None:
            signal.signal(signal.SIGTERM, self._old)
