"""The package's import rule (docs/architecture.md): imports run one way, from the faces down to
the geometry; no cycles, lazy imports included; a witness never imports a backward formula."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "gradcheck"

#: The stages, lowest first.  A module may import modules of a lower stage, or of its own
#: subpackage; never of a higher stage.
STAGES = (
    ("gradcheck.errors", "gradcheck.floating"),
    ("gradcheck.geometry",),
    ("gradcheck.formulas",),
    ("gradcheck.witnesses",),
    ("gradcheck.judge",),
    ("gradcheck.explain",),
    ("gradcheck.harness",),
    ("gradcheck.faces",),
    ("gradcheck", "gradcheck.strategies", "gradcheck.__main__"),
)


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


MODULES = _modules()


def _stage(module: str) -> int:
    best = (-1, -1)
    for rank, prefixes in enumerate(STAGES):
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                best = max(best, (len(prefix), rank))
    assert best[1] >= 0, f"{module} belongs to no stage: add it to STAGES and the map"
    return best[1]


def _imports(module: str) -> list[tuple[str, tuple[str, ...]]]:
    """(imported module, names) for every import in ``module``, at any depth (lazy too)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, ()) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            names = tuple(alias.name for alias in node.names)
            submodules = [f"{base}.{n}" for n in names if f"{base}.{n}" in MODULES]
            found += [(s, ()) for s in submodules]
            found.append((base, tuple(n for n in names if f"{base}.{n}" not in MODULES)))
    return [(m, names) for m, names in found if m == "gradcheck" or m.startswith("gradcheck.")]


def _subpackage(module: str) -> str:
    return ".".join(module.split(".")[:2])


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_run_downward(module: str) -> None:
    if module == "gradcheck":  # the public face re-exports lazily from every stage
        return
    for target, _ in _imports(module):
        if target not in MODULES or _subpackage(target) == _subpackage(module):
            continue
        assert _stage(target) < _stage(module), (
            f"{module} (stage {_stage(module)}) imports {target} (stage {_stage(target)}): "
            "imports run from the faces down to the geometry")


@pytest.mark.parametrize("module",
                         sorted(m for m in MODULES if m.startswith("gradcheck.witnesses")))
def test_witnesses_never_import_a_backward_formula(module: str) -> None:
    for target, names in _imports(module):
        if target.startswith("gradcheck.formulas"):
            assert not any(n.endswith("backward") for n in names), (
                f"{module} imports {names} from {target}: a witness is computed from the "
                "forward and the data only")


def test_no_import_cycles() -> None:
    edges = {m: {t for t, _ in _imports(m) if t in MODULES and t != m} for m in MODULES}
    edges["gradcheck"] = set()  # lazy re-exports only, resolved on attribute access

    def reachable(start: str) -> set[str]:
        seen: set[str] = set()
        todo = [start]
        while todo:
            for nxt in edges[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    cycles = sorted({tuple(sorted((a, b))) for a in MODULES for b in reachable(a)
                     if a != b and a in reachable(b)})
    assert not cycles, f"import cycles: {cycles}"


def test_stage_table_is_the_map() -> None:
    """docs/architecture.md names every subpackage of the table."""
    text = (PACKAGE.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    for prefixes in STAGES[1:-1]:
        for prefix in prefixes:
            assert f"{prefix.split('.')[-1]}/" in text, f"{prefix} missing from the map"
