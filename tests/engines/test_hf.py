import math

import torch

from selfalign.engines import GenerationConfig


def _direct_next_token_logp(engine, text):
    ids = torch.tensor([engine.encode(text)])
    with torch.no_grad():
        return torch.log_softmax(engine.model(input_ids=ids).logits[0, -1].float(), -1)


def test_choice_probs_equal_unpadded_forward(tiny_engine):
    texts = ["Question: x\nThe proposed answer is:", "short", "a much longer prompt " * 7 + "is:", "B", "True or"]
    got = tiny_engine.choice_probs(texts, ["A", "B"])
    for text, (pa, pb) in zip(texts, got):
        lp = _direct_next_token_logp(tiny_engine, text)
        ids_a = [i for s in ("A", " A") for i in [tiny_engine.tok.encode(s, add_special_tokens=False)] if len(i) == 1]
        ids_b = [i for s in ("B", " B") for i in [tiny_engine.tok.encode(s, add_special_tokens=False)] if len(i) == 1]
        want_a = sum(math.exp(lp[i[0]].item()) for i in ids_a)
        want_b = sum(math.exp(lp[i[0]].item()) for i in ids_b)
        assert abs(pa - want_a) < 1e-5 and abs(pb - want_b) < 1e-5


def test_loglikelihood_matches_direct_sum(tiny_engine):
    pairs = [("Question: who?\nAnswer:", " Paris is the capital."), ("ctx", " x"), ("long context " * 6, "B C")]
    got = tiny_engine.loglikelihood(pairs)
    for (ctx, cont), (s, n) in zip(pairs, got):
        # lm-eval-harness moves a context's trailing spaces onto the continuation
        stripped = ctx.rstrip(" ")
        ctx, cont = stripped, ctx[len(stripped):] + cont
        c = tiny_engine.encode(ctx)
        full = tiny_engine.encode(ctx + cont)
        assert n == len(full) - len(c)
        ids = torch.tensor([full])
        with torch.no_grad():
            lp = torch.log_softmax(tiny_engine.model(input_ids=ids).logits[0].float(), -1)
        want = sum(lp[t - 1, full[t]].item() for t in range(len(c), len(full)))
        assert abs(s - want) < 1e-4


def test_generate_is_deterministic_and_greedy_matches_single(tiny_engine):
    cfg = GenerationConfig(n=2, temperature=1.0, top_p=0.9, top_k=10, max_new_tokens=6)
    prompts = ["Question: a?\nAnswer:", "Q", "The quick brown fox"]
    a = tiny_engine.generate(prompts, cfg, seed=1)
    b = tiny_engine.generate(prompts, cfg, seed=1)
    assert [[g.text for g in x] for x in a] == [[g.text for g in x] for x in b]
    assert all(len(x) == 2 for x in a)
    greedy = GenerationConfig(n=1, temperature=0.0, max_new_tokens=5)
    batched = tiny_engine.generate(prompts, greedy, seed=0)
    for p, out in zip(prompts, batched):
        assert tiny_engine.generate([p], greedy, seed=0)[0][0].text == out[0].text


def test_answers_keep_the_space_they_continued_with(metaspace_dir):
    """Decoding a SentencePiece answer alone drops its leading '▁' ("Paris"); the engine decodes it after the
    prompt's last token, so ``raw`` is the answer as it followed the prompt (" Paris"), which pairs trains."""
    from selfalign.engines.hf import HFEngine, _continued_text

    e = HFEngine.from_spec(metaspace_dir, batch_size=3, device="cpu", dtype="float32")
    dec = lambda t: e.tok.decode(t, skip_special_tokens=True)  # noqa: E731
    ids, cut = e.encode("The capital of France? Paris"), len(e.encode("The capital of France?"))
    assert dec(ids[cut:]) == "Paris" and _continued_text(dec, ids[cut - 1:cut], ids[cut:]) == " Paris"
    assert _continued_text(dec, [], ids[cut:]) == "Paris"
    out = e.generate(["The capital of France?", "Question: What is"],
                     GenerationConfig(n=2, temperature=1.0, max_new_tokens=6), seed=0)
    assert all(g.raw.strip() == g.text and g.raw == g.raw.rstrip() for gens in out for g in gens)
