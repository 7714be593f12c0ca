"""Every command on every kind of bad input: exit 2, exactly one line on stderr naming the flag, the recipe key or
the file (and line), never a traceback. The cases are generated from the config declarations and the record
schemas (tests/fuzz_inputs.py); all run in-process and fail before any model loads."""
from __future__ import annotations

import collections

import pytest

from fuzz_inputs import cases, run_case, table_name


@pytest.fixture(scope="module")
def all_cases(tmp_path_factory, tiny_model_dir):
    return cases(tmp_path_factory.mktemp("fuzz"), tiny_model_dir)


COMMANDS = ["sample", "score", "pairs", "sk-data", "sk-tune", "mc-data", "calibrate", "align", "sft", "run", "report",
            "eval truthfulqa-mc", "eval truthfulqa-gen", "eval biogen", "eval calibrate"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_bad_input_is_one_line_and_exit_2(all_cases, command):
    mine = [c for c in all_cases if table_name(c) == command]
    assert len(mine) >= 10
    failed, still_known = [], []
    for case in mine:
        res = run_case(case)
        if case.known:
            if res.held(case):
                still_known.append(f"{case}: now holds; drop it from KNOWN")
            continue
        if not res.held(case):
            failed.append(f"{case}\n    argv: {case.argv}\n    want: {case.want!r}\n    exit {res.code}, stderr: "
                          f"{res.err[-600:]!r}")
    assert not failed, f"{len(failed)} of {len(mine)} cases failed:\n" + "\n".join(failed[:15])
    assert not still_known, still_known


def test_the_cases_cover_every_command_and_kind_named_in_the_issue(all_cases):
    kinds = collections.defaultdict(set)
    for c in all_cases:
        kinds[table_name(c)].add(c.kind)
    assert set(kinds) == set(COMMANDS)
    for command in COMMANDS:
        assert "bad flag" in kinds[command] or command == "run"
        assert {"non-UTF-8 file", "directory as file", "missing file", "empty file"} <= kinds[command], command
    assert "bad recipe value" in kinds["run"]
    flags = {(c.command, c.what) for c in all_cases if c.kind == "bad flag"}
    for want in [("sample", "--batch-size 0"), ("sample", "--top-k -1"), ("sample", "--max-new-tokens 0"),
                 ("sample", "--device tpu9"), ("align", "--learning-rate -1"), ("align", "--loss-type bogus"),
                 ("sample", "--n 0"), ("sample", "--n -1"), ("sample", "--temperature -1"), ("sample", "--top-p 2"),
                 ("sample", "--limit -1"), ("sample", "--limit 0")]:
        assert want in flags, want
