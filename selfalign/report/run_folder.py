"""A recipe run folder (``selfalign run``: ``RUN/recipe.json``, ``RUN/<stage>/stage.json``, ``RUN/eval/<model>/``)
read for the report: one labelled entry per evaluated model, training curves, settings, pair statistics.

Only files inside the run folder are read; an image is inlined only when it is a PNG inside the folder, below
``MAX_PNG_BYTES`` (a result JSON that names another path is ignored)."""
from __future__ import annotations

from pathlib import Path
from statistics import mean, median

from selfalign.store.io import iter_jsonl, peek_json

MAX_PNG_BYTES = 2 * 2 ** 20
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
STAGES = ("sk-data", "sk-tune", "sample", "score", "pairs", "align")
TRAINED = ("align", "sk-tune")  # stages whose RUN/<stage>/model/train_log.jsonl holds training curves


def is_run_folder(path: Path) -> bool:
    return path.is_dir() and (path / "recipe.json").is_file() and (path / "eval").is_dir()


def inside(path: str | Path, root: Path) -> Path | None:
    """``path`` (relative paths: against ``root``) when it resolves to a file inside ``root``, else None."""
    p = Path(path)
    p = (p if p.is_absolute() else root / p).resolve()
    try:
        p.relative_to(root.resolve())
    except ValueError:
        return None
    return p if p.is_file() else None


def safe_png(path: str | Path, root: Path) -> bytes | None:
    """The bytes of a PNG the run produced: inside ``root``, named .png, starting with the PNG signature, capped."""
    p = inside(path, root)
    if p is None or p.suffix.lower() != ".png" or p.stat().st_size > MAX_PNG_BYTES:
        return None
    data = p.read_bytes()
    return data if data.startswith(PNG_MAGIC) else None


def _json(path: Path) -> dict:
    obj = peek_json(path, {})  # bounded; a damaged file: nothing known
    return obj if isinstance(obj, dict) else {}


def model_labels(run: Path) -> list[str]:
    """The evaluated models, in the recipe's order (base first), then any other folder under RUN/eval."""
    recipe = _json(run / "recipe.json").get("recipe") or {}
    models = (recipe.get("eval") or {}).get("models") or []
    order = list(models) if isinstance(models, list) else list(models or {})
    found = sorted(p.name for p in (run / "eval").iterdir() if p.is_dir())
    ordered = [m for m in order if m in found] + [m for m in found if m not in order]
    return sorted(ordered, key=lambda m: m != "base")  # the baseline first


def _relative(v, run: Path):
    if isinstance(v, str) and v.startswith(str(run.resolve())):
        return "RUN" + v[len(str(run.resolve())):]
    if isinstance(v, str) and v.startswith(str(run)):
        return "RUN" + v[len(str(run)):]
    return v


def hyperparameters(run: Path) -> dict:
    """{stage: {key: value}}: the settings each stage ran with (paths inside the run shown as RUN/...)."""
    out = {}
    for stage in STAGES:
        cfg = _json(run / stage / "stage.json").get("config")
        if isinstance(cfg, dict):
            out[stage] = {k: _relative(v, run) for k, v in cfg.items() if v not in (None, "", [], {})}
    return out


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def training_logs(run: Path) -> dict:
    """{stage: [log rows]} of the trained stages."""
    out = {}
    for stage in TRAINED:
        path = run / stage / "model" / "train_log.jsonl"
        if path.is_file():
            out[stage] = [r for r in iter_jsonl(path) if isinstance(r, dict) and _number(r.get("step"))]
    return {k: v for k, v in out.items() if v}


def curves(stage: str, rows: list[dict]) -> list[dict]:
    """Panels to plot: [{title, ylabel, unit_interval, x, y}] from align's (TRL) or sk-tune's log rows."""
    def series(get):
        pts = [(r["step"], get(r)) for r in rows]
        pts = [(x, y) for x, y in pts if isinstance(y, (int, float))]
        return [x for x, _ in pts], [y for _, y in pts]

    if stage == "align":
        specs = [("DPO loss", "loss", False, lambda r: r.get("loss")),
                 ("reward margin (chosen − rejected)", "beta · log-ratio margin", False,
                  lambda r: r.get("rewards/margins")),
                 ("reward accuracy", "fraction of pairs", True, lambda r: r.get("rewards/accuracies"))]
    else:
        specs = [("DPO loss (A/B token)", "loss", False, lambda r: r.get("loss")),
                 ("reward margin", "beta · logit margin", False, lambda r: r.get("reward_margin")),
                 ("validation P(True) AUROC", "AUROC", True, lambda r: (r.get("valid") or {}).get("auroc"))]
    out = []
    for title, ylabel, unit, get in specs:
        x, y = series(get)
        if x:
            out.append({"title": title, "ylabel": ylabel, "unit_interval": unit, "x": x, "y": y})
    return out


def pair_stats(run: Path) -> dict | None:
    """Counts from the pairs stage's report and statistics computed from RUN/pairs/pairs.jsonl."""
    path = run / "pairs" / "pairs.jsonl"
    if not path.is_file():
        return None
    rows = list(iter_jsonl(path))
    report = _json(run / "pairs" / "pairs.jsonl.meta.json").get("report") or {}
    out = {k: report[k] for k in ("prompts", "prompts_with_pairs", "rows", "ties_dropped", "duplicates_collapsed",
                                  "below_margin_dropped", "capped_dropped") if k in report}
    out["pairs"] = len(rows)
    if rows:
        scored = [r for r in rows if all(isinstance(r.get(k), (int, float)) for k in ("chosen_score", "rejected_score"))]
        margins = [r["chosen_score"] - r["rejected_score"] for r in scored]
        if margins:
            out.update({"score margin: mean": mean(margins), "score margin: median": median(margins),
                        "chosen score: mean": mean(r["chosen_score"] for r in rows if "chosen_score" in r),
                        "rejected score: mean": mean(r["rejected_score"] for r in rows if "rejected_score" in r)})
        out["chosen words: mean"] = mean(len(str(r.get("chosen", "")).split()) for r in rows)
        out["rejected words: mean"] = mean(len(str(r.get("rejected", "")).split()) for r in rows)
    return out
