"""The paper's long-form loop on the Wikidata benchmark (issue 31, item 2): targeted long-form precision on Wikidata
attributes (``eval wikifacts``), not FActScore. SmolLM2-135M (``smollm2-135m``), float32, one CPU thread.

    python benchmarks/longform/wf_study.py                  # the whole study; rerun the same command to resume
    python benchmarks/longform/wf_study.py --only summary   # benchmarks/results/wikifacts_smollm2.{md,json} + records
    EFFECT_SMOKE=1 python benchmarks/longform/wf_study.py   # tiny sizes, into runs/wf-smoke/ (its own summary)

Run it with ``PYTHONPATH=<this checkout>`` and the project's venv python (it checks that ``selfalign`` resolves to
this checkout and sets OMP/MKL threads to 1 for itself and every step). Ledger, logs and progress: ``runs/wf/``
(``steps.jsonl``: a finished step is skipped, a killed one resumes its own work; ``logs/<step>.log``;
``progress.log``: a line every 30 s with the step, its last log line and an ETA). After ``kill -9`` of the driver,
rerun the same command: it ends what the killed driver left running (its process group) and resumes.

Data (nothing about an evaluation subject is trained on or chosen on):
  DPO prompts: the first N_TRAIN training subjects of ``data.wikifacts`` (hash order), the profile prompt ("Write a
    short factual profile of X covering: ..." after 2 demonstrations of training subjects), N_SAMPLES samples each,
    the demo's sampling (T 1.0, top-p 0.9, top-k 10, seed 0), at most MAX_NEW tokens, cut where ``eval
    wikifacts`` cuts (a blank line or a new instruction).
  Evaluation: ``eval wikifacts`` on every evaluation subject (221), greedy, MAX_NEW tokens (the benchmark's default
    is 160; 64 holds every sampled profile measured, the longest 42 tokens, and cuts only repetition loops),
    paired bootstrap over subjects against the base (``--compare``) and, in the summary, against the random and
    length controls.
  SK data of the SKT judge: ``sk-data --sources bigbench:qa_wikidata --mode options --split-by subject
    --heldout-fraction 0.4 --seed 0`` on the whole file (docs/longform.md: the evaluation subjects are the subject
    split's held-out subjects at 0.4, split seed 0, so that split keeps every qa_wikidata prompt that mentions one
    out of the training file; 4,755 training questions, 9,510 rows, gold vs a same-relation distractor), then
    3,000 rows of whole questions (one fixed shuffle, as ctl_study). Not ``--max-per-task``: the cap is applied
    before the split, and a subject none of whose own prompts is kept is then not held out (its name can stay in as
    another question's answer or as a distractor; the smoke sizes showed it). ASSERTED here with
    ``data.wikifacts.mentions_eval``: no training row (its question, its proposal, gold or distractor) mentions an
    evaluation subject. Validation (sk-tune keeps its best checkpoint by AUROC there): 150 questions of the held-out
    file that mention no evaluation subject (asserted likewise). SK-Tuning: skt_study.SK (top 8 layers, 2 epochs,
    lr 3e-4, batch 16 by question, LoRA r 8, beta 0.1, warmup 0.1, patience 4), eval every rows/16/4.
Rows: every judge scores the SAME samples; pairs ``--strategy split``; DPO: LoRA, beta 0.1, lr 5e-4, batch 4 pairs,
DPO_STEPS = 30 steps (the demo's settings but half its 60 steps: a profile pair is ~180 tokens and its step costs
2.5x a knowledge-QA step, and 60 steps for each of 6 rows would not fit the budget; fixed by CPU cost, not chosen on
any result, so no validation run was needed), seed 0 (one DPO seed: budget).
  ptrue   Self-Eval-P(True): the base model judges its own claims (``score --method wikifacts-claims``: the
          profile's (relation, value) claims by the benchmark's extractor, each as an SK row "The <relation> of X
          is" / "<value>", mean claim P(True); a profile with no claim is unscored and in no pair)
  skt     Self-Eval-SKT: the same, judged by the SK-tuned model above
  paper   the paper's path with the SKT judge: ``score --method claims`` (rules decomposition, a template question
          "Is it true that <claim>?" per claim, mean claim P(True))
  gold    oracle: ``score --method wikifacts-gold`` (the verifier: supported - contradicted; uses gold)
  random  control: ``score --method random --seed 0``      length  control: ``score --method length`` (shorter wins)
Judge validation (summary): each judge's claim-level AUROC against the verifier's gold verdicts (supported vs
contradicted claims; unverifiable left out) on the base model's samples that DPO ranks (the gate: >= 0.65, else the
row reads "judge below gate"), and on the base model's greedy profiles of the evaluation subjects (``gate/``: no
judge's SK data hold those subjects), with its pairs' agreement with the oracle.

Measured on this machine, 2026-12-07 22:40-23:10 UTC, float32, OMP_NUM_THREADS=1, load average ~5 on 2 cores (two
other studies and tests running): CPU seconds of this process (user), which the plan counts; wall was 2-3x longer.
  process start + model load: 5 s (score, eval: + knowledge and planted gate, 1 s)
  sample, 4 profiles <= 64 tokens per subject, batch 16: 1.8 s per subject (8 subjects: 14.6 s; 22-25 tokens/s)
  score --method wikifacts-claims, base judge: 0.1-0.17 s per sample (32 samples, 36 claims: 3 s; + 1.5 s to
    load the knowledge); --method claims (rules + template questions): 0.4 s per sample (32 samples, 64 claims:
    13 s)
  align, 4 profile pairs per step (prompt ~150 tokens with its demonstrations + answer ~30): 13 s per step (4 steps:
    54 s); for comparison the knowledge-QA DPO of ctl_study at this load: 327 s for 60 steps (5.4 s per step)
  eval wikifacts, greedy <= 64 tokens, batch 8: 1.0 s per subject (16 subjects: 15.4 s; <= 160 tokens: 1.8 s)
  sk-tune, 3,000 rows + 150 validation questions, the same settings: 983 s (ctl_study's run at this load, 2,371 s
    wall, finished 23:01 UTC)
  and from ctl_study's ledger at this load: eval knowledge-qa, 221 s; align of 60 knowledge-QA steps, 327 s
Sizes chosen from these rates: 64 training subjects x 4 samples (256 profiles: ~170 pairs per judge, more than the
120 that 30 DPO steps of 4 read), <= 64 new tokens, all 221 evaluation subjects. Plan (CPU seconds, ``EXPECT``):
sk-data 10; sample 121; sk-tune 1,000; eval 7 x 229 = 1,603; scores 442 (three model judges on the 256 samples and
on the 221 base profiles; the model-free ones 4 each); pairs 12; align 6 x 405 = 2,430: 5,618 s, about 94 minutes
of one core (wall: about that on a free core; 2-3x longer with the other core's load spilling over, as measured).
Order: data, samples, base evaluation, SK-Tuning, the judges' held-out scores, then each row (score, pairs, DPO,
evaluation): SKT, P(True), oracle, random, length, paper's path.
"""
from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "effect"))
sys.path.insert(0, str(HERE.parent))
import common  # noqa: E402
import xtask_study as xt  # noqa: E402  (process hygiene, heartbeat, step wrapper; shared)
from common import ROOT, SMOKE, selfalign  # noqa: E402
from skt_study import DTYPE, SK  # noqa: E402

WF = ROOT / ("runs/wf-smoke" if SMOKE else "runs/wf")
xt.XT = WF  # xtask_study's driver claim and heartbeat write into this study's folder
common.RUN, common.STEPS, common.LOGS = WF, WF / "steps.jsonl", WF / "logs"
MODEL = "smollm2-135m"
DATA, LOOP, GATE = WF / "data", WF / "loop", WF / "gate"
STOP = ["\n\n", "\nWrite a short factual profile", "\nTell me about"]  # evals.wikifacts.STOP
if SMOKE:
    N_TRAIN, N_SAMPLES, MAX_NEW, N_SK_ROWS, N_VALID, EVAL_LIMIT, N_BOOT, DPO_STEPS = 3, 3, 24, 40, 4, 4, 50, 2
    SKC = {**SK, "epochs": 1}
else:
    N_TRAIN, N_SAMPLES, MAX_NEW, N_SK_ROWS, N_VALID, EVAL_LIMIT, N_BOOT, DPO_STEPS = 64, 4, 64, 3000, 150, None, \
        1000, 30
    SKC = SK
SAMPLING = ["--temperature", 1.0, "--top-p", 0.9, "--top-k", 10, "--max-new-tokens", MAX_NEW, "--chat-template",
            "off", "--stop", *STOP, "--batch-size", 16, "--seed", 0]
ALIGN = ["--beta", 0.1, "--learning-rate", 5e-4, "--max-steps", DPO_STEPS, "--batch-size", 4, "--seed", 0]
SKT = WF / "skt" / "model"
JUDGES = {  # row -> score flags; in the order the rows run (the SKT rows first: they are the question)
    "skt": ["--method", "wikifacts-claims", "--model", SKT],
    "ptrue": ["--method", "wikifacts-claims", "--model", MODEL],
    "gold": ["--method", "wikifacts-gold"],
    "random": ["--method", "random", "--seed", 0],
    "length": ["--method", "length", "--length-prefer", "shorter"],
    "paper": ["--method", "claims", "--claim-method", "rules", "--claim-questions", "template", "--model", SKT],
}
MODEL_JUDGES = ("skt", "ptrue", "paper")  # judged on the evaluation subjects' base profiles too (gate/)
# CPU seconds per step at the rates above (for the plan and the ETA)
SK_TUNE_S = 60 if SMOKE else 1000
EXPECT = {"sk-data": 10, "sample": 6 + 1.8 * N_TRAIN, "eval": 8 + 1.0 * (EVAL_LIMIT or 221), "sk-tune": SK_TUNE_S,
          "score": 8 + 0.2 * N_TRAIN * N_SAMPLES, "score-paper": 8 + 0.4 * N_TRAIN * N_SAMPLES, "control": 4,
          "gate": 8 + 0.2 * (EVAL_LIMIT or 221), "gate-paper": 8 + 0.4 * (EVAL_LIMIT or 221), "pairs": 2,
          "align": 15 + 13 * DPO_STEPS}


def is_skt(judge: str) -> bool:
    return SKT in JUDGES[judge]


# --- data ------------------------------------------------------------------------------------------------------
def assert_no_eval_subject(rows: list[dict], where: str) -> None:
    """No SK row states anything about an evaluation subject: neither its question (subject) nor its proposal."""
    from selfalign.data.wikifacts import load_knowledge, mentions_eval

    k = load_knowledge()
    bad = [r for r in rows if mentions_eval({"question": r["question"], "targets": [r["proposal"]]}, k)]
    assert not bad, f"{where}: {len(bad)} SK rows mention an evaluation subject, e.g. {bad[0]['prompt']!r}"


def make_sk_data() -> dict:
    from selfalign.data.wikifacts import load_knowledge, mentions_eval
    from selfalign.store.io import read_jsonl, write_jsonl_atomic

    DATA.mkdir(parents=True, exist_ok=True)
    full = DATA / "sk.jsonl"
    xt.xstep("data/sk-data", selfalign("sk-data", "--sources", "bigbench:qa_wikidata", "--mode", "options",
                                        "--split-by", "subject", "--heldout-fraction", 0.4, "--seed", 0,
                                        "--output", full))
    rows = read_jsonl(full)
    assert_no_eval_subject(rows, str(full))
    train = DATA / "train.jsonl"
    if not train.exists():
        write_jsonl_atomic(train, common.whole_questions(rows, N_SK_ROWS, 0))
    train_rows = read_jsonl(train)
    assert_no_eval_subject(train_rows, str(train))
    valid = DATA / "valid.jsonl"
    if not valid.exists():
        k = load_knowledge()
        held = read_jsonl(full.with_name("sk.heldout.jsonl"))
        by_q: dict = {}
        for r in held:
            by_q.setdefault(str(r["id"]), []).append(r)
        clean = sorted(q for q, rs in by_q.items() if not any(
            mentions_eval({"question": r["question"], "targets": [r["proposal"]]}, k) for r in rs))
        random.Random(1).shuffle(clean)
        keep = set(clean[:N_VALID])
        write_jsonl_atomic(valid, [r for r in held if str(r["id"]) in keep])
    assert_no_eval_subject(read_jsonl(valid), str(valid))
    return {"train": train, "valid": valid, "rows": len(train_rows)}


def sample() -> Path:
    out = LOOP / "samples.jsonl"
    LOOP.mkdir(parents=True, exist_ok=True)
    xt.xstep("loop/sample", selfalign("sample", "--model", MODEL, "--dtype", DTYPE, "--input", "wikifacts", "--split",
                                      "train", "--limit", N_TRAIN, "--n", N_SAMPLES, *SAMPLING, "--output", out),
             outputs=[out])
    return out


def eval_path(label: str) -> Path:
    return LOOP / f"eval-{label}.json"


def evaluate(label: str, spec: str, deps: list) -> Path:
    from selfalign.evals.results import rows_path
    from selfalign.store.provenance import meta_path

    out = eval_path(label)
    rp = rows_path(out)
    compare = [] if label == "base" else ["--compare", eval_path("base")]
    xt.xstep(f"loop/eval-{label}",
             selfalign("eval", "wikifacts", "--model", spec, "--dtype", DTYPE, "--max-new-tokens", MAX_NEW,
                       *(["--limit", EVAL_LIMIT] if EVAL_LIMIT else []), "--n-boot", N_BOOT, "--seed", 0, *compare,
                       "--output", out), deps=deps, outputs=[out, rp, meta_path(rp)])
    return out


def sk_tune(data: dict) -> Path:
    flags = [x for k, v in SKC.items() for x in (f"--{k.replace('_', '-')}", v)]
    extra = ["--max-steps", 2] if SMOKE else []
    xt.xstep("skt/sk-tune", selfalign("sk-tune", "--model", MODEL, "--dtype", DTYPE, "--data", data["train"],
                                      "--valid-data", data["valid"], *flags, *extra,
                                      "--eval-every", max(1, data["rows"] // SKC["batch_size"] // 4), "--seed", 0,
                                      "--output", SKT), deps=[data["train"], data["valid"]], outputs=[SKT])
    return SKT


def gate_samples() -> Path:
    """The base model's greedy profiles of the evaluation subjects as sample rows (for the judges' held-out AUROC);
    rewritten only when its content changes (score's input is hashed)."""
    import json

    from selfalign.data.wikifacts import prompt_rows
    from selfalign.evals.results import rows_path
    from selfalign.store.io import iter_jsonl, write_jsonl_atomic

    items = {r["id"]: r for r in prompt_rows(split="eval", limit=EVAL_LIMIT)}
    rows = [{**items[r["id"]], "sample_idx": 0, "response": r["response"]}
            for r in iter_jsonl(rows_path(eval_path("base"))) if r["id"] in items]
    out = GATE / "samples.jsonl"
    GATE.mkdir(parents=True, exist_ok=True)
    blob = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    if not out.exists() or out.read_text() != blob:
        write_jsonl_atomic(out, rows)
    return out


def score(judge: str, samples: Path, folder: Path, prefix: str) -> Path:
    out = folder / f"scores-{judge}.jsonl"
    deps = [samples, *([SKT / "train_summary.json"] if is_skt(judge) else [])]
    xt.xstep(f"{prefix}/score-{judge}", selfalign("score", *JUDGES[judge], "--dtype", DTYPE, "--input", samples,
                                                  "--output", out), deps=deps, outputs=[out])
    return out


def no_pairs_path(judge: str) -> Path:
    return LOOP / f"pairs-{judge}.none.txt"


def dpo_row(judge: str, samples: Path) -> None:
    scores, pairs = score(judge, samples, LOOP, "loop"), LOOP / f"pairs-{judge}.jsonl"
    none = no_pairs_path(judge)
    try:
        xt.xstep(f"loop/pairs-{judge}", selfalign("pairs", "--input", scores, "--strategy", "split", "--output",
                                                  pairs), deps=[scores], outputs=[pairs])
    except SystemExit as e:  # every candidate pair a tie (the oracle on a tiny sample): the row has no pairs
        if "no preference pairs" not in str(e):
            raise
        none.write_text(next(x for x in str(e).splitlines() if "no preference pairs" in x).strip() + "\n")
        print(f"       {judge}: no pairs; its row is recorded as such ({none.name})", flush=True)
        return
    none.unlink(missing_ok=True)
    aligned = LOOP / f"aligned-{judge}"
    xt.xstep(f"loop/align-{judge}", selfalign("align", "--model", MODEL, "--dtype", DTYPE, "--pairs", pairs, *ALIGN,
                                              "--output", aligned), deps=[pairs], outputs=[aligned])
    # not a dependency on eval-base.json: its --compare is summary-only, and the summary compares the rows itself
    evaluate(judge, str(aligned), [aligned / "train_summary.json"])


def plan() -> list[tuple[str, float]]:
    E = EXPECT
    out = [("data/sk-data", E["sk-data"]), ("loop/sample", E["sample"]), ("loop/eval-base", E["eval"]),
           ("skt/sk-tune", E["sk-tune"])]
    out += [(f"gate/score-{j}", E["gate-paper" if j == "paper" else "gate"]) for j in MODEL_JUDGES]
    for j in JUDGES:
        cost = E["score-paper"] if j == "paper" else E["score"] if j in MODEL_JUDGES else E["control"]
        out += [(f"loop/score-{j}", cost), (f"loop/pairs-{j}", E["pairs"]), (f"loop/align-{j}", E["align"]),
                (f"loop/eval-{j}", E["eval"])]
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=("summary",), help="write the summary from what has finished, no model work")
    args = ap.parse_args(argv)
    xt.check_checkout()
    import wf_summary

    if args.only == "summary":
        wf_summary.write()
        return
    total = sum(e for _, e in plan())
    print(f"plan: {len(plan())} steps, about {total:.0f} CPU seconds ({total / 60:.0f} min) of one core", flush=True)
    with xt.driven(plan()) as hb:
        data = make_sk_data()
        samples = sample()
        evaluate("base", MODEL, [])
        sk_tune(data)
        gate = gate_samples()
        for j in MODEL_JUDGES:
            score(j, gate, GATE, "gate")
        for j in JUDGES:
            dpo_row(j, samples)
        hb.note("finished the model work")
        wf_summary.write()


if __name__ == "__main__":
    main()
