r"""Imputation (Borusyak, Jaravel and Spiess 2024) and two-stage (Gardner 2021) DiD.

Both fit unit and period effects on untreated observations only, impute the untreated
outcome :math:`\hat Y_{it}(0) = \hat\alpha_i + \hat\lambda_t` of every observation and
work with :math:`\tilde Y_{it} = Y_{it} - \hat Y_{it}(0)`. The imputation estimator
averages :math:`\tilde Y` over treated observations with the weights of the estimand; the
two-stage estimator regresses :math:`\tilde Y` on treatment indicators, which gives the
same point estimates for the static and event-time estimands. They differ in inference:
BJS's conservative clustered variance versus Gardner's GMM-corrected variance. All
fixed-effects algebra is sparse and iterative (:mod:`._fixed_effects`).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from evaluation.errors import DroppedObservationsWarning, InvalidOptionError, PanelError
from evaluation.estimators._fixed_effects import TwoWayDesign
from evaluation.estimators._inference import cluster_robust_ols, cluster_sums
from evaluation.estimators.did import event_time_dummies
from evaluation.estimators.results import EstimationResult, PretrendTest
from evaluation.options import validate_fields
from evaluation.panel import Panel


@dataclass
class _FirstStage:
    """Rows, treatment status, imputed residuals and second-stage regressors."""

    keep: np.ndarray  # panel rows used
    design: TwoWayDesign
    y_tilde: np.ndarray  # Y - (alpha + lambda) on kept rows
    treated: np.ndarray  # status of kept rows
    event: np.ndarray  # t - G on kept rows (NaN never treated), in periods
    cluster: np.ndarray  # cluster code of kept rows
    weights: np.ndarray  # regression weights of kept rows (ones if none)
    step: int


def _first_stage(panel: Panel) -> _FirstStage:
    """Fit unit and period effects on untreated observations and impute Y(0)."""
    if panel.cohort is None and panel.status is None:
        raise PanelError("the imputation and two-stage estimators need a cohort or status "
                         "column; pass cohort= or status= when building the Panel.")
    status = panel.status_wide()[panel.unit_codes, panel.time_codes]
    untreated_units = np.bincount(panel.unit_codes, weights=~status,
                                  minlength=panel.n_units) > 0
    keep = untreated_units[panel.unit_codes]
    if not keep.all():
        warnings.warn(f"dropped {int((~untreated_units).sum())} units treated in every observed "
                      "period: their unit effect cannot be estimated.",
                      DroppedObservationsWarning, stacklevel=3)
    unit = np.unique(panel.unit_codes[keep], return_inverse=True)[1]
    time = panel.time_codes[keep]
    treated = status[keep]
    if not (~treated).any() or not treated.any():
        raise PanelError("the panel needs both treated and untreated observations.")
    weights = (np.ones(keep.sum()) if panel.unit_weights is None
               else panel.unit_weights[panel.unit_codes[keep]])
    covariates = None
    if panel.covariates:
        covariates = np.column_stack([panel.data[c].to_numpy(dtype=float)[keep]
                                      for c in panel.covariates])
    design = TwoWayDesign(unit, time, ~treated, int(unit.max()) + 1, panel.n_periods,
                          None if panel.unit_weights is None else weights, covariates)
    y = panel.data[panel.outcome].to_numpy(dtype=float)[keep]
    time_seen = np.bincount(time[~treated], minlength=panel.n_periods) > 0
    if not time_seen[time].all():
        raise PanelError("some periods have no untreated observation, so their period effect "
                         "cannot be imputed (e.g. every unit is treated by then); drop those "
                         "periods or add never-treated units.")
    imputed = design.fitted(*design.solve(*design.rhs((weights * y)[:, None], ~treated)))
    cohort = panel.unit_cohort[panel.unit_codes[keep]]
    cluster = (unit if panel.unit_cluster is None
               else panel.unit_cluster[panel.unit_codes[keep]])
    return _FirstStage(keep, design, y - imputed[:, 0], treated, time - cohort, cluster,
                       weights, panel.step if panel.time_kind == "integer" else 1)


def _check_horizons(name: str, value: object) -> None:
    if value is not None and (
            not isinstance(value, tuple | list) or not value
            or not all(isinstance(e, int | np.integer) and not isinstance(e, bool) and e >= 0
                       for e in value)):
        raise InvalidOptionError(f"{name}={value!r} must be None or a non-empty tuple of "
                                 "event times 0, 1, ...")


@dataclass(frozen=True)
class TwoStageDiD:
    r"""Gardner's (2021) two-stage difference-in-differences (``did2s``).

    Parameters
    ----------
    dynamic
        False: one coefficient on the treatment status. True: event-time indicators of
        treated cohorts (leads and lags) except ``reference``.
    reference
        Event time left out of the dynamic second stage (default -1).
    leads, lags
        Bin event times below ``-leads`` and above ``lags`` (None keeps all).
    alpha
        Significance level.

    Notes
    -----
    Stage 1 fits :math:`Y = X_1\gamma + \varepsilon_1` (unit and period dummies) on the
    untreated rows; stage 2 regresses :math:`\tilde Y = Y - X_1\hat\gamma` on the
    treatment regressors :math:`X_2` over all rows (no intercept). The GMM-corrected
    variance (Butts and Gardner 2022) is

    .. math::

        \hat V = (X_2'X_2)^{-1}\Big[\sum_c \psi_c\psi_c'\Big](X_2'X_2)^{-1}, \qquad
        \psi_c = X_{2c}'\hat\varepsilon_{2c}
          - X_2'X_1 (X_{10}'X_{10})^{-1} X_{10c}'\hat\varepsilon_{1c},

    with :math:`X_{10}` the stage-1 dummies of untreated rows (zero elsewhere), all
    products weighted by the sampling weights and no small-sample factor, as R ``did2s``
    and ``pyfixest.did2s``.
    """

    dynamic: bool = False
    reference: int = -1
    leads: int | None = None
    lags: int | None = None
    alpha: float = 0.05

    def __post_init__(self) -> None:
        validate_fields(self)

    def fit(self, panel: Panel) -> EstimationResult:
        """Estimate the second-stage coefficients and their GMM-corrected covariance."""
        stage = _first_stage(panel)
        if self.dynamic:
            x2, values, labels = event_time_dummies(stage.event, self.reference, self.leads,
                                                    self.lags, stage.step)
        else:
            x2, values, labels = stage.treated.astype(float)[:, None], [None], ["ATT"]
        w = stage.weights
        bread = np.linalg.inv(x2.T @ (w[:, None] * x2))
        beta = bread @ (x2.T @ (w * stage.y_tilde))
        resid2 = stage.y_tilde - x2 @ beta
        design = stage.design
        fit = design.fit_rows
        gamma = design.solve(*design.rhs(w[:, None] * x2))
        correction = design.fitted(*gamma) * (w * stage.y_tilde * fit)[:, None]
        scores = (w * resid2)[:, None] * x2 - correction
        sums = cluster_sums(scores, stage.cluster)
        vcov = bread @ (sums.T @ sums) @ bread
        table = pd.DataFrame({"term": labels, "estimate": beta,
                              "std_error": np.sqrt(np.diag(vcov))})
        if self.dynamic:
            table.insert(1, "event_time", [e * stage.step for e in values])
        return EstimationResult(
            estimator="did2s", aggregation="dynamic" if self.dynamic else "static",
            table=table, alpha=self.alpha, vcov=vcov,
            info={"observations": int(stage.keep.sum()),
                  "untreated observations": int(fit.sum()),
                  "clusters": "unit" if panel.unit_cluster is None else panel.cluster})


@dataclass(frozen=True)
class ImputationDiD:
    r"""Borusyak, Jaravel and Spiess (2024) imputation estimator.

    Parameters
    ----------
    by
        ``"event"``: one estimand per event time; ``"cohort"``: one per cohort (all its
        treated observations). The overall effect always averages all treated observations.
    horizons
        Event times (0, 1, ...) to report with ``by="event"``; None reports every observed
        post-treatment event time.
    pretrend_leads
        Number of leads in the pre-trend test on untreated observations (0: no test).
    alpha
        Significance level.

    Notes
    -----
    For an estimand :math:`\tau_w = \sum_{it \in \Omega_1} w_{it}\tau_{it}` the estimator is
    :math:`\hat\tau_w = \sum_{\Omega_1} w_{it}\tilde Y_{it}`; it is a linear function of
    all outcomes, :math:`\hat\tau_w = \sum_{it} v_{it} Y_{it}` with :math:`v = w` on treated
    and :math:`v = -X_{10}(X_{10}'X_{10})^{-1}X_{11}'w` on untreated observations. BJS's
    conservative clustered variance is

    .. math::

        \hat\sigma^2_w = \sum_c \Big(\sum_{it \in c} v_{it}\hat\varepsilon_{it}\Big)^2,

    with :math:`\hat\varepsilon_{it}` the stage-1 residual on untreated observations and
    :math:`\tilde Y_{it} - \bar\tau_{g(i),t-g(i)}` on treated ones, where
    :math:`\bar\tau` averages :math:`\tilde Y` within cohort x event-time cells with weights
    :math:`v^2` (BJS 2024, section 4.2; conservative because treatment effects may vary
    within cells).
    """

    by: Literal["event", "cohort"] = "event"
    horizons: tuple[int, ...] | None = None
    pretrend_leads: int = 0
    alpha: float = 0.05

    def __post_init__(self) -> None:
        validate_fields(self, {"horizons": _check_horizons})

    def fit(self, panel: Panel, estimands: Mapping[str, np.ndarray] | None = None
            ) -> EstimationResult:
        """Estimate the overall and event-time (or cohort) effects with conservative SEs.

        Parameters
        ----------
        panel
            The panel.
        estimands
            Extra estimands: name -> non-negative weight of every row of ``panel.data``
            (only treated rows may be positive; e.g. the indicator of a target group or a
            trial area). Each is normalised to sum to one and reported as its own row.
        """
        stage = _first_stage(panel)
        treated = stage.treated
        cohort = stage.design.time - stage.event  # grid position of each row's cohort
        if self.by == "cohort":
            horizons = np.unique(cohort[treated]).astype(int)
            masks = [treated & (cohort == g) for g in horizons]
        else:
            event = np.where(treated, stage.event, np.nan)
            horizons = (np.unique(event[treated]).astype(int) if self.horizons is None
                        else np.asarray(self.horizons, dtype=int))
            masks = [treated & (event == h) for h in horizons]
        if not all(m.any() for m in masks):
            raise InvalidOptionError("a requested horizon has no treated observation.")
        w = stage.weights
        extra = self._user_estimands(panel, stage, estimands or {})
        weight_columns = np.column_stack([treated, *masks, *extra.values()]
                                         ).astype(float) * w[:, None]
        weight_columns /= weight_columns.sum(axis=0)
        estimates = weight_columns.T @ stage.y_tilde
        v = self._implied_weights(stage, weight_columns)
        cell = pd.factorize(pd.MultiIndex.from_arrays(
            [np.where(treated, cohort, -1), np.where(treated, stage.event, -1)]))[0]
        se = np.array([self._conservative_se(stage, v[:, j], cell) for j in range(v.shape[1])])
        standard = slice(1, len(horizons) + 1)
        if self.by == "cohort":
            labels = [panel.period_label(g) for g in horizons]
            table = pd.DataFrame({"term": [str(g) for g in labels], "group": labels,
                                  "estimate": estimates[standard], "std_error": se[standard]})
        else:
            table = pd.DataFrame({"term": [str(h * stage.step) for h in horizons],
                                  "event_time": horizons * stage.step,
                                  "estimate": estimates[standard], "std_error": se[standard]})
        if extra:
            table = pd.concat([table, pd.DataFrame({
                "term": list(extra), "estimate": estimates[standard.stop:],
                "std_error": se[standard.stop:]})], ignore_index=True)
        info = {"observations": int(stage.keep.sum()),
                "untreated observations": int(stage.design.fit_rows.sum()),
                "clusters": "unit" if panel.unit_cluster is None else panel.cluster}
        result = EstimationResult(
            estimator="bjs", aggregation="group" if self.by == "cohort" else "event",
            table=table, alpha=self.alpha,
            overall=pd.DataFrame({"term": ["overall"], "estimate": [estimates[0]],
                                  "std_error": [se[0]]}), info=info)
        if self.pretrend_leads:
            result.pretest = self._pretrend(stage)
            result.info["pre-trend test"] = result.pretest.as_text()
        return result

    @staticmethod
    def _user_estimands(panel: Panel, stage: _FirstStage,
                        estimands: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Validate user estimand weights and restrict them to the rows used."""
        out = {}
        for name, values in estimands.items():
            values = np.asarray(values, dtype=float)
            if values.shape != (panel.n_obs,) or not np.isfinite(values).all() \
                    or (values < 0).any():
                raise InvalidOptionError(
                    f"estimand {name!r} needs one finite, non-negative weight per panel row "
                    f"({panel.n_obs}); got shape {values.shape}.")
            values = values[stage.keep]
            if (values[~stage.treated] != 0).any() or values.sum() == 0:
                raise InvalidOptionError(
                    f"estimand {name!r} must put positive weight on treated observations "
                    "only (untreated rows need weight 0).")
            out[name] = values
        return out

    @staticmethod
    def _implied_weights(stage: _FirstStage, weights: np.ndarray) -> np.ndarray:
        """Weights :math:`v` of every observation in each estimand (columns)."""
        design = stage.design
        implied = -design.fitted(*design.solve(*design.rhs(weights))) * stage.weights[:, None]
        return np.where(design.fit_rows[:, None], implied, weights)

    @staticmethod
    def _conservative_se(stage: _FirstStage, v: np.ndarray, cell: np.ndarray) -> float:
        """BJS's conservative standard error for implied weights ``v``.

        ``cell`` codes the cohort x event-time cells of treated observations.
        """
        treated = stage.treated
        v2 = v**2
        mean = (np.bincount(cell, weights=v2 * stage.y_tilde)
                / np.maximum(np.bincount(cell, weights=v2), 1e-300))
        resid = np.where(treated, stage.y_tilde - mean[cell], stage.y_tilde)
        sums = np.bincount(stage.cluster, weights=v * resid)
        return float(np.sqrt(sums @ sums))

    def _pretrend(self, stage: _FirstStage) -> PretrendTest:
        """BJS test 1: leads of eventually treated units on untreated observations only."""
        untreated = stage.design.fit_rows
        event = stage.event[untreated]
        columns = [(event == -k).astype(float) for k in range(1, self.pretrend_leads + 1)]
        x = np.column_stack(columns)
        keep = x.any(axis=0)
        x = x[:, keep]
        name = f"BJS test of {self.pretrend_leads} leads on untreated observations"
        if x.shape[1] == 0:
            return PretrendTest.unavailable(name, "no lead observed")
        design = stage.design
        leads = np.zeros((untreated.size, x.shape[1]))
        leads[untreated] = x
        xt = (leads - design.fitted(*design.solve(*design.rhs(
            stage.weights[:, None] * leads, untreated))))[untreated]
        yt = stage.y_tilde[untreated]  # already the residual of the untreated fit
        beta, vcov = cluster_robust_ols(xt, yt, design.fit_weights, stage.cluster[untreated])
        return PretrendTest.wald(name, beta, vcov)
