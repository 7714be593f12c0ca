"""Decompose responses into atomic claims, each with a question.

Claims come from FActScore's few-shot prompt run on any engine (``llm``: one greedy completion per sentence, "- "
lines parsed as in FActScore) or from the offline rules of ``splitter`` (``rules``). Questions come from a
few-shot prompt (``llm``, a wh-question) or the template "Is it true that <claim>?" (``template``; a leading
pronoun becomes the topic). Decompositions are cached in a JSONL file keyed by a hash of method + topic + text.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Sequence

from selfalign import prompts as P
from selfalign.engines import GenerationConfig
from selfalign.errors import SelfAlignError
from selfalign.store.io import JsonlAppender, iter_jsonl
from selfalign.selfeval.splitter import rule_claims, split_claims, split_sentences

CLAIM_METHODS = ("rules", "llm")
QUESTION_METHODS = ("template", "llm", "yesno", "wh")
QUESTION_ALIASES = {"yesno": "template", "wh": "llm"}  # "Is it true that X?" / a wh-question from the LLM
# FActScore (atomic_facts.py) keeps no facts for sentences that open like these
NO_FACT_PREFIXES = ("This sentence does not contain any facts", "Sure", "Please")
LOWER_OPENERS = {"he", "she", "it", "they", "his", "her", "its", "their", "the", "a", "an", "in", "on", "at",
                 "after", "before", "during", "this", "that", "there", "from", "with", "as", "while", "since"}
PRONOUN_SUBJECTS = {"he", "she", "they"}


def method_tag(claims: str, questions: str, engine=None, n_demos: int = P.FACTSCORE_N_DEMOS,
               n_retrieved: int = P.FACTSCORE_N_RETRIEVED) -> str:
    """What produced a decomposition: the cache key and the rows record it."""
    questions = QUESTION_ALIASES.get(questions, questions)
    model = (engine.info.get("model") or engine.info.get("path")) if (engine is not None and "llm" in
                                                                        (claims, questions)) else None
    tag = (f"claims={claims}" + (f"/demos={n_demos}+{n_retrieved}/clean=v1" if claims == "llm" else "")
           + f"/questions={questions}")
    return tag + (f"/model={model}" if model else "")


def cache_key(tag: str, topic: str, text: str) -> str:
    return hashlib.sha256(f"{tag}\x00{topic}\x00{text}".encode()).hexdigest()[:24]


class ClaimCache:
    """A JSONL file of {key, method, claims}; rows are appended as soon as they are made."""

    def __init__(self, path: str | Path | None):
        self.path = Path(path) if path else None
        self._out = JsonlAppender(self.path, key=lambda r: r["key"]) if self.path else None  # cuts a half-written line
        self.rows = {r["key"]: r["claims"] for r in iter_jsonl(self.path, ["key", "claims"])} if self._out else {}

    def get(self, key: str):
        return self.rows.get(key)

    def put(self, rows: list[dict]) -> None:
        for r in rows:
            self.rows[r["key"]] = r["claims"]
        if self._out:
            self._out.write(rows)

    def close(self):
        if self._out:
            self._out.close()


def parse_facts(output: str) -> list[str]:
    """FActScore's ``text_to_sentences``: the "- " items of a completion (a missing final period is added)."""
    facts = [s.strip() for s in output.split("- ")[1:]]
    facts = [f.split("\n")[0].strip() for f in facts if f.split("\n")[0].strip()]
    if facts and facts[-1][-1] != ".":
        facts[-1] += "."
    return facts


# FActScore's postprocess_atomic_facts: a fact ending like this is dropped when another fact contains it
FACTSCORE_VERBS = ("born.", " appointed.", " characterized.", " described.", " known.", " member.", " advocate.",
                   "served.", "elected.")
MONTHS = {"january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
          "november", "december"}


def is_fragment(fact: str) -> bool:
    """Not a statement: under 3 words, or no lower-case word at all ("She.", "Jessie Mae Brown Beavers.")."""
    words = fact.strip().rstrip(".").split()
    return len(words) < 3 or not any(w[:1].islower() for w in words)


def clean_facts(sentence: str, facts: Sequence[str]) -> list[str]:
    """FActScore's clean-up of a sentence's facts (postprocess_atomic_facts, without spaCy): drop "X was born."-like
    facts that another fact contains, drop facts with a number or month the sentence does not have (FActScore's
    date/number entity check), drop repeats; and, added here, drop fragments (``is_fragment``)."""
    sent_nums = set(re.findall(r"\b\d+\b", sentence)) | {w for w in re.findall(r"[a-z]+", sentence.lower())
                                                           if w in MONTHS}
    out: list[str] = []
    for i, f in enumerate(facts):
        if f.endswith(FACTSCORE_VERBS) and not f.endswith("founding member.") and any(
                f[:-1] in g for j, g in enumerate(facts) if j != i):
            continue
        ents = set(re.findall(r"\b\d+\b", f)) | {w for w in re.findall(r"[a-z]+", f.lower()) if w in MONTHS}
        if ents - sent_nums or f in out or is_fragment(f):
            continue
        out.append(f)
    return out


def llm_claims(engine, texts: Sequence[str], n_demos: int = P.FACTSCORE_N_DEMOS,
               n_retrieved: int = P.FACTSCORE_N_RETRIEVED, max_new_tokens: int = 128) -> list[list[dict]]:
    """FActScore-style decomposition: every sentence of every text in one batched greedy generate call, FActScore's
    prompt (7 demos + 1 retrieved by BM25) and clean-up (``clean_facts``). A sentence whose completion leaves no
    fact falls back to the rules (its claims say ``"source": "rules"``)."""
    sents = [split_sentences(t) for t in texts]
    flat = sorted({s for ss in sents for s in ss if not s.startswith(NO_FACT_PREFIXES)})
    cfg = GenerationConfig(n=1, temperature=0.0, max_new_tokens=max_new_tokens,
                           stop=["\n\n", "\nPlease breakdown"])
    outs = engine.generate([P.atomic_facts_prompt(s, n_demos, n_retrieved) for s in flat], cfg, seed=0) if flat else []
    facts = {s: clean_facts(s, parse_facts(o[0].text)) for s, o in zip(flat, outs)}
    result = []
    for ss in sents:
        claims = []
        for s in ss:
            if s.startswith(NO_FACT_PREFIXES):
                continue
            if facts[s]:
                claims += [{"text": f, "sentence": s, "source": "llm"} for f in facts[s]]
            else:
                claims += [{"text": c, "sentence": s, "source": "rules"} for c in split_claims(s)]
        result.append(claims)
    return result


def template_question(claim: str, topic: str = "") -> str:
    """"Is it true that <claim>?" with a leading he/she/they replaced by the topic, other openers lower-cased."""
    body = claim.strip().rstrip(".!?").strip()
    first, _, rest = body.partition(" ")
    if topic and first.lower() in PRONOUN_SUBJECTS:
        body = f"{topic} {rest}"
    elif first.lower() in LOWER_OPENERS:
        body = first.lower() + (" " + rest if rest else "")
    return P.YES_NO_TEMPLATE.format(claim=body)


def llm_questions(engine, claims: Sequence[str], topics: Sequence[str], max_new_tokens: int = 32) -> list[str]:
    """One wh-question per claim (greedy); a completion that is not a one-line question falls back to the template."""
    if not claims:
        return []
    cfg = GenerationConfig(n=1, temperature=0.0, max_new_tokens=max_new_tokens, stop=["\n"])
    outs = engine.generate([P.claim_question_prompt(c, t) for c, t in zip(claims, topics)], cfg, seed=0)
    qs = []
    for c, t, o in zip(claims, topics, outs):
        q = o[0].text.strip().split("\n")[0].strip()
        qs.append(q if re.fullmatch(r"[A-Z].{5,200}\?", q) else template_question(c, t))
    return qs


def decompose(engine, texts: Sequence[str], topics: Sequence[str] | None = None, claims: str = "rules",
              questions: str = "template", cache: ClaimCache | None = None,
              n_demos: int = P.FACTSCORE_N_DEMOS) -> list[list[dict]]:
    """[{text, question, sentence, source}] per text. ``engine`` may be None for rules + template. Questions:
    template / yesno ("Is it true that X?") or llm / wh (a wh-question from the few-shot prompt)."""
    if claims not in CLAIM_METHODS:
        raise SelfAlignError(f"unknown claim method {claims!r}; choose one of {', '.join(CLAIM_METHODS)}")
    if questions not in QUESTION_METHODS:
        raise SelfAlignError(f"unknown question method {questions!r}; choose one of {', '.join(QUESTION_METHODS)}")
    questions = QUESTION_ALIASES.get(questions, questions)
    if engine is None and "llm" in (claims, questions):
        raise SelfAlignError("LLM claim decomposition needs an engine")
    topics = list(topics) if topics is not None else [""] * len(texts)
    tag = method_tag(claims, questions, engine, n_demos)
    keys = [cache_key(tag, tp, t) for tp, t in zip(topics, texts)]
    cache = cache or ClaimCache(None)
    todo = sorted({i for i, k in enumerate(keys) if cache.get(k) is None}, key=lambda i: keys[i])
    todo = list({keys[i]: i for i in todo}.values())  # one decomposition per distinct key
    if todo:
        texts_todo = [texts[i] for i in todo]
        parts = (llm_claims(engine, texts_todo, n_demos) if claims == "llm"
                 else [[dict(c, source="rules") for c in rule_claims(t)] for t in texts_todo])
        flat = [(j, c) for j, cs in enumerate(parts) for c in cs]
        if questions == "llm":
            qs = llm_questions(engine, [c["text"] for _, c in flat], [topics[todo[j]] for j, _ in flat])
        else:
            qs = [template_question(c["text"], topics[todo[j]]) for j, c in flat]
        for (_, c), q in zip(flat, qs):
            c["question"] = q
        cache.put([{"key": keys[i], "method": tag, "claims": [
            {"text": c["text"], "question": c["question"], "sentence": c["sentence"], "source": c["source"]}
            for c in cs]} for i, cs in zip(todo, parts)])
    return [[dict(c) for c in cache.get(k)] for k in keys]
