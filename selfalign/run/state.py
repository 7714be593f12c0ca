"""A recipe stage on disk: its state file (``stage.json``, an evaluation's ``<task>.stage.json``), the content hashes
of what it wrote (checked before a finished stage is skipped: a hand edit is reported, not used), and moving a
changed stage's output aside (``<stage>.old-<hash>``, an evaluation's ``<task>.old-<hash>/``) before it is redone."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Optional

from selfalign.store.hashes import HASH_LIMIT, fingerprint, tree_hashes
from selfalign.store.io import peek_json

# ``step`` below is a ``pipeline.Step`` (its name, directory and output name are read; not imported: no cycle)
STAGE_FILE = "stage.json"


def state(step) -> dict:
    found = peek_json(state_path(step), {})
    return found if isinstance(found, dict) else {}


def state_path(step) -> Path:
    return (step.directory / STAGE_FILE if not step.name.startswith("eval/")
            else step.directory / f"{Path(step.output_name).stem}.stage.json")


def eval_files(step) -> list[Path]:
    """An evaluation's files in the folder it shares with the model's other evaluations (result, rows, meta, state)."""
    stem = Path(step.output_name).stem
    return sorted(p for p in step.directory.glob(f"{stem}.*") if p.is_file() and not p.name.endswith(".lock"))


def move_aside(step, old_hash: str) -> None:
    """A changed stage's earlier output goes to ``<stage>.old-<its hash>`` (an evaluation's files to
    ``eval/<model>/<task>.old-<hash>/``): redone, never deleted."""
    if step.name.startswith("eval/"):
        dest = step.directory / f"{Path(step.output_name).stem}.old-{old_hash or 'unknown'}"
        files = eval_files(step)
        if files:
            shutil.rmtree(dest, ignore_errors=True)
            dest.mkdir(parents=True)
            for p in files:
                p.rename(dest / p.name)
        return
    if step.directory.exists():
        dest = step.directory.with_name(f"{step.directory.name}.old-{old_hash or 'unknown'}")
        shutil.rmtree(dest, ignore_errors=True)
        step.directory.rename(dest)


# files the runner itself changes after a stage finished: its state, and a trained model's card (README.md, which
# gains the evaluations of that model)
NOT_OUTPUTS = (STAGE_FILE, "README.md")


def outputs(step) -> dict[str, str]:
    """{file: content hash} of what a stage wrote, recorded when it finishes and compared before it is skipped."""
    if step.name.startswith("eval/"):
        own = state_path(step).name
        return {p.name: fingerprint(p, HASH_LIMIT) for p in eval_files(step) if p.name != own}
    return tree_hashes(step.directory, skip=NOT_OUTPUTS)


def edited(step) -> Optional[str]:
    """The first file of a finished stage that differs from what the stage wrote (edited, added or removed by
    hand), or None; stages finished before outputs were recorded are not checked."""
    recorded = state(step).get("outputs")
    if recorded is None:
        return None
    now = outputs(step)
    for name in sorted(set(recorded) | set(now)):
        if recorded.get(name) != now.get(name):
            how = "removed" if name not in now else "added" if name not in recorded else "changed"
            return f"{step.directory / name} ({how})"
    return None
