"""Stage 1, sample: N answers per prompt, appended to a JSONL file as each batch finishes."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional

from selfalign.config import ModelArgs, ParallelArgs, opt, require
from selfalign.engines import make_engine
from selfalign.store.lineage import TrackedOutput, settings_of, stamp
from selfalign.answering import SamplingArgs, render, resolve_prompting
from selfalign.store.provenance import meta
from selfalign.store.progress import run_chunks


@dataclass
class SampleConfig(SamplingArgs, ParallelArgs, ModelArgs):
    input: Optional[str] = opt(None, "prompts: a JSONL file of {id, question|prompt}, or builtin / truthfulqa / a "
                                     "TruthfulQA CSV / bigbench:TASK / wikifacts[:free]")
    output: Optional[str] = opt(None, "samples JSONL (appended; finished rows are skipped on rerun)")
    split: Optional[str] = opt(None, "split of a named data set (truthfulqa: train, valid, test, all; bigbench:TASK: "
                                     "train, heldout; wikifacts: train, valid, eval)")
    split_by: str = opt("question", "bigbench:TASK prompts: the split holds out questions (by hash) or subjects "
                                    "(no fact about a held-out subject in any training prompt or demonstration)",
                        choices=("question", "subject"))
    stop: list[str] = opt([], "stop strings (default: none with a chat template, else a blank line or 'Question:'); "
                              'e.g. ["\\n"] for one-line completions')
    limit: Optional[int] = opt(None, "use only the first N prompts", min=1, hint="leave it out for all prompts")
    seed: int = opt(0, "sampling seed", min=0)
    overwrite: bool = opt(False, "start --output afresh (its rows and meta are moved aside to <name>.old-<hash>) "
                          "instead of resuming it")


def run_sample(cfg: SampleConfig, engine=None, rows: list[dict] | None = None) -> dict:
    """Sample ``cfg.n`` answers for every prompt; returns a summary. Resumes from an existing output."""
    from selfalign.data import load_prompts

    require(cfg, "output")
    if rows is None:
        require(cfg, "input")
        rows = load_prompts(cfg.input, cfg.split, cfg.limit, cfg.split_by)
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
                                 "template": tmpl.id, "chat_template": chat, "seed": cfg.seed, **gen.params(),
                                 **({"continuation": g.raw} if g.raw is not None and not chat else {})}, r)
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
