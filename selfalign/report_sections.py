"""The report's recipe-run sections (``report.run_sections``): training curves, settings, pair statistics and
BioGEN's per-fact decisions, as HTML (every text escaped) and Markdown (HTML-escaped cells)."""
from __future__ import annotations

from selfalign.report_render import _md, _table, esc

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
                     f'{t["steps"]} steps; last: {esc(fin)}</figcaption></figure>')
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
