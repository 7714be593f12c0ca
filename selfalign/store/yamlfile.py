"""YAML read safely and bounded (recipes and their ``KEY=VALUE`` overrides): the one YAML reader."""
from __future__ import annotations

from selfalign.errors import InputError

MAX_YAML_NODES = 100_000  # values in a YAML document once its aliases are expanded (a 500-byte alias bomb: billions)
MAX_YAML_DEPTH = 64
MAX_YAML_BYTES = 2 ** 20  # a recipe is a few KB


def parse_yaml(text: str, where):
    """A YAML document read safely and bounded: keys must be strings and appear once per mapping (a duplicate is an
    error with its line, not silently the last one), and the document, its aliases expanded, holds at most
    ``MAX_YAML_NODES`` values nested at most ``MAX_YAML_DEPTH`` deep, in at most ``MAX_YAML_BYTES`` of text.
    InputError naming the line otherwise."""
    import yaml

    if len(text) > MAX_YAML_BYTES:
        raise InputError(where, f"{len(text):,} characters of YAML: more than the {MAX_YAML_BYTES:,} read")
    _flow_depth(text, where)  # before PyYAML, whose scanner is quadratic in flow nesting (100,000 '[': hours)

    class Strict(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            seen = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                if not isinstance(key, str):
                    raise InputError(where, f"key {key!r} must be a string", line)
                if key in seen:
                    raise InputError(where, f"duplicate key {key!r}", line)
                seen.add(key)
            return super().construct_mapping(node, deep)

    try:
        data = yaml.load(text, Loader=Strict)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise InputError(where, f"not valid YAML ({getattr(e, 'problem', e)})", mark.line + 1 if mark else None) \
            from None
    except RecursionError:
        raise InputError(where, "YAML nested too deeply to read") from None
    except ValueError as e:  # an integer of more digits than Python converts (4,300)
        raise InputError(where, f"not valid YAML ({str(e).split(';')[0]})") from None
    _bounded(data, where)
    _text_only(data, text, where)
    return data


def _text_only(data, text: str, where) -> None:
    """InputError for a lone surrogate (a ``"\\ud800"`` escape): YAML can say it, but it is not text, and the
    recipe could not be written back (recipe.json)."""
    import json

    from selfalign.store.io import LONE_SURROGATE

    try:
        json.dumps(data, ensure_ascii=False, default=str).encode("utf-8")
    except UnicodeEncodeError:
        m = LONE_SURROGATE.search(text)
        raise InputError(where, "holds a lone surrogate escape (such as \\ud800), which is not text",
                         text.count("\n", 0, m.start()) + 1 if m else None) from None


def _bounded(data, where) -> None:
    """Walk the value as a reader would (shared alias targets counted each time), stopping at the bounds."""
    count, stack = 0, [(data, 0)]
    while stack:
        value, depth = stack.pop()
        count += 1
        if count > MAX_YAML_NODES:
            raise InputError(where, f"YAML holds more than {MAX_YAML_NODES} values once its aliases are expanded")
        if depth > MAX_YAML_DEPTH:
            raise InputError(where, f"YAML nested deeper than {MAX_YAML_DEPTH}")
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)


def _flow_depth(text: str, where) -> None:
    """InputError when ``[``/``{`` nest deeper than ``MAX_YAML_DEPTH`` (quoted text and comments aside): a cheap
    upper bound of the flow nesting, checked in one pass."""
    depth, quote, line, prev = 0, None, 1, "\n"
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
        if quote:
            if c == "\\" and quote == '"':
                i += 1
            elif c == quote:
                quote = None
        elif c == "#" and prev in " \t\n":
            j = text.find("\n", i)
            i, prev = (n if j < 0 else j), "#"
            continue
        elif c in "'\"" and prev in " \t\n[{,:-?":
            quote = c
        elif c in "[{":
            depth += 1
            if depth > MAX_YAML_DEPTH:
                raise InputError(where, f"YAML nested deeper than {MAX_YAML_DEPTH}", line)
        elif c in "]}":
            depth = max(0, depth - 1)
        prev = c
        i += 1
