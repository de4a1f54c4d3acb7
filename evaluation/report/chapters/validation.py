"""Chapter 7 (validation of the design): the design Monte Carlo behind the headline numbers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from evaluation.errors import ReportError
from evaluation.validation.summary import (
    CONFIG_FILE,
    ESTIMATES_FILE,
    SUMMARY_FILE,
    committed_runs,
    replication_count,
)

#: What a validated headline number needs (issue criteria): |bias| at most this share of the
#: SD of its errors, and 95 % intervals covering the truth this often.
MAX_BIAS_SHARE = 0.1
COVERAGE_RANGE = (0.92, 0.98)
#: Columns of the validation table, in order.
VALIDATION_COLUMNS = ["level", "outcome", "design", "estimator", "replications", "truth",
                      "bias", "sd_error", "bias_share", "bias_share_mcse", "mean_se", "se_sd",
                      "coverage", "coverage_mcse", "size", "power", "mde", "verdict"]


def validation_config(directory: str | Path) -> dict[str, Any]:
    """Return the settings of a validation run (scenario, size, seed, designs, outcomes)."""
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        raise ReportError(f"{directory} holds no validation run (no config.json); run "
                          "`evaluation validate --out DIR` or let the report compute one.")
    return json.loads(path.read_text())


def validation_rows(directory: str | Path) -> pd.DataFrame:
    """Return every replication's estimates of a validation run (``estimates.parquet``)."""
    path = Path(directory) / ESTIMATES_FILE
    if not path.is_file():
        raise ReportError(f"{path} does not exist; the validation run in {directory} has not "
                          "finished (rerun `evaluation validate` with the same settings).")
    return pd.read_parquet(path)


def _verdict(row: pd.Series) -> str:
    problems = []
    if abs(row["bias_share"]) > MAX_BIAS_SHARE:
        problems.append(f"|bias| = {abs(row['bias_share']):.2f} SD")
    low, high = COVERAGE_RANGE
    if not low <= row["coverage"] <= high:
        text = f"coverage {row['coverage']:.3f}"
        ratio = row["se_sd"]
        if ratio == ratio and abs(ratio - 1) >= 0.05:  # say why when the SEs are off
            text += (f" (standard errors {100 * abs(1 - ratio):.0f} % "
                     f"{'smaller' if ratio < 1 else 'larger'} than the spread of the errors)")
        problems.append(text)
    return "meets the criteria" if not problems else "fails: " + ", ".join(problems)


def validation_table(directory: str | Path) -> pd.DataFrame:
    r"""Bias, coverage, size or power and MDE of every design, with a verdict per row.

    Returns
    -------
    pandas.DataFrame
        :data:`VALIDATION_COLUMNS`: the summary of the run plus ``bias_share`` (bias / SD of
        the errors) with its Monte Carlo standard error ``bias_share_mcse`` (:math:`1/\sqrt
        R` over :math:`R` replications) and ``verdict`` (whether |bias| <=
        :data:`MAX_BIAS_SHARE` SD and coverage lies in :data:`COVERAGE_RANGE`, read
        literally: the Monte Carlo standard errors are shown beside, not used to excuse).
    """
    path = Path(directory) / SUMMARY_FILE
    if not path.is_file():
        raise ReportError(f"{path} does not exist; run `evaluation validate --out "
                          f"{directory}` first.")
    table = pd.read_csv(path)
    table["bias_share"] = table["bias"] / table["sd_error"]
    table["bias_share_mcse"] = 1 / np.sqrt(table["replications"])  # SE of a mean error / SD
    table["verdict"] = table.apply(_verdict, axis=1)
    return table[VALIDATION_COLUMNS]


#: Coverage the headline design must keep under the stress scenarios.
STRESS_COVERAGE = 0.90
#: The headline rows checked under stress: CS overall effects and services over all months.
HEADLINE_ROWS = (("overall effect", "cs"), ("services: all trial months", "cs"))
#: Why a stress scenario can break the headline design (shown when it does).
SCENARIO_NOTES = {
    "heterogeneous": "effects grow over time and differ by wave, target group and area; the "
    "cohort's average effect is still identified, so a break means the standard errors miss "
    "the extra spread of effects between municipalities",
    "attrition": "persons leave the registers (1 % a month) and are followed only while "
    "observed, so the later trial months rest on those who stay, a group selected on its "
    "outcomes in both arms",
    "area_shock": "the persons and municipalities of one trial area share common "
    "labour-market shocks; the municipal estimate's spread grows and even the cluster "
    "jackknife over the 15 ELY centres can understate it, because the areas' shocks cross "
    "ELY borders. Randomization inference over the assignment of areas (`evaluation "
    "estimate --se randomization --cluster <area>`) is no cure: in 100 further replications "
    "of this scenario it covered 0.92 against the jackknife's 0.93, since the treated areas "
    "are groups of municipalities sharing a shock and most comparison municipalities are "
    "not; read the municipal interval as too narrow when area shocks are suspected",
}
#: Columns of :func:`stress_table`.
STRESS_COLUMNS = ["scenario", "replications", "level", "outcome", "design", "truth", "bias",
                  "bias_share", "se_sd", "coverage", "coverage_mcse", "holds"]


def stress_table(runs: dict[str, Path] | None = None, exclude: str | None = None
                 ) -> pd.DataFrame:
    """Coverage of the headline design under the stress scenarios of the committed runs.

    Parameters
    ----------
    runs
        Finished runs by scenario (default: the runs shipped with the package,
        :func:`~evaluation.validation.summary.committed_runs`).
    exclude
        A scenario left out (the one the main validation table already shows).

    Returns
    -------
    pandas.DataFrame
        :data:`STRESS_COLUMNS`, one row per scenario and headline number; ``holds`` says
        whether 95 % coverage stays at least :data:`STRESS_COVERAGE`.
    """
    frames = []
    for scenario, directory in (committed_runs() if runs is None else runs).items():
        if scenario == exclude:
            continue
        table = validation_table(directory)
        keep = pd.Series(False, index=table.index)
        for design, estimator in HEADLINE_ROWS:
            keep |= (table["design"] == design) & (table["estimator"] == estimator)
        rows = table[keep].assign(scenario=scenario,
                                  replications=replication_count(directory))
        rows["holds"] = rows["coverage"] >= STRESS_COVERAGE
        frames.append(rows)
    if not frames:
        return pd.DataFrame(columns=STRESS_COLUMNS)
    return pd.concat(frames, ignore_index=True)[STRESS_COLUMNS]
