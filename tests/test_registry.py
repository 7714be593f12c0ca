"""Adding a stage is one registry entry: a toy stage registered here runs as `selfalign toy-count`, as a recipe
section of `selfalign run` (wired to the next toy stage by its declared inputs), and its values are checked by
`run --dry-run` like any shipped stage's."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Optional

import pytest
import yaml

from selfalign import registry
from selfalign.cli import main
from selfalign.config import Config, opt
from selfalign.errors import SelfAlignError


@dataclass
class CountConfig(Config):
    input: Optional[str] = opt(None, "a text file")
    output: Optional[str] = opt(None, "JSON output")
    factor: int = opt(1, "multiply the line count by this", min=1)


def run_count(cfg: CountConfig) -> dict:
    with open(cfg.input) as f:
        n = sum(1 for _ in f) * cfg.factor
    with open(cfg.output, "w") as f:
        json.dump({"n": n}, f)
    return {"output": cfg.output, "n": n}


@dataclass
class DoubleConfig(Config):
    input: Optional[str] = opt(None, "a toy-count output")
    output: Optional[str] = opt(None, "JSON output")


def run_double(cfg: DoubleConfig) -> dict:
    with open(cfg.input) as f:
        n = json.load(f)["n"] * 2
    with open(cfg.output, "w") as f:
        json.dump({"n": n}, f)
    return {"output": cfg.output, "n": n}


@pytest.fixture
def toy_stages():
    registry.register(registry.Stage("toy-count", CountConfig, run_count, "count the lines of a file",
                                     output="count.json"))
    registry.register(registry.Stage("toy-double", f"{__name__}:DoubleConfig", f"{__name__}:run_double",
                                     "double a toy count", output="double.json", inputs={"input": "@toy-count"}))
    yield
    registry.unregister("toy-count")
    registry.unregister("toy-double")


@pytest.fixture
def lines(tmp_path):
    path = tmp_path / "lines.txt"
    path.write_text("a\nb\nc\n")
    return path


def test_a_registered_stage_is_a_cli_command(toy_stages, lines, tmp_path, capsys):
    out = tmp_path / "count.json"
    assert main(["toy-count", "--input", str(lines), "--output", str(out), "--factor", "5"]) == 0
    assert json.loads(out.read_text()) == {"n": 15}
    assert "toy-count: done" in capsys.readouterr().out
    assert main(["toy-count", "--input", str(lines), "--output", str(out), "--factor", "0"]) == 2
    assert "selfalign toy-count: error: --factor must be at least 1, got 0" in capsys.readouterr().err


def test_a_registered_stage_is_a_recipe_section_wired_by_its_inputs(toy_stages, lines, tmp_data_root, tmp_path,
                                                                     capsys):
    recipe = tmp_path / "toy.yaml"
    recipe.write_text(yaml.safe_dump({"name": "toy", "toy-count": {"input": str(lines), "factor": 2},
                                      "toy-double": {}}))
    run_dir = tmp_path / "run"
    assert main(["run", str(recipe), "--output", str(run_dir)]) == 0
    assert json.loads((run_dir / "toy-count" / "count.json").read_text()) == {"n": 6}
    assert json.loads((run_dir / "toy-double" / "double.json").read_text()) == {"n": 12}
    state = json.loads((run_dir / "toy-double" / "stage.json").read_text())
    assert state["finished"] and state["config"]["input"] == str(run_dir / "toy-count" / "count.json")
    capsys.readouterr()
    assert main(["run", str(recipe), "--output", str(run_dir), "--dry-run"]) == 0
    assert "plan                     toy-count=skip, toy-double=skip" in capsys.readouterr().out
    # --from knows the new stage; redoing it redoes what depends on it
    assert main(["run", str(recipe), "toy-count.factor=4", "--output", str(run_dir), "--from", "toy-count"]) == 0
    assert json.loads((run_dir / "toy-double" / "double.json").read_text()) == {"n": 24}


def test_a_registered_stage_is_checked_at_plan_time(toy_stages, lines, tmp_path, capsys):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text(yaml.safe_dump({"toy-count": {"input": str(lines), "factor": "two"}}))
    assert main(["run", str(recipe), "--output", str(tmp_path / "run"), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert f"{recipe}: toy-count: factor " in err and "Traceback" not in err, err
    recipe.write_text(yaml.safe_dump({"toy-double": {}}))
    assert main(["run", str(recipe), "--output", str(tmp_path / "run"), "--dry-run"]) == 2
    assert "stage 'toy-double' needs its input: add a 'toy-count' section" in capsys.readouterr().err


def test_without_the_entry_the_stage_is_unknown(lines, tmp_path, capsys):
    recipe = tmp_path / "toy.yaml"
    recipe.write_text(yaml.safe_dump({"toy-count": {"input": str(lines)}}))
    assert main(["run", str(recipe), "--dry-run"]) == 2
    assert "unknown key(s) toy-count" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["toy-count", "--help"])


def test_the_shipped_table_declares_every_recipe_stage_once():
    stages = registry.recipe_stages()
    assert registry.recipe_order() == ("sk-data", "sk-tune", "mc-data", "mc-tune", "sample", "score", "pairs",
                                       "align", "eval")
    assert {n: s.output for n, s in stages.items()} == {
        "sk-data": "sk.jsonl", "sk-tune": "model", "mc-data": "mc.jsonl", "mc-tune": "model",
        "sample": "samples.jsonl", "score": "scores.jsonl", "pairs": "pairs.jsonl", "align": "model"}
    assert registry.model_labels() == {"sk-tuned": "@sk-tune", "mc-aligned": "@mc-tune", "aligned": "@align"}
    assert "mc-tune" not in registry.commands() and "calibrate" in registry.commands()
    assert set(registry.evals()) == {"calibrate", "truthfulqa-mc", "truthfulqa-gen", "knowledge-qa", "judge-check",
                                     "biogen", "wikifacts"}
    for s in [*registry.commands().values(), *registry.evals().values()]:
        cls, fn = s.load()
        assert callable(fn) and hasattr(cls, "__dataclass_fields__"), s.name


def test_a_stage_revision_redoes_it_and_what_follows_in_a_finished_run(toy_stages, lines, tmp_data_root, tmp_path,
                                                                       capsys):
    """A fix that changes a stage's output for the same inputs raises its ``revision``: a finished run redoes that
    stage and every stage after it (revision 0 keeps the old hashes)."""
    recipe = tmp_path / "toy.yaml"
    recipe.write_text(yaml.safe_dump({"toy-count": {"input": str(lines)}, "toy-double": {}}))
    run_dir = tmp_path / "run"
    assert main(["run", str(recipe), "--output", str(run_dir)]) == 0
    capsys.readouterr()
    assert main(["run", str(recipe), "--output", str(run_dir), "--dry-run"]) == 0
    assert "plan                     toy-count=skip, toy-double=skip" in capsys.readouterr().out
    import dataclasses

    registry.register(dataclasses.replace(registry.stage("toy-count"), revision=1))  # the fixed stage
    assert main(["run", str(recipe), "--output", str(run_dir), "--dry-run"]) == 0
    assert "plan                     toy-count=redo, toy-double=redo" in capsys.readouterr().out


# --- the other pluggable kinds: engines, judges, confidence methods ------------------------------------------
def test_every_kind_row_loads_and_the_flags_read_their_choices_from_the_table():
    from selfalign.evals.truthfulqa_gen import TruthfulQAGenConfig
    from selfalign.stages.score import ScoreConfig
    from selfalign.config import ModelArgs

    for kind in (registry.ENGINES, registry.JUDGES, registry.CONFIDENCE, registry.VERIFIERS):
        for name in kind.names():
            assert callable(kind.load(name)), (kind.kind, name)
    score = {f.name: f for f in dataclasses.fields(ScoreConfig)}["method"]
    assert score.metadata["choices"]() == registry.CONFIDENCE.names()
    judge = {f.name: f for f in dataclasses.fields(TruthfulQAGenConfig)}["judge"]
    assert judge.metadata["choices"]() == registry.JUDGES.names()
    assert ModelArgs(engine="openai:http://127.0.0.1:9/v1").engine.startswith("openai:")
    with pytest.raises(SelfAlignError, match="--engine does not accept 'vllm:x'"):
        ModelArgs(engine="vllm:x")  # only openai takes an argument


def test_an_unknown_name_is_one_error_naming_the_choices():
    from selfalign.engines import make_engine
    from selfalign.evals.judges import make_judge

    with pytest.raises(SelfAlignError, match=r"unknown engine 'tpu'; available: hf, vllm, openai \(or openai:<base_url>\)"):
        make_engine("tpu")
    with pytest.raises(SelfAlignError, match="unknown judge 'gpt4'; available: offline-ref, offline, lm-ref"):
        make_judge("gpt4")
    with pytest.raises(SelfAlignError, match="unknown confidence method 'vibes'"):
        registry.CONFIDENCE.load("vibes")
