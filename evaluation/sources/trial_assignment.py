"""Real data for the municipal panel: the trial assignment and the municipal extract.

A small assignment file says which municipality ran which wave in which trial area. This
module adds the trial columns to a panel read by
:func:`evaluation.sources.statfin.read_statfin_12r5`, exactly as the simulator codes them, and
writes an extract that every other command reads like a synthetic one:

* :func:`read_trial_assignment` — assignment CSV -> one row per (municipality, wave);
* :func:`add_trial_columns` — ``treated``, ``wave``, ``first_treated``,
  ``cohort_w1``-``cohort_w3`` and ``area_w1``-``area_w3``;
* :func:`trial_areas_table` — the ``trial_areas.parquet`` table;
* :func:`write_municipal_extract` — all of the above plus a manifest (the function behind
  ``evaluation import-statfin --statfin FILE --trials FILE --out DIR``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from evaluation.errors import StatFinError
from evaluation.messages import fmt, listing
from evaluation.sources.csv_export import canonical, parse_numbers, read_export
from evaluation.sources.files import sha256_file
from evaluation.sources.statfin import MISSING_SYMBOLS, NIL_SYMBOL, STATFIN_TABLE, read_statfin_12r5
from evaluation.sources.trials import WAVES, month_index

__all__ = [
    "TRIAL_COLUMNS",
    "add_trial_columns",
    "read_trial_assignment",
    "trial_areas_table",
    "write_municipal_extract",
]

#: Trial columns written by the simulator, in its column order.
TRIAL_COLUMNS: tuple[str, ...] = (
    "treated", "wave", "earlier_waves", "first_treated",
    *(f"{prefix}_w{w.number}" for w in WAVES for prefix in ("cohort", "area")),
)

_ASSIGNMENT_COLUMNS: dict[str, tuple[str, ...]] = {
    "municipality": ("municipality", "kunta"),
    "wave": ("wave", "aalto"),
    "area": ("area", "kokeilualue"),
}
_ASSIGNMENT_OPTIONAL: dict[str, tuple[str, ...]] = {
    "area_name": ("areaname", "kokeilualueennimi"),
    "population": ("population", "vakiluku", "asukasluku"),
}
#: Population per member of the labour force, the simulator's conversion
#: (:data:`evaluation.synthetic.design.POPULATION_PER_WORKER`), used when the assignment
#: gives no population.
POPULATION_PER_WORKER = 2.1
_POPULATION_WINDOW = 12  # months before a wave's start over which the labour force is averaged


# ---------------------------------------------------------------------- trial assignment


def read_trial_assignment(path: str | Path) -> pd.DataFrame:
    """Read the trial assignment CSV (one row per municipality and wave).

    Parameters
    ----------
    path
        CSV file (same encodings and delimiters as
        :func:`~evaluation.sources.statfin.read_statfin_12r5`) with columns ``municipality`` (code
        such as ``KU091``; bare numbers such as ``91`` are read as ``KU091``), ``wave`` (1, 2
        or 3) and ``area`` (the trial area's name or its id such as ``W3-01``), and optionally
        ``area_name`` and ``population`` (inhabitants of the municipality, used by
        :func:`trial_areas_table`). Finnish headings ``kunta``, ``aalto`` and ``kokeilualue``
        are accepted; other columns are ignored.

    Returns
    -------
    pandas.DataFrame
        Columns ``municipality``, ``wave``, ``area`` and those optional columns present, as
        strings (``population`` as float64), in file order. Use it with
        :func:`add_trial_columns` and :func:`trial_areas_table`, which validate it.

    Raises
    ------
    StatFinError
        The file is missing, lacks a required column, a municipality code does not parse
        (``KU49X``) or a population is not a number.
    """
    _, header, rows, lines, delimiter = read_export(
        path, "Trial assignment", _ASSIGNMENT_COLUMNS,
        "It needs one row per municipality and wave with columns municipality, wave and area.")
    roles = {name: canonical(name, {**_ASSIGNMENT_COLUMNS, **_ASSIGNMENT_OPTIONAL})
             for name in header}
    out = pd.DataFrame(index=range(len(rows)))
    for role in (*_ASSIGNMENT_COLUMNS, *_ASSIGNMENT_OPTIONAL):
        column = next((name for name in header if roles[name] == role), None)
        if column is None:
            continue
        values = np.array([row[header.index(column)].strip() for row in rows], dtype=object)
        if role == "municipality":
            _check_codes(values, lines, path)
        if role == "population":
            values = parse_numbers(values, lines, delimiter != ",",
                                   lambda i: f"population of {out['municipality'].iat[i]}",
                                   missing=MISSING_SYMBOLS, nil=NIL_SYMBOL,
                                   where=f"Trial assignment file {str(path)!r}")
        out[role] = values
    return out


def _check_codes(values: np.ndarray, lines: np.ndarray, path: str | Path) -> None:
    """Raise if a municipality code of the assignment file is neither KU091 nor 91."""
    malformed = ~pd.Series(values, dtype=str).str.fullmatch(r"KU\d{3}|\d{1,3}|\s*").to_numpy()
    if malformed.any():
        shown = listing(f"{values[i]!r} (line {lines[i]})" for i in np.flatnonzero(malformed))
        raise StatFinError(
            f"Trial assignment file {str(path)!r} has municipality codes that do not parse: "
            f"{shown}; write them as KU + 3 digits (KU091) or as the bare number (91).")


def _assignment(assignment: pd.DataFrame) -> pd.DataFrame:
    """Validate an assignment; return it with simulator area ids and names.

    Columns of the result: ``municipality``, ``wave`` (int64), ``area`` (id ``W3-01``),
    ``area_name`` and, if given, ``population`` (float64).
    """
    if not isinstance(assignment, pd.DataFrame):
        raise StatFinError("assignment must be a pandas DataFrame with columns municipality, "
                           f"wave and area, not {type(assignment).__name__}.")
    missing = [c for c in _ASSIGNMENT_COLUMNS if c not in assignment.columns]
    if missing:
        raise StatFinError(f"the trial assignment lacks the column(s) {', '.join(missing)}; it "
                           "needs one row per municipality and wave with columns municipality, "
                           f"wave and area (it has {list(assignment.columns)}).")
    frame = assignment.reset_index(drop=True)
    for column in _ASSIGNMENT_COLUMNS:
        values = frame[column]
        blank = (values.isna() | (values.astype(str).str.strip() == "")).to_numpy()
        if blank.any():
            raise StatFinError(f"the trial assignment has an empty {column} on row(s) "
                               f"{listing(np.flatnonzero(blank) + 1)}; fill it in.")
    municipality = frame["municipality"].astype(str).str.strip()
    bare = municipality.str.fullmatch(r"\d{1,3}")
    municipality = municipality.where(~bare, "KU" + municipality.str.zfill(3))
    wave = pd.to_numeric(frame["wave"].astype(str).str.strip(), errors="coerce")
    known = {w.number for w in WAVES}
    unknown = ~wave.isin(sorted(known))
    if unknown.any():
        raise StatFinError(
            f"the trial assignment names unknown wave(s) "
            f"{listing(sorted(set(frame['wave'][unknown].astype(str))))}; the trials had waves "
            f"{', '.join(str(n) for n in sorted(known))}."
        )
    out = pd.DataFrame({"municipality": municipality.to_numpy(dtype=str),
                        "wave": wave.to_numpy().astype(np.int64),
                        "given": frame["area"].astype(str).str.strip().to_numpy(dtype=str)})
    twice = out.duplicated(["municipality", "wave"], keep=False)
    if twice.any():
        pairs = out.loc[twice, ["municipality", "wave"]].drop_duplicates()
        raise StatFinError(
            "the trial assignment lists a municipality more than once in one wave: "
            f"{listing(f'{m} (wave {w})' for m, w in pairs.itertuples(index=False))}; a "
            "municipality belongs to at most one trial area per wave."
        )
    if "area_name" in frame.columns:
        out["area_name"] = frame["area_name"].astype(str).str.strip().to_numpy(dtype=str)
    if "population" in frame.columns:
        population = pd.to_numeric(frame["population"], errors="coerce")
        if population.isna().any() or (population < 0).any():
            i = int(np.flatnonzero((population.isna() | (population < 0)).to_numpy())[0])
            given = fmt(frame["population"].iat[i])
            raise StatFinError(f"the trial assignment's population {given}"
                               f" (row {i + 1}, {out['municipality'].iat[i]}) is not a "
                               "non-negative number; fill in every population or drop the "
                               "column.")
        out["population"] = population.to_numpy(dtype=float)
    out["area"] = ""
    for number in sorted(known):
        rows = (out["wave"] == number).to_numpy()
        given = pd.unique(out.loc[rows, "given"])
        is_id = all(re.fullmatch(rf"W{number}-\d{{2,}}", area) for area in given)
        ids = dict(zip(given, given if is_id else
                       [f"W{number}-{k:02d}" for k in range(1, len(given) + 1)], strict=True))
        out.loc[rows, "area"] = out.loc[rows, "given"].map(ids)
    if "area_name" not in out.columns:
        out["area_name"] = out["given"]
    return out.drop(columns="given")


def _check_in_panel(assignment: pd.DataFrame, municipal: pd.DataFrame) -> None:
    if not isinstance(municipal, pd.DataFrame) or "municipality" not in municipal.columns:
        raise StatFinError("municipal must be the municipality-month panel (a DataFrame with a "
                           "municipality column), e.g. from read_statfin_12r5.")
    absent = sorted(set(assignment["municipality"]) - set(municipal["municipality"]))
    if absent:
        raise StatFinError(
            f"the trial assignment names municipalities that are not in the panel: "
            f"{listing(absent, 10)}; check their codes (KU + 3 digits, e.g. KU091) or add "
            "them to the StatFin export."
        )


def add_trial_columns(municipal: pd.DataFrame, assignment: pd.DataFrame) -> pd.DataFrame:
    """Add the simulator's trial columns to a municipality-month panel.

    Parameters
    ----------
    municipal
        Panel with columns ``municipality`` and ``t`` (month index, 2010M01 = 1), e.g. from
        :func:`~evaluation.sources.statfin.read_statfin_12r5`. It is not modified.
    assignment
        One row per (municipality, wave) with columns ``municipality``, ``wave`` (1-3) and
        ``area`` (trial-area name or simulator id such as ``W3-01``), e.g. from
        :func:`read_trial_assignment`.

    Returns
    -------
    pandas.DataFrame
        A copy of ``municipal`` (any existing trial columns replaced) with, at the end and in
        the simulator's order and dtypes: ``treated`` (int8, 1 while one of the
        municipality's waves runs, from the wave's first to its last month in
        :data:`evaluation.sources.trials.WAVES`), ``wave`` (int8, the wave running, 0 if none),
        ``earlier_waves`` (int8, the municipality's waves that ended before the month),
        ``first_treated`` (int64, first trial month ``t`` over all waves, 0 = never),
        ``cohort_w1``/``area_w1`` ... ``cohort_w3``/``area_w3`` (int64 wave start ``t`` if
        the municipality ran that wave, else 0; the area id, else the empty string).

    Raises
    ------
    StatFinError
        Required columns are missing, a wave is not 1-3, an assignment municipality is not
        in the panel, or a municipality is listed twice in one wave.

    Notes
    -----
    Area ids follow the simulator's ``W{wave}-{number:02d}``. When every area of a wave is
    already given as such an id it is kept; otherwise the wave's areas are numbered in the
    order they first appear in the assignment and the given value becomes the area's name.
    """
    table = _assignment(assignment)
    _check_in_panel(table, municipal)
    if "t" not in municipal.columns:
        raise StatFinError("municipal lacks the month index column t (2010M01 = 1); read it "
                           "with read_statfin_12r5.")
    out = municipal.drop(columns=[c for c in TRIAL_COLUMNS if c in municipal.columns])
    codes = out["municipality"].to_numpy()
    t = out["t"].to_numpy(dtype=np.int64)
    treated = np.zeros(len(out), dtype=np.int8)
    current = np.zeros(len(out), dtype=np.int8)
    earlier = np.zeros(len(out), dtype=np.int8)
    first = np.zeros(len(out), dtype=np.int64)
    columns: dict[str, np.ndarray] = {}
    for w in WAVES:
        start = month_index(w.start)
        rows = table[table["wave"] == w.number]
        area = pd.Series(codes, dtype=object).map(
            dict(zip(rows["municipality"], rows["area"], strict=True))).to_numpy(dtype=object)
        member = pd.notna(area)
        area[~member] = ""
        running = member & (t >= start) & (t < start + w.n_months)
        treated[running] = 1
        current[running] = w.number
        earlier += member & (t >= start + w.n_months)
        first = np.where(member & ((first == 0) | (start < first)), start, first)
        columns[f"cohort_w{w.number}"] = np.where(member, start, 0).astype(np.int64)
        columns[f"area_w{w.number}"] = area.astype(str)
    out["treated"] = treated
    out["wave"] = current
    out["earlier_waves"] = earlier
    out["first_treated"] = first
    for column, values in columns.items():
        out[column] = values
    return out


def trial_areas_table(assignment: pd.DataFrame, municipal: pd.DataFrame) -> pd.DataFrame:
    """Build the ``trial_areas.parquet`` table from an assignment and the panel.

    Parameters
    ----------
    assignment
        As for :func:`add_trial_columns`; an optional ``population`` column (inhabitants per
        municipality) and ``area_name`` column are used when present.
    municipal
        The municipality-month panel; its ``labour_force`` stands in for a missing
        ``population``.

    Returns
    -------
    pandas.DataFrame
        One row per trial area, sorted by ``wave`` and ``area``, in the simulator's schema:
        ``wave`` (int64), ``area`` (id such as ``W3-01``), ``area_name``, ``anchor`` (code of
        the member with the largest population; the first listed member if population is
        unknown), ``n_municipalities`` (int64), ``population`` and ``area_z``.

    Notes
    -----
    ``population`` sums the members' ``population`` from the assignment. Without it, each
    member's population is estimated as its labour force (mean over the
    12 months before the wave's start, or over all months if the panel does not cover them)
    times 2.1, the simulator's inhabitants per worker, and rounded; ``frame.attrs
    ["population_source"]`` says which (``"assignment"``, ``"labour_force"`` or
    ``"unavailable"``). The column is int64 when every area's population is known and
    float64 with NaN otherwise. ``area_z`` is the simulator's draw of area-level effect
    heterogeneity and does not exist for real data: it is NaN.
    """
    table = _assignment(assignment)
    _check_in_panel(table, municipal)
    if "population" in table.columns:
        source = "assignment"
    elif "labour_force" in municipal.columns and "t" in municipal.columns:
        source = "labour_force"
        table["population"] = np.nan
        for w in WAVES:
            rows = (table["wave"] == w.number).to_numpy()
            table.loc[rows, "population"] = _population_from_labour_force(
                municipal, table.loc[rows, "municipality"], month_index(w.start))
    else:
        source = "unavailable"
        table["population"] = np.nan
    records = []
    for (number, area), members in table.groupby(["wave", "area"], sort=True):
        population = members["population"].to_numpy(dtype=float)
        anchor = (members["municipality"].iat[int(np.nanargmax(population))]
                  if np.isfinite(population).any() else members["municipality"].iat[0])
        records.append({
            "wave": int(number), "area": str(area), "area_name": members["area_name"].iat[0],
            "anchor": anchor, "n_municipalities": len(members),
            "population": population.sum() if np.isfinite(population).all() else np.nan,
        })
    out = pd.DataFrame(records, columns=["wave", "area", "area_name", "anchor",
                                         "n_municipalities", "population"])
    out["wave"] = out["wave"].astype(np.int64)
    out["n_municipalities"] = out["n_municipalities"].astype(np.int64)
    for column in ("area", "area_name", "anchor"):
        out[column] = out[column].to_numpy(dtype=str)
    population = out["population"].to_numpy(dtype=float)
    out["population"] = (np.round(population).astype(np.int64)
                         if np.isfinite(population).all() else population)
    out["area_z"] = np.full(len(out), np.nan)
    out.attrs["population_source"] = source
    return out


def _population_from_labour_force(municipal: pd.DataFrame, members: pd.Series,
                                  start: int) -> np.ndarray:
    """Labour force x 2.1 of each member, averaged over the 12 months before ``start``."""
    panel = municipal.loc[municipal["municipality"].isin(set(members)),
                          ["municipality", "t", "labour_force"]]
    window = panel[(panel["t"] >= start - _POPULATION_WINDOW) & (panel["t"] < start)]
    before = window.groupby("municipality")["labour_force"].mean()
    overall = panel.groupby("municipality")["labour_force"].mean()
    labour_force = before.reindex(members).fillna(overall.reindex(members))
    return np.round(labour_force.to_numpy(dtype=float) * POPULATION_PER_WORKER)


# --------------------------------------------------------------------------- the extract


def write_municipal_extract(statfin_csv: str | Path, assignment_csv: str | Path,
                            out_dir: str | Path, *, overwrite: bool = False,
                            allow_unknown_codes: bool = False) -> Path:
    """Write a municipal extract from a StatFin 12r5 export and a trial assignment.

    This is what ``evaluation import-statfin --statfin FILE --trials FILE --out DIR`` runs.

    Parameters
    ----------
    statfin_csv
        CSV export of table 12r5 (see :func:`~evaluation.sources.statfin.read_statfin_12r5`).
    assignment_csv
        Trial assignment CSV (see :func:`read_trial_assignment`).
    out_dir
        Directory to write to: created if needed; an existing one must be empty or hold an
        earlier ``import-statfin`` extract unless ``overwrite`` is True. It may not hold
        the inputs.
    overwrite
        Write into a non-empty directory that holds other files.
    allow_unknown_codes
        Leave out StatFin rows whose area code does not parse instead of stopping (see
        :func:`~evaluation.sources.statfin.read_statfin_12r5`); the codes are listed in the
        manifest's ``unknown_area_codes``.

    Returns
    -------
    pathlib.Path
        Path of ``manifest.json``.

    Notes
    -----
    Files written: ``municipalities.parquet`` (the panel with the trial columns, see
    :func:`add_trial_columns`), ``trial_areas.parquet`` (:func:`trial_areas_table`) and
    ``manifest.json`` with the keys of the simulator's manifest that apply (``package``,
    ``version``, ``command``, ``scenario`` and ``seed`` both null, ``n_municipalities``,
    ``time_index``, ``files`` with the sha256, rows and columns of each file) plus
    ``source`` (StatFin table), ``sources`` (name and sha256 of both inputs), ``months``,
    ``dropped_areas``, ``unknown_area_codes``, ``missing_cells`` (StatFin cells read as
    missing, per measure) and ``population_source``. No time stamps are written, so the same
    inputs give byte-identical files. The inputs are only read. Files are written through
    :class:`~evaluation.outputs.Outputs` (complete or not at all; nothing is left behind
    on failure).
    """
    from evaluation.outputs import Outputs, check_outputs, manifest_command

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise StatFinError(f"output directory {str(out)!r} is an existing file; pass a "
                           "directory.")
    check_outputs({"output directory": out}, {"StatFin file": statfin_csv,
                                               "trial assignment": assignment_csv},
                  directories=("output directory",))
    municipal = read_statfin_12r5(statfin_csv, allow_unknown_codes=allow_unknown_codes)
    assignment = read_trial_assignment(assignment_csv)
    panel = add_trial_columns(municipal, assignment)
    areas = trial_areas_table(assignment, municipal)
    with Outputs() as outputs:
        out = outputs.directory(
            out, overwrite=overwrite,
            owned=lambda path: manifest_command(path) == "evaluation import-statfin")
        files = {}
        for name, frame in (("municipalities.parquet", panel), ("trial_areas.parquet", areas)):
            frame = frame.copy()
            frame.attrs = {}
            tmp = outputs.write(out / name, lambda target, f=frame: f.to_parquet(
                target, index=False, compression="zstd"))
            files[name] = {"sha256": sha256_file(tmp), "rows": len(frame),
                           "columns": list(frame.columns)}
        manifest = _extract_manifest(panel, municipal, areas, files, statfin_csv,
                                     assignment_csv)
        path = out / "manifest.json"
        text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
        outputs.write(path, lambda target: target.write_text(text, encoding="utf-8"))
    return path


def _extract_manifest(panel: pd.DataFrame, municipal: pd.DataFrame, areas: pd.DataFrame,
                      files: dict[str, object], statfin_csv: str | Path,
                      assignment_csv: str | Path) -> dict[str, object]:
    """Return the manifest of :func:`write_municipal_extract` (see its Notes)."""
    from evaluation import __version__

    manifest = {
        "package": "kuntakokeilu-evaluation",
        "version": __version__,
        "command": "evaluation import-statfin",
        "source": f"Statistics Finland, StatFin table {STATFIN_TABLE}",
        "scenario": None,
        "seed": None,
        "n_municipalities": int(panel["municipality"].nunique()),
        "months": [panel.loc[panel["t"].idxmin(), "month"],
                   panel.loc[panel["t"].idxmax(), "month"]],
        "dropped_areas": int(municipal.attrs["dropped_areas"]),
        "unknown_area_codes": list(municipal.attrs.get("unknown_area_codes", [])),
        "missing_cells": dict(municipal.attrs.get("missing_cells", {})),
        "population_source": areas.attrs["population_source"],
        "time_index": "t = months since December 2009 (2010M01 = 1); cohort 0 = never treated",
        "sources": {
            role: {"file": Path(path).name, "sha256": sha256_file(path)}
            for role, path in (("statfin", statfin_csv), ("trials", assignment_csv))
        },
        "files": files,
    }
    return manifest
