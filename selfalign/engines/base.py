"""The engine interface: generation, next-token choice probabilities, and continuation log-likelihoods."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence


@dataclass
class GenerationConfig:
    n: int = 4
    temperature: float = 1.0
    top_p: float = 0.9
    top_k: int = 10
    max_new_tokens: int = 64
    stop: Sequence[str] = field(default_factory=list)

    def params(self) -> dict:
        return {"temperature": self.temperature, "top_p": self.top_p, "top_k": self.top_k,
                "max_new_tokens": self.max_new_tokens}


@dataclass
class Generation:
    text: str                  # the answer, stripped
    n_tokens: int
    raw: str | None = None     # the answer exactly as it continued its prompt (a leading space kept; trailing
                               # whitespace cut), where the engine knows it; None for chat replies


class Engine(Protocol):
    name: str
    info: dict  # what model is loaded: recorded in every output's meta

    def chat_prompt(self, user_message: str) -> str:
        """Wrap a user message in the model's chat template (with the assistant turn opened)."""

    def has_chat_template(self) -> bool: ...

    def generate(self, prompts: Sequence[str], cfg: GenerationConfig, seed: int) -> list[list[Generation]]:
        """``cfg.n`` continuations per prompt, deterministic for a fixed seed and batch."""

    def choice_probs(self, prompts: Sequence[str], choices: Sequence[str]) -> list[list[float]]:
        """Next-token probability of each choice after each prompt; a choice's mass sums its token variants
        as they follow that prompt in context (with and without a leading space: ``tokens.choice_ids``)."""

    def loglikelihood(self, pairs: Sequence[tuple[str, str]]) -> list[tuple[float, int]]:
        """(sum of log-probs, number of tokens) of each continuation given its context."""
