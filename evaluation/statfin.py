"""Real data for the municipal panel: StatFin table 12r5 and the trial assignment.

Statistics Finland publishes the monthly employment-service statistics of every municipality
as StatFin table *tyonv 12r5* (dimensions ``Alue``, ``Kuukausi`` and ``Tiedot``). This module
reads a CSV export of that table into the schema of the synthetic municipal panel
(``municipalities.parquet``, see the README's "Data schema"), adds the trial columns from a
small assignment file (which municipality ran which wave in which trial area) exactly as the
simulator codes them, and writes an extract that every other command reads like a synthetic
one:

* :func:`read_statfin_12r5` — CSV export -> one row per municipality-month;
* :func:`read_trial_assignment` — assignment CSV -> one row per (municipality, wave);
* :func:`add_trial_columns` — ``treated``, ``wave``, ``first_treated``,
  ``cohort_w1``-``cohort_w3`` and ``area_w1``-``area_w3``;
* :func:`trial_areas_table` — the ``trial_areas.parquet`` table;
* :func:`write_municipal_extract` — all of the above plus a manifest (the function behind
  ``evaluation import-statfin --statfin FILE --trials FILE --out DIR``).

Table 12r5 carries only the StatFin monitoring indicators. Service participation
(``in_services``, ``other_jobseekers``), ``employment_plans``, the labour-market-subsidy
costs and the ELY region (``ely``) of the synthetic panel come from register extracts and are
absent from a StatFin extract.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from evaluation.errors import StatFinError
from evaluation.trials import WAVES, month_index

__all__ = [
    "MISSING_SYMBOLS",
    "NIL_SYMBOL",
    "STATFIN_12R5_MEASURES",
    "STATFIN_TABLE",
    "TRIAL_COLUMNS",
    "add_trial_columns",
    "read_statfin_12r5",
    "read_trial_assignment",
    "trial_areas_table",
    "write_municipal_extract",
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

#: Trial columns written by the simulator, in its column order.
TRIAL_COLUMNS: tuple[str, ...] = (
    "treated", "wave", "first_treated",
    *(f"{prefix}_w{w.number}" for w in WAVES for prefix in ("cohort", "area")),
)

_KEY_COLUMNS = ("municipality", "name", "month", "t", "year")
_MUNICIPALITY_CODE = re.compile(r"^KU\d{3}$")
_MONTH_LABEL = re.compile(r"^(\d{4})M(\d{2})$")
_HEADER_SEARCH_ROWS = 50
_DELIMITERS = (";", ",", "\t")
_SHOW = 5  # how many offending values an error message lists

# Accepted (normalised) spellings of the dimension columns: Finnish codes, English labels.
_DIMENSIONS: dict[str, tuple[str, ...]] = {
    "Alue": ("alue", "area", "region"),
    "Kuukausi": ("kuukausi", "month"),
    "Tiedot": ("tiedot", "information"),
}
# Optional column with the area's label (municipality name).
_LABEL_NAMES = ("aluelabel", "aluenimi", "alueennimi", "aluename", "arealabel", "areaname",
                "name", "nimi")
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


# ------------------------------------------------------------------------ reading CSV files


def _norm(name: str) -> str:
    """Lower-case a column name and drop everything but letters and digits."""
    return re.sub(r"[^0-9a-zåäö]", "", str(name).strip().lower())


def _decode(path: str | Path, what: str) -> tuple[Path, str]:
    """Return the path and the decoded text of a CSV file (never modifying it)."""
    file = Path(path)
    if not file.is_file():
        problem = "is a directory" if file.is_dir() else "does not exist"
        raise StatFinError(f"{what} file {str(file)!r} {problem}; pass the path of the CSV "
                           "file exported from StatFin or written by hand.")
    raw = file.read_bytes()
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encodings: tuple[str, ...] = ("utf-16",)
    elif raw.startswith(codecs.BOM_UTF8):
        encodings = ("utf-8-sig",)
    else:
        encodings = ("utf-8", "cp1252", "latin-1")
    for encoding in encodings:
        try:
            return file, raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise StatFinError(f"{what} file {str(file)!r} starts with a byte-order mark but is not "
                       "valid Unicode; export it again as UTF-8.")


def _canonical(field: str, aliases: Mapping[str, tuple[str, ...]]) -> str | None:
    norm = _norm(field)
    return next((name for name, spelled in aliases.items() if norm in spelled), None)


def _read_table(path: str | Path, what: str, required: Mapping[str, tuple[str, ...]],
                fix: str) -> tuple[Path, list[str], list[list[str]], np.ndarray, str]:
    """Find the header row holding every ``required`` column and read the records below it.

    Returns the path, header, records (all as strings), their 1-based line numbers and the
    delimiter. A title above the header (StatFin's "with heading" exports) is skipped.
    """
    file, text = _decode(path, what)
    for delimiter in _DELIMITERS:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        try:
            for position, record in enumerate(reader):
                if position >= _HEADER_SEARCH_ROWS:
                    break
                found = {_canonical(field, required) for field in record}
                if all(name in found for name in required):
                    return (file, *_records(reader, record, file, what), delimiter)
        except csv.Error as exc:
            raise StatFinError(f"{what} file {str(file)!r} is not a readable CSV file "
                               f"(line {reader.line_num}: {exc}).") from None
    raise StatFinError(_missing_header_message(text, file, what, required, fix))


def _missing_header_message(text: str, file: Path, what: str,
                            required: Mapping[str, tuple[str, ...]], fix: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return f"{what} file {str(file)!r} is empty."
    first = lines[0]
    delimiter = max(_DELIMITERS, key=first.count)
    fields = next(csv.reader([first], delimiter=delimiter), [])
    found = {_canonical(field, required) for field in fields}
    missing = [name for name in required if name not in found]
    return (f"{what} file {str(file)!r} lacks the required column(s) {', '.join(missing)}: "
            f"no row among its first {_HEADER_SEARCH_ROWS} holds all of "
            f"{', '.join(required)} (its first row reads {fields[:8]}). {fix}")


def _records(reader: Any, header: list[str], file: Path,
             what: str) -> tuple[list[str], list[list[str]], np.ndarray]:
    header = [field.strip() for field in header]
    while header and not header[-1]:  # a trailing delimiter
        header.pop()
    seen: set[str] = set()
    for field in header:
        if field in seen:
            raise StatFinError(f"{what} file {str(file)!r} has two columns named {field!r}; "
                               "rename or remove one of them.")
        seen.add(field)
    width = len(header)
    rows: list[list[str]] = []
    lines: list[int] = []
    for record in reader:
        if not record or (not record[0].strip() and not any(f.strip() for f in record)):
            continue
        if len(record) > width and not any(field.strip() for field in record[width:]):
            record = record[:width]
        if len(record) != width:
            raise StatFinError(
                f"{what} file {str(file)!r}, line {reader.line_num}: {len(record)} field(s) "
                f"where the header has {width} ({record[:4]}...); remove notes or footers "
                "below the table and check the delimiter and quoting."
            )
        rows.append(record)
        lines.append(reader.line_num)
    return header, rows, np.asarray(lines, dtype=np.int64)


def _columns(header: list[str], rows: list[list[str]]) -> dict[str, np.ndarray]:
    """Transpose records into one object array per column."""
    return {name: np.array(values, dtype=object)
            for name, values in zip(header, zip(*rows, strict=True), strict=True)}


def _per_unique(values: np.ndarray, func: Any) -> np.ndarray:
    """Apply ``func`` once per distinct value (StatFin columns repeat a few labels)."""
    codes, uniques = pd.factorize(values)
    mapped = np.empty(len(uniques), dtype=object)
    mapped[:] = [func(value) for value in uniques]
    return mapped[codes]


def _strip(value: str) -> str:
    return value.strip()


def _first_token(value: str) -> str:
    return (value.split(None, 1) or [""])[0].upper()


def _after_first_token(value: str) -> str:
    parts = value.split(None, 1)
    return parts[1] if len(parts) > 1 else ""


def _listing(items: Iterable[Any], limit: int = _SHOW) -> str:
    items = list(items)
    shown = ", ".join(str(item) for item in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _parse_numbers(values: np.ndarray, lines: np.ndarray, decimal_comma: bool,
                   describe: Any) -> np.ndarray:
    """Parse StatFin cells to float: missing symbols -> NaN, ``-`` -> 0.

    ``describe(i)`` names the cell in row ``i`` for the error message.
    """
    codes, uniques = pd.factorize(np.asarray(values, dtype=object))
    text = np.array([str(value).strip() for value in uniques], dtype=object)
    missing = np.isin(text, (*MISSING_SYMBOLS, ""))
    nil = text == NIL_SYMBOL
    out = np.full(text.size, np.nan)
    out[nil] = 0.0
    rest = ~missing & ~nil
    candidates = pd.Series(text[rest], dtype=object)
    if decimal_comma:
        candidates = candidates.str.replace(",", ".", regex=False)
    numbers = pd.to_numeric(candidates, errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(numbers)
    if bad.any():
        i = int(np.flatnonzero(np.isin(codes, np.flatnonzero(rest)[bad]))[0])
        value = text[codes[i]]
        hint = ("decimal commas are read only in semicolon-delimited files"
                if "," in value and not decimal_comma else
                "cells must be numbers or the StatFin symbols .. ... . (missing) and - (zero)")
        raise StatFinError(f"cannot read the number {value!r} on line {lines[i]} "
                           f"({describe(i)}); {hint}.")
    out[rest] = numbers
    return out[codes]


# --------------------------------------------------------------------------- StatFin 12r5


def read_statfin_12r5(path: str | Path) -> pd.DataFrame:
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
        cells are NaN; ``-`` (magnitude nil) is 0. A municipality-month missing from a long
        export for some measure gets NaN for it. Rows of other areas (regions ``MK..``, ELY
        centres, sub-regions, the whole country ``SSS``) are dropped;
        ``frame.attrs["dropped_areas"]`` holds how many distinct areas were dropped and
        ``frame.attrs["dropped_area_codes"]`` their codes.

    Raises
    ------
    StatFinError
        The file is missing or not a CSV file; the ``Alue``/``Kuukausi`` columns are missing;
        a long export has no or several value columns; ``Tiedot`` codes or wide columns are
        unknown; a month label is not of the form ``2021M03``; a municipality-month(-measure)
        occurs twice; there are no municipality rows; or a cell is not a number.
    """
    fix = ("Export table 12r5 from StatFin with the variable codes (Alue, Kuukausi, Tiedot) "
           "as column headings, or rename the columns.")
    file, header, rows, lines, delimiter = _read_table(
        path, "StatFin", {k: _DIMENSIONS[k] for k in ("Alue", "Kuukausi")}, fix)
    where = f"StatFin file {str(file)!r}"
    roles = {name: _canonical(name, _DIMENSIONS) for name in header}
    columns = {role: name for name, role in reversed(roles.items()) if role is not None}
    labels = [name for name in header if roles[name] is None and _norm(name) in _LABEL_NAMES]
    label = labels[0] if labels else None
    others = [name for name in header
              if roles[name] is None and name != label and name not in columns.values()]
    if not rows:
        raise StatFinError(f"{where} has a header but no data rows.")
    frame = _columns(header, rows)

    area = _per_unique(frame[columns["Alue"]], _strip)
    if (area == "").any():
        i = int(np.flatnonzero(area == "")[0])
        raise StatFinError(f"{where}, line {lines[i]}: the area ({columns['Alue']}) is empty; "
                           "every row needs an area code such as KU091.")
    code = _per_unique(area, _first_token)
    month = _parse_months(frame[columns["Kuukausi"]], lines, where)

    long_form = "Tiedot" in columns
    if long_form:
        if len(others) != 1:
            raise StatFinError(
                f"{where} is a long export (it has a {columns['Tiedot']} column) and needs "
                f"exactly one value column besides {columns['Alue']}, {columns['Kuukausi']} "
                f"and {columns['Tiedot']}; found {others or 'none'}. Remove the extra columns."
            )
        measure = _per_unique(frame[columns["Tiedot"]], _first_token)
        _check_measures(pd.unique(measure), where, f"in column {columns['Tiedot']}")
        measure_of_column: dict[str, str] = {}
    else:
        if not others:
            raise StatFinError(
                f"{where} has no measure columns: a wide export needs one column per Tiedot "
                f"code ({_listing(STATFIN_12R5_MEASURES, 20)}), a long one a Tiedot column "
                "and a value column."
            )
        measure_of_column = {name: _first_token(name) for name in others}
        _check_measures(measure_of_column.values(), where, "as column headings")
        repeated = pd.Series(list(measure_of_column.values())).duplicated()
        if repeated.any():
            raise StatFinError(f"{where} has two columns for the measure "
                               f"{pd.Series(list(measure_of_column.values()))[repeated].iat[0]}; "
                               "remove one of them.")

    keep = _per_unique(code, lambda c: bool(_MUNICIPALITY_CODE.fullmatch(c))).astype(bool)
    dropped_codes = sorted(pd.unique(code[~keep]))
    if not keep.any():
        raise StatFinError(
            f"{where} has no municipality rows (area codes KU + 3 digits such as KU091); it "
            f"holds the areas {_listing(pd.unique(code))}. Export the municipalities with "
            "their codes, not only their names."
        )
    frame = {name: values[keep] for name, values in frame.items()}
    lines, code, month, area = lines[keep], code[keep], month[keep], area[keep]
    names = _names(code, area, frame[label] if label else None)
    decimal_comma = delimiter != ","

    if long_form:
        measure = measure[keep]
        _check_duplicates(pd.DataFrame({"m": code, "k": month, "x": measure}), lines, where,
                          lambda r: f"municipality {r.m}, month {r.k}, measure {r.x}")
        value = _parse_numbers(
            frame[others[0]], lines, decimal_comma,
            lambda i: f"municipality {code[i]}, month {month[i]}, {measure[i]}")
        tidy = pd.DataFrame({"municipality": code, "month": month,
                             "measure": pd.Series(measure).map(STATFIN_12R5_MEASURES),
                             "value": value})
        values = tidy.pivot(index=["municipality", "month"], columns="measure",
                            values="value").reset_index()
        values.columns.name = None
    else:
        _check_duplicates(pd.DataFrame({"m": code, "k": month}), lines, where,
                          lambda r: f"municipality {r.m}, month {r.k}")
        values = pd.DataFrame({"municipality": code, "month": month})
        for column, tiedot in measure_of_column.items():
            values[STATFIN_12R5_MEASURES[tiedot]] = _parse_numbers(
                frame[column], lines, decimal_comma,
                lambda i, c=column: f"municipality {code[i]}, month {month[i]}, {c}")

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
    return out


def _month_label(value: str) -> str | None:
    """Return the StatFin month label (``2021M03``) or None if ``value`` is not one."""
    label = value.strip().upper()
    match = _MONTH_LABEL.fullmatch(label)
    return label if match and 1 <= int(match.group(2)) <= 12 else None


def _parse_months(month: np.ndarray, lines: np.ndarray, where: str) -> np.ndarray:
    labels = _per_unique(month, _month_label)
    bad = pd.isna(labels)
    if bad.any():
        shown = [f"{month[i].strip()!r} (line {lines[i]})" for i in np.flatnonzero(bad)[:_SHOW]]
        raise StatFinError(f"{where} has malformed month labels: {', '.join(shown)}"
                           f"{' ...' if bad.sum() > _SHOW else ''}; months must be StatFin "
                           "labels such as 2021M03 (year, M, two-digit month).")
    return labels


def _check_measures(codes: Iterable[str], where: str, place: str) -> None:
    unknown = sorted({c for c in codes if c not in STATFIN_12R5_MEASURES})
    if unknown:
        raise StatFinError(
            f"{where} has unknown Tiedot code(s) {place}: {_listing(map(repr, unknown))}. "
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
            f"{_listing(lines[same])}); each must occur once, so remove the duplicate rows."
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


# ---------------------------------------------------------------------- trial assignment


def read_trial_assignment(path: str | Path) -> pd.DataFrame:
    """Read the trial assignment CSV (one row per municipality and wave).

    Parameters
    ----------
    path
        CSV file (same encodings and delimiters as :func:`read_statfin_12r5`) with columns
        ``municipality`` (code such as ``KU091``; bare numbers such as ``91`` are read as
        ``KU091``), ``wave`` (1, 2 or 3) and ``area`` (the trial area's name or its id such as
        ``W3-01``), and optionally ``area_name`` and ``population`` (inhabitants of the
        municipality, used by :func:`trial_areas_table`). Finnish headings ``kunta``,
        ``aalto`` and ``kokeilualue`` are accepted; other columns are ignored.

    Returns
    -------
    pandas.DataFrame
        Columns ``municipality``, ``wave``, ``area`` and those optional columns present, as
        strings (``population`` as float64), in file order. Use it with
        :func:`add_trial_columns` and :func:`trial_areas_table`, which validate it.

    Raises
    ------
    StatFinError
        The file is missing, lacks a required column or a population is not a number.
    """
    _, header, rows, lines, delimiter = _read_table(
        path, "Trial assignment", _ASSIGNMENT_COLUMNS,
        "It needs one row per municipality and wave with columns municipality, wave and area.")
    roles = {name: _canonical(name, {**_ASSIGNMENT_COLUMNS, **_ASSIGNMENT_OPTIONAL})
             for name in header}
    out = pd.DataFrame(index=range(len(rows)))
    for role in (*_ASSIGNMENT_COLUMNS, *_ASSIGNMENT_OPTIONAL):
        column = next((name for name in header if roles[name] == role), None)
        if column is None:
            continue
        values = np.array([row[header.index(column)].strip() for row in rows], dtype=object)
        if role == "population":
            values = _parse_numbers(values, lines, delimiter != ",",
                                    lambda i: f"population of {out['municipality'].iat[i]}")
        out[role] = values
    return out


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
                               f"{_listing(np.flatnonzero(blank) + 1)}; fill it in.")
    municipality = frame["municipality"].astype(str).str.strip()
    bare = municipality.str.fullmatch(r"\d{1,3}")
    municipality = municipality.where(~bare, "KU" + municipality.str.zfill(3))
    wave = pd.to_numeric(frame["wave"].astype(str).str.strip(), errors="coerce")
    known = {w.number for w in WAVES}
    unknown = ~wave.isin(sorted(known))
    if unknown.any():
        raise StatFinError(
            f"the trial assignment names unknown wave(s) "
            f"{_listing(sorted(set(frame['wave'][unknown].astype(str))))}; the trials had waves "
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
            f"{_listing(f'{m} (wave {w})' for m, w in pairs.itertuples(index=False))}; a "
            "municipality belongs to at most one trial area per wave."
        )
    if "area_name" in frame.columns:
        out["area_name"] = frame["area_name"].astype(str).str.strip().to_numpy(dtype=str)
    if "population" in frame.columns:
        population = pd.to_numeric(frame["population"], errors="coerce")
        if population.isna().any() or (population < 0).any():
            i = int(np.flatnonzero((population.isna() | (population < 0)).to_numpy())[0])
            raise StatFinError(f"the trial assignment's population {frame['population'].iat[i]!r}"
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
            f"{_listing(absent, 10)}; check their codes (KU + 3 digits, e.g. KU091) or add "
            "them to the StatFin export."
        )


def add_trial_columns(municipal: pd.DataFrame, assignment: pd.DataFrame) -> pd.DataFrame:
    """Add the simulator's trial columns to a municipality-month panel.

    Parameters
    ----------
    municipal
        Panel with columns ``municipality`` and ``t`` (month index, 2010M01 = 1), e.g. from
        :func:`read_statfin_12r5`. It is not modified.
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
        :data:`evaluation.trials.WAVES`), ``wave`` (int8, the wave running, 0 if none),
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
        first = np.where(member & ((first == 0) | (start < first)), start, first)
        columns[f"cohort_w{w.number}"] = np.where(member, start, 0).astype(np.int64)
        columns[f"area_w{w.number}"] = area.astype(str)
    out["treated"] = treated
    out["wave"] = current
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
                            out_dir: str | Path) -> Path:
    """Write a municipal extract from a StatFin 12r5 export and a trial assignment.

    This is what ``evaluation import-statfin --statfin FILE --trials FILE --out DIR`` runs.

    Parameters
    ----------
    statfin_csv
        CSV export of table 12r5 (see :func:`read_statfin_12r5`).
    assignment_csv
        Trial assignment CSV (see :func:`read_trial_assignment`).
    out_dir
        Directory to write to (created if needed; files of the same name are replaced).

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
    ``dropped_areas`` and ``population_source``. No time stamps are written, so the same
    inputs give byte-identical files. The inputs are only read.
    """
    from evaluation import __version__
    from evaluation.simulate import sha256_file

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise StatFinError(f"output directory {str(out)!r} is an existing file; pass a "
                           "directory.")
    municipal = read_statfin_12r5(statfin_csv)
    assignment = read_trial_assignment(assignment_csv)
    panel = add_trial_columns(municipal, assignment)
    areas = trial_areas_table(assignment, municipal)
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, frame in (("municipalities.parquet", panel), ("trial_areas.parquet", areas)):
        frame = frame.copy()
        frame.attrs = {}
        target = out / name
        frame.to_parquet(target, index=False, compression="zstd")
        files[name] = {"sha256": sha256_file(target), "rows": len(frame),
                       "columns": list(frame.columns)}
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
        "population_source": areas.attrs["population_source"],
        "time_index": "t = months since December 2009 (2010M01 = 1); cohort 0 = never treated",
        "sources": {
            role: {"file": Path(path).name, "sha256": sha256_file(path)}
            for role, path in (("statfin", statfin_csv), ("trials", assignment_csv))
        },
        "files": files,
    }
    path = out / "manifest.json"
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path
