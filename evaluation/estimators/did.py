r"""Canonical difference-in-differences: two-way fixed effects, static and dynamic.

Both are least-squares regressions with unit and period fixed effects estimated with
``linearmodels.PanelOLS`` and cluster-robust standard errors (clustered by the panel's
cluster column, or by unit). With one adoption date and two periods the static
coefficient is the 2x2 difference of mean changes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from linearmodels.panel import PanelOLS

from evaluation.errors import InvalidOptionError, PanelError
from evaluation.panel import Panel
from evaluation.results import EstimationResult


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
    alpha
        Significance level.

    Notes
    -----
    Static: :math:`Y_{it} = \alpha_i + \lambda_t + \beta D_{it} + \varepsilon_{it}` with the
    treatment status :math:`D_{it}` (the status column for trials that switch off, else
    :math:`t \ge G_i`). Dynamic:
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

    def __post_init__(self) -> None:
        for name in ("leads", "lags"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int | np.integer) or value < 1):
                raise InvalidOptionError(f"{name}={value!r} must be a positive integer or None.")
        if self.leads is not None and self.reference < -self.leads:
            raise InvalidOptionError(f"reference={self.reference} lies in the binned leads; "
                                     f"choose a reference between -{self.leads} and the lags.")

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
            "estimate": fit.params.to_numpy(),
            "std_error": fit.std_errors.to_numpy(),
        })
        if not self.dynamic:
            table = table.drop(columns="event_time")
        return EstimationResult(
            estimator="twfe", aggregation="dynamic" if self.dynamic else "static",
            table=table, alpha=self.alpha, vcov=fit.cov.to_numpy(),
            info={"units": panel.n_units, "observations": int(fit.nobs),
                  "clusters": "unit" if panel.unit_cluster is None else panel.cluster,
                  "reference event time": self.reference if self.dynamic else "none"})

    def _event_dummies(self, panel: Panel) -> tuple[np.ndarray, list[tuple[str, int]]]:
        """Event-time indicators with binned end points (never-treated rows all zero)."""
        if np.isnan(panel.unit_cohort).all():
            raise PanelError("the dynamic model needs treated units with a cohort.")
        cohort = panel.unit_cohort[panel.unit_codes]
        event = panel.time_codes - cohort  # NaN for never-treated rows
        step = panel.step if panel.time_kind == "integer" else 1
        low = -np.inf if self.leads is None else -self.leads
        high = np.inf if self.lags is None else self.lags
        binned = np.clip(event, low, high)
        values = np.unique(binned[~np.isnan(binned)]).astype(int)
        values = values[values != self.reference]
        if values.size == 0:
            raise PanelError("no event time besides the reference period is observed.")
        columns, labels = [], []
        for e in values:
            columns.append(binned == e)
            prefix = "<=" if self.leads is not None and e == low else (
                ">=" if self.lags is not None and e == high else "")
            labels.append((f"{prefix}{e * step}", int(e * step)))
        return np.column_stack(columns).astype(float), labels


def fit_two_way(panel: Panel, regressors: np.ndarray, *, small_sample: bool = False,
                rows: np.ndarray | None = None):
    """Least squares of the panel's outcome on ``regressors`` with unit and period effects.

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
    linearmodels.panel.results.PanelEffectsResults
        The fit with cluster-robust covariance (clustered by the panel's cluster column, or
        by unit).
    """
    keep = np.ones(panel.n_obs, dtype=bool) if rows is None else rows
    index = pd.MultiIndex.from_arrays([panel.unit_codes[keep], panel.time_codes[keep]])
    y = pd.Series(panel.data[panel.outcome].to_numpy(dtype=float)[keep], index=index)
    exog = pd.DataFrame(regressors, index=index,
                        columns=[f"b{j}" for j in range(regressors.shape[1])])
    if not (exog.var().to_numpy() > 0).all():
        raise PanelError("a treatment regressor has no variation (e.g. every unit is treated "
                         "in every period, or a cohort is never observed at some event time)"
                         "; the fixed-effects regression cannot be estimated.")
    weights = None
    if panel.unit_weights is not None:
        weights = pd.Series(panel.unit_weights[panel.unit_codes[keep]], index=index)
    model = PanelOLS(y, exog, entity_effects=True, time_effects=True, weights=weights,
                     check_rank=False, drop_absorbed=False)
    options = {"cov_type": "clustered", "debiased": small_sample,
               "group_debias": small_sample, "auto_df": False, "count_effects": False}
    if panel.unit_cluster is not None:
        clusters = pd.DataFrame({"cluster": panel.unit_cluster[panel.unit_codes[keep]]},
                                index=index)
        return model.fit(clusters=clusters, **options)
    return model.fit(cluster_entity=True, **options)
