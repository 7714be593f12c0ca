"""`pip install selfalign` as a new user gets it: build the wheel, install it into a fresh virtual environment,
and from an empty directory run a shipped recipe (README, "Install from PyPI").

Offline and fast: the wheel is installed with --no-deps, and the new environment sees this environment's
packages (torch, transformers, ...) through a .pth line, not this checkout (PYTHONPATH is dropped)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_MC = REPO.parent / "shared" / "data" / "truthfulqa" / "mc_task.json"
SHARED_WD = REPO.parent / "shared" / "data" / "bigbench" / "qa_wikidata" / "task.json"


def _run(cmd, cwd, env, ok=True):
    r = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if ok:
        assert r.returncode == 0, f"{cmd}\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    return r


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(the new environment's bin folder, a clean environment for its commands)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"  # a copy, so that the build leaves nothing in the checkout
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "selfalign", src / "selfalign", ignore=shutil.ignore_patterns("__pycache__"))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INDEX="1", HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    dist = tmp / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", dist, src], tmp, env)
    wheel = next(dist.glob("selfalign-*.whl"))
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], tmp, env)
    py = venv / "bin" / "python"
    site = _run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp, env).stdout.strip()
    Path(site, "_deps_from_project_venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([sys.executable, "-m", "pip", "--python", py, "install", "--no-deps", "-q", wheel], tmp, env)
    return venv / "bin", env, tmp


def test_wheel_ships_recipes_configs_and_the_split_file(installed):
    import zipfile

    bin_, env, tmp = installed
    names = zipfile.ZipFile(next((tmp / "dist").glob("*.whl"))).namelist()
    for want in ("selfalign/recipes/demo.yaml", "selfalign/recipes/paper-truthfulqa-llama2-7b.yaml",
                 "selfalign/configs/accelerate/zero3.yaml", "selfalign/configs/accelerate/fsdp.yaml",
                 "selfalign/data/truthfulqa_splits.json", "selfalign/data/TRUTHFULQA_SPLITS.md",
                 "selfalign/data/builtin_questions.jsonl",
                 "selfalign/assets/adapters/smollm2-135m-skt/adapter_model.safetensors",
                 "selfalign/assets/adapters/smollm2-135m-skt/adapter_config.json",
                 "selfalign/assets/adapters/smollm2-135m-skt/selfalign_base.json",
                 "selfalign/data/bigbench/qa_wikidata.task.json.gz", "selfalign/data/bigbench/README.md"):
        assert want in names
    empty = tmp / "empty1"
    empty.mkdir()
    where = _run([bin_ / "python", "-c", "import selfalign; print(selfalign.__file__)"], empty, env).stdout
    assert str(tmp / "venv") in where  # the installed copy, not this checkout
    path = _run([bin_ / "python", "-m", "selfalign.resources", "accelerate/zero3"], empty, env).stdout.strip()
    assert path.endswith("selfalign/configs/accelerate/zero3.yaml") and Path(path).is_file()


def test_installed_selfalign_runs_a_shipped_recipe_from_an_empty_directory(installed, tiny_model_dir):
    """The PyPI demo: no $SELFALIGN_DATA, no shared/ in any folder above, offline; the data it reads ship in the
    wheel (BIG-bench qa_wikidata)."""
    bin_, env, tmp = installed
    work = tmp / "empty2"
    work.mkdir()
    assert not any((p / "shared").exists() or (p.parent / "shared").exists() for p in [work, *work.parents])
    env = {k: v for k, v in env.items() if k != "SELFALIGN_DATA"}
    env["SELFALIGN_CACHE"] = str(tmp / "cache")
    r = _run([bin_ / "selfalign", "run", "demo", "--dry-run", f"model={tiny_model_dir}"], work, env)
    assert "eval/aligned/knowledge-qa" in r.stdout and "  data: no data root" in r.stdout
    # the README's pip-install quick start, on a tiny model: the demo recipe with its sizes overridden
    _run([bin_ / "selfalign", "run", "demo", f"model={tiny_model_dir}", "device=cpu", "sample.limit=3", "sample.n=2",
          "sample.max_new_tokens=8", "align.max_steps=1", "align.batch_size=2", "eval.knowledge-qa.limit=2",
          "eval.knowledge-qa.n_boot=10"], work, env)
    run = work / "runs" / "demo"
    assert (run / "summary.md").exists() and (run / "align" / "model" / "adapter_config.json").exists()
    res = json.loads((run / "eval" / "aligned" / "knowledge-qa.json").read_text())
    assert res["split"] == "heldout" and res["n_prompts"] == 2
    rows = [json.loads(ln) for ln in (run / "eval" / "aligned" / "knowledge-qa.rows.jsonl").read_text().splitlines()]
    trained = {json.loads(ln)["id"] for ln in (run / "sample" / "samples.jsonl").read_text().splitlines()}
    shipped = tmp / "cache" / "data" / "bigbench" / "qa_wikidata" / "task.json"  # unpacked from the wheel
    task_inputs = {ex["input"] for ex in json.loads(shipped.read_text())["examples"]}
    if SHARED_WD.exists():
        assert shipped.read_bytes() == SHARED_WD.read_bytes()
    assert len(rows) == 2 and not {x["id"] for x in rows} & trained  # held-out prompts were never sampled from
    assert all(x["question"] in task_inputs for x in rows)
    card = (run / "align" / "model" / "README.md").read_text()  # the aligned model's card has its results
    acc = res["metrics"]["accuracy"]
    assert f"| knowledge-qa [heldout] | accuracy | {acc['value']:.3f} | [{acc['ci_low']:.3f}, {acc['ci_high']:.3f}] | 2 |" in card
    model = run / "align" / "model"  # the local base relative to the adapter folder, never absolute
    assert json.loads((model / "selfalign_base.json").read_text()) == {
        "base_model": os.path.relpath(Path(tiny_model_dir).resolve(), model.resolve()), "relative": True}


def test_installed_selfalign_offline_without_data_says_what_to_place_where(installed, tiny_model_dir):
    bin_, env, tmp = installed
    work = tmp / "empty3"
    work.mkdir()
    env = {**env, "SELFALIGN_DATA": str(tmp / "nothing-here"), "SELFALIGN_CACHE": str(tmp / "cache3")}
    r = _run([bin_ / "selfalign", "eval", "truthfulqa-mc", "--model", tiny_model_dir, "--split", "test",
              "--output", "mc.json"], work, env, ok=False)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert "mc_task.json" in lines[0] and "$SELFALIGN_DATA/truthfulqa/mc_task.json" in lines[0]
    assert "Traceback" not in r.stderr


def test_installed_dry_run_checks_every_input(installed, tiny_model_dir):
    """`run --dry-run` refuses, in one line naming the file and the folder, an input that is not there."""
    bin_, env, tmp = installed
    work = tmp / "empty4"
    work.mkdir()
    env = {k: v for k, v in env.items() if k != "SELFALIGN_DATA"}
    env["SELFALIGN_CACHE"] = str(tmp / "cache4")
    for override, want in ((["sample.input=bigbench:no_such_task"],
                            "bigbench/no_such_task/task.json: no data root with BIG-bench tasks: place the task's "
                            "task.json (github.com/google/BIG-bench, bigbench/benchmark_tasks/no_such_task/task.json) "
                            "in $SELFALIGN_DATA/bigbench/no_such_task/"),
                           (["model=./no-such-model"], "./no-such-model: no such model folder or file"),
                           (["sample.input=prompts.jsonl"], "prompts.jsonl: no such file")):
        r = _run([bin_ / "selfalign", "run", "demo", "--dry-run", f"model={tiny_model_dir}", *override], work, env,
                 ok=False)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1 and want in lines[0], r.stderr
    assert not (tmp / "cache4").exists()  # checking unpacked and converted nothing
