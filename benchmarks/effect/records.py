"""Evaluation records that outlive a machine: ``runs/`` is not committed, and a new machine starts without it, so a
paired difference against a base measured on an earlier machine could not be computed again (2026-12-03: every
TruthfulQA MC row of both models had to be re-run for its base). The summaries keep a compact copy of each
evaluation they read, committed under ``benchmarks/results/records/`` (gzip, fixed bytes for the same content), and
read it back when ``runs/`` lacks the evaluation.

Compact: the summary as written, and per question only what the tables use (TruthfulQA MC: id, mc1, mc2,
selfeval_mc1, mc1_p_true; other tasks: every field). ``earlier`` reads a row from a results file written before
records were kept (its metrics and paired differences, not its per-question rows).
"""
from __future__ import annotations

import functools
import gzip
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ARCHIVE = ROOT / "benchmarks" / "results" / "records"
RUNS = ROOT / "runs" / "effect"
MC_KEEP = ("id", "mc1", "mc2", "selfeval_mc1", "mc1_p_true")


def archive_path(path: Path, runs: Path = RUNS, archive: Path = ARCHIVE) -> Path:
    return archive / Path(path).resolve().relative_to(runs.resolve()).with_suffix(".json.gz")


def compact(summary: dict, rows: list[dict]) -> list[dict]:
    if summary.get("task") == "truthfulqa-mc":
        return [{k: r[k] for k in MC_KEEP if k in r} for r in rows]
    return rows


def keep(path: Path, summary: dict, rows: list[dict], runs: Path = RUNS, archive: Path = ARCHIVE) -> Path:
    """Write (or leave, when the same) the compact record of the evaluation at ``path``; no path of this machine in
    it (``store.paths.portable``)."""
    from selfalign.store.paths import portable

    dst = archive_path(path, runs, archive)
    record = portable({"summary": summary, "rows": compact(summary, rows)})
    blob = gzip.compress(json.dumps(record, sort_keys=True).encode(), mtime=0)
    if not dst.exists() or dst.read_bytes() != blob:
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(dst.name + ".tmp")
        tmp.write_bytes(blob)
        tmp.replace(dst)
    return dst


def restore(path: Path, runs: Path = RUNS, archive: Path = ARCHIVE):
    """(summary, rows) of the kept record of ``path``, or (None, None) when none was kept."""
    src = archive_path(path, runs, archive)
    if not src.exists():
        return None, None
    d = json.loads(gzip.decompress(src.read_bytes()))
    summary, rows = d["summary"], d["rows"]
    if summary.get("task") == "knowledge-qa":  # kept before strict match: read as evals.results.load_result reads it
        from selfalign.evals.knowledge_qa_metrics import upgrade
        from selfalign.evals.results import summarize

        upgrade(summary, rows, summarize)
    return summary, rows


@functools.lru_cache(maxsize=8)
def _read_json(path: Path, mtime: float) -> dict:  # mtime: a file rewritten since is read again
    return json.loads(path.read_text())


def earlier(results: Path, part: str, label: str):
    """A table row from a results JSON written before its records were kept: {"metrics", "diff_vs_base"} or None."""
    if not results.exists():
        return None
    return _read_json(results, results.stat().st_mtime).get("tables", {}).get(part, {}).get(label)


def earlier_part(results: Path, key: str) -> dict:
    """A top-level part of an earlier results JSON ({} when absent)."""
    return _read_json(results, results.stat().st_mtime).get(key, {}) if results.exists() else {}


def same_base(before: dict | None, now: dict | None, cols, tol: float = 1e-4) -> bool:
    """Whether an earlier run's base row and this one's agree on every column (within another CPU's float noise),
    so its paired differences still read against this base; a base not measured here (None) is taken as the
    earlier one."""
    if now is None or now.get("from"):
        return True
    if before is None:
        return False
    get = lambda row, c: ((row.get("metrics") or {}).get(c) or {}).get("value")  # noqa: E731
    return all(get(before, c) is not None and get(now, c) is not None and abs(get(before, c) - get(now, c)) <= tol
               for c in cols)


def keep_file(path: Path, runs: Path = RUNS, archive: Path = ARCHIVE) -> Path | None:
    """A small file of a run kept as it is (a trainer's ``train_summary.json``: its figures outlive the run's
    folder); None when ``path`` does not exist."""
    path = Path(path)
    if not path.exists():
        return None
    dst = archive / path.resolve().relative_to(runs.resolve())
    data = path.read_bytes()
    if path.suffix == ".json":  # no machine path: the run folder (which may lie in another checkout) as runs/<name>
        from selfalign.store.paths import portable

        root, text = str(runs.resolve()), data.decode("utf-8")
        obj = json.loads(text)
        clean = portable(json.loads(text.replace(root, f"runs/{runs.name}")))
        if clean != obj:  # a file with no machine path is kept byte for byte
            data = (json.dumps(clean, indent=1, ensure_ascii=False) + "\n").encode("utf-8")
    if not dst.exists() or dst.read_bytes() != data:
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(data)
    return dst


def restore_files(runs: Path = RUNS, archive: Path = ARCHIVE) -> list[Path]:
    """Put the kept files back into a fresh runs/ (those missing there): plain files as they were kept, and the
    evaluation records that hold whole rows (every task but TruthfulQA MC) as ``<eval>.json`` + its rows file, so
    a run on a new machine (a DPO sweep on kept pairs, paired against a kept base) starts where the last one ended."""
    from selfalign.evals.results import rows_path

    made = []
    for src in sorted(p for p in archive.rglob("*") if p.is_file()):
        rel = src.relative_to(archive)
        if src.name.endswith(".json.gz"):
            dst = runs / str(rel)[:-len(".gz")]
            d = json.loads(gzip.decompress(src.read_bytes()))
            summary, rows = d["summary"], d["rows"]
            if dst.exists() or summary.get("task") == "truthfulqa-mc":  # compact MC rows: not an evaluation's own
                continue
            dst.parent.mkdir(parents=True, exist_ok=True)
            rp = dst.with_name(summary.get("rows") or rows_path(dst).name)
            rp.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
            dst.write_text(json.dumps(summary, indent=1), encoding="utf-8")
        else:
            dst = runs / rel
            if dst.exists():
                continue
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_bytes(src.read_bytes())
        made.append(dst)
    return made


if __name__ == "__main__":
    import sys

    if sys.argv[1:] != ["restore"]:
        sys.exit("usage: python benchmarks/effect/records.py restore   (kept files back into a fresh runs/effect)")
    for p in restore_files():
        print(f"restored {p}")
