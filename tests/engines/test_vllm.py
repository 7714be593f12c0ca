"""The vLLM engine against a fake ``vllm`` module whose LLM computes logprobs with the tiny HF model."""
import json
import math
import sys
import types
from types import SimpleNamespace

import pytest
import torch

from selfalign.engines import GenerationConfig, make_engine
from selfalign.engines.hf import HFEngine
from selfalign.engines.vllm import VLLMEngine
from selfalign.errors import SelfAlignError

PROMPTS = ["Question: x\nThe proposed answer is:", "short", "The quick brown fox jumps over the lazy dog. A B C D is",
           "B"]
PAIRS = [("Question: who?\nAnswer:", " Paris is the capital."), ("ctx ", "x y"), ("long context " * 5, "B C")]


class SamplingParams:
    def __init__(self, n=1, temperature=1.0, top_p=1.0, top_k=-1, max_tokens=16, stop=None, seed=None,
                 logprobs=None, prompt_logprobs=None):
        self.__dict__.update(locals())
        del self.__dict__["self"]


class FakeLLM:
    """vLLM's offline LLM.generate, answered by a HF model: logprobs dicts as vLLM returns them."""

    def __init__(self, model, tok, kwargs=None):
        self.model, self.tok, self.kwargs, self.calls = model, tok, kwargs or {}, []

    def get_tokenizer(self):
        return self.tok

    @torch.no_grad()
    def generate(self, prompts, params, use_tqdm=True, lora_request=None):
        params = params if isinstance(params, list) else [params] * len(prompts)
        self.calls.append((prompts, params, lora_request))
        out = []
        for p, sp in zip(prompts, params):
            ids = p["prompt_token_ids"]
            lp = torch.log_softmax(self.model(input_ids=torch.tensor([ids])).logits[0].float(), -1)
            plp = None
            if sp.prompt_logprobs is not None:
                plp = [None] + [self._top(lp[j - 1], sp.prompt_logprobs, ids[j]) for j in range(1, len(ids))]
            outs = []
            for k in range(sp.n):
                if sp.max_tokens == 1:
                    t = int(lp[-1].argmax())
                    outs.append(SimpleNamespace(text=self.tok.decode([t]), token_ids=[t],
                                                logprobs=[self._top(lp[-1], sp.logprobs or 0, t)]))
                else:
                    outs.append(SimpleNamespace(text=f" sample {k} ", token_ids=[5, 6, self.tok.eos_token_id]))
            out.append(SimpleNamespace(outputs=outs, prompt_logprobs=plp))
        return out

    @staticmethod
    def _top(row, k, actual):
        ids = set(row.topk(k).indices.tolist()) | {actual}
        return {i: SimpleNamespace(logprob=float(row[i])) for i in ids}


@pytest.fixture
def fake_vllm(monkeypatch):
    lora = types.ModuleType("vllm.lora.request")
    lora.LoRARequest = lambda name, id_, path: SimpleNamespace(name=name, id=id_, path=path)
    mod = types.ModuleType("vllm")
    mod.SamplingParams = SamplingParams
    mod.built = []

    def LLM(**kw):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        llm = FakeLLM(AutoModelForCausalLM.from_pretrained(kw["model"]), AutoTokenizer.from_pretrained(kw["model"]), kw)
        mod.built.append(llm)
        return llm

    mod.LLM = LLM
    monkeypatch.setitem(sys.modules, "vllm", mod)
    monkeypatch.setitem(sys.modules, "vllm.lora", types.ModuleType("vllm.lora"))
    monkeypatch.setitem(sys.modules, "vllm.lora.request", lora)
    return mod


def test_choice_probs_match_hf_including_tokens_below_top_k(tiny_engine, fake_vllm):
    llm = FakeLLM(tiny_engine.model, tiny_engine.tok)
    e = VLLMEngine(llm, top_logprobs=1)  # top-1 only: most variants need the exact follow-up request
    got = e.choice_probs(PROMPTS, ["A", "B"])
    want = HFEngine(tiny_engine.model, tiny_engine.tok, prefix_cache=False).choice_probs(PROMPTS, ["A", "B"])
    for g, w in zip(got, want):
        assert g == pytest.approx(w, abs=1e-5)
    first, follow = llm.calls[0][1][0], llm.calls[1]
    assert (first.max_tokens, first.temperature, first.logprobs) == (1, 0.0, 1)
    assert follow[1][0].prompt_logprobs == 0
    variants = set(e.token_variants("A") + e.token_variants("B"))
    assert all(p["prompt_token_ids"][:-1] in [e.encode(t) for t in PROMPTS] for p in follow[0])
    assert all(p["prompt_token_ids"][-1] in variants for p in follow[0])


def test_loglikelihood_matches_hf(tiny_engine, fake_vllm):
    e = VLLMEngine(FakeLLM(tiny_engine.model, tiny_engine.tok))
    got = e.loglikelihood(PAIRS)
    want = HFEngine(tiny_engine.model, tiny_engine.tok, prefix_cache=False).loglikelihood(PAIRS)
    for (gs, gn), (ws, wn) in zip(got, want):
        assert gn == wn and abs(gs - ws) < 1e-4


def test_generate_requests_n_samples_with_per_prompt_seeds(tiny_engine, fake_vllm):
    llm = FakeLLM(tiny_engine.model, tiny_engine.tok)
    e = VLLMEngine(llm)
    cfg = GenerationConfig(n=3, temperature=0.7, top_p=0.9, top_k=0, max_new_tokens=12, stop=["\n"])
    out = e.generate(PROMPTS[:2], cfg, seed=1)
    assert [[g.text for g in o] for o in out] == [["sample 0", "sample 1", "sample 2"]] * 2
    assert all(g.n_tokens == 2 for o in out for g in o)  # the EOS token is not counted
    prompts, params, _ = llm.calls[-1]
    assert [p["prompt_token_ids"] for p in prompts] == [e.encode(t) for t in PROMPTS[:2]]
    sp = params[0]
    assert (sp.n, sp.temperature, sp.top_p, sp.top_k, sp.max_tokens, sp.stop) == (3, 0.7, 0.9, -1, 12, ["\n"])
    # a prompt's seed depends on the prompt and the run seed only, not on the batch it came in
    e.generate(PROMPTS[1:2], cfg, seed=1)
    assert llm.calls[-1][1][0].seed == params[1].seed != params[0].seed
    e.generate(PROMPTS[:1], GenerationConfig(n=1, temperature=0.0), seed=1)
    g = llm.calls[-1][1][0]
    assert (g.temperature, g.top_p, g.top_k) == (0.0, 1.0, -1)


def test_from_spec_builds_llm_and_lora_request(tiny_model_dir, tmp_path, fake_vllm):
    e = make_engine("vllm", model=tiny_model_dir, dtype="float32", batch_size=4)
    assert isinstance(e, VLLMEngine) and e.info["engine"] == "vllm" and e.lora_request is None
    kw = fake_vllm.built[-1].kwargs
    assert (kw["model"], kw["dtype"], kw["trust_remote_code"]) == (str(tiny_model_dir), "float32", False)
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(tiny_model_dir), "r": 32}))
    (adapter / "adapter_model.safetensors").write_bytes(b"")  # vLLM reads it; selfalign only checks it is safetensors
    e = make_engine("vllm", model=str(adapter))
    assert fake_vllm.built[-1].kwargs["enable_lora"] and fake_vllm.built[-1].kwargs["max_lora_rank"] == 32
    assert e.lora_request.path == str(adapter.resolve())
    e.loglikelihood(PAIRS[:1])
    assert fake_vllm.built[-1].calls[-1][2] is e.lora_request
    with pytest.raises(SelfAlignError, match="CUDA_VISIBLE_DEVICES"):
        make_engine("vllm", model=tiny_model_dir, device="cpu")


def test_missing_vllm_is_a_clear_error(tiny_model_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm raises ImportError
    with pytest.raises(SelfAlignError, match="pip install"):
        make_engine("vllm", model=tiny_model_dir)
    with pytest.raises(SelfAlignError, match="available: hf, vllm, openai"):
        make_engine("nope", model=tiny_model_dir)


def test_choice_probs_are_probabilities(tiny_engine, fake_vllm):
    got = VLLMEngine(FakeLLM(tiny_engine.model, tiny_engine.tok), top_logprobs=5).choice_probs(PROMPTS, ["A", "B"])
    assert all(0 < p < 1 and not math.isnan(p) for row in got for p in row)


def test_tensor_parallel_size_reaches_vllm_within_the_gpu_count(tiny_model_dir, fake_vllm, monkeypatch):
    from selfalign.stages.sample import SampleConfig

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    cfg = SampleConfig(model=tiny_model_dir, engine="vllm", tensor_parallel_size=2, output="x.jsonl")
    assert cfg.engine_kwargs()["tensor_parallel_size"] == 2
    make_engine(cfg.engine, **cfg.engine_kwargs())
    assert fake_vllm.built[-1].kwargs["tensor_parallel_size"] == 2
    with pytest.raises(SelfAlignError, match="--tensor-parallel-size 4 needs 4 GPUs, but 2 are visible"):
        make_engine("vllm", model=tiny_model_dir, tensor_parallel_size=4)
