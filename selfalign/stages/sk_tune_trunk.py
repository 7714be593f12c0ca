"""The answer-token margins SK-Tuning trains and validates, on two paths that give the same numbers.

A row is a Self-Eval prompt; its margin is logsumexp(logits of the "A" ids) − logsumexp(logits of the "B" ids)
at the last position, the ids being the letters as they follow that prompt in context (``tokens.choice_ids``,
the definition every P(True) reader uses), signed so that chosen − rejected is positive for a right judge.

- ``PlainRows``: every batch runs the whole model on the token ids (any model; full fine-tuning too).
- ``TrunkRows``: LoRA on the top ``k`` layers only. The frozen lower layers' hidden states are computed once per row
  and kept (bf16 when the model is), so an epoch runs only the top layers; the token prefix that all rows share (the
  few-shot demos) is kept once, and each batch runs it through the top layers once (its KV cache, with gradients,
  is reused by every row of the batch). ``k`` = the number of layers caches the embeddings.

``encode_all`` keeps what it computed before training (the trunk states and the reference margins) in
``<output>/encode_cache.safetensors`` until the run finishes, so a killed run resumes without computing them again
(for 3k rows of Qwen2.5-0.5B on one CPU thread they took 18 min of a 58-min run); the file carries a hash of the
model, the dtype, the top-layer count and every row, and any other file is recomputed and replaced.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Optional

import torch

from selfalign import prompts as P
from selfalign.engines.prefix import common_prefix
from selfalign.training.trunk import n_layers, only_layers, top_layer_ids  # (sk_tune reads n_layers here)


def lse_margin(logits: torch.Tensor, a_ids: list[list[int]], b_ids: list[list[int]]) -> torch.Tensor:
    """logsumexp over each row's A ids minus logsumexp over its B ids (``logits``: [rows, vocab], float)."""
    return torch.stack([torch.logsumexp(logits[r, a], 0) - torch.logsumexp(logits[r, b], 0)
                        for r, (a, b) in enumerate(zip(a_ids, b_ids))])


class _Rows:
    def __init__(self, seqs: list[list[int]], a_ids, b_ids, sign: list[float]):
        self.seqs, self.a, self.b = seqs, a_ids, b_ids
        self.sign = torch.tensor(sign)

    def __len__(self):
        return len(self.seqs)

    def margins(self, model, idx=None) -> torch.Tensor:
        """Signed margins (chosen − rejected) of rows ``idx`` (default all), in that order, with grad."""
        idx = list(range(len(self))) if idx is None else list(idx)
        return self.ab_margins(model, idx) * self.sign[idx].to(self.device_of(model))

    @staticmethod
    def device_of(model):
        return next(model.parameters()).device


class PlainRows(_Rows):
    """Whole-model forward passes on left-padded token ids (the engine's batching)."""

    def __init__(self, seqs, a_ids, b_ids, sign, engine):
        super().__init__(seqs, a_ids, b_ids, sign)
        self.engine = engine

    def ab_margins(self, model, idx: list[int]) -> torch.Tensor:
        out: list = [None] * len(idx)
        for pos_idx, ids, mask, pos in self.engine.batches([self.seqs[i] for i in idx]):
            logits = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=False,
                           logits_to_keep=1).logits[:, -1].float()
            m = lse_margin(logits, [self.a[idx[k]] for k in pos_idx], [self.b[idx[k]] for k in pos_idx])
            for r, k in enumerate(pos_idx):
                out[k] = m[r]
        return torch.stack(out)


class TrunkRows(_Rows):
    """Cached lower-layer hidden states; the top ``k`` layers run per batch (see the module docstring)."""

    def __init__(self, seqs, a_ids, b_ids, sign, model, k: int, batch_size: int, min_prefix: int = 16,
                 progress=None, states=None):
        super().__init__(seqs, a_ids, b_ids, sign)
        top_layer_ids(model, k)  # the range check, shared with align
        self.k, self.total, self.batch_size = k, n_layers(model), batch_size
        lcp = min((common_prefix(seqs[0], s) for s in seqs[1:]), default=0)
        self.p = lcp if lcp >= min_prefix and all(len(s) > lcp for s in seqs) else 0  # the shared prefix length
        self.prefix_h: Optional[torch.Tensor] = None
        if states is not None:  # from encode_all's cache: (per-row states, shared-prefix states or None)
            self.h, self.prefix_h = states
        else:
            self.h = self._trunk_states(model, progress)

    @torch.no_grad()
    def _trunk_states(self, model, progress=None) -> list[torch.Tensor]:
        """Per row, the hidden states at the input of layer total − k for the tokens after the shared prefix."""
        dev = self.device_of(model)
        layer = self.total - self.k
        was = model.training
        model.eval()

        def states(ids_list, start):
            width = max(len(s) for s in ids_list)
            ids = torch.zeros((len(ids_list), width), dtype=torch.long)
            mask = torch.zeros_like(ids)
            for r, s in enumerate(ids_list):
                ids[r, width - len(s):] = torch.tensor(s)
                mask[r, width - len(s):] = 1
            pos = (mask.cumsum(-1) - 1).clamp(min=0)
            if layer == 0:
                hs = model.get_input_embeddings()(ids.to(dev))
            else:  # layers [0, layer] run: hidden_states[layer] is the (un-normalised) input of layer ``layer``
                with only_layers(model, 0, layer + 1):
                    hs = model(input_ids=ids.to(dev), attention_mask=mask.to(dev), position_ids=pos.to(dev),
                               output_hidden_states=True, use_cache=False, logits_to_keep=1).hidden_states[layer]
            return [hs[r, width - len(s) + start:].detach().cpu() for r, s in enumerate(ids_list)]

        if self.p:
            self.prefix_h = states([self.seqs[0][:self.p]], 0)[0]
        # a repeated prompt (``mc-data --balance`` copies) is encoded once; its rows share the states
        same: dict = {}
        for i, s in enumerate(self.seqs):
            same.setdefault(tuple(s), []).append(i)
        out: list = [None] * len(self.seqs)
        order = sorted((rows[0] for rows in same.values()), key=lambda i: -len(self.seqs[i]))
        for s in range(0, len(order), self.batch_size):
            idx = order[s:s + self.batch_size]
            done = 0
            for i, h in zip(idx, states([self.seqs[i] for i in idx], self.p)):
                for j in same[tuple(self.seqs[i])]:
                    out[j] = h
                done += len(same[tuple(self.seqs[i])])
            if progress:
                progress(done)
        model.train(was)
        return out

    def ab_margins(self, model, idx: list[int]) -> torch.Tensor:
        dev = self.device_of(model)
        out: list = [None] * len(idx)
        order = sorted(range(len(idx)), key=lambda k: -len(self.h[idx[k]]))
        with only_layers(model, self.total - self.k, self.total):
            for s in range(0, len(order), self.batch_size):
                part = order[s:s + self.batch_size]
                logits = self._top_forward(model, [self.h[idx[k]] for k in part], dev)
                m = lse_margin(logits, [self.a[idx[k]] for k in part], [self.b[idx[k]] for k in part])
                for r, k in enumerate(part):
                    out[k] = m[r]
        return torch.stack(out)

    def _top_forward(self, model, hs: list[torch.Tensor], dev) -> torch.Tensor:
        """Last-position logits of rows [shared prefix | left pad | own tokens] through the top layers."""
        b, w, p = len(hs), max(len(h) for h in hs), self.p
        x = hs[0].new_zeros((b, w, hs[0].shape[-1]))
        mask = torch.zeros((b, p + w), dtype=torch.long)
        pos = torch.zeros((b, w), dtype=torch.long)
        mask[:, :p] = 1
        for r, h in enumerate(hs):
            x[r, w - len(h):] = h
            mask[r, p + w - len(h):] = 1
            pos[r, w - len(h):] = torch.arange(p, p + len(h))
        kw = {"use_cache": False}
        if p:
            from transformers.cache_utils import DynamicCache

            from selfalign.engines.hf import cache_kwarg

            cache, key = DynamicCache(), cache_kwarg(model)
            model(inputs_embeds=self.prefix_h[None].to(dev), position_ids=torch.arange(p)[None].to(dev),
                  use_cache=True, logits_to_keep=1, **{key: cache})
            cache.batch_repeat_interleave(b)  # one prefix pass per batch; its KV (with grad) serves every row
            kw = {key: cache, "use_cache": True}
        out = model(inputs_embeds=x.to(dev), attention_mask=mask.to(dev), position_ids=pos.to(dev),
                    logits_to_keep=1, **kw)
        return out.logits[:, -1].float()


@torch.no_grad()
def reference_margins(rows, model, progress=None, chunk: int = 256) -> torch.Tensor:
    """The margins of the model before any update, in chunks (each chunk reported to ``progress``)."""
    out = []
    for s in range(0, len(rows), chunk):
        idx = list(range(s, min(s + chunk, len(rows))))
        out.append(rows.margins(model, idx).detach().cpu())
        if progress:
            progress(len(idx))
    return torch.cat(out)


class Subset:
    """Rows ``idx`` of an encoded set, as an encoded set (for the training-set AUROC probe)."""

    def __init__(self, rows, idx):
        self.rows, self.idx = rows, list(idx)
        self.sign = rows.sign[self.idx]

    def margins(self, model):
        return self.rows.margins(model, self.idx)


def encode_rows(rows: list[dict], engine, model, cfg, progress=None, states=None):
    """The rows as margin computers: token ids, in-context A/B ids, the chosen side's sign; ``TrunkRows`` with
    ``cfg.top_layers``, else ``PlainRows``."""
    prompts = [r["prompt"] for r in rows]
    seqs = [engine.encode(t) for t in prompts]
    a = [engine.choice_ids(t, P.TRUE_LABEL) for t in prompts]
    b = [engine.choice_ids(t, P.FALSE_LABEL) for t in prompts]
    sign = [1.0 if r["chosen"] == P.TRUE_LABEL else -1.0 for r in rows]
    if cfg.top_layers is None:
        return PlainRows(seqs, a, b, sign, engine)
    return TrunkRows(seqs, a, b, sign, model, cfg.top_layers, cfg.batch_size, progress=progress, states=states)


CACHE = "encode_cache.safetensors"


def _cache_key(model_info: dict, cfg, sets: dict) -> str:
    h = hashlib.sha256(json.dumps([model_info, cfg.adapter, cfg.dtype, cfg.top_layers], sort_keys=True,
                                  default=str).encode())
    for name, rows in sets.items():
        h.update(name.encode() + json.dumps([[r["prompt"], r["chosen"]] for r in rows or []]).encode())
    return h.hexdigest()


def _load_cache(path: Path, key: str) -> Optional[dict]:
    from safetensors import safe_open

    if not path.is_file():
        return None
    try:
        with safe_open(str(path), "pt") as f:
            if (f.metadata() or {}).get("key") != key:
                return None
            return {k: f.get_tensor(k) for k in f.keys()}
    except Exception:  # a partial or foreign file: recompute
        return None


def _states(t: dict, name: str):
    if f"{name}.h" not in t:
        return None
    h = list(torch.split(t[f"{name}.h"], t[f"{name}.len"].tolist()))
    return h, t.get(f"{name}.prefix")


def encode_all(train: list, valid: Optional[list], engine, model, cfg, model_info: dict, cache_dir: Optional[Path],
               progress=None):
    """(train rows, valid rows or None, reference margins {"train", "valid"}), from ``cache_dir / CACHE`` when it
    holds these rows of this model (see the module docstring), else computed and written there."""
    from safetensors.torch import save_file

    sets = {"train": train, "valid": valid}
    key = _cache_key(model_info, cfg, sets)
    path = cache_dir / CACHE if cache_dir else None
    t = _load_cache(path, key) if path else None
    enc = {n: encode_rows(rows, engine, model, cfg, progress, states=_states(t, n) if t else None) if rows else None
           for n, rows in sets.items()}
    was = model.training
    model.eval()
    ref = {n: (t[f"{n}.ref"] if t else reference_margins(r, model, progress)) if r is not None else None
           for n, r in enc.items()}
    model.train(was)
    if path and t is None:
        out = {}
        for n, r in enc.items():
            if r is None:
                continue
            out[f"{n}.ref"] = ref[n].contiguous()
            if isinstance(r, TrunkRows):
                out[f"{n}.h"] = torch.cat(r.h).contiguous()
                out[f"{n}.len"] = torch.tensor([len(x) for x in r.h])
                if r.prefix_h is not None:
                    out[f"{n}.prefix"] = r.prefix_h.contiguous()
        tmp = path.with_name(path.name + ".tmp")
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file(out, str(tmp), metadata={"key": key})
        os.replace(tmp, path)
    return enc["train"], enc["valid"], ref
