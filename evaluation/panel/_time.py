"""Time and cohort columns of a panel: parsing labels into ordinals, and the time grid.

Time and cohort values (integers, pandas Periods, strings such as ``"2021M03"``, or
Categoricals of these) are converted to int64 *ordinals*: years or integer periods for
integer time, pandas Period ordinals for Period time. The panel's regular grid of periods
(:class:`TimeGrid`) is defined on these ordinals.
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from evaluation.errors import IrregularTimeGridError, TimeFormatError
from evaluation.messages import N_EXAMPLES, fmt, fmt_list, plural, verb
from evaluation.panel._arrays import as_float, dense_int_codes, is_nan_like

# Sentinels in the int64 "cohort state" of a row; real ordinals never come close to them.
INT64 = np.iinfo(np.int64)
NEVER = INT64.min  # never treated
MISSING = INT64.min + 1  # missing cohort while never_treated is not NaN (an error)
NEG_INF = INT64.min + 2  # cohort -inf
POS_INF = INT64.max  # cohort +inf

STRING_FORMATS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^\s*(\d{4})\s*M\s*(\d{1,2})\s*$"), "M"),  # StatFin: 2021M03
    (re.compile(r"^\s*(\d{4})-(\d{1,2})\s*$"), "M"),  # ISO month: 2021-03
    (re.compile(r"^\s*(\d{4})\s*Q\s*([1-4])\s*$"), "Q"),  # quarter: 2021Q1
)
INTEGER_STRING = re.compile(r"^\s*[+-]?\d+\s*$")
FORMATS_HINT = (
    "integers (e.g. years), pandas Periods, strings such as '2021M03' (StatFin), '2021-03' or "
    "'2021Q1', or a Categorical whose categories are one of these"
)


# --------------------------------------------------------------------------------------------
# Time-like columns (time and cohort) -> int64 ordinals
# --------------------------------------------------------------------------------------------
@dataclass
class Ordinals:
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
        """Return int64 row states: the ordinal, ``NEVER`` or ``missing_state``."""
        if self.codes is not None:
            table = np.append(self.values, np.int64(missing_state))  # code -1 -> last entry
            if self.never is not None:
                table[:-1][self.never] = NEVER
            return table[self.codes]
        state = self.values
        if self.never is not None or self.missing is not None:
            state = state.copy()
            if self.missing is not None:
                state[self.missing] = missing_state
            if self.never is not None:
                state[self.never] = NEVER
        return state

    def dense(self, rows: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(ranks, distinct)`` for the selected rows (no missing values allowed).

        ``distinct`` are the sorted distinct ordinals and ``ranks`` the int64 position of
        each row's ordinal in it.
        """
        if self.codes is None:
            return dense_int_codes(self.values if rows is None else self.values[rows])
        codes = self.codes if rows is None else self.codes[rows]
        used = np.bincount(codes, minlength=self.values.size) > 0
        distinct = np.unique(self.values[used])
        lookup = np.searchsorted(distinct, self.values).astype(np.int64)
        return lookup[codes], distinct


def never_matches(values: np.ndarray, never_treated: Any) -> np.ndarray | None:
    """Return the mask ``values == never_treated`` or None when never_treated is NaN-like."""
    if is_nan_like(never_treated):
        return None
    if values.dtype.kind in "iuf":
        if isinstance(never_treated, bool) or not isinstance(
            never_treated, int | float | np.integer | np.floating
        ):
            return None
        mask = values == never_treated
    else:
        mask = np.fromiter(
            (safe_equal(v, never_treated) for v in values), dtype=bool, count=values.size
        )
    return mask if mask.any() else None


def safe_equal(a: Any, b: Any) -> bool:
    """Return ``a == b`` as a bool, False where the comparison fails or is ambiguous."""
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def to_ordinals(
    series: pd.Series, column: Hashable, role: str, never_treated: Any = np.nan
) -> Ordinals:
    """Convert a time or cohort column to int64 ordinals (see :class:`Ordinals`).

    Categoricals are converted through their categories and strings through their distinct
    values, so the cost per row is one integer gather.
    """
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        levels = to_ordinals(pd.Series(dtype.categories), column, role, never_treated)
        codes = series.cat.codes.to_numpy()
        missing = codes < 0
        return Ordinals(
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
        return Ordinals("period", dtype, values, missing if missing.any() else None, never)
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_complex_dtype(dtype):
        raise TimeFormatError(
            f"Column {column!r} ({role}) has dtype {dtype}, which is not a time; use "
            f"{FORMATS_HINT}."
        )
    if pd.api.types.is_integer_dtype(dtype):
        if isinstance(dtype, np.dtype):
            missing = None
            values = series.to_numpy().astype(np.int64, copy=False)
        else:
            missing = series.isna().to_numpy()
            values = series.to_numpy(dtype=np.int64, na_value=0)
            missing = missing if missing.any() else None
        never = never_matches(values, never_treated)
        if never is not None and missing is not None:
            never &= ~missing
        return Ordinals("integer", None, values, missing, never)
    if pd.api.types.is_float_dtype(dtype):
        return float_ordinals(as_float(series), column, role, never_treated)
    # Strings, objects and other extension types: convert the distinct values only.
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    uniques = np.asarray(uniques, dtype=object)
    level_never = never_matches(uniques, never_treated)
    kind, period_dtype, level_values = parse_objects(uniques, level_never, column, role)
    missing = codes < 0
    return Ordinals(
        kind, period_dtype, level_values, missing if missing.any() else None, level_never, codes
    )


def float_ordinals(values: np.ndarray, column: Hashable, role: str, never_treated: Any) -> Ordinals:
    """Convert float times / cohorts (integral values, NaN = missing) to int64 ordinals."""
    missing = np.isnan(values)
    never = never_matches(values, never_treated)
    finite = np.isfinite(values)
    whole = np.equal(values, np.round(values)) & (np.abs(values) < 2.0**62)
    bad = finite & ~whole
    if never is not None:
        bad &= ~never
    if bad.any():
        n_bad = int(bad.sum())
        example = fmt(values[np.argmax(bad)])
        raise TimeFormatError(
            f"Column {column!r} ({role}) must hold whole periods, but "
            f"{plural(n_bad, 'row')} {verb(n_bad, 'has', 'have')} fractional values, e.g. "
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
            f"Column {column!r} (time) has {plural(int(infinite.sum()), 'infinite value')}; "
            "times must be finite periods. Drop those rows or fix the time column."
        )
    ordinals = np.where(finite, values, 0.0).astype(np.int64)
    if infinite.any():
        ordinals[infinite & (values > 0)] = POS_INF
        ordinals[infinite & (values < 0)] = NEG_INF
    usable = finite if never is None else finite & ~never
    return Ordinals(
        "integer" if usable.any() else None,
        None,
        ordinals,
        missing if missing.any() else None,
        never,
    )


def parse_objects(
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
                f"Column {column!r} ({role}) holds booleans such as {value!r}; use {FORMATS_HINT}."
            )
        elif isinstance(value, int):
            ordinals[i] = value
            kinds.setdefault("integer", value)
        elif isinstance(value, float):
            if np.isinf(value):
                ordinals[i] = POS_INF if value > 0 else NEG_INF
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
            ordinals[i], kind = parse_string(value, column, role)
            kinds.setdefault(kind, value)
        elif isinstance(value, pd.Timestamp | np.datetime64) or hasattr(value, "isoformat"):
            raise TimeFormatError(
                f"Column {column!r} ({role}) holds dates such as {fmt(value)}; the panel needs "
                f"discrete periods. Convert it with pd.to_datetime(df[{column!r}])"
                ".dt.to_period('M') (monthly; 'Q' or 'Y' for quarters or years)."
            )
        else:
            raise TimeFormatError(
                f"Column {column!r} ({role}) holds values of type {type(value).__name__} such "
                f"as {value!r}; use {FORMATS_HINT}."
            )
    if len(kinds) > 1:
        examples = ", ".join(f"{k} (e.g. {fmt(v)})" for k, v in kinds.items())
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


def parse_string(value: str, column: Hashable, role: str) -> tuple[int, str]:
    """Parse one time label string; return its ordinal and kind (``period[M]``, ``integer``)."""
    for pattern, freq in STRING_FORMATS:
        match = pattern.match(value)
        if match:
            year, sub = int(match.group(1)), int(match.group(2))
            if freq == "M" and 1 <= sub <= 12:
                return (year - 1970) * 12 + sub - 1, "period[M]"
            if freq == "Q":
                return (year - 1970) * 4 + sub - 1, "period[Q-DEC]"
            break
    if INTEGER_STRING.match(value):
        return int(value), "integer"
    raise TimeFormatError(
        f"Column {column!r} ({role}) has a value that is not a recognised period: {value!r}. "
        f"Use {FORMATS_HINT}; for dates convert with "
        f"pd.to_datetime(df[{column!r}]).dt.to_period('M')."
    )


def ordinal_label(ordinal: int, kind: str, period_dtype: pd.PeriodDtype | None) -> Any:
    """Return the label (int or pd.Period) of an ordinal."""
    if kind == "period":
        return pd.Period(ordinal=int(ordinal), freq=period_dtype.freq)
    return int(ordinal)


def looks_like_yyyymm(values: np.ndarray) -> bool:
    """Return True if integers look like YYYYMM month codes (e.g. 202103)."""
    return bool(
        values.size
        and values.min() >= 100001
        and values.max() <= 999912
        and ((values % 100 >= 1) & (values % 100 <= 12)).all()
    )


def check_cohort_kind(
    times: Ordinals, cohort: Ordinals, time_column: Hashable, cohort_column: Hashable
) -> None:
    """Require the cohort to use the representation (and frequency) of time."""
    if cohort.kind is None or times.kind is None:
        return
    if cohort.kind != times.kind or cohort.period_dtype != times.period_dtype:
        raise TimeFormatError(
            f"Column {cohort_column!r} (cohort) holds {cohort.describe()} but column "
            f"{time_column!r} (time) holds {times.describe()}. The cohort is the first "
            "treated period and must use the same representation as time; convert one of "
            "the two columns. If the cohort column only holds a code for never-treated "
            "units (e.g. 0), pass it as never_treated (e.g. never_treated=0)."
        )


# --------------------------------------------------------------------------------------------
# The regular time grid
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class TimeGrid:
    """The regular grid of periods ``t0 + k * step`` (``k = 0..n_periods-1``) of a panel.

    ``kind`` is ``"integer"`` or ``"period"``; ``t0`` and ``step`` are ordinals (see
    :class:`Ordinals`) and ``periods`` holds the labels of the grid points.
    """

    kind: str
    period_dtype: pd.PeriodDtype | None
    t0: int
    step: int
    periods: pd.Index

    @classmethod
    def from_distinct(
        cls,
        distinct: np.ndarray,
        kind: str,
        period_dtype: pd.PeriodDtype | None,
        column: Hashable,
    ) -> TimeGrid:
        """Return the grid of the sorted distinct observed ordinals of column ``column``.

        Raises IrregularTimeGridError unless the ordinals are evenly spaced: the step is
        their common gap for integer time and 1 for Periods.
        """
        gaps = np.diff(distinct)
        if gaps.size == 0:
            step = 1
        elif kind == "period":
            step = 1
        else:
            step = int(np.gcd.reduce(gaps))
        if (gaps != step).any():  # with the gcd as step, equal gaps are exactly regular
            raise _irregular_grid_error(distinct, gaps, step, kind, period_dtype, column)
        if kind == "period":
            periods = pd.PeriodIndex.from_ordinals(distinct, freq=period_dtype.freq)
        else:
            periods = pd.Index(distinct.astype(np.int64))
        t0 = int(distinct[0]) if distinct.size else 0
        return cls(kind, period_dtype, t0, step, periods.rename(column))

    @property
    def n_periods(self) -> int:
        """Number of grid periods."""
        return len(self.periods)

    @property
    def last(self) -> int:
        """Ordinal of the last grid period."""
        return self.t0 + self.step * (self.n_periods - 1)


def _irregular_grid_error(
    distinct: np.ndarray,
    gaps: np.ndarray,
    step: int,
    kind: str,
    period_dtype: pd.PeriodDtype | None,
    column: Hashable,
) -> IrregularTimeGridError:
    """Return the IrregularTimeGridError that names the missing grid periods."""
    n_missing = int(((gaps // step) - 1).sum())
    missing: list[Any] = []
    for i in np.flatnonzero(gaps > step)[:N_EXAMPLES]:
        for k in range(1, min(int(gaps[i] // step), N_EXAMPLES + 1)):
            missing.append(ordinal_label(distinct[i] + k * step, kind, period_dtype))
    first = ordinal_label(distinct[0], kind, period_dtype)
    last = ordinal_label(distinct[-1], kind, period_dtype)
    hint = ""
    if kind == "period" and gaps.min() > 1 and gaps.min() == gaps.max():
        hint = (
            f" The periods are evenly spaced every {int(gaps.min())} periods; if the data "
            "are quarterly or yearly, convert the column to that frequency, e.g. "
            f"df[{column!r}] = df[{column!r}].dt.asfreq('Q')."
        )
    if kind == "integer" and looks_like_yyyymm(distinct):
        hint = (
            f" The values look like YYYYMM codes; convert them to monthly periods with "
            f"pd.to_datetime(df[{column!r}].astype(str), format='%Y%m')"
            ".dt.to_period('M')."
        )
    unit_of = (
        f"step {step}"
        if kind == "integer"
        else f"frequency {pd.Period(ordinal=0, freq=period_dtype.freq).freqstr}"
    )
    return IrregularTimeGridError(
        f"Column {column!r} (time): the observed periods do not form a regular grid. On the "
        f"regular grid {fmt(first)}..{fmt(last)} ({unit_of}), "
        f"{plural(n_missing, 'period')} {verb(n_missing, 'is', 'are')} missing from every "
        "unit: "
        f"{fmt_list(missing, n_missing)}. Every grid period needs at least one "
        "observation: drop or aggregate periods so that the rest are evenly spaced (e.g. "
        "aggregate to years), or fix the time column if these periods should exist."
        f"{hint}"
    )
