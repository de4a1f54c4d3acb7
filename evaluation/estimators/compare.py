"""Event-time effects of several estimators side by side: one tidy table, one plot."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from evaluation.errors import EvaluationWarning, InvalidOptionError
from evaluation.estimators.results import EstimationResult
from evaluation.panel import Panel

if TYPE_CHECKING:
    from matplotlib.axes import Axes

#: Estimators that ``compare_estimators`` knows, in plotting order.
COMPARABLE = ("cs", "sa", "bjs", "did2s", "twfe")
LABELS = {"cs": "Callaway-Sant'Anna", "sa": "Sun-Abraham", "bjs": "Imputation (BJS)",
          "did2s": "Two-stage (Gardner)", "twfe": "Dynamic TWFE"}
COLUMNS = ["estimator", "event_time", "estimate", "std_error", "ci_lower", "ci_upper"]


@dataclass
class EstimatorComparison:
    """Event-time estimates of several estimators.

    Attributes
    ----------
    table
        Tidy long table with the columns of :data:`COLUMNS`.
    results
        The full result of every estimator, by name.
    """

    table: pd.DataFrame
    results: dict[str, EstimationResult] = field(default_factory=dict)

    def plot(self, ax: Axes | None = None, *, width: float = 0.6) -> Axes:
        """Plot every estimator's event-time estimates, offset side by side.

        Returns the Axes; the figure is never shown from here.
        """
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(9, 4))
        names = list(self.results)
        offsets = np.linspace(-width / 2, width / 2, len(names)) if len(names) > 1 else [0.0]
        for name, offset in zip(names, offsets, strict=True):
            rows = self.table[self.table["estimator"] == name]
            ax.errorbar(rows["event_time"] + offset, rows["estimate"],
                        yerr=[rows["estimate"] - rows["ci_lower"],
                              rows["ci_upper"] - rows["estimate"]],
                        fmt="o", markersize=3.5, capsize=2, label=LABELS.get(name, name))
        ax.axhline(0, color="0.4", linewidth=0.8)
        ax.axvline(-0.5, color="0.6", linewidth=0.8, linestyle=":")
        ax.set_xlabel("event time")
        ax.set_ylabel("estimate")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, frameon=False)
        return ax


def compare_estimators(panel: Panel, estimators: Sequence[str] = COMPARABLE, *,
                       min_e: float = -np.inf, max_e: float = np.inf,
                       alpha: float = 0.05) -> EstimatorComparison:
    """Run event-study versions of several estimators on the same panel.

    Parameters
    ----------
    panel
        A panel with a cohort (or status) column.
    estimators
        Any of ``cs`` (never-treated controls, doubly robust, universal base period),
        ``sa``, ``bjs``, ``did2s`` (dynamic) and ``twfe`` (dynamic).
    min_e, max_e
        Event-time window of the table.
    alpha
        Significance level of the intervals.

    Returns
    -------
    EstimatorComparison
        The long table (``estimator, event_time, estimate, std_error, ci_lower,
        ci_upper``) and each estimator's full result.
    """
    from evaluation.estimators.callaway_santanna import CallawaySantAnna
    from evaluation.estimators.did import TwoWayFixedEffects
    from evaluation.estimators.imputation import ImputationDiD, TwoStageDiD
    from evaluation.estimators.sun_abraham import SunAbraham

    unknown = [name for name in estimators if name not in COMPARABLE]
    if unknown or not estimators:
        raise InvalidOptionError(f"estimators={list(estimators)!r}: choose from "
                                 f"{list(COMPARABLE)}.")
    runners = {
        "cs": lambda: CallawaySantAnna(base_period="universal", alpha=alpha).fit(panel)
        .aggregate("event"),
        "sa": lambda: SunAbraham(alpha=alpha).fit(panel),
        "bjs": lambda: ImputationDiD(alpha=alpha).fit(panel),
        "did2s": lambda: TwoStageDiD(dynamic=True, alpha=alpha).fit(panel),
        "twfe": lambda: TwoWayFixedEffects(dynamic=True, alpha=alpha).fit(panel),
    }
    results: dict[str, EstimationResult] = {}
    frames = []
    for name in estimators:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", EvaluationWarning)
            results[name] = runners[name]()
        frame = results[name].to_frame(include_overall=False)
        frame = frame[frame["event_time"].notna()].assign(estimator=name)
        frame["event_time"] = frame["event_time"].astype(float)
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True)
    table = table[(table["event_time"] >= min_e) & (table["event_time"] <= max_e)]
    table["event_time"] = table["event_time"].astype(int)
    return EstimatorComparison(table[COLUMNS].reset_index(drop=True), results)
