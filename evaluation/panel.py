"""Validated long panels: the one place where a long panel is checked and indexed.

Every estimator takes a :class:`Panel`. Constructing one checks unit ids, the time grid,
duplicates, cohort (first treated period) coding, treatment status, weights, clusters and
missing values once, copies the named columns (the caller's DataFrame is never modified) and
stores integer codes so that estimators can work on NumPy arrays without grouping again.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from evaluation._options import check_option
from evaluation.errors import (
    CohortOutOfRangeError,
    DroppedObservationsWarning,
    DuplicateObservationError,
    InvalidOptionError,
    InvalidWeightError,
    IrregularTimeGridError,
    MissingColumnError,
    MissingValueError,
    NoComparisonUnitsError,
    NonNumericColumnError,
    PanelError,
    StatusCohortMismatchError,
    TimeFormatError,
    VaryingWithinUnitError,
)

MissingPolicy = Literal["error", "drop"]
ControlGroup = Literal["never", "notyet"]
TimeKind = Literal["integer", "period"]

# Sentinels in the int64 "cohort state" of a row; real ordinals never come close to them.
_INT64 = np.iinfo(np.int64)
_NEVER = _INT64.min  # never treated
_MISSING = _INT64.min + 1  # missing cohort while never_treated is not NaN (an error)
_NEG_INF = _INT64.min + 2  # cohort -inf
_POS_INF = _INT64.max  # cohort +inf
_N_EXAMPLES = 5

_STRING_FORMATS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^\s*(\d{4})\s*M\s*(\d{1,2})\s*$"), "M"),  # StatFin: 2021M03
    (re.compile(r"^\s*(\d{4})-(\d{1,2})\s*$"), "M"),  # ISO month: 2021-03
    (re.compile(r"^\s*(\d{4})\s*Q\s*([1-4])\s*$"), "Q"),  # quarter: 2021Q1
)
_INTEGER_STRING = re.compile(r"^\s*[+-]?\d+\s*$")
_FORMATS_HINT = (
    "integers (e.g. years), pandas Periods, strings such as '2021M03' (StatFin), '2021-03' or "
    "'2021Q1', or a Categorical whose categories are one of these"
)


# --------------------------------------------------------------------------------------------
# Small formatting helpers
# --------------------------------------------------------------------------------------------
def _fmt(value: Any) -> str:
    """Format a value for an error message (strings quoted, NumPy scalars unwrapped)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, pd.Period):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value) if isinstance(value, str) else str(value)


def _fmt_arg(value: Any) -> str:
    """Format a value as it would be typed in a keyword argument (``np.inf``, ``0``)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        if np.isinf(value):
            return "np.inf" if value > 0 else "-np.inf"
        if value.is_integer():
            return str(int(value))
    if isinstance(value, pd.Period):
        return f"pd.Period({str(value)!r}, freq={value.freqstr!r})"
    return repr(value)


def _fmt_list(values: Sequence[Any], total: int | None = None) -> str:
    """Format the first few values of a list, noting how many more there are."""
    shown = ", ".join(_fmt(v) for v in list(values)[:_N_EXAMPLES])
    total = len(values) if total is None else total
    return shown + (f", ... ({total - _N_EXAMPLES} more)" if total > _N_EXAMPLES else "")


def _plural(count: int, word: str) -> str:
    """Return ``"1 unit"`` / ``"3 units"``."""
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def _verb(count: int, singular: str, plural: str) -> str:
    """Return the verb form agreeing with ``count`` (``"has"`` / ``"have"``)."""
    return singular if count == 1 else plural


def _is_nan_like(value: Any) -> bool:
    """Return True for the scalars that mean "missing": None, NaN, pd.NA and NaT."""
    if value is None:
        return True
    try:
        return bool(np.ndim(value) == 0 and pd.isna(value))
    except (TypeError, ValueError):
        return False


def _is_numeric_dtype(dtype: Any) -> bool:
    """Return True for bool, integer and real floating dtypes (NumPy or pandas extension)."""
    return bool(
        pd.api.types.is_bool_dtype(dtype)
        or (pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype))
    ) and not isinstance(dtype, pd.CategoricalDtype)


def _as_float(series: pd.Series) -> np.ndarray:
    """Return a numeric column as float64 (missing values as NaN), without copying if possible."""
    if isinstance(series.dtype, np.dtype):
        return np.asarray(series.to_numpy(), dtype=np.float64)
    return series.to_numpy(dtype=np.float64, na_value=np.nan)


def _missing_mask(series: pd.Series) -> np.ndarray | None:
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


def _runs(sorted_codes: np.ndarray) -> np.ndarray:
    """Return the distinct values of a sorted integer array (cheaper than ``np.unique``)."""
    if sorted_codes.size == 0:
        return sorted_codes
    keep = np.empty(sorted_codes.size, dtype=bool)
    keep[0] = True
    np.not_equal(sorted_codes[1:], sorted_codes[:-1], out=keep[1:])
    return sorted_codes[keep]


def _dense_int_codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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


def _factorize_sorted(series: pd.Series) -> tuple[np.ndarray, pd.Index]:
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
        codes, uniques = _dense_int_codes(series.to_numpy())
        return codes, pd.Index(uniques.astype(dtype, copy=False))
    try:
        codes, uniques = pd.factorize(series, sort=True)
    except TypeError:
        codes, uniques = pd.factorize(series, sort=False)
    return np.asarray(codes, dtype=np.int64), pd.Index(uniques)


# --------------------------------------------------------------------------------------------
# Time-like columns (time and cohort) -> int64 ordinals
# --------------------------------------------------------------------------------------------
@dataclass
class _Ordinals:
    """Integer representation of a time-like column (time or cohort).

    Ordinals are years / integer periods for ``kind == "integer"`` and pandas Period
    ordinals for ``kind == "period"``; ``kind`` is None when the column holds no usable
    value. Without ``codes``, ``values`` and ``never`` are per row. With ``codes`` (from a
    Categorical or from factorizing strings) they are per level and ``codes`` maps rows to
    levels (-1 = missing), so that large columns are never converted value by value.
    ``missing`` is always per row. Values are meaningless where ``missing`` or ``never``.
    """

    kind: str | None
    period_dtype: pd.PeriodDtype | None
    values: np.ndarray
    missing: np.ndarray | None
    never: np.ndarray | None
    codes: np.ndarray | None = None

    def describe(self) -> str:
        """Name the representation for messages (``"integers"``, ``"period[M]"``)."""
        if self.kind == "period":
            return f"Periods of dtype {self.period_dtype}"
        return "integers" if self.kind == "integer" else "no values"

    def row_values(self) -> np.ndarray:
        """Return one ordinal per row."""
        return self.values if self.codes is None else self.values[self.codes]

    def row_never(self) -> np.ndarray | None:
        """Return the per-row never-treated mask (None if no row is never treated)."""
        if self.never is None or self.codes is None:
            return self.never
        return self.never[self.codes] & (self.codes >= 0)

    def state(self, missing_state: int) -> np.ndarray:
        """Return int64 row states: the ordinal, ``_NEVER`` or ``missing_state``."""
        if self.codes is not None:
            table = np.append(self.values, np.int64(missing_state))  # code -1 -> last entry
            if self.never is not None:
                table[:-1][self.never] = _NEVER
            return table[self.codes]
        state = self.values
        if self.never is not None or self.missing is not None:
            state = state.copy()
            if self.missing is not None:
                state[self.missing] = missing_state
            if self.never is not None:
                state[self.never] = _NEVER
        return state

    def dense(self, rows: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(ranks, distinct)`` for the selected rows (no missing values allowed).

        ``distinct`` are the sorted distinct ordinals and ``ranks`` the int64 position of
        each row's ordinal in it.
        """
        if self.codes is None:
            return _dense_int_codes(self.values if rows is None else self.values[rows])
        codes = self.codes if rows is None else self.codes[rows]
        used = np.bincount(codes, minlength=self.values.size) > 0
        distinct = np.unique(self.values[used])
        lookup = np.searchsorted(distinct, self.values).astype(np.int64)
        return lookup[codes], distinct


def _never_matches(values: np.ndarray, never_treated: Any) -> np.ndarray | None:
    """Return the mask ``values == never_treated`` or None when never_treated is NaN-like."""
    if _is_nan_like(never_treated):
        return None
    if values.dtype.kind in "iuf":
        if isinstance(never_treated, bool) or not isinstance(
            never_treated, int | float | np.integer | np.floating
        ):
            return None
        mask = values == never_treated
    else:
        mask = np.fromiter(
            (_safe_equal(v, never_treated) for v in values), dtype=bool, count=values.size
        )
    return mask if mask.any() else None


def _safe_equal(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def _to_ordinals(
    series: pd.Series, column: Hashable, role: str, never_treated: Any = np.nan
) -> _Ordinals:
    """Convert a time or cohort column to int64 ordinals (see :class:`_Ordinals`).

    Categoricals are converted through their categories and strings through their distinct
    values, so the cost per row is one integer gather.
    """
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        levels = _to_ordinals(pd.Series(dtype.categories), column, role, never_treated)
        codes = series.cat.codes.to_numpy()
        missing = codes < 0
        return _Ordinals(
            levels.kind,
            levels.period_dtype,
            levels.row_values(),
            missing if missing.any() else None,
            levels.row_never(),
            codes,
        )
    if pd.api.types.is_datetime64_any_dtype(dtype):
        raise TimeFormatError(
            f"Column {column!r} ({role}) holds datetimes ({dtype}); the panel needs discrete "
            f"periods. Convert it with df[{column!r}] = df[{column!r}].dt.to_period('M') "
            "(monthly; use 'Q' or 'Y' for quarters or years)."
        )
    if isinstance(dtype, pd.PeriodDtype):
        missing = series.isna().to_numpy()
        values = series.array.asi8
        never = None
        if isinstance(never_treated, pd.Period) and pd.PeriodDtype(never_treated.freqstr) == dtype:
            never = (values == never_treated.ordinal) & ~missing
        return _Ordinals("period", dtype, values, missing if missing.any() else None, never)
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_complex_dtype(dtype):
        raise TimeFormatError(
            f"Column {column!r} ({role}) has dtype {dtype}, which is not a time; use "
            f"{_FORMATS_HINT}."
        )
    if pd.api.types.is_integer_dtype(dtype):
        if isinstance(dtype, np.dtype):
            missing = None
            values = series.to_numpy().astype(np.int64, copy=False)
        else:
            missing = series.isna().to_numpy()
            values = series.to_numpy(dtype=np.int64, na_value=0)
            missing = missing if missing.any() else None
        never = _never_matches(values, never_treated)
        if never is not None and missing is not None:
            never &= ~missing
        return _Ordinals("integer", None, values, missing, never)
    if pd.api.types.is_float_dtype(dtype):
        return _float_ordinals(_as_float(series), column, role, never_treated)
    # Strings, objects and other extension types: convert the distinct values only.
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    uniques = np.asarray(uniques, dtype=object)
    level_never = _never_matches(uniques, never_treated)
    kind, period_dtype, level_values = _parse_objects(uniques, level_never, column, role)
    missing = codes < 0
    return _Ordinals(
        kind, period_dtype, level_values, missing if missing.any() else None, level_never, codes
    )


def _float_ordinals(
    values: np.ndarray, column: Hashable, role: str, never_treated: Any
) -> _Ordinals:
    """Convert float times / cohorts (integral values, NaN = missing) to int64 ordinals."""
    missing = np.isnan(values)
    never = _never_matches(values, never_treated)
    finite = np.isfinite(values)
    whole = np.equal(values, np.round(values)) & (np.abs(values) < 2.0**62)
    bad = finite & ~whole
    if never is not None:
        bad &= ~never
    if bad.any():
        n_bad = int(bad.sum())
        example = _fmt(values[np.argmax(bad)])
        raise TimeFormatError(
            f"Column {column!r} ({role}) must hold whole periods, but "
            f"{_plural(n_bad, 'row')} {_verb(n_bad, 'has', 'have')} fractional values, e.g. "
            f"{example}. "
            "Round or recode it, e.g. "
            f"df[{column!r}] = df[{column!r}].round().astype('Int64'), or convert it to "
            "monthly periods."
        )
    infinite = ~finite & ~missing
    if never is not None:
        infinite &= ~never
    if infinite.any() and role == "time":
        raise TimeFormatError(
            f"Column {column!r} (time) has {_plural(int(infinite.sum()), 'infinite value')}; "
            "times must be finite periods. Drop those rows or fix the time column."
        )
    ordinals = np.where(finite, values, 0.0).astype(np.int64)
    if infinite.any():
        ordinals[infinite & (values > 0)] = _POS_INF
        ordinals[infinite & (values < 0)] = _NEG_INF
    usable = finite if never is None else finite & ~never
    return _Ordinals(
        "integer" if usable.any() else None,
        None,
        ordinals,
        missing if missing.any() else None,
        never,
    )


def _parse_objects(
    values: np.ndarray, never: np.ndarray | None, column: Hashable, role: str
) -> tuple[str | None, pd.PeriodDtype | None, np.ndarray]:
    """Parse distinct time labels of an object / string column into ordinals.

    Returns the kind (``"integer"`` / ``"period"`` / None), the Period dtype and one int64
    ordinal per value (0 where ``never`` is set).
    """
    ordinals = np.zeros(values.size, dtype=np.int64)
    kinds: dict[str, Any] = {}  # kind or period freqstr -> first example value
    for i, value in enumerate(values):
        if never is not None and never[i]:
            continue
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, pd.Period):
            ordinals[i] = value.ordinal
            kinds.setdefault(f"period[{value.freqstr}]", value)
        elif isinstance(value, bool):
            raise TimeFormatError(
                f"Column {column!r} ({role}) holds booleans such as {value!r}; use {_FORMATS_HINT}."
            )
        elif isinstance(value, int):
            ordinals[i] = value
            kinds.setdefault("integer", value)
        elif isinstance(value, float):
            if np.isinf(value):
                ordinals[i] = _POS_INF if value > 0 else _NEG_INF
                kinds.setdefault("integer", value)
                continue
            if not value.is_integer():
                raise TimeFormatError(
                    f"Column {column!r} ({role}) must hold whole periods, but it has fractional "
                    f"values such as {value!r}. Round or recode it."
                )
            ordinals[i] = int(value)
            kinds.setdefault("integer", value)
        elif isinstance(value, str):
            ordinals[i], kind = _parse_string(value, column, role)
            kinds.setdefault(kind, value)
        elif isinstance(value, pd.Timestamp | np.datetime64) or hasattr(value, "isoformat"):
            raise TimeFormatError(
                f"Column {column!r} ({role}) holds dates such as {_fmt(value)}; the panel needs "
                f"discrete periods. Convert it with pd.to_datetime(df[{column!r}])"
                ".dt.to_period('M') (monthly; 'Q' or 'Y' for quarters or years)."
            )
        else:
            raise TimeFormatError(
                f"Column {column!r} ({role}) holds values of type {type(value).__name__} such "
                f"as {value!r}; use {_FORMATS_HINT}."
            )
    if len(kinds) > 1:
        examples = ", ".join(f"{k} (e.g. {_fmt(v)})" for k, v in kinds.items())
        hint = ""
        if role == "cohort":
            hint = (
                " If one of these values is a code for never-treated units, pass it as "
                "never_treated (e.g. never_treated='0')."
            )
        raise TimeFormatError(
            f"Column {column!r} ({role}) mixes time representations or Period frequencies: "
            f"{examples}. Convert all values to one representation, e.g. monthly Periods."
            f"{hint}"
        )
    if not kinds:
        return None, None, ordinals
    kind = next(iter(kinds))
    if kind == "integer":
        return "integer", None, ordinals
    return "period", pd.PeriodDtype(kind[len("period[") : -1]), ordinals


def _parse_string(value: str, column: Hashable, role: str) -> tuple[int, str]:
    """Parse one time label string; return its ordinal and kind (``period[M]``, ``integer``)."""
    for pattern, freq in _STRING_FORMATS:
        match = pattern.match(value)
        if match:
            year, sub = int(match.group(1)), int(match.group(2))
            if freq == "M" and 1 <= sub <= 12:
                return (year - 1970) * 12 + sub - 1, "period[M]"
            if freq == "Q":
                return (year - 1970) * 4 + sub - 1, "period[Q-DEC]"
            break
    if _INTEGER_STRING.match(value):
        return int(value), "integer"
    raise TimeFormatError(
        f"Column {column!r} ({role}) has a value that is not a recognised period: {value!r}. "
        f"Use {_FORMATS_HINT}; for dates convert with "
        f"pd.to_datetime(df[{column!r}]).dt.to_period('M')."
    )


def _ordinal_label(ordinal: int, kind: str, period_dtype: pd.PeriodDtype | None) -> Any:
    """Return the label (int or pd.Period) of an ordinal."""
    if kind == "period":
        return pd.Period(ordinal=int(ordinal), freq=period_dtype.freq)
    return int(ordinal)


# --------------------------------------------------------------------------------------------
# Panel
# --------------------------------------------------------------------------------------------
class Panel:
    r"""A validated long panel of units observed over a regular grid of periods.

    Parameters
    ----------
    data
        Long DataFrame with one row per unit and period. It is never modified; only the
        named columns are copied.
    unit
        Column with unit ids (municipality codes, person ids, ...). Any hashable labels.
    time
        Column with the period of each row: integers (years, month indices; integral floats
        are accepted), pandas Periods of one frequency, strings such as ``"2021M03"``
        (StatFin), ``"2021-03"`` or ``"2021Q1"``, or a Categorical whose categories are any
        of these (only the categories are converted, which keeps large panels fast).
    outcome
        One outcome column or a sequence of them; must be numeric (bool is cast to float).
    cohort
        Optional column with each unit's first treated period, in the same representation as
        ``time``. Never-treated units carry ``never_treated`` (NaN by default).
    status
        Optional 0/1 treatment indicator per row, for treatments that can switch off (a unit
        may be treated in several spells). Without ``cohort``, the cohort is derived as the
        first period with status 1.
    covariates
        Numeric covariate columns (time-varying or not).
    weights
        Optional column of non-negative unit weights, constant within a unit.
    cluster
        Optional column of cluster labels, constant within a unit. ``cluster=unit`` is
        allowed and clusters at the unit level.
    never_treated
        Value of ``cohort`` that marks never-treated units. With the default NaN, missing
        cohorts mean never treated; with any other value (e.g. ``0``, the R ``did``
        convention, or ``np.inf``) that value means never treated and NaN is an error.
    missing
        ``"error"`` (default) raises on missing outcomes or covariates; ``"drop"`` drops
        those rows with a :class:`~evaluation.errors.DroppedObservationsWarning`.

    Attributes
    ----------
    data : pandas.DataFrame
        Validated copy with only the named columns, rows sorted by (unit, time), a
        RangeIndex and the original column names, dtypes and labels.
    unit, time, cohort, status, weights, cluster : str or None
        Column names of each role (None if not given).
    outcomes, covariates : tuple of str
        Outcome and covariate column names; ``outcome`` is ``outcomes[0]``.
    never_treated : Any
        The never-treated code of ``cohort``.
    periods : pandas.Index
        Labels of the full regular time grid (int64 or Period), length ``n_periods``.
    step : int
        Grid step for integer time (e.g. 2 for biennial data); 1 for Periods.
    time_kind : {"integer", "period"}
        Representation of time.
    units : pandas.Index
        Unit labels in sorted order (order of first appearance if labels cannot be sorted).
    unit_codes, time_codes : numpy.ndarray
        int64 arrays aligned with the rows of ``data``: position of the row's unit in
        ``units`` and of its period in ``periods``. Read-only.
    n_units, n_periods, n_obs : int
        Number of units, grid periods and rows.
    is_balanced : bool
        True if every unit is observed in every period.
    unit_cohort : numpy.ndarray
        float64 ``(n_units,)``: the cohort as a grid position ``0..n_periods-1``, NaN for
        never-treated units (all NaN without ``cohort`` and ``status``). Read-only.
    cohorts : numpy.ndarray
        Sorted int64 array of the distinct cohort positions of treated units.
    unit_weights : numpy.ndarray or None
        float64 ``(n_units,)`` weight of each unit.
    unit_cluster : numpy.ndarray or None
        int64 ``(n_units,)`` cluster code of each unit, indexing ``clusters``.
    clusters : pandas.Index or None
        Cluster labels (sorted) indexed by ``unit_cluster``.

    Raises
    ------
    MissingColumnError
        A named column is not in ``data``.
    InvalidOptionError
        An option is invalid, or one column is given two roles.
    MissingValueError
        Missing unit ids, times or cluster labels; missing outcomes or covariates with
        ``missing="error"``; missing cohorts when ``never_treated`` is not NaN; or no rows
        left after dropping.
    TimeFormatError
        Time or cohort values cannot be interpreted, or their representations differ.
    DuplicateObservationError
        A (unit, time) pair occurs on more than one row.
    IrregularTimeGridError
        The observed periods do not form a regular grid (a period is missing for every unit).
    NonNumericColumnError
        An outcome, covariate or weight column is not numeric.
    VaryingWithinUnitError
        Cohort, weights or cluster vary within a unit.
    CohortOutOfRangeError
        A cohort is outside the observed time range or not on the grid.
    InvalidWeightError
        Weights are negative, missing, infinite or all zero.
    StatusCohortMismatchError
        Status values are not 0/1 or contradict the cohort.

    Warns
    -----
    DroppedObservationsWarning
        With ``missing="drop"``, when rows with missing outcomes or covariates are dropped.

    Notes
    -----
    The time grid is :math:`\{t_{min} + k s : k = 0, \dots, T - 1\}` where :math:`s` is the
    step: for integer time the smallest gap between consecutive distinct observed times
    (validation requires all gaps to be equal, i.e. every grid period is observed for at
    least one unit); for Periods :math:`s = 1` in the Period's frequency. Positions
    ``0..T-1`` on this grid are used for ``time_codes``, ``unit_cohort`` and ``cohorts``.

    A unit's cohort :math:`G_i` is its first treated period. Without a ``status`` column
    treatment is absorbing: :math:`D_{it} = 1\{t \ge G_i\}`. With ``status`` the status
    must be 0 before :math:`G_i`, 1 at :math:`G_i` (if that period is observed) and 0 for
    never-treated units; afterwards it may switch off and on again.

    Examples
    --------
    >>> df = pd.DataFrame({"kunta": [1, 1, 2, 2], "year": [2020, 2021, 2020, 2021],
    ...                    "y": [1.0, 2.0, 3.0, 5.0], "g": [2021, 2021, np.nan, np.nan]})
    >>> panel = Panel(df, unit="kunta", time="year", outcome="y", cohort="g")
    >>> panel
    Panel(outcome='y', units=2, periods=2 [2020..2021], obs=4, balanced=True, cohorts=[2021])
    >>> panel.wide()
    array([[1., 2.],
           [3., 5.]])
    >>> panel.unit_cohort
    array([ 1., nan])

    """

    def __init__(
        self,
        data: pd.DataFrame,
        *,
        unit: str,
        time: str,
        outcome: str | Sequence[str],
        cohort: str | None = None,
        status: str | None = None,
        covariates: Sequence[str] = (),
        weights: str | None = None,
        cluster: str | None = None,
        never_treated: Any = np.nan,
        missing: MissingPolicy = "error",
    ) -> None:
        check_option("missing", missing, MissingPolicy)
        if not isinstance(data, pd.DataFrame):
            raise TypeError(f"data must be a pandas DataFrame, not {type(data).__name__}.")
        outcomes = (outcome,) if isinstance(outcome, str) else tuple(outcome)
        if not outcomes:
            raise InvalidOptionError("outcome must name at least one column; got an empty list.")
        self.unit = unit
        self.time = time
        self.outcomes: tuple[str, ...] = outcomes
        self.outcome = outcomes[0]
        self.covariates: tuple[str, ...] = (
            (covariates,) if isinstance(covariates, str) else tuple(covariates)
        )
        self.cohort = cohort
        self.status = status
        self.weights = weights
        self.cluster = cluster
        self.never_treated = never_treated
        self._never_is_nan = _is_nan_like(never_treated)

        columns = self._check_columns(data)
        if len(data) == 0:
            raise PanelError("data has no rows; a panel needs at least one observation.")
        frame = data[columns]

        # 1. Column types: numbers where numbers are needed, interpretable time and cohort.
        for role, names in (("outcome", self.outcomes), ("covariate", self.covariates)):
            for name in names:
                _require_numeric(frame[name], name, role)
        if weights is not None:
            _require_numeric(frame[weights], weights, "weights")
        times = _to_ordinals(frame[time], time, "time")
        cohort_state = None
        if cohort is not None:
            cohort_ord = _to_ordinals(frame[cohort], cohort, "cohort", never_treated)
            self._check_cohort_kind(times, cohort_ord)
            cohort_state = cohort_ord.state(_NEVER if self._never_is_nan else _MISSING)
            del cohort_ord

        # 2. Missing ids and times, then missing outcomes / covariates.
        self._check_ids_present(frame, times)
        keep = self._handle_missing(frame, missing)
        kept = None
        if keep is not None:
            kept = np.flatnonzero(keep)
            frame = frame.take(kept)

        # 3. Unit and time codes, duplicates, the time grid, then sort by (unit, time).
        self.time_kind: TimeKind = "period" if times.kind == "period" else "integer"
        self._period_dtype = times.period_dtype
        unit_codes, self.units = _factorize_sorted(frame[unit])
        self.units = self.units.rename(unit)
        time_rank, distinct = times.dense(kept)
        del times
        n_units, n_distinct = len(self.units), distinct.size
        key = unit_codes * n_distinct + time_rank
        order, sorted_key = self._sort_order(key, n_units * n_distinct, distinct)
        self._set_grid(distinct)
        if order is None:
            self.data = frame.reset_index(drop=True)
            self.unit_codes, self.time_codes = unit_codes, time_rank
        else:
            del unit_codes, time_rank
            self.data = frame.take(order).reset_index(drop=True)
            if sorted_key is None:  # balanced: the sorted keys are 0, 1, ..., N*T - 1
                self.unit_codes = np.repeat(np.arange(n_units, dtype=np.int64), n_distinct)
                self.time_codes = np.tile(np.arange(n_distinct, dtype=np.int64), n_units)
            else:
                self.unit_codes, self.time_codes = np.divmod(sorted_key, n_distinct)
        del key, sorted_key
        if cohort_state is not None:
            rows = order if kept is None else (kept if order is None else kept[order])
            if rows is not None:
                cohort_state = cohort_state[rows]
        self.n_units = n_units
        self.n_obs = len(self.data)
        self.is_balanced = self.n_obs == n_units * self.n_periods
        self._starts = np.flatnonzero(
            np.concatenate(([True], self.unit_codes[1:] != self.unit_codes[:-1]))
        )

        # 4. Unit-level columns: cluster, weights, cohort; then status.
        self.unit_cluster: np.ndarray | None = None
        self.clusters: pd.Index | None = None
        if cluster is not None:
            self._set_cluster()
        self.unit_weights: np.ndarray | None = None
        if weights is not None:
            self._set_weights()
        self.unit_cohort = np.full(n_units, np.nan)
        if cohort_state is not None:
            self._set_cohort(cohort_state)
            del cohort_state
        self._status: np.ndarray | None = None
        if status is not None:
            self._set_status()
        treated = self.unit_cohort[~np.isnan(self.unit_cohort)]
        self.cohorts = np.unique(treated).astype(np.int64)
        for array in (self.unit_codes, self.time_codes, self.unit_cohort, self.cohorts):
            array.flags.writeable = False

    # ----------------------------------------------------------------------------------------
    # Construction steps
    # ----------------------------------------------------------------------------------------
    def _roles(self) -> list[tuple[str, Any]]:
        """Return ``(role, column)`` pairs for every named column."""
        roles: list[tuple[str, Any]] = [("unit", self.unit), ("time", self.time)]
        roles += [("outcome", name) for name in self.outcomes]
        roles += [("covariate", name) for name in self.covariates]
        for role in ("cohort", "status", "weights", "cluster"):
            if getattr(self, role) is not None:
                roles.append((role, getattr(self, role)))
        return roles

    def _check_columns(self, data: pd.DataFrame) -> list[Any]:
        """Check that the named columns exist, are unique and have one role each."""
        roles = self._roles()
        seen: dict[Any, str] = {}
        for role, name in roles:
            if not isinstance(name, Hashable) or name is None:
                raise InvalidOptionError(f"{role} must be a column name, got {name!r}.")
            if role == "cluster" and name == self.unit:
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
                f"{_plural(len(absent), 'column')} not found in data: {', '.join(absent)}. "
                f"Available columns: {_fmt_list(available)}. Check the spelling or pass the "
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

    def _check_cohort_kind(self, times: _Ordinals, cohort: _Ordinals) -> None:
        """Require the cohort to use the representation (and frequency) of time."""
        if cohort.kind is None or times.kind is None:
            return
        if cohort.kind != times.kind or cohort.period_dtype != times.period_dtype:
            raise TimeFormatError(
                f"Column {self.cohort!r} (cohort) holds {cohort.describe()} but column "
                f"{self.time!r} (time) holds {times.describe()}. The cohort is the first "
                "treated period and must use the same representation as time; convert one of "
                "the two columns. If the cohort column only holds a code for never-treated "
                "units (e.g. 0), pass it as never_treated (e.g. never_treated=0)."
            )

    def _check_ids_present(self, frame: pd.DataFrame, times: _Ordinals) -> None:
        """Raise MissingValueError for missing unit ids or times."""
        for role, name, mask in (
            ("unit", self.unit, _missing_mask(frame[self.unit])),
            ("time", self.time, times.missing),
        ):
            if mask is not None and mask.any():
                rows = frame.index[mask]
                raise MissingValueError(
                    f"Column {name!r} ({role}) is missing in {_plural(rows.size, 'row')}, e.g. "
                    f"row {_fmt(rows[0])}. Every row needs a {role}; drop these rows, e.g. "
                    f"df = df.dropna(subset=[{name!r}]), or fill in the {role}."
                )

    def _handle_missing(self, frame: pd.DataFrame, missing: str) -> np.ndarray | None:
        """Find rows with missing outcomes / covariates; raise, or return the rows to keep."""
        found: list[tuple[str, str, np.ndarray]] = []
        for role, names in (("outcome", self.outcomes), ("covariate", self.covariates)):
            for name in names:
                mask = _missing_mask(frame[name])
                if mask is not None and mask.any():
                    found.append((role, name, mask))
        if not found:
            return None
        if missing == "error":
            parts = []
            for role, name, mask in found:
                i = int(np.argmax(mask))
                parts.append(
                    f"{name!r} ({role}) in {_plural(int(mask.sum()), 'row')}, e.g. row "
                    f"{_fmt(frame.index[i])} (unit {_fmt(frame[self.unit].iloc[i])}, "
                    f"time {_fmt(frame[self.time].iloc[i])})"
                )
            raise MissingValueError(
                f"Missing values in {'; '.join(parts)}. Pass missing='drop' to drop these rows "
                "or impute the values before building the panel."
            )
        drop = np.logical_or.reduce([mask for _, _, mask in found])
        n_drop, n_rows = int(drop.sum()), drop.size
        if n_drop == n_rows:
            raise MissingValueError(
                f"Every one of the {_plural(n_rows, 'row')} has a missing value in "
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

    def _sort_order(
        self, key: np.ndarray, size: int, distinct: np.ndarray
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Return ``(order, sorted_key)`` that sort rows by ``key``.

        ``order`` is None if the rows are already sorted; ``sorted_key`` is None if it is
        ``arange(size)`` (a balanced panel) or the rows are already sorted. Raises
        DuplicateObservationError if a key occurs twice.
        """
        n = key.size
        if n <= 1 or bool(np.all(key[1:] > key[:-1])):
            return None, None
        if size <= min(8 * n + (1 << 20), 1 << 27):
            # Counting sort: one scatter into the (unit, time) cells.
            slot = np.full(size, -1, dtype=np.int64)
            slot[key] = np.arange(n)
            filled = slot >= 0
            if int(np.count_nonzero(filled)) == n:
                if n == size:
                    return slot, None
                return slot[filled], np.flatnonzero(filled)
            counts = np.bincount(key, minlength=size)
            dup_keys = np.flatnonzero(counts > 1)
            n_rows = int(counts[dup_keys].sum())
        else:
            order = np.argsort(key, kind="stable")
            sorted_key = key[order]
            same = sorted_key[1:] == sorted_key[:-1]
            if not same.any():
                return order, sorted_key
            dup_keys, dup_counts = np.unique(sorted_key[1:][same], return_counts=True)
            n_rows = int(dup_counts.sum()) + dup_keys.size
        first = int(dup_keys[0])
        unit_label = self.units[first // distinct.size]
        time_label = _ordinal_label(
            distinct[first % distinct.size], self.time_kind, self._period_dtype
        )
        raise DuplicateObservationError(
            f"Columns {self.unit!r} and {self.time!r} do not identify rows: "
            f"{_plural(dup_keys.size, '(unit, time) pair')} "
            f"{_verb(dup_keys.size, 'occurs', 'occur')} more than once ({n_rows:,} rows), e.g. "
            f"unit {_fmt(unit_label)} in period {_fmt(time_label)}. Aggregate "
            f"the rows, e.g. df.groupby([{self.unit!r}, {self.time!r}], as_index=False).mean(), "
            f"or drop duplicates with df.drop_duplicates([{self.unit!r}, {self.time!r}])."
        )

    def _set_grid(self, distinct: np.ndarray) -> None:
        """Check that the distinct times are evenly spaced and define the grid."""
        gaps = np.diff(distinct)
        if gaps.size == 0:
            step = 1
        elif self.time_kind == "period":
            step = 1
        else:
            step = int(np.gcd.reduce(gaps))
        if (gaps != step).any():  # with the gcd as step, equal gaps are exactly regular
            self._raise_irregular(distinct, gaps, step)
        self.step = step
        self.n_periods = int(distinct.size)
        self._t0 = int(distinct[0]) if distinct.size else 0
        if self.time_kind == "period":
            self.periods = pd.PeriodIndex.from_ordinals(distinct, freq=self._period_dtype.freq)
        else:
            self.periods = pd.Index(distinct.astype(np.int64))
        self.periods = self.periods.rename(self.time)

    def _raise_irregular(self, distinct: np.ndarray, gaps: np.ndarray, step: int) -> None:
        """Raise IrregularTimeGridError naming the missing grid periods."""
        n_missing = int(((gaps // step) - 1).sum())
        missing: list[Any] = []
        for i in np.flatnonzero(gaps > step)[:_N_EXAMPLES]:
            for k in range(1, min(int(gaps[i] // step), _N_EXAMPLES + 1)):
                missing.append(
                    _ordinal_label(distinct[i] + k * step, self.time_kind, self._period_dtype)
                )
        first = _ordinal_label(distinct[0], self.time_kind, self._period_dtype)
        last = _ordinal_label(distinct[-1], self.time_kind, self._period_dtype)
        hint = ""
        if self.time_kind == "period" and gaps.min() > 1 and gaps.min() == gaps.max():
            hint = (
                f" The periods are evenly spaced every {int(gaps.min())} periods; if the data "
                "are quarterly or yearly, convert the column to that frequency, e.g. "
                f"df[{self.time!r}] = df[{self.time!r}].dt.asfreq('Q')."
            )
        if self.time_kind == "integer" and _looks_like_yyyymm(distinct):
            hint = (
                f" The values look like YYYYMM codes; convert them to monthly periods with "
                f"pd.to_datetime(df[{self.time!r}].astype(str), format='%Y%m')"
                ".dt.to_period('M')."
            )
        unit_of = (
            f"step {step}"
            if self.time_kind == "integer"
            else f"frequency {pd.Period(ordinal=0, freq=self._period_dtype.freq).freqstr}"
        )
        raise IrregularTimeGridError(
            f"Column {self.time!r} (time): the observed periods do not form a regular grid. On the "
            f"regular grid {_fmt(first)}..{_fmt(last)} ({unit_of}), "
            f"{_plural(n_missing, 'period')} {_verb(n_missing, 'is', 'are')} missing from every "
            "unit: "
            f"{_fmt_list(missing, n_missing)}. Every grid period needs at least one "
            "observation: drop or aggregate periods so that the rest are evenly spaced (e.g. "
            "aggregate to years), or fix the time column if these periods should exist."
            f"{hint}"
        )

    def _unit_examples(self, row_mask: np.ndarray) -> tuple[np.ndarray, int]:
        """Return the distinct unit codes of the rows in ``row_mask`` and the first row."""
        return _runs(self.unit_codes[row_mask]), int(np.argmax(row_mask))

    def _unit_values_text(self, column: str, unit_code: int) -> str:
        """Format the distinct values of ``column`` within one unit."""
        start = self._starts[unit_code]
        stop = self._starts[unit_code + 1] if unit_code + 1 < self.n_units else self.n_obs
        values = pd.unique(self.data[column].iloc[start:stop])
        return f"[{_fmt_list(list(values))}]"

    def _raise_varying(self, column: str, role: str, varying: np.ndarray, fix: str) -> None:
        """Raise VaryingWithinUnitError for the units flagged in ``varying``."""
        units = np.flatnonzero(varying)
        example = int(units[0])
        raise VaryingWithinUnitError(
            f"Column {column!r} ({role}) must be constant within each unit, but it varies "
            f"within {_plural(units.size, 'unit')}, e.g. unit {_fmt(self.units[example])} has "
            f"values {self._unit_values_text(column, example)}. {fix}"
        )

    def _varying_units(self, values: np.ndarray) -> np.ndarray:
        """Return a unit mask of units whose row ``values`` are not all equal."""
        first = values[self._starts][self.unit_codes]
        differs = values != first
        if values.dtype.kind == "f":
            differs &= ~(np.isnan(values) & np.isnan(first))
        varying = np.zeros(self.n_units, dtype=bool)
        varying[self.unit_codes[differs]] = True
        return varying

    def _set_cluster(self) -> None:
        """Code the cluster column per unit; clusters must be present and unit-constant."""
        if self.cluster == self.unit:
            self.unit_cluster = np.arange(self.n_units, dtype=np.int64)
            self.clusters = self.units
            return
        series = self.data[self.cluster]
        mask = _missing_mask(series)
        if mask is not None and mask.any():
            units, row = self._unit_examples(mask)
            raise MissingValueError(
                f"Column {self.cluster!r} (cluster) is missing in "
                f"{_plural(int(mask.sum()), 'row')} of {_plural(units.size, 'unit')}, e.g. unit "
                f"{_fmt(self.units[units[0]])} in period {_fmt(self.data[self.time].iloc[row])}. "
                "Fill "
                "in the cluster (e.g. the unit's region) or drop those units."
            )
        codes, labels = _factorize_sorted(series)
        varying = self._varying_units(codes)
        if varying.any():
            self._raise_varying(
                self.cluster,
                "cluster",
                varying,
                "Clusters group whole units; use a time-invariant cluster such as the unit's "
                "region in its first period, or cluster=unit.",
            )
        used, unit_cluster = np.unique(codes[self._starts], return_inverse=True)
        self.unit_cluster = unit_cluster.astype(np.int64)
        self.clusters = labels.take(used).rename(self.cluster)
        self.unit_cluster.flags.writeable = False

    def _set_weights(self) -> None:
        """Check weights (finite, non-negative, not all zero, unit-constant) and store them."""
        name = self.weights
        values = _as_float(self.data[name])
        for problem, mask in (
            ("missing", np.isnan(values)),
            ("infinite", np.isinf(values)),
            ("negative", values < 0),
        ):
            if mask.any():
                units, row = self._unit_examples(mask)
                raise InvalidWeightError(
                    f"Column {name!r} (weights) has {problem} values in "
                    f"{_plural(int(mask.sum()), 'row')} of {_plural(units.size, 'unit')}, e.g. "
                    f"unit {_fmt(self.units[units[0]])} with weight "
                    f"{_fmt(self.data[name].iloc[row])}. Weights must be finite and "
                    "non-negative; fix them or drop those units."
                )
        varying = self._varying_units(values)
        if varying.any():
            self._raise_varying(
                name,
                "weights",
                varying,
                "Weights are unit weights; use one value per unit, e.g. the unit's population "
                "in the base period.",
            )
        unit_weights = values[self._starts].astype(np.float64)
        if not (unit_weights > 0).any():
            raise InvalidWeightError(
                f"Column {name!r} (weights) is zero for all {_plural(self.n_units, 'unit')}; at "
                "least one unit needs a positive weight. Check the column or omit weights."
            )
        unit_weights.flags.writeable = False
        self.unit_weights = unit_weights

    def _set_cohort(self, state: np.ndarray) -> None:
        """Check cohort rows (missing, unit-constant, on the grid) and set ``unit_cohort``."""
        name = self.cohort
        missing = state == _MISSING
        if missing.any():
            units, _ = self._unit_examples(missing)
            nt = _fmt_arg(self.never_treated)
            raise MissingValueError(
                f"Column {name!r} (cohort) is missing (NaN) in {_plural(units.size, 'unit')} "
                f"({_plural(int(missing.sum()), 'row')}), e.g. unit "
                f"{_fmt(self.units[units[0]])}. never_treated={nt} was set, so {nt} marks "
                f"never-treated units and NaN is not allowed. Fill the missing cohorts (with {nt} "
                "for never-treated units) or pass never_treated=np.nan to treat NaN as never "
                "treated."
            )
        varying = self._varying_units(state)
        if varying.any():
            self._raise_varying(
                name,
                "cohort",
                varying,
                "The cohort is the unit's first treated period and must be the same in every "
                "row of the unit (use the status column for treatment that switches on and off).",
            )
        unit_state = state[self._starts]
        treated = unit_state != _NEVER
        last = self._t0 + self.step * (self.n_periods - 1)
        in_range = treated & (unit_state >= self._t0) & (unit_state <= last)
        offset = np.where(in_range, unit_state, self._t0) - self._t0
        on_grid = ~treated | (in_range & (offset % self.step == 0))
        if not on_grid.all():
            self._raise_cohort_out_of_range(~on_grid, unit_state)
        self.unit_cohort = np.where(treated, offset // self.step, np.nan).astype(np.float64)

    def _raise_cohort_out_of_range(self, bad: np.ndarray, unit_state: np.ndarray) -> None:
        """Raise CohortOutOfRangeError with a never_treated hint for sentinel codes."""
        name = self.cohort
        bad_units = np.flatnonzero(bad)
        example = int(bad_units[0])
        first, last = self.periods[0], self.periods[-1]
        grid = f"{_fmt(first)}..{_fmt(last)}"
        if self.time_kind == "integer" and self.step != 1:
            grid += f" in steps of {self.step}"
        state = unit_state[bad_units]
        outside = (state < self._t0) | (state > self._t0 + self.step * (self.n_periods - 1))
        hint = ""
        if outside.any():
            starts = self._starts[bad_units[outside]]
            counts = self.data[name].iloc[starts].value_counts(dropna=False)
            common, n_common = counts.index[0], int(counts.iloc[0])
            hint = (
                f" If {_fmt(common)} marks never-treated units ({_plural(n_common, 'unit')} "
                f"{_verb(n_common, 'has', 'have')} it), pass never_treated={_fmt_arg(common)} "
                "(with the default never_treated=np.nan only missing cohorts mean never treated)."
            )
        n_bad = bad_units.size
        raise CohortOutOfRangeError(
            f"Column {name!r} (cohort): {_plural(n_bad, 'unit')} {_verb(n_bad, 'has', 'have')} "
            f"a first treated period outside the time grid {grid}, e.g. unit "
            f"{_fmt(self.units[example])} with cohort "
            f"{_fmt(self.data[name].iloc[self._starts[example]])}. Cohorts must be "
            f"observed periods of the panel.{hint} Otherwise drop these units (e.g. units "
            "treated before the first period have no pre-treatment data) or correct their "
            "cohort."
        )

    def _set_status(self) -> None:
        """Check the 0/1 status column, derive or check the cohort, store the status."""
        name = self.status
        series = self.data[name]
        dtype = series.dtype
        if isinstance(dtype, np.dtype) and dtype.kind == "b":
            ok, status = None, series.to_numpy()
        elif _is_numeric_dtype(dtype):
            values = _as_float(series)
            ok, status = (values == 0) | (values == 1), values == 1
        else:
            ok = series.isin([0, 1]).to_numpy(dtype=bool, na_value=False)
            status = series.isin([1]).to_numpy(dtype=bool, na_value=False)
        if ok is not None and not ok.all():
            bad = ~ok
            units, row = self._unit_examples(bad)
            if _is_numeric_dtype(dtype):
                recode = f"(df[{name!r}] > 0).astype(int) if positive codes mean treated"
            else:
                recode = f"df[{name!r}].map({{'no': 0, 'yes': 1}}) with your own codes"
            raise StatusCohortMismatchError(
                f"Column {name!r} (status) must be 0 or 1 (not missing), but "
                f"{_plural(int(bad.sum()), 'row')} of {_plural(units.size, 'unit')} have other "
                f"values, e.g. {_fmt(series.iloc[row])} for unit {_fmt(self.units[units[0]])}. "
                f"Recode it to 0 (untreated) / 1 (treated), e.g. df[{name!r}] = {recode}, and "
                "fill missing statuses."
            )
        status = np.asarray(status, dtype=bool)
        if self.cohort is None:
            idx = np.flatnonzero(status)
            treated_units = self.unit_codes[idx]
            first = np.concatenate(([True], treated_units[1:] != treated_units[:-1]))
            self.unit_cohort[treated_units[first]] = self.time_codes[idx[first]]
        else:
            cohort_rows = self.unit_cohort[self.unit_codes]
            never = np.isnan(cohort_rows)
            checks = (
                (
                    status & never,
                    "is 1 in never-treated units",
                    "Never-treated units must have status 0 throughout",
                ),
                (
                    status & ~never & (self.time_codes < cohort_rows),
                    "is 1 before the unit's cohort",
                    "Status must be 0 before the first treated period",
                ),
                (
                    ~status & (self.time_codes == cohort_rows),
                    "is 0 in the unit's cohort period",
                    "Status must be 1 in the first treated period",
                ),
            )
            for mask, problem, rule in checks:
                if mask.any():
                    units, row = self._unit_examples(mask)
                    cohort_label = self.data[self.cohort].iloc[row]
                    raise StatusCohortMismatchError(
                        f"Column {name!r} (status) {problem} (column {self.cohort!r}) in "
                        f"{_plural(int(mask.sum()), 'row')} of {_plural(units.size, 'unit')}, "
                        f"e.g. unit {_fmt(self.units[units[0]])} in period "
                        f"{_fmt(self.data[self.time].iloc[row])} (cohort {_fmt(cohort_label)}). "
                        f"{rule}; correct the cohort or the status column, or omit cohort= to "
                        "derive it from the status."
                    )
        status.flags.writeable = False
        self._status = status

    # ----------------------------------------------------------------------------------------
    # Public methods
    # ----------------------------------------------------------------------------------------
    def period_label(self, position: int | float) -> Any:
        """Return the label (int or pandas Period) of a grid position.

        Parameters
        ----------
        position
            Position ``0..n_periods-1`` on the time grid; integral floats (such as the
            values of :attr:`unit_cohort`) are accepted.

        Returns
        -------
        int or pandas.Period
            The period label.

        Raises
        ------
        CohortOutOfRangeError
            If ``position`` is not an integer in ``0..n_periods-1`` (NaN included).

        """
        try:
            valid = float(position).is_integer() and 0 <= position < self.n_periods
        except (TypeError, ValueError):
            valid = False
        if not valid:
            raise CohortOutOfRangeError(
                f"Position {position!r} is not on the time grid of column {self.time!r}; "
                f"positions run from 0 to {self.n_periods - 1} "
                f"({_fmt(self.periods[0])}..{_fmt(self.periods[-1])}). NaN marks never-treated "
                "units and has no label."
            )
        label = self.periods[int(position)]
        return int(label) if self.time_kind == "integer" else label

    def period_position(self, label: Any) -> int:
        """Return the grid position of a period label.

        Parameters
        ----------
        label
            An integer period (integer time), or a pandas Period or string such as
            ``"2021M03"`` (Period time).

        Returns
        -------
        int
            Position ``0..n_periods-1``.

        Raises
        ------
        CohortOutOfRangeError
            If the label is outside the grid or between grid points.
        TimeFormatError
            If the label cannot be interpreted as a period of this panel.

        """
        converted = _to_ordinals(pd.Series([label], dtype=object), "label", "period label")
        if converted.kind is None:
            raise TimeFormatError(f"Label {label!r} is missing, not a period of this panel.")
        if converted.kind != self.time_kind or (
            self.time_kind == "period" and converted.period_dtype != self._period_dtype
        ):
            raise TimeFormatError(
                f"Label {_fmt(label)} is {converted.describe()}, but column {self.time!r} holds "
                f"{'integers' if self.time_kind == 'integer' else self._period_dtype}; pass a "
                f"label like {_fmt(self.periods[0])}."
            )
        offset = int(converted.row_values()[0]) - self._t0
        position, remainder = divmod(offset, self.step)
        if remainder or not 0 <= position < self.n_periods:
            raise CohortOutOfRangeError(
                f"Period {_fmt(label)} is not on the time grid of column {self.time!r} "
                f"({_fmt(self.periods[0])}..{_fmt(self.periods[-1])}, step {self.step})."
            )
        return position

    def wide(self, column: str | None = None) -> np.ndarray:
        """Return a numeric column as a ``(n_units, n_periods)`` float64 array.

        Parameters
        ----------
        column
            Name of a numeric column of :attr:`data`; default the first outcome.

        Returns
        -------
        numpy.ndarray
            New array with rows in the order of :attr:`units` and columns in the order of
            :attr:`periods`; NaN where a unit is not observed.

        Raises
        ------
        MissingColumnError
            If ``column`` is not a column of the panel.
        NonNumericColumnError
            If the column is not numeric.

        """
        column = self.outcome if column is None else column
        series = self._column(column)
        _require_numeric(series, column, "wide() column")
        values = _as_float(series)
        if self.is_balanced:
            return values.reshape(self.n_units, self.n_periods).copy()
        out = np.full((self.n_units, self.n_periods), np.nan)
        out[self.unit_codes, self.time_codes] = values
        return out

    def status_wide(self) -> np.ndarray:
        r"""Return treatment status as a ``(n_units, n_periods)`` bool array.

        Returns
        -------
        numpy.ndarray
            The ``status`` column if given (False where a unit is not observed); otherwise
            absorbing treatment :math:`D_{it} = 1\{t \ge G_i\}` from :attr:`unit_cohort`
            (all False for never-treated units).

        """
        if self._status is None:
            grid = np.arange(self.n_periods)
            return grid[None, :] >= self.unit_cohort[:, None]
        if self.is_balanced:
            return self._status.reshape(self.n_units, self.n_periods).copy()
        out = np.zeros((self.n_units, self.n_periods), dtype=bool)
        out[self.unit_codes, self.time_codes] = self._status
        return out

    def unit_values(self, column: str, *, check: bool = True) -> np.ndarray:
        """Return the value of a time-invariant column for each unit.

        Parameters
        ----------
        column
            Any column of :attr:`data`.
        check
            If True (default), raise when the column varies within a unit.

        Returns
        -------
        numpy.ndarray
            ``(n_units,)`` array with each unit's value in its first observed period.

        Raises
        ------
        MissingColumnError
            If ``column`` is not a column of the panel.
        VaryingWithinUnitError
            If ``check`` is True and the column varies within a unit.

        """
        series = self._column(column)
        if check:
            codes, _ = pd.factorize(series, use_na_sentinel=False)
            varying = self._varying_units(np.asarray(codes))
            if varying.any():
                self._raise_varying(
                    column,
                    "unit-level column",
                    varying,
                    "Pass check=False to use each unit's value in its first period.",
                )
        return series.take(self._starts).to_numpy()

    def require_comparison_units(self, control_group: ControlGroup, anticipation: int = 0) -> None:
        r"""Check that comparison units exist for a control group.

        Parameters
        ----------
        control_group
            ``"never"``: never-treated units; ``"notyet"``: units that are never treated
            or not yet treated.
        anticipation
            Number of grid periods before the cohort in which units may already react.

        Raises
        ------
        NoComparisonUnitsError
            For ``"never"`` if no unit is never treated; for ``"notyet"`` if no unit is never
            treated or first treated after the earliest cohort plus ``anticipation``.
        InvalidOptionError
            If ``control_group`` is unknown or ``anticipation`` is negative.

        Notes
        -----
        With earliest cohort position :math:`g_{min}` and anticipation :math:`a`, the
        not-yet-treated check requires a unit with :math:`G_i = \infty` (never treated) or
        :math:`G_i > g_{min} + a`, so that at least the earliest cohort has a comparison
        unit in its first post-treatment period.

        """
        check_option("control_group", control_group, ControlGroup)
        if isinstance(anticipation, bool) or not isinstance(anticipation, int | np.integer):
            raise InvalidOptionError(
                f"anticipation must be a non-negative integer, got {anticipation!r}."
            )
        if anticipation < 0:
            raise InvalidOptionError(f"anticipation must be >= 0, got {anticipation}.")
        never = np.isnan(self.unit_cohort)
        if never.any():
            return
        current = _fmt_arg(self.never_treated)
        coding = (
            f"check the never_treated coding (currently never_treated={current}; e.g. pass "
            "never_treated=0 if 0 marks never-treated units)"
        )
        cohorts = ", ".join(_fmt(self.period_label(g)) for g in self.cohorts[:_N_EXAMPLES])
        if control_group == "never":
            raise NoComparisonUnitsError(
                f"control_group='never' needs never-treated units, but all "
                f"{_plural(self.n_units, 'unit')} of column {self.unit!r} are treated "
                f"(cohorts {cohorts}). Pass control_group='notyet', or {coding}."
            )
        earliest = int(self.cohorts[0])
        if not (self.unit_cohort > earliest + anticipation).any():
            raise NoComparisonUnitsError(
                f"control_group='notyet' needs units that are never treated or first treated "
                f"after {_fmt(self.period_label(earliest))} + anticipation={anticipation}, but "
                f"all {_plural(self.n_units, 'unit')} of column {self.unit!r} are treated by "
                f"then (cohorts {cohorts}). Reduce anticipation, add comparison units, or "
                f"{coding}."
            )

    def _column(self, column: str) -> pd.Series:
        """Return a column of :attr:`data` or raise MissingColumnError."""
        if column not in self.data.columns:
            raise MissingColumnError(
                f"Column {column!r} is not in the panel; its columns are "
                f"{_fmt_list([str(c) for c in self.data.columns])}. Name it when building the "
                "Panel (e.g. as a covariate)."
            )
        return self.data[column]

    def __repr__(self) -> str:
        if self.n_periods:
            span = f"[{_fmt(self.periods[0])}..{_fmt(self.periods[-1])}]"
        else:
            span = "[]"
        labels = [_fmt(self.period_label(g)) for g in self.cohorts[:_N_EXAMPLES]]
        more = ", ..." if self.cohorts.size > _N_EXAMPLES else ""
        return (
            f"Panel(outcome={self.outcome!r}, units={self.n_units}, periods={self.n_periods} "
            f"{span}, obs={self.n_obs}, balanced={self.is_balanced}, "
            f"cohorts=[{', '.join(labels)}{more}])"
        )


def _looks_like_yyyymm(values: np.ndarray) -> bool:
    """Return True if integers look like YYYYMM month codes (e.g. 202103)."""
    return bool(
        values.size
        and values.min() >= 100001
        and values.max() <= 999912
        and ((values % 100 >= 1) & (values % 100 <= 12)).all()
    )


def _require_numeric(series: pd.Series, column: Hashable, role: str) -> None:
    """Raise NonNumericColumnError unless the column is bool, integer or real float."""
    dtype = series.dtype
    if _is_numeric_dtype(dtype):
        return
    if isinstance(dtype, pd.CategoricalDtype):
        fix = (
            f"Convert it with df[{column!r}] = df[{column!r}].astype(float) if its categories "
            "are numbers"
        )
        raise NonNumericColumnError(
            f"Column {column!r} ({role}) must be numeric but is categorical "
            f"(categories e.g. {_fmt_list(list(dtype.categories))}). {fix}."
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
            f"{_fmt(example)}. {fix}"
        )
    example = _fmt(series.iloc[0]) if len(series) else "none"
    raise NonNumericColumnError(
        f"Column {column!r} ({role}) must be numeric, but it has dtype {dtype} although its "
        f"values look like numbers (e.g. {example}). {fix}"
    )
