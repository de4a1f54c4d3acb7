r"""Weighting instead of matching: inverse probability weights and entropy balancing (ATT)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import linprog, minimize, root

from evaluation.errors import InfeasibleBalanceError
from evaluation.matching._weights import rescale_controls
from evaluation.matching.distance import independent_columns

#: Largest standardised moment imbalance accepted from entropy balancing.
BALANCE_TOLERANCE = 1e-10


def ipw_att_weights(score: np.ndarray, treated: np.ndarray) -> np.ndarray:
    r"""Inverse probability weights for the ATT.

    Notes
    -----
    Treated units get 1 and controls :math:`\hat e_i/(1-\hat e_i)`, rescaled to sum to the
    number of controls; the reweighted controls then stand for the treated population.
    """
    weights = np.where(treated, 1.0, score / (1.0 - score))
    return rescale_controls(weights, ~treated)


def entropy_balance(moments: np.ndarray, treated: np.ndarray, names: Sequence[str],
                    base_weights: np.ndarray | None = None, max_iter: int = 200
                    ) -> np.ndarray:
    r"""Entropy-balancing weights for the controls (Hainmueller 2012).

    Parameters
    ----------
    moments
        ``(n, k)`` functions of the covariates whose control means must equal the treated
        means (the covariates, and their squares for second moments).
    treated
        Boolean treatment indicator.
    names
        Name of every moment column, for messages.
    base_weights
        Base (sampling) weights :math:`q_i`; treated means are weighted by them too.
    max_iter
        Trust-region Newton iterations allowed (the root polish that follows them has its
        own limit).

    Returns
    -------
    numpy.ndarray
        Weight of every unit: 1 (times the base weight) for treated units; control weights
        sum to the number of controls.

    Notes
    -----
    The weights minimise the Kullback-Leibler divergence :math:`\sum_i w_i\log(w_i/q_i)`
    subject to :math:`\sum_{i\in C} w_i c_i = \bar c_T` and :math:`\sum_{i\in C} w_i = 1`.
    Their solution is :math:`w_i \propto q_i\exp(\lambda' c_i)` where :math:`\lambda` minimises
    the convex dual :math:`\log\sum_{i\in C} q_i \exp(\lambda'(c_i - \bar c_T))`. Moments are
    standardised for the solve (scipy's trust-region Newton with the exact Hessian, then a
    root search on the dual's gradient, which stays accurate where the value no longer
    resolves progress), linearly
    dependent moment columns are dropped, and the result is accepted when every standardised
    imbalance is below :data:`BALANCE_TOLERANCE`.

    Raises
    ------
    InfeasibleBalanceError
        If no positive weights reproduce the treated moments (a target outside the range or
        convex hull of the controls) or the solver does not reach the tolerance. Weights that
        miss the tolerance are never returned: the message then gives the iterations used
        out of ``max_iter``, what both solver phases reported, the worst-balanced moment and
        whether the iteration limit or the problem stopped the solver.
    """
    q = np.ones(len(treated)) if base_weights is None else np.asarray(base_weights, float)
    target = np.average(moments[treated], axis=0, weights=q[treated])
    controls = moments[~treated]
    qc = q[~treated] / q[~treated].sum()
    _check_ranges(controls, target, names)
    scale = controls.std(axis=0)
    scale[scale == 0] = 1.0
    centred = (controls - target) / scale
    independent = independent_columns(centred)
    a = centred[:, independent]

    def dual(lam: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        eta = a @ lam
        top = eta.max()
        p = qc * np.exp(eta - top)
        total = p.sum()
        w = p / total
        mean = w @ a
        return float(np.log(total) + top), mean, (a * w[:, None]).T @ a - np.outer(mean, mean)

    fit = minimize(lambda lam: dual(lam)[0], np.zeros(a.shape[1]), jac=lambda lam: dual(lam)[1],
                   hess=lambda lam: dual(lam)[2], method="trust-exact",
                   options={"gtol": BALANCE_TOLERANCE, "maxiter": max_iter})
    # Near the optimum the dual's value no longer resolves progress; finish on its gradient.
    polish = root(lambda lam: dual(lam)[1], fit.x, jac=lambda lam: dual(lam)[2], method="hybr",
                  options={"xtol": 1e-15})
    lam = polish.x if np.abs(dual(polish.x)[1]).max() < np.abs(dual(fit.x)[1]).max() else fit.x
    eta = a @ lam
    w = qc * np.exp(eta - eta.max())
    w /= w.sum()
    imbalance = np.abs(w @ centred)
    if not np.all(imbalance <= BALANCE_TOLERANCE):
        worst = int(np.argmax(imbalance))
        _explain_infeasible(controls, target, names)
        advice = ("The iteration limit was reached: a larger max_iter may converge; otherwise "
                  "drop or coarsen that moment, or use matching." if fit.nit >= max_iter else
                  "The targets are (nearly) outside what the controls can reach; drop or "
                  "coarsen that moment, or use matching.")
        raise InfeasibleBalanceError(
            f"entropy balancing did not converge: after {fit.nit} of at most {max_iter} "
            f"trust-region Newton iterations ({_said(fit.message)}) and a root polish of "
            f"{polish.nfev} evaluations ({_said(polish.message)}), the reweighted "
            f"control mean of {names[worst]!r} is still {imbalance[worst]:.2e} standard "
            f"deviations from the treated mean (tolerance {BALANCE_TOLERANCE:g}). {advice}")
    weights = np.where(treated, q, 0.0)
    weights[~treated] = w * (~treated).sum()
    return weights


def _said(message: str) -> str:
    """Return a solver's message on one line without its final full stop."""
    return " ".join(str(message).split()).rstrip(".")


def _check_ranges(controls: np.ndarray, target: np.ndarray, names: Sequence[str]) -> None:
    low, high = controls.min(axis=0), controls.max(axis=0)
    outside = (target < low) | (target > high)
    outside |= (low == high) & (target != low)
    if outside.any():
        j = int(np.argmax(outside))
        raise InfeasibleBalanceError(
            f"entropy balancing is infeasible: the treated mean of {names[j]!r} "
            f"({target[j]:.6g}) lies outside the range of the controls "
            f"[{low[j]:.6g}, {high[j]:.6g}], so no weighting of controls can reproduce it. "
            "Drop that covariate from the balance constraints or restrict the treated group.")


def _explain_infeasible(controls: np.ndarray, target: np.ndarray, names: Sequence[str]) -> None:
    """Raise a specific error when the treated moments lie outside the controls' convex hull."""
    n = len(controls)
    a_eq = np.vstack([controls.T, np.ones(n)])
    b_eq = np.append(target, 1.0)
    hull = linprog(np.zeros(n), A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs")
    if hull.status == 2:
        raise InfeasibleBalanceError(
            "entropy balancing is infeasible: the treated means of "
            f"{', '.join(map(repr, names))} lie outside the convex hull of the controls' "
            "values, so no non-negative weights reproduce them jointly. Balance fewer moments "
            "or restrict the treated group to units with comparable controls.")
