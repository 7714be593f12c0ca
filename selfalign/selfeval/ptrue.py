"""P(True) (Kadavath et al. 2022; the paper's Self-Eval): P(A) / (P(A) + P(B)) after the True/False prompt."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

from selfalign import prompts
from selfalign.selfeval.prompt import SelfEvalPrompt


@dataclass
class PTrueResult:
    p_true: float  # P(A) normalised over A/B
    mass: float  # P(A) + P(B): how much of the next-token distribution the two labels hold


def build_prompt(engine, question: str, answer: str, prompt: Optional[SelfEvalPrompt] = None) -> str:
    prompt = prompt or SelfEvalPrompt()
    text = prompt.text(question, answer)
    return engine.chat_prompt(text) if prompt.chat else text


def p_true(engine, items: Sequence[tuple[str, str]], prompt: Optional[SelfEvalPrompt] = None) -> list[PTrueResult]:
    texts = [build_prompt(engine, q, a, prompt) for q, a in items]
    out = []
    for pa, pb in engine.choice_probs(texts, [prompts.TRUE_LABEL, prompts.FALSE_LABEL]):
        mass = pa + pb
        out.append(PTrueResult(pa / mass if mass > 0 else 0.5, mass))
    return out


def score_rows(engine, rows: list[dict], cfg) -> list[dict]:
    """``score``'s confidence method ``ptrue``: each sample's P(True) as its question's proposed answer."""
    prompt = SelfEvalPrompt.of(cfg)
    res = p_true(engine, [(r["question"], r["response"]) for r in rows], prompt)
    return [{**r, "p_true": x.p_true, "p_true_mass": x.mass, "score": x.p_true, "score_method": "ptrue",
             "selfeval_template": prompt.template_id} for r, x in zip(rows, res)]
