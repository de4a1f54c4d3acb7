r"""Distances for matching: propensity scores and covariate metrics.

Every metric is turned into coordinates :math:`z_i` such that the distance between two units
is the Euclidean distance :math:`\lVert z_i - z_j\rVert`, which lets the matcher use one
nearest-neighbour search (and a KD-tree at scale) for all of them. The transformations follow
R's MatchIt 4.5 (``transform_covariates``) so that matches agree with it.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Literal

import numpy as np
import statsmodels.api as sm
from scipy.linalg import qr
from scipy.special import expit
from scipy.stats import norm, rankdata
from statsmodels.tools.sm_exceptions import ConvergenceWarning as StatsmodelsConvergenceWarning
from statsmodels.tools.sm_exceptions import (
    HessianInversionWarning,
    PerfectSeparationError,
    PerfectSeparationWarning,
)

from evaluation.errors import ConvergenceError, ConvergenceWarning, MatchingError
from evaluation.options import check_option

ScoreLink = Literal["logit", "probit"]
#: What a propensity fit that does not converge (or separates) does: stop with an error, or
#: replace the maximum-likelihood fit by a ridge-penalised one (with a warning).
OnNonconvergence = Literal["error", "penalize"]
CovariateMetric = Literal["mahalanobis", "robust_mahalanobis", "euclidean", "scaled_euclidean"]

_SQRT_EPS = float(np.sqrt(np.finfo(float).eps))

#: Largest change of a unit's linear predictor that one more Newton step may still make for a
#: propensity score that stopped short of its tolerance to be used (with a warning).
MATERIAL_STEP = 1e-6


def propensity_score(design: np.ndarray, treated: np.ndarray, link: ScoreLink = "logit",
                     weights: np.ndarray | None = None, names: Sequence[str] | None = None,
                     max_iter: int = 200, on_nonconvergence: OnNonconvergence = "error"
                     ) -> np.ndarray:
    r"""Fit a logit or probit model of treatment and return the fitted probabilities.

    statsmodels' ``Logit``/``Probit`` (Newton's method) without weights, its binomial
    ``GLM`` (IRLS) with frequency weights otherwise; linearly dependent columns are dropped
    first.

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
    names
        Name of every column of ``design``, for messages (``"covariate column j"`` by default);
        indicators named ``"variable[level]"`` are recognised as levels of one categorical.
    max_iter
        Newton (IRLS with weights) iterations allowed.
    on_nonconvergence
        ``"error"`` (default) raises as described below; ``"penalize"`` instead returns the
        scores of :func:`penalized_propensity_score` with a
        :class:`~evaluation.errors.ConvergenceWarning` saying so.

    Returns
    -------
    numpy.ndarray
        :math:`\hat e(x_i) = F(\hat\alpha + x_i'\hat\beta)` with :math:`F` the logistic or
        normal distribution function, fitted by maximum likelihood.

    Raises
    ------
    MatchingError
        If the model separates treated and control units perfectly (a covariate predicts
        treatment exactly, so scores of 0 or 1 make matching meaningless). The message names
        the covariates that separate on their own, and a categorical with several such levels.
    ConvergenceError
        If the fit stopped without converging (the iteration limit, or a stalled Newton
        step) while one more Newton step would still move some unit's linear predictor by
        more than :data:`MATERIAL_STEP`: matching on such scores would match on an arbitrary
        iterate. The message names the covariate that step moves most.

    Warns
    -----
    ConvergenceWarning
        If the fit missed its tolerance only at floating-point precision (the remaining Newton
        step is below :data:`MATERIAL_STEP`; the scores are then used), or if statsmodels
        reported a convergence or Hessian-inversion problem (its warnings are re-issued as
        this class, with the fit named). Other warnings raised during the fit pass through.

    Notes
    -----
    The remaining Newton step is :math:`\Delta = -H^{-1} g` with :math:`g` and :math:`H` the
    gradient and Hessian of the log-likelihood at the last iterate; it is material when
    :math:`\max_i |x_i'\Delta|` exceeds :data:`MATERIAL_STEP` on the scale of the linear
    predictor.
    """
    check_option("on_nonconvergence", on_nonconvergence, OnNonconvergence)
    labels = ([str(name) for name in names] if names is not None
              else [f"covariate column {j + 1}" for j in range(design.shape[1])])
    x = sm.add_constant(design, has_constant="add")
    independent = independent_columns(x)
    x = x[:, independent]
    x_labels = [(["(intercept)", *labels])[j] for j in independent]
    y = treated.astype(float)
    fit_name = f"{link} propensity-score model"
    failure: Exception | None = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.simplefilter("error", PerfectSeparationWarning)
        try:
            if weights is None:  # Newton on the discrete model: faster than IRLS at scale
                model = sm.Logit(y, x) if link == "logit" else sm.Probit(y, x)
                fit = model.fit(method="newton", tol=1e-12, maxiter=max_iter, disp=0)
                fitted = fit.predict()
                converged = bool(fit.mle_retvals["converged"])
                iterations, algorithm = int(fit.mle_retvals["iterations"]), "Newton"
            else:
                link_class = (sm.families.links.Logit() if link == "logit"
                              else sm.families.links.Probit())
                model = sm.GLM(y, x, family=sm.families.Binomial(link=link_class),
                               freq_weights=weights)
                fit = model.fit(tol=1e-12, maxiter=max_iter)
                fitted = fit.fittedvalues
                converged = bool(fit.converged)
                iterations, algorithm = int(fit.fit_history["iteration"]), "IRLS"
        except (PerfectSeparationWarning, PerfectSeparationError,
                np.linalg.LinAlgError) as exc:
            failure = exc
    reported = _reissue(caught)
    penalize = on_nonconvergence == "penalize"
    if failure is not None and penalize:
        return _penalized_instead(design, treated, link, weights,
                                  f"it separates treated and control units ({failure})")
    if failure is not None:
        cause = separation_cause(separating_columns(design, treated, labels, weights))
        raise MatchingError(
            "the propensity-score model separates treated and control units perfectly "
            f"({failure.__class__.__name__}); {cause}. Match exactly on it with exact=[...], "
            "coarsen it or drop it from the covariates.") from failure
    score = np.asarray(fitted, dtype=float)
    if ((score < 1e-10) | (score > 1 - 1e-10)).any():
        if penalize:
            return _penalized_instead(design, treated, link, weights,
                                      "it gives scores of 0 or 1 (quasi-complete separation)")
        cause = separation_cause(separating_columns(design, treated, labels, weights))
        raise MatchingError(
            "the propensity-score model gives scores of 0 or 1 to some units (quasi-complete "
            f"separation); {cause}. Match exactly on it with exact=[...], coarsen it or drop "
            "it from the covariates.")
    statsmodels_note = f" (statsmodels: {'; '.join(reported)})" if reported else ""
    if not converged:
        params = np.asarray(fit.params, dtype=float)
        step = np.linalg.lstsq(model.hessian(params), -model.score(params), rcond=None)[0]
        move = float(np.abs(x @ step).max())
        spread = np.where(np.ptp(x, axis=0) > 0, x.std(axis=0), 1.0)
        worst = x_labels[int(np.argmax(np.abs(step) * spread))]
        stopped = (f"the {fit_name} did not converge: it stopped after {iterations} of at most "
                   f"{max_iter} {algorithm} iterations{statsmodels_note}")
        if not move <= MATERIAL_STEP and penalize:
            return _penalized_instead(design, treated, link, weights,
                                      f"it stopped after {iterations} {algorithm} iterations")
        if not move <= MATERIAL_STEP:
            raise ConvergenceError(
                f"{stopped}, and one more Newton step would still move a unit's linear "
                f"predictor by {move:.2g}, mostly through {worst!r}. Matching on these scores "
                f"would match on an arbitrary iterate. Rescale {worst!r} (for example to "
                "standard deviations or thousands), coarsen or drop it, or pass your own score "
                "as distance=<column>.")
        warnings.warn(
            f"{stopped}; it stopped at floating-point precision (one more Newton step would "
            f"move no unit's linear predictor by more than {move:.1e}), so its scores are "
            f"used. If {worst!r} has a very large or small scale, rescaling it avoids this.",
            ConvergenceWarning, stacklevel=2)
    elif reported:
        warnings.warn(
            f"the {fit_name} converged after {iterations} {algorithm} iterations but "
            f"statsmodels reported a problem{statsmodels_note}; its coefficients may not be "
            "identified. Drop redundant or nearly constant covariates if the scores look odd.",
            ConvergenceWarning, stacklevel=2)
    return score


def _penalized_instead(design: np.ndarray, treated: np.ndarray, link: ScoreLink,
                       weights: np.ndarray | None, why: str) -> np.ndarray:
    warnings.warn(f"the {link} propensity-score model did not converge ({why}); as asked "
                  "(on_nonconvergence='penalize') the scores come from a ridge-penalised fit, "
                  "which shrinks every coefficient towards zero and so the scores towards the "
                  "treated share.", ConvergenceWarning, stacklevel=3)
    return penalized_propensity_score(design, treated, link, weights)


def penalized_propensity_score(design: np.ndarray, treated: np.ndarray,
                               link: ScoreLink = "logit", weights: np.ndarray | None = None,
                               penalty: float = 1.0, max_iter: int = 100) -> np.ndarray:
    r"""Fit a ridge-penalised logit or probit model of treatment; return its probabilities.

    The fallback of :func:`propensity_score` with ``on_nonconvergence="penalize"``: the
    penalised log-likelihood is strictly concave, so its maximum exists (also under
    separation and with one indicator per level of a categorical with many levels) and
    Newton's method (Fisher scoring for the probit) finds it in a few steps.

    Parameters
    ----------
    design
        ``(n, k)`` covariates without intercept.
    treated
        Boolean treatment indicator.
    link
        ``"logit"`` or ``"probit"``.
    weights
        Optional frequency weights.
    penalty
        :math:`\lambda` below.
    max_iter
        Newton steps allowed.

    Returns
    -------
    numpy.ndarray
        :math:`F(\hat\alpha + x_i'\hat\beta)`.

    Raises
    ------
    ConvergenceError
        If the steps have not settled after ``max_iter`` iterations.

    Notes
    -----
    Maximises :math:`\sum_i w_i \ell_i(\alpha + x_i'\beta) - \tfrac{\lambda}{2}\sum_j
    (s_j\beta_j)^2` with :math:`s_j` the standard deviation of column :math:`j` (1 for 0/1
    indicators, so every level of a categorical is shrunk alike) and the intercept
    unpenalised: a normal prior with standard deviation :math:`1/\sqrt\lambda` on the
    log-odds (probit index) change per standard deviation or per category. Each step solves
    :math:`(X'WX + \Lambda)\Delta = X'u - \Lambda\beta` with :math:`W` the expected
    information weights and :math:`u` the score of the linear predictor, halving
    :math:`\Delta` while the penalised log-likelihood would fall; it stops when
    :math:`\max_i |x_i'\Delta| < 10^{-10}`.
    """
    x = np.column_stack([np.ones(len(design)), design])
    y = np.asarray(treated, dtype=float)
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=float)
    binary = np.array([np.isin(col, (0.0, 1.0)).all() for col in design.T], dtype=bool)
    scale = np.where(binary, 1.0, design.std(axis=0)) if design.size else np.zeros(0)
    diagonal = np.concatenate([[0.0], penalty * np.where(scale > 0, scale, 1.0) ** 2])

    def objective(beta: np.ndarray) -> float:
        p = np.clip(_cdf(x @ beta, link), 1e-300, 1 - 1e-16)
        return float(w @ (y * np.log(p) + (1 - y) * np.log1p(-p))
                     - 0.5 * beta @ (diagonal * beta))

    beta = np.zeros(x.shape[1])
    current = objective(beta)
    for _ in range(max_iter):
        eta = x @ beta
        p = np.clip(_cdf(eta, link), 1e-15, 1 - 1e-15)
        if link == "logit":
            info, score = p * (1 - p), y - p
        else:
            density = norm.pdf(eta)
            info = density**2 / (p * (1 - p))
            score = (y - p) * density / (p * (1 - p))
        hessian = (x * (w * info)[:, None]).T @ x + np.diag(diagonal)
        step = np.linalg.solve(hessian, x.T @ (w * score) - diagonal * beta)
        for _ in range(30):
            trial = objective(beta + step)
            if trial >= current - 1e-12 * abs(current):
                break
            step = step / 2
        beta, current = beta + step, trial
        if float(np.abs(x @ step).max()) < 1e-10:
            return _cdf(x @ beta, link)
    raise ConvergenceError(f"the ridge-penalised {link} propensity-score model did not settle "
                           f"in {max_iter} Newton steps; coarsen or drop the covariate with "
                           "many levels, or pass your own score as distance=<column>.")


def _cdf(eta: np.ndarray, link: ScoreLink) -> np.ndarray:
    return expit(eta) if link == "logit" else norm.cdf(eta)


def separating_columns(design: np.ndarray, treated: np.ndarray, names: Sequence[str],
                       weights: np.ndarray | None = None) -> list[tuple[str, str]]:
    r"""Covariates that on their own separate treated from control units.

    A column separates when its treated and control values do not overlap or only touch
    (for a 0/1 indicator: all units with one of its values are in one group); a logit or
    probit then drives its coefficient to infinity. Constant columns are skipped and units
    with zero weight ignored. Separation by a combination of covariates is not detected.

    Parameters
    ----------
    design
        ``(n, k)`` covariates.
    treated
        Boolean (or 0/1) treatment indicator.
    names
        Name of every column.
    weights
        Optional weights; units with weight zero do not count.

    Returns
    -------
    list of tuple
        ``(name, description)`` of every separating column, in column order.
    """
    treated = np.asarray(treated).astype(bool)
    used = np.ones(len(treated), dtype=bool) if weights is None else np.asarray(weights) > 0
    t, c = treated & used, ~treated & used
    if not t.any() or not c.any():
        return []
    found = []
    for j, name in enumerate(names):
        col = design[:, j]
        t_lo, t_hi, c_lo, c_hi = col[t].min(), col[t].max(), col[c].min(), col[c].max()
        if min(t_lo, c_lo) == max(t_hi, c_hi) or not (t_lo >= c_hi or t_hi <= c_lo):
            continue
        if np.isin(col[used], (0.0, 1.0)).all():
            level, group = ((1, "treated") if c_hi == 0 else (1, "controls") if t_hi == 0
                            else (0, "controls") if t_lo == 1 else (0, "treated"))
            count = int((col[used] == level).sum())
            found.append((name, f"all {count} units with {name} = {level} are {group}"))
        elif t_lo >= c_hi:
            found.append((name, f"every treated unit has {name} >= {t_lo:.6g}, every control "
                                f"{name} <= {c_hi:.6g}"))
        else:
            found.append((name, f"every treated unit has {name} <= {t_hi:.6g}, every control "
                                f"{name} >= {c_lo:.6g}"))
    return found


def separation_cause(found: list[tuple[str, str]]) -> str:
    """Sentence naming the separating covariates found by :func:`separating_columns`.

    Indicators named ``"variable[level]"`` that separate are grouped by their categorical;
    one with several such levels is reported as having too many small levels.
    """
    if not found:
        return ("some covariate (or category) predicts treatment exactly, possibly only in "
                "combination with others")
    groups: dict[str, list[tuple[str, str]]] = {}
    for name, description in found:
        source = name.split("[", 1)[0] if name.endswith("]") and "[" in name else name
        groups.setdefault(source, []).append((name, description))
    parts = []
    for source, items in groups.items():
        if len(items) > 1:
            shown = ", ".join(name for name, _ in items[:4]) + (", ..." if len(items) > 4 else "")
            parts.append(f"the categorical {source!r} has {len(items)} levels whose units are "
                         f"all treated or all controls ({shown}): too many small levels for a "
                         "propensity model")
        else:
            name, description = items[0]
            parts.append(f"{name!r} predicts treatment exactly on its own ({description})")
    return "; ".join(parts)


def _reissue(caught: list[warnings.WarningMessage]) -> list[str]:
    """Return statsmodels' convergence messages and issue every other recorded warning again."""
    reported = []
    for record in caught:
        if issubclass(record.category, (StatsmodelsConvergenceWarning, HessianInversionWarning)):
            text = " ".join(str(record.message).split())
            if text not in reported:
                reported.append(text)
        else:
            warnings.warn_explicit(record.message, record.category, record.filename,
                                   record.lineno, source=record.source)
    return reported


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
