"""Renderers of the report model (``report.build_model``): self-contained HTML and Markdown, PNG plots as base64."""
from __future__ import annotations

import base64
import html
import io
import tempfile
from pathlib import Path

CSS = """body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:.6em 0 1.6em}th,td{border:1px solid #ccc;padding:.3em .6em;vertical-align:top}
th{background:#f2f2f2}td.num{text-align:right;white-space:nowrap}small{color:#666}
.pos{background:#e3f4e3}.neg{background:#f8e1e1}.ans{max-width:32em;white-space:pre-wrap}
img{max-width:100%;margin:.3em}figure{display:inline-block;margin:.4em;text-align:center}"""


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
    """The calibrate stage's reliability diagram, as base64 PNG."""
    from selfalign.plots import reliability_diagram

    with tempfile.TemporaryDirectory() as d:
        return b64(reliability_diagram(labels, probs, Path(d) / "r.png", title).read_bytes())


def bar_png(task: str, runs: list[tuple[str, dict]]) -> str:
    """Grouped bars: one group per metric, one bar per run, 95% interval whiskers."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    metrics = list(dict.fromkeys(m for _, ms in runs for m in ms))
    fig = Figure(figsize=(max(4.0, 1.2 * len(metrics) * max(1, len(runs)) ** 0.5 + 2), 3.2), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    w = 0.8 / max(1, len(runs))
    x = np.arange(len(metrics))
    for j, (name, ms) in enumerate(runs):
        vals = [(ms.get(m) or {}).get("value") for m in metrics]
        v = np.array([np.nan if a is None else a for a in vals], dtype=float)
        lo = np.array([(ms.get(m) or {}).get("ci_low") for m in metrics], dtype=float)
        hi = np.array([(ms.get(m) or {}).get("ci_high") for m in metrics], dtype=float)
        err = np.nan_to_num(np.vstack([v - lo, hi - v]), nan=0.0)
        ax.bar(x + (j - (len(runs) - 1) / 2) * w, np.nan_to_num(v), w, yerr=err, capsize=3, label=name)
    ax.set_xticks(x, metrics)
    ax.set_title(task)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)


# --- cell formats ------------------------------------------------------------------------------------------
def _f(v, sign=False) -> str:
    return "n/a" if v is None else (f"{v:+.3f}" if sign else f"{v:.3f}")


def metric_cell(m: dict | None) -> tuple[str, str]:
    """(value, "[low, high] n=N") of a results metric."""
    if not m or m.get("value") is None:
        return "n/a", ""
    ci = f"[{_f(m.get('ci_low'))}, {_f(m.get('ci_high'))}]" if m.get("ci_low") is not None else ""
    return _f(m["value"]), f"{ci} n={m.get('n')}".strip()


def diff_cell(d: dict | None) -> tuple[str, str, str]:
    """(diff, "[low, high] n=N", css class: pos/neg when the interval excludes 0)."""
    if not d or d.get("diff") is None:
        return "n/a", "", ""
    lo, hi = d.get("ci_low"), d.get("ci_high")
    cls = "pos" if lo is not None and lo > 0 else "neg" if hi is not None and hi < 0 else ""
    ci = f"[{_f(lo, True)}, {_f(hi, True)}]" if lo is not None else ""
    return _f(d["diff"], True), f"{ci} n={d.get('n')}".strip(), cls


def ci_cell(m: dict | None) -> tuple[str, str]:
    """(value, "[low, high]") of a calibration report entry ({value, low, high})."""
    if not m or m.get("value") is None:
        return "n/a", ""
    return _f(m["value"]), f"[{_f(m.get('low'))}, {_f(m.get('high'))}]" if m.get("low") is not None else ""


def calib_columns(rep: dict) -> list[tuple[str, tuple[str, str]]]:
    pt, da = rep.get("ptrue") or {}, rep.get("direct_accuracy") or {}
    return [("AUROC", ci_cell(pt.get("auroc"))), ("ECE", ci_cell(pt.get("ece"))), ("Brier", ci_cell(pt.get("brier"))),
            ("selection acc. (P(True))", ci_cell(rep.get("selection_accuracy"))),
            ("direct acc. (likelihood)", ci_cell(da.get("sum"))), ("questions", (str(rep.get("n_questions")), ""))]


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
         "<h2>Runs</h2><table><tr>" + "".join(f"<th>{f}</th>" for f in RUN_FIELDS) + "</tr>"]
    h += ["<tr>" + "".join(f"<td>{esc(r.get(f))}</td>" for f in RUN_FIELDS) + "</tr>" for r in model["runs"]]
    h.append("</table>")
    if cols:
        h.append("<h2>Results</h2><p>Mean per item with a percentile-bootstrap 95% interval.</p><table>" + _head(cols))
        for name, cells in model["table"].items():
            h.append(f"<tr><th>{esc(name)}</th>" + "".join(_td(*metric_cell(cells.get(c))) for c in cols) + "</tr>")
        h.append("</table>" + "".join(f'<figure><img alt="{esc(k)}" src="data:image/png;base64,{png}"></figure>'
                                      for k, png in model["bars"].items()))
    if model.get("judges"):
        h.append("<h2>Judges and verifiers</h2><ul>" + "".join(f"<li>{esc(x)}</li>" for x in model["judges"]) + "</ul>")
    if model["diffs"]:
        h.append(f"<h2>Differences vs {esc(model['baseline'])}</h2><p>Run minus baseline on the items both have; "
                 f"paired bootstrap ({model['n_boot']} resamples) 95% interval; shaded where it excludes 0.</p>"
                 f"<table>{_head(cols)}")
        for name, cells in model["diffs"].items():
            h.append(f"<tr><th>{esc(name)}</th>" + "".join(_td(*diff_cell(cells.get(c))) for c in cols) + "</tr>")
        h.append("</table>")
    if model["calibration"]:
        names = [n for n, _ in calib_columns(model["calibration"][0]["report"])]
        h.append("<h2>Calibration (P(True))</h2><table><tr><th>run</th><th>set</th>"
                 + "".join(f"<th>{esc(n)}</th>" for n in names) + "</tr>")
        for c in model["calibration"]:
            h.append(f"<tr><th>{esc(c['run'])}</th><td>{esc(c['key'])}</td>"
                     + "".join(_td(*v) for _, v in calib_columns(c["report"])) + "</tr>")
        h.append("</table>" + "".join(f'<figure><img alt="reliability" src="data:image/png;base64,{c["png"]}">'
                                      f"<figcaption>{esc(c['run'])}: {esc(c['key'])}</figcaption></figure>"
                                      for c in model["calibration"] if c["png"]))
    for a in model["answers"]:
        shown = f"; the first {len(a['items'])} shown" if len(a["items"]) < a["n_differ"] else ""
        h.append(f"<h2>Answers that differ: {esc(a['key'])}</h2><p>{a['n_differ']} items differ{shown}.</p>"
                 "<table><tr><th>id</th><th>question</th>" + "".join(f"<th>{esc(n)}</th>" for n in a["runs"]) + "</tr>")
        for it in a["items"]:
            cells = ""
            for n in a["runs"]:
                c = it["cells"].get(n)
                sub = ", ".join(f"{m}={v:.3g}" if isinstance(v, float) else f"{m}={v}"
                                for m, v in (c or {}).get("metrics", {}).items())
                cells += (f'<td class="ans">{esc(c["text"])}' + (f"<br><small>{esc(sub)}</small>" if sub else "")
                          + "</td>") if c else "<td></td>"
            h.append(f"<tr><td>{esc(it['id'])}</td><td class=\"ans\">{esc(it['question'])}</td>{cells}</tr>")
        h.append("</table>")
    h.append("</body></html>")
    return "\n".join(h)


# --- Markdown ------------------------------------------------------------------------------------------------
def _md(x) -> str:
    return str("" if x is None else x).replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _row(cells) -> str:
    return "| " + " | ".join(_md(c) for c in cells) + " |"


def _table(header, rows) -> list[str]:
    return [_row(header), "|" + "---|" * len(header), *(_row(r) for r in rows), ""]


def to_markdown(model: dict) -> str:
    cols = model["columns"]
    hdr = ["run"] + [f"{k}: {m}" for k, m in cols]
    out = ["# selfalign report", "", f"Generated {model['generated']}.", "", "## Runs", ""]
    out += _table(RUN_FIELDS, [[r.get(f) for f in RUN_FIELDS] for r in model["runs"]])
    if cols:
        out += ["## Results", "", "Mean per item with a percentile-bootstrap 95% interval.", ""]
        out += _table(hdr, [[name] + [" ".join(metric_cell(cells.get(c))) for c in cols]
                            for name, cells in model["table"].items()])
    if model.get("judges"):
        out += ["## Judges and verifiers", ""] + [f"- {x}" for x in model["judges"]] + [""]
    if model["diffs"]:
        out += [f"## Differences vs {model['baseline']}", "", "Paired bootstrap on shared items; ** = the 95% "
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
        names = [n for n, _ in calib_columns(model["calibration"][0]["report"])]
        out += ["## Calibration (P(True))", "", "Reliability diagrams: see the HTML report.", ""]
        out += _table(["run", "set", *names], [[c["run"], c["key"], *(" ".join(v).strip()
                                                                     for _, v in calib_columns(c["report"]))]
                                               for c in model["calibration"]])
    for a in model["answers"]:
        out += [f"## Answers that differ: {a['key']}", "", f"{a['n_differ']} items differ.", ""]
        out += _table(["id", "question", *a["runs"]],
                      [[it["id"], it["question"], *((it["cells"].get(n) or {}).get("text", "") for n in a["runs"])]
                       for it in a["items"]])
    return "\n".join(out)
