"""Truth recovery with matched comparison groups (evaluation.matching + the DiD estimators).

1. Selection on observables: treatment depends on ``x`` and ``x`` drives the trend of the
   untreated outcome, so unconditional parallel trends fail. DiD on the raw panel is many
   standard errors off; DiD on the matched (or entropy-balanced) sample recovers the true
   ATT of the treated units it keeps, with Callaway-Sant'Anna, TWFE and imputation alike.
2. A planted pre-trend of the treated: after matching on outcome trajectories, the placebo
   DiD on the skipped pre-periods detects it with the expected sign and size, and stays
   quiet when there is no pre-trend.
3. A small Monte Carlo: matched DiD is unbiased where unmatched DiD is not.

Tolerances were checked offline on seeds 0-11 of every design (worst cases in comments), so
the fixed seeds below are typical draws, not lucky ones.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from _builders import staggered_panel

from evaluation import Panel
from evaluation.errors import RegressionToMeanWarning, UnmatchedUnitsWarning
from evaluation.estimators import CallawaySantAnna
from evaluation.estimators.did import TwoWayFixedEffects
from evaluation.estimators.imputation import ImputationDiD
from evaluation.matching import match, outcome_trajectories, placebo_did
from evaluation.simulate import simulate_staggered

#: One cohort treated from period 6 of 10; 20 % treated, selected on x (log-odds +0.8 per SD)
#: with x adding 0.3 per period to the untreated trend: the unmatched DiD is biased by about
#: +0.65 (about 10 SE), while matching on x restores conditional parallel trends.
SELECTION = dict(n_units=3000, n_periods=10, cohorts=(6,), never_share=0.8, effect=1.0,
                 dynamic=0.2, unit_heterogeneity=0.5, covariate_selection=0.8,
                 covariate_trend=0.3)
SELECTION_SEED = 3
FIRST_POST = 5  # column of period 6 in the (n_units, n_periods) potential outcomes

#: One cohort treated from period 15 of 20; the treated drift 0.05 per period (pretrend).
PRETREND = dict(n_units=2000, n_periods=20, cohorts=(15,), never_share=0.7, effect=1.0)
PRETREND_SEED = 3
REFERENCE, WINDOW, SKIP = 15, 6, 4


def _unit_table(sim) -> pd.DataFrame:
    return sim.units.assign(treated=(sim.units["cohort"] > 0).astype(int))


def _true_att_of_kept(sim, units: pd.DataFrame, weights: np.ndarray) -> float:
    """Mean realised Y(1) - Y(0) over the post periods of the treated units kept."""
    y0, y1 = sim.potential_outcomes["y"]
    kept = (units["treated"].to_numpy() == 1) & (weights > 0)
    return float((y1 - y0)[kept][:, FIRST_POST:].mean())


def _cs_overall(panel: Panel) -> tuple[float, float]:
    overall = CallawaySantAnna().fit(panel).aggregate("simple").overall
    return float(overall["estimate"].iat[0]), float(overall["std_error"].iat[0])


def _estimates(panel: Panel) -> dict[str, tuple[float, float]]:
    """Overall ATT and SE from three estimators that honour the matching weights."""
    twfe = TwoWayFixedEffects().fit(panel).table
    bjs = ImputationDiD().fit(panel).overall
    return {"cs": _cs_overall(panel),
            "twfe": (float(twfe["estimate"].iat[0]), float(twfe["std_error"].iat[0])),
            "bjs": (float(bjs["estimate"].iat[0]), float(bjs["std_error"].iat[0]))}


# ------------------------------------------------------------------------------------------
# 1. Selection on observables
# ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def selection():
    sim = simulate_staggered(seed=SELECTION_SEED, **SELECTION)
    panel = staggered_panel(sim.data)
    truth = float(sim.true_effects("y", kind="overall")["att"].iat[0])
    estimate, se = _cs_overall(panel)
    return sim, panel, _unit_table(sim), truth, estimate - truth, se


def test_unmatched_did_is_biased_under_selection_on_x(selection):
    sim, _, units, truth, bias, se = selection
    # the truth of the simulator is the mean effect over treated post-period cells
    assert truth == pytest.approx(_true_att_of_kept(sim, units, np.ones(len(units))), abs=1e-12)
    assert bias > 0.4  # treated have larger x and so steeper untreated trends; observed 0.65
    assert bias / se > 6  # observed 9.8 SE (at least 7.4 on seeds 0-11)


MATCHES = {
    "nearest 1:1 on logit score": dict(),
    "nearest 1:1 on x (euclidean)": dict(distance="euclidean"),
    "nearest 3:1 with replacement": dict(ratio=3, replace=True),
    "nearest 1:1 with caliper 0.02": dict(caliper=0.02),
    "entropy balancing": dict(method="ebal"),
}


@pytest.mark.parametrize("options", list(MATCHES.values()), ids=list(MATCHES))
def test_matched_did_recovers_true_att(selection, options):
    sim, panel, units, _, unmatched_bias, _ = selection
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnmatchedUnitsWarning)  # the tight caliper drops some
        result = match(units, treatment="treated", covariates=["x"], unit="unit", **options)
    balance = result.balance().loc["x"]
    assert abs(balance["smd_before"]) > 0.5  # observed 0.73 (0.65-0.84 on seeds 0-11)
    assert abs(balance["smd_after"]) < 0.1  # observed <= 0.042 (<= 0.056 on seeds 0-11)
    n_treated = int(units["treated"].sum())
    kept_treated = int((result.treated & (result.weights > 0)).sum())
    if "caliper" in options:
        assert 0.5 * n_treated < kept_treated < n_treated  # observed 646 of 700
    else:
        assert kept_treated == n_treated
    truth = _true_att_of_kept(sim, units, result.weights)
    matched = result.apply(panel)
    assert matched.n_units == int((result.weights > 0).sum())
    for name, (estimate, se) in _estimates(matched).items():
        error = estimate - truth
        assert abs(error) < 3 * se, (name, estimate, truth)  # observed |z| <= 0.8 (1.6)
        assert abs(error) < 0.3 * abs(unmatched_bias), name  # observed <= 0.11 (<= 0.19)


def test_replacement_weights_count_how_often_a_control_is_used(selection):
    """With replacement a control's weight is proportional to its number of matches."""
    units = selection[2]
    result = match(units, treatment="treated", covariates=["x"], unit="unit", replace=True)
    weights = result.unit_weights()
    reused = weights[~result.units.set_index("unit").loc[weights.index, "treated"]]
    assert (reused > reused.min()).any()  # some control was matched more than once
    counts = result.matches.groupby("control_unit").size()
    expected = counts * len(counts) / counts.sum()  # MatchIt's rescaling to n matched controls
    pd.testing.assert_series_equal(reused.sort_index(), expected.sort_index(),
                                   check_names=False, check_index_type=False)


# ------------------------------------------------------------------------------------------
# 2. Planted pre-trend and the placebo on skipped periods
# ------------------------------------------------------------------------------------------
def _placebo(pretrend: float):
    sim = simulate_staggered(seed=PRETREND_SEED, pretrend=pretrend, **PRETREND)
    panel = staggered_panel(sim.data)
    with pytest.warns(RegressionToMeanWarning, match="regression to the mean"):
        features = outcome_trajectories(panel, reference=REFERENCE, window=WINDOW, skip=SKIP,
                                        features="lags")
    lags = [c for c in features.columns if c.startswith("y_m")]
    assert lags == [f"y_m{k}" for k in range(SKIP + WINDOW, SKIP, -1)]
    result = match(features, treatment="treated", covariates=lags, unit="unit")
    assert result.balance().loc[lags, "smd_after"].abs().max() < 0.1
    return placebo_did(result, panel, REFERENCE, window=WINDOW, skip=SKIP)


def test_placebo_detects_planted_pretrend():
    pretrend = 0.05
    placebo = _placebo(pretrend)
    # mean of the skipped periods (11-14) minus mean of the window (5-10): 5 periods apart
    expected = pretrend * ((REFERENCE - SKIP / 2 - 0.5) - (REFERENCE - SKIP - WINDOW / 2 - 0.5))
    assert expected == pytest.approx(0.25)
    assert placebo.p_value < 0.01  # observed z = 8.2 (at least 6.2 on seeds 0-11)
    # observed 0.28 (0.22-0.34 on seeds 0-11): matching on noisy levels adds a little
    # regression to the mean on top of the 0.25 of the planted trend
    assert 0.5 * expected < placebo.estimate < 2 * expected
    assert placebo.conf_low > 0
    assert len(placebo.by_period) == SKIP
    by_period = placebo.by_period["estimate"]
    assert by_period.iat[-1] > by_period.iat[0]  # the gap keeps growing: observed 0.17 -> 0.34


def test_placebo_is_quiet_without_pretrend():
    placebo = _placebo(0.0)
    assert placebo.p_value > 0.01  # observed 0.66 (p > 0.01 on all of seeds 0-11)
    assert abs(placebo.estimate) < 3 * placebo.std_error
    assert placebo.n_treated == placebo.n_control  # 1:1 without replacement


def test_slope_features_do_not_warn_about_regression_to_the_mean():
    sim = simulate_staggered(seed=PRETREND_SEED, **PRETREND)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RegressionToMeanWarning)
        features = outcome_trajectories(staggered_panel(sim.data), reference=REFERENCE,
                                        window=WINDOW, skip=SKIP, features="slope")
    assert list(features.columns) == ["unit", "treated", "y_slope"]


# ------------------------------------------------------------------------------------------
# 3. Monte Carlo: bias of matched vs unmatched DiD
# ------------------------------------------------------------------------------------------
def test_monte_carlo_matched_did_is_unbiased():
    errors, biases = [], []
    for seed in range(100, 108):
        sim = simulate_staggered(seed=seed, **SELECTION)
        panel, units = staggered_panel(sim.data), _unit_table(sim)
        truth = float(sim.true_effects("y", kind="overall")["att"].iat[0])
        biases.append(_cs_overall(panel)[0] - truth)
        result = match(units, treatment="treated", covariates=["x"], unit="unit")
        errors.append(_cs_overall(result.apply(panel))[0]
                      - _true_att_of_kept(sim, units, result.weights))
    errors, biases = np.array(errors), np.array(biases)
    assert biases.min() > 0.3  # every replication is clearly biased: observed 0.53-0.74
    standard_error = errors.std(ddof=1) / np.sqrt(len(errors))
    assert abs(errors.mean()) < 3 * standard_error + 0.02  # observed 0.018 (MC SE 0.027)
    assert abs(errors.mean()) < 0.1 * biases.mean()
