"""LoRA on the top ``k`` decoder layers only: the layers below (the trunk) are frozen, so their output depends on the
tokens alone. What the two trainers share to exploit it:

- ``decoder`` / ``n_layers`` / ``only_layers``: find the decoder layers, run a slice of them (sk-tune caches the
  trunk's states per row, ``stages/sk_tune_trunk.py``);
- ``shared_trunk`` and ``dpo_trainer``: align's DPO, whose policy (adapter on) and reference (adapter off) are the
  same weights below layer ``total − k``: the trunk runs once per batch without gradients and only the top ``k``
  layers run twice. The numbers are those of TRL's DPOTrainer (tests/stages/test_align_trunk.py).
"""
from __future__ import annotations

import contextlib
from typing import Optional

import torch

from selfalign.errors import SelfAlignError


def decoder(model):
    """The decoder module holding ``layers`` (through a PEFT wrapper and a *ForCausalLM head)."""
    m = model.get_base_model() if hasattr(model, "get_base_model") else model
    inner = getattr(m, "model", None)
    inner = getattr(inner, "language_model", inner)  # multimodal wrappers (Gemma 3)
    if inner is None or not hasattr(inner, "layers"):
        raise SelfAlignError(f"--top-layers: cannot find the decoder layers of {type(m).__name__}")
    return inner


def n_layers(model) -> int:
    return len(decoder(model).layers)


def top_layer_ids(model, k: int) -> list[int]:
    """The indices of the top ``k`` decoder layers (PEFT's ``layers_to_transform``); an error unless 1 <= k <= all."""
    total = n_layers(model)
    if not 1 <= k <= total:
        raise SelfAlignError(f"--top-layers must be between 1 and {total} (the model's layers), got {k}")
    return list(range(total - k, total))


@contextlib.contextmanager
def only_layers(model, lo: int, hi: int):
    """Within the block, the model runs only its decoder layers [lo, hi) (fed ``inputs_embeds`` = the hidden states
    at layer lo's input when lo > 0); the layer list and the config's layer count are restored after."""
    dec = decoder(model)
    cfg = dec.config
    layers, n = dec.layers, cfg.num_hidden_layers
    types = getattr(cfg, "layer_types", None)
    dec.layers = torch.nn.ModuleList(list(layers)[lo:hi])
    cfg.num_hidden_layers = hi - lo
    if types is not None:
        cfg.layer_types = list(types)[lo:hi]
    # a KV cache indexes layers by their ``layer_idx``: renumber the kept ones from 0 for the block
    shifted = [m for layer in dec.layers for m in layer.modules() if isinstance(getattr(m, "layer_idx", None), int)]
    for m in shifted:
        m.layer_idx -= lo
    try:
        yield model
    finally:
        for m in shifted:
            m.layer_idx += lo
        dec.layers, cfg.num_hidden_layers = layers, n
        if types is not None:
            cfg.layer_types = types


class _Fed(torch.nn.Module):
    """The first top layer, given the trunk's states instead of its input (the embeddings of the shortened model).
    A wrapper, not a hook: under gradient checkpointing the layer's recomputation sees the same input."""

    def __init__(self, layer, h: torch.Tensor):
        super().__init__()
        self.layer, self.h = layer, h
        if hasattr(layer, "attention_type"):  # read by decoders that mix sliding and full attention (Qwen2, Gemma)
            self.attention_type = layer.attention_type

    def forward(self, hidden_states, *args, **kwargs):
        if hidden_states.shape != self.h.shape:
            raise SelfAlignError(f"--share-trunk: a forward pass of shape {tuple(hidden_states.shape)} inside a "
                                 f"batch whose trunk states are {tuple(self.h.shape)}")
        h = self.h
        if torch.is_grad_enabled() and getattr(self.layer, "gradient_checkpointing", False):
            # reentrant checkpointing passes gradients on only from inputs that need them
            h = h.detach().requires_grad_()
        return self.layer(h, *args, **kwargs)


MODEL_KEYS = ("input_ids", "attention_mask", "position_ids")


def pair_prefix(inputs: dict) -> Optional[torch.Tensor]:
    """Per pair, how many leading tokens its two rows share (TRL's batch: the chosen rows, then the rejected rows,
    right-padded; the prompt and any common start of the answers), capped so that every rejected row keeps one of
    its own; None when the batch is not laid out so (odd size, left padding, packed position ids)."""
    ids, mask = inputs["input_ids"], inputs.get("attention_mask")
    if mask is None or "position_ids" in inputs or ids.shape[0] % 2 or ids.dim() != 2:
        return None
    if not bool((mask[:, 0] == 1).all()) or bool((mask[:, 1:] > mask[:, :-1]).any()):
        return None
    b = ids.shape[0] // 2
    same = (ids[:b] == ids[b:]) & (mask[:b] == 1) & (mask[b:] == 1)
    return torch.minimum(same.long().cumprod(1).sum(1), mask[b:].sum(1) - 1)


@torch.no_grad()
def trunk_states(model, inputs: dict, lo: int) -> torch.Tensor:
    """The hidden states at the input of decoder layer ``lo`` (``lo`` > 0): layers [0, lo) run once, no gradients.
    The chosen rows run whole; a rejected row runs only its tokens after the start it shares with its chosen row,
    on that row's KV cache (``pair_prefix``); the shared start's states are the chosen row's."""
    from transformers.cache_utils import DynamicCache

    from selfalign.engines.hf import cache_kwarg

    dec = decoder(model)
    seen = []

    def grab(module, args, out):
        seen.append((out[0] if isinstance(out, tuple) else out).detach())

    shared = pair_prefix(inputs)
    with only_layers(model, 0, lo):
        handle = dec.layers[lo - 1].register_forward_hook(grab)
        try:
            if shared is None:
                dec(**{k: inputs[k] for k in MODEL_KEYS if k in inputs}, use_cache=False)
                return seen[0]
            ids, mask = inputs["input_ids"], inputs["attention_mask"]
            b, t = ids.shape[0] // 2, ids.shape[1]
            cache, key = DynamicCache(), cache_kwarg(model)
            dec(input_ids=ids[:b], attention_mask=mask[:b], use_cache=True, **{key: cache})
            n_rej = mask[b:].sum(1)
            pos = shared[:, None] + torch.arange(int((n_rej - shared).max()), device=ids.device)[None]
            own = pos < n_rej[:, None]  # [b, suffix]: the rejected rows' own tokens
            seen_cols = torch.arange(t, device=ids.device)[None] < shared[:, None]
            dec(input_ids=ids[b:].gather(1, pos.clamp(max=t - 1)), position_ids=pos, use_cache=True,
                attention_mask=torch.cat([seen_cols, own], 1).long(), **{key: cache})
        finally:
            handle.remove()
    chosen, suffix = seen
    h = torch.cat([chosen, chosen])  # the rejected rows' shared start (and, past their end, padding)
    rows = torch.arange(b, device=ids.device)[:, None].expand_as(pos)
    h[b + rows[own], pos[own]] = suffix[own]
    return h


@contextlib.contextmanager
def shared_trunk(model, inputs: dict, k: int):
    """Within the block, every forward pass of ``model`` on this batch runs only the top ``k`` layers, from the
    trunk's states computed once on entry (with the adapter on or off alike: the trunk carries none)."""
    dec = decoder(model)
    total = len(dec.layers)
    lo = top_layer_ids(model, k)[0]
    if lo == 0:  # every layer is trained: there is no trunk to share
        yield model
        return
    h = trunk_states(model, inputs, lo)
    with only_layers(model, lo, total):
        dec.layers[0] = _Fed(dec.layers[0], h)  # (the block's own list: restored with the layers on exit)
        yield model


def dpo_trainer(share_trunk_layers: Optional[int] = None):
    """TRL's ``DPOTrainer``; with ``share_trunk_layers`` = k, its subclass whose loss runs the frozen trunk once per
    batch and the top ``k`` layers for the policy and for the reference (adapter disabled), through TRL's own loss
    code (``compute_loss`` is only wrapped). The LoRA adapter must be on the top ``k`` layers alone."""
    from trl import DPOTrainer

    if share_trunk_layers is None:
        return DPOTrainer

    class TrunkDPOTrainer(DPOTrainer):
        top_layers = share_trunk_layers

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            with shared_trunk(self.accelerator.unwrap_model(model), inputs, self.top_layers):
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)

    return TrunkDPOTrainer


def check_trunk_frozen(model, k: int) -> None:
    """An error when a weight below the top ``k`` layers is trainable (then the trunk is not shared)."""
    dec = decoder(model)
    lo = len(dec.layers) - k
    below = [n for layer in dec.layers[:lo] for n, p in layer.named_parameters() if p.requires_grad]
    if below or any(p.requires_grad for p in dec.get_input_embeddings().parameters()):
        raise SelfAlignError(f"--share-trunk: weights below the top {k} layers are trained (e.g. "
                             f"{below[0] if below else 'the embeddings'}); the trunk is not shared")
