"""A trained model's output folder, made portable: the base recorded as the spec the user gave (an alias, a hub id
or the user's own folder, never a cache path), the tokenizer beside the weights, and a model card.

``save_adapter`` is what every trainer calls at the end (align does; sk-tune can pass its own ``card``)::

    save_adapter(model, tok, out, base_spec=cfg.model, lora=cfg.lora, card=ModelCard(method=..., ...))
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

CARD = "README.md"


def portable_spec(spec: str) -> str:
    """The base as the user named it: an alias or hub id unchanged; a local path made absolute (their folder)."""
    from selfalign.models import ALIASES, PACKAGED_ADAPTERS

    p = Path(spec).expanduser()
    if spec in ALIASES or spec in PACKAGED_ADAPTERS or not p.exists():
        return spec
    return str(p.resolve())


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


def render_card(base: str, kind: str, card: ModelCard) -> str:
    """The card's Markdown, with YAML front matter the hub reads (base_model only for a hub id)."""
    import yaml

    from selfalign.models import ALIASES, HUB_ID

    front = {"library_name": "peft" if kind == "adapter" else "transformers",
             "tags": ["selfalign", "dpo", "factuality"]}
    if HUB_ID.match(base) and base not in ALIASES and not Path(base).exists():
        front["base_model"] = base
    lines = ["---", yaml.safe_dump(front, sort_keys=False).strip(), "---", "",
             f"# {'LoRA adapter' if kind == 'adapter' else 'Model'} trained with selfalign", "",
             f"- **Base model**: `{base}`" + (" (a selfalign alias)" if base in ALIASES else "")]
    for name, value in (("Method", card.method), ("Judge", card.judge), ("Training data", card.data),
                        ("Recipe", card.recipe)):
        if value:
            lines.append(f"- **{name}**: {value}")
    if kind == "adapter":
        lines += ["", "Load it with selfalign (`--model THIS_FOLDER`: the base is read from `selfalign_base.json`) or "
                      "with PEFT: `PeftModel.from_pretrained(base_model, THIS_FOLDER)`."]
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


def save_adapter(model, tok, out: str | Path, base_spec: str, lora: bool = True, merged: bool = False,
                 card: Optional[ModelCard] = None, weights: bool = True) -> str:
    """Save the weights (safetensors), the tokenizer, the base spec and the model card; returns what was saved
    ("adapter", "merged model" or "full model"). ``weights=False``: they are saved already (ZeRO-3 / FSDP gather
    them in ``Trainer.save_model`` on every process); the rest is added."""
    from selfalign.models import BASE_FILE

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    base = portable_spec(base_spec)
    if weights and lora and merged:
        model = model.merge_and_unload()
    if weights:
        model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    kind = "adapter" if lora and not merged else "model"
    if kind == "adapter":
        cfg_path = out / "adapter_config.json"
        acfg = json.loads(cfg_path.read_text())
        acfg["base_model_name_or_path"] = base  # PEFT wrote the folder the weights came from (maybe a cache)
        cfg_path.write_text(json.dumps(acfg, indent=2, sort_keys=True) + "\n")
        (out / BASE_FILE).write_text(json.dumps({"base_model": base}))
    (out / CARD).write_text(render_card(base, kind, card or ModelCard()), encoding="utf-8")
    return "adapter" if kind == "adapter" else ("merged model" if merged else "full model")


def add_results(out: str | Path, results: list[dict]) -> None:
    """Rewrite the card's Evaluation section with ``results`` (the recipe runner calls it after the evals)."""
    path = Path(out) / CARD
    if not path.exists():
        return
    text = path.read_text(encoding="utf-8")
    head, _, rest = text.partition("\n## Evaluation\n")
    tail = rest.split("\n## ", 1)[1] if "\n## " in rest else ""
    rows = _results_table(results)
    path.write_text(head + "\n## Evaluation\n\n" + "\n".join(rows) + "\n" + ("\n## " + tail if tail else ""),
                    encoding="utf-8")
