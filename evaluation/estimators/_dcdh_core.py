r"""One :math:`DID_{+,\ell}` or :math:`DID_{-,\ell}` and its influence functions (private).

For a direction (switchers in or out) and a lag :math:`\ell` (an effect, or a placebo),
:func:`side_effect` returns the unit-level influence functions :math:`U_g` of the point
estimate and :math:`U^{var}_g` of its variance, computed exactly as ``did_multiplegt_dyn``
does (see :class:`~evaluation.estimators.dcdh.ChaisemartinDHaultfoeuille` for the
formulas). Everything is vectorised over the ``(G, T)`` grid; level blocks are row slices
of the design, so sums by baseline level are column sums of slices.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    used_cells
        ``(G, T)`` bool: cells entering the estimate (switchers and their comparisons).
    """

    weight: float
    switchers: int
    influence: np.ndarray
    influence_var: np.ndarray
    used_switchers: np.ndarray
    switch_period: np.ndarray
    used_cells: np.ndarray


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


def _cluster_counts(mask: np.ndarray, design: SwitchDesign, start: int, stop: int
                    ) -> np.ndarray:
    """Count, per period, the rows (or distinct clusters) of a level block where ``mask``."""
    block = mask[start:stop]
    if design.cluster is None:
        return block.sum(axis=0).astype(float)
    codes = design.cluster[start:stop]
    starts = np.flatnonzero(np.concatenate(([True], codes[1:] != codes[:-1])))
    return (np.add.reduceat(block.astype(np.int32), starts, axis=0) > 0).sum(axis=0).astype(float)


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
                comparable: np.ndarray, switch_ok: np.ndarray) -> SideEffect:
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
        ``(G,)`` switchers eligible before the comparison check (direction, :math:`L_g \ge
        \ell`, observed change).
    """
    n_groups, n_periods = design.n_groups, design.n_periods
    weight = design.cell_weight
    control_weight = np.where(comparable, weight, 0.0)
    control_change = control_weight * np.where(comparable, diff, 0.0)
    n_levels = 2
    control_total = np.zeros((n_levels, n_periods))
    for level, start, stop in design.levels:
        control_total[level] = control_weight[start:stop].sum(axis=0)

    period = design.first_switch - 1 + lag
    inside = period < n_periods
    safe_period = np.where(inside, period, 0)
    rows = np.arange(n_groups)
    switch_change = np.where(inside, diff[rows, safe_period], np.nan)
    switch_weight = np.where(inside, weight[rows, safe_period], 0.0)
    used = (switch_ok & inside & (design.direction == increase) & ~np.isnan(switch_change)
            & (control_total[design.baseline, safe_period] > 0))
    cell_key = design.baseline * n_periods + safe_period
    switch_total = np.bincount(cell_key[used], weights=switch_weight[used],
                               minlength=n_levels * n_periods).reshape(n_levels, n_periods)
    total = float(switch_total.sum())
    empty = np.zeros(n_groups)
    if total == 0:
        return SideEffect(0.0, 0, empty, empty, used, period,
                          np.zeros((n_groups, n_periods), dtype=bool))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(control_total > 0, switch_total / control_total, 0.0)
    scale = n_groups / total

    # comparison cells: cohort means by (level, period), their union with the switchers
    any_switch = switch_total.sum(axis=0) > 0
    control_cells = comparable & (weight != 0) & any_switch[None, :]
    switch_cells = used & (switch_weight != 0)
    union_cells = control_cells.copy()
    union_cells[rows[switch_cells], period[switch_cells]] = True
    s_weight = np.where(switch_cells, switch_weight, 0.0)
    s_change = np.where(switch_cells, switch_change, 0.0) * s_weight
    union_weight = np.bincount(cell_key[switch_cells], weights=s_weight[switch_cells],
                               minlength=n_levels * n_periods).reshape(n_levels, n_periods)
    union_change = np.bincount(cell_key[switch_cells], weights=s_change[switch_cells],
                               minlength=n_levels * n_periods).reshape(n_levels, n_periods)
    control_mean = np.zeros((n_levels, n_periods))
    control_count = np.zeros((n_levels, n_periods))
    union_count = np.zeros((n_levels, n_periods))
    masked_weight = np.where(control_cells, control_weight, 0.0)
    masked_change = np.where(control_cells, control_change, 0.0)
    for level, start, stop in design.levels:
        level_weight = masked_weight[start:stop].sum(axis=0)
        level_change = masked_change[start:stop].sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            control_mean[level] = level_change / level_weight
        union_weight[level] += level_weight
        union_change[level] += level_change
        control_count[level] = _cluster_counts(control_cells, design, start, stop)
        union_count[level] = _cluster_counts(union_cells, design, start, stop)
    with np.errstate(divide="ignore", invalid="ignore"):
        union_mean = union_change / union_weight
    c_expected, c_factor, c_keep = _demeaning(control_count, control_mean, union_count,
                                              union_mean)

    # switcher cells: cohort (level, first switch) means
    cohort_size = n_levels * (n_periods + 1)
    cohort = design.baseline * (n_periods + 1) + design.first_switch
    members = switch_cells
    s_count = _cohort_counts(cohort[members],
                             None if design.cluster is None else design.cluster[members],
                             cohort_size)
    s_total_weight = np.bincount(cohort[members], weights=s_weight[members],
                                 minlength=cohort_size)
    s_total_change = np.bincount(cohort[members], weights=s_change[members],
                                 minlength=cohort_size)
    with np.errstate(divide="ignore", invalid="ignore"):
        s_mean = s_total_change / s_total_weight
    level_of, period_of = design.baseline, safe_period
    sw_expected, sw_factor, sw_keep = _demeaning(
        s_count[cohort], s_mean[cohort], union_count[level_of, period_of],
        union_mean[level_of, period_of])

    # the influence functions
    window_ok = lag <= design.last_control
    influence = np.zeros(n_groups)
    influence_var = np.zeros(n_groups)
    own = np.where(used, switch_weight * np.nan_to_num(switch_change), 0.0)
    own_var = np.where(used & sw_keep,
                       switch_weight * sw_factor * (np.nan_to_num(switch_change) - sw_expected),
                       0.0)
    used_cells = np.zeros((n_groups, n_periods), dtype=bool)
    used_cells[rows[switch_cells], period[switch_cells]] = True
    for level, start, stop in design.levels:
        last = int(design.last_control[start])
        if lag > last:
            continue
        window = slice(lag, last + 1)
        weights_level = ratio[level, window]
        var_weights = weights_level * c_factor[level, window] * c_keep[level, window]
        compare = control_change[start:stop, window] @ weights_level
        compare_var = (control_change[start:stop, window] @ var_weights
                       - control_weight[start:stop, window] @ (var_weights
                                                               * c_expected[level, window]))
        influence[start:stop] = own[start:stop] - compare
        influence_var[start:stop] = own_var[start:stop] - compare_var
        used_cells[start:stop, window] |= (control_cells[start:stop, window]
                                           & (weights_level > 0)[None, :])
    influence = np.where(window_ok, scale * influence, 0.0)
    influence_var = np.where(window_ok, scale * influence_var, 0.0)
    return SideEffect(total, int(used.sum()), influence, influence_var, used, period,
                      used_cells)
