"""Decoding that drops every row from the batch at the step it finishes.

transformers' ``generate`` keeps a finished row in the batch until the batch's longest answer ends, feeding it pad
tokens: with one-line answers (knowledge QA: a few tokens, cut at the line end) most of a batch's decode steps run
rows already done. ``decode`` runs the same steps on the unfinished rows only: each step is one forward pass of the
rows' last tokens on the KV cache, the scores go through the same logits processors (``RowSampler``: each row keeps
its own generator) and the argmax, as generate's greedy path does; a row ends at an end-of-sequence token, a stop
string (transformers' ``StopStringCriteria`` on its full sequence, as generate checks it) or the token limit, and
the rows still running are selected out of the cache (``Cache.batch_select_indices``), the mask and the sequences.

Only for a model whose generation config sets nothing generate would add to the scores (``plain_generation``); any
other runs generate itself.
"""
from __future__ import annotations

from typing import Sequence

import torch

# generation-config fields that never change greedy scores: token ids, bookkeeping, and the sampling settings that
# the engine overrides (it calls generate with do_sample=False)
_NEUTRAL = {"bos_token_id", "eos_token_id", "pad_token_id", "decoder_start_token_id", "use_cache",
            "output_attentions", "output_hidden_states", "output_scores", "output_logits", "return_dict_in_generate",
            "transformers_version", "_from_model_config", "max_length", "max_new_tokens", "do_sample", "temperature",
            "top_k", "top_p", "min_p", "typical_p", "top_h", "epsilon_cutoff", "eta_cutoff", "num_beams",
            "num_return_sequences", "cache_implementation"}


def plain_generation(model) -> bool:
    """Whether greedy ``generate`` on this model would take the argmax of the raw logits (no repetition penalty,
    forced or suppressed tokens, minimum length, ...), so that ``decode`` gives the same tokens."""
    gc = getattr(model, "generation_config", None)
    if gc is None:
        return False
    diff = set(gc.to_diff_dict()) - _NEUTRAL
    return not diff and (gc.num_beams or 1) == 1


def eos_ids(model) -> list[int]:
    """The tokens that end a row, as generate reads them (the model's generation config)."""
    eos = model.generation_config.eos_token_id
    return [] if eos is None else [eos] if isinstance(eos, int) else list(eos)


@torch.inference_mode()
def decode(model, cache, ids: torch.Tensor, mask: torch.Tensor, max_new_tokens: int, cache_kw: str,
           eos: Sequence[int], sampler=None, stop=None) -> list[list[int]]:
    """Each row's new tokens, up to and including the one that ended it.

    ``ids``/``mask``: the left-padded prompts [rows, width]; ``cache`` holds their KV up to the last prompt token
    (laid out as ``ids[:, :-1]``, pads masked), so the first step runs only the last tokens. ``sampler`` (a
    ``RowSampler``, one generator per row) or none (greedy); ``stop`` a ``StopStringCriteria`` or none."""
    rows = ids.shape[0]
    out: list[list[int]] = [[] for _ in range(rows)]
    live = list(range(rows))
    seq, step_ids = ids, ids[:, -1:]
    eos_t = torch.tensor(list(eos), dtype=torch.long, device=ids.device)
    for step in range(max_new_tokens):
        pos = mask.sum(-1, keepdim=True) - 1
        logits = model(input_ids=step_ids, attention_mask=mask, position_ids=pos, use_cache=True, logits_to_keep=1,
                       **{cache_kw: cache}).logits[:, -1].float()
        scores = sampler(seq, logits) if sampler is not None else logits
        tok = scores.argmax(-1)
        seq = torch.cat([seq, tok[:, None]], -1)
        for r, t in zip(live, tok.tolist()):
            out[r].append(t)
        done = torch.isin(tok, eos_t)
        if stop is not None:
            done |= stop(seq, scores)
        if step == max_new_tokens - 1 or bool(done.all()):
            break
        if bool(done.any()):
            keep = (~done).nonzero()[:, 0]
            live = [live[k] for k in keep.tolist()]
            cache.batch_select_indices(keep)
            seq, mask, tok = seq[keep], mask[keep], tok[keep]
            if sampler is not None:
                sampler.select(keep.tolist())
        mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], -1)
        step_ids = tok[:, None]
    return out
