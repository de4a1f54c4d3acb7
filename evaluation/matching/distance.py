r"""Distances for matching: propensity scores and covariate metrics.

Every metric is turned into coordinates :math:`z_i` such that the distance between two units
is the Euclidean distance :math:`\lVert z_i - z_j\rVert`, which lets the matcher use one
nearest-neighbour search (and a KD-tree at scale) for all of them. The transformations follow
R's MatchIt 4.5 (``transform_covariates``) so that matches agree with it.
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
import statsmodels.api as sm
from scipy.linalg import qr
from scipy.stats import rankdata
from statsmodels.tools.sm_exceptions import PerfectSeparationError, PerfectSeparationWarning

from evaluation.errors import MatchingError

ScoreLink = Literal["logit", "probit"]
CovariateMetric = Literal["mahalanobis", "robust_mahalanobis", "euclidean", "scaled_euclidean"]

_SQRT_EPS = float(np.sqrt(np.finfo(float).eps))


def propensity_score(design: np.ndarray, treated: np.ndarray, link: ScoreLink = "logit",
                     weights: np.ndarray | None = None) -> np.ndarray:
    r"""Fit a logit or probit model of treatment and return the fitted probabilities.

    statsmodels' ``Logit``/``Probit`` (Newton's method) without weights, its binomial
    ``GLM`` with frequency weights otherwise; linearly dependent columns are dropped first.

    Parameters
    ----------
    design
        ``(n, k)`` covariates without intercept (categoricals with one level dropped).
    treated
        Boolean treatment indicator.
    link
        ``"logit"`` or ``"probit"``.
    weights
        Optional sampling weights (frequency weights of the likelihood).

    Returns
    -------
    numpy.ndarray
        :math:`\hat e(x_i) = F(\hat\alpha + x_i'\hat\beta)` with :math:`F` the logistic or
        normal distribution function, fitted by maximum likelihood.

    Raises
    ------
    MatchingError
        If the model separates treated and control units perfectly (a covariate predicts
        treatment exactly, so scores of 0 or 1 make matching meaningless).
    """
    x = sm.add_constant(design, has_constant="add")
    x = x[:, independent_columns(x)]
    y = treated.astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PerfectSeparationWarning)
        try:
            if weights is None:  # Newton on the discrete model: faster than IRLS at scale
                model = sm.Logit(y, x) if link == "logit" else sm.Probit(y, x)
                fit = model.fit(method="newton", tol=1e-12, maxiter=200, disp=0)
                fitted = fit.predict()
            else:
                link_class = (sm.families.links.Logit() if link == "logit"
                              else sm.families.links.Probit())
                model = sm.GLM(y, x, family=sm.families.Binomial(link=link_class),
                               freq_weights=weights)
                fitted = model.fit(tol=1e-12, maxiter=200).fittedvalues
        except (PerfectSeparationWarning, PerfectSeparationError,
                np.linalg.LinAlgError) as exc:
            raise MatchingError(
                "the propensity-score model separates treated and control units perfectly "
                f"({exc.__class__.__name__}); some covariate (or category) predicts treatment "
                "exactly. Match exactly on it with exact=[...] or drop it from the "
                "covariates.") from exc
    score = np.asarray(fitted, dtype=float)
    if ((score < 1e-10) | (score > 1 - 1e-10)).any():
        raise MatchingError(
            "the propensity-score model gives scores of 0 or 1 to some units (quasi-complete "
            "separation); a covariate or category predicts treatment exactly. Match exactly on "
            "it with exact=[...] or drop it from the covariates.")
    return score


def covariate_coordinates(x: np.ndarray, treated: np.ndarray, discarded: np.ndarray,
                          metric: CovariateMetric, binary: np.ndarray | None = None
                          ) -> np.ndarray:
    r"""Coordinates whose Euclidean distances are the chosen covariate metric.

    Parameters
    ----------
    x
        ``(n, k)`` covariates (categoricals as indicators scaled by :math:`1/\sqrt2`).
    treated, discarded
        Boolean arrays; discarded units do not enter the scaling.
    metric
        ``"mahalanobis"``, ``"robust_mahalanobis"``, ``"euclidean"`` or
        ``"scaled_euclidean"``.
    binary
        Which columns are 0/1 indicators (for the pooled standard deviation).

    Returns
    -------
    numpy.ndarray
        ``(n, k')`` coordinates.

    Notes
    -----
    Columns without variation are dropped. With :math:`S` the pooled within-group covariance
    of the standardised covariates,

    - Mahalanobis: :math:`d_{ij}^2 = (x_i - x_j)' S^{-1} (x_i - x_j)`, using
      :math:`z_i = L' x_i` with :math:`L L' = S^{-1}` (a generalised inverse when :math:`S`
      is singular);
    - robust Mahalanobis (Rosenbaum 2010, ch. 8): the same on column ranks (ties averaged),
      with the rank covariance rescaled so that every diagonal entry equals the variance of
      untied ranks :math:`1, \dots, n`;
    - scaled Euclidean: :math:`z_{ik} = x_{ik} / s_k` with :math:`s_k` the pooled
      within-group standard deviation;
    - Euclidean: :math:`z_i = x_i`.
    """
    keep = ~discarded
    spread = x[keep].max(axis=0) - x[keep].min(axis=0) if keep.any() else np.zeros(x.shape[1])
    varying = np.abs(spread) >= _SQRT_EPS
    if not varying.any():
        return x[:, :1].copy()
    x = x[:, varying]
    binary = (np.zeros(x.shape[1], dtype=bool) if binary is None else binary[varying])
    if metric == "euclidean":
        return x.copy()
    if metric == "scaled_euclidean":
        return x / pooled_sd(x[keep], treated[keep], binary)
    if metric == "mahalanobis":
        scaled = (x - x.mean(axis=0)) / x.std(axis=0, ddof=1)
        return scaled @ _inverse_root(pooled_covariance(scaled[keep], treated[keep]))
    ranks = np.zeros_like(x)
    ranks[keep] = np.apply_along_axis(rankdata, 0, x[keep])
    cov = np.cov(ranks[keep], rowvar=False).reshape(x.shape[1], x.shape[1])
    n = int(keep.sum())
    multiplier = np.std(np.arange(1, n + 1), ddof=1) / np.sqrt(np.diag(cov))
    return ranks @ _inverse_root(cov * np.outer(multiplier, multiplier))


def pooled_covariance(x: np.ndarray, treated: np.ndarray) -> np.ndarray:
    r"""Pooled within-group covariance.

    Notes
    -----
    :math:`S = \sum_g \sum_{i\in g}(x_i-\bar x_g)(x_i-\bar x_g)'/(n-2)`.
    """
    centred = x.copy()
    for group in (treated, ~treated):
        centred[group] -= centred[group].mean(axis=0)
    return centred.T @ centred / (len(x) - 2)


def pooled_sd(x: np.ndarray, treated: np.ndarray, binary: np.ndarray) -> np.ndarray:
    r"""Pooled within-group standard deviation of each column (MatchIt's ``pooled_sd``).

    Notes
    -----
    Continuous columns: :math:`\sqrt{\sum_g\sum_{i\in g}(x_i-\bar x_g)^2/(n-2)}`; 0/1 columns:
    :math:`\sqrt{\sum_g n_g\bar x_g(1-\bar x_g)/n}`.
    """
    n = len(x)
    out = np.empty(x.shape[1])
    for j in range(x.shape[1]):
        col = x[:, j]
        if binary[j]:
            out[j] = np.sqrt(sum(col[g].sum() * (1 - col[g].mean()) for g in (treated, ~treated))
                             / n)
        else:
            resid = np.concatenate([col[g] - col[g].mean() for g in (treated, ~treated)])
            out[j] = np.sqrt(resid @ resid / (n - 2))
    return out


def independent_columns(a: np.ndarray) -> np.ndarray:
    """Return indices of a maximal set of linearly independent columns (pivoted QR)."""
    if a.shape[1] == 0:
        return np.arange(0)
    _, r, pivots = qr(a, mode="economic", pivoting=True)
    diag = np.abs(np.diag(r))
    rank = int((diag > diag[0] * 1e-10).sum()) if diag.size and diag[0] > 0 else 0
    return np.sort(pivots[:rank])


def _inverse_root(cov: np.ndarray) -> np.ndarray:
    """Matrix ``L`` with ``L @ L.T`` the (generalised) inverse of ``cov``."""
    values, vectors = np.linalg.eigh(cov)
    positive = values > max(1e-8 * values.max(), 0.0)
    return vectors[:, positive] / np.sqrt(values[positive])
