"""Where an inference engine's model runs when one GPU is not enough, or not the only one.

Three settings, flags and recipe keys of every stage that loads a model for inference (``config.ParallelArgs``):

- ``device_map`` (hf engine): one model spread over the visible GPUs by accelerate's device map, layer by layer, so
  a model larger than one GPU loads (a 70B model in bf16 on 2 or more 80 GB GPUs);
- ``tensor_parallel_size`` (vllm engine): one model split across that many GPUs by vLLM;
- ``data_parallel_size`` (hf and vllm): that many copies of the model, each in its own process on its own GPUs
  (``engines/pool.py``); the rows of every call are shared out between them.

``check`` refuses, in one line, what this machine cannot run (a device map without a GPU, more GPUs than are
visible); ``copy_envs`` gives each copy its GPUs (``CUDA_VISIBLE_DEVICES``) or, on the CPU, its threads.
"""
from __future__ import annotations

import os

from selfalign.errors import SelfAlignError

DEVICE_MAPS = ("auto", "balanced", "balanced_low_0", "sequential")  # transformers' device_map strategies


def gpu_count() -> int:
    """CUDA GPUs this process can see (0 without CUDA)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _engine(engine: str) -> str:
    return str(engine).partition(":")[0]


def _on_cpu(engine: str, device: str, n_gpus: int) -> bool:
    return _engine(engine) == "hf" and (device == "cpu" or (device == "auto" and n_gpus == 0))


def gpus_per_copy(engine: str, device_map, tensor_parallel_size: int, data_parallel_size: int, n_gpus: int) -> int:
    if _engine(engine) == "vllm":
        return tensor_parallel_size
    if device_map:  # the visible GPUs shared out between the copies, each spread over its share
        return max(1, n_gpus // data_parallel_size)
    return 1


class PlacementError(SelfAlignError):
    """A placement this machine cannot run: ``--flag problem`` (a config turns it into its ConfigError, which a
    recipe reports as ``FILE: stage: key problem``)."""

    def __init__(self, name: str, problem: str):
        self.name, self.problem = name, problem
        super().__init__(f"--{name.replace('_', '-')} {problem}")


def _refuse(name: str, problem: str):
    raise PlacementError(name, problem)


def check(engine: str, device: str = "auto", device_map=None, tensor_parallel_size: int = 1,
          data_parallel_size: int = 1) -> None:
    """A one-line PlacementError (a SelfAlignError) unless this machine can place the model as asked."""
    asked = {k: v for k, v in (("device_map", device_map), ("tensor_parallel_size", tensor_parallel_size),
                               ("data_parallel_size", data_parallel_size)) if v not in (None, 1)}
    if not asked:
        return
    key = _engine(engine)
    if key not in ("hf", "vllm"):
        name = next(iter(asked))
        _refuse(name, f"{asked[name]}: engine {engine!r} runs on a server, which places the model itself (leave "
                      "--device-map, --tensor-parallel-size and --data-parallel-size out)")
    if device_map is not None and key != "hf":
        _refuse("device_map", f"{device_map}: the hf engine's; engine {key!r} splits a model over GPUs with "
                              "--tensor-parallel-size N")
    if tensor_parallel_size > 1 and key != "vllm":
        _refuse("tensor_parallel_size", f"{tensor_parallel_size}: vLLM's (--engine vllm); the hf engine spreads a "
                                        "model over the GPUs with --device-map auto")
    if device_map is not None and device not in ("auto", "cuda"):
        _refuse("device_map", f"{device_map} places the model on the GPUs itself: leave --device auto (got --device "
                              f"{device})")
    n = gpu_count()
    if device_map is not None and n == 0:
        _refuse("device_map", f"{device_map} spreads the model over GPUs, but no CUDA GPU is visible on this machine "
                              "(torch.cuda.is_available() is False); leave it out here")
    if _on_cpu(engine, device, n):  # data parallel CPU copies: one process each, at most one per core
        cores = os.cpu_count() or 1
        if data_parallel_size > cores:
            _refuse("data_parallel_size", f"{data_parallel_size}: that many CPU copies of the model, but this "
                                          f"machine has {cores} CPU core{'s' if cores > 1 else ''}")
        return
    per = gpus_per_copy(engine, device_map, tensor_parallel_size, data_parallel_size, n)
    need = per * data_parallel_size
    if need > n:
        if data_parallel_size > 1:
            name, what = "data_parallel_size", f"{data_parallel_size}" + (
                f" x --tensor-parallel-size {tensor_parallel_size}" if tensor_parallel_size > 1 else "")
        else:
            name, what = "tensor_parallel_size", f"{tensor_parallel_size}"
        seen = f"{n} {'is' if n == 1 else 'are'} visible" + ("" if n else " (torch.cuda.is_available() is False)")
        _refuse(name, f"{what} needs {need} GPU{'s' if need > 1 else ''}, but {seen}; lower it, or choose the GPUs "
                      "with CUDA_VISIBLE_DEVICES")


def visible_gpus(n: int) -> list[str]:
    """The ids to give CUDA_VISIBLE_DEVICES for this process's GPUs 0..n-1 (its own CUDA_VISIBLE_DEVICES, if set)."""
    own = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = [s.strip() for s in own.split(",") if s.strip()] if own else [str(i) for i in range(n)]
    return ids[:n]


def copy_envs(engine: str, device: str, device_map, tensor_parallel_size: int, copies: int) -> list[dict]:
    """Per copy: the environment it starts with (its GPUs) and, on the CPU, ``threads``: its share of the cores."""
    n = gpu_count()
    if _on_cpu(engine, device, n):
        threads = max(1, (os.cpu_count() or 1) // copies)
        return [{"threads": threads, "env": {}} for _ in range(copies)]
    per = gpus_per_copy(engine, device_map, tensor_parallel_size, copies, n)
    ids = visible_gpus(n)
    return [{"threads": None, "env": {"CUDA_VISIBLE_DEVICES": ",".join(ids[i * per:(i + 1) * per])}}
            for i in range(copies)]
