"""Result object and plot of the HonestDiD sensitivity analysis, and its event-study inputs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from evaluation.errors import InvalidOptionError
from evaluation.protocol import ResultMixin, Summary, new_axes

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def event_study_inputs(result: object) -> tuple[np.ndarray, np.ndarray, int, int, list[int]]:
    """``(betahat, sigma, num_pre, num_post, post_event_times)`` of an event-study result.

    The normalised reference period (a row with a missing or zero standard error, or no
    row at all) is dropped; the remaining pre-periods must run without gaps up to event
    time -2 and the post-periods from 0 without gaps, as ``HonestDiD`` assumes.
    """
    table = getattr(result, "table", None)
    vcov = getattr(result, "vcov", None)
    name = getattr(result, "estimator", type(result).__name__)
    if table is None or "event_time" not in table or "estimate" not in table:
        raise InvalidOptionError(f"{name}: sensitivity analysis needs an event study "
                                 f"(a table with event_time and estimate).")
    if vcov is None:
        raise InvalidOptionError(f"{name}: the event study has no covariance matrix "
                                 f"(vcov); HonestDiD needs the full covariance.")
    event = pd.to_numeric(table["event_time"], errors="coerce")
    if event.isna().any():
        raise InvalidOptionError(f"{name}: every row needs an event time for a sensitivity "
                                 f"analysis (aggregate the result by event time first).")
    vcov = np.asarray(vcov, dtype=float)
    if vcov.shape != (len(table), len(table)):
        raise InvalidOptionError(f"{name}: vcov has shape {vcov.shape}, expected "
                                 f"{(len(table), len(table))}.")
    se = pd.to_numeric(table["std_error"], errors="coerce").to_numpy(float)
    diag = np.diag(vcov)
    reference = (~np.isfinite(se) | (se == 0)) & (diag <= 0)
    if (getattr(result, "info", {}) or {}).get("base period") == "varying":
        raise InvalidOptionError(f"{name}: pre-period estimates use a varying base period; "
                                 f"refit with base_period='universal' for HonestDiD.")
    if reference.sum() > 1:
        raise InvalidOptionError(f"{name}: more than one event time has no standard error.")
    keep = ~reference
    times = event.to_numpy(int)
    if reference.any() and times[reference][0] != -1:
        raise InvalidOptionError(f"{name}: the reference period is event time "
                                 f"{times[reference][0]}; HonestDiD needs it at -1.")
    order = np.argsort(times[keep], kind="stable")
    idx = np.flatnonzero(keep)[order]
    times = times[idx]
    pre, post = times[times < 0], times[times >= 0]
    if pre.size == 0:
        raise InvalidOptionError(f"{name}: the event study has no pre-period coefficient "
                                 f"besides the reference period.")
    if post.size == 0:
        raise InvalidOptionError(f"{name}: the event study has no post-period coefficient.")
    if -1 in pre:
        raise InvalidOptionError(f"{name}: event time -1 has an estimate, so there is no "
                                 f"normalised reference period at -1.")
    if list(pre) != list(range(-pre.size - 1, -1)) or list(post) != list(range(post.size)):
        raise InvalidOptionError(f"{name}: event times must be consecutive around the "
                                 f"reference period -1, got {list(times)}.")
    betahat = table["estimate"].to_numpy(float)[idx]
    sigma = vcov[np.ix_(idx, idx)]
    return betahat, sigma, int(pre.size), int(post.size), [int(t) for t in post]


@dataclass(frozen=True)
class HonestResult(ResultMixin):
    """Robust confidence sets over a grid of M or Mbar, with the original interval.

    Attributes
    ----------
    table
        ``lb, ub, method, delta`` and ``M`` (smoothness) or ``Mbar`` (relative magnitudes).
    original
        Interval under exact parallel trends.
    restriction
        ``"rm"`` or ``"sd"``.
    method
        ``"C-LF"``, ``"Conditional"``, ``"FLCI"`` or ``"C-F"``.
    l_vec
        Weights of the target on the post periods.
    alpha
        One minus the coverage.
    breakdown
        Smallest M or Mbar whose set contains zero (None when not computed, NaN when zero
        stays excluded over the search range, 0 when the original interval contains zero).
    num_pre, post_times
        Number of pre-periods used and the post-period event times.
    estimator
        Short name of the estimator the event study came from.
    """

    table: pd.DataFrame
    original: tuple[float, float]
    restriction: str
    method: str
    l_vec: np.ndarray
    alpha: float
    breakdown: float | None
    num_pre: int
    post_times: tuple[int, ...]
    estimator: str = ""

    @property
    def parameter(self) -> str:
        """``"Mbar"`` or ``"M"``, the column of the restriction's parameter."""
        return "Mbar" if self.restriction == "rm" else "M"

    def to_frame(self) -> pd.DataFrame:
        """Return the original interval (``method == "Original"``, parameter 0) and the sets."""
        original = pd.DataFrame([{"lb": self.original[0], "ub": self.original[1],
                                  "method": "Original", "delta": None, self.parameter: 0.0}])
        return pd.concat([original, self.table], ignore_index=True)

    def as_text(self) -> str:
        """One line: the breakdown value of the restriction."""
        name = "Mbar" if self.restriction == "rm" else "M"
        if self.breakdown is None:
            return f"breakdown {name} not computed"
        if np.isnan(self.breakdown):
            return f"zero excluded over the whole search range of {name}"
        if self.breakdown == 0:
            return "the interval under parallel trends already contains zero"
        return f"breakdown {name} = {self.breakdown:.3g} (smallest {name} whose set contains 0)"

    def summary(self) -> Summary:
        """Return the sensitivity table with the breakdown value and the target as notes."""
        times = ", ".join(f"{t}: {w:g}" for t, w in zip(self.post_times, self.l_vec,
                                                        strict=True) if w != 0)
        restriction = ("relative magnitudes (Delta^RM)" if self.restriction == "rm"
                       else "smoothness (Delta^SD)")
        notes = (f"restriction: {restriction}; method {self.method}; "
                 f"{100 * (1 - self.alpha):g} % sets",
                 f"target: weights on post-period event times {{{times}}}; "
                 f"{self.num_pre} pre-periods",
                 self.as_text())
        title = f"HonestDiD sensitivity{' of ' + self.estimator.upper() if self.estimator else ''}"
        return Summary(title, self.to_frame().set_index(self.parameter), notes)

    def plot(self, ax: Axes | None = None) -> Axes:
        """Robust sets against M or Mbar next to the original interval; returns the Axes."""
        return sensitivity_plot(self.table, self.original, parameter=self.parameter, ax=ax)


def sensitivity_plot(table: pd.DataFrame, original: tuple[float, float], *,
                     parameter: str | None = None, ax: Axes | None = None) -> Axes:
    """Intervals against M or Mbar, the original interval leftmost (``createSensitivityPlot``).

    Returns the Axes; never shows the figure.
    """
    ax = new_axes(ax, (6, 3.5))
    parameter = parameter or ("Mbar" if "Mbar" in table else "M")
    values = table[parameter].to_numpy(float)
    gap = np.diff(values).min() if len(values) > 1 else 1.0
    x0 = values.min() - gap
    ax.errorbar([x0], [np.mean(original)], yerr=[[np.mean(original) - original[0]],
                                                 [original[1] - np.mean(original)]],
                fmt="none", capsize=3, color="C3", label="Original")
    mid = (table["lb"] + table["ub"]).to_numpy(float) / 2
    ax.errorbar(values, mid, yerr=[mid - table["lb"].to_numpy(float),
                                   table["ub"].to_numpy(float) - mid],
                fmt="none", capsize=3, color="C0", label=str(table["method"].iloc[0]))
    ax.axhline(0, color="0.4", linewidth=0.8)
    ax.set_xlabel(r"$\bar{M}$" if parameter == "Mbar" else "M")
    ax.set_ylabel("confidence set")
    ax.legend(fontsize=8, frameon=False)
    ax.grid(alpha=0.3)
    return ax
