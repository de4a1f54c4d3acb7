"""Event-time effects of several estimators side by side: one tidy table, one plot."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from evaluation.errors import InvalidOptionError
from evaluation.estimators.registry import REGISTRY, comparable, run_event_study
from evaluation.estimators.results import EstimationResult
from evaluation.panel import Panel
from evaluation.protocol import ResultMixin, Summary, new_axes

if TYPE_CHECKING:
    from matplotlib.axes import Axes

COLUMNS = ["estimator", "event_time", "estimate", "std_error", "ci_lower", "ci_upper"]


@dataclass
class EstimatorComparison(ResultMixin):
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

    @property
    def warnings(self) -> list[str]:
        """Warnings of every estimator, prefixed by its name."""
        return [f"{name}: {w}" for name, r in self.results.items() for w in r.warnings]

    def to_frame(self) -> pd.DataFrame:
        """Return the tidy long table (``estimator, event_time, estimate, ...``)."""
        return self.table.copy()

    def summary(self) -> Summary:
        """Estimates side by side: one column of estimates per estimator."""
        wide = self.table.pivot(index="event_time", columns="estimator", values="estimate")
        wide = wide[[n for n in self.results if n in wide.columns]]
        notes = tuple(f"{name}: {REGISTRY[name].label if name in REGISTRY else name}"
                      for name in self.results)
        return Summary("Event-time estimates by estimator", wide, notes, tuple(self.warnings))

    def plot(self, ax: Axes | None = None, *, width: float = 0.6) -> Axes:
        """Plot every estimator's event-time estimates, offset side by side.

        Returns the Axes; the figure is never shown from here.
        """
        ax = new_axes(ax, (9, 4))
        names = list(self.results)
        offsets = np.linspace(-width / 2, width / 2, len(names)) if len(names) > 1 else [0.0]
        for name, offset in zip(names, offsets, strict=True):
            rows = self.table[self.table["estimator"] == name]
            ax.errorbar(rows["event_time"] + offset, rows["estimate"],
                        yerr=[rows["estimate"] - rows["ci_lower"],
                              rows["ci_upper"] - rows["estimate"]],
                        fmt="o", markersize=3.5, capsize=2, label=_label(name))
        ax.axhline(0, color="0.4", linewidth=0.8)
        ax.axvline(-0.5, color="0.6", linewidth=0.8, linestyle=":")
        ax.set_xlabel("event time")
        ax.set_ylabel("estimate")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, frameon=False)
        return ax


def _label(name: str) -> str:
    return REGISTRY[name].label if name in REGISTRY else name


def compare_estimators(panel: Panel, estimators: Sequence[str] | None = None, *,
                       min_e: float = -np.inf, max_e: float = np.inf,
                       alpha: float = 0.05) -> EstimatorComparison:
    r"""Run the event studies of several registered estimators on the same panel.

    Parameters
    ----------
    panel
        A panel with a cohort (or status) column.
    estimators
        Names from the registry (:data:`~evaluation.estimators.registry.REGISTRY`) with an
        event study; by default all of them, in registry order (``cs`` with never-treated
        controls, doubly robust and the universal base period; ``sa``; ``bjs``; dynamic
        ``did2s`` and ``twfe``). ``dcdh`` joins when named: its effect :math:`\ell` is
        shown at event time :math:`\ell - 1` and its placebo :math:`k` at :math:`-k - 1`
        (:func:`~evaluation.estimators.registry.dcdh_comparison`).
    min_e, max_e
        Event-time window of the table.
    alpha
        Significance level of the intervals.

    Returns
    -------
    EstimatorComparison
        The long table (``estimator, event_time, estimate, std_error, ci_lower,
        ci_upper``) and each estimator's full result; warnings an estimator issued are
        issued again and recorded on its result.
    """
    names = comparable(default_only=True) if estimators is None else tuple(estimators)
    unknown = [name for name in names if name not in comparable()]
    if unknown or not names:
        raise InvalidOptionError(f"estimators={list(names)!r}: choose from "
                                 f"{list(comparable())}.")
    results: dict[str, EstimationResult] = {}
    frames = []
    for name in names:
        results[name] = run_event_study(name, panel, alpha)
        frame = results[name].to_frame(include_overall=False)
        frame = frame[frame["event_time"].notna()].assign(estimator=name)
        frame["event_time"] = (frame["event_time"].astype(float)
                               + REGISTRY[name].event_time_offset)
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True)
    table = table[(table["event_time"] >= min_e) & (table["event_time"] <= max_e)]
    table["event_time"] = table["event_time"].astype(int)
    return EstimatorComparison(table[COLUMNS].reset_index(drop=True), results)
