"""Validated long panels: the one place where a long panel is checked and indexed.

Every estimator takes a :class:`Panel`. Constructing one checks unit ids, the time grid,
duplicates, cohort (first treated period) coding, treatment status, weights, clusters and
missing and infinite values once, copies the named columns (the caller's DataFrame is never
modified) and stores integer codes so that estimators can work on NumPy arrays without
grouping again.

The checks run in the order set out in :meth:`Panel.__init__`; their implementations live in
private helper modules of this package, one per concept: ``_columns`` (row-level checks of
the named columns), ``_time`` (time and cohort labels, the time grid), ``_units``
(unit-level columns and treatment status), ``_arrays`` (integer coding) and ``_paths``
(treatment paths and the first-spell window); :mod:`evaluation.messages` formats values in
messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from evaluation.errors import (
    InvalidOptionError,
    MissingColumnError,
    PanelError,
)
from evaluation.messages import N_EXAMPLES, fmt, fmt_list
from evaluation.options import check_option
from evaluation.panel._arrays import as_float, factorize_sorted, is_nan_like, sort_by_key
from evaluation.panel._columns import (
    check_finite,
    check_ids_present,
    check_roles,
    require_numeric,
    rows_to_keep,
)
from evaluation.panel._derived import (
    duplicate_rows_error,
    grid_label,
    grid_position,
    require_comparison_units,
    reweighted,
)
from evaluation.panel._paths import first_spell, path_table, unit_paths
from evaluation.panel._time import (
    MISSING,
    NEVER,
    TimeGrid,
    check_cohort_kind,
    to_ordinals,
)
from evaluation.panel._units import (
    UnitRows,
    check_status_matches_cohort,
    cohort_from_status,
    status_values,
    unit_clusters,
    unit_cohort,
    unit_weights,
)

MissingPolicy = Literal["error", "drop"]
ControlGroup = Literal["never", "notyet"]
TimeKind = Literal["integer", "period"]


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
        first period with status 1. Treatment that ends is given only this way, since one
        column describes any number of spells (municipalities ran up to three waves): e.g.
        ``((df.t >= df.start) & (df.t <= df.end)).astype(int)`` per wave, OR-ed, with the
        end month included as in ``trials.Wave.end``. See :meth:`treatment_paths`.
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
        those rows with a :class:`~evaluation.errors.DroppedObservationsWarning`. Infinite
        outcomes or covariates are an error either way.

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
    window : str or None
        The analysis window the panel was cut to (:meth:`restrict_to_first_spell`), as
        estimators record it in their result's ``info["window"]``; None for a full panel.

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
    NonFiniteValueError
        An outcome or covariate holds an infinite value (replace it with NaN and pass
        ``missing="drop"``, or fix its computation).
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
    >>> import numpy as np
    >>> import pandas as pd
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
        self._never_is_nan = is_nan_like(never_treated)

        columns = check_roles(data, self._roles(), unit)
        if len(data) == 0:
            raise PanelError("data has no rows; a panel needs at least one observation.")
        frame = data[columns]

        # 1. Column types: numbers where numbers are needed, interpretable time and cohort.
        values = [("outcome", name) for name in self.outcomes]
        values += [("covariate", name) for name in self.covariates]
        for role, name in values:
            require_numeric(frame[name], name, role)
        if weights is not None:
            require_numeric(frame[weights], weights, "weights")
        times = to_ordinals(frame[time], time, "time")
        cohort_state = None
        if cohort is not None:
            cohort_ord = to_ordinals(frame[cohort], cohort, "cohort", never_treated)
            check_cohort_kind(times, cohort_ord, time, cohort)
            cohort_state = cohort_ord.state(NEVER if self._never_is_nan else MISSING)
            del cohort_ord

        # 2. Missing ids and times, then missing outcomes / covariates (an error, or the rows
        #    are dropped), then infinite outcomes / covariates in the rows that remain.
        check_ids_present(frame, unit, time, times.missing)
        keep = rows_to_keep(frame, values, unit, time, missing)
        kept = None
        if keep is not None:
            kept = np.flatnonzero(keep)
            frame = frame.take(kept)
        check_finite(frame, values, unit, time)

        # 3. Unit and time codes, duplicates, the time grid, then sort by (unit, time).
        self.time_kind: TimeKind = "period" if times.kind == "period" else "integer"
        self._period_dtype = times.period_dtype
        unit_codes, self.units = factorize_sorted(frame[unit])
        self.units = self.units.rename(unit)
        time_rank, distinct = times.dense(kept)
        del times
        n_units, n_distinct = len(self.units), distinct.size
        key = unit_codes * n_distinct + time_rank
        order, sorted_key = self._sort_order(key, n_units * n_distinct, distinct)
        self._grid = TimeGrid.from_distinct(distinct, self.time_kind, self._period_dtype, time)
        self.step, self.n_periods = self._grid.step, self._grid.n_periods
        self._t0, self.periods = self._grid.t0, self._grid.periods
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
        sorted_rows = self._unit_rows()
        self.unit_cluster: np.ndarray | None = None
        self.clusters: pd.Index | None = None
        if cluster is not None and cluster == unit:  # clustering at the unit level
            self.unit_cluster = np.arange(n_units, dtype=np.int64)
            self.clusters = self.units
        elif cluster is not None:
            self.unit_cluster, self.clusters = unit_clusters(sorted_rows, cluster)
        self.unit_weights: np.ndarray | None = None
        if weights is not None:
            self.unit_weights = unit_weights(sorted_rows, weights)
        self.unit_cohort = np.full(n_units, np.nan)
        if cohort_state is not None:
            self.unit_cohort = unit_cohort(
                sorted_rows, cohort, cohort_state, never_treated, self._grid
            )
            del cohort_state
        self._status: np.ndarray | None = None
        if status is not None:
            treated_rows = status_values(sorted_rows, status)
            if cohort is None:
                self.unit_cohort = cohort_from_status(sorted_rows, treated_rows)
            else:
                check_status_matches_cohort(
                    sorted_rows, status, treated_rows, cohort, self.unit_cohort
                )
            treated_rows.flags.writeable = False
            self._status = treated_rows
        treated = self.unit_cohort[~np.isnan(self.unit_cohort)]
        self.cohorts = np.unique(treated).astype(np.int64)
        for array in (self.unit_codes, self.time_codes, self.unit_cohort, self.cohorts):
            array.flags.writeable = False
        self.window: str | None = None

    # ----------------------------------------------------------------------------------------
    # Construction steps (the checks themselves live in the private helper modules)
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

    def _sort_order(
        self, key: np.ndarray, size: int, distinct: np.ndarray
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Return ``(order, sorted_key)`` that sort rows by ``key`` (see ``sort_by_key``).

        Raises DuplicateObservationError if a key, i.e. a (unit, time) pair, occurs twice.
        """
        order, sorted_key, duplicates = sort_by_key(key, size)
        if duplicates is None:
            return order, sorted_key
        raise duplicate_rows_error(self, *duplicates, distinct)

    def _unit_rows(self) -> UnitRows:
        """Return the sorted rows with their codes, for the unit-level checks."""
        return UnitRows(
            self.data, self.time, self.units, self.unit_codes, self.time_codes, self._starts
        )

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
        return grid_label(self, position)

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
        return grid_position(self, label)

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
        require_numeric(series, column, "wide() column")
        values = as_float(series)
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

    @property
    def is_absorbing(self) -> bool:
        """True if no unit's treatment status switches off (see :meth:`treatment_paths`)."""
        return unit_paths(self).is_absorbing

    def treatment_paths(self) -> pd.DataFrame:
        """Count the units by the path of their treatment status.

        Returns
        -------
        pandas.DataFrame
            One row per path type (``never treated``, ``absorbing``, ``always treated``,
            ``switches off``, ``switches on again``) with columns ``path``, ``units``,
            ``share`` (of all units), ``description`` and ``examples`` (up to five ids).
            Spells are counted over observed periods (a gap does not end a spell).
        """
        return path_table(self)

    def restrict_to_first_spell(self, end: Any = None) -> Panel:
        """Return the panel cut to each unit's first treatment spell (an absorbing window).

        Each unit's observations after its first spell ends are dropped; ``end`` (a period
        label) also ends the window in calendar time. The estimand is the effect *during
        the first spell* (see :func:`evaluation.panel._paths.first_spell`); the new panel's
        :attr:`window` describes the cut and estimators copy it into
        ``result.info["window"]``.
        """
        return first_spell(self, end)

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
            rows = self._unit_rows()
            varying = rows.varying(np.asarray(codes))
            if varying.any():
                rows.raise_varying(
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
        require_comparison_units(self, control_group, anticipation)

    def with_unit_weights(self, weights: pd.Series, *, name: str = "match_weight") -> Panel:
        r"""Return the panel of the units with a positive weight, weighted by it.

        This is how a matched or reweighted comparison group reaches the estimators.

        Parameters
        ----------
        weights
            Weight per unit, indexed by unit id (for example
            :meth:`evaluation.matching.MatchResult.unit_weights`). Units of the panel not in
            the index, or with weight 0, are left out.
        name
            Name of the new weight column.

        Returns
        -------
        Panel
            A new panel with the same roles; its weight is :math:`w^{\text{panel}}_i\,w_i`
            (just :math:`w_i` when the panel had no weights).

        Raises
        ------
        InvalidWeightError
            If weights are negative or not finite, or no unit of the panel has a positive one.
        """
        return reweighted(self, weights, name)

    def _column(self, column: str) -> pd.Series:
        """Return a column of :attr:`data` or raise MissingColumnError."""
        if column not in self.data.columns:
            raise MissingColumnError(
                f"Column {column!r} is not in the panel; its columns are "
                f"{fmt_list([str(c) for c in self.data.columns])}. Name it when building the "
                "Panel (e.g. as a covariate)."
            )
        return self.data[column]

    def __repr__(self) -> str:
        if self.n_periods:
            span = f"[{fmt(self.periods[0])}..{fmt(self.periods[-1])}]"
        else:
            span = "[]"
        labels = [fmt(self.period_label(g)) for g in self.cohorts[:N_EXAMPLES]]
        more = ", ..." if self.cohorts.size > N_EXAMPLES else ""
        return (
            f"Panel(outcome={self.outcome!r}, units={self.n_units}, periods={self.n_periods} "
            f"{span}, obs={self.n_obs}, balanced={self.is_balanced}, "
            f"cohorts=[{', '.join(labels)}{more}])"
        )
