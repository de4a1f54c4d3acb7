"""Bias-reduced (CR2) clustered variance of Callaway-Sant'Anna and Webb multipliers.

Without covariates an ATT(g,t) is the coefficient on D in the weighted regression of the
outcome change on a constant and D, so its CR2 variance must equal Bell and McCaffrey's
formula computed directly from the hat matrix, cluster by cluster (as R clubSandwich's
``vcovCR(type = "CR2")`` does), for any mix of treated and comparison units in a cluster.
"""

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy import stats

from evaluation.errors import FewClustersWarning, InvalidOptionError
from evaluation.estimators._inference import leverage_factors, multiplier_draws
from evaluation.estimators.callaway_santanna import CallawaySantAnna, CellEstimationWarning
from evaluation.panel import Panel


def cr2_by_hand(dy: np.ndarray, d: np.ndarray, w: np.ndarray,
                cluster: np.ndarray) -> tuple[float, float]:
    """Coefficient on ``d`` and its CR2 standard error, (I - H_cc)^(-1/2) per cluster."""
    x = np.column_stack([np.ones(dy.size), d])
    w = w / w.mean()
    bread = np.linalg.inv(x.T @ (w[:, None] * x))
    beta = bread @ x.T @ (w * dy)
    e = dy - x @ beta
    meat = np.zeros((2, 2))
    for c in np.unique(cluster):
        rows = cluster == c
        root = np.sqrt(w[rows])
        hat = root[:, None] * (x[rows] @ bread @ x[rows].T) * root[None, :]
        values, vectors = np.linalg.eigh(np.eye(rows.sum()) - hat)
        adjust = vectors @ np.diag(values ** -0.5) @ vectors.T
        score = x[rows].T @ (root * (adjust @ (root * e[rows])))
        meat += np.outer(score, score)
    return float(beta[1]), float(np.sqrt((bread @ meat @ bread)[1, 1]))


def two_period_panel(seed: int, n: int = 80, clusters: int = 9):
    rng = np.random.default_rng(seed)
    cluster = rng.integers(0, clusters, n)
    d = (cluster < 3).astype(int)
    d[:4] = 1 - d[:4]  # mixed clusters: treated and comparison units share clusters
    y0 = rng.normal(size=n)
    y1 = y0 + rng.normal(size=n) + 0.5 * d + 0.2 * cluster
    w = rng.uniform(0.5, 2.0, n)
    data = pd.DataFrame({
        "unit": np.repeat(np.arange(n), 2), "t": np.tile([1, 2], n),
        "y": np.column_stack([y0, y1]).ravel(), "cohort": np.repeat(np.where(d == 1, 2, 0), 2),
        "cluster": np.repeat(cluster, 2), "w": np.repeat(w, 2),
        "x": np.repeat(rng.normal(size=n), 2)})
    return data, y1 - y0, d, w, cluster


@pytest.mark.parametrize("method", ["dr", "ipw", "reg", "dr_improved"])
@pytest.mark.parametrize("seed", [1, 2])
def test_cr2_equals_bell_mccaffrey_without_covariates(method, seed):
    data, dy, d, w, cluster = two_period_panel(seed)
    panel = Panel(data, unit="unit", time="t", outcome="y", cohort="cohort", never_treated=0,
                  cluster="cluster", weights="w")
    fit = CallawaySantAnna(se="cr2", method=method).fit(panel)
    estimate, se = cr2_by_hand(dy, d, w, cluster)
    assert_allclose(fit.table["estimate"].iat[0], estimate, rtol=1e-12)
    assert_allclose(fit.table["std_error"].iat[0], se, rtol=1e-10)
    analytic = CallawaySantAnna(method=method).fit(panel).table["std_error"].iat[0]
    assert se > analytic  # the correction only inflates


def test_cr2_without_clusters_is_hc2():
    data, dy, d, w, _ = two_period_panel(3)
    panel = Panel(data, unit="unit", time="t", outcome="y", cohort="cohort", never_treated=0,
                  weights="w")
    fit = CallawaySantAnna(se="cr2").fit(panel)
    _, se = cr2_by_hand(dy, d, w, np.arange(dy.size))
    assert_allclose(fit.table["std_error"].iat[0], se, rtol=1e-10)


def test_cr2_of_each_staggered_cell_equals_its_two_by_two(heterogeneous_staggered):
    data = heterogeneous_staggered.data
    data = data[data["unit"] <= 600].copy()
    data["cluster"] = data["unit"] % 13
    panel = Panel(data, unit="unit", time="time", outcome="y", cohort="cohort",
                  never_treated=0, cluster="cluster")
    fit = CallawaySantAnna(se="cr2", method="reg").fit(panel)
    wide = panel.wide()
    cohort = panel.unit_cohort
    codes = data.groupby("unit")["cluster"].first().to_numpy()
    checked = 0
    for j in (0, 5, len(fit.table) - 1):
        g, t = fit.cell_group[j], fit.cell_time[j]
        base = t - 1 if t < g else g - 1
        rows = (cohort == g) | np.isnan(cohort)
        dy = wide[rows, t] - wide[rows, base]
        _, se = cr2_by_hand(dy, (cohort[rows] == g).astype(float), np.ones(rows.sum()),
                            codes[rows])
        assert_allclose(fit.table["std_error"].iat[j], se, rtol=1e-10)
        checked += 1
    assert checked == 3
    # aggregations combine the adjusted influence functions of the cells
    simple = fit.aggregate("simple")
    post = fit.table["post"].to_numpy() & np.isfinite(fit.table["estimate"].to_numpy())
    assert simple.overall["std_error"].iat[0] < fit.table["std_error"][post].max()


def test_cr2_with_covariates_inflates_and_keeps_estimates():
    data, *_ = two_period_panel(4, n=200, clusters=15)
    panel = Panel(data, unit="unit", time="t", outcome="y", cohort="cohort", never_treated=0,
                  cluster="cluster", covariates=["x"])
    cr2 = CallawaySantAnna(se="cr2").fit(panel)
    analytic = CallawaySantAnna().fit(panel)
    assert_allclose(cr2.table["estimate"], analytic.table["estimate"], rtol=0, atol=0)
    ratio = cr2.table["std_error"].iat[0] / analytic.table["std_error"].iat[0]
    assert 1.0 < ratio < 1.5
    assert cr2.info["se"] == "cr2"


def test_leverage_factors_leverage_and_whole_group_in_one_cluster():
    weights = np.array([0.5, 0.25, 0.25, 0.6, 0.4])
    treated = np.array([1, 1, 1, 0, 0])
    cluster = np.array([0, 0, 1, 1, 1])
    factors = leverage_factors(weights, treated, cluster)
    # treated: cluster 0 holds 0.75 of the treated mean, cluster 1 holds 0.25;
    # the comparison group lies wholly in cluster 1 (h = 1): no correction is possible
    assert_allclose(factors, [2.0, 2.0, 1 / np.sqrt(0.75), 1.0, 1.0])


def test_webb_multipliers_have_six_points_mean_zero_variance_one():
    influence = np.eye(6)  # one unit per cluster: draws are the multipliers / n
    draws = multiplier_draws(influence, draws=60000, weights="webb",
                             rng=np.random.default_rng(5)) * 6
    values = np.unique(np.round(draws[:, 0], 6))
    assert_allclose(values, np.round(np.sqrt([1.5, 1, .5, .5, 1, 1.5]) * [-1, -1, -1, 1, 1, 1],
                                     6))
    assert abs(draws.mean()) < 0.01
    assert abs(draws.var() - 1) < 0.01


def test_cr3_equals_the_leave_one_cluster_out_jackknife():
    data, dy, d, w, cluster = two_period_panel(6)
    panel = Panel(data, unit="unit", time="t", outcome="y", cohort="cohort", never_treated=0,
                  cluster="cluster", weights="w")
    fit = CallawaySantAnna(se="cr3").fit(panel)

    def difference(keep):
        treated, comparison = keep & (d == 1), keep & (d == 0)
        return (np.average(dy[treated], weights=w[treated])
                - np.average(dy[comparison], weights=w[comparison]))

    full = difference(np.ones(dy.size, dtype=bool))
    jackknife = np.sqrt(sum((difference(cluster != c) - full) ** 2
                            for c in np.unique(cluster)))
    assert_allclose(fit.table["std_error"].iat[0], jackknife, rtol=1e-10)
    # without covariates the jackknife has the leverage form (1 - h)^-1 of the CR2 factors
    cr2 = CallawaySantAnna(se="cr2").fit(panel).table["std_error"].iat[0]
    assert jackknife > cr2


def test_bias_reduced_results_carry_the_cluster_degrees_of_freedom():
    data, *_ = two_period_panel(7)
    panel = Panel(data, unit="unit", time="t", outcome="y", cohort="cohort", never_treated=0,
                  cluster="cluster")
    fit = CallawaySantAnna(se="cr3").fit(panel)
    clusters = data["cluster"].nunique()
    assert fit.info["df"] == clusters - 1
    assert (fit.table["df"] == clusters - 1).all()
    simple = fit.aggregate("simple")
    assert simple.overall["df"].iat[0] == clusters - 1
    assert "df" not in CallawaySantAnna().fit(panel).table


@pytest.mark.parametrize("se", ["analytic", "bootstrap"])
def test_t_critical_values_give_t_intervals_around_the_same_standard_errors(se):
    data, *_ = two_period_panel(7)
    panel = Panel(data, unit="unit", time="t", outcome="y", cohort="cohort", never_treated=0,
                  cluster="cluster")
    options = {"se": se, "bootstrap_weights": "webb", "seed": 3} if se == "bootstrap" else {}
    normal = CallawaySantAnna(**options).fit(panel).aggregate("simple").to_frame()
    t_based = CallawaySantAnna(critical_values="t", **options).fit(panel).aggregate("simple")
    frame = t_based.to_frame()
    g = data["cluster"].nunique()
    assert t_based.info["df"] == g - 1 and "df" not in normal
    assert_allclose(frame["std_error"], normal["std_error"], rtol=1e-12)
    half = (frame["ci_upper"] - frame["ci_lower"]) / 2 / frame["std_error"]
    assert_allclose(half, stats.t.ppf(0.975, g - 1), rtol=1e-10)
    z = frame["estimate"] / frame["std_error"]
    assert_allclose(frame["p_value"], 2 * stats.t.sf(np.abs(z), g - 1), rtol=1e-10)
    with pytest.raises(InvalidOptionError, match="critical_values"):
        CallawaySantAnna(critical_values="z")


def staggered_clustered_panel(seed: int = 11, n: int = 240, clusters: int = 12) -> pd.DataFrame:
    """Two cohorts and never-treated units in clusters, a covariate and cluster shocks."""
    rng = np.random.default_rng(seed)
    cluster = rng.integers(0, clusters, n)
    x = rng.normal(size=n) + 0.3 * cluster / clusters
    cohort = np.select([rng.random(n) < 0.25, rng.random(n) < 0.3], [3, 4], 0)
    periods = 5
    shock = rng.normal(0, 0.5, (clusters, periods))
    rows = []
    for t in range(1, periods + 1):
        effect = np.where((cohort > 0) & (t >= cohort), 1.0 + 0.5 * x, 0.0)
        y = x * t * 0.2 + shock[cluster, t - 1] + effect + rng.normal(size=n)
        rows.append(pd.DataFrame({"unit": np.arange(n), "t": t, "y": y, "cohort": cohort,
                                  "cluster": cluster, "x": x}))
    return pd.concat(rows, ignore_index=True)


@pytest.mark.parametrize("method", ["dr", "ipw", "reg"])
def test_cr3_is_the_jackknife_of_refits_without_each_cluster(method):
    data = staggered_clustered_panel()

    def fit(frame, se="analytic"):
        panel = Panel(frame, unit="unit", time="t", outcome="y", cohort="cohort",
                      never_treated=0, cluster="cluster", covariates=["x"])
        return CallawaySantAnna(method=method, se=se).fit(panel)

    jackknife = fit(data, "cr3")
    full = jackknife.table["estimate"].to_numpy()
    left_out = np.array([fit(data[data["cluster"] != c]).table["estimate"].to_numpy()
                         for c in range(12)])
    by_refits = np.sqrt(((left_out - full) ** 2).sum(axis=0))
    assert_allclose(jackknife.table["std_error"], by_refits, rtol=1e-9)
    assert np.all(by_refits > 0)


def test_cr3_of_a_single_cohort_aggregate_is_its_jackknife():
    data = staggered_clustered_panel(12)
    data = data[data["cohort"] != 4]

    def overall(frame, se="analytic"):
        panel = Panel(frame, unit="unit", time="t", outcome="y", cohort="cohort",
                      never_treated=0, cluster="cluster", covariates=["x"])
        simple = CallawaySantAnna(se=se).fit(panel).aggregate("simple").overall
        return simple["estimate"].iat[0], simple["std_error"].iat[0]

    estimate, se = overall(data, "cr3")
    left_out = np.array([overall(data[data["cluster"] != c])[0] for c in range(12)])
    assert_allclose(se, np.sqrt(((left_out - estimate) ** 2).sum()), rtol=1e-9)


def test_cr3_needs_clusters_and_warns_when_a_cluster_holds_a_whole_cohort():
    data = staggered_clustered_panel(13)
    plain = Panel(data, unit="unit", time="t", outcome="y", cohort="cohort", never_treated=0)
    with pytest.raises(InvalidOptionError, match="needs clusters"):
        CallawaySantAnna(se="cr3").fit(plain)
    data.loc[data["cohort"] == 4, "cluster"] = 99  # cohort 4 lies in one cluster
    panel = Panel(data, unit="unit", time="t", outcome="y", cohort="cohort", never_treated=0,
                  cluster="cluster")
    with pytest.warns(CellEstimationWarning,
                      match="jackknife of cohort 4 cannot leave out 1 cluster"):
        fit = CallawaySantAnna(se="cr3").fit(panel)
    assert np.isfinite(fit.table["std_error"]).any()


def test_few_treated_clusters_are_flagged_with_cs_advice():
    data = staggered_clustered_panel(14)
    data["cluster"] = np.where(data["cohort"] > 0, data["cohort"], 10 + data["cluster"])
    panel = Panel(data, unit="unit", time="t", outcome="y", cohort="cohort", never_treated=0,
                  cluster="cluster")
    with pytest.warns(FewClustersWarning, match="only 2 of 14 clusters contain treated"):
        fit = CallawaySantAnna(se="cr3").fit(panel)
    simple = fit.aggregate("simple")
    assert any("jackknife is the recommended" in w and "too narrow" in w
               for w in simple.warnings)
    with pytest.warns(FewClustersWarning, match="only 2 of 14 clusters contain treated"):
        analytic = CallawaySantAnna().fit(panel)
    assert any("use se='cr3'" in w and "randomization" in w for w in analytic.warnings)
