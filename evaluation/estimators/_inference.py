r"""Inference from influence functions: clustered variance and the multiplier bootstrap.

Every estimator in the package is asymptotically linear,
:math:`\hat\theta - \theta = n^{-1}\sum_i \psi_i + o_p(n^{-1/2})`, so its variance and
its bootstrap distribution follow from the ``(n, k)`` matrix of influence functions
:math:`\psi`. Aggregations are linear in :math:`\psi` (plus terms for estimated weights),
so they reuse the same matrix without refitting.
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
from scipy.special import ndtri

from evaluation.options import check_option

BootstrapWeights = Literal["rademacher", "mammen", "webb"]
_MAMMEN_LOW = -(np.sqrt(5) - 1) / 2
_MAMMEN_HIGH = (np.sqrt(5) + 1) / 2
_MAMMEN_P_LOW = (np.sqrt(5) + 1) / (2 * np.sqrt(5))
_WEBB = np.sqrt(np.array([1.5, 1.0, 0.5, 0.5, 1.0, 1.5])) * np.array([-1, -1, -1, 1, 1, 1])
_CHUNK_CELLS = 2**24  # draws x clusters handled per block (memory ~ 128 MB in float64)


def cluster_sums(influence: np.ndarray, cluster: np.ndarray | None) -> np.ndarray:
    """Sum influence functions within clusters (rows are units; ``cluster`` codes 0..G-1)."""
    if cluster is None:
        return influence
    n_clusters = int(cluster.max()) + 1
    return np.column_stack([np.bincount(cluster, weights=column, minlength=n_clusters)
                            for column in influence.T])


def cluster_robust_ols(x: np.ndarray, y: np.ndarray, weights: np.ndarray,
                       cluster: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""Weighted least squares with its cluster-robust (sandwich) covariance.

    Returns
    -------
    tuple
        Coefficients :math:`\hat\beta` and covariance :math:`\hat V` (no small-sample
        factor).

    Notes
    -----
    .. math::

        \hat\beta = (X'WX)^{-1}X'Wy, \qquad
        \hat V = (X'WX)^{-1}\Big[\sum_c s_c s_c'\Big](X'WX)^{-1}, \quad
        s_c = \sum_{i \in c} w_i \hat e_i x_i.
    """
    bread = np.linalg.inv(x.T @ (weights[:, None] * x))
    beta = bread @ (x.T @ (weights * y))
    sums = cluster_sums((weights * (y - x @ beta))[:, None] * x, cluster)
    return beta, bread @ (sums.T @ sums) @ bread


def leverage_factors(weights: np.ndarray, treated: np.ndarray,
                     cluster: np.ndarray | None) -> np.ndarray:
    r"""CR2 factors for the influence function of a difference of means.

    Parameters
    ----------
    weights
        ``(n,)`` weight :math:`a_i` of each unit's outcome in the mean of its group
        (treated or comparison), each group's weights summing to one.
    treated
        ``(n,)`` 0/1 group indicator.
    cluster
        ``(n,)`` integer cluster codes, or None for one unit per cluster (HC2).

    Returns
    -------
    numpy.ndarray
        ``(n,)`` factors :math:`(1 - h_{c(i),D_i})^{-1/2}` that multiply each unit's
        influence function; 1 where a whole group lies in one cluster (:math:`h = 1`: the
        cluster's deviation from its group mean is zero whatever the factor, and only
        few-cluster inference can help).

    Notes
    -----
    :math:`h_{cD} = \sum_{i \in c,\, D_i = D} a_i` is cluster :math:`c`'s leverage in the
    mean of group :math:`D`. For a difference of weighted means (the 2x2 DiD without
    covariates, the regression of :math:`\Delta Y` on a constant and :math:`D`) the hat
    matrix is block-diagonal by group and rank one within it, so Bell and McCaffrey's (2002)
    adjustment :math:`(I - H_{cc})^{-1/2}` scales the cluster's residual sum in each group by
    exactly :math:`(1 - h_{cD})^{-1/2}`: the variance is R ``clubSandwich``'s CR2. With
    covariates :math:`a` are the estimator's implied weights (it is linear in
    :math:`\Delta Y` given the covariates) and the factor leaves out the
    :math:`O(k/n)` leverage of the covariates themselves, which the cluster jackknife
    (:class:`~evaluation.estimators._jackknife.ClusterJackknife`) includes; with a
    municipality-level covariate it can matter.
    """
    group = treated.astype(np.intp)
    if cluster is None:
        leverage = weights
    else:
        n_clusters = int(cluster.max()) + 1
        index = group * n_clusters + cluster
        leverage = np.bincount(index, weights=weights, minlength=2 * n_clusters)[index]
    leverage = np.clip(leverage, 0.0, None)
    whole = leverage >= 1 - 1e-12
    return np.where(whole, 1.0, 1 / np.sqrt(np.where(whole, 0.5, 1 - leverage)))


def influence_covariance(influence: np.ndarray, cluster: np.ndarray | None = None) -> np.ndarray:
    r"""Covariance matrix of :math:`\hat\theta` from its influence functions.

    Parameters
    ----------
    influence
        ``(n, k)`` influence functions of ``k`` parameters for ``n`` units.
    cluster
        Optional ``(n,)`` integer cluster codes (time-invariant clusters of units).

    Returns
    -------
    numpy.ndarray
        ``(k, k)`` matrix :math:`V`.

    Notes
    -----
    .. math::

        V = \frac{1}{n^2} \sum_{c=1}^{G} S_c S_c^\top, \qquad
        S_c = \sum_{i \in c} \psi_i,

    which with one unit per cluster is :math:`\frac1{n^2}\sum_i \psi_i\psi_i^\top`, the
    analytic variance of R ``did`` (``sqrt(mean(psi^2) / n)`` standard errors).
    """
    n = influence.shape[0]
    sums = cluster_sums(influence, cluster)
    return sums.T @ sums / n**2


def multiplier_draws(
    influence: np.ndarray,
    *,
    cluster: np.ndarray | None = None,
    draws: int = 999,
    weights: BootstrapWeights = "mammen",
    rng: np.random.Generator,
) -> np.ndarray:
    r"""Multiplier-bootstrap draws of :math:`\hat\theta^* - \hat\theta`.

    Returns
    -------
    numpy.ndarray
        ``(draws, k)`` matrix whose rows are :math:`n^{-1}\sum_c v_c S_c` with independent
        multipliers :math:`v_c` (mean 0, variance 1) drawn once per cluster.

    Notes
    -----
    Rademacher multipliers are :math:`\pm 1` with probability 1/2; Mammen's two-point
    multipliers take :math:`-(\sqrt5-1)/2` with probability
    :math:`(\sqrt5+1)/(2\sqrt5)` and :math:`(\sqrt5+1)/2` otherwise (R ``did``'s
    default); Webb's (2023) six-point multipliers take
    :math:`\pm\sqrt{1/2}, \pm 1, \pm\sqrt{3/2}` with probability 1/6 each, which with
    few clusters gives many more distinct draws than :math:`2^G` sign vectors. Clusters
    are processed in blocks so memory stays bounded for millions of units; multipliers
    and products are single precision (their rounding, about 1e-7 relative, is far below
    the bootstrap's own Monte Carlo error) and blocks are summed in double.
    """
    check_option("bootstrap weights", weights, BootstrapWeights)
    if draws < 2:
        raise ValueError(f"draws={draws} must be at least 2.")
    n = influence.shape[0]
    sums = cluster_sums(influence, cluster)
    n_clusters = sums.shape[0]
    out = np.zeros((draws, sums.shape[1]))
    block = max(1, _CHUNK_CELLS // draws)
    for start in range(0, n_clusters, block):
        part = sums[start:start + block].astype(np.float32)
        out += _multipliers(weights, (draws, part.shape[0]), rng) @ part
    return out / n


def _multipliers(weights: BootstrapWeights, shape: tuple[int, int],
                 rng: np.random.Generator) -> np.ndarray:
    """Draw a ``shape`` block of single-precision multipliers of the named distribution."""
    if weights == "webb":
        return _WEBB.astype(np.float32)[rng.integers(0, 6, shape, dtype=np.int8)]
    values = np.array([_MAMMEN_LOW, _MAMMEN_HIGH] if weights == "mammen" else [-1.0, 1.0],
                      dtype=np.float32)
    threshold = _MAMMEN_P_LOW if weights == "mammen" else 0.5
    high = rng.random(shape, dtype=np.float32) >= threshold
    return values[high.view(np.int8)]


def bootstrap_inference(draws: np.ndarray, alpha: float) -> tuple[np.ndarray, float]:
    r"""Compute standard errors and the uniform critical value from bootstrap draws.

    Returns
    -------
    tuple
        ``(se, critical_value)``: robust standard errors from the interquartile range and
        the :math:`1-\alpha` quantile of the maximum absolute t-statistic over all
        parameters (simultaneous band), never below the pointwise normal value.

    Notes
    -----
    As in R ``did``: :math:`\hat\sigma_j = (q_{.75} - q_{.25}) / (z_{.75} - z_{.25})` of
    the draws of parameter :math:`j`, and
    :math:`c = q_{1-\alpha}\big(\max_j |\theta^*_j - \hat\theta_j| / \hat\sigma_j\big)`.
    Parameters with (numerically) zero spread are left out of the maximum.
    """
    q75, q25 = np.quantile(draws, [0.75, 0.25], axis=0, method="inverted_cdf")
    se = (q75 - q25) / (ndtri(0.75) - ndtri(0.25))
    ok = se > np.sqrt(np.finfo(float).eps) * 10
    pointwise = float(ndtri(1 - alpha / 2))
    if not ok.any():
        return np.where(ok, se, np.nan), pointwise
    t_max = np.max(np.abs(draws[:, ok]) / se[ok], axis=1)
    critical = float(np.quantile(t_max, 1 - alpha, method="inverted_cdf"))
    return np.where(ok, se, np.nan), max(critical, pointwise)


def summarise_warnings(caught: list[warnings.WarningMessage], what: str, total: int,
                       runs: str) -> list[tuple[type[Warning], str]]:
    """One line per distinct warning of repeated fits, with how many of them issued it.

    Parameters
    ----------
    caught
        Warnings recorded while running the fits (``warnings.catch_warnings(record=True)``).
    what, total, runs
        The procedure, its number of fits and what they are called, as in
        ``"cluster jackknife of ATT(g,t), 3 of 15 leave-one-cluster-out refits: ..."``.

    Returns
    -------
    list of (category, message)
        To be issued once each and recorded on the result.
    """
    counts: dict[tuple[type[Warning], str], int] = {}
    for item in caught:
        key = (item.category, str(item.message))
        counts[key] = counts.get(key, 0) + 1
    return [(category, f"{what}, {k} of {total} {runs}: {message}")
            for (category, message), k in counts.items()]
