"""What a pip install relies on: shipped recipes by name, the shipped TruthfulQA split, MC data from the data
root / the hub / a one-line error, recipe overrides on the command line, underscored flag spellings."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from selfalign import resources
from selfalign.cli import build_parser, main
from selfalign.errors import InputError, SelfAlignError
from selfalign.run.pipeline import plan
from selfalign.run.recipe import apply_overrides, load_recipe

SHIPPED = Path(__file__).resolve().parent.parent / "selfalign"


def test_shipped_recipes_are_found_by_name_and_by_their_checkout_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # an empty directory: no recipes/ here
    for spec in ("demo", "demo.yaml", "recipes/demo.yaml"):
        assert resources.find_recipe(spec) == SHIPPED / "recipes" / "demo.yaml"
    (tmp_path / "demo.yaml").write_text("name: mine\n")
    assert resources.find_recipe("demo.yaml") == Path("demo.yaml")  # a file of the user's wins
    with pytest.raises(InputError, match=r"nope.yaml: recipe not found .*shipped recipe: biogen-demo, demo, demo-ptrue, demo-skt"):
        resources.find_recipe("nope.yaml")
    with pytest.raises(InputError):
        resources.find_recipe("elsewhere/demo.yaml")  # another folder is a path, not a name
    assert {"demo", "demo-ptrue", "demo-skt", "biogen-demo", "paper-truthfulqa-llama2-7b"} <= set(resources.recipe_names())
    assert resources.shipped_file("accelerate/zero3") == SHIPPED / "configs" / "accelerate" / "zero3.yaml"


def test_repo_paths_still_work_in_a_checkout():
    repo = SHIPPED.parent
    assert (repo / "recipes" / "demo.yaml").read_text() == (SHIPPED / "recipes" / "demo.yaml").read_text()
    assert (repo / "configs" / "accelerate" / "zero3.yaml").is_file()


def test_the_accelerate_configs_load_and_say_what_they_do():
    """Every shipped accelerate config is one accelerate reads; the ZeRO-3 ones shard on the GPUs (zero3) or keep the
    optimizer states and the parameters in CPU memory (zero3_offload, for 70B full fine-tuning); cpu_2proc starts
    two CPU processes."""
    from accelerate.commands.config.config_args import load_config_from_file

    folder = SHIPPED / "configs" / "accelerate"
    got = {p.stem: load_config_from_file(str(p)) for p in sorted(folder.glob("*.yaml"))}
    assert set(got) == {"cpu_2proc", "ddp", "fsdp", "single_gpu", "zero3", "zero3_offload"}
    offload = lambda c: tuple(c.deepspeed_config[f"offload_{k}_device"] for k in ("optimizer", "param"))  # noqa
    assert offload(got["zero3"]) == ("none", "none") and offload(got["zero3_offload"]) == ("cpu", "cpu")
    assert (got["cpu_2proc"].num_processes, got["cpu_2proc"].use_cpu) == (2, True)
    assert "NOT full fine-tuning of 70B" in (folder / "zero3.yaml").read_text()


def test_the_shipped_split_file_equals_the_papers(tmp_path):
    shipped = json.loads((SHIPPED / "data" / "truthfulqa_splits.json").read_text())
    assert {k: len(v) for k, v in shipped.items()} == {"fewshot_demos": 5, "train": 41, "valid": 41, "test": 730}
    shared = SHIPPED.parent.parent / "shared" / "data" / "truthfulqa" / "splits.json"
    if shared.exists():
        assert json.loads(shared.read_text()) == shipped


def _mc(questions):
    return [{"question": q, "mc1_targets": {f"{q} yes": 1, f"{q} no": 0},
             "mc2_targets": {f"{q} yes": 1, f"{q} maybe": 1, f"{q} no": 0}} for q in questions]


def test_mc_split_without_a_splits_file_uses_the_shipped_one(tmp_path, monkeypatch):
    from selfalign.data.mc import load_truthfulqa_mc

    test_qs = json.loads((SHIPPED / "data" / "truthfulqa_splits.json").read_text())["test"]
    mc = tmp_path / "truthfulqa" / "mc_task.json"
    mc.parent.mkdir()
    mc.write_text(json.dumps(_mc(test_qs[::-1] + ["Not in any split?"])))
    monkeypatch.setenv("SELFALIGN_DATA", str(tmp_path))
    rows = load_truthfulqa_mc(None, "test")
    assert [r["question"] for r in rows] == test_qs and all(r["split"] == "test" for r in rows)


def test_mc_data_comes_from_the_hub_once_then_from_the_cache(tmp_path, monkeypatch):
    import datasets

    from selfalign.evals.truthfulqa_mc import load_questions

    test_qs = json.loads((SHIPPED / "data" / "truthfulqa_splits.json").read_text())["test"]
    calls = []

    def fake_load(name, config, split):
        calls.append((name, config, split))
        return [{"question": q, "mc1_targets": {"choices": [f"{q} yes", f"{q} no"], "labels": [1, 0]},
                 "mc2_targets": {"choices": [f"{q} yes", f"{q} no"], "labels": [1, 0]}} for q in test_qs]

    monkeypatch.setenv("SELFALIGN_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("SELFALIGN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    path, qs = load_questions(None, "test", limit=3)
    assert calls == [("truthfulqa/truthful_qa", "multiple_choice", "validation")]
    assert path == tmp_path / "cache" / "data" / "truthfulqa" / "mc_task.json"
    assert [q["question"] for q in qs] == test_qs[:3]
    assert qs[0]["mc1"] == [{"text": f"{test_qs[0]} yes", "label": 1}, {"text": f"{test_qs[0]} no", "label": 0}]
    load_questions(None, "test", limit=3)
    assert len(calls) == 1  # the cached copy is read the second time


def test_no_mc_data_offline_is_one_line_saying_what_to_place_where(tmp_path, monkeypatch, capsys):
    import datasets

    def offline(*a, **k):
        raise ConnectionError("Couldn't reach 'truthfulqa/truthful_qa' on the Hub (OfflineModeIsEnabled)\nmore")

    monkeypatch.setenv("SELFALIGN_DATA", str(tmp_path))
    monkeypatch.setenv("SELFALIGN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(datasets, "load_dataset", offline)
    code = main(["eval", "truthfulqa-mc", "--model", "x", "--output", str(tmp_path / "o.json")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "place mc_task.json" in err and "$SELFALIGN_DATA/truthfulqa/mc_task.json" in err and "--data" in err


def test_recipe_overrides(tmp_path):
    r = {"model": "a", "sample": {"n": 4}, "pairs": None, "eval": {"tasks": ["truthfulqa-mc"],
                                                                  "truthfulqa-mc": {"limit": 100}}}
    out = apply_overrides(r, ["model=/m", "sample.n=2", "align.learning_rate=1e-4", "pairs.strategy=all",
                              "eval.truthfulqa-mc.limit=3", "sk_tune.max_steps=5", "sample.stop=[a, b]"], "r.yaml")
    assert out["model"] == "/m" and out["sample"] == {"n": 2, "stop": ["a", "b"]} and out["pairs"] == {"strategy": "all"}
    assert out["align"] == {"learning_rate": 1e-4} and isinstance(out["align"]["learning_rate"], float)
    assert out["eval"]["truthfulqa-mc"]["limit"] == 3 and out["sk-tune"] == {"max_steps": 5}
    assert r["sample"] == {"n": 4}  # the recipe itself is untouched
    for bad in ("sample.n", "=3", "sample..n=2", "model.x=1"):
        with pytest.raises(SelfAlignError, match="override"):
            apply_overrides(r, [bad], "r.yaml")


def test_run_overrides_reach_the_plan_and_bad_keys_are_one_line(tmp_path, capsys):
    steps = {s.name: s for s in plan(load_recipe(str(SHIPPED / "recipes" / "demo.yaml"),
                                                 ["align.max_steps=3", "eval.knowledge-qa.limit=7"]), tmp_path, "d")}
    assert steps["align"].values["max_steps"] == 3 and steps["eval/base/knowledge-qa"].values["limit"] == 7
    code = main(["run", "demo", "align.max_stepz=3", "--dry-run", "--output", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and "unknown key 'max_stepz'" in err and len(err.strip().splitlines()) == 1


def test_every_flag_has_its_underscored_spelling():
    p = build_parser()
    a = p.parse_args(["align", "--learning_rate", "0.5", "--max_steps", "3", "--grad-accum", "2", "--no-lora"])
    assert (a.learning_rate, a.max_steps, a.grad_accum, a.lora) == (0.5, 3, 2, False)
    s = p.parse_args(["sample", "--max_new_tokens", "5", "--top_p", "0.5"])
    assert (s.max_new_tokens, s.top_p) == (5, 0.5)
    e = p.parse_args(["eval", "truthfulqa-mc", "--n_boot", "9"])
    assert e.n_boot == 9
