"""An OpenAI-compatible endpoint (vLLM's server, llama.cpp, TGI, OpenAI) as an engine, over ``httpx``
(``engines/http.py``: pooled, at most ``concurrency`` requests in flight, retries on 429 / 5xx).

Which servers support what: generation works everywhere. The log-likelihood path (``loglikelihood``, and
``choice_probs`` for a choice outside the top-k) needs ``/completions`` with ``echo=True`` and ``logprobs``: vLLM's
OpenAI server (and servers that copy its API) support it; api.openai.com does not (it rejects echo with
logprobs), so TruthfulQA MC and likelihood scoring need a vLLM-style server, or the hf / vllm engines.

- choice_probs: ``/completions`` with ``max_tokens=1`` and ``logprobs=k`` (top tokens by their text); a choice token
  outside the top k is scored by echoing prompt + token. In chat mode ``/chat/completions`` with ``top_logprobs``
  (no echo there: a choice outside the top k counts as 0).
- loglikelihood: ``/completions`` with ``echo=True``: the log-probs of the prompt's own tokens; the continuation is
  every token that ends past the context (character offsets), after lm-evaluation-harness's trailing-space rule.
- generate: ``/completions`` (``n`` samples per prompt, ``top_k`` sent as vLLM and most local servers accept it;
  set top_k 0 for api.openai.com), or ``/chat/completions`` with each prompt as the user message in chat mode.

The API key is read from the environment variable ``api_key_env`` at each request and never stored or logged.
"""
from __future__ import annotations

import math
import os
import zlib
from typing import Sequence

from selfalign.engines.base import GenerationConfig, Generation
from selfalign.engines.http import RETRY_CODES, Client  # noqa: F401 - RETRY_CODES re-exported
from selfalign.errors import ModelError, SelfAlignError


class OpenAIEngine:
    name = "openai"

    def __init__(self, model: str, base_url: str | None = None, api_key_env: str = "OPENAI_API_KEY",
                 chat: bool = False, batch_size: int = 8, top_logprobs: int = 5, timeout: float = 120.0,
                 retries: int = 3, backoff: float = 1.0, concurrency: int = 8):
        base_url = base_url or os.environ.get("OPENAI_BASE_URL")
        if not base_url:
            raise SelfAlignError("engine 'openai' needs a server: --engine openai:http://HOST:PORT/v1 or set "
                                 "OPENAI_BASE_URL")
        self.url, self.model, self.api_key_env, self.chat = base_url.rstrip("/"), model, api_key_env, chat
        self.batch_size, self.top_logprobs, self.timeout = batch_size, top_logprobs, timeout
        self.retries, self.backoff = retries, backoff
        self.client = Client(self.url, api_key_env, timeout, retries, backoff, concurrency)
        self.info = {"model": model, "engine": "openai", "base_url": self.url, "chat": chat,
                     "concurrency": concurrency}

    @classmethod
    def from_spec(cls, model: str, adapter: str | None = None, batch_size: int = 8, device: str = "auto",
                  dtype: str = "auto", trust_remote_code: bool = False, allow_pickle: bool = False, **kwargs):
        """``device``/``dtype``/``trust_remote_code``/``allow_pickle`` are the server's business and ignored here."""
        if adapter:
            raise SelfAlignError("engine 'openai': serve the adapter on the server and name it with --model")
        return cls(model, batch_size=batch_size, **kwargs)

    # --- text helpers: the server applies no template on /completions; chat mode sends user messages -----
    def has_chat_template(self) -> bool:
        return self.chat

    def chat_prompt(self, user_message: str) -> str:
        return user_message  # in chat mode every prompt is sent as the user message

    def _post(self, path: str, body: dict) -> dict:
        return self.client.post(path, {"model": self.model, **body})

    def _completions(self, prompts: list[str], body=None, **fields) -> list[dict]:
        """Choices of one /completions request per batch of prompts, ordered by their index; ``body`` may be a
        function of the batch (a per-batch seed)."""
        body = body if body is not None else fields
        def one(part):
            extra = body(part) if callable(body) else body
            choices = self._post("/completions", {"prompt": part, **extra}).get("choices") or []
            if len(choices) != len(part) * extra.get("n", 1):
                raise ModelError(f"{self.url}/completions: {len(choices)} choices for {len(part)} prompts")
            return sorted(choices, key=lambda c: c.get("index", 0))

        parts = [prompts[s:s + self.batch_size] for s in range(0, len(prompts), self.batch_size)]
        return [c for res in self.client.map(one, parts) for c in res]  # batches in flight at once, in order

    # --- the three operations -------------------------------------------------------------------------
    def next_token_logprobs(self, prompts: Sequence[str]) -> list[dict[str, float]]:
        """{token text: log-prob} of the ``top_logprobs`` most likely next tokens after each prompt
        (``/completions``, ``max_tokens=1``): what a yes/no judge reads, and ``choice_probs``' first look."""
        res = self._completions(list(prompts), max_tokens=1, temperature=0, logprobs=self.top_logprobs)
        return [dict(_get(c, "top_logprobs", "logprobs", "top_logprobs", 0)) for c in res]

    def choice_probs(self, prompts: Sequence[str], choices: Sequence[str]) -> list[list[float]]:
        variants = [[c, " " + c] for c in choices]
        if self.chat:
            def one(p):
                r = self._post("/chat/completions", {"messages": [{"role": "user", "content": p}], "max_tokens": 1,
                                                     "temperature": 0, "logprobs": True,
                                                     "top_logprobs": self.top_logprobs})
                top = _get(r, "chat top_logprobs", "choices", 0, "logprobs", "content", 0, "top_logprobs")
                return {t["token"]: t["logprob"] for t in top}

            found = self.client.map(one, list(prompts))
        else:
            found = self.next_token_logprobs(prompts)
            missing = [(i, v) for i in range(len(prompts)) for vs in variants for v in vs if v not in found[i]]
            if missing:  # below the top-k: echo prompt + token and read that token's log-prob
                echoed = self._completions([prompts[i] + v for i, v in missing], max_tokens=1, temperature=0,
                                           logprobs=0, echo=True)
                for (i, v), c in zip(missing, echoed):
                    lp = _get(c, "echo logprobs", "logprobs")
                    at = [j for j, off in enumerate(lp["text_offset"]) if off == len(prompts[i])]
                    # a token merged across the boundary cannot be isolated: the variant counts as 0
                    if at and lp["tokens"][at[0]] == v and lp["token_logprobs"][at[0]] is not None:
                        found[i][v] = lp["token_logprobs"][at[0]]
        return [[sum(math.exp(f[v]) for v in vs if v in f) for vs in variants] for f in found]

    def loglikelihood(self, pairs: Sequence[tuple[str, str]]) -> list[tuple[float, int]]:
        texts, ctx_len = [], []
        for ctx, cont in pairs:
            stripped = ctx.rstrip(" ")  # trailing spaces of the context belong to the continuation
            texts.append(ctx + cont)
            ctx_len.append(len(stripped))
        res = self._completions(texts, max_tokens=1, temperature=0, logprobs=0, echo=True)
        out = []
        for text, c_len, c in zip(texts, ctx_len, res):
            lp = _get(c, "echo logprobs", "logprobs")
            offs = list(lp["text_offset"])
            ends = offs[1:] + [len(text)]
            idx = [j for j, (o, e) in enumerate(zip(offs, ends)) if e > c_len and o < len(text)]
            vals = [lp["token_logprobs"][j] for j in idx]
            if not idx or any(v is None for v in vals):
                raise ModelError(f"{self.url}/completions: no log-probs for the continuation of {text[-40:]!r}")
            out.append((float(sum(vals)), len(idx)))
        return out

    def generate(self, prompts: Sequence[str], cfg: GenerationConfig, seed: int) -> list[list[Generation]]:
        """Per-prompt seeds, not per sample: chat mode sends one request per prompt seeded by (seed, prompt);
        /completions sends one seed per request of several prompts, derived from ``seed`` alone, so a server that
        seeds every prompt of a request alike (vLLM) gives a prompt the same samples whatever its batch mates.
        How, and whether, a server honours ``seed`` is the server's business."""
        sample = cfg.temperature > 0
        body = {"n": cfg.n, "max_tokens": cfg.max_new_tokens, "temperature": cfg.temperature if sample else 0}
        if sample:
            body["top_p"] = cfg.top_p
            if cfg.top_k:
                body["top_k"] = cfg.top_k
        if cfg.stop:
            body["stop"] = list(cfg.stop)
        if self.chat:
            def one(p):
                r = self._post("/chat/completions", {"messages": [{"role": "user", "content": p}], "logprobs": True,
                                                     "seed": zlib.crc32(f"{seed}|{p}".encode()), **body})
                chs = sorted(r.get("choices") or [], key=lambda c: c.get("index", 0))
                return [Generation((c["message"].get("content") or "").strip(),
                                   len(((c.get("logprobs") or {}).get("content")) or [])) for c in chs]

            return self.client.map(one, list(prompts))
        res = self._completions(list(prompts), lambda part: {
            "logprobs": 0, "seed": zlib.crc32(f"{seed}".encode()), **body})
        return [[Generation(c["text"].strip(), len((c.get("logprobs") or {}).get("tokens") or []), c["text"].rstrip())
                 for c in res[k * cfg.n:(k + 1) * cfg.n]] for k in range(len(prompts))]


def _get(obj, what: str, *path):
    try:
        for p in path:
            obj = obj[p]
        return obj
    except (KeyError, IndexError, TypeError):
        raise ModelError(f"OpenAI-compatible response without {what} (does the server support logprobs?)") from None
