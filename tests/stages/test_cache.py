"""`selfalign cache`: lists the cache; `clean` removes the stale entries, `--all` every one, `--dry-run` none."""
from selfalign.cli import main


def listing(root):
    return sorted(p.relative_to(root).as_posix() for d in ("models", "gguf", "data") for p in (root / d).glob("*"))


def test_cache_lists_then_cleans_stale_entries_only(filled_cache, capsys):
    root, good = filled_cache
    before = listing(root)
    assert main(["cache"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith(f"selfalign cache: {root} ")
    assert "legacy: keyed by the path /old/venv/m.Q4_1.gguf" in out and "dequantised GGUF: m.Q4_1.gguf (Q4_1)" in out
    assert "2 (0.0 MB): `selfalign cache clean` removes them" in out
    assert main(["cache", "clean", "--dry-run"]) == 0
    assert "would remove legacy" in capsys.readouterr().out and listing(root) == before
    assert main(["cache", "clean"]) == 0
    assert listing(root) == ["data/truthfulqa", "gguf/abcdef123456", f"models/{good.name}"]
    assert main(["cache", "clean", "--all"]) == 0
    assert listing(root) == []


def test_cache_of_an_empty_folder_and_a_bad_action(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SELFALIGN_CACHE", str(tmp_path / "none"))
    assert main(["cache"]) == 0 and "(empty)" in capsys.readouterr().out
    assert main(["cache", "purge"]) == 2
    assert capsys.readouterr().err == "selfalign cache: error: --action must be one of list, clean, got 'purge'\n"
