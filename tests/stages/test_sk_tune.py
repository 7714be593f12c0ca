"""SK-Tuning: the single-token DPO loss against a hand computation, learning, saving, bad input."""
import json
import random

import pytest
import torch
import torch.nn.functional as F

from selfalign import prompts as P
from selfalign.errors import InputError, SelfAlignError
from selfalign.stages.sk_tune import SKTuneConfig, class_weights, dpo_loss, encode_rows, make_batches, run_sk_tune

QS = [("What is the capital of France?", "Paris", "London"), ("Who wrote Hamlet?", "Shakespeare", "Dickens"),
      ("What is two plus two?", "Four", "Five"), ("Which planet is largest?", "Jupiter", "Mars")]


def _rows():
    out = []
    for q, good, bad in QS:
        for ans, label in ((good, 1), (bad, 0)):
            c, r = (P.TRUE_LABEL, P.FALSE_LABEL) if label else (P.FALSE_LABEL, P.TRUE_LABEL)
            out.append({"prompt": P.ptrue_prompt(q, ans, 0, None), "chosen": c, "rejected": r, "label": label})
    return out


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_loss_and_grad_match_hand_dpo(tiny_model_dir):
    from peft import LoraConfig, get_peft_model

    from selfalign import models
    from selfalign.engines.hf import HFEngine

    beta = 0.3
    model, tok = models.load(tiny_model_dir, device="cpu", dtype="float32")
    engine = HFEngine(model, tok, batch_size=8)
    rows = _rows()[:5]
    d = encode_rows(rows, engine, model, SKTuneConfig(batch_size=8))
    assert len({len(s) for s in d.seqs}) > 1  # the batch really is padded

    def last_logp(m, text):  # a plain, un-padded forward; full-vocab log-softmax at the last position
        x = torch.tensor([tok(text)["input_ids"]])
        return F.log_softmax(m(input_ids=x).logits[0, -1].float(), -1)

    def ids_of(text, letter):  # the letter's ids in context, by hand: the last token of prompt + letter
        base = tok(text)["input_ids"]
        out = []
        for s in (letter, " " + letter):
            full = tok(text + s)["input_ids"]
            if len(full) == len(base) + 1 and full[-1] not in out:
                out.append(full[-1])
        return out

    with torch.no_grad():
        d_ref = d.margins(model)
        ref = [last_logp(model, r["prompt"]) for r in rows]
    torch.manual_seed(0)
    peft = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                            task_type="CAUSAL_LM"))
    with torch.no_grad():  # LoRA B starts at zero: make the adapter do something
        for n, p in peft.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.5)
    param = next(p for n, p in peft.named_parameters() if "lora_A" in n)

    loss, _ = dpo_loss(d.margins(peft), d_ref, beta)
    loss.backward()
    grad = param.grad.clone()
    param.grad = None

    terms = []
    for r, rl in zip(rows, ref):
        lp = last_logp(peft, r["prompt"])
        c, j = ids_of(r["prompt"], r["chosen"]), ids_of(r["prompt"], r["rejected"])
        pc, pr = torch.logsumexp(lp[c], 0), torch.logsumexp(lp[j], 0)
        rc, rr = torch.logsumexp(rl[c], 0), torch.logsumexp(rl[j], 0)
        terms.append(-F.logsigmoid(beta * ((pc - pr) - (rc - rr))))
    hand = torch.stack(terms).mean()
    hand.backward()
    assert loss.item() == pytest.approx(hand.item(), abs=1e-5)
    assert hand.item() != pytest.approx(float(torch.log(torch.tensor(2.0))), abs=1e-4)  # not the trivial value
    assert torch.allclose(grad, param.grad, atol=1e-5, rtol=1e-4)
    assert grad.abs().max() > 1e-4


def test_training_learns_saves_and_resumes(tiny_model_dir, tmp_path):
    from selfalign import models

    data = _write(tmp_path / "train.jsonl", _rows())
    out = tmp_path / "sk"
    cfg = SKTuneConfig(model=tiny_model_dir, data=data, valid_data=data, output=str(out), device="cpu",
                       dtype="float32", beta=1.0, learning_rate=1e-2, lora_r=8, batch_size=8, epochs=20,
                       eval_every=5, seed=0, lr_scheduler="constant", warmup_ratio=0.0)
    s = run_sk_tune(cfg)
    assert s["steps"] == 20 and s["saved"] == "best" and not s["resumed"]
    assert s["best_valid_auroc"] > s["initial_valid"]["auroc"]
    assert s["best_valid_auroc"] == 1.0
    log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert log[-1]["valid"]["reward_accuracy"] > 0.8 and log[-1]["loss"] < log[1]["loss"] - 0.1
    assert (out / "adapter_model.safetensors").exists()
    import os
    from pathlib import Path

    # the local base relative to the working directory for PEFT, to the folder for selfalign; never a cache
    acfg = json.loads((out / "adapter_config.json").read_text())
    assert acfg["base_model_name_or_path"] == os.path.relpath(Path(tiny_model_dir).resolve(), Path.cwd().resolve())
    rec = json.loads((out / "selfalign_base.json").read_text())
    assert rec == {"base_model": os.path.relpath(Path(tiny_model_dir).resolve(), out.resolve()), "relative": True}
    assert "SK-Tuning" in (out / "README.md").read_text() and (out / "tokenizer_config.json").exists()
    meta = json.loads((out / "train_summary.json").read_text())
    assert meta["stage"] == "sk-tune" and meta["config"]["beta"] == 1.0 and "versions" in meta
    import hashlib  # the inputs' hashes, computed here independently (first 16 hex digits of sha256)

    h = hashlib.sha256(Path(data).read_bytes()).hexdigest()[:16]
    assert meta["input_hashes"] == {"data": h, "valid_data": h}

    # the output is a model spec whose logits differ from the base
    assert models.resolve(str(out)).adapters
    base, tok = models.load(tiny_model_dir, device="cpu")
    tuned, _ = models.load(str(out), device="cpu")
    x = torch.tensor([tok(_rows()[0]["prompt"])["input_ids"]])
    with torch.no_grad():
        assert not torch.allclose(base(input_ids=x).logits, tuned(input_ids=x).logits, atol=1e-4)

    again = run_sk_tune(cfg)
    assert again["resumed"] and again["steps"] == 20
    cfg.beta = 0.5
    with pytest.raises(SelfAlignError, match="another config"):
        run_sk_tune(cfg)


def test_batches_by_question_keep_a_questions_rows_together():
    sizes = [2, 2, 3, 2, 6, 2, 1, 2]  # rows per question; 6 > the batch size
    rows = [{"task": "t", "id": f"q{q}"} for q, n in enumerate(sizes) for _ in range(n)]
    for seed in range(5):
        batches = make_batches(rows, 4, random.Random(seed), "question")
        flat = [i for b in batches for i in b]
        assert sorted(flat) == list(range(len(rows)))  # every row once
        for b in batches:
            qs = [rows[i]["id"] for i in b]
            assert len(b) <= 4 or len(set(qs)) == 1  # only a single oversized question exceeds the batch size
            for q in set(qs):
                assert qs.count(q) == sizes[int(q[1:])]  # a question is never split across batches
        assert make_batches(rows, 4, random.Random(seed), "question") == batches  # seeded
    by_row = make_batches(rows, 4, random.Random(0), "row")
    order = list(range(len(rows)))
    random.Random(0).shuffle(order)
    assert by_row == [order[s:s + 4] for s in range(0, len(order), 4)]  # the plain shuffle, as before


def test_every_epoch_trains_on_all_of_its_batches():
    from selfalign.stages.sk_tune_batches import epoch_steps, step_groups as _groups

    sizes = [2, 2, 3, 2, 6, 2, 1, 2, 3, 1]
    rows = [{"task": "t", "id": f"q{q}"} for q, n in enumerate(sizes) for _ in range(n)]
    for ga in (1, 2):
        cfg = SKTuneConfig(batch_size=4, epochs=6, seed=0, batch_by="question", grad_accum=ga)
        counts = [len(make_batches(rows, 4, random.Random(f"0/epoch/{e}"), "question")) for e in range(6)]
        assert len(set(counts)) > 1  # the epochs pack into different numbers of batches (the case that ended early)
        assert epoch_steps(rows, cfg) == [-(-c // ga) for c in counts]
        steps = list(_groups(rows, cfg, 0))
        assert len(steps) == sum(epoch_steps(rows, cfg))  # one group per planned step, none left over
        for e in range(6):  # each epoch: every row exactly once
            flat = sorted(i for ep, group in steps if ep == e for b in group for i in b)
            assert flat == list(range(len(rows)))
        for k in (1, 7, len(steps) - 1):  # resuming at step k yields exactly the rest
            assert list(_groups(rows, cfg, k)) == steps[k:]


def test_batch_by_question_trains(tiny_model_dir, tmp_path):
    rows = [dict(r, task="t", id=str(i // 2)) for i, r in enumerate(_rows())]
    data = _write(tmp_path / "train.jsonl", rows)
    cfg = SKTuneConfig(model=tiny_model_dir, data=data, valid_data=data, output=str(tmp_path / "sk"), device="cpu",
                       dtype="float32", beta=1.0, learning_rate=1e-2, lora_r=8, batch_size=4, epochs=10,
                       eval_every=5, seed=0, batch_by="question")
    s = run_sk_tune(cfg)
    assert s["steps"] == 20 and s["best_valid_auroc"] > s["initial_valid"]["auroc"]
    with pytest.raises(SelfAlignError, match="--batch-by"):
        run_sk_tune(SKTuneConfig(model=tiny_model_dir, data=data, output=str(tmp_path / "x"), batch_by="task"))


def test_full_finetune_saves_a_model(tiny_model_dir, tmp_path):
    from selfalign import models

    data = _write(tmp_path / "train.jsonl", _rows()[:4])
    out = tmp_path / "full"
    s = run_sk_tune(SKTuneConfig(model=tiny_model_dir, data=data, output=str(out), lora=False, device="cpu",
                                 dtype="float32", learning_rate=1e-2, batch_size=2, grad_accum=2, max_steps=1))
    assert s["steps"] == 1 and s["saved"] == "last"
    r = models.resolve(str(out))
    assert r.kind == "hf-dir" and not r.adapters and (out / "tokenizer_config.json").exists()
    base, tok = models.load(tiny_model_dir, device="cpu")
    tuned, _ = models.load(str(out), device="cpu")
    x = torch.tensor([tok(_rows()[0]["prompt"])["input_ids"]])
    with torch.no_grad():
        assert not torch.allclose(base(input_ids=x).logits, tuned(input_ids=x).logits, atol=1e-4)


def test_missing_chosen_names_line(tmp_path, tiny_model_dir):
    rows = _rows()[:3]
    del rows[1]["chosen"]
    cfg = SKTuneConfig(model=tiny_model_dir, data=_write(tmp_path / "bad.jsonl", rows), output=str(tmp_path / "o"))
    with pytest.raises(InputError, match=r"bad.jsonl:2: missing field 'chosen'"):
        run_sk_tune(cfg)
    rows = _rows()[:3]
    rows[2]["rejected"] = "C"
    cfg.data = _write(tmp_path / "bad2.jsonl", rows)
    with pytest.raises(InputError, match=r"bad2.jsonl:3: chosen/rejected"):
        run_sk_tune(cfg)


def test_balanced_class_weights_and_the_weighted_loss():
    """balanced: n / (2 n_class) per row (each class weighs n / 2 in all); the loss is the weighted mean of the
    rows' -log sigmoid(beta (margin - ref margin)); one class only is refused."""
    import torch.nn.functional as F

    labels = [1, 0, 0, 0]
    w = class_weights(labels, "balanced")
    assert w.tolist() == pytest.approx([2.0, 4 / 6, 4 / 6, 4 / 6]) and class_weights(labels, "none") is None
    assert abs(float(w[torch.tensor(labels) == 1].sum()) - float(w[torch.tensor(labels) == 0].sum())) < 1e-6
    m, ref = torch.tensor([0.5, -1.0, 2.0, 0.0]), torch.tensor([0.0, 0.5, 0.5, 0.5])
    loss, _ = dpo_loss(m, ref, 0.1, w)
    hand = sum(wi * -F.logsigmoid(torch.tensor(0.1 * (a - b))) for wi, a, b in zip(w.tolist(), m.tolist(),
                                                                                     ref.tolist())) / 4
    assert abs(float(loss) - float(hand)) < 1e-6
    with pytest.raises(SelfAlignError):
        class_weights([0, 0], "balanced")
