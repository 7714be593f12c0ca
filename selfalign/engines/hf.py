"""The transformers engine: batched, left-padded, length-sorted forward passes on any causal LM.

Scoring (``choice_probs``, ``loglikelihood``) runs a token prefix shared by several rows once and reuses its KV cache
(``engines/prefix.py`` finds the shared spans), so a 5-shot Self-Eval prefix or a question shared by N samples costs
one pass. Generation reuses the same spans (a few-shot prompt's demonstrations, where prompts share them), runs the
rest of each prompt once for its N samples, and decodes with ``engines/decode.py``, which drops each row at the
step it ends; every sample draws from its own random stream (``engines/rowsample.py``). ``prefix_cache=False``
gives the plain path (every row runs in full, transformers' ``generate``), kept for tests and benchmarks.
"""
from __future__ import annotations

import inspect
from typing import Callable, Sequence

import torch
from transformers import LogitsProcessorList

from selfalign.engines import prefix as pfx
from selfalign.engines import tokens
from selfalign.engines.base import GenerationConfig, Generation
from selfalign.engines.decode import decode, eos_ids, plain_generation
from selfalign.engines.rowsample import RowSampler, row_seed


class HFEngine(tokens.TextMixin):
    name = "hf"

    def __init__(self, model, tokenizer, batch_size: int = 8, prefix_cache: bool = True, min_prefix: int = 8):
        self.model, self.tok, self.batch_size = model, tokenizer, batch_size
        self.tok.padding_side = "left"
        if self.tok.pad_token is None:
            self.tok.pad_token = self.tok.eos_token
        self.device = next(model.parameters()).device
        self.info = dict(getattr(model, "selfalign_spec", {"model": getattr(model.config, "_name_or_path", "?")}))
        self._variant_cache: dict[str, list[int]] = {}
        # prefix reuse needs a plain full-attention KV cache; other models (sliding window, recurrent) run in full
        self.prefix_cache = prefix_cache and _full_attention_cache(model)
        self.min_prefix = min_prefix
        self._cache_kw = cache_kwarg(model)

    @classmethod
    def from_spec(cls, model: str, adapter: str | None = None, batch_size: int = 8, device: str = "auto",
                  dtype: str = "auto", trust_remote_code: bool = False, prefix_cache: bool = True,
                  allow_pickle: bool = False, device_map: str | None = None):
        """``device_map`` spreads the model over the visible GPUs (``models.load``); inputs go to the device of its
        first parameters (the embeddings) and accelerate's hooks move activations between GPUs."""
        from selfalign import models

        m, tok = models.load(model, adapter=adapter, device=device, dtype=dtype, trust_remote_code=trust_remote_code,
                             allow_pickle=allow_pickle, device_map=device_map)
        return cls(m, tok, batch_size=batch_size, prefix_cache=prefix_cache)

    # --- text helpers ---------------------------------------------------------------------------------

    # --- batching -------------------------------------------------------------------------------------
    def batches(self, seqs: Sequence[list[int]]):
        """Yield (indices, left-padded ids, mask, position ids), longest first so that padding stays small."""
        order = sorted(range(len(seqs)), key=lambda i: -len(seqs[i]))
        for s in range(0, len(order), self.batch_size):
            idx = order[s:s + self.batch_size]
            ids, mask = self._left_padded([seqs[i] for i in idx])
            pos = (mask.cumsum(-1) - 1).clamp(min=0)
            yield idx, ids.to(self.device), mask.to(self.device), pos.to(self.device)

    def _left_padded(self, seqs: Sequence[list[int]]):
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), self.tok.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for r, s in enumerate(seqs):
            ids[r, width - len(s):], mask[r, width - len(s):] = torch.tensor(s, dtype=torch.long), 1
        return ids, mask

    @torch.inference_mode()
    def _forward(self, chains: list[list[int]], toks: list[list[int]], kv: dict, keep: int, want_kv: bool):
        """One padded pass: row r continues the cached spans ``chains[r]`` (node ids into ``kv``) with ``toks[r]``.

        Layout per row: [left pad | cached prefix | pad | new tokens]; the mask hides both pads and position ids
        continue from the row's own prefix length, so each row sees exactly its own unpadded sequence. Returns the
        log-softmax of the last ``keep`` positions, and each row's new KV span (per layer) when ``want_kv``."""
        b = len(toks)
        plen = [sum(kv[c][0][0].shape[1] for c in ch) for ch in chains]
        p, w = max(plen), max(len(t) for t in toks)
        ids = torch.full((b, w), self.tok.pad_token_id, dtype=torch.long)
        mask = torch.zeros((b, p + w), dtype=torch.long)
        pos = torch.zeros((b, w), dtype=torch.long)
        for r, t in enumerate(toks):
            ids[r, w - len(t):] = torch.tensor(t)
            mask[r, p - plen[r]:p] = 1
            mask[r, p + w - len(t):] = 1
            pos[r, w - len(t):] = torch.arange(plen[r], plen[r] + len(t))
        cache = None
        if p:
            from transformers.cache_utils import DynamicCache

            cache = DynamicCache(ddp_cache_data=self._stack_prefixes(chains, plen, p, kv))
        elif want_kv:
            from transformers.cache_utils import DynamicCache

            cache = DynamicCache()
        extra = {self._cache_kw: cache} if cache is not None else {}
        out = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                         position_ids=pos.to(self.device), use_cache=cache is not None, logits_to_keep=keep, **extra)
        spans = None
        if want_kv:
            spans = [[(layer.keys[r, :, p + w - len(t):].clone(), layer.values[r, :, p + w - len(t):].clone())
                      for layer in cache.layers] for r, t in enumerate(toks)]
        return torch.log_softmax(out.logits.float(), dim=-1), spans

    @staticmethod
    def _stack_prefixes(chains, plen, p, kv):
        """Per layer (keys, values) of shape [rows, heads, p, dim]: each row's spans, right-aligned at p."""
        some = next(kv[ch[0]] for ch in chains if ch)
        layers = []
        for li, (k0, v0) in enumerate(some):
            keys = k0.new_zeros((len(chains), k0.shape[0], p, k0.shape[2]))
            values = v0.new_zeros((len(chains), v0.shape[0], p, v0.shape[2]))
            for r, ch in enumerate(chains):
                off = p - plen[r]
                for c in ch:
                    k, v = kv[c][li]
                    keys[r, :, off:off + k.shape[1]] = k
                    values[r, :, off:off + v.shape[1]] = v
                    off += k.shape[1]
            layers.append((keys, values))
        return layers

    def _prefixes(self, seqs: list[list[int]], limits: list[int]):
        """The token spans several rows share (``engines/prefix.py``; none without prefix reuse or for one row), run
        once each, parents first, never past a row's ``limits[i]``: (nodes, each row's node or -1, their KV by node,
        each row's first token not in its node)."""
        n = len(seqs)
        nodes, leaf = pfx.plan(seqs, limits, self.min_prefix) if self.prefix_cache and n > 1 else ([], [-1] * n)
        kv: dict = {}
        for depth in range(1 + max((nd.depth for nd in nodes), default=-1)):
            todo = sorted((j for j, nd in enumerate(nodes) if nd.depth == depth),
                          key=lambda j: nodes[j].start - nodes[j].end)
            for s in range(0, len(todo), self.batch_size):
                part = todo[s:s + self.batch_size]
                _, spans = self._forward([pfx.chain(nodes, nodes[j].parent) for j in part],
                                         [seqs[nodes[j].rep][nodes[j].start:nodes[j].end] for j in part], kv, 1, True)
                kv.update(zip(part, spans))
        return nodes, leaf, kv, [nodes[leaf[i]].end if leaf[i] >= 0 else 0 for i in range(n)]

    def _score(self, seqs: list[list[int]], need: list[int], reduce: Callable):
        """``reduce(i, logp)`` per row, logp being the log-softmax at row i's last ``need[i]`` positions."""
        n = len(seqs)
        nodes, leaf, kv, start = self._prefixes(seqs, [len(s) - k for s, k in zip(seqs, need)])
        order = sorted(range(n), key=lambda i: start[i] - len(seqs[i]))  # longest remainder first
        out = [None] * n
        for s in range(0, n, self.batch_size):
            idx = order[s:s + self.batch_size]
            keep = max(need[i] for i in idx)
            logp, _ = self._forward([pfx.chain(nodes, leaf[i]) for i in idx], [seqs[i][start[i]:] for i in idx],
                                    kv, keep, False)
            for r, i in enumerate(idx):
                out[i] = reduce(i, logp[r, keep - need[i]:])
        return out

    # --- the three operations -------------------------------------------------------------------------
    def choice_probs(self, prompts: Sequence[str], choices: Sequence[str]) -> list[list[float]]:
        variants = [[self.choice_ids(p, c) for c in choices] for p in prompts]
        seqs = [self.encode(p) for p in prompts]
        return self._score(seqs, [1] * len(seqs), lambda i, lp: [float(lp[-1, v].exp().sum()) for v in variants[i]])

    def loglikelihood(self, pairs: Sequence[tuple[str, str]]) -> list[tuple[float, int]]:
        seqs, n_cont = tokens.continuation_split(self.encode, pairs)
        for s, n in zip(seqs, n_cont):
            if n >= len(s):
                raise ValueError("empty context: the first continuation token has nothing to condition on")

        def reduce(i, lp):  # lp: the n + 1 last positions; the first n predict the continuation
            n = n_cont[i]
            targets = torch.tensor(seqs[i][-n:], device=lp.device)
            return float(lp[:-1].gather(-1, targets[:, None]).sum()), n

        return self._score(seqs, [n + 1 for n in n_cont], reduce)

    @torch.inference_mode()
    def generate(self, prompts: Sequence[str], cfg: GenerationConfig, seed: int) -> list[list[Generation]]:
        """``cfg.n`` samples per prompt. Sample k of a prompt draws from its own generator seeded by (seed, prompt,
        k) (``engines/rowsample.py``), so it is the same alone, in any batch, at any batch size and after a resume.

        With prefix reuse the token spans prompts share (a few-shot prompt's demonstrations) run once per call and
        each prompt's own tokens once for its N samples (``_prefixes``, as scoring does), and ``engines/decode.py``
        drops every row at the step it ends; without it, transformers' ``generate`` runs every row in full."""
        seqs = [self.encode(p) for p in prompts]
        fast = self.prefix_cache and plain_generation(self.model)
        tokens_of = self._decoded if fast else self._generated
        results: list[list[Generation]] = [None] * len(prompts)  # type: ignore[list-item]
        eos = {self.tok.eos_token_id, self.tok.pad_token_id}
        for idx, new in tokens_of(prompts, seqs, cfg, seed):
            for r, i in enumerate(idx):
                gens = []
                for toks in new[r * cfg.n:(r + 1) * cfg.n]:
                    n_tok = next((j for j, t in enumerate(toks) if t in eos), len(toks))
                    text = _cut(self._continued(seqs[i][-1:], toks[:n_tok]), cfg.stop)
                    gens.append(Generation(text.strip(), n_tok, text.rstrip()))
                results[i] = gens
        return results

    def _sampler(self, prompts, idx, cfg: GenerationConfig, seed: int):
        if cfg.temperature <= 0:
            return None
        return RowSampler([row_seed(seed, prompts[i], k) for i in idx for k in range(cfg.n)], cfg.temperature,
                          cfg.top_k, cfg.top_p)

    def _generated(self, prompts, seqs, cfg: GenerationConfig, seed: int):
        """The plain path: (prompt indices, each row's new tokens) per batch, from transformers' ``generate``
        (sampling runs its greedy path on scores ``RowSampler`` has reduced to each row's own draw)."""
        for idx, ids, mask, _ in self.batches(seqs):
            kw = dict(do_sample=False, max_new_tokens=cfg.max_new_tokens, pad_token_id=self.tok.pad_token_id,
                      temperature=None, top_p=None, top_k=None)
            sampler = self._sampler(prompts, idx, cfg, seed)
            if sampler is not None:
                kw["logits_processor"] = LogitsProcessorList([sampler])
            if cfg.stop:
                kw.update(stop_strings=list(cfg.stop), tokenizer=self.tok)
            ids, mask = ids.repeat_interleave(cfg.n, 0), mask.repeat_interleave(cfg.n, 0)
            out = self.model.generate(input_ids=ids, attention_mask=mask, **kw)
            yield idx, out[:, ids.shape[1]:].tolist()

    def _decoded(self, prompts, seqs, cfg: GenerationConfig, seed: int):
        """The prefix-reuse path: the shared spans once per call, each prompt's own tokens (all but its last) once
        per batch on top of them, their KV stacked into a cache of N rows per prompt, then ``decode``."""
        from transformers.cache_utils import DynamicCache
        from transformers.generation.stopping_criteria import StopStringCriteria

        nodes, leaf, kv, start = self._prefixes(seqs, [len(s) - 1 for s in seqs])
        stop = StopStringCriteria(self.tok, list(cfg.stop)) if cfg.stop else None
        eos = eos_ids(self.model)
        order = sorted(range(len(seqs)), key=lambda i: -len(seqs[i]))  # longest first: little padding
        for s in range(0, len(order), self.batch_size):
            idx = order[s:s + self.batch_size]
            own = [i for i in idx if len(seqs[i]) - 1 > start[i]]
            for part in _similar_lengths(own, lambda i: len(seqs[i]) - 1 - start[i]):
                _, spans = self._forward([pfx.chain(nodes, leaf[i]) for i in part],
                                         [seqs[i][start[i]:-1] for i in part], kv, 1, True)
                kv.update(zip((("row", i) for i in part), spans))
            chains = [pfx.chain(nodes, leaf[i]) + ([("row", i)] if i in own else []) for i in idx for _ in range(cfg.n)]
            plen = [len(seqs[i]) - 1 for i in idx for _ in range(cfg.n)]
            p = max(plen)
            cache = DynamicCache(ddp_cache_data=self._stack_prefixes(chains, plen, p, kv)) if p else DynamicCache()
            for i in own:
                del kv[("row", i)]
            ids, mask = self._left_padded([seqs[i] for i in idx for _ in range(cfg.n)])
            yield idx, decode(self.model, cache, ids.to(self.device), mask.to(self.device), cfg.max_new_tokens,
                              self._cache_kw, eos, self._sampler(prompts, idx, cfg, seed), stop)

    def _continued(self, last: list[int], toks: list[int]) -> str:
        return _continued_text(lambda t: self.tok.decode(t, skip_special_tokens=True), last, toks)


def _similar_lengths(rows: list[int], length: Callable[[int], int], slack: float = 0.8) -> list[list[int]]:
    """``rows`` in passes of similar length, longest first: a pass takes rows down to ``slack`` times its longest,
    so padding stays under a fifth of the tokens run (one padded pass of prompts 30 to 67 tokens long ran a third
    more tokens than the prompts have)."""
    out: list[list[int]] = []
    for i in sorted(rows, key=lambda i: -length(i)):
        if out and length(i) >= slack * length(out[-1][0]):
            out[-1].append(i)
        else:
            out.append([i])
    return out


def _full_attention_cache(model) -> bool:
    """Whether the model's KV cache is plain full attention (every layer a DynamicLayer)."""
    try:
        from transformers.cache_utils import DynamicCache, DynamicLayer

        layers = DynamicCache(config=model.config).layers
    except Exception:  # an older transformers or an unusual config: run without prefix reuse
        return False
    return bool(layers) and all(type(layer) is DynamicLayer for layer in layers)


def cache_kwarg(model) -> str:
    """The forward/generate keyword for a KV cache: ``cache`` (transformers ≥ 5.2x) or ``past_key_values``."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"


def _continued_text(decode, last: list[int], toks: list[int]) -> str:
    """The text of ``toks`` as they follow a prompt ending in token ``last``: decoded together with it and cut
    after it, so a SentencePiece tokenizer keeps the leading space that decoding ``toks`` alone drops ("▁Egypt")."""
    if last:
        head, both = decode(last), decode(last + toks)
        if both.startswith(head):  # not so when the last prompt token is half a UTF-8 character
            return both[len(head):]
    return decode(toks)


def _cut(text: str, stops: Sequence[str]) -> str:
    for s in stops:
        j = text.find(s)
        if j >= 0:
            text = text[:j]
    return text
