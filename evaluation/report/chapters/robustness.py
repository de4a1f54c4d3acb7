"""Chapter 6 (robustness): alternative designs and estimators, and a placebo start date."""

from __future__ import annotations

import numpy as np
import pandas as pd

from evaluation.estimators.callaway_santanna import CallawaySantAnna
from evaluation.matching import MatchResult
from evaluation.panel import Panel
from evaluation.report.chapters.common import EFFECT_COLUMNS, overall_row
from evaluation.report.study import (
    Study,
)

#: Time-invariant person characteristics of the covariate-adjusted CS variants.
PERSON_CONTROLS = ("under30", "immigrant", "era_member")
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


def robustness_table(study: Study, outcome: str, matched: MatchResult | None = None,
                     placebo_months: int = 12) -> pd.DataFrame:
    """Overall effect of ``outcome`` under alternative designs and estimators.

    Rows: the baseline (CS, never-treated, doubly robust), not-yet-treated controls, doubly
    robust, IPW and outcome regression with covariates, imputation, two-stage and static
    TWFE, the matched comparison, and a placebo trial start ``placebo_months`` earlier,
    estimated on pre-trial months only. A design whose estimate and standard error equal an
    earlier row's on these data (e.g. not-yet-treated = never-treated controls when all areas
    started on the same day) is not a separate check: it is merged into that row, named in
    its ``same_as`` column with the reason, so counts of variants count distinct designs.
    """
    base = study.jobseeker_spec(outcome)
    covariates = {"covariates": list(PERSON_CONTROLS)}
    variants = {
        "baseline: CS, never-treated, doubly robust": base,
        "CS, not-yet-treated controls": base.with_options(control="notyet"),
        "CS, doubly robust with covariates": base.with_options(**covariates),
        "CS, inverse probability weighting with covariates": base.with_options(
            method="ipw", **covariates),
        "CS, outcome regression with covariates": base.with_options(method="reg",
                                                                    **covariates),
        "imputation (BJS)": base.with_options(estimator="bjs"),
        "two-stage (Gardner)": base.with_options(estimator="did2s"),
        "static TWFE": base.with_options(estimator="twfe"),
    }
    rows = []
    for label, spec in variants.items():
        row = overall_row(spec.run(study.data_dir))
        rows.append({"design": label, **{c: float(row[c]) for c in EFFECT_COLUMNS},
                     "command": spec.command(study.data_dir)})
    if matched is not None:
        rows.append({"design": "CS on the matched comparison (weights)",
                     **matched_effect(study, outcome, matched), "command": ""})
    rows.append({"design": f"placebo: trial start {placebo_months} months earlier",
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
    fit = CallawaySantAnna().fit(matched_panel(study, outcome, matched))
    row = overall_row(fit.aggregate("simple").to_frame())
    return {c: float(row[c]) for c in EFFECT_COLUMNS}


def placebo_effect(study: Study, outcome: str, months: int = 12) -> dict:
    """CS effect of a fake trial start ``months`` before the real one, pre-trial data only."""
    data = study.jobseekers
    fake = data[data["t"] < study.start].copy()
    fake["cohort"] = np.where(fake["cohort"] > 0, study.start - months, 0)
    panel = Panel(fake, unit="person", time="t", outcome=outcome, cohort="cohort",
                  never_treated=0, cluster="municipality")
    row = overall_row(CallawaySantAnna().fit(panel).aggregate("simple").to_frame())
    return {c: float(row[c]) for c in EFFECT_COLUMNS}
