"""Self vs supervision on knowledge QA (issue 36): the same samples, pair rule and DPO settings for every judge, so
that a gain of Self-Eval-SKT can be read beside the controls that could explain it. SmolLM2-135M, one CPU thread.

    python benchmarks/effect/ctl_study.py                  # the whole study; rerun the same command to resume
    python benchmarks/effect/ctl_study.py --only summary   # benchmarks/results/ctl_smollm2.{md,json} + records
    EFFECT_SMOKE=1 python benchmarks/effect/ctl_study.py   # tiny sizes, into runs/ctl-smoke/

Split by *subject* (``--split-by subject``, data/subjects.py): no fact about a held-out subject, under any
relation, in SK data, DPO prompts or demonstrations; knowledge-qa's held-out subjects (6 %, seed 0) lie inside
sk-data's (20 %, split seed 0).
Data:
  DPO prompts: the first 400 training prompts of qa_wikidata (hash order), 4 samples each, the demo's sampling
    (T 1.0, top-p 0.9, top-k 10, <= 12 tokens, cut at the line's end, seed 0).
  Evaluation: every held-out prompt (greedy, strict match headline, lenient beside), per-row records.
  In-task SK data: ``sk-data --mode options --split-by subject`` on qa_wikidata (gold vs same-relation
    distractor), 3,000 rows of whole questions (fixed shuffle); validation: 150 questions of its held-out file that
    mention no knowledge-qa held-out subject (so nothing reported steers the checkpoint).
  Own answers (the judge where DPO uses it): 300 held-out prompts x 5 samples, labelled by strict match; the
    answer-frequency shortcut beside (xtask_study.build_own).
Judges (each scores the same samples; pairs ``--strategy split``; DPO: the demo's settings, fixed before this study:
LoRA, beta 0.1, lr 5e-4, 60 steps of 4 pairs; seeds 0 and 1):
  ptrue  the base model's own P(True)          skt     the SK-tuned in-task judge (this study's, subject split)
  oracle the gold targets (an upper bound, not self-alignment)
Controls (phase 2, after the rows above; the same samples, pair rule, DPO settings and seeds):
  prior  no model: the answer's share among the gold answers of the relation's training questions (subject split,
         the sample's own question left out; ``score --method prior --prior-split-by subject``)
  random no model, no labels: seeded uniform scores per (prompt, sample), i.e. a random order of each prompt's
         answers (``score --method random --seed 0``; why not a shuffle of another judge's scores:
         selfalign/selfeval/random_judge.py)
  sft-gold  no judge: ``sft --from-sk`` on the gold facts of the in-task judge's SK training rows (data/train.jsonl:
         each gold answer after its knowledge-QA prompt), LoRA as align's, the DPO row's step budget: lr 5e-4, 60
         optimizer steps of 4 rows (240 of its ~1,500 facts, a different draw per seed), seeds 0 and 1
Per judge the summary gives its pairs' agreement with gold (chosen gold-correct and rejected not, among pairs that
differ in gold correctness) and the share of pairs equal in gold correctness (benchmarks/effect/ctl_summary.py).
A judge whose scores tie on every candidate pair (the oracle on a tiny smoke sample) makes no pairs: its row is
recorded as "no pairs" (``kqa/pairs-<judge>.none.txt``) and the study goes on.
Settings were not chosen on the held-out set reported here: the DPO settings are recipes/demo.yaml's.
"""
from __future__ import annotations

import argparse
import os
import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
import common  # noqa: E402
import xtask_study as xt  # noqa: E402  (the process hygiene, heartbeat and own-answer rows, shared)
from common import ROOT, SMOKE, selfalign  # noqa: E402
from skt_study import DTYPE, SK  # noqa: E402

# CTL_ROOT: the study folder of another checkout (a second driver, ``--part controls``, runs from a checkout of its
# own beside the first one's and writes the same folder, with the same step commands)
CT = Path(os.environ["CTL_ROOT"]) if os.environ.get("CTL_ROOT") else ROOT / ("runs/ctl-smoke" if SMOKE else "runs/ctl")
xt.XT = CT  # xtask_study's driver claim and heartbeat write into this study's folder
common.RUN, common.STEPS, common.LOGS = CT, CT / "steps.jsonl", CT / "logs"
MODEL = "smollm2-135m"
DATA, KQA, EVAL = CT / "data", CT / "kqa", CT / "eval"
SAMPLING = ["--temperature", 1.0, "--top-p", 0.9, "--top-k", 10, "--max-new-tokens", 12, "--chat-template", "off",
            "--stop", "\n", "--batch-size", 16]
ALIGN = ["--beta", 0.1, "--learning-rate", 5e-4, "--max-steps", 60, "--batch-size", 4]
if SMOKE:
    N_PROMPTS, N_SK_ROWS, N_VALID, N_OWN, N_EVAL, SEEDS, N_BOOT = 6, 40, 6, 4, ["--limit", 5], (0,), 50
    ALIGN[ALIGN.index("--max-steps") + 1] = 2
    SKC = {**SK, "epochs": 1}
else:
    N_PROMPTS, N_SK_ROWS, N_VALID, N_OWN, N_EVAL, SEEDS, N_BOOT = 400, 3000, 150, 300, [], (0, 1), 1000
    SKC = SK
JUDGES = {"ptrue": lambda: ["--model", MODEL], "skt": lambda: ["--model", str(CT / "skt" / "model")],
          "oracle": lambda: ["--method", "gold-match"]}
# phase 2: the controls, through the same dpo_row (their steps come after every step above)
CONTROLS = {"prior": lambda: ["--method", "prior", "--prior-split-by", "subject"],
            "random": lambda: ["--method", "random", "--seed", 0]}
# sft-gold: the DPO row's optimizer budget (steps, examples per step, learning rate; LoRA as align's defaults)
SFT = [x for k in ("--learning-rate", "--max-steps", "--batch-size") for x in (k, ALIGN[ALIGN.index(k) + 1])]
EXPECT = {"sample": 200, "eval": 420, "sk-tune": 1800, "score": 200, "align": 200, "calibrate": 110, "sft": 200,
          "control-score": 20}


def kqa_heldout_subjects() -> set:
    from selfalign.data.knowledge_qa import HELDOUT_FRACTION, SPLIT_SEED, questions
    from selfalign.data.subjects import held_subjects

    return held_subjects(questions("qa_wikidata", "subject"), SPLIT_SEED, HELDOUT_FRACTION).get("qa_wikidata", set())


def sk_data_options() -> Path:
    """The options-mode SK rows of the whole file by subject split (gold vs a same-relation distractor)."""
    DATA.mkdir(parents=True, exist_ok=True)
    full = DATA / "wd.jsonl"
    xt.xstep("data/sk-data", selfalign("sk-data", "--sources", "bigbench:qa_wikidata", "--mode", "options",
                                        "--split-by", "subject", "--heldout-fraction", 0.2, "--seed", 0,
                                        "--output", full))
    return full


def make_data() -> dict:
    from selfalign.data.subjects import mentions
    from selfalign.store.io import read_jsonl, write_jsonl_atomic

    full = sk_data_options()
    train = DATA / "train.jsonl"
    if not train.exists():
        write_jsonl_atomic(train, common.whole_questions(read_jsonl(full), N_SK_ROWS, 0))
    valid = DATA / "valid.jsonl"
    if not valid.exists():
        held = kqa_heldout_subjects()
        wheld = read_jsonl(full.with_name("wd.heldout.jsonl"))
        gold: dict = {}
        for r in wheld:
            gold.setdefault(str(r["id"]), {"question": r["question"], "targets": []})
            if r["label"] == 1:
                gold[str(r["id"])]["targets"].append(r["proposal"])
        hq = sorted(i for i, q in gold.items() if not mentions(q, held))
        random.Random(1).shuffle(hq)
        ids = set(hq[:N_VALID])
        write_jsonl_atomic(valid, [r for r in wheld if str(r["id"]) in ids])

    own = DATA / "own" / "samples.jsonl"
    own.parent.mkdir(parents=True, exist_ok=True)
    xt.xstep("data/sample-own", selfalign("sample", "--model", MODEL, "--dtype", DTYPE, "--input",
                                          "bigbench:qa_wikidata", "--split", "heldout", "--split-by", "subject",
                                          "--limit", N_OWN, "--n", 5, *SAMPLING, "--seed", 0, "--output", own),
             outputs=[own])
    xt.build_own(own, DATA / "b.jsonl")
    samples = KQA / "samples.jsonl"
    KQA.mkdir(parents=True, exist_ok=True)
    xt.xstep("kqa/sample", selfalign("sample", "--model", MODEL, "--dtype", DTYPE, "--input", "bigbench:qa_wikidata",
                                     "--split", "train", "--split-by", "subject", "--limit", N_PROMPTS, "--n", 4,
                                     *SAMPLING, "--seed", 0, "--output", samples), outputs=[samples])
    return {"train": train, "valid": valid, "b": DATA / "b.jsonl", "samples": samples}


def evaluate(label: str, spec: list, deps: list) -> None:
    out = KQA / f"eval-{label}.json"
    xt.xstep(f"kqa/eval-{label}",
             selfalign("eval", "knowledge-qa", *spec, "--dtype", DTYPE, "--split", "heldout", "--split-by", "subject",
                       "--no-selfeval", *N_EVAL, "--n-boot", N_BOOT, "--output", out), deps=deps, outputs=[out])


def calibrate_own(judge: str, spec: str, data: dict, deps: list) -> None:
    from selfalign.evals.calibrate import output_paths

    out = EVAL / judge / "b.json"
    items, png = output_paths(out)
    xt.xstep(f"{judge}/calibrate-b",
             selfalign("calibrate", "--model", spec, "--dtype", DTYPE, "--data", f"sk:{data['b']}", "--no-direct",
                       "--n-boot", N_BOOT, "--seed", 0, "--batch-size", 16, "--output", out),
             deps=[*deps, data["b"]], outputs=[out, items, Path(f"{items}.meta.json"), png])


def sk_tune(data: dict) -> Path:
    out = CT / "skt" / "model"
    flags = [x for k, v in SKC.items() for x in (f"--{k.replace('_', '-')}", v)]
    extra = ["--max-steps", 2] if SMOKE else []
    xt.xstep("skt/sk-tune", selfalign("sk-tune", "--model", MODEL, "--dtype", DTYPE, "--data", data["train"],
                                      "--valid-data", data["valid"], *flags, *extra,
                                      "--eval-every", max(1, N_SK_ROWS // SKC["batch_size"] // 4), "--seed", 0,
                                      "--output", out), deps=[data["train"], data["valid"]], outputs=[out])
    return out


def dpo_row(judge: str, how: list, data: dict, deps: list, seeds=SEEDS) -> None:
    scores, pairs = KQA / f"scores-{judge}.jsonl", KQA / f"pairs-{judge}.jsonl"
    xt.xstep(f"kqa/score-{judge}", selfalign("score", *how, "--dtype", DTYPE, "--input", data["samples"],
                                             "--output", scores), deps=[data["samples"], *deps], outputs=[scores])
    none = no_pairs_path(judge)
    try:
        xt.xstep(f"kqa/pairs-{judge}", selfalign("pairs", "--input", scores, "--strategy", "split", "--output", pairs),
                 deps=[scores], outputs=[pairs])
    except SystemExit as e:  # every candidate pair a tie (the oracle on a tiny sample): the row has no pairs
        if "no preference pairs" not in str(e):
            raise
        none.write_text(next(x for x in str(e).splitlines() if "no preference pairs" in x).strip() + "\n")
        print(f"       {judge}: no pairs; its row is recorded as such ({none.name})", flush=True)
        return
    none.unlink(missing_ok=True)
    for seed in seeds:
        aligned = KQA / f"aligned-{judge}-s{seed}"
        xt.xstep(f"kqa/align-{judge}-s{seed}",
                 selfalign("align", "--model", MODEL, "--dtype", DTYPE, "--pairs", pairs, *ALIGN, "--seed", seed,
                           "--output", aligned), deps=[pairs], outputs=[aligned])
        evaluate(f"{judge}-s{seed}", ["--model", str(aligned)], [aligned / "train_summary.json"])


def no_pairs_path(judge: str) -> Path:
    return KQA / f"pairs-{judge}.none.txt"


def sft_row(data: dict, seeds=SEEDS) -> None:
    """SFT on the gold facts of the in-task judge's SK training rows, at the DPO row's step budget; evaluated as the
    aligned models are."""
    for seed in seeds:
        out = KQA / f"sft-gold-s{seed}"
        xt.xstep(f"kqa/sft-gold-s{seed}",
                 selfalign("sft", "--model", MODEL, "--dtype", DTYPE, "--data", data["train"], "--from-sk",
                           "--split-by", "subject", *SFT, "--seed", seed, "--output", out),
                 deps=[data["train"]], outputs=[out])
        evaluate(f"sft-gold-s{seed}", ["--model", str(out)], [out / "train_summary.json"])


def plan() -> list[tuple[str, float]]:
    E = EXPECT
    out = [("data/sk-data", 10), ("data/sample-own", E["sample"]), ("kqa/sample", E["sample"]),
           ("kqa/eval-base", E["eval"]), ("base/calibrate-b", E["calibrate"]), ("skt/sk-tune", E["sk-tune"]),
           ("skt/calibrate-b", E["calibrate"])]
    for j in JUDGES:
        out += [(f"kqa/score-{j}", E["score"])] + [(f"kqa/{k}-{j}-s{s}", E[k.split('-')[0]])
                                                  for s in SEEDS for k in ("align", "eval")]
    for j in CONTROLS:
        out += [(f"kqa/score-{j}", E["control-score"])] + [(f"kqa/{k}-{j}-s{s}", E[k]) for s in SEEDS
                                                           for k in ("align", "eval")]
    out += [(f"kqa/{k}-s{s}", E[k.split("-")[0]]) for s in SEEDS for k in ("sft-gold", "eval-sft-gold")]
    return out


def _is_control(name: str) -> bool:
    return any(f"-{j}" in name for j in [*CONTROLS, "sft-gold"])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=("summary",), help="write the summary from what has finished, no model work")
    ap.add_argument("--part", choices=("all", "main", "controls"), default="all",
                    help="controls: only the prior, random and SFT-on-gold rows (after the data steps), as a second "
                         "driver beside one running the rest (--part main: their steps are disjoint)")
    args = ap.parse_args(argv)
    xt.check_checkout()
    if args.only == "summary":
        import ctl_summary

        ctl_summary.write()
        return
    tag = "-controls" if args.part == "controls" else ""
    with xt.driven([p for p in plan() if args.part == "all" or _is_control(p[0]) == (args.part == "controls")],
                   tag) as hb:
        data = make_data()
        if args.part == "controls":  # every control at the first seed, then the second (a short session still
            for seed in SEEDS:         # ends with each row measured once)
                for judge, how in CONTROLS.items():
                    dpo_row(judge, how(), data, [], seeds=[seed])
                sft_row(data, seeds=[seed])
            hb.note("finished the controls")
            return
        evaluate("base", ["--model", MODEL], [])
        calibrate_own("base", MODEL, data, [])
        skt = sk_tune(data)
        calibrate_own("skt", str(skt), data, [skt / "train_summary.json"])
        for seed in SEEDS:  # the SKT row first, each row at the first seed before any at the second
            for judge in ("skt", *[j for j in JUDGES if j != "skt"]):
                dpo_row(judge, JUDGES[judge](), data, [skt / "train_summary.json"] if judge == "skt" else [],
                        seeds=[seed])
        if args.part == "all":
            for judge, how in CONTROLS.items():
                dpo_row(judge, how(), data, [])
            sft_row(data)
        hb.note("finished the model work")
        import ctl_summary

        ctl_summary.write()


if __name__ == "__main__":
    main()
