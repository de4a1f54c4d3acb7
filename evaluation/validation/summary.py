"""Summaries of a design Monte Carlo: bias, RMSE, coverage, size, power and MDE."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from evaluation.estimators.results import minimum_detectable_effect
from evaluation.protocol import new_axes

if TYPE_CHECKING:
    from matplotlib.axes import Axes

#: Files of a run's directory (written by :func:`evaluation.validation.engine.validate`,
#: read by the report's validation chapter).
CONFIG_FILE = "config.json"
REPLICATIONS_DIR = "replications"
ESTIMATES_FILE = "estimates.parquet"
SUMMARY_FILE = "summary.csv"
FIGURE_FILE = "distributions.png"


#: Finished runs shipped with the package, one directory per scenario (``config.json``,
#: ``estimates.parquet``, ``summary.csv``); ``config.json`` holds the command that made it.
COMMITTED_RUNS = Path(__file__).parent / "runs"


def finished_replications(directory: Path) -> set[int]:
    """Numbers of the replications written to ``directory`` (``rep-NNNNNN.parquet``)."""
    return {int(p.stem.split("-")[1]) for p in Path(directory).glob("rep-*.parquet")}


def replication_count(run_dir: Path) -> int:
    """Replications of a finished run: its replication files, else the rows it kept."""
    run_dir = Path(run_dir)
    if (run_dir / REPLICATIONS_DIR).is_dir():
        return len(finished_replications(run_dir / REPLICATIONS_DIR))
    return int(pd.read_parquet(run_dir / ESTIMATES_FILE, columns=["replication"])
               ["replication"].nunique())


def committed_runs() -> dict[str, Path]:
    """Return the runs shipped in :data:`COMMITTED_RUNS`, by scenario name."""
    return {p.name: p for p in sorted(COMMITTED_RUNS.iterdir()) if (p / CONFIG_FILE).is_file()}

#: Columns that identify one estimate across replications.
KEYS = ["level", "outcome", "design", "estimator"]
#: Multiplier of the standard error giving the minimum detectable effect (5 %, 80 % power).
MDE_FACTOR = float(minimum_detectable_effect(1.0))
#: Truths smaller than this in absolute value count as a null effect (size, not power).
NULL_TOLERANCE = 1e-12


def _one(group: pd.DataFrame) -> pd.Series:
    ok = group[np.isfinite(group["estimate"]) & np.isfinite(group["truth"])]
    n = len(ok)
    error = ok["estimate"] - ok["truth"]
    covered = (ok["ci_lower"] <= ok["truth"]) & (ok["truth"] <= ok["ci_upper"])
    coverage = covered.mean() if n else np.nan
    rejection = (ok["p_value"] < 0.05).mean() if n else np.nan
    null = bool(n) and bool((ok["truth"].abs() < NULL_TOLERANCE).all())
    mean_se = ok["std_error"].mean()
    sd_error = error.std(ddof=1) if n > 1 else np.nan
    return pd.Series({
        "replications": n,
        "failed": len(group) - n,
        "truth": ok["truth"].mean(),
        "mean_estimate": ok["estimate"].mean(),
        "bias": error.mean(),
        "rmse": float(np.sqrt((error ** 2).mean())) if n else np.nan,
        "sd_estimate": ok["estimate"].std(ddof=1) if n > 1 else np.nan,
        "sd_error": sd_error,
        "mean_se": mean_se,
        "se_sd": mean_se / sd_error if n > 1 else np.nan,
        "coverage": coverage,
        "coverage_mcse": float(np.sqrt(coverage * (1 - coverage) / n)) if n else np.nan,
        "rejection_rate": rejection,
        "size": rejection if null else np.nan,
        "power": np.nan if null else rejection,
        "mde": MDE_FACTOR * mean_se,
    })


def summarize(rows: pd.DataFrame) -> pd.DataFrame:
    r"""Summarise replications per level, outcome, design and estimator.

    Parameters
    ----------
    rows
        One row per replication and estimate (``estimate, std_error, ci_lower, ci_upper,
        p_value, truth`` and the :data:`KEYS`).

    Returns
    -------
    pandas.DataFrame
        The keys, then ``replications`` (finite estimates), ``failed`` (NaN estimates),
        ``truth`` (mean true effect), ``mean_estimate``, ``bias``, ``rmse``,
        ``sd_estimate``, ``sd_error``, ``mean_se``, ``se_sd``, ``coverage``,
        ``coverage_mcse``, ``rejection_rate``, ``size`` (when every truth is 0),
        ``power`` (otherwise) and ``mde``.

    Notes
    -----
    With errors :math:`e_r = \hat\theta_r - \theta_r` over :math:`R` replications (the truth
    :math:`\theta_r` is each draw's realised ATT): bias :math:`\bar e`, RMSE
    :math:`\sqrt{\overline{e^2}}`, coverage :math:`c = R^{-1}\sum_r 1\{\theta_r \in CI_r\}`
    with Monte Carlo standard error :math:`\sqrt{c(1-c)/R}`, rejection rate
    :math:`R^{-1}\sum_r 1\{p_r < 0.05\}` (the size under a null truth, the power otherwise)
    and minimum detectable effect :math:`(z_{0.975} + z_{0.80})\,\overline{se}` (5 % test,
    80 % power).
    """
    grouped = rows.groupby(KEYS, sort=False, dropna=False)
    table = grouped.apply(_one, include_groups=False).reset_index()
    table["replications"] = table["replications"].astype(int)
    table["failed"] = table["failed"].astype(int)
    return table


def plot_distributions(rows: pd.DataFrame, ax: Axes | None = None) -> Axes:
    r"""Box plots of :math:`(\hat\theta_r - \theta_r)/\overline{se}` per design and outcome.

    A well-calibrated design centres on 0 (no bias) with about 95 % of its mass inside the
    dashed lines at :math:`\pm 1.96` (standard errors that match the spread). Returns the
    Axes; the figure is never shown from here.
    """
    ok = rows[np.isfinite(rows["estimate"]) & np.isfinite(rows["truth"])]
    groups = list(ok.groupby(KEYS, sort=False))
    ax = new_axes(ax, (8, 0.32 * len(groups) + 1.2))
    data, labels = [], []
    for (level, outcome, design, estimator), group in groups:
        scale = group["std_error"].mean()
        data.append(((group["estimate"] - group["truth"]) / scale).to_numpy())
        labels.append(f"{level[:4]}: {outcome}, {design} ({estimator})")
    if data:
        import matplotlib

        release = tuple(int(part) for part in matplotlib.__version__.split(".")[:2])
        horizontal = ({"orientation": "horizontal"} if release >= (3, 10)
                      else {"vert": False})  # 'vert' is deprecated from 3.10
        ax.boxplot(data[::-1], widths=0.6, flierprops={"markersize": 2}, **horizontal)
        ax.set_yticks(np.arange(1, len(labels) + 1), labels[::-1], fontsize=7)
    for x, style in ((0, "-"), (-1.96, "--"), (1.96, "--")):
        ax.axvline(x, color="C3" if x == 0 else "0.5", linestyle=style, linewidth=0.8)
    ax.set_xlabel("(estimate - truth) / mean standard error")
    ax.grid(alpha=0.3, axis="x")
    return ax
