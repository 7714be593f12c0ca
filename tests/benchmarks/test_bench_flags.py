"""The benchmark scripts' own flags: a bad value is one usage line and exit 2, not a traceback."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks" / "align"))
import dpo_sweep as D  # noqa: E402


def test_runs_parse_and_resolve_their_directory(tmp_path):
    assert D.run_spec("1e-4:40") == (1e-4, 40, 0, "")
    assert D.parse_run(D.run_spec("2e-4:20:1@x/y"), tmp_path) == (2e-4, 20, 1, Path("x/y"))
    assert D.parse_run(D.run_spec("5e-5:40:2"), tmp_path) == (5e-5, 40, 2, tmp_path / "lr5e-05_steps40" / "seed2")


@pytest.mark.parametrize("argv", [["--runs", "1e-4"], ["--runs", "x:40"], ["--runs", "1e-4:0"],
                                  ["--runs", "1e-4:40:1:2"], ["--runs", "-1:40"], ["--table", "missing.json"]])
def test_bad_flags_are_one_line_and_exit_2(argv, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        D.main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and "Traceback" not in err and ("error: argument --runs" in err or "error: --table" in err)
