r"""Confidence sets for :math:`\theta = l'\tau_{post}` under the HonestDiD restriction sets.

:math:`\beta = \tau + \delta` with :math:`\tau_{pre} = 0`; the trend :math:`\delta` is
restricted to

* :math:`\Delta^{SD}(M)`: :math:`|(\delta_{t+1}-\delta_t) - (\delta_t-\delta_{t-1})| \le M`
  (second differences, :math:`\delta_0 = 0` at the reference period), and
* :math:`\Delta^{RM}(\bar M)`: every post-period first difference is at most :math:`\bar M`
  times the largest pre-period first difference, a union over the period :math:`s` and the
  sign of that largest difference of the polyhedra :math:`\Delta^{RM}_{s,\pm}(\bar M)`.

The confidence sets invert the tests of :mod:`evaluation.inference.honest_arp` on a grid of
:math:`\theta` (``computeConditionalCS_DeltaSD`` / ``computeConditionalCS_DeltaRM`` of the R
package ``HonestDiD``, with its default grids).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import linprog

from evaluation.inference.honest_arp import (
    accept_on_grid,
    least_favorable_cv,
    test_no_nuisance,
    test_nuisance,
)
from evaluation.inference.honest_flci import optimal_flci


def sd_matrix(num_pre: int, num_post: int) -> np.ndarray:
    r"""Return ``A`` with :math:`\Delta^{SD}(M) = \{\delta: A\delta \le M\}`."""
    total = num_pre + num_post
    rows = np.zeros((total - 1, total + 1))
    for r in range(total - 1):
        rows[r, r:r + 3] = (1.0, -2.0, 1.0)
    rows = np.delete(rows, num_pre, axis=1)
    return np.vstack([rows, -rows])


def rm_matrix(num_pre: int, num_post: int, mbar: float, s: int, positive: bool) -> np.ndarray:
    r"""Return ``A`` with :math:`\Delta^{RM}_{s,\pm}(\bar M) = \{\delta: A\delta \le 0\}`.

    ``s`` in :math:`\{-(T_{pre}-1), \dots, 0\}` names the pre-period first difference
    :math:`\delta_s - \delta_{s-1}` that is the largest in absolute value (``positive``: it
    is positive).
    """
    total = num_pre + num_post
    first = np.zeros((total, total + 1))
    for r in range(total):
        first[r, r:r + 2] = (-1.0, 1.0)
    v = np.zeros(total + 1)
    v[num_pre + s - 1:num_pre + s + 1] = (-1.0, 1.0)
    if not positive:
        v = -v
    bound = np.vstack([np.tile(v, (num_pre, 1)), np.tile(mbar * v, (num_post, 1))])
    a = np.vstack([first - bound, -first - bound])
    a = a[(a**2).sum(axis=1) > 1e-10]
    return np.delete(a, num_pre, axis=1)


def _post_rows(a: np.ndarray, num_pre: int) -> np.ndarray:
    return np.flatnonzero((a[:, num_pre:] != 0).any(axis=1))


def identified_set(a: np.ndarray, d: np.ndarray, beta: np.ndarray, num_pre: int,
                   l_vec: np.ndarray) -> tuple[float, float]:
    r"""Return the identified set of :math:`l'\tau_{post}` when :math:`\delta \in \{A\delta\le d\}`.

    Notes
    -----
    :math:`[l'\beta_{post} - \max l'\delta_{post},\ l'\beta_{post} - \min l'\delta_{post}]`
    over :math:`A\delta \le d,\ \delta_{pre} = \beta_{pre}` (two linear programs).
    """
    n = len(beta)
    f = np.r_[np.zeros(num_pre), l_vec]
    eq = np.eye(n)[:num_pre]
    point = float(l_vec @ beta[num_pre:])
    out = []
    for sign in (-1.0, 1.0):
        res = linprog(sign * f, A_ub=a, b_ub=d, A_eq=eq, b_eq=beta[:num_pre],
                      bounds=[(None, None)] * n, method="highs")
        out.append(point + (sign * res.fun if res.success else 0.0))
    return out[0], out[1]


def _theta_direction(l_vec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``Gamma`` (first row ``l``, then unit rows) so that ``Gamma tau = (theta, nuisance)``."""
    n = len(l_vec)
    drop = int(np.argmax(np.abs(l_vec)))
    gamma = np.zeros((n, n))
    gamma[0] = l_vec
    keep = [i for i in range(n) if i != drop]
    for row, col in enumerate(keep, start=1):
        gamma[row, col] = 1.0
    return gamma, np.linalg.inv(gamma)


def polyhedron_accept(betahat: np.ndarray, sigma: np.ndarray, num_pre: int, num_post: int,
                      l_vec: np.ndarray, a: np.ndarray, d: np.ndarray, grid: np.ndarray,
                      alpha: float, hybrid: dict[str, Any], rows: np.ndarray | None,
                      seed: int, step: int) -> np.ndarray:
    r"""Which grid values of :math:`\theta` the (hybrid) conditional test accepts.

    One post period: moments :math:`A(\hat\beta - \theta e_{post}) \le d` without nuisance.
    Several: with :math:`\Gamma` mapping :math:`\tau_{post}` to :math:`(\theta, \gamma)`, the
    moments are :math:`Y - \theta\,(A\Gamma^{-1})_{\cdot 1} - (A\Gamma^{-1})_{\cdot,-1}\gamma
    \le 0` with :math:`Y = A\hat\beta - d` and nuisance :math:`\gamma`.
    """
    hybrid = dict(hybrid)
    if num_post == 1:
        if hybrid["flag"] == "LF":
            hybrid["lf_cv"] = least_favorable_cv(None, a @ sigma @ a.T, hybrid["kappa"],
                                                 seed=seed)
        e_post = np.zeros(len(betahat))
        e_post[num_pre] = 1.0

        def test(i: int) -> bool:
            return test_no_nuisance(betahat - grid[i] * e_post, sigma, a, d, alpha, hybrid)

        return accept_on_grid(test, len(grid), step)
    _, gamma_inv = _theta_direction(l_vec)
    a_g = a[:, num_pre:] @ gamma_inv
    a_one, x = a_g[:, 0], a_g[:, 1:]
    y = a @ betahat - d
    sigma_y = a @ sigma @ a.T
    rows = np.arange(len(y)) if rows is None else rows
    if hybrid["flag"] == "LF":
        hybrid["lf_cv"] = least_favorable_cv(x[rows], sigma_y[np.ix_(rows, rows)],
                                             hybrid["kappa"], seed=seed)
    if hybrid["flag"] == "FLCI":
        vbar = np.linalg.lstsq(a.T, hybrid["flci_vec"], rcond=None)[0]
        hybrid["vbar"] = vbar
        vd, va = float(vbar @ d), float(vbar @ a_one)

    def test_nuis(i: int) -> bool:
        theta = grid[i]
        if hybrid["flag"] == "FLCI":
            half = hybrid["flci_halflength"]
            hybrid["dbar"] = np.array([half - vd + (1 - va) * theta,
                                       half + vd - (1 - va) * theta])
        return test_nuisance(y - a_one * theta, x, sigma_y, alpha, hybrid, rows)

    return accept_on_grid(test_nuis, len(grid), step)


def _sd_theta(sigma: np.ndarray, num_pre: int, l_vec: np.ndarray) -> float:
    return float(np.sqrt(l_vec @ sigma[num_pre:, num_pre:] @ l_vec))


def conditional_cs_sd(betahat: np.ndarray, sigma: np.ndarray, num_pre: int, num_post: int,
                      l_vec: np.ndarray, m: float, *, alpha: float = 0.05,
                      hybrid_flag: str = "FLCI", hybrid_kappa: float | None = None,
                      grid_points: int = 1000, grid_lb: float | None = None,
                      grid_ub: float | None = None, seed: int = 0, step: int = 10
                      ) -> tuple[np.ndarray, np.ndarray]:
    r"""Conditional (``"ARP"``) or hybrid (``"FLCI"``, ``"LF"``) set under :math:`\Delta^{SD}(M)`.

    Returns the grid of :math:`\theta` and a boolean acceptance vector.

    Notes
    -----
    Moments :math:`A^{SD}\delta \le M` (only those involving post periods enter the LP when
    there are several post periods). Default grid: the level-:math:`\kappa` FLCI for the
    FLCI hybrid, otherwise the identified set at :math:`\beta = 0` widened by
    :math:`20\,\sigma_\theta` on both sides (as ``HonestDiD``).
    """
    kappa = alpha / 10 if hybrid_kappa is None else hybrid_kappa
    a = sd_matrix(num_pre, num_post)
    d = np.full(a.shape[0], float(m))
    hybrid: dict[str, Any] = {"flag": hybrid_flag, "kappa": kappa}
    if hybrid_flag == "FLCI":
        flci = optimal_flci(betahat, sigma, num_pre, num_post, l_vec, m, kappa)
        hybrid.update(flci_vec=flci.weights, flci_l=flci.weights,
                      flci_halflength=flci.half_length)
        grid_lb = flci.lower if grid_lb is None else grid_lb
        grid_ub = flci.upper if grid_ub is None else grid_ub
    elif grid_lb is None or grid_ub is None:
        lo, hi = identified_set(a, d, np.zeros(len(betahat)), num_pre, l_vec)
        sd = _sd_theta(sigma, num_pre, l_vec)
        grid_lb = lo - 20 * sd if grid_lb is None else grid_lb
        grid_ub = hi + 20 * sd if grid_ub is None else grid_ub
    grid = np.linspace(grid_lb, grid_ub, grid_points)
    rows = _post_rows(a, num_pre) if num_post > 1 else None
    accept = polyhedron_accept(betahat, sigma, num_pre, num_post, l_vec, a, d, grid, alpha,
                               hybrid, rows, seed, step)
    return grid, accept


def conditional_cs_rm(betahat: np.ndarray, sigma: np.ndarray, num_pre: int, num_post: int,
                      l_vec: np.ndarray, mbar: float, *, alpha: float = 0.05,
                      hybrid_flag: str = "LF", hybrid_kappa: float | None = None,
                      grid_points: int = 1000, grid_lb: float | None = None,
                      grid_ub: float | None = None, seed: int = 0, step: int = 10
                      ) -> tuple[np.ndarray, np.ndarray]:
    r"""Conditional (``"ARP"``) or hybrid (``"LF"``) set under :math:`\Delta^{RM}(\bar M)`.

    Notes
    -----
    The union over :math:`s \in \{-(T_{pre}-1),\dots,0\}` and both signs of the sets for
    :math:`\Delta^{RM}_{s,\pm}(\bar M) = \{\delta: |\delta_{t+1}-\delta_t| \le
    \bar M\,(\pm(\delta_{s}-\delta_{s-1}))\ \forall t \ge 0,\ |\delta_{r+1}-\delta_r| \le
    \pm(\delta_{s}-\delta_{s-1})\ \forall r < 0\}`, each at level :math:`\alpha`.
    Default grid (``HonestDiD`` 0.2.6): :math:`l'\hat\beta_{post} \pm (\bar M\,
    \sum_t t|l_t|\,\max_r|\Delta\hat\beta_r| + 20\sigma_\theta)` with the pre-period first
    differences taken against the reference period's zero.
    """
    if hybrid_flag not in ("LF", "ARP"):
        raise ValueError(f"hybrid_flag must be 'LF' or 'ARP' for relative magnitudes, "
                         f"not {hybrid_flag!r}.")
    kappa = alpha / 10 if hybrid_kappa is None else hybrid_kappa
    if grid_lb is None or grid_ub is None:
        sd = _sd_theta(sigma, num_pre, l_vec)
        max_pre = float(np.max(np.abs(np.diff(np.r_[betahat[:num_pre], 0.0]))))
        centre = float(betahat[num_pre:] @ l_vec)
        half = mbar * float(np.arange(1, num_post + 1) @ np.abs(l_vec)) * max_pre + 20 * sd
        grid_lb = centre - half if grid_lb is None else grid_lb
        grid_ub = centre + half if grid_ub is None else grid_ub
    grid = np.linspace(grid_lb, grid_ub, grid_points)
    accept = np.zeros(grid_points, dtype=bool)
    hybrid = {"flag": hybrid_flag, "kappa": kappa}
    for s in range(-(num_pre - 1), 1):
        for positive in (True, False):
            a = rm_matrix(num_pre, num_post, mbar, s, positive)
            rows = _post_rows(a, num_pre)
            if num_post == 1:
                a, rows = a[rows], None
            d = np.zeros(a.shape[0])
            accept |= polyhedron_accept(betahat, sigma, num_pre, num_post, l_vec, a, d, grid,
                                        alpha, hybrid, rows, seed, step)
    return grid, accept


def interval_of(grid: np.ndarray, accept: np.ndarray) -> tuple[float, float]:
    """Smallest and largest accepted grid value (NaN, NaN for an empty set)."""
    if not accept.any():
        return float("nan"), float("nan")
    return float(grid[accept].min()), float(grid[accept].max())
