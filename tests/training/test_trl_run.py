"""What a TRL user expects of `align` and `sft` (issue 33, item 4): the trackers' logs kept under OUTPUT/logs, the
`--trl.KEY` pass-through in --help, `model_init_kwargs` refused for the flags that load the model, the progress
line's loss the current step's, and held-out rows evaluated by TRL into the step log."""
from __future__ import annotations

import importlib.util
import json
import math
import os
import re

import pytest

from selfalign.cli import main
from selfalign.errors import SelfAlignError
from selfalign.stages.align import AlignConfig
from selfalign.stages.sft import SFTConfig

LN2 = math.log(2)


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def pairs_file(tmp_path):
    return _write(tmp_path / "pairs.jsonl", [{"prompt": f"Question {i}?\nAnswer:", "chosen": " Paris is the capital.",
                                              "rejected": " The quick fox."} for i in range(6)])


def _log(out):
    return [json.loads(ln) for ln in (out / "train_log.jsonl").read_text().splitlines()]


def _align(model, pairs, out, *flags):
    return main(["align", "--model", model, "--pairs", str(pairs), "--output", str(out), "--batch-size", "2",
                 "--learning-rate", "0.01", "--device", "cpu", *map(str, flags)])


@pytest.mark.skipif(importlib.util.find_spec("tensorboard") is None,
                    reason="tensorboard is not installed (pip install 'selfalign[tensorboard]')")
def test_tensorboard_events_survive_the_run_and_the_progress_line_has_the_last_steps_loss(
        tiny_model_dir, pairs_file, tmp_path, capsys):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "a"
    assert _align(tiny_model_dir, pairs_file, out, "--max-steps", 3, "--report-to", "tensorboard") == 0
    err = capsys.readouterr().err
    assert not (out / "checkpoints").exists()  # deleted when the run finished; the logs are not inside it
    events = list((out / "logs" / "tensorboard").glob("events.out.tfevents.*"))
    assert len(events) == 1 and "TENSORBOARD_LOGGING_DIR" not in os.environ  # the variable is set only inside
    acc = EventAccumulator(str(events[0]))
    acc.Reload()
    log = _log(out)
    tb = {e.step: e.value for e in acc.Scalars("train/loss")}
    assert sorted(tb) == [1, 2, 3] and all(tb[r["step"]] == pytest.approx(r["loss"], rel=1e-6) for r in log)
    # the progress line that counts to step 3 shows step 3's loss (it showed the step before's)
    line = [ln for ln in err.splitlines() if ln.startswith("align: 3/3 steps")][-1]
    assert f"loss {log[-1]['loss']:.4f}" in line and log[-1]["loss"] != log[-2]["loss"]


def test_help_explains_the_trl_pass_through(capsys):
    for command, cls in (("align", "DPOConfig"), ("sft", "SFTConfig")):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "--trl.KEY VALUE" in text and f"TRL's {cls}" in text and "--trl.lr_scheduler_type cosine" in text
        assert "--attn-implementation" in text and "--load-in-4bit" in text


def test_model_init_kwargs_is_refused_for_the_loading_flags(tiny_model_dir, pairs_file, tmp_path, capsys):
    code = _align(tiny_model_dir, pairs_file, tmp_path / "a", "--trl.model_init_kwargs",
                  '{"attn_implementation": "eager"}')
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--attn-implementation" in err
    for cls in (AlignConfig, SFTConfig):  # a recipe's trl: section fails when the plan is made
        with pytest.raises(SelfAlignError, match="'model_init_kwargs' is set by --attn-implementation"):
            cls(trl={"model_init_kwargs": {"dtype": "bfloat16"}})


def test_attention_implementation_reaches_the_model_and_is_checked(tiny_model_dir, tmp_path):
    from selfalign.stages.align import dpo_args
    from selfalign.training import loading, trl_run

    for kind in ("eager", "sdpa"):
        cfg = AlignConfig(model=tiny_model_dir, pairs="p", output=str(tmp_path), device="cpu",
                          attn_implementation=kind)
        model, _ = trl_run.load_model(cfg, dpo_args(cfg, tmp_path, 1, "cpu"))
        assert model.config._attn_implementation == kind
    with pytest.raises(SelfAlignError, match="--attn-implementation must be one of eager, sdpa, flash_attention_2"):
        AlignConfig(attn_implementation="flash")
    with pytest.raises(SelfAlignError, match="flash_attention_2 needs a CUDA GPU; this run is on cpu"):
        loading.model_kwargs(SFTConfig(attn_implementation="flash_attention_2"), "cpu")


def test_load_in_4bit_is_one_clear_line_where_it_cannot_run(monkeypatch, tiny_model_dir, pairs_file, tmp_path,
                                                            capsys):
    from selfalign.training import loading

    code = _align(tiny_model_dir, pairs_file, tmp_path / "a", "--load-in-4bit")
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--load-in-4bit needs a CUDA GPU" in err
    assert not (tmp_path / "a" / "checkpoints").exists()
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "bitsandbytes" else real(n, *a))
    with pytest.raises(SelfAlignError, match=r"bitsandbytes is not installed \(pip install 'selfalign\[qlora\]'\)"):
        loading.model_kwargs(AlignConfig(load_in_4bit=True), "cuda:0")
    with pytest.raises(SelfAlignError, match="4-bit weights cannot be fully fine-tuned"):
        SFTConfig(load_in_4bit=True, lora=False)
    with pytest.raises(SelfAlignError, match="--merge with --load-in-4bit"):
        AlignConfig(load_in_4bit=True, merge=True)


def test_held_out_pairs_are_evaluated_into_the_step_log(tiny_model_dir, pairs_file, tmp_path, capsys):
    held = _write(tmp_path / "held.jsonl", [{"prompt": f"Other {i}?\nAnswer:", "chosen": " Rome.",
                                             "rejected": " A dog."} for i in range(3)])
    out = tmp_path / "a"
    assert _align(tiny_model_dir, pairs_file, out, "--max-steps", 3, "--eval-pairs", held, "--eval-steps", 2,
                  "--trl.eval_on_start") == 0
    capsys.readouterr()
    log = _log(out)
    evals = [r for r in log if "eval_loss" in r]
    assert [r["step"] for r in evals] == [0, 2, 3]  # at the start (TRL's eval_on_start), every 2 steps, the end
    assert evals[0]["eval_loss"] == pytest.approx(LN2, abs=1e-4)  # before training the policy is the reference
    assert evals[0]["eval_rewards/margins"] == pytest.approx(0, abs=1e-6)
    assert [r["step"] for r in log if "loss" in r] == [1, 2, 3]
    s = json.loads((out / "train_summary.json").read_text())
    assert s["eval_pairs"] == 3 and s["eval"] == evals[-1] and s["final"]["step"] == 3 and "loss" in s["final"]
    assert s["config"]["eval_pairs"] == str(held) and "held-out loss" in (out / "README.md").read_text()
    code = _align(tiny_model_dir, pairs_file, tmp_path / "b", "--trl.eval_strategy", "steps")
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "give --eval-pairs FILE or --eval-fraction" in err


def test_sft_holds_out_a_fraction_of_its_prompts(tiny_model_dir, tmp_path, capsys):
    from selfalign.training.heldout import held

    rows = [{"prompt": f"Question {i}?\nThe answer is:", "completion": " A B C"} for i in range(10)]
    data = _write(tmp_path / "sft.jsonl", rows)
    out = tmp_path / "s"
    assert main(["sft", "--model", tiny_model_dir, "--data", str(data), "--output", str(out), "--max-steps", "2",
                 "--batch-size", "4", "--device", "cpu", "--eval-fraction", "0.3", "--seed", "1"]) == 0
    want = sum(held(r["prompt"], 0.3, 1) for r in rows)
    s = json.loads((out / "train_summary.json").read_text())
    assert 0 < want < 10 and s["eval_rows"] == want and s["rows"] == 10 - want
    assert [r["step"] for r in _log(out) if "eval_loss" in r] == [2] and "eval_mean_token_accuracy" in s["eval"]
    capsys.readouterr()
    assert main(["sft", "--model", tiny_model_dir, "--data", str(data), "--output", str(tmp_path / "t"),
                 "--eval-fraction", "0.3", "--eval-data", str(data)]) == 2
    assert "give --eval-data FILE or --eval-fraction, not both" in capsys.readouterr().err
    with pytest.raises(SelfAlignError, match="--eval-steps: there are no held-out rows"):
        AlignConfig(eval_steps=5)  # a recipe: at --dry-run
    with pytest.raises(SelfAlignError, match="--eval-fraction must be in"):
        SFTConfig(eval_fraction=1.0)


def test_held_out_split_keeps_prompts_whole_and_grows_with_the_fraction():
    from selfalign.training.heldout import split

    rows = [{"prompt": f"p{i % 40}", "chosen": str(i)} for i in range(200)]  # five rows per prompt
    train, out = split(rows, 0.25, 0)
    assert {r["prompt"] for r in train}.isdisjoint({r["prompt"] for r in out}) and len(train) + len(out) == 200
    assert 0.1 < len(out) / 200 < 0.4
    assert split(list(reversed(rows)), 0.25, 0)[1] == list(reversed(out))  # the rows' order does not matter
    assert {r["prompt"] for r in out} <= {r["prompt"] for r in split(rows, 0.5, 0)[1]}
    assert split(rows, 0.25, 1)[1] != out


def test_progress_counts_a_logged_step_with_its_own_loss():
    from transformers import TrainerControl, TrainerState, TrainingArguments

    from selfalign.store.progress import trainer_progress

    cb = trainer_progress("t")
    state, control = TrainerState(max_steps=2), TrainerControl()
    args = TrainingArguments(output_dir="unused", report_to=[])
    cb.on_train_begin(args, state, control)
    for step, loss in ((1, 0.7), (2, 0.5)):  # the Trainer's order: on_step_end, then (a logging step) on_log
        state.global_step = step
        control.should_log = True
        cb.on_step_end(args, state, control)
        assert cb.bar.n == step - 1  # not counted before its loss is known
        cb.on_log(args, state, control, logs={"loss": loss})
        assert cb.bar.n == step and re.search(rf"loss {loss:.4f}$", cb.bar.postfix)
