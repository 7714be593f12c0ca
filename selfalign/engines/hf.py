"""The transformers engine: batched, left-padded, length-sorted forward passes on any causal LM."""
from __future__ import annotations

import zlib
from typing import Sequence

import torch

from selfalign.engines.base import GenerationConfig, Generation


class HFEngine:
    name = "hf"

    def __init__(self, model, tokenizer, batch_size: int = 8):
        self.model, self.tok, self.batch_size = model, tokenizer, batch_size
        self.tok.padding_side = "left"
        if self.tok.pad_token is None:
            self.tok.pad_token = self.tok.eos_token
        self.device = next(model.parameters()).device
        self.info = dict(getattr(model, "selfalign_spec", {"model": getattr(model.config, "_name_or_path", "?")}))
        self._variant_cache: dict[str, list[int]] = {}

    @classmethod
    def from_spec(cls, model: str, adapter: str | None = None, batch_size: int = 8, device: str = "auto",
                  dtype: str = "auto", trust_remote_code: bool = False):
        from selfalign import models

        m, tok = models.load(model, adapter=adapter, device=device, dtype=dtype, trust_remote_code=trust_remote_code)
        return cls(m, tok, batch_size=batch_size)

    # --- text helpers ---------------------------------------------------------------------------------
    def has_chat_template(self) -> bool:
        return bool(getattr(self.tok, "chat_template", None))

    def chat_prompt(self, user_message: str) -> str:
        return self.tok.apply_chat_template([{"role": "user", "content": user_message}], tokenize=False,
                                            add_generation_prompt=True)

    def encode(self, text: str) -> list[int]:
        # a chat-templated string already carries its special tokens
        bos = self.tok.bos_token
        special = not (bos and text.startswith(bos))
        return self.tok(text, add_special_tokens=special)["input_ids"]

    def token_variants(self, choice: str) -> list[int]:
        """Single-token ids of a choice with and without a leading space (" A" and "A")."""
        if choice not in self._variant_cache:
            ids = []
            for s in (choice, " " + choice):
                enc = self.tok.encode(s, add_special_tokens=False)
                if len(enc) == 1 and enc[0] not in ids:
                    ids.append(enc[0])
            if not ids:
                raise ValueError(f"choice {choice!r} is not a single token for this tokenizer")
            self._variant_cache[choice] = ids
        return self._variant_cache[choice]

    # --- batching -------------------------------------------------------------------------------------
    def batches(self, seqs: Sequence[list[int]]):
        """Yield (indices, padded ids, mask, position ids), longest first so that padding stays small."""
        order = sorted(range(len(seqs)), key=lambda i: -len(seqs[i]))
        pad = self.tok.pad_token_id
        for s in range(0, len(order), self.batch_size):
            idx = order[s:s + self.batch_size]
            width = max(len(seqs[i]) for i in idx)
            ids = torch.full((len(idx), width), pad, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for r, i in enumerate(idx):
                ids[r, width - len(seqs[i]):] = torch.tensor(seqs[i])
                mask[r, width - len(seqs[i]):] = 1
            pos = (mask.cumsum(-1) - 1).clamp(min=0)
            yield idx, ids.to(self.device), mask.to(self.device), pos.to(self.device)

    @torch.inference_mode()
    def _last_logits(self, seqs, keep: int):
        """Log-softmax of the last ``keep`` positions of each sequence, in input order."""
        out = [None] * len(seqs)
        for idx, ids, mask, pos in self.batches(seqs):
            logits = self.model(input_ids=ids, attention_mask=mask, position_ids=pos, logits_to_keep=keep).logits
            logp = torch.log_softmax(logits.float(), dim=-1)
            for r, i in enumerate(idx):
                out[i] = logp[r]
        return out

    # --- the three operations -------------------------------------------------------------------------
    def choice_probs(self, prompts: Sequence[str], choices: Sequence[str]) -> list[list[float]]:
        variants = [self.token_variants(c) for c in choices]
        logps = self._last_logits([self.encode(p) for p in prompts], keep=1)
        return [[float(lp[-1, v].exp().sum()) for v in variants] for lp in logps]

    def loglikelihood(self, pairs: Sequence[tuple[str, str]]) -> list[tuple[float, int]]:
        seqs, n_cont = [], []
        for ctx, cont in pairs:
            # lm-evaluation-harness's rule: trailing spaces of the context belong to the continuation, the
            # pair is tokenized jointly, and the continuation is what lies past the context's own tokens
            n_space = len(ctx) - len(ctx.rstrip(" "))
            if n_space:
                ctx, cont = ctx[:-n_space], ctx[-n_space:] + cont
            full = self.encode(ctx + cont)
            n = len(full) - len(self.encode(ctx))
            if n <= 0:
                raise ValueError(f"empty continuation for context ending {ctx[-30:]!r}")
            seqs.append(full)
            n_cont.append(n)
        out = []
        for i, lp in enumerate(self._last_logits(seqs, keep=max(n_cont) + 1)):
            n = n_cont[i]
            targets = torch.tensor(seqs[i][-n:], device=lp.device)
            scores = lp[-n - 1:-1].gather(-1, targets[:, None]).squeeze(-1)
            out.append((float(scores.sum()), n))
        return out

    @torch.inference_mode()
    def generate(self, prompts: Sequence[str], cfg: GenerationConfig, seed: int) -> list[list[Generation]]:
        results: list[list[Generation]] = [None] * len(prompts)  # type: ignore[list-item]
        seqs = [self.encode(p) for p in prompts]
        eos = {self.tok.eos_token_id, self.tok.pad_token_id}
        for idx, ids, mask, _ in self.batches(seqs):
            # the seed of a batch depends on its prompts only, so a resumed run reproduces a batch it redoes
            torch.manual_seed(zlib.crc32(f"{seed}|{'|'.join(prompts[i] for i in idx)}".encode()))
            sample = cfg.temperature > 0
            kw = dict(do_sample=sample, max_new_tokens=cfg.max_new_tokens, num_return_sequences=cfg.n,
                      pad_token_id=self.tok.pad_token_id)
            if sample:
                kw.update(temperature=cfg.temperature, top_p=cfg.top_p, top_k=cfg.top_k or None)
            else:
                kw.update(temperature=None, top_p=None, top_k=None)
            if cfg.stop:
                kw.update(stop_strings=list(cfg.stop), tokenizer=self.tok)
            out = self.model.generate(input_ids=ids, attention_mask=mask, **kw)
            new = out[:, ids.shape[1]:].tolist()
            for r, i in enumerate(idx):
                gens = []
                for toks in new[r * cfg.n:(r + 1) * cfg.n]:
                    n_tok = next((j for j, t in enumerate(toks) if t in eos), len(toks))
                    text = _cut(self.tok.decode(toks[:n_tok], skip_special_tokens=True), cfg.stop)
                    gens.append(Generation(text.strip(), n_tok))
                results[i] = gens
        return results


def _cut(text: str, stops: Sequence[str]) -> str:
    for s in stops:
        j = text.find(s)
        if j >= 0:
            text = text[:j]
    return text
