r"""Power of pre-trend tests and the bias left after passing them (Roth 2022).

Roth, J. (2022), "Pretest with Caution: Event-Study Estimates after Testing for Parallel
Trends", AER: Insights 4(3). With event-study estimates
:math:`\hat\beta \sim N(\tau + \delta, \Sigma)` (:math:`\tau_{pre} = 0`) and a linear
violation :math:`\delta_t = \gamma\,(t - t_{ref})`, this module computes

* the power of the pre-test: the joint Wald test of :math:`\beta_{pre} = 0` at level
  :math:`\alpha`, or the rule "some pre-period coefficient is individually significant"
  (as the R package ``pretrends``);
* the slopes :math:`\gamma` that the pre-test detects with 50 % and 80 % power;
* the expected bias of the post-period estimates conditional on passing the pre-test,
  :math:`E[\hat\beta_{post} - \tau_{post} \mid \text{pass}] = \delta_{post} +
  \Sigma_{post,pre}\Sigma_{pre}^{-1}(E[\hat\beta_{pre}\mid \text{pass}] - \delta_{pre})`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.special import ndtri
from scipy.stats import chi2, multivariate_normal, ncx2

from evaluation.errors import InvalidOptionError

Test = Literal["wald", "individual"]


def _split(sigma: np.ndarray, times: Sequence[int], reference: int
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    sigma = np.asarray(sigma, float)
    times = np.asarray(times, float)
    if sigma.shape != (times.size, times.size):
        raise InvalidOptionError(f"sigma has shape {sigma.shape}, expected "
                                 f"{(times.size, times.size)} for {times.size} event times.")
    pre = times < reference
    if not pre.any():
        raise InvalidOptionError("Power of a pre-test needs at least one pre-period "
                                 "(event time before the reference period).")
    return sigma, times, pre, ~pre


def pretest_power(sigma: np.ndarray, times: Sequence[int], slope: float, *,
                  reference: int = -1, alpha: float = 0.05, test: Test = "wald",
                  seed: int = 0) -> float:
    r"""Probability that the pre-test rejects under the trend :math:`\delta_t = \gamma(t-t_{ref})`.

    Parameters
    ----------
    sigma
        Covariance of the event-study coefficients at event times ``times`` (reference
        period excluded).
    slope
        :math:`\gamma`, the violation per period.
    test
        ``"wald"``: reject when :math:`\hat\beta_{pre}'\Sigma_{pre}^{-1}\hat\beta_{pre}`
        exceeds the :math:`\chi^2_{K}` critical value; ``"individual"``: reject when some
        :math:`|\hat\beta_j| / \sigma_j > z_{1-\alpha/2}`.
    seed
        Seed of the Genz quasi-Monte Carlo integration of the rectangle probability
        (``"individual"`` with several pre-periods).

    Notes
    -----
    Wald: :math:`1 - F_{\chi^2_K(\lambda)}(\chi^2_{K,1-\alpha})` with non-centrality
    :math:`\lambda = \delta_{pre}'\Sigma_{pre}^{-1}\delta_{pre}`. Individual:
    :math:`1 - P(|\hat\beta_j| \le z\,\sigma_j\ \forall j)` for
    :math:`\hat\beta_{pre} \sim N(\delta_{pre}, \Sigma_{pre})` (a rectangle probability).
    """
    sigma, times, pre, _ = _split(sigma, times, reference)
    s_pre = sigma[np.ix_(pre, pre)]
    delta = slope * (times[pre] - reference)
    if test == "wald":
        k = int(pre.sum())
        crit = chi2.ppf(1 - alpha, k)
        lam = float(delta @ np.linalg.solve(s_pre, delta))
        return float(ncx2.sf(crit, k, lam)) if lam > 0 else float(alpha)
    if test != "individual":
        raise InvalidOptionError(f"test must be 'wald' or 'individual', not {test!r}.")
    bound = ndtri(1 - alpha / 2) * np.sqrt(np.diag(s_pre))
    if bound.size == 1:
        from scipy.special import ndtr

        sd = bound[0] / ndtri(1 - alpha / 2)
        inside = ndtr((bound[0] - delta[0]) / sd) - ndtr((-bound[0] - delta[0]) / sd)
        return float(1 - inside)
    inside = multivariate_normal.cdf(bound, mean=delta, cov=s_pre, lower_limit=-bound,
                                     abseps=1e-7, releps=1e-7, maxpts=200_000 * bound.size,
                                     rng=np.random.default_rng(seed))
    return float(1 - inside)


def slope_for_power(sigma: np.ndarray, times: Sequence[int], power: float = 0.8, *,
                    reference: int = -1, alpha: float = 0.05, test: Test = "wald",
                    seed: int = 0) -> float:
    r"""Smallest positive slope :math:`\gamma` that the pre-test detects with ``power``.

    Notes
    -----
    Root of :math:`\text{power}(\gamma) = p` by Brent's method; the power is increasing in
    :math:`|\gamma|` for both tests (Anderson's theorem: the acceptance regions are
    symmetric and convex).
    """
    if not alpha < power < 1:
        raise InvalidOptionError(f"power must lie between alpha ({alpha}) and 1, got {power}.")
    sigma, times, pre, _ = _split(sigma, times, reference)
    scale = float(np.sqrt(np.diag(sigma)[pre]).max())

    def gap(g: float) -> float:
        return pretest_power(sigma, times, g, reference=reference, alpha=alpha, test=test,
                             seed=seed) - power

    hi = scale
    while gap(hi) < 0:
        hi *= 2
    return float(brentq(gap, 0.0, hi, xtol=1e-10 * scale))


def conditional_bias(sigma: np.ndarray, times: Sequence[int], slope: float, *,
                     reference: int = -1, alpha: float = 0.05, test: Test = "wald",
                     draws: int = 200_000, seed: int = 0) -> pd.DataFrame:
    r"""Bias of the post-period estimates unconditionally and conditional on passing.

    Returns
    -------
    pandas.DataFrame
        One row per post-period event time: ``event_time, delta`` (unconditional bias),
        ``bias_given_pass``, ``mc_std_error`` (simulation standard error of the latter) and
        ``pass_probability``.

    Notes
    -----
    :math:`E[\hat\beta_{post} - \tau_{post} \mid \text{pass}] = \delta_{post} +
    \Sigma_{post,pre}\Sigma_{pre}^{-1}(E[\hat\beta_{pre} \mid \text{pass}] - \delta_{pre})`,
    because :math:`\hat\beta_{post}` given :math:`\hat\beta_{pre}` is normal with that
    linear mean and the pre-test only looks at :math:`\hat\beta_{pre}`. The truncated mean
    :math:`E[\hat\beta_{pre}\mid\text{pass}]` is a Monte Carlo average over ``draws``
    draws of :math:`N(\delta_{pre}, \Sigma_{pre})` that pass (``numpy`` generator seeded
    with ``seed``); with one pre-period and ``"individual"`` it is the closed-form mean of
    a truncated normal.
    """
    sigma, times, pre, post = _split(sigma, times, reference)
    if not post.any():
        raise InvalidOptionError("Conditional bias needs at least one post-period.")
    s_pre = sigma[np.ix_(pre, pre)]
    delta = slope * (times - reference)
    beta_map = np.linalg.solve(s_pre, sigma[np.ix_(pre, post)]).T
    rng = np.random.default_rng(seed)
    sample = rng.multivariate_normal(delta[pre], s_pre, size=draws, method="eigh")
    if test == "wald":
        stat = np.einsum("ij,ij->i", sample, np.linalg.solve(s_pre, sample.T).T)
        passed = stat <= chi2.ppf(1 - alpha, int(pre.sum()))
    elif test == "individual":
        bound = ndtri(1 - alpha / 2) * np.sqrt(np.diag(s_pre))
        passed = (np.abs(sample) <= bound).all(axis=1)
    else:
        raise InvalidOptionError(f"test must be 'wald' or 'individual', not {test!r}.")
    if not passed.any():
        raise InvalidOptionError(f"No simulated event study passes the pre-test at slope "
                                 f"{slope}; the conditional bias is not defined.")
    kept = sample[passed] - delta[pre]
    shift = kept @ beta_map.T
    if test == "individual" and pre.sum() == 1:
        from scipy.stats import truncnorm

        sd = float(np.sqrt(s_pre[0, 0]))
        a, b = (-bound[0] - delta[pre][0]) / sd, (bound[0] - delta[pre][0]) / sd
        mean_shift = beta_map[:, 0] * sd * float(truncnorm.mean(a, b))
        se = np.zeros(post.sum())
    else:
        mean_shift = shift.mean(axis=0)
        se = shift.std(axis=0, ddof=1) / np.sqrt(len(shift))
    return pd.DataFrame({"event_time": times[post].astype(int), "delta": delta[post],
                         "bias_given_pass": delta[post] + mean_shift, "mc_std_error": se,
                         "pass_probability": passed.mean()})


@dataclass(frozen=True)
class PretrendPower:
    """Summary of a power analysis of the pre-test (see :func:`pretrend_power`)."""

    test: str
    alpha: float
    slope_50: float
    slope_80: float
    power_at_slope: float | None
    bias: pd.DataFrame | None


def pretrend_power(result: object, *, slope: float | None = None, test: Test = "wald",
                   alpha: float = 0.05, draws: int = 200_000, seed: int = 0) -> PretrendPower:
    r"""Roth (2022) power analysis of an event-study :class:`EstimationResult`.

    Reports the slopes detected with 50 % and 80 % power and, for ``slope`` (default: the
    80 % slope), the power and the conditional bias of the post-period estimates.

    Notes
    -----
    The reference period is -1 (see :func:`pretest_power` and :func:`conditional_bias`).
    """
    from evaluation.inference.honest_result import event_study_inputs

    _, sigma, num_pre, _, post_times = event_study_inputs(result)
    times = list(range(-num_pre - 1, -1)) + list(post_times)
    s50 = slope_for_power(sigma, times, 0.5, alpha=alpha, test=test, seed=seed)
    s80 = slope_for_power(sigma, times, 0.8, alpha=alpha, test=test, seed=seed)
    slope = s80 if slope is None else slope
    power = pretest_power(sigma, times, slope, alpha=alpha, test=test, seed=seed)
    bias = conditional_bias(sigma, times, slope, alpha=alpha, test=test, draws=draws,
                            seed=seed)
    return PretrendPower(test, alpha, s50, s80, power, bias)
