r"""Matching on pre-treatment outcome trajectories, and the placebo that checks it.

For DiD, matching on the outcome's pre-treatment path makes parallel trends more plausible,
but matching on levels can create bias through regression to the mean when the treated
were selected on a transient shock (Daw and Hatfield 2018). The safeguard is to match on a
window that ends ``skip`` periods before treatment and to use the skipped periods as a
placebo: on them the matched groups should not diverge.

::

    |<------- window ------->|<-- skip -->|<-- treated -->
    reference - skip - window   reference - skip   reference
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from evaluation.errors import (
    DroppedObservationsWarning,
    InvalidOptionError,
    MatchingError,
    RegressionToMeanWarning,
)
from evaluation.estimators._inference import cluster_robust_ols
from evaluation.matching.result import MatchResult
from evaluation.messages import fmt
from evaluation.options import check_option
from evaluation.panel import Panel
from evaluation.protocol import ResultMixin, Summary, new_axes

if TYPE_CHECKING:
    from matplotlib.axes import Axes

Features = Literal["lags", "mean", "slope", "mean_slope"]
Controls = Literal["never", "notyet"]


def _window(panel: Panel, reference: Any, window: int, skip: int) -> tuple[int, int, int]:
    if window < 2 or skip < 0:
        raise InvalidOptionError(f"window={window} must be at least 2 and skip={skip} "
                                 "non-negative.")
    ref = panel.period_position(reference)
    start = ref - skip - window
    if start < 0:
        raise InvalidOptionError(
            f"window={window} and skip={skip} before {reference!r} start "
            f"{-start} period{'s' * (-start > 1)} before the panel's first period "
            f"{panel.period_label(0)!r}; shorten the window or the skip.")
    return start, ref - skip, ref


def outcome_trajectories(panel: Panel, reference: Any, *, window: int = 12, skip: int = 0,
                         features: Features = "lags", outcome: str | None = None,
                         controls: Controls = "never") -> pd.DataFrame:
    r"""Unit-level table of pre-treatment outcome features for matching.

    Parameters
    ----------
    panel
        Long panel with a cohort (first treated period).
    reference
        First treated period of the treated group (for example ``"2023M01"``).
    window
        Number of periods the features are computed over.
    skip
        Pre-periods just before ``reference`` left out of the window (kept for
        :func:`placebo_did`).
    features
        ``"lags"``: the outcome in each window period (``<outcome>_m<k>``, ``k`` periods
        before ``reference``); ``"mean"``: its window mean; ``"slope"``: its linear slope per
        period; ``"mean_slope"``: both.
    outcome
        Outcome column (default the panel's first outcome).
    controls
        ``"never"``: controls are never-treated units; ``"notyet"``: also units first treated
        after the last period of the panel's grid that matters (after ``reference``).

    Returns
    -------
    pandas.DataFrame
        One row per unit: the unit id, ``treated`` (1 if first treated at ``reference``, 0
        for controls) and the features. Units of other cohorts are left out.

    Notes
    -----
    With :math:`y_{i,s}` over window periods :math:`s = 1..W`, the slope is the OLS
    coefficient :math:`\sum_s (s-\bar s)(y_{is}-\bar y_i)/\sum_s (s-\bar s)^2`.

    Warns
    -----
    RegressionToMeanWarning
        When the features include levels (``"lags"``, ``"mean"``, ``"mean_slope"``).
    DroppedObservationsWarning
        When units with missing outcomes in the window are left out.
    """
    check_option("features", features, Features)
    check_option("controls", controls, Controls)
    start, end, ref = _window(panel, reference, window, skip)
    column = panel.outcome if outcome is None else outcome
    y = panel.wide(column)[:, start:end]
    cohort = panel.unit_cohort
    treated = cohort == ref
    control = np.isnan(cohort) if controls == "never" else np.isnan(cohort) | (cohort > ref)
    keep = treated | control
    complete = ~np.isnan(y).any(axis=1)
    if (keep & ~complete).any():
        warnings.warn(f"{int((keep & ~complete).sum())} units with missing {column!r} in the "
                      "matching window were left out.", DroppedObservationsWarning, stacklevel=2)
    keep &= complete
    if not treated[keep].any():
        raise MatchingError(f"no unit is first treated at {reference!r} with a complete "
                            f"window; the panel's cohorts are "
                            f"{[panel.period_label(c) for c in panel.cohorts]}.")
    out = pd.DataFrame({panel.unit: panel.units.to_numpy()[keep],
                        "treated": treated[keep].astype(int)})
    y = y[keep]
    if features == "lags":
        for j in range(window):
            out[f"{column}_m{ref - start - j}"] = y[:, j]
    if features in ("mean", "mean_slope"):
        out[f"{column}_mean"] = y.mean(axis=1)
    if features in ("slope", "mean_slope"):
        s = np.arange(window) - (window - 1) / 2
        out[f"{column}_slope"] = (y - y.mean(axis=1, keepdims=True)) @ s / (s @ s)
    if features != "slope":
        warnings.warn(
            f"matching on pre-treatment levels of {column!r} can bias DiD through regression "
            "to the mean if the treated were selected on a transient shock (Daw and Hatfield "
            f"2018){'; skip the last pre-periods (skip > 0)' if skip == 0 else ''}. Check the "
            "matched sample with placebo_did() on the skipped periods.",
            RegressionToMeanWarning, stacklevel=2)
    return out


@dataclass(frozen=True)
class PlaceboResult(ResultMixin):
    """Placebo DiD on the skipped pre-periods of a trajectory match.

    Follows :class:`evaluation.protocol.ResultProtocol`: :meth:`summary`, :meth:`to_frame`,
    :meth:`plot` and ``_repr_html_``.

    Attributes
    ----------
    estimate, std_error, p_value, conf_low, conf_high
        Weighted DiD between the skipped periods and the matching window; a non-zero value
        means the matched groups were already diverging before treatment.
    by_period
        The same for every skipped period separately (``period, estimate, std_error``).
    n_treated, n_control
        Units used.
    alpha
        Significance level of the intervals.
    """

    estimate: float
    std_error: float
    p_value: float
    conf_low: float
    conf_high: float
    by_period: pd.DataFrame
    n_treated: int
    n_control: int
    alpha: float = 0.05

    def to_frame(self) -> pd.DataFrame:
        """Tidy table: the pooled placebo, then one row per skipped period.

        Returns
        -------
        pandas.DataFrame
            Columns ``term`` (``"pooled"``, or the period label as text), ``period`` (the
            period label; missing for the pooled row), ``estimate``, ``std_error``,
            ``ci_lower``, ``ci_upper`` and ``p_value`` (normal intervals at level
            :attr:`alpha`, as for the pooled estimate).
        """
        estimate = np.r_[self.estimate, self.by_period["estimate"].to_numpy(dtype=float)]
        std_error = np.r_[self.std_error, self.by_period["std_error"].to_numpy(dtype=float)]
        p_value, lower, upper = _normal_inference(estimate, std_error, self.alpha)
        # the pooled row keeps the numbers placebo_did computed
        p_value[0], lower[0], upper[0] = self.p_value, self.conf_low, self.conf_high
        periods = self.by_period["period"].tolist()
        return pd.DataFrame({"term": ["pooled", *map(str, periods)],
                             "period": np.array([None, *periods], dtype=object),
                             "estimate": estimate, "std_error": std_error,
                             "ci_lower": lower, "ci_upper": upper, "p_value": p_value})

    def summary(self) -> Summary:
        """Summarise the pooled and per-period placebo estimates and the sample used.

        Returns
        -------
        Summary
            Main table: :meth:`to_frame` indexed by term; notes: units, interval level and
            how to read the placebo. ``str()`` gives the text, ``_repr_html_`` the HTML;
            nothing is printed.
        """
        table = self.to_frame().drop(columns="period").set_index("term")
        significant = self.p_value < self.alpha
        notes = (f"{self.n_treated} treated and {self.n_control} control units with their "
                 "matching weights",
                 f"{100 * (1 - self.alpha):g} % normal intervals; standard errors robust, "
                 "clustered on matched pairs when there are pairs",
                 f"the pooled placebo is {'' if significant else 'not '}significant at "
                 f"{self.alpha:g}: "
                 + ("the matched groups were already diverging before treatment" if significant
                    else "no evidence that the matched groups diverged before treatment"))
        return Summary("Placebo DiD on the skipped pre-periods", table, notes)

    def plot(self, ax: Axes | None = None) -> Axes:
        """Placebo estimates with their intervals: each skipped period, then the pooled one.

        Parameters
        ----------
        ax
            Axes to draw on; a new figure when omitted.

        Returns
        -------
        matplotlib.axes.Axes
            The Axes drawn on (the figure is not shown).
        """
        ax = new_axes(ax, (6, 3.5))
        frame = self.to_frame()
        frame = pd.concat([frame.iloc[1:], frame.iloc[:1]], ignore_index=True)
        x = np.arange(len(frame))
        pooled = frame["term"].eq("pooled").to_numpy()
        ax.axhline(0, color="0.4", linewidth=0.8)
        for mask, style, label in ((~pooled, "o", "skipped period"), (pooled, "D", "pooled")):
            rows = frame[mask]
            ax.errorbar(x[mask], rows["estimate"],
                        yerr=[rows["estimate"] - rows["ci_lower"],
                              rows["ci_upper"] - rows["estimate"]],
                        fmt=style, markersize=5, capsize=3, label=label)
        ax.set_xticks(x, frame["term"].tolist())
        ax.set_ylabel("placebo DiD")
        ax.set_title("Placebo on skipped pre-periods")
        ax.legend()
        return ax


def _normal_inference(estimate: np.ndarray, std_error: np.ndarray, alpha: float
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two-sided normal p-values and interval limits (p is NaN when the SE is not positive)."""
    z = stats.norm.ppf(1 - alpha / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        p_value = np.where(std_error > 0, 2 * stats.norm.sf(np.abs(estimate / std_error)),
                           np.nan)
    return p_value, estimate - z * std_error, estimate + z * std_error


def placebo_did(result: MatchResult, panel: Panel, reference: Any, *, window: int = 12,
                skip: int, outcome: str | None = None, alpha: float = 0.05) -> PlaceboResult:
    r"""Placebo DiD of a trajectory match on the ``skip`` periods left out of the window.

    Parameters
    ----------
    result
        The match (unit ids must be those of ``panel``).
    panel, reference, window, skip, outcome
        As given to :func:`outcome_trajectories`; ``skip`` must be positive.
    alpha
        Significance level of the interval.

    Returns
    -------
    PlaceboResult

    Notes
    -----
    With :math:`\Delta_i = \bar y_{i,\text{skip}} - \bar y_{i,\text{window}}` and matching
    weights :math:`w_i`, the estimate is the coefficient on treatment in the weighted
    regression of :math:`\Delta_i` on a constant and the treatment indicator, i.e.
    :math:`\sum_T w_i\Delta_i/\sum_T w_i - \sum_C w_i\Delta_i/\sum_C w_i`, with a
    heteroskedasticity-robust standard error clustered on matched pairs when there are pairs
    (matching uncertainty is not propagated).
    """
    if skip < 1:
        raise InvalidOptionError("placebo_did needs skip >= 1 periods left out of the window.")
    start, end, _ = _window(panel, reference, window, skip)
    weights = result.unit_weights()
    codes = pd.Index(panel.units).get_indexer(weights.index)
    if (codes < 0).any():
        raise MatchingError(f"{int((codes < 0).sum())} matched unit ids are not units of the "
                            f"panel (e.g. {fmt(weights.index[codes < 0][0])}).")
    y = panel.wide(panel.outcome if outcome is None else outcome)[codes]
    base = y[:, start:end].mean(axis=1)
    status = result.units.set_index("unit").loc[weights.index]
    treated = status["treated"].to_numpy(dtype=bool)
    subclass = status["subclass"]
    # units in a matched pair cluster on it; the others (replacement, weighting) on themselves
    groups = subclass.to_numpy(dtype=float, na_value=np.nan)
    alone = np.isnan(groups)
    groups[alone] = -1.0 - np.arange(alone.sum())
    cluster = pd.factorize(groups)[0]
    x = np.column_stack([np.ones(len(treated)), treated.astype(float)])
    w = weights.to_numpy()
    z = stats.norm.ppf(1 - alpha / 2)

    def fit(delta: np.ndarray) -> tuple[float, float]:
        if np.isnan(delta).any():
            raise MatchingError("matched units have missing outcomes in the placebo periods.")
        params, cov = cluster_robust_ols(x, delta, w, cluster)
        return float(params[1]), float(np.sqrt(cov[1, 1]))

    estimate, se = fit(y[:, end:end + skip].mean(axis=1) - base)
    rows = [(panel.period_label(p), *fit(y[:, p] - base)) for p in range(end, end + skip)]
    p_value = float(2 * stats.norm.sf(abs(estimate / se))) if se > 0 else float("nan")
    return PlaceboResult(estimate, se, p_value, float(estimate - z * se),
                         float(estimate + z * se),
                         pd.DataFrame(rows, columns=["period", "estimate", "std_error"]),
                         int(treated.sum()), int((~treated).sum()), alpha)
