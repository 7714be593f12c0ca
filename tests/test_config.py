"""Configs validate themselves: the declarations on the fields hold for flags, recipes and library callers alike,
and seeds are separated by meaning (a bootstrap seed never redoes model work)."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from selfalign import registry
from selfalign.evals.calibrate import CalibrateConfig
from selfalign.cli import main
from selfalign.config import ConfigError, from_dict
from selfalign.errors import SelfAlignError
from selfalign.stages.pairs import PairsConfig
from selfalign.run.pipeline import RunConfig, plan, run_recipe
from selfalign.stages.sample import SampleConfig


def _all_configs():
    out = {name: st.config_class for name, st in registry.commands().items()}
    out.update({f"eval {t}": st.config_class for t, st in registry.evals().items()})
    return out


@pytest.mark.parametrize("name,cls", sorted(_all_configs().items()))
def test_every_default_passes_its_own_declaration(name, cls):
    cfg = cls()
    for f in dataclasses.fields(cls):
        md = f.metadata
        assert md.get("help"), f"{name}.{f.name} has no help"
        v = getattr(cfg, f.name)
        if v is not None and md.get("choices") is not None and not isinstance(v, list):
            choices = md["choices"]() if callable(md["choices"]) else md["choices"]
            assert v in choices, (name, f.name)


def test_the_same_check_for_code_flags_and_recipes(capsys):
    with pytest.raises(ConfigError, match=r"^--top-p must be in \(0, 1\], got 2.0$"):
        SampleConfig(top_p=2)
    assert main(["sample", "--top-p", "2", "--input", "x", "--output", "y"]) == 2
    assert capsys.readouterr().err == "selfalign sample: error: --top-p must be in (0, 1], got 2.0\n"
    with pytest.raises(SelfAlignError, match=r"^r.yaml: sample: top_p must be in \(0, 1\], got 2.0$"):
        from_dict(SampleConfig, {"top_p": 2}, where="r.yaml: sample")


@pytest.mark.parametrize("values,want", [
    ({"n": "four"}, "n must be an integer, got 'four' (a string)"),
    ({"n": 1.5}, "n must be an integer, got 1.5"),
    ({"n": True}, "n must be an integer, got True (a boolean)"),
    ({"model": 5}, "model must be a string, got 5"),
    ({"model": ["a"]}, "model must be a string, got ['a'] (a list)"),
    ({"trust_remote_code": "false"}, "trust_remote_code must be true or false (a YAML boolean, unquoted)"),
    ({"trust_remote_code": 0}, "trust_remote_code must be true or false"),
    ({"temperature": "1e-3"}, "write 5.0e-5"),
    ({"temperature": "hot"}, "temperature must be a number, got 'hot'"),
    ({"limit": 0}, "limit must be at least 1, got 0 (leave it out for all prompts)"),
    ({"device": "tpu9"}, "device does not accept 'tpu9'"),
    ({"input": None, "chat_template": "maybe"}, "chat_template must be one of auto, on, off, got 'maybe'"),
])
def test_recipe_values_are_type_checked(values, want):
    with pytest.raises(SelfAlignError) as e:
        from_dict(SampleConfig, values, where="r.yaml: sample")
    assert str(e.value).startswith("r.yaml: sample: ") and want in str(e.value)


def test_yaml_numbers_and_paths_are_accepted_as_their_fields_types(tmp_path):
    cfg = from_dict(SampleConfig, {"temperature": 1, "top_p": 1, "input": tmp_path / "p.jsonl"})
    assert cfg.temperature == 1.0 and isinstance(cfg.temperature, float) and cfg.input == str(tmp_path / "p.jsonl")
    assert SampleConfig(trust_remote_code=False).trust_remote_code is False


def _stage_cases():
    """(stage section, key, bad value) for one range / choice / type error of every stage of a recipe."""
    return [("sample", "top_k", -1), ("sample", "n", "four"), ("score", "method", "bogus"),
            ("score", "shots", 6), ("pairs", "strategy", "bogus"), ("pairs", "top_fraction", 0),
            ("sk-data", "heldout_fraction", 1.5), ("sk-data", "mode", "x"), ("sk-tune", "learning_rate", -1),
            ("sk-tune", "batch_by", "task"), ("align", "loss_type", "x"), ("align", "lora_dropout", 1),
            ("align", "trust_remote_code", "false")]


@pytest.mark.parametrize("stage,key,value", _stage_cases())
def test_a_bad_value_in_any_stage_fails_dry_run_with_file_stage_and_key(tmp_path, capsys, stage, key, value):
    sections = {"sk-data": {"sources": ["x.jsonl"]}, "sk-tune": {}, "sample": {"input": "builtin"},
                "score": {}, "pairs": {}, "align": {}}
    sections[stage][key] = value
    path = tmp_path / "bad.yaml"
    path.write_text("model: m\n" + "".join(f"{k}: {json.dumps(v)}\n" for k, v in sections.items()))
    assert main(["run", str(path), "--dry-run", "--output", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"selfalign run: error: {path}: {stage}: {key} must be ") and err.count("\n") == 1, err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("task,key,value", [("truthfulqa-mc", "limit", 0), ("truthfulqa-mc", "bootstrap_seed", -1),
                                            ("truthfulqa-gen", "judge", "gpt9"), ("biogen", "abstain", "x"),
                                            ("calibrate", "shots", 9)])
def test_a_bad_eval_setting_fails_dry_run(tmp_path, capsys, task, key, value):
    path = tmp_path / "bad.yaml"
    path.write_text(f"model: m\neval: {{tasks: [{task}], {task}: {{{key}: {json.dumps(value)}}}}}\n")
    assert main(["run", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert f"{path}: eval/base/{task}: {key} must be" in err and err.count("\n") == 1, err


def test_pairs_seed_is_gone_but_still_accepted(tmp_path, capsys):
    assert "seed" not in {f.name for f in dataclasses.fields(PairsConfig)}
    cfg = from_dict(PairsConfig, {"seed": 3, "strategy": "all"}, where="r.yaml: pairs")
    assert cfg.strategy == "all" and "r.yaml: pairs: seed is deprecated" in capsys.readouterr().err
    assert main(["pairs", "--seed", "3", "--input", str(tmp_path / "none.jsonl"), "--output", "o.jsonl"]) == 2
    err = capsys.readouterr().err
    assert "--seed is deprecated" in err and "none.jsonl: file not found" in err


def test_bootstrap_seeds_are_their_own_keys_and_keep_the_old_seed_flag():
    assert from_dict(CalibrateConfig, {"seed": 4}).bootstrap_seed == 4  # the old key still works
    r = {"model": "m", "seed": 7, "sample": {"input": "builtin"},
         "eval": {"tasks": ["truthfulqa-mc", "truthfulqa-gen"]}}
    steps = {s.name: s for s in plan(r, Path("/nonexistent"), "r.yaml")}
    assert steps["sample"].values["seed"] == 7  # the recipe seed: sampling and training
    assert "bootstrap_seed" not in steps["eval/base/truthfulqa-mc"].values  # never the bootstrap
    assert steps["eval/base/truthfulqa-gen"].values["seed"] == 7  # truthfulqa-gen samples (temperature > 0)


def _eval_recipe(tmp_path, model, **calibrate):
    mc = tmp_path / "mc.jsonl"
    mc.write_text("".join(json.dumps({"id": f"m{i}", "question": f"Question {i}?", "options": [
        {"text": "Paris", "label": 1}, {"text": "London", "label": 0}]}) + "\n" for i in range(5)))
    path = tmp_path / "recipe.yaml"
    path.write_text(f"name: t\nmodel: {model}\ndevice: cpu\nseed: 0\neval: "
                    + json.dumps({"tasks": ["calibrate"], "calibrate": {"data": str(mc), "n_boot": 50, **calibrate}})
                    + "\n")
    return path


def test_changing_only_the_bootstrap_seed_redoes_no_model_work(tiny_model_dir, tmp_data_root, tmp_path, monkeypatch):
    from selfalign.engines.hf import HFEngine

    run = tmp_path / "run"
    run_recipe(RunConfig(recipe=str(_eval_recipe(tmp_path, tiny_model_dir)), output=str(run)))
    items = run / "eval" / "base" / "calibrate.items.jsonl"
    before, first = items.read_bytes(), json.loads((run / "eval" / "base" / "calibrate.json").read_text())

    def no_model_work(*a, **k):
        raise AssertionError("a forward pass ran")

    for name in ("generate", "loglikelihood", "choice_probs"):
        monkeypatch.setattr(HFEngine, name, no_model_work)
    # the recipe seed is the sampling/training seed: an evaluation without sampling is not touched by it
    recipe = _eval_recipe(tmp_path, tiny_model_dir)
    recipe.write_text(recipe.read_text().replace("seed: 0", "seed: 5"))
    assert run_recipe(RunConfig(recipe=str(recipe), output=str(run), dry_run=True))["plan"] == \
        {"eval/base/calibrate": "skip"}
    recipe = _eval_recipe(tmp_path, tiny_model_dir, bootstrap_seed=1)
    assert run_recipe(RunConfig(recipe=str(recipe), output=str(run), dry_run=True))["plan"] == \
        {"eval/base/calibrate": "resume"}
    s = run_recipe(RunConfig(recipe=str(recipe), output=str(run)))
    assert s["stages"] == {"eval/base/calibrate": "resume"}
    assert items.read_bytes() == before  # every row kept, none recomputed
    second = json.loads((run / "eval" / "base" / "calibrate.json").read_text())
    assert second["bootstrap"]["seed"] == 1 and first["bootstrap"]["seed"] == 0
    assert second["metrics"]["auroc"]["value"] == first["metrics"]["auroc"]["value"]  # same rows, same point estimate
    assert run_recipe(RunConfig(recipe=str(recipe), output=str(run)))["stages"] == {"eval/base/calibrate": "skip"}
