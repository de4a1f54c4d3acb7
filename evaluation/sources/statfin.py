"""Real data for the municipal panel: the reader of StatFin table 12r5.

Statistics Finland publishes the monthly employment-service statistics of every municipality
as StatFin table *tyonv 12r5* (dimensions ``Alue``, ``Kuukausi`` and ``Tiedot``).
:func:`read_statfin_12r5` reads a CSV export of that table into the schema of the synthetic
municipal panel (``municipalities.parquet``, see the README's "Data schema"): one row per
municipality-month. :mod:`evaluation.sources.trial_assignment` adds the trial columns and writes an
extract that every other command reads like a synthetic one.

Table 12r5 carries only the StatFin monitoring indicators. Service participation
(``in_services``, ``other_jobseekers``), ``employment_plans``, the labour-market-subsidy
costs and the ELY region (``ely``) of the synthetic panel come from register extracts and are
absent from a StatFin extract.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from evaluation.errors import StatFinError, StatFinWarning
from evaluation.messages import listing
from evaluation.sources.csv_export import (
    canonical,
    column_arrays,
    norm,
    parse_numbers,
    per_unique,
    read_export,
)
from evaluation.sources.trials import month_index

__all__ = [
    "MISSING_SYMBOLS",
    "NIL_SYMBOL",
    "STATFIN_12R5_MEASURES",
    "STATFIN_TABLE",
    "read_statfin_12r5",
]

#: Name of the StatFin table read by :func:`read_statfin_12r5`.
STATFIN_TABLE = "tyonv 12r5"

#: ``Tiedot`` codes of table 12r5 -> column names of the municipal panel (in panel order).
STATFIN_12R5_MEASURES: dict[str, str] = {
    "TYOVOIMATK": "labour_force",
    "HAKIJALOPUSSA": "jobseekers",
    "TYOTTOMATLOPUSSA": "unemployed",
    "PITKAAIKAISTYOTTOMAT": "long_term_unemployed",
    "TYOTTOMAT25": "unemployed_under25",
    "TYOTTOMAT50": "unemployed_over50",
    "TYOTTOMATULK": "unemployed_foreign",
    "TYOTOSUUS": "unemployment_rate",
    "AVPAIKATLOPUSSA": "vacancies",
}

#: StatFin symbols read as missing: confidential (``..``, ``...``) and logically impossible
#: (``.``). Empty cells are missing too.
MISSING_SYMBOLS: tuple[str, ...] = ("..", "...", "…", ".")
#: StatFin symbol for "magnitude nil", read as 0.
NIL_SYMBOL = "-"

_KEY_COLUMNS = ("municipality", "name", "month", "t", "year")
_MUNICIPALITY_CODE = re.compile(r"^KU\d{3}$")
#: Codes of the other areas of table 12r5, dropped silently: the whole country (SSS),
#: regions (MK01), ELY centres (ELY01), sub-regions (SK011), TE offices (TE01), AVI (AVI1).
_OTHER_AREA_CODE = re.compile(r"^(SSS|MK\d{2}|ELY\d{1,2}|SK\d{3}|TE\d{2}|AVI\d{1,2})$")
#: Measures that are counts (every measure but the unemployment rate, a percentage).
_RATE_MEASURES = ("unemployment_rate",)
_MONTH_LABEL = re.compile(r"^(\d{4})M(\d{2})$")

# Accepted (normalised) spellings of the dimension columns: Finnish codes, English labels.
_DIMENSIONS: dict[str, tuple[str, ...]] = {
    "Alue": ("alue", "area", "region"),
    "Kuukausi": ("kuukausi", "month"),
    "Tiedot": ("tiedot", "information"),
}
# Optional column with the area's label (municipality name).
_LABEL_NAMES = ("aluelabel", "aluenimi", "alueennimi", "aluename", "arealabel", "areaname",
                "name", "nimi")


# ------------------------------------------------------------------------- area labels


def _strip(value: str) -> str:
    return value.strip()


def _first_token(value: str) -> str:
    return (value.split(None, 1) or [""])[0].upper()


def _after_first_token(value: str) -> str:
    parts = value.split(None, 1)
    return parts[1] if len(parts) > 1 else ""


# --------------------------------------------------------------------------- StatFin 12r5


def read_statfin_12r5(path: str | Path, *, allow_unknown_codes: bool = False) -> pd.DataFrame:
    """Read a CSV export of StatFin table 12r5 into the municipal panel schema.

    Parameters
    ----------
    path
        CSV file exported from StatFin (PxWeb), in either layout:

        * long: columns ``Alue``, ``Kuukausi``, ``Tiedot`` (the codes of
          :data:`STATFIN_12R5_MEASURES`) and one value column of any name;
        * wide: columns ``Alue``, ``Kuukausi`` and one column per ``Tiedot`` code.

        ``Alue`` holds area codes (``KU091``) or code and label (``KU091 Helsinki``); an
        optional label column (``Alue (label)``, ``Alue nimi``, ``name``, ...) supplies the
        municipality name. The English spellings ``Area``, ``Month`` and ``Information`` are
        accepted too, and a title above the header row is skipped. Encoding: UTF-8 (with or
        without byte-order mark), UTF-16 with byte-order mark, or Latin-1/cp1252; delimiter
        ``;``, ``,`` or tab. In files delimited by ``;`` or tab a decimal comma is read
        (``9,5``). The file is only read, never modified.
    allow_unknown_codes
        Area codes that are neither municipalities (``KU`` + 3 digits) nor the other areas
        of the table (``SSS``, ``MK01``, ``ELY01``, ``SK011``, ``TE01``, ``AVI1``) are an
        error by default. With True their rows are dropped, with a
        :class:`~evaluation.errors.StatFinWarning` listing them, and the codes are kept in
        ``frame.attrs["unknown_area_codes"]``.

    Returns
    -------
    pandas.DataFrame
        One row per municipality-month, sorted by ``municipality`` and ``t``, with columns
        ``municipality`` (code ``KU`` + 3 digits), ``name`` (the label when the export has
        one, else the code), ``month`` (``2021M03``), ``t`` (int64, 2010M01 = 1, so months
        before 2010 have ``t <= 0``), ``year`` (int64) and, as float64, every measure present
        in panel order (``labour_force, jobseekers, unemployed, long_term_unemployed,
        unemployed_under25, unemployed_over50, unemployed_foreign, unemployment_rate,
        vacancies``). Confidential or impossible cells (``..``, ``...``, ``.``) and empty
        cells are NaN, and a :class:`~evaluation.errors.StatFinWarning` counts them per
        measure (``frame.attrs["missing_cells"]``, a dict measure -> count); ``-``
        (magnitude nil) is 0. A municipality-month missing from a long export for some
        measure gets NaN for it. Rows of other areas (regions ``MK..``, ELY
        centres, sub-regions, the whole country ``SSS``) are dropped;
        ``frame.attrs["dropped_areas"]`` holds how many distinct areas were dropped and
        ``frame.attrs["dropped_area_codes"]`` their codes.

    Raises
    ------
    StatFinError
        The file is missing or not a CSV file; the ``Alue``/``Kuukausi`` columns are missing;
        a long export has no or several value columns; ``Tiedot`` codes or wide columns are
        unknown; an area code does not parse (unless ``allow_unknown_codes``); a month label
        is not of the form ``2021M03``; a municipality-month(-measure) occurs twice; there
        are no municipality rows; a cell is not a number; a count is negative or a rate lies
        outside 0-100.
    """
    if not isinstance(allow_unknown_codes, bool):
        raise StatFinError(f"allow_unknown_codes={allow_unknown_codes!r} must be True or "
                           "False.")
    fix = ("Export table 12r5 from StatFin with the variable codes (Alue, Kuukausi, Tiedot) "
           "as column headings, or rename the columns.")
    file, header, rows, lines, delimiter = read_export(
        path, "StatFin", {k: _DIMENSIONS[k] for k in ("Alue", "Kuukausi")}, fix)
    where = f"StatFin file {str(file)!r}"
    roles = {name: canonical(name, _DIMENSIONS) for name in header}
    columns = {role: name for name, role in reversed(roles.items()) if role is not None}
    labels = [name for name in header if roles[name] is None and norm(name) in _LABEL_NAMES]
    label = labels[0] if labels else None
    others = [name for name in header
              if roles[name] is None and name != label and name not in columns.values()]
    if not rows:
        raise StatFinError(f"{where} has a header but no data rows.")
    frame = column_arrays(header, rows)

    area = per_unique(frame[columns["Alue"]], _strip)
    if (area == "").any():
        i = int(np.flatnonzero(area == "")[0])
        raise StatFinError(f"{where}, line {lines[i]}: the area ({columns['Alue']}) is empty; "
                           "every row needs an area code such as KU091.")
    code = per_unique(area, _first_token)
    month = _parse_months(frame[columns["Kuukausi"]], lines, where)

    long_form = "Tiedot" in columns
    if long_form:
        if len(others) != 1:
            raise StatFinError(
                f"{where} is a long export (it has a {columns['Tiedot']} column) and needs "
                f"exactly one value column besides {columns['Alue']}, {columns['Kuukausi']} "
                f"and {columns['Tiedot']}; found {others or 'none'}. Remove the extra columns."
            )
        measure = per_unique(frame[columns["Tiedot"]], _first_token)
        _check_measures(pd.unique(measure), where, f"in column {columns['Tiedot']}")
        measure_of_column: dict[str, str] = {}
    else:
        if not others:
            raise StatFinError(
                f"{where} has no measure columns: a wide export needs one column per Tiedot "
                f"code ({listing(STATFIN_12R5_MEASURES, 20)}), a long one a Tiedot column "
                "and a value column."
            )
        measure_of_column = {name: _first_token(name) for name in others}
        _check_measures(measure_of_column.values(), where, "as column headings")
        repeated = pd.Series(list(measure_of_column.values())).duplicated()
        if repeated.any():
            raise StatFinError(f"{where} has two columns for the measure "
                               f"{pd.Series(list(measure_of_column.values()))[repeated].iat[0]}; "
                               "remove one of them.")

    keep = per_unique(code, lambda c: bool(_MUNICIPALITY_CODE.fullmatch(c))).astype(bool)
    other = per_unique(code, lambda c: bool(_OTHER_AREA_CODE.fullmatch(c))).astype(bool)
    unknown_codes = _unknown_codes(code, keep | other, lines, where, columns["Alue"],
                                   allow_unknown_codes)
    dropped_codes = sorted(pd.unique(code[~keep & other]))
    if not keep.any():
        raise StatFinError(
            f"{where} has no municipality rows (area codes KU + 3 digits such as KU091); it "
            f"holds the areas {listing(pd.unique(code))}. Export the municipalities with "
            "their codes, not only their names."
        )
    frame = {name: values[keep] for name, values in frame.items()}
    lines, code, month, area = lines[keep], code[keep], month[keep], area[keep]
    names = _names(code, area, frame[label] if label else None)
    decimal_comma = delimiter != ","
    missing_cells: dict[str, int] = {}

    if long_form:
        measure = measure[keep]
        _check_duplicates(pd.DataFrame({"m": code, "k": month, "x": measure}), lines, where,
                          lambda r: f"municipality {r.m}, month {r.k}, measure {r.x}")
        value = parse_numbers(
            frame[others[0]], lines, decimal_comma,
            lambda i: f"municipality {code[i]}, month {month[i]}, {measure[i]}",
            missing=MISSING_SYMBOLS, nil=NIL_SYMBOL, where=where)
        column_of = pd.Series(measure).map(STATFIN_12R5_MEASURES).to_numpy(dtype=object)
        for name in dict.fromkeys(column_of):
            rows = column_of == name
            _check_values(name, value[rows], lines[rows], code[rows], month[rows], where)
            missing_cells[name] = int(np.isnan(value[rows]).sum())
        tidy = pd.DataFrame({"municipality": code, "month": month,
                             "measure": column_of, "value": value})
        values = tidy.pivot(index=["municipality", "month"], columns="measure",
                            values="value").reset_index()
        values.columns.name = None
    else:
        _check_duplicates(pd.DataFrame({"m": code, "k": month}), lines, where,
                          lambda r: f"municipality {r.m}, month {r.k}")
        values = pd.DataFrame({"municipality": code, "month": month})
        for column, tiedot in measure_of_column.items():
            name = STATFIN_12R5_MEASURES[tiedot]
            values[name] = parse_numbers(
                frame[column], lines, decimal_comma,
                lambda i, c=column: f"municipality {code[i]}, month {month[i]}, {c}",
                missing=MISSING_SYMBOLS, nil=NIL_SYMBOL, where=where)
            _check_values(name, values[name].to_numpy(), lines, code, month, where)
            missing_cells[name] = int(values[name].isna().sum())

    out = values.merge(names, on="municipality", how="left", validate="many_to_one")
    index = {m: month_index(pd.Period(f"{m[:4]}-{m[5:]}", "M")) for m in out["month"].unique()}
    out["t"] = out["month"].map(index).to_numpy(dtype=np.int64)
    out["year"] = out["month"].str.slice(0, 4).astype(np.int64)
    measures = [c for c in STATFIN_12R5_MEASURES.values() if c in out.columns]
    out = out[[*_KEY_COLUMNS, *measures]].sort_values(["municipality", "t"], kind="stable")
    out = out.reset_index(drop=True)
    for column in ("municipality", "name", "month"):
        out[column] = out[column].to_numpy(dtype=str)
    for column in measures:
        out[column] = out[column].astype(np.float64)
    out.attrs["dropped_areas"] = len(dropped_codes)
    out.attrs["dropped_area_codes"] = dropped_codes
    out.attrs["unknown_area_codes"] = unknown_codes
    out.attrs["missing_cells"] = _report_missing(missing_cells, where)
    return out


def _unknown_codes(code: np.ndarray, known: np.ndarray, lines: np.ndarray, where: str,
                   column: str, allow: bool) -> list[str]:
    """Area codes that do not parse: an error, or (``allow``) listed and warned about."""
    if known.all():
        return []
    unknown = sorted(pd.unique(code[~known]))
    shown = listing(f"{c!r} (line {lines[int(np.flatnonzero(code == c)[0])]})" for c in unknown)
    if not allow:
        raise StatFinError(
            f"{where} has area codes in column {column} that are neither municipalities (KU + "
            f"3 digits such as KU091) nor other StatFin areas (SSS, MK01, ELY01, SK011): "
            f"{shown}. Export the areas with their codes, correct the codes, or pass "
            "allow_unknown_codes=True to leave those rows out (they are then listed).")
    warnings.warn(f"{where}: left out the rows of {len(unknown)} area code"
                  f"{'s' * (len(unknown) > 1)} that do not parse: {shown} "
                  "(allow_unknown_codes=True).", StatFinWarning, stacklevel=3)
    return [str(c) for c in unknown]


def _check_values(measure: str, values: np.ndarray, lines: np.ndarray, code: np.ndarray,
                  month: np.ndarray, where: str) -> None:
    """Reject negative counts and rates outside 0-100 (the first offending cell is named)."""
    low, high = (0.0, 100.0) if measure in _RATE_MEASURES else (0.0, np.inf)
    bad = (values < low) | (values > high)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        kind = ("a percentage between 0 and 100" if measure in _RATE_MEASURES
                else "a count, never negative")
        raise StatFinError(f"{where}: {measure} {values[i]:g} on line {lines[i]} (municipality "
                           f"{code[i]}, month {month[i]}) is not {kind}; {int(bad.sum())} "
                           f"such cell{'s' * bool(bad.sum() > 1)} in all. Correct the export "
                           "(StatFin marks confidential cells '..', not with numbers out of "
                           "range).")


def _report_missing(missing_cells: dict[str, int], where: str) -> dict[str, int]:
    counts = {m: n for m, n in missing_cells.items() if n}
    if counts:
        total = sum(counts.values())
        warnings.warn(f"{where}: {total} cell{'s' * (total > 1)} hold the StatFin symbols "
                      ".. ... . (confidential or not applicable) or are empty and are read as "
                      f"missing: {', '.join(f'{m} {n}' for m, n in counts.items())}.",
                      StatFinWarning, stacklevel=3)
    return counts


def _month_label(value: str) -> str | None:
    """Return the StatFin month label (``2021M03``) or None if ``value`` is not one."""
    label = value.strip().upper()
    match = _MONTH_LABEL.fullmatch(label)
    return label if match and 1 <= int(match.group(2)) <= 12 else None


def _parse_months(month: np.ndarray, lines: np.ndarray, where: str) -> np.ndarray:
    labels = per_unique(month, _month_label)
    bad = pd.isna(labels)
    if bad.any():
        shown = listing(f"{month[i].strip()!r} (line {lines[i]})" for i in np.flatnonzero(bad))
        raise StatFinError(f"{where} has malformed month labels: {shown}; months must be StatFin "
                           "labels such as 2021M03 (year, M, two-digit month).")
    return labels


def _check_measures(codes: Iterable[str], where: str, place: str) -> None:
    unknown = sorted({c for c in codes if c not in STATFIN_12R5_MEASURES})
    if unknown:
        raise StatFinError(
            f"{where} has unknown Tiedot code(s) {place}: {listing(map(repr, unknown))}. "
            f"Table 12r5 codes read are {', '.join(STATFIN_12R5_MEASURES)}; export the table "
            "with codes (not labels) or drop the other measures."
        )


def _check_duplicates(keys: pd.DataFrame, lines: np.ndarray, where: str, describe: Any) -> None:
    repeated = keys.duplicated(keep=False).to_numpy()
    if repeated.any():
        first = keys.loc[repeated].iloc[0]
        same = (keys == first).all(axis=1).to_numpy()
        raise StatFinError(
            f"{where}: {describe(first)} occurs more than once (lines "
            f"{listing(lines[same])}); each must occur once, so remove the duplicate rows."
        )


def _names(code: np.ndarray, area: np.ndarray, label: np.ndarray | None) -> pd.DataFrame:
    """Name of each municipality (from its first row).

    The label column if there is one (without a leading code), else the label after the code
    in the area column, else the code.
    """
    _, first = np.unique(code, return_index=True)
    names = []
    for i in first:
        name = _after_first_token(area[i])
        if label is not None:
            given = label[i].strip()
            if _first_token(given) == code[i]:
                given = _after_first_token(given)
            name = given or name
        names.append(name or code[i])
    return pd.DataFrame({"municipality": code[first], "name": names})

