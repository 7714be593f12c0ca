"""DPO steps per second, TRL's plain DPOTrainer against the shared trunk (`align --top-layers K --share-trunk`).

    python benchmarks/speed/bench_dpo_trunk.py [--model smollm2-135m] [--top-layers 8] [--batch-size 4] [--steps 5]

One process, one thread: both trainers are built as `selfalign align` builds them (LoRA on the top K layers, the same
seed), on the same pair batches; after a warm-up step each, their optimizer steps (forward, backward, AdamW) are
timed in turn, plain then shared, so both see the same machine state; steps/s from the process's CPU time (the
machine is shared) and from wall time. Twice: with TRL's fused LM head as it runs on a CPU (every position scored)
and with it on the answer tokens only (its GPU path, patched in for the measurement). The pairs are the demo's
shape (recipes/demo.yaml: 3-demonstration qa_wikidata prompts, short answers, 4 pairs a step): chosen = the gold
target, rejected = another prompt's target. The two trainers' losses on each batch and their adapters after the
steps are compared too. Writes benchmarks/results/dpo_trunk.{md,json}.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "benchmarks" / "results"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
sys.path.insert(0, str(ROOT))
from selfalign.report.tables import md_table  # noqa: E402


def demo_pairs(n: int) -> list[dict]:
    from selfalign.data import load_prompts

    qs = load_prompts("bigbench:qa_wikidata", split="train", limit=n)
    return [{"prompt": q["prompt"], "chosen": " " + q["targets"][0],
             "rejected": " " + qs[(i + 1) % len(qs)]["targets"][0]} for i, q in enumerate(qs)]


def trainer(cfg, rows, share: bool, tmp: Path):
    import torch
    from datasets import Dataset, disable_progress_bars

    from selfalign import models
    from selfalign.stages.align import dpo_args
    from selfalign.training import trunk

    disable_progress_bars()
    args = dpo_args(cfg, tmp / ("shared" if share else "plain"), 10_000, "cpu")
    model, tok = models.load(cfg.model, device="cpu", dtype=cfg.dtype)
    tok.padding_side = "left"
    torch.manual_seed(cfg.seed)  # the same LoRA initialisation for both
    peft = cfg.lora_config(layers_to_transform=trunk.top_layer_ids(model, cfg.top_layers))
    tr = trunk.dpo_trainer(cfg.top_layers if share else None)(
        model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tok, peft_config=peft)
    tr.create_optimizer()
    tr.current_gradient_accumulation_steps = 1  # (set by Trainer.train, which the timing loop stands in for)
    tr.model.train()
    return tr


def step(tr, batch) -> tuple[float, float, float]:
    """One optimizer step on ``batch``: (wall seconds, CPU seconds of this process, loss)."""
    t0, c0 = time.perf_counter(), time.process_time()
    loss = tr.training_step(tr.model, dict(batch))
    tr.optimizer.step()
    tr.optimizer.zero_grad()
    return time.perf_counter() - t0, time.process_time() - c0, float(loss)


HEADS = {"all": "TRL's fused LM head as it runs on a CPU: every position scored",
         "answers": "the head on the answer tokens only (TRL's path on a GPU, patched in here)"}


def timed(plain, shared, batches, head: str) -> dict:
    """One warm-up step of each, then a step of each per batch in turn."""
    from trl.trainer import utils as trl_utils

    real = trl_utils._use_triton
    trl_utils._use_triton = (lambda device: True) if head == "answers" else real  # compact = labelled positions
    try:
        out = {"head": head, "what": HEADS[head]}
        for i, b in enumerate(batches):
            for name, tr in (("plain", plain), ("shared", shared)):
                wall, cpu, loss = step(tr, b)
                out.setdefault(f"{name}_loss", []).append(loss)
                if i:  # step 0 is the warm-up
                    out.setdefault(f"{name}_wall_s", []).append(round(wall, 3))
                    out.setdefault(f"{name}_cpu_s", []).append(round(cpu, 3))
            if i:
                print(f"{head} step {i}: cpu s plain {out['plain_cpu_s'][-1]}, shared {out['shared_cpu_s'][-1]}",
                      flush=True)
    finally:
        trl_utils._use_triton = real
    for name in ("plain", "shared"):
        for clock in ("cpu", "wall"):
            out[f"{name}_steps_per_s_{clock}"] = round(len(out[f"{name}_{clock}_s"]) / sum(out[f"{name}_{clock}_s"]), 3)
    for clock in ("cpu", "wall"):
        out[f"ratio_{clock}"] = round(out[f"shared_steps_per_s_{clock}"] / out[f"plain_steps_per_s_{clock}"], 2)
    out["max_abs_loss_diff"] = max(abs(x - y) for x, y in zip(out.pop("plain_loss"), out.pop("shared_loss")))
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--top-layers", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=4, help="pairs a step (recipes/demo.yaml: 4)")
    ap.add_argument("--steps", type=int, default=5, help="timed steps of each path and head, after a warm-up step")
    ap.add_argument("--no-write", action="store_true", help="print, do not write benchmarks/results")
    a = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)  # the machine's other core is busy
    from selfalign.stages.align import AlignConfig

    rows = demo_pairs(a.batch_size * (a.steps + 1) * len(HEADS))
    tmp = Path(tempfile.mkdtemp(prefix="bench_dpo_trunk"))
    cfg = AlignConfig(model=a.model, pairs="-", output=str(tmp), batch_size=a.batch_size, learning_rate=5e-4,
                      top_layers=a.top_layers, device="cpu")
    plain, shared = trainer(cfg, rows, False, tmp), trainer(cfg, rows, True, tmp)
    batches = [plain._prepare_inputs(b) for b in plain.get_train_dataloader()]
    per = a.steps + 1
    runs = [timed(plain, shared, batches[k * per:(k + 1) * per], head) for k, head in enumerate(HEADS)]
    ws = dict(shared.model.named_parameters())
    b0 = batches[0]
    res = {"model": a.model, "layers": plain.model.config.num_hidden_layers, "top_layers": a.top_layers,
           "pairs_per_step": a.batch_size, "row_tokens": int(b0["input_ids"].shape[1]),
           "real_tokens": int(b0["attention_mask"].sum()), "answer_tokens": int(b0["completion_mask"].sum()),
           "timed_steps": a.steps, "threads": torch.get_num_threads(), "dtype": str(plain.model.dtype),
           "load_average": [round(x, 1) for x in os.getloadavg()],
           "time": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "runs": runs,
           "max_abs_adapter_diff": max(float((p - ws[n]).detach().abs().max())
                                       for n, p in plain.model.named_parameters() if p.requires_grad)}
    print(json.dumps(res, indent=1))
    if not a.no_write:
        (OUT / "dpo_trunk.json").write_text(json.dumps(res, indent=1) + "\n")
        (OUT / "dpo_trunk.md").write_text(render(res))


def render(r: dict) -> str:
    """benchmarks/results/dpo_trunk.md from the results (dpo_trunk.json)."""
    lines = [f"# DPO with the shared trunk ({r['model']}, LoRA on the top {r['top_layers']} of {r['layers']} layers, "
             f"{r['threads']} thread)", "",
             "`python benchmarks/speed/bench_dpo_trunk.py` — one process: TRL's DPOTrainer (`align --top-layers "
             f"{r['top_layers']}`) and its shared-trunk subclass (`--share-trunk`) on the same batches of "
             f"{r['pairs_per_step']} demo-shaped pairs (first batch: {r['row_tokens']} tokens a row, "
             f"{r['real_tokens']} real tokens, {r['answer_tokens']} answer tokens; {r['dtype']}); one warm-up step "
             f"each, then {r['timed_steps']} optimizer steps (forward, backward, AdamW) each, in turn. Steps/s from "
             "the process's CPU time (the machine is shared: load average "
             f"{', '.join(map(str, r['load_average']))} on 2 cores) and from wall time.", ""]
    lines += md_table(["LM head", "plain steps/s (CPU)", "shared steps/s (CPU)", "ratio (CPU)", "ratio (wall)",
                       "max loss diff"],
                      [[x["what"], x["plain_steps_per_s_cpu"], x["shared_steps_per_s_cpu"], f"**{x['ratio_cpu']}x**",
                        f"{x['ratio_wall']}x", f"{x['max_abs_loss_diff']:.1g}"] for x in r["runs"]])
    lines += ["", "CPU seconds per step: " + "; ".join(
        f"{x['head']}: plain {', '.join(map(str, x['plain_cpu_s']))} / shared {', '.join(map(str, x['shared_cpu_s']))}"
        for x in r["runs"]) + ".", "",
        f"The two trainers' adapters after all {2 * (r['timed_steps'] + 1)} steps differ by at most "
        f"{r['max_abs_adapter_diff']:.2g} (float rounding of the rejected rows' trunk states, computed on their "
        "chosen row's KV cache, through AdamW's normalised updates). On a CPU TRL's fused head projects every "
        "position onto the vocabulary (49,152 × 576 per token), answers or not: a cost both paths pay in full on "
        "every policy and reference pass, which caps the ratio; the second row measures the same trainers with the "
        "head on the answer tokens only, as TRL does on a GPU.", "",
        f"Measured {r['time']}."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
