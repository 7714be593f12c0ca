"""The model cache: where it is, keyed by content (one copy per GGUF whatever venv installed it), what a GGUF says."""
import hashlib
import json

import pytest

from selfalign import model_cache as C


def test_cache_root_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv("SELFALIGN_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert C.cache_root() == tmp_path / "home" / ".cache" / "selfalign"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert C.cache_root() == tmp_path / "xdg" / "selfalign"
    monkeypatch.setenv("SELFALIGN_CACHE", str(tmp_path / "mine"))
    assert C.cache_root() == tmp_path / "mine"


def test_dequantized_dir_is_keyed_by_content_not_path(monkeypatch, tmp_path):
    monkeypatch.setenv("SELFALIGN_CACHE", str(tmp_path / "cache"))
    data = b"GGUF" + bytes(range(200))
    venv1, venv2 = tmp_path / "venv1" / "m.Q4_1.gguf", tmp_path / "venv2" / "m.Q4_1.gguf"
    for p in (venv1, venv2):
        p.parent.mkdir()
        p.write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    assert C.dequantized_dir(venv1) == C.dequantized_dir(venv2) == tmp_path / "cache" / "models" / f"m.Q4_1-{sha[:12]}"
    other = tmp_path / "m.Q4_1.gguf"
    other.write_bytes(data + b"x")
    assert C.dequantized_dir(other) != C.dequantized_dir(venv1)
    memo = json.loads((tmp_path / "cache" / "hashes.json").read_text())  # each file hashed once, remembered
    assert sorted(memo.values()) == sorted([sha, sha, hashlib.sha256(data + b"x").hexdigest()])


def test_gguf_facts_from_the_file_or_its_name(tmp_path):
    gguf = pytest.importorskip("gguf")
    path = tmp_path / "tiny.gguf"
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_file_type(3)  # MOSTLY_Q4_1
    w.add_license("apache-2.0")
    w.add_base_model_count(1)
    w.add_base_model_repo_url(0, "https://huggingface.co/org/tiny-base")
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    assert C.gguf_facts(path) == {"quantization": "Q4_1", "license": "apache-2.0", "hub_id": "org/tiny-base"}
    fake = tmp_path / "Model-7B.Q4_K_M.gguf"
    fake.write_bytes(b"not a gguf")
    assert C.gguf_facts(fake) == {"quantization": "Q4_K_M"}
    (tmp_path / "plain.gguf").write_bytes(b"x")
    assert C.gguf_facts(tmp_path / "plain.gguf") == {}


def test_entries_name_each_kind_and_what_clean_removes(filled_cache):
    root, good = filled_cache
    got = {e["path"]: (e["kind"], e["stale"]) for e in C.entries()}
    assert got == {f"models/{good.name}": ("dequantised GGUF", False),
                   "models/m.Q4_1-0123456789ab": ("legacy", True),
                   "models/m.Q4_1-0123456789ab.tmp4242": ("unfinished", True),
                   "gguf/abcdef123456": ("assembled GGUF", False),
                   "data/truthfulqa": ("data", False)}
    assert next(e for e in C.entries() if e["kind"] == "assembled GGUF")["bytes"] == 10
