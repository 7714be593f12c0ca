"""The vLLM engine (optional: ``pip install vllm``, a CUDA machine): the engine operations on vLLM's offline ``LLM``.

- generate: one request per prompt with ``SamplingParams(n=N)`` (vLLM prefills a prompt once for its N samples);
- choice_probs: the next token's top ``logprobs``; a choice token outside that top-k is scored exactly by a
  follow-up request on prompt + token with ``prompt_logprobs`` (vLLM's prefix cache makes it cheap);
- loglikelihood: ``prompt_logprobs`` of the joint token ids (lm-evaluation-harness's split, as in the HF engine).

Prompts go in as token ids (``{"prompt_token_ids": ...}``) so that tokenization equals the HF engine's. vLLM's
logprobs are the model's raw log-softmax (its default ``logprobs_mode``), before temperature or top-k/top-p.
"""
from __future__ import annotations

import math
import zlib
from pathlib import Path
from typing import Sequence

from selfalign.engines import tokens
from selfalign.engines.base import GenerationConfig, Generation
from selfalign.errors import ModelError, SelfAlignError
from selfalign.store.io import read_json


def import_vllm():
    try:
        import vllm
    except ImportError:
        raise SelfAlignError("engine 'vllm' needs the vllm package (pip install 'selfalign[vllm]' or pip install vllm, "
                             "on a machine with a supported GPU); use --engine hf otherwise") from None
    return vllm


class VLLMEngine(tokens.TextMixin):
    name = "vllm"

    def __init__(self, llm, tokenizer=None, info: dict | None = None, lora_request=None, top_logprobs: int = 20):
        self.llm = llm
        self.tok = tokenizer if tokenizer is not None else llm.get_tokenizer()
        self.info = dict(info or {"model": "?", "engine": "vllm"})
        self.lora_request = lora_request
        self.top_logprobs = top_logprobs  # vLLM caps it at the engine's max_logprobs (20 by default)
        self._variant_cache: dict[str, list[int]] = {}

    @classmethod
    def from_spec(cls, model: str, adapter: str | None = None, batch_size: int = 8, device: str = "auto",
                  dtype: str = "auto", trust_remote_code: bool = False, allow_pickle: bool = False, **llm_kwargs):
        """Build ``vllm.LLM`` from a selfalign model spec; ``batch_size`` is ignored (vLLM schedules its own)."""
        from selfalign import models

        vllm = import_vllm()
        if device not in ("auto", "cuda"):
            raise SelfAlignError(f"engine 'vllm' runs where the vllm build puts it; choose the GPU with "
                                 f"CUDA_VISIBLE_DEVICES and leave --device auto (got {device!r})")
        r = models.resolve(model, adapter)
        path = str(models.convert_gguf(r.path, r.gguf_file)) if r.kind == "gguf" else r.path
        if len(r.adapters) > 1:
            raise ModelError("engine 'vllm' applies one adapter; merge the others into the base first")
        kw = dict(model=path, dtype=dtype, trust_remote_code=trust_remote_code, seed=0, **llm_kwargs)
        lora = None
        if r.adapters:
            models.check_adapter_weights(r.adapters[0], allow_pickle)
            acfg = read_json(Path(r.adapters[0]) / "adapter_config.json", "adapter config")
            rank = acfg.get("r", 16) if isinstance(acfg, dict) else 16
            kw.update(enable_lora=True, max_lora_rank=max(int(rank), 16))
            from vllm.lora.request import LoRARequest

            lora = LoRARequest("selfalign-adapter", 1, r.adapters[0])
        return cls(vllm.LLM(**kw), info={"model": model, "engine": "vllm", **r.describe()}, lora_request=lora)

    # --- text helpers ---------------------------------------------------------------------------------

    def _run(self, seqs: Sequence[list[int]], params):
        kw = {"lora_request": self.lora_request} if self.lora_request is not None else {}
        return self.llm.generate([{"prompt_token_ids": list(s)} for s in seqs], params, use_tqdm=False, **kw)

    # --- the three operations -------------------------------------------------------------------------
    def generate(self, prompts: Sequence[str], cfg: GenerationConfig, seed: int) -> list[list[Generation]]:
        """Per-prompt seeds: each prompt's request carries a seed of (seed, prompt), and vLLM draws its N samples
        from that request's generator, so a prompt's samples do not depend on the other prompts of the call (unlike
        the HF engine, sample k is not separately seeded: the N samples of a request share one stream)."""
        SamplingParams = import_vllm().SamplingParams
        sample = cfg.temperature > 0
        params = [SamplingParams(n=cfg.n, temperature=cfg.temperature if sample else 0.0,
                                 top_p=cfg.top_p if sample else 1.0, top_k=(cfg.top_k or -1) if sample else -1,
                                 max_tokens=cfg.max_new_tokens, stop=list(cfg.stop) or None,
                                 seed=zlib.crc32(f"{seed}|{p}".encode()))  # a prompt's samples depend on it only
                  for p in prompts]
        eos = {self.tok.eos_token_id, self.tok.pad_token_id}
        out = []
        for res in self._run([self.encode(p) for p in prompts], params):
            gens = []
            for o in res.outputs:
                ids = list(o.token_ids)
                gens.append(Generation(o.text.strip(), len(ids) - (1 if ids and ids[-1] in eos else 0),
                                       o.text.rstrip()))  # vLLM detokenises in context: the leading space kept
            out.append(gens)
        return out

    def choice_probs(self, prompts: Sequence[str], choices: Sequence[str]) -> list[list[float]]:
        SamplingParams = import_vllm().SamplingParams
        per_prompt = [[self.choice_ids(p, c) for c in choices] for p in prompts]
        seqs = [self.encode(p) for p in prompts]
        res = self._run(seqs, SamplingParams(max_tokens=1, temperature=0.0, logprobs=self.top_logprobs))
        found = [{t: lp.logprob for t, lp in r.outputs[0].logprobs[0].items()} for r in res]
        missing = [(i, v) for i in range(len(seqs)) for vs in per_prompt[i] for v in vs if v not in found[i]]
        if missing:  # below the top-k: score prompt + token exactly
            extra = self._run([seqs[i] + [v] for i, v in missing],
                              SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0))
            for (i, v), r in zip(missing, extra):
                found[i][v] = r.prompt_logprobs[-1][v].logprob
        return [[sum(math.exp(found[i][v]) for v in vs) for vs in per_prompt[i]] for i in range(len(seqs))]

    def loglikelihood(self, pairs: Sequence[tuple[str, str]]) -> list[tuple[float, int]]:
        SamplingParams = import_vllm().SamplingParams
        seqs, n_cont = tokens.continuation_split(self.encode, pairs)
        for s, n in zip(seqs, n_cont):
            if n >= len(s):
                raise ValueError("empty context: the first continuation token has nothing to condition on")
        res = self._run(seqs, SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0))
        out = []
        for s, n, r in zip(seqs, n_cont, res):
            plp = r.prompt_logprobs  # position j: {token id: Logprob} including s[j]; position 0 is None
            out.append((float(sum(plp[j][s[j]].logprob for j in range(len(s) - n, len(s)))), n))
        return out
