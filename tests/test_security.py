"""Safe by default: URL credentials never written or printed, run names stay in runs/, adapters from safetensors."""
import json

import pytest

from selfalign import models
from selfalign.cli import main
from selfalign.errors import ModelError

SECRET = "s3cret-pw"


def test_redact_urls():
    from selfalign.store.provenance import redact

    assert redact("openai:http://user:pw@host:8000/v1") == "openai:http://***@host:8000/v1"
    assert redact({"a": ["https://tok@h/x", "http://h/v1@y", "plain"]}) == {"a": ["https://***@h/x", "http://h/v1@y",
                                                                                    "plain"]}
    assert redact("http://u:p@ss@host/v1") == "http://***@host/v1"
    assert redact(3) == 3


def _all_text(root) -> str:
    return "".join(p.read_text(errors="replace") for p in root.rglob("*") if p.is_file())


@pytest.fixture
def offline_openai(monkeypatch):
    """make_engine for openai:URL builds the real engine, without retries: the (unreachable) server fails at once."""
    from selfalign.engines.openai import OpenAIEngine

    def make(name, **kw):
        return OpenAIEngine(kw["model"], base_url=name.split(":", 1)[1], retries=0, timeout=2)

    for mod in ("selfalign.stages.sample", "selfalign.stages.score"):
        monkeypatch.setattr(f"{mod}.make_engine", make)


def test_url_credentials_are_redacted_in_meta_state_and_messages(tmp_data_root, tmp_path, prompts_file, capsys,
                                                                 offline_openai):
    engine = f"openai:http://user:{SECRET}@127.0.0.1:9/v1"
    out = tmp_path / "s.jsonl"
    code = main(["sample", "--engine", engine, "--model", "m", "--input", str(prompts_file), "--output", str(out)])
    cap = capsys.readouterr()
    assert code == 2 and SECRET not in cap.err + cap.out and "http://***@127.0.0.1:9/v1" in cap.err, cap.err
    meta = json.loads((tmp_path / "s.jsonl.meta.json").read_text())
    assert meta["config"]["engine"] == "openai:http://***@127.0.0.1:9/v1"
    assert meta["model_info"]["base_url"] == "http://***@127.0.0.1:9/v1"
    # a recipe run: recipe.json and the stage state
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"model: m\nengine: {engine}\nsample: {{input: {prompts_file}}}\n")
    assert main(["run", str(recipe), "--output", str(tmp_path / "run")]) == 2
    cap = capsys.readouterr()
    assert SECRET not in cap.err + cap.out
    assert (tmp_path / "run" / "recipe.json").exists() and (tmp_path / "run" / "sample" / "stage.json").exists()
    assert SECRET not in _all_text(tmp_path / "run") and SECRET not in _all_text(tmp_path / "s.jsonl.meta.json")


@pytest.mark.parametrize("name", ["../../x", "/tmp/selfalign-escape", "..", "a/../../b"])
def test_recipe_name_cannot_leave_runs(tmp_path, monkeypatch, capsys, name, prompts_file):
    monkeypatch.chdir(tmp_path)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(json.dumps({"name": name, "model": "m", "sample": {"input": str(prompts_file)}}))
    assert main(["run", str(recipe), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "must be a plain name" in err and "r.yaml" in err, err
    assert not (tmp_path / "runs").exists()


def _adapter(tiny_model_dir, path, safe: bool):
    from peft import LoraConfig, get_peft_model

    base, _ = models.load(tiny_model_dir, device="cpu")
    peft_model = get_peft_model(base, LoraConfig(r=2, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    peft_model.save_pretrained(path, safe_serialization=safe)
    (path / models.BASE_FILE).write_text(json.dumps({"base_model": tiny_model_dir}))
    return path


def test_pickled_adapter_is_refused_unless_allowed(tiny_model_dir, tmp_path, prompts_file, capsys):
    import torch

    adir = _adapter(tiny_model_dir, tmp_path / "adapter", safe=False)
    assert (adir / "adapter_model.bin").exists() and not (adir / "adapter_model.safetensors").exists()
    with pytest.raises(ModelError, match="adapter_model.bin is a pickle .*--allow-pickle"):
        models.load(str(adir), device="cpu")
    code = main(["sample", "--model", str(adir), "--input", str(prompts_file), "--output", str(tmp_path / "s.jsonl"),
                 "--device", "cpu", "--n", "1", "--max-new-tokens", "2"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "is a pickle" in err, err
    loaded, _ = models.load(str(adir), device="cpu", allow_pickle=True)  # asked for: it loads
    assert loaded.peft_config
    with torch.no_grad():
        assert loaded(input_ids=torch.tensor([[5, 6]])).logits.shape[-1] > 0
    assert main(["sample", "--model", str(adir), "--input", str(prompts_file), "--output", str(tmp_path / "s.jsonl"),
                 "--device", "cpu", "--n", "1", "--max-new-tokens", "2", "--allow-pickle"]) == 0
