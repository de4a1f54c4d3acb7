"""Conley-Taber inference with few treated clusters (evaluation.inference.conley_taber)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binom

from evaluation.errors import InvalidOptionError, PanelError
from evaluation.inference.conley_taber import conley_taber
from evaluation.inference.randomization import INFERENCE_COLUMNS
from evaluation.panel import Panel


def cluster_frame(n_clusters: int = 40, n_treated: int = 2, *, periods: int = 10,
                  start: int = 6, effect: float = 1.0, seed: int = 0) -> pd.DataFrame:
    """One unit per cluster; the first ``n_treated`` clusters treated from ``start``."""
    rng = np.random.default_rng(seed)
    unit = np.repeat(np.arange(n_clusters), periods)
    time = np.tile(np.arange(1, periods + 1), n_clusters)
    cohort = np.where(unit < n_treated, start, 0)
    y = (rng.normal(size=n_clusters)[unit] + rng.normal(size=periods)[time - 1]
         + rng.normal(size=unit.size) + effect * ((cohort > 0) & (time >= cohort)))
    return pd.DataFrame({"unit": unit, "time": time, "cohort": cohort, "y": y})


def sized_frame(n_clusters: int, *, periods: int = 8, start: int = 5, effect: float = 1.0,
                seed: int = 0) -> pd.DataFrame:
    """Units in clusters of 1-30 units; the two treated clusters have one unit each."""
    rng = np.random.default_rng(seed)
    sizes = np.r_[1, 1, rng.integers(1, 31, n_clusters - 2)]
    cluster = np.repeat(np.arange(n_clusters), sizes)
    unit = np.repeat(np.arange(cluster.size), periods)
    time = np.tile(np.arange(1, periods + 1), cluster.size)
    c = cluster[unit]
    cohort = np.where(c < 2, start, 0)
    y = (rng.normal(size=n_clusters)[c] + rng.normal(size=periods)[time - 1]
         + 0.2 * rng.normal(size=(n_clusters, periods))[c, time - 1]
         + 2 * rng.normal(size=unit.size) + effect * ((cohort > 0) & (time >= cohort)))
    return pd.DataFrame({"unit": unit, "time": time, "cluster": c, "cohort": cohort, "y": y})


def panel_of(data: pd.DataFrame, **roles: object) -> Panel:
    return Panel(data, unit="unit", time="time", outcome="y", cohort="cohort",
                 never_treated=0, **roles)


@pytest.mark.parametrize("covariate", [False, True])
def test_null_distribution_matches_a_dummy_variable_regression(covariate):
    data = cluster_frame(6, 1, periods=4, start=3, seed=1)
    data["x"] = np.random.default_rng(2).normal(size=len(data)) + 0.3 * data.time
    data["y"] += 0.5 * data.x
    result = conley_taber(panel_of(data, covariates=["x"] if covariate else []))
    dummies = pd.get_dummies(data[["unit", "time"]].astype(str), drop_first=True, dtype=float)
    fe = np.column_stack([np.ones(len(data)), dummies.to_numpy()]
                         + ([data.x.to_numpy()] if covariate else []))
    treated = ((data.cohort > 0) & (data.time >= data.cohort)).to_numpy(float)
    coef, *_ = np.linalg.lstsq(np.column_stack([treated, fe]), data.y, rcond=None)
    residual = (data.y - np.column_stack([treated, fe]) @ coef).to_numpy().reshape(6, 4)
    d_tilde = (treated - fe @ np.linalg.lstsq(fe, treated, rcond=None)[0]).reshape(6, 4)
    null = residual[1:] @ d_tilde[0] / np.sum(d_tilde[0] ** 2)
    assert result.estimate == pytest.approx(coef[0], abs=1e-10)
    np.testing.assert_allclose(np.sort(result.distribution), np.sort(null), atol=1e-10)
    assert result.exact and result.draws == 5 and (result.n_treated, result.n_control) == (1, 5)
    low, high = np.quantile(null, [0.025, 0.975], method="inverted_cdf")
    assert (result.ci_lower, result.ci_upper) == pytest.approx((coef[0] - high, coef[0] - low))


def test_two_treated_of_forty_covers_at_the_nominal_rate_and_cr0_does_not():
    reps = 300
    ct, cr0 = [], []
    for r in range(reps):
        result = conley_taber(panel_of(cluster_frame(seed=r)))
        ct.append(result.ci_lower <= 1.0 <= result.ci_upper)
        cr0.append(result.cr0_lower <= 1.0 <= result.cr0_upper)
    assert result.exact and result.draws == 38**2
    low, high = binom.ppf([0.0005, 0.9995], reps, 0.95)  # 99.9 % Monte Carlo band
    assert low <= np.sum(ct) <= high, np.mean(ct)
    assert np.sum(cr0) < low, np.mean(cr0)  # CR0-normal under-covers (about 0.7 here)


def test_ferman_pinto_corrects_for_small_treated_clusters():
    # cluster means of few units are noisier; Conley-Taber calibrates on bigger controls
    reps = 120
    ct, fp = [], []
    for r in range(reps):
        panel = panel_of(sized_frame(100, seed=r), cluster="cluster")
        plain, corrected = conley_taber(panel), conley_taber(
            panel, heteroskedasticity="ferman-pinto")
        ct.append(plain.ci_lower <= 1.0 <= plain.ci_upper)
        fp.append(corrected.ci_lower <= 1.0 <= corrected.ci_upper)
    assert corrected.method == "conley-taber-ferman-pinto"
    low, high = binom.ppf([0.0005, 0.9995], reps, 0.95)
    assert np.sum(ct) < low, np.mean(ct)
    # converges to 0.95 as controls grow (0.87, 0.92, 0.935 with 40, 100, 200 clusters)
    assert binom.ppf(0.0005, reps, 0.90) <= np.sum(fp) <= high, np.mean(fp)


def test_aggregates_units_to_cluster_periods_and_samples_many_tuples():
    data = sized_frame(30, seed=3)
    result = conley_taber(panel_of(data, cluster="cluster"), draws=500, seed=4)
    means = data.groupby(["cluster", "time"]).y.mean().unstack()
    assert result.cluster_sizes.iloc[:2].tolist() == [1, 1]
    weighted = conley_taber(panel_of(data.assign(w=3.0), cluster="cluster", weights="w"))
    assert weighted.estimate == pytest.approx(result.estimate)
    np.testing.assert_allclose(weighted.cluster_sizes, 3 * result.cluster_sizes)
    assert result.n_periods == means.shape[1] and result.exact
    many = conley_taber(panel_of(cluster_frame(60, 4, seed=5)), draws=2000, seed=1)
    assert not many.exact and many.draws == 2000 and many.info == {"seed": 1}
    again = conley_taber(panel_of(cluster_frame(60, 4, seed=5)), draws=2000, seed=1)
    assert again.ci_lower == many.ci_lower and 0 <= many.p_value <= 1


def test_to_frame_and_summary():
    result = conley_taber(panel_of(cluster_frame(seed=2)))
    frame = result.to_frame()
    assert list(frame.columns) == INFERENCE_COLUMNS
    assert frame.loc[0, "method"] == "conley-taber" and frame.loc[0, "permutations"] == 1444
    assert "CR0 normal (reference)" in str(result.summary())


def test_errors():
    data = sized_frame(12, seed=6)
    data.loc[data.unit == data.unit.max(), "cohort"] = 5  # one unit of a control cluster
    with pytest.raises(PanelError, match="treatment differs between units of cluster"):
        conley_taber(panel_of(data, cluster="cluster"))
    gap = cluster_frame(seed=7)
    gap = gap[~((gap.unit == 3) & (gap.time == 4))]
    with pytest.raises(PanelError, match="every cluster observed in every period"):
        conley_taber(panel_of(gap))
    with pytest.raises(PanelError, match="0 treated"):
        conley_taber(panel_of(cluster_frame(n_treated=0, seed=8)))
    with pytest.raises(InvalidOptionError, match="control clusters of different sizes"):
        conley_taber(panel_of(cluster_frame(seed=9)), heteroskedasticity="ferman-pinto")
