"""Array helpers of the panel: dtype tests, missing masks, integer coding and sorting.

These functions know nothing about panel roles or messages; they turn pandas columns into
NumPy arrays cheaply (without grouping, and without per-value Python loops on large columns).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def is_nan_like(value: Any) -> bool:
    """Return True for the scalars that mean "missing": None, NaN, pd.NA and NaT."""
    if value is None:
        return True
    try:
        return bool(np.ndim(value) == 0 and pd.isna(value))
    except (TypeError, ValueError):
        return False


def is_numeric_dtype(dtype: Any) -> bool:
    """Return True for bool, integer and real floating dtypes (NumPy or pandas extension)."""
    return bool(
        pd.api.types.is_bool_dtype(dtype)
        or (pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype))
    ) and not isinstance(dtype, pd.CategoricalDtype)


def as_float(series: pd.Series) -> np.ndarray:
    """Return a numeric column as float64 (missing values as NaN), without copying if possible."""
    if isinstance(series.dtype, np.dtype):
        return np.asarray(series.to_numpy(), dtype=np.float64)
    return series.to_numpy(dtype=np.float64, na_value=np.nan)


def missing_mask(series: pd.Series) -> np.ndarray | None:
    """Return a boolean mask of missing values, or None if the dtype cannot hold any."""
    dtype = series.dtype
    if isinstance(dtype, np.dtype):
        if dtype.kind in "biu":
            return None
        if dtype.kind == "f":
            return np.isnan(series.to_numpy())
    if isinstance(dtype, pd.CategoricalDtype):
        return series.cat.codes.to_numpy() < 0
    return series.isna().to_numpy()


def infinite_mask(series: pd.Series) -> np.ndarray | None:
    """Return a boolean mask of ±inf in a numeric column, or None if it cannot hold any."""
    if not pd.api.types.is_float_dtype(series.dtype):
        return None  # bool and integer columns (NumPy or nullable) hold finite values only
    return np.isinf(as_float(series))


def runs(sorted_codes: np.ndarray) -> np.ndarray:
    """Return the distinct values of a sorted integer array (cheaper than ``np.unique``)."""
    if sorted_codes.size == 0:
        return sorted_codes
    keep = np.empty(sorted_codes.size, dtype=bool)
    keep[0] = True
    np.not_equal(sorted_codes[1:], sorted_codes[:-1], out=keep[1:])
    return sorted_codes[keep]


def dense_int_codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(codes, uniques)``: int64 dense ranks of ``values`` and the sorted uniques.

    Uses a bincount lookup table when the value range is small (the usual case for ids and
    times) and hashing otherwise.
    """
    if values.size == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    if bool(np.all(values[1:] >= values[:-1])):  # already sorted (e.g. unit ids): run codes
        change = values[1:] != values[:-1]
        starts = np.concatenate(([0], np.flatnonzero(change) + 1))
        lengths = np.diff(np.append(starts, values.size))
        codes = np.repeat(np.arange(starts.size, dtype=np.int64), lengths)
        return codes, values[starts].astype(np.int64, copy=False)
    lo, hi = int(values.min()), int(values.max())
    span = hi - lo
    if span <= max(2 * values.size, 1 << 20) and span < (1 << 27):
        shifted = values.astype(np.int64, copy=False) - np.int64(lo)
        present = np.bincount(shifted, minlength=span + 1) > 0
        lookup = np.cumsum(present) - 1
        return lookup[shifted], np.flatnonzero(present) + lo
    codes, uniques = pd.factorize(values, sort=True)
    return codes.astype(np.int64, copy=False), np.asarray(uniques, dtype=np.int64)


def factorize_sorted(series: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Return int64 codes and labels of a column without missing values, labels sorted.

    Categoricals are coded through their categories; integer columns through a lookup table.
    Labels that cannot be sorted (mixed types) keep their order of first appearance.
    """
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        codes = series.cat.codes.to_numpy()
        categories = dtype.categories
        used = np.bincount(codes, minlength=len(categories)) > 0
        try:
            by_label = np.asarray(categories.argsort())
        except TypeError:
            by_label = np.arange(len(categories))
        used_sorted = by_label[used[by_label]]
        lookup = np.full(len(categories), -1, dtype=np.int64)
        lookup[used_sorted] = np.arange(used_sorted.size)
        return lookup[codes], categories.take(used_sorted)
    if isinstance(dtype, np.dtype) and dtype.kind in "iu" and dtype != np.uint64:
        codes, uniques = dense_int_codes(series.to_numpy())
        return codes, pd.Index(uniques.astype(dtype, copy=False))
    try:
        codes, uniques = pd.factorize(series, sort=True)
    except TypeError:
        codes, uniques = pd.factorize(series, sort=False)
    return np.asarray(codes, dtype=np.int64), pd.Index(uniques)


def sort_by_key(
    key: np.ndarray, size: int
) -> tuple[np.ndarray | None, np.ndarray | None, tuple[np.ndarray, int] | None]:
    """Return ``(order, sorted_key, duplicates)`` that sort rows by ``key`` in ``0..size-1``.

    ``order`` is None if the rows are already sorted; ``sorted_key`` is None if it is
    ``arange(size)`` (a balanced panel) or the rows are already sorted. If a key occurs
    more than once, ``order`` and ``sorted_key`` are None and ``duplicates`` is
    ``(keys, n_rows)``: the sorted keys that occur more than once and the number of rows
    that carry them; otherwise ``duplicates`` is None.
    """
    n = key.size
    if n <= 1 or bool(np.all(key[1:] > key[:-1])):
        return None, None, None
    if size <= min(8 * n + (1 << 20), 1 << 27):
        # Counting sort: one scatter into the (unit, time) cells.
        slot = np.full(size, -1, dtype=np.int64)
        slot[key] = np.arange(n)
        filled = slot >= 0
        if int(np.count_nonzero(filled)) == n:
            if n == size:
                return slot, None, None
            return slot[filled], np.flatnonzero(filled), None
        counts = np.bincount(key, minlength=size)
        dup_keys = np.flatnonzero(counts > 1)
        return None, None, (dup_keys, int(counts[dup_keys].sum()))
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    same = sorted_key[1:] == sorted_key[:-1]
    if not same.any():
        return order, sorted_key, None
    dup_keys, dup_counts = np.unique(sorted_key[1:][same], return_counts=True)
    return None, None, (dup_keys, int(dup_counts.sum()) + dup_keys.size)
