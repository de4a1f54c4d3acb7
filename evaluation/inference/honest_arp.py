r"""Conditional and hybrid moment-inequality tests behind the HonestDiD confidence sets.

Andrews, Roth & Pakes (2023) test :math:`H_0: \exists \delta \in \Delta,\
\tau_{post}: l'\tau_{post} = \theta` for a polyhedral :math:`\Delta = \{A\delta \le d\}` by
testing moment inequalities :math:`E[Y_\theta] - X\gamma \le 0` with nuisance :math:`\gamma`
(the post-period effects other than :math:`l'\tau`). The statistic is the LP value
:math:`\hat\eta = \min_{\eta,\gamma}\{\eta: Y_\theta - X\gamma \le \eta\,\tilde\sigma\}`, its
critical value the :math:`1-\alpha` quantile of a normal truncated to the interval in which
the optimal LP vertex stays optimal. The hybrids first reject when :math:`\hat\eta` exceeds a
least-favourable critical value (``"LF"``) or :math:`\theta` lies outside a level-:math:`\kappa`
fixed-length interval (``"FLCI"``), and then run the conditional test at level
:math:`(\alpha-\kappa)/(1-\kappa)` with the truncation tightened accordingly. This module
follows the R package ``HonestDiD`` (Rambachan & Roth) line by line where it can; the
confidence set is the set of grid values of :math:`\theta` that are not rejected.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import combinations, pairwise
from typing import Any

import numpy as np
from scipy.optimize import linprog
from scipy.special import ndtr, ndtri

#: Largest number of candidate LP bases enumerated for the least-favourable critical value;
#: beyond it the value is computed with one linear program per draw.
MAX_BASES = 20_000


def truncated_normal_quantile(p: float, lower: float, upper: float, mu: float = 0.0,
                              sd: float = 1.0) -> float:
    r"""``p`` quantile of :math:`N(\mu, sd^2)` truncated to ``[lower, upper]``.

    Notes
    -----
    :math:`q = \mu + sd\,\Phi^{-1}(\Phi(l) + p\,(\Phi(u) - \Phi(l)))` with
    :math:`l = (lower-\mu)/sd`, :math:`u = (upper-\mu)/sd` (``HonestDiD``'s
    ``.norminvp_generalized``); the bound itself when the mass is numerically zero.
    """
    lo = -np.inf if np.isinf(lower) else (lower - mu) / sd
    up = np.inf if np.isinf(upper) else (upper - mu) / sd
    p_lo, p_up = float(ndtr(lo)), float(ndtr(up))
    target = p_lo + p * (p_up - p_lo)
    if target <= p_lo:
        return float(lower)
    if target >= p_up:
        return float(upper)
    return float(mu + sd * ndtri(target))


def _vlo_vup(eta: np.ndarray, sigma: np.ndarray, a: np.ndarray, b: np.ndarray,
             z: np.ndarray) -> tuple[float, float]:
    """Return the truncation bounds of ``eta'y`` given ``a y <= b`` and the residual ``z``."""
    c = sigma @ eta / (eta @ sigma @ eta)
    ac = a @ c
    with np.errstate(divide="ignore", invalid="ignore"):
        objective = (b - a @ z) / ac
    neg, pos = ac < -1e-12, ac > 1e-12
    vlo = float(objective[neg].max()) if neg.any() else -np.inf
    vup = float(objective[pos].min()) if pos.any() else np.inf
    return vlo, vup


def test_no_nuisance(y: np.ndarray, sigma: np.ndarray, a: np.ndarray, d: np.ndarray,
                     alpha: float, hybrid: dict[str, Any]) -> bool:
    r"""Whether ``y`` (the event study minus :math:`\theta` in the post period) is accepted.

    The conditional test of ``HonestDiD``'s ``.testInIdentifiedSet`` (one post period, no
    nuisance): the statistic is the largest standardised moment
    :math:`\max_j (a_j'y - d_j)/\tilde\sigma_j`, compared with a truncated-normal critical
    value. ``hybrid["flag"]`` is ``"ARP"``, ``"LF"`` (with ``lf_cv``) or ``"FLCI"`` (with
    ``flci_l`` and ``flci_halflength``), ``hybrid["kappa"]`` the first-stage size.
    """
    flag = hybrid["flag"]
    if flag == "FLCI":
        first = np.vstack([hybrid["flci_l"], -hybrid["flci_l"]])
        half = np.full(2, hybrid["flci_halflength"])
        if np.max(first @ y - half) > 0:
            return False
        a, d = np.vstack([a, first]), np.concatenate([d, half])
    sd = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", a, sigma, a), 1e-20))
    a_t, d_t = a / sd[:, None], d / sd
    moments = a_t @ y - d_t
    j = int(np.argmax(moments))
    stat = float(moments[j])
    if flag == "ARP" and stat <= 0:
        return True
    if flag == "LF" and stat > hybrid["lf_cv"]:
        return False
    size = alpha if flag == "ARP" else (alpha - hybrid["kappa"]) / (1 - hybrid["kappa"])
    gamma = a_t[j]
    a_bar = a_t - a_t[j]
    d_bar = d_t - d_t[j]
    sigma_bar = float(np.sqrt(gamma @ sigma @ gamma))
    c = sigma @ gamma / sigma_bar**2
    z = y - c * (gamma @ y)
    vlo, vup = _vlo_vup(gamma, sigma, a_bar, d_bar, z)
    if flag == "ARP" and stat < vlo:
        return False
    crit = max(0.0, truncated_normal_quantile(1 - size, vlo, vup, float(d_t[j]), sigma_bar))
    return stat <= crit


def _lp_eta(y: np.ndarray, x: np.ndarray, sd: np.ndarray) -> tuple[float, np.ndarray, bool]:
    r"""Solve :math:`\min\eta` s.t. :math:`y - X\gamma \le \eta\,sd`; value and duals."""
    k = x.shape[1]
    c = np.zeros(k + 1)
    c[0] = 1.0
    res = linprog(c, A_ub=-np.column_stack([sd, x]), b_ub=-y, bounds=[(None, None)] * (k + 1),
                  method="highs-ds")
    if not res.success:
        return float("nan"), np.zeros(len(y)), False
    return float(res.x[0]), -np.asarray(res.ineqlin.marginals), True


def _dual_bounds(s: np.ndarray, gamma: np.ndarray, sigma: np.ndarray,
                 w: np.ndarray) -> tuple[float, float]:
    r"""Range of :math:`c` over which the dual vertex ``gamma`` stays optimal.

    ``HonestDiD``'s ``.vlo_vup_dual_fn`` finds by bisection the :math:`c` for which
    :math:`\max_{\lambda \in P}\lambda'(s + bc) = c` on
    :math:`P = \{\lambda \ge 0: W'\lambda = e_1\}`, :math:`b = \Sigma\gamma/
    \gamma'\Sigma\gamma`. That holds iff :math:`\lambda's + (\lambda'b - 1)c \le 0` on
    :math:`P`, so :math:`v_{up} = \min\{\lambda's/(1-\lambda'b): \lambda'b > 1\}` and
    :math:`v_{lo} = \max\{\lambda's/(1-\lambda'b): \lambda'b < 1\}`: two
    linear-fractional programs, solved exactly as LPs after the Charnes–Cooper substitution
    :math:`\mu = t\lambda`, :math:`t = 1/|1 - \lambda'b|` (:math:`P` is bounded because
    the first column of :math:`W` is positive).
    """
    b = sigma @ gamma / (gamma @ sigma @ gamma)
    m, k1 = w.shape
    e1 = np.eye(k1)[:, :1]
    a_eq = np.vstack([np.hstack([w.T, -e1]), np.r_[b, -1.0][None, :]])
    bounds = {}
    for side, sign in (("up", 1.0), ("lo", -1.0)):  # up: b'mu - t = 1; lo: t - b'mu = 1
        rows = a_eq.copy()
        rows[-1] *= sign
        res = linprog(np.r_[-s, 0.0], A_eq=rows, b_eq=np.r_[np.zeros(k1), 1.0],
                      bounds=[(0, None)] * (m + 1), method="highs")
        if res.status == 2:  # infeasible: no vertex on that side, no truncation
            bounds[side] = sign * np.inf
        elif res.status == 3:  # unbounded
            bounds[side] = -sign * np.inf
        else:  # up = min(-s'mu); lo = max(s'mu)
            bounds[side] = sign * float(res.fun)
    return bounds["lo"], bounds["up"]


def _flci_bounds(vbar: np.ndarray, dbar: np.ndarray, s: np.ndarray,
                 c: np.ndarray) -> tuple[float, float]:
    """Return the truncation implied by ``|vbar'y| <= dbar`` along ``y = s + c t``."""
    mat = np.vstack([vbar, -vbar])
    vc, vs = mat @ c, mat @ s
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = (dbar - vs) / vc
    vlo = float(ratio[vc < 0].max()) if (vc < 0).any() else -np.inf
    vup = float(ratio[vc > 0].min()) if (vc > 0).any() else np.inf
    return vlo, vup


def test_nuisance(y: np.ndarray, x: np.ndarray, sigma: np.ndarray, alpha: float,
                  hybrid: dict[str, Any], rows: np.ndarray) -> bool:
    r"""Whether the moments ``y - X gamma <= 0`` (covariance ``sigma``) are accepted.

    ``HonestDiD``'s ``.lp_conditional_test_fn``: the LP statistic :math:`\hat\eta`, its
    optimal dual vertex :math:`\hat\lambda`, and the conditional critical value (closed form
    when the vertex is non-degenerate, by bisection on the dual LP otherwise). ``rows`` are
    the moments used by the LP (post-period moments); the FLCI hybrid uses all of them.
    """
    flag = hybrid["flag"]
    y_r, x_r, sig_r = y[rows], x[rows], sigma[np.ix_(rows, rows)]
    sd = np.sqrt(np.diag(sig_r))
    eta, lam, ok = _lp_eta(y_r, x_r, sd)
    if not ok:
        return True
    size = alpha if flag == "ARP" else (alpha - hybrid["kappa"]) / (1 - hybrid["kappa"])
    if flag == "LF" and eta > hybrid["lf_cv"]:
        return False
    if flag == "FLCI":
        vmat = np.vstack([hybrid["vbar"], -hybrid["vbar"]])
        if np.max(vmat @ y - hybrid["dbar"]) > 0:
            return False
    k = x_r.shape[1]
    basis = lam > 1e-6
    w = np.column_stack([sd, x_r])
    regular = basis.sum() == k + 1 and np.linalg.matrix_rank(x_r[basis]) == k
    if regular:
        w_b, w_bc = w[basis], w[~basis]
        identity = np.eye(len(y_r))
        gamma_b = w_bc @ np.linalg.solve(w_b, identity[basis]) - identity[~basis]
        v_b = identity[basis].T @ np.linalg.solve(w_b.T, np.eye(k + 1)[0])
        sigma_b = float(np.sqrt(max(v_b @ sig_r @ v_b, 0.0)))
        if sigma_b**2 < np.finfo(float).eps:  # the vertex has no variance: eta is known
            return not eta > 0
        rho = gamma_b @ sig_r @ v_b / sigma_b**2
        with np.errstate(divide="ignore", invalid="ignore"):
            bound = -(gamma_b @ y_r) / rho + v_b @ y_r
        vlo = float(bound[rho > 0].max()) if (rho > 0).any() else -np.inf
        vup = float(bound[rho < 0].min()) if (rho < 0).any() else np.inf
        direction, stat_value = v_b, eta
    else:
        gsg = float(lam @ sig_r @ lam)
        if gsg < np.finfo(float).eps:
            return not eta > 0
        s = y_r - sig_r @ lam * (lam @ y_r) / gsg
        vlo, vup = _dual_bounds(s, lam, sig_r, w)
        sigma_b = float(np.sqrt(gsg))
        direction, stat_value = lam, eta
    if flag == "LF":
        vup = min(vup, hybrid["lf_cv"])
    elif flag == "FLCI":
        full = np.zeros(len(y))
        full[rows] = direction
        cvec = sigma @ full / max(float(full @ sigma @ full), np.finfo(float).tiny)
        flo, fup = _flci_bounds(hybrid["vbar"], hybrid["dbar"], y - cvec * (full @ y), cvec)
        vlo, vup = max(vlo, flo), min(vup, fup)
    zlo, zup, stat = vlo / sigma_b, vup / sigma_b, stat_value / sigma_b
    if not zlo <= stat <= zup:
        return True
    crit = max(0.0, truncated_normal_quantile(1 - size, zlo, zup))
    return stat <= crit


def least_favorable_cv(x: np.ndarray | None, sigma: np.ndarray, kappa: float, *,
                       sims: int = 1000, seed: int = 0) -> float:
    r"""Least-favourable critical value (:math:`1-\kappa` quantile of :math:`\hat\eta`).

    The moments hold with equality in the least-favourable case.

    Notes
    -----
    Simulated (``sims`` draws :math:`\xi \sim N(0, \Sigma)`, ``numpy`` generator seeded with
    ``seed``) as in ``HonestDiD``'s ``.compute_least_favorable_cv``. Without nuisance
    :math:`\hat\eta = \max_j \xi_j/\sigma_j`; with nuisance the LP value equals the largest
    :math:`\lambda'\xi` over the vertices :math:`\lambda \ge 0,\ W'\lambda = e_1` of its dual
    (:math:`W = (\sigma, X)`), which are enumerated when there are at most
    :data:`MAX_BASES` candidate bases (otherwise one LP is solved per draw).
    """
    rng = np.random.default_rng(seed)
    sd = np.sqrt(np.diag(sigma))
    draws = rng.multivariate_normal(np.zeros(len(sd)), sigma, size=sims, method="eigh")
    if x is None:
        return float(np.quantile((draws / sd).max(axis=1), 1 - kappa))
    w = np.column_stack([sd, x])
    m, k1 = w.shape
    vertices = _dual_vertices(w) if _n_choose(m, k1) <= MAX_BASES else None
    if vertices is not None and len(vertices):
        eta = (draws @ vertices.T).max(axis=1)
    else:
        eta = np.array([_lp_eta(xi, x, sd)[0] for xi in draws])
        eta = eta[np.isfinite(eta)]
    return float(np.quantile(eta, 1 - kappa))


def _n_choose(n: int, k: int) -> int:
    from math import comb

    return comb(n, k)


def _dual_vertices(w: np.ndarray) -> np.ndarray:
    """Vertices of ``{l >= 0: W'l = e1}`` by enumerating square bases of ``W``."""
    m, k1 = w.shape
    e1 = np.eye(k1)[0]
    found = []
    for rows in combinations(range(m), k1):
        sub = w[list(rows)]
        if abs(np.linalg.det(sub)) < 1e-12:
            continue
        lam_b = np.linalg.solve(sub.T, e1)
        if (lam_b >= -1e-10).all():
            lam = np.zeros(m)
            lam[list(rows)] = np.maximum(lam_b, 0)
            found.append(lam)
    return np.unique(np.round(np.array(found), 12), axis=0) if found else np.empty((0, m))


def accept_on_grid(test: Callable[[int], bool], n: int, step: int = 10) -> np.ndarray:
    """Return the acceptance of each of ``n`` grid points, testing a coarse grid and then refining.

    Every ``step``-th point is tested; all points between two coarse neighbours whose
    verdicts differ (and next to the ends) are then tested one by one, so the result equals
    testing every point unless the accepted set has a gap or an island narrower than
    ``step`` grid points. ``step=1`` tests every point (as ``HonestDiD`` does).
    """
    accept = np.zeros(n, dtype=bool)
    coarse = np.unique(np.r_[np.arange(0, n, max(step, 1)), n - 1])
    for i in coarse:
        accept[i] = test(int(i))
    for lo, hi in pairwise(coarse):
        if accept[lo] != accept[hi]:
            for i in range(lo + 1, hi):
                accept[i] = test(i)
        else:
            accept[lo + 1:hi] = accept[lo]
    return accept
