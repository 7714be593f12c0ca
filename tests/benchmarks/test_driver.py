"""The study drivers' shared run (benchmarks/effect/xtask_study.driven): the claim file, the start note, and why it
stopped, in the study folder."""
import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks" / "effect"))
import xtask_study as xt  # noqa: E402


def test_a_driver_claims_the_folder_notes_its_start_and_why_it_stopped(tmp_path, monkeypatch):
    monkeypatch.setattr(xt, "XT", tmp_path)
    monkeypatch.setattr(xt.os, "setsid", lambda: None)  # the test process stays in its own group
    with pytest.raises(ValueError, match="boom"):
        with xt.driven([("a", 10.0), ("b", 5.5)], "-part") as hb:
            hb.note("inside")
            raise ValueError("boom\nsecond line")
    claim = json.loads((tmp_path / "driver-part.json").read_text())
    assert claim["pid"] == os.getpid()
    lines = (tmp_path / "progress-part.log").read_text().splitlines()
    notes = [x.split(" UTC | ", 1)[1] for x in lines if "driver pid" in x or "inside" in x or "stopped" in x]
    assert notes == [f"driver pid {os.getpid()} (process group {os.getpgrp()}) started; plan 16 s", "inside",
                     "stopped: ValueError: boom"]
    assert hb.stop.is_set()  # the heartbeat thread ends with the run


def test_whole_questions_takes_every_row_of_a_question_until_n_rows():
    """common.whole_questions: whole questions in one fixed shuffle until at least n rows, rows in file order; the
    same on a second call; n at least the total takes everything."""
    import random

    import common

    rows = [{"id": q, "k": k} for q, size in (("a", 2), ("b", 3), ("c", 4), ("d", 1)) for k in range(size)]
    order = sorted({"a", "b", "c", "d"})
    random.Random(7).shuffle(order)
    sizes = {"a": 2, "b": 3, "c": 4, "d": 1}
    want, total = set(), 0
    for q in order:
        if total >= 5:
            break
        want.add(q)
        total += sizes[q]
    got = common.whole_questions(rows, 5, 7)
    assert {r["id"] for r in got} == want and len(got) == total >= 5
    assert got == [r for r in rows if r["id"] in want] == common.whole_questions(rows, 5, 7)
    assert common.whole_questions(rows, 100, 7) == rows
