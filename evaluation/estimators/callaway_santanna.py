r"""Callaway and Sant'Anna (2021) group-time average treatment effects.

Two stages, as in R ``did``: :class:`CallawaySantAnna` estimates every ATT(g,t) with its
influence function (doubly robust, IPW or outcome regression 2x2 comparisons of cohort
:math:`g` with never-treated or not-yet-treated units); :meth:`GroupTimeResult.aggregate`
then forms the simple, event-time, group and calendar summaries as linear maps of those
influence functions, so every aggregation has correct standard errors without refitting.
Numbers match ``csdid`` 0.4.3 (the Python port of R ``did``) on balanced panels.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

import numpy as np
import pandas as pd

from evaluation.errors import (
    DroppedObservationsWarning,
    EvaluationWarning,
    InvalidOptionError,
    NoComparisonUnitsError,
    PanelError,
)
from evaluation.estimators import _drdid
from evaluation.estimators._absorbing import absorbing_only
from evaluation.estimators._aggregation import Aggregation, build_aggregation
from evaluation.estimators._inference import (
    BootstrapWeights,
    bootstrap_inference,
    influence_covariance,
    leverage_factors,
    multiplier_draws,
)
from evaluation.estimators._jackknife import ClusterJackknife
from evaluation.estimators.results import EstimationResult, PretrendTest
from evaluation.inference.clusters import warn_panel_clusters
from evaluation.options import (
    DEFAULT_RANDOM_SEED,
    check_anticipation,
    check_option,
    validate_fields,
)
from evaluation.panel import Panel

ControlGroup = Literal["never", "notyet"]
Method = Literal["dr", "ipw", "reg", "dr_improved"]
BasePeriod = Literal["varying", "universal"]
AggregationKind = Literal["simple", "event", "group", "calendar"]


class CellEstimationWarning(EvaluationWarning):
    """An ATT(g,t) could not be estimated (no overlap, singular design) and is NaN."""


def _check_formula(name: str, value: object) -> None:
    if value is not None and not isinstance(value, str):
        raise InvalidOptionError(f"{name}={value!r} must be a formula string such as "
                                 "'~ x + C(region)', or None.")


@dataclass(frozen=True)
class CallawaySantAnna:
    """Group-time ATT estimator of Callaway and Sant'Anna (2021).

    Parameters
    ----------
    control_group
        ``"never"`` (never-treated units) or ``"notyet"`` (never treated plus units not yet
        treated, allowing for anticipation).
    method
        ``"dr"`` (doubly robust, Sant'Anna and Zhao 2020; the R ``did`` default), ``"ipw"``
        (normalised inverse probability weighting), ``"reg"`` (outcome regression) or
        ``"dr_improved"`` (the improved locally efficient DR estimator).
    base_period
        ``"varying"``: pre-treatment effects compare consecutive periods; ``"universal"``:
        everything is compared with the period just before treatment (anticipation aside).
    anticipation
        Number of periods before adoption in which units may already react.
    formula
        Covariate formula (patsy syntax, e.g. ``"~ x + I(x**2) + C(region_code)"``)
        evaluated on the panel's covariates (declare its variables as Panel covariates);
        by default the panel's ``covariates`` columns enter linearly with an intercept.
        Covariates are taken from the base period of each comparison.
    se
        ``"analytic"`` (influence functions, clustered by the panel's cluster column),
        ``"cr2"`` (the same with the bias-reduced linearisation of Bell and McCaffrey:
        each cluster's influence in a group mean scaled by :math:`(1-h_c)^{-1/2}`, see
        :func:`~evaluation.estimators._inference.leverage_factors`; for few or unequal
        clusters, where the analytic variance is too small), ``"cr3"`` (the
        leave-one-cluster-out jackknife, nuisance models refitted:
        :class:`~evaluation.estimators._jackknife.ClusterJackknife`; needs clusters) or
        ``"bootstrap"``
        (multiplier bootstrap drawn per cluster, with uniform bands).
    draws, bootstrap_weights, seed
        Bootstrap settings (``"mammen"`` as R ``did``, ``"rademacher"``, or ``"webb"``:
        six-point weights, which keep the bootstrap distribution from being too coarse
        when there are few clusters).
    critical_values
        Reference distribution of the pointwise intervals and p-values of ``se="analytic"``
        and ``"bootstrap"``: ``"normal"`` (R ``did``) or ``"t"``, :math:`t_{G-1}` with
        :math:`G` the clusters (units without a cluster column). ``"cr2"`` and ``"cr3"``
        always use :math:`t_{G-1}`.
    alpha
        Significance level.
    """

    control_group: ControlGroup = "never"
    method: Method = "dr"
    base_period: BasePeriod = "varying"
    anticipation: int = 0
    formula: str | None = None
    se: Literal["analytic", "cr2", "cr3", "bootstrap"] = "analytic"
    draws: int = 999
    bootstrap_weights: BootstrapWeights = "mammen"
    seed: int | None = None
    critical_values: Literal["normal", "t"] = "normal"
    alpha: float = 0.05

    def __post_init__(self) -> None:
        validate_fields(self, {"formula": _check_formula})
        if self.se == "bootstrap" and self.draws < 100:
            raise InvalidOptionError(f"draws={self.draws!r} must be an integer of at least 100.")

    @absorbing_only("cs", "Callaway-Sant'Anna", balanced=True)
    def fit(self, panel: Panel) -> GroupTimeResult:
        r"""Estimate every ATT(g,t) of ``panel``'s first outcome.

        Notes
        -----
        For cohort :math:`g` and period :math:`t` with base period :math:`b` (the last
        period before :math:`g - \delta` in post-treatment periods),

        .. math::

            ATT(g,t) = E[Y_t - Y_b \mid G = g] - E[Y_t - Y_b \mid C],

        estimated by the 2x2 estimator of ``method`` with covariates from period
        :math:`\min(t, b)`. The influence function of each cell is the 2x2 influence
        function scaled by :math:`n / n_{gt}` and zero outside the comparison.
        """
        check_anticipation("anticipation", self.anticipation, panel.n_periods)
        data = _CohortData.from_panel(panel, self)
        if self.se == "cr3" and data.cluster is None:
            raise InvalidOptionError(
                "se='cr3' is the leave-one-cluster-out jackknife and needs clusters: pass "
                "cluster= to the Panel, or use se='cr2' (HC2 without clusters).")
        cells = data.cells(self)
        n = data.n_units
        k = len(cells)
        att = np.full(k, np.nan)
        influence = np.zeros((k, n))  # one contiguous row per cell; transposed below
        cache: dict = {}
        for j, cell in enumerate(cells):
            if cell.reference:
                att[j] = 0.0
                continue
            att[j] = data.estimate_cell(cell, self, cache, influence[j])
        result = GroupTimeResult.build(self, data, cells, att, influence.T)
        result.warnings.extend(warn_panel_clusters(
            panel, "cs-jackknife" if self.se == "cr3" else "cs"))
        return result


@dataclass(frozen=True)
class _Cell:
    group: int  # cohort position on the time grid
    time: int  # period position
    base: int  # base period position
    control_threshold: int  # not-yet-treated comparisons have cohort > threshold + delta
    reference: bool = False  # the universal base period itself: ATT fixed at zero


@dataclass
class _CohortData:
    """Wide arrays of a balanced panel ready for the 2x2 comparisons."""

    panel: Panel
    y: np.ndarray  # (n, T)
    cohort: np.ndarray  # (n,) grid position, NaN never treated
    weights: np.ndarray  # (n,) mean one
    cluster: np.ndarray | None
    covariates: list[np.ndarray]  # per period (n, k) design matrices (one if time-invariant)
    units: np.ndarray | None = None  # (n,) ids of the kept units
    never_label: str = "never treated"
    notes: list[str] = field(default_factory=list)

    @property
    def n_units(self) -> int:
        return self.y.shape[0]

    @cached_property
    def cohort_values(self) -> np.ndarray:
        """Distinct cohorts (grid positions) of the treated units (once cells are formed)."""
        return np.unique(self.cohort[~np.isnan(self.cohort)])

    @classmethod
    def from_panel(cls, panel: Panel, options: CallawaySantAnna) -> _CohortData:
        if panel.cohort is None and panel.status is None:
            raise PanelError("the Callaway-Sant'Anna estimator needs a cohort (first treated "
                             "period) or status column; pass cohort= when building the Panel.")
        y = panel.wide()
        keep = ~np.isnan(y).any(axis=1)
        if not keep.all():
            warnings.warn(
                f"dropped {int((~keep).sum())} of {keep.size} units not observed in all "
                f"{panel.n_periods} periods (the panel estimator needs a balanced panel, as "
                "R did with allow_unbalanced_panel=FALSE).", DroppedObservationsWarning,
                stacklevel=3)
        cohort = panel.unit_cohort.copy()
        early = cohort <= options.anticipation
        if early.any():
            warnings.warn(
                f"dropped {int(early.sum())} units treated in the first "
                f"{options.anticipation + 1} period(s): they have no pre-treatment period.",
                DroppedObservationsWarning, stacklevel=3)
            keep &= ~early
        weights = panel.unit_weights if panel.unit_weights is not None else np.ones(keep.size)
        cluster = panel.unit_cluster
        data = cls(panel=panel, y=y[keep], cohort=cohort[keep],
                   weights=weights[keep] / weights[keep].mean(),
                   cluster=None if cluster is None else np.unique(cluster[keep],
                                                                  return_inverse=True)[1],
                   covariates=_design_matrices(panel, options.formula, keep),
                   units=panel.units.to_numpy()[keep])
        data._handle_missing_never_treated(options)
        return data

    def _handle_missing_never_treated(self, options: CallawaySantAnna) -> None:
        if np.isnan(self.cohort).any():
            return
        groups = np.unique(self.cohort)
        if groups.size < 2:
            raise NoComparisonUnitsError(
                "every unit is treated at the same time and none is never treated, so there "
                "is no comparison group; add never-treated units.")
        last = groups[-1]
        cut = int(last) - options.anticipation
        warnings.warn(
            f"no never-treated units: the last cohort ({self.panel.period_label(last)}) serves "
            f"as the never-treated comparison and periods from "
            f"{self.panel.period_label(cut)} on are dropped (as R did).", EvaluationWarning,
            stacklevel=4)
        self.cohort = np.where(self.cohort == last, np.nan, self.cohort)
        self.y = self.y[:, :cut]
        self.covariates = self.covariates[:cut] if len(self.covariates) > 1 else self.covariates
        if options.control_group == "never":
            self.never_label = f"last cohort {self.panel.period_label(last)}"

    def cells(self, options: CallawaySantAnna) -> list[_Cell]:
        n_t = self.y.shape[1]
        a = options.anticipation
        out = []
        for g in np.unique(self.cohort[~np.isnan(self.cohort)]).astype(int):
            last_pre = g - a - 1
            if options.base_period == "varying":
                for t in range(1, n_t):
                    base = t - 1 if t < g - a else last_pre
                    out.append(_Cell(g, t, base, max(t, base + 1)))
            else:
                for t in range(n_t):
                    out.append(_Cell(g, t, last_pre, max(t, last_pre), t == last_pre))
        return out

    def estimate_cell(self, cell: _Cell, options: CallawaySantAnna, cache: dict,
                      influence: np.ndarray) -> float:
        """Return the ATT of one cell and write its influence function into ``influence``.

        ``influence`` is the cell's zero-initialised full-sample row (left at zero and NaN
        returned when the cell cannot be estimated). ``cache`` keeps the last comparison
        sample, reused by every cell of a cohort that shares its units and covariates.
        """
        later = () if options.control_group == "never" else tuple(
            g for g in self.cohort_values
            if g > cell.control_threshold + options.anticipation and g != cell.group)
        period = min(cell.time, cell.base)
        # cells with the same comparison sample share it (and its nuisance fits)
        key = (cell.group, later, period if len(self.covariates) > 1 else -1)
        if cache.get("key") != key:
            treated = self.cohort == cell.group
            control = np.isnan(self.cohort) | np.isin(self.cohort, later)
            rows = np.flatnonzero(treated | control)
            x = self.covariates[period if len(self.covariates) > 1 else 0][rows]
            w = self.weights[rows] / self.weights[rows].mean()
            cache.clear()
            cache.update(key=key, rows=rows, y=np.asfortranarray(self.y[rows]),
                         comparison=_drdid.Comparison(treated[rows].astype(float), x, w))
        rows, comparison, y = cache["rows"], cache["comparison"], cache["y"]
        n, n1 = self.n_units, rows.size
        treated_count = comparison.d.sum()
        reason = None
        if treated_count == 0 or treated_count == n1:
            reason = "no treated or no comparison units"
        elif comparison.singular:
            reason = "the covariates are collinear among the comparison units"
        elif options.method in ("dr", "ipw") and comparison.ps.hessian is None:
            reason = ("the propensity score is not identified (the covariates separate "
                      "treated and comparison units)")
        elif options.method in ("dr", "ipw") and comparison.ps.ps.max() >= 0.999:
            reason = "propensity scores near one (no overlap)"
        if reason is not None:
            warnings.warn(f"ATT(g,t) for g={self.panel.period_label(cell.group)}, "
                          f"t={self.panel.period_label(cell.time)} is NaN: {reason}.",
                          CellEstimationWarning, stacklevel=4)
            return np.nan
        dy = y[:, cell.time] - y[:, cell.base]
        fit = _TWO_BY_TWO[options.method](dy, comparison)
        inf = n / n1 * fit.influence
        if options.se == "cr2":
            cluster = None if self.cluster is None else self.cluster[rows]
            inf = inf * leverage_factors(fit.weights, comparison.d, cluster)
        elif options.se == "cr3":
            inf = self._jackknife_influence(cell, options, cache, inf, fit.att, dy)
        influence[rows] = inf
        return fit.att

    def _jackknife_influence(self, cell: _Cell, options: CallawaySantAnna, cache: dict,
                             inf: np.ndarray, att: float, dy: np.ndarray) -> np.ndarray:
        """Give a cell's influence function the cluster sums of the cluster jackknife."""
        label = f"cohort {self.panel.period_label(cell.group)}"
        if "jackknife" not in cache:
            cache["jackknife"] = ClusterJackknife.fit(
                cache["comparison"], self.cluster[cache["rows"]], _TWO_BY_TWO[options.method],
                options.method in ("dr", "ipw"), label)
        inf, undefined = cache["jackknife"].pseudo_influence(inf, att, dy, self.n_units)
        if undefined and cache.setdefault("undefined_warned", False) is False:
            cache["undefined_warned"] = True
            warnings.warn(
                f"the cluster jackknife of {label} cannot leave out {undefined} cluster(s): "
                "without them no treated or no comparison unit is left, or the refit fails; "
                "their analytic contributions are kept, so the standard errors of this cohort "
                "understate the uncertainty. With so few treated clusters use randomization "
                "inference.", CellEstimationWarning, stacklevel=5)
        return inf


_TWO_BY_TWO = {"dr": _drdid.dr_did, "ipw": _drdid.ipw_did, "reg": _drdid.reg_did,
               "dr_improved": _drdid.dr_improved_did}


def _design_matrices(panel: Panel, formula: str | None, keep: np.ndarray) -> list[np.ndarray]:
    """Covariate design matrices (intercept first) per period, or one if time-invariant."""
    n = int(keep.sum())
    if formula is None:
        columns = [panel.wide(c)[keep] for c in panel.covariates]
    else:
        import patsy

        try:
            design = np.asarray(patsy.dmatrix(formula, panel.data, NA_action="raise"))
        except Exception as exc:  # patsy raises many error types for bad formulas
            raise PanelError(
                f"covariate formula {formula!r} could not be evaluated on the panel's "
                f"covariates {list(panel.covariates)}: {' '.join(str(exc).split())}. Declare "
                "every variable of the formula as a covariate of the Panel (covariates=[...];"
                " categories as numeric codes, used with C(...))."
            ) from exc
        wide = np.full((panel.n_units, panel.n_periods, design.shape[1]), np.nan)
        wide[panel.unit_codes, panel.time_codes] = design
        columns = [wide[keep][:, :, j] for j in range(design.shape[1])]
        columns = [c for c in columns if not np.all(c == 1)]  # the intercept is added below
    if not columns:
        return [np.ones((n, 1))]
    stacked = np.stack(columns, axis=-1)  # (n, T, k)
    invariant = np.all(stacked == stacked[:, :1, :])
    periods = [stacked[:, 0, :]] if invariant else [stacked[:, t, :]
                                                     for t in range(stacked.shape[1])]
    return [np.column_stack([np.ones(n), p]) for p in periods]


@dataclass
class GroupTimeResult(EstimationResult):
    r"""ATT(g,t) estimates with their influence functions; aggregate with :meth:`aggregate`.

    Attributes
    ----------
    influence
        ``(n_units, n_cells)`` influence functions of the ATT(g,t).
    group_shares
        ``(n_units, n_groups)`` centred cohort indicators :math:`w_i 1\{G_i=g\} - p_g`, the
        influence functions of the estimated cohort shares used as aggregation weights.
    draws
        Bootstrap draws of ``[influence | group_shares]`` (None for analytic inference).
    cell_group, cell_time
        Grid positions of each cell's cohort and period (rows of ``table``).
    panel
        The panel the effects were estimated on (for period labels).
    pretest
        Wald pre-test of parallel trends: ``statistic``, ``df``, ``p_value`` (or None).
    """

    influence: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    group_shares: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    groups: np.ndarray = field(default_factory=lambda: np.zeros(0))
    group_probability: np.ndarray = field(default_factory=lambda: np.zeros(0))
    cluster: np.ndarray | None = None
    draws: np.ndarray | None = None
    cell_group: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    cell_time: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    panel: Panel | None = None

    @classmethod
    def build(cls, options: CallawaySantAnna, data: _CohortData, cells: list[_Cell],
              att: np.ndarray, influence: np.ndarray) -> GroupTimeResult:
        """Assemble the result of :meth:`CallawaySantAnna.fit` and compute its inference."""
        panel = data.panel
        group = np.array([c.group for c in cells])
        time = np.array([c.time for c in cells])
        groups = np.unique(group)
        indicator = data.weights[:, None] * (data.cohort[:, None] == groups[None, :])
        probability = indicator.mean(axis=0)
        table = pd.DataFrame({
            "term": "ATT(g,t)",
            "group": [panel.period_label(g) for g in group],
            "time": [panel.period_label(t) for t in time],
            "event_time": _event_times(panel, time - group),
            "estimate": att,
        })
        table["post"] = group <= time
        result = cls(estimator="cs", aggregation="none", table=table, alpha=options.alpha,
                     influence=influence, group_shares=indicator - probability, groups=groups,
                     group_probability=probability, cluster=data.cluster, units=data.units,
                     cell_group=group, cell_time=time, panel=panel)
        result.info.update({
            "control group": data.never_label if options.control_group == "never"
            else "not yet treated", "method": options.method, "base period":
            options.base_period, "anticipation": options.anticipation, "units": data.n_units,
            "periods": data.y.shape[1], "se": options.se})
        result._inference(options)
        result.pretest = result._wald_pretest(options.anticipation)
        return result

    def _inference(self, options: CallawaySantAnna) -> None:
        vcov = influence_covariance(self.influence, self.cluster)
        se = np.sqrt(np.diag(vcov))
        tiny = se <= np.sqrt(np.finfo(float).eps) * 10
        self.vcov = vcov
        if options.se == "bootstrap":
            seed = DEFAULT_RANDOM_SEED if options.seed is None else options.seed
            self.info["seed"] = seed
            rng = np.random.default_rng(seed)
            self.draws = multiplier_draws(np.hstack([self.influence, self.group_shares]),
                                          cluster=self.cluster, draws=options.draws,
                                          weights=options.bootstrap_weights, rng=rng)
            k = self.influence.shape[1]
            se, self.critical_value = bootstrap_inference(self.draws[:, :k], self.alpha)
        self.table["std_error"] = np.where(tiny | np.isnan(self.table["estimate"]), np.nan, se)
        if options.se in ("cr2", "cr3") or options.critical_values == "t":  # t(G - 1), CV3
            clusters = (self.influence.shape[0] if self.cluster is None
                        else np.unique(self.cluster).size)
            self.info["df"] = int(clusters) - 1
            self.table["df"] = float(clusters - 1)

    def _wald_pretest(self, anticipation: int) -> PretrendTest:
        name = "CS Wald test of the pre-treatment ATT(g,t)"
        group, time = self.cell_group, self.cell_time
        se = self.table["std_error"].to_numpy()
        att = self.table["estimate"].to_numpy()
        pre = np.flatnonzero((group - anticipation > time) & np.isfinite(se) & (se > 0))
        if pre.size == 0:
            return PretrendTest.unavailable(name, "no pre-treatment ATT(g,t) with a standard "
                                                  "error")
        v_pre = self.vcov[np.ix_(pre, pre)]
        if 1 / np.linalg.cond(v_pre, 1) <= np.finfo(float).eps:
            n_clusters = np.unique(self.cluster).size if self.cluster is not None else None
            fewer = (f" ({n_clusters} clusters for {pre.size} pre-treatment cells)"
                     if n_clusters is not None and n_clusters <= pre.size else "")
            # recorded on the result (and shown wherever the test is shown), not warned:
            # most fits never look at their pre-test
            reason = ("the clustered covariance of the pre-treatment ATT(g,t) is singular"
                      + fewer)
            return PretrendTest.unavailable(name, reason)
        return PretrendTest.wald(name, att[pre], v_pre, decimals=5)  # rounded as R did

    def aggregate(self, kind: AggregationKind = "event", *, min_e: float = -np.inf,
                  max_e: float = np.inf, balance_e: int | None = None) -> EstimationResult:
        r"""Aggregate the ATT(g,t) into simple, event-time, group or calendar effects.

        Parameters
        ----------
        kind
            ``"simple"`` (one weighted average of post-treatment effects), ``"event"``
            (by time since adoption), ``"group"`` (by cohort) or ``"calendar"`` (by period).
        min_e, max_e
            Event-time window, in periods; it also limits the post-treatment cells that the
            simple and group aggregations average (as R ``did``).
        balance_e
            Keep only cohorts observed for at least ``balance_e`` periods after adoption.

        Returns
        -------
        EstimationResult
            Estimates with the aggregation's ``overall`` summary, covariance matrix and,
            with bootstrap inference, the uniform critical value.

        Notes
        -----
        Cohort weights are estimated shares :math:`p_g = n^{-1}\sum_i w_i 1\{G_i = g\}`;
        their estimation enters the influence function as in Callaway and Sant'Anna (2021,
        appendix), e.g. for the simple aggregation over post-treatment cells :math:`K`

        .. math::

            \theta = \sum_{k\in K} \frac{p_{g_k}}{\sum_{K} p} ATT_k, \qquad
            \psi^\theta = \sum_k \frac{p_{g_k}}{\sum p} \psi_k
              + \sum_k ATT_k \Big(\frac{\xi_{g_k}}{\sum p}
              - \frac{p_{g_k} \sum_{K}\xi}{(\sum p)^2}\Big),

        with :math:`\xi_{ig} = w_i 1\{G_i=g\} - p_g`.
        """
        check_option("kind", kind, AggregationKind)
        group, time = self.cell_group, self.cell_time
        valid = np.isfinite(self.table["estimate"].to_numpy())
        if not valid.all():
            warnings.warn(f"{int((~valid).sum())} ATT(g,t) are NaN and left out of the "
                          "aggregation.", CellEstimationWarning, stacklevel=2)
        spec = build_aggregation(kind, group, time, self.table["estimate"].to_numpy(),
                                 self.groups, self.group_probability, valid,
                                 self.info["periods"], min_e=min_e, max_e=max_e,
                                 balance_e=balance_e)
        return self._aggregate_result(kind, spec)

    def _aggregate_result(self, kind: str, spec: Aggregation) -> EstimationResult:
        att = np.nan_to_num(self.table["estimate"].to_numpy())
        weights = np.column_stack([spec.cell_weights, spec.overall_cells])
        shares = np.column_stack([spec.share_weights, spec.overall_shares])
        estimates = att @ weights
        influence = self.influence @ weights + self.group_shares @ shares
        vcov = influence_covariance(influence, self.cluster)
        se = np.sqrt(np.diag(vcov))
        critical = None
        if self.draws is not None:
            k = self.influence.shape[1]
            draws = self.draws[:, :k] @ weights + self.draws[:, k:] @ shares
            se, _ = bootstrap_inference(draws, self.alpha)
            if weights.shape[1] > 1:  # the band covers the estimates, not the overall summary
                _, critical = bootstrap_inference(draws[:, :-1], self.alpha)
        se = np.where(se <= np.sqrt(np.finfo(float).eps) * 10, np.nan, se)
        table = self._label(spec.labels)
        table["estimate"] = estimates[:-1]
        table["std_error"] = se[:-1]
        overall = pd.DataFrame({"term": ["overall"], "estimate": [estimates[-1]],
                                "std_error": [se[-1]]})
        if "df" in self.info:
            table["df"] = overall["df"] = float(self.info["df"])
        return EstimationResult(
            estimator=self.estimator, aggregation=kind, table=table, alpha=self.alpha,
            critical_value=critical, vcov=vcov[:-1, :-1], overall=overall,
            info={**self.info, "aggregation": kind}, influence=influence,
            cluster=self.cluster, units=self.units, warnings=list(self.warnings))

    def _label(self, positions: pd.DataFrame) -> pd.DataFrame:
        """Turn grid positions of an aggregation's rows into period labels and terms."""
        table = pd.DataFrame(index=positions.index)
        panel = self.panel
        if "group" in positions:
            table["group"] = [panel.period_label(g) for g in positions["group"]]
            table["term"] = table["group"].astype(str)
        elif "time" in positions:
            table["time"] = [panel.period_label(t) for t in positions["time"]]
            table["term"] = table["time"].astype(str)
        elif "event_time" in positions:
            table["event_time"] = _event_times(panel, positions["event_time"].to_numpy())
            table["term"] = table["event_time"].astype(str)
        else:
            table["term"] = pd.Series(dtype=str)
        return table


def _event_times(panel: Panel, positions: np.ndarray) -> np.ndarray:
    """Event times in the panel's time units (grid steps for periods)."""
    return positions * (panel.step if panel.time_kind == "integer" else 1)
