r"""Wild cluster bootstrap t-tests and test-inversion intervals (restricted and unrestricted).

The fast algorithm of Roodman, MacKinnon, Nielsen and Webb (2019, "Fast and wild") writes
the bootstrap t-statistic of every draw through per-cluster quantities computed once, so a
draw costs :math:`O(Gk)` (or :math:`O(G^2)` for the linear estimators) whatever the number
of observations. Every problem is put in one form (:class:`WildProblem`): for hypothesised
value :math:`b` and cluster multipliers :math:`v \in \mathbb R^G`, the bootstrap numerator
and the clustered sums that make the bootstrap variance are

.. math::

    N(v, b) = m(b) + C(b)'v, \qquad
    Z(v, b) = e(b) + d(b) \circ v + P\,Q(b)'v, \qquad
    t^*(v, b) = N / \sqrt{s\,\lVert Z\rVert^2},

all affine in :math:`b`, so the p-value
:math:`p(b) = B^{-1}\sum_d 1\{|t(b)| < |t^*(v_d, b)|\}`, :math:`t(b) = (\hat\theta - b)
/ \widehat{se}`, is evaluated for any :math:`b` in :math:`O(B)` from five vectors, and the
confidence interval is :math:`\{b : p(b) > \alpha\}` found by bisection (test inversion,
as ``boottest``/``fwildclusterboot``). :func:`ols_problems` builds the problems of a
least-squares regression (fixed effects partialled out beforehand, which is exact because
the restricted and unrestricted models share them); :func:`linear_problem` those of an
estimator linear in the outcome whose variance is a sum of squared linear forms.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import sparse

from evaluation.errors import InvalidOptionError
from evaluation.options import DEFAULT_RANDOM_SEED, check_option

WildWeights = Literal["rademacher", "webb", "mammen"]
WildNull = Literal["restricted", "unrestricted"]
_WEBB = np.array([-np.sqrt(1.5), -1.0, -np.sqrt(0.5), np.sqrt(0.5), 1.0, np.sqrt(1.5)])
_MAMMEN = np.array([-(np.sqrt(5) - 1) / 2, (np.sqrt(5) + 1) / 2])
_MAMMEN_P_LOW = (np.sqrt(5) + 1) / (2 * np.sqrt(5))
_CHUNK = 2**22  # clusters x draws per block
#: Largest clusters x draws multiplier matrix drawn at once (2 GB in float64).
MAX_WEIGHT_ENTRIES = 2**28
_TIE = 1e-10  # relative tolerance: the identity draw of WCR reproduces t up to rounding


def bootstrap_weights(kind: WildWeights, n_clusters: int, draws: int,
                      rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    r"""Draw ``(n_clusters, draws)`` multipliers, or enumerate all Rademacher sign vectors.

    Returns
    -------
    tuple
        The multipliers and whether they are the full enumeration (Rademacher with
        :math:`2^G \le` ``draws``: all :math:`2^G` vectors, no randomness).

    Notes
    -----
    Rademacher: :math:`\pm1` with probability 1/2. Webb's six-point distribution:
    :math:`\pm\sqrt{3/2}, \pm1, \pm\sqrt{1/2}` with probability 1/6 each. Mammen:
    :math:`-(\sqrt5-1)/2` with probability :math:`(\sqrt5+1)/(2\sqrt5)`, else
    :math:`(\sqrt5+1)/2`. All have mean 0 and variance 1.
    """
    check_option("wild_weights", kind, WildWeights)
    if n_clusters * min(draws, 2**min(n_clusters, 62)) > MAX_WEIGHT_ENTRIES:
        raise InvalidOptionError(
            f"the wild bootstrap would hold {n_clusters} clusters x {draws} draws multipliers; "
            "with this many clusters use se='analytic' (CR0 is accurate) or fewer draws.")
    if kind == "rademacher" and n_clusters < 63 and 2**n_clusters <= draws:
        signs = np.array(list(itertools.product([-1.0, 1.0], repeat=n_clusters)))
        return signs.T.copy(), True
    if kind == "rademacher":
        return rng.choice(np.array([-1.0, 1.0]), size=(n_clusters, draws)), False
    if kind == "webb":
        return rng.choice(_WEBB, size=(n_clusters, draws)), False
    low = rng.random((n_clusters, draws)) < _MAMMEN_P_LOW
    return np.where(low, _MAMMEN[0], _MAMMEN[1]), False


@dataclass(frozen=True)
class WildProblem:
    """Per-cluster quantities of one hypothesis (see the module docstring for the formula).

    Each ``(2, ...)`` array holds the constant and the slope in the hypothesised value.
    """

    estimate: float
    std_error: float
    numer_const: np.ndarray  # (2,): m(b)
    numer_coef: np.ndarray  # (2, G): C(b)
    sum_const: np.ndarray  # (2, G): e(b)
    sum_diag: np.ndarray  # (2, G): d(b)
    sum_left: np.ndarray  # (G, q): P
    sum_right: np.ndarray  # (2, G, q): Q(b)
    scale: float = 1.0  # small-sample factor s of the bootstrap variance


@dataclass(frozen=True)
class WildTest:
    """Result of one wild cluster bootstrap test.

    ``t_boot`` holds the bootstrap t-statistics of the null :math:`b = 0`.
    """

    estimate: float
    std_error: float
    t: float
    p_value: float
    ci_lower: float
    ci_upper: float
    draws: int
    enumerated: bool
    t_boot: np.ndarray


class _Draws:
    """The five draw vectors that give :math:`t^*(b)` for every hypothesised value."""

    def __init__(self, problem: WildProblem, v: np.ndarray) -> None:
        p = problem
        self.n0 = p.numer_const[0] + p.numer_coef[0] @ v
        self.n1 = p.numer_const[1] + p.numer_coef[1] @ v
        size = v.shape[1]
        self.d00, self.d01, self.d11 = np.zeros(size), np.zeros(size), np.zeros(size)
        block = max(1, _CHUNK // max(v.shape[0], 1))
        for start in range(0, size, block):
            part = v[:, start:start + block]
            z0 = (p.sum_const[0][:, None] + p.sum_diag[0][:, None] * part
                  + p.sum_left @ (p.sum_right[0].T @ part))
            z1 = (p.sum_const[1][:, None] + p.sum_diag[1][:, None] * part
                  + p.sum_left @ (p.sum_right[1].T @ part))
            cut = slice(start, start + part.shape[1])
            self.d00[cut] = np.einsum("gb,gb->b", z0, z0)
            self.d01[cut] = np.einsum("gb,gb->b", z0, z1)
            self.d11[cut] = np.einsum("gb,gb->b", z1, z1)
        self.scale = p.scale

    def t_boot(self, b: float) -> np.ndarray:
        variance = self.scale * (self.d00 + 2 * b * self.d01 + b * b * self.d11)
        with np.errstate(divide="ignore", invalid="ignore"):
            return (self.n0 + b * self.n1) / np.sqrt(np.maximum(variance, 0.0))


def _p_value(problem: WildProblem, draws: _Draws, b: float) -> float:
    """Share of draws with :math:`|t^*| > |t|`; exact ties (up to rounding) do not count."""
    t = abs(problem.estimate - b) / problem.std_error
    return float(np.mean(t * (1 + _TIE) < np.abs(draws.t_boot(b))))


def _endpoint(problem: WildProblem, draws: _Draws, alpha: float, sign: float) -> float:
    r"""Bisect for the edge of :math:`\{b : p(b) > \alpha\}` on one side of the estimate."""
    centre, scale = problem.estimate, problem.std_error
    inner, step = centre, 2.0 * scale
    outer = centre + sign * step
    for _ in range(64):
        if _p_value(problem, draws, outer) <= alpha:
            break
        inner, step = outer, 2 * step
        outer = centre + sign * step
    else:
        return sign * np.inf
    tolerance = 1e-11 * max(scale, 1e-300)
    for _ in range(200):
        if abs(outer - inner) <= tolerance:
            break
        middle = (inner + outer) / 2
        if _p_value(problem, draws, middle) > alpha:
            inner = middle
        else:
            outer = middle
    return (inner + outer) / 2


def wild_test(problem: WildProblem, weights: np.ndarray, enumerated: bool, *,
              alpha: float = 0.05, interval: bool = True, null: float = 0.0) -> WildTest:
    r"""Run the bootstrap of ``problem`` with multipliers ``weights`` (``(G, draws)``).

    Returns the p-value of :math:`\theta =` ``null`` and, with ``interval``, the
    :math:`1-\alpha` confidence interval by test inversion.
    """
    draws = _Draws(problem, weights)
    t = (problem.estimate - null) / problem.std_error
    lower, upper = np.nan, np.nan
    if interval and np.isfinite(problem.std_error) and problem.std_error > 0:
        lower = _endpoint(problem, draws, alpha, -1.0)
        upper = _endpoint(problem, draws, alpha, 1.0)
    return WildTest(problem.estimate, problem.std_error, float(t),
                    _p_value(problem, draws, null), float(lower), float(upper),
                    int(weights.shape[1]), enumerated, draws.t_boot(null))


def _cluster_index(cluster: np.ndarray) -> sparse.csr_matrix:
    """Sparse ``(G, n)`` indicator of the clusters' rows."""
    n_clusters = int(cluster.max()) + 1
    return sparse.csr_matrix((np.ones(cluster.size), (cluster, np.arange(cluster.size))),
                             shape=(n_clusters, cluster.size))


def ols_problems(x: np.ndarray, y: np.ndarray, cluster: np.ndarray, *,
                 weights: np.ndarray | None = None, null: WildNull = "restricted",
                 scale: float = 1.0) -> list[WildProblem]:
    r"""Bootstrap problems of each coefficient of a (weighted) least-squares regression.

    Parameters
    ----------
    x, y
        ``(n, k)`` regressors and ``(n,)`` outcome, fixed effects already partialled out.
    cluster
        ``(n,)`` cluster codes 0..G-1.
    weights
        Regression weights (None: unweighted); rows are scaled by :math:`\sqrt w`.
    null
        ``"restricted"`` (WCR: residuals of the model with :math:`\beta_j = b` imposed) or
        ``"unrestricted"`` (WCU).
    scale
        Small-sample factor of the clustered variance (p-values do not depend on it).

    Returns
    -------
    list of WildProblem
        One per coefficient.

    Notes
    -----
    With :math:`A = (X'X)^{-1}`, cluster blocks :math:`X_g'X_g`, :math:`X_g'y_g` and the
    (restricted) estimate :math:`\tilde\beta(b) = \hat\beta - A e_j(\hat\beta_j - b)/A_{jj}`,
    the bootstrap scores are :math:`s_g(b) = X_g'y_g - X_g'X_g\tilde\beta(b)` and

    .. math::

        N = \sum_g v_g\, e_j'As_g, \qquad
        Z_c = v_c\, e_j'As_c - e_j'AX_c'X_cA\sum_g v_g s_g,

    the numerator :math:`e_j'(\hat\beta^* - \tilde\beta)` and the clustered sums of the
    bootstrap CR0 variance :math:`e_j'AX_c'\hat u^*_c` (Roodman et al. 2019, section 3).
    WCU uses :math:`\hat\beta` instead of :math:`\tilde\beta` (and is centred at it).
    """
    check_option("wild_null", null, WildNull)
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if weights is not None:
        root = np.sqrt(np.asarray(weights, dtype=float))
        x, y = x * root[:, None], y * root
    n_clusters = int(cluster.max()) + 1
    order = np.argsort(cluster, kind="stable")
    bounds = np.searchsorted(cluster[order], np.arange(n_clusters + 1))
    k = x.shape[1]
    xx_g, xy_g = np.zeros((n_clusters, k, k)), np.zeros((n_clusters, k))
    for g in range(n_clusters):
        rows = order[bounds[g]:bounds[g + 1]]
        xx_g[g] = x[rows].T @ x[rows]
        xy_g[g] = x[rows].T @ y[rows]
    inverse = np.linalg.inv(xx_g.sum(axis=0))
    beta = inverse @ xy_g.sum(axis=0)
    scores = xy_g - xx_g @ beta
    vcov = inverse @ (scores.T @ scores) @ inverse * scale
    out = []
    zeros = np.zeros(n_clusters)
    for j in range(k):
        a_j = inverse[j]
        left = -np.einsum("k,gkl,lm->gm", a_j, xx_g, inverse)
        if null == "restricted":
            slope = inverse[:, j] / inverse[j, j]
            base = beta - slope * beta[j]
            s0, s1 = xy_g - xx_g @ base, -(xx_g @ slope)
        else:
            s0, s1 = scores, np.zeros_like(scores)
        c0, c1 = s0 @ a_j, s1 @ a_j
        out.append(WildProblem(
            float(beta[j]), float(np.sqrt(vcov[j, j])), np.zeros(2), np.stack([c0, c1]),
            np.stack([zeros, zeros]), np.stack([c0, c1]), left, np.stack([s0, s1]), scale))
    return out


def linear_problem(estimate: float, std_error: float, estimator: np.ndarray,
                   sums: np.ndarray, y: np.ndarray, resid: tuple[np.ndarray, np.ndarray],
                   cluster: np.ndarray, *, null: WildNull = "restricted") -> WildProblem:
    r"""Bootstrap problem of an estimator linear in the outcome, :math:`\hat\theta = \lambda'y`.

    Parameters
    ----------
    estimate, std_error
        :math:`\hat\theta` and its analytic standard error
        :math:`\sqrt{\sum_c(\ell_c'y)^2}`.
    estimator
        ``(n,)`` weights :math:`\lambda`.
    sums
        ``(n, G)`` vectors :math:`\ell_c` whose products with the outcome are the clustered
        sums of the variance.
    y
        ``(n,)`` outcome.
    resid
        Bootstrap residuals :math:`u(b) = u_0 + b\,u_1` of the model with the null
        :math:`\theta = b` imposed (WCR) or :math:`(\hat u, 0)` (WCU).
    cluster
        ``(n,)`` cluster codes.
    null
        Checked option name (the residuals passed decide restricted or not).

    Notes
    -----
    The bootstrap outcome is :math:`y^* = y - u(b) + \sum_g v_g\,1_g\circ u(b)`; the
    numerator is centred at the bootstrap's own parameter :math:`\lambda'(y - u(b))` (which
    is :math:`b` when the restricted fit reproduces the null exactly, as for least squares),
    :math:`\hat\theta^* - \lambda'(y - u(b)) = \sum_g v_g\lambda_g'u_g(b)`, and the
    clustered sums are :math:`Z_c = \ell_c'(y - u(b)) + \sum_g v_g\,\ell_{c,g}'u_g(b)`:
    the ``G x G`` matrices :math:`[\ell_{c,g}'u_g]` take the place of the regression's
    low-rank terms.
    """
    check_option("wild_null", null, WildNull)
    u0, u1 = resid
    index = _cluster_index(cluster)
    n_clusters = index.shape[0]
    numer_const = np.zeros(2)  # centred at the bootstrap's own truth lambda'(y - u(b))
    numer_coef = np.stack([index @ (estimator * u0), index @ (estimator * u1)])
    right0 = index @ (sums * u0[:, None])  # (G_g, G_c)
    right1 = index @ (sums * u1[:, None])
    sum_const = np.stack([sums.T @ (y - u0), -(sums.T @ u1)])
    zeros = np.zeros(n_clusters)
    return WildProblem(float(estimate), float(std_error), numer_const, numer_coef, sum_const,
                       np.stack([zeros, zeros]), np.eye(n_clusters),
                       np.stack([right0, right1]))


def run_wild(problems: list[WildProblem], n_clusters: int, *, weights: WildWeights,
             draws: int, seed: int | None, alpha: float) -> tuple[list[WildTest], int, bool]:
    """Draw one set of multipliers and test every problem with it.

    Returns the tests, the number of draws and whether they were fully enumerated.
    """
    rng = np.random.default_rng(DEFAULT_RANDOM_SEED if seed is None else seed)
    v, enumerated = bootstrap_weights(weights, n_clusters, draws, rng)
    tests = [wild_test(p, v, enumerated, alpha=alpha) for p in problems]
    return tests, v.shape[1], enumerated


def describe(null: WildNull, weights: WildWeights, n_draws: int, enumerated: bool) -> str:
    """Label of the inference for ``result.info["se"]``."""
    kind = "WCR" if null == "restricted" else "WCU"
    how = ", full enumeration" if enumerated else ""
    return f"wild cluster bootstrap ({kind}, {weights.capitalize()}, {n_draws} draws{how})"
