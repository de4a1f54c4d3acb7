r"""Sensitivity of event-study conclusions to violations of parallel trends (HonestDiD).

Rambachan & Roth (2023), "A More Credible Approach to Parallel Trends", Review of Economic
Studies 90(5). An event study :math:`\hat\beta = (\hat\beta_{pre}, \hat\beta_{post})` with
covariance :math:`\Sigma` estimates :math:`\beta = \tau + \delta`, where :math:`\tau_{pre}=0`
and :math:`\delta` is the difference in trends. Instead of assuming :math:`\delta_{post}=0`,
:math:`\delta` is restricted to a set that the pre-periods inform:

* relative magnitudes :math:`\Delta^{RM}(\bar M)`: post-period changes in the trend
  difference are at most :math:`\bar M` times the largest pre-period change;
* smoothness :math:`\Delta^{SD}(M)`: the slope of the trend difference changes by at most
  :math:`M` per period (:math:`M = 0`: a linear trend extrapolated from the pre-periods).

Robust confidence sets for :math:`\theta = l'\tau_{post}` are reported over a grid of
:math:`M` or :math:`\bar M`, together with the *breakdown value*: the smallest :math:`M` or
:math:`\bar M` at which the set contains zero. :func:`sensitivity` runs this on an
:class:`~evaluation.estimators.results.EstimationResult` event study; the array-level
functions mirror the R package ``HonestDiD`` (``createSensitivityResults``,
``createSensitivityResults_relativeMagnitudes``, ``constructOriginalCS``,
``findOptimalFLCI``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
from scipy.special import ndtri

from evaluation.errors import InvalidOptionError
from evaluation.inference.honest_delta import (
    conditional_cs_rm,
    conditional_cs_sd,
    interval_of,
    sd_matrix,
)
from evaluation.inference.honest_flci import FLCIResult, optimal_flci
from evaluation.inference.honest_result import (
    HonestResult,
    event_study_inputs,
    sensitivity_plot,
)

__all__ = [
    "FLCIResult",
    "HonestResult",
    "breakdown_value",
    "conditional_cs_rm",
    "conditional_cs_sd",
    "optimal_flci",
    "original_ci",
    "sd_m_upper_bound",
    "sensitivity",
    "sensitivity_plot",
    "sensitivity_rm",
    "sensitivity_sd",
]

SD_METHODS = {"FLCI": None, "Conditional": "ARP", "C-F": "FLCI", "C-LF": "LF"}
RM_METHODS = {"Conditional": "ARP", "C-LF": "LF"}


def _check(betahat: np.ndarray, sigma: np.ndarray, num_pre: int, num_post: int,
           l_vec: np.ndarray | Sequence[float] | None) -> tuple[np.ndarray, np.ndarray,
                                                                np.ndarray]:
    betahat = np.asarray(betahat, dtype=float).ravel()
    sigma = np.asarray(sigma, dtype=float)
    if num_pre < 1 or num_post < 1:
        raise InvalidOptionError(f"Need at least one pre-period and one post-period "
                                 f"coefficient, got {num_pre} and {num_post}.")
    if betahat.size != num_pre + num_post or sigma.shape != (betahat.size, betahat.size):
        raise InvalidOptionError(f"betahat has {betahat.size} entries and sigma shape "
                                 f"{sigma.shape}; expected {num_pre} + {num_post}.")
    if not np.all(np.isfinite(sigma)) or not np.all(np.isfinite(betahat)):
        raise InvalidOptionError("betahat and sigma must be finite.")
    l_vec = (np.eye(num_post)[0] if l_vec is None
             else np.asarray(l_vec, dtype=float).ravel())
    if l_vec.size != num_post:
        raise InvalidOptionError(f"l_vec has {l_vec.size} entries, expected {num_post}.")
    return betahat, (sigma + sigma.T) / 2, l_vec


def original_ci(betahat: np.ndarray, sigma: np.ndarray, num_pre: int, num_post: int,
                l_vec: np.ndarray | None = None, alpha: float = 0.05) -> tuple[float, float]:
    r"""Confidence interval for :math:`\theta = l'\tau_{post}` under exact parallel trends.

    Notes
    -----
    :math:`l'\hat\beta_{post} \pm z_{1-\alpha/2}\sqrt{l'\Sigma_{post}l}`
    (``HonestDiD``'s ``constructOriginalCS``).
    """
    betahat, sigma, l_vec = _check(betahat, sigma, num_pre, num_post, l_vec)
    centre = float(l_vec @ betahat[num_pre:])
    half = float(ndtri(1 - alpha / 2) * np.sqrt(l_vec @ sigma[num_pre:, num_pre:] @ l_vec))
    return centre - half, centre + half


def sd_m_upper_bound(betahat: np.ndarray, sigma: np.ndarray, num_pre: int,
                     alpha: float = 0.05) -> float:
    r"""Upper bound for :math:`M` from the pre-periods (``DeltaSD_upperBound_Mpre``).

    Notes
    -----
    :math:`\max_j (a_j'\hat\beta_{pre} + z_{1-\alpha}\sqrt{a_j'\Sigma_{pre}a_j})` over the
    second differences :math:`a_j` (both signs) of the pre-period coefficients followed by
    the reference period's zero; it sets the default :math:`M` grid (with one pre-period:
    its standard error).
    """
    betahat = np.asarray(betahat, float)
    sigma = np.asarray(sigma, float)
    if num_pre < 2:
        return float(np.sqrt(sigma[0, 0]))
    a = sd_matrix(num_pre, 0)
    se = np.sqrt(np.einsum("ij,jk,ik->i", a, sigma[:num_pre, :num_pre], a))
    return float(np.max(a @ betahat[:num_pre] + ndtri(1 - alpha) * se))


def _sd_interval(betahat: np.ndarray, sigma: np.ndarray, num_pre: int, num_post: int,
                 l_vec: np.ndarray, m: float, method: str, alpha: float, grid_points: int,
                 seed: int, step: int) -> tuple[float, float]:
    if method == "FLCI":
        res = optimal_flci(betahat, sigma, num_pre, num_post, l_vec, m, alpha)
        return res.lower, res.upper
    grid, accept = conditional_cs_sd(betahat, sigma, num_pre, num_post, l_vec, m, alpha=alpha,
                                     hybrid_flag=SD_METHODS[method], grid_points=grid_points,
                                     seed=seed, step=step)
    return interval_of(grid, accept)


def _rm_interval(betahat: np.ndarray, sigma: np.ndarray, num_pre: int, num_post: int,
                 l_vec: np.ndarray, mbar: float, method: str, alpha: float, grid_points: int,
                 seed: int, step: int) -> tuple[float, float]:
    grid, accept = conditional_cs_rm(betahat, sigma, num_pre, num_post, l_vec, mbar,
                                     alpha=alpha, hybrid_flag=RM_METHODS[method],
                                     grid_points=grid_points, seed=seed, step=step)
    return interval_of(grid, accept)


def sensitivity_sd(betahat: np.ndarray, sigma: np.ndarray, num_pre: int, num_post: int,
                   m_grid: Sequence[float] | np.ndarray | None = None, *,
                   l_vec: np.ndarray | None = None, method: str = "FLCI",
                   alpha: float = 0.05, grid_points: int = 1000, seed: int = 0,
                   step: int = 10) -> pd.DataFrame:
    r"""Robust confidence sets under :math:`\Delta^{SD}(M)` for each ``M`` in ``m_grid``.

    Parameters
    ----------
    betahat, sigma
        ``num_pre`` pre-period then ``num_post`` post-period coefficients (reference period
        excluded) and their covariance.
    m_grid
        Values of :math:`M` (default: 10 values from 0 to :func:`sd_m_upper_bound`).
    l_vec
        Weights of :math:`\theta = l'\tau_{post}` (default: the first post period).
    method
        ``"FLCI"`` (default), ``"Conditional"``, ``"C-F"`` (FLCI hybrid) or ``"C-LF"``.
    grid_points, step
        Grid of :math:`\theta` for the conditional sets and its coarse step
        (:func:`~evaluation.inference.honest_arp.accept_on_grid`).
    seed
        Seed of the least-favourable critical value (``"C-LF"``).

    Returns
    -------
    pandas.DataFrame
        Columns ``lb, ub, method, delta, M``.

    Notes
    -----
    FLCI: :math:`v'\hat\beta \pm \chi` minimising :math:`\chi = h\,cv_\alpha(\bar b/h)` over
    affine estimators (:func:`~evaluation.inference.honest_flci.optimal_flci`); the other
    methods invert the conditional / hybrid moment-inequality tests.
    """
    if method not in SD_METHODS:
        raise InvalidOptionError(f"method must be one of {sorted(SD_METHODS)}, not {method!r}.")
    betahat, sigma, l_vec = _check(betahat, sigma, num_pre, num_post, l_vec)
    if m_grid is None:
        m_grid = np.linspace(0, sd_m_upper_bound(betahat, sigma, num_pre), 10)
    rows = []
    for m in np.asarray(m_grid, float):
        lb, ub = _sd_interval(betahat, sigma, num_pre, num_post, l_vec, float(m), method,
                              alpha, grid_points, seed, step)
        rows.append({"lb": lb, "ub": ub, "method": method, "delta": "DeltaSD", "M": float(m)})
    return pd.DataFrame(rows)


def sensitivity_rm(betahat: np.ndarray, sigma: np.ndarray, num_pre: int, num_post: int,
                   mbar_grid: Sequence[float] | np.ndarray | None = None, *,
                   l_vec: np.ndarray | None = None, method: str = "C-LF",
                   alpha: float = 0.05, grid_points: int = 1000, seed: int = 0,
                   step: int = 10) -> pd.DataFrame:
    r"""Robust confidence sets under :math:`\Delta^{RM}(\bar M)` for each value in ``mbar_grid``.

    Parameters are those of :func:`sensitivity_sd`; ``method`` is ``"C-LF"`` (default) or
    ``"Conditional"`` and ``mbar_grid`` defaults to 10 values from 0 to 2.

    Returns
    -------
    pandas.DataFrame
        Columns ``lb, ub, method, delta, Mbar``.

    Notes
    -----
    The union over :math:`s` and sign of the conditional / hybrid sets for
    :math:`\Delta^{RM}_{s,\pm}(\bar M)`
    (:func:`~evaluation.inference.honest_delta.conditional_cs_rm`).
    """
    if method not in RM_METHODS:
        raise InvalidOptionError(f"method must be one of {sorted(RM_METHODS)} for relative "
                                 f"magnitudes, not {method!r}.")
    betahat, sigma, l_vec = _check(betahat, sigma, num_pre, num_post, l_vec)
    mbar_grid = np.linspace(0, 2, 10) if mbar_grid is None else mbar_grid
    rows = []
    for mbar in np.asarray(mbar_grid, float):
        lb, ub = _rm_interval(betahat, sigma, num_pre, num_post, l_vec, float(mbar), method,
                              alpha, grid_points, seed, step)
        rows.append({"lb": lb, "ub": ub, "method": method, "delta": "DeltaRM",
                     "Mbar": float(mbar)})
    return pd.DataFrame(rows)


def breakdown_value(betahat: np.ndarray, sigma: np.ndarray, num_pre: int, num_post: int, *,
                    restriction: Literal["rm", "sd"] = "rm", method: str | None = None,
                    l_vec: np.ndarray | None = None, alpha: float = 0.05,
                    upper: float | None = None, tol: float = 1e-3, grid_points: int = 1000,
                    seed: int = 0, step: int = 10,
                    bracket: tuple[float, float] | None = None) -> float:
    r"""Smallest :math:`\bar M` (``"rm"``) or :math:`M` (``"sd"``) whose robust set contains 0.

    Returns 0 when the set already contains zero at 0, NaN when it excludes zero up to
    ``upper`` (default 10 for :math:`\bar M`, 10 times :func:`sd_m_upper_bound` for
    :math:`M`).

    Notes
    -----
    ``bracket`` (``(lo, hi)`` with zero excluded at ``lo`` and covered at ``hi``, e.g. from a
    sensitivity table) replaces the search range. Bisection to ``tol`` (relative to
    ``upper``) on the indicator
    :math:`0 \in CS(M)`, which is monotone because the restriction sets are nested in
    :math:`M`.
    """
    betahat, sigma, l_vec = _check(betahat, sigma, num_pre, num_post, l_vec)
    if restriction == "rm":
        method = method or "C-LF"
        upper = 10.0 if upper is None else upper

        def interval(v: float) -> tuple[float, float]:
            return _rm_interval(betahat, sigma, num_pre, num_post, l_vec, v, method, alpha,
                                grid_points, seed, step)
    elif restriction == "sd":
        method = method or "FLCI"
        upper = 10 * sd_m_upper_bound(betahat, sigma, num_pre) if upper is None else upper

        def interval(v: float) -> tuple[float, float]:
            return _sd_interval(betahat, sigma, num_pre, num_post, l_vec, v, method, alpha,
                                grid_points, seed, step)
    else:
        raise InvalidOptionError(f"restriction must be 'rm' or 'sd', not {restriction!r}.")

    def covers(v: float) -> bool:
        lb, ub = interval(v)
        return bool(np.isnan(lb) or lb <= 0 <= ub)

    if bracket is not None:
        lo, hi = map(float, bracket)
    else:
        if covers(0.0):
            return 0.0
        if not covers(upper):
            return float("nan")
        lo, hi = 0.0, float(upper)
    while hi - lo > tol * upper:
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if covers(mid) else (mid, hi)
    return hi


def sensitivity(result: object, *, restriction: Literal["rm", "sd"] = "rm",
                method: str | None = None, grid: Sequence[float] | np.ndarray | None = None,
                target: str | int | Sequence[float] = "first", alpha: float | None = None,
                grid_points: int = 1000, seed: int = 0, step: int = 10,
                breakdown: bool = True, breakdown_tol: float = 1e-3) -> HonestResult:
    r"""HonestDiD sensitivity analysis of an event-study :class:`EstimationResult`.

    Parameters
    ----------
    result
        An event study with a covariance matrix (CS ``aggregate("event")`` with
        ``base_period="universal"``, Sun–Abraham, or any result whose ``table`` has
        ``event_time`` and ``vcov``). The normalised reference period (estimate 0 without a
        standard error, or absent) is left out; pre-periods are the other negative event
        times and must be consecutive up to the reference period -1.
    restriction
        ``"rm"`` (relative magnitudes, :math:`\bar M`) or ``"sd"`` (smoothness, :math:`M`).
    method
        ``"C-LF"`` or ``"Conditional"`` for ``"rm"``; ``"FLCI"``, ``"Conditional"``, ``"C-F"``
        or ``"C-LF"`` for ``"sd"`` (defaults ``"C-LF"`` and ``"FLCI"`` as ``HonestDiD``).
    grid
        Values of :math:`\bar M` or :math:`M` (defaults as :func:`sensitivity_rm` /
        :func:`sensitivity_sd`).
    target
        :math:`\theta`: ``"first"`` (effect at event time 0), ``"average"`` (mean of the
        post-period effects), an event time, or explicit weights on the post periods.
    alpha
        One minus the coverage (default: the result's).
    breakdown, breakdown_tol
        Also compute the breakdown value by bisection (to ``breakdown_tol`` times the
        search range), starting from the bracket the table gives when zero enters it.

    Returns
    -------
    HonestResult

    Notes
    -----
    See the module docstring; :math:`\theta = l'\tau_{post}` with :math:`l` from ``target``.
    """
    betahat, sigma, num_pre, num_post, post_times = event_study_inputs(result)
    alpha = float(getattr(result, "alpha", 0.05)) if alpha is None else alpha
    if isinstance(target, str):
        if target == "first":
            l_vec = np.eye(num_post)[0]
        elif target == "average":
            l_vec = np.full(num_post, 1.0 / num_post)
        else:
            raise InvalidOptionError(f"target must be 'first', 'average', an event time or "
                                     f"weights, not {target!r}.")
    elif isinstance(target, int | np.integer):
        if int(target) not in post_times:
            raise InvalidOptionError(f"target event time {target} is not a post-period "
                                     f"event time ({post_times[0]}..{post_times[-1]}).")
        l_vec = np.eye(num_post)[post_times.index(int(target))]
    else:
        l_vec = np.asarray(target, dtype=float)
    if restriction == "rm":
        method = method or "C-LF"
        table = sensitivity_rm(betahat, sigma, num_pre, num_post, grid, l_vec=l_vec,
                               method=method, alpha=alpha, grid_points=grid_points,
                               seed=seed, step=step)
    elif restriction == "sd":
        method = method or "FLCI"
        table = sensitivity_sd(betahat, sigma, num_pre, num_post, grid, l_vec=l_vec,
                               method=method, alpha=alpha, grid_points=grid_points,
                               seed=seed, step=step)
    else:
        raise InvalidOptionError(f"restriction must be 'rm' or 'sd', not {restriction!r}.")
    value = None
    if breakdown:
        param = table["Mbar" if restriction == "rm" else "M"].to_numpy(float)
        covered = (table["lb"].isna() | ((table["lb"] <= 0) & (table["ub"] >= 0))).to_numpy()
        bracket = None
        if covered.any() and np.all(np.diff(param) > 0):
            first = int(np.argmax(covered))
            bracket = (param[first - 1], param[first]) if first > 0 else None
            if first == 0 and param[0] == 0:
                value = 0.0
        if value is None:
            value = breakdown_value(betahat, sigma, num_pre, num_post, restriction=restriction,
                                    method=method, l_vec=l_vec, alpha=alpha, tol=breakdown_tol,
                                    grid_points=grid_points, seed=seed, step=step,
                                    bracket=bracket)
    return HonestResult(table=table, original=original_ci(betahat, sigma, num_pre, num_post,
                                                          l_vec, alpha),
                        restriction=restriction, method=method, l_vec=l_vec, alpha=alpha,
                        breakdown=value, num_pre=num_pre, post_times=tuple(post_times),
                        estimator=str(getattr(result, "estimator", "")))
