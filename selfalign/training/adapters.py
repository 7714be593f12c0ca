"""A trained model's output folder, made to travel: PEFT finds the base on the hub, selfalign finds the exact
local base, no file names a path of this machine, and the model card has the hub's front matter.

- ``adapter_config.json``'s ``base_model_name_or_path`` is the base's hub id where one is known (an alias's:
  ``smollm2-135m`` -> ``HuggingFaceTB/SmolLM2-135M-Instruct``; a hub id itself; a GGUF naming its source; a folder
  of the hub's cache), so ``AutoPeftModelForCausalLM.from_pretrained(folder)`` works anywhere with internet;
  else the local base relative to the working directory (where PEFT looks for it).
- ``selfalign_base.json`` is selfalign's own record, read first when selfalign loads the folder: ``base_model``
  (the alias or hub id as the user gave it, or with ``relative: true`` a local base relative to this folder),
  ``hub_id``, and ``gguf`` (file, sha256, quantisation) when the weights trained on were a dequantised GGUF.
- ``README.md``: YAML front matter (``base_model``, ``license``, ``library_name``, ``datasets``, ``tags``,
  ``model-index`` once evaluated) and the card; a GGUF base is said to be one.

``save_adapter`` is what every trainer calls at the end (align does; sk-tune can pass its own ``card``)::

    save_adapter(model, tok, out, base_spec=cfg.model, lora=cfg.lora, card=ModelCard(method=..., ...))
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from selfalign.store.io import peek_json, read_json, read_text

CARD = "README.md"
HF_CACHE_FOLDER = re.compile(r"models--([\w.-]+)--([\w.-]+)(?:/snapshots/([0-9a-f]{40}))?")
# data sets on the hub, by the selfalign source that reads a copy of them (model cards' `datasets`)
HUB_DATASETS = (("bigbench", "google/bigbench"), ("qa_wikidata", "google/bigbench"),
                ("truthfulqa", "truthfulqa/truthful_qa"))
# evaluation task -> (hub data set, its config) for model-index
EVAL_DATASETS = {"truthfulqa-mc": ("truthfulqa/truthful_qa", "multiple_choice"),
                 "truthfulqa-gen": ("truthfulqa/truthful_qa", "generation"),
                 "knowledge-qa": ("google/bigbench", "qa_wikidata")}


def _origin(spec: str) -> dict:
    """What is known of a plain (non-adapter) base: ``hub_id``, ``license``, ``revision``, and ``gguf`` (file,
    sha256, quantisation) when its weights come from a GGUF file."""
    from selfalign import models
    from selfalign.model_cache import SOURCE_FILE, file_sha256, gguf_facts

    out: dict = {}
    p = Path(spec).expanduser()
    gguf = None
    if spec in models.ALIASES:
        a = models.ALIASES[spec]
        out.update({k: v for k, v in (("hub_id", a.hub_id), ("license", a.license)) if v})
        try:
            gguf = models.find_alias_gguf(spec)
        except models.ModelError:
            pass
    elif p.is_file() and p.suffix == ".gguf":
        gguf = p
    elif p.is_dir():
        m = HF_CACHE_FOLDER.search(p.resolve().as_posix())
        if m:
            out["hub_id"] = f"{m.group(1)}/{m.group(2)}"
            if m.group(3):
                out["revision"] = m.group(3)
        src = p / SOURCE_FILE  # a folder of selfalign's cache: a dequantised GGUF
        rec = peek_json(src, {})
        if isinstance(rec, dict) and rec:
            out["gguf"] = {k: rec[k] for k in ("gguf_file", "gguf_sha256", "quantization") if k in rec}
    elif models.HUB_ID.match(spec):
        out["hub_id"] = spec
    if gguf is not None:
        facts = gguf_facts(gguf)
        out["gguf"] = {"gguf_file": gguf.name, "gguf_sha256": file_sha256(gguf),
                       **({"quantization": facts["quantization"]} if "quantization" in facts else {})}
        for k in ("hub_id", "license"):
            if k in facts:
                out.setdefault(k, facts[k])
    return out


def base_record(spec: str, out: str | Path) -> dict:
    """selfalign's record of the base of a folder saved in ``out`` (``selfalign_base.json``): ``base_model`` (an
    alias, packaged adapter or hub id as given; a local path relative to ``out``, with ``relative``), and what
    ``_origin`` knows. A base that is itself an adapter is followed to its plain base for ``hub_id`` and ``gguf``
    (``base_is_adapter``)."""
    from selfalign import models

    p = Path(spec).expanduser()
    if spec in models.ALIASES or spec in models.PACKAGED_ADAPTERS or not p.exists():
        rec: dict = {"base_model": spec}
    else:
        rec = {"base_model": Path(os.path.relpath(p.resolve(), Path(out).resolve())).as_posix(), "relative": True}
    plain, seen = spec, 0
    while seen < 8:  # an adapter's base, and so on (a packaged judge is an adapter on an alias)
        q = models.packaged_adapter(plain) if plain in models.PACKAGED_ADAPTERS else Path(plain).expanduser()
        if not (q.is_dir() and (q / "adapter_config.json").exists()):
            break
        plain, seen = models._adapter_base(q), seen + 1
        rec["base_is_adapter"] = True
    rec.update(_origin(plain))
    return rec


def peft_base(rec: dict, out: str | Path) -> str:
    """``base_model_name_or_path`` for PEFT: the hub id when known (and the base is not an adapter), else the
    local base relative to the working directory, else the spec."""
    if rec.get("hub_id") and not rec.get("base_is_adapter"):
        return rec["hub_id"]
    if rec.get("relative"):
        local = (Path(out) / rec["base_model"]).resolve()
        try:
            return Path(os.path.relpath(local, Path.cwd().resolve())).as_posix()
        except ValueError:  # another drive
            return local.name
    return rec["base_model"]


def hub_datasets(sources) -> list[str]:
    """The hub data sets behind selfalign data sources (``bigbench:qa_wikidata`` -> ``google/bigbench``)."""
    out = []
    for s in sources or []:
        for key, hub in HUB_DATASETS:
            if key in str(s).lower() and hub not in out:
                out.append(hub)
    return out


def data_sources(path, hops: int = 5) -> list[str]:
    """The data sources a file was made from, following the provenance (``.meta.json``) of each file upstream:
    sk-data's ``sources``, or the first ``input`` that is not a file selfalign made."""
    from selfalign.store.paths import expand
    from selfalign.store.provenance import meta_path

    for _ in range(hops):
        found = peek_json(meta_path(expand(str(path))))
        if not isinstance(found, dict):
            return [str(path)] if path else []
        cfg = found.get("config") if isinstance(found.get("config"), dict) else {}
        if isinstance(cfg.get("sources"), list):
            return [str(x) for x in cfg["sources"]]
        path = cfg.get("input")
        if not isinstance(path, str):
            return []
    return []


@dataclass
class ModelCard:
    """What the card says; every field is optional (what is not known is left out)."""

    method: str = ""
    judge: str = ""
    data: str = ""
    recipe: str = ""
    hyperparameters: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)  # steps, rows/pairs, final loss / reward margin
    results: list = field(default_factory=list)  # [{task, metric, value, ci_low, ci_high, n}]
    notes: list = field(default_factory=list)
    datasets: list = field(default_factory=list)  # hub data set ids of the training data
    tags: list = field(default_factory=lambda: ["dpo"])


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _md(x) -> str:
    return str(x).replace("|", "\\|").replace("\n", " ")


def _results_table(results: list[dict]) -> list[str]:
    rows = ["Mean per item with a bootstrap 95% interval.", "", "| task | metric | value | 95% interval | n |",
            "|---|---|---|---|---|"]
    for r in results:
        ci = f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}]" if r.get("ci_low") is not None else ""
        val = f"{r['value']:.3f}" if isinstance(r.get("value"), (int, float)) else "n/a"
        rows.append(f"| {_md(r.get('task', ''))} | {_md(r.get('metric', ''))} | {val} | {ci} | {r.get('n', '')} |")
    return rows


def _model_index(name: str, results: list[dict]) -> list[dict]:
    """The hub's ``model-index`` of evaluation results (one entry per task and metric, the interval in the name)."""
    out = []
    for r in results:
        if not isinstance(r.get("value"), (int, float)):
            continue
        task = str(r.get("task", "")).split(" [")[0]
        hub, config = EVAL_DATASETS.get(task, (f"selfalign/{task}", None))
        ci = (f", 95% CI [{r['ci_low']:.3f}, {r['ci_high']:.3f}]" if isinstance(r.get("ci_low"), (int, float))
              and isinstance(r.get("ci_high"), (int, float)) else "")
        n = f", n={r['n']}" if r.get("n") else ""
        out.append({"task": {"type": "text-generation", "name": str(r.get("task", ""))},
                    "dataset": {"name": str(r.get("task", "")), "type": hub, **({"config": config} if config else {})},
                    "metrics": [{"type": str(r.get("metric", "")), "value": float(r["value"]),
                                 "name": f"{r.get('metric', '')}{ci}{n}"}]})
    return [{"name": name, "results": out}] if out else []


def front_matter(base: dict, kind: str, card: ModelCard, name: str) -> dict:
    """The card's YAML front matter (what the hub reads): base_model and license where known, library_name,
    datasets, tags, model-index."""
    front: dict = {}
    if base.get("hub_id"):
        front["base_model"] = base["hub_id"]
    if base.get("license"):
        front["license"] = base["license"]
    front["library_name"] = "peft" if kind == "adapter" else "transformers"
    if card.datasets:
        front["datasets"] = list(card.datasets)
    front["tags"] = ["selfalign", *[t for t in card.tags if t != "selfalign"], "factuality"]
    if base.get("gguf"):
        front["tags"].append("gguf-dequantized")
    index = _model_index(name, card.results)
    if index:
        front["model-index"] = index
    return front


def _dump_front(front: dict) -> str:
    import yaml

    return "---\n" + yaml.safe_dump(front, sort_keys=False, allow_unicode=True).strip() + "\n---\n"


def base_lines(base: dict, kind: str) -> tuple[list[str], list[str]]:
    """The card's lines on the base model, and on how to load the folder."""
    from selfalign.models import ALIASES

    spec, hub, g = base.get("base_model", "?"), base.get("hub_id"), base.get("gguf") or {}
    what = f"`{hub}`" if hub else f"`{spec}`"
    if hub and spec != hub:
        what += f", as selfalign's {'alias' if spec in ALIASES else 'base'} `{spec}`"
    lines = [f"- **Base model**: {what}"]
    if g:
        q = g.get("quantization", "quantised")
        lines.append(f"- **Base weights**: the {q} GGUF `{g.get('gguf_file', '?')}` dequantised to float (sha256 "
                     f"`{str(g.get('gguf_sha256', '?'))[:12]}...` in `selfalign_base.json`), not the original "
                     f"weights{f' of `{hub}`' if hub else ''}: loaded on the original weights the adapter behaves "
                     f"close to, not exactly as, it did in training.")
    if kind != "adapter":
        return lines, []
    peft = (f"`AutoPeftModelForCausalLM.from_pretrained(THIS_FOLDER)` (downloads `{hub}`)" if hub else
            "`PeftModel.from_pretrained(base_model, THIS_FOLDER)`")
    return lines, ["", f"Load it with selfalign (`--model THIS_FOLDER`: the base is read from `selfalign_base.json`) "
                       f"or with PEFT: {peft}."]


def render_card(base: dict, kind: str, card: ModelCard, name: str = "model") -> str:
    """The card's Markdown, with the YAML front matter the hub reads. ``base``: ``base_record``'s dict."""
    about, loading = base_lines(base, kind)
    lines = [_dump_front(front_matter(base, kind, card, name)),
             f"# {'LoRA adapter' if kind == 'adapter' else 'Model'} trained with selfalign", "", *about,
             *[f"- **{n}**: {v}" for n, v in (("Method", card.method), ("Judge", card.judge),
                                              ("Training data", card.data), ("Recipe", card.recipe)) if v],
             *loading]
    if card.hyperparameters:
        lines += ["", "## Hyperparameters", "", "| setting | value |", "|---|---|"]
        lines += [f"| {_md(k)} | {_md(_fmt(v))} |" for k, v in card.hyperparameters.items()]
    if card.training:
        lines += ["", "## Training", "", "| | |", "|---|---|"]
        lines += [f"| {_md(k)} | {_md(_fmt(v))} |" for k, v in card.training.items()]
    lines += ["", "## Evaluation", ""]
    lines += _results_table(card.results) if card.results else [
        "Not evaluated when this card was written (`selfalign eval ... --model THIS_FOLDER`)."]
    if card.notes:
        lines += ["", *card.notes]
    return "\n".join(lines) + "\n"


def write_card(out: str | Path, base_spec: str, kind: str, card: Optional[ModelCard] = None) -> None:
    out = Path(out)
    (out / CARD).write_text(render_card(base_record(base_spec, out), kind, card or ModelCard(), out.resolve().name),
                            encoding="utf-8")


def save_adapter(model, tok, out: str | Path, base_spec: str, lora: bool = True, merged: bool = False,
                 card: Optional[ModelCard] = None, weights: bool = True) -> str:
    """Save the weights (safetensors), the tokenizer, the base record and the model card; returns what was saved
    ("adapter", "merged model" or "full model"). ``weights=False``: they are saved already (ZeRO-3 / FSDP gather
    them in ``Trainer.save_model`` on every process); the rest is added."""
    from selfalign.models import BASE_FILE

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    base = base_record(base_spec, out)
    if weights and lora and merged:
        model = model.merge_and_unload()
    if weights:
        model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    kind = "adapter" if lora and not merged else "model"
    if kind == "adapter":
        cfg_path = out / "adapter_config.json"
        acfg = read_json(cfg_path)  # PEFT's, written just now
        acfg["base_model_name_or_path"] = peft_base(base, out)  # PEFT wrote the folder the weights came from
        if base.get("revision") and acfg["base_model_name_or_path"] == base.get("hub_id"):
            acfg["revision"] = base["revision"]  # the base's hub commit (AutoPeftModel loads that one)
        cfg_path.write_text(json.dumps(acfg, indent=2, sort_keys=True) + "\n")
        (out / BASE_FILE).write_text(json.dumps(base, indent=1) + "\n")
    (out / CARD).write_text(render_card(base, kind, card or ModelCard(), out.resolve().name), encoding="utf-8")
    return "adapter" if kind == "adapter" else ("merged model" if merged else "full model")


def add_results(out: str | Path, results: list[dict]) -> None:
    """Rewrite the card's Evaluation section and its front matter's ``model-index`` with ``results`` (the recipe
    runner calls it after the evals)."""
    from selfalign.errors import InputError
    from selfalign.store.yamlfile import parse_yaml

    path = Path(out) / CARD
    if not path.exists():
        return
    text = read_text(path)
    if text.startswith("---\n") and "\n---\n" in text[4:]:
        raw, body = text[4:].split("\n---\n", 1)
        front = parse_yaml(raw, path) or {}
        if not isinstance(front, dict):
            raise InputError(path, "its front matter is not a mapping")
        front.pop("model-index", None)
        index = _model_index(Path(out).resolve().name, results)
        if index:
            front["model-index"] = index
        text = _dump_front(front) + body
    head, _, rest = text.partition("\n## Evaluation\n")
    tail = rest.split("\n## ", 1)[1] if "\n## " in rest else ""
    rows = _results_table(results)
    path.write_text(head + "\n## Evaluation\n\n" + "\n".join(rows) + "\n" + ("\n## " + tail if tail else ""),
                    encoding="utf-8")
