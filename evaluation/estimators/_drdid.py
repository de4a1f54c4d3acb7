r"""Sant'Anna and Zhao (2020) two-period panel DiD estimators with influence functions.

Each function takes, for the units of one 2x2 comparison, the outcome change
:math:`\Delta Y_i`, the treatment indicator :math:`D_i`, covariates :math:`X_i` (with an
intercept column) and sampling weights :math:`w_i` (mean one), and returns the ATT and its
influence function :math:`\psi_i` on that sample. They follow R ``DRDID`` (and its Python
port used by ``csdid``): ``reg_did_panel``, ``std_ipw_did_panel``, ``drdid_panel`` and
``drdid_imp_panel``, including the propensity-score cap at :math:`1-10^{-6}` and the
trimming of comparison units with :math:`\hat p \ge 0.995`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PS_CAP = 1 - 1e-6
TRIM_LEVEL = 0.995


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
        asymptotically linear representation is :math:`s_i X_i^\top H^{-1}`.
    """

    ps: np.ndarray
    keep: np.ndarray
    score: np.ndarray
    hessian: np.ndarray


def logit_coefficients(d: np.ndarray, x: np.ndarray, w: np.ndarray,
                       max_iter: int = 100) -> np.ndarray:
    r"""Weighted maximum-likelihood logit coefficients by Newton-Raphson (IRLS).

    The same algorithm as statsmodels' ``GLM(d, x, Binomial(), freq_weights=w)`` (started
    from :math:`\mu = (d + 1/2)/2`) but iterated until the coefficients stop changing
    (:math:`\max|\Delta\gamma| < 10^{-12}`), vectorised and without statsmodels'
    import cost (about a second of the command-line start-up). The tests compare it with
    statsmodels to 1e-10.

    Notes
    -----
    Each step solves :math:`(X'WVX)\Delta = X'W(d - \mu)` with
    :math:`V = \mathrm{diag}(\mu(1-\mu))`.
    """
    mu = (d + 0.5) / 2
    eta = np.log(mu / (1 - mu))
    gamma = np.linalg.lstsq(x * np.sqrt(w * mu * (1 - mu))[:, None],
                            np.sqrt(w * mu * (1 - mu)) * (eta + (d - mu) / (mu * (1 - mu))),
                            rcond=None)[0]
    for _ in range(max_iter):
        mu = 1 / (1 + np.exp(-(x @ gamma)))
        weight = w * mu * (1 - mu)
        step = np.linalg.solve(x.T @ (weight[:, None] * x), x.T @ (w * (d - mu)))
        gamma = gamma + step
        if np.max(np.abs(step)) < 1e-12:
            break
    return gamma


def fit_logit(d: np.ndarray, x: np.ndarray, w: np.ndarray) -> PropensityScore:
    """Fit a weighted logit of ``d`` on ``x`` with its linear representation."""
    with np.errstate(over="ignore"):
        ps = 1 / (1 + np.exp(-(x @ logit_coefficients(d, x, w))))
    ps = np.minimum(ps, PS_CAP)
    keep = np.ones(d.size, dtype=bool)
    keep[d == 0] = ps[d == 0] < TRIM_LEVEL
    hessian = np.linalg.inv(x.T @ ((w * ps * (1 - ps))[:, None] * x)) * d.size
    return PropensityScore(ps, keep, w * (d - ps), hessian)


class Comparison:
    """The units of one 2x2 comparison and the nuisance fits that do not depend on outcomes.

    Cells that share the comparison sample and covariates (e.g. every period of a cohort
    against the never treated) reuse the propensity score and the outcome-regression Gram
    matrix.

    Parameters
    ----------
    d, x, w
        Treatment indicator, covariates (intercept first) and weights (mean one).
    """

    def __init__(self, d: np.ndarray, x: np.ndarray, w: np.ndarray) -> None:
        self.d, self.x, self.w = d, x, w
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
            self._ps = fit_logit(self.d, self.x, self.w)
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


def reg_did(dy: np.ndarray, c: Comparison) -> tuple[float, np.ndarray]:
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
    return float(eta_treat - eta_cont), inf_treat - inf_cont


def ipw_did(dy: np.ndarray, c: Comparison) -> tuple[float, np.ndarray]:
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
    return float(eta_treat - eta_cont), inf_treat - inf_cont


def dr_did(dy: np.ndarray, c: Comparison) -> tuple[float, np.ndarray]:
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
    return float(eta_treat - eta_cont), inf_treat - inf_cont


def calibrated_propensity(d: np.ndarray, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    r"""Propensity score by inverse probability tilting (Graham, Pinto and Egel 2012).

    Notes
    -----
    Minimises :math:`-n^{-1}\sum_i w_i [D_i X_i'\gamma - (1-D_i)\exp(X_i'\gamma)]`, whose
    first-order conditions balance the covariates of the treated and the reweighted
    comparison units exactly; started from the logit coefficients as in R ``DRDID``.
    """
    from scipy import optimize  # imported on use: only the improved estimator needs it

    start = logit_coefficients(d, x, w)

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
                               options={"gtol": 1e-10})
    return np.minimum(1 / (1 + np.exp(-(x @ result.x))), PS_CAP)


def dr_improved_did(dy: np.ndarray, c: Comparison) -> tuple[float, np.ndarray]:
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
    """
    d, x, w = c.d, c.x, c.w
    ps = calibrated_propensity(d, x, w)
    wc = w * ps / (1 - ps) * (1 - d)
    beta = np.linalg.solve((wc[:, None] * x).T @ x, (wc[:, None] * x).T @ dy)
    resid = dy - x @ beta
    w_treat = w * d
    w_cont = w * ps * (1 - d) / (1 - ps)
    eta_treat = np.mean(w_treat * resid) / w_treat.mean()
    eta_cont = np.mean(w_cont * resid) / w_cont.mean()
    influence = (w_treat * (resid - eta_treat) / w_treat.mean()
                 - w_cont * (resid - eta_cont) / w_cont.mean())
    return float(eta_treat - eta_cont), influence
