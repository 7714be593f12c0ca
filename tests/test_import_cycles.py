"""No module of ``selfalign`` imports, directly or through others, a module that imports it back. Imports are read
from the source (every ``import``/``from`` statement, function-level ones too), so a lazy import counts as an edge."""
from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "selfalign"


def _name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _edges(modules: set[str]) -> dict[str, set[str]]:
    def known(name: str) -> str | None:  # a module of ours, or the package that holds a name
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    out: dict[str, set[str]] = {}
    for path in PKG.rglob("*.py"):
        me, pkg = _name(path), _name(path) if path.name == "__init__.py" else _name(path).rpartition(".")[0]
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                deps |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(pkg.split(".")[: len(pkg.split(".")) - node.level + 1] + ([base] if base else []))
                deps |= {f"{base}.{a.name}" for a in node.names} | {base}
        out[me] = {d for d in map(known, deps) if d and d != me and not me.startswith(d + ".")
                   and not (d == "selfalign")}
    return out


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str):
        state[m] = 1
        stack.append(m)
        for d in sorted(edges.get(m, ())):
            if state.get(d) == 1:
                return stack[stack.index(d):] + [d]
            if d not in state and (found := visit(d)):
                return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(edges):
        if m not in state and (found := visit(m)):
            return found
    return None


def test_cycle_finder_finds_a_loop():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycles():
    modules = {_name(p) for p in PKG.rglob("*.py")}
    assert _cycle(_edges(modules)) is None
