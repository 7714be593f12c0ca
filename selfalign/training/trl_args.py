"""Any TRL / transformers training field passed through to a trainer's config: a ``trl:`` recipe section and
``--trl.KEY VALUE`` (or TRL's own ``--KEY VALUE``) on the command line, validated against the dataclass.

``align`` uses it for ``DPOConfig``; another trainer wires it the same way::

    extra = parse_trl_argv(unknown_cli_args, DPOConfig)           # {"lr_scheduler_type": "cosine", ...}
    kwargs = trl_kwargs(DPOConfig, base_kwargs, {**recipe_trl, **extra}, owned=OWNED)
    args = DPOConfig(**kwargs)

Fields that a selfalign flag already sets (``OWNED``: ``learning_rate`` is ``--learning-rate``) are refused with
the flag to use, so that one setting has one name and the run's recorded config says what was trained.
"""
from __future__ import annotations

import dataclasses
import types
import typing

from selfalign.errors import InputError, SelfAlignError
from selfalign.store.io import parse_json

# DPOConfig / TrainingArguments field -> the selfalign flag that sets it (align's; sk-tune can pass its own map)
OWNED = {"output_dir": "--output", "beta": "--beta", "loss_type": "--loss-type", "learning_rate": "--learning-rate",
         "num_train_epochs": "--epochs", "max_steps": "--max-steps", "per_device_train_batch_size": "--batch-size",
         "gradient_accumulation_steps": "--grad-accum", "max_length": "--max-length",
         "warmup_steps": "--warmup-steps", "save_steps": "--save-steps", "bf16": "--bf16",
         "gradient_checkpointing": "--gradient-checkpointing", "activation_checkpointing": "--gradient-checkpointing",
         "seed": "--seed", "data_seed": "--seed",
         "report_to": "--report-to", "push_to_hub": "--push-to-hub", "use_cpu": "--device",
         "hub_token": "$HF_TOKEN (a token never goes into a flag or a file)", "loss_weights": "--loss-weights",
         "eval_steps": "--eval-steps",
         "model_init_kwargs": "--attn-implementation, --dtype and --load-in-4bit (selfalign loads the model itself; "
                              "TRL reads model_init_kwargs only when it loads one from a name, and would ignore it)"}
PREFIX = "--trl."


def fields(cls) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls) if f.init}


def _options(tp) -> list:
    """The members of a union (``int | None`` -> [int, NoneType]); a plain type -> [tp]."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return list(typing.get_args(tp))
    return [tp]


def coerce(cls, key: str, value):
    """``value`` (text from the command line, or a YAML value) as the field's type; one line when it cannot be."""
    f = fields(cls)[key]
    opts = _options(f.type)
    if not isinstance(value, str):
        return value  # YAML already typed it; the dataclass checks the rest
    text = value.strip()
    if type(None) in opts and text.lower() in ("none", "null"):
        return None
    for tp in opts:
        origin = typing.get_origin(tp) or tp
        try:
            if tp is bool:
                if text.lower() in ("true", "1", "yes", "on"):
                    return True
                if text.lower() in ("false", "0", "no", "off"):
                    return False
            elif tp is int:
                return int(text)
            elif tp is float:
                return float(text)
            elif origin is list:
                return parse_json(text, f"trl.{key}") if text.startswith("[") else [x for x in text.split(",") if x]
            elif origin is dict:
                return parse_json(text, f"trl.{key}")
        except (ValueError, InputError):
            continue
    if any(tp is str or isinstance(tp, type) and issubclass(tp, str) for tp in opts):
        return value
    raise SelfAlignError(f"--trl.{key}: {value!r} is not a valid {f.type}")


def check_key(cls, key: str, owned: dict[str, str], where: str) -> str:
    key = key.replace("-", "_")
    names = fields(cls)
    if key not in names:
        close = sorted(n for n in names if key in n or n in key)[:4]
        hint = f" (close: {', '.join(close)})" if close else ""
        raise SelfAlignError(f"{where}: {key!r} is not a field of TRL's {cls.__name__}{hint}")
    if key in owned:
        raise SelfAlignError(f"{where}: {key!r} is set by {owned[key]}; use that instead")
    return key


def parse_trl_argv(argv: list[str], cls, owned: dict[str, str] = OWNED) -> dict:
    """``--trl.KEY VALUE``, ``--trl.KEY=VALUE``, ``--KEY VALUE`` (TRL's spelling) and a bare ``--trl.FLAG`` (true),
    checked against ``cls``'s fields. Anything else is one line naming it."""
    out, i = {}, 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("--"):
            raise SelfAlignError(f"unrecognized argument {arg!r}")
        name, eq, value = arg[2:].partition("=")
        name = name[len(PREFIX) - 2:] if arg.startswith(PREFIX) else name
        key = check_key(cls, name, owned, where=f"--{name}" if not arg.startswith(PREFIX) else f"--trl.{name}")
        if not eq:
            if i + 1 < len(argv) and not argv[i + 1].startswith("--"):
                value, i = argv[i + 1], i + 1
            elif bool in _options(fields(cls)[key].type):
                value = "true"
            else:
                raise SelfAlignError(f"--trl.{key}: needs a value")
        out[key] = coerce(cls, key, value)
        i += 1
    return out


def trl_kwargs(cls, base: dict, overrides: dict, owned: dict[str, str] = OWNED, where: str = "trl") -> dict:
    """``base`` (what selfalign sets) updated with the checked, typed ``overrides`` (a recipe's ``trl:`` section)."""
    if not isinstance(overrides, dict):
        raise SelfAlignError(f"{where}: must be a mapping of {cls.__name__} fields to values")
    extra = {}
    for k, v in overrides.items():
        key = check_key(cls, str(k), owned, where)
        extra[key] = coerce(cls, key, v)
    return {**base, **extra}


def build(cls, base: dict, overrides: dict, owned: dict[str, str] = OWNED, where: str = "trl"):
    """``cls(**trl_kwargs(...))``; a value the dataclass itself rejects is one line too."""
    kwargs = trl_kwargs(cls, base, overrides, owned, where)
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as e:
        raise SelfAlignError(f"{where}: {cls.__name__} rejects these settings: {str(e).splitlines()[0]}") from None
