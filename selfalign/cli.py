"""`selfalign <stage>`: parse flags, call the library, print a summary. No logic of its own."""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import warnings

from selfalign import __version__, registry
from selfalign.config import add_args, from_args
from selfalign.errors import Interrupted, SelfAlignError
from selfalign.store.provenance import redact


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``selfalign sample: error: argument --n: invalid int value: 'four'``."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """Every command with its help line; the flags only of the command ``argv`` names (all of them without
    ``argv``), so ``selfalign --help`` imports no stage and no torch."""
    words = [a for a in argv if not a.startswith("-")] if argv is not None else None
    command = words[0] if words else None
    task = words[1] if words and command == "eval" and len(words) > 1 else None

    def wanted(name: str, group: str = "") -> bool:
        return argv is None or (name == task if group == "eval" else name == command)

    parser = Parser(prog="selfalign", description="Self-Alignment for Factuality: sample, "
                                     "self-evaluate, build preference pairs, DPO, evaluate.")
    parser.add_argument("--version", action="version", version=f"selfalign {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, st in registry.commands().items():
        help_ = st.help.replace("%", "%%")  # argparse formats help strings with %
        one = sub.add_parser(name, help=help_, description=help_)
        if wanted(name):
            add_args(one, st.config_class)
    ev = sub.add_parser("eval", help="evaluate a model (selfalign eval TASK --help)")
    ev_sub = ev.add_subparsers(dest="task", metavar="TASK")
    for name, st in registry.evals().items():
        help_ = st.help.replace("%", "%%")
        one = ev_sub.add_parser(name, help=help_, description=help_)
        if wanted(name, "eval"):
            add_args(one, st.config_class)
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


def _positional_tail(cls, args, extra: list[str]) -> list[str]:
    """Words left over after the options (``run demo --dry-run model=x``) belong to the command's list positional
    (the recipe overrides), as if they stood before the options; anything else is left for the caller."""
    many = [f.name for f in dataclasses.fields(cls) if f.metadata.get("positional") and f.metadata.get("metavar")
            and isinstance(getattr(args, f.name, None), list)]
    if not many or not extra:
        return extra
    words = [w for w in extra if not w.startswith("-")]
    if len(words) != len(extra):  # an unknown flag among them: argparse's own message
        return extra
    setattr(args, many[0], [*getattr(args, many[0]), *words])
    return []


def _one_line(text: str) -> str:
    return " ".join(text.split())


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # transformers 5 renamed gradient checkpointing; PEFT and TRL still read the old property on every model load,
    # and each read warned in every stage's output (selfalign itself sets the new field: stages/align.py)
    warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
    argv = sys.argv[1:] if argv is None else list(argv)
    for a in argv:  # bytes that are not UTF-8 (a file name): Python holds them as lone surrogates, not writable text
        if isinstance(a, str) and any("\ud800" <= c <= "\udfff" for c in a):
            print(f"selfalign: error: argument {os.fsencode(a)!r} is not UTF-8 text; use a name in UTF-8",
                  file=sys.stderr)
            return 2
    parser = build_parser(argv)
    args, extra = parser.parse_known_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    if args.command == "eval":
        if not args.task:
            print(f"selfalign eval: error: name a task: {', '.join(registry.evals())} (see selfalign eval --help)",
                  file=sys.stderr)
            return 2
        cls, run = registry.evaluation(args.task).load()
        args.command = f"eval {args.task}"
    else:
        cls, run = registry.commands()[args.command].load()
    extra = _positional_tail(cls, args, extra)
    if extra and "trl" not in {f.name for f in dataclasses.fields(cls)}:
        parser.parse_args(argv)  # argparse's own "unrecognized arguments" message, exit 2
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        cfg = from_args(cls, args)
        if extra:  # --trl.KEY VALUE / TRL's --KEY VALUE: checked against the trainer's config class
            from selfalign.training.trl_args import parse_trl_argv

            cfg.trl = {**(cfg.trl or {}), **parse_trl_argv(extra, cls.trl_class(), cls.trl_owned())}
        from selfalign.store.progress import interruptible

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
