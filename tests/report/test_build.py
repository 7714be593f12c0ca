import json
import re

import pytest

from selfalign.evals.calibrate import CalibrateConfig, save_calibration
from selfalign.errors import InputError, SelfAlignError
from selfalign.evals.results import rows_path, save_result
from selfalign.store.io import write_json, write_jsonl_atomic
from selfalign.store.provenance import meta
from selfalign.report.build import ReportConfig, run_report

QS = ["Is the sky green?", "What is 2+2?", "Who wrote Hamlet?", "Where is Paris?"]


def write_result(folder, mc1, answers, task="truthfulqa-mc", model="m"):
    out = folder / "eval" / f"{task}.json"
    rows = [{"id": f"q{i}", "question": QS[i], "mc1": v, "mc2": v / 2, "answer": a}
            for i, (v, a) in enumerate(zip(mc1, answers))]
    out.parent.mkdir(parents=True, exist_ok=True)
    write_jsonl_atomic(rows_path(out), rows)
    save_result(out, task, rows, ["mc1", "mc2"], meta({"model": model}, model_info={"model": model}), n_boot=50,
                split="test")
    return out


def write_calibration(folder):
    rows = [{"id": f"q{i // 2}", "option_idx": i % 2, "label": (i + 1) % 2, "p_true": p, "p_true_mass": 0.9,
             "ll_sum": -float(i), "ll_chars": 5} for i, p in enumerate([0.9, 0.2, 0.6, 0.7, 0.8, 0.1])]
    write_jsonl_atomic(folder / "cal.items.jsonl", rows)
    cfg = CalibrateConfig(data="truthfulqa-mc", split="valid", n_boot=20)
    return save_calibration(folder / "cal.json", rows, cfg, meta({"model": "m"}))


@pytest.fixture
def runs(tmp_path):
    a, b = tmp_path / "base", tmp_path / "tuned"
    write_result(a, [1, 0, 1, 1], ["No.", "4", "Shakespeare", "France"])
    write_result(b, [1, 1, 0, 1], ["No.", "Four", "see https://example.com", "France"], model="m2")
    cal = write_calibration(b)
    (b / "eval" / "notes.json").write_text(json.dumps({"other": 1}))  # not a result: skipped
    (b / "model").mkdir()
    (b / "model" / "config.json").write_text("{}")
    return a, b, cal


def test_report_html_and_markdown(tmp_path, runs):
    a, b, cal = runs
    cfg = ReportConfig(runs=[str(a), str(b)], output=str(tmp_path / "r" / "report.html"),
                       markdown=str(tmp_path / "r" / "report.md"), n_boot=200)
    s = run_report(cfg)
    assert s["runs"] == 2 and s["results"] == 3 and s["calibrations"] == 1  # calibrate is a result like the rest
    assert s["differing_answers"] == {"truthfulqa-mc [test]": 2}  # q1 and q2; q0 and q3 agree
    page = (tmp_path / "r" / "report.html").read_text()
    # self-contained: no external URL anywhere, not even the one inside a model answer; plots inline
    assert not re.search(r"https?://", page) and "<link" not in page and "<script" not in page
    assert page.count("data:image/png;base64,") == 3  # the metric bars of two tasks and one reliability diagram
    assert "see https&#58;//example.com" in page
    assert "<th>base</th>" in page and "<th>tuned</th>" in page
    md = (tmp_path / "r" / "report.md").read_text()
    # Table 1: mc1 means 3/4 and 3/4, mc2 = mc1 / 2
    assert "| run | truthfulqa-mc [test]: mc1 | truthfulqa-mc [test]: mc2 |" in md
    base_row = next(line for line in md.splitlines() if line.startswith("| base | 0.750"))
    assert "| 0.375 [" in base_row and "n=4" in base_row
    # paired differences tuned - base: mc1 0 (+1 on q1, -1 on q2), mc2 0
    diff_row = [line for line in md.splitlines() if line.startswith("| tuned | +0.000")]
    assert len(diff_row) == 1 and "n=4" in diff_row[0]
    # the calibrate result's metrics are columns of the results table (set-level AUROC: n = 6 options)
    auroc = cal["metrics"]["auroc"]["value"]
    assert "| calibrate: truthfulqa-mc [valid]: auroc | calibrate: truthfulqa-mc [valid]: ece |" in md
    tuned_row = next(line for line in md.splitlines() if line.startswith("| tuned | 0.750"))
    assert f"| {auroc:.3f} [" in tuned_row and "n=6" in tuned_row
    assert "Reliability diagrams (see the HTML report) of: tuned: calibrate: truthfulqa-mc [valid]." in md
    # the answers table shows both runs' texts
    assert "| q1 | What is 2+2? | 4 | Four |" in md and "| q2 | Who wrote Hamlet? | Shakespeare | see https" in md


def test_report_single_files_names_and_errors(tmp_path, runs):
    a, b, _ = runs
    c = tmp_path / "other"
    res = write_result(c, [0, 0, 0, 0], ["a", "b", "c", "d"], task="biogen-factscore")
    s = run_report(ReportConfig(runs=[str(a), str(res)], names=["A", "C"], output=str(tmp_path / "x.html"),
                                n_boot=10))
    assert s["metric_columns"] == 4 and s["differing_answers"] == {}  # no task shared: no differences, no answers
    assert "<th>A</th>" in (tmp_path / "x.html").read_text()
    with pytest.raises(SelfAlignError, match="2 runs"):
        run_report(ReportConfig(runs=[str(a), str(b)], names=["only"], output=str(tmp_path / "x.html")))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="empty: no evaluation results"):
        run_report(ReportConfig(runs=[str(empty)], output=str(tmp_path / "x.html")))
    with pytest.raises(InputError, match="notes.json: not an evaluation result"):
        run_report(ReportConfig(runs=[str(b / "eval" / "notes.json")], output=str(tmp_path / "x.html")))


EVIL = ['<script>alert(1)</script>', '<img src=x onerror=alert(1)>', '[click](javascript:alert(1))',
        '"><svg onload=alert(1)>']


def test_markup_in_every_string_field_stays_text(tmp_path):
    """Every string a result carries (task, question, answers, model, judge validation) holds markup; the HTML has
    no tag but the report's own, no javascript: URL, and the Markdown has no raw tag and no live link."""
    from html.parser import HTMLParser

    for k, name in enumerate(("a", "b")):
        out = tmp_path / name / "eval" / "r.json"
        rows = [{"id": f"q{i}", "question": EVIL[i], "mc1": float((i + k) % 2), "answer": EVIL[(i + k) % 4]}
                for i in range(4)]
        out.parent.mkdir(parents=True)
        write_jsonl_atomic(rows_path(out), rows)
        save_result(out, "truthfulqa-gen", rows, ["mc1"], meta({"model": EVIL[2 + k]}, model_info={"model": EVIL[3 - k]}),
                    n_boot=20, judge_validation={"judge": EVIL[2], "balanced_accuracy": 0.5})
        res = json.loads(out.read_text())
        write_json(out, {**res, "task": EVIL[k]})  # a hand-edited result: the task name itself is markup
    html_out, md_out = tmp_path / "r.html", tmp_path / "r.md"
    run_report(ReportConfig(run_dirs=[str(tmp_path / "a"), str(tmp_path / "b")], output=str(html_out),
                            markdown=str(md_out), n_boot=20))
    tags, urls = set(), []

    class Tags(HTMLParser):
        def handle_starttag(self, tag, attrs):
            tags.add(tag)
            urls.extend(v or "" for k, v in attrs if k in ("href", "src"))
            assert not any(k.startswith("on") for k, _ in attrs), (tag, attrs)

    Tags().feed(html_out.read_text())
    assert tags <= {"html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "p", "table", "tr", "th",
                    "td", "span", "div", "ul", "li", "figure", "img", "figcaption", "small", "b", "code", "a",
                    "details", "summary", "br", "nav", "section", "em", "strong", "caption", "thead", "tbody"}, tags
    assert "script" not in tags and "svg" not in tags
    assert all(u.startswith(("data:image/png;base64,", "#", "http://", "https://")) or "/" not in u.split(":")[0]
               and not u.lower().startswith("javascript:") for u in urls), urls
    md = md_out.read_text()
    assert "<script" not in md and "<img" not in md and "<svg" not in md
    assert "](" not in md and "][" not in md  # no live Markdown link


def test_judge_notes_print_a_classifier_verifiers_published_figure_beside_its_gate():
    from pathlib import Path

    from selfalign.report.build import Run, judge_notes

    fs = {"score": 0.5, "init_score": 0.6, "unverifiable": 1}
    gate = {"auroc": 0.81, "passed": True}
    pub = "LLM-AggreFact balanced accuracy 75.0 (published, MiniCheck-Flan-T5-L)"
    runs = [Run("base", Path("b.json"), {"biogen": ({"factscore": fs, "verifier_gate": gate,
                                                      "verifier_published": pub}, [], None)}),
            Run("lm", Path("l.json"), {"biogen": ({"factscore": fs, "verifier_gate": gate}, [], None)})]
    assert judge_notes(runs) == [
        "base: biogen: verifier gate AUROC 0.81 (passed); LLM-AggreFact balanced accuracy 75.0 (published, "
        "MiniCheck-Flan-T5-L); FActScore 0.500, supported fraction (no length penalty) 0.600, unverifiable bios 1",
        ("lm: biogen: verifier gate AUROC 0.81 (passed); FActScore 0.500, supported fraction (no length penalty) "
         "0.600, unverifiable bios 1")]


@pytest.mark.parametrize("meta_value", [True, "m", [1], {"config": "x", "model_info": 5}, {"model_info": ["m"]}])
def test_a_meta_of_the_wrong_shape_reads_as_absent(tmp_path, meta_value):
    """Found by the property suite (long profile): a result whose ``meta`` is ``true`` (or whose config or
    model_info is not an object) was an AttributeError traceback; the run is shown without its provenance."""
    res = tmp_path / "r.json"
    res.write_text(json.dumps({"task": "t", "metrics": {"m": {"value": 0.5, "ci_low": 0.4, "ci_high": 0.6, "n": 2}},
                               "meta": meta_value}))
    s = run_report(ReportConfig(runs=[str(res)], output=str(tmp_path / "x.html"), n_boot=0))
    assert s["metric_columns"] == 1 and (tmp_path / "x.html").exists()


@pytest.mark.parametrize("rows", ["/", "sub/x", "../x.jsonl", "..", "/etc/passwd", 5, ["x"]])
def test_a_rows_name_that_is_not_a_file_beside_the_result_is_one_line(tmp_path, rows):
    """Found by the property suite (long profile): ``rows: "/"`` (and ``"sub/x"``) was a ValueError traceback."""
    res = tmp_path / "r.json"
    res.write_text(json.dumps({"task": "t", "metrics": {"m": {"value": 0.5}}, "rows": rows}))
    with pytest.raises(InputError, match=r"r\.json: 'rows' must be the name of a file beside the result"):
        run_report(ReportConfig(runs=[str(res)], output=str(tmp_path / "x.html"), n_boot=0))


@pytest.mark.parametrize("value", ["1" + "0" * 400, "-1" + "0" * 400])
def test_a_metric_no_float_holds_is_one_line(tmp_path, value):
    """Found by the property suite (long profile): a 400-digit metric value was an OverflowError traceback while
    plotting."""
    res = tmp_path / "r.json"
    res.write_text('{"task": "t", "metrics": {"m": {"value": %s, "n": 2}}}' % value)
    with pytest.raises(InputError, match=r"r\.json: metric 'm': value, ci_low, ci_high and n must be numbers"):
        run_report(ReportConfig(runs=[str(res)], output=str(tmp_path / "x.html"), n_boot=0))
