"""Issue 34: the files a recipe names for a stage to read lie in the run folder or the data root (a shared recipe
cannot read ~/.ssh/id_rsa as its prompts and send them to the engine it names); the same path given on the command
line is the user's and is taken. Named data sets are not paths. One line, exit 2, before anything runs."""
from __future__ import annotations

import json

import pytest

from selfalign.cli import main


@pytest.fixture
def places(tmp_path, monkeypatch):
    """(data root, run folder, a prompts file outside both) with the working folder in tmp_path."""
    monkeypatch.chdir(tmp_path)
    root, run = tmp_path / "data", tmp_path / "runs" / "r"
    root.mkdir()
    monkeypatch.setenv("SELFALIGN_DATA", str(root))
    outside = tmp_path / "elsewhere" / "p.jsonl"
    outside.parent.mkdir()
    for p in (outside, root / "p.jsonl"):
        p.write_text(json.dumps({"id": "1", "question": "Q?"}) + "\n")
    return root, run, outside


CASES = {
    "sample.input": ("sample: {{input: {p}}}\n", "sample.input"),
    "sk-data.sources": ("sk-data: {{sources: [bigbench:qa_wikidata, {p}]}}\nsk-tune: {{}}\n", "sk-data.sources"),
    "mc-data.data sk:PATH": ("mc-data: {{data: 'sk:{p}'}}\n", "mc-data.data"),
    "eval data": ("eval: {{tasks: [calibrate], calibrate: {{data: {p}}}}}\n", "eval.calibrate.data"),
    "a relative path out of the root": ("sample: {{input: ../elsewhere/p.jsonl}}\n", "sample.input"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_recipe_reads_only_in_the_run_folder_or_the_data_root(case, places, tmp_path, capsys):
    root, run, outside = places
    text, key = CASES[case]
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model: m\n" + text.format(p=outside))
    before = sorted(p for p in tmp_path.rglob("*"))
    assert main(["run", str(recipe), "--dry-run", "--output", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{key} " in err and "is outside the run folder" in err, err
    assert f"give it on the command line ({key}=PATH)" in err
    assert sorted(p for p in tmp_path.rglob("*")) == before
    if case == "sample.input":  # given on the command line it is the user's; in the data root it is read
        assert main(["run", str(recipe), "--dry-run", "--output", str(run), f"sample.input={outside}"]) == 0
        recipe.write_text(f"model: m\nsample: {{input: {root / 'p.jsonl'}}}\n")
        assert main(["run", str(recipe), "--dry-run", "--output", str(run)]) == 0
        inside_run = run / "p.jsonl"
        inside_run.parent.mkdir(parents=True)
        inside_run.write_text(outside.read_text())
        recipe.write_text(f"model: m\nsample: {{input: {inside_run}}}\n")
        assert main(["run", str(recipe), "--dry-run", "--output", str(run)]) == 0


def test_named_data_sets_are_not_paths(places):
    from selfalign.run.confine import check_recipe_reads

    _, run, _ = places
    check_recipe_reads({"sample": {"input": "truthfulqa"}, "mc-data": {"data": "truthfulqa-mc:valid"},
                        "sk-data": {"sources": ["bigbench:all", "truthfulqa-mc", "bigbench:qa_wikidata"]},
                        "score": {"input": "@sample"},
                        "eval": {"biogen": {"input": "biogen"}, "wikifacts": {"data": "wikifacts:free"}}},
                       run, "r.yaml")  # nothing refused
