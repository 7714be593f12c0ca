"""SK-Tuning and every P(True) reader share one answer-token definition; the cached-trunk path equals the plain
path; the schedule, clipping and checkpoints are on (generative SK data: test_sk_data_generative.py)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from selfalign import prompts as P
from selfalign.errors import SelfAlignError

QA = [("What is the capital of France?", "Paris", "London"), ("Who wrote Hamlet?", "Shakespeare", "Dickens"),
      ("What is two plus two?", "Four", "Five"), ("Which planet is largest?", "Jupiter", "Mars")]


def _rows(shots=0, instruction=None):
    out = []
    for i, (q, good, bad) in enumerate(QA):
        for k, (ans, label) in enumerate(((good, 1), (bad, 0))):
            c, r = (P.TRUE_LABEL, P.FALSE_LABEL) if label else (P.FALSE_LABEL, P.TRUE_LABEL)
            out.append({"prompt": P.ptrue_prompt(q, ans, shots, instruction), "chosen": c, "rejected": r,
                        "label": label, "id": f"q{i}", "task": "t", "question": q, "proposal": ans, "option_idx": k})
    return out


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def _engine(spec):
    from selfalign.engines.hf import HFEngine

    return HFEngine.from_spec(spec, batch_size=3, device="cpu", dtype="float32")


def test_metaspace_letters_differ_only_in_context(metaspace_dir):
    from selfalign.engines.tokens import choice_ids

    tok = _engine(metaspace_dir).tok
    assert tok.encode("A", add_special_tokens=False) == tok.encode(" A", add_special_tokens=False)  # out of context
    prompt = P.ptrue_prompt("Who wrote Hamlet?", "Shakespeare")
    ids = choice_ids(tok, prompt, "A")
    assert len(ids) == 2  # in context "A" and " A" are two tokens ("A" glued to ':' and "▁A")
    for s in ("A", " A"):  # each is exactly the last token of prompt + letter
        assert tok.encode(prompt + s, add_special_tokens=False)[-1] in ids


@pytest.mark.parametrize("which", ["tiny", "metaspace"])
def test_sktune_validation_ptrue_equals_calibrate_and_score(which, tiny_model_dir, metaspace_dir, tmp_path):
    from selfalign.evals.calibrate import CalibrateConfig, output_paths, run_calibrate
    from selfalign.selfeval import ptrue
    from selfalign.stages.sk_tune import SKTuneConfig, encode_rows

    spec = tiny_model_dir if which == "tiny" else metaspace_dir
    eng = _engine(spec)
    rows = _rows()
    enc = encode_rows(rows, eng, eng.model, SKTuneConfig(batch_size=3))
    with torch.no_grad():
        sk = torch.sigmoid(enc.margins(eng.model) * enc.sign).tolist()  # what sk-tune's validation reports
    score = [r.p_true for r in ptrue.p_true(eng, [(r["question"], r["proposal"]) for r in rows])]  # score's reader
    mc = tmp_path / "mc.jsonl"
    mc.write_text("".join(json.dumps({"id": f"q{i}", "question": q, "options": [{"text": g, "label": 1},
                                                                                 {"text": b, "label": 0}]}) + "\n"
                          for i, (q, g, b) in enumerate(QA)))
    run_calibrate(CalibrateConfig(model=spec, data=str(mc), output=str(tmp_path / "cal.json"), device="cpu",
                                  dtype="float32", n_boot=0, batch_size=3))
    items = {(r["id"], r["option_idx"]): r["p_true"] for r in map(json.loads, open(output_paths(tmp_path / "cal.json")[0]))}
    cal = [items[(r["id"], r["option_idx"])] for r in rows]
    assert max(abs(a - b) for a, b in zip(sk, score)) < 1e-5
    assert max(abs(a - b) for a, b in zip(sk, cal)) < 1e-5
    assert max(sk) - min(sk) > 1e-4  # not a constant


@pytest.mark.parametrize("shots", [0, 5])
def test_cached_trunk_equals_plain_path(shots, tiny_model_dir):
    from peft import LoraConfig, get_peft_model

    from selfalign.stages import sk_tune_trunk

    eng = _engine(tiny_model_dir)
    rows = _rows(shots, P.PAPER_INSTRUCTION if shots else None)
    seqs = [eng.encode(r["prompt"]) for r in rows]
    a = [eng.choice_ids(r["prompt"], "A") for r in rows]
    b = [eng.choice_ids(r["prompt"], "B") for r in rows]
    sign = [1.0 if r["chosen"] == "A" else -1.0 for r in rows]
    model = eng.model
    trunk = sk_tune_trunk.TrunkRows(seqs, a, b, sign, model, k=1, batch_size=3, min_prefix=8)
    assert (trunk.p > 50) == (shots == 5)  # the 5-shot demo prefix is kept once
    torch.manual_seed(0)
    peft = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                            layers_to_transform=[1], task_type="CAUSAL_LM"))
    with torch.no_grad():
        for n, p in peft.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.5)
    plain = sk_tune_trunk.PlainRows(seqs, a, b, sign, eng)
    params = [p for p in peft.parameters() if p.requires_grad]
    grads = []
    for path in (plain, trunk):
        m = path.margins(peft, [0, 3, 5, 6, 7])
        (m ** 2).sum().backward()
        grads.append([p.grad.clone() for p in params])
        for p in params:
            p.grad = None
        if path is plain:
            ref = m.detach()
    assert torch.allclose(ref, m.detach(), atol=1e-5)
    for g1, g2 in zip(*grads):
        assert torch.allclose(g1, g2, atol=1e-5, rtol=1e-4)
    assert max(g.abs().max() for g in grads[0]) > 1e-5


def test_trunk_encodes_a_repeated_prompt_once(tiny_model_dir):
    """Balanced rows repeat prompts (``mc-data --balance``): each distinct prompt is encoded once, every copy gets
    its states, and the margins equal the whole-model path row by row."""
    from selfalign.stages import sk_tune_trunk

    eng = _engine(tiny_model_dir)
    rows = _rows()
    rows = rows + [rows[1], rows[1], rows[4]]  # three copies of two rows
    seqs = [eng.encode(r["prompt"]) for r in rows]
    a = [eng.choice_ids(r["prompt"], "A") for r in rows]
    b = [eng.choice_ids(r["prompt"], "B") for r in rows]
    sign = [1.0 if r["chosen"] == "A" else -1.0 for r in rows]
    encoded, reported = [], []
    real = sk_tune_trunk.only_layers

    def counting(model, lo, hi):  # the trunk pass runs layers [0, hi): count its rows
        if lo == 0:
            encoded.append(1)
        return real(model, lo, hi)

    sk_tune_trunk.only_layers = counting
    try:
        trunk = sk_tune_trunk.TrunkRows(seqs, a, b, sign, eng.model, k=1, batch_size=1, progress=reported.append)
    finally:
        sk_tune_trunk.only_layers = real
    distinct = len({tuple(s) for s in seqs})
    assert distinct == len(rows) - 3 and len(encoded) == distinct  # batch_size 1: one trunk pass per prompt
    assert sum(reported) == len(rows)  # progress counts rows, copies included
    assert trunk.h[-1] is trunk.h[4] and trunk.h[-2] is trunk.h[1]
    plain = sk_tune_trunk.PlainRows(seqs, a, b, sign, eng)
    with torch.no_grad():
        assert torch.allclose(plain.margins(eng.model), trunk.margins(eng.model), atol=1e-5)


def _cfg(tiny_model_dir, tmp_path, **kw):
    from selfalign.stages.sk_tune import SKTuneConfig

    tmp_path.mkdir(parents=True, exist_ok=True)
    data = _write(tmp_path / "train.jsonl", _rows())
    base = dict(model=tiny_model_dir, data=data, valid_data=data, output=str(tmp_path / "sk"), device="cpu",
                dtype="float32", beta=1.0, learning_rate=1e-2, batch_size=2, epochs=3, eval_every=3, seed=0)
    return SKTuneConfig(**{**base, **kw})


def test_warmup_cosine_schedule_and_clipping_are_on(tiny_model_dir, tmp_path, monkeypatch):
    from selfalign.stages.sk_tune import run_sk_tune

    clips = []
    real = torch.nn.utils.clip_grad_norm_
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", lambda ps, n, *a, **k: clips.append(n) or real(ps, n))
    s = run_sk_tune(_cfg(tiny_model_dir, tmp_path, warmup_ratio=0.25, max_grad_norm=0.5, weight_decay=0.1))
    total, warm = s["planned_steps"], int(0.25 * s["planned_steps"])
    assert total == 12 and clips == [0.5] * total
    log = [json.loads(x) for x in (tmp_path / "sk" / "train_log.jsonl").read_text().splitlines()]
    lrs = [r["lr"] for r in log if r["step"] > 0]
    expect = [1e-2 * t / warm if t < warm else 1e-2 * 0.5 * (1 + math.cos(math.pi * (t - warm) / (total - warm)))
              for t in range(total)]
    assert lrs == pytest.approx(expect, rel=1e-6)
    evals = [r for r in log if "valid" in r]
    assert [r["step"] for r in evals] == [0, 3, 6, 9, 12]
    assert all({"auroc", "loss", "p_true_mean"} <= set(r["train"]) | set(r["valid"]) for r in evals)


def test_early_stop_when_validation_stalls(tiny_model_dir, tmp_path):
    from selfalign.stages.sk_tune import run_sk_tune

    s = run_sk_tune(_cfg(tiny_model_dir, tmp_path, learning_rate=0.0, epochs=10, eval_every=1, patience=2))
    assert s["stopped_early"] and s["steps"] == 3  # step 1 sets the best, steps 2 and 3 do not improve it


def test_killed_sk_tune_resumes_to_the_uninterrupted_result(tiny_model_dir, tmp_path, cli):
    from selfalign.stages.sk_tune import run_sk_tune

    full = run_sk_tune(_cfg(tiny_model_dir, tmp_path / "a", epochs=8, eval_every=2))
    cfg = _cfg(tiny_model_dir, tmp_path / "b", epochs=8, eval_every=2)
    out = tmp_path / "b" / "sk"
    args = ["sk-tune", "--model", cfg.model, "--data", cfg.data, "--valid-data", cfg.valid_data, "--output", out,
            "--device", "cpu", "--dtype", "float32", "--beta", "1.0", "--learning-rate", "0.01", "--batch-size", "2",
            "--epochs", "8", "--eval-every", "2", "--seed", "0"]
    cli.kill_when(cli.cmd(*args), lambda: (out / "checkpoint" / "state.json").exists()
                  and json.loads((out / "checkpoint" / "state.json").read_text())["step"] >= 6)
    assert (out / "checkpoint").exists() and not (out / "train_summary.json").exists()
    again = run_sk_tune(cfg)
    assert again["resumed"] and again["steps"] == full["steps"]
    assert again["trainable_checksums"] == pytest.approx(full["trainable_checksums"], rel=1e-6)
    log = [json.loads(x)["step"] for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert log == sorted(set(log))  # no step logged twice
    assert not (out / "checkpoint").exists()


@pytest.mark.parametrize("plan", ["other", None])
def test_checkpoint_of_another_batch_plan_is_refused_not_resumed(tiny_model_dir, tmp_path, cli, plan):
    """A checkpoint whose batch plan differs (or, written by an older sk-tune, is not recorded) under the same
    config: one line naming the checkpoint, exit 2, nothing trained on other batches."""
    cfg = _cfg(tiny_model_dir, tmp_path, epochs=8, eval_every=2)
    out = tmp_path / "sk"
    args = ["sk-tune", "--model", cfg.model, "--data", cfg.data, "--valid-data", cfg.valid_data, "--output", out,
            "--device", "cpu", "--dtype", "float32", "--beta", "1.0", "--learning-rate", "0.01", "--batch-size", "2",
            "--epochs", "8", "--eval-every", "2", "--seed", "0"]
    state_f = out / "checkpoint" / "state.json"
    cli.kill_when(cli.cmd(*args), lambda: state_f.exists() and json.loads(state_f.read_text())["step"] >= 2)
    state = json.loads(state_f.read_text())
    assert len(state["plan"]) == 16  # recorded with every checkpoint
    if plan is None:
        del state["plan"]
    else:
        state["plan"] = plan
    state_f.write_text(json.dumps(state))
    r = cli.run(cli.cmd(*args))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    line = [x for x in r.stderr.splitlines() if x.startswith("selfalign")]
    assert len(line) == 1 and str(out / "checkpoint") in line[0] and "batch plan" in line[0]
    assert ("older sk-tune" in line[0]) == (plan is None)
    assert not (out / "train_summary.json").exists()


def test_killed_top_layers_run_resumes_from_its_encode_cache_without_recomputing(tiny_model_dir, tmp_path, cli,
                                                                               monkeypatch):
    """--top-layers: the trunk states and reference margins are written once; a killed run resumes from them (the
    trunk and the reference pass are not run again), ends with the uninterrupted run's weights, and the cache goes
    when the run finishes."""
    from selfalign.stages import sk_tune_trunk
    from selfalign.stages.sk_tune import run_sk_tune

    full = run_sk_tune(_cfg(tiny_model_dir, tmp_path / "a", epochs=8, eval_every=2, top_layers=1))
    assert not (tmp_path / "a" / "sk" / sk_tune_trunk.CACHE).exists()
    cfg = _cfg(tiny_model_dir, tmp_path / "b", epochs=8, eval_every=2, top_layers=1)
    out = tmp_path / "b" / "sk"
    args = ["sk-tune", "--model", cfg.model, "--data", cfg.data, "--valid-data", cfg.valid_data, "--output", out,
            "--device", "cpu", "--dtype", "float32", "--beta", "1.0", "--learning-rate", "0.01", "--batch-size", "2",
            "--epochs", "8", "--eval-every", "2", "--seed", "0", "--top-layers", "1"]
    cli.kill_when(cli.cmd(*args), lambda: (out / "checkpoint" / "state.json").exists()
                  and json.loads((out / "checkpoint" / "state.json").read_text())["step"] >= 6)
    assert (out / sk_tune_trunk.CACHE).exists() and not (out / "train_summary.json").exists()

    def never(*a, **k):
        raise AssertionError("recomputed what the encode cache holds")

    monkeypatch.setattr(sk_tune_trunk.TrunkRows, "_trunk_states", never)
    monkeypatch.setattr(sk_tune_trunk, "reference_margins", never)
    again = run_sk_tune(cfg)
    assert again["resumed"] and again["steps"] == full["steps"]
    assert again["trainable_checksums"] == pytest.approx(full["trainable_checksums"], rel=1e-6)
    assert not (out / sk_tune_trunk.CACHE).exists()


def test_encode_cache_of_other_rows_is_recomputed(tiny_model_dir, tmp_path):
    from selfalign.stages import sk_tune_trunk
    from selfalign.stages.sk_tune import run_sk_tune

    cfg = _cfg(tiny_model_dir, tmp_path, epochs=1, eval_every=1, top_layers=1, max_steps=1)
    out = Path(cfg.output)
    out.mkdir(parents=True)
    (out / sk_tune_trunk.CACHE).write_bytes(b"not a safetensors file")
    assert run_sk_tune(cfg)["finished"]  # a foreign file is ignored, recomputed, and removed at the end


def test_sktune_rerenders_rows_with_the_paper_prompt(tiny_model_dir, tmp_path):
    from selfalign.stages.sk_tune import run_sk_tune

    s = run_sk_tune(_cfg(tiny_model_dir, tmp_path, max_steps=1, selfeval_prompt="paper", top_layers=1))
    assert s["selfeval_template"].startswith("ptrue-v1/preset=paper/shots=5/instruction=yes")
    with pytest.raises(SelfAlignError, match="--top-layers"):
        run_sk_tune(_cfg(tiny_model_dir, tmp_path / "x", top_layers=1, lora=False))


# --- generative BIG-bench tasks ----------------------------------------------------------------------------
def test_sigterm_saves_a_checkpoint_prints_one_line_and_exits_143(tiny_model_dir, tmp_path, cli):
    import signal
    import subprocess
    import time

    cfg = _cfg(tiny_model_dir, tmp_path, epochs=200, eval_every=2)
    out = tmp_path / "sk"
    args = cli.cmd("sk-tune", "--model", cfg.model, "--data", cfg.data, "--output", out, "--device", "cpu",
                   "--dtype", "float32", "--batch-size", "2", "--epochs", "200", "--eval-every", "2")
    p = subprocess.Popen(args, env=cli.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (out / "checkpoint" / "state.json").exists():
        time.sleep(0.05)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 143
    lines = [x for x in err.splitlines() if x.startswith("selfalign")]
    assert len(lines) == 1 and "interrupted: at step" in lines[0] and "Traceback" not in err
    assert json.loads((out / "checkpoint" / "state.json").read_text())["step"] >= 1

