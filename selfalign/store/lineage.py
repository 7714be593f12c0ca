"""Outputs that know what made them: one writer at a time, the settings checked on resume, changed input rows redone.

``TrackedOutput`` is the ``JsonlAppender`` of a stage's row file, opened under the output guard:

- **settings**: the config fields that shape the rows (all of them but ``NOT_SETTINGS`` and the stage's own
  ``ignore``) are recorded in ``<output>.meta.json`` as ``made_with`` and ``settings_hash`` when the output is new.
  Reopening an output that has rows with other settings is refused in one line ("s.jsonl was made with
  temperature 1.0, not 0.0; use a new --output or --overwrite"); ``--overwrite`` starts it afresh. Model weights
  given by a local path are part of the settings by their fingerprint, so weights replaced at the same path are
  refused the same way. A resume never
  rewrites the meta: it appends a record (time, commit, the flags that differ, e.g. ``batch_size``) to ``resumed``.
- **input rows**: every output row carries ``input_hash``, the hash of the input row it was made from. ``todo``
  returns the items with missing rows *or* rows made from another version of the item; those stale rows are
  dropped from the file (rewritten atomically), so an edited question is answered again and nothing else is.
  Rows written before this scheme carry no hash and are kept.
- the lock, refusing an output that is an input, and ``--overwrite`` (the old rows and meta moved aside, not
  deleted) are the output guard's (``store.guard.OutputGuard``): a ``TrackedOutput`` opens its own, or runs under
  the one its command holds (an evaluation's, on its result file).
"""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

from selfalign.errors import InputError, SelfAlignError
from selfalign.store.guard import OutputGuard
from selfalign.store.hashes import model_weights, row_hash
from selfalign.store.io import JsonlAppender, iter_jsonl, read_json, write_json
from selfalign.store.provenance import git_commit, meta_path, redact

INPUT_HASH = "input_hash"
# fields that name files, pick rows, or change speed or placement only: the rows they make are the same
NOT_SETTINGS = frozenset({"input", "output", "data", "answers", "split", "limit", "batch_size", "device",
                          "overwrite", "claim_cache", "n_boot", "bootstrap_seed", "judge_api_key_env", "allow_pickle",
                          "device_map", "tensor_parallel_size", "data_parallel_size"})
# fields that name outputs or change speed or placement only: a result made with other values of the rest is another
# result
NOT_RESULT_SETTINGS = frozenset({"output", "markdown", "batch_size", "device", "overwrite", "claim_cache",
                                 "judge_api_key_env", "allow_pickle", "device_map", "tensor_parallel_size",
                                 "data_parallel_size"})


def settings_of(cfg, ignore: Iterable[str] = (), skip: Iterable[str] = NOT_SETTINGS) -> dict:
    """The config values that shape a stage's rows (all fields but ``skip`` and ``ignore``, JSON-normalised), and
    under ``weights`` the fingerprint of every model field naming local weights (``hashes.weights_fingerprint``):
    weights replaced at the same path are other settings."""
    skip = set(skip) | set(ignore)
    values = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg) if f.name not in skip}
    weights = {k: fp for k, fp in model_weights(cfg).items() if k in values}
    if weights:
        values["weights"] = weights
    return redact(json.loads(json.dumps(values, default=str)))


def result_settings(cfg, ignore: Iterable[str] = ()) -> dict:
    """The config values a whole result depends on (which data and rows too; not output names, nor speed); the
    bootstrap's (``summary_only``) are left out: a result redone with them is the same result summarised anew, as a
    recipe's evaluation resumes. A result made with other ones is moved aside (``OutputGuard.begin``)."""
    from selfalign.config import summary_only

    return settings_of(cfg, ignore, skip=NOT_RESULT_SETTINGS | summary_only(type(cfg)))


def settings_hash(settings: dict) -> str:
    return row_hash(settings)


def _fmt(v) -> str:
    return json.dumps(v) if not isinstance(v, str) else v


def check_settings(output: Path, recorded: dict, settings: dict) -> None:
    made = recorded.get("made_with")
    if made is None:  # written before made_with existed: compare the recorded config where it has the field
        made = {k: v for k, v in (recorded.get("config") or {}).items() if k in settings}
    for k, v in settings.items():
        if k == "weights" and k in made:
            for field, fp in v.items():
                if made[k].get(field, fp) != fp:
                    raise SelfAlignError(f"{output} was made with other weights at {settings.get(field)} "
                                         f"(fingerprint {made[k][field]}, now {fp}): the model was replaced; use a "
                                         f"new --output or --overwrite")
            continue
        if k in made and made[k] != v:
            raise SelfAlignError(f"{output} was made with {k} {_fmt(made[k])}, not {_fmt(v)}; use a new --output "
                                 f"or --overwrite")


class TrackedOutput(JsonlAppender):
    """A resumable row file (see the module doc). ``guard``: the command's ``OutputGuard``, already held, that
    covers this file (among its ``files``); without one the row file is guarded on its own (``inputs``,
    ``overwrite``)."""

    def __init__(self, path, key: Callable[[dict], object], settings: dict, inputs: Sequence = (),
                 overwrite: bool = False, meta_file: str | Path | None = None, guard: Optional[OutputGuard] = None):
        self.settings, self.meta_file = settings, Path(meta_file or meta_path(path))
        self._own_guard = guard is None
        self.guard = guard or OutputGuard(path, inputs=inputs, overwrite=overwrite, record=self.meta_file).acquire()
        try:
            super().__init__(path, key)
            self.hashes = {key(r): r.get(INPUT_HASH) for r in iter_jsonl(self.path)} if self.finished else {}
            self.recorded = self._read_meta()
            if self.finished:
                if self.recorded is None:
                    raise SelfAlignError(f"{path} has rows but no {self.meta_file.name}: what made them is unknown; "
                                         f"use a new --output or --overwrite")
                check_settings(self.path, self.recorded, settings)
        except BaseException:
            self.close()
            raise

    def _read_meta(self) -> dict | None:
        if not self.meta_file.exists():
            return None
        try:
            found = read_json(self.meta_file)
        except InputError as e:
            raise SelfAlignError(f"{e}; use a new --output or --overwrite") from None
        if not isinstance(found, dict):
            raise SelfAlignError(f"{self.meta_file}: not a meta record; use a new --output or --overwrite")
        return found

    def record(self, meta: dict) -> dict:
        """Write the meta of a new output; on a resume keep the old one and append a ``resumed`` entry."""
        if not self.finished or self.recorded is None:
            self.recorded = {**meta, "made_with": self.settings, "settings_hash": settings_hash(self.settings)}
        else:
            old, new = self.recorded.get("config") or {}, meta.get("config") or {}
            changed = {k: v for k, v in new.items() if old.get(k) != v}
            self.recorded.setdefault("resumed", []).append(
                {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "git_commit": git_commit(),
                 "rows_before": len(self.finished), "changed": changed})
        write_json(self.meta_file, self.recorded)
        return self.recorded

    def todo(self, items: Sequence[dict], keys_of: Callable[[dict], list]) -> list[dict]:
        """Items with a missing row, or with a row made from another version of the item (dropped here)."""
        out, stale = [], set()
        for it in items:
            h, keys = row_hash(it), keys_of(it)
            old = {k for k in keys if k in self.finished and self.hashes.get(k) not in (None, h)}
            stale |= old
            if old or any(k not in self.finished for k in keys):
                out.append(it)
        if stale:
            self.drop(lambda r: self.key(r) in stale)
        self.redone = len(stale)
        return out

    def close(self) -> None:
        try:
            if getattr(self, "_fd", None) is not None:
                super().close()
        finally:
            if self._own_guard:
                self.guard.release()


def stamp(row: dict, item: dict) -> dict:
    """``row`` with the hash of the input item it was made from."""
    return {**row, INPUT_HASH: row_hash(item)}
