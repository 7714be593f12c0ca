"""The Wikidata long-form loop's summary (benchmarks/longform/wf_study.py): one row per judge, targeted long-form
precision on Wikidata attributes (``eval wikifacts``; not FActScore), from what has finished.

    python benchmarks/longform/wf_study.py --only summary   # -> benchmarks/results/wikifacts_smollm2.{md,json}

Per row: every ``eval wikifacts`` metric on the evaluation subjects with its 95 % bootstrap interval over subjects,
its validity line (the gates), and paired-bootstrap differences over subjects against the base, the random control
and the length control (``evals.results.compare``). Beside each judge: its claim-level AUROC against the verifier's
gold verdicts (supported = 1, contradicted = 0, unverifiable left out; interval: bootstrap over subjects) on the
base samples DPO ranks (the gate, >= 0.65: a row whose judge is below it reads "judge below gate") and on the base
model's greedy profiles of the evaluation subjects; and its pairs' agreement with the oracle (among pairs whose two
answers differ in supported - contradicted, the share where the chosen one has more). Compact per-row records go
under benchmarks/results/records/wf/ (evaluations: summary + rows, ``records.py``; scores: every claim's P(True)
with its gold verdict; pairs: with the oracle's score of both answers; the samples), and are read back from there
when runs/ lacks them. Every figure is the current extractor's: an evaluation scored by an older one is re-verified
from its saved answers (``eval wikifacts --rescore``, no model), claim labels and the oracle's pair scores are
recomputed; what an older extractor decided during the run (the oracle's and the claim judges' choice of pairs)
stays as it was.
"""
from __future__ import annotations

import gzip
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "effect"))
import wf_study as S  # noqa: E402  (points common's ledger and xtask_study's folder at this study's)
import common  # noqa: E402
import records as R  # noqa: E402
import xtask_study as X  # noqa: E402

X.N_BOOT = S.N_BOOT
import xtask_summary as XS  # noqa: E402

from selfalign import metrics as M  # noqa: E402
from selfalign.evals.results import compare, load_result  # noqa: E402
from selfalign.evals.wikifacts_metrics import METRICS  # noqa: E402
from selfalign.report.tables import diff, fmt, md_table, num  # noqa: E402
from selfalign.store.io import iter_jsonl  # noqa: E402

ROOT = common.ROOT
LABEL = "targeted long-form precision on Wikidata attributes"
OUT_MD = S.WF / "wikifacts_smollm2.md" if S.SMOKE else ROOT / "benchmarks/results/wikifacts_smollm2.md"
RECORDS = S.WF / "records" if S.SMOKE else ROOT / "benchmarks/results/records/wf"
GATE = 0.65
ROWS = {"base": "base (no DPO)",
        "skt": "Self-Eval-SKT: SK-tuned judge, claims in its SK format",
        "ptrue": "Self-Eval-P(True): the base model judges its claims (SK format)",
        "paper": "paper's path: rules claims + \"Is it true that ...?\", SKT judge",
        "gold": "oracle: the verifier's supported - contradicted (gold)",
        "random": "*control*: random (seeded scores)",
        "length": "*control*: length (the shorter answer wins)"}
CONTROLS = ("random", "length")
SHOWN = ("precision", "precision_gamma", "supported", "contradicted", "coverage", "unverifiable", "abstain", "length")


def write_gz(path: Path, rows: list[dict]) -> Path:
    """Compact gzip JSONL, fixed bytes for the same content (rewritten only when it changes)."""
    blob = gzip.compress("".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows).encode(),
                         mtime=0)
    if not path.exists() or path.read_bytes() != blob:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(blob)
    return path


def read_gz(path: Path) -> list[dict] | None:
    return [json.loads(x) for x in gzip.decompress(path.read_bytes()).decode().splitlines()] if path.exists() else None


def load_eval(label: str):
    """(summary, rows) of a row's evaluation, kept as generated under records/ and read back from there; scored by
    this checkout's extractor: one scored by another (an older ``fingerprint``) is re-verified from its saved
    answers, no model (``eval wikifacts --rescore``, into ``loop/eval-<row>.rescored.json``)."""
    from selfalign.evals.wikifacts_verify import fingerprint

    path = S.eval_path(label)
    if path.exists() and XS.finished(f"loop/eval-{label}"):
        summary, rows = load_result(path)
        R.keep(path, summary, rows, runs=S.WF, archive=RECORDS)
        src = path
    else:
        summary, rows = R.restore(path, runs=S.WF, archive=RECORDS)
        src = R.archive_path(path, runs=S.WF, archive=RECORDS)
    if summary is None or summary.get("verifier") == fingerprint():
        return summary, rows
    from selfalign.evals.wikifacts import WikiFactsConfig, run_wikifacts

    out = S.LOOP / f"eval-{label}.rescored.json"
    run_wikifacts(WikiFactsConfig(rescore=str(src), output=str(out), n_boot=S.N_BOOT, seed=0, overwrite=True))
    return load_result(out)


def verifier():
    from selfalign.selfeval.wikifacts_claims import resources

    return resources({})


def claim_label(v, subject: str, claim: dict) -> int | None:
    """The gold label of a claim: 1 supported, 0 contradicted, None unverifiable. A (relation, value) claim of
    wikifacts-claims by ``Verifier.verdict``; a text claim of the paper's path by the verifier's statements of it
    (any contradicted: 0; else any supported: 1)."""
    if "relation" in claim:
        verdicts = [v.verdict(subject, claim["relation"], [claim["value"]])]
    else:
        verdicts = [s["verdict"] for s in v.sentences_of(subject, claim["text"]) if s["relation"]]
    return 0 if "contradicted" in verdicts else 1 if "supported" in verdicts else None


def score_records(judge: str, where: str) -> list[dict] | None:
    """The judge's scores of one sample set (loop: the DPO samples; gate: the evaluation subjects' base profiles),
    compact, each claim with its P(True) and gold label; kept under records/ and read back from there."""
    folder, step = (S.LOOP, "loop") if where == "loop" else (S.GATE, "gate")
    src, kept = folder / f"scores-{judge}.jsonl", RECORDS / f"{where}-scores-{judge}.jsonl.gz"
    if not (src.exists() and XS.finished(f"{step}/score-{judge}")):
        return read_gz(kept)
    _, v = verifier()
    recs = []
    for r in iter_jsonl(src):
        claims = [{**{k: c[k] for k in ("relation", "value", "text") if k in c}, "p_true": c.get("p_true"),
                   "gold": claim_label(v, r["subject"], c)} for c in r.get("claims") or []]
        recs.append({"id": str(r["id"]), "sample_idx": r.get("sample_idx", 0), "subject": r["subject"],
                     "score": r["score"], "claims": claims})
    write_gz(kept, recs)
    return recs


def claim_auroc(recs: list[dict] | None) -> dict | None:
    """Claim-level AUROC of P(True) against the gold labels, bootstrap over subjects (None: no scores yet; value
    None: no labelled claim, or one class only)."""
    if recs is None:
        return None
    pts = [(r["subject"], c["p_true"], c["gold"]) for r in recs for c in r["claims"]
           if c.get("gold") is not None and c.get("p_true") is not None]
    if not pts:
        return {"value": None, "low": None, "high": None, "claims": 0, "supported": 0, "contradicted": 0}
    g, p, y = (np.asarray(x) for x in zip(*pts))
    out = XS.ci(M.auroc, y.astype(int), p.astype(float), groups=g)
    return {**out, "claims": len(pts), "supported": int(y.sum()), "contradicted": int(len(y) - y.sum())}


def pair_records(judge: str) -> list[dict] | None:
    """The judge's pairs, each answer with the oracle's score (supported - contradicted, None: no statement)."""
    from selfalign.selfeval.wikifacts_gold import gold_score

    src, kept = S.LOOP / f"pairs-{judge}.jsonl", RECORDS / f"pairs-{judge}.jsonl.gz"
    if not (src.exists() and XS.finished(f"loop/pairs-{judge}")):
        return read_gz(kept)
    k, v = verifier()
    subject = {str(r["id"]): r["subject"] for r in iter_jsonl(S.LOOP / "samples.jsonl")}
    recs = [{"id": str(p["id"]), "chosen": p["chosen"], "rejected": p["rejected"], "chosen_score": p["chosen_score"],
             "rejected_score": p["rejected_score"],
             **{f"{side}_gold": gold_score(v, k, subject[str(p["id"])], p[side])["score"]
                for side in ("chosen", "rejected")}} for p in iter_jsonl(src)]
    write_gz(kept, recs)
    return recs


def agreement(recs: list[dict]) -> dict:
    both = [r for r in recs if r["chosen_gold"] is not None and r["rejected_gold"] is not None]
    differ = [r for r in both if r["chosen_gold"] != r["rejected_gold"]]
    return {"pairs": len(recs), "prompts": len({r["id"] for r in recs}), "differing": len(differ),
            "agreement": float(np.mean([r["chosen_gold"] > r["rejected_gold"] for r in differ])) if differ else None,
            "unstated_side": len(recs) - len(both)}


def training(judge: str) -> dict | None:
    d = S.LOOP / f"aligned-{judge}" / "train_summary.json"
    path = R.keep_file(d, runs=S.WF, archive=RECORDS) if d.exists() else RECORDS / d.relative_to(S.WF)
    if not path.exists():
        return None
    s = json.loads(path.read_text())
    return {k: s.get(k) for k in ("steps", "pairs", "final", "seconds")}


def keep_samples() -> None:
    src = S.LOOP / "samples.jsonl"
    if src.exists() and XS.finished("loop/sample"):
        write_gz(RECORDS / "samples.jsonl.gz", [{k: r.get(k) for k in ("id", "sample_idx", "subject", "response")}
                                                for r in iter_jsonl(src)])


def rel(x) -> str:
    """A judge flag as it reads on any machine: a path under the checkout relative to it."""
    p = Path(str(x))
    return p.relative_to(ROOT).as_posix() if p.is_absolute() and p.is_relative_to(ROOT) else str(x)


def write() -> dict:
    evals = {row: ev for row in ROWS if (ev := load_eval(row))[0] is not None}
    if "base" not in evals and not S.SMOKE:
        raise SystemExit(f"no finished base evaluation under {S.WF} nor kept in {RECORDS}: nothing to summarise")
    keep_samples()
    rows = {}
    for row, desc in ROWS.items():
        e = {"description": desc}
        if row in evals:
            summary, erows = evals[row]
            e.update(metrics=summary["metrics"], validity=summary.get("validity"), valid=summary.get("valid"),
                     n_subjects=summary.get("n_subjects"))
            for other in ("base", *CONTROLS):
                if other != row and other in evals and row != "base":
                    e[f"diff_vs_{other}"] = {m: compare(erows, evals[other][1], m, n_boot=S.N_BOOT, seed=0)
                                             for m in METRICS}
        if row in S.JUDGES:
            if S.no_pairs_path(row).exists():
                e["no_pairs"] = S.no_pairs_path(row).read_text().strip()
            pr = pair_records(row)
            e["pair_agreement"] = agreement(pr) if pr else None
            e["training"] = training(row)
            if row in S.MODEL_JUDGES:
                e["claim_auroc"] = claim_auroc(score_records(row, "loop"))
                e["claim_auroc_heldout"] = claim_auroc(score_records(row, "gate"))
                a = (e["claim_auroc"] or {}).get("value")
                e["judge_gate"] = None if a is None else ("pass" if a >= GATE else "judge below gate")
        rows[row] = e
    res = {"study": "wikifacts_smollm2", "label": LABEL, "model": S.MODEL, "smoke": S.SMOKE,
           "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "settings": {"train_subjects": S.N_TRAIN, "samples_per_subject": S.N_SAMPLES, "max_new_tokens": S.MAX_NEW,
                        "eval_limit": S.EVAL_LIMIT, "align": [str(x) for x in S.ALIGN], "sk": S.SKC,
                        "judges": {j: [rel(x) for x in f] for j, f in S.JUDGES.items()}, "judge_gate": GATE},
           "gates": (evals.get("base") or ({},))[0].get("gates"), "rows": rows,
           "commands": XS.commands({S.WF.resolve(): "runs/wf"}),  # the study folder may be another checkout's
           "data_hashes": XS.file_hashes(S.WF, [*sorted(S.DATA.glob("*.jsonl")), S.LOOP / "samples.jsonl"]),
           "records": XS.record_files(RECORDS),
           "bootstrap": {"n_boot": S.N_BOOT, "seed": 0, "unit": "subject", "level": 0.95, "method": "percentile"}}
    return XS.publish(res, OUT_MD, markdown(res))


def _auc(a: dict | None) -> str:
    if a is None:
        return "pending"
    counts = f"{a['claims']} claims: {a['supported']} supported, {a['contradicted']} contradicted"
    return f"{fmt(a)} ({counts})" if a.get("value") is not None else f"– ({counts})"


def _judge_cells(row: str, e: dict) -> list[str]:
    if row == "base":
        return ["", "", ""]
    if row == "gold":
        auc = ["(gold)", "(gold)"]
    elif row in S.MODEL_JUDGES:
        auc = [_auc(e.get("claim_auroc")), _auc(e.get("claim_auroc_heldout"))]
        if e.get("judge_gate") == "judge below gate":
            auc[0] += " **judge below gate**"
    else:
        auc = ["n/a (no claims)", "n/a"]
    pa = e.get("pair_agreement") or {}
    return [*auc, f"{num(pa.get('agreement'), missing='-')} ({pa.get('differing', 0)} of {pa.get('pairs', 0)})"
            if pa else ("no pairs" if e.get("no_pairs") else "pending")]


def markdown(res: dict) -> list[str]:
    rows, st = res["rows"], res["settings"]
    L = [f"# The self-alignment loop on {LABEL}, SmolLM2-135M (issue 31)", "",
         f"`python benchmarks/longform/wf_study.py` then `--only summary` (written {res['written']}"
         f"{', SMOKE sizes' if res['smoke'] else ''}). **{LABEL[0].upper() + LABEL[1:]}** (`eval wikifacts`, "
         "docs/longform.md), not FActScore: profiles of held-out qa_wikidata subjects checked sentence by sentence "
         "against their triples, without a language model. Every judge scores the same samples (the first "
         f"{st['train_subjects']} training subjects, {st['samples_per_subject']} profiles each, <= "
         f"{st['max_new_tokens']} tokens), pairs `--strategy split`, DPO `{' '.join(st['align'])}` (LoRA); "
         f"evaluation: greedy profiles of {'every' if not st['eval_limit'] else st['eval_limit']} evaluation "
         f"subject{'s' if st['eval_limit'] != 1 else ''} (<= {st['max_new_tokens']} tokens). Intervals: 95 % "
         f"percentile bootstrap over subjects ({res['bootstrap']['n_boot']} resamples); Δ: paired over the subjects "
         "both have (precision: those where both state something checkable). Never read precision alone: saying "
         "less raises it; supported and contradicted per response are beside it.", ""]
    g = res.get("gates") or {}
    if g:
        L += ["Validity gates (base): " + "; ".join(
            f"{n} {'not run' if x.get('passed') is None else 'pass' if x['passed'] else 'FAIL'}" for n, x in g.items())
              + ". Each row's own line is in the table below.", ""]
    head = ["row", *SHOWN, "valid", "judge claim AUROC, DPO samples (gate >= 0.65)", "on eval subjects' base "
            "profiles", "pairs agreeing with the oracle (of pairs differing in it)"]
    table = []
    for row, e in rows.items():
        m = e.get("metrics")
        cells = [fmt(m[k]) for k in SHOWN] if m else ["no pairs" if e.get("no_pairs") else "pending",
                                                     *[""] * (len(SHOWN) - 1)]
        valid = "" if not m else "VALID" if e.get("valid") else "**INVALID**"
        table.append([e["description"], *cells, valid, *_judge_cells(row, e)])
    L += md_table(head, table) + [""]
    for other in ("base", *CONTROLS):
        lines = [[rows[r]["description"], *[diff(rows[r][f"diff_vs_{other}"][k]) for k in SHOWN]]
                 for r in rows if f"diff_vs_{other}" in rows[r]]
        if lines:
            L += [f"## Paired differences vs {other} (row minus {other}, over subjects)", ""]
            L += md_table(["row", *SHOWN], lines) + [""]
    L += ["## Validity per row", ""] + [f"- {r}: {e['validity']}" for r, e in rows.items() if e.get("validity")]
    L += ["", "## Training", ""]
    for r, e in rows.items():
        t = e.get("training")
        if t:
            last = t.get("final") or {}
            L.append(f"- {r}: {t.get('steps')} steps on {t.get('pairs')} pairs; final loss {num(last.get('loss'))}, "
                     f"reward margin {num(last.get('rewards/margins'))}, reward accuracy "
                     f"{num(last.get('rewards/accuracies'))}")
        elif e.get("no_pairs"):
            L.append(f"- {r}: no pairs ({e['no_pairs']})")
    L += ["", "## Commands (as run; finished steps of the ledger)", ""] + [f"- {c}" for c in res["commands"]]
    L += ["", "## Data and records", "",
          "- sha256[:16]: " + ", ".join(f"{k} {v}" for k, v in res["data_hashes"].items()),
          f"- per-row records: {', '.join(res['records']) or 'none yet'}"]
    return L


if __name__ == "__main__":
    write()
