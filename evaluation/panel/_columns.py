"""Row-level checks of a panel's named columns, run before the rows are indexed.

Each function checks one thing (the named columns exist and have one role each, numeric
columns are numeric, ids and times are present, outcomes and covariates are present and
finite) and raises the matching :mod:`evaluation.errors` class with a message that names
the column, counts the offending rows, shows an example and says how to fix it. The order
in which the checks run is decided by :class:`evaluation.panel.Panel`.
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from evaluation.errors import (
    DroppedObservationsWarning,
    InvalidOptionError,
    MissingColumnError,
    MissingValueError,
    NonFiniteValueError,
    NonNumericColumnError,
    PanelError,
)
from evaluation.messages import fmt, fmt_list, plural
from evaluation.panel._arrays import infinite_mask, is_numeric_dtype, missing_mask

Roles = Sequence[tuple[str, Any]]
"""``(role, column)`` pairs, e.g. ``[("unit", "kunta"), ("outcome", "y")]``."""


def check_roles(data: pd.DataFrame, roles: Roles, unit: Hashable) -> list[Any]:
    """Check that the named columns exist, are unique and have one role each.

    Returns the distinct column names in the order of ``roles``; ``unit`` is the unit
    column, which may also be the cluster column.
    """
    seen: dict[Any, str] = {}
    for role, name in roles:
        if not isinstance(name, Hashable) or name is None:
            raise InvalidOptionError(f"{role} must be a column name, got {name!r}.")
        if role == "cluster" and name == unit:
            continue  # clustering at the unit level is a legitimate choice
        if name in seen:
            raise InvalidOptionError(
                f"Column {name!r} is used both as {seen[name]} and as {role}; each column "
                "can have only one role. Pass a copy under another name if you need both."
            )
        seen[name] = role
    absent = [f"{name!r} ({role})" for role, name in roles if name not in data.columns]
    if absent:
        available = [str(c) for c in data.columns]
        hint = ""
        index_names = [n for n in data.index.names if n is not None]
        if any(name in index_names for _, name in roles):
            hint = " Some of them are index levels: call data.reset_index() first."
        raise MissingColumnError(
            f"{plural(len(absent), 'column')} not found in data: {', '.join(absent)}. "
            f"Available columns: {fmt_list(available)}. Check the spelling or pass the "
            f"right column names.{hint}"
        )
    columns = list(seen)
    duplicated = [c for c in columns if int((data.columns == c).sum()) > 1]
    if duplicated:
        raise PanelError(
            f"Column {duplicated[0]!r} occurs {int((data.columns == duplicated[0]).sum())} "
            "times in data; column names must be unique. Rename or drop the duplicates."
        )
    return columns


def require_numeric(series: pd.Series, column: Hashable, role: str) -> None:
    """Raise NonNumericColumnError unless the column is bool, integer or real float."""
    dtype = series.dtype
    if is_numeric_dtype(dtype):
        return
    if isinstance(dtype, pd.CategoricalDtype):
        fix = (
            f"Convert it with df[{column!r}] = df[{column!r}].astype(float) if its categories "
            "are numbers"
        )
        raise NonNumericColumnError(
            f"Column {column!r} ({role}) must be numeric but is categorical "
            f"(categories e.g. {fmt_list(list(dtype.categories))}). {fix}."
        )
    try:
        coerced = pd.to_numeric(series, errors="coerce")
        bad = (coerced.isna() & series.notna()).to_numpy()
    except (TypeError, ValueError):
        bad = series.notna().to_numpy()
    after = "; then pass missing='drop' or impute them" if role != "weights" else ""
    fix = (
        f"Convert it with df[{column!r}] = pd.to_numeric(df[{column!r}], errors='coerce') "
        f"(non-numbers become NaN{after})."
    )
    if bad.any():
        example = series.iloc[int(np.argmax(bad))]
        raise NonNumericColumnError(
            f"Column {column!r} ({role}) must be numeric, but it has dtype {dtype} and "
            f"{int(bad.sum()):,} of {len(series):,} rows are not numbers, e.g. "
            f"{fmt(example)}. {fix}"
        )
    example = fmt(series.iloc[0]) if len(series) else "none"
    raise NonNumericColumnError(
        f"Column {column!r} ({role}) must be numeric, but it has dtype {dtype} although its "
        f"values look like numbers (e.g. {example}). {fix}"
    )


def check_ids_present(
    frame: pd.DataFrame, unit: Hashable, time: Hashable, time_missing: np.ndarray | None
) -> None:
    """Raise MissingValueError for missing unit ids or times (``time_missing`` per row)."""
    for role, name, mask in (
        ("unit", unit, missing_mask(frame[unit])),
        ("time", time, time_missing),
    ):
        if mask is not None and mask.any():
            rows = frame.index[mask]
            raise MissingValueError(
                f"Column {name!r} ({role}) is missing in {plural(rows.size, 'row')}, e.g. "
                f"row {fmt(rows[0])}. Every row needs a {role}; drop these rows, e.g. "
                f"df = df.dropna(subset=[{name!r}]), or fill in the {role}."
            )


def rows_to_keep(
    frame: pd.DataFrame, values: Roles, unit: Hashable, time: Hashable, missing: str
) -> np.ndarray | None:
    """Find rows with missing outcomes / covariates; raise, or return the rows to keep.

    ``values`` are the ``(role, column)`` pairs of the outcomes and covariates. Returns None
    if no value is missing. With ``missing="drop"`` a DroppedObservationsWarning is issued
    (attributed to the caller of the function that calls this one).
    """
    found: list[tuple[str, Any, np.ndarray]] = []
    for role, name in values:
        mask = missing_mask(frame[name])
        if mask is not None and mask.any():
            found.append((role, name, mask))
    if not found:
        return None
    if missing == "error":
        parts = []
        for role, name, mask in found:
            i = int(np.argmax(mask))
            parts.append(
                f"{name!r} ({role}) in {plural(int(mask.sum()), 'row')}, e.g. row "
                f"{fmt(frame.index[i])} (unit {fmt(frame[unit].iloc[i])}, "
                f"time {fmt(frame[time].iloc[i])})"
            )
        raise MissingValueError(
            f"Missing values in {'; '.join(parts)}. Pass missing='drop' to drop these rows "
            "or impute the values before building the panel."
        )
    drop = np.logical_or.reduce([mask for _, _, mask in found])
    n_drop, n_rows = int(drop.sum()), drop.size
    if n_drop == n_rows:
        raise MissingValueError(
            f"Every one of the {plural(n_rows, 'row')} has a missing value in "
            f"{', '.join(repr(name) for _, name, _ in found)}; no rows remain after "
            "missing='drop'. Check that the right columns were named and that they were "
            "read correctly (e.g. '..' codes converted with pd.to_numeric)."
        )
    detail = ", ".join(f"{name!r} ({int(mask.sum()):,})" for _, name, mask in found)
    warnings.warn(
        f"Dropped {n_drop:,} of {n_rows:,} rows with missing values (missing='drop'); "
        f"missing per column: {detail}.",
        DroppedObservationsWarning,
        stacklevel=3,
    )
    return ~drop


def check_finite(frame: pd.DataFrame, values: Roles, unit: Hashable, time: Hashable) -> None:
    """Raise NonFiniteValueError if an outcome or covariate holds ±inf.

    ``values`` are the ``(role, column)`` pairs of the outcomes and covariates; every
    column with infinite values is reported with its number of rows and a first example.
    """
    parts = []
    for role, name in values:
        mask = infinite_mask(frame[name])
        if mask is not None and mask.any():
            i = int(np.argmax(mask))
            parts.append(
                f"{name!r} ({role}) in {plural(int(mask.sum()), 'row')}, e.g. "
                f"{fmt(frame[name].iloc[i])} in row {fmt(frame.index[i])} (unit "
                f"{fmt(frame[unit].iloc[i])}, time {fmt(frame[time].iloc[i])})"
            )
    if parts:
        raise NonFiniteValueError(
            f"Infinite values in {'; '.join(parts)}. Outcomes and covariates must be finite: "
            "replace infinite values with NaN and pass missing='drop', or fix the "
            "computation that produced them (e.g. a division by zero or the log of 0)."
        )
