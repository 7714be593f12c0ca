"""`align --loss-type` takes several of TRL's DPO losses, summed with `--loss-weights`; the names are TRL's."""
from __future__ import annotations

import json
import math
import re

import pytest

from selfalign.cli import main
from selfalign.config import from_dict
from selfalign.errors import SelfAlignError
from selfalign.stages.align import LOSS_TYPES, AlignConfig, record


@pytest.fixture
def pairs_file(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps({"prompt": f"Question {i}?\nAnswer:", "chosen": " Paris is the capital.",
                                        "rejected": " The quick fox."}) + "\n" for i in range(4)))
    return path


def test_loss_type_names_are_the_installed_trls():
    import dataclasses

    from trl import DPOConfig

    text = next(f for f in dataclasses.fields(DPOConfig) if f.name == "loss_type").metadata["help"]
    names = re.findall(r"`'(\w+)'`", text.split("If multiple")[0])
    assert names and set(names) == set(LOSS_TYPES)


def test_several_losses_are_summed_with_their_weights(tiny_model_dir, pairs_file, tmp_path, capsys):
    def first_loss(name, *flags):
        out = tmp_path / name
        assert main(["align", "--model", tiny_model_dir, "--pairs", str(pairs_file), "--output", str(out),
                     "--max-steps", "1", "--batch-size", "4", "--device", "cpu", *flags]) == 0, capsys.readouterr()
        return json.loads((out / "train_log.jsonl").read_text().splitlines()[0])["loss"], out

    dpo, _ = first_loss("dpo", "--loss-type", "sigmoid")
    sft, _ = first_loss("sft", "--loss-type", "sft")
    both, out = first_loss("both", "--loss-type", "sigmoid", "sft", "--loss-weights", "1", "0.5")
    assert dpo == pytest.approx(math.log(2), abs=1e-4)  # step 1: the policy is the reference
    assert sft > 1 and both == pytest.approx(dpo + 0.5 * sft, rel=1e-4)
    s = json.loads((out / "train_summary.json").read_text())
    assert s["config"]["loss_type"] == ["sigmoid", "sft"] and s["config"]["loss_weights"] == [1.0, 0.5]
    assert "| loss_type | sigmoid, sft |" in (out / "README.md").read_text()


def test_loss_type_checks_and_the_one_loss_record():
    assert from_dict(AlignConfig, {"loss_type": "ipo"}).loss_type == ["ipo"]  # a recipe's single value, as before
    assert record(AlignConfig())["loss_type"] == "sigmoid" and "loss_weights" not in record(AlignConfig())
    for values, want in (({"loss_type": ["sigmoid", "bogus"]}, "loss_type must be one of sigmoid, hinge"),
                         ({"loss_type": ["sigmoid", "sft"], "loss_weights": [1.0]}, "1 weights for 2 loss types"),
                         ({"loss_type": ["sft", "sft"]}, "name each loss once"),
                         ({"loss_weights": [-1.0]}, "loss_weights must be at least 0")):
        with pytest.raises(SelfAlignError, match=want):
            from_dict(AlignConfig, values, where="r.yaml: align")
