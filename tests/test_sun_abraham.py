import json
from pathlib import Path

import numpy as np
import pytest
from _builders import staggered_panel
from reference.sa_previous import CASES, regression_data, regression_panel, summary

from evaluation.errors import InvalidOptionError, NoComparisonUnitsError, PanelError
from evaluation.estimators import CallawaySantAnna
from evaluation.estimators._sun_abraham_design import InteractionDesign
from evaluation.estimators.did import TwoWayFixedEffects, fit_two_way
from evaluation.estimators.sun_abraham import SunAbraham
from evaluation.simulate import simulate_staggered


@pytest.fixture(scope="module")
def sim():
    return simulate_staggered(n_units=2000, n_periods=9, cohorts=(4, 6, 8), dynamic=0.3,
                              cohort_effects=(2.0, 1.0, 0.4), n_clusters=40, seed=13)


@pytest.mark.parametrize("cluster", [None, "cluster"])
def test_equals_callaway_santanna_with_universal_base(sim, cluster):
    """Balanced, no covariates, never-treated controls: the two estimators coincide,
    including standard errors that account for the estimated cohort shares."""
    panel = staggered_panel(sim.data, cluster=cluster)
    sa = SunAbraham().fit(panel)
    cs = CallawaySantAnna(method="reg", base_period="universal").fit(panel)
    event = cs.aggregate("event").table.set_index("event_time")
    mine = sa.table.set_index("event_time")
    np.testing.assert_allclose(mine["estimate"], event.loc[mine.index, "estimate"], atol=1e-8)
    if cluster is None:
        np.testing.assert_allclose(mine["std_error"], event.loc[mine.index, "std_error"],
                                   atol=1e-8)
    else:  # SA treats effects and shares as independent; CS keeps their within-cluster
        # covariance, which vanishes only when clusters are single units
        np.testing.assert_allclose(mine["std_error"], event.loc[mine.index, "std_error"],
                                   rtol=0.2)
    cells = cs.table.set_index(["group", "event_time"])["estimate"]
    cohort = sa.cohort_effects.set_index(["cohort", "event_time"])["estimate"]
    np.testing.assert_allclose(cohort, cells.loc[cohort.index], atol=1e-8)
    overall = cs.aggregate("event").overall
    assert sa.overall["estimate"].iat[0] == pytest.approx(overall["estimate"].iat[0], abs=1e-8)
    if cluster is None:
        assert sa.overall["std_error"].iat[0] == pytest.approx(overall["std_error"].iat[0],
                                                               abs=1e-8)


def test_share_uncertainty_enlarges_the_variance(sim):
    sa = SunAbraham().fit(staggered_panel(sim.data))
    table = sa.cohort_effects
    naive = []
    for _, rows in table.groupby("event_time"):
        idx = rows.index.to_numpy()
        w = rows["weight"].to_numpy()
        naive.append(np.sqrt(w @ sa.cohort_vcov[np.ix_(idx, idx)] @ w))
    se = sa.table.set_index("event_time")["std_error"]
    assert (se.to_numpy() >= np.array(naive) - 1e-12).all()
    assert (se.to_numpy() > np.array(naive) + 1e-6).any()
    np.testing.assert_allclose(np.sqrt(np.diag(sa.vcov)), se)


def test_single_cohort_equals_dynamic_twfe():
    one = simulate_staggered(n_units=800, n_periods=8, cohorts=(5,), dynamic=0.5, seed=2)
    panel = staggered_panel(one.data)
    sa = SunAbraham().fit(panel).table.set_index("event_time")
    twfe = TwoWayFixedEffects(dynamic=True).fit(panel).table.set_index("event_time")
    np.testing.assert_allclose(sa["estimate"], twfe["estimate"], atol=1e-8)
    np.testing.assert_allclose(sa["std_error"], twfe["std_error"], atol=1e-8)


def test_recovers_heterogeneous_truth_where_twfe_fails(heterogeneous_staggered):
    sim = heterogeneous_staggered
    truth = sim.true_effects("y", kind="event").set_index("event_time")["att"]
    sa = SunAbraham().fit(staggered_panel(sim.data)).table.set_index("event_time")
    z = (sa["estimate"] - truth.reindex(sa.index)) / sa["std_error"]
    assert np.abs(z).max() < 3


def test_binned_end_points_last_cohort_control_and_errors(sim):
    binned = SunAbraham(leads=3, lags=2).fit(staggered_panel(sim.data))
    assert binned.table["term"].tolist() == ["<=-3", "-2", "0", "1", ">=2"]
    last = SunAbraham(control="last").fit(staggered_panel(sim.data))
    assert "last cohort 8" in last.info["control"]
    assert set(last.cohort_effects["cohort"]) == {4, 6}
    assert last.info["observations"] == 2000 * 7  # periods 8 and 9 dropped
    with pytest.raises(InvalidOptionError, match="control='sometimes'"):
        SunAbraham(control="sometimes")
    with pytest.raises(InvalidOptionError, match="lags=0"):
        SunAbraham(lags=0)
    all_treated = sim.data[sim.data["cohort"] > 0]
    panel = staggered_panel(all_treated)
    with pytest.raises(NoComparisonUnitsError, match="control='last'"):
        SunAbraham().fit(panel)


PREVIOUS = json.loads((Path(__file__).parent / "reference" / "sa_previous.json").read_text())


@pytest.fixture(scope="module")
def regression():
    return regression_data()


@pytest.mark.parametrize("case", list(CASES))
def test_reproduces_the_dense_implementation(regression, case):
    """Unbalanced, weighted, clustered: the cell-code implementation gives the numbers of
    the dense indicator matrix (tests/reference/sa_previous.py) to 1e-10 relative."""
    options, weighted, clustered = CASES[case]
    new = summary(SunAbraham(**options).fit(regression_panel(regression, weighted, clustered)))
    old = PREVIOUS[case]
    for key in ("term", "event_time", "cohort", "cohort_event_time", "observations", "units"):
        assert new[key] == old[key], key
    for key in ("estimate", "std_error", "overall", "cohort_estimate", "cohort_std_error",
                "cohort_weight"):
        np.testing.assert_allclose(new[key], old[key], rtol=1e-10, atol=0, err_msg=key)
    for key in ("vcov", "cohort_vcov"):
        scale = np.abs(old[key]).max()
        np.testing.assert_allclose(new[key], old[key], rtol=1e-10, atol=1e-12 * scale,
                                   err_msg=key)


def test_indicator_without_variation_beyond_the_effects_raises(regression):
    """At period 9 only cohort 4 is observed, so its indicator at relative period 5 is the
    period-9 dummy (the dense implementation raised the same error); binning it with
    earlier periods of the cohort removes the problem."""
    data = regression[(regression["time"] != 9) | (regression["cohort"] == 4)]
    with pytest.raises(PanelError, match="no variation beyond the unit and period"):
        SunAbraham().fit(regression_panel(data, True, True))
    assert SunAbraham(lags=4).fit(regression_panel(data, True, True)).table.shape[0] == 11


def _dense_regression(panel, model):
    """The cell regression with dense cohort x relative-period dummies (``fit_two_way``)."""
    design = InteractionDesign.build(panel, model)
    dense = np.zeros((int(design.rows.sum()), design.n_cells))
    inside = design.cell >= 0
    dense[np.flatnonzero(inside), design.cell[inside]] = 1.0
    return fit_two_way(panel, dense, rows=design.rows, small_sample=model.small_sample)


@pytest.mark.parametrize("case", ["zero-weights", "long-panel"])
def test_unit_types_reproduce_the_dense_regression(case):
    """Units grouped by type (cohort, observed periods, positive weight) give the dense
    regression's coefficients and covariance: units of weight zero (no unit equation), and
    panels beyond 52 periods (one type per unit)."""
    rng = np.random.default_rng(8)
    if case == "zero-weights":
        sim = simulate_staggered(n_units=500, n_periods=9, cohorts=(4, 6), dynamic=0.3,
                                 n_clusters=20, seed=5, keep_potential_outcomes=False).data
        weight = rng.uniform(0.5, 2.0, sim["unit"].nunique())
        weight[::6] = 0.0
        sim = sim.assign(w=weight[sim["unit"].factorize()[0]])
        options, model = {"weights": "w", "cluster": "cluster"}, SunAbraham(lags=4)
    else:
        sim = simulate_staggered(n_units=150, n_periods=60, cohorts=(20, 40), dynamic=0.1,
                                 n_clusters=10, seed=4, keep_potential_outcomes=False).data
        options, model = {"cluster": "cluster"}, SunAbraham(leads=5, lags=5, small_sample=True)
    data = sim[rng.uniform(size=len(sim)) > 0.1]
    panel = staggered_panel(data, **options)
    fit = model.fit(panel)
    dense = _dense_regression(panel, model)
    np.testing.assert_allclose(fit.cohort_effects["estimate"], dense.params, rtol=1e-10,
                               atol=1e-12)
    scale = np.abs(dense.cov).max()
    np.testing.assert_allclose(fit.cohort_vcov, dense.cov, rtol=1e-9, atol=1e-12 * scale)
    types = InteractionDesign.build(panel, model).types.n_types
    if case == "long-panel":  # one type per unit
        assert types == panel.n_units
    else:  # distinct (cohort, observed periods, positive weight)
        keys = data.groupby("unit").agg(cohort=("cohort", "first"), w=("w", "first"),
                                        times=("time", lambda t: tuple(sorted(t))))
        assert types == len(keys.assign(w=keys["w"] > 0).drop_duplicates()) < panel.n_units
