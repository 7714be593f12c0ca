"""Prefix reuse in the HF engine gives the numbers of the plain path (and of an unpadded forward), for every batch size."""
import math

import pytest
import torch

from selfalign.engines import GenerationConfig
from selfalign.engines import prefix as pfx
from selfalign.engines.hf import HFEngine

SHOT = ("Question: What is the capital of France?\nProposed Answer: Paris.\nIs the proposed answer:\n A. True\n"
        " B. False\nThe proposed answer is: A\n\n")
Q1, Q2 = "Question: Who wrote the quick brown fox?\nProposed Answer:", "Question: Which dog is lazy?\nProposed Answer:"
PROMPTS = [  # shared few-shot prefix, questions shared by several answers, unshared rows, mixed lengths, duplicates
    SHOT + Q1 + " Paris.\nThe proposed answer is:", SHOT + Q1 + " The fox.\nThe proposed answer is:",
    SHOT + Q1 + " A dog, a brown dog, a lazy dog.\nThe proposed answer is:", SHOT + Q2 + " True\nThe proposed answer is:",
    SHOT + Q2 + " B", "short", "B", SHOT * 2 + Q2, "Question: x\nThe proposed answer is:",
    SHOT + Q1 + " Paris.\nThe proposed answer is:",
]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny forwards on a shared 2-core machine run ~20x faster on one thread (no OpenMP oversubscription)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def engine(tiny_engine, bs, cached):
    return HFEngine(tiny_engine.model, tiny_engine.tok, batch_size=bs, prefix_cache=cached, min_prefix=2)


def direct_logp(e, ids):
    with torch.no_grad():
        return torch.log_softmax(e.model(input_ids=torch.tensor([ids])).logits[0].float(), -1)


def count_tokens(e):
    """Wrap the engine's forward to count the tokens it actually runs."""
    seen = []
    orig = e._forward

    def spy(chains, toks, *a, **kw):
        seen.extend(len(t) for t in toks)
        return orig(chains, toks, *a, **kw)

    e._forward = spy
    return seen


def test_plan_nests_fewshot_prefix_and_shared_question():
    shot, qa, qb = [1, 2, 3, 4, 5, 6], [7, 8, 9, 10], [11, 12, 13]
    seqs = [shot + qa + [20, 21], shot + qb + [22], shot + qa + [23], [1, 2, 40], shot + qb + [24, 25]]
    nodes, leaf = pfx.plan(seqs, [len(s) - 1 for s in seqs], min_len=3)
    spans = sorted((n.start, n.end, n.depth) for n in nodes)
    # the 6-token shot is one root node; each question (4 and 3 tokens) a child node on top of it
    assert spans == [(0, 6, 0), (6, 9, 1), (6, 10, 1)]
    root = next(j for j, n in enumerate(nodes) if n.depth == 0)
    assert leaf[3] == -1  # shares only 2 tokens (< min_len): runs in full
    for i in (0, 2, 1, 4):
        assert nodes[leaf[i]].parent == root and seqs[i][:nodes[leaf[i]].end] == seqs[nodes[leaf[i]].rep][:nodes[leaf[i]].end]
    assert nodes[leaf[0]].end == 10 and nodes[leaf[1]].end == 9
    # a cached prefix never covers a position whose logits the row needs
    nodes, leaf = pfx.plan([[1, 2, 3, 4], [1, 2, 3, 4]], [2, 2], min_len=1)
    assert [(n.start, n.end) for n in nodes] == [(0, 2)]


@pytest.mark.parametrize("bs", range(1, len(PROMPTS) + 1))
def test_choice_probs_cached_equals_uncached(tiny_engine, bs):
    cached, plain = engine(tiny_engine, bs, True), engine(tiny_engine, bs, False)
    assert cached.prefix_cache
    got, want = cached.choice_probs(PROMPTS, ["A", "B"]), plain.choice_probs(PROMPTS, ["A", "B"])
    for g, w in zip(got, want):
        assert g == pytest.approx(w, abs=1e-4)


def test_choice_probs_cached_equals_unpadded_forward(tiny_engine):
    e = engine(tiny_engine, 4, True)
    ran = count_tokens(e)
    got = e.choice_probs(PROMPTS, ["A", "B"])
    assert sum(ran) < sum(len(e.encode(p)) for p in PROMPTS) / 2  # the shared prefixes ran once
    ids_a, ids_b = e.token_variants("A"), e.token_variants("B")
    for text, (pa, pb) in zip(PROMPTS, got):
        lp = direct_logp(e, e.encode(text))[-1]
        assert pa == pytest.approx(sum(math.exp(lp[i]) for i in ids_a), abs=1e-5)
        assert pb == pytest.approx(sum(math.exp(lp[i]) for i in ids_b), abs=1e-5)


PAIRS = [(p, " A B") for p in PROMPTS] + [(SHOT, "Question: x"), (SHOT + Q1, " Paris is the capital."),
                                          (SHOT + Q1, " Paris"), ("ctx ", "x y z"), (SHOT + Q2 + " ", "True")]


@pytest.mark.parametrize("bs", [1, 2, 3, 5, 8, len(PAIRS)])
def test_loglikelihood_cached_equals_uncached(tiny_engine, bs):
    got = engine(tiny_engine, bs, True).loglikelihood(PAIRS)
    want = engine(tiny_engine, bs, False).loglikelihood(PAIRS)
    for (gs, gn), (ws, wn) in zip(got, want):
        assert gn == wn and abs(gs - ws) < 1e-4


def test_loglikelihood_cached_equals_unpadded_sum(tiny_engine):
    e = engine(tiny_engine, 3, True)
    for (ctx, cont), (s, n) in zip(PAIRS, e.loglikelihood(PAIRS)):
        stripped = ctx.rstrip(" ")
        full, c = e.encode(ctx + cont), e.encode(stripped)
        assert n == len(full) - len(c)
        lp = direct_logp(e, full)
        assert abs(s - sum(lp[t - 1, full[t]].item() for t in range(len(c), len(full)))) < 1e-4


def test_unshared_rows_run_as_before(tiny_engine):
    e = engine(tiny_engine, 2, True)
    ran = count_tokens(e)
    texts = ["short", "B", "The quick brown fox"]
    e.choice_probs(texts, ["A", "B"])
    assert sorted(ran) == sorted(len(e.encode(t)) for t in texts)


def test_generate_prefills_once_with_the_same_samples(tiny_engine):
    prompts = [SHOT + Q1, "Q", "The quick brown fox", SHOT + Q2]
    for cfg in (GenerationConfig(n=3, temperature=1.0, top_p=0.9, top_k=10, max_new_tokens=6),
                GenerationConfig(n=2, temperature=0.0, max_new_tokens=6)):
        a = engine(tiny_engine, 3, True).generate(prompts, cfg, seed=7)
        b = engine(tiny_engine, 3, False).generate(prompts, cfg, seed=7)
        assert [[(g.text, g.n_tokens) for g in x] for x in a] == [[(g.text, g.n_tokens) for g in x] for x in b]
        assert all(len(x) == cfg.n for x in a)


def _gens(out):
    return [[(g.text, g.n_tokens, g.raw) for g in x] for x in out]


def _spy_rows(e, monkeypatch):
    """Record (rows, tokens) of every model forward."""
    shapes = []
    orig = e.model.forward

    def spy(*a, **kw):
        shapes.append(tuple(kw["input_ids"].shape))
        return orig(*a, **kw)

    monkeypatch.setattr(e.model, "forward", spy)
    return shapes


GREEDY = GenerationConfig(n=1, temperature=0.0, max_new_tokens=5)
SAMPLED = GenerationConfig(n=3, temperature=1.0, top_p=0.9, top_k=10, max_new_tokens=5)


@pytest.mark.parametrize("cfg", [GREEDY, SAMPLED], ids=["greedy", "sampled"])
def test_generate_runs_a_shared_fewshot_prefix_once_with_the_same_answers(tiny_engine, cfg):
    """Prompts that share demonstrations (all of them, or only some, as knowledge-QA prompts whose demos are drawn
    per question do): each shared span runs once per call (one row), then each prompt's own tokens, and every
    answer, greedy or sampled, is the plain path's, at any batch size."""
    prompts = [SHOT + Q1, SHOT + Q2, SHOT + Q1 + " Paris.", SHOT + "Q", SHOT * 2 + Q2, Q2 + " A", Q2 + " B", "short"]
    plain = _gens(engine(tiny_engine, 3, False).generate(prompts, cfg, seed=3))
    for bs in (1, 2, 5):
        e = engine(tiny_engine, bs, True)
        seqs = [e.encode(p) for p in prompts]
        nodes, leaf = pfx.plan(seqs, [len(s) - 1 for s in seqs], e.min_prefix)
        ran = count_tokens(e)
        assert _gens(e.generate(prompts, cfg, seed=3)) == plain, f"batch size {bs}"
        cached = [nodes[j].end if j >= 0 else 0 for j in leaf]
        shot = len(e.encode(SHOT)) - 1
        assert all(c >= shot for p, c in zip(prompts, cached) if p.startswith(SHOT))  # the demos are reused
        # the prefill runs each shared span once, then each prompt's own tokens but its last, once for its N samples
        assert sum(ran) == sum(nd.end - nd.start for nd in nodes) + sum(len(s) - 1 - c for s, c in zip(seqs, cached))


def test_a_prompt_all_shared_or_of_one_token_decodes_from_its_last_token(tiny_engine):
    """A prompt that is the shared span itself (or a duplicate) has no tokens of its own to prefill; a one-token prompt
    has no cache at all: both give the plain path's answers."""
    prompts = [SHOT + Q1, SHOT + Q1, SHOT, "B", SHOT + Q2]
    for cfg in (GREEDY, SAMPLED):
        want = _gens(engine(tiny_engine, 2, False).generate(prompts, cfg, seed=1))
        for bs in (1, 2, 5):
            assert _gens(engine(tiny_engine, bs, True).generate(prompts, cfg, seed=1)) == want
    assert _gens(engine(tiny_engine, 2, True).generate(["B", "A"], SAMPLED, seed=2)) == _gens(
        engine(tiny_engine, 2, False).generate(["B", "A"], SAMPLED, seed=2))


def test_prefill_passes_group_similar_lengths():
    """Each pass takes rows down to 0.8 of its longest (padding under a fifth of the tokens run), longest first, every
    row once."""
    from selfalign.engines.hf import _similar_lengths

    lengths = {0: 67, 1: 30, 2: 53, 3: 54, 4: 44, 5: 31, 6: 45, 7: 67}
    parts = _similar_lengths(list(lengths), lengths.__getitem__)
    assert sorted(i for p in parts for i in p) == sorted(lengths)
    assert [lengths[p[0]] for p in parts] == sorted((lengths[p[0]] for p in parts), reverse=True)
    for p in parts:
        assert all(lengths[i] >= 0.8 * lengths[p[0]] for i in p)
    assert parts == [[0, 7, 3], [2, 6, 4], [5, 1]]  # 67 67 54 | 53 45 44 | 31 30 (0.8 x 67 = 53.6, 0.8 x 53 = 42.4)
