"""Multiple-choice sets in one shape: [{id, question, options: [{text, label 0/1}]}].

Sources: a JSONL file of that shape, TruthfulQA MC (mc_task.json, mc2 targets: several options may be
true), and BIG-bench multiple-choice tasks (``target_scores``).
"""
from __future__ import annotations

from pathlib import Path

from selfalign.errors import InputError, SelfAlignError
from selfalign.io import duplicate, input_file, iter_numbered, read_json


def load_mc(source: str, split: str | None = None, limit: int | None = None) -> list[dict]:
    """Dispatch: ``truthfulqa-mc``, ``bigbench:TASK[/SUBTASK]``, ``sk:PATH`` (SK-Tuning rows), or a JSONL path."""
    if source == "truthfulqa-mc":
        rows = load_truthfulqa_mc(None, split)
    elif source.startswith("sk:"):
        rows = load_sk_rows(source[3:])
    else:
        if split not in (None, "", "all"):
            raise SelfAlignError(f"--split applies to truthfulqa-mc only, not to {source!r}")
        rows = load_bigbench(source.split(":", 1)[1]) if source.startswith("bigbench:") else load_mc_jsonl(source)
    if limit:
        rows = rows[:limit]
    if not rows:
        raise SelfAlignError(f"{source}: no questions selected")
    return rows


def _check_options(path, options, where) -> list[dict]:
    if not isinstance(options, list) or not options:
        raise InputError(path, "'options' must be a non-empty list", where)
    out = []
    for k, o in enumerate(options):
        if not isinstance(o, dict) or not isinstance(o.get("text"), str) or not o["text"].strip():
            raise InputError(path, f"option {k}: needs a non-empty string 'text'", where)
        if o.get("label") not in (0, 1):  # True/False compare equal to 1/0
            raise InputError(path, f"option {k}: 'label' must be 0 or 1, got {o.get('label')!r}", where)
        out.append({"text": o["text"], "label": int(o["label"])})
    return out


def load_mc_jsonl(path: str | Path) -> list[dict]:
    """Rows {id, question, options: [{text, label}]}; errors name the file and line."""
    path = input_file(path)
    rows, seen = [], {}
    for lineno, r in iter_numbered(path, required=["id", "question", "options"]):
        key = str(r["id"])
        if key in seen:
            raise duplicate(path, "id", key, seen[key], lineno)
        seen[key] = lineno
        rows.append({**r, "id": key, "options": _check_options(path, r["options"], lineno)})
    if not rows:
        raise InputError(path, "no rows (the file is empty)")
    return rows


def load_sk_rows(path: str | Path) -> list[dict]:
    """SK-Tuning rows (one proposal each, from ``selfalign sk-data``) grouped back into questions, so that a
    held-out file can be evaluated with exactly its own questions."""
    from selfalign.io import read_jsonl

    groups: dict[tuple, dict] = {}
    for r in read_jsonl(path, required=["id", "question", "proposal", "label"]):
        key = (str(r.get("task", "")), str(r["id"]))
        g = groups.setdefault(key, {"id": "/".join(k for k in key if k), "question": r["question"], "options": []})
        if all(o["text"] != r["proposal"] for o in g["options"]):
            g["options"].append({"text": r["proposal"], "label": int(r["label"])})
    return list(groups.values())


def _truthfulqa_dir() -> Path:
    from selfalign.data import data_root

    root = data_root()
    if not root or not (root / "truthfulqa" / "mc_task.json").exists():
        raise SelfAlignError("truthfulqa-mc: no truthfulqa/mc_task.json under the data root (set SELFALIGN_DATA)")
    return root / "truthfulqa"


def load_truthfulqa_mc(mc_path: str | Path | None = None, split: str | None = "all") -> list[dict]:
    """TruthfulQA MC with mc2 targets, optionally restricted to a split of splits.json beside the file.

    Ids are those of TruthfulQA.csv (``tqa-NNN``, matched by question) when the CSV sits beside the file,
    so that results join with the generation set; otherwise ``tqa-mc-NNN`` by position in the file.
    """
    from selfalign.data.truthfulqa import SPLITS, load_splits, read_csv

    split = split or "all"
    if split not in SPLITS:
        raise SelfAlignError(f"unknown TruthfulQA split {split!r}; choose one of {', '.join(SPLITS)}")
    path = Path(mc_path) if mc_path else _truthfulqa_dir() / "mc_task.json"
    data = read_json(path)
    csv_path = path.parent / "TruthfulQA.csv"
    csv_ids = {r["question"]: r["id"] for r in read_csv(csv_path)} if csv_path.exists() else {}
    rows = []
    for i, ex in enumerate(data if isinstance(data, list) else []):
        targets = ex.get("mc2_targets") if isinstance(ex, dict) else None
        if not isinstance(targets, dict) or not targets or not isinstance(ex.get("question"), str):
            raise InputError(path, f"entry {i}: needs 'question' and a non-empty 'mc2_targets' object")
        if any(v not in (0, 1) for v in targets.values()):
            raise InputError(path, f"entry {i}: 'mc2_targets' labels must be 0 or 1")
        q = ex["question"].strip()
        rows.append({"id": csv_ids.get(q, f"tqa-mc-{i:03d}"), "question": q,
                     "options": [{"text": t, "label": int(v)} for t, v in targets.items()]})
    if not rows:
        raise InputError(path, "expected a non-empty JSON list of questions")
    if split == "all":
        return rows
    wanted = load_splits(path.parent)[split]
    by_q = {r["question"]: r for r in rows}
    missing = [q for q in wanted if q not in by_q]
    if missing:
        raise SelfAlignError(f"splits.json: {len(missing)} {split} questions are not in {path}, e.g. {missing[0]!r}")
    return [dict(by_q[q], split=split) for q in wanted]


def _bigbench_question(task: dict, text: str) -> str:
    """The example as BIG-bench shows it: task prefix, then the task's own input/output prefixes, if any."""
    body = (task.get("example_input_prefix") or "") + text + (task.get("example_output_prefix") or "")
    prefix = (task.get("task_prefix") or "").strip()
    return (prefix + "\n" + body.strip() if prefix else body).strip()


def load_bigbench(task: str, root: str | Path | None = None) -> list[dict]:
    """Multiple-choice examples of ``bigbench/TASK/task.json`` (TASK may be ``name/subtask_0``).

    An option is true when its target score is > 0. The question joins the task's ``task_prefix``,
    ``example_input_prefix``, input and ``example_output_prefix`` where the task defines them.
    """
    if root is None:
        from selfalign.data import data_root

        base = data_root()
        root = base / "bigbench" if base else None
    if root is None or not Path(root).is_dir():
        raise SelfAlignError("bigbench: no bigbench folder under the data root (set SELFALIGN_DATA)")
    folder = Path(root) / task
    path = folder / "task.json"
    if not path.exists():
        subs = sorted(p.parent.name for p in folder.glob("*/task.json")) if folder.is_dir() else []
        hint = f"; subtasks: {', '.join(f'bigbench:{task}/{s}' for s in subs)}" if subs else ""
        raise InputError(path, f"no such BIG-bench task{hint}")
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("examples") or [], list):
        raise InputError(path, "not a BIG-bench task (an object with a list of 'examples')")
    rows = []
    for i, ex in enumerate(data.get("examples") or []):
        if not isinstance(ex, dict):
            raise InputError(path, f"example {i}: expected an object, got {type(ex).__name__}")
        scores = ex.get("target_scores")
        if not isinstance(scores, dict) or not scores:
            continue
        if not isinstance(ex.get("input"), str):
            raise InputError(path, f"example {i}: needs a string 'input'")
        rows.append({"id": f"{task.replace('/', '.')}-{i:05d}", "question": _bigbench_question(data, ex["input"]),
                     "input": ex["input"], "task": task,
                     "options": [{"text": str(t), "label": int(float(s) > 0)} for t, s in scores.items()]})
    if not rows:
        subs = sorted(p.parent.name for p in folder.glob("*/task.json"))
        hint = f"; try its subtasks: {', '.join(f'bigbench:{task}/{s}' for s in subs)}" if subs else ""
        raise InputError(path, f"no multiple-choice examples (with target_scores){hint}")
    return rows
