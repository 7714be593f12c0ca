"""`selfalign report RUN_DIR`: a recipe run folder read as labelled models (base / aligned / sk-tuned), with its
training curves, settings, pair statistics, references and BioGEN facts; only the run's own PNGs are inlined; the
Markdown escapes HTML; the page checked in headless Chromium when it is installed."""
from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from selfalign.cli import main
from selfalign.evals.results import rows_path, save_result
from selfalign.store.io import write_json, write_jsonl_atomic
from selfalign.report.build import ReportConfig, run_report
from selfalign.report.run_folder import MAX_PNG_BYTES, safe_png

EVIL = "<script>alert(1)</script>"


def _result(folder: Path, task: str, rows: list[dict], metrics: list[str]):
    out = folder / f"{task}.json"
    write_jsonl_atomic(rows_path(out), rows)
    save_result(out, task, rows, metrics, {"config": {}}, n_boot=20)


@pytest.fixture(scope="module")
def run_dir(tiny_model_dir, tmp_path_factory):
    """A real tiny recipe run (sk-data, sk-tune, sample, score, pairs, align, eval of three models), plus
    generation and BioGEN results written in the results format."""
    import yaml

    from selfalign.run.pipeline import RunConfig, run_recipe

    tmp = tmp_path_factory.mktemp("reportrun")
    (tmp / "run" / "inputs").mkdir(parents=True)  # a recipe reads files in its run folder or the data root only
    mc = tmp / "run" / "inputs" / "mc.jsonl"
    mc.write_text("".join(json.dumps({"id": f"m{i}", "question": f"Question {i}?", "options": [
        {"text": "Paris", "label": 1}, {"text": "London", "label": 0}, {"text": "Rome", "label": 0}]}) + "\n"
        for i in range(10)))
    prompts = tmp / "run" / "inputs" / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"id": f"q{i}", "question": q}) + "\n" for i, q in
                               enumerate(["Capital of France?", "Who wrote Hamlet?", "Two plus two?"])))
    recipe = {"name": "tiny", "model": tiny_model_dir, "device": "cpu", "seed": 0,
              "sk-data": {"sources": [str(mc)], "heldout_fraction": 0.3},
              "sk-tune": {"max_steps": 3, "batch_size": 4, "learning_rate": 0.01, "eval_every": 1},
              "sample": {"input": str(prompts), "n": 3, "max_new_tokens": 8}, "score": {"method": "ptrue"},
              "pairs": {"strategy": "split"}, "align": {"max_steps": 2, "batch_size": 2, "learning_rate": 0.01},
              "eval": {"tasks": ["calibrate"], "models": ["base", "aligned", "sk-tuned"],
                       "calibrate": {"data": str(mc), "n_boot": 20}}}
    (tmp / "tiny.yaml").write_text(yaml.safe_dump(recipe))
    run = tmp / "run"
    run_recipe(RunConfig(recipe=str(tmp / "tiny.yaml"), output=str(run)))
    answers = {"base": ["Paris.", "Shakespeare.", "Four."], "aligned": ["Paris.", EVIL, "4"]}
    for label, texts in answers.items():
        _result(run / "eval" / label, "truthfulqa-gen", [
            {"id": f"g{i}", "question": q, "answer": a, "best_answer": ref, "true": float(a != EVIL)}
            for i, (q, a, ref) in enumerate(zip(["Capital of France?", "Who wrote Hamlet?", "Two plus two?"], texts,
                                                ["Paris", "William Shakespeare", "Four"]))], ["true"])
        _result(run / "eval" / label, "biogen-factscore", [
            {"id": "b0", "topic": "Marta Ellingsen", "response": "…", "score": 0.5, "num_facts": 2.0,
             "decisions": [{"atom": "Marta Ellingsen is a glaciologist.", "is_supported": True, "p_true": 0.9},
                           {"atom": f"She was born in {label}ville.", "is_supported": False, "p_true": 0.2}]}],
            ["score", "num_facts"])
    outside = tmp / "outside.png"  # a real PNG outside the run folder, named by a planted report
    outside.write_bytes(base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="))
    cal = json.loads((run / "eval" / "aligned" / "calibrate.json").read_text())
    write_json(run / "eval" / "aligned" / "planted.json", {**cal, "set": "planted", "items": str(tmp / "none.jsonl"),
                                                          "plot": str(outside)})
    return run


def test_run_folder_report_sections(run_dir, tmp_path):
    out, md = tmp_path / "r.html", tmp_path / "r.md"
    s = run_report(ReportConfig(run_dirs=[str(run_dir)], output=str(out), markdown=str(md), n_boot=50))
    assert s["runs"] == 3
    page, text = out.read_text(), md.read_text()
    names = re.findall(r"^\| (base|aligned|sk-tuned) \| ", text.split("## Results")[0], re.M)
    assert names[:3] == ["base", "aligned", "sk-tuned"]  # base first, each model its own labelled run
    assert "## Differences vs base" in text
    assert re.search(r"^\| aligned \| [+-]\d\.\d{3}", text.split("## Differences vs base")[1], re.M)
    # training curves: align and sk-tune, last values as logged
    sk_log = [json.loads(x) for x in (run_dir / "sk-tune" / "model" / "train_log.jsonl").read_text().splitlines()]
    al_log = [json.loads(x) for x in (run_dir / "align" / "model" / "train_log.jsonl").read_text().splitlines()]
    assert f"| align | {al_log[-1]['step']} | loss {al_log[-1]['loss']:.4g}" in text
    assert f"valid AUROC {sk_log[-1]['valid']['auroc']:.4g}" in text
    assert page.count('alt="training curves: ') == 2
    # settings as run, pair statistics computed from the pairs file
    assert "### align" in text and "| learning_rate | 0.01 |" in text and "| output | RUN/align/model |" in text
    pairs = [json.loads(x) for x in (run_dir / "pairs" / "pairs.jsonl").read_text().splitlines()]
    margins = sorted(p["chosen_score"] - p["rejected_score"] for p in pairs)
    assert f"| pairs | {len(pairs)} |" in text
    assert f"| score margin: mean | {sum(margins) / len(margins):.4g} |" in text
    # references beside the answers, escaped; BioGEN's facts per model
    assert "| g1 | Who wrote Hamlet? | William Shakespeare | Shakespeare. | &lt;script&gt;alert(1)&lt;/script&gt; |" in text
    assert "<script" not in text and "<script" not in page and "&lt;script&gt;" in page
    assert "✗ She was born in alignedville." in text and "✓ Marta Ellingsen is a glaciologist." in text
    # counts apart from the 0-1 metrics: biogen gets a 0-1 chart and a counts chart
    assert 'alt="biogen-factscore"' in page and page.count('alt="biogen-factscore"') == 2
    # the planted report names a PNG outside the run: not inlined
    outside = base64.b64encode((run_dir.parent / "outside.png").read_bytes()).decode()
    assert "calibrate: planted" in text and outside not in page


def test_a_training_log_step_is_a_number_never_markup(run_dir, tmp_path):
    """A hand-edited train_log.jsonl whose ``step`` holds markup is left out of the curves, never written live."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    with (run / "align" / "model" / "train_log.jsonl").open("a") as f:
        f.write(json.dumps({"step": EVIL, "loss": 0.5}) + "\n")
    out, md = tmp_path / "r.html", tmp_path / "r.md"
    run_report(ReportConfig(run_dirs=[str(run)], output=str(out), markdown=str(md), n_boot=20))
    assert "<script" not in out.read_text() and "<script" not in md.read_text()
    last = [json.loads(x) for x in (run_dir / "align" / "model" / "train_log.jsonl").read_text().splitlines()][-1]
    assert f"| align | {last['step']} | loss" in md.read_text()  # the last numeric step, as before


def test_cli_positional_run_dirs_and_default_output(run_dir, tmp_path, capsys):
    copy = tmp_path / "demo"
    shutil.copytree(run_dir, copy)
    assert main(["report", str(copy)]) == 0
    assert (copy / "report.html").exists()
    other = tmp_path / "demo-skt"
    shutil.copytree(run_dir, other)
    assert main(["report", str(copy), str(other), "--output", str(tmp_path / "two.html"),
                 "--markdown", str(tmp_path / "two.md")]) == 0
    text = (tmp_path / "two.md").read_text()
    for label in ("demo: base", "demo: aligned", "demo-skt: sk-tuned"):
        assert f"| {label} |" in text
    assert "## Differences vs demo: base" in text


def test_only_the_runs_own_small_pngs_are_inlined(tmp_path):
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 20
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "a.png").write_bytes(png)
    (tmp_path / "run" / "fake.png").write_bytes(b"GIF89a" + b"\0" * 20)
    (tmp_path / "run" / "big.png").write_bytes(png + b"\0" * MAX_PNG_BYTES)
    (tmp_path / "run" / "a.txt").write_bytes(png)
    (tmp_path / "out.png").write_bytes(png)
    (tmp_path / "run" / "link.png").symlink_to(tmp_path / "out.png")
    root = tmp_path / "run"
    assert safe_png(root / "a.png", root) == png and safe_png("a.png", root) == png
    for bad in ("fake.png", "big.png", "a.txt", "../out.png", str(tmp_path / "out.png"), "link.png", "nope.png"):
        assert safe_png(bad, root) is None, bad


def test_bar_charts_keep_counts_off_the_unit_axis():
    from selfalign.report.render import _is_unit, bar_pngs

    runs = [("a", {"score": {"value": 0.4, "ci_low": 0.3, "ci_high": 0.5}, "num_facts": {"value": 12.0}}),
            ("b", {"score": {"value": 0.6, "ci_low": 0.5, "ci_high": 0.7}, "num_facts": {"value": 9.0}})]
    assert _is_unit("score", runs) and not _is_unit("num_facts", runs)
    assert len(bar_pngs("biogen", runs)) == 2 and len(bar_pngs("mc", [("a", {"mc1": {"value": 0.3}})])) == 1


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(CHROMIUM is None, reason="no headless Chromium installed (apt-get install -y chromium)")
def test_report_renders_in_headless_chromium(run_dir, tmp_path):
    """What is checked in the browser: the page parses and renders; every section is in the rendered DOM; every
    inline image decodes (naturalWidth > 0 is reported through the title by a tiny script only this test adds)."""
    out = tmp_path / "r.html"
    run_report(ReportConfig(run_dirs=[str(run_dir)], output=str(out), n_boot=20))
    probe = tmp_path / "probe.html"  # the report plus a script that reports image decoding: test-only
    probe.write_text(out.read_text().replace("</body>", "<script>window.onload=()=>{const i=[...document.images];"
                     "document.title='imgs '+i.length+' decoded '+i.filter(x=>x.naturalWidth>0).length};</script>"
                     "</body>"))
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--virtual-time-budget=5000", "--dump-dom", probe.as_uri()]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    dom = r.stdout
    assert r.returncode == 0 and "<body>" in dom, r.stderr[-2000:]
    for section in ('id="runs"', 'id="results"', 'id="differences"', 'id="calibration"', 'id="training"',
                    'id="hyperparameters"', 'id="pairs"', 'class="facts"', 'class="answers"'):
        assert section in dom, section
    m = re.search(r"<title>imgs (\d+) decoded (\d+)</title>", dom)
    assert m and int(m.group(1)) >= 5 and m.group(1) == m.group(2), m and m.group(0)
    assert "<th>reference</th>" in dom and "&lt;script&gt;alert(1)&lt;/script&gt;" in dom
