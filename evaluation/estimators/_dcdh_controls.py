r"""Covariates ("controls") of the de Chaisemartin-D'Haultfoeuille estimator (private).

As ``did_multiplegt_dyn``: within each baseline level :math:`d`, the first differences of
the outcome of not-yet-switched units are regressed on the first differences of the
controls with period fixed effects (weights :math:`N_{g,t}`),

.. math::

    \hat\theta_d = \Big(\sum N_{g,t} \tilde{\Delta X}_{g,t} \tilde{\Delta X}_{g,t}'\Big)^{+}
    \sum N_{g,t} \tilde{\Delta X}_{g,t} \Delta Y_{g,t}, \qquad t < F_g,

with :math:`\tilde{\Delta X}` demeaned by period within the level. Every long difference
of the outcome is then replaced by :math:`Y_{t} - Y_{t-\ell} - \hat\theta_d'(X_t -
X_{t-\ell})` (placebos alike), and the variance influence function of each estimate loses
the term for the estimation of :math:`\hat\theta_d`:
:math:`U^{var}_g \leftarrow U^{var}_g - \sum_j M_j\,[\sum_k (\hat D_d^{+})_{jk}\,
\iota_{g,k} - \hat\theta_{d,j}]`, where :math:`M_j` is the estimate's derivative in
:math:`\theta_j`, :math:`\hat D_d^{+}` the pseudo-inverse of the regression's moment
matrix scaled by the number of not-yet-switched observations and of units, and
:math:`\iota_{g,k}` unit :math:`g`'s sum of its residualised moments.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evaluation.errors import InvalidOptionError
from evaluation.estimators._dcdh_core import lagged_difference, placebo_difference
from evaluation.estimators._dcdh_design import SwitchDesign


@dataclass(frozen=True)
class ControlFit:
    r"""First stage of the controls, by baseline level.

    Attributes
    ----------
    values
        ``(G, T, k)`` controls in design order (NaN where unobserved).
    theta
        ``(2, k)`` :math:`\hat\theta_d` by baseline level (0 where a level is absent).
    inverse_moments
        ``(2, k, k)`` :math:`\\hat D_d^{+}` (scaled pseudo-inverse of the moment matrix).
    unit_moments
        ``(G, k)`` :math:`\\iota_{g,k}` of each unit (0 outside its level's sample).
    """

    values: np.ndarray
    theta: np.ndarray
    inverse_moments: np.ndarray
    unit_moments: np.ndarray

    def adjusted(self, design: SwitchDesign, change: np.ndarray, control_change: np.ndarray
                 ) -> np.ndarray:
        r"""Return :math:`\Delta Y - \hat\theta_{d(g)}'\Delta X` (``(G, T, k)`` changes)."""
        return change - np.einsum("gtk,gk->gt", control_change, self.theta[design.baseline])

    def correction(self, design: SwitchDesign, derivative: np.ndarray, level: int,
                   only_level: bool) -> np.ndarray:
        r"""Return ``(G,)`` :math:`\sum_j M_j [\sum_k \hat D^{+}_{jk}\iota_{g,k} - \hat\theta_j]`.

        ``only_level`` restricts the term to the level's units (placebos); effects apply
        it to every unit, as ``did_multiplegt_dyn`` does.
        """
        members = (design.baseline == level) & (design.first_switch >= 2)
        moments = np.where(members[:, None], self.unit_moments, 0.0)
        brackets = moments @ self.inverse_moments[level].T - self.theta[level][None, :]
        out = brackets @ derivative
        if only_level:
            out = np.where(design.baseline == level, out, 0.0)
        return out


def control_values(panel_wide: list[np.ndarray], design: SwitchDesign) -> np.ndarray:
    """Stack wide control arrays (panel unit order) into ``(G, T, k)`` in design order."""
    stacked = np.stack([w[design.rows][:, :design.n_periods] for w in panel_wide], axis=2)
    return np.where(~np.isnan(design.treatment)[:, :, None], stacked, np.nan)


def fit_controls(design: SwitchDesign, values: np.ndarray) -> ControlFit:
    r"""Estimate :math:`\hat\theta_d` and the pieces of the variance correction."""
    n_groups, n_periods, k = values.shape
    grid = np.arange(n_periods)[None, :]
    change = lagged_difference(design.outcome, 1)
    x_change = np.full(values.shape, np.nan)
    x_change[:, 1:] = values[:, 1:] - values[:, :-1]
    not_switched = grid < design.first_switch[:, None]
    sample = not_switched & ~np.isnan(change) & ~np.isnan(x_change).any(axis=2)
    weight = design.cell_weight
    theta = np.zeros((2, k))
    inverse = np.zeros((2, k, k))
    moments = np.zeros((n_groups, k))
    latest = int(design.first_switch.max())
    scale_rows = (not_switched & ~np.isnan(change) & (grid <= latest - 1))
    rsum = float(np.where(scale_rows, weight, 0.0).sum())
    for level, start, stop in design.levels:
        block = slice(start, stop)
        inside = sample[block]
        w = np.where(inside, weight[block], 0.0)
        dx = np.where(inside[:, :, None], x_change[block], 0.0)
        dy = np.where(inside, change[block], 0.0)
        totals = w.sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            means = np.einsum("gt,gtk->tk", w, dx) / totals[:, None]
        resid = np.where(inside[:, :, None], dx - np.nan_to_num(means)[None, :, :], 0.0)
        weighted = w[:, :, None] * resid
        moment = np.einsum("gtk,gtj->kj", weighted, resid)
        pinv = np.linalg.pinv(moment)
        theta[level] = pinv @ np.einsum("gtk,gt->k", weighted, dy)
        if abs(np.linalg.det(moment)) <= 1e-16:
            raise InvalidOptionError(
                "the controls are collinear (or do not vary over time) among the "
                f"not-yet-switched units with baseline status {level}; drop or change them.")
        inverse[level] = pinv * rsum * n_groups
        # period effects of the regression, its fitted changes, and each unit's moments
        residual_y = dy - np.einsum("gtk,k->gt", dx, theta[level])
        with np.errstate(divide="ignore", invalid="ignore"):
            period_effect = (w * residual_y).sum(axis=0) / totals
        fitted = np.einsum("gtk,k->gt", np.nan_to_num(x_change[block]), theta[level]) \
            + np.nan_to_num(period_effect)[None, :]
        eligible = not_switched[block] & ~np.isnan(change[block])
        counts = _counts(eligible, design, start)
        fitted = np.where(counts[None, :] >= 2, fitted, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            factor = np.where(counts >= 2, np.sqrt(counts / (counts - 1)), 1.0)
        last = int(design.first_switch[block].max()) - 1
        denominator = float(np.where(eligible & (grid <= last) & (grid >= 1),
                                     weight[block], 0.0).sum())
        window = (grid >= 1) & (grid <= design.first_switch[block][:, None] - 1) & inside
        summand = np.where(window[:, :, None],
                           weighted * factor[None, :, None]
                           * (np.nan_to_num(change[block]) - fitted)[:, :, None], 0.0)
        moments[block] = summand.sum(axis=1) / denominator
    return ControlFit(values, theta, inverse, moments)


def _counts(mask: np.ndarray, design: SwitchDesign, start: int) -> np.ndarray:
    """Count, per period, the rows (or clusters) of a level block where ``mask``.

    With clusters ``did_multiplegt_dyn`` counts the distinct clusters among these cells of
    the period plus one when some unit-period of the period is not among them (polars'
    ``n_unique`` counts the missing label of the other cells); kept for agreement.
    """
    rows = mask.sum(axis=0)
    if design.cluster is None:
        return rows.astype(float)
    codes = design.cluster[start:start + mask.shape[0]]
    starts = np.flatnonzero(np.concatenate(([True], codes[1:] != codes[:-1])))
    distinct = (np.add.reduceat(mask.astype(np.int32), starts, axis=0) > 0).sum(axis=0)
    return (distinct + (rows < design.n_groups)).astype(float)


def control_changes(values: np.ndarray, lag: int, placebo: bool) -> np.ndarray:
    r"""``(G, T, k)`` :math:`X_t - X_{t-\ell}` (effects) or :math:`X_{t-2\ell} - X_{t-\ell}`."""
    make = placebo_difference if placebo else lagged_difference
    return np.stack([make(values[:, :, j], lag) for j in range(values.shape[2])], axis=2)
