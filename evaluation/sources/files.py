"""Data files the commands read: ``.csv`` or ``.parquet`` panels, and file hashes."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from evaluation.errors import EvaluationError


def sha256_file(path: str | Path) -> str:
    """Hex sha256 digest of a file (:func:`hashlib.file_digest`)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def read_data_file(path: str | Path, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Read a ``.csv`` or ``.parquet`` file (optionally only some columns) into a DataFrame.

    Columns named but absent are left out here; the Panel then reports them as missing.

    Raises
    ------
    EvaluationError
        For other extensions or unreadable files (the message names the file).
    FileNotFoundError
        If the file does not exist.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"data file {path} does not exist.")
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise EvaluationError(f"data file {path} must end in .csv or .parquet (got "
                              f"{suffix or 'no extension'}).")
    try:
        if suffix == ".csv":
            wanted = None if columns is None else (lambda name: name in set(columns))
            return pd.read_csv(path, usecols=wanted)
        if columns is not None:
            import pyarrow.parquet as pq

            present = set(pq.read_schema(path).names)
            columns = [c for c in dict.fromkeys(columns) if c in present]
        return pd.read_parquet(path, columns=columns)
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise EvaluationError(f"could not read {path}: {exc}") from exc


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
