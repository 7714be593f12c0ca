"""A tiny DPO run on two CPU processes (gloo) under `accelerate launch` with the shipped cpu_2proc.yaml: two
processes start, and both ranks end with the same weights."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ASSET = Path(__file__).resolve().parents[1] / "assets" / "dist_align.py"


@pytest.mark.skipif(shutil.which("accelerate", path=os.path.dirname(sys.executable)) is None,
                    reason="accelerate CLI not installed")
def test_two_process_dpo_ranks_agree(tiny_model_dir, tmp_path):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"prompt": f"Question {i}?\nAnswer:", "chosen": " Paris.",
                                         "rejected": " The quick fox."}) + "\n" for i in range(8)))
    out = tmp_path / "out"
    out.mkdir()
    from selfalign.resources import shipped_file

    launcher = os.path.join(os.path.dirname(sys.executable), "accelerate")
    cmd = [launcher, "launch", "--config_file", str(shipped_file("accelerate/cpu_2proc")), str(ASSET), "--model",
           tiny_model_dir, "--pairs", str(pairs), "--output", str(out), "--max-steps", "3", "--batch-size", "2",
           "--learning-rate", "0.01"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    ranks = [json.loads((out / f"rank{i}.json").read_text()) for i in (0, 1)]
    assert [x["world"] for x in ranks] == [2, 2]
    assert ranks[0]["n"] == ranks[1]["n"] > 0
    assert ranks[0]["sum"] == pytest.approx(ranks[1]["sum"], abs=1e-9)
    assert ranks[0]["abs"] == pytest.approx(ranks[1]["abs"], abs=1e-9)
    # the model was loaded once per rank, after the process group existed (TRL's state first, as ZeRO-3's sharded
    # loading needs), onto that rank's own device, as a whole copy (DDP: every rank holds all the weights)
    for i, x in enumerate(ranks):
        assert len(x["loads"]) == 1, x["loads"]
        load = x["loads"][0]
        assert load["process_group"] is True and load["world"] == 2
        assert load["device"] == "cpu" and load["requested"].split(":")[0] == "cpu"  # the rank's device (gloo: cpu)
    assert ranks[0]["loads"][0]["pid"] != ranks[1]["loads"][0]["pid"]
    assert ranks[0]["loads"][0]["params"] == ranks[1]["loads"][0]["params"] > 0
    summary = json.loads((out / "train_summary.json").read_text())  # written once, by rank 0
    assert summary["steps"] == 3 and (out / "adapter_model.safetensors").exists()


@pytest.mark.skipif(shutil.which("accelerate", path=os.path.dirname(sys.executable)) is None,
                    reason="accelerate CLI not installed")
def test_two_process_sk_tune_ranks_agree(tiny_model_dir, tmp_path):
    rows = [{"prompt": f"Question: Q{i}?\nProposed Answer: A{i}\nIs the proposed answer:\n A. True\n B. False\n"
                       "The proposed answer is:", "chosen": "AB"[i % 2], "rejected": "BA"[i % 2]} for i in range(12)]
    data = tmp_path / "sk.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "sk-out"
    launcher = os.path.join(os.path.dirname(sys.executable), "accelerate")
    cmd = [launcher, "launch", "--multi_gpu", "--num_processes", "2", str(ASSET.with_name("dist_sktune.py")),
           "--model", tiny_model_dir, "--data", str(data), "--output", str(out), "--max-steps", "3",
           "--batch-size", "4", "--learning-rate", "0.01"]
    r = subprocess.run(cmd, env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    s = json.loads((out / "train_summary.json").read_text())
    assert s["processes"] == 2 and s["steps"] == 3
    a, b = s["trainable_checksums"]  # each rank trained on half of every batch; DDP kept the weights equal
    assert a == pytest.approx(b, abs=1e-9)
