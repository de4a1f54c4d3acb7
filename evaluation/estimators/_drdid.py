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

import warnings
from dataclasses import dataclass

import numpy as np
import statsmodels.api as sm
from scipy import optimize
from statsmodels.tools.sm_exceptions import ConvergenceWarning, PerfectSeparationWarning

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
    linear_rep
        ``(n, k)`` asymptotically linear representation of the logit coefficients,
        :math:`w_i (D_i - \hat p_i) X_i^\top H^{-1}` with
        :math:`H = n^{-1}\sum_i w_i \hat p_i (1-\hat p_i) X_i X_i^\top`.
    """

    ps: np.ndarray
    keep: np.ndarray
    linear_rep: np.ndarray


def fit_logit(d: np.ndarray, x: np.ndarray, w: np.ndarray) -> PropensityScore:
    """Fit a weighted logit of ``d`` on ``x`` (statsmodels GLM, IRLS) with its linear rep."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (ConvergenceWarning, PerfectSeparationWarning,
                                         RuntimeWarning))
        fit = sm.GLM(d, x, family=sm.families.Binomial(), freq_weights=w).fit()
    ps = np.minimum(fit.fittedvalues, PS_CAP)
    keep = np.ones(d.size, dtype=bool)
    keep[d == 0] = ps[d == 0] < TRIM_LEVEL
    hessian = np.linalg.inv(x.T @ ((w * ps * (1 - ps))[:, None] * x)) * d.size
    return PropensityScore(ps, keep, ((w * (d - ps))[:, None] * x) @ hessian)


def _ols_on_controls(dy: np.ndarray, d: np.ndarray, x: np.ndarray, w: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
    r"""Fit weighted OLS of ``dy`` on ``x`` among controls.

    Returns the fitted values for all units and the coefficients' linear representation
    :math:`w_i(1-D_i) e_i X_i^\top (X'WX/n)^{-1}`.
    """
    wc = w * (1 - d)
    gram = (wc[:, None] * x).T @ x
    beta = np.linalg.solve(gram, (wc[:, None] * x).T @ dy)
    fitted = x @ beta
    linear_rep = ((wc * (dy - fitted))[:, None] * x) @ np.linalg.inv(gram / d.size)
    return fitted, linear_rep


def reg_did(dy: np.ndarray, d: np.ndarray, x: np.ndarray, w: np.ndarray
            ) -> tuple[float, np.ndarray]:
    r"""Outcome-regression DiD (Heckman, Ichimura and Todd 1997).

    Notes
    -----
    .. math::

        \hat\tau = \frac{\sum_i w_i D_i (\Delta Y_i - X_i'\hat\beta_0)}{\sum_i w_i D_i},

    with :math:`\hat\beta_0` the weighted OLS of :math:`\Delta Y` on :math:`X` among
    comparison units; the influence function adds the estimation effect of
    :math:`\hat\beta_0`.
    """
    fitted, lin_ols = _ols_on_controls(dy, d, x, w)
    w_treat = w * d
    mean_treat = w_treat.mean()
    eta_treat = np.mean(w_treat * dy) / mean_treat
    eta_cont = np.mean(w_treat * fitted) / mean_treat
    inf_treat = (w_treat * dy - w_treat * eta_treat) / mean_treat
    inf_cont = (w_treat * fitted - w_treat * eta_cont
                + lin_ols @ np.mean(w_treat[:, None] * x, axis=0)) / mean_treat
    return float(eta_treat - eta_cont), inf_treat - inf_cont


def ipw_did(dy: np.ndarray, d: np.ndarray, x: np.ndarray, w: np.ndarray,
            ps: PropensityScore | None = None) -> tuple[float, np.ndarray]:
    r"""Normalised (Hajek) inverse-probability-weighted DiD (Abadie 2005).

    Notes
    -----
    .. math::

        \hat\tau = \frac{\sum_i w_i D_i \Delta Y_i}{\sum_i w_i D_i}
            - \frac{\sum_i w_i \frac{\hat p_i (1-D_i)}{1-\hat p_i} \Delta Y_i}
                   {\sum_i w_i \frac{\hat p_i (1-D_i)}{1-\hat p_i}}.
    """
    ps = ps or fit_logit(d, x, w)
    w_treat = ps.keep * w * d
    w_cont = ps.keep * w * ps.ps * (1 - d) / (1 - ps.ps)
    eta_treat = np.mean(w_treat * dy) / w_treat.mean()
    eta_cont = np.mean(w_cont * dy) / w_cont.mean()
    inf_treat = (w_treat * dy - w_treat * eta_treat) / w_treat.mean()
    m2 = np.mean((w_cont * (dy - eta_cont))[:, None] * x, axis=0)
    inf_cont = (w_cont * dy - w_cont * eta_cont + ps.linear_rep @ m2) / w_cont.mean()
    return float(eta_treat - eta_cont), inf_treat - inf_cont


def dr_did(dy: np.ndarray, d: np.ndarray, x: np.ndarray, w: np.ndarray,
           ps: PropensityScore | None = None) -> tuple[float, np.ndarray]:
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
    ps = ps or fit_logit(d, x, w)
    fitted, lin_ols = _ols_on_controls(dy, d, x, w)
    resid = dy - fitted
    w_treat = ps.keep * w * d
    w_cont = ps.keep * w * ps.ps * (1 - d) / (1 - ps.ps)
    eta_treat = np.mean(w_treat * resid) / w_treat.mean()
    eta_cont = np.mean(w_cont * resid) / w_cont.mean()
    inf_treat = (w_treat * resid - w_treat * eta_treat
                 - lin_ols @ np.mean(w_treat[:, None] * x, axis=0)) / w_treat.mean()
    m2 = np.mean((w_cont * (resid - eta_cont))[:, None] * x, axis=0)
    m3 = np.mean(w_cont[:, None] * x, axis=0)
    inf_cont = (w_cont * resid - w_cont * eta_cont + ps.linear_rep @ m2
                - lin_ols @ m3) / w_cont.mean()
    return float(eta_treat - eta_cont), inf_treat - inf_cont


def calibrated_propensity(d: np.ndarray, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    r"""Propensity score by inverse probability tilting (Graham, Pinto and Egel 2012).

    Notes
    -----
    Minimises :math:`-n^{-1}\sum_i w_i [D_i X_i'\gamma - (1-D_i)\exp(X_i'\gamma)]`, whose
    first-order conditions balance the covariates of the treated and the reweighted
    comparison units exactly; started from the logit coefficients as in R ``DRDID``.
    """
    start = sm.GLM(d, x, family=sm.families.Binomial(), freq_weights=w).fit().params

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


def dr_improved_did(dy: np.ndarray, d: np.ndarray, x: np.ndarray, w: np.ndarray
                    ) -> tuple[float, np.ndarray]:
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
    ps = calibrated_propensity(d, x, w)
    odds = w * ps / (1 - ps)
    wc = odds * (1 - d)
    beta = np.linalg.solve((wc[:, None] * x).T @ x, (wc[:, None] * x).T @ dy)
    resid = dy - x @ beta
    w_treat = w * d
    w_cont = w * ps * (1 - d) / (1 - ps)
    eta_treat = np.mean(w_treat * resid) / w_treat.mean()
    eta_cont = np.mean(w_cont * resid) / w_cont.mean()
    influence = ((w_treat * resid - w_treat * eta_treat) / w_treat.mean()
                 - (w_cont * resid - w_cont * eta_cont) / w_cont.mean())
    return float(eta_treat - eta_cont), influence
