"""Fact-check classifiers for eval biogen (HHEM, MiniCheck, generic NLI) on tiny models of the same architectures
built here, offline: spec parsing, the trust / pickle refusals, input formats, label columns, chunking, and the
wiring into eval biogen."""
import json
import math
from pathlib import Path

import pytest
import torch

from selfalign.errors import ModelError, SelfAlignError
from selfalign.evals.factscore import BioGenEvalConfig, run_biogen_eval
from selfalign.evals.verifiers import check, document, make_verifier, parse
from selfalign.evals.verifiers import base as B
from selfalign.evals.verifiers import hhem as H
from selfalign.evals.verifiers import minicheck as M
from selfalign.selfeval.consistency import content_words
from verifier_models import build_encoder, build_hhem, build_t5

ASSETS = Path(__file__).parents[1] / "assets"
KNOWLEDGE = ASSETS / "bio_knowledge.jsonl"
ANSWERS = ASSETS / "bio_answers.jsonl"


# --- tiny models (tests/verifier_models.py) ------------------------------------------------------------------
@pytest.fixture(scope="module")
def t5_dir(tmp_path_factory):
    return build_t5(tmp_path_factory.mktemp("tiny-t5"))


class Recorder:
    """A tokenizer that records the texts it is called with (``calls``) and delegates everything else."""

    def __init__(self, tok):
        self.tok, self.calls = tok, []

    def __call__(self, *args, **kw):
        self.calls.append(args)
        return self.tok(*args, **kw)

    def __getattr__(self, name):
        return getattr(self.tok, name)


def fixed_logits(rows, inputs_key="input_ids", seq=False):
    """A forward that returns ``rows(input_ids) -> [B, C]`` logits (as [B, 1, C] for a seq2seq model)."""
    class Out:
        pass

    def forward(**kw):
        o = Out()
        x = rows(kw[inputs_key])
        o.logits = x[:, None, :] if seq else x
        return o
    return forward


# --- specs, refusals ------------------------------------------------------------------------------------------
def test_spec_parsing_and_refusals(tmp_path):
    assert parse(None) is None and parse("smollm2-135m") is None and parse("llama3:8b") is None
    assert parse("hhem") == ("hhem", "vectara/hallucination_evaluation_model")
    assert parse("minicheck") == ("minicheck", "lytang/MiniCheck-Flan-T5-Large")
    assert parse("minicheck:/models/mc") == ("minicheck", "/models/mc")
    assert parse("lytang/MiniCheck-RoBERTa-Large") == ("minicheck", "lytang/MiniCheck-RoBERTa-Large")
    assert parse("vectara/hallucination_evaluation_model") == ("hhem", "vectara/hallucination_evaluation_model")
    assert parse("some-org/some-llm") is None  # any other hub id stays an LM spec
    for bad in ("nli", "nli:", "minicheck:"):
        with pytest.raises(SelfAlignError, match="name the model"):
            parse(bad)
    with pytest.raises(SelfAlignError, match="pass --trust-remote-code if you trust it"):
        check("hhem", trust_remote_code=False)
    assert check("hhem", trust_remote_code=True) == "hhem" and check("minicheck", False) == "minicheck"
    with pytest.raises(SelfAlignError, match="needs --knowledge"):
        BioGenEvalConfig(output=str(tmp_path / "o.json"), verifier="minicheck")
    with pytest.raises(SelfAlignError, match="--verify-method"):
        BioGenEvalConfig(output=str(tmp_path / "o.json"), verifier="minicheck", knowledge=str(KNOWLEDGE),
                         verify_method="spans")
    with pytest.raises(ModelError, match="neither a local model directory nor a hub id"):
        make_verifier("minicheck:./no/such/dir")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="no config.json"):
        make_verifier(f"minicheck:{tmp_path / 'empty'}")


def test_cli_bad_spec_and_missing_trust_flag_exit_2_one_line(cli, tmp_path):
    for flags, msg in ((["--verifier", "hhem"], "--trust-remote-code"), (["--verifier", "nli"], "name the model")):
        r = cli.run(cli.cmd("eval", "biogen", "--output", tmp_path / "o.json", "--knowledge", KNOWLEDGE, *flags))
        assert r.returncode == 2 and msg in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert "Traceback" not in r.stderr


def test_pickle_weights_refused_unless_allowed(tmp_path):
    path, _ = build_encoder(tmp_path / "rob")
    want = make_verifier(f"minicheck:{path}", device="cpu").support([("A doc.", "A claim.")])
    pick = tmp_path / "pickled"
    pick.mkdir()
    for f in Path(path).iterdir():
        if f.suffix != ".safetensors":
            (pick / f.name).write_bytes(f.read_bytes())
    from safetensors.torch import load_file

    torch.save(load_file(str(Path(path) / "model.safetensors")), pick / "pytorch_model.bin")
    with pytest.raises(ModelError, match=r"pytorch_model.bin is a pickle .*--allow-pickle"):
        make_verifier(f"minicheck:{pick}", device="cpu")
    got = make_verifier(f"minicheck:{pick}", device="cpu", allow_pickle=True).support([("A doc.", "A claim.")])
    assert got == pytest.approx(want)


# --- MiniCheck ------------------------------------------------------------------------------------------------
def test_minicheck_t5_reads_the_1_and_0_tokens_after_predict_doc_eos_claim(t5_dir):
    path, vocab = t5_dir
    v = make_verifier(f"minicheck:{path}", device="cpu")
    assert v.seq2seq and v.max_length == 2048
    assert v.label_ids == (vocab["▁"], vocab["▁1"])  # "0" starts with ▁ (T5: id 3), "1" is ▁1 (T5: id 209)
    v.tok = rec = Recorder(v.tok)
    seen = {}

    def rows(ids):  # P(1) = 0.8 over the two label tokens; every other token far more likely (must be ignored)
        x = torch.full((ids.shape[0], len(vocab)), 50.0)
        x[:, vocab["▁"]], x[:, vocab["▁1"]] = math.log(0.2), math.log(0.8)
        return x

    fwd = fixed_logits(rows, seq=True)

    def forward(**kw):
        seen.update(kw)
        return fwd(**kw)
    v.model.forward = forward
    assert v.support([("The doc.", "A claim.")]) == pytest.approx([0.8])
    assert rec.calls[-1][0] == ["predict: The doc.</s>A claim."]
    assert seen["decoder_input_ids"].tolist() == [[0]]  # one decoder step from the start token (T5: pad, 0)


def test_minicheck_t5_random_weights_batch_invariant_and_hand_computed(t5_dir):
    path, vocab = t5_dir
    v = make_verifier(f"minicheck:{path}", device="cpu", batch_size=4)
    pairs = [("Marta was born in 1961.", "Marta was born in 1961."), ("A much longer document here.", "Short.")]
    together = v.support(pairs)
    alone = [v.support([p])[0] for p in pairs]
    assert together == pytest.approx(alone, abs=1e-5)
    enc = v.tok(["predict: " + pairs[0][0] + "</s>" + pairs[0][1]], return_tensors="pt")
    logits = v.model(**enc, decoder_input_ids=torch.zeros((1, 1), dtype=torch.long)).logits[0, 0]
    p1 = torch.softmax(logits[[vocab["▁"], vocab["▁1"]]], -1)[1].item()
    assert together[0] == pytest.approx(p1, abs=1e-5) and 0 < p1 < 1


def test_chunking_packs_sentences_and_the_best_chunk_counts(t5_dir, monkeypatch):
    n_words = lambda s: len(s.split())  # noqa: E731
    assert B.pack(["a b c.", "d e f.", "g h."], 5, n_words) == ["a b c.", "d e f. g h."]
    assert B.pack(["a b c d e f g."], 3, n_words) == ["a b c d e f g."]  # too long: a chunk of its own
    assert B.pack([], 5, n_words) == [""]
    path, vocab = t5_dir
    v = make_verifier(f"minicheck:{path}", device="cpu")
    monkeypatch.setattr(M, "CHUNK_WORDS", 4)  # sentences of 3, 2, 2 words; the paragraph break packs like a space
    assert v.chunks("Abc de fg. Zq zq.\nHi yo.") == ["Abc de fg.", "Zq zq. Hi yo."]

    def rows(ids):  # supported (0.9) only where the chunk holds a "Z"
        x = torch.zeros((ids.shape[0], len(vocab)))
        has = (ids == vocab["Z"]).any(dim=1)
        x[:, vocab["▁1"]] = torch.where(has, torch.tensor(math.log(9.0)), torch.tensor(-math.log(9.0)))
        return x
    v.model.forward = fixed_logits(rows, seq=True)
    assert v.support([("Abc de fg. Zq zq zq.", "c"), ("Abc de fg. Hi hi.", "c")]) == pytest.approx([0.9, 0.1])


@pytest.mark.parametrize("arch,sep,max_length", [("roberta", "</s>", 512), ("deberta", "[SEP]", 2048)])
def test_minicheck_classifiers_label_1_on_doc_eos_claim(tmp_path, arch, sep, max_length, monkeypatch):
    path, _ = build_encoder(tmp_path / arch, arch)
    v = make_verifier(f"minicheck:{path}", device="cpu", batch_size=3)
    assert not v.seq2seq and v.max_length == max_length
    pairs = [("One doc.", "A claim."), ("A second, longer document.", "Another claim here.")]
    together = v.support(pairs)
    assert together == pytest.approx([v.support([p])[0] for p in pairs], abs=1e-5)
    enc = v.tok([pairs[0][0] + sep + pairs[0][1]], return_tensors="pt")
    assert together[0] == pytest.approx(torch.softmax(v.model(**enc).logits, -1)[0, 1].item(), abs=1e-5)
    monkeypatch.setattr(M, "CHUNK_TOKENS", 15)  # character tokens, ▁ before each word: 11, 7 and 7 tokens
    assert v.chunks("Abc de fg. Hi yo. Xy za.") == ["Abc de fg.", "Hi yo. Xy za."]
    v.tok = rec = Recorder(v.tok)
    v.model.forward = fixed_logits(lambda ids: torch.tensor([[0.0, math.log(3.0)]] * ids.shape[0]))
    assert v.support([("Doc.", "Claim.")]) == pytest.approx([0.75])  # softmax(logits)[1]
    assert rec.calls[-1][0] == [f"Doc.{sep}Claim."]


def test_minicheck_refuses_a_three_label_model(tmp_path):
    path, _ = build_encoder(tmp_path / "nli3", labels={0: "contradiction", 1: "neutral", 2: "entailment"})
    with pytest.raises(ModelError, match="has 3; for an NLI model use --verifier nli:"):
        make_verifier(f"minicheck:{path}", device="cpu")


# --- generic NLI ----------------------------------------------------------------------------------------------
def test_nli_reads_the_entailment_label_of_the_pair(tmp_path):
    path, _ = build_encoder(tmp_path / "nli", labels={0: "CONTRADICTION", 1: "NEUTRAL", 2: "ENTAILMENT"})
    v = make_verifier(f"nli:{path}", device="cpu")
    assert v.entail == 2 and v.published_line().startswith("LLM-AggreFact: not published")
    v.tok = rec = Recorder(v.tok)
    v.model.forward = fixed_logits(lambda ids: torch.tensor([[1.0, 2.0, 3.0]] * ids.shape[0]))
    e = math.e
    assert v.support([("Premise.", "Hypothesis.")]) == pytest.approx([e ** 3 / (e + e ** 2 + e ** 3)])
    assert rec.calls[-1][:2] == (["Premise."], ["Hypothesis."])  # a text pair: premise first
    two, _ = build_encoder(tmp_path / "rte", labels={0: "entailment", 1: "not_entailment"})
    assert make_verifier(f"nli:{two}", device="cpu").entail == 0
    bad, _ = build_encoder(tmp_path / "sent", labels={0: "negative", 1: "positive"})
    with pytest.raises(ModelError, match="no single 'entailment' label"):
        make_verifier(f"nli:{bad}", device="cpu")


# --- HHEM: a T5 token classifier shipped with its own code (built in tests/verifier_models.py) ------------------
def test_hhem_needs_the_trust_flag_then_reads_column_1_of_its_prompt(t5_dir, tmp_path, monkeypatch):
    from transformers import dynamic_module_utils

    monkeypatch.setattr(dynamic_module_utils, "HF_MODULES_CACHE", str(tmp_path / "modules"))
    path = build_hhem(tmp_path / "hhem", t5_dir[0])
    with pytest.raises(SelfAlignError, match="--trust-remote-code"):
        make_verifier(f"hhem:{path}", device="cpu")
    v = make_verifier(f"hhem:{path}", device="cpu", trust_remote_code=True, batch_size=2)
    assert v.prompt == H.PROMPT and v.chunks("A. B.") == ["A. B."]  # one chunk: the whole premise
    pairs = [("Paris is in France.", "Paris is in France."), ("A longer premise, with more words.", "No.")]
    together = v.support(pairs)
    assert together == pytest.approx([v.support([p])[0] for p in pairs], abs=1e-5)
    assert all(0 < p < 1 for p in together)
    v.tok = rec = Recorder(v.tok)
    v.model.forward = fixed_logits(lambda ids: torch.tensor([[0.0, math.log(3.0)]] * ids.shape[0]))
    assert v.support([("The premise.", "The hypothesis.")]) == pytest.approx([0.75])  # softmax, column 1
    assert rec.calls[-1][0] == ["<pad> Determine if the hypothesis is true given the premise?\n\nPremise: "
                                "The premise.\n\nHypothesis: The hypothesis."]


# --- published figures --------------------------------------------------------------------------------------------
def test_published_figures_by_model_id(tmp_path):
    class Probe(B.FactVerifier):
        PUBLISHED = {**M.PUBLISHED, **H.PUBLISHED}

    line = Probe("lytang/MiniCheck-Flan-T5-Large", None, None).published_line()
    assert "75.0" in line and "MiniCheck-Flan-T5-L" in line
    assert "71.8" in Probe("vectara/hallucination_evaluation_model", None, None).published_line()
    snap = tmp_path / "models--lytang--MiniCheck-RoBERTa-Large" / "snapshots" / "abc"
    snap.mkdir(parents=True)
    assert B.model_id(str(snap)) == "lytang/MiniCheck-RoBERTa-Large"
    named = tmp_path / "copy"
    named.mkdir()
    (named / "config.json").write_text(json.dumps({"_name_or_path": "lytang/MiniCheck-DeBERTa-v3-Large"}))
    assert "73.1" in Probe(str(named), None, None).published_line()
    assert Probe(str(tmp_path), None, None).published_line() == f"LLM-AggreFact: not published for {tmp_path}"


# --- eval biogen with a classifier ---------------------------------------------------------------------------------
class OverlapClassifier(B.FactVerifier):
    """Deterministic stand-in: P(supported) = 1 when every content word of the claim is in the document, else 0.1."""
    kind = "overlap"

    def __init__(self):
        super().__init__("overlap-classifier", None, None)
        self.docs = []

    def support(self, pairs):
        self.docs += [d for d, _ in pairs]
        return [1.0 if content_words(c) <= content_words(d) else 0.1 for d, c in pairs]


class NoLM:
    """The evaluated model's stand-in: answers are given (--answers), and nothing may ask it to verify."""
    info = {"model": "answers-only"}


def test_biogen_with_a_classifier_scores_from_the_passages(tmp_path, monkeypatch, capsys):
    import selfalign.evals.verifiers as V

    stub = OverlapClassifier()
    monkeypatch.setattr(V, "make_verifier", lambda spec, **kw: stub)
    cfg = BioGenEvalConfig(output=str(tmp_path / "o.json"), answers=str(ANSWERS), knowledge=str(KNOWLEDGE),
                           verifier="minicheck:some/dir", gate_facts=20, n_boot=0)
    s = run_biogen_eval(cfg, engine=NoLM())
    rows = {r["id"]: r for r in map(json.loads, (tmp_path / "o.rows.jsonl").read_text().splitlines())}
    for person in ("ellingsen", "quennell", "varga", "oduya"):
        assert rows[f"{person}-true"]["init_score"] > rows[f"{person}-false"]["init_score"]
    assert s["score_method"] == "factscore (BM25 retrieval + overlap:overlap-classifier fact-check classifier)"
    assert s["verifier_published"] == "LLM-AggreFact: not published for overlap-classifier"
    assert s["verifier_gate_auroc"] > 0.6
    err = capsys.readouterr().err
    assert "eval biogen: verifier overlap:overlap-classifier: LLM-AggreFact: not published" in err
    assert "sanity gate here: AUROC" in err
    assert all(d.startswith(("Marta Ellingsen\n", "Tobias Quennell\n", "Aiko Varga\n", "Rafael Oduya\n"))
               for d in stub.docs)  # the topic's name, then its retrieved passages
    saved = json.loads((tmp_path / "o.json").read_text())
    assert saved["verifier_published"] == s["verifier_published"] and saved["verify_template"] is None


def test_biogen_end_to_end_with_the_tiny_t5(t5_dir, tmp_path):
    cfg = BioGenEvalConfig(output=str(tmp_path / "t.json"), answers=str(ANSWERS), knowledge=str(KNOWLEDGE),
                           verifier=f"minicheck:{t5_dir[0]}", gate_facts=4, limit=2, device="cpu", n_boot=0)
    s = run_biogen_eval(cfg, engine=NoLM())
    rows = [json.loads(line) for line in (tmp_path / "t.rows.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and s["score_method"].startswith(f"factscore (BM25 retrieval + minicheck:{t5_dir[0]}")
    assert all(0 < d["p_true"] < 1 and d["is_supported"] == (d["p_true"] > 0.5) for r in rows for d in r["decisions"])
    assert document("X", [{"text": "a"}, {"text": "b"}]) == "X\na\nb"
