"""`selfalign eval wikifacts`: a tiny random model end to end (rows, gates, resume without the model), scoring
--responses with hand-computed metrics, the paired comparison, the measurable and extractor gates, the extractor
sample script, bad input (exit 2 via the CLI), `selfalign report` on its output; --rescore of a saved result or kept
record without a model, --compare refusing another extractor's result, and the extractor-check file found from the
package, not the working directory."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from wikifacts_assets import lands, write_task

from selfalign.evals.wikifacts_gates import default_check_file as repository_check_file  # before the fixture below


@pytest.fixture
def lands_file(tmp_path):
    return write_task(tmp_path / "data", lands())


def _cfg(path, out, **kw):
    from selfalign.evals.wikifacts import WikiFactsConfig

    return WikiFactsConfig(data=str(path), output=str(out), n_boot=20, **kw)


@pytest.fixture(autouse=True)
def _no_repository_check_file(monkeypatch):
    """These hand-made subjects are not the ones the repository's labelled extractor check was drawn from: the gate
    reads only a file a test names."""
    from selfalign.evals import wikifacts_gates

    monkeypatch.setattr(wikifacts_gates, "default_check_file", lambda: None)


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _read(path):
    return [json.loads(x) for x in Path(path).read_text().splitlines() if x.strip()]


def test_tiny_model_end_to_end_and_resume(lands_file, tmp_path, tiny_engine):
    from selfalign.evals.wikifacts import run_wikifacts
    from selfalign.evals.wikifacts_metrics import METRICS

    out = tmp_path / "r" / "wf.json"
    got = run_wikifacts(_cfg(lands_file, out, limit=3, max_new_tokens=8, batch_size=2), engine=tiny_engine)
    summary = json.loads(out.read_text())
    rows = _read(out.with_name("wf.rows.jsonl"))
    assert summary["task"] == "wikifacts" and summary["label"] == "targeted long-form precision on Wikidata attributes"
    assert set(summary["metrics"]) == set(METRICS) and got["subjects"] == 3 == len(rows)
    assert all(r["id"] == f"wf:{r['subject']}" and isinstance(r["response"], str) for r in rows)
    assert summary["gates"]["planted"]["passed"] and summary["gates"]["extractor"]["status"] == "not run"
    assert summary["valid"] == (summary["gates"]["measurable"]["passed"] is not False)

    class NoModel:  # a finished run is re-scored without generating again
        def generate(self, *a, **k):
            raise AssertionError("generated again")

    again = run_wikifacts(_cfg(lands_file, out, limit=3, max_new_tokens=8), engine=NoModel())
    assert [r["response"] for r in _read(out.with_name("wf.rows.jsonl"))] == [r["response"] for r in rows]
    assert again["subjects"] == 3

    class Counting:  # interrupted after one row: the two missing rows are generated, nothing else
        info, prompts = tiny_engine.info, []

        def generate(self, prompts, *a, **k):
            self.prompts += prompts
            return tiny_engine.generate(prompts, *a, **k)

    _jsonl(out.with_name("wf.rows.jsonl"), rows[:1])
    eng = Counting()
    run_wikifacts(_cfg(lands_file, out, limit=3, max_new_tokens=8), engine=eng)
    assert len(eng.prompts) == 2 and [r["id"] for r in _read(out.with_name("wf.rows.jsonl"))] == [r["id"] for r in rows]


def test_profiles_are_the_plain_paths(lands_file, tmp_path, tiny_engine):
    """Greedy profiles with prefix reuse and early-ending rows (the default) are the plain path's (transformers'
    generate on every prompt in full)."""
    from selfalign.engines.hf import HFEngine
    from selfalign.evals.wikifacts import run_wikifacts

    plain = HFEngine(tiny_engine.model, tiny_engine.tok, prefix_cache=False)
    got = {}
    for name, eng in (("cached", tiny_engine), ("plain", plain)):
        out = tmp_path / name / "wf.json"
        run_wikifacts(_cfg(lands_file, out, limit=4, max_new_tokens=12, batch_size=3), engine=eng)
        got[name] = [(r["id"], r["response"], r["n_tokens"]) for r in _read(out.with_name("wf.rows.jsonl"))]
    assert got["cached"] == got["plain"] and len(got["plain"]) == 4


def _profiles(path, n=4):
    from selfalign.data.wikifacts import gold_profile, load_knowledge, prompt_rows

    k = load_knowledge(str(path))
    return k, [(r["id"], r["subject"], gold_profile(k, r["subject"])) for r in prompt_rows(str(path), limit=n)]


def test_responses_metrics_gates_and_comparison(lands_file, tmp_path):
    from selfalign.evals.wikifacts import run_wikifacts

    _, profiles = _profiles(lands_file)
    gold = _jsonl(tmp_path / "gold.jsonl", [{"id": i, "response": p} for i, _, p in profiles])
    # each made-up land: capital, religion, continent and borders, one supported sentence each
    g = run_wikifacts(_cfg(lands_file, tmp_path / "gold.json", responses=str(gold)))
    assert (g["precision"], g["precision_gamma"], g["supported"], g["contradicted"]) == (1.0, 1.0, 4.0, 0.0)
    assert (g["coverage"], g["field_recall"], g["unverifiable"], g["abstain"]) == (1.0, 1.0, 0.0, 0.0)
    assert g["valid"] and json.loads((tmp_path / "gold.json").read_text())["gates"]["measurable"]["passed"]
    # three with a wrong capital, one abstention
    swapped = []
    for n, (i, s, p) in enumerate(profiles):
        j = int(s[4:])
        swapped.append({"id": i, "response": "I don't know." if n == 3 else p.replace(f"City{j}.",
                                                                                       f"City{(j + 1) % 30}.")})
    sw = _jsonl(tmp_path / "swapped.jsonl", swapped)
    got = run_wikifacts(_cfg(lands_file, tmp_path / "sw.json", responses=str(sw), compare=str(tmp_path / "gold.json")))
    assert got["precision"] == 0.75 and got["precision_gamma"] == 0.75  # n = 4 statements > gamma 2: no penalty
    assert (got["supported"], got["contradicted"], got["abstain"], got["coverage"]) == (2.25, 0.75, 0.25, 0.75)
    cmp = json.loads((tmp_path / "sw.json").read_text())["comparison"]["metrics"]
    assert cmp["precision"]["diff"] == pytest.approx(-0.25) and cmp["precision"]["n"] == 3
    assert cmp["supported"]["diff"] == pytest.approx(-1.75) and cmp["supported"]["n"] == 4
    # with gamma 5, four statements are penalised: exp(1 - 5/4)
    pen = run_wikifacts(_cfg(lands_file, tmp_path / "pen.json", responses=str(gold), gamma=5))
    assert pen["precision_gamma"] == pytest.approx(2.718281828 ** (1 - 5 / 4))


def test_free_format_and_the_measurable_gate(lands_file, tmp_path):
    from selfalign.evals.wikifacts_gates import measurable_gate

    rows = [{"coverage": 0.5, "unmapped": 0.5, "n_sentences": 4}, {"coverage": 0.0, "unmapped": 1.0, "n_sentences": 2}]
    got = measurable_gate(rows, "profile")  # 4 of 6 sentences unmapped, coverage 0.25
    assert got["unmapped_share"] == pytest.approx(4 / 6) and got["coverage"] == 0.25 and got["passed"] is False
    assert measurable_gate(rows, "free")["passed"] is None


def test_extractor_gate_reads_the_labelled_rows(lands_file, tmp_path):
    from selfalign.data.wikifacts import load_knowledge
    from selfalign.evals.wikifacts_gates import extractor_gate
    from selfalign.evals.wikifacts_verify import Verifier

    k = load_knowledge(str(lands_file))
    v = Verifier(k)
    assert extractor_gate(k, v, tmp_path / "missing.jsonl")["status"] == "not run"
    rows = [{"subject": "Land3", "sentence": "The capital of Land3 is City3.",
             "label_statements": [{"field": "capital", "values": ["City3"], "verdict": "supported"}]},
            {"subject": "Land3", "sentence": "Land3 is a quiet place.", "label_statements": []},
            {"subject": "Land3", "sentence": "People in Land3 worship Faith3.",  # no cue: the verifier misses it
             "label_statements": [{"field": "religion", "values": ["Faith3"]}]},
            {"subject": "Land4", "sentence": "The capital of Land4 is City4.", "label_statements": None}]
    got = extractor_gate(k, v, _jsonl(tmp_path / "check.jsonl", rows))
    assert (got["precision"], got["recall"], got["sentences"], got["passed"]) == (1.0, 0.5, 3, False)
    assert (got["verdict_agreement"], got["verdicts_labelled"]) == (1.0, 1)


def test_extractor_sample_script(lands_file, tmp_path):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks" / "longform"))
    import extractor_sample as X

    _, profiles = _profiles(lands_file, 2)
    rows = _jsonl(tmp_path / "rows.jsonl", [{"id": i, "subject": s, "response": p + " It is lovely."}
                                            for i, s, p in profiles])
    out = tmp_path / "check.jsonl"
    assert X.main(["base=" + str(rows), "--n", "6", "--unmapped-share", "0.34", "--data", str(lands_file),
                   "--output", str(out)]) == 0
    got = _read(out)
    assert len(got) == 6 and sum(not r["extracted"] for r in got) == 2
    assert all(r["label_statements"] is None and r["label_note"] == "" and r["model"] == "base" for r in got)
    got[0]["label_statements"] = []
    _jsonl(out, got)
    assert X.main(["base=" + str(rows), "--n", "6", "--data", str(lands_file), "--output", str(out)]) == 0
    assert _read(out)[0]["label_statements"] == []  # labels already there are kept
    # a second set drawn with --exclude holds none of the first's sentences
    out2 = tmp_path / "dev2.jsonl"
    assert X.main(["base=" + str(rows), "--n", "6", "--data", str(lands_file), "--exclude", str(out),
                   "--output", str(out2)]) == 0
    first = {(r["subject"], r["sentence"]) for r in _read(out)}
    second = {(r["subject"], r["sentence"]) for r in _read(out2)}
    assert second and not first & second


def test_bad_input_is_one_line_and_exit_2(tmp_path, cli, lands_file):
    bad = write_task(tmp_path / "bad", [("The capital of Nigeria is", "Abuja"), ("What is love?", "baby")])
    r = cli.run(cli.cmd("eval", "wikifacts", "--data", bad, "--output", tmp_path / "o.json"))
    assert r.returncode == 2 and "Traceback" not in r.stderr and f"{bad}:" in r.stderr
    assert "matches no known qa_wikidata template" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    _, profiles = _profiles(lands_file, 2)
    resp = _jsonl(tmp_path / "resp.jsonl", [{"id": profiles[0][0], "response": profiles[0][2]},
                                           {"id": profiles[1][0], "response": "  "}])
    r = cli.run(cli.cmd("eval", "wikifacts", "--data", lands_file, "--responses", resp,
                        "--output", tmp_path / "o.json"))
    assert r.returncode == 2 and f"{resp}:2: " in r.stderr and "empty profile" in r.stderr


def test_bad_input_in_the_library(tmp_path, lands_file):
    from selfalign.data.wikifacts import load_knowledge
    from selfalign.errors import InputError
    from selfalign.evals.wikifacts import run_wikifacts

    mc = tmp_path / "mc" / "qa_wikidata" / "task.json"
    mc.parent.mkdir(parents=True)
    mc.write_text(json.dumps({"examples": [{"input": "The capital of Nigeria is", "target": "Abuja"},
                                           {"input": "Pick one", "target_scores": {"a": 1, "b": 0}}]}))
    with pytest.raises(InputError, match=r"task.json:\d+: example 1 is multiple choice"):
        load_knowledge(str(mc))
    resp = _jsonl(tmp_path / "r.jsonl", [{"id": "wf:Nowhere", "response": "It is nice."}])
    with pytest.raises(InputError, match=r"r.jsonl:1: id 'wf:Nowhere' is not a prompt of the eval split"):
        run_wikifacts(_cfg(lands_file, tmp_path / "o.json", responses=str(resp)))


def test_report_reads_the_result(lands_file, tmp_path):
    from selfalign.evals.wikifacts import run_wikifacts
    from selfalign.report.build import ReportConfig, run_report

    _, profiles = _profiles(lands_file)
    for name, text in (("a", lambda p: p), ("b", lambda p: p.split(". ")[0] + ".")):
        (tmp_path / name).mkdir()
        resp = _jsonl(tmp_path / name / "resp.jsonl", [{"id": i, "response": text(p)} for i, _, p in profiles])
        run_wikifacts(_cfg(lands_file, tmp_path / name / "wf.json", responses=str(resp)))
    run_report(ReportConfig(run_dirs=[str(tmp_path / "a"), str(tmp_path / "b")], output=str(tmp_path / "r.html"),
                            markdown=str(tmp_path / "r.md"), n_boot=20))
    md = (tmp_path / "r.md").read_text()
    assert "wikifacts" in md and "precision" in md


def _stale(out: Path) -> None:
    """Make a saved result look scored by an older extractor: another fingerprint, and wrong stored scores."""
    summary = json.loads(out.read_text())
    summary["verifier"] = "0ld0ld0ld0ld"
    out.write_text(json.dumps(summary))
    rp = out.with_name(out.stem + ".rows.jsonl")
    _jsonl(rp, [{**r, "supported": 99, "precision": 0.0, "sentences": []} for r in _read(rp)])


def test_rescore_a_saved_result_and_a_kept_record_without_a_model(lands_file, tmp_path, tiny_engine, cli):
    import gzip

    from selfalign.evals.wikifacts import run_wikifacts
    from selfalign.evals.wikifacts_verify import fingerprint
    from selfalign.errors import SelfAlignError

    _, profiles = _profiles(lands_file)
    gold = _jsonl(tmp_path / "gold.jsonl", [{"id": i, "response": p} for i, _, p in profiles])
    base = tmp_path / "base.json"
    run_wikifacts(_cfg(lands_file, base, responses=str(gold)))
    gen = tmp_path / "gen.json"  # a model's generations, as a study keeps them
    run_wikifacts(_cfg(lands_file, gen, limit=3, max_new_tokens=8, batch_size=2), engine=tiny_engine)
    expect = {r["id"]: (r["supported"], r["contradicted"], r["response"])
              for r in _read(gen.with_name("gen.rows.jsonl"))}
    _stale(gen)
    # --compare refuses a result scored by another extractor, and says how to re-score it
    with pytest.raises(SelfAlignError, match=r"scored by another extractor .*--rescore"):
        run_wikifacts(_cfg(lands_file, tmp_path / "c.json", responses=str(gold), compare=str(gen)))

    class NoModel:
        def generate(self, *a, **k):
            raise AssertionError("generated again")

    # the saved answers re-verified: the stale scores are gone, format and split come from the saved result
    got = run_wikifacts(_cfg(lands_file, tmp_path / "re.json", rescore=str(gen), format="free", split="train"),
                        engine=NoModel())
    summary = json.loads((tmp_path / "re.json").read_text())
    rows = _read(tmp_path / "re.rows.jsonl")
    assert {r["id"]: (r["supported"], r["contradicted"], r["response"]) for r in rows} == expect
    assert (summary["format"], summary["split"], summary["verifier"], got["subjects"]) == ("profile", "eval",
                                                                                          fingerprint(), 3)
    assert summary["meta"]["rescored_from"].endswith("/gen.json") and summary["meta"]["model_info"] is not None
    # a kept record {summary, rows} (benchmarks/results/records/) re-scores the same way
    rec = tmp_path / "gen.json.gz"
    rec.write_bytes(gzip.compress(json.dumps({"summary": json.loads(gen.read_text()),
                                              "rows": _read(gen.with_name("gen.rows.jsonl"))}).encode()))
    run_wikifacts(_cfg(lands_file, tmp_path / "re2.json", rescore=str(rec), compare=str(tmp_path / "re.json")))
    again = json.loads((tmp_path / "re2.json").read_text())
    assert again["metrics"] == summary["metrics"] and again["comparison"]["metrics"]["supported"]["diff"] == 0
    # bad input: one line naming the file, exit 2
    r = cli.run(cli.cmd("eval", "wikifacts", "--rescore", tmp_path / "nowhere.json.gz",
                        "--output", tmp_path / "x.json"))
    assert r.returncode == 2 and "nowhere.json.gz: no such file" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    other = _jsonl(tmp_path / "other.json", [])
    other.write_text(json.dumps({"task": "knowledge-qa", "metrics": {}}))
    r = cli.run(cli.cmd("eval", "wikifacts", "--rescore", other, "--output", tmp_path / "x.json"))
    assert r.returncode == 2 and "not a wikifacts result" in r.stderr and "Traceback" not in r.stderr


def test_extractor_check_file_is_found_from_the_package_not_the_working_directory(tmp_path, monkeypatch, cli,
                                                                                  lands_file):
    from selfalign.evals import wikifacts_gates as G

    repo = Path(__file__).resolve().parents[2]
    monkeypatch.chdir(tmp_path)  # a directory with no benchmarks/ in it
    assert repository_check_file() == repo / "benchmarks" / "longform" / "extractor_check.jsonl"
    assert G.check_file("") is None  # (the fixture stands for an installed package: no checkout)
    assert G.extractor_gate(None, None, None)["why"].startswith("no labelled file")
    r = cli.run(cli.cmd("eval", "wikifacts", "--data", lands_file, "--responses", tmp_path / "r.jsonl",
                        "--extractor-check", tmp_path / "missing.jsonl", "--output", tmp_path / "o.json"))
    assert r.returncode == 2 and "missing.jsonl: no such extractor-check file" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
