"""Shared helpers of the hostile-input corpus (``test_hostile_cli.py``, ``test_hostile_input.py``).

A :class:`Case` is one command line (or one Python call) run in an empty temporary
directory holding only the input files it names (built by :data:`FIXTURES`). The
contract every case is checked against (:func:`problems`):

* the exit status is the expected one (2 for errors the user can fix, 0 for successes);
* an error prints exactly one line on stderr containing the expected text;
* nothing prints a traceback or lets an exception escape ``main``;
* every input file is byte-identical afterwards (sha256 before and after);
* a failing command leaves no new file or directory behind, and a successful one creates
  only the outputs the case lists.

Usage from a test module::

    from _hostile import Case, FIXTURES, problems, run_case

    @pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
    def test_case(case, tmp_path, monkeypatch, capsys):
        assert problems(case, run_case(case, tmp_path, monkeypatch, capsys)) == []

Placeholders in ``argv``: ``{tmp}`` is the temporary directory; other paths are relative to
it (the case runs with it as the working directory).
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd

#: Problem categories reported by :func:`problems` (the columns of the corpus table).
CATEGORIES = ("unclear error", "traceback", "input modified", "silent result", "leftover")


@dataclass(frozen=True)
class Case:
    """One hostile (or lenient) input and the behaviour it must produce.

    Attributes
    ----------
    id
        Short unique name (the pytest id).
    command
        Sub-command (``estimate`` ...) or ``"api"`` for a Python call; groups the table.
    argv
        Command line after ``evaluation`` (``{tmp}`` is replaced by the temp directory).
    files
        Names of :data:`FIXTURES` to create in the temp directory before the run.
    status
        Expected exit status (2: user error; 0: success).
    message
        Text the single stderr line must contain (errors), or that some stderr line must
        contain (successes with a warning); empty: no requirement.
    outputs
        Paths (relative to the temp directory) a successful run may create or replace.
    modified
        Inputs a successful run may change (e.g. a directory written with --overwrite).
    links
        ``(link, target)`` symlinks to create after the fixtures (relative paths).
    call
        For ``command="api"``: a function of the temp directory; its exception (if any) is
        turned into status 2 with ``str(exc)`` as the one stderr line.
    error
        For API cases: the exception class expected (None: the call must succeed).
    """

    id: str
    command: str
    argv: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    status: int = 2
    message: str = ""
    outputs: tuple[str, ...] = ()
    call: Callable[[Path], Any] | None = None
    error: type[BaseException] | None = None
    modified: tuple[str, ...] = field(default=())
    links: tuple[tuple[str, str], ...] = ()


@dataclass
class Outcome:
    """What running a case produced."""

    status: int
    stdout: str
    stderr: str
    before: dict[str, str]
    after: dict[str, str]
    escaped: BaseException | None = None

    @property
    def stderr_lines(self) -> list[str]:
        """Non-empty stderr lines."""
        return [line for line in self.stderr.splitlines() if line.strip()]


# ----------------------------------------------------------------------------- fixtures


@cache
def tiny_panel() -> pd.DataFrame:
    """40 units x 6 periods, cohorts 3 and 5 and never-treated 0; columns of simulate_staggered."""
    from evaluation.simulate import simulate_staggered

    return simulate_staggered(n_units=40, n_periods=6, cohorts=(3, 5), n_clusters=8,
                              seed=1).data


@cache
def tiny_units() -> pd.DataFrame:
    """One row per unit for ``match``: unit, treated (0/1), x, z, region."""
    import numpy as np

    rng = np.random.default_rng(5)
    n = 60
    x = rng.normal(size=n)
    treated = (x + rng.normal(size=n) > 0.3).astype(int)
    return pd.DataFrame({"unit": np.arange(1, n + 1), "treated": treated, "x": x,
                         "z": rng.normal(size=n), "region": rng.integers(0, 3, size=n)})


def _csv_bytes(frame: pd.DataFrame, **options: Any) -> bytes:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, **options)
    return buffer.getvalue().encode("utf-8")


def _parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def statfin_text() -> str:
    """A 12r5 long export (cp1252, ';', decimal comma): 3 municipalities + the whole country."""
    months = pd.period_range("2020-01", "2021-12", freq="M")
    lines = ['"Alue";"Kuukausi";"Tiedot";"12r5"']
    for code, name, lf in (("KU091", "Helsinki", 340_000), ("KU853", "Turku", 95_000),
                           ("KU049", "Espoo", 150_000), ("SSS", "KOKO MAA", 2_700_000)):
        for k, m in enumerate(months):
            label = f"{m.year}M{m.month:02d}"
            unemployed = lf // 10 + 7 * k
            lines.append(f'"{code} {name}";"{label}";"TYOVOIMATK";"{lf}"')
            lines.append(f'"{code} {name}";"{label}";"TYOTTOMATLOPUSSA";"{unemployed}"')
            rate = f"{100 * unemployed / lf:.1f}".replace(".", ",")
            lines.append(f'"{code} {name}";"{label}";"TYOTOSUUS";"{rate}"')
    return "\n".join(lines) + "\n"


TRIALS_TEXT = ("municipality,wave,area\nKU853,1,Turun seutu\nKU091,3,Helsinki\n"
               "KU853,3,Turun seutu\n")


def _panel_variant(change: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable[[], bytes]:
    return lambda: _csv_bytes(change(tiny_panel().copy()))


def _report_manifest(value: Any) -> Callable[[], bytes]:
    return lambda: (value if isinstance(value, str) else json.dumps(value)).encode("utf-8")


_REPORT_DATA = ("municipalities.parquet", "trial_areas.parquet", "jobseekers.parquet",
                "jobseeker_info.parquet")


def _report_dir(manifest: Any) -> dict[str, Callable[[], bytes]]:
    """Files of a report data directory whose manifest is ``manifest`` (data are stubs)."""
    files = {f"data/{name}": (lambda: b"PAR1-stub") for name in _REPORT_DATA}
    files["data/manifest.json"] = _report_manifest(manifest)
    return files


def _constant_covariate(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(c=1.0)


def _collinear_covariate(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(x2=2 * frame["x"])


def _no_treated(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(cohort=0)


def _first_period_cohort(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(cohort=frame["cohort"].where(frame["cohort"] == 0, 1))


def _two_units(frame: pd.DataFrame) -> pd.DataFrame:
    treated = frame.loc[frame["cohort"] == 3, "unit"].iloc[0]
    control = frame.loc[frame["cohort"] == 0, "unit"].iloc[0]
    return frame[frame["unit"].isin([treated, control])]


def _unbalanced(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(index=frame.index[[3, 10, 17]])


def _unicode_columns(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.rename(columns={"unit": "kunta", "y": "työttömyys", "time": "kuukausi"})


def _single_period(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["time"] == 1]


#: File builders by name (relative path in the temp directory -> function giving the bytes).
FIXTURES: dict[str, Callable[[], bytes]] = {
    "panel.csv": lambda: _csv_bytes(tiny_panel()),
    "panel.parquet": lambda: _parquet_bytes(tiny_panel()),
    "bom.csv": lambda: b"\xef\xbb\xbf" + _csv_bytes(tiny_panel()),
    "semicolon.csv": lambda: _csv_bytes(tiny_panel(), sep=";"),
    "unicode.csv": _panel_variant(_unicode_columns),
    "unbalanced.csv": _panel_variant(_unbalanced),
    "constant.csv": _panel_variant(_constant_covariate),
    "collinear.csv": _panel_variant(_collinear_covariate),
    "untreated.csv": _panel_variant(_no_treated),
    "first_period.csv": _panel_variant(_first_period_cohort),
    "two_units.csv": _panel_variant(_two_units),
    "single_period.csv": _panel_variant(_single_period),
    "missing_y.csv": _panel_variant(lambda f: f.assign(y=f["y"].mask(f.index % 7 == 0))),
    "text_y.csv": _panel_variant(lambda f: f.assign(y="a")),
    "infinite_y.csv": _panel_variant(lambda f: f.assign(y=f["y"].mask(f.index == 5, "inf"))),
    "duplicated.csv": _panel_variant(lambda f: pd.concat([f, f.iloc[:3]])),
    "empty.csv": lambda: b"",
    "header_only.csv": lambda: b"unit,time,cohort,y\n",
    "binary.csv": lambda: bytes(range(256)) * 4,
    "panel.txt": lambda: _csv_bytes(tiny_panel()),
    "broken.parquet": lambda: b"PAR1 not really parquet",
    "units.csv": lambda: _csv_bytes(tiny_units()),
    "units_all_treated.csv": lambda: _csv_bytes(tiny_units().assign(treated=1)),
    "units_three_levels.csv": lambda: _csv_bytes(tiny_units().assign(
        treated=tiny_units()["treated"] + (tiny_units()["unit"] % 5 == 0))),
    "12r5.csv": lambda: statfin_text().encode("cp1252"),
    "12r5_dots.csv": lambda: (statfin_text().replace('"TYOVOIMATK";"95000"\n',
                                                     '"TYOVOIMATK";".."\n', 1)
                              ).encode("cp1252"),
    "trials.csv": lambda: TRIALS_TEXT.encode("utf-8"),
    "trials_bad_wave.csv": lambda: TRIALS_TEXT.replace("KU091,3", "KU091,9").encode(),
    "file": lambda: b"a plain file\n",
    **_report_dir({"seed": 1, "jobseeker_wave": 3, "scenario": {"name": "default"}}),
}
FIXTURES.update({
    "foreign/notes.txt": lambda: b"my own notes\n",
    "extract/municipalities.parquet": lambda: _parquet_bytes(tiny_panel()),
    "extract/manifest.json": _report_manifest({"command": "evaluation import-statfin"}),
    "run/config.json": _report_manifest({"scenario": "default", "size": "report", "seed": 1,
                                         "designs": ["overall"], "outcomes": ["employed"]}),
    "badrun/config.json": _report_manifest("{not json"),
    "oldreport/manifest.json": _report_manifest({"report": "teas_report.html"}),
    "oldreport/teas_report.html": lambda: b"<html></html>\n",
})
#: Report data directories whose manifests are broken (each replaces ``data/manifest.json``).
REPORT_MANIFESTS: dict[str, Any] = {
    "not_json": "{this is not json",
    "list": [1, 2, 3],
    "wave_text": {"seed": 1, "jobseeker_wave": "three"},
    "wave_float": {"seed": 1, "jobseeker_wave": 2.5},
    "seed_text": {"seed": "x", "jobseeker_wave": 3},
}
for _name, _manifest in REPORT_MANIFESTS.items():
    for _path, _build in _report_dir(_manifest).items():
        FIXTURES[_path.replace("data/", f"data_{_name}/")] = _build


def write_fixtures(root: Path, names: Sequence[str]) -> None:
    """Create the fixture files ``names`` (and, for a ``data``-style prefix, its siblings)."""
    for name in names:
        prefix = name.rstrip("/") + "/"
        group = [key for key in FIXTURES if key.startswith(prefix)] or [name]
        if name.endswith("/") and name not in FIXTURES and group == [name]:
            (root / name).mkdir(parents=True, exist_ok=True)  # an empty directory
            continue
        for key in group:
            target = root / key
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(FIXTURES[key]())


def snapshot(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file (``"<dir>"`` for directories) under ``root``."""
    found = {}
    for path in sorted(root.rglob("*")):
        key = path.relative_to(root).as_posix()
        if path.is_symlink():
            found[key] = "<link>" + str(path.readlink())
        elif path.is_dir():
            found[key] = "<dir>"
        else:
            found[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


# ------------------------------------------------------------------------------ running


def run_case(case: Case, root: Path, monkeypatch: Any, capsys: Any,
             prepare: Callable[[Path], None] | None = None) -> Outcome:
    """Run ``case`` in ``root`` (its working directory) and return what happened.

    ``prepare`` may add files beyond the fixtures (e.g. symlinks) before the snapshot.
    """
    from evaluation.cli import main

    monkeypatch.chdir(root)
    write_fixtures(root, case.files)
    for link, target in case.links:
        (root / link).symlink_to(target)
    if prepare is not None:
        prepare(root)
    before = snapshot(root)
    capsys.readouterr()
    escaped = None
    if case.call is not None:
        try:
            with warnings.catch_warnings(record=True):  # recorded, as pytest does
                warnings.simplefilter("always")
                case.call(root)
            status = 0
        except BaseException as exc:
            escaped = None if case.error and isinstance(exc, case.error) else exc
            status = 2
            print(f"{type(exc).__name__}: {' '.join(str(exc).split())}", file=sys.stderr)
    else:
        argv = [arg.replace("{tmp}", str(root)) for arg in case.argv]
        try:
            status = main(argv)
        except SystemExit as exc:  # argparse's exit: no traceback, but its usage block
            status = exc.code if isinstance(exc.code, int) else 1
        except BaseException as exc:
            status, escaped = -1, exc
    captured = capsys.readouterr()
    return Outcome(status, captured.out, captured.err, before, snapshot(root), escaped)


def problems(case: Case, outcome: Outcome) -> list[str]:
    """The ways ``outcome`` breaks the contract of ``case`` (empty: it holds).

    Each entry starts with one of :data:`CATEGORIES`.
    """
    found = []
    lines = outcome.stderr_lines
    if outcome.escaped is not None or "Traceback" in outcome.stderr:
        found.append(f"traceback: {type(outcome.escaped).__name__}: {outcome.escaped}")
    if case.status != 0 and outcome.status == 0:
        found.append("silent result: exit status 0 where an error was expected "
                     f"(stderr {lines!r})")
    elif outcome.status != case.status:
        found.append(f"unclear error: exit status {outcome.status}, expected {case.status} "
                     f"(stderr {lines[-3:]!r})")
    if case.status != 0 and outcome.status != 0:
        if len(lines) != 1:
            found.append(f"unclear error: {len(lines)} stderr lines: {lines[:3]!r}")
        elif case.message not in lines[0]:
            found.append(f"unclear error: {case.message!r} not in {lines[0]!r}")
    elif case.status == 0 and case.message and not any(case.message in x for x in lines):
        found.append(f"unclear error: no stderr line contains {case.message!r}: {lines!r}")
    allowed = set(case.outputs) if case.status == 0 and outcome.status == 0 else set()
    changed = [k for k, v in outcome.before.items()
               if outcome.after.get(k) != v and k not in case.modified
               and not _under(k, allowed)]
    if changed:
        found.append(f"input modified: {changed}")
    new = [k for k in outcome.after if k not in outcome.before and not _under(k, allowed)]
    if new:
        found.append(f"leftover: {new}")
    return found


def _under(path: str, allowed: set[str]) -> bool:
    """Whether ``path`` is one of ``allowed`` or inside one of them."""
    return any(path == a or path.startswith(a.rstrip("/") + "/") for a in allowed)


def category(problem: str) -> str:
    """The category (one of :data:`CATEGORIES`) of a line returned by :func:`problems`."""
    return problem.split(":", 1)[0]
