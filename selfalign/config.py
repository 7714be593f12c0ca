"""Stage configs are dataclasses; CLI flags and recipe YAML keys are their field names (``top_p`` ⇔ ``--top-p``)."""
from __future__ import annotations

import argparse
import dataclasses
import typing
from dataclasses import dataclass, field

from selfalign.errors import SelfAlignError


def opt(default, help: str, **kw):
    """A config field with its help text (shown by ``--help``)."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help, **kw})
    return field(default=default, metadata={"help": help, **kw})


@dataclass
class ModelArgs:
    model: str = opt("smollm2-135m", "model spec: alias, HF dir, hub id, .gguf file, or adapter dir")
    adapter: typing.Optional[str] = opt(None, "PEFT adapter directory to apply on top of the model")
    engine: str = opt("hf", "backend: hf (transformers), vllm, openai (server at $OPENAI_BASE_URL) or "
                            "openai:<base_url>")
    device: str = opt("auto", "auto, cpu, cuda, cuda:1, …")
    dtype: str = opt("auto", "auto (float32 on CPU, bfloat16 on GPU), float32, bfloat16, float16")
    batch_size: int = opt(8, "rows per forward pass")
    trust_remote_code: bool = opt(False, "allow model code from the hub (off unless you ask)")
    allow_pickle: bool = opt(False, "allow an adapter saved as a pickle (adapter_model.bin), which can run code when "
                                    "loaded; off: safetensors only")

    def engine_kwargs(self) -> dict:
        return dict(model=self.model, adapter=self.adapter, batch_size=self.batch_size, device=self.device,
                    dtype=self.dtype, trust_remote_code=self.trust_remote_code, allow_pickle=self.allow_pickle)


def _base_type(tp):
    origin = typing.get_origin(tp)
    if origin is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _base_type(args[0])
    return tp


def add_args(parser: argparse.ArgumentParser, cls) -> None:
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.metadata.get("cli") is False:  # set another way (align's `trl` section: --trl.KEY VALUE)
            continue
        tp = _base_type(hints[f.name])
        flag = "--" + f.name.replace("_", "-")
        # the underscored spelling of TRL / transformers (--learning_rate) is accepted too
        flags = [flag, *f.metadata.get("aliases", ())] + (["--" + f.name] if "_" in f.name else [])
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        help_ = f.metadata.get("help", "").replace("%", "%%") + (f" (default: {default})" if default not in (None, "", []) else "")
        if f.metadata.get("positional"):
            many = typing.get_origin(tp) is list
            parser.add_argument(f.name, type=typing.get_args(tp)[0] if many else tp, nargs="*" if many else "?",
                                default=default, help=help_, metavar=f.metadata.get("metavar"))
        elif tp is bool:
            parser.add_argument(*flags, action=argparse.BooleanOptionalAction, default=default, help=help_)
        elif typing.get_origin(tp) is list:
            parser.add_argument(*flags, nargs="+", type=typing.get_args(tp)[0], default=default, help=help_)
        else:
            parser.add_argument(*flags, type=tp, default=default, help=help_, choices=f.metadata.get("choices"))


def keys(cls) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def from_args(cls, ns: argparse.Namespace):
    return cls(**{f.name: getattr(ns, f.name) for f in dataclasses.fields(cls) if hasattr(ns, f.name)})


def from_dict(cls, values: dict, where: str = "recipe"):
    """Build a config from YAML-style keys (dashes or underscores); unknown keys are an error."""
    names = {f.name for f in dataclasses.fields(cls)}
    clean = {}
    for k, v in (values or {}).items():
        key = str(k).replace("-", "_")
        if key not in names:
            raise SelfAlignError(f"{where}: unknown key {k!r} for {cls.__name__}; known: {', '.join(sorted(names))}")
        clean[key] = v
    return cls(**clean)


def require(cfg, *names: str) -> None:
    for n in names:
        if getattr(cfg, n) in (None, ""):
            raise SelfAlignError(f"missing --{n.replace('_', '-')}")
