"""Bad inputs drawn by Hypothesis from the declarations (tests/test_property_inputs.py).

Where tests/fuzz_inputs.py lists fixed bad values, these strategies draw them: a flag value from its field's
declaration (type, choices, pattern, range), a recipe value the same way, and a file from its record schema
(``fuzz_records.GOOD`` rows, the JSON types of ``io.FIELDS``, the required fields below) mutated: wrong types,
missing or empty fields, nesting depth, huge and non-finite numbers, lone surrogates and bytes that are not UTF-8,
long lines, duplicates, blank lines and CRLF. Each draw says whether the declaration makes it invalid
(``Draw.invalid``: the command must exit 2 with one line naming the file and line) or leaves it possibly valid
(the command may run; it must still never give a traceback or change a file that existed before).
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Optional

from hypothesis import strategies as st

from fuzz_records import DUPLICATES, GOOD, MC_TASK, RESULT, WRONG
from selfalign.store.io import FIELDS, NOT_NULL

# the fields each record kind's readers require (a tuple: one of them), from their read_jsonl/iter_numbered calls
REQUIRED = {"prompts": ["id", ("question", "prompt")], "samples": ["id", "question", "response"],
            "scores": ["id", "prompt", "response", "score"], "mc": ["id", "question", "options"],
            "mc_text": ["id", "question", "options"], "sk": ["prompt", "chosen", "rejected"],
            "pairs": ["prompt", "chosen", "rejected"], "answers": ["id", "question", ("response", "answer")],
            "people": ["id", ("topic", "question")], "bios": [("response", "output"), ("topic", "question")],
            "knowledge": ["title", "text"], "claims": []}
SHAPED = ("options", "correct_answers", "incorrect_answers", "text", "title")  # checked by their readers, not FIELDS
BAD_UTF8 = [b"\xff", b"\x80", b"\xe9", b"\xc3(", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf"]
DEEP = 100_000  # nesting no reader can follow


class Draw:
    """A file's bytes, the mutation (``what``), whether the declaration refuses it (``invalid``: exit 2, one line)
    and the line the error must name (None: the file)."""

    def __init__(self, data: bytes, what: str, invalid: bool, line: Optional[int] = None):
        self.data, self.what, self.invalid, self.line = data, what, invalid, line

    def __repr__(self):
        return f"Draw({self.what!r}, invalid={self.invalid}, line={self.line}, {len(self.data)} bytes)"


# --- JSON values and what a field's declaration accepts ------------------------------------------------------
SCALARS = (st.none() | st.booleans() | st.integers(-10 ** 30, 10 ** 30) | st.floats()
           | st.sampled_from([10 ** 400, -10 ** 400, 1e308, 5e-324]) | st.text(max_size=12))
VALUES = st.recursive(SCALARS, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
                      max_leaves=6)


def accepts(name: str, v) -> bool:
    """Whether ``io.FIELDS``' declared JSON type takes ``v`` (null aside): no booleans for numbers (but a label's
    true/false), finite or NaN scores."""
    types = FIELDS[name][0]
    if name == "label":  # 0 or 1; JSON true/false are taken as 1/0 on purpose (as option labels are: data.mc)
        return v in (0, 1) and isinstance(v, int)
    if isinstance(v, bool) or not isinstance(v, types):
        return False
    if isinstance(v, (int, float)) and float in types:
        try:
            return math.isnan(v) or not math.isinf(float(v))
        except OverflowError:
            return False
    return True


def _required(kind: str, name: str) -> bool:
    return any(name == f or (isinstance(f, tuple) and name in f and name in GOOD[kind] and
                             not any(g in GOOD[kind] for g in f if g != name)) for f in REQUIRED[kind])


def checked(kind: str) -> list[str]:
    """The fields of a record kind whose readers check them (those fuzz_records.WRONG names)."""
    return sorted({f for f, _, _ in WRONG.get(kind, [])})


def bad_shape(kind: str, name: str):
    """Values the reader of a shaped field must refuse."""
    if name == "options":
        item = st.fixed_dictionaries({"text": st.sampled_from(["", "  ", 5, None, ["a"]])})
        if kind == "mc":
            item = item | st.fixed_dictionaries({"text": st.just("a"), "label": VALUES.filter(lambda v: v not in (0, 1))})
        return (VALUES.filter(lambda v: not isinstance(v, list)) | st.just([])
                | st.lists(item | SCALARS, min_size=1, max_size=3).map(lambda xs: [{"text": "ok", "label": 1}, *xs]))
    if name in ("correct_answers", "incorrect_answers"):
        return (VALUES.filter(lambda v: v is not None and not isinstance(v, list))
                | st.lists(SCALARS.filter(lambda v: not isinstance(v, str)), min_size=1, max_size=3))
    if name == "title":
        return VALUES.filter(lambda v: v is not None and not isinstance(v, str))
    if name == "text":  # a string or a list of sentences
        return (VALUES.filter(lambda v: v is not None and not isinstance(v, (str, list)))
                | st.lists(SCALARS.filter(lambda v: not isinstance(v, str)), min_size=1, max_size=3))
    raise KeyError(name)


def wrong_value(kind: str, name: str):
    if name in SHAPED:
        return bad_shape(kind, name)
    null_bad = name in NOT_NULL or (_required(kind, name) and name != "score")  # a null score: not scored
    return VALUES.filter(lambda v: (v is None and null_bad) or (v is not None and not accepts(name, v)))


# --- JSONL files of a record kind ----------------------------------------------------------------------------
def _good(kind: str, k: int) -> dict:
    from fuzz_inputs import _good as good

    return good(kind, k)


def _dump(row) -> bytes:
    return json.dumps(row, ensure_ascii=False, allow_nan=True).encode("utf-8", "surrogatepass")


def _with_note(row: dict, raw: bytes) -> bytes:
    """The row's JSON with ``"note": <raw bytes>`` added (raw: already JSON, or bytes that make it not UTF-8)."""
    return _dump(row)[:-1] + (b', ' if row else b'') + b'"note": ' + raw + b"}"


@st.composite
def jsonl_file(draw, kind: str) -> Draw:
    n = draw(st.integers(1, 4))
    rows = [_good(kind, k) for k in range(n)]
    i = draw(st.integers(0, n - 1))
    row, lines, what, invalid, at = dict(rows[i]), None, "", True, True
    fields = checked(kind)
    how = draw(st.sampled_from(["wrong type", "missing field", "empty string", "malformed", "not an object",
                                "not UTF-8", "surrogate", "deep", "nested", "long line", "duplicate", "extra field",
                                "huge number", "empty file"]))
    if how == "wrong type" and fields:
        name = draw(st.sampled_from(fields))
        row[name] = draw(wrong_value(kind, name))
        what = f"{name}={json.dumps(row[name])[:80]}"
    elif how == "missing field" and any(_required(kind, f) for f in row):
        name = draw(st.sampled_from([f for f in row if _required(kind, f)]))
        del row[name]
        what = name
    elif how == "empty string":
        name = draw(st.sampled_from([f for f, v in row.items() if isinstance(v, str)]))
        row[name], invalid, what = draw(st.sampled_from(["", " ", "\n", "\t"])), False, name
    elif how == "malformed":
        text = _dump(row)
        lines = text[:draw(st.integers(1, len(text) - 1))]
    elif how == "not an object":
        lines = _dump(draw(VALUES.filter(lambda v: not isinstance(v, dict))))
    elif how == "not UTF-8":
        lines = _with_note(row, b'"caf' + draw(st.sampled_from(BAD_UTF8)) + b'"')
    elif how == "surrogate":
        cp = draw(st.integers(0xD800, 0xDFFF))
        name = draw(st.sampled_from(["note", *[f for f, v in row.items() if isinstance(v, str)]]))
        row[name] = f"x{chr(cp)}y"
        what = f"{name} \\u{cp:04x}"
    elif how == "deep":
        lines, what = _with_note(row, b"[" * DEEP + b"]" * DEEP), f"nested {DEEP}"
    elif how == "nested":
        d = draw(st.integers(2, 200))
        lines, invalid, what = _with_note(row, b"[" * d + b"]" * d), False, f"extra field nested {d}"
    elif how == "long line":
        size = draw(st.sampled_from([10 ** 4, 10 ** 5, 10 ** 6]))
        name = draw(st.sampled_from(["note", *[f for f, v in row.items() if isinstance(v, str)]]))
        row[name], invalid, what = "x" * size, False, f"{name} of {size} chars"
    elif how == "duplicate" and kind in DUPLICATES and n > 1 and i > 0:
        row = dict(rows[draw(st.integers(0, i - 1))])
    elif how == "extra field":
        row[draw(st.sampled_from(["note", "extra", "meta"]))] = draw(VALUES)
        invalid = False
    elif how == "huge number" and "score" in row:
        lines = _dump({**row, "score": 0})[:-1].replace(b'"score": 0', b'"score": ' + draw(
            st.sampled_from([b"1e400", b"-1e999", b"Infinity", b"-Infinity", b"1" + b"0" * 400])))  + b"}"
    elif how == "empty file":
        blank = draw(st.sampled_from([b"", b"\n", b"\n\n  \n"]))
        return Draw(blank, f"{kind}: empty file {blank!r}", kind != "claims", None)  # an empty cache is a cache
    else:
        how, invalid = "valid", False
    rows[i] = row
    out, line, blank_before = [], None, draw(st.lists(st.integers(0, n - 1), max_size=2))
    for k, r in enumerate(rows):
        out += [b""] * blank_before.count(k)
        if k == i:
            line = len(out) + 1
        out.append(lines if k == i and lines is not None else _dump(r))
    eol = draw(st.sampled_from([b"\n", b"\r\n"]))
    return Draw(eol.join(out) + eol, f"{kind} row {i} {how} {what}".strip(), invalid, line if at else None)


# --- JSON files: TruthfulQA's mc_task.json and an evaluation result -------------------------------------------
def _json_mutations(draw, base, invalid_paths: dict) -> Draw:
    how = draw(st.sampled_from(["replace", "top", "deep", "surrogate", "not UTF-8", "drop"]))
    obj = json.loads(json.dumps(base))
    if how == "top":
        obj = draw(VALUES.filter(lambda v: not isinstance(v, type(base))))
        return Draw(_dump(obj), f"top-level {json.dumps(obj)[:60]}", True)
    if how == "deep":
        return Draw(b"[" * DEEP + b"]" * DEEP, "nested", True)
    if how == "not UTF-8":
        return Draw(_dump(base).replace(b"a", draw(st.sampled_from(BAD_UTF8)), 1), "not UTF-8", True)
    if how == "surrogate":
        return Draw(_dump(base).replace(b"a", f"\\u{draw(st.integers(0xD800, 0xDFFF)):04x}".encode(), 1),
                    "surrogate", True)
    path = draw(st.sampled_from(sorted(invalid_paths)))
    node, keys = obj, path.split(".")
    for k in keys[:-1]:
        node = node[int(k)] if isinstance(node, list) else node[k]
    if how == "drop":
        node.pop(keys[-1], None)
        return Draw(_dump(obj), f"without {path}", False)
    bad, refuses = invalid_paths[path]
    value = draw(bad if bad is not None and draw(st.booleans()) else VALUES)
    node[keys[-1]] = value
    return Draw(_dump(obj), f"{path}={json.dumps(value)[:60]}", refuses is not None and refuses(value))


def _not_str(v):
    return not isinstance(v, str)


def _not_labels(v):
    return not isinstance(v, dict) or not v or any(x not in (0, 1) for x in v.values())


def _not_numbers(v):
    if isinstance(v, int) and not isinstance(v, bool):
        try:
            float(v)
        except OverflowError:  # no float holds it
            return True
    return isinstance(v, (str, list, dict, bool))


MC_TASK_FIELDS = {"0.question": (VALUES.filter(_not_str), _not_str),
                  "0.mc2_targets": (VALUES.filter(_not_labels), _not_labels),
                  "0.mc1_targets": (None, None)}
RESULT_FIELDS = {"task": (VALUES.filter(_not_str), _not_str),
                 "metrics": (VALUES.filter(lambda v: not isinstance(v, dict)), lambda v: not isinstance(v, dict)),
                 "metrics.m.value": (VALUES.filter(_not_numbers), _not_numbers),
                 "metrics.m.n": (VALUES.filter(_not_numbers), _not_numbers),
                 "rows": (VALUES.filter(lambda v: v and not isinstance(v, str)) | st.sampled_from(["/", "a/b", ".."]),
                          lambda v: bool(v) and (_not_str(v) or Path(v).name != v or v in (".", ".."))),
                 "meta": (None, None), "judge_validation": (None, None), "verifier_gate": (None, None),
                 "split": (None, None), "n_questions": (None, None), "factscore": (None, None)}


@st.composite
def mc_task_file(draw) -> Draw:
    return _json_mutations(draw, MC_TASK, MC_TASK_FIELDS)


@st.composite
def result_file(draw) -> Draw:
    base = {**RESULT, "meta": {"model": "m"}, "split": "test"}
    return _json_mutations(draw, base, RESULT_FIELDS)


# --- a TruthfulQA CSV and a recipe ----------------------------------------------------------------------------
@st.composite
def csv_file(draw) -> Draw:
    from fuzz_records import CSV

    head, row = CSV.splitlines()
    how = draw(st.sampled_from(["no column", "not UTF-8", "long field", "nul", "quote", "short row", "extra rows"]))
    if how == "no column":
        cols = head.split(",")
        cols.remove(draw(st.sampled_from(["Question", "Best Answer", "Correct Answers", "Incorrect Answers"])))
        return Draw((",".join(cols) + "\n" + row + "\n").encode(), how, True, 1)
    if how == "not UTF-8":
        return Draw((head + "\n").encode() + row.encode().replace(b"Paris", b"Par" + draw(st.sampled_from(BAD_UTF8)), 1)
                    + b"\n", how, True, 2)
    body = {"long field": row.replace("Paris", "P" * draw(st.sampled_from([10 ** 5, 2 * 10 ** 5])), 1),
            "nul": row.replace("Paris", "Pa\x00ris", 1), "quote": row.replace("Paris", '"Paris', 1),
            "short row": row.rsplit(",", 3)[0], "extra rows": row + "\n" + row.replace("France", "Spain")}[how]
    return Draw((head + "\n" + body + "\n").encode(), how, False)


def _bomb(depth: int = 9, width: int = 9) -> str:
    lines = [f"a0: &a0 [{', '.join(['x'] * width)}]"]
    lines += [f"a{k}: &a{k} [{', '.join([f'*a{k - 1}'] * width)}]" for k in range(1, depth)]
    return "description:\n" + "".join(f"  {ln}\n" for ln in lines)


@st.composite
def recipe_text(draw, prompts: str) -> Draw:
    """A recipe file mutated as YAML: nesting, aliases, keys, bytes, escapes (``prompts``: a valid input file)."""
    good = f"model: m\nsample: {{input: {json.dumps(prompts)}}}\n"
    how = draw(st.sampled_from(["deep flow", "deep block", "alias bomb", "duplicate key", "key type", "not UTF-8",
                                "surrogate", "tabs", "garbage", "big int", "anchor loop", "outside"]))
    if how == "outside":  # a path the recipe would write or read outside the run's places (run.confine)
        extra = draw(st.sampled_from(["output: /tmp/elsewhere", "output: ../../elsewhere", "output: runs/../../x",
                                      "score: {method: claims, claim_cache: /tmp/c.jsonl}",
                                      "score: {method: claims, claim-cache: ../../c.jsonl}",
                                      "eval: {tasks: [biogen], biogen: {claim_cache: /tmp/c.jsonl}}",
                                      "pairs: {output: p.jsonl}", "sk-data: {sources: [/etc/passwd]}",
                                      "mc-data: {data: 'sk:../../x.jsonl'}",
                                      "eval: {tasks: [calibrate], calibrate: {data: /etc/hostname}}"]))
        return Draw((good + extra + "\n").encode(), f"{how}: {extra}", True)
    if how == "deep flow":
        d = draw(st.sampled_from([65, 1000, 5000, 100_000]))
        return Draw((good + "description: " + "[" * d + "]" * d + "\n").encode(), f"{how} {d}", True)
    if how == "deep block":
        d = draw(st.integers(65, 300))
        return Draw((good + "description:\n" + "".join(" " * k + f"- k{k}:\n" for k in range(1, d))).encode()
                    + b" " * d + b"- x\n", f"{how} {d}", True)
    if how == "alias bomb":
        key = draw(st.sampled_from(["description", "name"]))
        return Draw((good + _bomb().replace("description:", key + ":", 1)).encode(), how, True)
    if how == "duplicate key":
        key = draw(st.sampled_from(["model: n", "sample: {}", "name: x\nname: y", "seed: 1\nseed: 1"]))
        return Draw((good + key + "\n").encode(), how, True)
    if how == "key type":
        key = draw(st.sampled_from(["1", "null", "true", "1.5", "[a, b]", "{a: 1}", "~"]))
        where = draw(st.sampled_from(["top", "sample"]))
        text = good + f"{key}: x\n" if where == "top" else good.replace("{input", "{" + key + ": 1, input")
        return Draw(text.encode(), f"{how} {key} in {where}", True)
    if how == "not UTF-8":
        return Draw(good.encode() + b"description: caf" + draw(st.sampled_from(BAD_UTF8)) + b"\n", how, True, 3)
    if how == "surrogate":
        cp = draw(st.integers(0xD800, 0xDFFF))
        key = draw(st.sampled_from(["name", "description"]))
        return Draw((good + f'{key}: "x\\u{cp:04x}y"\n').encode(), f"{how} {key}", True)
    if how == "anchor loop":
        return Draw((good + "description: &a [*a]\n").encode(), how, True)
    extra = {"tabs": "description:\n\t- x\n", "garbage": draw(st.text(max_size=30)) + "\n",
             "big int": "seed: " + "9" * draw(st.sampled_from([20, 400, 5000])) + "\n"}[how]
    return Draw((good + extra).encode("utf-8", "surrogatepass"), how, False)
