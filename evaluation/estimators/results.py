"""Result objects shared by all estimators.

Every estimator returns an :class:`EstimationResult` with the same small surface:
:meth:`~EstimationResult.summary` (text and HTML, never prints),
:meth:`~EstimationResult.to_frame` (a tidy table), :meth:`~EstimationResult.plot` (returns
the Axes) and ``_repr_html_`` for notebooks. Event-study results keep the full covariance
matrix of their coefficients for sensitivity analysis.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri

from evaluation.protocol import Summary

if TYPE_CHECKING:
    from matplotlib.axes import Axes

#: Columns of :meth:`EstimationResult.to_frame` (and of the CLI's output file).
ESTIMATE_COLUMNS = ["estimator", "aggregation", "term", "group", "time", "event_time",
                    "estimate", "std_error", "ci_lower", "ci_upper", "p_value"]


def normal_inference(estimate: np.ndarray, std_error: np.ndarray, alpha: float
                     ) -> dict[str, np.ndarray]:
    r"""Pointwise confidence limits and two-sided p-values under normality.

    Notes
    -----
    With :math:`z = \Phi^{-1}(1 - \alpha/2)`: :math:`\hat\theta \pm z\,\widehat{se}`
    and :math:`p = 2\,(1 - \Phi(|\hat\theta| / \widehat{se}))`.
    """
    estimate = np.asarray(estimate, dtype=float)
    std_error = np.asarray(std_error, dtype=float)
    z = ndtri(1 - alpha / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        p_value = 2 * ndtr(-np.abs(estimate / std_error))
    return {"ci_lower": estimate - z * std_error, "ci_upper": estimate + z * std_error,
            "p_value": p_value}


@dataclass
class EstimationResult:
    """Estimates of one estimator and aggregation, with their uncertainty.

    Attributes
    ----------
    estimator
        Short name (``cs``, ``twfe``, ``2x2`` ...).
    aggregation
        ``none`` (group-time effects), ``simple``, ``event``, ``group``, ``calendar``,
        ``static`` or ``dynamic``.
    table
        One row per estimate: ``term, group, time, event_time, estimate, std_error``.
    alpha
        Significance level of the confidence intervals.
    critical_value
        Critical value of the simultaneous (uniform) band; the pointwise normal value when
        no bootstrap was run.
    vcov
        Covariance matrix of ``table["estimate"]`` (rows in table order), or None. It is
        the analytic (influence-function or cluster-robust) covariance even when
        ``std_error`` comes from a bootstrap.
    overall
        The aggregation's summary row (same columns as ``table``), or None.
    info
        Settings and diagnostics (control group, method, sample sizes, pre-test, ...).
    """

    estimator: str
    aggregation: str
    table: pd.DataFrame
    alpha: float = 0.05
    critical_value: float | None = None
    vcov: np.ndarray | None = None
    overall: pd.DataFrame | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.critical_value is None:
            self.critical_value = float(ndtri(1 - self.alpha / 2))

    @property
    def estimates(self) -> pd.Series:
        """Point estimates indexed by term."""
        return self.table.set_index("term")["estimate"]

    @property
    def std_errors(self) -> pd.Series:
        """Standard errors indexed by term."""
        return self.table.set_index("term")["std_error"]

    def to_frame(self, *, include_overall: bool = True, uniform: bool = False) -> pd.DataFrame:
        """Tidy table with the columns of :data:`ESTIMATE_COLUMNS`.

        Parameters
        ----------
        include_overall
            Append the aggregation's summary row (``term == "overall"``).
        uniform
            Add ``uniform_lower`` and ``uniform_upper`` (simultaneous band).
        """
        parts = [self.table]
        if include_overall and self.overall is not None:
            parts.append(self.overall)
        labels = ("group", "time", "event_time")
        # object dtype keeps integer labels integers next to the overall row's empty cells
        parts = [p.astype({c: object for c in labels if c in p}) for p in parts]
        frame = pd.concat(parts, ignore_index=True)
        frame = frame.assign(**normal_inference(frame["estimate"], frame["std_error"],
                                                self.alpha))
        frame.insert(0, "aggregation", self.aggregation)
        frame.insert(0, "estimator", self.estimator)
        for col in labels:
            if col not in frame:
                frame[col] = pd.NA
            frame[col] = frame[col].astype("object").where(frame[col].notna(), None)
        out = frame[ESTIMATE_COLUMNS].copy()
        if uniform:
            out["uniform_lower"] = frame["estimate"] - self.critical_value * frame["std_error"]
            out["uniform_upper"] = frame["estimate"] + self.critical_value * frame["std_error"]
        return out

    def summary(self) -> Summary:
        """Summary of the estimates (``str()`` for text, ``_repr_html_`` in notebooks)."""
        frame = self.to_frame(uniform=True).drop(columns=["estimator", "aggregation"])
        frame = frame.dropna(axis=1, how="all").set_index("term")
        notes = [f"{key}: {value}" for key, value in self.info.items()
                 if isinstance(value, str | int | float | np.integer | np.floating)]
        notes.append(f"{100 * (1 - self.alpha):g} % pointwise intervals; simultaneous band "
                     f"critical value {self.critical_value:.3f}")
        title = f"{self.estimator.upper()} estimates ({self.aggregation})"
        return Summary(title, frame, tuple(notes))

    def _repr_html_(self) -> str:
        return self.summary().as_html()

    def __repr__(self) -> str:
        return (f"EstimationResult(estimator={self.estimator!r}, aggregation="
                f"{self.aggregation!r}, estimates={len(self.table)})")

    def plot(self, ax: Axes | None = None, *, uniform: bool = True, label: str | None = None,
             offset: float = 0.0, color: str | None = None) -> Axes:
        """Plot estimates with pointwise intervals (and the simultaneous band).

        Event-time results are drawn against event time with a reference line at zero;
        other results against their term labels. Returns the Axes; never shows the figure.
        """
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(7, 3.5))
        frame = self.to_frame(include_overall=False, uniform=True)
        if frame["event_time"].notna().all() and len(frame):
            x = frame["event_time"].astype(float).to_numpy() + offset
            ax.axvline(-0.5, color="0.6", linewidth=0.8, linestyle=":")
            ax.set_xlabel("event time")
        else:
            x = np.arange(len(frame)) + offset
            ax.set_xticks(np.arange(len(frame)), frame["term"].astype(str), rotation=45,
                          ha="right")
        ax.axhline(0, color="0.4", linewidth=0.8)
        line = ax.errorbar(x, frame["estimate"],
                           yerr=[frame["estimate"] - frame["ci_lower"],
                                 frame["ci_upper"] - frame["estimate"]],
                           fmt="o", markersize=4, capsize=2, color=color,
                           label=label or self.estimator)
        if uniform:
            ax.fill_between(x, frame["uniform_lower"], frame["uniform_upper"], alpha=0.15,
                            color=line[0].get_color(), step=None, linewidth=0)
        ax.set_ylabel("estimate")
        ax.grid(alpha=0.3)
        return ax
