"""Renderers of the report model (``report.build_model``): self-contained HTML and Markdown, PNG plots as base64;
then the recipe-run sections (``report.run_sections``: training curves, settings, pair statistics and BioGEN's
per-fact decisions), as HTML (every text escaped) and Markdown (HTML-escaped cells)."""
from __future__ import annotations

import base64
import html
import io
import tempfile
from pathlib import Path

from selfalign.report.tables import interval, num

CSS = """body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:.6em 0 1.6em}th,td{border:1px solid #ccc;padding:.3em .6em;vertical-align:top}
th{background:#f2f2f2}td.num{text-align:right;white-space:nowrap}small{color:#666}
.pos{background:#e3f4e3}.neg{background:#f8e1e1}.ans{max-width:32em;white-space:pre-wrap}
img{max-width:100%;margin:.3em}figure{display:inline-block;margin:.4em;text-align:center}
.ref{background:#f4f4ff}ul.facts{margin:0;padding-left:1.1em}li.sup{color:#1a6b1a}li.uns{color:#a01818}"""


def esc(x) -> str:
    """HTML-escaped text; "://" is written as an entity so no URL-looking text appears in the source."""
    return html.escape("" if x is None else str(x)).replace("://", "&#58;//")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return b64(buf.getvalue())


def reliability_png(labels, probs, title: str) -> str:
    """The calibrate evaluation's reliability diagram, as base64 PNG."""
    from selfalign.plots import reliability_diagram

    with tempfile.TemporaryDirectory() as d:
        return b64(reliability_diagram(labels, probs, Path(d) / "r.png", title).read_bytes())


def _is_unit(metric: str, runs: list[tuple[str, dict]]) -> bool:
    """A metric on the 0-1 scale (a rate or a mean of 0/1 items): every value and bound within [0, 1]."""
    vals = [v for _, ms in runs for k in ("value", "ci_low", "ci_high")
            if isinstance(v := (ms.get(metric) or {}).get(k), (int, float))]
    return bool(vals) and all(0.0 <= v <= 1.0 for v in vals)


def bar_pngs(task: str, runs: list[tuple[str, dict]]) -> list[str]:
    """Grouped bars with 95% interval whiskers: one chart for the 0-1 metrics (a 0-1 axis) and, apart, one for
    counts (FActScore's facts per bio, ...), so no count is drawn on a 0-1 axis."""
    metrics = list(dict.fromkeys(m for _, ms in runs for m in ms))
    unit = [m for m in metrics if _is_unit(m, runs)]
    other = [m for m in metrics if m not in unit]
    out = []
    if unit:
        out.append(_bars(task, runs, unit, "mean per item (0–1), 95% CI", (0.0, 1.0)))
    if other:
        out.append(_bars(f"{task} (counts)", runs, other, "mean per item, 95% CI", None))
    return out


def _bars(title: str, runs, metrics: list[str], ylabel: str, ylim) -> str:
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(max(4.0, 1.2 * len(metrics) * max(1, len(runs)) ** 0.5 + 2), 3.4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    w = 0.8 / max(1, len(runs))
    x = np.arange(len(metrics))
    for j, (name, ms) in enumerate(runs):
        v = np.array([np.nan if (a := (ms.get(m) or {}).get("value")) is None else a for m in metrics], dtype=float)
        lo = np.array([(ms.get(m) or {}).get("ci_low") for m in metrics], dtype=float)
        hi = np.array([(ms.get(m) or {}).get("ci_high") for m in metrics], dtype=float)
        err = np.clip(np.nan_to_num(np.vstack([v - lo, hi - v]), nan=0.0), 0, None)
        ax.bar(x + (j - (len(runs) - 1) / 2) * w, np.nan_to_num(v), w, yerr=err, capsize=3, label=name)
    ax.set_xticks(x, metrics)
    ax.set_xlabel("metric")
    ax.set_ylabel(ylabel)
    if ylim:
        ax.set_ylim(*ylim)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)


def curves_png(title: str, panels: list[dict]) -> str:
    """Training curves side by side (report_run.curves panels), x = optimizer step, each y axis labelled."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.2 * len(panels), 3.2), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, p in zip(axes, panels):
        ax.plot(p["x"], p["y"], marker="o" if len(p["x"]) < 30 else None, markersize=3)
        ax.set_title(p["title"], fontsize=9)
        ax.set_xlabel("optimizer step")
        ax.set_ylabel(p["ylabel"])
        if p["unit_interval"]:
            ax.set_ylim(0, 1)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _png(fig)


# --- cell formats ------------------------------------------------------------------------------------------
def metric_cell(m: dict | None) -> tuple[str, str]:
    """(value, "[low, high] n=N") of a results metric."""
    if not m or m.get("value") is None:
        return "n/a", ""
    ci = interval(m.get("ci_low"), m.get("ci_high"), missing="n/a") if m.get("ci_low") is not None else ""
    return num(m["value"], missing="n/a"), f"{ci} n={m.get('n')}".strip()


def diff_cell(d: dict | None) -> tuple[str, str, str]:
    """(diff, "[low, high] n=N", css class: pos/neg when the interval excludes 0)."""
    if not d or d.get("diff") is None:
        return "n/a", "", ""
    lo, hi = d.get("ci_low"), d.get("ci_high")
    cls = "pos" if lo is not None and lo > 0 else "neg" if hi is not None and hi < 0 else ""
    ci = interval(lo, hi, sign=True, missing="n/a") if lo is not None else ""
    return num(d["diff"], sign=True, missing="n/a"), f"{ci} n={d.get('n')}".strip(), cls


RUN_FIELDS = ("name", "model", "adapter", "commit", "time", "source")


# --- HTML --------------------------------------------------------------------------------------------------
def _td(main: str, sub: str = "", cls: str = "") -> str:
    return f'<td class="num {cls}">{esc(main)}' + (f"<br><small>{esc(sub)}</small>" if sub else "") + "</td>"


def _head(columns) -> str:
    tasks = list(dict.fromkeys(k for k, _ in columns))
    top = "".join(f'<th colspan="{sum(1 for k, _ in columns if k == t)}">{esc(t)}</th>' for t in tasks)
    return f'<tr><th rowspan="2">run</th>{top}</tr><tr>' + "".join(f"<th>{esc(m)}</th>" for _, m in columns) + "</tr>"


def to_html(model: dict) -> str:
    cols = model["columns"]
    h = [f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>selfalign report</title><style>{CSS}</style>"
         f"</head><body><h1>selfalign report</h1><p><small>generated {esc(model['generated'])}</small></p>",
         "<h2 id=\"runs\">Runs</h2><table><tr>" + "".join(f"<th>{f}</th>" for f in RUN_FIELDS) + "</tr>"]
    h += ["<tr>" + "".join(f"<td>{esc(r.get(f))}</td>" for f in RUN_FIELDS) + "</tr>" for r in model["runs"]]
    h.append("</table>")
    if cols:
        h.append("<h2 id=\"results\">Results</h2><p>Mean per item with a percentile-bootstrap 95% interval.</p>"
                 "<table>" + _head(cols))
        for name, cells in model["table"].items():
            h.append(f"<tr><th>{esc(name)}</th>" + "".join(_td(*metric_cell(cells.get(c))) for c in cols) + "</tr>")
        h.append("</table>" + "".join(f'<figure><img alt="{esc(k)}" src="data:image/png;base64,{png}"></figure>'
                                      for k, png in model["bars"]))
    if model.get("judges"):
        h.append("<h2>Judges and verifiers</h2><ul>" + "".join(f"<li>{esc(x)}</li>" for x in model["judges"]) + "</ul>")
    if model["diffs"]:
        h.append(f"<h2 id=\"differences\">Differences vs {esc(model['baseline'])}</h2><p>Run minus baseline on the "
                 "items both have; "
                 f"paired bootstrap ({model['n_boot']} resamples) 95% interval; shaded where it excludes 0.</p>"
                 f"<table>{_head(cols)}")
        for name, cells in model["diffs"].items():
            h.append(f"<tr><th>{esc(name)}</th>" + "".join(_td(*diff_cell(cells.get(c))) for c in cols) + "</tr>")
        h.append("</table>")
    if model["calibration"]:
        h.append("<h2 id=\"calibration\">Calibration (P(True))</h2><p>Reliability diagrams of the results with "
                 "per-option P(True) (their AUROC, ECE and Brier are in the results table).</p>"
                 + "".join(f'<figure><img alt="reliability" src="data:image/png;base64,{c["png"]}">'
                           f"<figcaption>{esc(c['run'])}: {esc(c['key'])}</figcaption></figure>"
                           for c in model["calibration"] if c["png"]))
    for a in model["answers"]:
        shown = f"; the first {len(a['items'])} shown" if len(a["items"]) < a["n_differ"] else ""
        ref = any(it.get("reference") for it in a["items"])
        h.append(f"<h2 class=\"answers\">Answers that differ: {esc(a['key'])}</h2>"
                 f"<p>{a['n_differ']} items differ{shown}.</p><table><tr><th>id</th><th>question</th>"
                 + ("<th>reference</th>" if ref else "") + "".join(f"<th>{esc(n)}</th>" for n in a["runs"]) + "</tr>")
        for it in a["items"]:
            cells = f'<td class="ans ref">{esc(it.get("reference"))}</td>' if ref else ""
            for n in a["runs"]:
                c = it["cells"].get(n)
                sub = ", ".join(f"{m}={v:.3g}" if isinstance(v, float) else f"{m}={v}"
                                for m, v in (c or {}).get("metrics", {}).items())
                cells += (f'<td class="ans">{esc(c["text"])}' + (f"<br><small>{esc(sub)}</small>" if sub else "")
                          + "</td>") if c else "<td></td>"
            h.append(f"<tr><td>{esc(it['id'])}</td><td class=\"ans\">{esc(it['question'])}</td>{cells}</tr>")
        h.append("</table>")

    h += html_sections(model)
    h.append("</body></html>")
    return "\n".join(h)


# --- Markdown ------------------------------------------------------------------------------------------------
def _md(x) -> str:
    """Markdown text from any value: HTML escaped (a renderer shows text, never runs markup), the link opener
    after a ``]`` backslash-escaped (no live ``[text](javascript:...)``), pipes and newlines too."""
    text = html.escape(str("" if x is None else x), quote=False)
    text = text.replace("](", "]\\(").replace("][", "]\\[")  # a link needs "](" (or "][" and a reference)
    return text.replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _row(cells) -> str:
    return "| " + " | ".join(_md(c) for c in cells) + " |"


def _table(header, rows) -> list[str]:
    return [_row(header), "|" + "---|" * len(header), *(_row(r) for r in rows), ""]


def to_markdown(model: dict) -> str:
    cols = model["columns"]
    hdr = ["run"] + [f"{k}: {m}" for k, m in cols]
    out = ["# selfalign report", "", f"Generated {_md(model['generated'])}.", "", "## Runs", ""]
    out += _table(RUN_FIELDS, [[r.get(f) for f in RUN_FIELDS] for r in model["runs"]])
    if cols:
        out += ["## Results", "", "Mean per item with a percentile-bootstrap 95% interval.", ""]
        out += _table(hdr, [[name] + [" ".join(metric_cell(cells.get(c))) for c in cols]
                            for name, cells in model["table"].items()])
    if model.get("judges"):
        out += ["## Judges and verifiers", ""] + [f"- {_md(x)}" for x in model["judges"]] + [""]
    if model["diffs"]:
        out += [f"## Differences vs {_md(model['baseline'])}", "", "Paired bootstrap on shared items; ** = the 95% "
                "interval excludes 0.", ""]
        rows = []
        for name, cells in model["diffs"].items():
            row = [name]
            for c in cols:
                d, ci, cls = diff_cell(cells.get(c))
                row.append(f"**{d}** {ci}" if cls else f"{d} {ci}".strip())
            rows.append(row)
        out += _table(hdr, rows)
    if model["calibration"]:
        out += ["## Calibration (P(True))", "", "Reliability diagrams (see the HTML report) of: "
                + "; ".join(_md(f"{c['run']}: {c['key']}") for c in model["calibration"]) + ".", ""]
    for a in model["answers"]:
        ref = any(it.get("reference") for it in a["items"])
        out += [f"## Answers that differ: {_md(a['key'])}", "", f"{a['n_differ']} items differ.", ""]
        out += _table(["id", "question", *(["reference"] if ref else []), *a["runs"]],
                      [[it["id"], it["question"], *([it.get("reference")] if ref else []),
                        *((it["cells"].get(n) or {}).get("text", "") for n in a["runs"])] for it in a["items"]])

    out += md_sections(model)
    return "\n".join(out)


# --- recipe-run sections ---------------------------------------------------------------------------------
FINAL_KEYS = ("loss", "rewards/margins", "rewards/accuracies", "reward_margin", "reward_accuracy")


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return ", ".join(map(str, v))
    return str(v)


def _final(t: dict) -> dict:
    f = t["final"]
    out = {k: f[k] for k in FINAL_KEYS if isinstance(f.get(k), (int, float))}
    if isinstance((f.get("valid") or {}).get("auroc"), (int, float)):
        out["valid AUROC"] = f["valid"]["auroc"]
    return out


def _where(run: str, stage: str) -> str:
    return f"{run}: {stage}" if run else stage


def _fact_list_html(decisions: list[dict]) -> str:
    if not decisions:
        return "<small>no facts (abstained or empty)</small>"
    items = "".join(f'<li class="{"sup" if d.get("is_supported") else "uns"}">'
                    f'{"✓" if d.get("is_supported") else "✗"} {esc(d.get("atom"))}'
                    + (f' <small>P(True) {d["p_true"]:.2f}</small>' if isinstance(d.get("p_true"), float) else "")
                    + "</li>" for d in decisions)
    return f"<ul class=\"facts\">{items}</ul>"


def html_sections(model: dict) -> list[str]:
    h = []
    if model.get("training"):
        h.append('<h2 id="training">Training curves</h2><p>One point per optimizer step (x axis); align: TRL\'s DPO '
                 "loss, reward margin and reward accuracy; sk-tune: the A/B-token DPO loss, reward margin and the "
                 "validation P(True) AUROC.</p>")
        for t in model["training"]:
            fin = ", ".join(f"{k} {_fmt(v)}" for k, v in _final(t).items())
            h.append(f'<figure><img alt="training curves: {esc(_where(t["run"], t["stage"]))}" '
                     f'src="data:image/png;base64,{t["png"]}"><figcaption>{esc(_where(t["run"], t["stage"]))}: '
                     f'{esc(t["steps"])} steps; last: {esc(fin)}</figcaption></figure>')
    if model.get("settings"):
        h.append('<h2 id="hyperparameters">Hyperparameters</h2><p>The settings each stage ran with (the recipe\'s '
                 "keys and the runner's wiring; RUN = the run folder).</p>")
        for s in model["settings"]:
            for stage, values in s["stages"].items():
                h.append(f"<h3>{esc(_where(s['run'], stage))}</h3><table><tr><th>key</th><th>value</th></tr>"
                         + "".join(f"<tr><td>{esc(k)}</td><td>{esc(_fmt(v))}</td></tr>" for k, v in values.items())
                         + "</table>")
    if model.get("pair_stats"):
        h.append('<h2 id="pairs">Preference pairs</h2><p>Counts from the pairs stage; scores are the judge\'s '
                 "Self-Eval confidence of the chosen and rejected answer.</p>")
        for p in model["pair_stats"]:
            h.append((f"<h3>{esc(p['run'])}</h3>" if p["run"] else "") + "<table><tr><th>statistic</th><th>value</th>"
                     "</tr>" + "".join(f'<tr><td>{esc(k)}</td><td class="num">{esc(_fmt(v))}</td></tr>'
                                       for k, v in p["stats"].items()) + "</table>")
    for f in model.get("facts") or []:
        h.append(f'<h2 class="facts">Per-fact decisions: {esc(f["key"])}</h2><p>Each bio\'s atomic facts and the '
                 "verifier's decision (✓ supported, ✗ not), with its P(True).</p>"
                 "<table><tr><th>id</th><th>topic</th>"
                 + "".join(f"<th>{esc(n)}</th>" for n in f["runs"]) + "</tr>")
        for it in f["items"]:
            cells = "".join(f"<td>{_fact_list_html(it['cells'][n])}</td>" if n in it["cells"] else "<td></td>"
                            for n in f["runs"])
            h.append(f"<tr><td>{esc(it['id'])}</td><td>{esc(it['topic'])}</td>{cells}</tr>")
        h.append("</table>")
    return h


def md_sections(model: dict) -> list[str]:
    out = []
    if model.get("training"):
        out += ["## Training curves", "", "Plots: see the HTML report. Last logged step:", ""]
        out += _table(["stage", "steps", "last"], [[_where(t["run"], t["stage"]), t["steps"],
                                                    ", ".join(f"{k} {_fmt(v)}" for k, v in _final(t).items())]
                                                   for t in model["training"]])
    if model.get("settings"):
        out += ["## Hyperparameters", ""]
        for s in model["settings"]:
            for stage, values in s["stages"].items():
                out += [f"### {_md(_where(s['run'], stage))}", ""]
                out += _table(["key", "value"], [[k, _fmt(v)] for k, v in values.items()])
    if model.get("pair_stats"):
        out += ["## Preference pairs", ""]
        for p in model["pair_stats"]:
            out += ([f"### {_md(p['run'])}", ""] if p["run"] else [])
            out += _table(["statistic", "value"], [[k, _fmt(v)] for k, v in p["stats"].items()])
    for f in model.get("facts") or []:
        out += [f"## Per-fact decisions: {_md(f['key'])}", "", "✓ supported, ✗ not supported.", ""]
        out += _table(["id", "topic", *f["runs"]], [
            [it["id"], it["topic"], *("; ".join(f"{'✓' if d.get('is_supported') else '✗'} {d.get('atom')}"
                                                for d in it["cells"].get(n, [])) for n in f["runs"])]
            for it in f["items"]])
    return out
