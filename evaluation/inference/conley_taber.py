r"""Conley-Taber inference for difference in differences with few treated clusters.

With a handful of treated clusters (trial areas) and many controls, the static TWFE
coefficient is not asymptotically normal, but its error is a function of the treated
clusters' errors alone; :func:`conley_taber` estimates that error distribution from the
control clusters' residuals (Conley and Taber 2011), optionally rescaled for clusters of
different sizes (Ferman and Pinto 2019).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from scipy.special import ndtri

from evaluation.errors import InvalidOptionError, PanelError
from evaluation.inference.randomization import INFERENCE_COLUMNS
from evaluation.messages import fmt, fmt_list
from evaluation.options import (
    DEFAULT_RANDOM_SEED,
    check_alpha,
    check_count,
    check_option,
    check_seed,
)
from evaluation.panel import Panel
from evaluation.protocol import ResultMixin, Summary, new_axes

if TYPE_CHECKING:
    from matplotlib.axes import Axes

Heteroskedasticity = Literal["none", "ferman-pinto"]

#: Largest number of control tuples enumerated before the null distribution is sampled.
EXACT_LIMIT = 250_000


@dataclass
class ConleyTaberResult(ResultMixin):
    r"""The static DiD effect with its Conley-Taber interval and p-value.

    Attributes
    ----------
    estimate
        :math:`\hat\alpha`, the static TWFE coefficient on the cluster-period panel.
    ci_lower, ci_upper, p_value
        Conley-Taber interval of level ``1 - alpha`` and p-value of :math:`\alpha = 0`.
    alpha
        Level.
    heteroskedasticity
        ``"none"`` (Conley-Taber) or ``"ferman-pinto"`` (rescaled by cluster size).
    draws, exact
        Number of draws of the null distribution; whether they are every tuple of controls.
    n_treated, n_control, n_periods
        Treated and control clusters, periods.
    distribution
        The draws of :math:`\hat\alpha - \alpha` under the estimated null distribution.
    cr0_std_error, cr0_lower, cr0_upper
        The cluster-robust (CR0) standard error and normal interval, for comparison (they
        over-reject with few treated clusters).
    cluster_sizes
        Size :math:`M_j` of each cluster (sum of unit weights, or number of units).
    warnings, info
        Warnings and settings.

    Notes
    -----
    The procedure is defined in :func:`conley_taber`.
    """

    estimate: float
    ci_lower: float
    ci_upper: float
    p_value: float
    alpha: float
    heteroskedasticity: str
    draws: int
    exact: bool
    n_treated: int
    n_control: int
    n_periods: int
    distribution: np.ndarray = field(repr=False)
    cr0_std_error: float = np.nan
    cr0_lower: float = np.nan
    cr0_upper: float = np.nan
    cluster_sizes: pd.Series | None = field(default=None, repr=False)
    warnings: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def method(self) -> str:
        """``conley-taber`` or ``conley-taber-ferman-pinto``."""
        suffix = "-ferman-pinto" if self.heteroskedasticity == "ferman-pinto" else ""
        return f"conley-taber{suffix}"

    def to_frame(self) -> pd.DataFrame:
        """Return one row (term ``overall``) with :data:`INFERENCE_COLUMNS`."""
        return pd.DataFrame([{
            "term": "overall", "event_time": None, "estimate": self.estimate,
            "p_value": self.p_value, "ci_lower": self.ci_lower, "ci_upper": self.ci_upper,
            "method": self.method, "permutations": self.draws, "exact": self.exact}],
            columns=INFERENCE_COLUMNS)

    def summary(self) -> Summary:
        """Return the estimate with the Conley-Taber and the CR0-normal intervals."""
        level = f"{100 * (1 - self.alpha):g} %"
        table = pd.DataFrame(
            {"estimate": [self.estimate] * 2, "ci_lower": [self.ci_lower, self.cr0_lower],
             "ci_upper": [self.ci_upper, self.cr0_upper],
             "p_value": [self.p_value, np.nan]},
            index=pd.Index([self.method, "CR0 normal (reference)"], name="inference"))
        kind = "all" if self.exact else "a sample of"
        notes = [f"{self.n_treated} treated and {self.n_control} control clusters, "
                 f"{self.n_periods} periods",
                 f"null distribution: {kind} {self.draws:,} tuples of control clusters",
                 f"{level} intervals; CR0 standard error {self.cr0_std_error:.4g}"]
        notes += [f"{key}: {value}" for key, value in self.info.items()]
        return Summary("Conley-Taber inference (static TWFE)", table, tuple(notes),
                       tuple(self.warnings))

    def plot(self, ax: Axes | None = None) -> Axes:
        r"""Draw the null distribution of :math:`\hat\alpha - \alpha`; return the Axes."""
        ax = new_axes(ax, (5, 3))
        ax.hist(self.distribution, bins=40, color="0.7")
        ax.axvline(self.estimate, color="C3", label=f"estimate, p = {self.p_value:.3f}")
        ax.set_xlabel(r"$\hat\alpha - \alpha$ under the null")
        ax.legend(fontsize=8, frameon=False)
        return ax


def conley_taber(
    panel: Panel,
    *,
    alpha: float = 0.05,
    heteroskedasticity: Heteroskedasticity = "none",
    draws: int = 100_000,
    seed: int | None = None,
) -> ConleyTaberResult:
    r"""Conley-Taber (2011) interval for static DiD with few treated clusters.

    Parameters
    ----------
    panel
        Unit-level or cluster-level panel. Clusters are the panel's cluster column (each
        unit its own cluster without one); treatment (from the cohort or status column)
        must be the same for all units of a cluster in every period, and every cluster
        must be observed in every period.
    alpha
        Level of the interval.
    heteroskedasticity
        ``"none"``: Conley and Taber's procedure; ``"ferman-pinto"``: the control
        statistics are rescaled to the treated clusters' sizes (Ferman and Pinto 2019).
    draws
        With more than :data:`EXACT_LIMIT` tuples of control clusters, the number of
        tuples drawn at random (``numpy.random.default_rng(seed)``).
    seed
        Seed of those draws (None: the package's fixed default seed).

    Returns
    -------
    ConleyTaberResult

    Raises
    ------
    PanelError
        If treatment varies within a cluster-period, a cluster misses a period, or there
        is no treated cluster or fewer than two control clusters.
    InvalidOptionError
        For invalid options, or ``"ferman-pinto"`` when all control clusters have the same
        size.

    Notes
    -----
    **Model.** With units aggregated to cluster-period means (weighted by the panel's
    weights), :math:`Y_{jt} = \alpha D_{jt} + X_{jt}'\beta + \theta_j + \gamma_t +
    \eta_{jt}` for clusters :math:`j = 1..N_1` (treated, :math:`D_{jt} = 1` in some
    period) and :math:`N_1 + 1..N_1 + N_0` (controls), on a balanced panel. By
    Frisch-Waugh-Lovell, with :math:`\tilde d_{jt}` the residual of :math:`D_{jt}` on the
    two-way effects and :math:`X`,

    .. math::

        \hat\alpha - \alpha = \frac{\sum_{j,t} \tilde d_{jt}\eta_{jt}}
        {\sum_{j,t} \tilde d_{jt}^2}
        \;\to\; \frac{\sum_{k \le N_1} W_k}{\sum_{k \le N_1}\sum_t \tilde d_{kt}^2},
        \qquad W_k = \sum_t \tilde d_{kt}\,\eta_{kt},

    as :math:`N_0 \to \infty` (Conley and Taber 2011, Proposition 1; their
    :math:`\tilde d_{kt} = d_{kt} - \bar d_k` is the limit of ours).

    **Null distribution.** With :math:`\hat\eta_{\ell t}` the TWFE residuals of control
    :math:`\ell`, :math:`W_{\ell k} = \sum_t \tilde d_{kt}\hat\eta_{\ell t}` puts treated
    cluster :math:`k`'s treatment path on control :math:`\ell`'s errors, and

    .. math::

        \hat\Gamma(a) = \frac{1}{N_0^{N_1}} \sum_{(\ell_1, \dots, \ell_{N_1})}
        1\Big\{\frac{\sum_k W_{\ell_k k}}{\sum_k \sum_t \tilde d_{kt}^2} \le a\Big\}

    over all :math:`N_0^{N_1}` tuples of controls (with replacement), or over ``draws``
    uniform tuples when there are more than :data:`EXACT_LIMIT`. The interval is
    :math:`[\hat\alpha - \hat\Gamma^{-1}(1 - \alpha/2),\; \hat\alpha -
    \hat\Gamma^{-1}(\alpha/2)]` (empirical quantiles, ``inverted_cdf``) and the p-value
    of :math:`\alpha = 0` the equal-tailed
    :math:`\min\{1, 2\min(\hat\Gamma(\hat\alpha), 1 - \hat\Gamma(\hat\alpha^-))\}`.

    **Ferman-Pinto.** When cluster means average :math:`M_j` units, :math:`W` is
    heteroskedastic. Following Ferman and Pinto (2019), for each treated :math:`k` the
    controls' :math:`W_{\ell k}^2` are regressed on :math:`(1, 1/M_\ell)`, giving
    :math:`\hat v_k(M) = \hat a_k + \hat b_k/M` (floored at 1 % of its mean over the
    controls, with a warning), and :math:`W_{\ell k}` is replaced by
    :math:`W_{\ell k}\,\{\hat v_k(M_k)/\hat v_k(M_\ell)\}^{1/2}` before forming
    :math:`\hat\Gamma`. :math:`M_j` is the sum of the unit weights of cluster :math:`j`
    (its number of units without weights; with weights such as the labour force of a
    municipality, the population behind a rate).

    The CR0 reference is :math:`\widehat{se}^2 = \sum_j (\sum_t \tilde d_{jt}
    \hat\eta_{jt})^2 / (\sum_{j,t}\tilde d_{jt}^2)^2` with a normal interval.
    """
    alpha = check_alpha("alpha", alpha)
    seed = DEFAULT_RANDOM_SEED if check_seed("seed", seed) is None else seed
    check_option("heteroskedasticity", heteroskedasticity, Heteroskedasticity)
    draws = check_count("draws", draws, 100)
    cells = _cluster_cells(panel)
    y, d, x, sizes = cells["y"], cells["d"], cells["x"], cells["sizes"]
    treated = d.any(axis=1)
    n_treated, n_control = int(treated.sum()), int((~treated).sum())
    if n_treated == 0 or n_control < 2:
        raise PanelError(f"Conley-Taber needs treated clusters and at least two controls; "
                         f"the panel has {n_treated} treated and {n_control} control "
                         "clusters.")
    d_tilde, residual, estimate = _twfe(y, d.astype(float), x)
    denominator = float(np.sum(d_tilde[treated] ** 2))
    w = residual[~treated] @ d_tilde[treated].T  # (N0, N1): W_{l k}
    warnings: list[str] = []
    if heteroskedasticity == "ferman-pinto":
        w = _ferman_pinto(w, sizes[~treated], sizes[treated], warnings)
    exact = n_control**n_treated <= EXACT_LIMIT
    if exact:
        total = w[:, 0]
        for k in range(1, n_treated):
            total = (total[:, None] + w[None, :, k]).ravel()
    else:
        picks = np.random.default_rng(seed).integers(0, n_control, size=(draws, n_treated))
        total = w[picks, np.arange(n_treated)].sum(axis=1)
    distribution = total / denominator
    low, high = np.quantile(distribution, [alpha / 2, 1 - alpha / 2], method="inverted_cdf")
    below, above = np.mean(distribution <= estimate), np.mean(distribution >= estimate)
    scores = np.sum(d_tilde * residual, axis=1)
    cr0 = float(np.sqrt(np.sum(scores**2)) / np.sum(d_tilde**2))
    z = float(ndtri(1 - alpha / 2))
    return ConleyTaberResult(
        estimate=estimate, ci_lower=float(estimate - high), ci_upper=float(estimate - low),
        p_value=float(min(1.0, 2 * min(below, above))), alpha=alpha,
        heteroskedasticity=heteroskedasticity, draws=int(distribution.size), exact=exact,
        n_treated=n_treated, n_control=n_control, n_periods=y.shape[1],
        distribution=distribution, cr0_std_error=cr0, cr0_lower=estimate - z * cr0,
        cr0_upper=estimate + z * cr0,
        cluster_sizes=pd.Series(sizes, index=cells["clusters"], name="size"),
        warnings=warnings, info={} if exact else {"seed": seed})


def _cluster_cells(panel: Panel) -> dict[str, Any]:
    """Return cluster-by-period means of outcome, treatment and covariates, and sizes."""
    if panel.cohort is None and panel.status is None:
        raise PanelError("Conley-Taber needs treatment: build the panel with a cohort or "
                         "status column.")
    if panel.unit_cluster is None:
        cluster, labels = np.arange(panel.n_units), panel.units
    else:
        cluster, labels = panel.unit_cluster, panel.clusters
    n_clusters, n_periods = len(labels), panel.n_periods
    row_cluster = cluster[panel.unit_codes]
    cell = row_cluster * n_periods + panel.time_codes
    weight = (np.ones(panel.n_obs) if panel.unit_weights is None
              else panel.unit_weights[panel.unit_codes])
    total = np.bincount(cell, weights=weight, minlength=n_clusters * n_periods)
    empty = np.flatnonzero(total == 0)
    if empty.size:
        missing = [f"{fmt(labels[c // n_periods])} in {fmt(panel.period_label(c % n_periods))}"
                   for c in empty[:5]]
        raise PanelError(f"Conley-Taber needs every cluster observed in every period; "
                         f"{empty.size} cluster-periods have no observation "
                         f"({fmt_list(missing, empty.size, formatter=str)}).")

    def mean(values: np.ndarray) -> np.ndarray:
        sums = np.bincount(cell, weights=weight * values, minlength=total.size)
        return (sums / total).reshape(n_clusters, n_periods)

    status = panel.status_wide()[panel.unit_codes, panel.time_codes].astype(float)
    d = mean(status)
    mixed = np.flatnonzero(((d > 0) & (d < 1)).any(axis=1))
    if mixed.size:
        raise PanelError(f"treatment differs between units of cluster {fmt(labels[mixed[0]])} "
                         f"({mixed.size} clusters are mixed); Conley-Taber needs the "
                         "treatment assigned by cluster: choose the cluster column it was "
                         "assigned by.")
    y = mean(panel.data[panel.outcome].to_numpy(dtype=float))
    x = [mean(panel.data[c].to_numpy(dtype=float)) for c in panel.covariates]
    sizes = np.bincount(cluster, weights=None if panel.unit_weights is None
                        else panel.unit_weights, minlength=n_clusters).astype(float)
    return {"y": y, "d": d > 0.5, "x": x, "sizes": sizes, "clusters": pd.Index(labels)}


def _demean(values: np.ndarray) -> np.ndarray:
    """Remove cluster and period means from a balanced ``(J, T)`` array."""
    return (values - values.mean(axis=1, keepdims=True) - values.mean(axis=0, keepdims=True)
            + values.mean())


def _twfe(y: np.ndarray, d: np.ndarray, x: list[np.ndarray]
          ) -> tuple[np.ndarray, np.ndarray, float]:
    r"""Return :math:`\tilde d`, the residuals and :math:`\hat\alpha` of the static TWFE."""
    y_dot, d_tilde = _demean(y), _demean(d)
    if x:
        x_dot = np.column_stack([_demean(v).ravel() for v in x])
        beta_d, *_ = np.linalg.lstsq(x_dot, d_tilde.ravel(), rcond=None)
        beta_y, *_ = np.linalg.lstsq(x_dot, y_dot.ravel(), rcond=None)
        d_tilde = d_tilde - (x_dot @ beta_d).reshape(d.shape)
        y_dot = y_dot - (x_dot @ beta_y).reshape(y.shape)
    scale = float(np.sum(d_tilde**2))
    if scale <= 1e-12 * d.size:
        raise PanelError("treatment does not vary beyond the cluster and period effects; "
                         "the DiD coefficient is not identified.")
    estimate = float(np.sum(d_tilde * y_dot) / scale)
    return d_tilde, y_dot - estimate * d_tilde, estimate


def _ferman_pinto(w: np.ndarray, control_sizes: np.ndarray, treated_sizes: np.ndarray,
                  warnings: list[str]) -> np.ndarray:
    r"""Rescale :math:`W_{\ell k}` to the treated clusters' sizes (Ferman and Pinto 2019)."""
    if np.ptp(1 / control_sizes) <= 1e-12:
        raise InvalidOptionError("heteroskedasticity='ferman-pinto' needs control clusters "
                                 "of different sizes to estimate how the variance depends on "
                                 "size, but they are all the same: give the panel weights "
                                 "(e.g. the labour force) to measure size.")
    design = np.column_stack([np.ones_like(control_sizes), 1 / control_sizes])
    coef, *_ = np.linalg.lstsq(design, w**2, rcond=None)  # (2, N1): a_k, b_k
    fitted = design @ coef
    floor = 0.01 * fitted.mean(axis=0)
    treated_v = coef[0] + coef[1] / treated_sizes
    if (fitted < floor).any() or (treated_v < floor).any():
        warnings.append("Ferman-Pinto variance function a + b/M was below 1 % of its mean "
                        "for some cluster sizes and was floored there.")
    return w * np.sqrt(np.maximum(treated_v, floor) / np.maximum(fitted, floor))
