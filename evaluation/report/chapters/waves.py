r"""Chapter 4 (heterogeneity): the municipal analysis of all three waves on one panel.

The trials switched on and off: wave 1 ran 2012M09-2015M12, wave 2 2017M08-2018M12 and
wave 3 2021M03-2024M12, and many municipalities ran more than one wave. The 2010-2024
municipal panel with its 0/1 trial status (column :data:`TRIAL_STATUS`) answers three
questions per wave with the de Chaisemartin-D'Haultfoeuille estimator (``dcdh``), whose
effects :math:`\ell` after a switch follow the whole on-then-off path:

* the effect **during** the wave (effects :math:`\ell = 1..n_w` averaged, :math:`n_w` the
  wave's months);
* whether it **persisted** after the wave ended (effects :math:`\ell = n_w + 1 ..` in months
  1-12 and 13-24 after the end; the next wave's start cuts this horizon);
* what a **second wave** added for municipalities treated twice (repeat municipalities
  against first-timers).

Design choices, stated in the table's ``comparison`` and ``note`` columns:

* **Comparison municipalities that ran an earlier wave are excluded** from a wave's
  comparison group (their earlier trial can carry over); the part ``comparison group``
  shows the wave-3 estimate with them included, as the headline CS design does.
* **Windows**: each wave is estimated on the months from the end of the previous wave (so
  every municipality starts untreated) to 24 months after its end or the month before the
  next wave starts, whichever comes first (:func:`wave_window`).
* **Level trend**: the trials picked high-unemployment municipalities and unemployment
  moves with the business cycle in proportion to a municipality's level, so the comparison
  adjusts for the control :data:`LEVEL_TREND` (:func:`with_level_trend`).

:func:`naive_twfe` shows why one static TWFE regression over all waves misleads
(Goodman-Bacon decomposition and de Chaisemartin-D'Haultfoeuille weights).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd

from evaluation.errors import ReportError
from evaluation.estimators.registry import get_estimator
from evaluation.estimators.results import EstimationResult
from evaluation.options import check_option
from evaluation.panel import Panel
from evaluation.report.chapters._wave_truth import WaveTruth
from evaluation.report.chapters._waves_twfe import (
    TRIAL_STATUS,
    NaiveTWFE,
    balanced_panel,
    naive_twfe,
    normal_row,
)
from evaluation.report.chapters.common import EFFECT_COLUMNS, overall_row
from evaluation.report.study import MUNICIPAL_FILE, MUNICIPAL_OUTCOME, EstimateSpec, Study
from evaluation.sources.trials import PANEL_END, WAVES, format_month, month_index, wave
from evaluation.synthetic.truth import AFTER_END_RANGES

#: The control column added by :func:`with_level_trend`.
LEVEL_TREND = "level_trend"
#: Where the panel with :data:`LEVEL_TREND` is written (inside the report's ``out_dir``)
#: so that the table's ``fit_command`` s can read it.
DERIVED_DIR = "derived"
LEVEL_TREND_FILE = "municipalities_level_trend.parquet"
#: Months after a wave's end whose effects the table reports (two years).
HORIZON = max(hi for _, hi in AFTER_END_RANGES)
#: Comparison groups of a wave: ``exclude`` drops the municipalities outside the wave that
#: ran an earlier wave (the table's choice); ``include`` keeps them (the headline design).
Comparison = Literal["exclude", "include"]
COMPARISONS: tuple[str, ...] = get_args(Comparison)
#: Which of a wave's municipalities are the switchers of a fit (see :func:`sample_where`).
Members = Literal["all", "post", "repeat", "first"]
COMPARISON_LABELS = {"exclude": "no earlier wave", "include": "all outside the wave"}
#: Columns of :func:`all_wave_effects`.
WAVE_COLUMNS = ["part", "wave", "effect", "months", "comparison", "estimator",
                *EFFECT_COLUMNS, "switchers", "comparison_units", "true_att", "note",
                "command", "fit_command"]


@dataclass(frozen=True)
class WaveWindow:
    """Months of the panel on which a wave is estimated (month indices ``t``).

    Attributes
    ----------
    number
        The wave.
    first, last
        First and last month of the window.
    start, end
        The wave's first and last trial month.
    cut_by
        The later wave whose start cut the horizon short of :data:`HORIZON` months after
        the end (None if none did).
    """

    number: int
    first: int
    last: int
    start: int
    end: int
    cut_by: int | None

    @property
    def months(self) -> int:
        """Number of trial months :math:`n_w`."""
        return self.end - self.start + 1

    @property
    def post_months(self) -> int:
        """Months after the wave's end inside the window."""
        return self.last - self.end

    @property
    def effects(self) -> int:
        r"""Number of effects :math:`\ell` estimated: the wave's months and those after it."""
        return self.months + self.post_months


def wave_window(number: int) -> WaveWindow:
    r"""Return wave ``number``'s estimation window.

    Notes
    -----
    The window runs from the month after the previous wave ended (the panel's first month
    for wave 1) to :math:`\min(E_w + 24, T, S_{w+1} - 1)`, with :math:`E_w` the wave's last
    month, :math:`T` the panel's last month and :math:`S_{w+1}` the next wave's first
    month: every municipality is untreated at the window's start, and no municipality
    starts another wave inside it.
    """
    current = wave(number)
    start, end = month_index(current.start), month_index(current.end)
    earlier = [w for w in WAVES if w.number < number]
    first = month_index(earlier[-1].end) + 1 if earlier else 1
    last = min(end + HORIZON, month_index(PANEL_END))
    cut_by = None
    for later in (w for w in WAVES if w.number > number):
        if month_index(later.start) - 1 < last:
            last, cut_by = month_index(later.start) - 1, later.number
    return WaveWindow(number, first, last, start, end, cut_by)


def with_level_trend(study: Study, outcome: str = MUNICIPAL_OUTCOME) -> pd.DataFrame:
    r"""Return the municipal panel with the control :data:`LEVEL_TREND` of ``outcome``.

    Raises
    ------
    ReportError
        If the panel has no month before wave 1 or no municipality outside all waves.

    Notes
    -----
    With :math:`C` the municipalities that ran no wave and :math:`t < S_1` the months
    before wave 1 started,

    .. math::

        R_t = \frac{1}{|C|}\sum_{i \in C} Y_{it}, \qquad
        \bar r_i = \operatorname{mean}_{t < S_1} \frac{Y_{it}}{R_t}, \qquad
        x_{it} = \bar r_i R_t.

    If the untreated outcome is :math:`Y_{it}(0) = r_i R_t e^{\varepsilon_{it}}` (a level
    times the national cycle, as register unemployment), levels are not parallel: a
    municipality with twice the rate rises twice as many points in a recession. The
    estimator's control :math:`x_{it}` absorbs that difference (its first differences
    are regressed out among not-yet-switched municipalities).
    """
    data = study.municipal
    cohorts = [f"cohort_w{w.number}" for w in WAVES]
    outside = (data[cohorts] == 0).all(axis=1)
    before = data["t"] < month_index(WAVES[0].start)
    if not outside.any() or not before.any():
        raise ReportError(
            f"{study.data_dir / MUNICIPAL_FILE} needs months before wave 1 "
            f"({format_month(WAVES[0].start)}) and municipalities that ran no wave to build "
            f"the {LEVEL_TREND} control; extract the panel from 2010M01 for all municipalities.")
    cycle = data.loc[outside].groupby("t")[outcome].mean()
    relative = (data.loc[before, outcome] / data.loc[before, "t"].map(cycle))
    level = relative.groupby(data.loc[before, "municipality"]).mean()
    out = data.copy()
    out[LEVEL_TREND] = out["municipality"].map(level) * out["t"].map(cycle)
    return out


def write_level_trend(study: Study, frame: pd.DataFrame) -> Path | None:
    """Write the panel with :data:`LEVEL_TREND` for the fit commands; its directory (or None).

    Written to ``out_dir/derived/`` (nothing without an ``out_dir``): the municipal panel
    with one more column.
    """
    if study.out_dir is None:
        return None
    directory = study.out_dir / DERIVED_DIR
    directory.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(directory / LEVEL_TREND_FILE, index=False)
    return directory


def sample_where(window: WaveWindow, comparison: Comparison = "exclude",
                 members: Members = "all") -> str:
    """Row filter of a wave's estimation sample (a pandas query over the panel).

    Parameters
    ----------
    window
        The wave's :class:`WaveWindow`.
    comparison
        ``exclude``: drop the municipalities outside the wave that ran an earlier wave;
        ``include``: keep them.
    members
        Which of the wave's municipalities are the switchers: ``all``; ``post`` those that
        run no later wave within :data:`HORIZON` months of the end (the population of the
        simulator's persistence truth); ``repeat`` those that ran an earlier wave; ``first``
        those that did not.

    Raises
    ------
    InvalidOptionError
        For another ``comparison`` or ``members``.
    """
    check_option("comparison", comparison, Comparison)
    check_option("members", members, Members)
    number = window.number
    member = f"cohort_w{number} > 0"
    ran_earlier = " or ".join(f"cohort_w{k} > 0" for k in range(1, number))
    parts = [f"t >= {window.first} and t <= {window.last}"]
    if comparison == "exclude" and ran_earlier:
        parts.append(earlier_wave_filter(number))
    if members == "post":
        busy = [f"cohort_w{w.number} > 0" for w in WAVES
                if w.number > number and month_index(w.start) <= window.end + HORIZON]
        if busy:
            parts.append(f"not ({member} and ({' or '.join(busy)}))")
    elif members in ("repeat", "first") and ran_earlier:
        negation = "not " if members == "repeat" else ""
        parts.append(f"not ({member} and {negation}({ran_earlier}))")
    return " and ".join(parts)


def earlier_wave_filter(number: int) -> str:
    """Row filter dropping the municipalities outside wave ``number`` that ran an earlier one.

    Empty for wave 1 (no earlier wave).
    """
    ran_earlier = " or ".join(f"cohort_w{k} > 0" for k in range(1, number))
    return f"(cohort_w{number} > 0 or not ({ran_earlier}))" if ran_earlier else ""


def dcdh_spec(study: Study, window: WaveWindow, outcome: str = MUNICIPAL_OUTCOME,
              comparison: Comparison = "exclude", members: Members = "all"
              ) -> EstimateSpec:
    """Spec of the dcdh fit of one wave: effects 1 to the window's end, level-trend control."""
    return EstimateSpec(
        f"municipalities: {outcome}, wave {window.number}", LEVEL_TREND_FILE, "municipality",
        "t", None, outcome, float("nan"), study.municipal_cluster,
        sample_where(window, comparison, members),
        {"estimator": "dcdh", "effects": window.effects, "covariates": [LEVEL_TREND]},
        treatment=TRIAL_STATUS)


def fit_spec(frame: pd.DataFrame, spec: EstimateSpec) -> tuple[EstimationResult, pd.DataFrame]:
    """Fit ``spec``'s estimator on the rows of ``frame`` it selects (as ``estimate_table``).

    Returns the result (with covariance and influence functions) and the sample.
    """
    sample = frame.query(spec.where) if spec.where else frame
    if sample.empty:
        raise ReportError(f"the row filter {spec.where!r} selects no municipality-month; "
                          "check the cohort_w1..3 columns of the municipal panel.")
    options = {k: v for k, v in spec.options.items()
               if k not in ("estimator", "aggregate", "covariates")}
    covariates = list(spec.options.get("covariates", ()))
    panel = Panel(sample, unit=spec.unit, time=spec.time, outcome=spec.outcome,
                  cohort=spec.cohort, status=spec.treatment, never_treated=spec.never_treated,
                  covariates=covariates, cluster=spec.cluster)
    entry = get_estimator(spec.options["estimator"])
    aggregate = spec.options.get("aggregate", "none")
    return entry.estimate(panel, aggregate, **options), sample


def effect_weights(result: EstimationResult, first: int, last: int) -> np.ndarray:
    r"""Weights :math:`a` over the result's rows averaging effects ``first``..``last``."""
    terms = result.table["term"].astype(str).to_numpy()
    wanted = [f"effect {lag}" for lag in range(first, last + 1)]
    weights = np.isin(terms, wanted).astype(float)
    if weights.sum() != len(wanted):
        raise ReportError(f"effects {first}..{last} are not all in the dcdh result; "
                          "estimate more effects.")
    return weights / weights.sum()


def cluster_contributions(result: EstimationResult, weights: np.ndarray,
                          unit_cluster: pd.Series) -> pd.Series:
    r"""Per-cluster terms :math:`s_c = G^{-1}\sum_{g \in c} a'U_g` of an averaged estimate.

    ``unit_cluster`` maps every unit to its cluster label. :math:`\sum_c s_c^2` is the
    variance :math:`a'\hat V a`; estimates of two fits on overlapping samples have
    covariance :math:`\sum_c s^{(1)}_c s^{(2)}_c` (clusters matched by label).
    """
    influence = np.asarray(result.influence) @ weights
    labels = unit_cluster.loc[np.asarray(result.units)].to_numpy()
    return pd.Series(influence).groupby(labels).sum() / influence.size


@dataclass
class _Fit:
    """One dcdh fit with what the rows need."""

    spec: EstimateSpec
    result: EstimationResult
    sample: pd.DataFrame
    command: str

    def average(self, first: int, last: int) -> tuple[dict[str, float], np.ndarray]:
        weights = effect_weights(self.result, first, last)
        estimate = float(weights @ self.result.table["estimate"].to_numpy())
        std_error = float(np.sqrt(weights @ self.result.vcov @ weights))
        return normal_row(estimate, std_error), weights

    def switchers(self, weights: np.ndarray) -> int:
        return int(self.result.table["switchers"].to_numpy()[weights > 0].min())

    @property
    def comparison_units(self) -> int:
        ever = self.sample.groupby(self.spec.unit)[TRIAL_STATUS].max()
        return int((ever == 0).sum())


class _Runner:
    """Fits dcdh specs once each and turns averages of their effects into rows."""

    def __init__(self, study: Study, outcome: str) -> None:
        self.study, self.outcome = study, outcome
        self.frame = with_level_trend(study, outcome)
        self.derived = write_level_trend(study, self.frame)
        self.clusters = self.frame.groupby("municipality")[study.municipal_cluster].first()
        self.fits: dict[tuple[int, str, str], _Fit] = {}

    def fit(self, window: WaveWindow, comparison: Comparison = "exclude",
            members: Members = "all") -> _Fit:
        key = (window.number, comparison, members)
        if key not in self.fits:
            spec = dcdh_spec(self.study, window, self.outcome, comparison, members)
            result, sample = fit_spec(self.frame, spec)
            # relative to the report's directory, so two builds write identical tables
            command = "" if self.derived is None else spec.command(Path(DERIVED_DIR))
            self.fits[key] = _Fit(spec, result, sample, command)
        return self.fits[key]

    def row(self, part: str, window: WaveWindow, effect: str, lags: tuple[int, int],
            truth: float, note: str = "", comparison: Comparison = "exclude",
            members: Members = "all") -> dict[str, Any]:
        fit = self.fit(window, comparison, members)
        values, weights = fit.average(*lags)
        return {"part": part, "wave": window.number, "effect": effect,
                "months": f"{lags[0]}-{lags[1]}", "comparison": COMPARISON_LABELS[comparison],
                "estimator": "dcdh", **values, "switchers": fit.switchers(weights),
                "comparison_units": fit.comparison_units,
                "true_att": truth,
                "note": "; ".join(filter(None, [
                    f"average of effects {lags[0]}-{lags[1]} of fit_command", note])),
                "command": "", "fit_command": fit.command}

    def difference(self, window: WaveWindow, lags: tuple[int, int], truth: float
                   ) -> dict[str, Any]:
        """Row of repeat minus first-timer municipalities (covariance from the clusters)."""
        repeat, first = (self.fit(window, "exclude", m) for m in ("repeat", "first"))
        parts = []
        for fit in (repeat, first):
            values, weights = fit.average(*lags)
            parts.append((values["estimate"],
                          cluster_contributions(fit.result, weights, self.clusters)))
        terms = parts[0][1].sub(parts[1][1], fill_value=0.0)
        values = normal_row(parts[0][0] - parts[1][0], float(np.sqrt((terms**2).sum())))
        return {"part": "second wave", "wave": window.number,
                "effect": "repeat minus first-time municipalities",
                "months": f"{lags[0]}-{lags[1]}", "comparison": COMPARISON_LABELS["exclude"],
                "estimator": "dcdh", **values, "switchers": np.nan,
                "comparison_units": first.comparison_units,
                "true_att": truth,
                "note": "difference of the two rows above; standard error from the "
                        "clusters' influence functions of both fits",
                "command": "", "fit_command": ""}


def all_wave_effects(study: Study, outcome: str = MUNICIPAL_OUTCOME) -> pd.DataFrame:
    r"""Estimate every wave's effects on the municipal panel: during, after, repeats.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`WAVE_COLUMNS`, one row per estimate, in four ``part`` s:
        ``during`` (each wave's months), ``after`` (months 1-12 and 13-24 after the end,
        cut by the next wave's start), ``second wave`` (repeat and first-time
        municipalities of waves 2 and 3, and their difference) and ``comparison group``
        (the wave-3 estimate with the earlier-wave municipalities excluded from or included
        in the comparison, by dcdh and by the headline CS). ``true_att`` is the simulator's
        truth (NaN on real data). ``command`` is the ``evaluation estimate`` call whose
        output row equals the row (CS rows); ``fit_command`` the dcdh call whose effects
        :math:`\ell` = ``months`` the row averages (with an ``out_dir``, which holds the
        panel with :data:`LEVEL_TREND` it reads; empty otherwise).

    Notes
    -----
    A row averaging effects :math:`\ell = a..b` reports
    :math:`\bar\theta = a'\hat\theta` with standard error
    :math:`(a'\hat V a)^{1/2}` (:math:`a_\ell = 1/(b - a + 1)`) and normal intervals.
    The repeat-minus-first difference of two fits that share comparison municipalities has
    variance :math:`\sum_c (s^{(r)}_c - s^{(f)}_c)^2` (:func:`cluster_contributions`).
    """
    runner = _Runner(study, outcome)
    truth = WaveTruth.of(study, outcome)
    rows: list[dict[str, Any]] = []
    for current in WAVES:
        window = wave_window(current.number)
        rows.append(runner.row("during", window, "during the wave", (1, window.months),
                               truth.overall(f"wave{window.number}")))
    for current in WAVES:
        rows.extend(_after_rows(runner, wave_window(current.number), truth))
    for current in WAVES[1:]:
        rows.extend(_second_wave_rows(runner, wave_window(current.number), truth))
    rows.extend(_comparison_rows(runner, wave_window(WAVES[-1].number), truth))
    table = pd.DataFrame(rows, columns=WAVE_COLUMNS)
    return table.astype({"switchers": "Int64", "comparison_units": "Int64"})


def _after_rows(runner: _Runner, window: WaveWindow, truth: WaveTruth) -> list[dict[str, Any]]:
    """Months 1-12 and 13-24 after the wave's end (cut where the next wave started)."""
    rows = []
    for lo, hi in AFTER_END_RANGES:
        label = f"months {lo}-{hi} after the end"
        top = min(hi, window.post_months)
        if top < lo:
            reason = ("the panel ends with the wave" if window.cut_by is None else
                      f"wave {window.cut_by} started {window.post_months} months after the end")
            rows.append({"part": "after", "wave": window.number, "effect": label,
                         "months": "", "comparison": COMPARISON_LABELS["exclude"],
                         "estimator": "dcdh", **dict.fromkeys(EFFECT_COLUMNS, np.nan),
                         "switchers": 0, "comparison_units": np.nan, "true_att": np.nan,
                         "note": f"not observed: {reason}", "command": "",
                         "fit_command": ""})
            continue
        note = (f"horizon cut at {top} months: wave {window.cut_by} started in "
                f"{format_month(wave(window.cut_by).start)}" if top < hi else "")
        if top < hi:
            label = f"months {lo}-{top} after the end"
        note = "; ".join(filter(None, [
            "municipalities that ran no later wave within 24 months of the end", note]))
        rows.append(runner.row("after", window, label,
                               (window.months + lo, window.months + top),
                               truth.after(window.number, lo, top), note, members="post"))
    return rows


def _second_wave_rows(runner: _Runner, window: WaveWindow, truth: WaveTruth
                      ) -> list[dict[str, Any]]:
    """Wave effects of repeat and first-time municipalities, and their difference."""
    lags = (1, window.months)
    repeat, first = truth.repeat_and_first(window.number)
    note = "what the wave itself added (earlier waves' carry-over is in the baseline)"
    return [runner.row("second wave", window, "repeat municipalities (ran an earlier wave)",
                       lags, repeat, note, members="repeat"),
            runner.row("second wave", window, "first-time municipalities", lags, first,
                       members="first"),
            runner.difference(window, lags, repeat - first)]


def _comparison_rows(runner: _Runner, window: WaveWindow, truth: WaveTruth
                     ) -> list[dict[str, Any]]:
    """Return the wave's during-effect with earlier-wave municipalities excluded or included."""
    study, outcome = runner.study, runner.outcome
    true = truth.overall(f"wave{window.number}")
    rows = [runner.row("comparison group", window, "during the wave", (1, window.months),
                       true, comparison=choice) for choice in COMPARISONS]
    headline = study.municipal_spec(outcome, wave_number=window.number)
    for choice in COMPARISONS:
        spec = headline
        if choice == "exclude":
            spec = replace(headline, where=f"{headline.where} and "
                                          f"{earlier_wave_filter(window.number)}")
        overall = overall_row(spec.run(study.data_dir))
        sample = study.municipal.query(spec.where).drop_duplicates("municipality")
        rows.append({
            "part": "comparison group", "wave": window.number, "effect": "during the wave",
            "months": f"1-{window.months}", "comparison": COMPARISON_LABELS[choice],
            "estimator": "cs", **{c: float(overall[c]) for c in EFFECT_COLUMNS},
            "switchers": int((sample[spec.cohort] > 0).sum()),
            "comparison_units": int((sample[spec.cohort] == 0).sum()), "true_att": true,
            "note": "; ".join(filter(None, [
                "the headline municipal design (CS, no level-trend control, window from the "
                "previous wave's end)",
                "earlier-wave municipalities dropped" if choice == "exclude" else ""])),
            "command": spec.command(study.data_dir), "fit_command": ""})
    return rows


def change_between(table: pd.DataFrame, estimator: str,
                   choices: Sequence[str] = COMPARISONS) -> float:
    """Return the wave-3 estimate with earlier-wave comparisons included minus excluded.

    ``estimator`` is ``"dcdh"`` or ``"cs"``, the two estimators of the table's part
    ``comparison group``.
    """
    rows = table[(table["part"] == "comparison group") & (table["estimator"] == estimator)]
    values = rows.set_index("comparison")["estimate"]
    return float(values[COMPARISON_LABELS[choices[1]]] - values[COMPARISON_LABELS[choices[0]]])


__all__ = ["COMPARISONS", "LEVEL_TREND", "TRIAL_STATUS", "WAVE_COLUMNS", "NaiveTWFE",
           "WaveWindow", "all_wave_effects", "balanced_panel", "change_between",
           "cluster_contributions", "dcdh_spec", "earlier_wave_filter", "effect_weights",
           "fit_spec", "naive_twfe", "sample_where", "wave_window", "with_level_trend",
           "write_level_trend"]
