"""Full fine-tuning (`--no-lora`) from an adapter: the adapter is merged, every weight trains, and DPO's reference
is the model training starts from (TRL alone would reload the base without the adapter)."""
from __future__ import annotations

import json
import math

import pytest
import torch

from selfalign.cli import main


@pytest.fixture
def adapter_dir(tiny_model_dir, tmp_path):
    """A LoRA adapter with random (non-zero) weights on the tiny model: it changes the model's answers."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    peft = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    path = tmp_path / "adapter"
    peft.save_pretrained(path)
    return path


def test_no_lora_from_an_adapter_trains_against_the_adapted_model(tiny_model_dir, adapter_dir, tmp_path, capsys):
    from selfalign import models

    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"prompt": f"Question {i}?\nAnswer:", "chosen": " Paris.",
                                         "rejected": " The quick fox."}) + "\n" for i in range(4)))
    out = tmp_path / "full"
    assert main(["align", "--model", str(adapter_dir), "--no-lora", "--pairs", str(pairs), "--output", str(out),
                 "--max-steps", "2", "--batch-size", "4", "--learning-rate", "0.01", "--device", "cpu"]) == 0, \
        capsys.readouterr().err
    log = [json.loads(ln) for ln in (out / "train_log.jsonl").read_text().splitlines()]
    # step 1: the policy is its reference (the base with the adapter merged), so the loss is log 2, margins 0
    assert log[0]["loss"] == pytest.approx(math.log(2), abs=1e-4)
    assert log[0]["rewards/margins"] == pytest.approx(0, abs=1e-6) and log[1]["rewards/margins"] != 0
    s = json.loads((out / "train_summary.json").read_text())
    assert s["saved"] == "full model" and (out / "model.safetensors").exists()
    adapted, tok = models.load(str(adapter_dir), device="cpu")
    tuned, _ = models.load(str(out), device="cpu")
    ids = torch.tensor([tok.encode("Question 1?\nAnswer: Paris.")])
    with torch.no_grad():
        assert not torch.allclose(adapted(ids).logits, tuned(ids).logits)  # every weight moved, from the adapted


def test_sft_no_lora_from_an_adapter_trains(adapter_dir, tmp_path, capsys):
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps({"prompt": f"Q{i}?", "completion": " A B C"}) + "\n" for i in range(4)))
    out = tmp_path / "sft"
    assert main(["sft", "--model", str(adapter_dir), "--no-lora", "--data", str(rows), "--output", str(out),
                 "--max-steps", "2", "--batch-size", "4", "--learning-rate", "0.01", "--device", "cpu"]) == 0, \
        capsys.readouterr().err
    assert json.loads((out / "train_summary.json").read_text())["saved"] == "full model"
