#!/usr/bin/env python3
"""The memory arithmetic behind docs/scaling.md: what Llama-3-8B and Llama-3-70B need per GPU on 8 x 80 GB, for
inference (sample, score, eval) and for DPO (align), by placement. Prints the tables the doc quotes.

    python3 benchmarks/gpu/memory_plan.py

Counted (GB = 1e9 bytes): parameters from each model's shape (Llama-3's config.json values below); bf16 weights
2 B/parameter; full fine-tuning under mixed-precision Adam 16 B/parameter of model states (bf16 weights 2 + bf16
gradients 2 + fp32 master weights 4 + Adam moments 8: the ZeRO paper's count), sharded over the GPUs by ZeRO-3 / FSDP;
LoRA (rank 16 on q, k, v, o: the paper's recipe) trains fp32 adapters at 16 B/parameter on a frozen bf16 base. DPO
activations per GPU with gradient checkpointing, for T = 2 x pairs-per-GPU x max_length tokens (chosen and rejected
run as one batch): the hidden state kept at every layer (layers x T x hidden x 2 B), one layer recomputed in the
backward pass (T x (4 hidden + 2 kv + 3 intermediate) x 2 B, twice: forward and backward) and the logits over the
vocabulary with their fp32 copy and gradient (T x vocab x 10 B). Not counted: the CUDA context, allocator slack and
ZeRO-3's gathered-layer buffers (a few GB; the 'total' column adds 4 GB for them). The reference model costs nothing
extra: LoRA turns the adapters off for it, full fine-tuning precomputes its log-probabilities
(--trl.precompute_ref_log_probs true) before training.
"""
from __future__ import annotations

from dataclasses import dataclass

GB = 1e9
OVERHEAD = 4.0  # GB per GPU: CUDA context, allocator slack, ZeRO-3 gathered-layer buffers


@dataclass(frozen=True)
class Shape:
    name: str
    hidden: int
    layers: int
    intermediate: int
    kv: int  # key/value width: kv heads x head dim
    vocab: int

    def params(self) -> int:
        layer = 2 * self.hidden * self.hidden + 2 * self.hidden * self.kv + 3 * self.hidden * self.intermediate \
            + 2 * self.hidden  # q, o; k, v; gate, up, down; two norms
        return self.layers * layer + 2 * self.vocab * self.hidden + self.hidden  # untied embeddings + head, norm

    def lora_params(self, r: int = 16) -> int:  # q, k, v, o: r x (in + out) each
        return self.layers * r * (2 * (self.hidden + self.hidden) + 2 * (self.hidden + self.kv))

    def activations(self, tokens: int) -> float:
        kept = self.layers * tokens * self.hidden * 2
        layer = 2 * tokens * (4 * self.hidden + 2 * self.kv + 3 * self.intermediate) * 2
        logits = tokens * self.vocab * 10
        return (kept + layer + logits) / GB

    def kv_per_token(self) -> int:
        return 2 * self.layers * self.kv * 2  # keys and values, bf16


LLAMA3_8B = Shape("Llama-3-8B", 4096, 32, 14336, 1024, 128256)
LLAMA3_70B = Shape("Llama-3-70B", 8192, 80, 28672, 1024, 128256)
GPUS, GPU_GB = 8, 80


# the DPO runs of docs/scaling.md: (model, LoRA or full, accelerate config, pairs per GPU, max_length)
TRAINING = [(LLAMA3_8B, "LoRA", "ddp.yaml", 4, 1024), (LLAMA3_8B, "full", "zero3.yaml", 2, 1024),
            (LLAMA3_70B, "LoRA", "ddp.yaml", 1, 1024), (LLAMA3_70B, "LoRA", "zero3.yaml", 1, 1024),
            (LLAMA3_70B, "full", "zero3.yaml", 1, 1024), (LLAMA3_70B, "full", "zero3_offload.yaml", 1, 1024)]


def training_rows() -> list[tuple]:
    """(model, method, config, pairs/GPU, weights+states GB/GPU, activations GB/GPU, total GB/GPU, host GB, fits)."""
    rows = []
    for s, method, cfg, pairs, length in TRAINING:
        p, lora = s.params(), s.lora_params()
        frozen = 0 if method == "full" else p * 2  # the bf16 base under LoRA
        states = p * 16 if method == "full" else lora * 16
        on_gpu = {"ddp.yaml": frozen + states, "zero3.yaml": (frozen + states) / GPUS, "zero3_offload.yaml": 0}[cfg]
        host = frozen + states if cfg == "zero3_offload.yaml" else 0
        act = s.activations(2 * pairs * length)
        total = on_gpu / GB + act + OVERHEAD
        rows.append((s.name, method, cfg, pairs, on_gpu / GB, act, total, host / GB, total <= GPU_GB))
    return rows


def inference_rows() -> list[tuple]:
    """(model, placement, weights GB/GPU, KV cache KB/token)."""
    rows = []
    for s, places in ((LLAMA3_8B, [("one GPU per copy (--data-parallel-size 8)", 1)]),
                      (LLAMA3_70B, [("4 GPUs per copy (--tensor-parallel-size 4 / --device-map auto, "
                                     "--data-parallel-size 2)", 4), ("all 8 GPUs (--tensor-parallel-size 8 / "
                                                                      "--device-map auto)", 8)])):
        for where, per in places:
            rows.append((s.name, where, s.params() * 2 / per / GB, s.kv_per_token() / per / 1e3))
    return rows


def main() -> None:
    for s in (LLAMA3_8B, LLAMA3_70B):
        print(f"{s.name}: {s.params():,} parameters ({s.params() * 2 / GB:.1f} GB in bf16); LoRA r16 q,k,v,o: "
              f"{s.lora_params():,} ({s.lora_params() * 16 / GB:.2f} GB of fp32 weights, gradients, Adam)")
    print("\n| model | placement | bf16 weights per GPU | KV cache per token per GPU |\n|---|---|---|---|")
    for name, where, w, kv in inference_rows():
        print(f"| {name} | {where} | {w:.1f} GB | {kv:.0f} KB |")
    print("\n| model | DPO | config | pairs/GPU | weights + states /GPU | activations /GPU | total /GPU | host RAM "
          "| fits 80 GB |\n|---|---|---|---|---|---|---|---|---|")
    for name, method, cfg, pairs, states, act, total, host, fits in training_rows():
        print(f"| {name} | {method} | {cfg} | {pairs} | {states:.1f} GB | {act:.1f} GB | {total:.1f} GB | "
              f"{f'{host / 1e3:.2f} TB' if host else '-'} | {'yes' if fits else '**no**'} |")


if __name__ == "__main__":
    main()
