import argparse
import json

import pytest

from selfalign.config import add_args, from_args
from selfalign.errors import InputError, SelfAlignError
from selfalign.stages.pairs import PairsConfig, build_pairs, run_pairs

# scores are multiples of 1/4, so every difference below is exact in binary floating point
FOUR = [("a", 1.0), ("b", 0.75), ("c", 0.5), ("d", 0.0)]


def rows_for(pid, samples, prompt=None, chat=True):
    # chat=True: the answers stay as written (the space a plain prompt gets back: test_answers_continue_their_prompt)
    prompt = prompt or f"Q: {pid}?\nA:"
    return [{"id": pid, "sample_idx": k, "prompt": prompt, "question": f"{pid}?", "response": text, "score": s,
             "chat_template": chat} for k, (text, s) in enumerate(samples)]


def cr(pairs):
    return [(p["chosen"], p["rejected"]) for p in pairs]


def test_split_default_top_half_vs_rest():
    pairs, rep = build_pairs(rows_for("p1", [FOUR[2], FOUR[0], FOUR[3], FOUR[1]]))  # input order must not matter
    assert cr(pairs) == [("a", "c"), ("a", "d"), ("b", "c"), ("b", "d")]
    assert [p["margin"] for p in pairs] == [0.5, 1.0, 0.25, 0.75]
    p = pairs[0]
    assert (p["id"], p["prompt"], p["question"], p["strategy"]) == ("p1", "Q: p1?\nA:", "p1?", "split")
    assert (p["chosen_score"], p["rejected_score"]) == (1.0, 0.5)
    assert rep["pairs"] == 4 and rep["prompts"] == 1 and rep["ties_dropped"] == 0


def test_split_rounds_up_and_always_leaves_a_rejected_sample():
    three = FOUR[:3]
    assert cr(build_pairs(rows_for("p", three))[0]) == [("a", "c"), ("b", "c")]  # ceil(1.5) = 2 chosen
    assert cr(build_pairs(rows_for("p", three), top_fraction=0.3)[0]) == [("a", "b"), ("a", "c")]
    assert cr(build_pairs(rows_for("p", three), top_fraction=1.0)[0]) == [("a", "c"), ("b", "c")]  # clamped to k-1


def test_all_and_best_worst():
    pairs, _ = build_pairs(rows_for("p1", FOUR), strategy="all")
    assert cr(pairs) == [("a", "b"), ("a", "c"), ("a", "d"), ("b", "c"), ("b", "d"), ("c", "d")]
    assert {p["strategy"] for p in pairs} == {"all"}
    pairs, _ = build_pairs(rows_for("p1", FOUR), strategy="best-worst")
    assert cr(pairs) == [("a", "d")] and pairs[0]["margin"] == 1.0


def test_margin_filter():
    pairs, rep = build_pairs(rows_for("p1", FOUR), strategy="all", margin=0.5)
    assert cr(pairs) == [("a", "c"), ("a", "d"), ("b", "d"), ("c", "d")]  # differences .5, 1, .75, .5 (>= margin)
    assert rep["below_margin_dropped"] == 2  # a-b and b-c: .25
    assert cr(build_pairs(rows_for("p1", FOUR), strategy="split", margin=0.6)[0]) == [("a", "d"), ("b", "d")]
    pairs, rep = build_pairs(rows_for("p1", FOUR), strategy="best-worst", margin=1.5)
    assert pairs == [] and rep["no_pair_ids"] == ["p1"] and rep["below_margin_dropped"] == 1


def test_max_pairs_per_prompt_keeps_largest_margins_in_rank_order():
    pairs, rep = build_pairs(rows_for("p1", FOUR), strategy="all", max_pairs_per_prompt=2)
    assert cr(pairs) == [("a", "d"), ("b", "d")] and rep["capped_dropped"] == 4  # margins 1.0, .75
    # third place is a tie between a-c and c-d (.5 each): the earlier one in rank order wins
    assert cr(build_pairs(rows_for("p1", FOUR), strategy="all", max_pairs_per_prompt=3)[0]) == \
        [("a", "c"), ("a", "d"), ("b", "d")]


def test_duplicates_collapse_to_mean_and_ties_are_dropped():
    rows = rows_for("p2", [(" x ", 1.0), ("y", 0.75), ("x\n", 0.5), ("z", 0.25)])
    pairs, rep = build_pairs(rows, strategy="all")
    # x: mean(1.0, 0.5) = .75 ties with y (x seen first ranks first); the x-y pair is a tie
    assert cr(pairs) == [(" x ", "z"), ("y", "z")]
    assert pairs[0]["chosen_score"] == 0.75 and pairs[0]["chosen_count"] == 2 and pairs[1]["chosen_count"] == 1
    assert rep["duplicates_collapsed"] == 1 and rep["ties_dropped"] == 1
    # split with a tie straddling the cut: b-c is dropped, the rest kept
    rows = rows_for("p4", [("a", 1.0), ("b", 0.5), ("c", 0.5), ("d", 0.0)])
    pairs, rep = build_pairs(rows)
    assert cr(pairs) == [("a", "c"), ("a", "d"), ("b", "d")] and rep["ties_dropped"] == 1
    pairs, rep = build_pairs(rows_for("p3", [("u", 0.5), ("v", 0.5)]), strategy="best-worst")
    assert pairs == [] and rep["ties_dropped"] == 1 and rep["no_pair_ids"] == ["p3"]


def test_single_sample_prompts_and_none_scores_are_reported():
    rows = (rows_for("p5", [("same", 0.25), (" same", 0.75)]) + rows_for("p6", [("m", None), ("n", 0.25),
            ("o", 0.75)]) + rows_for("p7", [("q", None), ("r", float("nan"))]) + rows_for(7, FOUR[:2]))
    pairs, rep = build_pairs(rows)
    assert [(p["id"], p["chosen"], p["rejected"]) for p in pairs] == [("p6", "o", "n"), ("7", "a", "b")]
    assert rep["single_sample_ids"] == ["p5", "p7"] and rep["single_sample_prompts"] == 2
    assert rep["unscored_samples"] == 3 and rep["duplicates_collapsed"] == 1
    assert (rep["prompts"], rep["prompts_with_pairs"], rep["pairs"], rep["rows"]) == (4, 2, 2, 9)


def test_output_order_follows_prompt_first_appearance():
    a, b = rows_for("b", FOUR[:2]), rows_for("a", FOUR[2:])
    rows = [a[0], b[0], a[1], b[1]]
    assert [p["id"] for p in build_pairs(rows)[0]] == ["b", "a"]


def test_bad_options_and_rows():
    rows = rows_for("p", FOUR)
    with pytest.raises(SelfAlignError, match="strategy"):
        build_pairs(rows, strategy="best")
    for kw in ({"top_fraction": 0}, {"margin": -1}, {"max_pairs_per_prompt": 0}):
        with pytest.raises(SelfAlignError):
            build_pairs(rows, **kw)
    with pytest.raises(InputError, match="different prompts"):
        build_pairs(rows + rows_for("p", FOUR[:1], prompt="another prompt"))


def _write(path, rows, blank_after_first=False):
    lines = [json.dumps(r) for r in rows]
    if blank_after_first:
        lines.insert(1, "")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_run_pairs_rejects_missing_or_bad_score_with_line(tmp_path):
    rows = rows_for("p", FOUR)
    del rows[1]["score"]
    src = _write(tmp_path / "scores.jsonl", rows, blank_after_first=True)  # row 2 sits on line 3
    with pytest.raises(InputError, match=r"scores\.jsonl:3: missing field 'score'"):
        run_pairs(PairsConfig(input=str(src), output=str(tmp_path / "pairs.jsonl")))
    rows = rows_for("p", FOUR)
    rows[3]["score"] = "high"
    _write(src, rows)
    with pytest.raises(InputError, match=r"scores\.jsonl:4: score must be a number"):
        run_pairs(PairsConfig(input=str(src), output=str(tmp_path / "pairs.jsonl")))
    rows = rows_for("p", FOUR)
    del rows[2]["response"]
    _write(src, rows)
    with pytest.raises(InputError, match=r"scores\.jsonl:3: missing field 'response'"):
        run_pairs(PairsConfig(input=str(src), output=str(tmp_path / "pairs.jsonl")))
    assert not (tmp_path / "pairs.jsonl").exists()


def test_run_pairs_writes_trl_rows_meta_and_is_deterministic(tmp_path):
    datasets = pytest.importorskip("datasets")
    rows = rows_for("p1", FOUR) + rows_for("p5", [("only", 0.5)]) + rows_for("p2", [("é", 0.75), ("f", None)])
    rows += rows_for("p3", FOUR[1:])
    src = _write(tmp_path / "scores.jsonl", rows)
    out = tmp_path / "sub" / "pairs.jsonl"
    cfg = PairsConfig(input=str(src), output=str(out), strategy="all", max_pairs_per_prompt=2)
    summary = run_pairs(cfg)
    assert summary["pairs"] == 4 and summary["prompts"] == 4 and summary["single_sample_prompts"] == 2
    assert summary["report"]["single_sample_ids"] == ["p5", "p2"]
    first = out.read_bytes()
    got = [json.loads(line) for line in first.decode().splitlines()]
    assert [(r["id"], r["chosen"], r["rejected"]) for r in got] == [("p1", "a", "d"), ("p1", "b", "d"),
                                                                  ("p3", "b", "d"), ("p3", "c", "d")]
    meta = json.loads((tmp_path / "sub" / "pairs.jsonl.meta.json").read_text())
    assert meta["stage"] == "pairs" and meta["config"]["strategy"] == "all" and meta["report"]["pairs"] == 4
    assert sorted(p.name for p in out.parent.iterdir()) == ["pairs.jsonl", "pairs.jsonl.meta.json"]  # no .tmp left
    run_pairs(cfg)
    assert out.read_bytes() == first
    ds = datasets.load_dataset("json", data_files=str(out), split="train", cache_dir=str(tmp_path / "cache"))
    assert ds.num_rows == 4 and {"prompt", "chosen", "rejected"} <= set(ds.column_names)
    assert ds[0]["prompt"] == "Q: p1?\nA:" and ds[0]["margin"] == 1.0


def test_cli_flags_build_the_config():
    parser = argparse.ArgumentParser()
    add_args(parser, PairsConfig)
    cfg = from_args(PairsConfig, parser.parse_args(["--input", "s.jsonl", "--output", "p.jsonl", "--strategy", "all",
                                                    "--margin", "0.5", "--max-pairs-per-prompt", "3"]))
    assert (cfg.strategy, cfg.margin, cfg.max_pairs_per_prompt, cfg.top_fraction) == ("all", 0.5, 3, 0.5)
    with pytest.raises(SystemExit):
        parser.parse_args(["--strategy", "best"])


def test_answers_continue_their_prompt_as_they_were_generated():
    """Samples are stored stripped; a plain prompt ending mid-line gets its space back (TRL tokenises prompt +
    completion as one string: "isParis" is not what the model wrote), chat and newline-ended prompts do not."""
    from selfalign.stages.pairs import continuation

    two = [("Paris", 1.0), ("Lyon", 0.0)]
    plain, _ = build_pairs(rows_for("p", two, prompt="The capital of France is", chat=False))
    assert cr(plain) == [(" Paris", " Lyon")]
    unknown, _ = build_pairs([{k: v for k, v in r.items() if k != "chat_template"}
                              for r in rows_for("u", two, prompt="Q: u?\nA:")])
    assert cr(unknown) == [(" Paris", " Lyon")]  # rows without the field: the prompt decides
    chat, _ = build_pairs(rows_for("c", two, prompt="<|user|>Capital?<|assistant|>"))
    assert cr(chat) == [("Paris", "Lyon")]
    nl, _ = build_pairs(rows_for("n", two, prompt="Capital of France?\n", chat=False))
    assert nl[0]["chosen"] == "Paris"
    assert continuation("x is", " already spaced") == " already spaced" and continuation("x is", "") == ""
    # what the sample stage recorded wins over the rule (a newline-first answer), if it is the same answer
    written = [dict(r, continuation=("\n" if r["response"] == "Paris" else " ") + r["response"])
               for r in rows_for("w", two, prompt="The capital of France is", chat=False)]
    got, _ = build_pairs(written)
    assert cr(got) == [("\nParis", " Lyon")]
    assert continuation("x is", "Paris", False, "Lyon") == " Paris"  # another answer's text: not used
    assert continuation("<|assistant|>", "Paris", True, " Paris") == "Paris"  # chat: the reply as is
    with pytest.raises(InputError, match="continuation must be a string"):
        build_pairs([dict(written[0], continuation=3), written[1]])



@pytest.mark.parametrize("samples,margin,why", [
    (FOUR, 1.5, "--margin 1.5 dropped all 4 candidate pairs (the largest score gap within a prompt is 1)"),
    ([("a", 0.5), ("b", 0.5)], 0.0, "every candidate pair was a tie (1)"),
    ([("a", 0.5), ("a", 0.7)], 0.0, "no prompt has two distinct scored samples"),
])
def test_run_pairs_refuses_to_write_no_pairs_and_says_why(tmp_path, samples, margin, why):
    src = tmp_path / "scores.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows_for("p1", samples)))
    with pytest.raises(InputError, match="no preference pairs from") as e:
        run_pairs(PairsConfig(input=str(src), output=str(tmp_path / "pairs.jsonl"), margin=margin))
    assert why in str(e.value) and not (tmp_path / "pairs.jsonl").exists()
