"""The designs a replication runs: the report's own estimates, with their truth.

A design is a function of a :class:`~evaluation.report.study.Study` returning rows with the
columns of :data:`ROW_COLUMNS`. Each calls the report's chapter functions, so the Monte
Carlo validates exactly what the report shows (no second copy of the design).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from evaluation.report import chapters
from evaluation.report.chapters.common import EFFECT_COLUMNS, overall_row
from evaluation.report.study import Study

#: Columns of a design's rows (the engine adds replication, seed and warnings).
ROW_COLUMNS = ["level", "outcome", "design", "estimator", *EFFECT_COLUMNS, "truth"]

#: Sizes of the synthetic data of one replication (keyword arguments of
#: :func:`~evaluation.simulate.write_synthetic_data`).
SIZES: dict[str, dict[str, Any]] = {
    "small": {"n_people": 3000},
    "report": {"n_people": 50_000},
}


def _truth(value: float | None) -> float:
    return np.nan if value is None else float(value)


def overall_design(study: Study) -> pd.DataFrame:
    """Overall effects of the report's chapter 3 (municipal rate and individual outcomes)."""
    table = chapters.overall_effects(study)
    return pd.DataFrame({
        "level": table["level"], "outcome": table["outcome"], "design": "overall effect",
        "estimator": table["estimator"], **{c: table[c] for c in EFFECT_COLUMNS},
        "truth": table["true_att"]})


def services_design(study: Study) -> pd.DataFrame:
    """Effects on services, plans and subsidy costs (chapter 5), all months and the first 12."""
    table = chapters.service_effects(study)
    return pd.DataFrame({
        "level": "jobseekers", "outcome": table["outcome"],
        "design": "services: " + table["period"], "estimator": "cs",
        **{c: table[c] for c in EFFECT_COLUMNS}, "truth": table["true_att"]})


def placebo_design(study: Study) -> pd.DataFrame:
    """Run the report's placebo: the cohort re-selected 12 months early, pre-trial months only.

    The truth is zero, so the rejection rate of its 5 % test is the size of the rule the
    report applies.
    """
    rows = [{"level": "jobseekers", "outcome": outcome,
             "design": "placebo: cohort re-selected 12 months earlier",
             "estimator": "cs", **chapters.placebo_effect(study, outcome), "truth": 0.0}
            for outcome in study.outcomes]
    return pd.DataFrame(rows)


def alternatives_design(study: Study) -> pd.DataFrame:
    """Run the robustness chapter's alternative designs (the baseline is the overall CS).

    Running them on every replication is what the choice of the headline design rests on:
    e.g. the snapshot cohort without reference-month covariates, or estimators with an
    all-pre-months baseline, against the covariate-adjusted CS.
    """
    rows = []
    for outcome in study.outcomes:
        truth = _truth(study.true_overall("jobseekers", outcome))
        for label, spec in chapters.robustness_specs(study, outcome).items():
            if label == chapters.BASELINE:
                continue
            row = overall_row(spec.run(study.data_dir))
            rows.append({"level": "jobseekers", "outcome": outcome, "design": label,
                         "estimator": spec.options["estimator"],
                         **{c: float(row[c]) for c in EFFECT_COLUMNS}, "truth": truth})
    return pd.DataFrame(rows)


def matched_design(study: Study) -> pd.DataFrame:
    """CS on the matched comparison persons of chapter 2 (the robustness row)."""
    matched = chapters.match_people(study)
    rows = []
    for outcome in study.outcomes:
        rows.append({"level": "jobseekers", "outcome": outcome,
                     "design": "matched comparison", "estimator": "cs",
                     **chapters.matched_effect(study, outcome, matched),
                     "truth": _truth(study.true_overall("jobseekers", outcome))})
    return pd.DataFrame(rows)


#: Designs by name, in the order of the summary.
DESIGNS: dict[str, Callable[[Study], pd.DataFrame]] = {
    "overall": overall_design,
    "services": services_design,
    "placebo": placebo_design,
    "matched": matched_design,
    "alternatives": alternatives_design,
}
