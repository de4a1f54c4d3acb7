"""Docstrings render as written: no control characters where LaTeX backslashes belong."""

import ast
import pathlib

import pytest

import evaluation

PACKAGE = pathlib.Path(evaluation.__file__).parent
MODULES = sorted(PACKAGE.rglob("*.py"))
CONTROL = {"\b": r"\b", "\t": r"\t", "\f": r"\f", "\v": r"\v", "\a": r"\a", "\r": r"\r"}


def _docstrings(path: pathlib.Path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            text = ast.get_docstring(node, clean=False)
            if text:
                yield getattr(node, "name", path.stem), text


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_control_characters_in_docstrings(path):
    bad = [(name, escape) for name, text in _docstrings(path)
           for char, escape in CONTROL.items() if char in text]
    assert not bad, f"{path}: {bad} (write the docstring as a raw string r'''...''')"


def test_the_check_sees_a_mangled_latex_docstring(tmp_path):
    module = tmp_path / "mangled.py"
    module.write_text('def f():\n    """Coefficient :math:`\\beta`."""\n', encoding="utf-8")
    assert [name for name, text in _docstrings(module) if "\b" in text] == ["f"]
