"""Unit weights in every DiD estimator.

Matched samples reach the estimators as unit weights (``Panel(..., weights=...)``). Integer
weights must act as frequency weights: weighting unit ``i`` by ``w_i`` gives the point
estimates of the data set in which unit ``i`` appears ``w_i`` times under fresh unit ids.
Multiplying all weights by a constant must not change anything either. Standard errors
differ between the two (the replicated copies are separate clusters), so only point
estimates are compared, plus sanity checks of the weighted standard errors.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from _builders import staggered_panel

from evaluation import Panel
from evaluation.estimators import CallawaySantAnna
from evaluation.estimators.did import TwoWayFixedEffects
from evaluation.estimators.imputation import ImputationDiD, TwoStageDiD
from evaluation.estimators.sun_abraham import SunAbraham
from evaluation.simulate import simulate_staggered

ATOL = 1e-8
SCALE = 2.5


def _with_weights(data: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Drop the simulator's weight column; add integer unit weights ``w`` in {1, 2, 3}."""
    data = data.drop(columns="weight").reset_index(drop=True)
    rng = np.random.default_rng(seed)
    units = np.unique(data["unit"])
    w = pd.Series(rng.integers(1, 4, units.size), index=units)
    data["w"] = w.loc[data["unit"]].to_numpy().astype(float)
    # a time-varying covariate (the imputation estimators reject time-invariant ones)
    data["z"] = rng.standard_normal(len(data))
    data["y"] += 0.5 * data["z"]
    return data


@pytest.fixture(scope="module")
def balanced():
    sim = simulate_staggered(n_units=240, n_periods=7, cohorts=(3, 5, 6), never_share=0.3,
                             dynamic=0.4, cohort_effects=(2.0, 1.0, 0.5), unit_heterogeneity=0.5,
                             covariate_selection=0.8, covariate_trend=0.3, seed=21)
    return _with_weights(sim.data, seed=5)


@pytest.fixture(scope="module")
def unbalanced():
    sim = simulate_staggered(n_units=240, n_periods=7, cohorts=(3, 5, 6), never_share=0.3,
                             dynamic=0.4, cohort_effects=(2.0, 1.0, 0.5), unit_heterogeneity=0.5,
                             missing=0.15, seed=22)
    return _with_weights(sim.data, seed=6)


def replicate(data: pd.DataFrame) -> pd.DataFrame:
    """Repeat every unit ``w`` times under fresh unit ids (weights dropped)."""
    units = data.groupby("unit", sort=True)["w"].first()
    copies = units.astype(int)
    new_ids = pd.DataFrame({"unit": np.repeat(units.index.to_numpy(), copies.to_numpy())})
    new_ids["new_unit"] = np.arange(1, len(new_ids) + 1)
    out = data.merge(new_ids, on="unit", how="inner", validate="many_to_many")
    out = out.drop(columns=["unit", "w"]).rename(columns={"new_unit": "unit"})
    assert len(out) == int((data["w"]).sum())
    return out.sort_values(["unit", "time"]).reset_index(drop=True)


def scaled(data: pd.DataFrame, factor: float = SCALE) -> pd.DataFrame:
    out = data.copy()
    out["w"] = out["w"] * factor
    return out


def make_panel(data: pd.DataFrame, covariates=(), weighted=True) -> Panel:
    return staggered_panel(data, covariates=list(covariates),
                           weights="w" if weighted else None)


def _table_estimates(table: pd.DataFrame, prefix: str) -> pd.Series:
    return pd.Series(table["estimate"].to_numpy(dtype=float),
                     index=[f"{prefix}:{term}" for term in table["term"]])


def point_estimates(result) -> pd.Series:
    """Every point estimate of a result: its table rows and the overall effect (if any)."""
    parts = [_table_estimates(result.table, "table")]
    overall = getattr(result, "overall", None)
    if overall is not None and len(overall):
        parts.append(_table_estimates(overall, "overall"))
    cohorts = getattr(result, "cohort_effects", None)
    if cohorts is not None and len(cohorts):  # Sun-Abraham: cohort effects and shares
        keys = [f"{g}/{e}" for g, e in zip(cohorts["cohort"], cohorts["event_time"],
                                              strict=True)]
        parts.append(pd.Series(cohorts["estimate"].to_numpy(), index=[f"delta:{k}" for k in keys]))
        parts.append(pd.Series(cohorts["weight"].to_numpy(), index=[f"share:{k}" for k in keys]))
    return pd.concat(parts)


def cs_results(options: CallawaySantAnna, panel: Panel) -> list:
    fit = options.fit(panel)
    return [fit, fit.aggregate("event"), fit.aggregate("simple"), fit.aggregate("group")]


def cs_estimates(options: CallawaySantAnna, panel: Panel) -> pd.Series:
    fit, *aggregations = cs_results(options, panel)
    group_time = pd.Series(fit.table["estimate"].to_numpy(dtype=float),
                           index=[f"gt:{g}/{t}" for g, t in zip(fit.table["group"],
                                                                fit.table["time"],
                                                                strict=True)])
    parts = [group_time]
    for kind, result in zip(("event", "simple", "group"), aggregations, strict=True):
        parts.append(point_estimates(result).add_prefix(f"{kind}/"))
    return pd.concat(parts)


CS_OPTIONS = [CallawaySantAnna(method=method, control_group=control)
              for method in ("dr", "ipw", "reg") for control in ("never", "notyet")]
CS_IDS = [f"cs-{o.method}-{o.control_group}" for o in CS_OPTIONS]

# (id, estimator, covariates) for the regression-based estimators
OTHER = [
    ("twfe-static", TwoWayFixedEffects(), ()),
    ("twfe-event", TwoWayFixedEffects(dynamic=True), ()),
    ("twfe-event-binned", TwoWayFixedEffects(dynamic=True, leads=3, lags=2), ()),
    ("sa-never", SunAbraham(), ()),
    ("sa-last", SunAbraham(control="last"), ()),
    ("sa-binned", SunAbraham(leads=3, lags=2), ()),
    ("bjs-event", ImputationDiD(), ()),
    ("bjs-cohort", ImputationDiD(by="cohort"), ()),
    ("bjs-covariate", ImputationDiD(), ("z",)),
    ("did2s-static", TwoStageDiD(), ()),
    ("did2s-event", TwoStageDiD(dynamic=True), ()),
    ("did2s-covariate", TwoStageDiD(dynamic=True), ("z",)),
]
OTHER_IDS = [name for name, _, _ in OTHER]


def assert_same(weighted: pd.Series, reference: pd.Series) -> None:
    assert list(weighted.index) == list(reference.index)
    assert weighted.notna().all()
    np.testing.assert_allclose(weighted.to_numpy(), reference.to_numpy(), rtol=0, atol=ATOL)


# --- Callaway and Sant'Anna -------------------------------------------------------------

@pytest.mark.parametrize("options", CS_OPTIONS, ids=CS_IDS)
def test_cs_integer_weights_equal_replicated_units(balanced, options):
    weighted = cs_estimates(options, make_panel(balanced, ["x"]))
    replicated = cs_estimates(options, make_panel(replicate(balanced), ["x"], weighted=False))
    assert_same(weighted, replicated)


@pytest.mark.parametrize("options", CS_OPTIONS, ids=CS_IDS)
def test_cs_weights_are_scale_invariant(balanced, options):
    assert_same(cs_estimates(options, make_panel(scaled(balanced), ["x"])),
                cs_estimates(options, make_panel(balanced, ["x"])))


@pytest.mark.parametrize("options", CS_OPTIONS, ids=CS_IDS)
def test_cs_weighted_standard_errors_are_finite_and_positive(balanced, options):
    panel = make_panel(balanced, ["x"])
    fit, *aggregations = cs_results(options, panel)
    reference = fit.table["estimate"] == 0  # universal base cells have no SE
    se = fit.table.loc[~reference, "std_error"].to_numpy()
    assert np.isfinite(se).all() and (se > 0).all()
    for result in aggregations:
        for table in (result.table, result.overall):
            if table is None or not len(table):
                continue
            se = table["std_error"].to_numpy()
            assert np.isfinite(se).all() and (se > 0).all()
    # the weights matter: unweighted estimates differ
    unweighted = cs_estimates(options, make_panel(balanced, ["x"], weighted=False))
    assert np.abs(unweighted.to_numpy()
                  - cs_estimates(options, panel).to_numpy()).max() > 1e-3


def test_cs_weighted_standard_errors_are_scale_invariant(balanced):
    options = CallawaySantAnna(method="dr", control_group="notyet")
    a = options.fit(make_panel(balanced, ["x"])).aggregate("event").table
    b = options.fit(make_panel(scaled(balanced), ["x"])).aggregate("event").table
    np.testing.assert_allclose(a["std_error"], b["std_error"], rtol=1e-8)


# --- TWFE, Sun-Abraham, imputation and two-stage ----------------------------------------

def fit_estimates(estimator, data: pd.DataFrame, covariates=(), weighted=True) -> pd.Series:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. units treated in every observed period
        return point_estimates(estimator.fit(make_panel(data, covariates, weighted)))


@pytest.mark.parametrize("name, estimator, covariates", OTHER, ids=OTHER_IDS)
@pytest.mark.parametrize("sample", ["balanced", "unbalanced"])
def test_integer_weights_equal_replicated_units(request, sample, name, estimator, covariates):
    data = request.getfixturevalue(sample)
    assert_same(fit_estimates(estimator, data, covariates),
                fit_estimates(estimator, replicate(data), covariates, weighted=False))


@pytest.mark.parametrize("name, estimator, covariates", OTHER, ids=OTHER_IDS)
@pytest.mark.parametrize("sample", ["balanced", "unbalanced"])
def test_weights_are_scale_invariant(request, sample, name, estimator, covariates):
    data = request.getfixturevalue(sample)
    assert_same(fit_estimates(estimator, scaled(data), covariates),
                fit_estimates(estimator, data, covariates))


@pytest.mark.parametrize("name, estimator, covariates", OTHER, ids=OTHER_IDS)
def test_weighted_standard_errors_are_finite_and_scale_invariant(balanced, name, estimator,
                                                                 covariates):
    a = estimator.fit(make_panel(balanced, covariates))
    b = estimator.fit(make_panel(scaled(balanced), covariates))
    for table_a, table_b in ((a.table, b.table), (a.overall, b.overall)):
        if table_a is None or not len(table_a):
            continue
        se = table_a["std_error"].to_numpy()
        assert np.isfinite(se).all() and (se > 0).all()
        np.testing.assert_allclose(se, table_b["std_error"].to_numpy(), rtol=1e-8)
    # the weights matter: unweighted estimates differ
    unweighted = fit_estimates(estimator, balanced, covariates, weighted=False)
    assert np.abs(unweighted.to_numpy() - point_estimates(a).to_numpy()).max() > 1e-3


# --- Sun-Abraham shares ------------------------------------------------------------------

def test_sun_abraham_shares_are_weighted_cohort_shares(unbalanced):
    sa = SunAbraham().fit(make_panel(unbalanced))
    data = unbalanced[unbalanced["cohort"] > 0].assign(
        event_time=lambda d: d["time"] - d["cohort"])
    mass = data.groupby(["event_time", "cohort"])["w"].sum()
    expected = mass / mass.groupby(level="event_time").transform("sum")
    shares = sa.cohort_effects.set_index(["event_time", "cohort"])["weight"]
    np.testing.assert_allclose(shares, expected.loc[shares.index], rtol=1e-12)
    unweighted = SunAbraham().fit(make_panel(unbalanced, weighted=False)).cohort_effects
    assert np.abs(unweighted["weight"] - sa.cohort_effects["weight"]).max() > 1e-3


def test_sun_abraham_weighted_equals_callaway_santanna_with_cohort_constant_weights(balanced):
    """With weights constant within cohorts, SA's share influence functions are uncorrelated
    with the cohort effects' scores (single-unit clusters), so the SEs equal CS's."""
    data = balanced.copy()
    data["w"] = data["cohort"].map({0: 1.0, 3: 3.0, 5: 2.0, 6: 0.5})
    panel = make_panel(data)
    sa = SunAbraham().fit(panel).table.set_index("event_time")
    cs = (CallawaySantAnna(method="reg", base_period="universal").fit(panel)
          .aggregate("event").table.set_index("event_time").loc[sa.index])
    np.testing.assert_allclose(sa["estimate"], cs["estimate"], atol=1e-8)
    np.testing.assert_allclose(sa["std_error"], cs["std_error"], atol=1e-8)


def test_sun_abraham_weighted_point_estimates_equal_callaway_santanna(balanced):
    panel = make_panel(balanced)
    sa = SunAbraham().fit(panel)
    cs = CallawaySantAnna(method="reg", base_period="universal").fit(panel).aggregate("event")
    table = cs.table.set_index("event_time").loc[sa.table["event_time"]]
    np.testing.assert_allclose(sa.table["estimate"], table["estimate"], atol=1e-8)
    np.testing.assert_allclose(sa.table["std_error"], table["std_error"], rtol=0.05)
    assert sa.overall["estimate"].iat[0] == pytest.approx(cs.overall["estimate"].iat[0],
                                                          abs=1e-8)
