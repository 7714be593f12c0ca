"""How a stage turns a row into the text a model reads: the answer template (by name, ``auto`` by chat), the
model's chat template, and the generation settings every answering stage shares (``SamplingArgs``).

Used by ``sample``, ``sk-data`` and the generating evaluations, so that none of them borrows from another stage.
The Self-Eval (judge) prompt is ``selfeval.prompt``'s. The templates themselves live in ``prompts``; those whose demonstrations are read from a data set (``biogen-5shot``:
FActScore's GPT-4 bios) are built here, on first use, from ``selfalign.data``.
"""
from __future__ import annotations

from dataclasses import dataclass

from selfalign import prompts as P
from selfalign.config import Config, opt
from selfalign.errors import SelfAlignError

CHAT_TEMPLATE = ("auto", "on", "off")
RAW_STOPS = ["\n\nQuestion:", "\nQuestion:", "\n\n"]  # a completion without a chat template ends at the next turn


def _biogen_fewshot() -> P.AnswerTemplate:
    from selfalign.data.biogen import fewshot_template

    return fewshot_template()


DATA_TEMPLATES = {"biogen-5shot": _biogen_fewshot}  # name -> builder: demonstrations read from a data set
_built: dict[str, P.AnswerTemplate] = {}


def template_names() -> tuple[str, ...]:
    """Every answer template's name (those built from data too, without building them)."""
    return tuple(dict.fromkeys([*P.template_names(), *DATA_TEMPLATES]))


def answer_templates() -> tuple[str, ...]:
    """What a ``--template`` flag accepts."""
    return ("auto", *template_names())


def answer_template(name: str) -> P.AnswerTemplate:
    if name in DATA_TEMPLATES and name not in P.ANSWER_TEMPLATES:
        if name not in _built:
            _built[name] = DATA_TEMPLATES[name]()
        return _built[name]
    if name not in P.ANSWER_TEMPLATES:
        raise SelfAlignError(f"unknown prompt template {name!r}; choose one of {sorted(template_names())}")
    return P.answer_template(name)


def resolve_prompting(engine, template: str, chat_template: str) -> tuple[P.AnswerTemplate, bool]:
    """(answer template, whether to wrap in the chat template) for this engine's model."""
    chat = engine.has_chat_template() if chat_template == "auto" else chat_template == "on"
    if chat and not engine.has_chat_template():
        raise SelfAlignError("--chat-template on, but this model's tokenizer has no chat template")
    if template == "auto":
        template = "plain" if chat else "qa"
    return answer_template(template), chat


def render(engine, row: dict, tmpl: P.AnswerTemplate, chat: bool) -> str:
    """The exact text fed to the model. A row's own ``prompt`` wins over the template."""
    text = row.get("prompt") or tmpl.render(row["question"])
    return engine.chat_prompt(text) if chat else text


@dataclass
class SamplingArgs(Config):
    """Generation settings shared by every stage that samples answers."""
    n: int = opt(4, "samples per prompt", min=1)
    temperature: float = opt(1.0, "sampling temperature (0 = greedy)", min=0)
    top_p: float = opt(0.9, "nucleus sampling", gt=0, max=1)
    top_k: int = opt(10, "top-k sampling (0 = off)", min=0)
    max_new_tokens: int = opt(64, "tokens per answer at most", min=1)
    template: str = opt("auto", "answer prompt: plain, qa, truthfulqa-paper, biogen (auto: plain with a chat "
                                "template, qa without)", choices=answer_templates)
    chat_template: str = opt("auto", "wrap the prompt in the model's chat template: auto, on, off",
                             choices=CHAT_TEMPLATE)

    def generation_config(self, chat: bool):
        from selfalign.engines import GenerationConfig

        return GenerationConfig(n=self.n, temperature=self.temperature, top_p=self.top_p, top_k=self.top_k,
                                max_new_tokens=self.max_new_tokens, stop=[] if chat else RAW_STOPS)
