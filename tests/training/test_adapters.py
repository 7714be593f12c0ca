"""Adapters that travel: PEFT's AutoPeftModel finds the base, selfalign finds its exact local base, the card has the
hub's front matter, and no file names a path of this machine."""
import hashlib
import json
import shutil
from pathlib import Path

import pytest
import yaml

from selfalign import models
from selfalign.training.adapters import (ModelCard, add_results, base_record, hub_datasets, peft_base, render_card,
                                         save_adapter)

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = sorted([*(ROOT / "selfalign/assets/adapters").glob("*/"), *(ROOT / "benchmarks/adapters").glob("*/")])


def front(text: str) -> dict:
    assert text.startswith("---\n")
    return yaml.safe_load(text[4:].split("\n---\n", 1)[0])


def lora_on(spec):
    from peft import LoraConfig, get_peft_model

    base, tok = models.load(spec, device="cpu")
    return get_peft_model(base, LoraConfig(r=2, target_modules=["q_proj", "v_proj"], init_lora_weights=False)), tok


def logits(model):
    import torch

    with torch.no_grad():
        return model(input_ids=torch.tensor([[5, 6, 7, 8]])).logits


def test_auto_peft_loads_a_fresh_adapter_on_a_local_base(tiny_model_dir, tmp_path, monkeypatch):
    import torch
    from peft import AutoPeftModelForCausalLM

    monkeypatch.chdir(tmp_path)
    shutil.copytree(tiny_model_dir, tmp_path / "models" / "tiny")
    peft_model, tok = lora_on("models/tiny")
    assert save_adapter(peft_model, tok, "runs/a", base_spec="models/tiny") == "adapter"
    acfg = json.loads(Path("runs/a/adapter_config.json").read_text())
    assert acfg["base_model_name_or_path"] == "models/tiny"  # PEFT reads it from the working directory
    assert json.loads(Path("runs/a/selfalign_base.json").read_text()) == {"base_model": "../../models/tiny",
                                                                         "relative": True}
    for f in Path("runs/a").iterdir():
        if f.suffix in (".json", ".md", ".jinja"):
            assert str(tmp_path) not in f.read_text(), f.name
    want = logits(peft_model)
    auto = AutoPeftModelForCausalLM.from_pretrained("runs/a")
    assert torch.allclose(logits(auto), want, atol=1e-5)
    monkeypatch.chdir(tmp_path / "runs")  # selfalign reads its record relative to the adapter folder
    ours, _ = models.load("a", device="cpu")
    assert torch.allclose(logits(ours), want, atol=1e-5)


def test_a_base_from_the_hub_cache_records_its_hub_id_and_revision(tiny_model_dir, tmp_path, monkeypatch):
    """A base in the hub's cache layout: the adapter names the hub id and commit, and AutoPeftModel resolves them
    (offline here, from that cache)."""
    import torch
    from peft import AutoPeftModelForCausalLM

    rev = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--org--tiny"
    shutil.copytree(tiny_model_dir, repo / "snapshots" / rev)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(rev)
    monkeypatch.chdir(tmp_path)
    peft_model, tok = lora_on(str(repo / "snapshots" / rev))
    save_adapter(peft_model, tok, "a", base_spec=str(repo / "snapshots" / rev))
    acfg = json.loads(Path("a/adapter_config.json").read_text())
    assert (acfg["base_model_name_or_path"], acfg["revision"]) == ("org/tiny", rev)
    rec = json.loads(Path("a/selfalign_base.json").read_text())
    assert (rec["hub_id"], rec["revision"], rec["relative"]) == ("org/tiny", rev, True)
    assert front(Path("a/README.md").read_text())["base_model"] == "org/tiny"
    auto = AutoPeftModelForCausalLM.from_pretrained("a", cache_dir=str(tmp_path / "hub"), local_files_only=True)
    assert torch.allclose(logits(auto), logits(peft_model), atol=1e-5)


def test_an_alias_base_records_hub_id_license_and_the_gguf(monkeypatch, tmp_path):
    monkeypatch.setenv("SELFALIGN_CACHE", str(tmp_path / "cache"))
    gguf = tmp_path / "SmolLM2-135M-Instruct.Q4_1.gguf"
    gguf.write_bytes(b"GGUF-bytes")
    monkeypatch.setattr(models, "find_alias_gguf", lambda alias: gguf)
    rec = base_record("smollm2-135m", tmp_path / "out")
    assert rec == {"base_model": "smollm2-135m", "hub_id": "HuggingFaceTB/SmolLM2-135M-Instruct",
                   "license": "apache-2.0",
                   "gguf": {"gguf_file": gguf.name, "gguf_sha256": hashlib.sha256(b"GGUF-bytes").hexdigest(),
                            "quantization": "Q4_1"}}
    assert peft_base(rec, tmp_path) == "HuggingFaceTB/SmolLM2-135M-Instruct"
    card = render_card(rec, "adapter", ModelCard(method="DPO", datasets=hub_datasets(["bigbench:qa_wikidata"])), "m")
    fm = front(card)
    assert fm == {"base_model": "HuggingFaceTB/SmolLM2-135M-Instruct", "license": "apache-2.0",
                  "library_name": "peft", "datasets": ["google/bigbench"],
                  "tags": ["selfalign", "dpo", "factuality", "gguf-dequantized"]}
    assert "the Q4_1 GGUF `SmolLM2-135M-Instruct.Q4_1.gguf` dequantised to float" in card
    assert "not the original weights of `HuggingFaceTB/SmolLM2-135M-Instruct`" in card
    assert "`AutoPeftModelForCausalLM.from_pretrained(THIS_FOLDER)`" in card
    # a judge adapter as base: its plain base's hub id and GGUF are known, but PEFT is not pointed at it
    skt = base_record("smollm2-135m-skt", tmp_path / "out")
    assert skt["base_is_adapter"] and skt["hub_id"] == rec["hub_id"] and peft_base(skt, tmp_path) == "smollm2-135m-skt"


def test_results_become_the_model_index(tmp_path):
    (tmp_path / "README.md").write_text(render_card({"base_model": "org/m", "hub_id": "org/m"}, "adapter",
                                                    ModelCard(method="DPO"), "m"))
    add_results(tmp_path, [{"task": "truthfulqa-mc [test]", "metric": "mc2", "value": 0.45, "ci_low": 0.41,
                            "ci_high": 0.49, "n": 730}])
    text = (tmp_path / "README.md").read_text()
    index = front(text)["model-index"]
    assert index == [{"name": tmp_path.name, "results": [{
        "task": {"type": "text-generation", "name": "truthfulqa-mc [test]"},
        "dataset": {"name": "truthfulqa-mc [test]", "type": "truthfulqa/truthful_qa", "config": "multiple_choice"},
        "metrics": [{"type": "mc2", "value": 0.45, "name": "mc2, 95% CI [0.410, 0.490], n=730"}]}]}]
    assert "| truthfulqa-mc [test] | mc2 | 0.450 | [0.410, 0.490] | 730 |" in text
    assert front(text)["base_model"] == "org/m"


@pytest.mark.parametrize("adir", COMMITTED, ids=[p.name for p in COMMITTED])
def test_committed_adapters_name_the_hub_base_and_still_load_their_alias(adir, monkeypatch, tmp_path):
    """PEFT reads the hub id; selfalign still reads the alias from selfalign_base.json and loads what it loaded
    before (the alias's GGUF with this adapter)."""
    rec = json.loads((adir / models.BASE_FILE).read_text())
    alias = models.ALIASES[rec["base_model"]]
    acfg = json.loads((adir / "adapter_config.json").read_text())
    assert acfg["base_model_name_or_path"] == rec["hub_id"] == alias.hub_id
    g = rec["gguf"]
    assert g["gguf_file"].endswith(f".{g['quantization']}.gguf") and len(g["gguf_sha256"]) == 64
    assert g["gguf_sha256"] == (alias.sha256 or g["gguf_sha256"])
    assert models._adapter_base(adir) == rec["base_model"]
    gguf = tmp_path / "base.gguf"
    gguf.write_bytes(b"GGUF")
    monkeypatch.setattr(models, "find_alias_gguf", lambda a: gguf)
    r = models.resolve(str(adir))
    assert (r.kind, r.gguf_file, r.adapters) == ("gguf", gguf.name, [str(adir.resolve())])
    fm = front((adir / "README.md").read_text())
    assert (fm["base_model"], fm["license"], fm["library_name"]) == (alias.hub_id, "apache-2.0", "peft")
    assert fm["datasets"] == ["google/bigbench"] and "gguf-dequantized" in fm["tags"]
    metrics = [m for res in fm["model-index"][0]["results"] for m in res["metrics"]]
    assert len(metrics) == 3 and all(0 < m["value"] < 1 for m in metrics)
