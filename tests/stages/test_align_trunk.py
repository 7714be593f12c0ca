"""`align --top-layers K --share-trunk`: the frozen layers below the top K run once per batch for the policy and the
reference; losses, LoRA gradients and trained adapters equal TRL's plain DPOTrainer's (computed here, both ways)."""
from __future__ import annotations

import json

import pytest
import torch

from selfalign.errors import SelfAlignError
from selfalign.stages.align import AlignConfig, run_align

LAYERS, TOP = 4, 2


@pytest.fixture(scope="module")
def deep_model_dir(tmp_path_factory):
    """The conftest tiny Llama's tokenizer and shape, with 4 layers (a 2-layer trunk under the top 2)."""
    from conftest import build_tiny
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    src = build_tiny(tmp_path_factory.mktemp("tiny-src"))
    path = tmp_path_factory.mktemp("tiny-deep")
    cfg = LlamaConfig.from_pretrained(src)
    cfg.num_hidden_layers = LAYERS
    torch.manual_seed(1)
    LlamaForCausalLM(cfg).save_pretrained(path, safe_serialization=True)
    AutoTokenizer.from_pretrained(src).save_pretrained(path)
    return str(path)


@pytest.fixture
def pairs_file(tmp_path):
    answers = [("Paris is the capital.", "The quick fox."), ("Shakespeare wrote it.", "A B C D"),
               ("Four.", "True False Answer Question"), ("The lazy dog.", "The quick fox jumps.")]
    rows = [{"prompt": f"<|im_start|>user\nQuestion {i}: what is it?<|im_end|>\n<|im_start|>assistant\n",
             "chosen": answers[i % 4][0], "rejected": answers[i % 4][1]} for i in range(8)]
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _trainer(model_dir, pairs, tmp_path, share: bool, checkpointing: str = "off"):
    """A DPO trainer as align builds it (LoRA on the top layers), its adapter then set to the same random values
    in both ways (so that the policy differs from the reference and every LoRA weight gets a gradient)."""
    from datasets import Dataset

    from selfalign import models
    from selfalign.stages.align import dpo_args, load_pairs
    from selfalign.training import trunk

    cfg = AlignConfig(model=model_dir, pairs=str(pairs), output=str(tmp_path / "o"), batch_size=4, device="cpu",
                      top_layers=TOP, share_trunk=share, gradient_checkpointing="off" if checkpointing == "off" else "on",
                      trl={"gradient_checkpointing_kwargs": {"use_reentrant": True}} if checkpointing == "reentrant"
                      else {})
    args = dpo_args(cfg, tmp_path / ("s" if share else "p"), 2, "cpu")
    model, tok = models.load(model_dir, device="cpu")
    tok.padding_side = "left"
    peft = cfg.lora_config(layers_to_transform=trunk.top_layer_ids(model, TOP))
    trainer = trunk.dpo_trainer(TOP if share else None)(model=model, args=args, processing_class=tok,
                                                        train_dataset=Dataset.from_list(load_pairs(str(pairs))),
                                                        peft_config=peft)
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for name, p in sorted(trainer.model.named_parameters()):
            if p.requires_grad:
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return trainer


def _lora(model) -> dict:
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("checkpointing", ["off", "on", "reentrant"])
def test_shared_trunk_loss_and_gradients_equal_trl(deep_model_dir, pairs_file, tmp_path, checkpointing):
    from selfalign.training import trunk

    plain = _trainer(deep_model_dir, pairs_file, tmp_path, share=False, checkpointing=checkpointing)
    shared = _trainer(deep_model_dir, pairs_file, tmp_path, share=True, checkpointing=checkpointing)
    assert type(shared).__name__ == "TrunkDPOTrainer" and type(plain).__name__ == "DPOTrainer"
    names = sorted(_lora(plain.model))
    assert names == sorted(_lora(shared.model)) and names
    assert {int(n.split("layers.")[1].split(".")[0]) for n in names} == set(range(LAYERS - TOP, LAYERS))
    batch = shared._prepare_inputs(next(iter(shared.get_train_dataloader())))
    got = {}
    for name, tr in (("plain", plain), ("shared", shared)):
        calls = []  # the token positions the bottom layer (the trunk) runs on
        hook = trunk.decoder(tr.model).layers[0].register_forward_hook(
            lambda m, a, o, calls=calls: calls.append(a[0].shape[0] * a[0].shape[1]))
        tr.model.train()
        tr.model.zero_grad()
        loss = tr.compute_loss(tr.model, dict(batch))
        loss.backward()
        hook.remove()
        got[name] = (loss.detach(), {n: p.grad.detach().clone() for n, p in _lora(tr.model).items()}, calls,
                     {k: v[-1] for k, v in tr._metrics["train"].items()})
    (lp, gp, cp, mp), (ls, gs, cs, ms) = got["plain"], got["shared"]
    rows, width = batch["input_ids"].shape
    assert cp == [rows * width] * 2  # policy + reference, every row
    # once: the chosen rows whole, the rejected rows from where they part from their chosen row
    assert len(cs) == 2 and cs[0] == rows // 2 * width and cs[1] < cs[0]
    assert abs(float(lp) - float(ls)) <= 1e-5 and abs(float(lp) - 0.6931) > 1e-3  # policy != reference
    assert all(gp[n].abs().max() > 0 for n in names)  # every LoRA weight gets a gradient
    diff = max(float((gp[n] - gs[n]).abs().max()) for n in names)
    assert diff <= 1e-5, diff
    assert mp.keys() == ms.keys() and all(abs(mp[k] - ms[k]) <= 1e-5 for k in mp)  # rewards, logps, margins


def _adapter(out) -> dict:
    from safetensors.torch import load_file

    return load_file(str(out / "adapter_model.safetensors"))


def test_shared_trunk_trains_the_same_adapter(deep_model_dir, pairs_file, tmp_path):
    runs = {}
    for share in (False, True):
        out = tmp_path / f"share-{share}"
        s = run_align(AlignConfig(model=deep_model_dir, pairs=str(pairs_file), output=str(out), max_steps=3,
                                  batch_size=4, learning_rate=1e-2, device="cpu", top_layers=TOP, share_trunk=share))
        assert s["steps"] == 3
        log = [json.loads(ln) for ln in (out / "train_log.jsonl").read_text().splitlines()]
        runs[share] = (_adapter(out), log, json.loads((out / "train_summary.json").read_text())["config"])
    (wp, logp, cfgp), (ws, logs, cfgs) = runs[False], runs[True]
    assert wp.keys() == ws.keys()
    assert {int(k.split("layers.")[1].split(".")[0]) for k in wp} == set(range(LAYERS - TOP, LAYERS))
    assert max(float((wp[k] - ws[k]).abs().max()) for k in wp) <= 1e-5
    assert any(float(wp[k].abs().max()) > 0 for k in wp if "lora_B" in k)  # trained: B moved from zero
    assert [r["loss"] for r in logp] == pytest.approx([r["loss"] for r in logs], abs=1e-5)
    assert logp[-1]["rewards/margins"] != 0
    assert (cfgp["top_layers"], cfgp.get("share_trunk"), cfgs["share_trunk"]) == (TOP, None, True)


def test_trunk_options_checked(deep_model_dir, pairs_file, tmp_path):
    with pytest.raises(SelfAlignError, match="--share-trunk needs --top-layers"):
        AlignConfig(model=deep_model_dir, pairs=str(pairs_file), output="o", share_trunk=True)
    with pytest.raises(SelfAlignError, match="--no-lora"):
        AlignConfig(model=deep_model_dir, pairs=str(pairs_file), output="o", top_layers=2, lora=False)
    with pytest.raises(SelfAlignError, match="between 1 and 4"):
        run_align(AlignConfig(model=deep_model_dir, pairs=str(pairs_file), output=str(tmp_path / "x"), max_steps=1,
                              device="cpu", top_layers=5, share_trunk=True))


def test_old_finished_runs_keep_their_config(deep_model_dir, pairs_file):
    """A run finished before --top-layers existed is recognised: the new keys are left out at their defaults."""
    from selfalign.stages.align import NEWER_DEFAULTS
    from selfalign.training.lora import config_dict

    d = config_dict(AlignConfig(model=deep_model_dir, pairs=str(pairs_file), output="o"), NEWER_DEFAULTS)
    assert "top_layers" not in d and "share_trunk" not in d
