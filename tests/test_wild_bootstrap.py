"""Wild cluster bootstrap against the ``wildboottest`` package, test inversion and speed."""

import time
import warnings

import numpy as np
import pandas as pd
import pytest
from _builders import staggered_panel

from evaluation import Panel
from evaluation.errors import FewClustersWarning
from evaluation.estimators.did import TwoWayFixedEffects, fit_two_way
from evaluation.inference.wild import (
    _Draws,
    _p_value,
    bootstrap_weights,
    ols_problems,
    wild_test,
)

wildboottest = pytest.importorskip("wildboottest.wildboottest")


def _panel(weights=False, seed=11, n_clusters=10):
    """40 units x 6 periods in ``n_clusters`` clusters, 3 treated clusters (cohort 4)."""
    rng = np.random.default_rng(seed)
    units, periods = 40, 6
    cluster = np.arange(units) % n_clusters
    unit = np.repeat(np.arange(units), periods)
    time_ = np.tile(np.arange(1, periods + 1), units)
    cohort = np.where(cluster < 3, 4, 0)[unit]
    shock = rng.normal(0, 1, (n_clusters, periods))[cluster[unit], time_ - 1]
    y = (rng.normal(size=units)[unit] + 0.2 * time_ + shock + 0.5 * (cohort > 0) * (time_ >= 4)
         + rng.normal(0, 1 + cluster[unit] / 5, unit.size))
    data = pd.DataFrame({"unit": unit, "time": time_, "cohort": cohort, "y": y,
                         "cluster": cluster[unit],
                         "w": rng.uniform(0.5, 2, units)[unit]})
    return staggered_panel(data, cluster="cluster", weights="w" if weights else None)


def _reference(x, y, cluster, j, restricted):
    """``wildboottest``'s WCR/WCU ("11", Rademacher; full enumeration for 2^G < 9999)."""
    r = np.zeros(x.shape[1])
    r[j] = 1.0
    boot = wildboottest.WildboottestCL(X=x, Y=y, cluster=cluster, R=r, B=9999, seed=1,
                                       parallel=False)
    boot.get_scores(bootstrap_type="11", impose_null=restricted)
    with warnings.catch_warnings():  # "2^G < the number of boot iterations"
        warnings.simplefilter("ignore", UserWarning)
        boot.get_weights(weights_type="rademacher")
    boot.get_numer()
    boot.get_denom()
    boot.get_tboot()
    boot.get_vcov()
    boot.get_tstat()
    boot.get_pvalue(pval_type="two-tailed")
    return boot


@pytest.mark.slow
@pytest.mark.parametrize("dynamic", [False, True])
@pytest.mark.parametrize("null", ["restricted", "unrestricted"])
@pytest.mark.parametrize("weighted", [False, True])
def test_twfe_wild_matches_wildboottest(dynamic, null, weighted):
    panel = _panel(weights=weighted)
    model = TwoWayFixedEffects(dynamic=dynamic, leads=2, lags=1, se="wild", wild_null=null)
    with pytest.warns(FewClustersWarning, match="only 3 of 10"):
        fit = model.fit(panel)
    assert fit.info["se"] == (f"wild cluster bootstrap ({'WCR' if null == 'restricted' else 'WCU'}"
                              ", Rademacher, 1024 draws, full enumeration)")
    regressors = (panel.status_wide()[panel.unit_codes, panel.time_codes].astype(float)[:, None]
                  if not dynamic else model._event_dummies(panel)[0])
    data = fit_two_way(panel, regressors).partialled
    root = np.ones(data.y.size) if data.weights is None else np.sqrt(data.weights)
    x, y = data.x * root[:, None], data.y * root
    n, k, g = x.shape[0], x.shape[1], 10
    ssc = (n - 1) / (n - k) * g / (g - 1)
    problems = ols_problems(data.x, data.y, data.cluster, weights=data.weights, null=null,
                            scale=ssc)
    v, enumerated = bootstrap_weights("rademacher", g, 9999, np.random.default_rng(0))
    assert enumerated and v.shape == (g, 2**g)
    for j in range(k):
        reference = _reference(x, y, data.cluster, j, null == "restricted")
        mine = wild_test(problems[j], v, enumerated, interval=False)
        t_ref = float(np.ravel(reference.t_stat)[0])
        assert mine.t == pytest.approx(t_ref, abs=1e-8)
        # wildboottest's p = mean(|t| < |t*|). Under WCR the draws v = 1 and v = -1 give
        # |t*| = |t| exactly, so whether they count depends on rounding in the package; the
        # exact-arithmetic value (ties do not count) is recomputed from its own statistics.
        ties = np.isclose(np.abs(reference.t_boot), abs(t_ref), rtol=1e-10, atol=0)
        exact = np.mean((abs(t_ref) < np.abs(reference.t_boot)) & ~ties)
        assert ties.sum() == (2 if null == "restricted" else 0)
        assert mine.p_value == pytest.approx(exact, abs=1e-8)
        assert abs(mine.p_value - reference.pvalue) <= ties.sum() / v.shape[1] + 1e-12
        assert fit.table["p_value"].iloc[j] == pytest.approx(exact, abs=1e-8)
        np.testing.assert_allclose(np.sort(np.abs(mine.t_boot)),
                                   np.sort(np.abs(reference.t_boot)), rtol=0, atol=1e-8)


@pytest.mark.parametrize("kind, null", [("rademacher", "restricted"), ("webb", "restricted"),
                                        ("mammen", "unrestricted"), ("webb", "unrestricted")])
def test_inverted_interval_endpoints_have_p_equal_alpha(kind, null):
    panel = _panel(n_clusters=14)
    status = panel.status_wide()[panel.unit_codes, panel.time_codes].astype(float)[:, None]
    data = fit_two_way(panel, status).partialled
    problem = ols_problems(data.x, data.y, data.cluster, null=null)[0]
    v, enumerated = bootstrap_weights(kind, 14, 1999, np.random.default_rng(3))
    assert not enumerated
    test = wild_test(problem, v, enumerated, alpha=0.1)
    draws = _Draws(problem, v)
    assert test.ci_lower < test.estimate < test.ci_upper
    for end, inside in ((test.ci_lower, 1.0), (test.ci_upper, -1.0)):
        step = 1e-7 * test.std_error
        p_in = _p_value(problem, draws, end + inside * step)
        p_out = _p_value(problem, draws, end - inside * step)
        assert p_out <= 0.1 < p_in
        assert abs(p_in - 0.1) <= 2 / v.shape[1] and abs(p_out - 0.1) <= 2 / v.shape[1]


def test_wild_is_seeded_and_reports_its_draws():
    panel = _panel(n_clusters=14)
    with pytest.warns(FewClustersWarning):
        first = TwoWayFixedEffects(se="wild", wild_weights="webb", draws=999, seed=5).fit(panel)
    with pytest.warns(FewClustersWarning):
        again = TwoWayFixedEffects(se="wild", wild_weights="webb", draws=999, seed=5).fit(panel)
    with pytest.warns(FewClustersWarning):
        other = TwoWayFixedEffects(se="wild", wild_weights="webb", draws=999, seed=6).fit(panel)
    pd.testing.assert_frame_equal(first.to_frame(), again.to_frame())
    assert first.table["p_value"].iloc[0] != other.table["p_value"].iloc[0]
    assert first.info["se"] == "wild cluster bootstrap (WCR, Webb, 999 draws)"
    with pytest.warns(FewClustersWarning, match="randomization inference"):
        analytic = TwoWayFixedEffects().fit(panel)
    frame = first.to_frame()
    assert frame["std_error"].iloc[0] == pytest.approx(analytic.table["std_error"].iloc[0])
    assert frame["p_value"].iloc[0] == first.table["p_value"].iloc[0]
    assert frame["ci_lower"].iloc[0] == first.table["ci_lower"].iloc[0]
    assert "df" not in first.table


@pytest.mark.slow
def test_wild_on_100000_units_is_fast():
    """9,999 WCR draws for TWFE on 100,000 units x 20 periods in 15 clusters."""
    rng = np.random.default_rng(1)
    units, periods, clusters = 100_000, 20, 15
    unit = np.repeat(np.arange(units), periods)
    time_ = np.tile(np.arange(1, periods + 1), units)
    cluster = rng.integers(0, clusters, units)
    cohort = np.where(cluster < 4, 11, 0)
    y = (rng.normal(size=unit.size) + rng.normal(size=(clusters, periods))[cluster[unit],
                                                                            time_ - 1])
    panel = Panel(pd.DataFrame({"unit": unit, "time": time_, "y": y,
                                "cohort": cohort[unit], "cluster": cluster[unit]}),
                  unit="unit", time="time", outcome="y", cohort="cohort", never_treated=0,
                  cluster="cluster")
    start = time.perf_counter()
    with pytest.warns(FewClustersWarning):
        fit = TwoWayFixedEffects(se="wild", seed=1).fit(panel)
    elapsed = time.perf_counter() - start
    assert fit.info["se"] == "wild cluster bootstrap (WCR, Rademacher, 9999 draws)"
    assert 0 < fit.table["p_value"].iloc[0] <= 1
    assert elapsed < 10.0


def test_too_many_multipliers_is_a_clear_error():
    from evaluation.errors import InvalidOptionError

    with pytest.raises(InvalidOptionError, match="se='analytic'"):
        bootstrap_weights("webb", 100_000, 9999, np.random.default_rng(0))
    v, enumerated = bootstrap_weights("rademacher", 3, 9999, np.random.default_rng(0))
    assert enumerated and v.shape == (3, 8) and len({tuple(c) for c in v.T}) == 8


@pytest.mark.parametrize("null", ["restricted", "unrestricted"])
def test_linear_engine_reproduces_the_regression_bootstrap(null):
    """Least squares written as a linear estimator gives the same bootstrap (WCR and WCU)."""
    from evaluation.inference.wild import linear_problem

    panel = _panel(n_clusters=12)
    status = panel.status_wide()[panel.unit_codes, panel.time_codes].astype(float)[:, None]
    data = fit_two_way(panel, status).partialled
    x, y, cluster = data.x[:, 0], data.y, data.cluster
    estimator = x / (x @ x)
    indicators = np.eye(12)[cluster] * estimator[:, None]
    sums = indicators - np.outer(x, x @ indicators) / (x @ x)  # (I - H)' (1_c lambda)
    beta = estimator @ y
    std_error = np.sqrt(np.sum((sums.T @ y) ** 2))
    resid = (y, -x) if null == "restricted" else (y - x * beta, np.zeros_like(y))
    linear = linear_problem(beta, std_error, estimator, sums, y, resid, cluster, null=null)
    regression = ols_problems(data.x, y, cluster, null=null)[0]
    assert regression.std_error == pytest.approx(std_error, rel=1e-12)
    v, _ = bootstrap_weights("webb", 12, 999, np.random.default_rng(8))
    first, second = wild_test(linear, v, False), wild_test(regression, v, False)
    np.testing.assert_allclose(first.t_boot, second.t_boot, rtol=1e-9, atol=1e-12)
    assert first.p_value == second.p_value
    assert first.ci_lower == pytest.approx(second.ci_lower, abs=1e-8 * std_error)
    assert first.ci_upper == pytest.approx(second.ci_upper, abs=1e-8 * std_error)
