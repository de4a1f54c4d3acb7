r"""Canonical difference-in-differences: two-way fixed effects, static and dynamic.

Both are least-squares regressions with unit and period fixed effects (partialled out
exactly and sparsely) and cluster-robust standard errors clustered by the panel's cluster
column, or by unit; ``linearmodels.PanelOLS`` gives the same numbers and is the tests'
oracle. With one adoption date and two
periods the static coefficient is the 2x2 difference of mean changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from evaluation.errors import InvalidOptionError, PanelError
from evaluation.estimators._absorbing import absorbing_only
from evaluation.estimators.results import EstimationResult
from evaluation.inference.clusters import warn_panel_clusters
from evaluation.inference.wild import WildNull, WildWeights
from evaluation.options import DEFAULT_RANDOM_SEED, validate_fields
from evaluation.panel import Panel

#: Inference of the regression-based DiD estimators (``se`` option).
StandardErrors = Literal["analytic", "cr2", "wild"]


@dataclass(frozen=True)
class TwoWayFixedEffects:
    r"""Two-way fixed-effects DiD and event-study regressions.

    Parameters
    ----------
    dynamic
        False: one coefficient on the treatment status (static TWFE). True: one coefficient
        per event time :math:`e = t - G_i` of treated units (leads and lags).
    reference
        Event time normalised to zero in the dynamic model (default -1).
    leads, lags
        Dynamic model: event times below ``-leads`` are pooled into one binned lead and
        event times above ``lags`` into one binned lag (None keeps every event time).
    small_sample
        Apply the small-sample factors :math:`G/(G-1)` and :math:`(N-1)/(N-K)` to the
        cluster-robust covariance, with :math:`K` the number of treatment regressors (the
        absorbed fixed effects are not counted). Off by default, so that the 2x2 case
        reproduces the influence-function standard error of the difference of mean changes.
        Ignored by ``se="cr2"``, which makes its own correction.
    alpha
        Significance level.
    se
        ``"analytic"``: cluster-robust (CR0) covariance, normal critical values.
        ``"cr2"``: bias-reduced CR2 covariance with Bell-McCaffrey (Satterthwaite) degrees of
        freedom per coefficient (:func:`~evaluation.inference.cr2.cr2_two_way`, equal to R
        ``clubSandwich``); the table gets a ``df`` column and intervals use :math:`t_{df}`.
        ``"wild"``: wild cluster bootstrap p-values and test-inversion intervals
        (:mod:`evaluation.inference.wild`) in the table's ``p_value, ci_lower, ci_upper``
        columns; ``std_error`` stays the analytic one.
    wild_weights
        Multipliers of the wild bootstrap: ``"rademacher"`` (all :math:`2^G` sign vectors
        when :math:`2^G \le` ``draws``), ``"webb"`` (six-point) or ``"mammen"``.
    draws
        Number of wild bootstrap draws.
    seed
        Seed of the wild bootstrap (None: the package default, so results are reproducible).
    wild_null
        ``"restricted"`` (WCR, the null imposed; recommended) or ``"unrestricted"`` (WCU).

    Notes
    -----
    Static: :math:`Y_{it} = \alpha_i + \lambda_t + \beta D_{it} + \varepsilon_{it}` with the
    treatment status :math:`D_{it}` (the status column, else :math:`t \ge G_i`; a status
    that switches off is refused, see :meth:`evaluation.panel.Panel.treatment_paths`).
    Dynamic:
    :math:`Y_{it} = \alpha_i + \lambda_t + \sum_{e \ne r}\beta_e 1\{t - G_i = e\} +
    \varepsilon_{it}`, never-treated units having no event-time dummies. Under
    heterogeneous effects across cohorts both are weighted averages with possibly negative
    weights (de Chaisemartin and D'Haultfoeuille 2020; Sun and Abraham 2021).
    """

    dynamic: bool = False
    reference: int = -1
    leads: int | None = None
    lags: int | None = None
    small_sample: bool = False
    alpha: float = 0.05
    se: StandardErrors = "analytic"
    wild_weights: WildWeights = "rademacher"
    draws: int = 9999
    seed: int | None = None
    wild_null: WildNull = "restricted"

    def __post_init__(self) -> None:
        validate_fields(self)
        if self.leads is not None and self.reference < -self.leads:
            raise InvalidOptionError(f"reference={self.reference} lies in the binned leads; "
                                     f"choose a reference between -{self.leads} and the lags.")

    @absorbing_only("twfe", "Two-way fixed effects")
    def fit(self, panel: Panel) -> EstimationResult:
        """Estimate the regression on ``panel``'s first outcome."""
        if panel.cohort is None and panel.status is None:
            raise PanelError("two-way fixed effects need a cohort or status column; pass "
                             "cohort= or status= when building the Panel.")
        if self.dynamic:
            regressors, labels = self._event_dummies(panel)
        else:
            status = panel.status_wide()[panel.unit_codes, panel.time_codes]
            regressors, labels = status.astype(float)[:, None], [("ATT", None)]
        fit = fit_two_way(panel, regressors, small_sample=self.small_sample)
        table = pd.DataFrame({
            "term": [term for term, _ in labels],
            "event_time": [e for _, e in labels],
            "estimate": fit.params,
            "std_error": fit.std_errors,
        })
        if not self.dynamic:
            table = table.drop(columns="event_time")
        info = {"units": panel.n_units, "observations": int(fit.nobs),
                "clusters": "unit" if panel.unit_cluster is None else panel.cluster,
                "reference event time": self.reference if self.dynamic else "none"}
        vcov = few_cluster_inference(fit, table, info, self)
        result = EstimationResult(
            estimator="twfe", aggregation="dynamic" if self.dynamic else "static",
            table=table, alpha=self.alpha, vcov=vcov, info=info)
        result.warnings.extend(warn_panel_clusters(panel, self.se))
        return result

    def _event_dummies(self, panel: Panel) -> tuple[np.ndarray, list[tuple[str, int]]]:
        """Event-time indicators with binned end points (never-treated rows all zero)."""
        if np.isnan(panel.unit_cohort).all():
            raise PanelError("the dynamic model needs treated units with a cohort.")
        event = panel.time_codes - panel.unit_cohort[panel.unit_codes]
        step = panel.step if panel.time_kind == "integer" else 1
        columns, values, labels = event_time_dummies(event, self.reference, self.leads,
                                                     self.lags, step)
        return columns, [(label, int(e * step)) for label, e in zip(labels, values,
                                                                    strict=True)]


def event_time_dummies(event: np.ndarray, reference: int, leads: int | None,
                       lags: int | None, step: int = 1
                       ) -> tuple[np.ndarray, list[int], list[str]]:
    """Build indicators of event times (NaN rows, e.g. never treated, are all zero).

    Event times below ``-leads`` and above ``lags`` are binned into the end points and
    ``reference`` is left out. Returns the ``(rows, k)`` indicators, their event times in
    periods and labels in time units (``"<=-4"``, ``"-2"``, ``">=3"``).
    """
    low = -np.inf if leads is None else -leads
    high = np.inf if lags is None else lags
    binned = np.clip(event, low, high)
    values = [int(e) for e in np.unique(binned[~np.isnan(binned)]) if e != reference]
    if not values:
        raise PanelError("no event time besides the reference period is observed.")
    labels = [("<=" if e == low else ">=" if e == high else "") + str(e * step)
              for e in values]
    return np.column_stack([binned == e for e in values]).astype(float), values, labels


@dataclass(frozen=True)
class PartialledRegression:
    """The regression after the fixed effects are partialled out, for CR2 and the bootstrap.

    Rows are the observations used; ``unit``, ``time`` and ``cluster`` are their codes.
    """

    x: np.ndarray
    y: np.ndarray
    weights: np.ndarray | None
    unit: np.ndarray
    time: np.ndarray
    cluster: np.ndarray


@dataclass(frozen=True)
class TwoWayFit:
    """Coefficients and cluster-robust covariance of a two-way fixed-effects regression."""

    params: np.ndarray
    cov: np.ndarray
    nobs: int
    partialled: PartialledRegression | None = None

    @property
    def std_errors(self) -> np.ndarray:
        """Standard errors (square roots of the covariance diagonal)."""
        return np.sqrt(np.diag(self.cov))


def fit_two_way(panel: Panel, regressors: np.ndarray, *, small_sample: bool = False,
                rows: np.ndarray | None = None) -> TwoWayFit:
    r"""Least squares of the panel's outcome on ``regressors`` with unit and period effects.

    Parameters
    ----------
    panel
        The panel (outcome, weights and cluster column are taken from it).
    regressors
        ``(n_rows, k)`` treatment regressors aligned with ``panel.data`` (or its ``rows``).
    small_sample
        Apply the :math:`G/(G-1)` and :math:`(N-1)/(N-K)` factors (see
        :class:`TwoWayFixedEffects`).
    rows
        Optional boolean mask of the panel rows to use (e.g. periods before the last cohort
        is treated).

    Returns
    -------
    TwoWayFit
        Coefficients and cluster-robust covariance (clustered by the panel's cluster
        column, or by unit).

    Notes
    -----
    By the Frisch-Waugh-Lovell theorem the coefficients are those of the regression of
    :math:`\tilde y` on :math:`\tilde X`, the outcome and regressors with the (weighted)
    unit and period effects partialled out exactly and sparsely
    (:class:`~evaluation.estimators._fixed_effects.TwoWayDesign`):

    .. math::

        \hat\beta = (\tilde X'W\tilde X)^{-1}\tilde X'W\tilde y, \qquad
        \hat V = (\tilde X'W\tilde X)^{-1}\Big[\sum_c s_c s_c'\Big](\tilde X'W\tilde X)^{-1},
        \quad s_c = \sum_{it \in c} w_{it}\hat e_{it}\tilde x_{it},

    times :math:`\frac{G}{G-1}\frac{N-1}{N-K}` with ``small_sample``; absorbed effects
    are not counted (they are nested in the clusters). This is the estimator of
    ``linearmodels.PanelOLS`` (with ``auto_df=False, count_effects=False``), which the
    tests use as the oracle; it is computed here because ``PanelOLS`` needs about a minute
    and over 10 GB for 100,000 units x 20 periods with dozens of event-time regressors.
    """
    from evaluation.estimators._fixed_effects import TwoWayDesign
    from evaluation.estimators._inference import cluster_robust_ols

    keep = np.ones(panel.n_obs, dtype=bool) if rows is None else rows
    unit = np.unique(panel.unit_codes[keep], return_inverse=True)[1]
    n = int(keep.sum())
    weights = (np.ones(n) if panel.unit_weights is None
               else panel.unit_weights[panel.unit_codes[keep]])
    design = TwoWayDesign(unit, panel.time_codes[keep], np.ones(n, dtype=bool),
                          int(unit.max()) + 1, panel.n_periods,
                          None if panel.unit_weights is None else weights)
    y = design.demean(panel.data[panel.outcome].to_numpy(dtype=float)[keep][:, None])[:, 0]
    scale = np.maximum(np.abs(regressors).max(axis=0), 1.0)
    x = design.demean(regressors)
    if not (np.abs(x).max(axis=0) > 1e-9 * scale).all():
        raise PanelError("a treatment regressor has no variation beyond the unit and period "
                         "effects (e.g. every unit is treated in every period, or a cohort is "
                         "never observed at some event time); the fixed-effects regression "
                         "cannot be estimated.")
    clusters = (unit if panel.unit_cluster is None
                else np.unique(panel.unit_cluster[panel.unit_codes[keep]],
                               return_inverse=True)[1])
    params, cov = cluster_robust_ols(x, y, weights, clusters)
    if small_sample:
        g, k = int(clusters.max()) + 1, x.shape[1]
        cov *= g / (g - 1) * (n - 1) / (n - k)
    return TwoWayFit(params, cov, n, PartialledRegression(
        x, y, None if panel.unit_weights is None else weights, unit, panel.time_codes[keep],
        clusters))


def few_cluster_inference(fit: TwoWayFit, table: pd.DataFrame, info: dict,
                          options: TwoWayFixedEffects) -> np.ndarray:
    """Apply ``options.se`` to a fitted regression: update ``table`` and ``info`` in place.

    Returns the covariance to report (CR2 for ``se="cr2"``, else the analytic one).
    """
    if options.se == "analytic":
        return fit.cov
    from evaluation.inference.cr2 import cr2_two_way
    from evaluation.inference.wild import describe, ols_problems, run_wild

    data = fit.partialled
    if options.se == "cr2":
        resid = data.y - data.x @ fit.params
        cr2 = cr2_two_way(data.x, resid, data.weights, data.unit, data.time, data.cluster)
        table["std_error"] = np.sqrt(np.diag(cr2.vcov))
        table["df"] = cr2.dfs
        info["se"] = "cr2 (Bell-McCaffrey df)"
        return cr2.vcov
    problems = ols_problems(data.x, data.y, data.cluster, weights=data.weights,
                            null=options.wild_null)
    tests, n_draws, enumerated = run_wild(
        problems, int(data.cluster.max()) + 1, weights=options.wild_weights,
        draws=options.draws, seed=options.seed, alpha=options.alpha)
    table["p_value"] = [t.p_value for t in tests]
    table["ci_lower"] = [t.ci_lower for t in tests]
    table["ci_upper"] = [t.ci_upper for t in tests]
    info["se"] = describe(options.wild_null, options.wild_weights, n_draws, enumerated)
    if not enumerated:
        info["seed"] = DEFAULT_RANDOM_SEED if options.seed is None else options.seed
    return fit.cov


