"""`selfalign align`: DPO through TRL on a tiny model; its output is a model spec; a killed run resumes."""
from __future__ import annotations

import json

import pytest
import torch

from selfalign.stages.align import AlignConfig, run_align
from selfalign.cli import main
from selfalign.errors import SelfAlignError


@pytest.fixture
def pairs_file(tmp_path):
    rows = [{"prompt": f"<|im_start|>user\nQuestion {i}?<|im_end|>\n<|im_start|>assistant\n",
             "chosen": "Paris is the capital.", "rejected": "The quick fox.", "chosen_score": 0.9,
             "rejected_score": 0.1} for i in range(8)]
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _log(out):
    return [json.loads(ln) for ln in (out / "train_log.jsonl").read_text().splitlines()]


def test_align_trains_an_adapter_that_loads_as_a_model(tiny_model_dir, pairs_file, tmp_path):
    from selfalign import models

    out = tmp_path / "aligned"
    s = run_align(AlignConfig(model=tiny_model_dir, pairs=str(pairs_file), output=str(out), max_steps=4,
                              batch_size=2, learning_rate=1e-2, device="cpu"))
    assert s["steps"] == 4 and s["saved"] == "adapter" and s["pairs"] == 8
    log = _log(out)
    assert [r["step"] for r in log] == [1, 2, 3, 4]
    assert all({"loss", "rewards/margins", "rewards/accuracies", "rewards/chosen"} <= set(r) for r in log)
    # step 1: policy == reference, so the DPO loss is log 2 and every reward is zero
    assert log[0]["loss"] == pytest.approx(0.693147, abs=1e-4) and log[0]["rewards/margins"] == pytest.approx(0, abs=1e-6)
    assert log[-1]["rewards/margins"] > 0  # the chosen answer became relatively more likely
    assert not (out / "checkpoints").exists()
    base, tok = models.load(tiny_model_dir, device="cpu")
    tuned, _ = models.load(str(out), device="cpu")
    ids = torch.tensor([tok.encode("Paris is the capital.")])
    with torch.no_grad():
        assert not torch.allclose(base(ids).logits, tuned(ids).logits)
    again = run_align(AlignConfig(model=tiny_model_dir, pairs=str(pairs_file), output=str(out), max_steps=4,
                                  batch_size=2, learning_rate=1e-2, device="cpu"))
    assert again["resumed"] is True
    with pytest.raises(SelfAlignError, match="another config"):
        run_align(AlignConfig(model=tiny_model_dir, pairs=str(pairs_file), output=str(out), max_steps=5,
                              batch_size=2, device="cpu"))


def test_align_merge_saves_a_full_model(tiny_model_dir, pairs_file, tmp_path):
    out = tmp_path / "merged"
    s = run_align(AlignConfig(model=tiny_model_dir, pairs=str(pairs_file), output=str(out), max_steps=1,
                              batch_size=2, merge=True, device="cpu"))
    assert s["saved"] == "merged model" and (out / "config.json").exists() and (out / "model.safetensors").exists()
    assert not (out / "adapter_config.json").exists()


def test_align_kill_during_training_then_resume(tiny_model_dir, pairs_file, tmp_path, cli):
    out = tmp_path / "a"
    cmd = cli.cmd("align", "--model", tiny_model_dir, "--pairs", pairs_file, "--output", out, "--max-steps", 40,
                  "--save-steps", 3, "--batch-size", 2, "--device", "cpu")
    cli.kill_when(cmd, lambda: (out / "checkpoints" / "checkpoint-6").exists())
    assert not (out / "train_summary.json").exists(), "the run should have been killed part-way"
    r = cli.run(cmd)
    assert r.returncode == 0, r.stderr[-2000:]
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["steps"] == 40 and summary["resumed_from_step"] >= 3  # 6 if checkpoint-6 was whole
    steps = [x["step"] for x in _log(out)]
    assert steps == list(range(1, 41))  # every step logged once: no step lost, none duplicated
    # the console: one progress line as the other stages print, no per-step dicts, no \r progress bars
    text = r.stdout + r.stderr
    assert "\r" not in text and "{'loss'" not in text
    assert [ln.split()[0] for ln in text.splitlines() if "rewards/margins" in ln] == ["final"]  # the summary only
    last = [ln for ln in text.splitlines() if ln.startswith("align (resumed at step ")][-1]
    assert f"{40 - summary['resumed_from_step']}/{40 - summary['resumed_from_step']} steps (100%)" in last


def test_align_bad_pairs_are_clear_errors(tiny_model_dir, tmp_path, capsys):
    bad = tmp_path / "p.jsonl"
    cases = {'{"prompt": "a", "chosen": "x"}\n': "p.jsonl:1: missing field 'rejected'",
             '{"prompt": "a", "chosen": "x", "rejected": "x"}\n': "p.jsonl:1: chosen and rejected are identical",
             '{"prompt": "a", "chosen": 3, "rejected": "x"}\n': "p.jsonl:1: chosen must be a string"}
    for text, want in cases.items():
        bad.write_text(text)
        code = main(["align", "--model", tiny_model_dir, "--pairs", str(bad), "--output", str(tmp_path / "o")])
        err = capsys.readouterr().err
        assert code == 2 and want in err and "Traceback" not in err, err


def test_glued_answers_are_counted(tiny_model_dir):
    """A pair whose answer is glued to its prompt ('isParis') breaks the prompt's tokens as a prefix: counted, so
    align warns; the same answers with their space ('is Paris') are not."""
    from transformers import AutoTokenizer

    from selfalign.stages.align import _glued

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    p = "The capital of France is"
    ids = tok(p, add_special_tokens=False)["input_ids"]
    glued = tok(p + "Paris", add_special_tokens=False)["input_ids"]
    expect = int(glued[:len(ids)] != ids)  # what the tokenizer itself says about this one string
    assert _glued([{"prompt": p, "chosen": "Paris", "rejected": "Lyon"}], tok) >= expect
    assert _glued([{"prompt": p, "chosen": " Paris", "rejected": " Lyon"}], tok) == 0
