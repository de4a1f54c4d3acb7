"""The folders show the architecture: layers only import downwards."""

import ast
import pathlib

import pytest

import evaluation

PACKAGE = pathlib.Path(evaluation.__file__).parent
#: What each layer may not import (everything above it).
FORBIDDEN = {
    "panel": ("evaluation.estimators", "evaluation.matching", "evaluation.report",
              "evaluation.cli", "evaluation.simulate", "evaluation.synthetic"),
    "sources": ("evaluation.estimators", "evaluation.matching", "evaluation.report",
                "evaluation.cli"),
    "synthetic": ("evaluation.estimators", "evaluation.matching", "evaluation.report",
                  "evaluation.cli"),
    "estimators": ("evaluation.report", "evaluation.cli"),
    "matching": ("evaluation.report", "evaluation.cli"),
    "report": ("evaluation.cli",),
}


def _imports(path: pathlib.Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_only_downwards(layer):
    offending = {}
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        bad = sorted(n for n in _imports(path) if n.startswith(FORBIDDEN[layer]))
        if bad:
            offending[str(path.relative_to(PACKAGE))] = bad
    assert not offending


def test_no_two_modules_share_a_top_level_function_name_across_layers():
    """``read_table`` and ``check_columns`` once existed twice; public names are unique."""
    seen: dict[str, str] = {}
    clashes = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
                where = str(path.relative_to(PACKAGE))
                if node.name in seen and node.name not in ("main",):
                    clashes.append((node.name, seen[node.name], where))
                seen.setdefault(node.name, where)
    assert not clashes
