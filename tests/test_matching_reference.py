"""Agreement with R's MatchIt 4.5.1 on data the project makes (tests/reference/matchit/).

The R script ``tests/reference/matchit_reference.R`` wrote one set of files per configuration:
the units (weights, subclasses, scores, matched controls), MatchIt's balance summary and its
sample sizes. Nearest-neighbour configurations there go through MatchIt's own general
matcher (``nn_matchC``) because the vectorised one in 4.5.1 ignores calipers (see the
reference README); ``robust_mahalanobis`` uses the rank covariance MatchIt computes.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evaluation.matching import match

REFERENCE = Path(__file__).parent / "reference"
CONFIGS = pd.read_csv(REFERENCE / "matchit" / "configs.csv", keep_default_na=False)
DATA = {
    "municipalities": pd.read_csv(REFERENCE / "matching_municipalities.csv"),
    "individuals": pd.read_csv(REFERENCE / "matching_individuals.csv"),
}
DISTANCES = {"glm": None, "mahalanobis": "mahalanobis",
             "robust_mahalanobis": "robust_mahalanobis", "scaled_euclidean": "scaled_euclidean"}


def _formula_terms(text: str) -> list[str]:
    return [t.strip() for t in text.replace("~", "").split("+") if t.strip()]


def _caliper(text: str) -> float | dict[str, float] | None:
    if not text:
        return None
    parts = dict(p.split("=") for p in text.split(";"))
    if list(parts) == ["distance"]:
        return float(parts["distance"])
    return {k: float(v) for k, v in parts.items()}


def _run(config: pd.Series):
    data = DATA[config["data"]]
    kwargs = {"treatment": "treated", "unit": config["id"],
              "covariates": _formula_terms(config["covariates"]), "method": config["method"]}
    if config["method"] == "nearest":
        distance = DISTANCES[config["distance"]] or config["link"]
        kwargs.update(distance=distance, ratio=int(config["ratio"]),
                      replace=config["replace"] == "TRUE", caliper=_caliper(config["caliper"]),
                      exact=_formula_terms(config["exact"]) or None,
                      mahalanobis=_formula_terms(config["mahvars"]) or None,
                      discard=config["discard"])
        if config["order"] != "data" or distance in DISTANCES.values():
            kwargs["order"] = config["order"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return match(data, **kwargs)


def _r_files(name: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    base = REFERENCE / "matchit" / name
    units = pd.read_csv(f"{base}_units.csv", keep_default_na=False, na_values=["NA"],
                        dtype={"id": str, "matched": str})
    balance = pd.read_csv(f"{base}_balance.csv").set_index("variable")
    sizes = pd.read_csv(f"{base}_nn.csv").set_index("sample")
    return units, balance, sizes


def _r_name(name: str) -> str:
    """``size_class[large]`` (ours) is ``size_classlarge`` in R."""
    return name.replace("[", "").replace("]", "")


PARAMS = [pytest.param(row, id=row["config"]) for _, row in CONFIGS.iterrows()]


@pytest.mark.parametrize("config", PARAMS)
def test_same_matched_sets_weights_and_subclasses(config):
    result = _run(config)
    r_units, _, _ = _r_files(config["config"])
    ours = result.units.assign(unit=result.units["unit"].astype(str)).set_index("unit")
    r = r_units.set_index("id").loc[ours.index]
    np.testing.assert_allclose(ours["weight"], r["weight"], rtol=0, atol=1e-12)
    if config["method"] == "nearest":
        r_sets = {t: set(m.split("|")) for t, m in r["matched"].items() if m}
        pairs = result.matches.astype({"treated_unit": str, "control_unit": str})
        our_sets = pairs.groupby("treated_unit")["control_unit"].agg(set).to_dict()
        assert our_sets == r_sets
        r_discarded = r["discarded"].astype(str).str.upper().eq("TRUE")
        assert int(result.units["discarded"].sum()) == int(r_discarded.sum())
    # subclasses: the same partition of units (labels are arbitrary)
    ours_sub = ours["subclass"].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    r_sub = r["subclass"].to_numpy(dtype=float)
    assert np.array_equal(np.isnan(ours_sub), np.isnan(r_sub))
    kept = ~np.isnan(r_sub)
    if kept.any():
        crosstab = pd.crosstab(ours_sub[kept], r_sub[kept])
        assert ((crosstab > 0).sum(axis=1) == 1).all() and ((crosstab > 0).sum(axis=0) == 1).all()


@pytest.mark.parametrize("config", PARAMS)
def test_same_balance_table_and_sample_sizes(config):
    result = _run(config)
    _, r_bal, r_sizes = _r_files(config["config"])
    table = result.balance()
    table.index = [_r_name(v) for v in table.index]
    assert list(table.index) == list(r_bal.index)
    columns = {"mean_treated_before": "all_means_treated",
               "mean_control_before": "all_means_control", "smd_before": "all_smd",
               "var_ratio_before": "all_var_ratio", "ecdf_mean_before": "all_ecdf_mean",
               "ecdf_max_before": "all_ecdf_max", "mean_treated": "matched_means_treated",
               "mean_control": "matched_means_control", "smd_after": "matched_smd",
               "var_ratio_after": "matched_var_ratio", "ecdf_mean_after": "matched_ecdf_mean",
               "ecdf_max_after": "matched_ecdf_max"}
    covariates = [v for v in table.index if v != "distance"]
    for ours, theirs in columns.items():
        np.testing.assert_allclose(table.loc[covariates, ours], r_bal.loc[covariates, theirs],
                                   rtol=1e-9, atol=1e-12, err_msg=f"{ours} vs {theirs}")
    if "distance" in table.index:  # R's glm() stops at its default tolerance
        tol = 1e-5 if config["link"] == "probit" else 1e-6
        for ours, theirs in columns.items():
            np.testing.assert_allclose(table.loc["distance", ours],
                                       r_bal.loc["distance", theirs], rtol=tol, atol=tol)
    sizes = result.sample_sizes()
    np.testing.assert_allclose(sizes[["control", "treated"]].to_numpy(),
                               r_sizes[["Control", "Treated"]].to_numpy(), rtol=1e-12)


@pytest.mark.parametrize("config", [p for p in PARAMS if p.values[0]["distance"] == "glm"])
def test_propensity_scores_agree_with_glm(config):
    result = _run(config)
    r_units, _, _ = _r_files(config["config"])
    tol = 1e-5 if config["link"] == "probit" else 1e-7
    r = r_units.set_index("id").loc[result.units["unit"].astype(str)]
    np.testing.assert_allclose(result.units["distance"], r["distance"], atol=tol)
