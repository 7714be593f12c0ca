"""benchmarks/effect/records.py: evaluations kept compactly beside the results, read back when runs/ lacks them."""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks" / "effect"))
import records as R  # noqa: E402


def test_kept_record_reads_back_compact_with_the_same_bytes_each_time(tmp_path):
    runs, arch = tmp_path / "runs", tmp_path / "records"
    path = runs / "t1x" / "m" / "mc3" / "eval-base.json"
    summary = {"task": "truthfulqa-mc", "metrics": {"mc1": {"value": 0.5, "ci_low": 0.4, "ci_high": 0.6, "n": 2}}}
    rows = [{"id": "q1", "mc1": 1.0, "mc2": 0.7, "selfeval_mc1": 0.0, "mc1_p_true": [0.2, 0.9], "mc1_lls": [-1, -2],
             "question": "long text"}, {"id": "q2", "mc1": 0.0, "mc2": 0.1, "selfeval_mc1": 1.0, "mc1_p_true": [0.6]}]
    assert R.restore(path, runs, arch) == (None, None)
    dst = R.keep(path, summary, rows, runs, arch)
    assert dst == arch / "t1x" / "m" / "mc3" / "eval-base.json.gz"
    blob = dst.read_bytes()
    R.keep(path, summary, rows, runs, arch)
    assert dst.read_bytes() == blob  # fixed bytes: a re-run of the summary changes nothing in git
    s, r = R.restore(path, runs, arch)
    assert s == summary
    assert r == [{k: x[k] for k in R.MC_KEEP if k in x} for x in rows] and "mc1_lls" not in r[0]
    other = {"task": "knowledge-qa", "metrics": {}}
    R.keep(runs / "kqa" / "eval-x.json", other, rows, runs, arch)
    assert R.restore(runs / "kqa" / "eval-x.json", runs, arch)[1] == rows  # other tasks: every field


def test_earlier_rows_are_kept_only_beside_the_same_base():
    def base(v, w=0.25):
        return {"metrics": {"a": {"value": v}, "b": {"value": w}}}

    assert R.same_base(base(0.323), base(0.323 + 4e-6), ["a", "b"])  # another CPU's float noise
    assert not R.same_base(base(0.323), base(0.330), ["a", "b"])
    assert not R.same_base(base(0.323), base(0.323, 0.3), ["a", "b"])
    assert R.same_base(base(0.323), None, ["a"])  # no base here: the earlier one stands
    assert not R.same_base(None, base(0.3), ["a"])


def test_a_small_run_file_is_kept_as_it_is(tmp_path):
    runs, arch = tmp_path / "runs", tmp_path / "records"
    src = runs / "t1x" / "m" / "mc3" / "tuned-x" / "train_summary.json"
    assert R.keep_file(src, runs, arch) is None
    src.parent.mkdir(parents=True)
    src.write_text('{"steps": 205}')
    assert R.keep_file(src, runs, arch).read_text() == '{"steps": 205}'
    # a machine path of the run folder (which may lie in another checkout) is kept as runs/<name>/...
    src.write_text(json.dumps({"steps": 205, "output": str(src.parent.resolve()), "pairs": f"{runs.resolve()}/p.jsonl"}))
    kept = json.loads(R.keep_file(src, runs, arch).read_text())
    assert kept == {"steps": 205, "output": "runs/runs/t1x/m/mc3/tuned-x", "pairs": "runs/runs/p.jsonl"}


def test_restore_puts_kept_files_and_whole_evaluations_back_into_a_fresh_runs(tmp_path):
    from selfalign.evals.results import load_result

    runs, arch = tmp_path / "runs", tmp_path / "records"
    pairs = runs / "t1x" / "m" / "kqa4" / "pairs-skt.jsonl"
    pairs.parent.mkdir(parents=True)
    pairs.write_text('{"id": "p1"}\n')
    R.keep_file(pairs, runs, arch)
    kqa = {"task": "knowledge-qa", "metrics": {m: {"value": 0.5, "ci_low": 0, "ci_high": 1, "n": 2}
                                               for m in ("accuracy", "accuracy_lenient")}}
    kept_rows = [{"id": "a", "accuracy": 1.0, "accuracy_lenient": 1.0}]  # a current result: read as it is
    R.keep(runs / "t1x" / "m" / "kqa" / "eval-base.json", kqa, kept_rows, runs, arch)
    R.keep(runs / "t1x" / "m" / "mc3" / "eval-base.json", {"task": "truthfulqa-mc", "metrics": {}}, [{"id": "q"}],
           runs, arch)
    pairs.unlink()
    made = R.restore_files(runs, arch)
    assert sorted(p.name for p in made) == ["eval-base.json", "pairs-skt.jsonl"]  # not the compact MC record
    assert pairs.read_text() == '{"id": "p1"}\n'
    summary, rows = load_result(runs / "t1x" / "m" / "kqa" / "eval-base.json")
    assert summary == kqa and rows == kept_rows
    assert R.restore_files(runs, arch) == []  # present: nothing overwritten
