"""Chapter 5 (services and costs): effects on services, plans and subsidy costs."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from evaluation.estimators.callaway_santanna import CallawaySantAnna
from evaluation.report.chapters.common import EFFECT_COLUMNS, overall_row
from evaluation.report.study import (
    SERVICE_OUTCOMES,
    Study,
)


def service_effects(study: Study, outcomes: Sequence[str] = SERVICE_OUTCOMES,
                    first_months: int = 12) -> pd.DataFrame:
    """Overall CS effects on services, plans and subsidy costs, all months and the first ones.

    Returns
    -------
    pandas.DataFrame
        ``outcome, period, estimate, std_error, ci_lower, ci_upper, p_value, true_att,
        command`` (the command reproduces the all-months row).
    """
    rows = []
    for outcome in outcomes:
        spec = study.jobseeker_spec(outcome)
        fit = CallawaySantAnna().fit(study.jobseeker_panel(outcome))
        periods = {"all trial months": (np.inf, spec.command(study.data_dir)),
                   f"first {first_months} months": (first_months - 1, "")}
        for period, (max_e, command) in periods.items():
            row = overall_row(fit.aggregate("simple", max_e=max_e).to_frame())
            truth = study.true_event_mean("jobseekers", outcome, max_e)
            rows.append({"outcome": outcome, "period": period,
                         **{c: float(row[c]) for c in EFFECT_COLUMNS},
                         "true_att": np.nan if truth is None else truth, "command": command})
    return pd.DataFrame(rows)


def cost_split(effects: pd.DataFrame) -> pd.DataFrame:
    """State and municipal parts of the subsidy-cost effect (EUR per person-month).

    The municipal share of the cost change answers the cost-shift question: a negative
    municipal effect with a positive state effect means costs moved to the state.
    """
    rows = effects[effects["outcome"].isin(["lms_cost_state", "lms_cost_municipal"])]
    table = rows.pivot(index="period", columns="outcome", values="estimate")
    table["total"] = table.sum(axis=1)
    table["municipal share of the change, %"] = 100 * table["lms_cost_municipal"] / table["total"]
    return table.reset_index()
