"""One writer per output: ``<output>.lock`` held under ``flock`` (``lineage.TrackedOutput`` and ``pairs`` take it)."""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

from selfalign.errors import SelfAlignError


def lock_path(output: str | os.PathLike) -> Path:
    output = Path(output)
    return output.with_name(output.name + ".lock")


class OutputLock:
    """An exclusive lock on an output: ``<output>.lock`` holds the writer's pid under ``flock``.

    A second writer is refused with SelfAlignError naming the pid. The kernel drops a ``flock`` when its process
    dies, so a lock file left by a killed run (kill -9, a crash) is simply taken over.
    """

    def __init__(self, output: str | os.PathLike):
        self.output, self.path, self._fd = Path(output), lock_path(output), None

    def acquire(self) -> "OutputLock":
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(5):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pid = os.read(fd, 32).decode("ascii", "replace").strip() or "?"
                os.close(fd)
                raise SelfAlignError(f"{self.output} is being written by another process (pid {pid}, lock "
                                     f"{self.path}); wait for it to finish or write to another --output") from None
            try:  # the holder may have removed the file between our open and flock: lock the file on disk
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
                self._fd = fd
                return self
            os.close(fd)
        raise SelfAlignError(f"{self.path}: could not take the lock (other processes keep replacing it)")

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        os.close(self._fd)
        self._fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def single_writer(output: str | os.PathLike):
    """The output's lock, taken by the main process of a distributed launch (``RANK`` 0, or no launcher); the other
    ranks write nothing of their own and take none."""
    if int(os.environ.get("RANK", "0") or 0) != 0:
        return contextlib.nullcontext()
    return OutputLock(output)
