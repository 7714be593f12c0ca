"""The one output guard every writer holds while it writes (issue 34).

``OutputGuard(output, inputs=..., files=..., ...)`` is entered before a command writes anything and held until it
is done. On entering it:

- checks that every output can be written (a directory in a file's place, a file where a folder belongs, no
  permission: one line), before a model loads;
- refuses an output that is any of the command's inputs (paths resolved, symlinks followed; a folder output that
  holds an input is refused too), so an input is never written over;
- takes ``<output>.lock`` (``locks.OutputLock``; under a distributed launch the main process only): a second
  writer of the same output is one line, exit 2;
- with ``overwrite`` (``--overwrite``) moves the existing outputs aside to ``<name>.old-<settings hash>``.

Outputs a writer replaces whole (``whole``: pairs, mc-data's and sk-data's row files, a result JSON, a report,
``recipe.json``) carry a record of the settings that made them (``made_with``, ``settings_hash``, and through
``provenance.meta`` the content hash of every input file). ``begin()``, called just before the writer replaces
them, moves them aside when they were made with other settings (or by something unknown) instead of deleting
them, as ``selfalign run`` moves a changed stage aside. Resumable outputs (appended rows, training folders) are
not moved: their writers refuse other settings in one line (``lineage.TrackedOutput``, ``training.lora``).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Iterable, Optional, Sequence

from selfalign.errors import SelfAlignError
from selfalign.store.hashes import row_hash, same_file
from selfalign.store.io import output_dir, output_file, peek_json, write_json
from selfalign.store.locks import single_writer
from selfalign.store.provenance import meta_path

UNKNOWN = "unknown"  # the tag of an output moved aside that records no settings


def _paths(values: Iterable) -> list[str]:
    """The file paths among input values (``sk:PATH`` read as PATH; None, empty and lists flattened)."""
    out = []
    for v in values:
        for x in (v if isinstance(v, (list, tuple)) else [v]):
            if isinstance(x, (str, os.PathLike)) and str(x):
                out.append(str(x)[3:] if str(x).startswith("sk:") else str(x))
    return out


def _inside(path: str, folder: Path) -> bool:
    try:
        Path(path).resolve().relative_to(folder.resolve())
        return Path(path).exists()
    except (ValueError, OSError):
        return False


def check_not_input(outputs: Iterable, inputs: Iterable, folder: Optional[Path] = None) -> None:
    """Refuse an output file that is also one of the inputs (resolved: symlinks and relative paths), or a folder
    output (``folder``) that holds an input."""
    inputs = _paths(inputs)
    for out in outputs:
        for inp in inputs:
            if out and same_file(inp, out):
                raise SelfAlignError(f"--output {out} is the input file {inp}; write to another file")
    if folder is not None:
        for inp in inputs:
            if _inside(inp, folder):
                raise SelfAlignError(f"--output {folder} holds the input file {inp}; write to another folder")


def aside_path(path: Path, tag: str) -> Path:
    """``<name>.old-<tag>``, numbered (``.2``, ``.3``, ...) when an earlier one of that name is there: nothing moved
    aside before is replaced."""
    dest = path.with_name(f"{path.name}.old-{tag}")
    n = 2
    while dest.exists() or dest.is_symlink():
        dest, n = path.with_name(f"{path.name}.old-{tag}.{n}"), n + 1
    return dest


def move_aside(paths: Iterable[Path], tag: str) -> list[tuple[Path, Path]]:
    """Rename every existing path to ``aside_path(path, tag)``; returns (from, to) pairs."""
    moved = []
    for p in dict.fromkeys(Path(p) for p in paths):
        if p.exists() or p.is_symlink():
            dest = aside_path(p, tag)
            try:
                p.rename(dest)
            except OSError as e:
                raise SelfAlignError(f"{p}: cannot move it aside to {dest.name} ({e.strerror or e}); move it away "
                                     "or use another --output") from None
            moved.append((p, dest))
    return moved


def recorded_hash(record: dict | None) -> Optional[str]:
    """The settings hash a record holds (at its top, or under ``meta`` in a result file)."""
    if not isinstance(record, dict):
        return None
    for where in (record, record.get("meta")):
        if isinstance(where, dict) and isinstance(where.get("settings_hash"), str):
            return where["settings_hash"]
    return None


class OutputGuard:
    """See the module doc. ``output``: the file (or, with ``folder``, the folder) the command is named by;
    ``files``: the other files it writes beside it (moved aside with it by ``overwrite``); ``shared``: files it
    writes that outlive one output (a claim cache, judge scores kept across settings), checked but never moved;
    ``inputs``: the paths and specs it reads; ``settings``: what decides its whole outputs (``whole``), recorded in
    ``record`` (default ``<output>.meta.json``; a result file that holds its own ``meta`` names itself)."""

    def __init__(self, output, *, inputs: Iterable = (), files: Sequence = (), shared: Sequence = (),
                 folder: bool = False, overwrite: bool = False, settings: Optional[dict] = None, whole: Sequence = (),
                 record: str | os.PathLike | None = None):
        self.output, self.folder = Path(output), folder
        self.files = [Path(f) for f in files if f]
        self.shared = [Path(f) for f in shared if f]
        self.inputs = list(inputs)
        self.overwrite, self.settings = overwrite, settings
        self.whole = [Path(f) for f in whole if f]
        self.record_file = Path(record) if record else (None if folder else meta_path(self.output))
        self.moved: list[tuple[Path, Path]] = []
        self._lock, self._begun = None, False

    # --- entering ----------------------------------------------------------------------------------------
    def outputs(self) -> list[Path]:
        own = [] if self.folder else [self.output]
        return list(dict.fromkeys([*own, *self.files, *([self.record_file] if self.record_file else [])]))

    def check(self) -> "OutputGuard":
        """Every output writable and none of them an input (one line otherwise); nothing is written."""
        if self.folder:
            output_dir(self.output, make=False)  # made by the writer when it starts writing
        else:
            output_file(self.output)
        for f in [*self.outputs(), *self.shared]:
            output_file(f)
        check_not_input([*self.outputs(), *self.shared], self.inputs, self.output if self.folder else None)
        return self

    def acquire(self) -> "OutputGuard":
        self.check()
        lock = single_writer(self.output)
        lock.__enter__()
        self._lock = lock
        try:
            self.recorded = peek_json(self.record_file) if self.record_file else None
            if self.overwrite:
                self._aside(self.outputs(), "--overwrite")
        except BaseException:
            self.release()
            raise
        return self

    def release(self) -> None:
        if self._lock is not None:
            lock, self._lock = self._lock, None
            lock.__exit__(None, None, None)

    def __enter__(self) -> "OutputGuard":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    # --- whole outputs -----------------------------------------------------------------------------------
    @property
    def settings_hash(self) -> Optional[str]:
        return None if self.settings is None else row_hash(self.settings)

    def _aside(self, paths: Iterable[Path], why: str) -> None:
        tag = recorded_hash(self.recorded) or UNKNOWN
        for src, dest in move_aside(paths, tag):
            self.moved.append((src, dest))
            print(f"{src}: moved aside to {dest.name} ({why})", file=sys.stderr, flush=True)
        if self.moved:
            self.recorded = None

    def begin(self) -> "OutputGuard":
        """Before the whole outputs are replaced: move them (and their record) aside when they were made with other
        settings or record none."""
        if self._begun:
            return self
        self._begun = True
        there = [p for p in self.whole if p.exists()]
        if there and recorded_hash(self.recorded) != self.settings_hash:
            why = "made with other settings" if recorded_hash(self.recorded) else "no record of what made it"
            self._aside([*there, *([self.record_file] if self.record_file not in self.whole else [])], why)
        return self

    def stamp(self, meta: dict) -> dict:
        """``meta`` with the settings recorded (``made_with``, ``settings_hash``): for a result that holds its meta."""
        if self.settings is None:
            return meta
        return {**meta, "made_with": self.settings, "settings_hash": self.settings_hash}

    def record(self, meta: dict) -> dict:
        """Write ``meta`` (stamped) to the record file, after moving stale whole outputs aside."""
        self.begin()
        self.recorded = self.stamp(meta)
        write_json(self.record_file, self.recorded)
        return self.recorded
