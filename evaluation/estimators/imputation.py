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
from evaluation.estimators._absorbing import absorbing_only
from evaluation.estimators._fixed_effects import TwoWayDesign
from evaluation.estimators._inference import cluster_robust_ols, cluster_sums
from evaluation.estimators.did import StandardErrors, event_time_dummies
from evaluation.estimators.results import EstimationResult, PretrendTest
from evaluation.inference.clusters import warn_panel_clusters
from evaluation.inference.wild import WildNull, WildWeights
from evaluation.options import DEFAULT_RANDOM_SEED, validate_fields
from evaluation.panel import Panel

#: Largest ``rows x clusters`` matrix the few-cluster options of these estimators build.
MAX_SUM_ENTRIES = 2**25


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
    se
        ``"analytic"`` (default: the clustered variance above, normal critical values),
        ``"cr2"`` (scalar CR2 analogue with Satterthwaite degrees of freedom in a ``df``
        column, :func:`~evaluation.inference.cr2.cr2_linear`) or ``"wild"`` (wild cluster
        bootstrap of the linear estimator, :func:`linear_few_cluster_inference`: ``p_value,
        ci_lower, ci_upper`` columns, ``std_error`` stays analytic).
    wild_weights, draws, seed, wild_null
        Wild bootstrap multipliers (``"rademacher"``, ``"webb"``, ``"mammen"``), number of
        draws, seed (None: the package default) and null (``"restricted"``: WCR,
        ``"unrestricted"``: WCU), as for
        :class:`~evaluation.estimators.did.TwoWayFixedEffects`.

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
    se: StandardErrors = "analytic"
    wild_weights: WildWeights = "rademacher"
    draws: int = 9999
    seed: int | None = None
    wild_null: WildNull = "restricted"

    def __post_init__(self) -> None:
        validate_fields(self)

    @absorbing_only("did2s", "Two-stage DiD (Gardner)")
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
        info = {"observations": int(stage.keep.sum()),
                "untreated observations": int(fit.sum()),
                "clusters": "unit" if panel.unit_cluster is None else panel.cluster}
        if self.se != "analytic":
            items = _two_stage_items(stage, panel, x2, bread, beta, np.sqrt(np.diag(vcov)))
            linear_few_cluster_inference(self, items, [table], info, _outcome(stage, panel),
                                  _codes(stage))
        result = EstimationResult(
            estimator="did2s", aggregation="dynamic" if self.dynamic else "static",
            table=table, alpha=self.alpha, vcov=vcov, info=info)
        result.warnings.extend(warn_panel_clusters(panel, self.se))
        return result


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
    se
        ``"analytic"`` (default: the clustered variance above, normal critical values),
        ``"cr2"`` (scalar CR2 analogue with Satterthwaite degrees of freedom in a ``df``
        column, :func:`~evaluation.inference.cr2.cr2_linear`) or ``"wild"`` (wild cluster
        bootstrap of the linear estimator, :func:`linear_few_cluster_inference`: ``p_value,
        ci_lower, ci_upper`` columns, ``std_error`` stays analytic).
    wild_weights, draws, seed, wild_null
        Wild bootstrap multipliers (``"rademacher"``, ``"webb"``, ``"mammen"``), number of
        draws, seed (None: the package default) and null (``"restricted"``: WCR,
        ``"unrestricted"``: WCU), as for
        :class:`~evaluation.estimators.did.TwoWayFixedEffects`.

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
    se: StandardErrors = "analytic"
    wild_weights: WildWeights = "rademacher"
    draws: int = 9999
    seed: int | None = None
    wild_null: WildNull = "restricted"

    def __post_init__(self) -> None:
        validate_fields(self, {"horizons": _check_horizons})

    @absorbing_only("bjs", "Imputation DiD (BJS)")
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
        overall = pd.DataFrame({"term": ["overall"], "estimate": [estimates[0]],
                                "std_error": [se[0]]})
        if self.se != "analytic":
            items = _imputation_items(stage, panel, v, cell, estimates, se)
            order = [*range(1, len(items)), 0]  # table rows first, then the overall row
            linear_few_cluster_inference(self, [items[j] for j in order], [table, overall], info,
                                  _outcome(stage, panel), _codes(stage))
        result = EstimationResult(
            estimator="bjs", aggregation="group" if self.by == "cohort" else "event",
            table=table, alpha=self.alpha, overall=overall, info=info)
        result.warnings.extend(warn_panel_clusters(panel, self.se))
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


@dataclass(frozen=True)
class _LinearItem:
    r"""One estimate :math:`\lambda'y` with the vectors its few-cluster inference needs."""

    estimate: float
    std_error: float
    estimator: np.ndarray  # lambda
    sums: np.ndarray  # (n, G): l_c
    restricted: tuple[np.ndarray, np.ndarray]  # WCR residuals u0 + b u1
    unrestricted: np.ndarray  # WCU residuals


def _tilde(stage: _FirstStage, values: np.ndarray) -> np.ndarray:
    r"""Return :math:`Y - \hat Y(0)` of each column (effects fitted on untreated rows)."""
    design = stage.design
    return values - design.fitted(*design.solve(*design.rhs(
        stage.weights[:, None] * values, design.fit_rows)))


def _tilde_adjoint(stage: _FirstStage, values: np.ndarray) -> np.ndarray:
    r"""Adjoint of :func:`_tilde`: :math:`Z - P_0'WX_{10}(X_{10}'WX_{10})^{-1}X_1'Z`."""
    design = stage.design
    back = design.fitted(*design.solve(*design.rhs(values)))
    return values - (stage.weights * design.fit_rows)[:, None] * back


def _indicators(stage: _FirstStage) -> np.ndarray:
    """Dense ``(n, G)`` cluster indicators of the rows (memory-checked)."""
    cluster = _codes(stage)
    n, g = cluster.size, int(cluster.max()) + 1
    if n * g > MAX_SUM_ENTRIES:
        raise InvalidOptionError(
            f"se='cr2'/'wild' for the imputation and two-stage estimators build an {n} x {g} "
            "rows-by-clusters matrix, too large; with this many clusters the analytic "
            "variance is reliable: use se='analytic'.")
    out = np.zeros((n, g))
    out[np.arange(n), cluster] = 1.0
    return out


def _outcome(stage: _FirstStage, panel: Panel) -> np.ndarray:
    return panel.data[panel.outcome].to_numpy(dtype=float)[stage.keep]


def _codes(stage: _FirstStage) -> np.ndarray:
    return np.unique(stage.cluster, return_inverse=True)[1]


def _two_stage_items(stage: _FirstStage, panel: Panel, x2: np.ndarray, bread: np.ndarray,
                     beta: np.ndarray, se: np.ndarray) -> list[_LinearItem]:
    r"""Estimator weights, clustered-sum vectors and bootstrap residuals of each coefficient.

    With :math:`a = WX_2Be_j` and :math:`f = W\,1_{untreated}\,X_1M_1X_1'WX_2Be_j`, the
    GMM clustered sums are :math:`\sum_{c}[a\circ\hat\varepsilon_2 - f\circ\tilde Y]`,
    linear in :math:`y` through :math:`\tilde Y = T y` and
    :math:`\hat\varepsilon_2 = (I - X_2BX_2'W)\tilde Y`; :math:`\ell_c` is their adjoint
    applied to :math:`1_c`, and :math:`\lambda = T'a`.
    """
    design, w = stage.design, stage.weights
    indicators = _indicators(stage)
    gamma = design.solve(*design.rhs(w[:, None] * x2))
    fitted = design.fitted(*gamma) * (w * design.fit_rows)[:, None]
    residual = stage.y_tilde - x2 @ beta
    items = []
    for j in range(x2.shape[1]):
        a = w * (x2 @ bread[:, j])
        f = fitted @ bread[:, j]
        inner = a[:, None] * indicators
        inner = inner - (w[:, None] * x2) @ (bread @ (x2.T @ inner)) - f[:, None] * indicators
        sums = _tilde_adjoint(stage, inner)
        estimator = _tilde_adjoint(stage, a[:, None])[:, 0]
        slope = x2 @ bread[:, j] / bread[j, j]
        base = stage.y_tilde - x2 @ (beta - bread[:, j] * beta[j] / bread[j, j])
        items.append(_LinearItem(float(beta[j]), float(se[j]), estimator, sums,
                                 (base, -slope), residual))
    return items


def _imputation_items(stage: _FirstStage, panel: Panel, v: np.ndarray, cell: np.ndarray,
                      estimates: np.ndarray, se: np.ndarray) -> list[_LinearItem]:
    r"""Estimator weights, clustered-sum vectors and bootstrap residuals of each estimand.

    BJS's clustered sums are :math:`\sum_{c} v\circ L y` with
    :math:`L = (I - C)T`: :math:`T` imputes on untreated rows and :math:`C` takes
    :math:`v^2`-weighted means of treated rows within cohort x event-time cells, so
    :math:`\ell_c = T'(I - C)'(v\circ 1_c)` and :math:`\lambda = v`.
    """
    treated = stage.treated
    indicators = _indicators(stage)
    n_cells = int(cell.max()) + 1
    items = []
    for j in range(v.shape[1]):
        vj = v[:, j]
        v2 = np.where(treated, vj**2, 0.0)
        totals = np.maximum(np.bincount(cell, weights=v2, minlength=n_cells), 1e-300)
        means = np.bincount(cell, weights=v2 * stage.y_tilde, minlength=n_cells) / totals
        resid = np.where(treated, stage.y_tilde - means[cell], stage.y_tilde)
        inner = vj[:, None] * indicators
        cell_sums = np.zeros((n_cells, inner.shape[1]))
        np.add.at(cell_sums, cell[treated], inner[treated])
        inner[treated] -= (v2[:, None] * cell_sums[cell] / totals[cell][:, None])[treated]
        sums = _tilde_adjoint(stage, inner)
        support = treated & (vj != 0)
        centre = float(vj[treated] @ means[cell[treated]])
        items.append(_LinearItem(float(estimates[j]), float(se[j]), vj, sums,
                                 (resid + centre * support, -support.astype(float)), resid))
    return items


def linear_few_cluster_inference(options: TwoStageDiD | ImputationDiD, items: list[_LinearItem],
                          tables: list[pd.DataFrame], info: dict, y: np.ndarray,
                          cluster: np.ndarray) -> None:
    r"""Apply ``options.se`` (``"cr2"`` or ``"wild"``) to linear estimates, in place.

    ``items`` follow the rows of ``tables`` in order (the table, then an overall row).

    Notes
    -----
    Both estimators are linear in the outcome, :math:`\hat\theta = \lambda'y`, with an
    analytic variance :math:`\sum_c(\ell_c'y)^2` (BJS: :math:`\ell_c'y` the cluster sum of
    :math:`v\,\hat\varepsilon`; Gardner: of the GMM scores). ``"cr2"`` rescales each
    cluster's term to be unbiased under i.i.d. errors
    (:func:`~evaluation.inference.cr2.cr2_linear`). ``"wild"`` perturbs by cluster the
    residuals of the model with the null imposed and re-estimates
    (:func:`~evaluation.inference.wild.linear_problem`): for two-stage
    :math:`u = \tilde Y - X_2\tilde\beta(b)` with :math:`\tilde\beta(b)` the second-stage
    least squares under :math:`\beta_j = b`; for BJS the first-stage residuals on untreated
    rows and :math:`\tilde Y - \bar\tau_{cell} - (b - \sum v\bar\tau)` on the treated rows
    the estimand weights (a common shift of the cell effects imposes
    :math:`\theta = b`). WCU uses the unrestricted residuals (:math:`b` free). The bootstrap
    re-computes the estimate and its analytic variance from
    :math:`y^* = y - u + \sum_g v_g 1_g u`, exactly as for least squares but with the
    ``G x G`` matrices :math:`[\ell_c' (1_g\circ u)]`.
    """
    from evaluation.inference.cr2 import cr2_linear
    from evaluation.inference.wild import describe, linear_problem, run_wild

    if options.se == "cr2":
        fits = [cr2_linear(item.estimator, item.sums, y, cluster) for item in items]
        columns = {"std_error": [np.sqrt(f.variance) for f in fits],
                   "df": [f.df for f in fits]}
        info["se"] = "cr2 (scalar CR2 analogue, Satterthwaite df)"
    else:
        restricted = options.wild_null == "restricted"
        problems = [linear_problem(item.estimate, item.std_error, item.estimator, item.sums,
                                   y, item.restricted if restricted
                                   else (item.unrestricted, np.zeros_like(y)),
                                   cluster, null=options.wild_null) for item in items]
        tests, n_draws, enumerated = run_wild(
            problems, int(cluster.max()) + 1, weights=options.wild_weights,
            draws=options.draws, seed=options.seed, alpha=options.alpha)
        columns = {"p_value": [t.p_value for t in tests],
                   "ci_lower": [t.ci_lower for t in tests],
                   "ci_upper": [t.ci_upper for t in tests]}
        info["se"] = describe(options.wild_null, options.wild_weights, n_draws, enumerated)
        if not enumerated:
            info["seed"] = DEFAULT_RANDOM_SEED if options.seed is None else options.seed
    start = 0
    for table in tables:
        part = slice(start, start + len(table))
        for name, values in columns.items():
            table[name] = np.asarray(values, dtype=float)[part]
        start = part.stop
