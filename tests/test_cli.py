"""The sample/score commands end to end on a tiny model: outputs, resume after a kill, bad input."""
import json

from conftest import n_lines
from selfalign.cli import main


def _rows(path):
    return [json.loads(l) for l in open(path) if l.strip()]


def test_sample_then_score(tiny_model_dir, prompts_file, tmp_path):
    s, c = tmp_path / "s.jsonl", tmp_path / "c.jsonl"
    assert main(["sample", "--model", tiny_model_dir, "--input", str(prompts_file), "--output", str(s), "--n", "3",
                 "--max-new-tokens", "5", "--batch-size", "2", "--device", "cpu"]) == 0
    rows = _rows(s)
    assert len(rows) == 15 and {(r["id"], r["sample_idx"]) for r in rows} == {(f"q{i}", k) for i in range(5) for k in range(3)}
    assert all(r["prompt"].startswith("<|im_start|>user\n") and r["temperature"] == 1.0 for r in rows)
    meta = json.loads((tmp_path / "s.jsonl.meta.json").read_text())
    assert meta["config"]["n"] == 3 and meta["prompt_template"] == "plain" and "transformers" in meta["versions"]
    assert main(["score", "--model", tiny_model_dir, "--input", str(s), "--output", str(c), "--device", "cpu"]) == 0
    scored = _rows(c)
    assert len(scored) == 15
    assert all(0 <= r["p_true"] <= 1 and 0 < r["p_true_mass"] <= 1 and r["score"] == r["p_true"] for r in scored)
    # rerun: nothing new, no duplicates
    assert main(["score", "--model", tiny_model_dir, "--input", str(s), "--output", str(c), "--device", "cpu"]) == 0
    assert len(_rows(c)) == 15
    lk = tmp_path / "lk.jsonl"
    assert main(["score", "--method", "likelihood", "--model", tiny_model_dir, "--input", str(s), "--output", str(lk),
                 "--device", "cpu"]) == 0
    assert all(r["score"] is None or r["score"] < 0 for r in _rows(lk))


def test_sample_is_deterministic_for_a_seed(tiny_model_dir, prompts_file, tmp_path):
    outs = []
    for name in ("a", "b"):
        out = tmp_path / f"{name}.jsonl"
        main(["sample", "--model", tiny_model_dir, "--input", str(prompts_file), "--output", str(out), "--n", "2",
              "--max-new-tokens", "6", "--seed", "7", "--device", "cpu"])
        outs.append([r["response"] for r in _rows(out)])
    assert outs[0] == outs[1]
    assert all("continuation" not in r for r in _rows(out))  # chat replies: nothing to restore
    plain = tmp_path / "plain.jsonl"
    main(["sample", "--model", tiny_model_dir, "--input", str(prompts_file), "--output", str(plain), "--n", "2",
          "--max-new-tokens", "6", "--seed", "7", "--device", "cpu", "--chat-template", "off"])
    rows = _rows(plain)
    assert rows and all(r["continuation"].strip() == r["response"] and r["continuation"] == r["continuation"].rstrip()
                        for r in rows)


def test_resume_repairs_partial_line_and_skips_finished(tiny_model_dir, prompts_file, tmp_path):
    out = tmp_path / "s.jsonl"
    args = ["sample", "--model", tiny_model_dir, "--input", str(prompts_file), "--output", str(out), "--n", "2",
            "--max-new-tokens", "4", "--device", "cpu"]
    assert main(args) == 0
    full = out.read_text().splitlines(keepends=True)
    # as if killed: the first 3 rows and half of the 4th
    out.write_text("".join(full[:3]) + full[3][: len(full[3]) // 2])
    assert main(args) == 0
    rows = _rows(out)
    keys = [(r["id"], r["sample_idx"]) for r in rows]
    assert len(keys) == len(set(keys)) == 10
    assert [json.loads(l) for l in full[:3]] == rows[:3]


def test_kill_mid_run_then_resume(tiny_model_dir, tmp_path, cli):
    prompts = tmp_path / "p.jsonl"
    prompts.write_text("".join(json.dumps({"id": i, "question": f"Question number {i}?"}) + "\n" for i in range(40)))
    out = tmp_path / "s.jsonl"
    cmd = cli.cmd("sample", "--model", tiny_model_dir, "--input", prompts, "--output", out, "--n", 2,
                  "--max-new-tokens", 24, "--batch-size", 1, "--device", "cpu")
    cli.kill_when(cmd, lambda: n_lines(out) >= 4)
    before = _rows(out)
    assert 4 <= len(before) < 80, "the run should have been killed part-way"
    assert cli.run(cmd).returncode == 0
    rows = _rows(out)
    keys = [(r["id"], r["sample_idx"]) for r in rows]
    assert len(keys) == len(set(keys)) == 80
    assert rows[: len(before)] == before  # nothing written before the kill was recomputed


def test_bad_input_is_one_line_with_file_and_line(tiny_model_dir, tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    cases = {
        '{"id": 1, "question": "a"}\n{"id": 2, "question": \n': "bad.jsonl:2: malformed JSON",
        '{"id": 1, "question": "a"}\n\n{"id": 2}\n': "bad.jsonl:3: missing field 'question' or 'prompt'",
        "": "bad.jsonl: no rows",
        '{"id": 1, "question": "a"}\n{"id": 1, "question": "b"}\n': "bad.jsonl:2: duplicate id '1'",
        '[1, 2]\n': "bad.jsonl:1: expected a JSON object",
    }
    for text, want in cases.items():
        bad.write_text(text)
        code = main(["sample", "--model", tiny_model_dir, "--input", str(bad), "--output", str(tmp_path / "o.jsonl")])
        err = capsys.readouterr().err
        assert code == 2 and want in err and "Traceback" not in err, err
    code = main(["score", "--model", tiny_model_dir, "--input", str(tmp_path / "missing.jsonl"), "--output", "x"])
    assert code == 2 and "missing.jsonl: file not found" in capsys.readouterr().err


def test_unknown_model_is_a_clear_error(tmp_path, prompts_file, capsys):
    code = main(["sample", "--model", "no-such-model", "--input", str(prompts_file), "--output", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "unknown model 'no-such-model'" in err and "Traceback" not in err
    code = main(["sample", "--model", "nobody/nothing-here", "--input", str(prompts_file), "--output", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "cannot load model 'nobody/nothing-here'" in err and len(err.strip().splitlines()) == 1


def test_top_level_help_imports_no_stage_and_no_torch():
    """`selfalign --help` and `selfalign eval --help` list every command from the registry without importing torch."""
    import subprocess
    import sys

    code = ("import sys\nfrom selfalign.cli import main\nfor argv in (['--help'], ['eval', '--help']):\n"
            "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
            "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    assert out.strip().endswith("NO-TORCH")
    assert "knowledge-qa" in out and "sk-tune" in out  # every command still listed


def test_run_overrides_may_stand_after_the_options(capsys, monkeypatch):
    """`run RECIPE --dry-run KEY=VALUE` plans exactly what `run RECIPE KEY=VALUE --dry-run` plans."""
    from pathlib import Path

    from selfalign.cli import main

    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    plans = []
    for argv in (["run", "recipes/mc-align.yaml", "mc-data.limit=7", "--dry-run"],
                 ["run", "recipes/mc-align.yaml", "--dry-run", "mc-data.limit=7"],
                 ["run", "recipes/mc-align.yaml", "--dry-run"]):
        assert main(argv) == 0
        plans.append([ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("  ")])
    assert plans[0] == plans[1] and plans[0] != plans[2]  # the override is applied, wherever it stands


def test_an_argument_that_is_not_utf8_is_one_line(tmp_path, capsys):
    """Found by the property suite: an --output named with a byte that is not UTF-8 (Python holds it as a lone
    surrogate) wrote its rows, then failed writing the meta with a UnicodeEncodeError traceback."""
    import os

    src = tmp_path / "p.jsonl"
    src.write_text('{"id": "a", "prompt": "p", "response": "r", "score": 1}\n')
    out = os.fsdecode(bytes(tmp_path / "out") + b"\xff.jsonl")
    assert main(["pairs", "--input", str(src), "--output", out]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not UTF-8 text" in err[0] and "\\xff" in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.jsonl"]


def _first_error(argv, capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    return err[0]


def test_inputs_and_outputs_are_checked_before_the_model_loads(tmp_path, capsys, monkeypatch):
    """Found by the property suite: calibrate read its MC file, and truthfulqa-mc refused an --output equal to
    its --data, only after loading the model; knowledge-qa checked its output only when writing it. A model that
    does not exist shows which comes first."""
    model = ["--model", str(tmp_path / "no-such-model"), "--device", "cpu"]
    bad = tmp_path / "mc.jsonl"
    bad.write_text('{"id": "m", "question": "Q?", "options": "x"}\n')
    for cmd in (["calibrate"], ["eval", "calibrate"]):
        err = _first_error([*cmd, *model, "--data", str(bad), "--output", str(tmp_path / "c.json")], capsys)
        assert f"{bad}:1: 'options' must be a non-empty list" in err
    task = tmp_path / "mc_task.json"
    task.write_text(json.dumps([{"question": "Q?", "mc1_targets": {"a": 1, "b": 0}, "mc2_targets": {"a": 1, "b": 0}}]))
    data = task.read_bytes()
    err = _first_error(["eval", "truthfulqa-mc", *model, "--split", "all", "--data", str(task), "--output", str(task)],
                       capsys)
    assert f"--output {task} is the input file" in err and task.read_bytes() == data
    (tmp_path / "out").mkdir()
    root = tmp_path / "data" / "bigbench" / "facts"
    root.mkdir(parents=True)
    (root / "task.json").write_text(json.dumps({"examples": [{"input": f"Fact number {i} is", "target": f"{i}"}
                                                             for i in range(10)]}))
    monkeypatch.setenv("SELFALIGN_DATA", str(tmp_path / "data"))
    err = _first_error(["eval", "knowledge-qa", *model, "--data", "bigbench:facts", "--split", "train",
                        "--output", str(tmp_path / "out")], capsys)
    assert f"{tmp_path / 'out'}: is a directory" in err
