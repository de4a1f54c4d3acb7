"""Roth (2022) pre-test power: analytic values against seeded simulations of the test."""

import numpy as np
import pytest
from _builders import staggered_panel
from scipy.special import ndtri
from scipy.stats import chi2

from evaluation.errors import InvalidOptionError
from evaluation.estimators.sun_abraham import SunAbraham
from evaluation.inference.pretrend_power import (
    conditional_bias,
    pretest_power,
    pretrend_power,
    slope_for_power,
)
from evaluation.simulate import simulate_staggered

TIMES = [-4, -3, -2, 0, 1, 2]


def _sigma(seed=1, n=6):
    rng = np.random.default_rng(seed)
    b = rng.normal(size=(n, n))
    return 0.01 * (b @ b.T / n + np.eye(n))


def _simulate(sigma, slope, draws=400_000, seed=5, alpha=0.05):
    times = np.array(TIMES, float)
    pre = times < -1
    delta = slope * (times + 1)
    x = np.random.default_rng(seed).multivariate_normal(delta, sigma, size=draws)
    xp, sp = x[:, pre], sigma[np.ix_(pre, pre)]
    wald = np.einsum("ij,ij->i", xp, np.linalg.solve(sp, xp.T).T) > chi2.ppf(1 - alpha, pre.sum())
    indiv = (np.abs(xp) > ndtri(1 - alpha / 2) * np.sqrt(np.diag(sp))).any(axis=1)
    return x, delta, wald, indiv


@pytest.mark.parametrize("test", ["wald", "individual"])
def test_power_matches_simulated_rejection_rate(test):
    sigma = _sigma()
    slope = 0.05
    _, _, wald, indiv = _simulate(sigma, slope)
    simulated = (wald if test == "wald" else indiv).mean()
    analytic = pretest_power(sigma, TIMES, slope, test=test)
    se = np.sqrt(simulated * (1 - simulated) / len(wald))
    assert 0.05 < analytic < 0.99
    assert abs(analytic - simulated) < 4 * se


def test_power_is_size_at_zero_slope_and_grows():
    sigma = _sigma()
    assert pretest_power(sigma, TIMES, 0.0, test="wald") == pytest.approx(0.05, abs=1e-12)
    powers = [pretest_power(sigma, TIMES, g, test="individual") for g in (0.0, 0.02, 0.05, 0.1)]
    assert np.all(np.diff(powers) > 0)


@pytest.mark.parametrize("test", ["wald", "individual"])
@pytest.mark.parametrize("target", [0.5, 0.8])
def test_slope_for_power_inverts_power(test, target):
    sigma = _sigma()
    slope = slope_for_power(sigma, TIMES, target, test=test)
    assert slope > 0
    assert pretest_power(sigma, TIMES, slope, test=test) == pytest.approx(target, abs=1e-5)


def test_single_pre_period_power_closed_form():
    sigma = np.array([[0.04, 0.01], [0.01, 0.05]])
    slope = 0.3
    # delta at -2 is -0.3; power = P(|N(-0.3, 0.2^2)| > 1.96 * 0.2)
    from scipy.special import ndtr

    z = ndtri(0.975)
    expected = 1 - (ndtr(z - (-0.3) / 0.2) - ndtr(-z - (-0.3) / 0.2))
    assert pretest_power(sigma, [-2, 0], slope, test="individual") == pytest.approx(expected)
    # with one pre-period the Wald test is the squared z-test
    assert pretest_power(sigma, [-2, 0], slope, test="wald") == pytest.approx(expected)


@pytest.mark.parametrize("test", ["wald", "individual"])
def test_conditional_bias_matches_simulation(test):
    sigma = _sigma(seed=3)
    slope = 0.04
    x, delta, wald, indiv = _simulate(sigma, slope, seed=9)
    passed = ~(wald if test == "wald" else indiv)
    times = np.array(TIMES)
    simulated = x[passed][:, times >= 0].mean(axis=0)  # tau = 0, so the mean is the bias
    table = conditional_bias(sigma, TIMES, slope, test=test, draws=200_000, seed=2)
    se_sim = x[passed][:, times >= 0].std(axis=0) / np.sqrt(passed.sum())
    tol = 4 * np.sqrt(se_sim**2 + table["mc_std_error"].to_numpy() ** 2)
    np.testing.assert_array_less(np.abs(table["bias_given_pass"].to_numpy() - simulated), tol)
    np.testing.assert_allclose(table["delta"], delta[times >= 0])
    assert table["pass_probability"].iloc[0] == pytest.approx(passed.mean(), abs=0.01)


def test_conditional_bias_single_pre_period_is_closed_form():
    sigma = np.array([[0.04, 0.02], [0.02, 0.05]])
    exact = conditional_bias(sigma, [-2, 0], 0.1, test="individual")
    simulated = conditional_bias(sigma, [-2, 0], 0.1, test="wald", draws=400_000, seed=4)
    assert exact["mc_std_error"].iloc[0] == 0
    assert exact["bias_given_pass"].iloc[0] == pytest.approx(
        simulated["bias_given_pass"].iloc[0], abs=4 * simulated["mc_std_error"].iloc[0])


def test_pretrend_power_on_event_study():
    sim = simulate_staggered(n_units=600, n_periods=8, cohorts=(4, 6), effect=1.0, seed=11)
    res = SunAbraham().fit(staggered_panel(sim.data))
    out = pretrend_power(res, draws=20_000)
    assert 0 < out.slope_50 < out.slope_80
    assert out.power_at_slope == pytest.approx(0.8, abs=1e-5)
    assert list(out.bias["event_time"]) == sorted(res.table.query("event_time >= 0")["event_time"])


def test_errors():
    sigma = _sigma()
    with pytest.raises(InvalidOptionError, match="pre-period"):
        pretest_power(sigma[3:, 3:], [0, 1, 2], 0.1)
    with pytest.raises(InvalidOptionError, match="test must be"):
        pretest_power(sigma, TIMES, 0.1, test="f")
    with pytest.raises(InvalidOptionError, match="power must"):
        slope_for_power(sigma, TIMES, 0.01)
