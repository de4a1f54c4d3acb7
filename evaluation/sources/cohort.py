"""The individual-level cohort: who meets the target rule at a reference month, and how they stood.

A snapshot cohort ("unemployed or in services in the month before the trial") has, by
construction, no employment in the reference month and a dip before it. Comparison persons
selected by the same rule share that dip only when they also agree on the spell, the
benefit and the months of labour-market history before the reference month. This module
computes those reference-month covariates from the person-month rows, so that the
simulator, a real register extract and the placebo cohort (re-selected at a fake reference
month) use the same definitions.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from evaluation.errors import CohortError
from evaluation.sources.trials import ERA_MONTHS, in_target_group

#: Months of labour-market history before the reference month that the covariates count.
HISTORY_MONTHS = 12
#: Covariates :func:`reference_covariates` computes (one value per person).
REFERENCE_COVARIATES = (
    "ref_in_services", "ref_log_duration", "ref_long_term", "ref_on_era", "ref_under30",
    "months_employed_12", "months_unemployed_12", "months_on_subsidy_12",
    "local_unemployment_rate",
)
#: Time-invariant person columns of the schema that the cohort design also adjusts for.
PERSON_TRAITS = ("immigrant", "era_member")
#: Every covariate of the headline individual-level design.
COHORT_COVARIATES = (*REFERENCE_COVARIATES, *PERSON_TRAITS)
#: Person-month columns the covariates are computed from.
SOURCE_COLUMNS = ("person", "t", "municipality", "state", "unemployment_duration", "age",
                  "era_member", "employed", "unemployed", "lms_cost")


def _check_columns(data: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in data.columns]
    if missing:
        raise CohortError(f"the person-month data lack {', '.join(missing)}, needed for "
                          f"{what}; prepare the extract in the jobseekers.parquet schema of "
                          "the README.")


def _rows_at(data: pd.DataFrame, reference: int) -> pd.DataFrame:
    rows = data[data["t"] == reference].drop_duplicates("person").set_index("person")
    if rows.empty:
        raise CohortError(f"no person-month rows at the reference month t = {reference}; "
                          "choose a reference month inside the data.")
    return rows


def local_rates(municipal: pd.DataFrame, reference: int,
                months: int = HISTORY_MONTHS) -> pd.Series:
    """Mean unemployment rate (%) of every municipality in the ``months`` before ``reference``.

    ``municipal`` is the municipality-month panel (``municipality, t, unemployment_rate``).
    """
    _check_columns(municipal, ("municipality", "t", "unemployment_rate"),
                   "the local unemployment rate")
    window = municipal[(municipal["t"] < reference) & (municipal["t"] >= reference - months)]
    if window.empty:
        raise CohortError(f"the municipal panel has no months before t = {reference}; the "
                          "local unemployment rate needs the year before the reference month.")
    rates = window.groupby("municipality", observed=True)["unemployment_rate"].mean()
    rates.index = rates.index.astype(str)
    return rates


def reference_covariates(data: pd.DataFrame, reference: int, rates: pd.Series,
                         months: int = HISTORY_MONTHS) -> pd.DataFrame:
    r"""Reference-month covariates of every person observed in month ``reference``.

    Parameters
    ----------
    data
        Person-month rows with :data:`SOURCE_COLUMNS` (the jobseeker schema).
    reference
        Month index ``t`` of the reference month (the month the target rule is applied).
    rates
        Local unemployment rate by municipality (:func:`local_rates`).
    months
        Months of history before ``reference`` (the data must reach back that far).

    Returns
    -------
    pandas.DataFrame
        Indexed by person, columns :data:`REFERENCE_COVARIATES` (float).

    Notes
    -----
    With :math:`r` the reference month and :math:`H` = ``months``: ``ref_in_services``
    (in services, not openly unemployed, at :math:`r`), ``ref_log_duration``
    :math:`=\log(1 + d_r)` and ``ref_long_term`` :math:`= 1[d_r \ge 12]` of the spell
    length :math:`d_r`, ``ref_on_era`` (a fund member within the first
    :data:`~evaluation.sources.trials.ERA_MONTHS` months of the spell, i.e. drawing the
    earnings-related allowance), ``ref_under30``, and the counts of months
    :math:`r-H, \dots, r-1` spent employed, unemployed and on the labour-market subsidy
    (``lms_cost > 0``: the benefit days). Missing history months count as zero.
    ``local_unemployment_rate`` is the municipality's mean rate over the same months.
    """
    _check_columns(data, SOURCE_COLUMNS, "the reference-month covariates")
    first = int(data["t"].min())
    if reference - months < first:
        raise CohortError(f"the reference month t = {reference} has only {reference - first} "
                          f"months of history in the data (t >= {first}); the covariates need "
                          f"{months}. Use a later reference month or a longer extract.")
    at = _rows_at(data, reference)
    history = data[(data["t"] < reference) & (data["t"] >= reference - months)]
    counts = pd.DataFrame({
        "months_employed_12": history["employed"].to_numpy() > 0,
        "months_unemployed_12": history["unemployed"].to_numpy() > 0,
        "months_on_subsidy_12": history["lms_cost"].to_numpy() > 0,
        "person": history["person"].to_numpy()}).groupby("person").sum()
    duration = at["unemployment_duration"].to_numpy(float)
    out = pd.DataFrame(index=at.index)
    out["ref_in_services"] = (at["state"].astype(str) == "services").to_numpy(float)
    out["ref_log_duration"] = np.log1p(duration)
    out["ref_long_term"] = (duration >= 12).astype(float)
    out["ref_on_era"] = (at["era_member"].to_numpy(bool) & (duration < ERA_MONTHS)).astype(float)
    out["ref_under30"] = (at["age"].to_numpy() < 30).astype(float)
    out = out.join(counts.astype(float)).fillna(0.0)
    local = at["municipality"].astype(str).map(rates)
    if local.isna().any():
        absent = sorted(set(at["municipality"].astype(str)[local.isna()]))
        raise CohortError(f"the municipal panel lacks the municipalities {absent[:5]} of the "
                          "jobseeker data; both files must cover the same municipalities.")
    out["local_unemployment_rate"] = local.to_numpy(float)
    return out[list(REFERENCE_COVARIATES)]


def add_reference_covariates(data: pd.DataFrame, reference: int, municipal: pd.DataFrame,
                             months: int = HISTORY_MONTHS) -> pd.DataFrame:
    """Return ``data`` with the :data:`REFERENCE_COVARIATES` columns (constant per person).

    Persons not observed in the reference month get NaN. ``data`` is not modified.
    """
    covariates = reference_covariates(data, reference, local_rates(municipal, reference, months),
                                      months)
    rows = covariates.reindex(data["person"].to_numpy())
    out = data.copy()
    for name in REFERENCE_COVARIATES:
        out[name] = rows[name].to_numpy(np.float32)
    return out


def target_cohort(data: pd.DataFrame, reference: int, wave_number: int) -> pd.Index:
    """Persons who meet wave ``wave_number``'s target rule in month ``reference``.

    The rule is :func:`~evaluation.sources.trials.in_target_group`, applied to the state,
    spell, fund membership, age and immigrant background of the reference month.
    """
    _check_columns(data, ("person", "t", "state", "unemployment_duration", "era_member",
                          "age", "immigrant"), "the target-group rule")
    at = _rows_at(data, reference)
    state = at["state"].astype(str)
    mask = in_target_group(wave_number, state.isin(["unemployed", "services"]).to_numpy(),
                           at["unemployment_duration"].to_numpy(), at["era_member"].to_numpy(),
                           at["age"].to_numpy(), at["immigrant"].to_numpy())
    return at.index[mask]
