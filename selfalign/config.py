"""Stage configs are dataclasses; CLI flags and recipe YAML keys are their field names (``top_p`` ⇔ ``--top-p``).

A field declares what it accepts, once: its type (the annotation), and optionally ``choices``, a ``pattern`` (a
regular expression the whole value must match) and a numeric range (``min``/``max`` inclusive, ``gt``/``lt``
exclusive). Every config checks its fields when it is built (``Config.__post_init__``, as TRL's ``DPOConfig``
does), so the same checks hold for CLI flags, recipe values (``from_dict``) and library callers. Types are strict:
a recipe's ``n: four``, ``n: 1.5`` or ``trust_remote_code: "false"`` is an error, never a guess (booleans must be
YAML booleans; an int is accepted where a float is expected). A field marked ``summary_only`` changes only how
finished rows are summarised (bootstrap settings), so the recipe runner does not redo model work for it.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import operator
import os
import re
import sys
import typing
from dataclasses import dataclass, field

from selfalign.engines.placement import DEVICE_MAPS, PlacementError, check as check_placement
from selfalign.errors import SelfAlignError

FLOAT_TEXT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
BOUNDS = (("min", operator.ge), ("max", operator.le), ("gt", operator.gt), ("lt", operator.lt))


def opt(default, help: str, **kw):
    """A config field with its help text (shown by ``--help``) and what it accepts: ``choices=``, ``pattern=``,
    ``min=``/``max=`` (inclusive), ``gt=``/``lt=`` (exclusive), ``hint=`` (appended to a range error),
    ``aliases=`` (other flags / recipe keys), ``positional=``, ``summary_only=``, ``placement=`` (places the
    work on devices without changing it: ``ParallelArgs``)."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help, **kw})
    return field(default=default, metadata={"help": help, **kw})


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


class ConfigError(SelfAlignError):
    """A config value that its field does not accept; says which flag (recipes: which key) and why."""

    def __init__(self, name: str, problem: str):
        self.name, self.problem = name, problem
        super().__init__(f"{flag(name)} {problem}")


class Config:
    """Base of every stage config: checks every field against its declaration when the config is built."""

    DEPRECATED: typing.ClassVar[dict] = {}  # old key -> note: accepted from flags and recipes, ignored, noted

    def __post_init__(self):
        for f in dataclasses.fields(self):
            value = check_value(f, _hints(type(self))[f.name], getattr(self, f.name))
            object.__setattr__(self, f.name, value)


def _engine_pattern() -> str:
    from selfalign.registry import ENGINES

    return ENGINES.pattern()


@dataclass
class ModelArgs(Config):
    model: str = opt("smollm2-135m", "model spec: alias, HF dir, hub id, .gguf file, or adapter dir")
    adapter: typing.Optional[str] = opt(None, "PEFT adapter directory to apply on top of the model")
    engine: str = opt("hf", "backend: hf (transformers), vllm, openai (server at $OPENAI_BASE_URL) or "
                            "openai:<base_url>", pattern=_engine_pattern)
    device: str = opt("auto", "auto, cpu, cuda, cuda:1, mps, …", pattern=r"auto|cpu|(cuda|mps|xpu|npu|hpu)(:\d+)?")
    dtype: str = opt("auto", "auto (float32 on CPU, bfloat16 on GPU), float32, bfloat16, float16",
                     choices=("auto", "float32", "bfloat16", "float16"))
    batch_size: int = opt(8, "rows per forward pass", min=1)
    trust_remote_code: bool = opt(False, "allow model code from the hub (off unless you ask)")
    allow_pickle: bool = opt(False, "allow an adapter (adapter_model.bin) or a fact-check verifier's weights "
                                    "(pytorch_model.bin) saved as a pickle, which can run code when loaded; off: "
                                    "safetensors only")

    def engine_kwargs(self) -> dict:
        return dict(model=self.model, adapter=self.adapter, batch_size=self.batch_size, device=self.device,
                    dtype=self.dtype, trust_remote_code=self.trust_remote_code, allow_pickle=self.allow_pickle)


@dataclass
class ParallelArgs(Config):
    """Where an inference model runs on several GPUs (``engines/placement.py``): flags and recipe keys of every stage
    that loads a model for inference (sample, score, the evaluations, sk-data, mc-data), mixed in before ModelArgs.
    They place the work and do not change it: not part of a stage's settings or a recipe stage's hash, so moving a
    run to more GPUs resumes it. A setting this machine cannot run is refused when the config is built."""

    device_map: typing.Optional[str] = opt(None, "hf engine: spread one model over the visible GPUs (accelerate's "
                                                 "device map), for a model larger than one GPU", choices=DEVICE_MAPS,
                                           placement=True)
    tensor_parallel_size: int = opt(1, "vllm engine: GPUs that one model copy is split across", min=1,
                                    placement=True)
    data_parallel_size: int = opt(1, "copies of the model, each in its own process on its own GPUs (hf: one GPU, "
                                     "or an equal share with --device-map; vllm: --tensor-parallel-size GPUs; "
                                     "--device cpu: CPU processes); each call's rows are shared out between them",
                                  min=1, placement=True)

    def __post_init__(self):
        super().__post_init__()
        if self.placement():
            try:
                check_placement(self.engine, self.device, **self.placement())
            except PlacementError as e:  # the field's own error: a recipe names its file, stage and key
                raise ConfigError(e.name, e.problem) from None

    def placement(self) -> dict:
        """The placement settings that differ from one model on one device."""
        return {k: v for k, v in (("device_map", self.device_map), ("tensor_parallel_size", self.tensor_parallel_size),
                                  ("data_parallel_size", self.data_parallel_size))
                if v not in (None, 1)}

    def engine_kwargs(self) -> dict:
        return {**super().engine_kwargs(), **self.placement()}


# --- checking ----------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def _hints(cls) -> dict:
    return typing.get_type_hints(cls)


def _unwrap(tp) -> tuple[object, bool]:
    """(type without Optional, whether None is allowed)."""
    if typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0], len(args) < len(typing.get_args(tp))
    return tp, False


def _base_type(tp):
    return _unwrap(tp)[0]


def _show(v) -> str:
    kind = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "a mapping", type(None): "null"}.get(type(v), type(v).__name__)
    return f"{v!r} ({kind})" if not isinstance(v, (int, float)) or isinstance(v, bool) else repr(v)


def _convert(name: str, tp, value, item: bool = False):
    """``value`` as type ``tp`` (no guessing), or a ConfigError."""
    base, optional = _unwrap(tp)
    if value is None:
        if optional:
            return None
        raise ConfigError(name, "needs a value, got null")
    if typing.get_origin(base) is list:
        (inner,) = typing.get_args(base)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(name, f"must be a list, got {_show(value)}")
        return [_convert(name, inner, v, item=True) for v in value]
    where = " (an item)" if item else ""
    if base is dict or typing.get_origin(base) is dict:
        if not isinstance(value, dict):
            raise ConfigError(name, f"must be a mapping of keys to values, got {_show(value)}")
        return value
    if base is bool:
        if not isinstance(value, bool):
            raise ConfigError(name, f"must be true or false (a YAML boolean, unquoted){where}, got {_show(value)}")
        return value
    if base is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(name, f"must be an integer{where}, got {_show(value)}")
        return value
    if base is float:
        if isinstance(value, str) and FLOAT_TEXT.fullmatch(value.strip()):
            raise ConfigError(name, f"must be a number, got {_show(value)} (YAML reads 5e-5 as text: write 5.0e-5)")
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ConfigError(name, f"must be a number{where}, got {_show(value)}")
        if not math.isfinite(value):
            raise ConfigError(name, f"must be a finite number, got {value}")
        return float(value)
    if base is str:
        if isinstance(value, os.PathLike):
            return os.fspath(value)
        if not isinstance(value, str):
            raise ConfigError(name, f"must be a string{where}, got {_show(value)}")
        return value
    return value


def _range_text(md: dict) -> str | None:
    lo = ("[", md["min"]) if md.get("min") is not None else ("(", md["gt"]) if md.get("gt") is not None else None
    hi = ("]", md["max"]) if md.get("max") is not None else (")", md["lt"]) if md.get("lt") is not None else None
    if lo and hi:
        if lo[0] == "[" and hi[0] == "]":
            return f"between {lo[1]} and {hi[1]}"
        return f"in {lo[0]}{lo[1]}, {hi[1]}{hi[0]}"
    if lo:
        return f"at least {lo[1]}" if lo[0] == "[" else f"greater than {lo[1]}"
    if hi:
        return f"at most {hi[1]}" if hi[0] == "]" else f"less than {hi[1]}"
    return None


def _choices(md: dict):
    c = md.get("choices")
    return tuple(c() if callable(c) else c) if c is not None else None


def check_value(f: dataclasses.Field, tp, value):
    """``value`` for field ``f`` after the type, choices, pattern and range checks (ConfigError if one fails)."""
    value = _convert(f.name, tp, value)
    if value is None:
        return value
    md = f.metadata
    for v in value if isinstance(value, list) else [value]:
        choices = _choices(md)
        if choices is not None and v not in choices:
            raise ConfigError(f.name, f"must be one of {', '.join(map(str, choices))}, got {v!r}")
        pattern = md["pattern"]() if callable(md.get("pattern")) else md.get("pattern")
        if pattern and not re.fullmatch(pattern, v):
            raise ConfigError(f.name, f"does not accept {v!r} ({md['help']})")
        ok = all(md.get(k) is None or test(v, md[k]) for k, test in BOUNDS)
        if not ok:
            hint = f" ({md['hint']})" if md.get("hint") else ""
            raise ConfigError(f.name, f"must be {_range_text(md)}, got {v}{hint}")
    return value


def summary_only(cls) -> set[str]:
    """Fields that change only the summary of finished rows (bootstrap settings), not the rows themselves."""
    return {f.name for f in dataclasses.fields(cls) if f.metadata.get("summary_only")}


def placement_only(cls) -> set[str]:
    """Fields that place the work on devices (``ParallelArgs``), not the rows it makes."""
    return {f.name for f in dataclasses.fields(cls) if f.metadata.get("placement")}


# --- flags -------------------------------------------------------------------------------------------------
def _help(f, default) -> str:
    text = f.metadata.get("help", "")
    rng = _range_text(f.metadata)
    text += f" ({rng})" if rng and rng not in text else ""
    if default not in (None, "", []):
        text += f" (default: {default})"
    return text.replace("%", "%%")


def add_args(parser: argparse.ArgumentParser, cls) -> None:
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        if f.metadata.get("cli") is False:  # set another way (align's `trl` section: --trl.KEY VALUE)
            continue
        tp = _base_type(hints[f.name])
        # the underscored spelling of TRL / transformers (--learning_rate) is accepted too
        flags = [flag(f.name), *f.metadata.get("aliases", ())] + (["--" + f.name] if "_" in f.name else [])
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        help_ = _help(f, default)
        if f.metadata.get("positional"):
            many = typing.get_origin(tp) is list
            parser.add_argument(f.name, type=typing.get_args(tp)[0] if many else tp, nargs="*" if many else "?",
                                default=default, help=help_, metavar=f.metadata.get("metavar"))
        elif tp is bool:
            parser.add_argument(*flags, action=argparse.BooleanOptionalAction, default=default, help=help_)
        elif typing.get_origin(tp) is list:
            parser.add_argument(*flags, nargs="+", type=typing.get_args(tp)[0], default=default, help=help_)
        else:
            parser.add_argument(*flags, type=tp, default=default, help=help_, choices=_choices(f.metadata))
    for old in getattr(cls, "DEPRECATED", {}):
        parser.add_argument(flag(old), dest=f"deprecated__{old}", default=None, help=argparse.SUPPRESS)
    if callable(getattr(cls, "epilog", None)):  # what the flags above do not show (align's --trl.KEY VALUE)
        parser.epilog = cls.epilog().replace("%", "%%")


def _note_deprecated(where: str, key: str, note: str) -> None:
    print(f"selfalign: note: {where}{key} is deprecated: {note}", file=sys.stderr)


def from_args(cls, ns: argparse.Namespace):
    for old, note in getattr(cls, "DEPRECATED", {}).items():
        if getattr(ns, f"deprecated__{old}", None) is not None:
            _note_deprecated("", flag(old), note)
    return cls(**{f.name: getattr(ns, f.name) for f in dataclasses.fields(cls) if hasattr(ns, f.name)})


# --- recipes -----------------------------------------------------------------------------------------------
def normalize_keys(cls, values: dict, where: str = "recipe") -> dict:
    """Recipe keys (dashes or underscores, or a field's alias) as field names; deprecated keys are dropped with a
    note; an unknown key is an error."""
    fields = dataclasses.fields(cls)
    names = {f.name: f.name for f in fields}
    names.update({a.lstrip("-").replace("-", "_"): f.name for f in fields for a in f.metadata.get("aliases", ())})
    deprecated = getattr(cls, "DEPRECATED", {})
    clean: dict = {}
    for k, v in (values or {}).items():
        key = str(k).replace("-", "_")
        if key in names:
            if names[key] in clean:
                raise SelfAlignError(f"{where}: {k} is given twice (also as {names[key]})")
            clean[names[key]] = v
        elif key in deprecated:
            _note_deprecated(f"{where}: ", str(k), deprecated[key])
        else:
            raise SelfAlignError(f"{where}: unknown key {k!r} for {cls.__name__}; known: {', '.join(sorted(names))}")
    return clean


def from_dict(cls, values: dict, where: str = "recipe"):
    """Build a config from YAML-style keys; an unknown key or a value its field does not accept is an error that
    names ``where`` (the recipe file and stage) and the key."""
    clean = normalize_keys(cls, values, where)
    try:
        return cls(**clean)
    except ConfigError as e:
        raise SelfAlignError(f"{where}: {e.name} {e.problem}") from None


def check_key(cls, name: str, value, where: str = "recipe"):
    """One value for field ``name`` of ``cls``, checked as ``from_dict`` would (a recipe's shared keys)."""
    f = {f.name: f for f in dataclasses.fields(cls)}[name]
    try:
        return check_value(f, _hints(cls)[name], value)
    except ConfigError as e:
        raise SelfAlignError(f"{where}: {e.name} {e.problem}") from None


def require(cfg, *names: str) -> None:
    for n in names:
        if getattr(cfg, n) in (None, ""):
            raise SelfAlignError(f"missing {flag(n)}")
