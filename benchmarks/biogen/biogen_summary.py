"""BioGEN on the embedded model, from a `selfalign run recipes/biogen-demo.yaml` run directory.

    selfalign run recipes/biogen-demo.yaml && python benchmarks/biogen/biogen_summary.py [RUN_DIR]
Writes benchmarks/results/biogen_smollm2.{md,json}: the run's before/after table (summary.md), FActScore's
aggregate fields per model, what each stage did (samples, claims per bio, claims/s, pairs, DPO loss) and its wall time.
"""
from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

from selfalign.store.io import read_jsonl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: the shared formatter
from selfalign.report.tables import md_table, num  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def stage(run: Path, rel: str) -> dict:
    p = run / rel
    return json.loads(p.read_text()) if p.exists() else {}


def main(run_dir: str = "runs/biogen-demo") -> None:
    run = Path(run_dir)
    scores = read_jsonl(run / "score" / "scores.jsonl")
    sample, score, pairs, align = (stage(run, f"{s}/stage.json") for s in ("sample", "score", "pairs", "align"))
    n_claims = [r.get("n_claims", len(r.get("claims") or [])) for r in scores]
    sc = [r["score"] for r in scores if r.get("score") is not None]
    claims_s = sum(n_claims) / score["seconds"] if score.get("seconds") else None
    evals = {}
    for p in sorted((run / "eval").glob("*/biogen.json")):
        d = json.loads(p.read_text())
        evals[p.parent.name] = {"factscore": d.get("factscore"), "score_method": d.get("score_method"),
                                "metrics": d.get("metrics"),
                                "seconds": stage(run, f"eval/{p.parent.name}/biogen.stage.json").get("seconds")}
    train = align.get("result", {})
    rc = json.loads((run / "recipe.json").read_text())["recipe"]
    rs, rb = rc["sample"], rc["eval"]["biogen"]
    lines = ["# BioGEN on the embedded model (SmolLM2-135M-Instruct)", "",
             f"Written by `python benchmarks/biogen/biogen_summary.py` from `selfalign run recipes/biogen-demo.yaml` "
             f"(run directory `{run}`). One torch thread; the other core was busy with the effect benchmark.", "",
             f"Setting: bios of the first {rs['limit']} BioGEN {rs['split']} people, {rs['n']} samples each "
             f"(T={rs['temperature']}, top-p {rs['top_p']}, top-k {rs['top_k']}, <= {rs['max_new_tokens']} tokens); "
             "claim-level Self-Eval (rule-based atomic claims, one templated question per claim, mean P(True)); "
             f"pairs by `{rc['pairs']['strategy']}` (a prompt's better-scored half vs the rest); "
             f"{rc['align']['max_steps']} LoRA-DPO steps; evaluation on the first {rb['limit']} BioGEN "
             f"{rb['split']} people, greedy bios. No Wikipedia exists offline, so facts are scored by "
             f"self-consistency (the verifier `{rb.get('verifier')}` re-answers each fact's question "
             f"{rb['consistency_k']} times; agreement = supported), the same verifier for both models. This "
             "measures agreement with what the model itself says, not truth: with "
             "FActScore's enwiki-20230401.db add `knowledge:` under eval.biogen for FActScore numbers.", "",
             "## Before / after (the run's summary.md)", ""]
    lines += [x for x in (run / "summary.md").read_text().splitlines()[2:]] if (run / "summary.md").exists() else []
    table = []
    for lab, e in evals.items():
        fs = e["factscore"] or {}
        g = lambda k, d=3: num(fs.get(k), d) if fs.get(k) is None or isinstance(fs[k], float) else str(fs[k])  # noqa: E731
        table.append([lab, e["score_method"], g("score"), g("init_score"), g("respond_ratio"),
                      g("num_facts_per_response", 1), g("n_correct"), g("n_incorrect")])
    lines += ["", "## FActScore fields", "", *md_table(["model", "facts scored by", "score (γ=10)", "init_score",
                                                        "respond ratio", "facts / response", "#correct", "#incorrect"],
                                                       table)]
    rows = {lab: {r["id"]: r for r in read_jsonl(run / "eval" / lab / "biogen.rows.jsonl")} for lab in evals}
    if {"base", "aligned"} <= set(rows):
        same = sum(rows["aligned"][i]["response"] == r["response"] for i, r in rows["base"].items())
        lines += ["", f"{same} of {len(rows['base'])} greedy bios are identical for base and aligned model (and, "
                      "with one verifier and per-question seeds, score identically): every difference comes from "
                      "the others."]
    lines += ["", "## Stages", "",
              f"- sample: {sample.get('result', {}).get('new_samples')} bios "
              f"({sample.get('result', {}).get('tokens')} tokens, {sample.get('seconds')} s).",
              f"- score (claim-level Self-Eval, rules decomposition, one templated question per claim, mean P(True)): "
              f"{len(scores)} bios, {sum(n_claims)} claims ({statistics.mean(n_claims):.1f} per bio), "
              f"{score.get('seconds')} s = {claims_s:.2f} claims/s; bio scores mean {statistics.mean(sc):.3f}, "
              f"sd {statistics.pstdev(sc):.3f}, range {min(sc):.3f}-{max(sc):.3f}." if sc else "- score: no rows",
              f"- pairs: {pairs.get('result', {}).get('pairs')} preference pairs ({pairs.get('seconds')} s).",
              f"- align: {train.get('steps')} DPO steps ({align.get('seconds')} s); "
              f"final {json.dumps({k: round(v, 4) for k, v in (train.get('final') or {}).items() if isinstance(v, float)})}.",
              *(f"- eval {lab}: {e['seconds']} s." for lab, e in evals.items())]
    md = "\n".join(lines) + "\n"
    out = ROOT / "benchmarks/results/biogen_smollm2.md"
    out.write_text(md)
    out.with_suffix(".json").write_text(json.dumps(
        {"evals": evals, "claims": {"total": sum(n_claims), "per_bio": statistics.mean(n_claims),
                                    "claims_per_s": claims_s}, "stages": {"sample": sample, "score": score,
                                                                          "pairs": pairs, "align": align}},
        indent=1, default=str))
    print(md)


if __name__ == "__main__":
    from selfalign.errors import SelfAlignError

    try:
        main(*sys.argv[1:])
    except (SelfAlignError, FileNotFoundError) as e:
        raise SystemExit(f"error: {e}")
