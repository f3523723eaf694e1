"""Data flows one way (docs/ARCHITECTURE.md): the iterators never import the Dataset module, and
dataset.py never imports pipeline internals. Read from the sources (every import statement,
those inside functions too), so a lazy import that closes a circle is caught as well."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[2] / "deeplake_loader"


def _imports(path: Path) -> list:
    """Absolute module names ``path`` imports (relative imports resolved against the package)."""
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    package = parts[:-1] if parts[-1] != "__init__" else parts[:-1]
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            mod = ".".join(base + ([node.module] if node.module else []))
            out += [mod] + [f"{mod}.{a.name}" for a in node.names]
    return out


def test_iterators_do_not_import_the_dataset_module():
    for path in sorted((PKG / "iterators").glob("*.py")):
        bad = [m for m in _imports(path) if m == "deeplake_loader.dataset" or m.startswith("deeplake_loader.dataset.")]
        assert not bad, f"{path.name} imports {bad}"


def test_dataset_imports_no_pipeline_module():
    bad = [m for m in _imports(PKG / "dataset.py") if m.startswith("deeplake_loader.pipeline")]
    assert not bad, f"dataset.py imports {bad}"
