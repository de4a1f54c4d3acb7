"""Chapter 2 (comparison groups): matched persons and reweighted municipalities."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from evaluation.errors import UnmatchedUnitsWarning
from evaluation.matching import MatchResult, match
from evaluation.report.disclosure import DisclosedTable, disclose
from evaluation.report.study import (
    MUNICIPAL_OUTCOME,
    Study,
)

#: Person-level covariates the individual match balances (measured before the trial).
PERSON_COVARIATES = ("age", "under30", "immigrant", "era_member", "duration_at_start",
                     "employed_before", "unemployed_before", "services_before")


def person_covariates(study: Study, months: int = 24) -> pd.DataFrame:
    """One row per target-group person: characteristics and outcome history before the trial.

    ``*_before`` are the shares of the ``months`` months before the trial spent employed,
    unemployed and in services; ``duration_at_start`` is the unemployment duration in the
    month before the trial.
    """
    data = study.jobseekers
    pre = data[(data["t"] < study.start) & (data["t"] >= study.start - months)]
    history = pre.groupby("person")[["employed", "unemployed", "in_services"]].mean()
    history.columns = ["employed_before", "unemployed_before", "services_before"]
    last = data[data["t"] == study.start - 1].set_index("person")
    frame = last[["municipality", "age", "under30", "immigrant", "era_member"]].copy()
    frame["duration_at_start"] = last["unemployment_duration"]
    frame["treated"] = (last["cohort"] > 0).astype(int)
    frame = frame.join(history, how="inner")
    for column in ("under30", "immigrant", "era_member"):
        frame[column] = frame[column].astype(int)
    return frame.reset_index()


#: Characteristics the individual match holds exactly equal.
PERSON_EXACT = ("under30", "immigrant")


def match_people(study: Study, caliper: float = 0.2) -> MatchResult:
    """Nearest-neighbour match (with replacement, logit score, caliper) of target persons.

    Exact on :data:`PERSON_EXACT`. Treated persons of an exact stratum without any
    comparison person cannot be matched; they are left out before matching with an
    :class:`~evaluation.errors.UnmatchedUnitsWarning` (the estimand is then the ATT of the
    matched treated persons), as MatchIt does.
    """
    frame = person_covariates(study)
    stratum = frame[list(PERSON_EXACT)].astype(str).agg("/".join, axis=1)
    with_controls = set(stratum[frame["treated"] == 0])
    orphans = (frame["treated"] == 1) & ~stratum.isin(with_controls)
    if orphans.any():
        warnings.warn(f"{int(orphans.sum())} treated persons were dropped without a match: "
                      f"no comparison person shares their {' and '.join(PERSON_EXACT)} "
                      f"({', '.join(sorted(set(stratum[orphans])))}). The estimand is then "
                      "the ATT of the matched treated persons only.", UnmatchedUnitsWarning,
                      stacklevel=2)
        frame = frame[~orphans]
    return match(frame, unit="person", treatment="treated",
                  covariates=list(PERSON_COVARIATES), method="nearest", distance="logit",
                  replace=True, caliper=caliper, exact=list(PERSON_EXACT))


#: Municipal covariates: pre-trial levels and trends of the monitoring statistics.
MUNICIPAL_COVARIATES = ("rate_level", "rate_slope", "log_labour_force", "long_term_share",
                        "foreign_share", "under25_share")


def municipal_covariates(study: Study, months: int = 24) -> pd.DataFrame:
    """One row per municipality: monitoring statistics over the ``months`` before the trial."""
    data = study.municipal
    pre = data[(data["t"] < study.start) & (data["t"] >= study.start - months)]
    grouped = pre.groupby("municipality", observed=True)
    frame = pd.DataFrame({
        "rate_level": grouped["unemployment_rate"].mean(),
        "rate_slope": grouped.apply(lambda g: np.polyfit(g["t"], g["unemployment_rate"], 1)[0]
                                    * 12, include_groups=False),
        "log_labour_force": np.log(grouped["labour_force"].mean()),
        "long_term_share": grouped["long_term_unemployed"].sum() / grouped["unemployed"].sum(),
        "foreign_share": grouped["unemployed_foreign"].sum() / grouped["unemployed"].sum(),
        "under25_share": grouped["unemployed_under25"].sum() / grouped["unemployed"].sum(),
    })
    frame["treated"] = grouped[study.cohort].first().gt(0).astype(int)
    return frame.reset_index()


def match_municipalities(study: Study) -> MatchResult:
    """Entropy-balanced comparison municipalities (means of the pre-trial statistics)."""
    frame = municipal_covariates(study)
    return match(frame, unit="municipality", treatment="treated",
                  covariates=list(MUNICIPAL_COVARIATES), method="ebal")


def balance_without_means(result: MatchResult) -> pd.DataFrame:
    """Balance table of an individual-level match without group means (no shares published)."""
    table = result.balance()
    keep = [c for c in table.columns if not c.startswith("mean")]
    return table[keep]


def disclosed_sample_sizes(result: MatchResult, threshold: int) -> DisclosedTable:
    """Sample sizes of an individual-level match through disclosure control.

    Matched, unmatched and discarded persons add up to all persons, so they are disclosed
    as one table with ``All`` as its total row (and a total column): a hidden count, such
    as a single unmatched treated person, cannot be recovered as all minus the others.
    Effective sample sizes are not counts of persons and are left out.
    """
    sizes = result.sample_sizes()
    parts = sizes.loc[["Matched", "Unmatched", "Discarded"], ["control", "treated"]]
    return disclose(parts.round().astype(int), threshold=threshold, total_label="All")


def municipal_paths(study: Study, matched: MatchResult) -> pd.DataFrame:
    """Mean unemployment rate by month: trial, all other and reweighted comparison municipalities.

    Returns
    -------
    pandas.DataFrame
        Indexed by month index ``t`` over the analysis window, with the columns
        ``trial municipalities``, ``all other municipalities`` and ``entropy-balanced
        comparison`` (unweighted means across municipalities; the last weighted by the
        match weights).
    """
    first, last = study.window
    rows = study.municipal[study.municipal["t"].between(first, last)]
    treated = rows[study.cohort].gt(0).to_numpy()
    weight = rows["municipality"].map(matched.unit_weights()).fillna(0.0).to_numpy()

    def mean_path(mask: np.ndarray, w: np.ndarray) -> pd.Series:
        frame = rows[mask].assign(w=w[mask], wy=w[mask] * rows.loc[mask, MUNICIPAL_OUTCOME])
        grouped = frame.groupby("t")
        return grouped["wy"].sum() / grouped["w"].sum()

    ones = np.ones(len(rows))
    return pd.DataFrame({"trial municipalities": mean_path(treated, ones),
                         "all other municipalities": mean_path(~treated, ones),
                         "entropy-balanced comparison": mean_path(~treated, weight)})


def pre_period_fit(paths: pd.DataFrame, start: int) -> pd.DataFrame:
    r"""How closely each comparison tracks the trial municipalities before the trial.

    Notes
    -----
    For the gap :math:`d_t = \bar y^{trial}_t - \bar y^{comp}_t` over the pre-trial months
    :math:`t < start`: RMSE :math:`\sqrt{\overline{d_t^2}}` and mean gap
    :math:`\overline{d_t}` (percentage points).
    """
    pre = paths[paths.index < start]
    trial = pre["trial municipalities"]
    gaps = {name: trial - pre[name] for name in pre.columns if name != "trial municipalities"}
    return pd.DataFrame({"comparison": list(gaps),
                         "pre-period RMSE, pp": [float(np.sqrt((g ** 2).mean()))
                                                 for g in gaps.values()],
                         "pre-period mean gap, pp": [float(g.mean()) for g in gaps.values()]})
