"""An OpenAI-compatible endpoint (vLLM's server, llama.cpp, TGI, OpenAI) as an engine, over urllib only.

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

import json
import math
import os
import time
import urllib.error
import urllib.request
import zlib
from typing import Sequence

from selfalign.engines.base import GenerationConfig, Generation
from selfalign.errors import ModelError, SelfAlignError

RETRY_CODES = {429, 500, 502, 503, 504}


class OpenAIEngine:
    name = "openai"

    def __init__(self, model: str, base_url: str | None = None, api_key_env: str = "OPENAI_API_KEY",
                 chat: bool = False, batch_size: int = 8, top_logprobs: int = 5, timeout: float = 120.0,
                 retries: int = 3, backoff: float = 1.0):
        base_url = base_url or os.environ.get("OPENAI_BASE_URL")
        if not base_url:
            raise SelfAlignError("engine 'openai' needs a server: --engine openai:http://HOST:PORT/v1 or set "
                                 "OPENAI_BASE_URL")
        self.url, self.model, self.api_key_env, self.chat = base_url.rstrip("/"), model, api_key_env, chat
        self.batch_size, self.top_logprobs, self.timeout = batch_size, top_logprobs, timeout
        self.retries, self.backoff = retries, backoff
        self.info = {"model": model, "engine": "openai", "base_url": self.url, "chat": chat}

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
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env or "")
        if key:
            headers["Authorization"] = f"Bearer {key}"
        data = json.dumps({"model": self.model, **body}).encode()
        for attempt in range(self.retries + 1):
            req = urllib.request.Request(self.url + path, data=data, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    return json.loads(resp.read().decode("utf-8"))
            except urllib.error.HTTPError as e:
                detail = e.read().decode("utf-8", "replace")[:300]
                if e.code not in RETRY_CODES or attempt == self.retries:
                    raise ModelError(f"{self.url}{path}: HTTP {e.code}: {detail}") from None
            except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
                if attempt == self.retries:
                    raise ModelError(f"{self.url}{path} unreachable: {getattr(e, 'reason', e)}") from None
            except json.JSONDecodeError:
                raise ModelError(f"{self.url}{path}: the response is not JSON") from None
            time.sleep(self.backoff * 2 ** attempt)
        raise AssertionError("unreachable")

    def _completions(self, prompts: list[str], **body) -> list[dict]:
        """Choices of one /completions request per batch of prompts, ordered by their index."""
        out = []
        for s in range(0, len(prompts), self.batch_size):
            part = prompts[s:s + self.batch_size]
            choices = self._post("/completions", {"prompt": part, **body}).get("choices") or []
            if len(choices) != len(part) * body.get("n", 1):
                raise ModelError(f"{self.url}/completions: {len(choices)} choices for {len(part)} prompts")
            out += sorted(choices, key=lambda c: c.get("index", 0))
        return out

    # --- the three operations -------------------------------------------------------------------------
    def choice_probs(self, prompts: Sequence[str], choices: Sequence[str]) -> list[list[float]]:
        variants = [[c, " " + c] for c in choices]
        if self.chat:
            found = []
            for p in prompts:
                r = self._post("/chat/completions", {"messages": [{"role": "user", "content": p}], "max_tokens": 1,
                                                     "temperature": 0, "logprobs": True,
                                                     "top_logprobs": self.top_logprobs})
                top = _get(r, "chat top_logprobs", "choices", 0, "logprobs", "content", 0, "top_logprobs")
                found.append({t["token"]: t["logprob"] for t in top})
        else:
            res = self._completions(list(prompts), max_tokens=1, temperature=0, logprobs=self.top_logprobs)
            found = [dict(_get(c, "top_logprobs", "logprobs", "top_logprobs", 0)) for c in res]
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
        out = []
        if self.chat:
            for p in prompts:
                r = self._post("/chat/completions", {"messages": [{"role": "user", "content": p}], "logprobs": True,
                                                     "seed": zlib.crc32(f"{seed}|{p}".encode()), **body})
                chs = sorted(r.get("choices") or [], key=lambda c: c.get("index", 0))
                out.append([Generation((c["message"].get("content") or "").strip(),
                                       len(((c.get("logprobs") or {}).get("content")) or [])) for c in chs])
            return out
        for s in range(0, len(prompts), self.batch_size):
            part = list(prompts[s:s + self.batch_size])
            res = self._completions(part, logprobs=0, seed=zlib.crc32(f"{seed}".encode()), **body)
            for k in range(len(part)):
                out.append([Generation(c["text"].strip(), len((c.get("logprobs") or {}).get("tokens") or []))
                            for c in res[k * cfg.n:(k + 1) * cfg.n]])
        return out


def _get(obj, what: str, *path):
    try:
        for p in path:
            obj = obj[p]
        return obj
    except (KeyError, IndexError, TypeError):
        raise ModelError(f"OpenAI-compatible response without {what} (does the server support logprobs?)") from None
