r"""Optimal fixed-length confidence interval (FLCI) under smoothness restrictions.

Rambachan & Roth (2023, section 4.1) following Armstrong & Kolesár (2018): among affine
estimators :math:`a + v'\hat\beta` of :math:`\theta = l'\tau_{post}` choose the one whose
interval :math:`a + v'\hat\beta \pm \chi` is shortest while covering :math:`\theta` with
probability :math:`1-\alpha` for every :math:`\delta \in \Delta^{SD}(M)`. This is the
``findOptimalFLCI`` of the R package ``HonestDiD`` with two numerical differences: the folded
normal quantile is computed exactly (R draws :math:`10^6` normals) and the worst-case bias
problem is solved with ``scipy`` plus an exact polishing step instead of a conic solver.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq, minimize, minimize_scalar
from scipy.special import ndtr, ndtri


@dataclass(frozen=True)
class FLCIResult:
    r"""The optimal FLCI and the affine estimator behind it.

    Attributes
    ----------
    lower, upper
        Interval endpoints.
    weights
        :math:`v` (pre- then post-period weights); the centre is ``weights @ betahat``.
    half_length
        :math:`\chi`.
    sd
        Standard deviation :math:`h` of the affine estimator.
    max_bias
        Its worst-case bias over :math:`\Delta^{SD}(M)`.
    """

    lower: float
    upper: float
    weights: np.ndarray
    half_length: float
    sd: float
    max_bias: float


def folded_normal_quantile(p: float, mu: float) -> float:
    r"""``p`` quantile of :math:`|N(\mu, 1)|`.

    Notes
    -----
    Solves :math:`\Phi(q-|\mu|) - \Phi(-q-|\mu|) = p` for :math:`q`; for :math:`\mu = 0`
    :math:`q = \Phi^{-1}((1+p)/2)`.
    """
    mu = abs(float(mu))
    if mu == 0:
        return float(ndtri((1 + p) / 2))

    def excess(q: float) -> float:
        return float(ndtr(q - mu) - ndtr(-q - mu)) - p

    upper = mu + 10.0
    while excess(upper) < 0:
        upper *= 2
    return float(brentq(excess, 0.0, upper, xtol=1e-14, rtol=4 * np.finfo(float).eps))


class _SmoothnessProblem:
    r"""Quadratic forms of the FLCI problem in the cumulated pre-period weights.

    With :math:`w` the weights on pre-period first differences and :math:`u = \mathrm{cumsum}(w)`,
    the pre-period weights are :math:`l_{pre} = D^2 u` (:math:`D` the first-difference
    matrix), :math:`u_{T_{pre}} = \sum_s s\,l_s` is fixed and the worst-case bias is
    :math:`M(\sum_{i<T_{pre}} |u_i| + b_0)`. The free part :math:`x = u_{1..T_{pre}-1}`
    enters the variance as :math:`x'Qx + 2g'x + k`.
    """

    def __init__(self, sigma: np.ndarray, num_pre: int, num_post: int,
                 l_vec: np.ndarray) -> None:
        d = np.eye(num_pre) - np.eye(num_pre, k=-1)
        to_l = d @ d
        s_pre, s_cross = sigma[:num_pre, :num_pre], sigma[:num_pre, num_pre:]
        s_post = float(l_vec @ sigma[num_pre:, num_pre:] @ l_vec)
        target = float(np.arange(1, num_post + 1) @ l_vec)
        quad = to_l.T @ s_pre @ to_l
        lin = to_l.T @ s_cross @ l_vec
        free = slice(0, num_pre - 1)
        self.q = quad[free, free]
        self.g = quad[free, -1] * target + lin[free]
        self.k = quad[-1, -1] * target**2 + 2 * lin[-1] * target + s_post
        self.to_l, self.target, self.n_free = to_l, target, num_pre - 1
        self.const = sum(abs(float(np.arange(1, s + 1) @ l_vec[num_post - s:]))
                         for s in range(1, num_post + 1)) - target + abs(target)

    def variance(self, x: np.ndarray) -> float:
        return float(x @ self.q @ x + 2 * self.g @ x + self.k)

    def l_pre(self, x: np.ndarray) -> np.ndarray:
        return self.to_l @ np.r_[x, self.target]

    def min_variance_x(self) -> np.ndarray:
        if self.n_free == 0:
            return np.zeros(0)
        return -np.linalg.lstsq(self.q, self.g, rcond=None)[0]

    def min_bias(self, h: float) -> np.ndarray:
        r"""Minimise :math:`\|x\|_1` subject to variance :math:`\le h^2`."""
        if self.n_free == 0:
            return np.zeros(0)
        x0 = self.min_variance_x()
        if self.variance(np.zeros(self.n_free)) <= h * h:
            return np.zeros(self.n_free)
        n = self.n_free
        start = np.r_[np.maximum(x0, 0), np.maximum(-x0, 0)]
        res = minimize(lambda z: z.sum(), start, jac=lambda z: np.ones(2 * n), method="SLSQP",
                       bounds=[(0, None)] * (2 * n),
                       constraints=[{"type": "ineq",
                                     "fun": lambda z: h * h - self.variance(z[:n] - z[n:]),
                                     "jac": lambda z: np.r_[-self._grad(z[:n] - z[n:]),
                                                            self._grad(z[:n] - z[n:])]}],
                       options={"ftol": 1e-15, "maxiter": 500})
        x = res.x[:n] - res.x[n:]
        return self._polish(x, h)

    def _grad(self, x: np.ndarray) -> np.ndarray:
        return 2 * (self.q @ x + self.g)

    def _polish(self, x: np.ndarray, h: float) -> np.ndarray:
        """Exact minimiser of the linear objective on the ellipsoid, given the signs of x."""
        scale = max(np.abs(x).max(), 1e-300)
        active = np.abs(x) > 1e-7 * scale
        if not active.any():
            return np.zeros_like(x)
        signs = np.sign(x[active])
        q, g = self.q[np.ix_(active, active)], self.g[active]
        centre = -np.linalg.solve(q, g)
        radius2 = h * h - (self.k + g @ centre)
        qs = np.linalg.solve(q, signs)
        if radius2 <= 0 or signs @ qs <= 0:
            return x
        cand = centre - np.sqrt(radius2 / (signs @ qs)) * qs
        if np.any(np.sign(cand) != signs):
            return x
        out = np.zeros_like(x)
        out[active] = cand
        return out if np.abs(out).sum() <= np.abs(x).sum() + 1e-12 else x


def optimal_flci(betahat: np.ndarray, sigma: np.ndarray, num_pre: int, num_post: int,
                 l_vec: np.ndarray, m: float, alpha: float = 0.05) -> FLCIResult:
    r"""Optimal FLCI for :math:`\theta = l'\tau_{post}` under :math:`\Delta^{SD}(M)`.

    Parameters
    ----------
    betahat, sigma
        Event-study coefficients (``num_pre`` pre-period then ``num_post`` post-period,
        reference period excluded) and their covariance.
    l_vec
        Weights of the post-period effects in :math:`\theta`.
    m
        Bound :math:`M` on the second differences of the trend :math:`\delta`.
    alpha
        One minus the coverage.

    Returns
    -------
    FLCIResult

    Notes
    -----
    For an affine estimator with standard deviation :math:`h` and worst-case bias
    :math:`\bar b`, the shortest valid half-length is
    :math:`\chi = h\,cv_\alpha(\bar b/h)` with :math:`cv_\alpha(t)` the :math:`1-\alpha`
    quantile of :math:`|N(t,1)|`. For each :math:`h` the smallest worst-case bias is
    :math:`\bar b(h) = M\,(\min\{\|x\|_1 : \mathrm{Var} \le h^2\} + b_0)` (a convex
    program in the cumulated first-difference weights :math:`x`); :math:`h` is then chosen
    in :math:`[h_{min\,var}, h_{min\,bias}]` to minimise :math:`\chi` (bounded Brent search).
    """
    problem = _SmoothnessProblem(np.asarray(sigma, float), num_pre, num_post,
                                 np.asarray(l_vec, float))
    x_var = problem.min_variance_x()
    h_lo = np.sqrt(max(problem.variance(x_var), 0.0))
    h_hi = np.sqrt(max(problem.variance(np.zeros(problem.n_free)), 0.0))

    def solve(h: float) -> tuple[float, np.ndarray]:
        if h <= h_lo * (1 + 1e-12):
            x = x_var
        else:
            x = problem.min_bias(h) if h < h_hi else np.zeros(problem.n_free)
        sd = np.sqrt(max(problem.variance(x), 0.0))
        bias = m * (np.abs(x).sum() + problem.const)
        return sd * folded_normal_quantile(1 - alpha, bias / sd), x

    if h_hi - h_lo <= 1e-12 * h_hi:
        h_star = h_hi
    else:
        found = minimize_scalar(lambda h: solve(h)[0], bounds=(h_lo, h_hi), method="bounded",
                                options={"xatol": 1e-10 * h_hi})
        h_star = float(found.x)
        # The optimum may sit at an end of the interval, where the bounded search stops short.
        h_star = min((h_lo, h_star, h_hi), key=lambda h: solve(h)[0])
    half, x = solve(h_star)
    weights = np.r_[problem.l_pre(x), l_vec]
    centre = float(weights @ np.asarray(betahat, float))
    sd = float(np.sqrt(max(problem.variance(x), 0.0)))
    return FLCIResult(centre - half, centre + half, weights, half, sd,
                      m * (np.abs(x).sum() + problem.const))
