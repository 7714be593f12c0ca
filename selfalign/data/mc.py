"""Multiple-choice sets in one shape: [{id, question, options: [{text, label 0/1}]}].

Sources: a JSONL file of that shape, TruthfulQA MC (mc_task.json: its mc2 targets, several options may be true,
or its mc1 targets, one true option: the option set of the authors' ``mc_train_tf_judge234.json``), and BIG-bench
multiple-choice tasks (``target_scores``).
"""
from __future__ import annotations

from pathlib import Path

from selfalign.errors import InputError, SelfAlignError
from selfalign.store.io import duplicate, input_file, iter_numbered, read_json


MC_SETS = ("mc1", "mc2")


def load_mc(source: str, split: str | None = None, limit: int | None = None, options: str = "mc2") -> list[dict]:
    """Dispatch: ``truthfulqa-mc``, ``bigbench:TASK[/SUBTASK]``, ``sk:PATH`` (SK-Tuning rows), or a JSONL path."""
    if source == "truthfulqa-mc":
        rows = load_truthfulqa_mc(None, split, options)
    elif source.startswith("sk:"):
        rows = load_sk_rows(source[3:])
    else:
        if split not in (None, "", "all"):
            raise SelfAlignError(f"--split applies to truthfulqa-mc only, not to {source!r}")
        if source.startswith("bigbench:") or source.endswith(".json"):
            rows = load_bigbench_source(source)
            mc_rows = [r for r in rows if r["options"]]
            if rows and not mc_rows:
                raise SelfAlignError(f"{source}: a generative task (targets, no options); its judge is measured on "
                                     "the model's own samples: selfalign sk-data --mode samples, then sk:PATH")
            rows = mc_rows
        else:
            rows = load_mc_jsonl(source)
    if limit:
        rows = rows[:limit]
    if not rows:
        raise SelfAlignError(f"{source}: no questions selected")
    return rows


def _check_options(path, options, where, labels: bool = True) -> list[dict]:
    """The options of one question, checked; ``labels=False``: a label is neither needed nor read (mc-data)."""
    if not isinstance(options, list) or not options:
        raise InputError(path, "'options' must be a non-empty list", where)
    out = []
    for k, o in enumerate(options):
        if not isinstance(o, dict) or not isinstance(o.get("text"), str) or not o["text"].strip():
            raise InputError(path, f"option {k}: needs a non-empty string 'text'", where)
        if not labels:
            out.append({"text": o["text"]})
            continue
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
    from selfalign.store.io import read_jsonl

    groups: dict[tuple, dict] = {}
    for r in read_jsonl(path, required=["id", "question", "proposal", "label"]):
        key = (str(r.get("task", "")), str(r["id"]))
        g = groups.setdefault(key, {"id": "/".join(k for k in key if k), "question": r["question"], "options": []})
        if all(o["text"] != r["proposal"] for o in g["options"]):
            g["options"].append({"text": r["proposal"], "label": int(r["label"])})
    return list(groups.values())


def check_one_set(path, numbered, expect: str | None = None) -> None:
    """Rows of one file hold one TruthfulQA option set: a row's ``mc`` (where it has one) is mc1 or mc2, the same
    on every row, and ``expect`` when given; else one line naming the file and the line."""
    first = None
    for n, r in numbered:
        m = r.get("mc")
        if m is None:
            continue
        if m not in MC_SETS:
            raise InputError(path, f"'mc' must be mc1 or mc2, got {m!r}", n)
        if first is not None and m != first[0]:
            raise InputError(path, f"mixes mc1 and mc2 options ({first[0]} on line {first[1]}, {m} here): one file "
                                   "holds one option set; make each with its own --output", n)
        first = first or (m, n)
    if first is not None and expect is not None and first[0] != expect:
        raise InputError(path, f"holds {first[0]} options, not {expect}: use another --output (or --options "
                               f"{first[0]})", first[1])


def _truthfulqa_dir() -> Path:
    """The folder of TruthfulQA's mc_task.json (data root, hub copy in the cache, or fetched now)."""
    from selfalign.data.truthfulqa import mc_task_path

    return mc_task_path().parent


def load_truthfulqa_mc(mc_path: str | Path | None = None, split: str | None = "all",
                       options: str = "mc2") -> list[dict]:
    """TruthfulQA MC with its mc2 targets (or ``options="mc1"``: its mc1 targets, one true option), optionally
    restricted to a split of splits.json beside the file. Each row records its option set in ``mc``.

    Ids are those of TruthfulQA.csv (``tqa-NNN``, matched by question) when the CSV sits beside the file,
    so that results join with the generation set; otherwise ``tqa-mc-NNN`` by position in the file.
    """
    from selfalign.data.truthfulqa import SPLITS, load_splits, read_csv

    split = split or "all"
    if options not in MC_SETS:
        raise SelfAlignError(f"TruthfulQA MC options must be mc1 or mc2, not {options!r}")
    key = f"{options}_targets"
    if split not in SPLITS:
        raise SelfAlignError(f"unknown TruthfulQA split {split!r}; choose one of {', '.join(SPLITS)}")
    path = Path(mc_path) if mc_path else _truthfulqa_dir() / "mc_task.json"
    data = read_json(path)
    csv_path = path.parent / "TruthfulQA.csv"
    csv_ids = {r["question"]: r["id"] for r in read_csv(csv_path)} if csv_path.exists() else {}
    rows = []
    for i, ex in enumerate(data if isinstance(data, list) else []):
        targets = ex.get(key) if isinstance(ex, dict) else None
        if not isinstance(targets, dict) or not targets or not isinstance(ex.get("question"), str):
            raise InputError(path, f"entry {i}: needs 'question' and a non-empty '{key}' object")
        if any(v not in (0, 1) for v in targets.values()):
            raise InputError(path, f"entry {i}: '{key}' labels must be 0 or 1")
        q = ex["question"].strip()
        rows.append({"id": csv_ids.get(q, f"tqa-mc-{i:03d}"), "question": q, "mc": options,
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
    """Examples of ``bigbench/TASK/task.json`` (TASK may be ``name/subtask_0``), multiple-choice or generative.

    A multiple-choice example (``target_scores``) has options, true when the score is > 0. A generative example
    (a ``target`` string or list and no ``target_scores``) has ``targets`` (the gold strings) and no options. The
    question joins the task's ``task_prefix``, ``example_input_prefix``, input and ``example_output_prefix``.
    """
    return _load_task_file(bigbench_path(task, root), task)


def _load_task_file(path: Path, task: str) -> list[dict]:
    data = read_json(path)  # missing, not UTF-8, malformed: one line naming the file (and line)
    examples = data.get("examples") if isinstance(data, dict) else None
    if not isinstance(examples, list) or not examples:
        subs = sorted(p.parent.name for p in path.parent.glob("*/task.json"))
        hint = f"; try its subtasks: {', '.join(f'bigbench:{task}/{s}' for s in subs)}" if subs else ""
        raise InputError(path, f"no examples{hint}")
    rows = []
    for i, ex in enumerate(examples):
        where = f"example {i}"
        if not isinstance(ex, dict) or not isinstance(ex.get("input"), str) or not ex["input"].strip():
            raise InputError(path, f"{where}: needs a non-empty string 'input'")
        row = {"id": f"{task.replace('/', '.')}-{i:05d}", "question": _bigbench_question(data, ex["input"]),
               "input": ex["input"], "task": task}
        scores = ex.get("target_scores")
        if isinstance(scores, dict) and scores:
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in scores.values()):
                raise InputError(path, f"{where}: 'target_scores' values must be numbers")
            row["options"] = [{"text": str(t), "label": int(float(s) > 0)} for t, s in scores.items()]
        elif "target" in ex and "target_scores" not in ex:
            targets = ex["target"] if isinstance(ex["target"], list) else [ex["target"]]
            if not targets or not all(isinstance(t, str) and t.strip() for t in targets):
                raise InputError(path, f"{where}: 'target' must be a non-empty string or list of non-empty strings")
            row.update(options=[], targets=[t.strip() for t in targets])
        else:
            raise InputError(path, f"{where}: has neither 'target_scores' (multiple choice) nor 'target' (generative)")
        rows.append(row)
    return rows


def load_bigbench_source(source: str) -> list[dict]:
    """``bigbench:TASK`` under the data root, or a BIG-bench ``task.json`` given by path."""
    if source.startswith("bigbench:"):
        return load_bigbench(source.split(":", 1)[1])
    path = Path(source)
    if not path.is_file():
        raise InputError(path, "file not found")
    return load_bigbench(path.parent.name, path.parent.parent) if path.name == "task.json" else \
        _load_task_file(path, path.stem)


def is_generative(source: str) -> bool:
    """Whether a BIG-bench source (``bigbench:TASK`` or a task.json path) has only generative examples."""
    if not (source.startswith("bigbench:") or source.endswith(".json")):
        return False
    rows = load_bigbench_source(source)
    return bool(rows) and not any(r["options"] for r in rows)


PLACE_BIGBENCH = ("place the task's task.json (github.com/google/BIG-bench, bigbench/benchmark_tasks/{task}/task.json) "
                  "in {folder}")


def bigbench_path(task: str, root: str | Path | None = None) -> Path:
    """``bigbench/TASK/task.json`` under the data root (or ``root``), else the copy shipped with selfalign
    (``data.shipped``: qa_wikidata); a task split into subtasks names them; a missing file is one line naming the
    file and the folder to place it in."""
    from selfalign.data import shipped

    if root is None:
        from selfalign.data import data_root

        base = data_root()
        root = base / "bigbench" if base else None
        if (root is None or not (Path(root) / task / "task.json").exists()) and shipped.has_bigbench(task):
            return shipped.bigbench(task)
    if root is None or not Path(root).is_dir():
        folder = (f"{root}/{task}/" if root is not None else
                  f"$SELFALIGN_DATA/bigbench/{task}/ (SELFALIGN_DATA: a folder of your choice)")
        raise InputError(f"bigbench/{task}/task.json", "no data root with BIG-bench tasks: "
                         + PLACE_BIGBENCH.format(task=task, folder=folder))
    folder = Path(root) / task
    if Path(task).is_absolute() or ".." in Path(task).parts or not str(folder.resolve()).startswith(
            str(Path(root).resolve()) + "/"):
        raise SelfAlignError(f"bigbench:{task}: a task name stays inside the data root's bigbench folder ({root})")
    path = folder / "task.json"
    if not path.exists():
        subs = sorted(p.parent.name for p in folder.glob("*/task.json")) if folder.is_dir() else []
        hint = (f"; subtasks: {', '.join(f'bigbench:{task}/{s}' for s in subs)}" if subs else
                "; " + PLACE_BIGBENCH.format(task=task, folder=f"{folder}/"))
        raise InputError(path, f"no such BIG-bench task{hint}")
    return path


def bigbench_tasks(root: str | Path) -> list[str]:
    """Every task of a bigbench folder: ``name``, or ``name/subtask`` for a task split into subtasks (a task
    whose own task.json holds no examples but whose subfolders do)."""
    out = []
    for p in sorted(Path(root).glob("*/task.json")):
        subs = sorted(q.parent.name for q in p.parent.glob("*/task.json"))
        out += [f"{p.parent.name}/{s}" for s in subs] if subs else [p.parent.name]
    return out
