"""`selfalign run`: a whole recipe on a tiny model, skipping finished stages, resuming a killed one, --from."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import n_lines
from selfalign.cli import main
from selfalign.run.pipeline import RunConfig, plan, run_recipe
from selfalign.run.recipe import load_recipe

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


@pytest.fixture(autouse=True)
def _inputs_in_the_data_root(tmp_data_root):
    """These recipes name input files in the test's folder: it is the data root (run.confine: a recipe reads files
    in its run folder or the data root only)."""


def _recipe(tmp_path, tiny_model_dir, prompts_file, **changes):
    mc = tmp_path / "mc.jsonl"
    mc.write_text("".join(json.dumps({"id": f"m{i}", "question": f"Question {i}?", "options": [
        {"text": "Paris", "label": 1}, {"text": "London", "label": 0}, {"text": "Rome", "label": 0}]}) + "\n"
        for i in range(6)))
    sections = {
        "sample": {"input": str(prompts_file), "n": 3, "max_new_tokens": 12},
        "score": {"method": "ptrue"},
        "pairs": {"strategy": "split"},
        "align": {"max_steps": 2, "batch_size": 2, "learning_rate": 0.01},
        "eval": {"tasks": ["calibrate"], "models": ["base", "aligned"], "calibrate": {"data": str(mc), "n_boot": 20}},
    }
    for k, v in changes.items():
        sections[k] = {**sections[k], **v}
    text = f"name: tiny\nmodel: {tiny_model_dir}\ndevice: cpu\nseed: 0\n" + "".join(
        f"{k}: {json.dumps(v)}\n" for k, v in sections.items())
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return path


def test_recipe_runs_every_stage_then_skips_them(tiny_model_dir, prompts_file, tmp_path):
    recipe = _recipe(tmp_path, tiny_model_dir, prompts_file)
    run = tmp_path / "run"
    s = run_recipe(RunConfig(recipe=str(recipe), output=str(run)))
    assert set(s["stages"].values()) == {"run"}
    rows = [json.loads(ln) for ln in (run / "sample" / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 15
    assert (run / "align" / "model" / "adapter_config.json").exists()
    for label in ("base", "aligned"):
        assert json.loads((run / "eval" / label / "calibrate.json").read_text())["n_questions"] == 6
    summary = (run / "summary.md").read_text()
    assert "| calibrate | auroc |" in summary and "base" in summary and "aligned" in summary
    # the aligned model's eval really used the adapter trained in this run
    st = json.loads((run / "eval" / "aligned" / "calibrate.stage.json").read_text())
    assert st["config"]["model"] == str(run / "align" / "model")
    again = run_recipe(RunConfig(recipe=str(recipe), output=str(run)))
    assert set(again["stages"].values()) == {"skip"}
    # a changed setting redoes that stage and what depends on it, nothing else
    recipe = _recipe(tmp_path, tiny_model_dir, prompts_file, pairs={"strategy": "best-worst"})
    p = run_recipe(RunConfig(recipe=str(recipe), output=str(run), dry_run=True))["plan"]
    assert p == {"sample": "skip", "score": "skip", "pairs": "redo", "align": "redo",
                 "eval/base/calibrate": "skip", "eval/aligned/calibrate": "redo"}
    p = run_recipe(RunConfig(recipe=str(recipe), output=str(run), from_stage="score", dry_run=True))["plan"]
    assert p["sample"] == "skip" and p["score"] == "redo" and p["eval/base/calibrate"] == "skip"


def test_kill_during_sampling_then_rerun(tiny_model_dir, tmp_path, cli):
    prompts = tmp_path / "p.jsonl"
    prompts.write_text("".join(json.dumps({"id": i, "question": f"Question number {i}?"}) + "\n" for i in range(40)))
    recipe = _recipe(tmp_path, tiny_model_dir, prompts, sample={"input": str(prompts), "n": 2, "max_new_tokens": 24,
                                                                "batch_size": 1})
    run = tmp_path / "run"
    out = run / "sample" / "samples.jsonl"
    cmd = cli.cmd("run", recipe, "--output", run)
    cli.kill_when(cmd, lambda: n_lines(out) >= 4)
    before = out.read_text().splitlines()
    assert 4 <= len(before) < 80
    assert json.loads((run / "sample" / "stage.json").read_text())["finished"] is False
    r = cli.run(cmd)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "sample                       " in r.stdout and "resume" in r.stdout
    after = out.read_text().splitlines()
    keys = [(json.loads(x)["id"], json.loads(x)["sample_idx"]) for x in after]
    assert len(keys) == len(set(keys)) == 80 and after[:len(before)] == before


def test_shipped_recipes_are_valid(tmp_path):
    files = sorted(RECIPES.glob("*.yaml"))
    assert {"demo.yaml"} <= {f.name for f in files}
    for f in files:
        steps = plan(load_recipe(str(f)), tmp_path / f.stem, where=str(f))
        assert steps and all(s.hash for s in steps), f


def test_biogen_eval_checks_every_model_with_the_same_verifier(tmp_path):
    r = {"name": "x", "model": "base-model", "eval": {"tasks": ["biogen"], "models": {"base": "base-model",
                                                                                     "aligned": "some/adapter"}}}
    steps = {s.name: s for s in plan(r, tmp_path, "r.yaml")}
    assert steps["eval/base/biogen"].values["verifier"] == steps["eval/aligned/biogen"].values["verifier"] == \
        "base-model"
    r["eval"]["biogen"] = {"verifier": "judge-model"}
    steps = {s.name: s for s in plan(r, tmp_path, "r.yaml")}
    assert steps["eval/aligned/biogen"].values["verifier"] == "judge-model"


def test_paper_recipes_use_the_paper_settings():
    r = load_recipe(str(RECIPES / "paper-truthfulqa-llama2-7b.yaml"))
    assert r["model"] == "meta-llama/Llama-2-7b-hf"
    assert {k: r["sample"][k] for k in ("n", "temperature", "top_p", "top_k")} == \
        {"n": 10, "temperature": 1.0, "top_p": 0.9, "top_k": 10}
    assert r["align"]["beta"] == 0.1 and r["align"]["epochs"] == 5


@pytest.mark.parametrize("text,want", [
    ("model: x\nbogus: 1\n", "unknown key(s) bogus"),
    ("model: x\nsample: {input: p.jsonl, nn: 3}\n", "sample: unknown key 'nn'"),
    ("model: x\nscore: {method: ptrue}\n", "stage 'score' needs its input: add a 'sample' section"),
    ("model: [x\n", "not valid YAML"),
    ("model: x\nsample: {input: p.jsonl}\neval: {tasks: [nope]}\n", "unknown evaluation 'nope'"),
    # found by the property suite (long profile): a falsy verifier (0, false, []) was replaced by the base model
    ("model: x\neval: {tasks: [knowledge-qa], knowledge-qa: {verifier: 0}}\n", "verifier must be a string"),
    ("model: x\neval: {tasks: [biogen], biogen: {verifier: false}}\n", "verifier must be a string"),
])
def test_bad_recipes_are_one_line_errors(tmp_path, capsys, text, want):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    code = main(["run", str(path), "--dry-run"])
    err = capsys.readouterr().err
    assert code == 2 and want in err and "bad.yaml" in err and "Traceback" not in err, err


def test_every_command_has_help(capsys):
    from selfalign import registry

    for argv in [[c, "--help"] for c in registry.commands()] + [["eval", t, "--help"] for t in registry.evals()]:
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 0, argv
    capsys.readouterr()


def _plan_names(main, argv, capsys):
    assert main(argv) == 0
    return [ln.split()[0] for ln in capsys.readouterr().out.splitlines() if re.match(r"^  \S+ +[0-9a-f]{16}  ", ln)]


def test_to_stage_and_a_nulled_stage_stop_the_plan(tmp_path, capsys):
    """`--to pairs` plans pairs and what it needs; `align: null` drops align and the evaluation of its model."""
    import yaml

    from selfalign.cli import main

    prompts, mc = tmp_path / "p.jsonl", tmp_path / "mc.jsonl"
    prompts.write_text(json.dumps({"id": "1", "question": "Q?"}) + "\n")
    mc.write_text(json.dumps({"id": "m", "question": "Q?", "options": [{"text": "a", "label": 1},
                                                                      {"text": "b", "label": 0}]}) + "\n")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({"name": "t", "model": "some-model", "sample": {"input": str(prompts)},
                                      "score": {}, "pairs": {}, "align": {},
                                      "eval": {"tasks": ["calibrate"], "models": ["base", "aligned"],
                                               "calibrate": {"data": str(mc)}}}))
    base = ["run", str(recipe), "--output", str(tmp_path / "run"), "--dry-run"]
    every = ["sample", "score", "pairs", "align", "eval/base/calibrate", "eval/aligned/calibrate"]
    assert _plan_names(main, base, capsys) == every
    assert _plan_names(main, base + ["--to", "pairs"], capsys) == ["sample", "score", "pairs"]
    assert _plan_names(main, base + ["--to", "eval"], capsys) == every
    assert main(base + ["align=null"]) == 0
    out = capsys.readouterr().out
    assert [ln.split()[0] for ln in out.splitlines() if re.match(r"^  \S+ +[0-9a-f]{16}  ", ln)] == [
        "sample", "score", "pairs", "eval/base/calibrate"]
    # what is left out is said, not silently dropped
    assert re.search(r"^  align +-{16}  not run: null in the recipe$", out, re.M)
    assert re.search(r"^  eval/aligned/calibrate +-{16}  not run: needs align, which is null$", out, re.M)
    assert _plan_names(main, base + ["eval=null"], capsys) == every[:4]
    assert main(base + ["--to", "pairs"]) == 0
    assert re.search(r"^  align +-{16}  not run: after --to pairs$", capsys.readouterr().out, re.M)
    assert main(base + ["align=null", "--to", "align"]) == 2
    assert "--to align: the recipe has no 'align' stage (it is null in the recipe)" in capsys.readouterr().err


def test_run_to_pairs_stops_there(tiny_model_dir, prompts_file, tmp_path):
    """`run --to pairs` runs sample, score and pairs and nothing after; the full run later reuses them."""
    recipe = _recipe(tmp_path, tiny_model_dir, prompts_file)
    run = tmp_path / "run"
    s = run_recipe(RunConfig(recipe=str(recipe), output=str(run), to_stage="pairs"))
    assert s["stages"] == {"sample": "run", "score": "run", "pairs": "run"}
    assert set(s["not_run"]) == {"align", "eval/base/calibrate", "eval/aligned/calibrate"}
    assert n_lines(run / "pairs" / "pairs.jsonl") > 0
    assert sorted(p.name for p in run.iterdir() if p.is_dir()) == ["pairs", "sample", "score"]
    assert not (run / "summary.md").exists()
    p = run_recipe(RunConfig(recipe=str(recipe), output=str(run), dry_run=True))["plan"]
    assert p == {"sample": "skip", "score": "skip", "pairs": "skip", "align": "run", "eval/base/calibrate": "run",
                 "eval/aligned/calibrate": "run"}


def test_hand_edits_replaced_weights_and_changed_evals(tmp_path, prompts_file, capsys):
    """Issue 34 (staleness): a finished stage's output edited by hand is one line, exit 2, nothing run or changed
    (--from redoes it, the edited output moved aside); a changed eval setting moves the old result aside; weights
    replaced in the model folder redo the stages that use it (a copy of the same weights does not)."""
    import shutil

    from conftest import build_tiny

    model = build_tiny(tmp_path / "model")
    mc = tmp_path / "mc.jsonl"
    mc.write_text("".join(json.dumps({"id": f"m{i}", "question": f"Question {i}?", "options": [
        {"text": "Paris", "label": 1}, {"text": "Rome", "label": 0}]}) + "\n" for i in range(4)))
    recipe = tmp_path / "r.yaml"
    recipe.write_text(json.dumps({"model": model, "device": "cpu", "sample": {
        "input": str(prompts_file), "n": 1, "max_new_tokens": 2, "limit": 2},
        "eval": {"tasks": ["calibrate"], "calibrate": {"data": str(mc), "limit": 2, "n_boot": 10}}}))
    run = tmp_path / "run"
    base = ["run", str(recipe), "--output", str(run)]
    assert main(base) == 0
    samples = run / "sample" / "samples.jsonl"
    good = samples.read_bytes()
    samples.write_bytes(good.replace(b'"q0"', b'"q9"', 1))
    edited = samples.read_bytes()
    capsys.readouterr()
    assert main(base) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert f"{samples} (changed) differs from what stage sample wrote when it finished" in err and "--from sample" in err
    assert samples.read_bytes() == edited
    assert run_recipe(RunConfig(recipe=str(recipe), output=str(run), dry_run=True))["plan"] == {
        "sample": "edited", "eval/base/calibrate": "skip"}
    samples.write_bytes(good)  # restored: skipped again
    assert set(run_recipe(RunConfig(recipe=str(recipe), output=str(run)))["stages"].values()) == {"skip"}
    samples.write_bytes(edited)
    (run / "eval" / "base" / "extra.txt").write_text("not the evaluation's")  # another file: not the stage's
    assert run_recipe(RunConfig(recipe=str(recipe), output=str(run), from_stage="sample"))["stages"]["sample"] == "redo"
    old = [p for p in run.iterdir() if p.name.startswith("sample.old-")]
    assert len(old) == 1 and (old[0] / "samples.jsonl").read_bytes() == edited and samples.read_bytes() == good
    # a changed eval setting: the old result is moved aside, not deleted
    first = json.loads((run / "eval" / "base" / "calibrate.json").read_text())
    assert first["n_questions"] == 2
    old_hash = json.loads((run / "eval" / "base" / "calibrate.stage.json").read_text())["hash"]
    got = run_recipe(RunConfig(recipe=str(recipe), output=str(run), overrides=["eval.calibrate.limit=3"]))
    assert got["stages"] == {"sample": "skip", "eval/base/calibrate": "redo"}
    aside = run / "eval" / "base" / f"calibrate.old-{old_hash}"
    assert json.loads((aside / "calibrate.json").read_text()) == first
    assert (aside / "calibrate.stage.json").exists()
    assert json.loads((run / "eval" / "base" / "calibrate.json").read_text())["n_questions"] == 3
    # the same weights copied into the folder again (new mtimes): nothing to redo; other weights: every stage
    over = ["eval.calibrate.limit=3"]
    shutil.copytree(model, tmp_path / "copy")
    shutil.rmtree(model)
    shutil.copytree(tmp_path / "copy", model)
    plan_now = lambda: run_recipe(RunConfig(recipe=str(recipe), output=str(run), overrides=over,  # noqa: E731
                                            dry_run=True))["plan"]
    assert plan_now() == {"sample": "skip", "eval/base/calibrate": "skip"}
    build_tiny(tmp_path / "model", seed=1)
    assert plan_now() == {"sample": "redo", "eval/base/calibrate": "redo"}


@pytest.mark.parametrize("text, says", [
    ("output: /tmp/elsewhere\n", "output '/tmp/elsewhere' is outside the current folder"),
    ("output: ../../elsewhere\n", "output '../../elsewhere' is outside the current folder"),
    ("sample: {input: P, output: /tmp/x.jsonl}\n", "sample.output: the runner writes each stage into RUN/sample/"),
    ("score: {claim_cache: /tmp/claims.jsonl, method: claims}\n", "score.claim_cache '/tmp/claims.jsonl' is outside"),
    ("score: {claim_cache: ../claims.jsonl, method: claims}\n", "score.claim_cache '../claims.jsonl' is outside"),
    ("eval: {tasks: [biogen], biogen: {claim_cache: /tmp/c.jsonl}}\n", "eval.biogen.claim_cache '/tmp/c.jsonl'"),
])
def test_paths_a_recipe_names_stay_in_the_run_folder(text, says, tmp_path, monkeypatch, capsys):
    """Issue 34 (security, low): a recipe file cannot make the runner write outside the current folder, name a
    stage's output, or keep a claim cache outside the run folder and the data root; one line, exit 2, nothing
    made. The same paths given on the command line are the user's and are taken."""
    monkeypatch.chdir(tmp_path)
    prompts = tmp_path / "p.jsonl"
    prompts.write_text(json.dumps({"id": "1", "question": "Q?"}) + "\n")
    recipe = tmp_path / "r.yaml"
    body = text.replace("{input: P,", f"{{input: {prompts},")
    if "sample" not in body:
        body += f"sample: {{input: {prompts}}}\n"
    recipe.write_text("model: m\n" + body)
    assert main(["run", str(recipe), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{recipe}: {says}" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.jsonl", "r.yaml"]
    if "claim_cache" in text:  # the same cache given on the command line is taken
        key = "score" if "score:" in text else "eval.biogen"
        value = text.split("claim_cache: ")[1].split(",")[0].split("}")[0]
        assert main(["run", str(recipe), "--dry-run", f"{key}.claim_cache={value}"]) == 0
    if text.startswith("output"):
        assert main(["run", str(recipe), "--dry-run", "--output", str(tmp_path / "mine")]) == 0


def test_a_bigbench_name_stays_in_the_data_root(tmp_path, monkeypatch):
    from selfalign.data.mc import bigbench_path
    from selfalign.errors import SelfAlignError

    (tmp_path / "data" / "bigbench" / "t").mkdir(parents=True)
    (tmp_path / "data" / "bigbench" / "t" / "task.json").write_text("{}")
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "task.json").write_text("{}")
    monkeypatch.setenv("SELFALIGN_DATA", str(tmp_path / "data"))
    assert bigbench_path("t") == tmp_path / "data" / "bigbench" / "t" / "task.json"
    for name in ("../../secret", "/etc", "t/../../../secret"):
        with pytest.raises(SelfAlignError, match="a task name stays inside the data root's bigbench folder"):
            bigbench_path(name)
