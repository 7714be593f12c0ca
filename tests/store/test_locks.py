"""One writer per output for the writers that had none: while another process holds ``<output>.lock``, judge-check
and sk-tune (and, from their own tests, sample, calibrate, knowledge-qa, pairs and run) refuse in one line, exit 2,
before any model loads, and write nothing. ``flock`` locks of two open() calls conflict even within one process, so
the test holds the lock itself."""
from __future__ import annotations

import json
import os

import pytest

from selfalign.cli import main
from selfalign.store.locks import OutputLock, single_writer


def _refused(argv, out, capsys):
    with OutputLock(out):
        assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "being written by another process" in err[0] and f"pid {os.getpid()}" in err[0]


def test_judge_check_refuses_a_second_writer(tmp_path, capsys):
    task = tmp_path / "task.json"
    task.write_text(json.dumps({"examples": [{"input": "Q?", "target_scores": {"yes": 1, "no": 0}}]}))
    out = tmp_path / "r.json"
    _refused(["eval", "judge-check", "--data", str(task), "--output", str(out)], out, capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["task.json"]


def test_sk_tune_refuses_a_second_writer(tmp_path, capsys):
    rows = tmp_path / "sk.jsonl"
    rows.write_text(json.dumps({"prompt": "Q", "chosen": "A", "rejected": "B"}) + "\n")
    out = tmp_path / "judge"
    _refused(["sk-tune", "--data", str(rows), "--output", str(out), "--model", "/nonexistent-model"], out, capsys)
    assert not out.exists()


def test_only_the_main_rank_of_a_launch_takes_the_lock(tmp_path, monkeypatch):
    out = tmp_path / "model"
    monkeypatch.setenv("RANK", "1")
    with OutputLock(out), single_writer(out):  # rank 1 takes none, so it is not refused
        pass
    monkeypatch.setenv("RANK", "0")
    assert isinstance(single_writer(out), OutputLock)


def test_mc_data_sk_data_and_align_refuse_a_second_writer(tmp_path, capsys):
    mc = tmp_path / "mc.jsonl"
    mc.write_text(json.dumps({"id": "q", "question": "Q?", "options": [{"text": "a", "label": 1},
                                                                       {"text": "b", "label": 0}]}) + "\n")
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps({"prompt": "Q?", "chosen": " a", "rejected": " b"}) + "\n")
    rows, sk, model = tmp_path / "rows.jsonl", tmp_path / "sk.jsonl", tmp_path / "aligned"
    _refused(["mc-data", "--data", str(mc), "--output", str(rows), "--model", "/nonexistent-model"], rows, capsys)
    _refused(["sk-data", "--sources", str(mc), "--output", str(sk)], sk, capsys)
    _refused(["align", "--pairs", str(pairs), "--output", str(model), "--model", "/nonexistent-model"], model,
             capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mc.jsonl", "pairs.jsonl"]
