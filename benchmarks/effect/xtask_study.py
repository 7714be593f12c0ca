"""Cross-task SK-Tuning (issue 36, "Self, not supervision"): does a judge SK-tuned on every shared BIG-bench task
EXCEPT qa_wikidata (no Wikidata fact at all) judge qa_wikidata better, (a) gold vs same-relation distractor and
(b) the model's OWN sampled answers (where DPO uses the judge)?  SmolLM2-135M (``smollm2-135m``), one CPU thread.

    python benchmarks/effect/xtask_study.py                  # the whole study; rerun the same command to resume
    python benchmarks/effect/xtask_study.py --only summary   # benchmarks/results/xtask_smollm2.{md,json} + records
    EFFECT_SMOKE=1 python benchmarks/effect/xtask_study.py   # tiny sizes, into runs/xtask-smoke/ (its own summary)

Run it with ``PYTHONPATH=<this checkout>`` and the project's venv python (the script checks that ``selfalign``
resolves to this checkout and sets OMP/MKL threads to 1 for itself and every step). Progress: a line every 30 s
in ``runs/xtask/progress.log`` (step, elapsed, the step's last log line, ETA); each step's output in
``runs/xtask/logs/``; the step ledger (``common.step``: finished steps are skipped, a killed step resumes its own
work) in ``runs/xtask/steps.jsonl``. After ``kill -9`` of the driver, rerun the same command: it ends the killed
driver's leftover child (its process group, recorded in ``runs/xtask/driver.json``) and resumes.

Data (no model):
  cross-task SK rows: ``sk-data --mode options`` on the 17 shared BIG-bench tasks/subtasks other than qa_wikidata
    (fact_checker and periodic_elements as their subtasks, which ``bigbench:all`` now loads; physics and
    identify_math_theorems left out, as in common.py: prompts 2-4x longer, CPU budget), at most 200 questions per
    task (fever alone has 6,612), 20 % of each task's questions held out by hash: 4,042 training rows of 2,020
    questions (gold vs wrong option, balanced per question). Learning curve: 1,000 / 2,000 / all rows (whole
    questions, one fixed shuffle, each smaller set inside the larger). Validation (sk-tune keeps its best
    checkpoint there): 150 held-out questions of the same tasks -- no Wikidata, so nothing about qa_wikidata steers
    the checkpoint choice.
  (a) skt_study.py's set (a) exactly: ``sk-data --sources bigbench:qa_wikidata --mode options --heldout-fraction
    0.2 --seed 0``, held-out questions shuffled with Random(1), questions 150..649 (500 questions, 998 options);
    its options hash is checked against benchmarks/results/skt_table2.json, so the figures sit beside the in-task
    judge's there.
  (b) own answers: ``sample`` the first 300 held-out knowledge-QA prompts of qa_wikidata (``--input
    bigbench:qa_wikidata --split heldout``: 3 training questions with their answers, then the statement; the demo's
    format and sampling: 5 samples, temperature 1.0, top-p 0.9, top-k 10, <= 12 tokens, cut at the line's end),
    each labelled by ``text.match_targets`` against the gold targets (sk-data --mode samples' labelling; empty
    answers dropped and counted); calibrate reads them as sk rows (distinct answer strings per question).
    These prompts are held out of the in-task judge's training too (knowledge_qa.py: held-out 6 % inside sk-data's
    20 %). Shortcut beside: answer frequency = share of the question's 5 samples with the same normalised answer.
Judges: base (0-shot P(True)), xtask-n1000 / -n2000 / -nall (this study), and as a reference the in-task judge
``smollm2-135m-skt`` (3,000 qa_wikidata rows, benchmarks/results/skt_table2.md). SK-Tuning settings: skt_study.SK
(top 8 layers, 2 epochs, lr 3e-4, batch 16 by question, LoRA r 8, beta 0.1, warmup 0.1, patience 4) in float32,
eval every n/16/4 steps, seed 0.

Measured on this machine, 2026-12-07 19:23-19:53 UTC, float32, OMP_NUM_THREADS=1, the other core busy (load 2.5-3):
  sk-tune on cross-task rows: trunk states + reference margins before training 0.17-0.36 s per row (pilot: 224
    rows in 57 s; the study's all-rows run: 4,342 rows (train + valid) in 722 s; sk-tune's bar counts 2 per row);
    training 2.2 s per step of 16 rows in the study (0.46 step/s; pilot with 3 validations in 20 steps: 4 s);
    process start + model load 10-25 s
  calibrate --no-direct, 0-shot, qa_wikidata options: 9.5-11.6 options/s (set (a), 998 options: 112 s; set (b),
    954 options: 96 s); cross-task prompts are 2-3x longer (2.8 options/s)
  sample, 5 answers <= 12 tokens, batch 16: 2.1 prompts/s (300 prompts: 114 s)
Plan (expected seconds, in run order): data 10; sample 160; base calibrate (a)+(b) 210; sk-tune all (4,042 rows,
506 steps) 1,950; its calibrate 210; in-task reference calibrate 210; sk-tune 1000 (126 steps) 700 + 210;
sk-tune 2000 (250 steps) 1,200 + 210; summary 5: about 5,100 s (85 min) of one core. Started 2026-12-07 19:32 UTC
(killed with -9 at 19:33 during sampling and resumed, as a test), ETA ~21:00 UTC.
Not run (budget): a samples-mode or mixed cross-task variant.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import sys
import threading
import time
from contextlib import contextmanager
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))  # benchmarks/: the shared formatter
import common  # noqa: E402
from common import ROOT, SMOKE, selfalign, step  # noqa: E402
from skt_study import DTYPE, N_TEST, N_VALID, SK  # noqa: E402

CURRENT: dict = {}  # the step running now and since when (for progress.log)


def xstep(name: str, argv: list[str], **kw) -> dict:
    CURRENT.update(name=name, t0=time.time())
    try:
        return step(name, argv, **kw)
    finally:
        CURRENT.clear()

for _k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_k] = "1"  # one core stays free; every step inherits it
os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
if (ROOT.parent / "shared/data").is_dir():  # the shared data beside the checkout, unless SELFALIGN_DATA says
    os.environ.setdefault("SELFALIGN_DATA", str(ROOT.parent / "shared" / "data"))

XT = ROOT / ("runs/xtask-smoke" if SMOKE else "runs/xtask")
common.RUN, common.STEPS, common.LOGS = XT, XT / "steps.jsonl", XT / "logs"  # this study's own ledger and logs
DATA = XT / "data"
EVAL = XT / "eval"
MODEL = "smollm2-135m"
INTASK = "smollm2-135m-skt"  # the packaged in-task judge: 3,000 qa_wikidata rows (skt_study n3000-seed0)
EXCLUDE = {"qa_wikidata": "the target task", "physics": "prompts 2-4x longer (CPU budget, as common.py)",
           "identify_math_theorems": "prompts 2-4x longer (CPU budget, as common.py)"}
if SMOKE:
    CAP, SIZES, N_OWN, N_SAMPLES, NV, NT, N_BOOT = 3, [16], 4, 2, 4, 5, 50
    SKX = {**SK, "epochs": 1}
else:
    CAP, SIZES, N_OWN, N_SAMPLES, NV, NT, N_BOOT = 200, [1000, 2000], 300, 5, N_VALID, N_TEST, 1000
    SKX = SK
SAMPLING = {"temperature": 1.0, "top_p": 0.9, "top_k": 10, "max_new_tokens": 12}  # recipes/demo.yaml's
OUT_MD = XT / "xtask_smollm2.md" if SMOKE else ROOT / "benchmarks/results/xtask_smollm2.md"
RECORDS = XT / "records" if SMOKE else ROOT / "benchmarks/results/records/xtask"
# expected seconds per step (the plan above), for the ETA in progress.log
EXPECT = {"data": 10, "sample": 160, "calibrate": 105, "sk-tune-all": 1950, "sk-tune-1000": 700, "sk-tune-2000": 1200}


def tasks() -> list[str]:
    from selfalign.data import data_root, mc

    return [t for t in mc.bigbench_tasks(data_root() / "bigbench") if t.split("/")[0] not in EXCLUDE]


# --- data ------------------------------------------------------------------------------------------------------
def make_data() -> dict:
    from selfalign.store.io import read_jsonl, write_jsonl_atomic

    DATA.mkdir(parents=True, exist_ok=True)
    full = DATA / "xt.jsonl"
    xstep("data/sk-data-xtask", selfalign("sk-data", "--sources", *[f"bigbench:{t}" for t in tasks()], "--mode",
                                         "options", "--max-per-task", CAP, "--heldout-fraction", 0.2, "--seed", 0,
                                         "--output", full))
    rows = read_jsonl(full)
    qs = sorted({(r["task"], r["id"]) for r in rows})
    random.Random(0).shuffle(qs)
    n_of = Counter((r["task"], r["id"]) for r in rows)
    train = {}
    for n in [*SIZES, "all"]:
        path = DATA / f"train{n}.jsonl"
        keep, total = set(), 0
        for q in qs:
            if n != "all" and total >= n:
                break
            keep.add(q)
            total += n_of[q]
        if not path.exists():
            write_jsonl_atomic(path, [r for r in rows if (r["task"], r["id"]) in keep])
        train[str(n)] = path
    held = read_jsonl(full.with_name("xt.heldout.jsonl"))
    hq = sorted({(r["task"], r["id"]) for r in held})
    random.Random(1).shuffle(hq)
    if not (DATA / "valid.jsonl").exists():
        ids = set(hq[:NV])
        write_jsonl_atomic(DATA / "valid.jsonl", [r for r in held if (r["task"], r["id"]) in ids])

    # set (a): skt_study.make_data's held-out qa_wikidata questions, the same command, seed and shuffle
    wd = DATA / "wd" / "wd.jsonl"
    wd.parent.mkdir(parents=True, exist_ok=True)
    xstep("data/sk-data-wd", selfalign("sk-data", "--sources", "bigbench:qa_wikidata", "--mode", "options",
                                      "--heldout-fraction", 0.2, "--seed", 0, "--output", wd))
    if not (DATA / "a.jsonl").exists():
        wheld = read_jsonl(wd.with_name("wd.heldout.jsonl"))
        whq = sorted({r["id"] for r in wheld})
        random.Random(1).shuffle(whq)
        ids = set(whq[N_VALID:N_VALID + NT])  # skt_study: valid = the first N_VALID, test (a) = the next N_TEST
        write_jsonl_atomic(DATA / "a.jsonl", [r for r in wheld if r["id"] in ids])

    # set (b): the model's own answers to held-out knowledge-QA prompts
    samples = DATA / "own" / "samples.jsonl"
    samples.parent.mkdir(parents=True, exist_ok=True)
    xstep("data/sample-own", selfalign("sample", "--model", MODEL, "--dtype", DTYPE, "--input", "bigbench:qa_wikidata",
                                      "--split", "heldout", "--limit", N_OWN, "--n", N_SAMPLES,
                                      *[x for k, v in SAMPLING.items() for x in (f"--{k.replace('_', '-')}", v)],
                                      "--chat-template", "off", "--stop", "\n", "--batch-size", 16, "--seed", 0,
                                      "--output", samples),
         outputs=[samples])
    build_own(samples, DATA / "b.jsonl")
    return {"train": train, "valid": DATA / "valid.jsonl", "a": DATA / "a.jsonl", "b": DATA / "b.jsonl"}


def build_own(samples: Path, out: Path) -> None:
    """sk rows (one per sample, labelled against the gold targets) + per-sample answer frequency; rewritten only
    when its content changes (calibrate's inputs are hashed)."""
    from selfalign.store.io import read_jsonl, write_jsonl_atomic
    from selfalign.stages.sk_data import SKDataConfig, make_row
    from selfalign.text import match_targets, normalize

    cfg = SKDataConfig(sources=["bigbench:qa_wikidata"], mode="samples", output=str(out))
    srows = read_jsonl(samples)
    by_q: dict[str, list[dict]] = {}
    for r in srows:
        by_q.setdefault(str(r["id"]), []).append(r)
    rows, dropped = [], 0
    for qid, rs in by_q.items():
        rs.sort(key=lambda r: r["sample_idx"])
        norm = Counter(normalize(r["response"]) for r in rs)
        for r in rs:
            label = match_targets(r["response"], r["targets"])
            if label is None:
                dropped += 1
                continue
            q = {"id": qid, "task": "qa_wikidata", "question": r["question"], "source": "bigbench:qa_wikidata",
                 "split": "heldout"}
            rows.append(make_row(q, r["response"].strip(), label, cfg, sample_idx=r["sample_idx"],
                                 answer_prompt=r["prompt"], targets=r["targets"],
                                 answer_freq=norm[normalize(r["response"])] / len(rs), n_samples=len(rs)))
    blob = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    if not out.exists() or out.read_text() != blob:
        write_jsonl_atomic(out, rows)
    (out.with_name("b.dropped.json")).write_text(json.dumps({"empty_answers_dropped": dropped}) + "\n")


# --- steps -----------------------------------------------------------------------------------------------------
def calibrate(judge: str, spec: str, data: dict, trained: list[Path]) -> None:
    from selfalign.evals.calibrate import output_paths

    for name in ("a", "b"):
        out = EVAL / judge / f"{name}.json"
        items, png = output_paths(out)
        xstep(f"{judge}/calibrate-{name}",
             selfalign("calibrate", "--model", spec, "--dtype", DTYPE, "--data", f"sk:{data[name]}", "--no-direct",
                       "--n-boot", N_BOOT, "--seed", 0, "--batch-size", 16, "--output", out),
             deps=[*trained, data[name]], outputs=[out, items, Path(f"{items}.meta.json"), png])


def sk_tune(n: str, data: dict) -> Path:
    from selfalign.store.io import read_jsonl

    out = XT / f"xtask-n{n}" / "model"
    train = data["train"][n]
    rows = len(read_jsonl(train))
    flags = [x for k, v in SKX.items() for x in (f"--{k.replace('_', '-')}", v)]
    extra = ["--max-steps", 2] if SMOKE else []
    xstep(f"xtask-n{n}/sk-tune",
         selfalign("sk-tune", "--model", MODEL, "--dtype", DTYPE, "--data", train, "--valid-data", data["valid"],
                   *flags, *extra, "--eval-every", max(1, rows // SKX["batch_size"] // 4), "--seed", 0,
                   "--output", out),
         deps=[train, data["valid"]], outputs=[out])
    return out


# --- process hygiene and progress --------------------------------------------------------------------------------
def _pids_in_group(pgid: int) -> list[int]:
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                stat = (p / "stat").read_text()
                fields = stat[stat.rindex(")") + 2:].split()
                if int(fields[2]) == pgid and int(p.name) != os.getpid():
                    out.append(int(p.name))
            except (OSError, ValueError, IndexError):
                pass
    return out


def claim_driver(tag: str = "") -> None:
    """Become a process-group leader; end what a killed earlier driver left running (its group, by id); refuse
    when an earlier driver is still alive. ``tag``: a driver of another part of the study (its own claim file), which
    may run beside this one when their steps are disjoint."""
    try:
        os.setsid()
    except OSError:
        pass
    info = XT / f"driver{tag}.json"
    if info.exists():
        old = json.loads(info.read_text())
        pid, pgid = old.get("pid"), old.get("pgid")
        me = Path(sys.argv[0]).name  # the study script that claims the folder (ctl_study, mc_style_study reuse this)
        if pid and pid != os.getpid() and Path(f"/proc/{pid}").exists() and me in \
                Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
            raise SystemExit(f"{me} is already running (pid {pid}); see {XT / f'progress{tag}.log'}")
        left = _pids_in_group(pgid) if pgid and pgid != os.getpgrp() else []
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for p in left:
                try:
                    os.kill(p, sig)
                except ProcessLookupError:
                    pass
            deadline = time.time() + 60
            while left and time.time() < deadline:
                left = [p for p in left if Path(f"/proc/{p}").exists()]
                time.sleep(1)
    XT.mkdir(parents=True, exist_ok=True)
    info.write_text(json.dumps({"pid": os.getpid(), "pgid": os.getpgrp(), "argv": sys.argv,
                                "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}) + "\n")


class Heartbeat:
    """A line every 30 s in progress.log: the running step, its elapsed time, its log's last line, steps done, ETA."""

    def __init__(self, planned: list[tuple[str, float]], tag: str = ""):
        self.planned, self.t0 = planned, time.time()
        self.path = XT / f"progress{tag}.log"
        self.stop = threading.Event()
        threading.Thread(target=self.loop, daemon=True).start()

    def line(self) -> str:
        led = common.ledger()
        done = {k for k, v in led.items() if v and v[-1]["finished"]}
        cur = dict(CURRENT)
        running = cur.get("name")
        run_s = time.time() - cur["t0"] if cur else 0.0
        last = ""
        log = common.LOGS / f"{running.replace('/', '__')}.log" if running else None
        if log and log.exists():
            tail = [x for x in log.read_text(errors="replace").replace("\r", "\n").splitlines() if x.strip()]
            last = tail[-1][-160:] if tail else ""
        left = sum(e for n, e in self.planned if n not in done and n != running)
        if running:
            m = re.search(r"sk-tune: \d+/\d+ steps .*~([\d.]+) min left", last)
            left += float(m.group(1)) * 60 + 30 if m else max(30.0, dict(self.planned).get(running, 60) - run_s)
        eta = time.strftime("%H:%M", time.gmtime(time.time() + left))
        return (f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())} UTC | {len(done & set(dict(self.planned)))}"
                f"/{len(self.planned)} steps done | now: {running or '-'} ({run_s:.0f} s) | ETA {eta} UTC | {last}")

    def loop(self) -> None:
        while not self.stop.wait(0 if not self.path.exists() else 30):
            try:
                with open(self.path, "a", encoding="utf-8") as f:
                    f.write(self.line() + "\n")
            except Exception as e:  # noqa: BLE001 - the heartbeat must never end the study
                with open(self.path, "a", encoding="utf-8") as f:
                    f.write(f"heartbeat error: {e!r}\n")

    def note(self, text: str) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())} UTC | {text}\n")


def plan() -> list[tuple[str, float]]:
    E = EXPECT
    out = [("data/sk-data-xtask", E["data"]), ("data/sk-data-wd", E["data"]), ("data/sample-own", E["sample"]),
           ("base/calibrate-a", E["calibrate"]), ("base/calibrate-b", E["calibrate"]),
           ("xtask-nall/sk-tune", E["sk-tune-all"]), ("xtask-nall/calibrate-a", E["calibrate"]),
           ("xtask-nall/calibrate-b", E["calibrate"]),
           ("intask/calibrate-a", E["calibrate"]), ("intask/calibrate-b", E["calibrate"])]
    for n in SIZES:
        out += [(f"xtask-n{n}/sk-tune", E.get(f"sk-tune-{n}", 60)), (f"xtask-n{n}/calibrate-a", E["calibrate"]),
                (f"xtask-n{n}/calibrate-b", E["calibrate"])]
    return out


@contextmanager
def driven(planned: list[tuple[str, float]], tag: str = ""):
    """A study driver's run: claim the study folder (``claim_driver``), a heartbeat every 30 s (``Heartbeat``), a
    note when it starts and, if it stops on an error or a signal, why; yields the heartbeat (``hb.note``). Every
    study script of benchmarks/ runs its steps inside one."""
    claim_driver(tag)
    hb = Heartbeat(planned, tag)
    hb.note(f"driver pid {os.getpid()} (process group {os.getpgrp()}) started; plan {sum(e for _, e in planned):.0f} s")
    try:
        yield hb
    except BaseException as e:
        hb.note(f"stopped: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
        raise
    finally:
        hb.stop.set()


def check_checkout() -> None:
    import selfalign

    if not Path(selfalign.__file__).resolve().is_relative_to(ROOT):
        raise SystemExit(f"selfalign resolves to {selfalign.__file__}, not under {ROOT}: run with PYTHONPATH={ROOT}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=("summary",), help="write the summary from what has finished, no model work")
    ap.add_argument("--sizes", nargs="+", type=int, default=SIZES,
                    help=f"learning-curve points in rows besides all (default: {' '.join(map(str, SIZES))})")
    args = ap.parse_args(argv)
    SIZES[:] = args.sizes
    check_checkout()
    import xtask_summary

    if args.only == "summary":
        xtask_summary.write()
        return
    with driven(plan()) as hb:
        data = make_data()
        calibrate("base", MODEL, data, [])
        out = sk_tune("all", data)
        calibrate("xtask-nall", str(out), data, [out / "train_summary.json"])
        calibrate("intask", INTASK, data, [])
        for n in SIZES:
            out = sk_tune(str(n), data)
            calibrate(f"xtask-n{n}", str(out), data, [out / "train_summary.json"])
        xtask_summary.write()
        hb.note(f"finished; summary in {OUT_MD}")


if __name__ == "__main__":
    main()
