"""Stage 2, score: Self-Eval confidence for every sample (P(True) by default, sequence likelihood, or claim-level
P(True) / self-consistency for long-form answers), or the oracle ``gold-match`` (1 if the sample matches a gold
target of its prompt, 0 if not; only for prompts with ``targets``, e.g. bigbench:qa_wikidata: an upper bound, not
self-alignment). Three controls read no model either: ``prior`` (the answer's frequency among the gold answers of the
relation's training questions, ``selfeval/prior.py``), ``random`` (seeded random scores, ``selfeval/random_judge.py``)
and ``length`` (words, shorter or longer preferred, ``selfeval/length_judge.py``). Profiles of ``sample --input
wikifacts``: ``wikifacts-claims`` (mean P(True) of the profile's (relation, value) claims in the judge's SK format)
and its oracle ``wikifacts-gold`` (the benchmark's verifier: supported - contradicted).

A confidence method's module may declare ``NEEDS_MODEL = False`` (no engine is loaded) and a
``check_rows(rows, path, cfg)`` run on the input before anything is written."""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Optional

from selfalign.config import ModelArgs, ParallelArgs, opt, require
from selfalign.engines import make_engine
from selfalign.errors import SelfAlignError
from selfalign.registry import CONFIDENCE
from selfalign.store.io import read_jsonl
from selfalign.store.guard import OutputGuard
from selfalign.store.lineage import TrackedOutput, settings_of, stamp
from selfalign.store.provenance import meta
from selfalign.store.progress import run_chunks
from selfalign.selfeval.claims import CLAIM_METHODS, QUESTION_METHODS
from selfalign.selfeval.claimscore import AGGREGATES, CONTEXTS
from selfalign.selfeval.prompt import SelfEvalArgs, SelfEvalPrompt

ORACLE = "gold-match"


@dataclass
class ScoreConfig(SelfEvalArgs, ParallelArgs, ModelArgs):
    input: Optional[str] = opt(None, "samples JSONL (rows with id, sample_idx, question, response)")
    output: Optional[str] = opt(None, "scores JSONL (appended; finished rows are skipped on rerun)")
    method: str = opt("ptrue", "confidence method: ptrue (Self-Eval P(True)), likelihood (mean token log-prob), "
                               "claims (P(True) per atomic claim), consistency (claim re-answer agreement), "
                               "gold-match (the oracle: normalised match against the prompt's gold targets); "
                               "controls without a model: prior (the answer's frequency among the relation's "
                               "training gold answers), random (seeded random scores), length (words); wikifacts "
                               "profiles: wikifacts-claims (mean P(True) of the (relation, value) claims in the "
                               "judge's SK format), wikifacts-gold (the oracle: verified supported - contradicted)",
                      choices=CONFIDENCE.names)
    chat: bool = opt(False, "P(True): wrap the prompt in the model's chat template (off: raw text, as the paper)")
    batch_size: int = opt(16, "rows per forward pass", min=1)
    claim_method: str = opt("rules", "claims/consistency: decomposition by rules (offline) or llm (FActScore prompt)",
                            choices=CLAIM_METHODS)
    claim_questions: str = opt("template", "claims/consistency: question per claim: template (= yesno, "
                                                "'Is it true that X?') or llm (= wh, a wh-question)",
                               choices=QUESTION_METHODS)
    claim_agg: str = opt("mean", "claims/consistency: response score = mean or min over its claims",
                         choices=tuple(AGGREGATES))
    claim_context: str = opt("claim-question", "claims: P(True) question = the claim's question, or prompt (the "
                                               "row's own question)", choices=CONTEXTS)
    claim_cache: Optional[str] = opt(None, "claims/consistency: JSONL cache of decompositions (reused across runs)")
    consistency_k: int = opt(5, "consistency: sampled answers per claim question", min=1)
    consistency_max_new_tokens: int = opt(32, "consistency: tokens per sampled answer at most", min=1)
    seed: int = opt(0, "consistency: sampling seed; random: the seed of the scores", min=0)
    prior_split_by: Optional[str] = opt(None, "prior: the split the prompts were drawn under (knowledge-qa's "
                                              "--split-by); its training questions are the pool (required)",
                                        choices=("question", "subject"))
    prior_alpha: float = opt(1.0, "prior: add-alpha smoothing, score = (k + alpha) / (n + 2 alpha)", gt=0)
    length_prefer: str = opt("shorter", "length: the answer preferred, shorter (score = -words) or longer (+words)",
                             choices=("shorter", "longer"))
    overwrite: bool = opt(False, "start --output afresh (its rows and meta are moved aside to <name>.old-<hash>) "
                          "instead of resuming it")


def _key(r: dict):
    return (str(r["id"]), r.get("sample_idx", 0))


def score_rows(engine, rows: list[dict], cfg: ScoreConfig) -> list[dict]:
    """Add ``score`` (and for P(True): ``p_true``, ``p_true_mass``) to rows, by the confidence method that
    ``registry.CONFIDENCE`` names; a pure function of its inputs."""
    return CONFIDENCE.load(cfg.method)(engine, rows, cfg)


def method_module(method: str):
    """The module of a confidence method (its ``NEEDS_MODEL`` and ``check_rows``, when it declares them)."""
    return sys.modules.get(CONFIDENCE.load(method).__module__)


def check_targets(rows: list[dict], path) -> None:
    """gold-match needs every row's gold ``targets`` (a non-empty list of strings)."""
    from selfalign.errors import InputError
    from selfalign.store.io import line_numbers

    for r, n in zip(rows, line_numbers(path)):
        t = r.get("targets")
        if not (isinstance(t, list) and t and all(isinstance(x, str) for x in t)):
            raise InputError(path, f"--method {ORACLE} needs gold 'targets' (a list of strings) on every row; this "
                                   "row has none (sample from a source with targets, e.g. bigbench:qa_wikidata)", n)


WIKIFACTS = ("wikifacts-claims", "wikifacts-gold")


def plan_check(values: dict, inputs: dict, where: str) -> None:
    """At plan time: a recipe whose score stage is the oracle must sample from prompts that have gold targets, and
    one that scores wikifacts claims from the wikifacts prompts."""
    from selfalign.data import has_targets

    src = inputs.get("input", {}).get("input") if "input" in inputs else values.get("input")
    split = inputs.get("input", {}).get("split") if "input" in inputs else None
    if values.get("method") in WIKIFACTS and "input" in inputs and not str(src).startswith("wikifacts"):
        raise SelfAlignError(f"{where}: score.method {values['method']} reads the claims of wikifacts profiles, but "
                             f"the samples come from {src}; sample --input wikifacts")
    if values.get("method") != ORACLE:
        return
    if src and has_targets(str(src), split) is False:
        raise SelfAlignError(f"{where}: score.method {ORACLE} ranks samples by their gold targets, but the prompts "
                             f"({src}) have none; sample from a source with targets (e.g. bigbench:qa_wikidata)")


def run_score(cfg: ScoreConfig, engine=None) -> dict:
    require(cfg, "input", "output")
    need = ["id", "question", "response"] + (["prompt"] if cfg.method == "likelihood" else [])
    rows = read_jsonl(cfg.input, required=need, unique=_key, unique_name="(id, sample_idx)",
                      fields=["sample_idx", "prompt"])
    if cfg.method == ORACLE:
        check_targets(rows, cfg.input)
    module = method_module(cfg.method)
    if hasattr(module, "check_rows"):
        module.check_rows(rows, cfg.input, cfg)
    cache = cfg.claim_cache if cfg.method in ("claims", "consistency") else None
    with OutputGuard(cfg.output, inputs=[cfg.input], shared=[cache], overwrite=cfg.overwrite) as g, \
            TrackedOutput(cfg.output, _key, settings_of(cfg), guard=g) as out:
        if cache:
            from selfalign.selfeval.claims import ClaimCache

            ClaimCache(cache).close()  # a bad cache is an error before any model loads
        if engine is None and cfg.method != ORACLE and getattr(module, "NEEDS_MODEL", True):  # the oracle: targets
            engine = make_engine(cfg.engine, **cfg.engine_kwargs())
        out.record(meta(cfg, stage="score", model_info=getattr(engine, "info", None),
                        selfeval_template=SelfEvalPrompt.of(cfg).template_id
                        if cfg.method in ("ptrue", "claims", "wikifacts-claims") else None))
        t0 = time.time()
        todo = out.todo(rows, lambda r: [_key(r)])  # a sample that changed since it was scored is scored again

        def score(part: list[dict]) -> list[dict]:
            return [stamp(r, it) for r, it in zip(score_rows(engine, part, cfg), part)]

        # chunks of several batches: the engine sorts each chunk by length, and every chunk is written at once
        n_new = run_chunks(out, todo, cfg.batch_size * 4, score, f"score ({cfg.method})", "row")
    dt = time.time() - t0
    return {"output": cfg.output, "rows": len(rows), "new_rows": n_new, "skipped_rows": len(rows) - n_new,
            "redone_rows": out.redone, "seconds": round(dt, 2),
            "rows_per_s": round(n_new / dt, 2) if dt and n_new else None}
