"""Several GPUs for inference (engines/placement.py, config.ParallelArgs): the flags and recipe keys reach the
engines; what this machine cannot run (a device map without a GPU, more GPUs than are visible) is one line, exit 2,
with torch.cuda mocked as absent or as a count."""
from __future__ import annotations

import json

import pytest
import torch

from selfalign import registry
from selfalign.cli import main
from selfalign.config import ParallelArgs
from selfalign.engines import placement
from selfalign.errors import SelfAlignError


def _gpus(monkeypatch, n: int) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: n)


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("argv", [["sample", "--input", "builtin"], ["score", "--input", "IN"],
                                  ["eval", "calibrate", "--data", "IN"], ["eval", "knowledge-qa"]])
def test_a_device_map_without_a_gpu_is_one_line(argv, tmp_path, capsys, monkeypatch):
    _gpus(monkeypatch, 0)
    (tmp_path / "in.jsonl").write_text(json.dumps({"id": "1", "question": "Q?", "response": "A"}) + "\n")
    argv = [str(tmp_path / "in.jsonl") if a == "IN" else a for a in argv]
    out = tmp_path / "out.jsonl"
    assert main([*argv, "--output", str(out), "--device-map", "auto"]) == 2
    err = _one_line(capsys)
    assert "--device-map auto spreads the model over GPUs, but no CUDA GPU is visible" in err
    assert list(tmp_path.iterdir()) == [tmp_path / "in.jsonl"]  # refused before anything was written


def test_more_gpus_than_are_visible_is_one_line(tmp_path, capsys, monkeypatch):
    _gpus(monkeypatch, 2)
    base = ["sample", "--input", "builtin", "--output", str(tmp_path / "s.jsonl"), "--engine", "vllm"]
    assert main([*base, "--tensor-parallel-size", "4"]) == 2
    assert "--tensor-parallel-size 4 needs 4 GPUs, but 2 are visible" in _one_line(capsys)
    assert main([*base, "--tensor-parallel-size", "2", "--data-parallel-size", "2"]) == 2
    assert "--data-parallel-size 2 x --tensor-parallel-size 2 needs 4 GPUs, but 2 are visible" in _one_line(capsys)
    assert main(["sample", "--input", "builtin", "--output", str(tmp_path / "s.jsonl"), "--data-parallel-size", "3",
                 "--device", "cuda"]) == 2
    assert "--data-parallel-size 3 needs 3 GPUs, but 2 are visible" in _one_line(capsys)
    _gpus(monkeypatch, 0)
    assert main([*base, "--tensor-parallel-size", "2"]) == 2
    assert "needs 2 GPUs, but 0 are visible (torch.cuda.is_available() is False)" in _one_line(capsys)
    assert not (tmp_path / "s.jsonl").exists()


def test_each_engine_takes_only_its_own_setting(monkeypatch):
    from selfalign.stages.score import ScoreConfig

    _gpus(monkeypatch, 8)
    ok = [dict(engine="vllm", tensor_parallel_size=4, data_parallel_size=2), dict(device_map="auto"),
          dict(device_map="balanced", data_parallel_size=4), dict(data_parallel_size=8)]
    for kw in ok:
        placed = {k: v for k, v in kw.items() if k != "engine"}
        assert ScoreConfig(**kw).engine_kwargs().items() >= placed.items()
    bad = [(dict(tensor_parallel_size=2), "vLLM's"), (dict(engine="vllm", device_map="auto"), "the hf engine's"),
           (dict(engine="openai", data_parallel_size=2), "places the model itself"),
           (dict(device_map="auto", device="cuda:1"), "leave --device auto"),
           (dict(device_map="auto", data_parallel_size=9), "needs 9 GPUs, but 8 are visible")]
    for kw, why in bad:
        with pytest.raises(SelfAlignError, match=why):
            ScoreConfig(**kw)
    assert "data_parallel_size" not in ScoreConfig().engine_kwargs()  # one model on one device: nothing added


def test_the_inference_stages_take_the_settings_and_the_trainers_do_not():
    with_them = {n for n, s in {**registry.commands(), **{f"eval {k}": v for k, v in registry.evals().items()}}.items()
                 if issubclass(s.config_class, ParallelArgs)}
    assert {"sample", "score", "sk-data", "mc-data", "calibrate", "eval truthfulqa-mc", "eval truthfulqa-gen",
            "eval knowledge-qa", "eval biogen", "eval wikifacts"} <= with_them
    assert not with_them & {"align", "sft", "sk-tune", "pairs"}


def test_each_copy_gets_its_own_gpus(monkeypatch):
    _gpus(monkeypatch, 4)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5,6,7")
    gpus = lambda *a: [c["env"]["CUDA_VISIBLE_DEVICES"] for c in placement.copy_envs(*a)]  # noqa: E731
    assert gpus("vllm", "auto", None, 2, 2) == ["3,5", "6,7"]
    assert gpus("hf", "auto", "auto", 1, 2) == ["3,5", "6,7"]
    assert gpus("hf", "auto", None, 1, 4) == ["3", "5", "6", "7"]
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert gpus("hf", "cuda", None, 1, 2) == ["0", "1"]
    _gpus(monkeypatch, 0)
    monkeypatch.setattr(placement.os, "cpu_count", lambda: 4)
    placement.check("hf", "cpu", data_parallel_size=4)  # CPU copies, one per core at most
    with pytest.raises(SelfAlignError, match="--data-parallel-size 5: that many CPU copies of the model, but this "
                                             "machine has 4 CPU cores"):
        placement.check("hf", "auto", data_parallel_size=5)
    cpu = placement.copy_envs("hf", "auto", None, 1, 2)
    assert [c["env"] for c in cpu] == [{}, {}] and all(c["threads"] >= 1 for c in cpu)


def test_recipe_keys_are_checked_at_plan_time_and_do_not_change_the_hashes(tmp_path, capsys, monkeypatch):
    from selfalign.run.pipeline import RunConfig, run_recipe

    recipe = tmp_path / "r.yaml"

    def plan(**top):
        recipe.write_text(json.dumps({"name": "t", "model": "some/model", **top, "sample": {"input": "builtin"},
                                      "score": {}, "eval": {"tasks": ["knowledge-qa"]}}))
        capsys.readouterr()
        return run_recipe(RunConfig(recipe=str(recipe), output=str(tmp_path / "run"), dry_run=True))

    _gpus(monkeypatch, 0)
    assert main(["run", str(recipe.parent / "nothing.yaml")]) == 2  # (a missing recipe, for the capsys reset)
    recipe.write_text(json.dumps({"model": "m", "device_map": "auto", "sample": {"input": "builtin"}}))
    capsys.readouterr()
    assert main(["run", str(recipe), "--dry-run", "--output", str(tmp_path / "run")]) == 2
    err = _one_line(capsys)
    assert err.startswith(f"selfalign run: error: {recipe}: sample: device_map auto spreads the model over GPUs")
    _gpus(monkeypatch, 8)
    hashes = lambda out: [ln.split()[1] for ln in out.splitlines() if ln.startswith("  ") and "  run" in ln]  # noqa
    plan()
    plain = hashes(capsys.readouterr().out)
    plan(device_map="auto", data_parallel_size=2)
    assert hashes(capsys.readouterr().out) == plain and len(plain) == 3  # placement is not part of the work


def test_a_device_map_reaches_from_pretrained(tiny_model_dir, tiny_engine, monkeypatch):
    """On this CPU machine the map puts every layer on the CPU: the answers equal the plain load's."""
    from transformers import AutoModelForCausalLM

    from selfalign.engines import make_engine

    seen = []
    real = AutoModelForCausalLM.from_pretrained.__func__

    def spy(cls, *a, **kw):
        seen.append(kw.get("device_map"))
        return real(cls, *a, **kw)

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", classmethod(spy))
    monkeypatch.setattr(placement, "gpu_count", lambda: 1)
    e = make_engine("hf", model=tiny_model_dir, batch_size=3, device_map="auto", dtype="float32")
    assert seen == ["auto"]
    prompts = ["Question: x\nThe proposed answer is:", "short", "B"]
    for got, want in zip(e.choice_probs(prompts, ["A", "B"]), tiny_engine.choice_probs(prompts, ["A", "B"])):
        assert got == pytest.approx(want, abs=1e-6)
