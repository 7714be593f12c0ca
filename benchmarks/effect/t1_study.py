"""Table 1 at laptop scale: generation alignment on knowledge QA and multiple-choice alignment, four rows each.

    python benchmarks/effect/t1_study.py [--model qwen2.5-coder-0.5b] [--skt ADAPTER] [--only kqa|mc]

Rows: base (no training), Self-Eval-P(True) (the base model judges its own answers), Self-Eval-SKT (the SK-tuned
judge of the Table 2 study: ``benchmarks/adapters/<model>-skt-wikidata``, trained on 1k qa_wikidata A/B rows), and
the oracle (gold labels: an upper bound, not self-alignment).

Knowledge QA (recipes/knowledge-qa*.yaml, one shared sample): 400 training prompts of bigbench:qa_wikidata x 4
answers at T=1, scored three ways (P(True) by the base model, by the SKT judge, gold match), ``pairs --strategy
split``, DPO on the base model (LoRA r8, lr 5e-4, 40 steps of 4 pairs, beta 0.1), greedy answers on the 604
held-out prompts (no training prompt, no demonstration): accuracy against the gold targets, abstention, length.

Multiple choice (recipes/mc-align*.yaml): the TruthfulQA MC training questions, every option scored by the judge,
the top option labelled A (true) and every other B (``mc-data --rule top``); the oracle takes the gold labels
(``sk-data --mode options``). Single-token DPO (``sk-tune``) on the base model; evaluated on the first
``MC_LIMIT`` TruthfulQA test questions: Self-Eval selection (top P(True)), MC1 and MC2. ``--mc-rows oracle-hi``
adds the oracle trained harder (``MC_TUNE_HI``: lr 1e-3, 5 epochs), for a model whose oracle did not train;
``skt-bal`` / ``ptrue-bal``: the judge's labels with each question's top option repeated (``mc-data --balance``);
a ``-hi`` suffix (``skt-bal-hi``) trains a row's rows at ``MC_TUNE_HI``; ``rand-bal-hi``: the control of random
labels (the untuned judge's scores shuffled within each question, ``permuted_scores``).

TruthfulQA generation (``--only tqa-gen``): greedy answers of the base and the v4 knowledge-QA models on the first
``TQA_GEN_LIMIT`` test questions, %True / %Info by the offline reference judge: whether knowledge-QA alignment
carries over to (or harms) TruthfulQA answers; nothing was trained on TruthfulQA for these rows.

Steps run through the resumable ledger of ``common.py`` (rerun to continue); runs go to runs/effect/t1x/.
``python benchmarks/effect/t1_summary.py`` writes the table.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, RUN, SMOKE, selfalign, short, step  # noqa: E402

T1X = RUN / "t1x"
DTYPE = "float32"  # one thread on this CPU: float32 faster than bfloat16 (measured 2026-12-01)
KQA_SAMPLE = ["--input", "bigbench:qa_wikidata", "--split", "train", "--limit", 400, "--n", 4, "--temperature", 1.0,
              "--top-p", 0.9, "--top-k", 10, "--max-new-tokens", 12, "--chat-template", "off", "--stop", "\n",
              "--seed", 0]
# 40 steps of 4 pairs (160 of ~800 pairs): a step took 33 s here (Qwen, few-shot prompts of ~200 tokens, a loaded
# 2-core CPU), so the recipes' 200 steps (~2 h per run) did not fit a session
ALIGN = ["--beta", 0.1, "--learning-rate", 5e-4, "--max-steps", 40, "--batch-size", 4, "--seed", 0]
# recipes/mc-align.yaml's settings (3 epochs, not 5: CPU), with LoRA on the top 8 layers only (cached trunk: 4x faster on this CPU,
# benchmarks/results/sktune_speed.md), as the SK-tuned judge was trained
MC_TUNE = ["--beta", 0.1, "--learning-rate", 1e-4, "--epochs", 3, "--batch-size", 8, "--batch-by", "question",
           "--top-layers", 8, "--seed", 0]
# the oracle-hi row: the oracle's gold rows, trained harder (SmolLM2's oracle at MC_TUNE ended at loss 0.692, reward
# margin +0.003: it did not train, so its row bounded nothing; Qwen's oracle at MC_TUNE gained +16 on 100 questions)
MC_TUNE_HI = {"--learning-rate": 1e-3, "--epochs": 5}
MC_LIMIT = 200  # of the 730 for the base model (CPU: 20 min here, the machine loaded)
MC_TUNED_LIMIT = 100  # the tuned models: the first 100 of those (paired differences on these 100)
MC_JUDGES = ("skt", "ptrue", "oracle")  # in this order (the most informative row first)
# on request only (--mc-rows ...), after the rows they reuse exist: oracle-hi (the oracle's rows at MC_TUNE_HI);
# skt-bal / ptrue-bal (the judge's scores of the skt / ptrue row, labelled by the same top rule, ``mc-data
# --balance``: the top option repeated once per other option). With the top rule 1 row in ~8.7 is A, and both
# Qwen rows ended at reward accuracy 0.875 = the share of B rows: the trainer learned the prior, not the judge
# rand-bal(-hi): the control of random labels: ptrue's scores shuffled within each question (``permuted_scores``)
MC_EXTRA = ("oracle-hi", "skt-bal", "ptrue-bal", "skt-bal-hi", "ptrue-bal-hi", "rand-bal-hi")  # "-hi": at MC_TUNE_HI
JUDGES = ("ptrue", "skt", "oracle")
KQA_LIMIT = []  # every held-out prompt
# v2 (--kqa v2): the v1 diagnostic showed 73 % of the SKT pairs had both answers wrong and the judge's top sample
# right on 35.5 % of prompts (greedy: 42 %), so: samples at T=0.7 (closer to greedy), 600 training prompts, pairs
# whose judge scores differ by >= 0.4 (v1 data: right 0.17 -> 0.24 of the pairs, both wrong 0.73 -> 0.67), and
# twice the DPO steps. The base row is v1's (the same greedy evaluation).
KQA2 = {"sample": {"--limit": 600, "--temperature": 0.7}, "pairs": ["--margin", 0.4],
        "align": {"--max-steps": 80}, "judges": ("skt", "oracle", "ptrue")}
if SMOKE:  # EFFECT_SMOKE=1: every step on a handful of rows (runs/effect-smoke), to check the wiring
    KQA_SAMPLE[KQA_SAMPLE.index("--limit") + 1], KQA_SAMPLE[KQA_SAMPLE.index("--n") + 1] = 4, 2
    ALIGN[ALIGN.index("--max-steps") + 1], MC_TUNE[MC_TUNE.index("--epochs") + 1] = 1, 1
    MC_LIMIT, KQA_LIMIT = 2, ["--limit", 3]


def _set(argv: list, values: dict) -> list:
    out = list(argv)
    for k, v in values.items():
        out[out.index(k) + 1] = v
    return out


KQA_DIRS = {"v1": "kqa", "v2": "kqa2", "v3": "kqa3", "v4": "kqa4"}
# v4 = v3 with gentler DPO (lr 1e-4, 40 steps): v3's oracle at lr 5e-4 x 80 steps collapsed (accuracy 0.192)
# the base model's P(True) barely varies within a prompt (median gap 0.045, max 0.36 on v2's samples): no pair
# passes margin 0.4, so its v4 row keeps the same share of its split pairs as the SKT judge's 0.4 does (half: 0.06)
KQA4_MARGIN = {"ptrue": 0.06}
KQA4_ALIGN = {"--learning-rate": 1e-4, "--max-steps": 40}  # v3 = v2's settings and samples, pairs with the answers
# continuing their prompt (" Egypt", not "Egypt": selfalign.stages.pairs.continuation); v1 and v2 trained "isEgypt"


def kqa(model: str, skt: str, root: Path, variant: str = "v1", judges=None) -> None:
    v2 = variant in ("v2", "v3", "v4")
    d = root / KQA_DIRS[variant]
    tag = f"t1x/{short(model)}/{KQA_DIRS[variant]}"
    if variant in ("v3", "v4"):  # v2's samples and judge scores, unchanged (the pairs stage changed)
        import shutil

        d.mkdir(parents=True, exist_ok=True)
        for f in (root / "kqa2").glob("s*.jsonl*"):
            if f.name.startswith(("samples", "scores")) and not (d / f.name).exists():
                shutil.copy2(f, d / f.name)
    sample_args = _set(KQA_SAMPLE, KQA2["sample"]) if v2 and not SMOKE else KQA_SAMPLE
    align_args = _set(ALIGN, KQA2["align"]) if v2 and not SMOKE else ALIGN
    if variant == "v4" and not SMOKE:
        align_args = _set(align_args, KQA4_ALIGN)
    samples = d / "samples.jsonl"

    def evaluate(label: str, spec: str, deps: list) -> None:
        out = d / f"eval-{label}.json"
        step(f"{tag}/eval-{label}",
             selfalign("eval", "knowledge-qa", "--model", spec, "--dtype", DTYPE, "--split", "heldout",
                       "--no-selfeval", *KQA_LIMIT, "--n-boot", 1000, "--output", out), deps=deps, outputs=[out])

    if not v2:  # v2 compares with v1's base evaluation (the same greedy answers)
        evaluate("base", model, [])
    step(f"{tag}/sample",
         selfalign("sample", "--model", model, "--dtype", DTYPE, *sample_args, "--output", samples), outputs=[samples])
    for judge in [j for j in (KQA2["judges"] if v2 else JUDGES) if not judges or j in judges]:
        scores, pairs, aligned = d / f"scores-{judge}.jsonl", d / f"pairs-{judge}.jsonl", d / f"aligned-{judge}"
        how = {"ptrue": ["--model", model], "skt": ["--model", skt], "oracle": ["--method", "gold-match"]}[judge]
        step(f"{tag}/score-{judge}",
             selfalign("score", *how, "--dtype", DTYPE, "--input", samples, "--output", scores),
             deps=[samples], outputs=[scores])
        step(f"{tag}/pairs-{judge}",
             selfalign("pairs", "--input", scores, "--strategy", "split",
                       *(["--margin", KQA4_MARGIN.get(judge, 0.4)] if variant == "v4" else KQA2["pairs"] if v2 else []),
                       "--output", pairs),
             deps=[scores], outputs=[pairs])
        step(f"{tag}/align-{judge}",
             selfalign("align", "--model", model, "--dtype", DTYPE, "--pairs", pairs, *align_args, "--output", aligned),
             deps=[pairs], outputs=[aligned])
        evaluate(judge, str(aligned), [aligned / "train_summary.json"])


CURVE_STEPS = (25, 50)  # v2: TRL's checkpoints (save_steps 25), copied aside while the run went (save_total_limit 2)


def curve(model: str, root: Path, judges=None) -> None:
    """v2 knowledge QA: held-out accuracy after 25 and 50 of the 80 DPO steps (a learning curve in steps), from the
    checkpoints in ``kqa2/ckpt-copies/<judge>-checkpoint-<n>`` (the final adapter is the 80-step point)."""
    d = root / "kqa2"
    for judge in [j for j in ("skt", "oracle") if not judges or j in judges]:
        for n in CURVE_STEPS:
            ckpt, out = d / "ckpt-copies" / f"{judge}-checkpoint-{n}", d / f"eval-{judge}-step{n}.json"
            if not (ckpt / "adapter_model.safetensors").exists():
                print(f"[miss] {ckpt}: no checkpoint copy", flush=True)
                continue
            step(f"t1x/{short(model)}/kqa2/eval-{judge}-step{n}",
                 selfalign("eval", "knowledge-qa", "--model", model, "--adapter", ckpt, "--dtype", DTYPE, "--split",
                           "heldout", "--no-selfeval", *KQA_LIMIT, "--n-boot", 1000, "--output", out),
                 deps=[ckpt / "adapter_model.safetensors"], outputs=[out])


TQA_GEN_LIMIT = 100  # of the 730 TruthfulQA test questions (CPU), the same for every row
TQA_ROWS = {"base": None, "ptrue": "kqa4/aligned-ptrue", "skt": "kqa4/aligned-skt", "oracle": "kqa4/aligned-oracle"}


def tqa_gen(model: str, root: Path) -> None:
    """The TruthfulQA generation column: greedy answers of the base and the v4 knowledge-QA models (the paper's
    few-shot prompt) on the first TQA_GEN_LIMIT test questions, judged by the offline reference judge
    (balanced accuracy 0.79 on unseen questions, benchmarks/results/judges.md): a transfer check, not trained on."""
    for label, rel in TQA_ROWS.items():
        spec = model if rel is None else str(root / rel)
        if rel is not None and not (root / rel / "train_summary.json").exists():
            print(f"[miss] {spec}: not trained yet", flush=True)
            continue
        out = root / "tqa-gen" / f"eval-{label}.json"
        step(f"t1x/{short(model)}/tqa-gen/eval-{label}",
             selfalign("eval", "truthfulqa-gen", "--model", spec, "--dtype", DTYPE, "--split", "test", "--limit",
                       3 if SMOKE else TQA_GEN_LIMIT, "--judge", "offline-ref", "--n-boot", 1000, "--output", out),
             deps=[] if rel is None else [root / rel / "train_summary.json"], outputs=[out])


# mc v2: the SKT row labelled by the 3k-row judge of the Table 2 learning curve (Table 2 (c): its own selection on the
# first 300 test questions 0.333 vs the base's 0.263; the 1k judge of v1: 0.298 AUROC); rows, trainer and evaluation
# as v1, the base and the other rows are v1's
MC2_JUDGE = ROOT / "benchmarks" / "adapters" / "qwen2.5-coder-0.5b-skt-wikidata-3k"
# v3: every row on all 730 test questions (v1/v2: 200 base, 100 tuned), the SKT row labelled by each model's best
# SK-tuned judge of the Table 2 study (Qwen: 3k rows; SmolLM2: 10k rows, the first judge of ours above chance on
# TruthfulQA MC, AUROC 0.558); one row per process: --mc v3 --mc-rows base skt, then --mc-rows oracle ptrue
MC3_JUDGE = {"qwen2.5-coder-0.5b": MC2_JUDGE,
             "smollm2-135m": ROOT / "benchmarks" / "adapters" / "smollm2-135m-skt-wikidata-10k"}
MC_DIRS = {"v1": "mc", "v2": "mc2", "v3": "mc3"}


def mc(model: str, skt: str, root: Path, variant: str = "v1", rows_only=None) -> None:
    d = root / MC_DIRS[variant]
    if variant == "v2":
        skt = str(MC2_JUDGE)
    limit = (None, None) if variant == "v3" else (MC_LIMIT, MC_TUNED_LIMIT)  # None: every test question

    def evaluate(label: str, spec: str, deps: list) -> None:
        out = d / f"eval-{label}.json"
        step(f"t1x/{short(model)}/{d.name}/eval-{label}",
             selfalign("eval", "truthfulqa-mc", "--model", spec, "--dtype", DTYPE, "--split", "test",
                       *_limit(limit[0] if label == "base" else limit[1]), "--selfeval", "--n-boot", 1000,
                       "--output", out), deps=deps, outputs=[out])

    wanted = rows_only or ("base", *MC_JUDGES)
    if variant != "v2" and "base" in wanted:
        evaluate("base", model, [])
    for judge in [j for j in (*MC_JUDGES, *MC_EXTRA) if j in wanted] if variant != "v2" else ("skt",):
        core = judge.removesuffix("-hi")  # "-hi": core's rows, trained at MC_TUNE_HI
        own = core.endswith("-bal")  # its own rows, from the scores of the row it is named after
        rows, tuned = d / f"rows-{core}.jsonl", d / f"tuned-{judge}"
        deps = []
        if own:
            base_judge = core.split("-")[0]
            scorer = "ptrue" if base_judge == "rand" else base_judge  # rand: the untuned judge's scores, permuted
            scores = d / f"rows-{base_judge}.scores.jsonl"
            # the judge's scores come from its own row's rows step: run it first (skipped once done)
            step(f"t1x/{short(model)}/{d.name}/rows-{scorer}", _judge_rows(model if scorer == "ptrue" else skt,
                 d / f"rows-{scorer}.jsonl"), outputs=[d / f"rows-{scorer}.jsonl"])
            if base_judge == "rand":
                permuted_scores(d / "rows-ptrue.scores.jsonl", scores)
            cmd, deps = selfalign("mc-data", "--data", "truthfulqa-mc", "--split", "train", "--rule", "top",
                                  "--balance", "--scores", scores, *(["--limit", 3] if SMOKE else []),
                                  "--output", rows), [scores]
        elif core == "oracle":  # gold labels: every true option A, every false option B
            cmd = selfalign("sk-data", "--sources", "truthfulqa-mc", "--mode", "options", "--heldout-fraction", 0,
                            "--output", rows)
        else:
            cmd = _judge_rows(model if judge == "ptrue" else skt, rows)
        step(f"t1x/{short(model)}/{d.name}/{rows.stem}", cmd, deps=deps, outputs=[rows])
        tune = _set(MC_TUNE, MC_TUNE_HI) if judge.endswith("-hi") and not SMOKE else MC_TUNE
        step(f"t1x/{short(model)}/{d.name}/tune-{judge}",
             selfalign("sk-tune", "--model", model, "--dtype", DTYPE, "--data", rows, *tune, "--output", tuned),
             deps=[rows], outputs=[tuned])
        evaluate(judge, str(tuned), [tuned / "train_summary.json"])


def permuted_scores(src: Path, dst: Path, seed: str = "rand") -> None:
    """The control of random self-labels: each question's P(True) values shuffled among its options (a fixed
    shuffle of ``seed`` and the question id), so the top option is a random one and everything else (the number of
    rows, their balance, the prompt) is as the judge's row. Rewritten from ``src`` each time (the same bytes)."""
    import json
    import random

    from selfalign.stages.mc_data import read_scores

    by_q: dict = {}
    for (qid, k), p in sorted(read_scores(src).items()):
        by_q.setdefault(qid, []).append((k, p))
    out = []
    for qid, opts in by_q.items():
        p = [v for _, v in opts]
        random.Random(f"{seed}/{qid}").shuffle(p)
        out += [{"id": qid, "option_idx": k, "p_true": v, "scorer": f"permuted({src.name})"}
                for (k, _), v in zip(opts, p)]
    text = "".join(json.dumps(r) + "\n" for r in out)
    if not dst.exists() or dst.read_text(encoding="utf-8") != text:
        dst.write_text(text, encoding="utf-8")


def _judge_rows(judge: str, rows: Path) -> list:
    """``mc-data``: the judge scores every TruthfulQA MC training option, top option A (``rows.scores.jsonl`` keeps
    the scores)."""
    return selfalign("mc-data", "--model", judge, "--dtype", DTYPE, "--data", "truthfulqa-mc", "--split", "train",
                     "--rule", "top", *(["--limit", 3] if SMOKE else []), "--output", rows)


def _limit(n) -> list:
    """``--limit N``, or nothing for every question; EFFECT_SMOKE=1 keeps its handful."""
    return ["--limit", MC_LIMIT] if SMOKE else [] if n is None else ["--limit", n]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--skt", help="the SK-tuned judge (default: benchmarks/adapters/<model>-skt-wikidata)")
    ap.add_argument("--only", choices=("kqa", "mc", "tqa-gen"))
    ap.add_argument("--kqa", choices=tuple(KQA_DIRS), default="v1", help="the knowledge-QA settings (see KQA2)")
    ap.add_argument("--mc", choices=tuple(MC_DIRS), default="v1",
                    help="multiple choice: v2 = the SKT row with the 3k judge; v3 = every row on all 730 questions")
    ap.add_argument("--mc-rows", nargs="+", choices=("base", *MC_JUDGES, *MC_EXTRA),
                    help="multiple choice: these rows only (oracle-hi: the oracle's rows at MC_TUNE_HI)")
    ap.add_argument("--curve", action="store_true", help="v2 knowledge QA: evaluate the 25- and 50-step checkpoints")
    ap.add_argument("--judges", nargs="+", choices=JUDGES, help="knowledge QA: these rows only (e.g. one per process, "
                    "started after the shared sample step has finished)")
    args = ap.parse_args(argv)
    if args.mc_rows and args.mc == "v2":
        ap.error("--mc-rows: v2 has the SKT row only")
    skt = args.skt or str(ROOT / "benchmarks" / "adapters" / f"{args.model}-skt-wikidata")
    if args.mc == "v3" and not args.skt:  # an explicit --skt wins over the model's best judge
        skt = str(MC3_JUDGE.get(args.model, skt))
    root = T1X / short(args.model)
    if args.curve:
        return curve(args.model, root, args.judges)
    if args.only in (None, "kqa"):
        kqa(args.model, skt, root, args.kqa, args.judges)
    if args.only in (None, "mc"):
        mc(args.model, skt, root, args.mc, args.mc_rows)
    if args.only in (None, "tqa-gen"):
        tqa_gen(args.model, root)


if __name__ == "__main__":
    main()
