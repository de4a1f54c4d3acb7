import numpy as np
import pandas as pd
import pytest

from evaluation.errors import SimulationError
from evaluation.simulate import StaggeredDesign, simulate_staggered


@pytest.fixture(scope="module")
def sim():
    return simulate_staggered(n_units=3_000, n_periods=10, cohorts=(4, 6, 8), dynamic=0.25,
                              cohort_effects=(0.5, 1.0, 2.0), unit_heterogeneity=0.3,
                              covariate_selection=1.0, covariate_trend=0.2, missing=0.1,
                              n_clusters=30, seed=5)


def test_truth_is_the_mean_of_realised_effects(sim):
    y0, y1 = sim.potential_outcomes["y"]
    cohort = sim.units["cohort"].to_numpy()
    tau = y1 - y0
    gt = sim.truth[sim.truth["kind"] == "group_time"]
    for (g, t), att in gt.set_index(["group", "time"])["att"].items():
        assert att == pytest.approx(tau[cohort == g, t - 1].mean(), abs=1e-12)
    event = sim.true_effects("y", kind="event").set_index("event_time")["att"]
    e = np.arange(1, 11)[None, :] - cohort[:, None]
    treated = cohort > 0
    for k in (-3, 0, 2, 6):
        assert event[k] == pytest.approx(tau[treated][e[treated] == k].mean(), abs=1e-12)
    overall = sim.true_effects("y", kind="overall")["att"].iat[0]
    assert overall == pytest.approx(tau[treated][e[treated] >= 0].mean(), abs=1e-12)
    # realised effects carry unit heterogeneity: the truth is not the formula
    assert event[0] != pytest.approx(np.mean([0.5, 1.0, 2.0]), abs=1e-6)


def test_effects_follow_cohort_multipliers_and_dynamics():
    exact = simulate_staggered(n_units=2_000, cohorts=(4, 6), cohort_effects=(1.0, 3.0),
                               dynamic=0.5, effect=2.0, seed=1)
    gt = exact.truth[exact.truth["kind"] == "group_time"].set_index(["group", "event_time"])
    assert gt.loc[(4, 0), "att"] == pytest.approx(2.0)
    assert gt.loc[(4, 2), "att"] == pytest.approx(2.0 * (1 + 0.5 * 2))
    assert gt.loc[(6, 1), "att"] == pytest.approx(6.0 * 1.5)
    assert gt.loc[(6, -1), "att"] == 0.0
    antic = simulate_staggered(n_units=500, cohorts=(5,), anticipation=2, seed=1)
    event = antic.true_effects("y", kind="event").set_index("event_time")["att"]
    assert event[-2] == pytest.approx(1.0) and event[-3] == 0.0


def test_observed_data_and_design_features(sim):
    data = sim.data
    y0, y1 = sim.potential_outcomes["y"]
    np.testing.assert_allclose(data["y"], y1[data["unit"] - 1, data["time"] - 1])
    never = sim.units["cohort"].to_numpy() == 0
    np.testing.assert_array_equal(y0[never], y1[never])
    assert 0.87 < len(data) / (3_000 * 10) < 0.93  # 10 % of cells missing
    assert not data.duplicated(["unit", "time"]).any()
    status = (data["cohort"] > 0) & (data["time"] >= data["cohort"])
    np.testing.assert_array_equal(data["treated"], status.astype(np.int8))
    assert set(data["cohort"].unique()) == {0, 4, 6, 8}
    assert data.groupby("unit")["cluster"].nunique().max() == 1
    assert data["cluster"].nunique() == 30
    x = sim.units.set_index("unit")["x"]
    treated = sim.units.set_index("unit")["cohort"] > 0
    assert x[treated].mean() - x[~treated].mean() > 0.5  # selection on the covariate


def test_pretrend_tilts_untreated_outcomes_of_treated_units():
    flat = simulate_staggered(n_units=4_000, seed=2)
    tilted = simulate_staggered(n_units=4_000, pretrend=0.3, seed=2)
    treated = flat.units["cohort"].to_numpy() > 0
    diff = tilted.potential_outcomes["y"][0] - flat.potential_outcomes["y"][0]
    np.testing.assert_allclose(diff[treated], np.tile(0.3 * np.arange(1, 11), (treated.sum(), 1)))
    np.testing.assert_allclose(diff[~treated], 0.0)
    pd.testing.assert_frame_equal(flat.truth, tilted.truth)


def test_same_seed_same_panel_and_errors():
    a = simulate_staggered(n_units=300, seed=9)
    b = simulate_staggered(StaggeredDesign(n_units=300), seed=9)
    pd.testing.assert_frame_equal(a.data, b.data)
    with pytest.raises(SimulationError, match=r"cohorts=\(1, 4\) must be distinct periods"):
        simulate_staggered(cohorts=(1, 4))
    with pytest.raises(SimulationError, match="one multiplier per cohort"):
        simulate_staggered(cohort_effects=(1.0,))
    with pytest.raises(SimulationError, match="invalid staggered design parameter"):
        simulate_staggered(n_unitz=5)
    with pytest.raises(SimulationError, match="never_share"):
        simulate_staggered(never_share=1.0)
