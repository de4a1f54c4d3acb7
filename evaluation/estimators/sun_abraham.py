r"""Sun and Abraham (2021) interaction-weighted event study.

A two-way fixed-effects regression on cohort x relative-period indicators (the estimator of
``fit_two_way``, whose oracle is ``linearmodels.PanelOLS``, computed from cell codes by
:func:`~evaluation.estimators._sun_abraham_design.fit_cells`) gives cohort-specific effects
:math:`\hat\delta_{g\ell}` that are not contaminated by other cohorts' effects; they are
averaged across cohorts with the cohorts' estimated shares at each relative period. The
covariance of the aggregated event-time effects includes the uncertainty of those shares
(which fixest's ``sunab`` omits). With few clusters, ``se="cr2"`` (CR2 with Bell-McCaffrey
degrees of freedom, as R ``clubSandwich``) and ``se="wild"`` (wild cluster bootstrap of each
event-time contrast) apply to the cohort x relative-period regression
(:mod:`~evaluation.estimators._sun_abraham_inference`), as for two-way fixed effects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from evaluation.errors import InvalidOptionError, PanelError
from evaluation.estimators._absorbing import absorbing_only
from evaluation.estimators._sun_abraham_design import (
    DemeanedCells,
    InteractionDesign,
    demeaned_cells,
    fit_cells,
)
from evaluation.estimators._sun_abraham_inference import cr2_cells, wild_contrasts
from evaluation.estimators.did import StandardErrors
from evaluation.estimators.results import EstimationResult
from evaluation.inference.clusters import warn_panel_clusters
from evaluation.inference.wild import WildNull, WildWeights
from evaluation.options import validate_fields
from evaluation.panel import Panel

SunAbrahamControl = Literal["never", "last"]


def _check_references(name: str, value: object) -> None:
    if (not isinstance(value, tuple) or not value
            or not all(isinstance(e, int | np.integer) and not isinstance(e, bool)
                       for e in value)):
        raise InvalidOptionError(f"{name}={value!r} must be a non-empty tuple of whole "
                                 "relative periods, e.g. (-1,).")


@dataclass(frozen=True)
class SunAbraham:
    r"""Interaction-weighted event-study estimator.

    Parameters
    ----------
    control
        ``"never"``: never-treated units are the comparison cohort; ``"last"``: the last
        treated cohort is, and periods from its adoption on are dropped.
    reference
        Relative periods normalised to zero (default ``(-1,)``).
    leads, lags
        Relative periods below ``-leads`` and above ``lags`` are pooled into binned end
        points per cohort (None keeps every relative period).
    small_sample
        Small-sample factors of the cluster-robust covariance, as
        :class:`~evaluation.estimators.did.TwoWayFixedEffects`. Ignored by ``se="cr2"``,
        which makes its own correction.
    share_uncertainty
        Include the estimation of the cohort shares in the covariance of the event-time
        effects (default). False treats the shares as fixed, as fixest and pyfixest do.
    alpha
        Significance level.
    se
        ``"analytic"``: cluster-robust (CR0) covariance, normal critical values.
        ``"cr2"``: bias-reduced CR2 covariance of the cohort x relative-period coefficients
        :math:`\hat\delta` (:func:`~evaluation.inference.cr2.cr2_two_way`, equal to R
        ``clubSandwich``), carried to the event-time and overall effects as below; every row
        of ``table``, ``overall`` and ``cohort_effects`` gets a ``df`` column (the
        Bell-McCaffrey degrees of freedom of its contrast) and intervals use :math:`t_{df}`.
        ``"wild"``: wild cluster bootstrap p-values and test-inversion intervals
        (:mod:`evaluation.inference.wild`) of every event-time effect and the overall effect
        in the ``p_value, ci_lower, ci_upper`` columns of ``table`` and ``overall``;
        ``std_error`` stays the analytic one. The bootstrap treats the shares as fixed: it
        tests the contrast :math:`p_\ell'\delta` of the regression, as R
        ``fwildclusterboot``'s ``boottest(R = p)`` would
        (:func:`~evaluation.estimators._sun_abraham_inference.contrast_problems`).
        CR2 builds the dense ``(observations x cells)`` matrix of demeaned indicators, which
        the others avoid (the bootstrap needs only per-cluster cross products).
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
    Regression: :math:`Y_{it} = \alpha_i + \lambda_t + \sum_{g \notin C}\sum_{\ell \notin R}
    \delta_{g\ell} 1\{G_i = g, t - g = \ell\} + \varepsilon_{it}`. Event-time effects:

    .. math::

        \hat\nu_\ell = \sum_g \hat p_{g\ell}\,\hat\delta_{g\ell}, \qquad
        \hat p_{g\ell} = \frac{N_{g\ell}}{\sum_{g'} N_{g'\ell}}, \qquad
        N_{g\ell} = \sum_i w_i N_{i,g\ell},

    with :math:`N_{i,g\ell}` the observations of unit :math:`i` in cohort :math:`g` at
    relative period :math:`\ell` and :math:`w_i` the panel's unit weights (one without
    weights, when :math:`N_{g\ell}` counts the cell's observations). By the delta method,
    :math:`\mathrm{Var}(\hat\nu) = P\,V_\delta P' + \Delta\,V_p \Delta'` with
    :math:`V_\delta` the cluster-robust covariance of :math:`\hat\delta`, :math:`V_p` the
    covariance of the shares from their influence functions (clustered the same way),
    :math:`P` the share weights and :math:`\Delta` the cohort effects, as in Sun and Abraham
    (2021, appendix) and Stata's ``eventstudyinteract``. The two estimates are treated as
    independent; their covariance is exactly zero when clusters are single units and the
    weights are constant within cohorts, e.g. without weights (then the result equals
    Callaway and Sant'Anna's with a universal base period, standard errors included), but
    not within larger clusters nor with weights varying within a cohort (a cohort's
    weighted residuals :math:`w_i\hat e_{it}` sum to zero, its :math:`w_i^2\hat e_{it}`
    need not), where the two standard errors differ slightly.

    With ``se="cr2"``, :math:`V_\delta` is the CR2 covariance :math:`V^{CR2}_\delta`, so
    :math:`\mathrm{Var}(\hat\nu) = P\,V^{CR2}_\delta P' + \Delta\,V_p \Delta'`
    (the second term only with ``share_uncertainty``, unchanged: the shares are means of
    unit counts, not regression coefficients). The degrees of freedom of row :math:`\ell`
    are those of the contrast :math:`p_\ell'\delta` (row :math:`\ell` of :math:`P`), and
    of the overall effect those of :math:`a'P\delta` with :math:`a` the average over
    post-treatment relative periods; they ignore the share term, which is small when
    cohorts are large.
    """

    control: SunAbrahamControl = "never"
    reference: tuple[int, ...] = (-1,)
    leads: int | None = None
    lags: int | None = None
    small_sample: bool = False
    share_uncertainty: bool = True
    alpha: float = 0.05
    se: StandardErrors = "analytic"
    wild_weights: WildWeights = "rademacher"
    draws: int = 9999
    seed: int | None = None
    wild_null: WildNull = "restricted"

    def __post_init__(self) -> None:
        validate_fields(self, {"reference": _check_references})

    @absorbing_only("sa", "Sun-Abraham")
    def fit(self, panel: Panel) -> SunAbrahamResult:
        """Estimate cohort-specific effects and their interaction-weighted averages."""
        if panel.cohort is None and panel.status is None:
            raise PanelError("the Sun-Abraham estimator needs a cohort column; pass cohort= "
                             "when building the Panel.")
        design = InteractionDesign.build(panel, self)
        cells = demeaned_cells(panel, design)
        fit = fit_cells(panel, design, small_sample=self.small_sample,
                        partialled=self.se == "cr2", cells=cells)
        delta = fit.params
        cr2 = cr2_cells(fit) if self.se == "cr2" else None
        v_delta = fit.cov if cr2 is None else cr2.vcov
        weights, share_cov = design.shares(panel)
        event_values = design.events
        p = np.zeros((event_values.size, delta.size))
        grad = np.zeros((event_values.size, delta.size))
        for row, e in enumerate(event_values):
            columns = [j for j, (_, ell) in enumerate(design.labels) if ell == e]
            p[row, columns] = weights[columns]
            grad[row, columns] = delta[columns]
        estimate = p @ delta
        vcov = p @ v_delta @ p.T
        if self.share_uncertainty:
            vcov = vcov + grad @ share_cov @ grad.T
        post = event_values >= 0
        average = np.where(post, 1 / max(post.sum(), 1), 0.0)
        overall_var = float(average @ vcov @ average)
        step = panel.step if panel.time_kind == "integer" else 1
        table = pd.DataFrame({"term": [_event_label(e, design, self) for e in event_values],
                              "event_time": event_values * step, "estimate": estimate,
                              "std_error": np.sqrt(np.diag(vcov))})
        overall = pd.DataFrame({"term": ["overall"], "estimate": [float(average @ estimate)],
                                "std_error": [np.sqrt(overall_var)]})
        cohorts = pd.DataFrame({
            "cohort": [panel.period_label(g) for g, _ in design.labels],
            "event_time": [ell * step for _, ell in design.labels],
            "estimate": delta, "std_error": np.sqrt(np.diag(v_delta)), "weight": weights})
        info = {"control": design.control_label, "units": int(design.n_units),
                "observations": int(fit.nobs),
                "reference": ", ".join(str(r) for r in self.reference)}
        if cr2 is not None:
            table["df"] = [cr2.df(row) for row in p]
            overall["df"] = [cr2.df(average @ p) if post.any() else np.nan]
            cohorts["df"] = cr2.dfs
            info["se"] = "cr2 (Bell-McCaffrey df)"
        elif self.se == "wild":
            self._wild(cells, p, average @ p if post.any() else None, table, overall, info)
        result = SunAbrahamResult(
            estimator="sa", aggregation="event", table=table, alpha=self.alpha, vcov=vcov,
            overall=overall, info=info, cohort_effects=cohorts, cohort_vcov=v_delta)
        result.warnings.extend(warn_panel_clusters(panel, self.se))
        return result

    def _wild(self, cells: DemeanedCells, event_contrasts: np.ndarray,
              overall_contrast: np.ndarray | None, table: pd.DataFrame,
              overall: pd.DataFrame, info: dict) -> None:
        """Add the wild bootstrap's p-values and intervals to ``table`` and ``overall``."""
        tests, total, labels = wild_contrasts(cells, event_contrasts, overall_contrast, self)
        info.update(labels)
        for frame, rows in ((table, tests), (overall, [total])):
            frame["p_value"] = [np.nan if t is None else t.p_value for t in rows]
            frame["ci_lower"] = [np.nan if t is None else t.ci_lower for t in rows]
            frame["ci_upper"] = [np.nan if t is None else t.ci_upper for t in rows]


@dataclass
class SunAbrahamResult(EstimationResult):
    """Event-time effects of :class:`SunAbraham` plus the cohort-specific effects.

    Attributes
    ----------
    cohort_effects
        One row per cohort and relative period: ``cohort, event_time, estimate,
        std_error, weight`` (the cohort's share at that relative period).
        With ``se="cr2"`` also ``df``, and ``std_error`` is the CR2 one.
    cohort_vcov
        Cluster-robust covariance of the cohort-specific effects (CR2 with ``se="cr2"``).
    """

    cohort_effects: pd.DataFrame = field(default_factory=pd.DataFrame)
    cohort_vcov: np.ndarray | None = None


def _event_label(e: int, design: InteractionDesign, options: SunAbraham) -> str:
    """Term of relative period ``e``: ``<=e`` and ``>=e`` for binned end points."""
    if options.leads is not None and e == design.low:
        return f"<={e}"
    if options.lags is not None and e == design.high:
        return f">={e}"
    return str(e)
