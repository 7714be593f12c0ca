"""Per-row sampling: every (prompt, sample index) draws its tokens from its own random stream.

``RowSampler`` is a transformers ``LogitsProcessor`` for a ``generate`` call run *without* ``do_sample``: it applies
temperature, top-k and top-p (transformers' own warpers, in generate's order), draws one uniform number per row
from that row's ``torch.Generator`` and picks the token by inverse CDF, then returns scores that are ``-inf``
everywhere but at the drawn token, so generate's greedy argmax takes exactly that token. A row's t-th token
depends only on its own logits and the t-th draw of its own generator, seeded from (seed, prompt text, sample
index): a prompt's samples are the same alone, in any batch, at any batch size, and when a resumed run redoes it.

The uniforms come from CPU generators (one scalar per row and step), so the random streams are the same on every
device; the CDF search runs batched on the model's device.
"""
from __future__ import annotations

import hashlib
from typing import Sequence

import torch
from transformers import LogitsProcessor, LogitsProcessorList
from transformers.generation.logits_process import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper


def row_seed(seed: int, prompt: str, sample_idx: int) -> int:
    """A stable 63-bit seed of (run seed, prompt text, sample index) (sha256, not Python's salted hash)."""
    digest = hashlib.sha256(f"{seed}\x1f{sample_idx}\x1f{prompt}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") & (2 ** 63 - 1)


def warpers(temperature: float, top_k: int, top_p: float) -> LogitsProcessorList:
    """The warpers transformers' generate applies for these settings, in its order."""
    out = LogitsProcessorList()
    if temperature != 1.0:
        out.append(TemperatureLogitsWarper(temperature))
    if top_k:
        out.append(TopKLogitsWarper(top_k=top_k))
    if top_p is not None and top_p < 1.0:
        out.append(TopPLogitsWarper(top_p=top_p))
    return out


class RowSampler(LogitsProcessor):
    def __init__(self, seeds: Sequence[int], temperature: float, top_k: int, top_p: float):
        self.gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
        self.warp = warpers(temperature, top_k, top_p)

    def draw(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.LongTensor:
        """The next token of every row: warped scores, then the row's own uniform number through the CDF."""
        if scores.shape[0] != len(self.gens):
            raise ValueError(f"RowSampler has {len(self.gens)} generators for {scores.shape[0]} rows")
        probs = torch.softmax(self.warp(input_ids, scores.float()), dim=-1)
        u = torch.stack([torch.rand((), generator=g, dtype=torch.float64) for g in self.gens])
        cdf = probs.cumsum(-1)
        # 1 - u lies in (0, 1]: the target is > 0, so a token of probability 0 is never the first cdf >= target
        target = (1.0 - u).to(cdf.device, cdf.dtype)[:, None] * cdf[:, -1:]
        return torch.searchsorted(cdf, target).clamp_(max=scores.shape[-1] - 1)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        tok = self.draw(input_ids, scores)
        out = torch.full_like(scores, float("-inf"))
        return out.scatter_(1, tok, 0.0)
