"""`align`'s open training knobs (TRL fields through `--trl.KEY` / a recipe's `trl:`), tracking and hub push
options, and the portable output folder (base spec, tokenizer, model card)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from selfalign.training import trl_args
from selfalign.stages.align import AlignConfig, dpo_args
from selfalign.cli import main
from selfalign.errors import SelfAlignError


@pytest.fixture
def pairs_file(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps({"prompt": f"Question {i}?\nAnswer:", "chosen": " Paris.",
                                        "rejected": " The quick fox."}) + "\n" for i in range(4)))
    return path


def test_trl_argv_spellings_are_typed_and_checked():
    from trl import DPOConfig

    got = trl_args.parse_trl_argv(["--trl.lr_scheduler_type", "cosine", "--weight_decay=0.01",
                                   "--trl.precompute_ref_log_probs", "--trl.logging-steps", "2",
                                   "--trl.lr_scheduler_kwargs", '{"num_cycles": 2}', "--trl.hub_model_id", "none"],
                                  DPOConfig)
    assert got == {"lr_scheduler_type": "cosine", "weight_decay": 0.01, "precompute_ref_log_probs": True,
                   "logging_steps": 2.0, "lr_scheduler_kwargs": {"num_cycles": 2}, "hub_model_id": None}
    for argv, want in ((["--trl.no_such_field", "1"], "'no_such_field' is not a field of TRL's DPOConfig"),
                       (["--bogus", "3"], "'bogus' is not a field"),
                       (["--trl.learning_rate", "1"], "set by --learning-rate"),
                       (["--trl.hub_token", "x"], "HF_TOKEN"),
                       (["--trl.weight_decay", "lots"], "--trl.weight_decay: 'lots' is not a valid"),
                       (["--trl.max_grad_norm"], "needs a value"), (["stray"], "unrecognized argument")):
        with pytest.raises(SelfAlignError, match=want):
            trl_args.parse_trl_argv(argv, DPOConfig)


def test_dpo_args_take_the_trl_section_and_reporting(tmp_path):
    cfg = AlignConfig(pairs="p", output=str(tmp_path), trl={"lr_scheduler_type": "cosine", "weight_decay": 0.05,
                                                            "max_grad_norm": "0.5"})
    args = dpo_args(cfg, tmp_path, 3, "cpu")
    assert args.lr_scheduler_type == "cosine" and args.weight_decay == 0.05 and args.max_grad_norm == 0.5
    assert args.report_to in ([], "none", ["none"]) and args.push_to_hub is False and args.max_steps == 3
    with pytest.raises(SelfAlignError, match="'warmup_ratios' is not a field of TRL's DPOConfig"):
        AlignConfig(pairs="p", output="o", trl={"warmup_ratios": 0.1})  # a recipe fails when it is planned
    with pytest.raises(SelfAlignError, match="'seed' is set by --seed"):
        AlignConfig(pairs="p", output="o", trl={"seed": 3})
    import importlib.util

    for tool in ("tensorboard", "wandb"):
        if importlib.util.find_spec(tool) is None:
            with pytest.raises(SelfAlignError, match=f"--report-to {tool}: .*pip install {tool}"):
                dpo_args(AlignConfig(pairs="p", output="o", report_to=tool), tmp_path, 3, "cpu")
        else:
            assert dpo_args(AlignConfig(pairs="p", output="o", report_to=tool), tmp_path, 3, "cpu").report_to == [tool]


def test_cli_trl_fields_reach_the_trainer_and_are_recorded(tiny_model_dir, pairs_file, tmp_path, capsys):
    out = tmp_path / "a"
    code = main(["align", "--model", tiny_model_dir, "--pairs", str(pairs_file), "--output", str(out),
                 "--max_steps", "4", "--batch_size", "2", "--learning_rate", "0.01", "--device", "cpu",
                 "--trl.logging_steps", "2", "--lr_scheduler_type", "constant"])
    err = capsys.readouterr().err
    assert code == 0, err
    log = [json.loads(ln) for ln in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [2, 4]  # logging every 2 steps: the TRL field took effect
    assert log[0]["learning_rate"] == log[1]["learning_rate"] == pytest.approx(0.01)  # constant schedule
    s = json.loads((out / "train_summary.json").read_text())
    assert s["config"]["trl"] == {"logging_steps": 2.0, "lr_scheduler_type": "constant"}
    assert s["config"]["learning_rate"] == 0.01 and "hub" not in s  # never pushed unless asked
    code = main(["align", "--model", tiny_model_dir, "--pairs", str(pairs_file), "--output", str(tmp_path / "b"),
                 "--trl.not_a_field", "1"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "not_a_field" in err
    with pytest.raises(SystemExit) as e:  # other commands keep argparse's own message
        main(["pairs", "--trl.logging_steps", "2"])
    assert e.value.code == 2


def test_adapter_is_portable_with_tokenizer_and_card(tiny_model_dir, pairs_file, tmp_path, monkeypatch):
    import shutil

    from selfalign import models

    # the weights come from a cache folder (as an alias's GGUF does), the user named the model by a spec
    cache = tmp_path / "cache" / "models" / "Tiny-abc123"
    shutil.copytree(tiny_model_dir, cache)
    real = models.resolve
    monkeypatch.setattr(models, "resolve", lambda spec, adapter=None: real(str(cache) if spec == "org/tiny-model"
                                                                            else spec, adapter))
    out = tmp_path / "aligned"
    from selfalign.stages.align import run_align

    run_align(AlignConfig(model="org/tiny-model", pairs=str(pairs_file), output=str(out), max_steps=1,
                          batch_size=2, device="cpu", trl={"weight_decay": 0.01}))
    acfg = json.loads((out / "adapter_config.json").read_text())
    assert acfg["base_model_name_or_path"] == "org/tiny-model"
    assert json.loads((out / "selfalign_base.json").read_text()) == {"base_model": "org/tiny-model",
                                                                     "hub_id": "org/tiny-model"}
    assert "cache" not in (out / "adapter_config.json").read_text()
    assert (out / "tokenizer.json").exists() or (out / "tokenizer_config.json").exists()
    card = (out / "README.md").read_text()
    assert card.startswith("---\nbase_model: org/tiny-model\nlibrary_name: peft")
    for want in ("DPO (TRL `DPOTrainer`)", "| beta | 0.1 |", "| lora_r | 8 |", "| trl.weight_decay | 0.01 |",
                 "4 preference pairs", "## Evaluation"):
        assert want in card, want
    tuned, tok = models.load(str(out), device="cpu")  # the spec resolves through the same lookup
    assert tok("Paris")["input_ids"]


def test_card_results_and_local_bases(tmp_path):
    from selfalign.training.adapters import ModelCard, add_results, base_record, render_card

    assert base_record("org/m", tmp_path / "out") == {"base_model": "org/m", "hub_id": "org/m"}
    (tmp_path / "m").mkdir()  # a local base: relative to the adapter folder
    assert base_record(str(tmp_path / "m" / ".." / "m"), tmp_path / "out") == {"base_model": "../m", "relative": True}
    text = render_card({"base_model": "../m", "relative": True}, "adapter",
                       ModelCard(method="DPO", hyperparameters={"beta": 0.1}))
    assert "base_model:" not in text and "- **Base model**: `../m`" in text and "Not evaluated" in text
    (tmp_path / "README.md").write_text(text)
    add_results(tmp_path, [{"task": "truthfulqa-mc", "metric": "mc2", "value": 0.45, "ci_low": 0.41,
                            "ci_high": 0.49, "n": 730}])
    new = (tmp_path / "README.md").read_text()
    assert "| truthfulqa-mc | mc2 | 0.450 | [0.410, 0.490] | 730 |" in new and "Not evaluated" not in new
    assert "| beta | 0.1 |" in new


def test_push_to_hub_uploads_the_finished_folder_only_when_asked(tmp_path, monkeypatch):
    import huggingface_hub

    from selfalign.stages.align import push

    calls = []

    class FakeApi:
        def __init__(self, *a, **k):
            calls.append(("init", a, k))

        def create_repo(self, repo, private=False, exist_ok=False):
            calls.append(("create", repo, private))

        def upload_folder(self, folder_path, repo_id, ignore_patterns, commit_message):
            calls.append(("upload", folder_path, repo_id, ignore_patterns))

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    assert push(tmp_path / "my-adapter", {"hub_model_id": "me/tqa", "hub_private_repo": True}) == "me/tqa"
    assert calls[0] == ("init", (), {})  # no token passed: HF_TOKEN / the login
    assert calls[1] == ("create", "me/tqa", True)
    # neither checkpoints nor the trackers' logs (their recorded TrainingArguments name this machine's folders)
    assert calls[2][1:] == (str(tmp_path / "my-adapter"), "me/tqa", ["checkpoints/*", "logs/*"])
    assert push(tmp_path / "my-adapter", {}) == "my-adapter"
    assert AlignConfig().push_to_hub is False and AlignConfig().report_to == "none"


def test_checkpointing_is_off_on_cpu_without_a_deprecation_warning(tmp_path):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # transformers 5 warns on the old field name
        args = dpo_args(AlignConfig(pairs="p", output=str(tmp_path)), tmp_path, 3, "cpu")
    assert args.gradient_checkpointing is False and getattr(args, "activation_checkpointing", False) is False
    on = dpo_args(AlignConfig(pairs="p", output=str(tmp_path), gradient_checkpointing="on"), tmp_path, 3, "cpu")
    assert on.gradient_checkpointing is True
    with pytest.raises(SelfAlignError, match="set by --gradient-checkpointing"):
        AlignConfig(pairs="p", output="o", trl={"activation_checkpointing": True})
