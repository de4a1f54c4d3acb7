"""Run the hostile-input corpus and print what happened, by command.

Usage::

    .venv/bin/python benchmarks/hostile_corpus.py [--details]

Runs every case of ``tests/test_hostile_cli.py`` (and ``tests/test_hostile_input.py`` when
it exists and defines ``CASES``) in its own temporary directory with the checks of
``tests/_hostile.py`` and prints one row per command: cases, clear errors (the expected
status and one clear stderr line), successes (lenient inputs that must work), tracebacks,
inputs modified, silent results (exit 0 where an error was due), leftovers and other
unclear errors (several lines, a wrong status or a message without the expected text).
``--details`` lists every case with a problem.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib.util
import io
import os
import sys
import tempfile
import time
import warnings
from collections import Counter, defaultdict
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1] / "tests"
sys.path.insert(0, str(TESTS))

from _hostile import CATEGORIES, Case, category, problems, run_case  # noqa: E402


class _Chdir:
    """The part of pytest's ``monkeypatch`` that :func:`run_case` uses."""

    def __init__(self) -> None:
        self.start = os.getcwd()

    def chdir(self, path: Path) -> None:
        os.chdir(path)

    def undo(self) -> None:
        os.chdir(self.start)


class _Capture:
    """The part of pytest's ``capsys`` that :func:`run_case` uses (redirected streams)."""

    def __init__(self) -> None:
        self.out, self.err = io.StringIO(), io.StringIO()

    def readouterr(self) -> tuple[str, str]:
        out, err = self.out.getvalue(), self.err.getvalue()
        self.out.seek(0), self.out.truncate()
        self.err.seek(0), self.err.truncate()
        return _Captured(out, err)


class _Captured(tuple):
    def __new__(cls, out: str, err: str) -> _Captured:
        value = super().__new__(cls, (out, err))
        value.out, value.err = out, err
        return value


MODULES = ("test_hostile_cli", "test_hostile_input")


def load_cases(modules: tuple[str, ...] = MODULES) -> list[tuple[Case, object]]:
    """``(case, module)`` for the cases of every corpus module in ``tests/``.

    A module with its own input files (``write_inputs(root, names)``, as
    ``test_hostile_input.py``) gets them written the way its test does.
    """
    cases: list[tuple[Case, object]] = []
    for name in modules:
        path = TESTS / f"{name}.py"
        if not path.is_file():
            continue
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        cases += [(c, module) for c in getattr(module, "CASES", []) if isinstance(c, Case)]
    return cases


def run(case: Case, module: object) -> list[str]:
    """Problems of one case, run in a fresh temporary directory."""
    chdir, capture = _Chdir(), _Capture()
    write_inputs = getattr(module, "write_inputs", None)
    plain, prepare = case, None
    if write_inputs is not None:
        plain = dataclasses.replace(case, files=())
        prepare = lambda root: write_inputs(root, case.files)  # noqa: E731
    with tempfile.TemporaryDirectory(prefix="hostile-") as folder, \
            contextlib.redirect_stdout(capture.out), contextlib.redirect_stderr(capture.err), \
            warnings.catch_warnings():
        warnings.simplefilter("default")
        try:
            return problems(case, run_case(plain, Path(folder), chdir, capture, prepare))
        finally:
            chdir.undo()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--details", action="store_true", help="list the failing cases")
    parser.add_argument("--modules", default=",".join(MODULES),
                        help="comma-separated corpus modules in tests/ (default both)")
    parser.add_argument("--commands", default=None,
                        help="comma-separated commands to run (default all), e.g. to time an "
                             "older checkout without its long-running cases")
    args = parser.parse_args()
    cases = load_cases(tuple(args.modules.split(",")))
    if args.commands:
        cases = [(c, m) for c, m in cases if c.command in args.commands.split(",")]
    started = time.perf_counter()
    counts: dict[str, Counter] = defaultdict(Counter)
    failing = []
    for case, module in cases:
        found = run(case, module)
        kinds = {category(p) for p in found}
        counts[case.command]["cases"] += 1
        passed = "clear errors" if case.status != 0 else "successes"
        counts[case.command][passed] += not found
        for kind in kinds:
            counts[case.command][kind] += 1
        if found:
            failing.append((case.id, found))
    seconds = time.perf_counter() - started
    columns = ("cases", "clear errors", "successes", "traceback", "input modified",
               "silent result", "leftover", "unclear error")
    assert set(columns[3:]) == set(CATEGORIES)
    width = max(len(c) for c in counts) + 2
    print(f"{'command':<{width}}" + "".join(f"{c:>15}" for c in columns))
    total = Counter()
    for command in sorted(counts):
        total.update(counts[command])
        print(f"{command:<{width}}" + "".join(f"{counts[command][c]:>15}" for c in columns))
    print(f"{'total':<{width}}" + "".join(f"{total[c]:>15}" for c in columns))
    print(f"{len(cases)} cases in {seconds:.1f} s")
    if args.details:
        for name, found in failing:
            print(f"- {name}: {' | '.join(found)}")


if __name__ == "__main__":
    main()
