"""`selfalign <stage>`: parse flags, call the library, print a summary. No logic of its own."""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys

from selfalign import __version__
from selfalign.config import add_args, from_args
from selfalign.errors import Interrupted, SelfAlignError
from selfalign.provenance import redact


def _commands():
    # imported lazily so that `selfalign --help` stays fast
    from selfalign.align import AlignConfig, run_align
    from selfalign.calibration import CalibrateConfig, run_calibrate
    from selfalign.mc_data import MCDataConfig, run_mc_data
    from selfalign.pairs import PairsConfig, run_pairs
    from selfalign.sampling import SampleConfig, run_sample
    from selfalign.scoring import ScoreConfig, run_score
    from selfalign.sktune import SKTuneConfig, run_sk_tune
    from selfalign.sktuning_data import SKDataConfig, run_sk_data
    from selfalign.pipeline import RunConfig, run_recipe
    from selfalign.report import ReportConfig, run_report

    return {
        "sample": (SampleConfig, run_sample, "sample N answers per prompt"),
        "score": (ScoreConfig, run_score, "Self-Eval every sample (P(True) or likelihood)"),
        "pairs": (PairsConfig, run_pairs, "build preference pairs from scored samples"),
        "sk-data": (SKDataConfig, run_sk_data, "build SK-Tuning A/B preference data"),
        "sk-tune": (SKTuneConfig, run_sk_tune, "SK-Tuning: single-token DPO that calibrates P(True)"),
        "mc-data": (MCDataConfig, run_mc_data, "multiple-choice self-alignment rows: the judge's P(True) of every "
                                               "option, self-labelled A/B (no gold label), for sk-tune"),
        "calibrate": (CalibrateConfig, run_calibrate, "P(True) calibration: AUROC, ECE, Brier, selection accuracy"),
        "align": (AlignConfig, run_align, "DPO on preference pairs (TRL), LoRA by default"),
        "run": (RunConfig, run_recipe, "run a recipe (YAML): its stages into one run directory, resumable"),
        "report": (ReportConfig, run_report, "HTML + Markdown report: metrics with intervals, paired differences, "
                                             "calibration plots, differing answers"),
    }


def _eval_commands():
    from selfalign import evals

    return {name: evals.task(name) for name in evals.TASKS}


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``selfalign sample: error: argument --n: invalid int value: 'four'``."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="selfalign", description="Self-Alignment for Factuality: sample, "
                                     "self-evaluate, build preference pairs, DPO, evaluate.")
    parser.add_argument("--version", action="version", version=f"selfalign {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (cls, _, help_) in _commands().items():
        p = sub.add_parser(name, help=help_, description=help_)
        add_args(p, cls)
    ev = sub.add_parser("eval", help="evaluate a model (selfalign eval TASK --help)")
    ev_sub = ev.add_subparsers(dest="task", metavar="TASK")
    for name, (cls, _, help_) in _eval_commands().items():
        help_ = help_.replace("%", "%%")  # argparse formats help strings with %
        add_args(ev_sub.add_parser(name, help=help_, description=help_), cls)
    return parser


def print_summary(name: str, summary: dict) -> None:
    def fmt(v):
        return f"{v:.4g}" if isinstance(v, float) else v

    print(f"\n{name}: done")
    for k, v in summary.items():
        if isinstance(v, dict):
            v = ", ".join(f"{a}={fmt(b) if not isinstance(b, (dict, list)) else json.dumps(b, default=str)}"
                          for a, b in v.items())
        elif isinstance(v, list):
            v = json.dumps(v, default=str)
        if isinstance(v, str) and len(v) > 300:
            v = v[:297] + "..."
        print(f"  {k:24s} {fmt(v)}")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    if args.command == "eval":
        if not args.task:
            print(f"selfalign eval: error: name a task: {', '.join(_eval_commands())} (see selfalign eval --help)",
                  file=sys.stderr)
            return 2
        cls, run, _ = _eval_commands()[args.task]
        args.command = f"eval {args.task}"
    else:
        cls, run, _ = _commands()[args.command]
    if extra and "trl" not in {f.name for f in dataclasses.fields(cls)}:
        parser.parse_args(argv)  # argparse's own "unrecognized arguments" message, exit 2
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        cfg = from_args(cls, args)
        if extra:  # --trl.KEY VALUE / TRL's --KEY VALUE: checked against the trainer's config class
            from selfalign.trl_args import parse_trl_argv

            cfg.trl = {**(cfg.trl or {}), **parse_trl_argv(extra, cls.trl_class())}
        from selfalign.progress import interruptible

        with interruptible(lambda: "rerun the same command to resume"):  # stages name the rows they kept
            summary = run(cfg)
    except SelfAlignError as e:
        print(f"selfalign {args.command}: error: {_one_line(redact(str(e)))}", file=sys.stderr)
        return 2
    except OSError as e:  # a file the library did not expect to fail (it reports the ones it reads and writes)
        where = f"{e.filename}: " if e.filename else ""
        print(f"selfalign {args.command}: error: {where}{_one_line(redact(e.strerror or str(e)))}", file=sys.stderr)
        return 2
    except Interrupted as e:
        print(f"selfalign {args.command}: interrupted: {redact(str(e))}", file=sys.stderr, flush=True)
        return e.code
    except KeyboardInterrupt:
        print(f"\nselfalign {args.command}: interrupted; finished rows are saved, rerun the same command to resume",
              file=sys.stderr)
        return 130
    summary = redact(summary)
    print_summary(args.command, summary)
    if os.environ.get("SELFALIGN_JSON_SUMMARY"):
        print(json.dumps(summary, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
