"""Stage 1, sample: N answers per prompt, appended to a JSONL file as each batch finishes."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional

from selfalign import prompts as P
from selfalign.config import Config, ModelArgs, opt, require
from selfalign.engines import GenerationConfig, make_engine
from selfalign.errors import SelfAlignError
from selfalign.io import output_file
from selfalign.lineage import TrackedOutput, settings_of, stamp
from selfalign.provenance import meta
from selfalign.progress import run_chunks


def answer_templates() -> tuple[str, ...]:
    return ("auto", *P.template_names())


CHAT_TEMPLATE = ("auto", "on", "off")


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

    def generation_config(self, chat: bool) -> GenerationConfig:
        return GenerationConfig(n=self.n, temperature=self.temperature, top_p=self.top_p, top_k=self.top_k,
                                max_new_tokens=self.max_new_tokens, stop=[] if chat else RAW_STOPS)


@dataclass
class SampleConfig(SamplingArgs, ModelArgs):
    input: Optional[str] = opt(None, "prompts: a JSONL file of {id, question|prompt}, or builtin / truthfulqa / a TruthfulQA CSV")
    output: Optional[str] = opt(None, "samples JSONL (appended; finished rows are skipped on rerun)")
    split: Optional[str] = opt(None, "split of a named data set (truthfulqa: train, valid, test, all; bigbench:TASK: "
                                     "train, heldout)")
    stop: list[str] = opt([], "stop strings (default: none with a chat template, else a blank line or 'Question:'); "
                              'e.g. ["\\n"] for one-line completions')
    limit: Optional[int] = opt(None, "use only the first N prompts", min=1, hint="leave it out for all prompts")
    seed: int = opt(0, "sampling seed", min=0)
    overwrite: bool = opt(False, "start --output afresh (its rows are deleted) instead of resuming it")


RAW_STOPS = ["\n\nQuestion:", "\nQuestion:", "\n\n"]


def resolve_prompting(engine, template: str, chat_template: str) -> tuple[P.AnswerTemplate, bool]:
    chat = engine.has_chat_template() if chat_template == "auto" else chat_template == "on"
    if chat and not engine.has_chat_template():
        raise SelfAlignError("--chat-template on, but this model's tokenizer has no chat template")
    if template == "auto":
        template = "plain" if chat else "qa"
    return P.answer_template(template), chat


def render(engine, row: dict, tmpl: P.AnswerTemplate, chat: bool) -> str:
    """The exact text fed to the model. A row's own ``prompt`` wins over the template."""
    text = row.get("prompt") or tmpl.render(row["question"])
    return engine.chat_prompt(text) if chat else text


def run_sample(cfg: SampleConfig, engine=None, rows: list[dict] | None = None) -> dict:
    """Sample ``cfg.n`` answers for every prompt; returns a summary. Resumes from an existing output."""
    from selfalign.data import load_prompts

    require(cfg, "output")
    if rows is None:
        require(cfg, "input")
        rows = load_prompts(cfg.input, cfg.split, cfg.limit)
    output_file(cfg.output)
    key = lambda r: (str(r["id"]), r["sample_idx"])  # noqa: E731
    with TrackedOutput(cfg.output, key, settings_of(cfg), inputs=[cfg.input], overwrite=cfg.overwrite) as out:
        engine = engine or make_engine(cfg.engine, **cfg.engine_kwargs())
        tmpl, chat = resolve_prompting(engine, cfg.template, cfg.chat_template)
        gen = cfg.generation_config(chat)
        if cfg.stop:
            gen.stop = list(cfg.stop)
        out.record(meta(cfg, stage="sample", model_info=engine.info, prompt_template=tmpl.id, chat_template=chat))
        t0, n_tokens, n_new = time.time(), 0, 0
        # a prompt whose row changed since its samples were drawn is sampled again (its old samples are dropped)
        todo = out.todo(rows, lambda r: [(str(r["id"]), k) for k in range(cfg.n)])

        def sample_batch(batch: list[dict]) -> list[dict]:
            nonlocal n_tokens, n_new
            texts = [render(engine, r, tmpl, chat) for r in batch]
            new_rows = []
            for r, text, outs in zip(batch, texts, engine.generate(texts, gen, seed=cfg.seed)):
                for k, g in enumerate(outs):
                    row = stamp({**r, "id": r["id"], "sample_idx": k, "question": r.get("question") or r["prompt"],
                                 "prompt": text, "response": g.text, "n_tokens": g.n_tokens,
                                 "template": tmpl.id, "chat_template": chat, "seed": cfg.seed, **gen.params()}, r)
                    if not out.done(row):
                        new_rows.append(row)
                        n_tokens += g.n_tokens
            n_new += len(new_rows)
            return new_rows

        run_chunks(out, todo, cfg.batch_size, sample_batch, "sample", "prompt")
    dt = time.time() - t0
    return {"output": cfg.output, "prompts": len(rows), "new_samples": n_new, "skipped_prompts": len(rows) - len(todo),
            "redone_samples": out.redone,
            "tokens": n_tokens, "seconds": round(dt, 2), "tokens_per_s": round(n_tokens / dt, 1) if dt else None}
