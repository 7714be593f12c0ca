"""Per-row sampling: every (prompt, sample index) draws its tokens from its own random stream.

``RowSampler`` is a transformers ``LogitsProcessor`` for a ``generate`` call run *without* ``do_sample`` (or for
``engines/decode.py``, which keeps the generators of the rows still running): it applies temperature, top-k and
top-p (transformers' own warpers, in generate's order), draws one uniform number per row from that row's
``torch.Generator`` and picks the token by inverse CDF, then returns scores that are ``-inf`` everywhere but at the
drawn token, so generate's greedy argmax takes exactly that token. A row's t-th token depends only on its own
logits and the t-th draw of its own generator, seeded from (seed, prompt text, sample index): a prompt's samples
are the same alone, in any batch, at any batch size, and when a resumed run redoes it.

The uniforms come from CPU generators (one scalar per row and step), so the random streams are the same on every
device; the CDF search runs batched on the model's device.

With top-k set, only the k candidates are warped, normalised and searched (kept in vocabulary order, so the CDF is
the full one with its zeros left out; each token's probability equals the full path's to 1e-6, a test): the
full-vocabulary sort of top-p cost 5 s per decode step for 240 rows of a 152k vocabulary on one CPU thread, against
0.15 s for the top-k (``benchmarks/speed/bench_rowsample.py``). A tie at the k-th score reaching past 32 more tokens
(top-k keeps every tied token) takes the full path for that step.
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


class StableTopP(TopPLogitsWarper):
    """transformers' top-p with a stable sort: of tokens tied at the cut, the lower token id goes first (its own
    sort leaves that order to the sort algorithm, so the whole vocabulary and the top-k candidates could cut
    different tied tokens)."""

    def __call__(self, input_ids, scores):
        sorted_logits, sorted_indices = torch.sort(scores, descending=False, stable=True)
        cumulative_probs = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        remove = cumulative_probs <= (1 - self.top_p)
        remove[..., -self.min_tokens_to_keep:] = 0
        return scores.masked_fill(remove.scatter(1, sorted_indices, remove), self.filter_value)


def warpers(temperature: float, top_k: int, top_p: float) -> LogitsProcessorList:
    """The warpers transformers' generate applies for these settings, in its order (top-p with a stable sort)."""
    out = LogitsProcessorList()
    if temperature != 1.0:
        out.append(TemperatureLogitsWarper(temperature))
    if top_k:
        out.append(TopKLogitsWarper(top_k=top_k))
    if top_p is not None and top_p < 1.0:
        out.append(StableTopP(top_p=top_p))
    return out


class RowSampler(LogitsProcessor):
    TIE_SLACK = 32

    def __init__(self, seeds: Sequence[int], temperature: float, top_k: int, top_p: float, fast: bool = True):
        self.gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
        self.warp = warpers(temperature, top_k, top_p)
        self.top_k = top_k if fast else 0

    def draw(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.LongTensor:
        """The next token of every row: warped scores, then the row's own uniform number through the CDF."""
        if scores.shape[0] != len(self.gens):
            raise ValueError(f"RowSampler has {len(self.gens)} generators for {scores.shape[0]} rows")
        probs, cand = self.distribution(input_ids, scores)
        u = torch.stack([torch.rand((), generator=g, dtype=torch.float64) for g in self.gens])
        cdf = probs.cumsum(-1)
        # 1 - u lies in (0, 1]: the target is > 0, so a token of probability 0 is never the first cdf >= target
        target = (1.0 - u).to(cdf.device, cdf.dtype)[:, None] * cdf[:, -1:]
        pos = torch.searchsorted(cdf, target).clamp_(max=probs.shape[-1] - 1)
        return pos if cand is None else cand.gather(1, pos)

    def distribution(self, input_ids: torch.LongTensor, scores: torch.FloatTensor):
        """(each row's sampling probabilities, their token ids): over the top-k candidates in vocabulary order, or
        over the whole vocabulary (ids None) on the full path."""
        scores, cand = self._candidates(scores.float())
        return torch.softmax(self.warp(input_ids, scores), dim=-1), cand

    def select(self, rows: Sequence[int]) -> None:
        """Keep only these rows' generators, in this order (the rows still decoding: ``engines/decode.py``)."""
        self.gens = [self.gens[r] for r in rows]

    def _candidates(self, scores: torch.Tensor):
        """(the candidate scores in vocabulary order, their token ids), or (scores, None) for the full path.

        The candidates are the top k + TIE_SLACK scores: every token tied with the k-th (top-k keeps them all, and
        bf16 logits tie often) is among them unless the tie runs past the slack, which takes the full path. The
        warpers then see the candidates as they would the whole vocabulary: top-k drops the same tokens, top-p
        keeps the same ones (the tokens left out would have had probability 0)."""
        k = self.top_k
        m = k + self.TIE_SLACK
        if not k or m >= scores.shape[-1]:
            return scores, None
        vals, ids = torch.topk(scores, m, dim=-1)
        if bool((vals[:, -1] == vals[:, k - 1]).any()):  # a tie with the k-th score beyond the slack
            return scores, None
        ids = ids.sort(dim=-1).values
        return scores.gather(1, ids), ids

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        tok = self.draw(input_ids, scores)
        # in place: a new [rows, vocab] tensor per decode step is an mmap and page faults (kernel time) on CPU
        return scores.fill_(float("-inf")).scatter_(1, tok, 0.0)
