"""Stage 3, pairs: turn Self-Eval scores into DPO preference pairs (prompt / chosen / rejected)."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from selfalign.config import Config, opt, require
from selfalign.errors import InputError
from selfalign.store.guard import OutputGuard
from selfalign.store.io import check_fields, duplicate, input_file, line_numbers, read_jsonl, write_jsonl_atomic
from selfalign.store.lineage import result_settings
from selfalign.store.provenance import meta

STRATEGIES = ("split", "all", "best-worst")


@dataclass
class PairsConfig(Config):
    input: Optional[str] = opt(None, "scores JSONL (rows with id, sample_idx, prompt, question, response, score)")
    output: Optional[str] = opt(None, "pairs JSONL (rewritten on every run; TRL prompt/chosen/rejected rows)")
    strategy: str = opt("split", "split (top fraction vs the rest, the paper's default), all (every ordered pair "
                                 "with a score gap), best-worst (one pair per prompt)", choices=list(STRATEGIES))
    top_fraction: float = opt(0.5, "split: fraction of a prompt's distinct samples that are chosen (rounded up)",
                              gt=0, max=1)
    margin: float = opt(0.0, "keep only pairs whose score difference is >= margin (ties are always dropped)", min=0)
    max_pairs_per_prompt: Optional[int] = opt(None, "keep at most N pairs per prompt, those with the largest margin",
                                              min=1)
    DEPRECATED = {"seed": "pairs has no randomness (the pair choice is deterministic); the value is ignored"}


@dataclass
class _Sample:
    text: str          # the first occurrence's response, as written
    scores: list
    cont: str | None = None  # its ``continuation`` field: the answer exactly as it followed the prompt
    rank: int = 0

    @property
    def score(self) -> float:
        return sum(self.scores) / len(self.scores)


def check_rows(rows: list[dict], path="rows", lines: list[int] | None = None) -> None:
    """Raise InputError (naming ``path`` and line) for a missing field, a field of the wrong type (a non-numeric
    score, a non-text response: ``io.FIELDS``), a duplicate (id, sample_idx), or an id whose samples were drawn
    with different prompts. Without ``lines``, the line is the 1-based row number."""
    first_prompt: dict[str, str] = {}
    seen: dict = {}
    for k, r in enumerate(rows):
        line = lines[k] if lines else k + 1
        for field in ("id", "prompt", "response"):
            if r.get(field) is None:
                raise InputError(path, f"missing field {field!r}", line)
        if "score" not in r:
            raise InputError(path, "missing field 'score'", line)
        check_fields(r, path, line, ("id", "prompt", "response", "score", "sample_idx", "continuation"))
        prev = first_prompt.setdefault(str(r["id"]), r["prompt"])
        if prev != r["prompt"]:
            raise InputError(path, f"id {r['id']!r} has samples with different prompts; pairs need one prompt", line)
        if "sample_idx" in r:
            key = (str(r["id"]), r["sample_idx"])
            if key in seen:
                raise duplicate(path, "(id, sample_idx)", key, seen[key], line)
            seen[key] = line


def _candidates(n: int, strategy: str, top_fraction: float) -> list[tuple[int, int]]:
    """(chosen rank, rejected rank) index pairs for ``n`` distinct samples ranked by score, best first."""
    if strategy == "split":
        n_top = min(n - 1, max(1, math.ceil(top_fraction * n)))
        return [(i, j) for i in range(n_top) for j in range(n_top, n)]
    if strategy == "all":
        return [(i, j) for i in range(n) for j in range(i + 1, n)]
    return [(0, n - 1)]


def continuation(prompt: str, text: str, chat=None, written: str | None = None) -> str:
    """The answer as it followed its prompt. Samples are stored stripped; a plain-text prompt that ends mid-line
    ("The country of Aswan Dam is") was continued with a space (" Egypt"), and TRL tokenises prompt + completion as
    one string, so without it DPO trains "isEgypt" (TRL then also cuts " is" off the prompt): tokens the model never
    wrote, in a context it never sees. The sample stage records each answer as the engine continued the prompt
    (``written``, the row's ``continuation`` field): that is used as it is. Rows without it (older sample files,
    hand-made rows) get the rule: chat prompts and prompts ending in whitespace keep the text as it is, other
    prompts a leading space."""
    if chat is not True and written is not None and written.strip() == text.strip() and written.strip():
        return written
    if chat is True or not prompt or prompt[-1].isspace() or not text or text[0].isspace():
        return text
    return " " + text


def build_pairs(rows: list[dict], strategy: str = "split", top_fraction: float = 0.5, margin: float = 0.0,
                max_pairs_per_prompt: int | None = None, path="rows",
                lines: list[int] | None = None) -> tuple[list[dict], dict]:
    """Preference pairs from scored samples, and a report of what was dropped and why.

    Rows are grouped by ``id``; chosen and rejected are the answers as they continue the prompt (``continuation``);
    identical responses (after whitespace strip) become one sample with the mean
    score; samples scored None (or NaN/inf) are dropped. Distinct samples are ranked by score (ties: first seen first).
    Pairs with a zero score difference (ties) or a difference below ``margin`` are dropped. Output order:
    prompt first appearance, then chosen rank, then rejected rank. Bad rows are errors naming ``path`` and
    ``lines`` (see ``check_rows``); the options are checked as ``PairsConfig`` declares them.
    """
    PairsConfig(strategy=strategy, top_fraction=top_fraction, margin=margin, max_pairs_per_prompt=max_pairs_per_prompt)
    check_rows(rows, path, lines)
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(str(r["id"]), []).append(r)
    rep = {"rows": len(rows), "prompts": len(groups), "prompts_with_pairs": 0, "unscored_samples": 0,
           "duplicates_collapsed": 0, "ties_dropped": 0, "below_margin_dropped": 0, "capped_dropped": 0,
           "pairs": 0, "single_sample_prompts": 0, "single_sample_ids": [], "no_pair_ids": [], "largest_gap": None}
    pairs: list[dict] = []
    for pid, grp in groups.items():
        samples: dict[str, _Sample] = {}
        for r in grp:
            s = r["score"]
            if s is None or not math.isfinite(s):
                rep["unscored_samples"] += 1
                continue
            key = r["response"].strip()
            if key in samples:
                samples[key].scores.append(s)
                rep["duplicates_collapsed"] += 1
            else:
                samples[key] = _Sample(r["response"], [s], cont=r.get("continuation"))
        ranked = sorted(samples.values(), key=lambda x: -x.score)  # stable: equal scores keep first-seen order
        if len(ranked) < 2:
            rep["single_sample_ids"].append(pid)
            continue
        keep = []
        for i, j in _candidates(len(ranked), strategy, top_fraction):
            diff = ranked[i].score - ranked[j].score
            rep["largest_gap"] = diff if rep["largest_gap"] is None else max(rep["largest_gap"], diff)
            if diff <= 0:
                rep["ties_dropped"] += 1
            elif diff < margin:
                rep["below_margin_dropped"] += 1
            else:
                keep.append((i, j, diff))
        if max_pairs_per_prompt is not None and len(keep) > max_pairs_per_prompt:
            best = sorted(keep, key=lambda p: -p[2])[:max_pairs_per_prompt]  # stable: equal margins keep order
            rep["capped_dropped"] += len(keep) - len(best)
            keep = sorted(best, key=lambda p: (p[0], p[1]))
        if not keep:
            rep["no_pair_ids"].append(pid)
            continue
        rep["prompts_with_pairs"] += 1
        head = grp[0]
        for i, j, diff in keep:
            c, r_ = ranked[i], ranked[j]
            chat = head.get("chat_template")
            pairs.append({"id": pid, "prompt": head["prompt"], "question": head.get("question") or head["prompt"],
                          "chosen": continuation(head["prompt"], c.text, chat, c.cont),
                          "rejected": continuation(head["prompt"], r_.text, chat, r_.cont), "chosen_score": c.score,
                          "rejected_score": r_.score, "margin": diff, "strategy": strategy,
                          "chosen_count": len(c.scores), "rejected_count": len(r_.scores)})
    rep["pairs"] = len(pairs)
    rep["single_sample_prompts"] = len(rep["single_sample_ids"])
    return pairs, rep


def _why_none(rep: dict, margin: float) -> str:
    if rep["below_margin_dropped"]:
        return (f"--margin {margin:g} dropped all {rep['below_margin_dropped']} candidate pairs (the largest score gap "
                f"within a prompt is {rep['largest_gap']:.3g}); lower --margin")
    if rep["ties_dropped"]:
        return f"every candidate pair was a tie ({rep['ties_dropped']}): the judge gave equal scores"
    return "no prompt has two distinct scored samples (sample more, or check the scores)"


def run_pairs(cfg: PairsConfig) -> dict:
    """Read scores, build pairs, write them (atomically) and ``<output>.meta.json``; return a summary."""
    require(cfg, "input", "output")
    src, dst = input_file(cfg.input), Path(cfg.output)
    # rewritten whole on every run: pairs made with other settings are moved aside first; the meta says which
    # settings and input made them
    with OutputGuard(dst, inputs=[src], settings=result_settings(cfg), whole=[dst]) as g:
        t0 = time.time()
        rows = read_jsonl(src)  # build_pairs checks the fields (check_rows), naming the line
        pairs, report = build_pairs(rows, cfg.strategy, cfg.top_fraction, cfg.margin, cfg.max_pairs_per_prompt, src,
                                    line_numbers(src))
        if rows and not pairs:  # an empty pairs file would only fail later, in align, without the reason
            raise InputError(src, f"no preference pairs from {len(rows)} rows: {_why_none(report, cfg.margin)}")
        write_jsonl_atomic(g.begin().output, pairs)
        g.record(meta(cfg, stage="pairs", report=report))
    return {"output": str(dst), "strategy": cfg.strategy, "rows": len(rows), "prompts": report["prompts"],
            "pairs": len(pairs), "single_sample_prompts": report["single_sample_prompts"],
            "seconds": round(time.time() - t0, 2), "report": report}
