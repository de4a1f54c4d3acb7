r"""De Chaisemartin-D'Haultfoeuille event-study estimator for treatments that switch on and off.

:class:`ChaisemartinDHaultfoeuille` is the :math:`DID_\ell` estimator of de Chaisemartin
and D'Haultfoeuille (2024, "Difference-in-differences estimators of intertemporal
treatment effects", *Review of Economics and Statistics*) as the authors' ``did_multiplegt_dyn``
(Stata, R, Python) computes it: effects :math:`\ell = 1..L` after a unit's first switch,
for switchers in (0 to 1), out (1 to 0) or both pooled, placebos, normalised effects, the
average total effect per unit of treatment, unit weights, clustering, the analytic
(influence-function) variance and a cluster bootstrap. It needs the panel's ``status``
column: the Finnish municipal trials switched on and off (2012-2015, 2017-2018, 2021-2024).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy.special import chdtrc

from evaluation.errors import (
    DroppedObservationsWarning,
    IdentificationError,
    IdentificationWarning,
    InvalidOptionError,
    PanelError,
)
from evaluation.estimators._dcdh_controls import control_values, fit_controls
from evaluation.estimators._dcdh_design import build_switch_design
from evaluation.estimators._dcdh_estimate import DCDHEstimates, estimate_all
from evaluation.estimators._inference import cluster_sums, summarise_warnings
from evaluation.estimators.results import EstimationResult, PretrendTest
from evaluation.options import DEFAULT_RANDOM_SEED, check_count, validate_fields
from evaluation.panel import Panel
from evaluation.protocol import Summary

#: Which switchers enter :math:`DID_\ell` (``switchers`` option).
Switchers = Literal["both", "in", "out"]
#: Standard errors (``se`` option).
DCDHStandardErrors = Literal["analytic", "bootstrap"]

AVERAGE_TOTAL_EFFECT = "average total effect"


@dataclass
class DCDHResult(EstimationResult):
    r""":class:`~evaluation.estimators.results.EstimationResult` with the joint test of the effects.

    ``pretest`` holds the joint test that all placebos are zero and ``effects_test`` the
    joint test that all effects are zero (both :math:`\chi^2` Wald tests with the
    estimates' covariance); ``table`` has ``switchers`` (units used),
    ``switchers_weighted`` and ``observations`` (unit-periods used) columns.
    """

    effects_test: PretrendTest | None = None

    def summary(self) -> Summary:
        """Summary of the estimates with both joint tests."""
        base = super().summary()
        notes = base.notes
        if self.effects_test is not None:
            notes = (*notes, f"{self.effects_test.test}: {self.effects_test.as_text()}")
        return Summary(base.title, base.table, notes, base.warnings, base.tables)


@dataclass(frozen=True)
class ChaisemartinDHaultfoeuille:
    r"""The :math:`DID_\ell` event-study estimator of de Chaisemartin and D'Haultfoeuille.

    Parameters
    ----------
    effects
        Number :math:`L` of effects :math:`\ell = 1..L` (periods since the first switch).
    placebo
        Number :math:`K` of placebos :math:`-1..-K` (reported up to :math:`L`, as
        ``did_multiplegt_dyn``).
    normalized
        Divide :math:`DID_\ell` by the average cumulated treatment change
        :math:`\delta^D_\ell` (effect per period of exposure).
    switchers
        ``"both"`` (switchers in and out pooled), ``"in"`` (0 to 1) or ``"out"`` (1 to 0).
    controls
        Time-varying covariates to adjust for (names among the panel's ``covariates``);
        None uses all of the panel's covariates, ``()`` none. Their first differences are
        regressed out within each baseline status among not-yet-switched units, as
        ``did_multiplegt_dyn``'s ``controls`` (see
        :mod:`~evaluation.estimators._dcdh_controls`).
    se
        ``"analytic"``: influence-function variance (clustered by the panel's cluster
        column, else by unit); ``"bootstrap"``: standard deviation over ``draws`` cluster
        (or unit) bootstrap samples (``vcov`` and the joint tests stay analytic).
    draws
        Bootstrap samples.
    seed
        Bootstrap seed (None: the package default).
    alpha
        Significance level.

    Notes
    -----
    Let :math:`D_{g,1}` be unit :math:`g`'s first status, :math:`F_g` its first period with
    :math:`D_{g,t} \ne D_{g,1}` (:math:`T+1` if none), :math:`T_g` the last period at which
    some unit with the same baseline has not switched, :math:`S_g = 1` for switchers in and
    :math:`0` for switchers out, and :math:`N_{g,t}` the unit's weight where the outcome is
    observed. For switchers in,

    .. math::

        DID_{+,\ell} = \frac{1}{N_{+,\ell}} \sum_{g:\, S_g = 1,\, F_g - 1 + \ell \le T_g}
        N_{g,F_g-1+\ell}\Big[(Y_{g,F_g-1+\ell} - Y_{g,F_g-1}) -
        \sum_{g' \in C_{g,\ell}} \frac{N_{g',F_g-1+\ell}}{N^{C}_{g,\ell}}
        (Y_{g',F_g-1+\ell} - Y_{g',F_g-1})\Big],

    with :math:`C_{g,\ell}` the units with the same baseline that have not switched by
    :math:`F_g - 1 + \ell` and :math:`N_{+,\ell}` the weighted number of such switchers;
    :math:`DID_{-,\ell}` is the same for switchers out with the sign flipped, and
    :math:`DID_\ell = (N_{+,\ell} DID_{+,\ell} + N_{-,\ell} DID_{-,\ell})/(N_{+,\ell} +
    N_{-,\ell})`. Placebo :math:`-\ell` replaces both changes by
    :math:`Y_{F_g-1-\ell} - Y_{F_g-1}` (same switchers and comparisons). Normalised effects
    divide by :math:`\delta^D_\ell = \sum_g w_g \sum_{k=0}^{\ell-1}|D_{g,F_g+k} - D_{g,1}|`.
    The average total effect per unit of treatment is

    .. math::

        \hat\delta = \frac{\sum_\ell w_\ell\, DID_\ell}{\sum_\ell w_\ell\, \delta^D_{\ell}},
        \qquad w_\ell = N_\ell / \sum_k N_k,

    computed within each direction and pooled with weights proportional to
    :math:`\sum_\ell N_{\pm,\ell}\,\delta^D_{\pm}`. Each estimate is
    :math:`G^{-1}\sum_g U_g`; its variance is
    :math:`G^{-2}\sum_c (\sum_{g \in c} U^{var}_g)^2` over clusters :math:`c`, where
    :math:`U^{var}_g` replaces each outcome change by its deviation from its cohort mean
    (switchers: same baseline and :math:`F_g`; comparisons: same baseline and period; the
    union of both when a cohort has one member) times the degrees-of-freedom factor
    :math:`\sqrt{n/(n-1)}` of that cohort (:math:`n` units, or clusters), as
    ``did_multiplegt_dyn`` 2.x. The joint tests are
    :math:`W = \hat\theta'\hat V^{+}\hat\theta \sim \chi^2_{k}` over the effects and over
    the placebos. The bootstrap resamples clusters (or units) with replacement, each copy a
    new unit, and re-runs the whole estimator.
    """

    effects: int = 1
    placebo: int = 0
    normalized: bool = False
    switchers: Switchers = "both"
    controls: tuple[str, ...] | None = None
    se: DCDHStandardErrors = "analytic"
    draws: int = 200
    seed: int | None = None
    alpha: float = 0.05

    def __post_init__(self) -> None:
        validate_fields(self, {
            "effects": lambda name, value: check_count(name, value, 1),
            "placebo": lambda name, value: check_count(name, value, 0),
            "draws": lambda name, value: check_count(name, value, 2),
        })

    def fit(self, panel: Panel) -> DCDHResult:
        r"""Estimate the effects, placebos and the average total effect on ``panel``.

        The treatment is the panel's status column; a panel with a cohort column only has
        absorbing treatment :math:`D_{it} = 1\{t \ge G_i\}` (a special case).
        """
        if panel.status is None and panel.cohort is None:
            raise PanelError(
                "the de Chaisemartin-D'Haultfoeuille estimator needs the 0/1 treatment "
                "status of every unit and period; pass status=<column> when building the "
                "Panel (command line: --treatment <column>), or a cohort column for "
                "treatment that never ends.")
        arrays = _panel_arrays(panel)
        design = build_switch_design(*arrays)
        names = self._control_names(panel)
        wide = [panel.wide(name) for name in names]
        controls = fit_controls(design, control_values(wide, design)) if names else None
        fitted = estimate_all(design, effects=self.effects, placebo=self.placebo,
                              normalized=self.normalized, switchers=self.switchers,
                              controls=controls)
        vcov = _covariance(fitted.influence_var, design.cluster, design.n_groups)
        std_error = np.sqrt(np.diag(vcov))
        info: dict = {}
        notes: list[tuple[type[Warning], str]] = []
        if self.se == "bootstrap":  # vcov stays analytic (the joint tests use it)
            std_error, notes = self._bootstrap(arrays, wide, info)
        estimable = ~np.isnan(fitted.estimate)
        std_error = np.where(estimable, std_error, np.nan)
        table = self._table(fitted, std_error)
        info.update(self._info(panel, design, fitted))
        result = DCDHResult(estimator="dcdh", aggregation="event", table=table,
                            alpha=self.alpha, vcov=vcov, info=info,
                            influence=fitted.influence_var, cluster=design.cluster,
                            units=np.asarray(panel.units)[design.rows])
        effects = np.arange(fitted.supported_effects)
        placebos = self.effects + np.arange(fitted.supported_placebos)
        result.effects_test, effects_note = _joint_test(
            "joint test that all effects are zero", fitted.estimate, vcov, effects)
        result.pretest, placebo_note = _joint_test(
            "joint test that all placebos are zero", fitted.estimate, vcov, placebos)
        for note in (effects_note, placebo_note):
            if note is not None:
                result.warnings.append(f"IdentificationWarning: {note}.")
                warnings.warn(note + ".", IdentificationWarning, stacklevel=2)
        dropped = panel.n_units - design.n_groups
        if dropped:
            message = (f"{dropped} of {panel.n_units} units left out: every unit with their "
                       "first-period status switches at the same date or none switches, so "
                       "they neither have nor provide a comparison (as did_multiplegt_dyn)")
            result.warnings.append(f"DroppedObservationsWarning: {message}.")
            warnings.warn(message + ".", DroppedObservationsWarning, stacklevel=2)
        for category, message in notes:
            result.warnings.append(f"{category.__name__}: {message}")
            warnings.warn(message, category, stacklevel=2)
        for column in sorted(fitted.reasons):
            message = f"{table['term'].iloc[column]}: {fitted.reasons[column]} (NaN row)."
            result.warnings.append(f"IdentificationWarning: {message}")
            warnings.warn(message, IdentificationWarning, stacklevel=2)
        return result

    def _control_names(self, panel: Panel) -> tuple[str, ...]:
        """Return the controls to use (checked against the panel's covariates)."""
        if self.controls is None:
            return tuple(panel.covariates)
        names = (self.controls,) if isinstance(self.controls, str) else tuple(self.controls)
        missing = [name for name in names if name not in panel.covariates]
        if missing:
            raise InvalidOptionError(
                f"controls {missing} are not covariates of the panel; pass them as "
                f"covariates= when building the Panel (it has {list(panel.covariates)}).")
        return names

    def _table(self, fitted: DCDHEstimates, std_error: np.ndarray) -> pd.DataFrame:
        """One row per effect, placebo and the average total effect."""
        terms = ([f"effect {e}" for e in range(1, self.effects + 1)]
                 + [f"placebo {p}" for p in range(1, self.placebo + 1)]
                 + [AVERAGE_TOTAL_EFFECT])
        event = (list(range(1, self.effects + 1)) + [-p for p in range(1, self.placebo + 1)]
                 + [None])
        return pd.DataFrame({
            "term": terms, "event_time": pd.array(event, dtype="Int64"),
            "estimate": fitted.estimate, "std_error": std_error,
            "switchers": fitted.switchers.astype(int),
            "switchers_weighted": fitted.switchers_weighted,
            "observations": fitted.observations.astype(int)})

    def _info(self, panel: Panel, design, fitted: DCDHEstimates) -> dict:
        """Return the settings and sample sizes that ``summary()`` shows."""
        return {
            "units": design.n_groups, "dropped units": panel.n_units - design.n_groups,
            "clusters": "unit" if panel.unit_cluster is None else panel.cluster,
            "switchers": self.switchers, "normalized": self.normalized,
            "controls": ", ".join(self._control_names(panel)) or "none",
            "effects supported by the data": fitted.supported_effects,
            "placebos supported by the data": fitted.supported_placebos,
            "average number of periods a treatment change is accumulated":
                fitted.delta_avg_total,
            "se": self.se if self.se == "analytic" else f"bootstrap ({self.draws} draws)",
        }

    def _bootstrap(self, arrays: tuple, wide: list[np.ndarray], info: dict
                   ) -> tuple[np.ndarray, list[tuple[type[Warning], str]]]:
        """Cluster (or unit) bootstrap: standard deviations of the estimates over draws.

        Also returns the warnings of the draws (one line per distinct warning, with how
        many draws issued it) and a note on draws that could not be estimated.
        """
        outcome, treatment, weights, cluster = arrays
        seed = DEFAULT_RANDOM_SEED if self.seed is None else self.seed
        rng = np.random.default_rng(seed)
        codes = np.arange(outcome.shape[0]) if cluster is None else cluster
        order = np.argsort(codes, kind="stable")
        starts = np.flatnonzero(np.concatenate(([True], np.diff(codes[order]) != 0)))
        members = np.split(order, starts[1:])
        draws, failed = [], 0
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for _ in range(self.draws):
                chosen = rng.integers(0, len(members), len(members))
                rows = np.concatenate([members[c] for c in chosen])
                labels = np.repeat(np.arange(len(chosen)), [members[c].size for c in chosen])
                try:
                    design = build_switch_design(outcome[rows], treatment[rows],
                                                 weights[rows], labels)
                    controls = (fit_controls(design, control_values([w[rows] for w in wide],
                                                                    design))
                                if wide else None)
                    again = estimate_all(design, effects=self.effects, placebo=self.placebo,
                                         normalized=self.normalized, switchers=self.switchers,
                                         controls=controls)
                except (IdentificationError, InvalidOptionError):
                    failed += 1
                    continue
                draws.append(again.estimate)
        info["seed"] = seed
        info["failed bootstrap draws"] = failed
        notes = summarise_warnings(caught, "dcdh bootstrap", self.draws, "draws")
        if failed:
            notes.append((IdentificationWarning,
                          f"dcdh bootstrap: {failed} of {self.draws} draws could not be "
                          "estimated (no switchers or no comparison in the resample) and are "
                          "left out of the standard errors"))
        if len(draws) < 2:
            raise IdentificationError(
                f"only {len(draws)} of {self.draws} bootstrap samples could be estimated; "
                "use se='analytic' or more units.")
        sample = np.array(draws)
        usable = np.isfinite(sample)
        return np.array([np.std(sample[usable[:, k], k], ddof=1)
                         if usable[:, k].sum() > 1 else np.nan
                         for k in range(sample.shape[1])]), notes


def _panel_arrays(panel: Panel) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Wide outcome, status (NaN where unobserved), unit weights and cluster codes."""
    outcome = panel.wide()
    observed = np.zeros((panel.n_units, panel.n_periods), dtype=bool)
    observed[panel.unit_codes, panel.time_codes] = True
    treatment = np.where(observed, panel.status_wide().astype(float), np.nan)
    weights = (np.ones(panel.n_units) if panel.unit_weights is None
               else np.asarray(panel.unit_weights, dtype=float))
    cluster = None if panel.unit_cluster is None else np.asarray(panel.unit_cluster)
    return outcome, treatment, weights, cluster


def _covariance(influence_var: np.ndarray, cluster: np.ndarray | None, n_groups: int
                ) -> np.ndarray:
    r""":math:`G^{-2}\sum_c S_c S_c'` with :math:`S_c` the cluster sums of :math:`U^{var}`."""
    sums = cluster_sums(influence_var, cluster)
    return sums.T @ sums / n_groups**2


def _joint_test(name: str, estimate: np.ndarray, vcov: np.ndarray, columns: np.ndarray
                ) -> tuple[PretrendTest | None, str | None]:
    r"""Wald test that the estimates in ``columns`` are all zero, and a warning if any.

    None with fewer than two estimates (as ``did_multiplegt_dyn``); a (nearly) singular
    covariance is inverted by its pseudo-inverse with a warning.
    """
    if columns.size < 2:
        return None, None
    values = estimate[columns]
    if not np.isfinite(values).all():
        return PretrendTest.unavailable(name, "some estimates are not identified"), None
    block = vcov[np.ix_(columns, columns)]
    eigen = np.abs(np.linalg.eigvalsh(block))
    eigen = eigen[eigen > 1e-10]
    if eigen.size == 0:
        return PretrendTest.unavailable(name, "their covariance is zero"), None
    note = None
    if eigen.size < columns.size or eigen.max() / eigen.min() > 1000:
        note = (f"the covariance of the {name.split('all ')[1].split(' are')[0]} is (nearly) "
                f"singular (rank {eigen.size} of {columns.size}, e.g. more estimates than "
                "clusters); the joint test uses its pseudo-inverse, as did_multiplegt_dyn")
    statistic = float(values @ np.linalg.pinv(block) @ values)
    return PretrendTest(name, statistic, int(columns.size),
                        float(chdtrc(columns.size, statistic))), note


__all__ = ["AVERAGE_TOTAL_EFFECT", "ChaisemartinDHaultfoeuille", "DCDHResult"]
