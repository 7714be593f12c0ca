"""Every pluggable kind, declared once, in lazy tables: the commands (``selfalign <command>``, ``selfalign eval
<task>`` and a recipe's sections), and at the end the engines, the evaluation judges and the confidence methods.

A ``Stage`` names its config dataclass and its run function as ``"module:attribute"`` text (or the objects
themselves), so the table is lazy, as lm-eval's ``MODEL_MAPPING``: nothing heavy is imported until a command is
used, and ``selfalign --help`` stays fast. The CLI builds its subcommands from ``commands()`` and ``evals()``; the
recipe runner (``pipeline``) runs the ``recipe_stages()`` in the order they are declared here, then the ``eval``
section. Adding a stage is one ``register(Stage(...))``.

A recipe stage declares its wiring: ``output``, the main file (or folder) it writes under ``RUN/<stage>/``
(its ``output`` field is set to it); ``inputs``, the fields filled from other stages by default (``"@STAGE"``, or
``"@STAGE:PART"`` for one of the ``parts`` files that stage writes beside its output); ``model_label``, the
``eval.models`` label that names the model it trains; ``plan_check``, a function run when the plan is made
(``(values, {field: upstream values}, where)``).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Callable, Optional, Union

from selfalign.errors import SelfAlignError

Ref = Union[str, Callable, type]  # "module:attribute" or the object itself


def _load(ref: Ref):
    if not isinstance(ref, str):
        return ref
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


@dataclass(frozen=True)
class Stage:
    name: str                          # the command (``sample``) or evaluation task (``truthfulqa-mc``) name
    config: Ref                        # its config dataclass: flags and recipe keys are its fields
    run: Ref                           # run(config) -> summary dict
    help: str
    group: str = ""                    # "" for ``selfalign NAME``, "eval" for ``selfalign eval NAME``
    command: bool = True               # a CLI command (``mc-tune`` is a recipe section only)
    top_level: bool = False            # an evaluation that is also ``selfalign NAME`` (calibrate)
    output: Optional[str] = None       # recipe stages: main output under RUN/<stage>/ (None: not a recipe section)
    inputs: dict = field(default_factory=dict)  # field -> "@STAGE[:PART]", the default wiring
    parts: dict = field(default_factory=dict)   # PART -> file name under RUN/<stage>/, beside the output
    model_label: Optional[str] = None  # eval.models label naming the model this stage trains
    plan_check: Optional[Ref] = None
    revision: int = 0                  # raised when a fix changes the output for the same inputs: in the recipe
    #                                    stage hash (when > 0), so a finished run redoes the stage and what follows

    def load(self) -> tuple[type, Callable]:
        """(config class, run function), imported now."""
        return _load(self.config), _load(self.run)

    @property
    def config_class(self) -> type:
        return _load(self.config)

    def check_plan(self, values: dict, inputs: dict, where: str) -> None:
        if self.plan_check is not None:
            _load(self.plan_check)(values, inputs, where)


_STAGES: dict[str, Stage] = {}
_EVALS: dict[str, Stage] = {}


def register(stage: Stage) -> Stage:
    """Add (or replace) a command; recipe stages run in the order they were first registered."""
    table = _EVALS if stage.group == "eval" else _STAGES
    if stage.group not in ("", "eval"):
        raise ValueError(f"stage {stage.name!r}: group must be '' or 'eval', got {stage.group!r}")
    if stage.group == "" and stage.name == "eval":
        raise ValueError("'eval' is the evaluation group, not a stage name")
    table[stage.name] = stage
    return stage


def unregister(name: str, group: str = "") -> None:
    (_EVALS if group == "eval" else _STAGES).pop(name, None)


def stage(name: str) -> Stage:
    if name not in _STAGES:
        raise SelfAlignError(f"unknown stage {name!r}; available: {', '.join(_STAGES)}")
    return _STAGES[name]


def evaluation(name: str) -> Stage:
    if name not in _EVALS:
        raise SelfAlignError(f"unknown evaluation {name!r}; available: {', '.join(_EVALS)}")
    return _EVALS[name]


def commands() -> dict[str, Stage]:
    """``selfalign NAME`` commands, in declaration order (evaluations with ``top_level`` too)."""
    out = {n: s for n, s in _STAGES.items() if s.command}
    out.update({n: s for n, s in _EVALS.items() if s.top_level and n not in out})
    return out


def evals() -> dict[str, Stage]:
    """``selfalign eval NAME`` tasks, which are also what a recipe's ``eval.tasks`` may name."""
    return dict(_EVALS)


def recipe_stages() -> dict[str, Stage]:
    """The recipe sections that are stages, in the order a recipe runs them (the ``eval`` section comes last)."""
    return {n: s for n, s in _STAGES.items() if s.output is not None}


def recipe_order() -> tuple[str, ...]:
    return (*recipe_stages(), "eval")


def model_labels() -> dict[str, str]:
    """eval.models labels that name a stage's trained model: {"aligned": "@align", ...}."""
    return {s.model_label: f"@{n}" for n, s in recipe_stages().items() if s.model_label}


# --- the table ------------------------------------------------------------------------------------------------
# Recipe stages come first, in the order a recipe runs them: the judges (sk-tune, mc-tune) before the stages that
# may use them (``score: {model: "@sk-tune"}``).
for _s in (
    Stage("sk-data", "selfalign.stages.sk_data:SKDataConfig", "selfalign.stages.sk_data:run_sk_data",
          "build SK-Tuning A/B preference data", output="sk.jsonl", parts={"heldout": "sk.heldout.jsonl"},
          revision=1),  # 1: distractors of the prompt's qa_wikidata template (data/relations.py), 2026-12-07
    Stage("sk-tune", "selfalign.stages.sk_tune:SKTuneConfig", "selfalign.stages.sk_tune:run_sk_tune",
          "SK-Tuning: single-token DPO that calibrates P(True)", output="model",
          inputs={"data": "@sk-data", "valid_data": "@sk-data:heldout"}, model_label="sk-tuned"),
    Stage("mc-data", "selfalign.stages.mc_data:MCDataConfig", "selfalign.stages.mc_data:run_mc_data",
          "multiple-choice self-alignment rows: the judge's P(True) of every option, self-labelled A/B (no gold "
          "label), for sk-tune", output="mc.jsonl"),
    # multiple-choice self-alignment: the self-labelled A/B rows, trained by SK-Tuning's single-token DPO
    Stage("mc-tune", "selfalign.stages.sk_tune:SKTuneConfig", "selfalign.stages.sk_tune:run_sk_tune",
          "sk-tune on the mc-data rows (a recipe section)", command=False, output="model",
          inputs={"data": "@mc-data"}, model_label="mc-aligned"),
    Stage("sample", "selfalign.stages.sample:SampleConfig", "selfalign.stages.sample:run_sample",
          "sample N answers per prompt", output="samples.jsonl"),
    Stage("score", "selfalign.stages.score:ScoreConfig", "selfalign.stages.score:run_score",
          "Self-Eval every sample (P(True) or likelihood)", output="scores.jsonl", inputs={"input": "@sample"},
          plan_check="selfalign.stages.score:plan_check"),
    Stage("pairs", "selfalign.stages.pairs:PairsConfig", "selfalign.stages.pairs:run_pairs",
          "build preference pairs from scored samples", output="pairs.jsonl", inputs={"input": "@score"},
          revision=1),  # 1: answers continue their prompt (pairs.continuation), 2026-12-02
    Stage("align", "selfalign.stages.align:AlignConfig", "selfalign.stages.align:run_align",
          "DPO on preference pairs (TRL), LoRA by default", output="model", inputs={"pairs": "@pairs"},
          model_label="aligned"),
    Stage("sft", "selfalign.stages.sft:SFTConfig", "selfalign.stages.sft:run_sft",
          "supervised fine-tuning on prompt/completion rows (TRL), LoRA by default; --from-sk: the gold facts of "
          "an sk-data file, as knowledge-QA prompts (the SFT-on-gold control)"),
    Stage("run", "selfalign.run.pipeline:RunConfig", "selfalign.run.pipeline:run_recipe",
          "run a recipe (YAML): its stages into one run directory, resumable"),
    Stage("report", "selfalign.report.build:ReportConfig", "selfalign.report.build:run_report",
          "HTML + Markdown report: metrics with intervals, paired differences, calibration plots, differing "
          "answers"),
    Stage("cache", "selfalign.stages.cache:CacheConfig", "selfalign.stages.cache:run_cache",
          "selfalign's model cache (dequantised GGUFs, shared by every venv): list it, or clean what nothing uses"),
    # evaluations: `selfalign eval TASK`, and a recipe's eval.tasks
    Stage("calibrate", "selfalign.evals.calibrate:CalibrateConfig", "selfalign.evals.calibrate:run_calibrate",
          "P(True) calibration on a multiple-choice set: AUROC, ECE, Brier, selection accuracy", group="eval",
          top_level=True),
    Stage("truthfulqa-mc", "selfalign.evals.truthfulqa_mc:TruthfulQAMCConfig",
          "selfalign.evals.truthfulqa_mc:run_truthfulqa_mc",
          "TruthfulQA MC1/MC2 (lm-eval-harness scoring) + Self-Eval selection (top P(True))", group="eval"),
    Stage("truthfulqa-gen", "selfalign.evals.truthfulqa_gen:TruthfulQAGenConfig",
          "selfalign.evals.truthfulqa_gen:run_truthfulqa_gen",
          "TruthfulQA generation: % true, % informative, % true*informative (offline/hf/openai judge)", group="eval"),
    Stage("knowledge-qa", "selfalign.evals.knowledge_qa:KnowledgeQAConfig",
          "selfalign.evals.knowledge_qa:run_knowledge_qa",
          "knowledge QA (bigbench:qa_wikidata held-out): greedy-answer accuracy against gold targets, abstention "
          "rate, answer length, Self-Eval P(True) of the answers", group="eval"),
    Stage("judge-check", "selfalign.evals.judge_check:JudgeCheckConfig", "selfalign.evals.judge_check:run_judge_check",
          "validate a TruthfulQA truth/info judge on known answers: balanced accuracy, negation probe", group="eval"),
    Stage("biogen", "selfalign.evals.factscore:BioGenEvalConfig", "selfalign.evals.factscore:run_biogen_eval",
          "BioGEN long-form factuality: FActScore-style with --knowledge, else labelled self-consistency",
          group="eval"),
    Stage("wikifacts", "selfalign.evals.wikifacts:WikiFactsConfig", "selfalign.evals.wikifacts:run_wikifacts",
          "targeted long-form precision on Wikidata attributes (offline): profiles of held-out qa_wikidata "
          "subjects checked against their triples, with validity gates", group="eval"),
):
    register(_s)
del _s


# --- the other pluggable kinds: one row each ---------------------------------------------------------------------
@dataclass(frozen=True)
class Kind:
    """A lazy name table of one pluggable kind: name -> ``"module:attribute"``. Nothing is imported until a name is
    used; a flag's choices and the error for an unknown name are read from it. Adding an engine, a judge or a
    confidence method is one new file plus one row here. ``suffixed`` names also take ``NAME:ARGUMENT``
    ({"openai": "<base_url>"}: ``openai:http://host/v1``)."""
    kind: str
    rows: dict
    suffixed: dict = field(default_factory=dict)

    def names(self) -> tuple[str, ...]:
        return tuple(self.rows)

    def pattern(self) -> str:
        """A regular expression of every accepted value (suffixed names with their ``:ARGUMENT``)."""
        return "|".join(n + (r"(:\S+)?" if n in self.suffixed else "") for n in self.rows)

    def split(self, value: str) -> tuple[str, str | None]:
        """(name, argument) of ``NAME`` or ``NAME:ARGUMENT``; an unknown name is one error naming the choices."""
        name, sep, arg = value.partition(":")
        if name not in self.rows or (sep and name not in self.suffixed):
            more = "".join(f" (or {n}:{arg})" for n, arg in self.suffixed.items())
            raise SelfAlignError(f"unknown {self.kind} {value!r}; available: {', '.join(self.rows)}{more}")
        return name, (arg if sep else None)

    def load(self, value: str):
        return _load(self.rows[self.split(value)[0]])


ENGINES = Kind("engine", {
    "hf": "selfalign.engines.hf:HFEngine",               # transformers, the default
    "vllm": "selfalign.engines.vllm:VLLMEngine",         # the optional vllm extra
    "openai": "selfalign.engines.openai:OpenAIEngine",   # an OpenAI-compatible server: $OPENAI_BASE_URL or openai:URL
}, suffixed={"openai": "<base_url>"})

# Judges of TruthfulQA generations (``eval truthfulqa-gen``, ``eval judge-check``): evaluation judges, never the
# Self-Eval judge that SK-Tuning trains. Each class builds itself from the judge flags (``Judge.build``).
JUDGES = Kind("judge", {
    "offline-ref": "selfalign.evals.judges.reference:OfflineRefJudge",  # the default: reference-conditioned features
    "offline": "selfalign.evals.judges.embedding:OfflineJudge",         # sentence-embedding similarity
    "lm-ref": "selfalign.evals.judges.yesno:LMRefJudge",                # a local LM shown the references
    "hf": "selfalign.evals.judges.yesno:HFJudge",                       # the paper's fine-tuned yes/no judges
    "openai": "selfalign.evals.judges.yesno:OpenAIJudge",               # the same prompts on an OpenAI endpoint
})

# How ``score`` rates a sample: ``score_rows(engine, rows, cfg) -> rows`` with ``score`` set (cfg: the score
# settings, read by attribute).
CONFIDENCE = Kind("confidence method", {
    "ptrue": "selfalign.selfeval.ptrue:score_rows",                 # Self-Eval P(True), the paper's
    "likelihood": "selfalign.selfeval.likelihood:score_rows",       # mean token log-probability
    "claims": "selfalign.selfeval.claimscore:score_rows",           # mean claim P(True) of a long answer
    "consistency": "selfalign.selfeval.claimscore:score_rows",      # claims re-answered and compared
    "gold-match": "selfalign.selfeval.oracle:score_rows",           # the gold oracle: matches the gold targets
    "prior": "selfalign.selfeval.prior:score_rows",                 # control: the answer's training frequency
    "random": "selfalign.selfeval.random_judge:score_rows",         # control: seeded random scores
    "wikifacts-claims": "selfalign.selfeval.wikifacts_claims:score_rows",  # mean P(True) of a profile's SK claims
    "wikifacts-gold": "selfalign.selfeval.wikifacts_gold:score_rows",      # the oracle: supported - contradicted
    "length": "selfalign.selfeval.length_judge:score_rows",                # control: words (shorter or longer wins)
})

# Fact-check classifiers of long-form facts: ``eval biogen --verifier KIND[:MODEL]`` with --knowledge, each a
# (document, claim) -> P(supported) model (``evals/verifiers/``, one file per kind). Their own table, not JUDGES:
# a judge rates a TruthfulQA answer against reference answers (true, informative); a verifier rates one claim
# against retrieved passages. A --verifier value that names none of these is an LM model spec (FActScore's prompt).
VERIFIERS = Kind("verifier", {
    "hhem": "selfalign.evals.verifiers.hhem:HHEM",                # Vectara HHEM-2.1-Open (remote code)
    "minicheck": "selfalign.evals.verifiers.minicheck:MiniCheck",  # MiniCheck Flan-T5-L / RoBERTa-L / DeBERTa-L
    "nli": "selfalign.evals.verifiers.nli:NLI",                   # any NLI classifier: P(entailment)
}, suffixed={"hhem": "<model>", "minicheck": "<model>", "nli": "<model>"})
