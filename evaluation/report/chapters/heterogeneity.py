"""Chapter 4 (heterogeneity): effects by target subgroup and by trial area.

The effects by wave are in :mod:`evaluation.report.chapters.waves`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from evaluation.inference.clusters import MIN_TREATED_CLUSTERS
from evaluation.report.chapters.common import EFFECT_COLUMNS, overall_row
from evaluation.report.chapters.data import target_group_counts
from evaluation.report.disclosure import SUPPRESSED, disclose
from evaluation.report.study import Study

#: Target-group subgroups of the individual-level analysis (person-level rules).
SUBGROUPS = {"under 30": "under30", "immigrants": "immigrant",
             "without earnings-related allowance": "no_era"}


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
                   truth_population: str | None, **options: str) -> dict:
    rows = study.jobseekers["person"].isin(persons)
    result = study.headline_estimator(**options).fit(study.jobseeker_panel(outcome, rows))
    overall = overall_row(result.aggregate("simple").to_frame())
    sample = study.jobseekers.loc[rows].drop_duplicates("person")
    truth = (study.true_overall("jobseekers", outcome, truth_population)
             if truth_population else None)
    return {"group": label, "n_treated": int((sample["cohort"] > 0).sum()),
            "n_comparison": int((sample["cohort"] == 0).sum()),
            **{c: float(overall[c]) for c in EFFECT_COLUMNS},
            "true_att": np.nan if truth is None else truth}


def publish_counts(table: pd.DataFrame, counts: pd.DataFrame, small: pd.Series
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
    return publish_counts(table, pd.DataFrame(published).T, pd.Series(small))


def area_effects(study: Study, outcome: str) -> pd.DataFrame:
    """Overall CS effect in each trial area against all comparison persons.

    The person counts are those of :func:`target_group_counts` (all areas, the comparison
    persons and the total disclosed as one table, as published in chapter 1), so no hidden
    area count can be recovered from the total; areas with fewer persons than the threshold
    get no estimate. An area whose trial persons live in fewer than
    :data:`~evaluation.inference.clusters.MIN_TREATED_CLUSTERS` municipalities (clusters)
    gets its estimate only, without standard error, p-value or interval (``inference`` says
    why): a clustered standard error resting on one or a few clusters over-states precision.
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
        clusters = sample.loc[members.index, "municipality"].nunique()
        few = clusters < MIN_TREATED_CLUSTERS
        row = _subset_effect(study, outcome, members.index.append(controls), label,
                             str(area), **({"se": "analytic"} if few else {}))
        if few and np.isfinite(row["estimate"]):  # too few clusters for any inference
            row.update(std_error=np.nan, p_value=np.nan, ci_lower=np.nan, ci_upper=np.nan)
            row["inference"] = (f"estimate only: {clusters} trial "
                                f"municipalit{'y' if clusters == 1 else 'ies'} (clusters); "
                                f"clustered inference needs {MIN_TREATED_CLUSTERS} or more")
        rows.append(row)
    table = pd.DataFrame(rows).assign(outcome=outcome)
    counts = pd.DataFrame(published, index=["n_treated", "n_comparison"]).T
    out = publish_counts(table, counts, pd.Series(small))
    out["inference"] = table.get("inference", pd.Series(index=table.index, dtype=object)
                                 ).fillna("").to_numpy()
    return out
