"""P(True) (Kadavath et al. 2022; the paper's Self-Eval): P(A) / (P(A) + P(B)) after the True/False prompt."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from selfalign import prompts


@dataclass
class PTrueResult:
    p_true: float  # P(A) normalised over A/B
    mass: float  # P(A) + P(B): how much of the next-token distribution the two labels hold


def build_prompt(engine, question: str, answer: str, shots: int = 0, instruction: str | None = None,
                 chat: bool = False) -> str:
    text = prompts.ptrue_prompt(question, answer, shots=shots, instruction=instruction)
    return engine.chat_prompt(text) if chat else text


def p_true(engine, items: Sequence[tuple[str, str]], shots: int = 0, instruction: str | None = None,
           chat: bool = False) -> list[PTrueResult]:
    texts = [build_prompt(engine, q, a, shots, instruction, chat) for q, a in items]
    out = []
    for pa, pb in engine.choice_probs(texts, [prompts.TRUE_LABEL, prompts.FALSE_LABEL]):
        mass = pa + pb
        out.append(PTrueResult(pa / mass if mass > 0 else 0.5, mass))
    return out
