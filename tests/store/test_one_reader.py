"""One reader per file kind (issue 34): JSON and JSONL go through store/io.py (bounded nesting, line length and
file size; a damaged file is one line naming file and line), YAML through store/yamlfile.py (bounded aliases, depth
and size). A raw parse anywhere else in the package fails this test: route it through the readers, or add it to
ALLOWED with the reason it reads no file."""
from __future__ import annotations

import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "selfalign"
READERS = {"store/io.py", "store/yamlfile.py"}
RAW = re.compile(r"\bjson\.loads?\(|\byaml\.(?:safe_|full_|unsafe_)?load(?:_all)?\(|\.readlines\("
                 r"|\bcsv\.(?:Dict)?[Rr]eader\(")
# (file, the text of the line): parses of values this package built itself, never of a file
ALLOWED = {
    ("store/lineage.py", "return redact(json.loads(json.dumps(values, default=str)))"),  # JSON-normalised settings
    ("training/lora.py", "d = json.loads(json.dumps(dataclasses.asdict(cfg), default=str))"),  # a config as JSON
    ("data/truthfulqa.py", 'reader = csv.DictReader(io.StringIO(text, newline=""))'),  # text from io.read_text
}


def raw_parses() -> set[tuple[str, str]]:
    found = set()
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel in READERS:
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            if RAW.search(line) and not line.lstrip().startswith("#"):
                found.add((rel, line.strip()))
    return found


def test_no_raw_json_or_yaml_parse_outside_the_readers():
    extra = raw_parses() - ALLOWED
    assert not extra, "parse these through selfalign.store.io / store.yamlfile (or allow them, saying why):\n" + \
        "\n".join(f"  {f}: {line}" for f, line in sorted(extra))


def test_the_allow_list_is_current():
    assert ALLOWED <= raw_parses(), ALLOWED - raw_parses()


def test_the_pattern_finds_what_it_must(tmp_path):
    for text in ("obj = json.loads(p.read_text())", "json.load(f)", "yaml.safe_load(raw)", "f.readlines()",
                 "yaml.load(t, Loader=L)", "csv.reader(f)"):
        assert RAW.search(text), text
    assert not RAW.search("parse_json(text, path)") and not RAW.search("json.dumps(x)")
