r"""One :math:`DID_{+,\ell}` or :math:`DID_{-,\ell}` and its influence functions (private).

For a direction (switchers in or out) and a lag :math:`\ell` (an effect, or a placebo),
:func:`side_effect` returns the unit-level influence functions :math:`U_g` of the point
estimate and :math:`U^{var}_g` of its variance, computed exactly as ``did_multiplegt_dyn``
does (see :class:`~evaluation.estimators.dcdh.ChaisemartinDHaultfoeuille` for the
formulas). Everything is vectorised over the ``(G, T)`` grid; level blocks are row slices
of the design, so sums by baseline level are column sums of slices.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from evaluation.estimators._dcdh_design import SwitchDesign


@dataclass(frozen=True)
class SideEffect:
    r"""Influence functions and sizes of one direction and lag.

    Attributes
    ----------
    weight
        :math:`N_\ell`, the weighted number of switchers used (0: not estimable).
    switchers
        Unweighted number of switchers used.
    influence
        ``(G,)`` :math:`U_g` (the estimate is ``influence.sum() / G``).
    influence_var
        ``(G,)`` :math:`U^{var}_g` (cohort-demeaned, degrees-of-freedom corrected).
    used_switchers
        ``(G,)`` bool: switchers used.
    switch_period
        ``(G,)`` period :math:`F_g - 1 + \ell` of each unit (meaningful where used).
    rows
        Slice of the design rows of the switchers' baseline level (the only rows with
        non-zero influence).
    columns
        ``(k,)`` periods at which switchers are used.
    cells
        ``(rows, k)`` bool: cells entering the estimate (switchers and their comparisons).
    derivative
        ``(c,)`` derivative :math:`M` of the estimate in the controls' coefficients (empty
        without controls).
    """

    weight: float
    switchers: int
    influence: np.ndarray
    influence_var: np.ndarray
    used_switchers: np.ndarray
    switch_period: np.ndarray
    rows: slice
    columns: np.ndarray
    cells: np.ndarray
    derivative: np.ndarray = field(default_factory=lambda: np.zeros(0))


def lagged_difference(values: np.ndarray, lag: int) -> np.ndarray:
    r"""Return ``(G, T)`` :math:`Y_{g,t} - Y_{g,t-\ell}` (NaN where unavailable)."""
    out = np.full(values.shape, np.nan)
    if lag < values.shape[1]:
        out[:, lag:] = values[:, lag:] - values[:, :-lag]
    return out


def placebo_difference(values: np.ndarray, lag: int) -> np.ndarray:
    r"""Return ``(G, T)`` :math:`Y_{g,t-2\ell} - Y_{g,t-\ell}` (NaN where unavailable)."""
    out = np.full(values.shape, np.nan)
    if 2 * lag < values.shape[1]:
        out[:, 2 * lag:] = values[:, :-2 * lag] - values[:, lag:-lag]
    return out


def _cluster_counts(mask: np.ndarray, design: SwitchDesign, start: int) -> np.ndarray:
    """Count, per column, the rows (or distinct clusters) of a level block where ``mask``."""
    if design.cluster is None:
        return mask.sum(axis=0).astype(float)
    codes = design.cluster[start:start + mask.shape[0]]
    starts = np.flatnonzero(np.concatenate(([True], codes[1:] != codes[:-1])))
    return (np.add.reduceat(mask.astype(np.int32), starts, axis=0) > 0).sum(axis=0).astype(float)


def _cohort_counts(keys: np.ndarray, clusters: np.ndarray | None, size: int) -> np.ndarray:
    """Count switchers (or distinct clusters) per cohort key ``0..size-1``."""
    if clusters is None:
        return np.bincount(keys, minlength=size).astype(float)
    pairs = np.unique(keys.astype(np.int64) * (int(clusters.max()) + 1) + clusters)
    return np.bincount(pairs // (int(clusters.max()) + 1), minlength=size).astype(float)


def _demeaning(count: np.ndarray, mean: np.ndarray, union_count: np.ndarray,
               union_mean: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the expected change, degrees-of-freedom factor and keep flag of cells.

    The cohort's mean when it has at least two members (units or clusters), else the mean
    of the union of switchers and controls of the same baseline and period when that has
    at least two; else the cell is left out of the variance (as ``did_multiplegt_dyn``).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        own = count >= 2
        union = (count == 1) & (union_count >= 2)
        expected = np.where(own, mean, np.where(union, union_mean, 0.0))
        factor = np.where(own, np.sqrt(count / (count - 1)),
                          np.where(union, np.sqrt(union_count / (union_count - 1)), 0.0))
    return expected, factor, own | union


def side_effect(design: SwitchDesign, lag: int, increase: int, diff: np.ndarray,
                comparable: np.ndarray, switch_ok: np.ndarray,
                control_change: np.ndarray | None = None) -> SideEffect:
    r"""Influence functions of :math:`DID_{\pm,\ell}` (or its placebo).

    Parameters
    ----------
    design
        The switching design.
    lag
        :math:`\ell \ge 1`.
    increase
        1 for switchers in, 0 for switchers out.
    diff
        ``(G, T)`` outcome change of the comparison, :math:`Y_{t} - Y_{t-\ell}` for effects
        and :math:`Y_{t-2\ell} - Y_{t-\ell}` for placebos, evaluated at
        :math:`t = F_g - 1 + \ell` for switchers.
    comparable
        ``(G, T)`` cells that can serve as comparisons (not switched at :math:`t`, changes
        observed).
    switch_ok
        ``(G,)`` switchers eligible before the comparison check (:math:`L_g \ge \ell`; for
        placebos the switchers of the effect).
    control_change
        Optional ``(G, T, c)`` changes of the controls over the same periods as ``diff``;
        with it the derivative :math:`M` of the estimate in their coefficients is returned.

    Notes
    -----
    Switchers in have baseline 0 and switchers out baseline 1, and comparisons share the
    switcher's baseline, so only that level's rows and the periods at which its switchers
    are used carry weight: the work is on that ``(rows, k)`` block.
    """
    n_groups, n_periods = design.n_groups, design.n_periods
    level = 1 - increase
    bounds = [(start, stop) for lvl, start, stop in design.levels if lvl == level]
    start, stop = bounds[0] if bounds else (0, 0)
    block = slice(start, stop)
    period = design.first_switch - 1 + lag
    empty = np.zeros(n_groups)
    none_used = np.zeros(n_groups, dtype=bool)
    nothing = SideEffect(0.0, 0, empty, empty, none_used, period, block,
                         np.zeros(0, dtype=np.int64), np.zeros((stop - start, 0), dtype=bool))
    if stop == start or lag > int(design.last_control[start]):
        return nothing
    inside = period < n_periods
    safe_period = np.where(inside, period, 0)
    local = np.arange(stop - start)
    rows_period = safe_period[block]
    switch_change = np.where(inside[block], diff[block][local, rows_period], np.nan)
    candidate = (switch_ok[block] & inside[block] & (design.direction[block] == increase)
                 & ~np.isnan(switch_change))
    if not candidate.any():
        return nothing
    columns, column_of = np.unique(rows_period[candidate], return_inverse=True)

    # comparisons of the level at the candidate periods
    comparable_block = comparable[block][:, columns]
    weight_block = design.cell_weight[block][:, columns]
    control_weight = np.where(comparable_block, weight_block, 0.0)
    with np.errstate(invalid="ignore"):
        compare_change = np.where(comparable_block, weight_block * diff[block][:, columns], 0.0)
    control_total = control_weight.sum(axis=0)
    switch_weight = design.cell_weight[block][local, rows_period]
    position = np.zeros(stop - start, dtype=np.int64)
    position[candidate] = column_of
    used = candidate & (control_total[position] > 0)
    k = columns.size
    switch_total = np.bincount(position[used], weights=switch_weight[used], minlength=k)
    total = float(switch_total.sum())
    if total == 0:
        return nothing
    ratio = np.where(control_total > 0, switch_total / np.where(control_total > 0,
                                                                control_total, 1.0), 0.0)
    scale = n_groups / total

    # comparison cells: means by period, and of their union with the period's switchers
    control_cells = comparable_block & (weight_block != 0) & (switch_total > 0)[None, :]
    switch_cells = used & (switch_weight != 0)
    cells = control_cells.copy()
    cells[local[switch_cells], position[switch_cells]] = True
    s_weight = np.where(switch_cells, switch_weight, 0.0)
    s_change = np.where(switch_cells, np.nan_to_num(switch_change), 0.0) * s_weight
    masked_weight = np.where(control_cells, control_weight, 0.0).sum(axis=0)
    masked_change = np.where(control_cells, compare_change, 0.0).sum(axis=0)
    union_weight = masked_weight + np.bincount(position[switch_cells],
                                               weights=s_weight[switch_cells], minlength=k)
    union_change = masked_change + np.bincount(position[switch_cells],
                                               weights=s_change[switch_cells], minlength=k)
    with np.errstate(divide="ignore", invalid="ignore"):
        control_mean = masked_change / masked_weight
        union_mean = union_change / union_weight
    control_count = _cluster_counts(control_cells, design, start)
    union_count = _cluster_counts(cells, design, start)
    c_expected, c_factor, c_keep = _demeaning(control_count, control_mean, union_count,
                                              union_mean)

    # switcher cells: cohort (first switch) means
    cohort = design.first_switch[block]
    size = n_periods + 1
    s_count = _cohort_counts(cohort[switch_cells],
                             None if design.cluster is None
                             else design.cluster[block][switch_cells], size)
    s_total_weight = np.bincount(cohort[switch_cells], weights=s_weight[switch_cells],
                                 minlength=size)
    s_total_change = np.bincount(cohort[switch_cells], weights=s_change[switch_cells],
                                 minlength=size)
    with np.errstate(divide="ignore", invalid="ignore"):
        s_mean = s_total_change / s_total_weight
    sw_expected, sw_factor, sw_keep = _demeaning(
        s_count[cohort], s_mean[cohort], union_count[position], union_mean[position])

    # the influence functions
    change = np.nan_to_num(switch_change)
    own = np.where(used, switch_weight * change, 0.0)
    own_var = np.where(used & sw_keep, switch_weight * sw_factor * (change - sw_expected), 0.0)
    var_weights = ratio * c_factor * c_keep
    influence = np.zeros(n_groups)
    influence_var = np.zeros(n_groups)
    influence[block] = scale * (own - compare_change @ ratio)
    influence_var[block] = scale * (own_var - compare_change @ var_weights
                                    + control_weight @ (var_weights * c_expected))
    used_switchers = np.zeros(n_groups, dtype=bool)
    used_switchers[block] = used
    derivative = np.zeros(0)
    if control_change is not None:
        moved = np.nan_to_num(control_change[block])
        own_x = (np.where(used, switch_weight, 0.0)[:, None]
                 * moved[local, rows_period]).sum(axis=0)
        compare_x = np.einsum("gc,gcj,c->j", control_weight, moved[:, columns], ratio)
        reach = lag <= int(design.last_control[start]) - 1
        derivative = (own_x - compare_x) / total if reach else np.zeros_like(own_x)
    return SideEffect(total, int(used.sum()), influence, influence_var, used_switchers,
                      period, block, columns, cells, derivative)
