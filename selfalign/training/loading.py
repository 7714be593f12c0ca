"""How a TRL trainer's stage loads its model beyond ``models.load``: the attention kernel
(``--attn-implementation``), 4-bit NF4 weights for QLoRA (``--load-in-4bit``, bitsandbytes on CUDA), and a model
that full fine-tuning (``--no-lora``) can train when it came from an adapter.

selfalign loads the model itself (after TRL's config has set up the processes), so TRL's ``model_init_kwargs``,
which TRL reads only when it loads the model from a name, would be ignored: it is refused for these flags.
"""
from __future__ import annotations

import importlib.util

from selfalign.errors import SelfAlignError

ATTENTION = ("eager", "sdpa", "flash_attention_2")


def model_kwargs(cfg, device: str) -> dict:
    """``from_pretrained`` keywords for ``cfg``'s flags on ``device``; one line when the machine cannot do them."""
    kw: dict = {}
    gpu = device.startswith("cuda")
    if cfg.attn_implementation:
        if cfg.attn_implementation == "flash_attention_2":
            if not gpu:
                raise SelfAlignError(f"--attn-implementation flash_attention_2 needs a CUDA GPU; this run is on "
                                     f"{device} (use sdpa or eager)")
            if importlib.util.find_spec("flash_attn") is None:
                raise SelfAlignError("--attn-implementation flash_attention_2: the flash-attn package is not "
                                     "installed (pip install flash-attn), or use sdpa")
        kw["attn_implementation"] = cfg.attn_implementation
    if cfg.load_in_4bit:
        if not gpu:
            raise SelfAlignError(f"--load-in-4bit needs a CUDA GPU (bitsandbytes 4-bit weights); this run is on "
                                 f"{device}")
        if importlib.util.find_spec("bitsandbytes") is None:
            raise SelfAlignError("--load-in-4bit: bitsandbytes is not installed (pip install 'selfalign[qlora]')")
        import torch
        from transformers import BitsAndBytesConfig

        compute = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        kw["quantization_config"] = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                                       bnb_4bit_use_double_quant=True,
                                                       bnb_4bit_compute_dtype=compute)
        index = device if ":" in device else f"cuda:{torch.cuda.current_device()}"
        kw["device_map"] = {"": index}  # a 4-bit model is placed as it loads, never moved after
    return kw


def check_flags(cfg) -> None:
    """What the flags cannot do together (checked when the config is made: a recipe fails at ``--dry-run``)."""
    if cfg.load_in_4bit and not cfg.lora:
        raise SelfAlignError("--load-in-4bit trains a LoRA adapter on 4-bit weights (QLoRA); 4-bit weights cannot be "
                             "fully fine-tuned: drop --no-lora or --load-in-4bit")
    if cfg.load_in_4bit and getattr(cfg, "merge", False):
        raise SelfAlignError("--merge with --load-in-4bit would merge the adapter into 4-bit weights: save the "
                             "adapter (no --merge); it loads on the full-precision base")


def from_adapter(model) -> bool:
    """Whether the loaded model is a base with its adapter(s) merged in (``--model ADAPTER_DIR``, ``--adapter``)."""
    return bool(getattr(model, "selfalign_spec", {}).get("adapters"))


def full_finetune(model, sharded: bool, reference: bool = True):
    """Prepare ``model`` for ``--no-lora``: every weight trainable (PEFT froze the base it merged an adapter into);
    with ``reference`` (DPO) returns the reference to pass to TRL, or None for TRL's own. TRL would load its reference again from the
    model's folder, which is the base *without* the adapter; the reference must be the model training starts from,
    so for a model with a merged adapter it is a frozen copy of it."""
    model.requires_grad_(True)
    if not reference or not from_adapter(model):
        return None
    if sharded:
        raise SelfAlignError("--no-lora from an adapter under ZeRO-3 / FSDP: TRL's reference would be the base "
                             "without the adapter; merge the adapter into a full model first (PEFT's "
                             "merge_and_unload, then save_pretrained) and pass that folder as --model")
    import copy

    ref = copy.deepcopy(model).eval()
    ref.requires_grad_(False)
    return ref
