r"""Sant'Anna and Zhao (2020) two-period panel DiD estimators with influence functions.

Each function takes, for the units of one 2x2 comparison, the outcome change
:math:`\Delta Y_i`, the treatment indicator :math:`D_i`, covariates :math:`X_i` (with an
intercept column) and sampling weights :math:`w_i` (mean one), and returns the ATT and its
influence function :math:`\psi_i` on that sample. They follow R ``DRDID`` (and its Python
port used by ``csdid``): ``reg_did_panel``, ``std_ipw_did_panel``, ``drdid_panel`` and
``drdid_imp_panel``, including the propensity-score cap at :math:`1-10^{-6}` and the
trimming of comparison units with :math:`\hat p \ge 0.995`.

The propensity-score fits warn with :class:`~evaluation.errors.ConvergenceWarning` when they
do not converge, as R ``DRDID`` does ("Propensity score estimation did not converge"), naming
a covariate that separates treated and comparison units when there is one. The logit's
last iterate is then used: with separation the scores of the separated units are (near) 0
or 1, so ``dr`` and ``ipw`` cells with scores near one are left NaN by the caller. The
improved estimator is NaN when the inverse probability tilting does not balance the
covariates.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from evaluation.errors import ConvergenceWarning

PS_CAP = 1 - 1e-6
TRIM_LEVEL = 0.995
#: Largest change of a linear predictor in the last Newton step of a logit that stopped at
#: its iteration limit for the stop to count as one at floating-point precision.
MATERIAL_STEP = 1e-6
#: Covariate imbalance (in standard deviations) below which an inverse probability tilting
#: counts as converged whatever the solver reports: near the optimum the loss no longer
#: resolves progress and scipy's trust-region solver may stop with "A bad approximation
#: caused failure to predict improvement" (as entropy balancing, judged by balance).
TILTING_TOLERANCE = 1e-8
#: Largest covariate imbalance (in standard deviations) left by an inverse probability
#: tilting that did not converge for its scores to be used (with a warning).
TILTING_IMBALANCE = 1e-6
_EXP_LIMIT = 700.0  # |index| beyond which exp() overflows; probabilities are 0 or 1 there


@dataclass(frozen=True)
class PropensityScore:
    r"""Fitted propensity score with what the influence functions need.

    Attributes
    ----------
    ps
        Fitted probabilities, capped at :data:`PS_CAP`.
    keep
        False for comparison units trimmed for :math:`\hat p \ge 0.995`.
    score, hessian
        The logit scores :math:`w_i (D_i - \hat p_i)` and :math:`H^{-1}` with
        :math:`H = n^{-1}\sum_i w_i \hat p_i (1-\hat p_i) X_i X_i^\top`; the coefficients'
        asymptotically linear representation is :math:`s_i X_i^\top H^{-1}`. ``hessian`` is
        None when :math:`H` is singular (fitted probabilities of 0 or 1 under separation):
        the score is then not identified and its cells are not estimated.
    converged
        Whether the logit converged (when not, the scores are the last iterate's and a
        :class:`~evaluation.errors.ConvergenceWarning` was issued).
    iterations
        Newton-Raphson iterations used.
    coefficients
        The logit coefficients (a start for refits on subsamples).
    """

    ps: np.ndarray
    keep: np.ndarray
    score: np.ndarray
    hessian: np.ndarray | None
    converged: bool = True
    iterations: int = 0
    coefficients: np.ndarray | None = None


class TwoByTwo(NamedTuple):
    r"""A 2x2 DiD estimate with its influence function and outcome weights.

    Attributes
    ----------
    att
        The estimate :math:`\hat\tau`.
    influence
        Influence function :math:`\psi_i` on the comparison's units.
    weights
        How much each unit's outcome change counts in the group mean it enters: the
        estimator is linear in :math:`\Delta Y` given the covariates,
        :math:`\hat\tau = \sum_{D_i=1} a_i\Delta Y_i - \sum_{D_i=0} a_i\Delta Y_i`, and
        ``weights`` is :math:`a` (summing to one within each group). The share of a cluster
        in its group's sum is the leverage that the bias-reduced (CR2) variance corrects for.
    """

    att: float
    influence: np.ndarray
    weights: np.ndarray


@dataclass(frozen=True)
class _LogitFit:
    """Coefficients of the IRLS logit with how the iteration ended."""

    coefficients: np.ndarray
    iterations: int
    converged: bool
    last_move: float  # largest change of a linear predictor in the last step
    stopped: str | None = None  # why the iteration broke off early, if it did


def logit_coefficients(d: np.ndarray, x: np.ndarray, w: np.ndarray,
                       max_iter: int = 100) -> np.ndarray:
    r"""Weighted maximum-likelihood logit coefficients by Newton-Raphson (IRLS).

    The same algorithm as statsmodels' ``GLM(d, x, Binomial(), freq_weights=w)`` (started
    from :math:`\mu = (d + 1/2)/2`) but iterated until the coefficients stop changing
    (:math:`\max|\Delta\gamma| < 10^{-12}`), vectorised and without statsmodels'
    import cost (about a second of the command-line start-up). The tests compare it with
    statsmodels to 1e-10.

    Parameters
    ----------
    d, x, w
        Treatment indicator, covariates (intercept first) and weights.
    max_iter
        Newton-Raphson iterations allowed.

    Returns
    -------
    numpy.ndarray
        The coefficients; the last iterate's if the iteration did not converge.

    Warns
    -----
    ConvergenceWarning
        If the coefficients still changed after ``max_iter`` iterations, or the iteration
        broke off (a singular :math:`X'WVX` once fitted probabilities reach 0 or 1). The
        message names a covariate that separates treated and comparison units, if one does.

    Notes
    -----
    Each step solves :math:`(X'WVX)\Delta = X'W(d - \mu)` with
    :math:`V = \mathrm{diag}(\mu(1-\mu))`.
    """
    logit = _irls_logit(d, x, w, max_iter)
    if not logit.converged:
        warnings.warn(_not_converged_message(logit, d, x, w, max_iter), ConvergenceWarning,
                      stacklevel=2)
    return logit.coefficients


def _irls_logit(d: np.ndarray, x: np.ndarray, w: np.ndarray, max_iter: int,
                start: np.ndarray | None = None) -> _LogitFit:
    """Run the iteration of :func:`logit_coefficients` and report how it ended.

    ``start`` replaces statsmodels' starting values (the iteration stops at the same
    precision, so the coefficients agree to about 1e-12).
    """
    if start is None:
        mu = (d + 0.5) / 2
        eta = np.log(mu / (1 - mu))
        gamma = np.linalg.lstsq(x * np.sqrt(w * mu * (1 - mu))[:, None],
                                np.sqrt(w * mu * (1 - mu)) * (eta + (d - mu) / (mu * (1 - mu))),
                                rcond=None)[0]
    else:
        gamma = start.copy()
    iterations, move = 0, np.inf
    for iterations in range(1, max_iter + 1):
        mu = 1 / (1 + np.exp(-np.clip(x @ gamma, -_EXP_LIMIT, _EXP_LIMIT)))
        weight = w * mu * (1 - mu)
        try:
            step = np.linalg.solve(x.T @ (weight[:, None] * x), x.T @ (w * (d - mu)))
        except np.linalg.LinAlgError:
            step = None
        if step is None or not np.isfinite(step).all():
            return _LogitFit(gamma, iterations - 1, False, move,
                             "X'WX became singular as fitted probabilities reached 0 or 1")
        gamma = gamma + step
        move = float(np.abs(x @ step).max())
        if np.max(np.abs(step)) < 1e-12:
            return _LogitFit(gamma, iterations, True, move)
    return _LogitFit(gamma, iterations, False, move)


def _not_converged_message(logit: _LogitFit, d: np.ndarray, x: np.ndarray, w: np.ndarray,
                           max_iter: int) -> str:
    """Explain a logit that did not converge: where it stopped and, if found, why."""
    head = (f"the propensity-score logit did not converge: it stopped after "
            f"{logit.iterations} of at most {max_iter} Newton-Raphson iterations")
    if logit.stopped is None and logit.last_move <= MATERIAL_STEP:
        return (f"{head} at floating-point precision (the last step moved no linear predictor "
                f"by more than {logit.last_move:.1e}), so its scores are used. Rescaling "
                "covariates with a very large or small scale avoids this.")
    reason = (logit.stopped if logit.stopped is not None
              else f"the last step still moved a linear predictor by {logit.last_move:.2g}")
    return (f"{head} ({reason}); {_separation(d, x, w)}. The propensity scores are those of "
            "the last iterate, 0 or 1 for separated units (cells whose scores come near one "
            "are left NaN by method='dr' and 'ipw'). Drop or coarsen the covariate responsible, "
            "or use method='reg', which needs no propensity score.")


def _separation(d: np.ndarray, x: np.ndarray, w: np.ndarray) -> str:
    """Name the covariates (columns of ``x``, the intercept being column 0) that separate."""
    from evaluation.matching.distance import separating_columns, separation_cause

    names = [f"covariate column {j}" for j in range(x.shape[1])]
    found = separating_columns(x, d == 1, names, w)
    if not found:
        return ("no single covariate separates treated and comparison units, but a "
                "combination may, or a covariate with a very large or small scale slows the "
                "iteration")
    cause = separation_cause(found)
    if sum(description.startswith("all ") for _, description in found) > 1:
        cause += " (several indicators: a categorical with too many small levels?)"
    return cause + " (columns of the covariate design, the intercept being column 0)"


def fit_logit(d: np.ndarray, x: np.ndarray, w: np.ndarray, max_iter: int = 100,
              start: np.ndarray | None = None) -> PropensityScore:
    """Fit a weighted logit of ``d`` on ``x`` with its linear representation.

    Warns :class:`~evaluation.errors.ConvergenceWarning` as :func:`logit_coefficients` does;
    :attr:`PropensityScore.converged` records the outcome. ``start`` gives starting
    coefficients (e.g. the full sample's, for a refit without a few units).
    """
    logit = _irls_logit(d, x, w, max_iter, start)
    if not logit.converged:
        warnings.warn(_not_converged_message(logit, d, x, w, max_iter), ConvergenceWarning,
                      stacklevel=3)
    with np.errstate(over="ignore"):
        ps = 1 / (1 + np.exp(-(x @ logit.coefficients)))
    ps = np.minimum(ps, PS_CAP)
    keep = np.ones(d.size, dtype=bool)
    keep[d == 0] = ps[d == 0] < TRIM_LEVEL
    information = x.T @ ((w * ps * (1 - ps))[:, None] * x)
    hessian = (None if 1 / np.linalg.cond(information, 1) <= np.finfo(float).eps
               else np.linalg.inv(information) * d.size)
    return PropensityScore(ps, keep, w * (d - ps), hessian, logit.converged, logit.iterations,
                           logit.coefficients)


class Comparison:
    """The units of one 2x2 comparison and the nuisance fits that do not depend on outcomes.

    Cells that share the comparison sample and covariates (e.g. every period of a cohort
    against the never treated) reuse the propensity score and the outcome-regression Gram
    matrix.

    Parameters
    ----------
    d, x, w
        Treatment indicator, covariates (intercept first) and weights (mean one).
    start
        Optional starting coefficients of the propensity-score logit.
    """

    def __init__(self, d: np.ndarray, x: np.ndarray, w: np.ndarray,
                 start: np.ndarray | None = None) -> None:
        self.d, self.x, self.w = d, x, w
        self._start = start
        self.n = d.size
        self.w_control = w * (1 - d)
        self.wx_control = self.w_control[:, None] * x
        self._ps: PropensityScore | None = None
        self._ipw_weights: tuple[np.ndarray, np.ndarray] | None = None
        gram = self.wx_control.T @ x
        self.singular = 1 / np.linalg.cond(gram, 1) <= np.finfo(float).eps
        self.gram_inv = None if self.singular else np.linalg.inv(gram / self.n)

    @property
    def ps(self) -> PropensityScore:
        """The logit propensity score (fitted on first use)."""
        if self._ps is None:
            self._ps = fit_logit(self.d, self.x, self.w, start=self._start)
        return self._ps

    @property
    def ipw_weights(self) -> tuple[np.ndarray, np.ndarray]:
        """Weights of treated and (reweighted, trimmed) comparison units."""
        if self._ipw_weights is None:
            ps = self.ps
            self._ipw_weights = (ps.keep * self.w * self.d,
                                 ps.keep * self.w * ps.ps * (1 - self.d) / (1 - ps.ps))
        return self._ipw_weights

    def ols(self, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r"""Regress ``dy`` on ``x`` among comparison units (weighted).

        Returns fitted values for all units and the OLS scores :math:`w_i(1-D_i)e_i`; the
        coefficients' linear representation is :math:`s_i X_i'(X'WX/n)^{-1}`.
        """
        beta = self.gram_inv @ (self.wx_control.T @ dy) / self.n
        fitted = self.x @ beta
        return fitted, self.w_control * (dy - fitted)

    def ols_effect(self, scores: np.ndarray, derivative: np.ndarray) -> np.ndarray:
        """Estimation effect of the OLS coefficients: ``lin_rep @ derivative`` (n-vector)."""
        return scores * (self.x @ (self.gram_inv @ derivative))

    def ps_effect(self, derivative: np.ndarray) -> np.ndarray:
        """Estimation effect of the logit coefficients: ``lin_rep @ derivative``."""
        ps = self.ps
        return ps.score * (self.x @ (ps.hessian @ derivative))

    def column_means(self, weights: np.ndarray) -> np.ndarray:
        """Mean of ``weights * x`` over units (a k-vector)."""
        return weights @ self.x / self.n

    def regression_weights(self, means: np.ndarray) -> np.ndarray:
        r"""Weights of the comparison outcomes in :math:`\bar x'\hat\beta_0` (sum to ``means[0]``).

        :math:`\hat\beta_0 = (X'W_0X)^{-1}X'W_0\Delta Y`, so
        :math:`\bar x'\hat\beta_0 = \sum_j w_j(1-D_j)X_j'(X'W_0X)^{-1}\bar x\,\Delta Y_j`.
        """
        return self.w_control * (self.x @ (self.gram_inv @ means)) / self.n


def reg_did(dy: np.ndarray, c: Comparison) -> TwoByTwo:
    r"""Outcome-regression DiD (Heckman, Ichimura and Todd 1997).

    Notes
    -----
    .. math::

        \hat\tau = \frac{\sum_i w_i D_i (\Delta Y_i - X_i'\hat\beta_0)}{\sum_i w_i D_i},

    with :math:`\hat\beta_0` the weighted OLS of :math:`\Delta Y` on :math:`X` among
    comparison units; the influence function adds the estimation effect of
    :math:`\hat\beta_0`.
    """
    fitted, scores = c.ols(dy)
    w_treat = c.w * c.d
    mean_treat = w_treat.mean()
    eta_treat = np.mean(w_treat * dy) / mean_treat
    eta_cont = np.mean(w_treat * fitted) / mean_treat
    inf_treat = w_treat * (dy - eta_treat) / mean_treat
    inf_cont = (w_treat * (fitted - eta_cont)
                + c.ols_effect(scores, c.column_means(w_treat))) / mean_treat
    weights = w_treat / w_treat.sum() + c.regression_weights(c.column_means(w_treat)
                                                             / mean_treat)
    return TwoByTwo(float(eta_treat - eta_cont), inf_treat - inf_cont, weights)


def ipw_did(dy: np.ndarray, c: Comparison) -> TwoByTwo:
    r"""Normalised (Hajek) inverse-probability-weighted DiD (Abadie 2005).

    Notes
    -----
    .. math::

        \hat\tau = \frac{\sum_i w_i D_i \Delta Y_i}{\sum_i w_i D_i}
            - \frac{\sum_i w_i \frac{\hat p_i (1-D_i)}{1-\hat p_i} \Delta Y_i}
                   {\sum_i w_i \frac{\hat p_i (1-D_i)}{1-\hat p_i}}.
    """
    w_treat, w_cont = c.ipw_weights
    eta_treat = np.mean(w_treat * dy) / w_treat.mean()
    eta_cont = np.mean(w_cont * dy) / w_cont.mean()
    inf_treat = w_treat * (dy - eta_treat) / w_treat.mean()
    m2 = c.column_means(w_cont * (dy - eta_cont))
    inf_cont = (w_cont * (dy - eta_cont) + c.ps_effect(m2)) / w_cont.mean()
    return TwoByTwo(float(eta_treat - eta_cont), inf_treat - inf_cont,
                    w_treat / w_treat.sum() + w_cont / w_cont.sum())


def dr_did(dy: np.ndarray, c: Comparison) -> TwoByTwo:
    r"""Locally efficient doubly robust DiD for panel data (Sant'Anna and Zhao 2020, eq. 3.1).

    Notes
    -----
    With :math:`\hat\mu_0(X) = X'\hat\beta_0` from the comparison units and a logit
    propensity score :math:`\hat p`,

    .. math::

        \hat\tau = \frac{\sum_i w_i D_i (\Delta Y_i - \hat\mu_0(X_i))}{\sum_i w_i D_i}
          - \frac{\sum_i w_i \frac{\hat p_i(1-D_i)}{1-\hat p_i}(\Delta Y_i - \hat\mu_0(X_i))}
                 {\sum_i w_i \frac{\hat p_i(1-D_i)}{1-\hat p_i}},

    consistent if either the outcome model or the propensity score is correct. The
    influence function includes the estimation effects of both nuisance models.
    """
    w_treat, w_cont = c.ipw_weights
    fitted, scores = c.ols(dy)
    resid = dy - fitted
    eta_treat = np.mean(w_treat * resid) / w_treat.mean()
    eta_cont = np.mean(w_cont * resid) / w_cont.mean()
    inf_treat = (w_treat * (resid - eta_treat)
                 - c.ols_effect(scores, c.column_means(w_treat))) / w_treat.mean()
    m2 = c.column_means(w_cont * (resid - eta_cont))
    inf_cont = (w_cont * (resid - eta_cont) + c.ps_effect(m2)
                - c.ols_effect(scores, c.column_means(w_cont))) / w_cont.mean()
    imbalance = c.column_means(w_treat) / w_treat.mean() - c.column_means(w_cont) / w_cont.mean()
    weights = w_treat / w_treat.sum() + w_cont / w_cont.sum() + c.regression_weights(imbalance)
    return TwoByTwo(float(eta_treat - eta_cont), inf_treat - inf_cont, weights)


def calibrated_propensity(d: np.ndarray, x: np.ndarray, w: np.ndarray,
                          max_iter: int = 1000) -> np.ndarray:
    r"""Propensity score by inverse probability tilting (Graham, Pinto and Egel 2012).

    Parameters
    ----------
    d, x, w
        Treatment indicator, covariates (intercept first) and weights.
    max_iter
        Trust-region Newton iterations allowed (R ``DRDID`` allows ``trust`` 1000).

    Returns
    -------
    numpy.ndarray
        Fitted probabilities capped at :data:`PS_CAP`; the last iterate's if the fit did not
        converge.

    Warns
    -----
    ConvergenceWarning
        If the trust-region solver stops without converging (R ``DRDID`` warns too); the
        message gives the remaining covariate imbalance and names a covariate that separates
        treated and comparison units, if one does. That the logit used as the start did not
        converge is not reported: it is only a start.

    Notes
    -----
    Minimises :math:`-n^{-1}\sum_i w_i [D_i X_i'\gamma - (1-D_i)\exp(X_i'\gamma)]`, whose
    first-order conditions balance the covariates of the treated and the reweighted
    comparison units exactly; started from the logit coefficients as in R ``DRDID``. The
    fit counts as converged when scipy reports success or when no covariate is out of
    balance by more than :data:`TILTING_TOLERANCE` standard deviations (the solver's own
    gradient tolerance can be out of reach in floating point). The loss is unbounded below
    when a covariate separates the groups, and the solver then runs to ``max_iter``.
    """
    ps, message = _tilting(d, x, w, max_iter)
    if message is not None:
        warnings.warn(f"{message} The scores are those of the last iterate.",
                      ConvergenceWarning, stacklevel=2)
    return ps


def _tilting(d: np.ndarray, x: np.ndarray, w: np.ndarray, max_iter: int
             ) -> tuple[np.ndarray, str | None]:
    """Fit :func:`calibrated_propensity`; return the scores and, unless it converged, why not.

    The gradient of the loss is the covariate imbalance between the treated and the
    reweighted comparison units; the fit converged when the solver says so or no covariate is
    out of balance by more than :data:`TILTING_TOLERANCE` of its standard deviation. The
    message starts with ``"Stopped at floating-point precision"`` when none is out of
    balance by more than :data:`TILTING_IMBALANCE`.
    """
    from scipy import optimize  # imported on use: only the improved estimator needs it

    start = _irls_logit(d, x, w, 100).coefficients

    def loss(gamma: np.ndarray) -> tuple[float, np.ndarray]:
        index = x @ gamma
        e = np.exp(index)
        value = -np.mean(np.where(d == 1, index, -e) * w)
        grad = -np.mean((np.where(d == 1, 1.0, -e) * w)[:, None] * x, axis=0)
        return value, grad

    def hess(gamma: np.ndarray) -> np.ndarray:
        e = np.exp(x @ gamma)
        return (x.T @ ((np.where(d == 1, 0.0, e) * w)[:, None] * x)) / d.size

    result = optimize.minimize(loss, start, jac=True, hess=hess, method="trust-exact",
                               options={"gtol": 1e-10, "maxiter": max_iter})
    ps = np.minimum(1 / (1 + np.exp(-(x @ result.x))), PS_CAP)
    spread = x.std(axis=0)
    imbalance = float(np.max(np.abs(result.jac) / np.where(spread > 0, spread, 1.0)))
    if result.success or imbalance <= TILTING_TOLERANCE:
        return ps, None
    stopped = ("the calibrated propensity score (inverse probability tilting) did not "
               f"converge: the trust-region solver stopped after {result.nit} of at most "
               f"{max_iter} iterations ({' '.join(str(result.message).split()).rstrip('.')})")
    if imbalance <= TILTING_IMBALANCE:
        return ps, (f"Stopped at floating-point precision: {stopped}, but no covariate is out "
                    f"of balance by more than {imbalance:.1e} standard deviations.")
    return ps, (f"{stopped} with the treated and reweighted comparison covariate means still "
                f"apart by up to {imbalance:.2g} standard deviations; {_separation(d, x, w)}. "
                "Drop or coarsen the covariate responsible, or use method='dr' (logit propensity "
                "score; cells without overlap are NaN).")


def dr_improved_did(dy: np.ndarray, c: Comparison) -> TwoByTwo:
    r"""Improved (locally efficient and DR) DiD of Sant'Anna and Zhao (2020, sec. 3.1).

    Notes
    -----
    The propensity score is fitted by inverse probability tilting and the outcome model by
    OLS weighted with :math:`\hat p/(1-\hat p)` among comparison units; with these nuisance
    fits the estimator has no first-order estimation effect, so its influence function is

    .. math::

        \psi_i = \frac{w_i D_i(\Delta Y_i - \hat\mu_0 - \hat\tau_1)}{\overline{w D}}
          - \frac{w_i \frac{\hat p_i(1-D_i)}{1-\hat p_i}(\Delta Y_i - \hat\mu_0 - \hat\tau_0)}
                 {\overline{w \hat p (1-D)/(1-\hat p)}}.

    If the tilting stops short of convergence by more than floating-point precision (for
    instance because a covariate separates treated and comparison units), the ATT is NaN
    with a zero influence function, after a :class:`~evaluation.errors.ConvergenceWarning`
    that names the covariate.
    """
    d, x, w = c.d, c.x, c.w
    ps, message = _tilting(d, x, w, 1000)
    if message is not None and not message.startswith("Stopped at floating-point precision"):
        warnings.warn(f"{message} The ATT(g,t) of this comparison is NaN: the tilting did not "
                      "balance the covariates, which is what this estimator rests on.",
                      ConvergenceWarning, stacklevel=3)
        return TwoByTwo(np.nan, np.zeros(d.size), np.zeros(d.size))
    if message is not None:
        warnings.warn(f"{message} Its scores are used.", ConvergenceWarning, stacklevel=3)
    wc = w * ps / (1 - ps) * (1 - d)
    gram = (wc[:, None] * x).T @ x
    beta = np.linalg.solve(gram, (wc[:, None] * x).T @ dy)
    resid = dy - x @ beta
    w_treat = w * d
    w_cont = w * ps * (1 - d) / (1 - ps)
    eta_treat = np.mean(w_treat * resid) / w_treat.mean()
    eta_cont = np.mean(w_cont * resid) / w_cont.mean()
    influence = (w_treat * (resid - eta_treat) / w_treat.mean()
                 - w_cont * (resid - eta_cont) / w_cont.mean())
    imbalance = w_treat @ x / w_treat.sum() - w_cont @ x / w_cont.sum()  # ~0 after tilting
    weights = (w_treat / w_treat.sum() + w_cont / w_cont.sum()
               + wc * (x @ np.linalg.solve(gram, imbalance)))
    return TwoByTwo(float(eta_treat - eta_cont), influence, weights)
