"""SIGTERM during a stage: the rows written stay, one line says how many, exit 143; a rerun resumes."""
import json
import signal
import subprocess
import time

import pytest

from conftest import n_lines
from selfalign.store.io import JsonlAppender
from selfalign.store.progress import run_chunks


def _term_when(cli, cmd, ready, timeout=120.0):
    """Start ``cmd``, send SIGTERM once ``ready()``; (exit code, stderr)."""
    proc = subprocess.Popen(cmd, env=cli.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None and not ready():
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


def _prompts(tmp_path, n=16):
    p = tmp_path / "p.jsonl"
    p.write_text("".join(json.dumps({"id": i, "question": f"Question number {i}?"}) + "\n" for i in range(n)))
    return p


def test_sigterm_during_sample_keeps_rows_one_line_exit_143(tiny_model_dir, tmp_path, cli):
    out = tmp_path / "s.jsonl"
    cmd = cli.cmd("sample", "--model", tiny_model_dir, "--input", _prompts(tmp_path), "--output", out, "--n", 2,
                  "--max-new-tokens", 12, "--batch-size", 1, "--device", "cpu")
    code, err = _term_when(cli, cmd, lambda: n_lines(out) >= 4)
    lines = err.strip().splitlines()
    kept = n_lines(out)
    assert code == 143, err
    assert 4 <= kept < 32 and out.read_text().endswith("\n"), "killed part-way, on a whole row"
    assert lines[-1] == f"selfalign sample: interrupted: {kept} rows kept in {out}; rerun to resume", err
    assert "Traceback" not in err
    assert cli.run(cmd).returncode == 0
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == len({(r["id"], r["sample_idx"]) for r in rows}) == 32


def test_sigterm_during_run_exits_143(tiny_model_dir, tmp_data_root, tmp_path, cli):
    prompts = _prompts(tmp_path)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(json.dumps({"model": tiny_model_dir, "device": "cpu", "sample": {
        "input": str(prompts), "n": 2, "max_new_tokens": 12, "batch_size": 1}}))
    out = tmp_path / "run" / "sample" / "samples.jsonl"
    cmd = cli.cmd("run", recipe, "--output", tmp_path / "run")
    code, err = _term_when(cli, cmd, lambda: n_lines(out) >= 4)
    assert code == 143, err
    assert err.strip().splitlines()[-1] == (f"selfalign run: interrupted: {n_lines(out)} rows kept in {out}; "
                                            f"rerun to resume"), err
    assert json.loads((tmp_path / "run" / "sample" / "stage.json").read_text())["finished"] is False


def test_signal_during_a_write_waits_for_the_chunk(tmp_path):
    """The handler runs while a chunk is written: the chunk is saved whole before Interrupted is raised."""
    from selfalign.errors import Interrupted

    out_path = tmp_path / "o.jsonl"
    with JsonlAppender(out_path, key=lambda r: r["i"]) as out:
        real_write = out.write

        def write(rows):  # SIGTERM arrives in the middle of writing the second chunk
            if rows and rows[0]["i"] == 2:
                real_write(rows[:1])
                signal.raise_signal(signal.SIGTERM)
                real_write(rows[1:])
            else:
                real_write(rows)

        out.write = write
        with pytest.raises(Interrupted) as e:
            run_chunks(out, list(range(10)), 2, lambda part: [{"i": x} for x in part], "t", "x", enabled=False)
    assert e.value.code == 143 and str(e.value) == f"4 rows kept in {out_path}; rerun to resume"
    assert [json.loads(x)["i"] for x in out_path.read_text().splitlines()] == [0, 1, 2, 3]
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is gone after the loop
