"""Reading the CSV inputs of the real-data path (StatFin exports and the trial assignment).

Private helpers shared by :mod:`evaluation.sources.statfin` and
:mod:`evaluation.sources.trial_assignment`:
decoding a file (UTF-8 with or without byte-order mark, UTF-16 with byte-order mark, or
Latin-1/cp1252), trying the delimiters ``;``, ``,`` and tab, finding the header row below an
optional title, matching column names against accepted spellings, reading the records as
strings, parsing StatFin cells to numbers and listing offending values in error messages.
Every problem raises :class:`~evaluation.errors.StatFinError`. Files are only read.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from evaluation.errors import StatFinError
from evaluation.sources._reading import check_file_kind, decode_text

__all__ = [
    "canonical",
    "column_arrays",
    "norm",
    "parse_numbers",
    "per_unique",
    "read_export",
]

_HEADER_SEARCH_ROWS = 50
_DELIMITERS = (";", ",", "\t")


def norm(name: str) -> str:
    """Lower-case a column name and drop everything but letters and digits."""
    return re.sub(r"[^0-9a-zåäö]", "", str(name).strip().lower())


def _decode(path: str | Path, what: str) -> tuple[Path, str]:
    """Return the path and the decoded text of a CSV file (never modifying it).

    The kind of file and its encoding are checked by
    :func:`evaluation.sources._reading.check_file_kind` and
    :func:`~evaluation.sources._reading.decode_text` (Excel, zip, binary and empty files are
    errors; encodings other than UTF-8 are warned about), raising :class:`StatFinError`.
    """
    file = Path(path)
    check_file_kind(file, "csv", f"{what} file", StatFinError)
    return file, decode_text(file, file.read_bytes(), f"{what} file", StatFinError)[0]


def canonical(field: str, aliases: Mapping[str, tuple[str, ...]]) -> str | None:
    """Return the key of ``aliases`` whose normalised spellings include ``field``, or None."""
    key = norm(field)
    return next((name for name, spelled in aliases.items() if key in spelled), None)


def read_export(path: str | Path, what: str, required: Mapping[str, tuple[str, ...]],
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
                found = {canonical(field, required) for field in record}
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
        return (f"{what} file {str(file)!r} is empty; export the table again (or pass the "
                "right file).")
    first = lines[0]
    delimiter = max(_DELIMITERS, key=first.count)
    fields = next(csv.reader([first], delimiter=delimiter), [])
    found = {canonical(field, required) for field in fields}
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


def column_arrays(header: list[str], rows: list[list[str]]) -> dict[str, np.ndarray]:
    """Transpose records into one object array per column."""
    return {name: np.array(values, dtype=object)
            for name, values in zip(header, zip(*rows, strict=True), strict=True)}


def per_unique(values: np.ndarray, func: Any) -> np.ndarray:
    """Apply ``func`` once per distinct value (StatFin columns repeat a few labels)."""
    codes, uniques = pd.factorize(values)
    mapped = np.empty(len(uniques), dtype=object)
    mapped[:] = [func(value) for value in uniques]
    return mapped[codes]


def parse_numbers(values: np.ndarray, lines: np.ndarray, decimal_comma: bool,
                  describe: Any, *, missing: Iterable[str], nil: str,
                  where: str = "") -> np.ndarray:
    """Parse StatFin cells to float: ``missing`` symbols and empty cells -> NaN, ``nil`` -> 0.

    ``describe(i)`` names the cell in row ``i`` for the error message, ``where`` the file
    (a prefix of the message). The callers pass
    :data:`evaluation.sources.statfin.MISSING_SYMBOLS` and
    :data:`evaluation.sources.statfin.NIL_SYMBOL`.
    """
    codes, uniques = pd.factorize(np.asarray(values, dtype=object))
    text = np.array([str(value).strip() for value in uniques], dtype=object)
    absent = np.isin(text, (*missing, ""))
    zero = text == nil
    out = np.full(text.size, np.nan)
    out[zero] = 0.0
    rest = ~absent & ~zero
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
        raise StatFinError(f"{where + ': ' if where else ''}cannot read the number {value!r} "
                           f"on line {lines[i]} "
                           f"({describe(i)}); {hint}.")
    out[rest] = numbers
    return out[codes]

