"""Data parallelism for every stage that loads a model for inference: ``--data-parallel-size N`` runs N copies of
the engine, each in its own process on its own GPUs (``placement.copy_envs``: one GPU each for hf, a share of the
GPUs with ``--device-map``, ``--tensor-parallel-size`` GPUs each for vllm; CPU processes with ``--device cpu``).

Every call is cut into N contiguous parts, one per copy, run at once, and the answers joined in order. The engine
operations are functions of their own rows (sampling draws from per-prompt seeds: ``engines/rowsample.py``,
vLLM's per-request seeds), so a pool answers what one copy would (tests/engines/test_pool.py checks it on the hf
engine). Why processes of our own: vLLM refuses ``LLM(data_parallel_size>1)`` in one process, and the hf engine
has no such setting.

The copies load at the same time; the text helpers (chat template, token ids) are answered by copy 0. A copy that
fails to load, raises, or dies is one error naming it; the copies stop when the pool is closed or collected, at
exit, or when this process dies (their pipe closes).
"""
from __future__ import annotations

import multiprocessing as mp
import os
import weakref
from typing import Sequence

from selfalign.engines import placement
from selfalign.engines.base import GenerationConfig, Generation
from selfalign.errors import SelfAlignError


def _serve(conn, engine: str, load_kwargs: dict, env: dict, threads) -> None:
    """A copy: build the engine, then answer (method, args) requests until told to stop or the pipe closes."""
    os.environ.update(env)  # before anything touches CUDA: this copy's GPUs
    try:
        if threads:
            import torch

            torch.set_num_threads(threads)
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # N copies' loading bars would interleave
        from selfalign.engines import make_engine

        eng = make_engine(engine, **load_kwargs)
        conn.send(("ok", eng.info))
    except KeyboardInterrupt:
        return
    except BaseException as e:  # noqa: BLE001 - reported to the parent, which raises it
        conn.send(("error", _describe(e)))
        return
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError, KeyboardInterrupt):
            return
        if msg is None:
            return
        method, args = msg
        try:
            conn.send(("ok", getattr(eng, method)(*args)))
        except KeyboardInterrupt:
            return
        except Exception as e:  # noqa: BLE001
            conn.send(("error", _describe(e)))


def _describe(e: BaseException) -> tuple[bool, str]:
    return isinstance(e, SelfAlignError), f"{type(e).__name__}: {e}" if not isinstance(e, SelfAlignError) else str(e)


def _stop(conns, procs) -> None:
    for c in conns:
        try:
            c.send(None)
            c.close()
        except (OSError, ValueError):
            pass
    for p in procs:
        p.join(timeout=60)
        if p.is_alive():
            p.terminate()
            p.join(timeout=10)


def split(n: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` contiguous (start, end) ranges covering range(n), sizes differing by at most one."""
    q, r = divmod(n, parts)
    out, start = [], 0
    for i in range(parts):
        end = start + q + (1 if i < r else 0)
        out.append((start, end))
        start = end
    return out


class PoolEngine:
    """N engine copies in N processes behind the engine interface (``engines/base.Engine``)."""

    name = "pool"

    def __init__(self, engine: str, copies: int, load_kwargs: dict):
        ctx = mp.get_context("spawn")  # a fresh interpreter: CUDA not initialised, CUDA_VISIBLE_DEVICES honoured
        setups = placement.copy_envs(engine, load_kwargs.get("device", "auto"), load_kwargs.get("device_map"),
                                     load_kwargs.get("tensor_parallel_size", 1), copies)
        self.conns, self.procs, self.gpus = [], [], [s["env"].get("CUDA_VISIBLE_DEVICES") for s in setups]
        self._stopper = weakref.finalize(self, _stop, self.conns, self.procs)
        for i, s in enumerate(setups):
            parent, child = ctx.Pipe()
            # not daemonic: a vLLM copy starts processes of its own, which a daemonic process may not
            p = ctx.Process(target=_serve, args=(child, engine, load_kwargs, s["env"], s["threads"]),
                            name=f"selfalign-copy-{i}")
            p.start()
            child.close()
            self.conns.append(parent)
            self.procs.append(p)
        infos = [self._answer(i) for i in range(copies)]
        self.info = {**infos[0], "data_parallel_size": copies}
        self._chat: bool | None = None

    def close(self) -> None:
        self._stopper()

    def _answer(self, i: int):
        try:
            status, value = self.conns[i].recv()
        except (EOFError, OSError):
            self.procs[i].join(timeout=5)
            self.close()
            raise SelfAlignError(f"data-parallel copy {i} stopped without answering (exit code "
                                 f"{self.procs[i].exitcode}; what it printed is above)") from None
        if status == "error":
            ours, text = value
            self.close()
            where = f"data-parallel copy {i}" + (f" (GPUs {self.gpus[i]})" if self.gpus[i] else "")
            raise (SelfAlignError if ours else RuntimeError)(f"{where}: {text}")
        return value

    def _ask(self, i: int, method: str, *args):
        self.conns[i].send((method, args))
        return self._answer(i)

    def _spread(self, method: str, items: Sequence, *rest) -> list:
        """``method`` on contiguous parts of ``items``, one per copy, all at once; the answers joined in order."""
        parts = [(i, a, b) for i, (a, b) in enumerate(split(len(items), len(self.conns))) if b > a]
        for i, a, b in parts:
            self.conns[i].send((method, (list(items[a:b]), *rest)))
        out: list = []
        for i, _, _ in parts:
            out.extend(self._answer(i))
        return out

    # --- the three operations -------------------------------------------------------------------------
    def generate(self, prompts: Sequence[str], cfg: GenerationConfig, seed: int) -> list[list[Generation]]:
        return self._spread("generate", prompts, cfg, seed)

    def choice_probs(self, prompts: Sequence[str], choices: Sequence[str]) -> list[list[float]]:
        return self._spread("choice_probs", prompts, list(choices))

    def loglikelihood(self, pairs: Sequence[tuple[str, str]]) -> list[tuple[float, int]]:
        return self._spread("loglikelihood", pairs)

    # --- text helpers, answered by copy 0 -------------------------------------------------------------
    def has_chat_template(self) -> bool:
        if self._chat is None:
            self._chat = self._ask(0, "has_chat_template")
        return self._chat

    def chat_prompt(self, user_message: str) -> str:
        return self._ask(0, "chat_prompt", user_message)

    def encode(self, text: str) -> list[int]:
        return self._ask(0, "encode", text)

    def choice_ids(self, prompt: str, choice: str) -> list[int]:
        return self._ask(0, "choice_ids", prompt, choice)

    def token_variants(self, choice: str) -> list[int]:
        return self._ask(0, "token_variants", choice)
