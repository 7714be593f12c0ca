"""BIG-bench qa_wikidata ships in the package: the demo's prompts without a data root; a data root's copy wins."""
import hashlib
import json

from selfalign.data import mc, shipped


def test_shipped_qa_wikidata_is_unpacked_once_and_used_without_a_data_root(tmp_path, monkeypatch):
    monkeypatch.setenv("SELFALIGN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SELFALIGN_DATA", str(tmp_path / "empty-root"))
    (tmp_path / "empty-root").mkdir()
    path = mc.bigbench_path("qa_wikidata")
    assert path == tmp_path / "cache" / "data" / "bigbench" / "qa_wikidata" / "task.json"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == shipped.BIGBENCH["qa_wikidata"][1]
    rows = mc.load_bigbench("qa_wikidata")
    assert len(rows) == len(json.loads(path.read_text())["examples"]) > 10_000 and rows[0]["targets"]
    mtime = path.stat().st_mtime_ns
    assert shipped.bigbench("qa_wikidata") == path and path.stat().st_mtime_ns == mtime  # unpacked once


def test_a_data_root_copy_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("SELFALIGN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SELFALIGN_DATA", str(tmp_path / "root"))
    own = tmp_path / "root" / "bigbench" / "qa_wikidata" / "task.json"
    own.parent.mkdir(parents=True)
    own.write_text(json.dumps({"examples": [{"input": "The capital of France is", "target": "Paris"}]}))
    assert mc.bigbench_path("qa_wikidata") == own and len(mc.load_bigbench("qa_wikidata")) == 1
    assert not (tmp_path / "cache").exists()
