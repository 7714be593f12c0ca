"""engines/decode.py: rows leave the batch at the step they end (end-of-sequence token, stop string, token limit),
with the answers of transformers' generate (the plain path), greedy and sampled, at any batch size."""
import pytest

from selfalign.engines import GenerationConfig
from selfalign.engines.decode import plain_generation
from selfalign.engines.hf import HFEngine

PROMPTS = ["What is the capital of France?", "Q", "The quick brown fox jumps over the lazy dog. " * 2,
           "Who wrote Hamlet?", "A B C", "Answer Question True False", "Interpret"]


def _gens(out):
    return [[(g.text, g.n_tokens, g.raw) for g in x] for x in out]


def _engine(tiny_engine, bs, cached):
    return HFEngine(tiny_engine.model, tiny_engine.tok, batch_size=bs, prefix_cache=cached)


@pytest.fixture
def ends_early(tiny_engine, monkeypatch):
    """End-of-sequence tokens the tiny model emits at different steps of different rows: the tokens greedy decoding
    writes second for three prompts."""
    out = _engine(tiny_engine, 8, False).generate(PROMPTS[:3], GenerationConfig(n=1, temperature=0.0,
                                                                                max_new_tokens=2), seed=0)
    ids = {tiny_engine.encode(PROMPTS[i] + out[i][0].raw)[-1] for i in range(3)}
    monkeypatch.setattr(tiny_engine.model.generation_config, "eos_token_id", sorted(ids))
    return sorted(ids)


@pytest.mark.parametrize("cfg", [GenerationConfig(n=1, temperature=0.0, max_new_tokens=12, stop=["e"]),
                                 GenerationConfig(n=3, temperature=1.0, top_p=0.9, top_k=10, max_new_tokens=12,
                                                  stop=["e", "\n"])], ids=["greedy", "sampled"])
def test_finished_rows_leave_the_batch_with_the_answers_of_generate(tiny_engine, ends_early, cfg):
    want = _gens(_engine(tiny_engine, 3, False).generate(PROMPTS, cfg, seed=5))
    lengths = {g[1] for x in want for g in x}
    assert len(lengths) >= 2, "the rows should end at different steps"
    for bs in (1, 3, 8):
        e = _engine(tiny_engine, bs, True)
        rows = []
        orig = e.model.forward

        def spy(*a, **kw):
            rows.append(kw["input_ids"].shape)
            return orig(*a, **kw)

        e.model.forward = spy
        try:
            assert _gens(e.generate(PROMPTS, cfg, seed=5)) == want, f"batch size {bs}"
        finally:
            del e.model.forward
        steps = [r for r, t in rows if t == 1]  # the decode steps' rows
        assert sum(steps) == sum(g[1] for x in want for g in x)  # a row runs one step per token it writes
        if bs == 8:  # one batch: its rows only ever shrink, from every sample of every prompt
            assert steps[0] == len(PROMPTS) * cfg.n and steps == sorted(steps, reverse=True)


def test_a_generation_config_that_changes_scores_runs_generate(tiny_engine, monkeypatch):
    """A repetition penalty in the model's generation config is generate's to apply: that model takes the plain path,
    and its greedy answers are generate's."""
    assert plain_generation(tiny_engine.model)
    cfg = GenerationConfig(n=1, temperature=0.0, max_new_tokens=10)
    without = _gens(_engine(tiny_engine, 3, True).generate(PROMPTS, cfg, seed=0))
    monkeypatch.setattr(tiny_engine.model.generation_config, "repetition_penalty", 5.0)
    assert not plain_generation(tiny_engine.model)
    got = _gens(_engine(tiny_engine, 3, True).generate(PROMPTS, cfg, seed=0))
    assert got == _gens(_engine(tiny_engine, 3, False).generate(PROMPTS, cfg, seed=0)) and got != without
