"""Chapter 1 (data): the target group by state and area, and monthly shares by group."""

from __future__ import annotations

import numpy as np
import pandas as pd

from evaluation.report.disclosure import DisclosedTable, disclose
from evaluation.report.indicators import wave_groups
from evaluation.report.study import (
    Study,
)


def state_distribution(study: Study) -> DisclosedTable:
    """Target group by labour-market state in the month before the trial (row shares, %)."""
    people = study.people[study.people["target_group"].astype(bool)]
    group = np.where(people["treated"].astype(bool), "trial municipalities",
                     "comparison municipalities")
    counts = pd.crosstab(pd.Series(group, name="group"),
                         people["state_at_reference"].astype(str).to_numpy())
    counts.columns.name = None
    return disclose(counts, threshold=study.threshold, share="row")


def target_group_counts(study: Study) -> DisclosedTable:
    """Persons in the target group by trial area (comparison persons in one row)."""
    people = study.people[study.people["target_group"].astype(bool)]
    area = people["area"].where(people["treated"].astype(bool), "comparison")
    counts = area.astype(str).value_counts().sort_index()
    counts.index.name = None
    return disclose(counts.rename("persons").to_frame().T, threshold=study.threshold)


def monthly_shares(study: Study, outcome: str, weights: pd.Series | None = None
                   ) -> pd.DataFrame:
    """Monthly share (%) of the target group in ``outcome``, trial vs comparison persons.

    Parameters
    ----------
    study
        The study.
    outcome
        A 0/1 outcome of the jobseeker panel.
    weights
        Optional weight per person (e.g. matching weights); persons with zero or no weight
        are left out and the shares are weighted means.

    Returns
    -------
    pandas.DataFrame
        ``month, group, share``; ``share`` is NaN where disclosure control hid the
        underlying counts.

    Notes
    -----
    The unweighted counts of persons with and without the outcome in every month and
    group pass through :func:`~evaluation.report.disclosure.disclose` (row shares); a published
    (weighted) share is shown only where its counts may be published.
    """
    data = study.jobseekers
    w = (pd.Series(1.0, index=data.index) if weights is None
         else data["person"].map(weights).fillna(0.0))
    data = data.assign(group=np.where(data["cohort"] > 0, "trial", "comparison"),
                       yes=data[outcome].astype(float), w=w)[w.to_numpy() > 0]
    grouped = data.assign(wy=data["w"] * data["yes"]).groupby(["month", "group"], observed=True)
    sums = grouped[["yes", "wy", "w"]].sum()
    counts = pd.DataFrame({"yes": sums["yes"], "no": grouped.size() - sums["yes"]}).astype(int)
    counts.index = [f"{month} {group}" for month, group in counts.index]
    hidden = disclose(counts, threshold=study.threshold, share="row").suppressed
    share = 100 * sums["wy"] / sums["w"]
    share[hidden.loc[counts.index, ["yes", "no"]].any(axis=1).to_numpy()] = np.nan
    return share.rename("share").reset_index()


#: Subsidy-cost columns of the municipal panel (EUR per month).
COST_COLUMNS = ("lms_cost_state", "lms_cost_municipal", "lms_cost_total")


def has_costs(study: Study) -> bool:
    """Whether the municipal panel carries the labour-market-subsidy costs."""
    return set(COST_COLUMNS) <= set(study.municipal.columns)


def subsidy_costs(study: Study) -> pd.DataFrame:
    """Monthly subsidy costs (EUR million) paid by the state and by the municipalities.

    Returns
    -------
    pandas.DataFrame
        ``group, month, lms_cost_state, lms_cost_municipal`` with ``group`` the wave's trial
        or comparison municipalities (:func:`~evaluation.report.indicators.wave_groups`).
    """
    municipal = study.municipal
    group = wave_groups(municipal, study.wave).to_numpy()
    costs = (municipal.assign(group=group)
             .groupby(["group", "month"])[["lms_cost_state", "lms_cost_municipal"]].sum() / 1e6)
    return costs.reset_index()


def municipal_cost_share(study: Study, first_year: int = 2018) -> pd.DataFrame:
    r"""Yearly municipal share (%) of the subsidy costs, trial vs comparison municipalities.

    Notes
    -----
    :math:`100 \sum_{i,m} c^{mun}_{im} / \sum_{i,m} c^{total}_{im}` over the municipalities
    :math:`i` of a group and the months :math:`m` of a year.
    """
    municipal = study.municipal
    group = wave_groups(municipal, study.wave).to_numpy()
    yearly = (municipal.assign(group=group)
              .groupby(["year", "group"])[["lms_cost_municipal", "lms_cost_total"]].sum())
    share = (100 * yearly["lms_cost_municipal"] / yearly["lms_cost_total"]).unstack("group")
    share.columns = [f"municipal share, % ({c})" for c in share.columns]
    return share.loc[first_year:].round(1)
