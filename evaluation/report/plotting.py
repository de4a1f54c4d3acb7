"""Figures the report chapters share: forest plots of effects with their intervals."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from evaluation.protocol import new_axes

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def forest_plot(table: pd.DataFrame, labels: Sequence[str] | pd.Series, *,
                truth: pd.Series | float | None = None, truth_label: str = "true effect",
                ax: Axes | None = None, title: str | None = None,
                xlabel: str = "effect with 95 % confidence interval") -> Axes:
    """Draw one row per estimate: the point, its confidence interval and the truth if known.

    Parameters
    ----------
    table
        Rows with ``estimate``, ``ci_lower`` and ``ci_upper`` (suppressed rows, whose
        estimate is not a number, are left out).
    labels
        One label per row of ``table`` (drawn top to bottom in table order).
    truth
        True effects per row (crosses) or one true effect (a dashed line); NaN or None
        draws nothing (real data).
    truth_label, title, xlabel
        Legend entry of the truth, Axes title and x-axis label.
    ax
        Axes to draw on (a new figure sized to the rows when None).

    Returns
    -------
    matplotlib.axes.Axes
        The Axes; the figure is never shown from here.
    """
    estimate = pd.to_numeric(table["estimate"], errors="coerce")
    keep = estimate.notna().to_numpy()
    labels = np.asarray(list(labels), dtype=object)[keep]
    rows = table[keep]
    estimate = estimate[keep].to_numpy(dtype=float)
    lower = pd.to_numeric(rows["ci_lower"]).to_numpy(dtype=float)
    upper = pd.to_numeric(rows["ci_upper"]).to_numpy(dtype=float)
    ax = new_axes(ax, (8, 0.4 * len(rows) + 1))
    y = np.arange(len(rows))[::-1]
    ax.errorbar(estimate, y, xerr=[estimate - lower, upper - estimate], fmt="o", capsize=3)
    if isinstance(truth, pd.Series):
        values = pd.to_numeric(truth, errors="coerce").to_numpy(dtype=float)[keep]
        if np.isfinite(values).any():
            ax.scatter(values, y, marker="x", color="C3", label=truth_label, zorder=3)
            ax.legend(fontsize=8, frameon=False)
    elif truth is not None and np.isfinite(truth):
        ax.axvline(truth, color="C3", linestyle="--", label=truth_label)
        ax.legend(fontsize=8, frameon=False)
    ax.set_yticks(y, labels)
    ax.axvline(0, color="0.4", linewidth=0.8)
    ax.set_xlabel(xlabel)
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    return ax
