"""On the embedded SmolLM2-135M: the CLI's p_true equals a direct computation from the logits."""
import json

import pytest
import torch

from selfalign import models, prompts
from selfalign.cli import main

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def smol():
    try:
        models.find_alias_gguf("smollm2-135m")
    except models.ModelError as e:
        pytest.skip(str(e))
    return models.load("smollm2-135m", device="cpu")


def test_cli_p_true_equals_direct_logits(smol, tmp_path):
    model, tok = smol
    rows = [{"id": "a", "sample_idx": 0, "question": "What is the capital of France?", "response": "Paris."},
            {"id": "b", "sample_idx": 0, "question": "What is the capital of France?", "response": "Berlin is."},
            {"id": "c", "sample_idx": 0, "question": "How many legs does a spider have?",
             "response": "A spider has eight legs, like all arachnids."}]
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    inp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["score", "--input", str(inp), "--output", str(out), "--device", "cpu", "--batch-size", "3"]) == 0
    got = [json.loads(l) for l in out.read_text().splitlines()]
    ids_a = {tok.encode(s, add_special_tokens=False)[0] for s in ("A", " A")}
    ids_b = {tok.encode(s, add_special_tokens=False)[0] for s in ("B", " B")}
    for r, g in zip(rows, got):
        text = (f"Question: {r['question']}\nProposed Answer: {r['response']}\nIs the proposed answer:\n"
                f" A. True\n B. False\nThe proposed answer is:")
        assert prompts.ptrue_prompt(r["question"], r["response"]) == text
        with torch.no_grad():
            p = torch.softmax(model(**tok(text, return_tensors="pt")).logits[0, -1].double(), -1)
        pa, pb = sum(p[i].item() for i in ids_a), sum(p[i].item() for i in ids_b)
        assert abs(g["p_true"] - pa / (pa + pb)) < 1e-4
        assert abs(g["p_true_mass"] - (pa + pb)) < 1e-4
