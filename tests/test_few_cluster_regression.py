"""Coverage of CR2 + Bell-McCaffrey and the wild cluster bootstrap with 4 of 20 clusters treated.

The design (also in ``benchmarks/few_cluster.py``, which prints the full table): 20 clusters
of 4 to 16 units, 8 periods, the 4 largest clusters adopt in period 5, cluster x period shocks
whose scale falls from 2 (treated clusters) to 0.5, unit noise and a homogeneous effect of 1.
CR0 with normal critical values covers 1 far less often than 95 % here; the assertions allow
three Monte Carlo standard errors plus a small, stated approximation allowance.
"""

import warnings

import numpy as np
import pandas as pd
import pytest

from evaluation import Panel
from evaluation.errors import FewClustersWarning
from evaluation.estimators.did import TwoWayFixedEffects
from evaluation.estimators.imputation import ImputationDiD, TwoStageDiD
from evaluation.inference.clusters import few_cluster_messages

SIZES = np.array([16, 15, 14, 13, 12, 12, 11, 11, 10, 10, 9, 9, 8, 8, 7, 7, 6, 6, 5, 4])
ALLOWANCE = 0.02  # BM df and the bootstrap are approximations: 93 % counts as plausible


def _panel(rng, n_treated=4, periods=8):
    cluster = np.repeat(np.arange(SIZES.size), SIZES)
    unit = np.repeat(np.arange(cluster.size), periods)
    time_ = np.tile(np.arange(1, periods + 1), cluster.size)
    cohort = np.where(np.arange(SIZES.size) < n_treated, 5, 0)[cluster]
    shock = rng.normal(size=(SIZES.size, periods)) * np.linspace(2.0, 0.5, SIZES.size)[:, None]
    y = (rng.normal(size=cluster.size)[unit] + 0.1 * time_ + shock[cluster[unit], time_ - 1]
         + ((cohort[unit] > 0) & (time_ >= 5)) + rng.normal(size=unit.size))
    data = pd.DataFrame({"unit": unit, "time": time_, "y": y, "cohort": cohort[unit],
                         "cluster": cluster[unit]})
    return Panel(data, unit="unit", time="time", outcome="y", cohort="cohort",
                 never_treated=0, cluster="cluster")


def _covers(fit):
    frame = fit.to_frame()
    row = frame[frame["term"] == "overall"] if "overall" in set(frame["term"]) else frame
    return bool(row["ci_lower"].iloc[0] <= 1.0 <= row["ci_upper"].iloc[0])


def _coverage(estimator, reps, seed, draws, **fixed):
    rng = np.random.default_rng(seed)
    hits = {"analytic": 0, "cr2": 0, "wild": 0}
    for _ in range(reps):
        panel = _panel(rng)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FewClustersWarning)
            for se in hits:
                options = {"se": se, "draws": draws} if se == "wild" else {"se": se}
                hits[se] += _covers(estimator(**options, **fixed).fit(panel))
    return {se: count / reps for se, count in hits.items()}


def _assert_plausible(coverage, reps):
    mc = np.sqrt(0.95 * 0.05 / reps)
    for se in ("cr2", "wild"):
        assert coverage[se] >= 0.95 - 3 * mc - ALLOWANCE, (se, coverage)
    # normal CR0 under-covers in this design: the few-cluster methods must do better
    assert coverage["analytic"] <= 0.95 - 2 * mc, coverage
    assert min(coverage["cr2"], coverage["wild"]) > coverage["analytic"], coverage


@pytest.mark.slow
def test_twfe_cr2_and_wild_cover_with_four_treated_clusters():
    reps = 160
    _assert_plausible(_coverage(TwoWayFixedEffects, reps, seed=20, draws=399), reps)


@pytest.mark.slow
@pytest.mark.parametrize("estimator, fixed", [(ImputationDiD, {"horizons": (0,)}),
                                              (TwoStageDiD, {})])
def test_imputation_and_two_stage_cover_with_four_treated_clusters(estimator, fixed):
    reps = 80
    _assert_plausible(_coverage(estimator, reps, seed=21, draws=199, **fixed), reps)


def test_analytic_variance_is_the_sum_of_the_linear_forms():
    """The vectors behind cr2/wild reproduce the estimators' analytic standard errors."""
    from evaluation.estimators.imputation import (
        _codes,
        _first_stage,
        _imputation_items,
        _outcome,
        _two_stage_items,
    )

    panel = _panel(np.random.default_rng(3))
    stage = _first_stage(panel)
    y = _outcome(stage, panel)
    x2 = stage.treated.astype(float)[:, None]
    bread = np.linalg.inv(x2.T @ (stage.weights[:, None] * x2))
    beta = bread @ (x2.T @ (stage.weights * stage.y_tilde))
    with pytest.warns(FewClustersWarning):
        two_stage = TwoStageDiD().fit(panel)
    item = _two_stage_items(stage, panel, x2, bread, beta, np.ones(1))[0]
    assert item.estimator @ y == pytest.approx(two_stage.table["estimate"].iloc[0], rel=1e-10)
    assert np.sqrt(np.sum((item.sums.T @ y) ** 2)) == pytest.approx(
        two_stage.table["std_error"].iloc[0], rel=1e-10)
    with pytest.warns(FewClustersWarning):
        bjs = ImputationDiD().fit(panel)
    weights = stage.treated.astype(float)[:, None] / stage.treated.sum()
    v = ImputationDiD._implied_weights(stage, weights)
    cell = pd.factorize(pd.MultiIndex.from_arrays(
        [np.where(stage.treated, stage.design.time - stage.event, -1),
         np.where(stage.treated, stage.event, -1)]))[0]
    item = _imputation_items(stage, panel, v, cell, np.zeros(1), np.ones(1))[0]
    assert item.estimator @ y == pytest.approx(bjs.overall["estimate"].iloc[0], rel=1e-10)
    assert np.sqrt(np.sum((item.sums.T @ y) ** 2)) == pytest.approx(
        bjs.overall["std_error"].iloc[0], rel=1e-10)
    assert np.bincount(_codes(stage)).size == SIZES.size


def test_few_clusters_warning_rules():
    cluster = np.repeat(np.arange(10), 3)
    treated = cluster < 2
    messages = few_cluster_messages(cluster, treated)
    assert len(messages) == 1 and "only 2 of 10 clusters" in messages[0]
    assert "use se='cr2'" in messages[0] and "Bell-McCaffrey" in messages[0]
    assert few_cluster_messages(cluster, cluster < 6) == []
    weights = np.where(cluster == 0, 10.0, 1.0)
    dominant = few_cluster_messages(cluster, cluster < 6, weights)
    assert len(dominant) == 1 and "cluster 0 holds 67 %" in dominant[0]
    wild = few_cluster_messages(cluster, treated, se="wild")
    assert "se='cr2' (Bell-McCaffrey df) is recommended" in wild[0]
    assert "use se='cr3'" in few_cluster_messages(cluster, treated, se="cs")[0]
    assert "too narrow" in few_cluster_messages(cluster, treated, se="cs-jackknife")[0]


def test_bjs_and_two_stage_record_inference_and_df():
    panel = _panel(np.random.default_rng(4))
    with pytest.warns(FewClustersWarning, match="only 4 of 20 clusters"):
        bjs = ImputationDiD(se="cr2").fit(panel)
    assert bjs.info["se"] == "cr2 (scalar CR2 analogue, Satterthwaite df)"
    assert (bjs.table["df"] > 0).all() and bjs.overall["df"].iloc[0] > 0
    assert any("FewClustersWarning" in w for w in bjs.warnings)
    with pytest.warns(FewClustersWarning):
        wild = TwoStageDiD(se="wild", wild_null="unrestricted", draws=499, seed=2).fit(panel)
    assert wild.info["se"] == "wild cluster bootstrap (WCU, Rademacher, 499 draws)"
    frame = wild.to_frame()
    assert frame["p_value"].iloc[0] == wild.table["p_value"].iloc[0]
    assert frame["ci_lower"].iloc[0] < frame["estimate"].iloc[0] < frame["ci_upper"].iloc[0]
