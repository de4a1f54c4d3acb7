"""Chapter 3 (effects on employment and unemployment): overall, event-time, pre-trends."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from evaluation.estimators.compare import EstimatorComparison, compare_estimators
from evaluation.estimators.imputation import ImputationDiD
from evaluation.estimators.results import minimum_detectable_effect
from evaluation.report.chapters.common import EFFECT_COLUMNS, overall_row
from evaluation.report.study import (
    HEADLINE_EXTRAS,
    MUNICIPAL_FILE,
    MUNICIPAL_OUTCOME,
    EstimateSpec,
    Study,
)

#: Estimators of the overall-effect table (SA reports event-time effects only).
OVERALL_ESTIMATORS = ("cs", "bjs", "twfe")


#: Estimators of the event-study figures.
EVENT_ESTIMATORS = ("cs", "sa", "bjs", "twfe")


def overall_specs(study: Study, estimators: Sequence[str] = OVERALL_ESTIMATORS
                  ) -> list[EstimateSpec]:
    """Specs of the overall-effect table: municipal rate and each individual outcome.

    The individual outcomes are ``study.outcomes`` followed by the
    :data:`~evaluation.report.study.HEADLINE_EXTRAS` the data carry (open-market
    employment, extended unemployment).
    """
    specs = []
    extras = [o for o in HEADLINE_EXTRAS
              if o not in study.outcomes and o in study.jobseekers.columns]
    for name in estimators:
        specs.append(study.municipal_spec(estimator=name))
    for outcome in (*study.outcomes, *extras):
        specs += [study.jobseeker_spec(outcome, estimator=name) for name in estimators]
    return specs


def overall_effects(study: Study, estimators: Sequence[str] = OVERALL_ESTIMATORS
                    ) -> pd.DataFrame:
    """Overall ATT of every outcome and estimator, with the command that reproduces it.

    Returns
    -------
    pandas.DataFrame
        ``level, outcome, estimator, estimate, std_error, ci_lower, ci_upper, p_value``,
        ``mde`` (the minimum detectable effect, 5 % test with 80 % power, with the
        :math:`t` quantiles of the intervals when they use a :math:`t` distribution), ``true_att``
        (synthetic data; NaN otherwise) and ``command``.
    """
    rows = []
    for spec in overall_specs(study, estimators):
        row = overall_row(spec.run(study.data_dir))
        level = "municipalities" if spec.file == MUNICIPAL_FILE else "jobseekers"
        truth = study.true_overall(level, spec.outcome)
        rows.append({"level": level, "outcome": spec.outcome,
                     "estimator": spec.options["estimator"],
                     **{c: float(row[c]) for c in EFFECT_COLUMNS},
                     "mde": float(minimum_detectable_effect(row["std_error"],
                                                            df=row.get("df"))),
                     "true_att": np.nan if truth is None else truth,
                     "command": spec.command(study.data_dir)})
    return pd.DataFrame(rows)


def event_study(study: Study, outcome: str, level: str = "jobseekers",
                estimators: Sequence[str] = EVENT_ESTIMATORS, min_e: int = -24,
                max_e: int = 45) -> EstimatorComparison:
    """Event-time effects of several estimators on the same persons or municipalities.

    On the jobseekers, CS is the headline design (adjusted for the reference-month
    covariates); the fixed-effects estimators absorb time-invariant covariates in their unit
    effects, so they run on the same rows without them.
    """
    if level != "jobseekers":
        return compare_estimators(study.panel(level, outcome), estimators, min_e=min_e,
                                  max_e=max_e)
    panels = {adjusted: study.jobseeker_panel(outcome, adjusted=adjusted)
              for adjusted in {name == "cs" for name in estimators}}  # each built once
    parts = [compare_estimators(panels[name == "cs"], [name], min_e=min_e, max_e=max_e)
             for name in estimators]
    return EstimatorComparison(pd.concat([p.table for p in parts], ignore_index=True),
                               {k: v for p in parts for k, v in p.results.items()})


def pretrend_tests(study: Study, outcomes: Sequence[str] | None = None) -> pd.DataFrame:
    """Joint tests of no pre-trends: CS Wald test of all pre-period ATT(g,t) and BJS leads.

    The CS test uses the varying base period (consecutive-month placebo effects) of the
    headline design; the BJS test regresses untreated outcomes on 12 lead indicators with the
    fixed effects (which absorb the time-invariant covariates).
    """
    rows = []
    targets = [("municipalities", MUNICIPAL_OUTCOME)] + [
        ("jobseekers", o) for o in (outcomes or study.outcomes)]
    for level, outcome in targets:
        panel = study.panel(level, outcome)
        unadjusted = (study.jobseeker_panel(outcome, adjusted=False)
                      if level == "jobseekers" else panel)
        cs = study.headline_estimator().fit(panel).pretest
        bjs = ImputationDiD(pretrend_leads=12).fit(unadjusted).pretest
        rows.append({"level": level, "outcome": outcome, "cs_wald_test": cs.as_text(),
                     "cs_p_value": cs.p_value, "bjs_leads_test": bjs.as_text(),
                     "bjs_p_value": bjs.p_value})
    return pd.DataFrame(rows)


def what_moved(overall: pd.DataFrame) -> str:
    """Say in words what moved where, from the CS rows of the overall-effect table.

    Open unemployment is set beside extended unemployment (unemployed or in services) and
    all employment beside open-market employment, so that a move from unemployment into
    services is not read as an employment effect. Outcomes absent from the table are left
    out; an empty string when none of the pairs is there.
    """
    rows = overall[(overall["estimator"] == "cs") & (overall["level"] == "jobseekers")]
    cs = rows.set_index("outcome")

    def change(outcome: str) -> str:
        row = cs.loc[outcome]
        verdict = "significant" if row["p_value"] < 0.05 else "not significant"
        return f"{100 * row['estimate']:+.1f} percentage points ({verdict} at 5 %)"

    sentences = []
    if {"unemployed", "extended_unemployed"} <= set(cs.index):
        text = (f"Open unemployment changed by {change('unemployed')} and extended "
                f"unemployment (unemployed or in services) by "
                f"{change('extended_unemployed')}")
        if cs.loc["unemployed", "estimate"] < cs.loc["extended_unemployed", "estimate"]:
            text += ("; the difference is the move from open unemployment into services, "
                     "which is not an employment effect")
        sentences.append(text + ".")
    if {"employed", "employed_open"} <= set(cs.index):
        sentences.append(f"Employment changed by {change('employed')}, open-market employment "
                         f"by {change('employed_open')}.")
    return " ".join(sentences)
