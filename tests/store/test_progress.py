"""The shared chunk loop and the progress lines a non-terminal run prints."""
import io

from selfalign.store.io import JsonlAppender, read_jsonl
from selfalign.store.progress import Progress, run_chunks


def test_run_chunks_writes_each_chunk_before_the_next(tmp_path):
    path = tmp_path / "rows.jsonl"
    seen = []
    with JsonlAppender(path, key=lambda r: r["i"]) as out:
        def fn(part):
            seen.append((list(part), len(read_jsonl(path)) if path.stat().st_size else 0))
            return [{"i": i, "sq": i * i} for i in part]
        n = run_chunks(out, list(range(7)), 3, fn, "test", "item", enabled=False)
    assert n == 7
    assert seen == [([0, 1, 2], 0), ([3, 4, 5], 3), ([6], 6)]  # each chunk was on disk before the next began
    assert [r["sq"] for r in read_jsonl(path)] == [i * i for i in range(7)]


def test_run_chunks_size_below_one_is_one(tmp_path):
    with JsonlAppender(tmp_path / "r.jsonl", key=lambda r: r["i"]) as out:
        calls = []
        run_chunks(out, [1, 2], 0, lambda p: calls.append(p) or [{"i": x} for x in p], "t", "x", enabled=False)
    assert calls == [[1], [2]]


def test_progress_without_terminal_prints_lines():
    buf = io.StringIO()  # not a TTY: no tqdm bar, plain lines
    p = Progress(4, "score", "row", every=0.0, file=buf)
    for i in range(4):
        p.update(postfix=f"loss {i}")
    p.close()
    lines = buf.getvalue().splitlines()
    assert len(lines) == 4 and lines[-1].startswith("score: 4/4 rows (100%)")
    assert "min left" in lines[0] and "min left" not in lines[-1] and lines[-1].endswith("| loss 3")


def test_progress_throttles_and_always_prints_the_end():
    buf = io.StringIO()
    p = Progress(100, "x", "item", every=3600.0, file=buf)
    for _ in range(100):
        p.update()
    lines = buf.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("x: 100/100 items (100%)")
