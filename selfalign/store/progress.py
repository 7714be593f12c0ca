"""Progress of long loops, and the loop every stage runs: score a chunk, append its rows, advance the bar.

On a terminal a tqdm bar; otherwise (logs, ``nohup``, CI) one line every ``every`` seconds and a last line at the
end, so that a background run still shows how far it got and how long the rest will take.

SIGTERM (and Ctrl-C) inside ``interruptible`` raise ``Interrupted`` naming what is kept; a signal that arrives while
``run_chunks`` writes a chunk waits until the chunk is written, flushed and fsynced.
"""
from __future__ import annotations

import signal
import sys
import threading
import time
from contextlib import contextmanager
from typing import Callable, Sequence

from selfalign.errors import Interrupted

from tqdm.auto import tqdm

EVERY_S = 30.0


class Progress:
    def __init__(self, total: int, desc: str, unit: str, every: float = EVERY_S, enabled: bool = True, file=None):
        self.total, self.desc, self.unit, self.every = total, desc, unit, every
        self.file = file or sys.stderr
        self.enabled = enabled and total > 0
        self.tty = self.enabled and getattr(self.file, "isatty", lambda: False)()
        self.bar = tqdm(total=total, desc=desc, unit=unit, file=self.file) if self.tty else None
        self.n, self.t0, self.postfix = 0, time.time(), ""
        self.last = self.t0

    def line(self) -> str:
        dt = time.time() - self.t0
        rate = self.n / dt if dt > 0 else 0.0
        left = f", ~{(self.total - self.n) / rate / 60:.1f} min left" if rate and self.n < self.total else ""
        return (f"{self.desc}: {self.n}/{self.total} {self.unit}s ({100 * self.n / self.total:.0f}%), "
                f"{rate:.2f} {self.unit}/s, {dt:.0f} s{left}" + (f" | {self.postfix}" if self.postfix else ""))

    def update(self, n: int = 1, postfix: str | None = None) -> None:
        """Advance by ``n``; ``postfix`` (e.g. the last loss) is shown after the counts."""
        self.n += n
        if postfix is not None:
            self.postfix = postfix
        if self.bar is not None:
            if postfix is not None:
                self.bar.set_postfix_str(postfix, refresh=False)
            self.bar.update(n)
        elif self.enabled and (time.time() - self.last >= self.every or self.n >= self.total):
            self.last = time.time()
            print(self.line(), file=self.file, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


EXIT_CODES = {signal.SIGTERM: 143, signal.SIGINT: 130}


class _Signals:
    where: list = []  # innermost last: what a signal's message says is kept
    defer = 0  # > 0 while a chunk is being written
    pending: int | None = None


def _raise(signum: int):
    raise Interrupted(_Signals.where[-1](), EXIT_CODES[signum])


def _handler(signum, frame):
    if _Signals.defer:
        _Signals.pending = signum
        return
    _raise(signum)


@contextmanager
def interruptible(where: Callable[[], str]):
    """Inside, SIGTERM (exit 143) and SIGINT (130) raise ``Interrupted(where())``; the innermost ``where`` speaks.
    Outside the main thread (where Python delivers no signals) this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    outer = not _Signals.where
    old = {s: signal.signal(s, _handler) for s in EXIT_CODES} if outer else {}
    _Signals.where.append(where)
    try:
        yield
    finally:
        _Signals.where.pop()
        for s, h in old.items():
            signal.signal(s, h)


@contextmanager
def deferred_signals():
    """A signal arriving inside is raised when the block is done (a write is never cut half-way)."""
    _Signals.defer += 1
    try:
        yield
    finally:
        _Signals.defer -= 1
        if not _Signals.defer and _Signals.pending is not None and _Signals.where:
            signum, _Signals.pending = _Signals.pending, None
            _raise(signum)


def run_chunks(out, todo: Sequence, size: int, fn: Callable[[list], list[dict]], desc: str, unit: str,
               enabled: bool = True) -> int:
    """Call ``fn`` on consecutive chunks of ``todo`` (``size`` items each); append each chunk's rows to ``out``
    (a ``JsonlAppender``: written, flushed and fsynced before the next chunk starts). Returns the items done.
    SIGTERM raises ``Interrupted`` ("N rows kept in OUTPUT; rerun to resume") once the chunk in writing is saved."""
    size = max(1, int(size))
    kept = lambda: f"{len(out.finished)} rows kept in {out.path}; rerun to resume"  # noqa: E731
    with Progress(len(todo), desc, unit, enabled=enabled) as bar, interruptible(kept):
        for s in range(0, len(todo), size):
            part = list(todo[s:s + size])
            rows = fn(part)
            with deferred_signals():
                out.write(rows)
            bar.update(len(part))
    return len(todo)


def trainer_progress(desc: str, enabled: bool = True):
    """A transformers ``TrainerCallback`` that reports training as every stage does (one ``Progress`` line every
    ``EVERY_S`` seconds and at the end, with the loss and reward margin of the step it counts to, and the last
    held-out loss), instead of the Trainer's per-step log dictionaries and ``\\r`` progress bar; pair it with
    ``disable_tqdm=True`` and remove ``PrinterCallback`` (``quiet_trainer``)."""
    from transformers import TrainerCallback

    class StageProgress(TrainerCallback):
        bar = None

        def on_train_begin(self, args, state, control, **kw):
            self.start = state.global_step  # a resumed run counts (and times) the steps it has left
            name = f"{desc} (resumed at step {self.start})" if self.start else desc
            self.bar = Progress(state.max_steps - self.start, name, "step", enabled=enabled)
            self.train, self.eval = "", ""

        def advance(self, state):
            if self.bar is not None:
                post = ", ".join(p for p in (self.train, self.eval) if p)
                self.bar.update(state.global_step - self.start - self.bar.n, post)

        def on_log(self, args, state, control, logs=None, **kw):
            logs = logs or {}
            parts = [f"{k.split('/')[-1]} {logs[k]:.4f}" for k in ("loss", "rewards/margins") if k in logs]
            self.train = ", ".join(parts) or self.train
            if "eval_loss" in logs:
                self.eval = f"eval_loss {logs['eval_loss']:.4f}"
            self.advance(state)  # the step's own loss: the Trainer logs a step after its on_step_end

        def on_step_end(self, args, state, control, **kw):
            if not control.should_log:  # a step that logs is counted in on_log, with its loss
                self.advance(state)

        def on_train_end(self, args, state, control, **kw):
            if self.bar is not None:
                self.advance(state)
                self.bar.close()
                self.bar = None

    return StageProgress()


def quiet_trainer(trainer, desc: str) -> None:
    """Replace a Trainer's console output (PrinterCallback / ProgressCallback) by one ``trainer_progress``."""
    from transformers import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(trainer_progress(desc, enabled=trainer.is_world_process_zero()))
