"""benchmarks/gpu/smoke.py's plan: what runs and what is skipped (and why) for no GPU, one GPU without vllm and two
GPUs with vllm and deepspeed; every step's command is one the CLI accepts (torch.cuda mocked as two GPUs)."""
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks" / "gpu"))
import smoke as S  # noqa: E402

from selfalign import registry  # noqa: E402
from selfalign.cli import main  # noqa: E402

ALL = {"vllm": "0.10.2", "deepspeed": "0.17"}


def _plan(gpus: int, versions: dict, cpu: bool = False, tmp=Path("/w")):
    return {s.name: s for s in S.plan(S.Machine(gpus=["H100"] * gpus, versions=versions), "m", tmp, cpu)}


def test_what_each_machine_runs_and_why_the_rest_is_skipped():
    two = _plan(2, ALL)
    assert all(s.why_skipped is None for s in two.values())
    one = _plan(1, {})
    assert one["sample (vllm)"].why_skipped == "vllm does not import"
    assert {n: s.why_skipped for n, s in one.items() if s.why_skipped and "vllm)" not in n} == {
        "sample (hf, data parallel)": "1 GPU (needs 2)", "sample (vllm, tensor parallel 2)": "vllm does not import",
        "score (device map)": "1 GPU (needs 2)", "align (DDP)": "1 GPU (needs 2)",
        "align (ZeRO-3, full)": "1 GPU (needs 2)"}
    assert _plan(2, {"vllm": "1"})["align (ZeRO-3, full)"].why_skipped == "deepspeed does not import"
    cpu = _plan(0, ALL, cpu=True)
    ran = [n for n, s in cpu.items() if s.why_skipped is None]
    assert ran == ["sample (hf)", "score", "pairs", "align (1 process)", "eval knowledge-qa (base)",
                   "eval knowledge-qa (aligned)"]  # the loop on one device first, the multi-GPU steps after
    assert all("--device" in s.argv for n, s in cpu.items() if n in ran and n != "pairs")
    assert two["align (DDP)"].argv[:2] == ["ACCELERATE", "launch"] and "--num_processes" in two["align (DDP)"].argv


def test_every_command_is_one_the_cli_accepts(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    seen = []
    real = registry.Stage.load
    monkeypatch.setattr(registry.Stage, "load", lambda self: (real(self)[0], lambda cfg: seen.append(cfg) or {}))
    for step in _plan(2, ALL, tmp=tmp_path).values():
        argv = [str(a) for a in step.argv]
        argv = argv[argv.index("selfalign.cli") + 1:]
        assert main(argv) == 0, step.name
        assert type(seen[-1]).__name__.endswith("Config"), step.name
    by = {type(c).__name__: c for c in seen}
    assert by["AlignConfig"].max_steps == 8
    assert [c.data_parallel_size for c in seen if type(c).__name__ == "SampleConfig"] == [1, 1, 2, 1]


@pytest.mark.parametrize("text, want", [("x\n{\"a\": 1}\n", {"a": 1}), ("no json", None), ("{bad\n", None)])
def test_the_summary_line_is_read(text, want):
    assert S.last_json(text) == want


def test_the_memory_plan_counts_the_parameters_and_what_fits():
    import memory_plan as M

    # the parameter counts of the published models (their config.json shapes; Meta's model cards: 8.03B, 70.6B)
    assert M.LLAMA3_8B.params() == 8_030_261_248 and M.LLAMA3_70B.params() == 70_553_706_496
    fits = {(r[0], r[1], r[2]): r[-1] for r in M.training_rows()}
    assert fits == {("Llama-3-8B", "LoRA", "ddp.yaml"): True, ("Llama-3-8B", "full", "zero3.yaml"): True,
                    ("Llama-3-70B", "LoRA", "ddp.yaml"): False, ("Llama-3-70B", "LoRA", "zero3.yaml"): True,
                    ("Llama-3-70B", "full", "zero3.yaml"): False, ("Llama-3-70B", "full", "zero3_offload.yaml"): True}
    full70 = next(r for r in M.training_rows() if r[1:3] == ("full", "zero3.yaml") and r[0] == "Llama-3-70B")
    assert full70[4] == pytest.approx(70_553_706_496 * 16 / 8 / 1e9)  # 141 GB of model states per GPU
