"""`selfalign sft`: supervised fine-tuning through TRL's SFTTrainer on a tiny model (the SFT-on-gold control); its
output is a model spec that `eval knowledge-qa` loads as it loads an aligned adapter; a killed run resumes; the gold
rows of an sk-data file are knowledge-QA prompts + the gold answer, never a held-out question's."""
from __future__ import annotations

import json

import pytest
import torch

from selfalign.cli import main
from selfalign.errors import SelfAlignError
from selfalign.stages.sft import SFTConfig, gold_rows, run_sft
from selfalign.store.paths import portable


def _read(path):
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]


@pytest.fixture
def rows_file(tmp_path):
    rows = [{"prompt": f"Question {i}?\nThe proposed answer is:", "completion": " A B C D True"} for i in range(4)]
    path = tmp_path / "sft.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def gen_root(tmp_path, monkeypatch):
    """A data root with a generative task 'facts': 120 statements of one qa_wikidata template."""
    ex = [{"input": f"The capital of land {i} is", "target": f"City{i}"} for i in range(120)]
    (tmp_path / "data" / "bigbench" / "facts").mkdir(parents=True)
    (tmp_path / "data" / "bigbench" / "facts" / "task.json").write_text(json.dumps({"examples": ex}))
    monkeypatch.setenv("SELFALIGN_DATA", str(tmp_path / "data"))
    return tmp_path / "data"


def test_sft_lowers_the_loss_and_its_output_loads_as_a_model(tiny_model_dir, rows_file, tmp_path):
    from selfalign import models

    out = tmp_path / "sft"
    cfg = dict(model=tiny_model_dir, data=str(rows_file), output=str(out), max_steps=8, batch_size=2,
               learning_rate=5e-2, device="cpu")
    s = run_sft(SFTConfig(**cfg))
    assert s["steps"] == 8 and s["saved"] == "adapter" and s["rows"] == 4
    log = _read(out / "train_log.jsonl")
    assert [r["step"] for r in log] == list(range(1, 9))
    assert log[-1]["loss"] < log[0]["loss"] - 0.2 and log[-1]["loss"] < min(r["loss"] for r in log[:3])
    assert not (out / "checkpoints").exists() and (out / "selfalign_base.json").exists()
    assert _read(out / "sft_rows.jsonl") == _read(rows_file)
    assert "supervised fine-tuning" in (out / "README.md").read_text()
    base, tok = models.load(tiny_model_dir, device="cpu")
    tuned, _ = models.load(str(out), device="cpu")
    prompt = tok.encode("Question 1?\nThe proposed answer is:")
    ids = torch.tensor([tok.encode("Question 1?\nThe proposed answer is: A B C D True")])
    assert ids[0, :len(prompt)].tolist() == prompt

    def completion_logp(model) -> float:  # log P(completion | prompt), summed over the completion's tokens
        with torch.no_grad():
            logp = model(ids).logits[0, :-1].log_softmax(-1)
        return float(sum(logp[t - 1, ids[0, t]] for t in range(len(prompt), ids.shape[1])))

    assert completion_logp(tuned) > completion_logp(base) + 1
    again = run_sft(SFTConfig(**cfg))
    assert again["resumed"] is True
    with pytest.raises(SelfAlignError, match="another config"):
        run_sft(SFTConfig(**{**cfg, "max_steps": 9}))


def test_gold_rows_are_knowledge_qa_prompts_and_the_output_evaluates(tiny_model_dir, gen_root, tmp_path, capsys):
    from selfalign.data import load_prompts

    sk = tmp_path / "sk.jsonl"
    assert main(["sk-data", "--sources", "bigbench:facts", "--mode", "options", "--split-by", "subject",
                 "--heldout-fraction", "0.2", "--output", str(sk)]) == 0
    sk_rows = _read(sk)
    rows = gold_rows(str(sk), "subject")
    train = {r["id"]: r for r in load_prompts("bigbench:facts", "train", split_by="subject")}
    gold = [r for r in sk_rows if r["label"] == 1]
    assert len(rows) == len(gold) == len({r["question"] for r in sk_rows}) > 10
    for g, r in zip(gold, rows):  # the knowledge-QA prompt of that question, then " <gold>"
        n = int(g["question"].split()[-2])
        assert r["question"] == f"The capital of land {n} is" and r["completion"] == f" City{n}"
        assert r["prompt"] == train[r["id"]]["prompt"] and r["prompt"].endswith("\n\n" + r["question"])
        assert len(r["prompt"].split("\n\n")) == 4  # 3 demonstrations + the statement
    out = tmp_path / "sft"
    assert main(["sft", "--model", tiny_model_dir, "--data", str(sk), "--from-sk", "--split-by", "subject",
                 "--max-steps", "2", "--batch-size", "2", "--device", "cpu", "--output", str(out)]) == 0
    assert _read(out / "sft_rows.jsonl") == rows
    ev = tmp_path / "ev.json"
    assert main(["eval", "knowledge-qa", "--model", str(out), "--data", "bigbench:facts", "--split-by", "subject",
                 "--limit", "2", "--max-new-tokens", "3", "--no-selfeval", "--n-boot", "10", "--device", "cpu",
                 "--output", str(ev)]) == 0, capsys.readouterr().err
    result = json.loads(ev.read_text())
    assert result["n_prompts"] == 2  # the base read from the folder, the adapter on it, as an aligned adapter
    info = result["meta"]["model_info"]  # shared files name machine paths portably (store.paths)
    assert info["adapters"] == [portable(str(out))] and info["path"] == portable(tiny_model_dir)


def test_sft_gold_rows_refuse_a_held_out_question(gen_root, tmp_path, capsys):
    from selfalign.data.knowledge_qa import questions

    held = next(q for q in questions("facts", "subject") if q["split"] == "heldout")
    train = next(q for q in questions("facts", "subject") if q["split"] == "train")
    sk = tmp_path / "sk.jsonl"
    sk.write_text("".join(json.dumps({"id": q["id"], "task": "facts", "source": "bigbench:facts",
                                      "question": q["question"], "proposal": q["targets"][0], "label": 1}) + "\n"
                          for q in (train, held)))
    assert main(["sft", "--data", str(sk), "--from-sk", "--split-by", "subject", "--output",
                 str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert f"{sk}:2:" in err and "held out" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("text, line, what", [
    ('{"prompt": "p", "completion": " a"}\n{"prompt": "p"}\n', 2, "completion"),
    ('{"prompt": "p", "completion": " a"}\n{"prompt": "p", "completion": 3}\n', 2, "completion"),
    ('{"prompt": "p", "completion": "  "}\n', 1, "empty completion"),
    ('{"prompt": "p", "completion": " a"}\nnot json\n', 2, "JSON"),
])
def test_bad_rows_are_one_line_exit_2(tmp_path, capsys, text, line, what):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(text)
    assert main(["sft", "--data", str(bad), "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:{line}:" in err and what in err and len(err.strip().splitlines()) == 1


def test_sft_kill_during_training_then_resume(tiny_model_dir, rows_file, tmp_path, cli):
    out = tmp_path / "s"
    cmd = cli.cmd("sft", "--model", tiny_model_dir, "--data", rows_file, "--output", out, "--max-steps", 30,
                  "--save-steps", 3, "--batch-size", 2, "--device", "cpu")
    cli.kill_when(cmd, lambda: (out / "checkpoints" / "checkpoint-6").exists())
    assert not (out / "train_summary.json").exists(), "the run should have been killed part-way"
    r = cli.run(cmd)
    assert r.returncode == 0, r.stderr[-2000:]
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["steps"] == 30 and summary["resumed_from_step"] >= 3
    assert [x["step"] for x in _read(out / "train_log.jsonl")] == list(range(1, 31))  # each step once
    text = r.stdout + r.stderr
    assert "\r" not in text and "{'loss'" not in text
    done = cli.run(cmd)  # finished: nothing is trained again
    assert done.returncode == 0 and json.loads((out / "train_summary.json").read_text()) == summary
