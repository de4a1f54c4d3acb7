"""Chapter 1 (data): the target group by state and area, and monthly shares by group."""

from __future__ import annotations

import numpy as np
import pandas as pd

from evaluation.report.disclosure import DisclosedTable, disclose
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
