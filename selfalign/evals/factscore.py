"""BioGEN long-form factuality, scored like FActScore (Min et al. 2023).

Each bio is checked for abstention (FActScore's rules), split into atomic facts (claims.decompose), and each fact
is verified by the engine (any model spec) from the top-k BM25 passages of the person's knowledge-source entry with
FActScore's prompt, supported iff P(True) > P(False) for the next token. Per response: init_score = supported
fraction, score = init_score * penalty with FActScore's length penalty exp(1 - gamma / n_facts) when
n_facts <= gamma (1 otherwise). A response responds iff it is not abstained and has at least one fact.
Without a knowledge source, facts are scored by self-consistency instead and every output says so.
``--verify-method spans`` verifies offline by key-span presence in the retrieved passages (``fact_gate``);
``--verifier hhem|minicheck|nli:MODEL`` by a fact-check classifier reading the passages and the fact
(``evals/verifiers``), its published LLM-AggreFact figure printed beside the score. Before
scoring, the verifier is gated on facts planted from the knowledge source (``fact_gate.gate``): its AUROC is in
every result, and a run whose verifier falls below 0.6 warns that its FActScore is not meaningful. A bio whose
topic has no entry in the knowledge source is unverifiable: counted, never scored.
"""
from __future__ import annotations

import math
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from selfalign import prompts as P
from selfalign.config import ModelArgs, ParallelArgs, opt, require
from selfalign.engines import GenerationConfig, make_engine
from selfalign.errors import InputError, SelfAlignError
from selfalign.data.biogen import SPLITS as BIOGEN_SPLITS
from selfalign.evals.knowledge import open_source
from selfalign.evals.results import result_guard, rows_path, save_result
from selfalign.store.hashes import row_hash
from selfalign.store.io import duplicate, iter_jsonl, iter_numbered, read_jsonl
from selfalign.store.lineage import INPUT_HASH, TrackedOutput, settings_of
from selfalign.store.progress import run_chunks
from selfalign.store.provenance import meta
from selfalign.answering import CHAT_TEMPLATE, answer_templates
from selfalign.selfeval.claims import CLAIM_METHODS

ABSTAIN = ("generic", "perplexity_ai", "none")
VERIFY_METHODS = ("model", "spans")
METRICS = ("score", "init_score", "respond", "num_facts", "n_correct", "n_incorrect")
NO_KNOWLEDGE = "self-consistency (no knowledge source)"
# FActScore's abstain_detection.py
INVALID_PPL_MENTIONS = [
    "I could not find any information", "The search results do not provide", "There is no information",
    "There are no search results", "there are no provided search results", "not provided in the search results",
    "is not mentioned in the provided search results", "There seems to be a mistake in the question",
    "Not sources found", "No sources found", "Try a more general question"]


@dataclass
class BioGenEvalConfig(ParallelArgs, ModelArgs):
    output: Optional[str] = opt(None, "summary JSON (per-response rows go to <output stem>.rows.jsonl; resumable)")
    input: str = opt("biogen", "people to write bios of: biogen, or a JSONL of {id, topic|question}")
    split: Optional[str] = opt("test", "BioGEN split: train, test, factscore (FActScore's 500 names)",
                               choices=BIOGEN_SPLITS)
    limit: Optional[int] = opt(None, "evaluate only the first N people / answers", min=1,
                               hint="leave it out for all of them")
    answers: Optional[str] = opt(None, "score existing answers instead of generating: samples JSONL with response "
                                       "(or FActScore's output) and topic (or question 'Tell me a bio of X.')")
    knowledge: Optional[str] = opt(None, "knowledge source: FActScore SQLite documents(title, text) or JSONL "
                                         "{title, text}; without it facts are scored by self-consistency")
    verifier: Optional[str] = opt(None, "model spec that verifies facts (default: the evaluated model itself; "
                                       "in a recipe: the recipe's base model, for every compared model), or a "
                                       "fact-check classifier with --knowledge: hhem[:MODEL] (needs "
                                       "--trust-remote-code), minicheck[:MODEL], nli:MODEL")
    claim_method: str = opt("rules", "atomic facts by rules (offline) or llm (FActScore's prompt, run on the "
                                     "verifier model)", choices=CLAIM_METHODS)
    claim_cache: Optional[str] = opt(None, "JSONL cache of decompositions")
    verify_method: str = opt("model", "model (FActScore's True/False prompt on the verifier) or spans (offline: "
                                      "key-span presence in the retrieved passages)", choices=VERIFY_METHODS)
    gate_facts: int = opt(40, "verifier sanity gate: facts planted from the knowledge source (half altered) "
                              "before scoring; 0 = off", min=0)
    k: int = opt(5, "passages retrieved per fact", min=1)
    gamma: int = opt(10, "FActScore length penalty gamma (0 = none)", min=0)
    abstain: str = opt("generic", "abstention rule: generic, perplexity_ai, none (FActScore's detectors)",
                       choices=ABSTAIN)
    template: str = opt("biogen", "answer prompt: biogen (paper form), biogen-5shot, qa, plain",
                        choices=answer_templates)
    chat_template: str = opt("auto", "wrap the prompt in the model's chat template: auto, on, off",
                             choices=CHAT_TEMPLATE)
    max_new_tokens: int = opt(256, "tokens per bio at most", min=1)
    temperature: float = opt(0.0, "sampling temperature for bios (0 = greedy)", min=0)
    consistency_k: int = opt(5, "no knowledge source: sampled answers per fact", min=1)
    seed: int = opt(0, "sampling seed: the bios (with --temperature > 0) and the self-consistency answers", min=0)
    n_boot: int = opt(1000, "bootstrap resamples for the 95% intervals; 0 = none", min=0, summary_only=True)
    bootstrap_seed: int = opt(0, "bootstrap seed", min=0, summary_only=True)
    overwrite: bool = opt(False, "evaluate every bio afresh (the rows beside --output and the result are moved aside)")

    def __post_init__(self):
        super().__post_init__()  # every field against its declaration
        from selfalign.evals.verifiers import check

        kind = check(self.verifier, self.trust_remote_code)  # a bad classifier spec fails here, before any load
        if kind and not self.knowledge:
            raise SelfAlignError(f"--verifier {self.verifier} checks facts against passages: it needs --knowledge")
        if kind and self.verify_method != "model":
            raise SelfAlignError(f"--verifier {self.verifier} is the verifier: leave --verify-method at model")


def is_abstained(text: str, kind: str = "generic") -> bool:
    """FActScore's detectors: ``generic`` (starts "I'm sorry" or says "provide more"), ``perplexity_ai``."""
    if kind == "generic":
        return text.startswith("I'm sorry") or "provide more" in text
    if kind == "perplexity_ai":
        out = re.sub(r"\s*\[\d+\]\s*", "", text)  # remove_citation
        if out.startswith("According to , "):
            out = out.replace("According to , ", "According to the search results, ")
        if any(out.lower().startswith(m.lower()) for m in INVALID_PPL_MENTIONS):
            return True
        first = out.split("\n\n")[0]  # abstained iff no paragraph is valid before the first invalid one
        return len(first.strip()) == 0 or any(m.lower() in first.lower() for m in INVALID_PPL_MENTIONS)
    return False


def length_penalty(n_facts: int, gamma: int) -> float:
    """FActScore: 1 if n_facts > gamma else exp(1 - gamma / n_facts) (no penalty when gamma is 0)."""
    if not gamma:
        return 1.0
    return 1.0 if n_facts > gamma else math.exp(1 - gamma / n_facts)


def verify(engine, prompts: list[str]) -> list[float]:
    """P(True) / (P(True) + P(False)) of the next token after each prompt (log-likelihoods if not single tokens)."""
    if not prompts:
        return []
    try:
        probs = engine.choice_probs(prompts, ["True", "False"])
        return [t / (t + f) if t + f > 0 else 0.5 for t, f in probs]
    except ValueError:
        ll = engine.loglikelihood([(p, c) for p in prompts for c in (" True", " False")])
        return [1 / (1 + math.exp(ll[2 * i + 1][0] - ll[2 * i][0])) for i in range(len(prompts))]


def verify_facts(verifier, ks, pairs: list[tuple[str, str]], k: int = 5, method: str = "model"):
    """(P(supported), passages) of each (topic, fact): the top-k BM25 passages of the topic's entry, then the
    verifier model's FActScore prompt or the offline span check."""
    from selfalign.evals.fact_gate import span_support

    from selfalign.evals.verifiers import document, is_classifier

    psgs = [ks.retrieve(t, f, k) for t, f in pairs]
    if method == "spans":
        return [span_support(t, f, p) for (t, f), p in zip(pairs, psgs)], psgs
    if is_classifier(verifier):  # a fact-check classifier: (passages, fact) -> P(supported)
        return verifier.support([(document(t, p), f) for (t, f), p in zip(pairs, psgs)]), psgs
    return verify(verifier, [P.factscore_verify_prompt(t, p, f) for (t, f), p in zip(pairs, psgs)]), psgs


def verifier_gate(verifier, ks, topics, cfg: BioGenEvalConfig) -> dict:
    from selfalign.evals.fact_gate import gate, plant_facts

    facts = plant_facts(ks, topics, cfg.gate_facts, cfg.seed)
    res = gate(lambda pairs: verify_facts(verifier, ks, pairs, cfg.k, cfg.verify_method)[0], facts, seed=cfg.seed)
    return {**res, "verifier": _method(ks, verifier, cfg.verify_method), "examples": facts[:4]}


def _items(cfg: BioGenEvalConfig) -> list[dict]:
    from selfalign.data import NAMED, load_prompts
    from selfalign.data.biogen import bio_question, topic_of

    if cfg.answers:
        rows, seen = [], {}
        for lineno, r in iter_numbered(Path(cfg.answers), [("response", "output"), ("topic", "question")],
                                       ["id", "sample_idx", "topic", "question"]):
            if "response" not in r:  # FActScore's own generation files: {"topic", "output"}
                r["response"] = r["output"]
            if not topic_of(r):
                raise InputError(cfg.answers, "no topic: give 'topic' or a question 'Tell me a bio of X.'", lineno)
            row = {**r, "id": str(r.get("id", f"line{lineno}")), "sample_idx": r.get("sample_idx", 0),
                   "topic": topic_of(r), "question": r.get("question") or bio_question(topic_of(r))}
            key = (row["id"], row["sample_idx"])
            if key in seen:
                raise duplicate(cfg.answers, "(id, sample_idx)", key, seen[key], lineno)
            seen[key] = lineno
            rows.append(row)
        if not rows:
            raise InputError(cfg.answers, "no rows (the file is empty)")
        return rows[:cfg.limit] if cfg.limit else rows
    if cfg.input in NAMED:
        rows = load_prompts(cfg.input, cfg.split if cfg.input == "biogen" else None, cfg.limit)
    else:  # a JSONL of people: {id, topic} or {id, question: "Tell me a bio of X."}
        rows = read_jsonl(cfg.input, required=["id", ("topic", "question")], unique=lambda r: str(r["id"]),
                          fields=["topic", "question"])
        rows = rows[:cfg.limit or None]
    out = []
    for r in rows:
        if not topic_of(r):
            raise SelfAlignError(f"{cfg.input}: row {r['id']!r} has no topic (and no 'Tell me a bio of X.' question)")
        out.append({**r, "id": str(r["id"]), "sample_idx": 0, "topic": topic_of(r),
                    "question": r.get("question") or bio_question(topic_of(r))})
    return out


def _generate(engine, batch: list[dict], cfg: BioGenEvalConfig) -> None:
    from selfalign.answering import render, resolve_prompting

    tmpl, chat = resolve_prompting(engine, cfg.template, cfg.chat_template)
    gen = GenerationConfig(n=1, temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens,
                           stop=[] if chat else ["\nQuestion:"])
    outs = engine.generate([render(engine, r, tmpl, chat) for r in batch], gen, seed=cfg.seed)
    for r, o in zip(batch, outs):
        r.update(response=o[0].text, n_tokens=o[0].n_tokens, template=tmpl.id, chat_template=chat)


def evaluate_batch(verifier, ks, batch: list[dict], cfg: BioGenEvalConfig, cache=None, decomposer=None) -> list[dict]:
    """Rows with per-fact decisions and FActScore's per-response numbers. The verifier engine also decomposes
    (``claim_method=llm``; a fact-check classifier leaves that to ``decomposer``, the evaluated model) and, without a
    knowledge source, re-answers the facts' questions."""
    from selfalign.evals.verifiers import is_classifier
    from selfalign.selfeval.claims import decompose
    from selfalign.selfeval.consistency import consistency

    abst = [is_abstained(r["response"], cfg.abstain) for r in batch]
    missing = {i for i, a in enumerate(abst) if not a and ks is not None and not ks.has(batch[i]["topic"])}
    live = [i for i, a in enumerate(abst) if not a and i not in missing]
    lm = decomposer if is_classifier(verifier) and decomposer is not None else verifier
    decs = dict(zip(live, decompose(lm, [batch[i]["response"] for i in live], [batch[i]["topic"] for i in live],
                                    cfg.claim_method, "template", cache)))
    flat = [(i, c) for i in live for c in decs[i]]
    if ks is not None:
        probs, psgs = verify_facts(verifier, ks, [(batch[i]["topic"], c["text"]) for i, c in flat], cfg.k,
                                   cfg.verify_method)
        for (_, c), p, pr in zip(flat, psgs, probs):
            c.update(p_true=pr, is_supported=pr > 0.5, passages=[x["idx"] for x in p])
    else:
        res = consistency(verifier, [(c["question"], c["text"]) for _, c in flat], k=cfg.consistency_k, seed=cfg.seed,
                          chat=verifier.has_chat_template())
        for (_, c), x in zip(flat, res):
            c.update(p_true=x["p_agree"], is_supported=x["p_agree"] >= 0.5)
    out = []
    for i, r in enumerate(batch):
        facts = [] if abst[i] or i in missing else decs[i]
        row = {**r, "abstained": abst[i], "knowledge_missing": i in missing, "unverifiable": i in missing,
               "decisions": [{"atom": c["text"], "is_supported": bool(c["is_supported"]), "p_true": c["p_true"],
                              **({"passages": c["passages"]} if "passages" in c else {})} for c in facts]}
        n = len(facts)
        n_ok = sum(d["is_supported"] for d in row["decisions"])
        responded = bool(n)
        init = n_ok / n if n else None
        pen = length_penalty(n, cfg.gamma) if n else None
        row.update(respond=None if i in missing else int(responded), num_facts=n if responded else None,
                   n_correct=n_ok if responded else None, n_incorrect=n - n_ok if responded else None,
                   init_score=init, penalty=pen, score=init * pen if n else None,
                   score_method=_method(ks, verifier, cfg.verify_method))
        out.append(row)
    return out


def _verifier(cfg: BioGenEvalConfig, engine):
    """The fact verifier: the evaluated model itself, another LM (``--verifier`` model spec) or a fact-check
    classifier (``--verifier hhem|minicheck|nli:MODEL``)."""
    from selfalign.evals.verifiers import check, make_verifier

    if not cfg.verifier:
        return engine
    if check(cfg.verifier, cfg.trust_remote_code):
        return make_verifier(cfg.verifier, device=cfg.device, dtype=cfg.dtype, batch_size=cfg.batch_size,
                             trust_remote_code=cfg.trust_remote_code, allow_pickle=cfg.allow_pickle)
    return make_engine(cfg.engine, **{**cfg.engine_kwargs(), "model": cfg.verifier, "adapter": None})


def _method(ks, verifier, verify_method: str = "model") -> str:
    from selfalign.evals.verifiers import is_classifier

    if ks is None:
        return NO_KNOWLEDGE
    if verify_method == "spans":
        return "factscore (BM25 retrieval + offline key-span presence verifier)"
    if is_classifier(verifier):
        return f"factscore (BM25 retrieval + {verifier.describe()} fact-check classifier)"
    return f"factscore (BM25 retrieval + {verifier.info.get('model', '?')} True/False verifier)"


def run_biogen_eval(cfg: BioGenEvalConfig, engine=None) -> dict:
    """Generate (or read) bios, FActScore them, write rows + summary; a rerun resumes from the rows file."""
    require(cfg, "output")
    items = _items(cfg)
    with result_guard(cfg, inputs=[cfg.answers, cfg.input, cfg.knowledge], shared=[cfg.claim_cache]) as g:
        return _biogen_eval(cfg, engine, g, items)


def _biogen_eval(cfg: BioGenEvalConfig, engine, g, items: list[dict]) -> dict:
    from selfalign.evals.verifiers import is_classifier
    from selfalign.selfeval.claims import ClaimCache

    out = TrackedOutput(rows_path(cfg.output), lambda r: (str(r["id"]), r.get("sample_idx", 0)), settings_of(cfg),
                        guard=g)  # refuses other settings before a model loads
    cache = None
    try:
        ks = open_source(cfg.knowledge)
        cache = ClaimCache(cfg.claim_cache)  # read (and checked) before any model loads
        if ks is None:
            print(f"eval biogen: no --knowledge given: facts are scored by {NO_KNOWLEDGE}, not FActScore",
                  file=sys.stderr)
        engine = engine or make_engine(cfg.engine, **cfg.engine_kwargs())
        verifier = _verifier(cfg, engine)
        gate_res = None
        if ks is not None and cfg.gate_facts:
            from selfalign.evals.fact_gate import gate_warning

            gate_res = verifier_gate(verifier, ks, [r["topic"] for r in items], cfg)
            if gate_warning(gate_res):
                print(gate_warning(gate_res), file=sys.stderr)
        if is_classifier(verifier):
            from selfalign.evals.fact_gate import gate_text

            print(f"eval biogen: verifier {verifier.describe()}: {verifier.published_line()}; sanity gate here: "
                  f"{gate_text(gate_res)}", file=sys.stderr)
    except BaseException:
        out.close()
        if cache is not None:
            cache.close()
        raise
    key = out.key
    t0, n_new = time.time(), 0
    try:
        with out:
            out.record(meta(cfg, model_info=engine.info, verifier_info=verifier.info,
                            knowledge=ks.describe() if ks else None))
            todo = out.todo(items, lambda r: [key(r)])  # an edited person or answer is evaluated again

            def generate_and_check(batch: list[dict]) -> list[dict]:
                batch = [dict(r) for r in batch]
                hashes = [row_hash(r) for r in batch]
                if not cfg.answers:
                    _generate(engine, batch, cfg)
                rows = evaluate_batch(verifier, ks, batch, cfg, cache, decomposer=engine)
                return [{**r, INPUT_HASH: h} for r, h in zip(rows, hashes)]

            n_new = run_chunks(out, todo, cfg.batch_size, generate_and_check, "eval biogen", "bio")
    finally:
        cache.close()
    wanted = {key(r) for r in items}
    rows = [r for r in iter_jsonl(rows_path(cfg.output)) if key(r) in wanted]
    agg = aggregate(rows)
    method = _method(ks, verifier, cfg.verify_method)
    published = verifier.published_line() if is_classifier(verifier) else None
    if agg["unverifiable"]:
        print(f"eval biogen: {agg['unverifiable']} bio(s) unverifiable: their topic has no entry in the knowledge "
              "source (counted, not scored)", file=sys.stderr)
    summary = save_result(cfg.output, "biogen-factscore", rows, METRICS,
                          meta(cfg, model_info=engine.info, verifier_info=verifier.info,
                               knowledge=ks.describe() if ks else None), n_boot=cfg.n_boot, seed=cfg.bootstrap_seed,
                          guard=g,
                          factscore=agg, verifier_gate=gate_res, score_method=method, gamma=cfg.gamma,
                          claim_method=cfg.claim_method, verifier_published=published,
                          verify_template=P.FACTSCORE_VERIFY_TEMPLATE_ID if ks and not published else None)
    if ks:
        ks.close()
    dt = time.time() - t0
    n_facts = sum(len(r["decisions"]) for r in rows)
    return {"output": cfg.output, "score_method": method, "responses": len(rows), "new_responses": n_new, **agg,
            **({"verifier_published": published} if published else {}), "facts": n_facts,
            "verifier_gate_auroc": gate_res["auroc"] if gate_res else None,
            "verifier_gate_passed": gate_res["passed"] if gate_res else None, "seconds": round(dt, 2),
            "metrics": {m: v["value"] for m, v in summary["metrics"].items()}}


def aggregate(rows: list[dict]) -> dict:
    """FActScore's aggregate fields over responses (score/init_score/num_facts over responding ones)."""
    scored = [r for r in rows if r.get("respond") is not None]
    resp = [r for r in scored if r["respond"]]

    def mean(xs):
        return sum(xs) / len(xs) if xs else None

    return {"score": mean([r["score"] for r in resp]), "init_score": mean([r["init_score"] for r in resp]),
            "respond_ratio": mean([r["respond"] for r in scored]),
            "num_facts_per_response": mean([r["num_facts"] for r in resp]),
            "n_correct": sum(r["n_correct"] for r in resp), "n_incorrect": sum(r["n_incorrect"] for r in resp),
            "knowledge_missing": sum(bool(r.get("knowledge_missing")) for r in rows),
            "unverifiable": sum(bool(r.get("knowledge_missing")) for r in rows)}
