"""--data-parallel-size: copies of the engine in processes of their own (engines/pool.py). Two CPU copies of the tiny
model answer what one engine answers: the same samples (per-prompt seeds), choice probabilities and likelihoods."""
from __future__ import annotations

import threading
from multiprocessing import Pipe

import pytest

from selfalign.engines import GenerationConfig, make_engine
from selfalign.engines.pool import PoolEngine, _serve, split
from selfalign.errors import SelfAlignError

PROMPTS = ["Question: x\nThe proposed answer is:", "short", "The quick brown fox jumps over the lazy dog. A B C D is",
           "B", "Question: what?"]


def test_split_covers_every_row_in_order():
    for n in range(0, 12):
        for k in range(1, 5):
            parts = split(n, k)
            assert [i for a, b in parts for i in range(a, b)] == list(range(n))
            assert max(b - a for a, b in parts) - min(b - a for a, b in parts) <= 1


def test_two_cpu_copies_answer_what_one_engine_answers(tiny_model_dir, tiny_engine, tmp_path):
    from selfalign.stages.sample import SampleConfig, run_sample

    cfg = SampleConfig(model=tiny_model_dir, device="cpu", batch_size=3, data_parallel_size=2, n=2,
                       max_new_tokens=8, input="builtin", limit=5, output=str(tmp_path / "pool.jsonl"))
    pool = make_engine(cfg.engine, **cfg.engine_kwargs())
    try:
        assert isinstance(pool, PoolEngine) and pool.info["data_parallel_size"] == 2
        assert pool.info["path"] == tiny_engine.info["path"]
        gen = GenerationConfig(n=2, temperature=1.0, top_p=0.9, top_k=10, max_new_tokens=8)
        texts = lambda out: [[g.text for g in o] for o in out]  # noqa: E731
        assert texts(pool.generate(PROMPTS, gen, seed=3)) == texts(tiny_engine.generate(PROMPTS, gen, seed=3))
        for got, want in zip(pool.choice_probs(PROMPTS, ["A", "B"]), tiny_engine.choice_probs(PROMPTS, ["A", "B"])):
            assert got == pytest.approx(want, abs=1e-6)
        pairs = [("ctx a", " b c"), ("Question: x", " y"), ("long context " * 3, "B C")]
        for (gs, gn), (ws, wn) in zip(pool.loglikelihood(pairs), tiny_engine.loglikelihood(pairs)):
            assert gn == wn and gs == pytest.approx(ws, abs=1e-5)
        assert pool.has_chat_template() and pool.chat_prompt("hi") == tiny_engine.chat_prompt("hi")
        assert pool.encode("hi there") == tiny_engine.encode("hi there")
        # the stage through the pool writes the rows one engine writes
        run_sample(cfg, engine=pool)
        single = SampleConfig(**{**cfg.__dict__, "data_parallel_size": 1, "output": str(tmp_path / "one.jsonl")})
        run_sample(single, engine=tiny_engine)
        rows = lambda p: [(r["id"], r["sample_idx"], r["response"]) for r in map(__import__("json").loads,  # noqa
                                                                                  p.read_text().splitlines())]
        assert rows(tmp_path / "pool.jsonl") == rows(tmp_path / "one.jsonl") and len(rows(tmp_path / "one.jsonl")) == 10
    finally:
        pool.close()
    assert [p.exitcode for p in pool.procs] == [0, 0]


def _copy_in_a_thread(load_kwargs):
    """A pool of one copy served by a thread of this process (the protocol, without starting an interpreter)."""
    parent, child = Pipe()
    t = threading.Thread(target=_serve, args=(child, "hf", load_kwargs, {}, None), daemon=True)
    t.start()
    pool = object.__new__(PoolEngine)
    pool.conns, pool.procs, pool.gpus, pool._stopper = [parent], [t], [None], lambda: None
    t.exitcode = None
    return pool


def test_a_copy_that_fails_is_one_error_naming_it(tiny_model_dir):
    pool = _copy_in_a_thread({"model": "no/such-model-here", "device": "cpu"})
    with pytest.raises(SelfAlignError, match=r"^data-parallel copy 0: cannot load model 'no/such-model-here'"):
        pool._answer(0)
    pool = _copy_in_a_thread({"model": tiny_model_dir, "device": "cpu"})
    assert pool._answer(0)["path"] == tiny_model_dir
    with pytest.raises(RuntimeError, match="data-parallel copy 0: ValueError: empty context"):
        pool.loglikelihood([("", "x")])
    pool.conns[0].send(None)
