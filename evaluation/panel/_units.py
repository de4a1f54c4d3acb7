"""Unit-level checks of a panel, run after its rows are sorted by (unit, time).

Cluster, weights and cohort must be constant within a unit; the 0/1 treatment status must
agree with the cohort. The functions here check these columns on the sorted rows
(:class:`UnitRows`) and return the per-unit arrays that :class:`evaluation.panel.Panel`
stores. The order in which the checks run is decided by the Panel.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any, NoReturn

import numpy as np
import pandas as pd

from evaluation.errors import (
    CohortOutOfRangeError,
    InvalidWeightError,
    MissingValueError,
    StatusCohortMismatchError,
    VaryingWithinUnitError,
)
from evaluation.messages import fmt, fmt_arg, fmt_list, plural, verb
from evaluation.panel._arrays import (
    as_float,
    factorize_sorted,
    is_numeric_dtype,
    missing_mask,
    runs,
)
from evaluation.panel._time import MISSING, NEVER, TimeGrid


@dataclass(frozen=True, eq=False)
class UnitRows:
    """The rows of a panel sorted by (unit, time), with their unit and period codes.

    ``starts`` holds the first row of each unit; ``time`` names the time column, whose
    values label the periods in messages.
    """

    data: pd.DataFrame
    time: Hashable
    units: pd.Index
    unit_codes: np.ndarray
    time_codes: np.ndarray
    starts: np.ndarray

    @property
    def n_units(self) -> int:
        """Number of units."""
        return len(self.units)

    def examples(self, row_mask: np.ndarray) -> tuple[np.ndarray, int]:
        """Return the distinct unit codes of the rows in ``row_mask`` and the first row."""
        return runs(self.unit_codes[row_mask]), int(np.argmax(row_mask))

    def varying(self, values: np.ndarray) -> np.ndarray:
        """Return a unit mask of units whose row ``values`` are not all equal."""
        first = values[self.starts][self.unit_codes]
        differs = values != first
        if values.dtype.kind == "f":
            differs &= ~(np.isnan(values) & np.isnan(first))
        varying = np.zeros(self.n_units, dtype=bool)
        varying[self.unit_codes[differs]] = True
        return varying

    def raise_varying(self, column: Hashable, role: str, varying: np.ndarray, fix: str) -> NoReturn:
        """Raise VaryingWithinUnitError for the units flagged in ``varying``."""
        units = np.flatnonzero(varying)
        example = int(units[0])
        raise VaryingWithinUnitError(
            f"Column {column!r} ({role}) must be constant within each unit, but it varies "
            f"within {plural(units.size, 'unit')}, e.g. unit {fmt(self.units[example])} has "
            f"values {self._values_text(column, example)}. {fix}"
        )

    def _values_text(self, column: Hashable, unit_code: int) -> str:
        """Format the distinct values of ``column`` within one unit."""
        start = self.starts[unit_code]
        stop = self.starts[unit_code + 1] if unit_code + 1 < self.n_units else len(self.data)
        values = pd.unique(self.data[column].iloc[start:stop])
        return f"[{fmt_list(list(values))}]"


def unit_clusters(rows: UnitRows, column: Hashable) -> tuple[np.ndarray, pd.Index]:
    """Code the cluster column per unit; clusters must be present and unit-constant.

    Returns the int64 cluster code of each unit (read-only) and the sorted cluster labels.
    """
    series = rows.data[column]
    mask = missing_mask(series)
    if mask is not None and mask.any():
        units, row = rows.examples(mask)
        raise MissingValueError(
            f"Column {column!r} (cluster) is missing in "
            f"{plural(int(mask.sum()), 'row')} of {plural(units.size, 'unit')}, e.g. unit "
            f"{fmt(rows.units[units[0]])} in period {fmt(rows.data[rows.time].iloc[row])}. "
            "Fill "
            "in the cluster (e.g. the unit's region) or drop those units."
        )
    codes, labels = factorize_sorted(series)
    varying = rows.varying(codes)
    if varying.any():
        rows.raise_varying(
            column,
            "cluster",
            varying,
            "Clusters group whole units; use a time-invariant cluster such as the unit's "
            "region in its first period, or cluster=unit.",
        )
    used, unit_cluster = np.unique(codes[rows.starts], return_inverse=True)
    unit_cluster = unit_cluster.astype(np.int64)
    unit_cluster.flags.writeable = False
    return unit_cluster, labels.take(used).rename(column)


def unit_weights(rows: UnitRows, column: Hashable) -> np.ndarray:
    """Check weights (finite, non-negative, not all zero, unit-constant); return them per unit."""
    values = as_float(rows.data[column])
    for problem, mask in (
        ("missing", np.isnan(values)),
        ("infinite", np.isinf(values)),
        ("negative", values < 0),
    ):
        if mask.any():
            units, row = rows.examples(mask)
            raise InvalidWeightError(
                f"Column {column!r} (weights) has {problem} values in "
                f"{plural(int(mask.sum()), 'row')} of {plural(units.size, 'unit')}, e.g. "
                f"unit {fmt(rows.units[units[0]])} with weight "
                f"{fmt(rows.data[column].iloc[row])}. Weights must be finite and "
                "non-negative; fix them or drop those units."
            )
    varying = rows.varying(values)
    if varying.any():
        rows.raise_varying(
            column,
            "weights",
            varying,
            "Weights are unit weights; use one value per unit, e.g. the unit's population "
            "in the base period.",
        )
    weights = values[rows.starts].astype(np.float64)
    if not (weights > 0).any():
        raise InvalidWeightError(
            f"Column {column!r} (weights) is zero for all {plural(rows.n_units, 'unit')}; at "
            "least one unit needs a positive weight. Check the column or omit weights."
        )
    weights.flags.writeable = False
    return weights


def unit_cohort(
    rows: UnitRows, column: Hashable, state: np.ndarray, never_treated: Any, grid: TimeGrid
) -> np.ndarray:
    """Check cohort rows (missing, unit-constant, on the grid); return grid positions.

    ``state`` holds each row's cohort ordinal, ``NEVER`` or ``MISSING`` (see
    :meth:`evaluation.panel._time.Ordinals.state`). Returns float64 positions per unit,
    NaN for never-treated units.
    """
    missing = state == MISSING
    if missing.any():
        units, _ = rows.examples(missing)
        nt = fmt_arg(never_treated)
        raise MissingValueError(
            f"Column {column!r} (cohort) is missing (NaN) in {plural(units.size, 'unit')} "
            f"({plural(int(missing.sum()), 'row')}), e.g. unit "
            f"{fmt(rows.units[units[0]])}. never_treated={nt} was set, so {nt} marks "
            f"never-treated units and NaN is not allowed. Fill the missing cohorts (with {nt} "
            "for never-treated units) or pass never_treated=np.nan to treat NaN as never "
            "treated."
        )
    varying = rows.varying(state)
    if varying.any():
        rows.raise_varying(
            column,
            "cohort",
            varying,
            "The cohort is the unit's first treated period and must be the same in every "
            "row of the unit (use the status column for treatment that switches on and off).",
        )
    state = state[rows.starts]
    treated = state != NEVER
    in_range = treated & (state >= grid.t0) & (state <= grid.last)
    offset = np.where(in_range, state, grid.t0) - grid.t0
    on_grid = ~treated | (in_range & (offset % grid.step == 0))
    if not on_grid.all():
        _raise_cohort_out_of_range(rows, column, ~on_grid, state, grid)
    return np.where(treated, offset // grid.step, np.nan).astype(np.float64)


def _raise_cohort_out_of_range(
    rows: UnitRows, column: Hashable, bad: np.ndarray, unit_state: np.ndarray, grid: TimeGrid
) -> NoReturn:
    """Raise CohortOutOfRangeError with a never_treated hint for sentinel codes."""
    bad_units = np.flatnonzero(bad)
    example = int(bad_units[0])
    span = f"{fmt(grid.periods[0])}..{fmt(grid.periods[-1])}"
    if grid.kind == "integer" and grid.step != 1:
        span += f" in steps of {grid.step}"
    state = unit_state[bad_units]
    outside = (state < grid.t0) | (state > grid.last)
    hint = ""
    if outside.any():
        starts = rows.starts[bad_units[outside]]
        counts = rows.data[column].iloc[starts].value_counts(dropna=False)
        common, n_common = counts.index[0], int(counts.iloc[0])
        hint = (
            f" If {fmt(common)} marks never-treated units ({plural(n_common, 'unit')} "
            f"{verb(n_common, 'has', 'have')} it), pass never_treated={fmt_arg(common)} "
            "(with the default never_treated=np.nan only missing cohorts mean never treated)."
        )
    n_bad = bad_units.size
    raise CohortOutOfRangeError(
        f"Column {column!r} (cohort): {plural(n_bad, 'unit')} {verb(n_bad, 'has', 'have')} "
        f"a first treated period outside the time grid {span}, e.g. unit "
        f"{fmt(rows.units[example])} with cohort "
        f"{fmt(rows.data[column].iloc[rows.starts[example]])}. Cohorts must be "
        f"observed periods of the panel.{hint} Otherwise drop these units (e.g. units "
        "treated before the first period have no pre-treatment data) or correct their "
        "cohort."
    )


def status_values(rows: UnitRows, column: Hashable) -> np.ndarray:
    """Check that the status column is 0/1 without missing values; return it as bool."""
    series = rows.data[column]
    dtype = series.dtype
    if isinstance(dtype, np.dtype) and dtype.kind == "b":
        ok, status = None, series.to_numpy()
    elif is_numeric_dtype(dtype):
        values = as_float(series)
        ok, status = (values == 0) | (values == 1), values == 1
    else:
        ok = series.isin([0, 1]).to_numpy(dtype=bool, na_value=False)
        status = series.isin([1]).to_numpy(dtype=bool, na_value=False)
    if ok is not None and not ok.all():
        bad = ~ok
        units, row = rows.examples(bad)
        if is_numeric_dtype(dtype):
            recode = f"(df[{column!r}] > 0).astype(int) if positive codes mean treated"
        else:
            recode = f"df[{column!r}].map({{'no': 0, 'yes': 1}}) with your own codes"
        raise StatusCohortMismatchError(
            f"Column {column!r} (status) must be 0 or 1 (not missing), but "
            f"{plural(int(bad.sum()), 'row')} of {plural(units.size, 'unit')} have other "
            f"values, e.g. {fmt(series.iloc[row])} for unit {fmt(rows.units[units[0]])}. "
            f"Recode it to 0 (untreated) / 1 (treated), e.g. df[{column!r}] = {recode}, and "
            "fill missing statuses."
        )
    return np.asarray(status, dtype=bool)


def cohort_from_status(rows: UnitRows, status: np.ndarray) -> np.ndarray:
    """Return each unit's first period with status 1 as a float64 position (NaN if none)."""
    cohort = np.full(rows.n_units, np.nan)
    idx = np.flatnonzero(status)
    if idx.size == 0:  # no unit is ever treated
        return cohort
    treated_units = rows.unit_codes[idx]
    first = np.concatenate(([True], treated_units[1:] != treated_units[:-1]))
    cohort[treated_units[first]] = rows.time_codes[idx[first]]
    return cohort


def check_status_matches_cohort(
    rows: UnitRows,
    column: Hashable,
    status: np.ndarray,
    cohort_column: Hashable,
    cohort: np.ndarray,
) -> None:
    """Raise StatusCohortMismatchError where status contradicts the units' cohort positions."""
    cohort_rows = cohort[rows.unit_codes]
    never = np.isnan(cohort_rows)
    checks = (
        (
            status & never,
            "is 1 in never-treated units",
            "Never-treated units must have status 0 throughout",
        ),
        (
            status & ~never & (rows.time_codes < cohort_rows),
            "is 1 before the unit's cohort",
            "Status must be 0 before the first treated period",
        ),
        (
            ~status & (rows.time_codes == cohort_rows),
            "is 0 in the unit's cohort period",
            "Status must be 1 in the first treated period",
        ),
    )
    for mask, problem, rule in checks:
        if mask.any():
            units, row = rows.examples(mask)
            cohort_label = rows.data[cohort_column].iloc[row]
            raise StatusCohortMismatchError(
                f"Column {column!r} (status) {problem} (column {cohort_column!r}) in "
                f"{plural(int(mask.sum()), 'row')} of {plural(units.size, 'unit')}, "
                f"e.g. unit {fmt(rows.units[units[0]])} in period "
                f"{fmt(rows.data[rows.time].iloc[row])} (cohort {fmt(cohort_label)}). "
                f"{rule}; correct the cohort or the status column, or omit cohort= to "
                "derive it from the status."
            )
