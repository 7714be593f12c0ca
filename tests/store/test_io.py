"""selfalign.store.io: every reader and writer fails with one InputError naming the file (and line); a full disk keeps the
rows written before it; half-written last lines of our own files are cut, not fatal."""
from __future__ import annotations

import errno
import json
import time

import pytest

from selfalign.store import io as sio
from selfalign.cli import main
from selfalign.errors import InputError


def _rows(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_non_utf8_bytes_name_the_line_and_column(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_bytes(b'{"id": 1, "question": "a"}\n{"id": 2, "question": "caf\xe9"}\n')
    with pytest.raises(InputError, match=r"x.jsonl:2: not UTF-8 text \(byte 0xe9 at column 27\)"):
        sio.read_jsonl(p)
    t = tmp_path / "x.txt"
    t.write_bytes(b"line one\nline \xff two\n")
    with pytest.raises(InputError, match=r"x.txt:2: not UTF-8 text \(byte 0xff at column 6\)"):
        sio.read_text(t)
    t.write_bytes("\ufeffok".encode())
    assert sio.read_text(t) == "ok"  # a BOM is not content


def test_directories_and_missing_files(tmp_path):
    with pytest.raises(InputError, match="is a directory, not a file"):
        sio.read_jsonl(tmp_path)
    with pytest.raises(InputError, match="nope.json: file not found"):
        sio.read_json(tmp_path / "nope.json")
    with pytest.raises(InputError, match="is a directory; give a file name"):
        sio.output_file(tmp_path)
    plain = tmp_path / "plain"
    plain.write_text("x")
    with pytest.raises(InputError, match=r"plain/out.jsonl: cannot write it \(.*plain is a file, not a folder\)"):
        sio.JsonlAppender(plain / "out.jsonl", key=lambda r: r["i"])
    with pytest.raises(InputError, match="is a file; give a directory"):
        sio.output_dir(plain)


def test_unwritable_output_is_one_error(tmp_path, monkeypatch):
    monkeypatch.setattr(sio.os, "access", lambda p, mode: False)  # (the tests run as root: chmod does not bite)
    with pytest.raises(InputError, match=r"o.jsonl: cannot write it \(permission denied\)"):
        sio.output_file(tmp_path / "o.jsonl")
    with pytest.raises(InputError, match=r"i.jsonl: cannot read it \(permission denied\)"):
        (tmp_path / "i.jsonl").write_text("{}\n")
        sio.read_jsonl(tmp_path / "i.jsonl")


def test_field_types_are_checked_where_rows_are_read(tmp_path):
    p = tmp_path / "s.jsonl"
    p.write_text('{"id": "a", "question": "q", "response": "r"}\n{"id": "b", "question": 5, "response": "r"}\n')
    with pytest.raises(InputError, match=r"s.jsonl:2: question must be a string, got integer 5"):
        sio.read_jsonl(p, required=["id", "question", "response"])
    assert len(sio.read_jsonl(p, required=["id"])) == 2  # a field the reader does not use is the user's business
    p.write_text('{"label": null}\n')
    with pytest.raises(InputError, match=r"s.jsonl:1: label must be 0 or 1, got null"):
        sio.read_jsonl(p, fields=["label"])
    p.write_text('{"id": "a", "sample_idx": 0}\n\n{"id": "a", "sample_idx": 0}\n')
    with pytest.raises(InputError, match=r"s.jsonl:3: duplicate \(id, sample_idx\) \('a', 0\) \(first on line 1\)"):
        sio.read_jsonl(p, unique=lambda r: (r["id"], r["sample_idx"]), unique_name="(id, sample_idx)")


def test_a_full_disk_keeps_the_rows_written_before(tmp_path, monkeypatch):
    path = tmp_path / "out.jsonl"
    out = sio.JsonlAppender(path, key=lambda r: r["i"])
    out.write([{"i": 0}, {"i": 1}])
    real = sio._write_all

    def half_then_full(fd, data):
        real(fd, data[: len(data) // 2])  # a partial line reaches the file before the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(sio, "_write_all", half_then_full)
    with pytest.raises(InputError, match=r"out.jsonl: cannot write it \(No space left on device\); the 2 rows"):
        out.write([{"i": 2}, {"i": 3}])
    assert _rows(path) == [{"i": 0}, {"i": 1}]  # cut back to the whole rows
    monkeypatch.setattr(sio, "_write_all", real)
    out.write([{"i": 2}])
    out.close()
    assert _rows(path) == [{"i": 0}, {"i": 1}, {"i": 2}]


def test_a_full_disk_while_replacing_a_file_keeps_the_old_one(tmp_path, monkeypatch):
    path = tmp_path / "meta.json"
    sio.write_json(path, {"a": 1})

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(sio.os, "fsync", full)
    with pytest.raises(InputError, match=r"meta.json: cannot write it \(No space left on device\); the file as it"):
        sio.write_json(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 1} and not (tmp_path / "meta.json.tmp").exists()


def test_sample_on_a_full_disk_is_one_line_and_resumes(tiny_model_dir, prompts_file, tmp_path, monkeypatch, capsys):
    out = tmp_path / "s.jsonl"
    argv = ["sample", "--model", tiny_model_dir, "--input", str(prompts_file), "--output", str(out), "--n", "2",
            "--max-new-tokens", "4", "--batch-size", "2", "--device", "cpu"]
    real, calls = sio._write_all, []

    def fill_up(fd, data):
        calls.append(1)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd, data)

    monkeypatch.setattr(sio, "_write_all", fill_up)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"selfalign sample: error: {out}: cannot write it (No space left on device)")
    assert len([ln for ln in err if "error" in ln]) == 1 and "Traceback" not in "\n".join(err)
    first = _rows(out)
    assert len(first) == 4  # the first batch: 2 prompts x 2 samples
    monkeypatch.setattr(sio, "_write_all", real)
    assert main(argv) == 0
    rows = _rows(out)
    assert rows[:4] == first and len(rows) == 10 and len({(r["id"], r["sample_idx"]) for r in rows}) == 10


def test_half_written_last_lines_of_the_claim_cache_and_train_log_are_cut(tmp_path):
    from selfalign.stages.align import _step_logger
    from selfalign.selfeval.claims import ClaimCache

    cache = tmp_path / "claims.jsonl"
    cache.write_text('{"key": "k1", "claims": []}\n{"key": "k2", "cla')
    c = ClaimCache(cache)
    assert c.get("k1") == [] and c.get("k2") is None
    c.put([{"key": "k2", "claims": [{"text": "x"}]}])
    c.close()
    assert [r["key"] for r in _rows(cache)] == ["k1", "k2"]
    log = tmp_path / "train_log.jsonl"
    log.write_text('{"step": 1, "loss": 0.7}\n{"step": 2, "loss": 0.6}\n{"step": 3, "lo')
    _step_logger(log, resume_step=2)
    assert _rows(log) == [{"step": 1, "loss": 0.7}, {"step": 2, "loss": 0.6}]


def test_an_unexpected_os_error_is_one_line(tmp_path, monkeypatch, capsys):
    import selfalign.stages.pairs as pairs

    def denied(*a, **k):
        raise PermissionError(errno.EACCES, "Permission denied", "/somewhere/x")

    monkeypatch.setattr(pairs, "build_pairs", denied)
    src = tmp_path / "s.jsonl"
    src.write_text('{"id": "a", "prompt": "p", "response": "r", "score": 1}\n')
    assert main(["pairs", "--input", str(src), "--output", str(tmp_path / "p.jsonl")]) == 2
    assert capsys.readouterr().err == "selfalign pairs: error: /somewhere/x: Permission denied\n"


# --- YAML: one bounded reader (recipes and overrides) ---------------------------------------------------------
BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi")) + "name: *i\n"


@pytest.mark.parametrize("text, line, says", [
    ("name: x\nsample:\n  n: 2\n  n: 3\n", 4, "duplicate key 'n'"),
    ("name: x\n1: y\n", 2, "key 1 must be a string"),
    ("name: x\nnull: y\n", 2, "key None must be a string"),
    (BOMB, None, "more than 100000 values once its aliases are expanded"),
    ("name: " + "[" * 3000 + "]" * 3000 + "\n", 1, "nested"),
    # found by the property suite: 100,000 '[' kept PyYAML's (quadratic) scanner busy for hours
    ("model: m\ndescription: " + "[" * 100_000 + "]" * 100_000 + "\n", 2, "YAML nested deeper than 64"),
    ("model: m\nname: {a: " * 1 + "{b: " * 70 + "1" + "}" * 71 + "\n", 2, "YAML nested deeper than 64"),
    ("model: m\nseed: " + "9" * 5000 + "\n", None, "not valid YAML (Exceeds the limit"),  # was a traceback
    ('model: m\ndescription: "x\\ud800y"\n', 2, "lone surrogate escape"),  # was accepted
])
def test_a_recipe_yaml_is_read_bounded_and_strict(text, line, says, tmp_path, capsys):
    from selfalign.cli import main

    path = tmp_path / "r.yaml"
    path.write_text(text)
    t0 = time.time()
    assert main(["run", str(path), "--dry-run"]) == 2  # the alias bomb is refused while counted, never expanded
    assert time.time() - t0 < 5
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says in err[0] and str(path) in err[0]
    assert (f":{line}" in err[0]) if line else True


def test_a_lone_surrogate_is_one_line_and_leaves_no_tmp(tmp_path, capsys):
    scores = tmp_path / "scores.jsonl"
    good = {"id": "q", "sample_idx": 0, "question": "Q?", "response": "A", "score": 0.5}
    scores.write_text(json.dumps(good) + "\n" + json.dumps({**good, "sample_idx": 1}).replace('"A"', '"\\ud800"')
                      + "\n")
    with pytest.raises(InputError, match="lone surrogate") as e:
        sio.read_jsonl(scores)
    assert f"{scores}:2:" in str(e.value)
    assert main(["pairs", "--input", str(scores), "--output", str(tmp_path / "pairs.jsonl")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{scores}:2" in err[0] and "lone surrogate" in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.jsonl"]


@pytest.mark.parametrize("score", ["1" + "0" * 400, "Infinity", "-Infinity"])
def test_an_infinite_or_huge_score_is_one_line(score, tmp_path):
    """(NaN stays allowed: a sample without a score, counted by pairs as unscored.)"""
    path = tmp_path / "s.jsonl"
    path.write_text('{"id": "q", "question": "Q?", "response": "A", "score": %s}\n' % score)
    with pytest.raises(InputError, match=r":1: score must be a finite number"):
        sio.read_jsonl(path, fields=["score"])



def test_yaml_flow_brackets_in_quotes_and_comments_are_not_nesting():
    from selfalign.store.yamlfile import parse_yaml

    text = "a: '[[[[[[[['\nb: \"{{{{\\\"[[[[\"\n# " + "[" * 100 + "\nc: [1, [2, {d: 3}]]\n"
    assert parse_yaml(text, "r.yaml") == {"a": "[" * 8, "b": '{{{{"[[[[', "c": [1, [2, {"d": 3}]]}


def test_json_nested_past_pythons_limit_is_one_line_naming_file_and_line(tmp_path):
    """Found by the property suite: a JSONL row nested 100,000 deep was a RecursionError traceback."""
    path = tmp_path / "p.jsonl"
    path.write_text('{"id": "a", "question": "Q?"}\n{"id": "b", "question": "Q?", "note": ' + "[" * 100_000
                    + "]" * 100_000 + "}\n")
    with pytest.raises(InputError, match=r"p\.jsonl:2: JSON nested deeper than 100"):
        sio.read_jsonl(path)


def test_a_json_file_holding_a_lone_surrogate_is_one_line(tmp_path):
    """Found by the property suite: eval truthfulqa-mc took a mc_task.json question holding \\udc00 (it could
    not have written its rows). A pair of escapes (an emoji) and an escaped backslash stay text."""
    path = tmp_path / "t.json"
    path.write_text('[{"question": "ok \\ud83d\\ude00 \\\\ud800",\n  "x": "bad \\udc00"}]')
    with pytest.raises(InputError, match=r"t\.json:2: holds a lone surrogate escape"):
        sio.read_json(path)
    path.write_text('[{"question": "ok \\ud83d\\ude00 \\\\ud800"}]')
    assert sio.read_json(path) == [{"question": "ok \U0001F600 \\ud800"}]


def test_the_readers_are_bounded_in_depth_line_length_and_size(tmp_path, monkeypatch):
    """One reader per file kind, bounded (issue 34): JSON nested deeper than MAX_JSON_DEPTH (below Python's own
    limit, so nothing downstream recurses past it), a JSONL line longer than MAX_LINE_BYTES (read in pieces of that
    size, never whole), a file larger than MAX_FILE_BYTES, YAML over MAX_YAML_BYTES: one line each."""
    from selfalign.store import yamlfile

    deep, ok = tmp_path / "deep.json", tmp_path / "ok.json"
    deep.write_text("[" * 101 + "]" * 101)
    ok.write_text("[" * 100 + "]" * 100)
    with pytest.raises(InputError, match=r"deep\.json: JSON nested deeper than 100"):
        sio.read_json(deep)
    assert sio.json_depth(sio.read_json(ok)) == 100
    rows = tmp_path / "r.jsonl"
    rows.write_text('{"id": "a", "question": "Q?"}\n{"id": "b", "question": "' + "x" * 5000 + '"}\n')
    monkeypatch.setattr(sio, "MAX_LINE_BYTES", 4096)
    with pytest.raises(InputError, match=r"r\.jsonl:2: a line longer than 4,096 bytes"):
        sio.read_jsonl(rows)
    monkeypatch.setattr(sio, "MAX_FILE_BYTES", 1000)
    with pytest.raises(InputError, match=r"r\.jsonl: 5,\d+ bytes: larger than the 1,000 read at once"):
        sio.read_text(rows)
    assert sio.peek_json(deep) is None and sio.peek_json(tmp_path / "missing.json", {}) == {}
    with pytest.raises(InputError, match="more than the 1,048,576 read"):
        yamlfile.parse_yaml("a: " + "x" * yamlfile.MAX_YAML_BYTES, "big.yaml")
