"""Data files the commands read: ``.csv`` or ``.parquet`` panels, and file hashes."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from evaluation.errors import DataFileError, EvaluationError
from evaluation.sources._reading import check_file_kind, read_csv_strict, read_parquet_checked


def sha256_file(path: str | Path) -> str:
    """Hex sha256 digest of a file (:func:`hashlib.file_digest`)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def read_data_file(path: str | Path, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Read a ``.csv`` or ``.parquet`` file (optionally only some columns) into a DataFrame.

    Columns named but absent are left out here; the Panel then reports them as missing.
    CSV files are read strictly by :func:`evaluation.sources._reading.read_csv_strict`:
    every row is checked against the full header (a stray field is an error naming its
    line, whatever ``columns`` says), the encoding (UTF-8, UTF-16, cp1252/Latin-1) and the
    delimiter (``,`` ``;`` tab ``|``, with decimal commas in ``;`` files) are detected, and
    anything but UTF-8 and ``,`` is warned about. The file is only read.

    Raises
    ------
    DataFileNotFoundError
        If the file does not exist (also a :class:`FileNotFoundError`).
    DataFileError
        For other extensions, directories, Excel workbooks (whatever the extension), empty,
        binary, header-only or ragged files, duplicated column names and unreadable Parquet
        (the message names the file, the problem and the fix).

    Warns
    -----
    DataFileWarning
        When the encoding or delimiter was detected, or the last line has no line ending.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if path.is_dir() and suffix == ".parquet":  # a partitioned Parquet dataset
        return read_parquet_checked(path, columns)
    check_file_kind(path, "csv" if suffix != ".parquet" else "parquet")
    if suffix not in (".csv", ".parquet"):
        raise DataFileError(f"data file {str(path)!r} must end in .csv or .parquet (got "
                            f"{suffix or 'no extension'}); rename it if it holds CSV text or "
                            "Parquet, or export it in one of those formats.")
    if suffix == ".csv":
        return read_csv_strict(path, columns)
    return read_parquet_checked(path, columns)


def load_estimation_data(path: str | Path, columns: Sequence[str],
                         where: str | None = None) -> pd.DataFrame:
    """Read the columns an estimate needs and keep the rows selected by ``where``.

    Parameters
    ----------
    path
        ``.csv`` or ``.parquet`` file.
    columns
        Columns the estimate uses; with ``where`` every column is read, because the
        expression may name others.
    where
        A pandas :meth:`~pandas.DataFrame.query` expression such as
        ``"target_group == True"`` (None keeps every row).

    Raises
    ------
    EvaluationError
        If the expression cannot be evaluated or selects no rows.
    """
    data = read_data_file(path, None if where else columns)
    if not where:
        return data
    try:
        selected = data.query(where)
    except Exception as exc:  # pandas raises many types for a bad expression
        raise EvaluationError(f"could not apply the row filter {where!r} to {path}: {exc}; "
                              "write a pandas query expression over the file's columns, "
                              "e.g. \"target_group == True and t >= 109\".") from exc
    if selected.empty:
        raise EvaluationError(f"the row filter {where!r} selects no rows of {path}.")
    return selected
