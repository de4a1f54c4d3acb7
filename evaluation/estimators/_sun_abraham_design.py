r"""Cohort x relative-period design of the Sun-Abraham regression, without dense indicators.

The regressors of the Sun-Abraham regression are indicators of disjoint cells (a cohort at
a relative period): every observation is in at most one cell. They are kept as one cell
code per observation (``-1`` outside every cell) instead of an ``(observations x cells)``
matrix, and everything the fixed-effects regression needs is a ``bincount`` sum over rows
or a product of small matrices. With :math:`D` the indicators, :math:`U, T` the unit and
period dummies and :math:`W` the weights, the unit and period effects of the indicators,
:math:`(\Gamma_u, \Gamma_t)`, solve the normal equations with right-hand sides :math:`U'WD`
(weighted observations of each unit in each cell) and :math:`T'WD` (of each period in each
cell), and the demeaned indicators are :math:`\tilde D = D - U\Gamma_u - T\Gamma_t`. The
rows of :math:`\Gamma_u` are shared by the units of one type (cohort and observed periods,
:class:`~evaluation.estimators._sun_abraham_effects.UnitTypes`), so only ``(types x cells)``
and ``(periods x cells)`` coefficient matrices are stored. On 100,000 units x 20 periods
with 57 cells the fit needs little memory beyond the panel's columns (the dense matrix
alone took 0.9 GB, and it was copied several times).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from evaluation.errors import NoComparisonUnitsError, PanelError
from evaluation.estimators._sun_abraham_effects import UnitTypes
from evaluation.estimators.did import PartialledRegression, TwoWayFit
from evaluation.panel import Panel

if TYPE_CHECKING:
    from evaluation.estimators.sun_abraham import SunAbraham

_CHUNK_ROWS = 1 << 16  # rows of demeaned indicators materialised at once (~30 MB at 57 cells)
#: Products of tall matrices are summed in row blocks of at most this many multiply-adds,
#: below OpenBLAS's threshold for threading (65536 x 4): on a machine whose cores are busy
#: a threaded product of (100,000 x 57) matrices waited seconds for its second thread,
#: while the blocks take ~0.05 s on one.
_BLOCK_FLOPS = 1 << 17


def _compact(codes: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Renumber integer ``codes`` (0..size-1) to 0..m-1 in increasing order.

    Returns the new codes and the old code of each new one, i.e. the inverse and the values
    of ``np.unique(codes, return_inverse=True)``, without sorting.
    """
    present = np.bincount(codes, minlength=size) > 0
    return (np.cumsum(present) - 1)[codes], np.flatnonzero(present)


@dataclass
class InteractionDesign:
    """Cohort x relative-period cells of the rows used in the Sun-Abraham regression.

    Attributes
    ----------
    rows
        Boolean mask of the panel rows kept.
    cell
        Cell (regressor column) of every kept row, ``-1`` for never-treated (control)
        rows and rows at a reference period.
    event
        Position in :attr:`events` of every kept row's binned relative period, ``-1`` for
        control rows and reference periods.
    labels
        ``(cohort position, binned relative period)`` of every cell.
    events
        Sorted binned relative periods outside the reference.
    n_units
        Units with at least one kept row.
    kept_units
        Panel codes of those units (position = compact unit code).
    types
        Kept rows' compact unit codes and periods, and the units' types.
    control_label
        Description of the comparison group.
    low, high
        Binned end points (infinite without binning).
    """

    rows: np.ndarray
    cell: np.ndarray
    event: np.ndarray
    labels: list[tuple[int, int]]
    events: np.ndarray
    n_units: int
    kept_units: np.ndarray
    types: UnitTypes
    control_label: str
    low: float
    high: float

    @classmethod
    def build(cls, panel: Panel, options: SunAbraham) -> InteractionDesign:
        """Cells of the kept rows; the comparison cohort and reference periods get none."""
        cohort = panel.unit_cohort.copy()
        rows = np.ones(panel.n_obs, dtype=bool)
        if options.control == "never":
            if np.isnan(cohort).all() or not np.isnan(cohort).any():
                raise NoComparisonUnitsError(
                    "control='never' needs never-treated units and treated units; "
                    f"found {int(np.isnan(cohort).sum())} never-treated of {cohort.size}. "
                    "Use control='last' to compare with the last-treated cohort.")
            label = "never treated"
        else:
            cohorts = np.unique(cohort[~np.isnan(cohort)])
            if cohorts.size < 2:
                raise NoComparisonUnitsError("control='last' needs at least two cohorts.")
            last = cohorts[-1]
            cohort = np.where(cohort == last, np.nan, cohort)
            rows = panel.time_codes < last
            label = f"last cohort {panel.period_label(last)} (periods before it dropped)"
        units = panel.unit_codes[rows]
        unit_treated = ~np.isnan(cohort)
        treated = unit_treated[units]
        unit_cohort = np.where(unit_treated, cohort, 0).astype(np.int64)
        g = unit_cohort[units[treated]]
        ell = panel.time_codes[rows][treated] - g  # relative period, binned at the ends
        if options.leads is not None:
            ell = np.maximum(ell, -options.leads)
        if options.lags is not None:
            ell = np.minimum(ell, options.lags)
        key, pairs = _pair_codes(g, ell)
        keep = ~np.isin(pairs[:, 1], options.reference)
        if not keep.any():
            raise PanelError("no cohort is observed at a relative period outside the reference.")
        column = np.full(pairs.shape[0], -1, dtype=np.int64)
        column[keep] = np.arange(int(keep.sum()))
        cell = np.full(units.size, -1, dtype=np.int64)
        cell[treated] = column[key]
        labels = [(int(a), int(b)) for a, b in pairs[keep]]
        events, label_event = np.unique(pairs[keep, 1], return_inverse=True)
        event = np.where(cell >= 0, label_event[cell], -1)
        unit, kept_units = _compact(units, panel.n_units)
        kept_cohort = cohort[kept_units]
        types = UnitTypes.build(
            unit, panel.time_codes[rows], cell,
            np.where(np.isnan(kept_cohort), -1, kept_cohort).astype(np.int64),
            (np.ones(kept_units.size) if panel.unit_weights is None
             else panel.unit_weights[kept_units]), panel.n_periods, len(labels))
        return cls(rows=rows, cell=cell, event=event, labels=labels, events=events,
                   n_units=int(kept_units.size), kept_units=kept_units, types=types,
                   control_label=label,
                   low=-np.inf if options.leads is None else -options.leads,
                   high=np.inf if options.lags is None else options.lags)

    @property
    def n_cells(self) -> int:
        """Number of cells (regressors)."""
        return len(self.labels)

    def shares(self, panel: Panel) -> tuple[np.ndarray, np.ndarray]:
        r"""Cohort shares per relative period and the covariance of their estimates.

        Returns
        -------
        tuple
            ``(k,)`` shares :math:`p_{g\ell}` of the cells and their ``(k, k)`` covariance
            from the unit-level influence functions, clustered by the panel's cluster
            column (or by unit), as
            :func:`~evaluation.estimators._inference.influence_covariance` with one row per
            panel unit (zero for units without kept rows).

        Notes
        -----
        For the set :math:`S_\ell` of cohorts observed at relative period :math:`\ell`,
        :math:`p_{g\ell} = N_{g\ell}/N_{S\ell}` with the weighted counts
        :math:`N_{g\ell} = \sum_i w_i N_{i,g\ell}` and :math:`N_{S\ell} = \sum_i w_i
        N_{i,S\ell}`, :math:`N_{i,\cdot}` being unit :math:`i`'s number of observations in
        the cell and :math:`w_i` its weight (one without weights). Unit :math:`i`'s
        influence function is :math:`n\,w_i(N_{i,g\ell} - p_{g\ell} N_{i,S\ell})/N_{S\ell}`,
        the weights entering as in the weighted least-squares scores of
        :func:`fit_cells` (fixed sampling weights); it does not change when the weights
        are multiplied by a constant. The counts :math:`N_{i,\cdot}` are those of the
        unit's type (:class:`~evaluation.estimators._sun_abraham_effects.UnitTypes`), so
        the influence function is :math:`w_i f_{\tau(i)}` and the clustered covariance
        :math:`n^{-2}\sum_c S_cS_c'` with :math:`S_c = \sum_{i \in c} w_i f_{\tau(i)}`
        is :meth:`~evaluation.estimators._sun_abraham_effects.UnitTypes.cluster_gram`.
        """
        types, n = self.types, panel.n_units
        label_event = np.searchsorted(self.events, [ell for _, ell in self.labels])
        same_event = (label_event[:, None] == label_event[None, :]).astype(float)
        per_cell = types.cells  # (types, k) rows in each cell, per unit
        per_event = per_cell @ same_event  # rows at each cell's relative period
        total = types.weight @ per_event
        weights = (types.weight @ per_cell) / total
        influence = n * (per_cell - weights * per_event) / total
        cluster = None if panel.unit_cluster is None else panel.unit_cluster[self.kept_units]
        return weights, types.cluster_gram(types.unit_weight, cluster, influence) / n**2


def _pair_codes(first: np.ndarray, second: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Code integer pairs ``(first, second)`` by their rank among the distinct pairs.

    Returns the code of every pair and the distinct pairs in lexicographic order, as
    ``np.unique(np.column_stack([first, second]), axis=0, return_inverse=True)`` would,
    from one ``bincount``.
    """
    if first.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros((0, 2), dtype=np.int64)
    base, low = first.min(), second.min()
    width = second.max() - low + 1
    key = (first - base) * width + (second - low)
    present = np.bincount(key) > 0
    rank = np.cumsum(present) - 1
    values = np.flatnonzero(present)
    return rank[key], np.column_stack([values // width + base, values % width + low])


@dataclass(frozen=True)
class DemeanedCells:
    r"""The cell regression with the unit and period effects partialled out.

    The dense matrix is not stored: rows of :math:`\tilde D` are generated on demand.

    Attributes
    ----------
    cell, unit, time, cluster
        Cell (``-1``: none), compact unit, period and compact cluster codes of the kept rows.
    y
        Demeaned outcome :math:`\tilde y`.
    weights
        Regression weights of the rows (None: unweighted).
    g_type, g_time
        Effects of the indicators per unit type and per period (``(types, k)``,
        ``(T, k)``); :math:`\tilde d_{it} = d_{it} - \Gamma_{\tau(i)} - \Gamma_{t}`.
    b_time
        :math:`T'WD`, the weighted rows of each period in each cell.
    row_type
        Unit type of every row.
    unit_cluster
        Compact cluster code of every kept unit (None: one cluster per unit).
    """

    cell: np.ndarray
    unit: np.ndarray
    time: np.ndarray
    cluster: np.ndarray
    y: np.ndarray
    weights: np.ndarray | None
    g_type: np.ndarray
    g_time: np.ndarray
    b_time: np.ndarray
    row_type: np.ndarray
    unit_cluster: np.ndarray | None

    def rows(self, which: np.ndarray | slice) -> np.ndarray:
        r"""Return rows ``which`` of the demeaned indicators :math:`\tilde D` (a new array)."""
        block = -(self.g_type[self.row_type[which]] + self.g_time[self.time[which]])
        cell = self.cell[which]
        inside = np.flatnonzero(cell >= 0)
        block[inside, cell[inside]] += 1.0
        return block

    def dense(self) -> PartialledRegression:
        """Return the partialled regression with the dense ``(observations x cells)`` matrix."""
        return PartialledRegression(
            _demeaned_cells(self.cell, self.row_type, self.time, self.g_type, self.g_time),
            self.y, self.weights, self.unit, self.time, self.cluster)


def demeaned_cells(panel: Panel, design: InteractionDesign) -> DemeanedCells:
    r"""Partial the unit and period effects out of the outcome and the cell indicators.

    The outcome is demeaned row by row; the indicators only through their effects
    :math:`\Gamma` per unit type and period (:meth:`UnitTypes.solve_cells
    <evaluation.estimators._sun_abraham_effects.UnitTypes.solve_cells>`).
    """
    types = design.types
    unit, time, cell = types.unit, types.time, design.cell
    weights = types.unit_weight[unit]
    y = types.demean(panel.data[panel.outcome].to_numpy(dtype=float)[design.rows], weights)
    inside = cell >= 0
    b_time = _cell_sums(time[inside], cell[inside], weights[inside], panel.n_periods,
                        design.n_cells)
    g_type, g_time = types.solve_cells(b_time)
    if panel.unit_cluster is None:
        unit_cluster, cluster = None, unit
    else:
        unit_cluster = _compact(panel.unit_cluster[design.kept_units],
                                int(panel.unit_cluster.max()) + 1)[0]
        cluster = unit_cluster[unit]
    return DemeanedCells(cell, unit, time, cluster, y,
                         None if panel.unit_weights is None else weights, g_type, g_time,
                         b_time, types.row_type, unit_cluster)


def fit_cells(panel: Panel, design: InteractionDesign, *, small_sample: bool = False,
              partialled: bool = False, cells: DemeanedCells | None = None) -> TwoWayFit:
    r"""Fixed-effects regression of the outcome on the cell indicators of ``design``.

    The same estimator as :func:`~evaluation.estimators.did.fit_two_way` with the dense
    indicator matrix of the cells (coefficients, cluster-robust covariance, small-sample
    factors and the check that every indicator varies beyond the effects), computed from
    cell codes.

    Parameters
    ----------
    panel
        The panel (outcome, weights and cluster column are taken from it).
    design
        Rows kept and their cells.
    small_sample
        Apply the :math:`G/(G-1)` and :math:`(N-1)/(N-K)` factors.
    partialled
        Also return the regression with the effects partialled out (the dense demeaned
        indicators :math:`\tilde D`, ``(observations x cells)``, for CR2); off by default
        because it is the one dense matrix of the fit.
    cells
        The partialled regression of :func:`demeaned_cells`, if already computed.

    Returns
    -------
    TwoWayFit
        Coefficients of the cells and their cluster-robust covariance (and, with
        ``partialled``, the partialled regression).

    Notes
    -----
    With :math:`B_u = U'WD`, :math:`B_t = T'WD`, :math:`(\Gamma_u, \Gamma_t)` their
    solution of the effects' normal equations (:math:`\tilde D = D - U\Gamma_u -
    T\Gamma_t`, so that :math:`U'W\tilde D = 0` and :math:`T'W\tilde D = 0`) and
    :math:`\tilde y` the demeaned outcome,

    .. math::

        \tilde D'W\tilde D = D'W\tilde D = D'WD - B_u'\Gamma_u - B_t'\Gamma_t, \qquad
        \tilde D'W\tilde y = D'W\tilde y - \Gamma_u'U'W\tilde y - \Gamma_t'T'W\tilde y,

    where :math:`D'WD` is diagonal (the cells' weighted sizes) and the last two terms
    vanish up to rounding. The cluster scores
    :math:`s_c = \sum_{it \in c} w_{it}\hat e_{it}\tilde d_{it}` are

    .. math::

        s_c = \sum_{it \in c} w_{it}\hat e_{it} d_{it}
            - \sum_{i \in c} \Big(\sum_t w_{it}\hat e_{it}\Big)\Gamma_{u,i}
            - \sum_t \Big(\sum_{i \in c} w_{it}\hat e_{it}\Big)\Gamma_{t,t},

        \hat V = (\tilde D'W\tilde D)^{-1}\Big[\sum_c s_c s_c'\Big](\tilde D'W\tilde D)^{-1},

    (times :math:`\frac{G}{G-1}\frac{N-1}{N-K}` with ``small_sample``), each sum a
    ``bincount`` over (cluster, cell), unit or (cluster, period).
    """
    types = design.types
    cells = demeaned_cells(panel, design) if cells is None else cells
    unit, time, cell, row_type, y = cells.unit, cells.time, cells.cell, cells.row_type, cells.y
    g_type, g_time, cluster, unit_cluster = (cells.g_type, cells.g_time, cells.cluster,
                                             cells.unit_cluster)
    n, n_units, k, n_periods = cell.size, design.n_units, design.n_cells, panel.n_periods
    weights, b_time = types.unit_weight[unit], cells.b_time
    inside = cell >= 0
    in_cell = cell[inside]
    gram = _gram(types.cells * types.weight[:, None], b_time, g_type, g_time)
    _check_variation(gram, weights, cell, row_type, time, g_type, g_time)
    wy = weights * y
    cross = (np.bincount(in_cell, weights=wy[inside], minlength=k)
             - g_type.T @ np.bincount(row_type, weights=wy, minlength=types.n_types)
             - g_time.T @ np.bincount(time, weights=wy, minlength=n_periods))
    bread = np.linalg.inv(gram)
    beta = bread @ cross
    fitted = np.append(beta, 0.0)[cell] - (g_type @ beta)[row_type] - (g_time @ beta)[time]
    score = weights * (y - fitted)
    n_clusters = n_units if unit_cluster is None else int(unit_cluster.max()) + 1
    sums = _cell_sums(cluster[inside], in_cell, score[inside], n_clusters, k)
    sums -= types.by_cluster(np.bincount(unit, weights=score, minlength=n_units),
                             unit_cluster, g_type)
    sums -= _tall_product(_cell_sums(cluster, time, score, n_clusters, n_periods), g_time)
    cov = bread @ _tall_gram(sums) @ bread
    if small_sample:
        cov *= n_clusters / (n_clusters - 1) * (n - 1) / (n - k)
    return TwoWayFit(beta, cov, n, cells.dense() if partialled else None)


def _demeaned_cells(cell: np.ndarray, row_type: np.ndarray, time: np.ndarray,
                    g_type: np.ndarray, g_time: np.ndarray) -> np.ndarray:
    r"""Dense :math:`\tilde D = D - U\Gamma_u - T\Gamma_t`, built in blocks of rows.

    The same matrix as ``TwoWayDesign.demean`` of the dense indicators (whose unit and
    period sums are the right-hand sides :math:`B_u, B_t` solved for :math:`\Gamma`);
    :math:`\Gamma_u` is given per unit type (``row_type`` of every row).
    """
    n_periods, k = g_time.shape
    effects = -(g_type[:, None, :] + g_time[None, :, :]).reshape(-1, k)  # per (type, period)
    out = np.empty((cell.size, k))
    for start in range(0, cell.size, _CHUNK_ROWS):
        part = slice(start, start + _CHUNK_ROWS)
        block = out[part]
        np.take(effects, row_type[part] * n_periods + time[part], axis=0, out=block)
        inside = np.flatnonzero(cell[part] >= 0)
        block[inside, cell[part][inside]] += 1.0
    return out


def _tall_gram(a: np.ndarray) -> np.ndarray:
    """Return ``a.T @ a`` of a tall matrix, summed over single-threaded row blocks."""
    step = max(1, _BLOCK_FLOPS // max(a.shape[1] ** 2, 1))
    out = np.zeros((a.shape[1], a.shape[1]))
    for start in range(0, a.shape[0], step):
        block = a[start:start + step]
        out += block.T @ block
    return out


def _tall_product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Return ``a @ b`` for a tall ``a``, computed in single-threaded row blocks."""
    step = max(1, _BLOCK_FLOPS // max(a.shape[1] * b.shape[1], 1))
    out = np.empty((a.shape[0], b.shape[1]))
    for start in range(0, a.shape[0], step):
        np.matmul(a[start:start + step], b, out=out[start:start + step])
    return out


def _cell_sums(group: np.ndarray, code: np.ndarray, values: np.ndarray, n_groups: int,
               k: int) -> np.ndarray:
    """``(n_groups, k)`` sums of ``values`` by group and code (row order kept in each bin)."""
    return np.bincount(group * k + code, weights=values,
                       minlength=n_groups * k).reshape(n_groups, k)


def _gram(b_unit: np.ndarray, b_time: np.ndarray, g_unit: np.ndarray,
          g_time: np.ndarray) -> np.ndarray:
    r""":math:`\tilde D'W\tilde D = D'W\tilde D` from the effects' normal equations.

    ``b_unit`` and ``g_unit`` may be given per unit type (:math:`W_\tau b_\tau` and
    :math:`\Gamma_\tau`): :math:`B_u'\Gamma_u = \sum_\tau W_\tau b_\tau\Gamma_\tau'`.
    """
    gram = -(b_unit.T @ g_unit + b_time.T @ g_time)
    gram[np.diag_indices_from(gram)] += b_time.sum(axis=0)
    return (gram + gram.T) / 2


def _check_variation(gram: np.ndarray, weights: np.ndarray, cell: np.ndarray,
                     row_type: np.ndarray, time: np.ndarray, g_type: np.ndarray,
                     g_time: np.ndarray) -> None:
    r"""Raise unless every demeaned indicator exceeds 1e-9 in absolute value somewhere.

    :math:`\max_{it}|\tilde d_{it}| \ge (\tilde d'W\tilde d / \sum w)^{1/2}`, so only
    indicators whose weighted mean square is below 1e-12 are checked row by row.
    """
    doubtful = np.flatnonzero(np.diag(gram) <= 1e-12 * weights.sum())
    if doubtful.size:
        largest = np.zeros(doubtful.size)
        for start in range(0, cell.size, _CHUNK_ROWS):
            part = slice(start, start + _CHUNK_ROWS)
            block = g_type[row_type[part]][:, doubtful] + g_time[time[part]][:, doubtful]
            block -= cell[part, None] == doubtful
            np.maximum(largest, np.abs(block).max(axis=0), out=largest)
        if not (largest > 1e-9).all():
            raise PanelError("a treatment regressor has no variation beyond the unit and "
                             "period effects (e.g. every unit is treated in every period, or "
                             "a cohort is never observed at some event time); the "
                             "fixed-effects regression cannot be estimated.")
