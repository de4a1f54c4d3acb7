"""Imputation (BJS), two-stage (did2s) and Sun-Abraham against pyfixest and each other."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _builders import staggered_panel

from evaluation.errors import InvalidOptionError, PanelError
from evaluation.estimators import CallawaySantAnna
from evaluation.estimators.did import TwoWayFixedEffects
from evaluation.estimators.imputation import ImputationDiD, TwoStageDiD
from evaluation.estimators.sun_abraham import SunAbraham
from evaluation.simulate import simulate_staggered

REFERENCE = Path(__file__).parent / "reference"
DID2S = json.loads((REFERENCE / "did2s_pyfixest.json").read_text())
SA = json.loads((REFERENCE / "sa_pyfixest.json").read_text())
DATA = pd.read_csv(REFERENCE / "twfe_panel.csv")


def reference_panel(cluster=None, weights=None):
    return staggered_panel(DATA, cluster=cluster, weights=weights)


@pytest.mark.parametrize("spec", ["static", "dynamic", "dynamic_binned"])
@pytest.mark.parametrize("cluster", ["unit", "cluster"])
@pytest.mark.parametrize("weighted", [False, True])
def test_two_stage_matches_pyfixest(spec, cluster, weighted):
    key = f"{spec}/{cluster}" + ("/weighted" if weighted else "")
    reference = DID2S[key]
    panel = reference_panel(None if cluster == "unit" else "cluster",
                            "weight" if weighted else None)
    binned = spec == "dynamic_binned"
    fit = TwoStageDiD(dynamic=spec != "static", leads=4 if binned else None,
                      lags=3 if binned else None).fit(panel)
    np.testing.assert_allclose(fit.table["estimate"], reference["estimate"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(fit.table["std_error"], reference["std_error"], rtol=0,
                               atol=1e-6)


@pytest.mark.parametrize("weighted", [False, True])
def test_imputation_point_estimates_equal_two_stage(weighted):
    panel = reference_panel(weights="weight" if weighted else None)
    bjs = ImputationDiD().fit(panel)
    static = TwoStageDiD().fit(panel).table["estimate"].iat[0]
    assert bjs.overall["estimate"].iat[0] == pytest.approx(static, abs=1e-10)
    dynamic = TwoStageDiD(dynamic=True).fit(panel).table.set_index("event_time")["estimate"]
    event = bjs.table.set_index("event_time")["estimate"]
    np.testing.assert_allclose(event, dynamic.loc[event.index], atol=1e-10)
    imputed = DID2S["imputation/weighted" if weighted else "imputation"]
    assert bjs.overall["estimate"].iat[0] == pytest.approx(imputed["att"], abs=1e-6)
    np.testing.assert_allclose(event.loc[imputed["rel_year"]], imputed["att_by_rel_year"],
                               rtol=0, atol=1e-6)


@pytest.mark.parametrize("cluster", ["unit", "cluster"])
@pytest.mark.parametrize("ssc", ["none", "small_sample"])
def test_sun_abraham_matches_pyfixest_saturated_event_study(cluster, ssc):
    reference = SA[f"saturated/{cluster}/{ssc}"]
    panel = reference_panel(None if cluster == "unit" else "cluster")
    fit = SunAbraham(small_sample=ssc == "small_sample", share_uncertainty=False).fit(panel)
    cohorts = fit.cohort_effects.set_index(["cohort", "event_time"])
    order = list(zip(reference["cohort"], reference["rel_time"], strict=True))
    np.testing.assert_allclose(cohorts.loc[order, "estimate"], reference["estimate"], rtol=0,
                               atol=1e-6)
    np.testing.assert_allclose(cohorts.loc[order, "std_error"], reference["std_error"],
                               rtol=0, atol=1e-6)
    aggregate = reference["aggregate"]
    event = fit.table.set_index("event_time")
    np.testing.assert_allclose(event.loc[aggregate["rel_time"], "estimate"],
                               aggregate["estimate"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(event.loc[aggregate["rel_time"], "std_error"],
                               aggregate["std_error"], rtol=0, atol=1e-6)


def test_single_adoption_homogeneous_effects_all_estimators_coincide():
    sim = simulate_staggered(n_units=1000, n_periods=8, cohorts=(5,), effect=1.5, seed=17)
    panel = staggered_panel(sim.data)
    twfe = TwoWayFixedEffects().fit(panel).table["estimate"].iat[0]
    bjs = ImputationDiD().fit(panel).overall["estimate"].iat[0]
    did2s = TwoStageDiD().fit(panel).table["estimate"].iat[0]
    assert bjs == pytest.approx(twfe, abs=1e-8) and did2s == pytest.approx(twfe, abs=1e-8)
    dynamic = TwoWayFixedEffects(dynamic=True).fit(panel).table.set_index("event_time")
    sa = SunAbraham().fit(panel).table.set_index("event_time")
    cs = CallawaySantAnna(method="reg", base_period="universal").fit(panel)
    event = cs.aggregate("event").table.set_index("event_time")
    np.testing.assert_allclose(sa["estimate"], dynamic["estimate"], atol=1e-8)
    np.testing.assert_allclose(event.loc[sa.index, "estimate"], sa["estimate"], atol=1e-8)
    # all five are close to the homogeneous truth
    assert abs(twfe - 1.5) < 4 * TwoWayFixedEffects().fit(panel).table["std_error"].iat[0]


def test_robust_estimators_recover_heterogeneous_truth(heterogeneous_staggered):
    sim = heterogeneous_staggered
    panel = staggered_panel(sim.data)
    truth = sim.true_effects("y", kind="event").set_index("event_time")["att"]
    for result in (ImputationDiD().fit(panel), TwoStageDiD(dynamic=True).fit(panel)):
        table = result.table.set_index("event_time")
        post = table[table.index >= 0]
        z = (post["estimate"] - truth.reindex(post.index)) / post["std_error"]
        assert np.abs(z).max() < 3, result.estimator


def test_imputation_pretrend_test_detects_a_violation():
    clean = simulate_staggered(n_units=3000, n_periods=10, cohorts=(5, 7), seed=4)
    tilted = simulate_staggered(n_units=3000, n_periods=10, cohorts=(5, 7), pretrend=0.3,
                                seed=4)
    p_values = []
    for sim in (clean, tilted):
        panel = staggered_panel(sim.data)
        test = ImputationDiD(pretrend_leads=3).fit(panel).pretest
        assert test.df == 3 and test.as_text().startswith("Wald chi2(3)")
        p_values.append(test.p_value)
    assert p_values[0] > 0.05 and p_values[1] < 0.001


def test_imputation_errors():
    everyone = DATA[DATA["cohort"] > 0]
    panel = staggered_panel(everyone)
    with pytest.raises(PanelError, match="no untreated observation"):
        ImputationDiD().fit(panel)


COVARIATE_DID2S = json.loads((REFERENCE / "did2s_covariates_pyfixest.json").read_text())


@pytest.mark.parametrize("spec", ["static", "dynamic"])
@pytest.mark.parametrize("cluster", ["unit", "cluster"])
def test_two_stage_with_a_covariate_matches_pyfixest(spec, cluster):
    reference = COVARIATE_DID2S[f"{spec}/{cluster}"]
    panel = staggered_panel(DATA, covariates=["z"],
                            cluster=None if cluster == "unit" else "cluster")
    fit = TwoStageDiD(dynamic=spec == "dynamic").fit(panel)
    np.testing.assert_allclose(fit.table["estimate"], reference["estimate"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(fit.table["std_error"], reference["std_error"], rtol=0,
                               atol=1e-6)
    bjs = ImputationDiD().fit(panel)
    if spec == "static":
        assert bjs.overall["estimate"].iat[0] == pytest.approx(reference["estimate"][0],
                                                               abs=1e-8)


def test_time_invariant_covariates_are_rejected():
    panel = staggered_panel(DATA, covariates=["x"])
    with pytest.raises(PanelError, match="collinear with the unit and period effects"):
        ImputationDiD().fit(panel)


def test_imputation_by_cohort_averages_to_the_overall_effect():
    panel = reference_panel()
    by_cohort = ImputationDiD(by="cohort").fit(panel)
    assert by_cohort.aggregation == "group"
    assert by_cohort.table["group"].tolist() == [3, 5, 7]
    treated = DATA[DATA["treated"] == 1]
    shares = treated.groupby("cohort").size() / len(treated)
    overall = float(shares.to_numpy() @ by_cohort.table["estimate"].to_numpy())
    assert overall == pytest.approx(by_cohort.overall["estimate"].iat[0], abs=1e-10)
    assert (by_cohort.table["std_error"] > 0).all()


def test_user_estimands_with_any_weights():
    panel = reference_panel()
    status = panel.status_wide()[panel.unit_codes, panel.time_codes].astype(float)
    first_cohort = status * (panel.data["cohort"].to_numpy() == 3)
    fit = ImputationDiD().fit(panel, estimands={"all treated": status,
                                                "cohort 3": first_cohort})
    rows = fit.table.set_index("term")
    assert rows.loc["all treated", "estimate"] == pytest.approx(
        fit.overall["estimate"].iat[0], abs=1e-12)
    assert rows.loc["all treated", "std_error"] == pytest.approx(
        fit.overall["std_error"].iat[0], abs=1e-12)
    by_cohort = ImputationDiD(by="cohort").fit(panel).table.set_index("group")
    assert rows.loc["cohort 3", "estimate"] == pytest.approx(by_cohort.loc[3, "estimate"],
                                                            abs=1e-12)
    with pytest.raises(InvalidOptionError, match="treated observations only"):
        ImputationDiD().fit(panel, estimands={"bad": np.ones(panel.n_obs)})
    with pytest.raises(InvalidOptionError, match="one finite, non-negative weight per panel row"):
        ImputationDiD().fit(panel, estimands={"short": np.ones(3)})
