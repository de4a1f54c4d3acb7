"""The computations behind the report chapters, one function per table.

The notebooks only display and plot what these functions return, so every table of the
report can be recomputed (and tested) without running a notebook. Counts computed from
individual-level data leave these functions only through
:func:`evaluation.disclosure.disclose`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from evaluation.disclosure import SUPPRESSED, DisclosedTable, disclose
from evaluation.errors import EvaluationWarning
from evaluation.estimators.callaway_santanna import CallawaySantAnna
from evaluation.estimators.compare import EstimatorComparison, compare_estimators
from evaluation.estimators.imputation import ImputationDiD
from evaluation.matching import MatchResult, match
from evaluation.study import (
    MUNICIPAL_FILE,
    MUNICIPAL_OUTCOME,
    SERVICE_OUTCOMES,
    EstimateSpec,
    Study,
)

#: Estimators of the overall-effect table (SA reports event-time effects only).
OVERALL_ESTIMATORS = ("cs", "bjs", "twfe")
#: Estimators of the event-study figures.
EVENT_ESTIMATORS = ("cs", "sa", "bjs", "twfe")
#: Target-group subgroups of the individual-level analysis (person-level rules).
SUBGROUPS = {"under 30": "under30", "immigrants": "immigrant",
             "without earnings-related allowance": "no_era"}
EFFECT_COLUMNS = ["estimate", "std_error", "ci_lower", "ci_upper", "p_value"]


def _quiet(function, *args, **kwargs):
    """Call ``function`` with the package's informational warnings silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EvaluationWarning)
        return function(*args, **kwargs)


def _overall_row(table: pd.DataFrame) -> pd.Series:
    rows = table[table["term"].astype(str).isin(["overall", "ATT"])]
    return (rows if len(rows) else table).iloc[-1]


# ------------------------------------------------------------------------ chapter 3
def overall_specs(study: Study, estimators: Sequence[str] = OVERALL_ESTIMATORS
                  ) -> list[EstimateSpec]:
    """Specs of the overall-effect table: municipal rate and each individual outcome."""
    specs = []
    targets = [study.municipal_spec()] + [study.jobseeker_spec(o) for o in study.outcomes]
    for base in targets:
        for name in estimators:
            specs.append(base.with_options(estimator=name, aggregate="simple"))
    return specs


def overall_effects(study: Study, estimators: Sequence[str] = OVERALL_ESTIMATORS
                    ) -> pd.DataFrame:
    """Overall ATT of every outcome and estimator, with the command that reproduces it.

    Returns
    -------
    pandas.DataFrame
        ``level, outcome, estimator, estimate, std_error, ci_lower, ci_upper, p_value``,
        ``true_att`` (synthetic data; NaN otherwise) and ``command``.
    """
    rows = []
    for spec in overall_specs(study, estimators):
        row = _overall_row(_quiet(spec.run, study.data_dir))
        level = "municipalities" if spec.file == MUNICIPAL_FILE else "jobseekers"
        truth = study.true_overall(level, spec.outcome)
        rows.append({"level": level, "outcome": spec.outcome,
                     "estimator": spec.options["estimator"],
                     **{c: float(row[c]) for c in EFFECT_COLUMNS},
                     "true_att": np.nan if truth is None else truth,
                     "command": spec.command(study.data_dir)})
    return pd.DataFrame(rows)


def event_study(study: Study, outcome: str, level: str = "jobseekers",
                estimators: Sequence[str] = EVENT_ESTIMATORS, min_e: int = -24,
                max_e: int = 45) -> EstimatorComparison:
    """Event-time effects of several estimators on the same panel."""
    return _quiet(compare_estimators, study.panel(level, outcome), estimators, min_e=min_e,
                  max_e=max_e)


def pretrend_tests(study: Study, outcomes: Sequence[str] | None = None) -> pd.DataFrame:
    """Joint tests of no pre-trends: CS Wald test of all pre-period ATT(g,t) and BJS leads.

    The CS test uses the varying base period (consecutive-month placebo effects); the BJS
    test regresses untreated outcomes on 12 lead indicators with the fixed effects.
    """
    rows = []
    targets = [("municipalities", MUNICIPAL_OUTCOME)] + [
        ("jobseekers", o) for o in (outcomes or study.outcomes)]
    for level, outcome in targets:
        panel = study.panel(level, outcome)
        cs = _quiet(CallawaySantAnna().fit, panel).pretest
        bjs = _quiet(ImputationDiD(pretrend_leads=12).fit, panel).info.get("pre-trend test")
        rows.append({"level": level, "outcome": outcome,
                     "cs_wald_test": (f"Wald chi2({cs['df']}) = {cs['statistic']:.3f}, "
                                      f"p = {cs['p_value']:.4f}") if cs else
                     "not computable: the clustered covariance of the pre-period ATT(g,t) "
                     "is singular (fewer clusters than pre-periods)",
                     "cs_p_value": cs["p_value"] if cs else np.nan,
                     "bjs_leads_test": bjs})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------ chapter 4
def person_groups(study: Study) -> pd.DataFrame:
    """Person-level subgroup indicators of the target group (from the people table)."""
    people = study.people.set_index("person")
    groups = pd.DataFrame(index=people.index)
    groups["under30"] = people["under30"].astype(bool)
    groups["immigrant"] = people["immigrant"].astype(bool)
    groups["no_era"] = ~people["era_entitled"].astype(bool)
    groups["area"] = people["area"]
    return groups


def _subset_effect(study: Study, outcome: str, persons: pd.Index, label: str,
                   truth_population: str | None) -> dict:
    rows = study.jobseekers["person"].isin(persons)
    result = _quiet(CallawaySantAnna().fit, study.jobseeker_panel(outcome, rows))
    overall = _overall_row(result.aggregate("simple").to_frame())
    sample = study.jobseekers.loc[rows].drop_duplicates("person")
    truth = (study.true_overall("jobseekers", outcome, truth_population)
             if truth_population else None)
    return {"group": label, "n_treated": int((sample["cohort"] > 0).sum()),
            "n_comparison": int((sample["cohort"] == 0).sum()),
            **{c: float(overall[c]) for c in EFFECT_COLUMNS},
            "true_att": np.nan if truth is None else truth}


def _publish_counts(table: pd.DataFrame, counts: pd.DataFrame, small: pd.Series
                    ) -> pd.DataFrame:
    """Replace the count columns by their disclosed values; hide estimates of small groups.

    ``counts`` holds the published ``n_treated`` / ``n_comparison`` of every group (``..``
    where hidden) and ``small`` flags the groups with fewer persons than the threshold,
    whose estimates are not published either.
    """
    out = table.copy()
    out[["n_treated", "n_comparison"]] = counts.loc[out["group"]].to_numpy()
    hidden = small.loc[out["group"]].to_numpy()
    estimates = [*EFFECT_COLUMNS, "true_att"]
    out[estimates] = out[estimates].astype(object)
    out.loc[hidden, estimates] = SUPPRESSED
    return out[["group", "n_treated", "n_comparison", *estimates, "outcome"]]


def subgroup_effects(study: Study, outcome: str) -> pd.DataFrame:
    """Overall CS effect for each target subgroup, comparison persons of the same subgroup.

    Notes
    -----
    The counts of each subgroup are disclosed together with its complement and the whole
    group as one two-way table (subgroup / rest x trial / comparison, with margins), so a
    hidden subgroup count cannot be recovered as whole group minus the rest, and the rest
    (e.g. persons aged 30 or over) is protected as well. Estimates of subgroups with fewer
    persons than the threshold are not published.
    """
    groups = person_groups(study)
    whole = "whole target group"
    rows = [_subset_effect(study, outcome, groups.index, whole, "treated")]
    published, small = {}, {}
    for label, column in SUBGROUPS.items():
        row = _subset_effect(study, outcome, groups.index[groups[column]], label, column)
        rows.append(row)
        totals = (rows[0]["n_treated"], rows[0]["n_comparison"])
        counts = pd.DataFrame([[row["n_treated"], row["n_comparison"]],
                               [totals[0] - row["n_treated"], totals[1] - row["n_comparison"]]],
                              index=[label, "rest"], columns=["n_treated", "n_comparison"])
        disclosed = disclose(counts, threshold=study.threshold)
        published[label] = disclosed.table.loc[label, ["n_treated", "n_comparison"]]
        published[whole] = disclosed.table.loc["Total", ["n_treated", "n_comparison"]]
        small[label] = bool(disclosed.primary.loc[label, ["n_treated", "n_comparison"]].any())
        small[whole] = bool(disclosed.primary.loc["Total", ["n_treated", "n_comparison"]].any())
    table = pd.DataFrame(rows).assign(outcome=outcome)
    return _publish_counts(table, pd.DataFrame(published).T, pd.Series(small))


def area_effects(study: Study, outcome: str) -> pd.DataFrame:
    """Overall CS effect in each trial area against all comparison persons.

    The person counts are those of :func:`target_group_counts` (all areas, the comparison
    persons and the total disclosed as one table, as published in chapter 1), so no hidden
    area count can be recovered from the total; areas with fewer persons than the threshold
    get no estimate.
    """
    groups = person_groups(study)
    sample = study.jobseekers.drop_duplicates("person").set_index("person")
    controls = sample.index[sample["cohort"] == 0]
    treated_areas = groups.loc[sample.index[sample["cohort"] > 0], "area"]
    names = study.areas.set_index("area")["area_name"] if "area_name" in study.areas else {}
    disclosed = target_group_counts(study)
    rows, published, small = [], {}, {}
    for area, members in treated_areas.groupby(treated_areas, observed=True):
        label = f"{area} {names.get(area, '')}".strip()
        published[label] = [disclosed.table.loc["persons", str(area)],
                            disclosed.table.loc["persons", "comparison"]]
        small[label] = bool(disclosed.primary.loc["persons", str(area)])
        if small[label]:  # too few people to estimate or publish
            rows.append({"group": label, **{c: np.nan for c in EFFECT_COLUMNS},
                         "true_att": np.nan})
            continue
        rows.append(_subset_effect(study, outcome, members.index.append(controls), label,
                                   str(area)))
    table = pd.DataFrame(rows).assign(outcome=outcome)
    counts = pd.DataFrame(published, index=["n_treated", "n_comparison"]).T
    return _publish_counts(table, counts, pd.Series(small))


def wave_effects(study: Study, outcome: str = MUNICIPAL_OUTCOME) -> pd.DataFrame:
    """Municipal overall CS effect of each wave in its own analysis window."""
    rows = []
    for number in (1, 2, 3):
        spec = study.municipal_spec(outcome, wave_number=number)
        row = _overall_row(_quiet(spec.run, study.data_dir))
        truth = study.true_overall("municipalities", outcome, wave_number=number)
        n = study.municipal.groupby("municipality")[f"cohort_w{number}"].first().gt(0).sum()
        rows.append({"wave": number, "municipalities": int(n),
                     **{c: float(row[c]) for c in EFFECT_COLUMNS},
                     "true_att": np.nan if truth is None else truth,
                     "command": spec.command(study.data_dir)})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------ chapter 5
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
        fit = _quiet(CallawaySantAnna().fit, study.jobseeker_panel(outcome))
        periods = {"all trial months": (np.inf, spec.command(study.data_dir)),
                   f"first {first_months} months": (first_months - 1, "")}
        for period, (max_e, command) in periods.items():
            row = _overall_row(fit.aggregate("simple", max_e=max_e).to_frame())
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


# ------------------------------------------------------------------------ chapter 1
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
    group pass through :func:`~evaluation.disclosure.disclose` (row shares); a published
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


# ------------------------------------------------------------------------ chapter 2
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


def match_people(study: Study, caliper: float = 0.2) -> MatchResult:
    """Nearest-neighbour match (with replacement, logit score, caliper) of target persons."""
    frame = person_covariates(study)
    return _quiet(match, frame, unit="person", treatment="treated",
                  covariates=list(PERSON_COVARIATES), method="nearest", distance="logit",
                  replace=True, caliper=caliper, exact=["under30", "immigrant"])


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
    return _quiet(match, frame, unit="municipality", treatment="treated",
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


# ------------------------------------------------------------------------ chapter 6
#: Time-invariant person characteristics of the covariate-adjusted CS variants.
PERSON_CONTROLS = ("under30", "immigrant", "era_member")


def robustness_table(study: Study, outcome: str, matched: MatchResult | None = None,
                     placebo_months: int = 12) -> pd.DataFrame:
    """Overall effect of ``outcome`` under alternative designs and estimators.

    Rows: the baseline (CS, never-treated, doubly robust), not-yet-treated controls, doubly
    robust, IPW and outcome regression with covariates, imputation, two-stage and static
    TWFE, the matched comparison, and a placebo trial start ``placebo_months`` earlier,
    estimated on pre-trial months only.
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
        row = _overall_row(_quiet(spec.run, study.data_dir))
        rows.append({"design": label, **{c: float(row[c]) for c in EFFECT_COLUMNS},
                     "command": spec.command(study.data_dir)})
    if matched is not None:
        panel = matched.apply(study.jobseeker_panel(
            outcome, study.jobseekers["person"].isin(matched.units.index)))
        row = _overall_row(_quiet(CallawaySantAnna().fit, panel).aggregate("simple")
                           .to_frame())
        rows.append({"design": "CS on the matched comparison (weights)",
                     **{c: float(row[c]) for c in EFFECT_COLUMNS}, "command": ""})
    rows.append({"design": f"placebo: trial start {placebo_months} months earlier",
                 **placebo_effect(study, outcome, placebo_months), "command": ""})
    table = pd.DataFrame(rows)
    table.insert(1, "outcome", outcome)
    return table


def placebo_effect(study: Study, outcome: str, months: int = 12) -> dict:
    """CS effect of a fake trial start ``months`` before the real one, pre-trial data only."""
    data = study.jobseekers
    fake = data[data["t"] < study.start].copy()
    fake["cohort"] = np.where(fake["cohort"] > 0, study.start - months, 0)
    from evaluation.panel import Panel

    panel = Panel(fake, unit="person", time="t", outcome=outcome, cohort="cohort",
                  never_treated=0, cluster="municipality")
    row = _overall_row(_quiet(CallawaySantAnna().fit, panel).aggregate("simple").to_frame())
    return {c: float(row[c]) for c in EFFECT_COLUMNS}

