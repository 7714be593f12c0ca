"""Bad-input cases for every command, generated from the config declarations and the record schemas.

``cases(root, model)`` writes the files it needs under ``root`` and returns ``Case``s: a command line, the kind of
bad input, and a piece of text the one-line error must contain (the flag, the recipe key, or the file and line).
``run_case`` runs one in-process through ``selfalign.cli.main``. Used by tests/test_fuzz_inputs.py (every case
must hold: exit 2, one line on stderr, no traceback) and benchmarks/reliability/reliability_bad_input.py (the table).
"""
from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import typing
import warnings
from dataclasses import dataclass
from pathlib import Path

import yaml

from fuzz_records import CSV, DUPLICATES, GOOD, KNOWN, MC_TASK, RESULT, WRONG
from selfalign import registry
from selfalign.config import _hints, _unwrap, flag



@dataclass
class Case:
    command: str  # the table row: "sample", "eval biogen", ...
    kind: str     # bad flag, bad recipe value, non-UTF-8 file, directory as file, missing file, wrong JSON type, ...
    argv: list
    want: str     # the error line must contain this
    what: str = ""
    known: str = ""  # a case known not to hold yet, and why

    def __str__(self):
        return f"{self.command} [{self.kind}] {self.what}"


@dataclass
class Result:
    code: int
    err: str
    out: str

    def held(self, case: Case) -> bool:
        lines = self.err.strip().splitlines()
        return self.code == 2 and len(lines) == 1 and "Traceback" not in self.err and case.want in lines[0]


_PARSER = []


class ModelReached(BaseException):
    """Raised where a model would load (``run_case(..., stop_at_model=True)``): the input got that far."""


def _reached(*a, **kw):
    raise ModelReached()


def run_case(case: Case, stop_at_model: bool = False) -> Result:
    """Run one case in-process; ``stop_at_model``: stop where a model or engine would load (code "model")."""
    from unittest import mock

    from selfalign import cli

    if not _PARSER:  # one parser for all cases (building it is most of a failing case's time)
        _PARSER.append(cli.build_parser())
    err, out = io.StringIO(), io.StringIO()

    def show(message, category, filename, lineno, file=None, line=None):  # a warning is a line on stderr too
        err.write(warnings.formatwarning(message, category, filename, lineno, line))

    stops = [mock.patch(where, _reached) for where in ("selfalign.models.load", "selfalign.engines.make_engine",
                                                       "selfalign.engines.pool.PoolEngine.__init__",
                                                       "selfalign.evals.judges.embedding.Embedder.__init__")] \
        if stop_at_model else []
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out), warnings.catch_warnings(), \
            mock.patch.object(cli, "build_parser", lambda *a: _PARSER[0]), contextlib.ExitStack() as stack:
        for p in stops:
            stack.enter_context(p)
        warnings.simplefilter("always")
        warnings.showwarning = show
        try:
            code = cli.main([a if isinstance(a, str) else str(a) for a in case.argv])
        except SystemExit as e:  # argparse
            code = e.code
        except ModelReached:
            code = "model"
        except Exception:  # noqa: BLE001 - a traceback is exactly what a case must not give
            import traceback

            traceback.print_exc(file=err)
            code = 1
    return Result(code, err.getvalue(), out.getvalue())


def _jsonl(path: Path, rows) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8",
                    errors="surrogateescape")
    return path


def _good(kind: str, k: int = 0) -> dict:
    row = dict(GOOD[kind])
    for key in ("id", "key", "title"):
        if key in row and k:
            row[key] = f"{row[key]}-{k}"
    if kind == "pairs" and k:
        row["prompt"] += f" {k}"
    return row


class Files:
    """Valid input files under ``root`` (one of each kind), and bad variants, each a fresh file."""

    def __init__(self, root: Path):
        self.root, self.n = root, 0
        root.mkdir(parents=True, exist_ok=True)
        self.good = {kind: _jsonl(root / "good" / f"{kind}.jsonl", [_good(kind), _good(kind, 1)]) for kind in GOOD}
        self.good["mc_task"] = root / "good" / "mc_task.json"
        self.good["mc_task"].write_text(json.dumps(MC_TASK))
        self.good["csv"] = root / "good" / "tqa.csv"
        self.good["csv"].write_text(CSV)
        self.good["result"] = root / "good" / "result.json"
        self.good["result"].write_text(json.dumps(RESULT))
        _jsonl(root / "good" / "result.rows.jsonl", [{"id": "a", "m": 1.0}, {"id": "b", "m": 0.0}])
        self.good["recipe"] = root / "good" / "recipe.yaml"
        self.good["recipe"].write_text(f"model: m\nsample: {{input: {self.good['prompts']}}}\n")

    def fresh(self, name: str) -> Path:
        self.n += 1
        d = self.root / f"case{self.n:04d}"
        d.mkdir()
        return d / name

    def out(self, name: str = "out.jsonl") -> Path:
        return self.fresh(name)


# --- per command: its base command line and the files it reads and writes -----------------------------------------
def commands(files: Files, model: str) -> dict:
    """command -> (argv builder taking {flag: path} overrides, config class, {input flag: record kind},
    {output flag: "file" | "dir"})."""
    g = files.good
    dev = ["--model", model, "--device", "cpu"]
    specs = {
        "sample": (["sample", *dev], {"--input": "prompts"}, {"--output": "file"}),
        "score": (["score", *dev], {"--input": "samples"}, {"--output": "file"}),
        "score (claims)": (["score", *dev, "--method", "claims"], {"--input": "samples", "--claim-cache": "claims"},
                           {"--output": "file"}, ["--claim-cache"]),
        "pairs": (["pairs"], {"--input": "scores"}, {"--output": "file"}),
        "sk-data": (["sk-data", "--mode", "options"], {"--sources": "mc"}, {"--output": "file"}),
        "sk-tune": (["sk-tune", *dev], {"--data": "sk", "--valid-data": "sk"}, {"--output": "dir"}),
        "mc-data": (["mc-data", *dev], {"--data": "mc_text"}, {"--output": "file"}),
        "calibrate": (["calibrate", *dev], {"--data": "mc"}, {"--output": "file"}),
        "align": (["align", *dev], {"--pairs": "pairs"}, {"--output": "dir"}),
        "sft": (["sft", *dev], {"--data": "sft"}, {"--output": "dir"}),
        "run": (["run", "--dry-run"], {"": "recipe"}, {}),
        "report": (["report"], {"--runs": "result"}, {"--output": "file", "--markdown": "file"}),
        "eval truthfulqa-mc": (["eval", "truthfulqa-mc", *dev, "--split", "all"], {"--data": "mc_task"},
                               {"--output": "file"}),
        "eval truthfulqa-gen": (["eval", "truthfulqa-gen", *dev], {"--answers": "answers"}, {"--output": "file"}),
        "eval truthfulqa-gen (csv)": (["eval", "truthfulqa-gen", *dev, "--split", "all"], {"--data": "csv"},
                                      {"--output": "file"}, ["--data"]),
        "eval biogen": (["eval", "biogen", *dev], {"--input": "people", "--knowledge": "knowledge",
                                                   "--claim-cache": "claims"}, {"--output": "file"}),
        "eval biogen (answers)": (["eval", "biogen", *dev], {"--answers": "bios"}, {"--output": "file"}, ["--answers"]),
        "eval calibrate": (["eval", "calibrate", *dev], {"--data": "mc"}, {"--output": "file"}),
    }
    out = {}
    for name, (base, inputs, outputs, *only) in specs.items():
        def argv(over=None, base=base, inputs=inputs, outputs=outputs):
            over = over or {}
            args = list(base)
            for fl, kind in inputs.items():
                path = over.get(fl, g[kind])
                args += [path] if fl == "" else [fl, path]
            for fl, kind in outputs.items():
                args += [fl, over.get(fl, files.out("out.json" if kind == "file" else "outdir"))]
            return args + list(over.get("extra", []))
        tried = {fl: k for fl, k in inputs.items() if not only or fl in only[0]}
        out[name] = (argv, tried, outputs if not only else {})
    return out


def config_class(argv: list):
    if argv[0] == "eval":
        return registry.evaluation(argv[1]).config_class
    return registry.commands()[argv[0]].config_class


# --- bad values from the declarations -----------------------------------------------------------------------------
def flag_values(f, tp) -> list[str]:
    """Flag strings the field must refuse."""
    base, _ = _unwrap(tp)
    md = f.metadata
    vals = []
    if base is int:
        vals += ["four", "1.5"]
    elif base is float:
        vals += ["abc", "nan"]
    if md.get("choices") is not None:
        vals.append("bogus")
    if md.get("pattern"):
        vals.append("tpu9")
    if md.get("min") is not None:
        vals += [str(md["min"] - 1), str(md["min"] - 2)]
    if md.get("gt") is not None:
        vals += [str(md["gt"]), str(md["gt"] - 1)]
    if md.get("max") is not None:
        vals.append(str(md["max"] + 1))
    if md.get("lt") is not None:
        vals.append(str(md["lt"]))
    return list(dict.fromkeys(vals))


def recipe_values(f, tp) -> list:
    """YAML values the field must refuse in a recipe."""
    base, _ = _unwrap(tp)
    md = f.metadata
    if typing.get_origin(base) is list:  # an item of the wrong type: a number among names, a name among numbers
        return ["not-a-list", ["abc"] if typing.get_args(base)[0] in (int, float) else [5]]
    vals = {bool: ["false", 0], int: ["four", 1.5, True], float: ["abc", False], str: [5, ["x"], True]}.get(base, [])
    vals = list(vals)
    if md.get("choices") is not None:
        vals.append("bogus")
    if md.get("pattern"):
        vals.append("tpu9")
    for k, d in (("min", -1), ("gt", 0), ("max", 1), ("lt", 0)):
        if md.get(k) is not None:
            vals.append(md[k] + d)
    return vals


def _flag_cases(name, argv, cls) -> list[Case]:
    out = []
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        if f.metadata.get("positional"):
            continue
        for v in flag_values(f, hints[f.name]):
            out.append(Case(name, "bad flag", argv({"extra": [flag(f.name), v]}), flag(f.name), f"{flag(f.name)} {v}"))
    return out


def _file_cases(name, argv, inputs, outputs, files: Files) -> list[Case]:
    out = []
    for fl, kind in inputs.items():
        label = fl or "RECIPE"
        missing = files.fresh("missing.jsonl")
        if kind != "claims":  # a claim cache that does not exist yet is made
            out.append(Case(name, "missing file", argv({fl: missing}), str(missing), label))
        d = files.fresh("a-directory")
        d.mkdir()
        want = str(d) if kind != "result" else f"{d}: no evaluation results"
        out.append(Case(name, "directory as file", argv({fl: d}), want, label))
        good = files.good[kind]
        bad = files.fresh(good.name)
        if kind in GOOD:  # a second row with the byte 0xe9 in a string
            bad.write_bytes(json.dumps(_good(kind)).encode() + b"\n" + json.dumps(_good(kind, 1))[:-1].encode()
                            + b', "note": "caf\xe9"}\n')
            want = f"{bad}:2: not UTF-8"
        else:
            data = good.read_bytes()
            bad.write_bytes(data.replace(b"a", b"\xe9", 1))
            line = data.count(b"\n", 0, data.index(b"a")) + 1
            want = f"{bad}:{line}: not UTF-8"
        out.append(Case(name, "non-UTF-8 file", argv({fl: bad}), want, label))
        if kind != "claims":
            empty = files.fresh(good.name)
            empty.write_text("")
            out.append(Case(name, "empty file", argv({fl: empty}), str(empty), label))
        if kind in GOOD:
            for text, why in (('{"id": "x",', "malformed JSON"), ("[1, 2]", "expected a JSON object")):
                bad = _jsonl(files.fresh(good.name), [_good(kind), text])
                out.append(Case(name, "malformed row", argv({fl: bad}), f"{bad}:2: {why}", label))
            for field, value, want in WRONG.get(kind, []):
                bad = _jsonl(files.fresh(good.name), [_good(kind), {**_good(kind, 1), field: value}])
                out.append(Case(name, "wrong JSON type", argv({fl: bad}), f"{bad}:2: {want}",
                                f"{label} {field}={json.dumps(value)}"))
            if kind in DUPLICATES:
                bad = _jsonl(files.fresh(good.name), [_good(kind), _good(kind)])
                out.append(Case(name, "duplicate key", argv({fl: bad}), f"{bad}:2: {DUPLICATES[kind]}", label))
        elif kind == "mc_task":
            for data, want in (({"q": 1}, "expected a non-empty JSON list"),
                               ([{"question": 5, "mc2_targets": {"a": 1}}], "needs 'question'"),
                               ([{**MC_TASK[0], "mc2_targets": {"a": "1"}}], "labels must be 0 or 1"),
                               ([{**MC_TASK[0], "mc1_targets": [1]}], "'mc1_targets' must be a non-empty object")):
                bad = files.fresh("mc_task.json")
                bad.write_text(json.dumps(data))
                out.append(Case(name, "wrong JSON type", argv({fl: bad}), f"{bad}: ", label))
            bad = files.fresh("mc_task.json")
            bad.write_text('[{"question": "x",\n')
            out.append(Case(name, "malformed row", argv({fl: bad}), f"{bad}:2: malformed JSON", label))
        elif kind == "csv":
            bad = files.fresh("tqa.csv")
            bad.write_text("Question,Answer\nq,a\n")
            out.append(Case(name, "wrong columns", argv({fl: bad}), f"{bad}:1: not a TruthfulQA CSV", label))
        elif kind == "result":
            for data, want in (({"task": "t", "metrics": [1]}, "'metrics' must be"),
                               ({"task": "t", "metrics": {"m": 5}}, "'metrics' must be"),
                               ({"task": "t", "metrics": {"m": {"value": "high"}}}, "metric 'm'"),
                               ({"task": 5, "metrics": {}}, "'task' must be a string"), ([1], "not an evaluation result")):
                bad = files.fresh("result.json")
                bad.write_text(json.dumps(data))
                out.append(Case(name, "wrong JSON type", argv({fl: bad}), f"{bad}: {want}", label))
        elif kind == "recipe":
            for text, want in (("model: [x\n", "not valid YAML"), ("- a\n", "a recipe is a mapping"),
                               ("model: m\nsample: [1]\n", "section 'sample' must be a mapping"),
                               ("model: m\neval: [truthfulqa-mc]\n", "section 'eval' must be a mapping"),
                               ("model: m\neval: {tasks: truthfulqa-mc}\n", "eval.tasks must be a list"),
                               ("model: m\neval: {tasks: [calibrate], models: 5}\n", "eval.models must be"),
                               ("model: m\neval: {tasks: [calibrate], calibrate: {model: x}}\n", "eval.models"),
                               ("model: m\nbogus: 1\n", "unknown key(s) bogus"), ("name: 5\nmodel: m\n", "name must be"),
                               ("model: m\nsample: {input: p.jsonl, nn: 3}\n", "sample: unknown key 'nn'")):
                bad = files.fresh("recipe.yaml")
                bad.write_text(text)
                out.append(Case(name, "bad recipe", argv({fl: bad}), f"{bad}", want))
    for fl, kind in outputs.items():
        d = files.fresh("a-directory")
        d.mkdir()
        if kind == "file":
            out.append(Case(name, "output is a directory", argv({fl: d}), f"{d}: is a directory", fl))
        else:
            f = files.fresh("a-file")
            f.write_text("x")
            out.append(Case(name, "output dir is a file", argv({fl: f}), str(f), fl))
        parent = files.fresh("plain-file")
        parent.write_text("x")
        target = parent / ("out.json" if kind == "file" else "outdir")
        out.append(Case(name, "unwritable output", argv({fl: target}), str(parent), fl))
    return out


def _recipe_cases(files: Files) -> list[Case]:
    """A bad value for every declared field of every recipe stage and evaluation, and for the shared keys."""
    g = files.good
    base = {"sk-data": {"sources": [str(g["mc"])]}, "sk-tune": {}, "mc-data": {"data": str(g["mc"])},
            "mc-tune": {}, "sample": {"input": str(g["prompts"])},
            "score": {}, "pairs": {}, "align": {}}
    out = []

    def add(recipe: dict, want: str, what: str):
        path = files.fresh("recipe.yaml")
        path.write_text(yaml.safe_dump(recipe, sort_keys=False))
        out.append(Case("run", "bad recipe value", ["run", path, "--dry-run", "--output", files.fresh("run")],
                        f"{path}: {want}", what))

    for stage, st in registry.recipe_stages().items():
        cls = st.config_class
        hints = _hints(cls)
        for f in dataclasses.fields(cls):
            for v in recipe_values(f, hints[f.name]):
                add({"model": "m", **{k: dict(s) for k, s in base.items()}, stage: {**base[stage], f.name: v}},
                    f"{stage}.output: the runner writes" if f.name == "output" else f"{stage}: {f.name} ",
                    f"{stage}.{f.name} = {v!r}")
    for task, st in registry.evals().items():
        cls = st.config_class
        hints = _hints(cls)
        for f in dataclasses.fields(cls):
            if f.name == "model":
                continue
            for v in recipe_values(f, hints[f.name])[:3]:
                add({"model": "m", "eval": {"tasks": [task], task: {f.name: v}}},
                    f"eval.{task}.output: the runner writes" if f.name == "output" else f"eval/base/{task}: {f.name} ",
                    f"eval.{task}.{f.name} = {v!r}")
    for key, v in (("model", 5), ("seed", "x"), ("seed", -1), ("trust_remote_code", "false"), ("device", "tpu9"),
                   ("dtype", "fp8")):
        add({key: v, "sample": base["sample"]}, f"{key} ", f"{key} = {v!r}")
    return out


def cases(root: Path, model: str) -> list[Case]:
    files = Files(Path(root))
    out = []
    for name, (argv, inputs, outputs) in commands(files, model).items():
        if "(" not in name:  # the variants only add file cases
            out += _flag_cases(name, argv, config_class(argv()))
        out += _file_cases(name, argv, inputs, outputs, files)
    out += _recipe_cases(files)
    for c in out:
        c.known = KNOWN.get((c.command, c.kind, c.what), "")
    return out


def table_name(case: Case) -> str:
    return case.command.split(" (")[0]
