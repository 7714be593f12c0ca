"""The OpenAI engine's HTTP client against a local fake server: bounded concurrency, retries on injected
429 / 500, and an API key that never follows a redirect to another host."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from selfalign.engines.base import GenerationConfig
from selfalign.engines.openai import OpenAIEngine
from selfalign.errors import ModelError


class Server:
    """Answers /v1/completions with one choice per prompt ("echo: <prompt>"); ``script`` injects statuses first."""

    def __init__(self, delay: float = 0.0):
        self.requests, self.script, self.delay = [], [], delay
        self.lock, self.in_flight, self.max_in_flight = threading.Lock(), 0, 0
        self.redirect_to = None
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with outer.lock:
                    outer.requests.append((self.path, body, self.headers.get("Authorization")))
                    outer.in_flight += 1
                    outer.max_in_flight = max(outer.max_in_flight, outer.in_flight)
                    step = outer.script.pop(0) if outer.script else None
                try:
                    time.sleep(outer.delay)
                    if step == "redirect" or (outer.redirect_to and self.path == "/v1/completions"):
                        self.send_response(307)
                        self.send_header("Location", outer.redirect_to or "/v1/moved/completions")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    if isinstance(step, int):
                        self.send_response(step)
                        if step == 429:
                            self.send_header("Retry-After", "0")
                        self.send_header("Content-Length", "2")
                        self.end_headers()
                        self.wfile.write(b"{}")
                        return
                    prompts = body["prompt"]
                    data = json.dumps({"choices": [{"index": i, "text": f"echo: {p}", "logprobs": {"tokens": ["x"]}}
                                                   for i, p in enumerate(prompts)]}).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                finally:
                    with outer.lock:
                        outer.in_flight -= 1

        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.srv.server_address[1]}/v1"

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


@pytest.fixture
def servers():
    made = []

    def make(**kw):
        made.append(Server(**kw))
        return made[-1]

    yield make
    for s in made:
        s.close()


GEN = GenerationConfig(n=1, temperature=0.0, max_new_tokens=4)


def test_concurrency_is_bounded_and_order_kept(servers):
    s = servers(delay=0.15)
    e = OpenAIEngine("m", base_url=s.url, batch_size=1, concurrency=3)
    prompts = [f"p{i}" for i in range(9)]
    out = e.generate(prompts, GEN, seed=0)
    assert [o[0].text for o in out] == [f"echo: {p}" for p in prompts]  # input order, whatever the finish order
    assert len(s.requests) == 9 and 1 < s.max_in_flight <= 3
    one = servers(delay=0.05)
    OpenAIEngine("m", base_url=one.url, batch_size=1, concurrency=1).generate(prompts[:4], GEN, seed=0)
    assert one.max_in_flight == 1


def test_injected_429_and_500_are_retried(servers):
    s = servers()
    s.script = [429, 500, 503]
    e = OpenAIEngine("m", base_url=s.url, batch_size=2, backoff=0, retries=3, concurrency=1)
    out = e.generate(["a", "b", "c"], GEN, seed=0)
    assert [o[0].text for o in out] == ["echo: a", "echo: b", "echo: c"]
    assert len(s.requests) == 5  # 3 failures + 2 batches
    s.script = [500, 500]
    with pytest.raises(ModelError, match=r"/v1/completions: HTTP 500"):
        OpenAIEngine("m", base_url=s.url, backoff=0, retries=1).generate(["a"], GEN, seed=0)
    s.script = [400]
    with pytest.raises(ModelError, match="HTTP 400"):
        OpenAIEngine("m", base_url=s.url, backoff=0, retries=3).generate(["a"], GEN, seed=0)
    assert s.script == []  # a 400 is not retried


def test_api_key_never_follows_a_redirect_to_another_host(servers, monkeypatch):
    monkeypatch.setenv("MY_KEY", "sekrit")
    good, other = servers(), servers()
    good.redirect_to = other.url + "/completions"  # another port: another origin
    e = OpenAIEngine("m", base_url=good.url, api_key_env="MY_KEY", backoff=0)
    with pytest.raises(ModelError, match="redirects to another host"):
        e.generate(["a"], GEN, seed=0)
    assert good.requests[0][2] == "Bearer sekrit" and other.requests == []  # nothing reached the other host
    same = servers()
    same.script = ["redirect"]  # a redirect on the same server is followed, with the key, body kept (307)
    out = OpenAIEngine("m", base_url=same.url, api_key_env="MY_KEY", backoff=0).generate(["a"], GEN, seed=0)
    assert out[0][0].text == "echo: a"
    assert [(p, a) for p, _, a in same.requests] == [("/v1/completions", "Bearer sekrit"),
                                                     ("/v1/moved/completions", "Bearer sekrit")]
    assert same.requests[1][1]["prompt"] == ["a"]


def test_the_openai_judge_keeps_its_key_from_another_host_and_retries(servers, monkeypatch):
    """The TruthfulQA ``openai`` judge asks through this client: the same origin rule and the same retries."""
    from selfalign.evals.judges.yesno import OpenAIJudge

    monkeypatch.setenv("MY_KEY", "sekrit")
    good, other = servers(), servers()
    good.redirect_to = other.url + "/completions"
    with pytest.raises(ModelError, match="redirects to another host"):
        OpenAIJudge(good.url, "judge-m", api_key_env="MY_KEY", backoff=0).judge("Q?", "A.", [], [])
    assert good.requests[0][2] == "Bearer sekrit" and other.requests == []
    flaky = servers()
    flaky.script = [503, 429]  # retried, then this server's answer, which carries no log-probs
    with pytest.raises(ModelError, match="without top_logprobs"):
        OpenAIJudge(flaky.url, "judge-m", backoff=0).judge("Q?", "A.", [], [])
    assert len(flaky.requests) == 3
