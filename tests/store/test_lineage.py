"""Outputs know what made them: one writer at a time, changed settings refused, changed input rows redone."""
import json
import subprocess
import sys
import time

import pytest

from conftest import n_lines
from selfalign.cli import main
from selfalign.errors import SelfAlignError


def lock_path(output):
    return output.with_name(output.name + ".lock")


def _rows(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _sample(model, inp, out, *extra):
    return main(["sample", "--model", model, "--input", str(inp), "--output", str(out), "--n", "2",
                 "--max-new-tokens", "5", "--device", "cpu", *map(str, extra)])


def _one_error_line(capsys):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_changed_flag_is_refused_and_meta_kept(tiny_model_dir, prompts_file, tmp_path, capsys):
    out = tmp_path / "s.jsonl"
    assert _sample(tiny_model_dir, prompts_file, out) == 0
    meta_file = tmp_path / "s.jsonl.meta.json"
    rows, meta = out.read_bytes(), meta_file.read_bytes()
    capsys.readouterr()
    assert _sample(tiny_model_dir, prompts_file, out, "--temperature", "0.0") == 2
    err = _one_error_line(capsys)
    assert err.endswith(f"{out} was made with temperature 1.0, not 0.0; use a new --output or --overwrite"), err
    assert out.read_bytes() == rows and meta_file.read_bytes() == meta  # nothing added, meta not rewritten
    # a flag that does not shape the rows resumes; the meta keeps its settings and records the resume
    assert _sample(tiny_model_dir, prompts_file, out, "--batch-size", "3") == 0
    m = json.loads(meta_file.read_text())
    assert m["made_with"]["temperature"] == 1.0 and m["config"]["batch_size"] == 8
    assert m["resumed"][-1]["changed"] == {"batch_size": 3} and m["resumed"][-1]["rows_before"] == 10
    # --overwrite starts afresh with the new settings
    assert _sample(tiny_model_dir, prompts_file, out, "--temperature", "0.0", "--overwrite") == 0
    assert all(r["temperature"] == 0.0 for r in _rows(out)) and len(_rows(out)) == 10
    m = json.loads(meta_file.read_text())
    assert m["made_with"]["temperature"] == 0.0 and "resumed" not in m


def test_edited_input_question_is_sampled_again(tiny_model_dir, prompts_file, tmp_path, capsys):
    out = tmp_path / "s.jsonl"
    assert _sample(tiny_model_dir, prompts_file, out) == 0
    before = out.read_text().splitlines()
    prompts = _rows(prompts_file)
    prompts[2]["question"] = "What is three plus three?"
    prompts_file.write_text("".join(json.dumps(r) + "\n" for r in prompts))
    capsys.readouterr()
    assert main(["sample", "--model", tiny_model_dir, "--input", str(prompts_file), "--output", str(out), "--n", "2",
                 "--max-new-tokens", "5", "--device", "cpu"]) == 0
    assert "redone_samples           2" in capsys.readouterr().out
    rows = _rows(out)
    assert len(rows) == 10 and len({(r["id"], r["sample_idx"]) for r in rows}) == 10
    q2 = [r for r in rows if r["id"] == "q2"]
    assert [r["question"] for r in q2] == ["What is three plus three?"] * 2
    # every other row is kept byte for byte
    assert [ln for ln in before if '"q2"' not in ln] == [ln for ln in out.read_text().splitlines() if '"q2"' not in ln]
    # the redrawn samples equal a fresh run's
    fresh = tmp_path / "fresh.jsonl"
    assert _sample(tiny_model_dir, prompts_file, fresh) == 0
    assert sorted(out.read_text().splitlines()) == sorted(fresh.read_text().splitlines())


def test_score_redoes_exactly_the_changed_samples(tiny_model_dir, prompts_file, tmp_path):
    from selfalign.stages.score import ScoreConfig, run_score

    s, c = tmp_path / "s.jsonl", tmp_path / "c.jsonl"
    assert _sample(tiny_model_dir, prompts_file, s) == 0
    cfg = ScoreConfig(model=tiny_model_dir, input=str(s), output=str(c), device="cpu")
    assert run_score(cfg)["new_rows"] == 10
    samples = _rows(s)
    samples[3]["response"] = "an edited answer"
    s.write_text("".join(json.dumps(r) + "\n" for r in samples))
    res = run_score(cfg)
    assert res["new_rows"] == 1 and res["redone_rows"] == 1
    rows = _rows(c)
    assert len(rows) == 10 and [r["response"] for r in rows if r["response"] == "an edited answer"]
    with pytest.raises(SelfAlignError, match="was made with shots 0, not 2"):
        run_score(ScoreConfig(model=tiny_model_dir, input=str(s), output=str(c), device="cpu", shots=2))


def test_input_equal_to_output_is_refused(tiny_model_dir, prompts_file, tmp_path, capsys):
    data = prompts_file.read_bytes()
    assert _sample(tiny_model_dir, prompts_file, prompts_file) == 2
    assert "is the input file" in _one_error_line(capsys) and prompts_file.read_bytes() == data
    s = tmp_path / "s.jsonl"
    assert _sample(tiny_model_dir, prompts_file, s) == 0
    data = s.read_bytes()
    capsys.readouterr()
    assert main(["score", "--model", tiny_model_dir, "--input", str(s), "--output", str(s), "--device", "cpu"]) == 2
    assert "is the input file" in _one_error_line(capsys) and s.read_bytes() == data


def test_second_writer_is_refused_and_stale_lock_taken_over(tmp_path):
    from selfalign.store.lineage import TrackedOutput

    out = tmp_path / "o.jsonl"
    with TrackedOutput(out, key=lambda r: r["i"], settings={}) as first:
        first.record({"config": {}})
        first.write([{"i": 1}])
        assert lock_path(out).read_text().strip() == str(__import__("os").getpid())
        with pytest.raises(SelfAlignError, match=r"being written by another process \(pid \d+"):
            TrackedOutput(out, key=lambda r: r["i"], settings={})
    assert not lock_path(out).exists()
    # a lock file left by a process that died (kill -9 leaves it behind): taken over
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock_path(out).write_text(f"{dead.pid}\n")
    with TrackedOutput(out, key=lambda r: r["i"], settings={}) as again:
        assert again.finished == {1}
        assert lock_path(out).read_text().strip() != str(dead.pid)


def test_lock_held_by_a_live_process_is_respected(tmp_path):
    from selfalign.store.locks import OutputLock

    out = tmp_path / "o.jsonl"
    holder = subprocess.Popen([sys.executable, "-c", f"""
import sys, time
sys.path.insert(0, {str(__import__('pathlib').Path(__file__).parents[2])!r})
from selfalign.store.locks import OutputLock
with OutputLock({str(out)!r}):
    print("held", flush=True)
    time.sleep(30)
"""], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(SelfAlignError, match=f"pid {holder.pid}"):
            OutputLock(out).acquire()
    finally:
        holder.kill()
        holder.wait()
    with OutputLock(out):  # its holder was killed: the kernel released the lock
        pass


def test_two_samplers_at_once_one_refused_no_duplicates(tiny_model_dir, tmp_path, cli, capsys):
    prompts = tmp_path / "p.jsonl"
    prompts.write_text("".join(json.dumps({"id": i, "question": f"Question number {i}?"}) + "\n" for i in range(12)))
    out = tmp_path / "same.jsonl"
    args = ["sample", "--model", tiny_model_dir, "--input", prompts, "--output", out, "--n", 2,
            "--max-new-tokens", 24, "--batch-size", 1, "--device", "cpu"]
    first = subprocess.Popen(cli.cmd(*args), env=cli.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and first.poll() is None:  # the pid is written once the lock is held
        if lock_path(out).exists() and lock_path(out).read_text().strip():
            break
        time.sleep(0.01)
    capsys.readouterr()
    assert main(list(map(str, args))) == 2  # the second writer, while the first holds the output
    err = _one_error_line(capsys)
    assert "is being written by another process" in err and f"pid {first.pid}" in err
    assert first.wait(timeout=300) == 0, first.stderr.read()
    rows = _rows(out)
    assert len(rows) == 24 and len({(r["id"], r["sample_idx"]) for r in rows}) == 24
    assert n_lines(out) == 24 and not lock_path(out).exists()


def test_rows_without_meta_are_refused(tmp_path):
    from selfalign.store.lineage import TrackedOutput

    out = tmp_path / "o.jsonl"
    out.write_text('{"i": 1}\n')
    with pytest.raises(SelfAlignError, match="has rows but no o.jsonl.meta.json"):
        TrackedOutput(out, key=lambda r: r["i"], settings={})
    assert not lock_path(out).exists()


def test_recipe_stage_hash_covers_input_file_content(tiny_model_dir, prompts_file, tmp_data_root, tmp_path):
    from selfalign.run.pipeline import RunConfig, run_recipe

    recipe = tmp_path / "r.yaml"
    recipe.write_text(json.dumps({"model": tiny_model_dir, "device": "cpu", "sample": {
        "input": str(prompts_file), "n": 1, "max_new_tokens": 2}, "score": {}}))
    cfg = dict(recipe=str(recipe), output=str(tmp_path / "run"))
    assert set(run_recipe(RunConfig(**cfg))["stages"].values()) == {"run"}
    assert run_recipe(RunConfig(**cfg, dry_run=True))["plan"] == {"sample": "skip", "score": "skip"}
    prompts_file.write_text(prompts_file.read_text().replace("Who wrote Hamlet?", "Who wrote Macbeth?"))
    assert run_recipe(RunConfig(**cfg, dry_run=True))["plan"] == {"sample": "redo", "score": "redo"}
    run_recipe(RunConfig(**cfg))
    rows = _rows(tmp_path / "run" / "sample" / "samples.jsonl")
    assert "Who wrote Macbeth?" in {r["question"] for r in rows} and len(rows) == 5


def test_weights_replaced_at_the_same_path_are_refused_on_resume(prompts_file, tmp_path, capsys):
    """Issue 34 (staleness): the model folder's weights replaced after a run: the output's settings hold the
    weights' fingerprint (hashes.weights_fingerprint), so the resume is one line, nothing appended."""
    import shutil

    from conftest import build_tiny

    model = build_tiny(tmp_path / "model")
    out = tmp_path / "s.jsonl"
    assert _sample(model, prompts_file, out, "--limit", "2") == 0
    made = json.loads((tmp_path / "s.jsonl.meta.json").read_text())["made_with"]
    assert made["weights"]["model"] and made["model"] == model
    # the same weights copied elsewhere and back (new mtimes) are the same weights: the rest is sampled
    shutil.copytree(model, tmp_path / "copy")
    shutil.rmtree(model)
    shutil.copytree(tmp_path / "copy", model)
    assert _sample(model, prompts_file, out, "--limit", "3") == 0
    rows = out.read_bytes()
    build_tiny(tmp_path / "model", seed=1)  # other weights at the same path
    capsys.readouterr()
    assert _sample(model, prompts_file, out) == 2
    err = _one_error_line(capsys)
    assert f"{out} was made with other weights at {model}" in err and "the model was replaced" in err
    assert out.read_bytes() == rows
