import numpy as np
import pandas as pd
import pytest
from _builders import staggered_panel

from evaluation import Panel
from evaluation.errors import InvalidOptionError, PanelError
from evaluation.estimators import CallawaySantAnna
from evaluation.estimators.did import TwoWayFixedEffects
from evaluation.simulate import simulate_staggered


def test_two_by_two_equals_difference_of_mean_changes_and_its_se():
    sim = simulate_staggered(n_units=500, n_periods=2, cohorts=(2,), seed=4)
    wide = sim.data.pivot(index="unit", columns="time", values="y")
    change = wide[2] - wide[1]
    treated = sim.data.groupby("unit")["cohort"].first() > 0
    did = change[treated].mean() - change[~treated].mean()
    se = np.sqrt(change[treated].var(ddof=0) / treated.sum()
                 + change[~treated].var(ddof=0) / (~treated).sum())
    twfe = TwoWayFixedEffects().fit(staggered_panel(sim.data)).table
    assert twfe["estimate"].iat[0] == pytest.approx(did, abs=1e-10)
    assert twfe["std_error"].iat[0] == pytest.approx(se, abs=1e-10)
    cs = CallawaySantAnna(method="reg").fit(staggered_panel(sim.data)).table
    assert cs["estimate"].iat[0] == pytest.approx(did, abs=1e-10)
    assert cs["std_error"].iat[0] == pytest.approx(se, abs=1e-10)
    # small-sample factors G/(G-1) and (N-1)/(N-K), K = 1 treatment regressor
    small = (TwoWayFixedEffects(small_sample=True).fit(staggered_panel(sim.data))
             .table["std_error"].iat[0])
    assert small == pytest.approx(se * np.sqrt(500 / 499), rel=1e-10)


def test_single_adoption_date_cs_and_twfe_coincide():
    sim = simulate_staggered(n_units=800, n_periods=8, cohorts=(5,), seed=6)
    panel = staggered_panel(sim.data)
    dynamic = TwoWayFixedEffects(dynamic=True).fit(panel).table.set_index("event_time")
    cs = CallawaySantAnna(method="reg", base_period="universal").fit(panel)
    event = cs.aggregate("event").table.set_index("event_time")
    common = dynamic.index
    np.testing.assert_allclose(event.loc[common, "estimate"], dynamic["estimate"], atol=1e-8)
    assert event.loc[-1, "estimate"] == 0.0  # the universal reference period
    # with one pre-period the static TWFE equals the simple aggregation
    short = simulate_staggered(n_units=800, n_periods=5, cohorts=(2,), seed=7)
    static = TwoWayFixedEffects().fit(staggered_panel(short.data)).table["estimate"].iat[0]
    simple = CallawaySantAnna(method="reg").fit(staggered_panel(short.data)).aggregate("simple")
    assert simple.overall["estimate"].iat[0] == pytest.approx(static, abs=1e-8)


def test_binned_end_points_and_reference():
    sim = simulate_staggered(n_units=600, n_periods=10, cohorts=(4, 7), seed=8)
    fit = TwoWayFixedEffects(dynamic=True, leads=3, lags=3).fit(staggered_panel(sim.data))
    # leads -1 (reference), -2 and the bin <= -3; lags 0..2 and the bin >= 3
    assert fit.table["term"].tolist() == ["<=-3", "-2", "0", "1", "2", ">=3"]
    # the binned lag pools every event time from 3 on into one coefficient
    data = sim.data.assign(e=sim.data["time"] - sim.data["cohort"])
    rows = (data["cohort"] > 0) & (data["e"] >= 3)
    assert rows.sum() > 0
    assert fit.vcov.shape == (6, 6)
    np.testing.assert_allclose(np.sqrt(np.diag(fit.vcov)), fit.table["std_error"])


def test_twfe_is_biased_under_heterogeneous_staggered_effects_where_cs_is_not(
        heterogeneous_staggered):
    sim = heterogeneous_staggered
    truth = sim.true_effects("y", kind="event").set_index("event_time")["att"]
    panel = staggered_panel(sim.data)
    cs = CallawaySantAnna(method="reg").fit(panel).aggregate("event").table
    cs = cs.set_index("event_time")
    z_cs = (cs["estimate"] - truth.reindex(cs.index)) / cs["std_error"]
    assert np.abs(z_cs[cs.index >= 0]).max() < 3
    twfe = TwoWayFixedEffects(dynamic=True).fit(panel).table.set_index("event_time")
    z_twfe = (twfe["estimate"] - truth.reindex(twfe.index)) / twfe["std_error"]
    assert np.abs(z_twfe[twfe.index >= 0]).max() > 5


def test_twfe_errors():
    sim = simulate_staggered(n_units=100, seed=1)
    with pytest.raises(InvalidOptionError, match="leads=0"):
        TwoWayFixedEffects(dynamic=True, leads=0)
    with pytest.raises(InvalidOptionError, match="reference=-5 lies in the binned leads"):
        TwoWayFixedEffects(dynamic=True, leads=2, reference=-5)
    no_cohort = Panel(sim.data, unit="unit", time="time", outcome="y")
    with pytest.raises(PanelError, match="need a cohort or status"):
        TwoWayFixedEffects().fit(no_cohort)


def test_status_column_switching_off_is_the_static_regressor():
    from evaluation.estimators.did import fit_two_way

    data = pd.DataFrame({"u": np.repeat([1, 2, 3, 4], 4), "t": np.tile([1, 2, 3, 4], 4),
                         "d": [0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]})
    rng = np.random.default_rng(0)
    data["y"] = rng.normal(size=16) + 2.0 * data["d"]
    panel = Panel(data, unit="u", time="t", outcome="y", status="d")
    with pytest.raises(PanelError, match=r"switches off in 2 units \(e.g. 1, 2\).*'dcdh'"):
        TwoWayFixedEffects().fit(panel)  # static TWFE assumes absorbing treatment
    status = panel.status_wide()[panel.unit_codes, panel.time_codes]
    fit = fit_two_way(panel, status.astype(float)[:, None])
    # same as the within regression with unit and time dummies
    dummies = pd.get_dummies(data[["u", "t"]].astype(str), drop_first=True).astype(float)
    x = np.column_stack([np.ones(16), data["d"], dummies])
    beta = np.linalg.lstsq(x, data["y"], rcond=None)[0]
    assert fit.params[0] == pytest.approx(beta[1], abs=1e-10)


@pytest.mark.parametrize("cluster", [None, "cluster"])
@pytest.mark.parametrize("weights", [None, "weight"])
@pytest.mark.parametrize("small_sample", [False, True])
def test_two_way_fit_equals_linearmodels_panelols(cluster, weights, small_sample):
    """linearmodels' PanelOLS is the oracle of the sparse two-way regression."""
    from linearmodels.panel import PanelOLS

    from evaluation.estimators.did import fit_two_way

    sim = simulate_staggered(n_units=400, n_periods=7, cohorts=(3, 5), n_clusters=20,
                             missing=0.1, seed=23)
    panel = staggered_panel(sim.data, cluster=cluster, weights=weights)
    regressors = np.column_stack([panel.status_wide()[panel.unit_codes, panel.time_codes],
                                  panel.data["cohort"].eq(5) & (panel.time_codes >= 2)])
    ours = fit_two_way(panel, regressors.astype(float), small_sample=small_sample)
    index = pd.MultiIndex.from_arrays([panel.unit_codes, panel.time_codes])
    model = PanelOLS(pd.Series(panel.data["y"].to_numpy(), index=index),
                     pd.DataFrame(regressors.astype(float), index=index),
                     entity_effects=True, time_effects=True,
                     weights=None if weights is None else pd.Series(
                         panel.unit_weights[panel.unit_codes], index=index))
    options = {"cov_type": "clustered", "debiased": small_sample,
               "group_debias": small_sample, "auto_df": False, "count_effects": False}
    if cluster is None:
        reference = model.fit(cluster_entity=True, **options)
    else:
        reference = model.fit(clusters=pd.DataFrame(
            {"c": panel.unit_cluster[panel.unit_codes]}, index=index), **options)
    np.testing.assert_allclose(ours.params, reference.params, rtol=0, atol=1e-10)
    np.testing.assert_allclose(ours.cov, reference.cov, rtol=1e-9, atol=1e-14)
