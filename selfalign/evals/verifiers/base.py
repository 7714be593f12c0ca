"""What the fact-check classifiers share: loading (safetensors only, remote code only when asked, hub access only
for a hub id), the long-document chunking, batched scoring with the best chunk's P(supported), and the figures
their authors published.

A verifier reads (document, claim) pairs and returns P(supported) per pair: ``support(pairs)``. Each kind splits a
document the way its authors do (``chunks``) and scores (chunk, claim) rows in batches of ``batch_size``
(``score_batch``); a pair's score is its best chunk's, as MiniCheck and SummaC aggregate (max over chunks).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

from selfalign.errors import ModelError
from selfalign.store.io import peek_json

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
HF_CACHE_DIR = re.compile(r"models--([\w.-]+)--([\w.-]+)")  # a hub snapshot in the HF cache names its repo
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".ckpt")


@dataclass(frozen=True)
class Published:
    """A verifier's published LLM-AggreFact figure (Tang et al. 2024): balanced accuracy averaged over the
    benchmark's datasets, in %."""
    name: str
    bacc: float
    source: str


def model_id(spec: str) -> str:
    """The hub id a spec stands for: the id itself, a directory of the HF cache (``models--ORG--NAME``), or a local
    directory whose config.json names it (``_name_or_path``, which a downloaded config carries); else the spec."""
    p = Path(spec).expanduser()
    if not p.is_dir():
        return spec
    m = HF_CACHE_DIR.search(str(p.resolve()))
    if m:
        return f"{m.group(1)}/{m.group(2)}"
    found = peek_json(p / "config.json")
    named = found.get("_name_or_path") if isinstance(found, dict) else None
    return named if isinstance(named, str) and HUB_ID.match(named) else spec


def locate(spec: str, what: str) -> tuple[str, bool]:
    """(path or hub id, is local). A local directory needs config.json; anything else must be a hub id."""
    p = Path(spec).expanduser()
    if p.is_dir():
        if not (p / "config.json").exists():
            raise ModelError(f"{what} {spec!r}: the directory holds no config.json (not a transformers model)")
        return str(p.resolve()), True
    if p.exists():
        raise ModelError(f"{what} {spec!r}: not a model directory (a file)")
    if HUB_ID.match(spec) and not spec.startswith((".", "/", "~")):
        return spec, False
    raise ModelError(f"{what} {spec!r}: neither a local model directory nor a hub id (ORG/NAME)")


def check_local_weights(path: str, what: str, allow_pickle: bool) -> None:
    """A local directory's weights must be safetensors; pickled ones (pytorch_model.bin: loading a pickle can run
    code) load only with ``allow_pickle``."""
    d = Path(path)
    if any(d.glob("*.safetensors")):
        return
    pickles = sorted(p.name for p in d.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if not pickles:
        raise ModelError(f"{what} {path!r}: no weights there (no *.safetensors)")
    if not allow_pickle:
        raise ModelError(f"{what} {path!r}: {pickles[0]} is a pickle (loading it can run code); convert it to "
                         "safetensors once (save_pretrained writes them), or pass --allow-pickle if you trust it")


def load_pretrained(auto_class, spec: str, what: str, *, device: str, dtype: str, trust_remote_code: bool,
                    allow_pickle: bool, **kwargs):
    """``auto_class.from_pretrained`` of a local directory (never the network) or a hub id, from safetensors
    unless ``allow_pickle``; placed on ``device`` in eval mode. Any loading failure is one ModelError line."""
    from selfalign.models import pick_device, pick_dtype

    device = pick_device(device)
    path, local = locate(spec, what)
    if local:
        check_local_weights(path, what, allow_pickle)
    try:
        model = auto_class.from_pretrained(path, dtype=pick_dtype(dtype, device), trust_remote_code=trust_remote_code,
                                           use_safetensors=None if allow_pickle else True, local_files_only=local,
                                           **kwargs)
    except (OSError, ValueError, ImportError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        hint = ""
        if not local and not allow_pickle and "safetensors" in str(e):
            hint = (" (its hub weights are a pickle, pytorch_model.bin: pass --allow-pickle if you trust the source, "
                    "or convert them to safetensors once and pass the directory)")
        elif not local:
            hint = " (offline? a hub id needs the network or the HF cache; or pass a local directory)"
        raise ModelError(f"cannot load {what} {spec!r}{hint}: {first}") from None
    return model.to(device).eval()


def load_config(spec: str, what: str, trust_remote_code: bool = False):
    """The model config of a local directory (never the network) or a hub id; a failure is one ModelError line."""
    from transformers import AutoConfig

    path, local = locate(spec, what)
    try:
        return AutoConfig.from_pretrained(path, local_files_only=local, trust_remote_code=trust_remote_code)
    except (OSError, ValueError, ImportError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelError(f"cannot read the config of {what} {spec!r}: {first}") from None


def load_tokenizer(spec: str, what: str, trust_remote_code: bool = False):
    """The tokenizer of a local directory (never the network) or a hub id; a failure is one ModelError line."""
    from transformers import AutoTokenizer

    path, local = locate(spec, what)
    try:
        tok = AutoTokenizer.from_pretrained(path, local_files_only=local, trust_remote_code=trust_remote_code)
    except (OSError, ValueError, ImportError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelError(f"cannot load the tokenizer of {what} {spec!r}: {first}") from None
    tok.padding_side = "right"  # every kind reads the first position (T5's first token, the encoders' <s> / [CLS])
    return tok


def pack(sentences: Sequence[str], size: int, length: Callable[[str], int]) -> list[str]:
    """MiniCheck's chunking (minicheck/inference.py, ``chunks``): sentences are packed in order into chunks of at
    most ``size`` (measured by ``length``); a sentence that does not fit starts the next chunk, and a sentence longer
    than ``size`` is a chunk of its own. Never empty: an empty document is one empty chunk."""
    out, cur, n = [], [], 0
    for s in sentences:
        k = length(s)
        if cur and n + k > size:
            out.append(" ".join(cur))
            cur, n = [], 0
        cur.append(s)
        n += k
    if cur:
        out.append(" ".join(cur))
    return out or [""]


def sentence_chunks(document: str, size: int, length: Callable[[str], int]) -> list[str]:
    """The document split into sentences (selfalign's offline splitter; paragraphs never share one, as with
    MiniCheck's newline-aware nltk split) and packed by ``pack``."""
    from selfalign.selfeval.splitter import split_sentences

    return pack(split_sentences(document), size, length)


class FactVerifier:
    """A (document, claim) -> P(supported) classifier. Subclasses set ``kind``, ``DEFAULT`` (the hub id a bare
    ``--verifier KIND`` means), ``PUBLISHED`` (hub id -> its published figure) and implement ``build``,
    ``chunks`` and ``score_batch``."""

    kind = "?"
    DEFAULT: Optional[str] = None
    PUBLISHED: dict = {}
    needs_remote_code = False

    def __init__(self, spec: str, model, tokenizer, batch_size: int = 8):
        self.spec, self.model, self.tok, self.batch_size = spec, model, tokenizer, batch_size
        self.id = model_id(spec)

    @classmethod
    def build(cls, spec: str, device: str = "cpu", dtype: str = "auto", batch_size: int = 8,
              trust_remote_code: bool = False, allow_pickle: bool = False) -> "FactVerifier":
        raise NotImplementedError

    def chunks(self, document: str) -> list[str]:
        return [document]

    def score_batch(self, documents: list[str], claims: list[str]) -> list[float]:
        raise NotImplementedError

    def support(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """P(supported) of each (document, claim): the best of its chunks' scores."""
        import torch

        rows = [(i, c, claim) for i, (doc, claim) in enumerate(pairs) for c in self.chunks(doc)]
        best = [0.0] * len(pairs)
        with torch.no_grad():
            for b in range(0, len(rows), self.batch_size):
                part = rows[b:b + self.batch_size]
                for (i, _, _), p in zip(part, self.score_batch([c for _, c, _ in part], [x for _, _, x in part])):
                    best[i] = max(best[i], float(p))
        return best

    def published(self) -> Optional[Published]:
        return self.PUBLISHED.get(self.id)

    def published_line(self) -> str:
        p = self.published()
        if p is None:
            return f"LLM-AggreFact: not published for {self.id}"
        return f"LLM-AggreFact balanced accuracy {p.bacc:.1f} (published, {p.name}; {p.source})"

    @property
    def info(self) -> dict:
        p = self.published()
        return {"model": self.spec, "verifier": self.kind, "model_id": self.id,
                "llm_aggrefact_bacc": p.bacc if p else None, "llm_aggrefact_source": p.source if p else None}

    def describe(self) -> str:
        return f"{self.kind}:{self.id}"


def softmax(logits, columns: Optional[Sequence[int]] = None):
    """softmax over ``columns`` of the logits (all of them when None), as float32 on the CPU."""
    import torch

    x = logits.float()
    if columns is not None:
        x = x[:, list(columns)]
    return torch.softmax(x, dim=-1).cpu()
