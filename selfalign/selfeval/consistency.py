"""Self-consistency confidence of a claim (FactTune-MC style, Tian et al. 2023): re-answer the claim's question K
times by sampling, and take the fraction of answers that agree with the claim.

Agreement rule (one sampled answer vs the claim), after FActScore's normalisation (lower case, no punctuation,
no articles, single spaces):
- yes/no question ("Is it true that ..."): first word "yes" agrees, "no" disagrees; otherwise an answer with a
  negation (not, never, false, incorrect, untrue, n't, ...) disagrees, and one without agrees iff it restates at
  least ``threshold`` of the claim's content words ("Albert Einstein is indeed a physicist").
- otherwise: drop stop words and every word of the question from both answer and claim; what is left of the
  answer is its *new* information A, what is left of the claim is C. The answer agrees iff A is non-empty and
  |A ∩ C| / |A| >= ``threshold`` (0.5), or iff the whole normalised answer is a substring of the normalised claim.
  An answer that only repeats the question (A empty) does not agree.
"""
from __future__ import annotations

import re
from typing import Sequence

from selfalign import prompts as P
from selfalign.engines import GenerationConfig
from selfalign.text import normalize

STOP_WORDS = {
    "a", "an", "the", "of", "in", "on", "at", "to", "for", "from", "by", "with", "and", "or", "but", "is", "was",
    "are", "were", "be", "been", "has", "had", "have", "he", "she", "it", "they", "his", "her", "its", "their",
    "him", "them", "as", "that", "this", "which", "who", "whom", "what", "when", "where", "why", "how", "did", "do",
    "does", "i", "you", "we", "my", "your", "our", "also", "not", "no", "yes", "there", "into", "about", "s",
}
THRESHOLD = 0.5
NEGATIONS = {"not", "no", "never", "false", "incorrect", "untrue", "wrong", "neither", "nor", "cannot", "nobody"}
RULE = ("normalised (FActScore normalize_answer); yes/no question: 'yes' agrees, 'no' or a negation disagrees, else "
        ">= 50% of the claim's content words restated; wh-question: the answer's non-stop-word, non-question words "
        "overlap the claim's by >= 50% (or the answer is a substring of the claim)")


def content_words(text: str, exclude: set[str] = frozenset()) -> set[str]:
    return {w for w in normalize(text).split() if w not in STOP_WORDS and w not in exclude}


def is_yes_no(question: str) -> bool:
    return question.strip().startswith(P.YES_NO_TEMPLATE.split("{")[0].strip())


def agrees(answer: str, claim: str, question: str, threshold: float = THRESHOLD) -> bool:
    """Does one sampled ``answer`` to ``question`` agree with ``claim``? (the rule in the module docstring)"""
    ans = normalize(answer)
    if not ans:
        return False
    if is_yes_no(question):
        words = normalize(re.sub(r"n['\u2019]t\b", " not", answer)).split()  # "wasn't" -> "was not"
        if words[0] in ("yes", "no"):
            return words[0] == "yes"
        if any(w in NEGATIONS for w in words):
            return False
        c = content_words(claim)
        return bool(c) and len(c & set(words)) / len(c) >= threshold
    if len(ans.split()) >= 1 and f" {ans} " in f" {normalize(claim)} ":
        return True
    q = content_words(question)
    a, c = content_words(answer, q), content_words(claim, q)
    return bool(a) and len(a & c) / len(a) >= threshold


def answer_prompt(engine, question: str, chat: bool) -> str:
    text = P.answer_template("qa").render(question.strip()) if not chat else question.strip()
    return engine.chat_prompt(text) if chat else text


def consistency(engine, items: Sequence[tuple[str, str]], k: int = 5, temperature: float = 1.0,
                max_new_tokens: int = 32, chat: bool = False, seed: int = 0) -> list[dict]:
    """items: (question, claim). Returns {"p_agree", "answers"} per item: the agreeing fraction of ``k`` samples."""
    if not items:
        return []
    cfg = GenerationConfig(n=k, temperature=temperature, top_p=0.9, top_k=10, max_new_tokens=max_new_tokens,
                           stop=[] if chat else ["\n"])
    questions = list(dict.fromkeys(q for q, _ in items))  # each distinct question is sampled once
    # one batched call: every engine seeds a prompt's samples by (seed, prompt) (the HF engine each sample by
    # (seed, prompt, sample index)), so a question's answers do not depend on the questions beside it
    gens = engine.generate([answer_prompt(engine, q, chat) for q in questions], cfg, seed=seed)
    answers = {q: [g.text for g in gs] for q, gs in zip(questions, gens)}
    res = []
    for q, claim in items:
        votes = [agrees(a, claim, q) for a in answers[q]]
        res.append({"p_agree": sum(votes) / len(votes) if votes else 0.0, "answers": answers[q]})
    return res
