"""Evaluations: each writes per-item rows (JSONL) and a summary JSON (see ``evals.results``).

``TASKS`` maps an evaluation name to (module, config class, run function); the CLI's ``selfalign eval <task>``
and the recipe runner's ``eval`` stage both use it. Modules are imported only when a task is used.
"""
from __future__ import annotations

import importlib

from selfalign.errors import SelfAlignError

TASKS = {
    "calibrate": ("selfalign.calibration", "CalibrateConfig", "run_calibrate",
                  "P(True) calibration on a multiple-choice set: AUROC, ECE, Brier, selection accuracy"),
    "truthfulqa-mc": ("selfalign.evals.truthfulqa_mc", "TruthfulQAMCConfig", "run_truthfulqa_mc",
                      "TruthfulQA MC1/MC2 (lm-eval-harness scoring) + Self-Eval selection (top P(True))"),
    "truthfulqa-gen": ("selfalign.evals.truthfulqa_gen", "TruthfulQAGenConfig", "run_truthfulqa_gen",
                       "TruthfulQA generation: % true, % informative, % true*informative (offline/hf/openai judge)"),
    "knowledge-qa": ("selfalign.evals.knowledge_qa", "KnowledgeQAConfig", "run_knowledge_qa",
                     "knowledge QA (bigbench:qa_wikidata held-out): greedy-answer accuracy against gold targets, "
                     "abstention rate, answer length, Self-Eval P(True) of the answers"),
    "judge-check": ("selfalign.evals.judge_check", "JudgeCheckConfig", "run_judge_check",
                    "validate a TruthfulQA truth/info judge on known answers: balanced accuracy, negation probe"),
    "biogen": ("selfalign.evals.factscore", "BioGenEvalConfig", "run_biogen_eval",
               "BioGEN long-form factuality: FActScore-style with --knowledge, else labelled self-consistency"),
}


def task(name: str):
    """(config class, run function, help) of an evaluation task."""
    if name not in TASKS:
        raise SelfAlignError(f"unknown evaluation {name!r}; available: {', '.join(TASKS)}")
    mod, cls, fn, help_ = TASKS[name]
    m = importlib.import_module(mod)
    return getattr(m, cls), getattr(m, fn), help_
