"""DPO steps per second, TRL's plain DPOTrainer against the shared trunk (`align --top-layers K --share-trunk`).

    python benchmarks/speed/bench_dpo_trunk.py [--model smollm2-135m] [--top-layers 8] [--batch-size 4] [--steps 6]

One process, one thread: both trainers are built as `selfalign align` builds them (LoRA on the top K layers, the same
seed), on the same pair batches; after a warm-up step each, their optimizer steps (forward, backward, AdamW) are
timed in turn, plain then shared, so both see the same machine state. The pairs are the demo's shape
(recipes/demo.yaml: 3-demonstration qa_wikidata prompts, short answers, 4 pairs a step): chosen = the gold target,
rejected = another prompt's target. The losses of the two trainers on each batch and their adapters after the
steps are compared too. Writes benchmarks/results/dpo_trunk.{md,json}.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
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


def step(tr, batch) -> tuple[float, float]:
    """One optimizer step on ``batch``: (seconds, loss)."""
    t0 = time.perf_counter()
    loss = tr.training_step(tr.model, dict(batch))
    tr.optimizer.step()
    tr.optimizer.zero_grad()
    return time.perf_counter() - t0, float(loss)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--top-layers", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=4, help="pairs a step (recipes/demo.yaml: 4)")
    ap.add_argument("--steps", type=int, default=6, help="timed steps of each, after one warm-up step each")
    ap.add_argument("--no-write", action="store_true", help="print, do not write benchmarks/results")
    a = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)  # the machine's other core is busy
    from selfalign.stages.align import AlignConfig

    rows = demo_pairs(a.batch_size * (a.steps + 1))
    tmp = Path(tempfile.mkdtemp(prefix="bench_dpo_trunk"))
    cfg = AlignConfig(model=a.model, pairs="-", output=str(tmp), batch_size=a.batch_size, learning_rate=5e-4,
                      top_layers=a.top_layers, device="cpu")
    plain, shared = trainer(cfg, rows, False, tmp), trainer(cfg, rows, True, tmp)
    batches = [plain._prepare_inputs(b) for b in plain.get_train_dataloader()]
    n_layers = plain.model.config.num_hidden_layers
    times = {"plain": [], "shared": []}
    losses = {"plain": [], "shared": []}
    for i, b in enumerate(batches[:a.steps + 1]):
        for name, tr in (("plain", plain), ("shared", shared)):
            s, loss = step(tr, b)
            losses[name].append(loss)
            if i:  # step 0 is the warm-up
                times[name].append(s)
        print(f"step {i}: plain {times['plain'][-1] if i else 0:.2f}s  shared {times['shared'][-1] if i else 0:.2f}s",
              flush=True)
    wp = {n: p for n, p in plain.model.named_parameters() if p.requires_grad}
    ws = dict(shared.model.named_parameters())
    res = {"model": a.model, "layers": n_layers, "top_layers": a.top_layers, "pairs_per_step": a.batch_size,
           "tokens_per_step": int(batches[0]["attention_mask"].sum()), "seq_len": int(batches[0]["input_ids"].shape[1]),
           "timed_steps": a.steps, "threads": torch.get_num_threads(), "dtype": str(plain.model.dtype),
           "cpu": platform.processor() or platform.machine(), "time": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    for name in times:
        res[f"{name}_s_per_step"] = [round(t, 3) for t in times[name]]
        res[f"{name}_steps_per_s"] = round(len(times[name]) / sum(times[name]), 3)
    res["ratio"] = round(res["shared_steps_per_s"] / res["plain_steps_per_s"], 2)
    res["max_abs_loss_diff"] = max(abs(x - y) for x, y in zip(losses["plain"], losses["shared"]))
    res["max_abs_adapter_diff"] = max(float((p - ws[n]).detach().abs().max()) for n, p in wp.items())
    print(json.dumps(res, indent=1))
    if not a.no_write:
        (OUT / "dpo_trunk.json").write_text(json.dumps(res, indent=1) + "\n")
        (OUT / "dpo_trunk.md").write_text(render(res))


def render(r: dict) -> str:
    """benchmarks/results/dpo_trunk.md from the results (dpo_trunk.json)."""
    lines = [f"# DPO with the shared trunk ({r['model']}, LoRA on the top {r['top_layers']} of {r['layers']} layers, "
             f"{r['threads']} thread)", "",
             "`python benchmarks/speed/bench_dpo_trunk.py` — one process: TRL's DPOTrainer (`align --top-layers "
             f"{r['top_layers']}`) and the shared-trunk subclass (`--share-trunk`) on the same batches of "
             f"{r['pairs_per_step']} demo-shaped pairs ({r['seq_len']} tokens a row, {r['tokens_per_step']} real tokens "
             f"a step, {r['dtype']}); one warm-up step each, then {r['timed_steps']} optimizer steps each, in turn.", ""]
    lines += md_table(["path", "s per step", "steps/s"],
                      [["plain TRL DPO", ", ".join(map(str, r["plain_s_per_step"])), r["plain_steps_per_s"]],
                       ["shared trunk", ", ".join(map(str, r["shared_s_per_step"])), r["shared_steps_per_s"]]])
    lines += ["", f"Shared / plain: **{r['ratio']}x** steps/s. Same numbers: the largest loss difference over the "
              f"steps {r['max_abs_loss_diff']:.2g}, the largest adapter-weight difference after them "
              f"{r['max_abs_adapter_diff']:.2g}.", "",
              f"Measured {r['time']} on a 2-core CPU machine ({r['cpu']}) with other work on the second core."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
