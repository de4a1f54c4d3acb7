"""Chapter 6 (robustness): alternative designs and estimators, and a re-selected placebo."""

from __future__ import annotations

import numpy as np
import pandas as pd

from evaluation.matching import MatchResult
from evaluation.panel import Panel
from evaluation.report.chapters.common import EFFECT_COLUMNS, overall_row
from evaluation.report.study import EstimateSpec, Study, identified_covariates
from evaluation.sources.cohort import (
    COHORT_COVARIATES,
    REFERENCE_COVARIATES,
    local_rates,
    reference_covariates,
    target_cohort,
)

#: Why a design can coincide with an earlier one (shown when it does); others get a generic
#: reason.
SAME_BECAUSE = {
    "CS, not-yet-treated controls": "with one start date every person not yet treated in "
    "the window is never treated, so the comparison group is the same",
    "two-stage (Gardner)": "with one start date and no covariates the two-stage, imputation "
    "and static TWFE estimators average the same treated person-months against the same "
    "all-pre-months baseline",
    "static TWFE": "with one start date and no covariates the two-stage, imputation and "
    "static TWFE estimators average the same treated person-months against the same "
    "all-pre-months baseline",
}
#: Label of the headline design's row.
BASELINE = "baseline: CS, doubly robust, reference-month covariates"


def robustness_specs(study: Study, outcome: str) -> dict[str, EstimateSpec]:
    """Return the alternative estimates of ``outcome`` by label (the baseline first).

    The baseline is the headline design (:meth:`Study.jobseeker_spec`); the alternatives
    change one thing each: the comparison group, the estimation method, dropping the
    reference-month covariates (the snapshot cohort alone), or the estimator (imputation,
    two-stage, static TWFE: all-pre-months baselines, no covariates).
    """
    base = study.jobseeker_spec(outcome)
    return {
        BASELINE: base,
        "CS, not-yet-treated controls": base.with_options(control="notyet"),
        "CS, inverse probability weighting": base.with_options(method="ipw"),
        "CS, outcome regression": base.with_options(method="reg"),
        "CS without covariates (snapshot cohort only)": study.jobseeker_spec(outcome,
                                                                             covariates=()),
        "imputation (BJS)": study.jobseeker_spec(outcome, estimator="bjs"),
        "two-stage (Gardner)": study.jobseeker_spec(outcome, estimator="did2s"),
        "static TWFE": study.jobseeker_spec(outcome, estimator="twfe"),
    }


def robustness_table(study: Study, outcome: str, matched: MatchResult | None = None,
                     placebo_months: int = 12) -> pd.DataFrame:
    """Overall effect of ``outcome`` under alternative designs and estimators.

    Rows: :func:`robustness_specs`, the matched comparison, and a placebo: the cohort
    re-selected at a reference month ``placebo_months`` earlier, with a fake trial start,
    estimated on pre-trial months only (:func:`placebo_effect`). A design whose estimate
    and standard error equal an earlier row's on these data (e.g. not-yet-treated =
    never-treated controls when all areas started on the same day) is not a separate check:
    it is merged into that row, named in its ``same_as`` column with the reason, so counts of
    variants count distinct designs.
    """
    variants = robustness_specs(study, outcome)
    rows = []
    for label, spec in variants.items():
        row = overall_row(spec.run(study.data_dir))
        rows.append({"design": label, **{c: float(row[c]) for c in EFFECT_COLUMNS},
                     "command": spec.command(study.data_dir)})
    if matched is not None:
        rows.append({"design": "CS on the matched comparison (weights)",
                     **matched_effect(study, outcome, matched), "command": ""})
    rows.append({"design": f"placebo: cohort re-selected {placebo_months} months earlier",
                 **placebo_effect(study, outcome, placebo_months), "command": ""})
    table = distinct_designs(pd.DataFrame(rows))
    table.insert(1, "outcome", outcome)
    return table


def distinct_designs(table: pd.DataFrame, rtol: float = 1e-9) -> pd.DataFrame:
    """Merge rows whose estimate and standard error equal an earlier row's.

    Returns the distinct rows with a ``same_as`` column: the merged designs and why they
    coincide (:data:`SAME_BECAUSE`, else "identical estimate and standard error on these
    data"), empty for rows that stand alone.
    """
    kept: list[int] = []
    merged: dict[int, list[str]] = {}
    for index, row in table.iterrows():
        twin = next((k for k in kept if np.isclose(row["estimate"], table.at[k, "estimate"],
                                                   rtol=rtol, atol=0)
                     and np.isclose(row["std_error"], table.at[k, "std_error"], rtol=rtol,
                                    atol=0)), None)
        if twin is None:
            kept.append(index)
            continue
        reason = SAME_BECAUSE.get(row["design"],
                                  "identical estimate and standard error on these data")
        merged.setdefault(twin, []).append(f"{row['design']} ({reason})")
    out = table.loc[kept].reset_index(drop=True)
    out["same_as"] = ["; ".join(merged.get(k, [])) for k in kept]
    return out


def matched_panel(study: Study, outcome: str, matched: MatchResult) -> Panel:
    """Return the target-group panel of exactly the matched persons, with their weights.

    Persons are selected by id through :meth:`MatchResult.apply` (every person with a
    positive matching weight, weighted by it), never by position in the match table.
    """
    return matched.apply(study.jobseeker_panel(outcome))


def matched_effect(study: Study, outcome: str, matched: MatchResult) -> dict:
    """Overall CS effect on the matched comparison (:func:`matched_panel`)."""
    fit = study.headline_estimator().fit(matched_panel(study, outcome, matched))
    row = overall_row(fit.aggregate("simple").to_frame())
    return {c: float(row[c]) for c in EFFECT_COLUMNS}


def placebo_effect(study: Study, outcome: str, months: int = 12) -> dict:
    """Headline design on a fake trial ``months`` early, with its cohort re-selected then.

    The target rule is applied at the fake reference month (the month before the fake
    start), so the placebo cohort is selected exactly as the real one, with its own
    reference-month covariates; persons in the wave's trial municipalities form the fake
    treated group. Only pre-trial months enter, so the true effect is zero and a valid
    design rejects in about 5 % of data sets.
    """
    fake_start = study.start - months
    reference = fake_start - 1
    data = study.pre_trial_population
    cohort = target_cohort(data, reference, study.wave)
    data = data[data["person"].isin(cohort)]
    covariates = reference_covariates(data, reference, local_rates(study.municipal, reference))
    data = data.drop(columns=[c for c in REFERENCE_COVARIATES if c in data.columns])
    data = data.join(covariates, on="person")
    trial = study.municipal.loc[study.municipal[study.cohort] > 0, "municipality"]
    in_trial = data["municipality"].astype(str).isin(set(trial.astype(str)))
    data["cohort"] = np.where(in_trial, fake_start, 0)
    panel = Panel(data, unit="person", time="t", outcome=outcome, cohort="cohort",
                  never_treated=0, cluster="municipality",
                  covariates=identified_covariates(data, COHORT_COVARIATES))
    row = overall_row(study.headline_estimator().fit(panel).aggregate("simple").to_frame())
    return {c: float(row[c]) for c in EFFECT_COLUMNS}
