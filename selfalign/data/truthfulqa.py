"""TruthfulQA (Lin et al. 2021): the generation CSV, the MC file, the paper's train/valid/test split (splits.json).

Where the data comes from, first found wins: ``$SELFALIGN_DATA/truthfulqa/`` (or a ``shared/data/truthfulqa/``
beside or above the working directory); a copy fetched earlier from the hub under ``$SELFALIGN_CACHE/data/``;
the hub (``truthfulqa/truthful_qa`` through ``datasets``) when online. The split file of Zhang et al. (ACL 2024)
ships in the package (``selfalign/data/truthfulqa_splits.json``: TruthfulQA's own questions, Apache-2.0, grouped
as the paper's released prompt files group them); a ``splits.json`` beside the data takes precedence.
"""
from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from selfalign.errors import InputError, SelfAlignError
from selfalign.store.io import read_json, read_text

SPLITS = ("fewshot_demos", "train", "valid", "test", "all")
HUB_ID = "truthfulqa/truthful_qa"


def default_dir() -> Path | None:
    from selfalign.data import data_root

    root = data_root()
    if root and (root / "truthfulqa" / "TruthfulQA.csv").exists():
        return root / "truthfulqa"
    return None


def _split_answers(text: str) -> list[str]:
    return [a.strip() for a in (text or "").split(";") if a.strip()]


def read_csv(path: Path) -> list[dict]:
    text = read_text(path)
    rows = []
    reader = csv.DictReader(io.StringIO(text, newline=""))
    need = {"Question", "Best Answer", "Correct Answers", "Incorrect Answers"}
    try:
        if not need <= set(reader.fieldnames or []):
            raise InputError(path, f"not a TruthfulQA CSV: needs columns {sorted(need)}", 1)
        for i, r in enumerate(reader):
            if any(r.get(c) is None for c in need):
                raise InputError(path, "row has fewer columns than the header", reader.line_num)
            rows.append({"id": f"tqa-{i:03d}", "question": r["Question"].strip(), "category": r.get("Category"),
                         "best_answer": r["Best Answer"].strip(),
                         "correct_answers": _split_answers(r["Correct Answers"]),
                         "incorrect_answers": _split_answers(r["Incorrect Answers"])})
    except csv.Error as e:
        raise InputError(path, f"malformed CSV ({e})", reader.line_num) from None
    return rows


def _from_hub() -> list[dict]:
    try:
        import datasets

        ds = datasets.load_dataset(HUB_ID, "generation", split="validation")
    except Exception as e:  # noqa: BLE001 - any hub failure means the same thing to the user
        raise SelfAlignError(f"TruthfulQA: no local copy (set SELFALIGN_DATA or pass the CSV path) and the hub "
                             f"failed: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    return [{"id": f"tqa-{i:03d}", "question": r["question"], "category": r["category"],
             "best_answer": r["best_answer"], "correct_answers": r["correct_answers"],
             "incorrect_answers": r["incorrect_answers"]} for i, r in enumerate(ds)]


def load_splits(directory: Path | None) -> dict:
    """The paper's split: ``splits.json`` beside the data when there is one, else the copy in the package."""
    from selfalign.resources import SPLITS_FILE, root

    path = directory / "splits.json" if directory else None
    if not path or not path.exists():
        path = root() / SPLITS_FILE
    splits = read_json(path)
    if not isinstance(splits, dict) or not all(isinstance(v, list) for v in splits.values()):
        raise InputError(path, "expected an object of {split: [questions]}")
    return splits


PLACE_MC = ("place mc_task.json (github.com/sylinrl/TruthfulQA, data/mc_task.json) at "
            "$SELFALIGN_DATA/truthfulqa/mc_task.json, or pass --data PATH")


def mc_task_path() -> Path:
    """TruthfulQA's mc_task.json: under the data root, else fetched once from the hub into the cache."""
    from selfalign.data import data_root
    from selfalign.models import cache_root

    root = data_root()
    for cand in ([root / "truthfulqa" / "mc_task.json"] if root else []) + [cache_root() / "data" / "truthfulqa"
                                                                              / "mc_task.json"]:
        if cand.exists():
            return cand
    try:
        rows = _mc_from_hub()
    except Exception as e:  # noqa: BLE001 - offline, no such data set, ...: the same advice for each
        where = f"SELFALIGN_DATA={root}" if os.environ.get("SELFALIGN_DATA") else "SELFALIGN_DATA is not set"
        reason = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        raise SelfAlignError(f"truthfulqa-mc: no TruthfulQA MC data ({where}): {PLACE_MC}; online, it is fetched "
                             f"from the hub ({HUB_ID}), which failed: {reason}") from None
    from selfalign.store.io import write_json

    out = cache_root() / "data" / "truthfulqa" / "mc_task.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(out, rows)
    return out


def _mc_from_hub() -> list[dict]:
    """The hub's ``multiple_choice`` config in mc_task.json's shape ({question, mc1_targets: {text: 0/1}, ...})."""
    import datasets

    ds = datasets.load_dataset(HUB_ID, "multiple_choice", split="validation")

    def targets(t):
        return {c: int(lab) for c, lab in zip(t["choices"], t["labels"])}

    return [{"question": r["question"], "mc1_targets": targets(r["mc1_targets"]),
             "mc2_targets": targets(r["mc2_targets"])} for r in ds]


def load_truthfulqa(csv_path: str | None = None, split: str | None = "all") -> list[dict]:
    """TruthfulQA rows, optionally restricted to a split of the paper (question lists in splits.json)."""
    split = split or "all"
    if split not in SPLITS:
        raise SelfAlignError(f"unknown TruthfulQA split {split!r}; choose one of {', '.join(SPLITS)}")
    if csv_path:
        directory = Path(csv_path).parent
        rows = read_csv(Path(csv_path))
    else:
        directory = default_dir()
        rows = read_csv(directory / "TruthfulQA.csv") if directory else _from_hub()
    if split == "all":
        return rows
    wanted = load_splits(directory)[split]
    by_q = {r["question"]: r for r in rows}
    missing = [q for q in wanted if q not in by_q]
    if missing:
        raise SelfAlignError(f"splits.json: {len(missing)} {split} questions are not in the CSV, e.g. {missing[0]!r}")
    return [dict(by_q[q], split=split) for q in wanted]
