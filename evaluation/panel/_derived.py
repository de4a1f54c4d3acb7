"""Checks and derived panels that need a built :class:`~evaluation.panel.Panel`.

The bodies of :meth:`Panel.require_comparison_units` and :meth:`Panel.with_unit_weights`
and of the period conversions :meth:`Panel.period_label` and :meth:`Panel.period_position`
(documented there) live here to keep the class module short.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from evaluation.errors import (
    CohortOutOfRangeError,
    DuplicateObservationError,
    InvalidOptionError,
    InvalidWeightError,
    NoComparisonUnitsError,
    TimeFormatError,
)
from evaluation.messages import N_EXAMPLES, fmt, fmt_arg, plural, verb
from evaluation.options import check_option
from evaluation.panel._paths import carry_window
from evaluation.panel._time import ordinal_label, to_ordinals

if TYPE_CHECKING:
    from evaluation.panel.panel import ControlGroup, Panel


def require_comparison_units(panel: Panel, control_group: ControlGroup,
                             anticipation: int) -> None:
    """Raise :class:`NoComparisonUnitsError` when ``control_group`` has no units."""
    from evaluation.panel.panel import ControlGroup

    check_option("control_group", control_group, ControlGroup)
    if isinstance(anticipation, bool) or not isinstance(anticipation, int | np.integer):
        raise InvalidOptionError(
            f"anticipation must be a non-negative integer, got {anticipation!r}."
        )
    if anticipation < 0:
        raise InvalidOptionError(f"anticipation must be >= 0, got {anticipation}.")
    never = np.isnan(panel.unit_cohort)
    if never.any():
        return
    current = fmt_arg(panel.never_treated)
    coding = (
        f"check the never_treated coding (currently never_treated={current}; e.g. pass "
        "never_treated=0 if 0 marks never-treated units)"
    )
    cohorts = ", ".join(fmt(panel.period_label(g)) for g in panel.cohorts[:N_EXAMPLES])
    if control_group == "never":
        raise NoComparisonUnitsError(
            f"control_group='never' needs never-treated units, but all "
            f"{plural(panel.n_units, 'unit')} of column {panel.unit!r} are treated "
            f"(cohorts {cohorts}). Pass control_group='notyet', or {coding}."
        )
    earliest = int(panel.cohorts[0])
    if not (panel.unit_cohort > earliest + anticipation).any():
        raise NoComparisonUnitsError(
            f"control_group='notyet' needs units that are never treated or first treated "
            f"after {fmt(panel.period_label(earliest))} + anticipation={anticipation}, but "
            f"all {plural(panel.n_units, 'unit')} of column {panel.unit!r} are treated by "
            f"then (cohorts {cohorts}). Reduce anticipation, add comparison units, or "
            f"{coding}."
        )


def reweighted(panel: Panel, weights: pd.Series, name: str) -> Panel:
    """Return the panel of the units with a positive weight, weighted by it."""
    from evaluation.panel.panel import Panel

    values = pd.to_numeric(pd.Series(weights), errors="coerce")
    if not np.isfinite(values.to_numpy(dtype=float)).all() or (values < 0).any():
        raise InvalidWeightError("unit weights must be finite and non-negative.")
    if values.index.has_duplicates:
        raise InvalidWeightError("unit weights must have one entry per unit id; "
                                 f"{int(values.index.duplicated().sum())} ids repeat.")
    unit_weight = panel.data[panel.unit].map(values).fillna(0.0).to_numpy(dtype=float)
    keep = unit_weight > 0
    if not keep.any():
        raise InvalidWeightError(
            f"none of the {panel.n_units} units of the panel has a positive weight; the "
            f"weights' ids (e.g. {list(values.index[:3])}) must be values of column "
            f"{panel.unit!r}.")
    frame = panel.data.loc[keep].copy()
    if panel.weights is not None:
        unit_weight = unit_weight * panel.data[panel.weights].to_numpy(dtype=float)
    if name in frame.columns:
        raise InvalidOptionError(f"name={name!r} is already a column of the panel; pick "
                                 "another name for the weight column.")
    frame[name] = unit_weight[keep]
    return carry_window(panel, Panel(
        frame, unit=panel.unit, time=panel.time, outcome=list(panel.outcomes),
        cohort=panel.cohort, status=panel.status, covariates=panel.covariates, weights=name,
        cluster=panel.cluster, never_treated=panel.never_treated))


def grid_label(panel: Panel, position: int | float) -> Any:
    """Return the label (int or pandas Period) of a grid position."""
    try:
        valid = float(position).is_integer() and 0 <= position < panel.n_periods
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise CohortOutOfRangeError(
            f"Position {position!r} is not on the time grid of column {panel.time!r}; "
            f"positions run from 0 to {panel.n_periods - 1} "
            f"({fmt(panel.periods[0])}..{fmt(panel.periods[-1])}). NaN marks never-treated "
            "units and has no label."
        )
    label = panel.periods[int(position)]
    return int(label) if panel.time_kind == "integer" else label


def grid_position(panel: Panel, label: Any) -> int:
    """Return the grid position of a period label."""
    converted = to_ordinals(pd.Series([label], dtype=object), "label", "period label")
    if converted.kind is None:
        raise TimeFormatError(f"Label {label!r} is missing, not a period of this panel.")
    if converted.kind != panel.time_kind or (
        panel.time_kind == "period" and converted.period_dtype != panel._period_dtype
    ):
        raise TimeFormatError(
            f"Label {fmt(label)} is {converted.describe()}, but column {panel.time!r} holds "
            f"{'integers' if panel.time_kind == 'integer' else panel._period_dtype}; pass a "
            f"label like {fmt(panel.periods[0])}."
        )
    offset = int(converted.row_values()[0]) - panel._t0
    position, remainder = divmod(offset, panel.step)
    if remainder or not 0 <= position < panel.n_periods:
        raise CohortOutOfRangeError(
            f"Period {fmt(label)} is not on the time grid of column {panel.time!r} "
            f"({fmt(panel.periods[0])}..{fmt(panel.periods[-1])}, step {panel.step})."
        )
    return position


def duplicate_rows_error(panel: Panel, dup_keys: np.ndarray, n_rows: int,
                         distinct: np.ndarray) -> DuplicateObservationError:
    """Return the error naming a (unit, time) pair that occurs more than once."""
    first = int(dup_keys[0])
    unit_label = panel.units[first // distinct.size]
    time_label = ordinal_label(
        distinct[first % distinct.size], panel.time_kind, panel._period_dtype
    )
    return DuplicateObservationError(
        f"Columns {panel.unit!r} and {panel.time!r} do not identify rows: "
        f"{plural(dup_keys.size, '(unit, time) pair')} "
        f"{verb(dup_keys.size, 'occurs', 'occur')} more than once ({n_rows:,} rows), e.g. "
        f"unit {fmt(unit_label)} in period {fmt(time_label)}. Aggregate "
        f"the rows, e.g. df.groupby([{panel.unit!r}, {panel.time!r}], as_index=False).mean(), "
        f"or drop duplicates with df.drop_duplicates([{panel.unit!r}, {panel.time!r}])."
    )
