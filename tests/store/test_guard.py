"""The one output guard (store.guard) held by every writer: a second writer of the same output is one line, exit 2,
and writes nothing; an output that is one of the command's inputs (the same file, a symlink to it, a folder that
holds it) is one line, exit 2, and the input stays byte-identical; a result replaced whole is moved aside, never
deleted, when it was made with other settings. The command lines come from the fuzz harness (its valid files), and
every case stops where a model would load."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from fuzz_inputs import Case, Files, commands, run_case
from selfalign.errors import SelfAlignError
from selfalign.store.guard import OutputGuard
from selfalign.store.locks import OutputLock


@pytest.fixture(scope="module")
def env(tmp_path_factory, tiny_model_dir):
    files = Files(tmp_path_factory.mktemp("guard"))
    files.good["task"] = files.root / "good" / "task.json"  # judge-check: a BIG-bench task with target_scores
    files.good["task"].write_text(json.dumps({"examples": [{"input": "Capital of France?",
                                                            "target_scores": {"Paris": 1, "Rome": 0}}]}))
    return files, commands(files, tiny_model_dir), tiny_model_dir


def _writers(files: Files, cmds: dict, model: str) -> dict:
    """writer -> (argv builder {flag: path}, the input flag an output may name, "file" | "dir")."""
    out = {name: (argv, next(iter(inputs)), next(iter(outputs.values())))
           for name, (argv, inputs, outputs) in cmds.items() if name != "run" and "(" not in name}
    dev = ["--model", model, "--device", "cpu"]

    def extra(base, fl, good):
        def argv(over=None):
            over = over or {}
            return [*base, fl, over.get(fl, good), "--output", over.get("--output", files.out("out.json"))]
        return argv

    g = files.good
    out["eval judge-check"] = (extra(["eval", "judge-check", *dev], "--data", g["task"]), "--data", "file")
    out["eval wikifacts"] = (extra(["eval", "wikifacts", *dev], "--responses", g["bios"]), "--responses", "file")
    out["eval knowledge-qa"] = (extra(["eval", "knowledge-qa", *dev], "--data", "bigbench:qa_wikidata"), None, "file")
    return out


WRITERS = ["sample", "score", "pairs", "sk-data", "sk-tune", "mc-data", "calibrate", "align", "sft", "report",
           "eval truthfulqa-mc", "eval truthfulqa-gen", "eval biogen", "eval calibrate", "eval judge-check",
           "eval wikifacts", "eval knowledge-qa"]


def _files(root) -> dict:
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_every_writer_is_listed(env):
    from selfalign import registry

    writers = set(_writers(*env)) | {"run"}
    commands_ = {n for n in registry.commands() if n != "cache"} | {f"eval {t}" for t in registry.evals()}
    assert commands_ <= writers | {"mc-tune"}, commands_ - writers  # mc-tune is sk-tune's code


@pytest.mark.parametrize("writer", WRITERS)
def test_a_second_writer_is_one_line_and_writes_nothing(env, writer):
    files, cmds, model = env
    argv, _, kind = _writers(files, cmds, model)[writer]
    out = files.out("out.json" if kind == "file" else "outdir")
    before = _files(files.root)
    with OutputLock(out):  # held through another open file: flock refuses a second one, even in this process
        res = run_case(Case(writer, "lock", argv({"--output": out}), ""), stop_at_model=True)
        lines = res.err.strip().splitlines()
        assert res.code == 2 and len(lines) == 1, res.err
        assert "is being written by another process" in lines[0] and f"pid {os.getpid()}" in lines[0], res.err
    after = _files(files.root)
    assert after == before, sorted(set(map(str, after)) ^ set(map(str, before)))
    assert not out.exists()


@pytest.mark.parametrize("writer", [w for w in WRITERS if w != "eval knowledge-qa"])  # its input is in the data root
def test_an_output_that_is_its_input_is_one_line_and_the_input_kept(env, writer):
    files, cmds, model = env
    argv, fl, kind = _writers(files, cmds, model)[writer]
    base = argv()
    copy = files.fresh(Path(base[base.index(fl) + 1]).name)
    shutil.copy(base[base.index(fl) + 1], copy)
    data = copy.read_bytes()
    out = copy if kind == "file" else copy.parent  # a folder output that holds its input
    res = run_case(Case(writer, "own input", argv({fl: copy, "--output": out}), ""), stop_at_model=True)
    lines = res.err.strip().splitlines()
    assert res.code == 2 and len(lines) == 1 and "Traceback" not in res.err, res.err
    assert ("is the input file" if kind == "file" else "holds the input file") in lines[0], res.err
    assert copy.read_bytes() == data and sorted(copy.parent.iterdir()) == [copy]


def test_a_symlink_to_an_input_is_the_input(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text('{"id": 1}\n')
    link = tmp_path / "sub" / "out.jsonl"
    link.parent.mkdir()
    link.symlink_to(src)
    with pytest.raises(SelfAlignError, match="is the input file"):
        OutputGuard(link, inputs=[f"sk:{src}"]).acquire()
    assert src.read_text() == '{"id": 1}\n' and not (tmp_path / "sub" / "out.jsonl.lock").exists()


def test_run_refuses_a_second_runner_and_its_own_recipe_as_recipe_json(tmp_data_root, tiny_model_dir, capsys):
    from selfalign.cli import main

    run = tmp_data_root / "run"
    run.mkdir()
    prompts = run / "p.jsonl"
    prompts.write_text(json.dumps({"id": "q", "question": "Q?"}) + "\n")
    recipe = tmp_data_root / "r.yaml"
    recipe.write_text(f"model: {tiny_model_dir}\ndevice: cpu\nsample: {{input: {prompts}}}\n")
    before = _files(tmp_data_root)
    with OutputLock(run / "recipe.json"):
        assert main(["run", str(recipe), "--output", str(run)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "being written by another process" in err[0]
    assert _files(tmp_data_root) == before
    own = run / "recipe.json"  # a recipe kept as the run's recipe.json, run into that folder
    own.write_text(json.dumps({"model": tiny_model_dir, "sample": {"input": str(prompts)}}))
    data = own.read_bytes()
    assert main(["run", str(own), "--output", str(run)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is the input file" in err[-1] and own.read_bytes() == data


def _write(g: OutputGuard, text: str) -> None:
    g.begin()
    g.output.write_text(text)
    g.record({"config": {}})


def test_a_whole_output_of_other_settings_is_moved_aside_not_deleted(tmp_path, capsys):
    out = tmp_path / "pairs.jsonl"
    with OutputGuard(out, settings={"margin": 0.0}, whole=[out]) as g:
        _write(g, "first\n")
    first = json.loads((tmp_path / "pairs.jsonl.meta.json").read_text())["settings_hash"]
    with OutputGuard(out, settings={"margin": 0.0}, whole=[out]) as g:  # the same settings: replaced in place
        _write(g, "again\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pairs.jsonl", "pairs.jsonl.meta.json"]
    with OutputGuard(out, settings={"margin": 0.5}, whole=[out]) as g:
        _write(g, "second\n")
    assert f"moved aside to pairs.jsonl.old-{first}" in capsys.readouterr().err
    assert (tmp_path / f"pairs.jsonl.old-{first}").read_text() == "again\n"
    assert json.loads((tmp_path / f"pairs.jsonl.meta.json.old-{first}").read_text())["made_with"] == {"margin": 0.0}
    assert out.read_text() == "second\n"
    with OutputGuard(out, settings={"margin": 0.0}, whole=[out]) as g:  # back: the earlier aside is not replaced
        _write(g, "third\n")
    second = json.loads((tmp_path / f"pairs.jsonl.meta.json.old-{first}").read_text())["settings_hash"]
    assert second == first  # the file moved aside first is still there, as it was
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len([n for n in names if n.startswith("pairs.jsonl.old-")]) == 2, names
    # a file of unknown origin in the output's place: moved aside as "unknown", not written over
    foreign = tmp_path / "mine.jsonl"
    foreign.write_text("my own notes\n")
    with OutputGuard(foreign, settings={}, whole=[foreign]) as g:
        _write(g, "rows\n")
    assert (tmp_path / "mine.jsonl.old-unknown").read_text() == "my own notes\n"


def test_overwrite_moves_the_rows_and_their_meta_aside(tmp_path):
    from selfalign.store.lineage import TrackedOutput

    out = tmp_path / "s.jsonl"
    with TrackedOutput(out, key=lambda r: r["i"], settings={"t": 1}) as o:
        o.record({"config": {}})
        o.write([{"i": 1}])
    tag = json.loads((tmp_path / "s.jsonl.meta.json").read_text())["settings_hash"]
    with TrackedOutput(out, key=lambda r: r["i"], settings={"t": 2}, overwrite=True) as o:
        assert not o.finished
    assert (tmp_path / f"s.jsonl.old-{tag}").read_text() == '{"i": 1}\n'
    assert (tmp_path / f"s.jsonl.meta.json.old-{tag}").exists()


def test_an_eval_result_of_other_settings_is_moved_aside(tmp_path, tiny_model_dir):
    """A changed --limit keeps the rows (the same rows, by id) and moves the earlier result aside."""
    from selfalign.cli import main

    from fuzz_records import MC_TASK

    data = tmp_path / "mc_task.json"
    data.write_text(json.dumps([MC_TASK[0], {**MC_TASK[0], "question": "Capital of Italy?",
                                             "mc1_targets": {"Rome": 1, "Paris": 0},
                                             "mc2_targets": {"Rome": 1, "Paris": 0}}]))
    out = tmp_path / "r.json"
    argv = ["eval", "truthfulqa-mc", "--model", tiny_model_dir, "--device", "cpu", "--data", str(data), "--split",
            "all", "--output", str(out), "--n-boot", "10"]
    assert main(argv) == 0
    first = json.loads(out.read_text())
    assert main([*argv, "--n-boot", "20"]) == 0  # the bootstrap only: the same result summarised anew, in place
    assert not list(tmp_path.glob("r.json.old-*"))
    assert main([*argv, "--limit", "1"]) == 0
    aside = tmp_path / f"r.json.old-{first['meta']['settings_hash']}"
    assert json.loads(aside.read_text())["metrics"]["mc1"]["n"] == 2
    assert json.loads(out.read_text())["metrics"]["mc1"]["n"] == 1
