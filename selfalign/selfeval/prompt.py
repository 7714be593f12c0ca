"""The Self-Eval prompt as one object: which named preset or how many of the paper's demonstrations, the
instruction line, the chat wrapping, and the template id every output records.

A stage builds it once from its flags (``SelfEvalPrompt.of(cfg)``, the fields of ``SelfEvalArgs``) and hands it to
the confidence method (``ptrue.p_true(engine, items, prompt)``); nothing else unpacks the settings. The template
text itself lives in ``prompts`` (``PTRUE_BODY``, ``PTRUE_DEMOS``, ``PTRUE_PRESETS``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from selfalign import prompts as P
from selfalign.config import Config, opt


@dataclass
class SelfEvalArgs(Config):
    """The Self-Eval P(True) prompt flags shared by every stage that asks the judge (score, calibrate, sk-data,
    mc-data, the evaluations): read them as one ``SelfEvalPrompt.of(cfg)``."""
    shots: int = opt(0, "P(True): number of the paper's demonstrations before the prompt",
                     min=0, max=len(P.PTRUE_DEMOS))
    instruction: Optional[str] = opt(None, "P(True): an instruction line placed before the prompt")
    selfeval_prompt: Optional[str] = opt(None, "P(True): a named Self-Eval prompt instead of --shots/--instruction: "
                                               "zero-shot, or paper (5 demos + the paper's instruction header)",
                                         choices=tuple(P.PTRUE_PRESETS))


@dataclass(frozen=True)
class SelfEvalPrompt:
    shots: int = 0
    instruction: Optional[str] = None
    chat: bool = False
    preset: Optional[str] = None  # a named preset (its shots and instruction are the ones above)

    @classmethod
    def named(cls, preset: Optional[str], shots: int = 0, instruction: Optional[str] = None,
              chat: bool = False) -> "SelfEvalPrompt":
        """A named preset's settings, or the explicit ones when no preset is named."""
        shots, instruction = P.ptrue_settings(preset, shots, instruction)
        return cls(shots, instruction, chat, preset)

    @classmethod
    def of(cls, cfg, chat: Optional[bool] = None) -> "SelfEvalPrompt":
        """The prompt a stage config asks for (a named preset wins over ``shots``/``instruction``); ``chat`` from
        the config's own ``chat`` field unless given."""
        return cls.named(getattr(cfg, "selfeval_prompt", None), cfg.shots, getattr(cfg, "instruction", None),
                         bool(getattr(cfg, "chat", False)) if chat is None else chat)

    @property
    def template_id(self) -> str:
        return P.ptrue_template_id(self.shots, self.instruction, self.chat, self.preset)

    def text(self, question: str, answer: str) -> str:
        """The prompt text before any chat wrapping."""
        return P.ptrue_prompt(question, answer, shots=self.shots, instruction=self.instruction)
