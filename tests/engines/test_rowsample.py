"""Per-row sampling: a prompt's samples depend on (seed, prompt, sample index) only, never on its batch."""
import json

import pytest
import torch

from conftest import n_lines
from selfalign.cli import main
from selfalign.engines import GenerationConfig
from selfalign.engines.hf import HFEngine

PROMPTS = ["What is the capital of France?", "Q", "The quick brown fox jumps over the lazy dog. " * 3,
           "Who wrote Hamlet?", "A B C", "Answer Question True False", "What is two plus two?", "Interpret"]
CFG = GenerationConfig(n=3, temperature=1.0, top_p=0.9, top_k=10, max_new_tokens=10)


def _texts(gens):
    return [[(g.text, g.n_tokens) for g in x] for x in gens]


@pytest.mark.parametrize("prefix_cache", [True, False])
def test_samples_of_a_prompt_identical_alone_and_in_a_batch_of_8(tiny_engine, prefix_cache):
    alone = {p: _texts(HFEngine(tiny_engine.model, tiny_engine.tok, 1, prefix_cache).generate([p], CFG, seed=3))[0]
             for p in PROMPTS}
    for bs in (1, 3, 8):
        batched = _texts(HFEngine(tiny_engine.model, tiny_engine.tok, bs, prefix_cache).generate(PROMPTS, CFG, seed=3))
        assert batched == [alone[p] for p in PROMPTS], f"batch size {bs}"
    # other batch mates, other order
    mixed = _texts(tiny_engine.generate(PROMPTS[::-1] + ["extra prompt"], CFG, seed=3))
    assert mixed[:len(PROMPTS)] == [alone[p] for p in PROMPTS[::-1]]
    # the samples of one prompt differ from each other, and another seed draws others
    assert len({t for t, _ in alone[PROMPTS[0]]}) > 1
    assert _texts(tiny_engine.generate(PROMPTS[:1], CFG, seed=4))[0] != alone[PROMPTS[0]]


def test_sample_k_does_not_depend_on_n(tiny_engine):
    four = _texts(tiny_engine.generate(PROMPTS[:2], GenerationConfig(n=4, max_new_tokens=8), seed=1))
    two = _texts(tiny_engine.generate(PROMPTS[:2], GenerationConfig(n=2, max_new_tokens=8), seed=1))
    assert [x[:2] for x in four] == two


def test_row_seed_is_stable_and_distinct():
    from selfalign.engines.rowsample import row_seed

    assert row_seed(0, "a", 0) == row_seed(0, "a", 0)
    assert len({row_seed(0, "a", 0), row_seed(1, "a", 0), row_seed(0, "b", 0), row_seed(0, "a", 1)}) == 4
    assert 0 <= row_seed(123, "x" * 1000, 7) < 2 ** 63


def test_row_sampler_draws_from_the_warped_distribution():
    """Token frequencies over many rows match softmax(logits / T) restricted by top-k and top-p, computed by hand."""
    from selfalign.engines.rowsample import RowSampler

    logits = torch.tensor([2.0, 1.5, 1.0, 0.5, 0.0, -0.5, -1.0, -3.0])
    t, k, p = 0.7, 5, 0.9
    top = torch.softmax(logits[:k] / t, -1)  # logits are sorted: top-k keeps the first 5, renormalised
    n_top = int((torch.cumsum(top, 0) < p).sum()) + 1  # top-p: the smallest prefix whose mass reaches p
    keep = torch.arange(8) < n_top
    want = torch.zeros(8)
    want[:n_top] = top[:n_top] / top[:n_top].sum()
    rows = 20000
    sampler = RowSampler(range(rows), t, k, p)
    tok = sampler.draw(torch.zeros((rows, 1), dtype=torch.long), logits.repeat(rows, 1))[:, 0]
    freq = torch.bincount(tok, minlength=8).double() / rows
    assert torch.all(freq[~keep] == 0)
    assert torch.allclose(freq, want.double(), atol=0.015), (freq, want)
    scores = sampler(torch.zeros((rows, 1), dtype=torch.long), logits.repeat(rows, 1))
    assert torch.all(torch.isfinite(scores).sum(-1) == 1)


def test_sample_resumed_equals_uninterrupted(tiny_model_dir, tmp_path, cli):
    prompts = tmp_path / "p.jsonl"
    prompts.write_text("".join(json.dumps({"id": i, "question": f"Question number {i}?"}) + "\n" for i in range(24)))
    args = ["--model", tiny_model_dir, "--input", prompts, "--n", 2, "--max-new-tokens", 16, "--device", "cpu",
            "--seed", 5]
    full, part = tmp_path / "full.jsonl", tmp_path / "part.jsonl"
    assert main(["sample", *map(str, args), "--output", str(full), "--batch-size", "4"]) == 0
    # killed part-way at another batch size, then resumed at a third one
    cli.kill_when(cli.cmd("sample", *args, "--output", part, "--batch-size", 1), lambda: n_lines(part) >= 7)
    assert 7 <= n_lines(part) < 48, "the run should have been killed part-way"
    lines = part.read_text().splitlines(keepends=True)  # cut the last row in half, as a kill mid-write would
    part.write_text("".join(lines[:-1]) + lines[-1][:len(lines[-1]) // 2])
    assert cli.run(cli.cmd("sample", *args, "--output", part, "--batch-size", 3)).returncode == 0
    assert sorted(part.read_text().splitlines()) == sorted(full.read_text().splitlines())


@pytest.mark.parametrize("t,k,p", [(1.0, 10, 0.9), (0.7, 3, 1.0), (1.3, 50, 0.5), (1.0, 1, 0.9)])
def test_top_k_fast_path_draws_exactly_the_tokens_of_the_full_vocabulary_path(t, k, p):
    """The fast path warps only the top-k candidates; over 64 rows x 20 steps it picks the same token as the full
    path (every warper over the whole vocabulary), with float32 and with bf16-rounded logits (ties at the k-th
    score), and a tie longer than the slack falls back to the full path."""
    from selfalign.engines.rowsample import RowSampler

    g = torch.Generator().manual_seed(0)
    seeds = list(range(64))
    fast, full = RowSampler(seeds, t, k, p), RowSampler(seeds, t, k, p, fast=False)
    ids = torch.zeros(64, 1, dtype=torch.long)
    for _ in range(20):
        scores = torch.randn(64, 500, generator=g) * 3
        assert torch.equal(fast.draw(ids, scores), full.draw(ids, scores))
    for _ in range(20):  # bf16 logits: ties at the k-th score are common, kept by both paths
        scores = (torch.randn(64, 500, generator=g) * 3).bfloat16().float()
        assert torch.equal(fast.draw(ids, scores), full.draw(ids, scores))
    tied = torch.zeros(2, 50)  # every score tied: top-k keeps all 50, so must the fast path
    tied_fast, tied_full = RowSampler([1, 2], 1.0, k, 1.0), RowSampler([1, 2], 1.0, k, 1.0, fast=False)
    for _ in range(5):
        assert torch.equal(tied_fast.draw(ids[:2], tied), tied_full.draw(ids[:2], tied))


@pytest.mark.parametrize("t,k,p", [(1.0, 10, 0.9), (0.7, 3, 1.0), (1.3, 50, 0.5), (1.0, 1, 0.9)])
def test_top_k_then_top_p_on_the_k_kept_logits_is_the_full_vocabulary_distribution(t, k, p):
    """Each token's sampling probability on the fast path (top-k, then top-p and softmax on the kept logits only)
    equals the full path's (temperature, top-k, top-p over the whole vocabulary) to 1e-6, tokens left out having
    probability 0 there; on float32 and bf16-rounded logits."""
    from selfalign.engines.rowsample import RowSampler

    g = torch.Generator().manual_seed(1)
    ids = torch.zeros(64, 1, dtype=torch.long)
    fast, full = RowSampler(range(64), t, k, p), RowSampler(range(64), t, k, p, fast=False)
    for scores in (torch.randn(64, 3000, generator=g) * 3, (torch.randn(64, 3000, generator=g) * 3).bfloat16().float()):
        probs, cand = fast.distribution(ids, scores)
        assert cand is not None and cand.shape[1] < 3000  # the fast path ran
        want, none = full.distribution(ids, scores)
        assert none is None
        got = torch.zeros_like(want).scatter_(1, cand, probs)
        assert torch.allclose(got, want, atol=1e-6, rtol=0)
