"""Cross-check `selfalign eval truthfulqa-mc` against EleutherAI lm-evaluation-harness on the same model.

Both score the first N questions of the paper's test split on the embedded SmolLM2-135M (CPU):
- ours: ``run_truthfulqa_mc`` through HFEngine;
- the harness: its own ``truthfulqa_mc1`` / ``truthfulqa_mc2`` task YAMLs (prompt, choices, ``process_results_mc2``),
  its own HFLM (tokenization, batching, forward pass) on the same loaded weights; only the data source is
  swapped for a local JSON file of the same questions in the HF ``truthful_qa/multiple_choice`` layout
  (the hub is not reachable here).
It asserts that the harness's requests (context, continuation) are exactly ours, prints both MC1/MC2 and the
largest per-option log-likelihood difference, and writes benchmarks/results/truthfulqa_mc_crosscheck.md.

Needs `pip install lm_eval` (not a selfalign dependency). Run: python benchmarks/truthfulqa/truthfulqa_mc_crosscheck.py [N]
"""
from __future__ import annotations

import importlib.metadata
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

OUT = Path(__file__).resolve().parents[1] / "results" / "truthfulqa_mc_crosscheck.md"
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: the shared formatter
from selfalign.report.tables import md_table, num  # noqa: E402


def harness_configs(data_file: Path) -> list[dict]:
    """The installed harness task configs (functions resolved), reading ``data_file`` instead of the hub."""
    import lm_eval
    from lm_eval.tasks._yaml_loader import load_yaml

    folder = Path(lm_eval.__file__).parent / "tasks" / "truthfulqa"
    out = []
    for name in ("truthfulqa_mc1", "truthfulqa_mc2"):
        cfg = load_yaml(folder / f"{name}.yaml")
        cfg.pop("tag", None)
        cfg.update(task=f"local_{name}", dataset_path="json", dataset_name=None,
                   dataset_kwargs={"data_files": {"validation": str(data_file)}})
        out.append(cfg)
    return out


def main(n: int = 40) -> dict:
    import lm_eval
    from lm_eval.models.huggingface import HFLM

    from selfalign.engines.hf import HFEngine
    from selfalign.evals.results import load_result
    from selfalign.evals.truthfulqa_mc import TruthfulQAMCConfig, load_questions, run_truthfulqa_mc
    from selfalign.prompts import truthfulqa_mc_pair

    engine = HFEngine.from_spec("smollm2-135m", device="cpu", batch_size=8)
    tmp = Path(tempfile.mkdtemp(prefix="tqa-mc-xcheck-"))
    t0 = time.time()
    cfg = TruthfulQAMCConfig(output=str(tmp / "ours.json"), split="test", limit=n, selfeval=False, n_boot=1000)
    ours = run_truthfulqa_mc(cfg, engine=engine)
    t_ours = time.time() - t0
    _, rows = load_result(cfg.output)
    _, qs = load_questions(None, "test", n)

    data_file = tmp / "tqa_mc.jsonl"
    with open(data_file, "w") as f:
        for q in qs:
            f.write(json.dumps({"question": q["question"], **{
                f"{k}_targets": {"choices": [o["text"] for o in q[k]], "labels": [o["label"] for o in q[k]]}
                for k in ("mc1", "mc2")}}) + "\n")
    lm = HFLM(pretrained=engine.model, tokenizer=engine.tok, batch_size=8)
    t0 = time.time()
    res = lm_eval.simple_evaluate(model=lm, tasks=harness_configs(data_file), bootstrap_iters=1000,
                                  log_samples=True)
    t_harness = time.time() - t0

    # the harness's requests are exactly ours, and so are its log-likelihoods (up to float noise)
    max_ll_diff, n_opts = 0.0, 0
    for k in ("mc1", "mc2"):
        samples = sorted(res["samples"][f"local_truthfulqa_{k}"], key=lambda s: s["doc_id"])
        assert len(samples) == len(rows)
        for s, r, q in zip(samples, rows, qs):
            args = [(a[0], a[1]) for a in s["arguments"]]
            assert args == [truthfulqa_mc_pair(q["question"], o["text"]) for o in q[k]], f"prompt differs: {q['id']}"
            lls = [float(x[0]) for x in s["filtered_resps"]]
            max_ll_diff = max(max_ll_diff, max(abs(a - b) for a, b in zip(lls, r[f"{k}_lls"])))
            n_opts += len(lls)
    h1 = res["results"]["local_truthfulqa_mc1"]["acc,none"]
    h2 = res["results"]["local_truthfulqa_mc2"]["acc,none"]
    out = {"n_questions": len(rows), "n_options_scored": n_opts, "lm_eval": importlib.metadata.version("lm_eval"),
           "ours": {"mc1": ours["mc1"], "mc2": ours["mc2"]}, "harness": {"mc1": h1, "mc2": h2},
           "abs_diff_points": {"mc1": 100 * abs(ours["mc1"] - h1), "mc2": 100 * abs(ours["mc2"] - h2)},
           "max_abs_loglikelihood_diff": max_ll_diff, "seconds": {"ours": round(t_ours, 1),
                                                                  "harness": round(t_harness, 1)}}
    print(json.dumps(out, indent=2))
    ok = all(v <= 0.5 for v in out["abs_diff_points"].values())
    write_md(out, ok, engine.info)
    return out if ok else sys.exit("cross-check FAILED: difference above 0.5 points")


def write_md(r: dict, ok: bool, info: dict) -> None:
    from selfalign.store.provenance import git_commit, versions

    v = versions()
    lines = [
        "# TruthfulQA MC1/MC2: selfalign vs lm-evaluation-harness", "",
        f"Model: embedded SmolLM2-135M-Instruct (`{info.get('model')}`), CPU, float32. "
        f"Questions: the first {r['n_questions']} of the paper's test split (splits.json), "
        f"{r['n_options_scored']} option log-likelihoods per side.", "",
        f"Harness: lm_eval {r['lm_eval']}, its installed `truthfulqa_mc1` (v2.0) and `truthfulqa_mc2` (v3.0) task "
        "YAMLs and `process_results_mc2`, its HFLM on the same loaded weights; only the data source is a local "
        "JSON file of the same questions (HF `truthful_qa/multiple_choice` layout; no hub access here).", "",
        *md_table(["metric", "selfalign", "harness", "abs. diff (points)"],
                  [[m.upper(), num(r["ours"][m], 4), num(r["harness"][m], 4), num(r["abs_diff_points"][m])]
                   for m in ("mc1", "mc2")]), "",
        f"Every harness request (context, continuation) equals ours. Largest per-option log-likelihood "
        f"difference: {r['max_abs_loglikelihood_diff']:.2e} nats (batching/padding float noise).", "",
        f"Requirement (within 0.5 points): **{'met' if ok else 'NOT met'}**. Time: ours {r['seconds']['ours']} s, "
        f"harness {r['seconds']['harness']} s (2 CPU cores shared with other jobs: not a speed comparison).", "",
        f"Versions: torch {v['torch']}, transformers {v['transformers']}, datasets {v['datasets']}; "
        f"commit {git_commit()}. Reproduce: `python benchmarks/truthfulqa/truthfulqa_mc_crosscheck.py {r['n_questions']}`.", ""]
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text("\n".join(lines))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 40)
