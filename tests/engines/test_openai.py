"""The OpenAI-compatible engine against a local http.server that answers with the tiny HF model's log-probs."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch

from selfalign.engines import GenerationConfig, make_engine
from selfalign.engines.hf import HFEngine
from selfalign.engines.openai import OpenAIEngine
from selfalign.errors import ModelError, SelfAlignError

PROMPTS = ["Question: x\nThe proposed answer is:", "The quick brown fox jumps over the lazy dog. A B C D is", "B"]
PAIRS = [("Question: who?\nAnswer:", " Paris is the capital."), ("ctx ", "x y"), ("long context " * 5, "B C")]


class Fake:
    """What the server computes: token strings, character offsets and log-probs of a text under the tiny model."""

    def __init__(self, model, tok):
        self.model, self.tok, self.requests, self.fail = model, tok, [], []

    @torch.no_grad()
    def score(self, text):
        ids = self.tok(text)["input_ids"]
        lp = torch.log_softmax(self.model(input_ids=torch.tensor([ids])).logits[0].float(), -1)
        toks = [self.tok.decode([t]) for t in ids]
        offs = [len(self.tok.decode(ids[:j])) for j in range(len(ids))]
        return ids, lp, toks, offs

    def top(self, row, k):
        return {self.tok.decode([t]): float(row[t]) for t in row.topk(min(k, row.numel())).indices.tolist()}

    def completion(self, body, text):
        ids, lp, toks, offs = self.score(text)
        nxt = int(lp[-1].argmax())
        if body.get("max_tokens", 16) > 1:  # generation: canned samples, three tokens each
            return [{"text": f" sample {k}\n", "logprobs": {"tokens": ["a", "b", "c"]}} for k in range(body.get("n", 1))]
        lps = {"tokens": [self.tok.decode([nxt])], "token_logprobs": [float(lp[-1, nxt])],
               "top_logprobs": [self.top(lp[-1], body["logprobs"] or 1)], "text_offset": [len(text)]}
        if body.get("echo"):
            lps = {"tokens": toks + lps["tokens"],
                   "token_logprobs": [None] + [float(lp[j - 1, ids[j]]) for j in range(1, len(ids))] + lps["token_logprobs"],
                   "top_logprobs": [None] * len(ids) + lps["top_logprobs"], "text_offset": offs + [len(text)]}
        return [{"text": self.tok.decode([nxt]), "logprobs": lps}]


def handler(fake):
    class H(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            fake.requests.append((self.path, body, self.headers.get("Authorization")))
            if fake.fail:
                code = fake.fail.pop(0)
                self.send_response(code)
                self.end_headers()
                self.wfile.write(b'{"error": "bad request: unknown model"}')
                return
            if self.path == "/v1/completions":
                prompts = body["prompt"] if isinstance(body["prompt"], list) else [body["prompt"]]
                choices = [c for p in prompts for c in fake.completion(body, p)]
            elif self.path == "/v1/chat/completions":
                text = body["messages"][-1]["content"]
                if body["max_tokens"] == 1:
                    _, lp, _, _ = fake.score(text)
                    top = [{"token": t, "logprob": v} for t, v in fake.top(lp[-1], body["top_logprobs"]).items()]
                    choices = [{"message": {"content": "x"}, "logprobs": {"content": [{"top_logprobs": top}]}}]
                else:
                    choices = [{"message": {"content": f" reply {k} "}, "logprobs": {"content": [{}, {}]}}
                               for k in range(body["n"])]
            else:
                self.send_response(404)
                self.end_headers()
                return
            for i, c in enumerate(choices):
                c["index"] = i
            data = json.dumps({"choices": choices[::-1]}).encode()  # out of order: the engine sorts by index
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
    return H


@pytest.fixture
def server(tiny_engine):
    fake = Fake(tiny_engine.model, tiny_engine.tok)
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler(fake))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    fake.url = f"http://127.0.0.1:{srv.server_address[1]}/v1"
    yield fake
    srv.shutdown()
    srv.server_close()


def hf(tiny_engine):
    return HFEngine(tiny_engine.model, tiny_engine.tok, prefix_cache=False)


def test_choice_probs_match_hf_with_echo_for_tokens_below_top_k(tiny_engine, server, monkeypatch):
    monkeypatch.setenv("MY_KEY", "sekrit")
    e = make_engine(f"openai:{server.url}", model="tiny", api_key_env="MY_KEY", top_logprobs=1, batch_size=2)
    got = e.choice_probs(PROMPTS, ["A", "B"])
    for g, w in zip(got, hf(tiny_engine).choice_probs(PROMPTS, ["A", "B"])):
        assert g == pytest.approx(w, abs=1e-5)
    assert {r[2] for r in server.requests} == {"Bearer sekrit"} and "sekrit" not in json.dumps(e.info)
    # the requests run concurrently, so their order on the server is not the batches' order
    tops = [r[1] for r in server.requests if not r[1].get("echo")]
    assert {(b["model"], b["max_tokens"], b["temperature"], b["logprobs"]) for b in tops} == {("tiny", 1, 0, 1)}
    assert sorted(len(b["prompt"]) for b in tops) == [1, 2]  # three prompts in batches of two
    assert any(r[1].get("echo") for r in server.requests)  # the follow-up for choices outside the top-1


def test_chat_choice_probs_read_top_logprobs(tiny_engine, server):
    e = OpenAIEngine("tiny", base_url=server.url, chat=True, top_logprobs=400)  # the whole tiny vocabulary
    assert e.has_chat_template() and e.chat_prompt("hi") == "hi"
    got = e.choice_probs(PROMPTS[:2], ["A", "B"])
    for g, w in zip(got, hf(tiny_engine).choice_probs(PROMPTS[:2], ["A", "B"])):
        assert g == pytest.approx(w, abs=1e-5)
    assert server.requests[0][0] == "/v1/chat/completions" and server.requests[0][1]["top_logprobs"] == 400


def test_loglikelihood_by_echo_matches_hf(tiny_engine, server):
    e = OpenAIEngine("tiny", base_url=server.url)
    got = e.loglikelihood(PAIRS)
    for (gs, gn), (ws, wn) in zip(got, hf(tiny_engine).loglikelihood(PAIRS)):
        assert gn == wn and abs(gs - ws) < 1e-4
    assert all(r[1]["echo"] and r[1]["max_tokens"] == 1 for r in server.requests)


def test_generate_completions_and_chat(server, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", server.url)
    e = make_engine("openai", model="tiny", batch_size=2)
    cfg = GenerationConfig(n=2, temperature=0.8, top_p=0.9, top_k=10, max_new_tokens=20, stop=["\n\n"])
    out = e.generate(PROMPTS, cfg, seed=3)
    assert [[(g.text, g.n_tokens) for g in o] for o in out] == [[("sample 0", 3), ("sample 1", 3)]] * 3
    assert [g.raw for g in out[0]] == [" sample 0", " sample 1"]  # as it continued the prompt: the space kept
    body = server.requests[0][1]
    assert {k: body[k] for k in ("n", "temperature", "top_p", "top_k", "max_tokens", "stop")} == \
        {"n": 2, "temperature": 0.8, "top_p": 0.9, "top_k": 10, "max_tokens": 20, "stop": ["\n\n"]}
    assert "seed" in body and server.requests[0][2] is None  # no key in the environment: no header
    chat = OpenAIEngine("tiny", base_url=server.url, chat=True)
    out = chat.generate(["hello"], GenerationConfig(n=2, temperature=0.0, max_new_tokens=5), seed=0)
    assert [(g.text, g.n_tokens, g.raw) for g in out[0]] == [("reply 0", 2, None), ("reply 1", 2, None)]
    assert server.requests[-1][1]["messages"] == [{"role": "user", "content": "hello"}]
    assert "top_p" not in server.requests[-1][1] and server.requests[-1][1]["temperature"] == 0


def test_errors_retry_then_name_the_endpoint(server, monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(SelfAlignError, match="OPENAI_BASE_URL"):
        make_engine("openai", model="tiny")
    with pytest.raises(SelfAlignError, match="adapter"):
        make_engine(f"openai:{server.url}", model="tiny", adapter="some/dir")
    e = OpenAIEngine("tiny", base_url=server.url, backoff=0)
    server.fail = [503, 500]  # transient: retried
    assert len(e.loglikelihood(PAIRS[:1])) == 1
    server.fail = [400]
    with pytest.raises(ModelError, match=r"/v1/completions: HTTP 400: .*unknown model"):
        e.loglikelihood(PAIRS[:1])
    with pytest.raises(ModelError, match="unreachable"):
        OpenAIEngine("tiny", base_url="http://127.0.0.1:9/v1", retries=0).loglikelihood(PAIRS[:1])
