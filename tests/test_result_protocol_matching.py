"""Matching, synthetic-control and placebo results follow the shared result protocol.

Each result offers ``summary()`` (text and HTML, never prints), ``to_frame()`` (a tidy
table agreeing with its attributes), ``plot(ax=None)`` (returns the Axes, never shows the
figure) and ``_repr_html_``. Synthetic control also reports when its optimiser did not
converge.
"""

from __future__ import annotations

import importlib
import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from scipy import optimize, stats

from evaluation import Panel
from evaluation.errors import ConvergenceWarning, RegressionToMeanWarning, UnmatchedUnitsWarning
from evaluation.matching import (
    MatchResult,
    PlaceboResult,
    SyntheticControl,
    match,
    outcome_trajectories,
    placebo_did,
    synthetic_control,
)
from evaluation.matching.result import UNIT_COLUMNS
from evaluation.protocol import ResultProtocol, Summary
from evaluation.simulate import simulate_staggered

#: The module (its name is shadowed by the function in ``evaluation.matching``).
SYNTHETIC_MODULE = importlib.import_module(synthetic_control.__module__)


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def units() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 80
    a, b = rng.normal(size=n), rng.normal(size=n)
    t = (rng.random(n) < 1 / (1 + np.exp(-(-0.6 + 0.8 * a - 0.4 * b)))).astype(int)
    t[:3], t[3:6] = 1, 0
    return pd.DataFrame({"id": np.arange(100, 100 + n), "t": t, "a": a, "b": b,
                         "region": np.array(["north", "south", "east"])[rng.integers(0, 3, n)]})


@pytest.fixture(scope="module")
def synthetic_panel() -> Panel:
    rng = np.random.default_rng(12)
    n_donors, n_periods, start = 6, 14, 11
    donors = rng.normal(size=(n_donors, n_periods)).cumsum(axis=1) + rng.normal(
        0, 3, size=(n_donors, 1))
    treated = 0.3 * donors[1] + 0.7 * donors[4]
    treated[start - 1:] += 2.0
    data = pd.DataFrame({"unit": np.repeat(np.arange(7), n_periods),
                         "time": np.tile(np.arange(1, n_periods + 1), 7),
                         "y": np.vstack([treated, donors]).ravel(),
                         "cohort": np.repeat([start, 0, 0, 0, 0, 0, 0], n_periods)})
    return Panel(data, unit="unit", time="time", outcome="y", cohort="cohort",
                 never_treated=0)


@pytest.fixture(scope="module")
def placebo() -> PlaceboResult:
    sim = simulate_staggered(n_units=120, n_periods=10, cohorts=(5, 8), never_share=0.5,
                             seed=9)
    panel = Panel(sim.data, unit="unit", time="time", outcome="y", cohort="cohort",
                  never_treated=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RegressionToMeanWarning)
        table = outcome_trajectories(panel, 8, window=4, skip=2, features="lags")
    matched = match(table, treatment="treated", unit="unit",
                    covariates=[c for c in table.columns if c.startswith("y_m")],
                    distance="mahalanobis")
    return placebo_did(matched, panel, 8, window=4, skip=2)


@pytest.fixture(autouse=True)
def no_show(monkeypatch):
    """Fail if a result shows its figure; close the figures a test made."""
    def show(*args, **kwargs):
        raise AssertionError("plot() must not call plt.show()")

    monkeypatch.setattr(plt, "show", show)
    yield
    plt.close("all")


def check_plot(result, n_artists) -> Axes:
    """plot() draws on a given Axes without a new figure, and makes one when not given."""
    _, ax = plt.subplots()
    figures = plt.get_fignums()
    assert result.plot(ax=ax) is ax
    assert plt.get_fignums() == figures
    assert n_artists(ax) > 0
    own = result.plot()
    assert isinstance(own, Axes) and own is not ax
    assert len(plt.get_fignums()) == len(figures) + 1
    return ax


def check_summary(result, capsys) -> Summary:
    """summary() returns a Summary with text and HTML, prints nothing, backs repr and str."""
    summary = result.summary()
    assert isinstance(summary, Summary)
    assert capsys.readouterr().out == ""
    assert isinstance(result, ResultProtocol)
    assert result._repr_html_() == summary.as_html()
    assert str(result) == summary.as_text() == str(summary)
    html = summary.as_html()
    assert html.startswith("<h4>") and "<table" in html
    return summary


# ---------------------------------------------------------------------------------------------
# MatchResult
# ---------------------------------------------------------------------------------------------


def test_match_result_summary(units, capsys):
    result = match(units, treatment="t", covariates=["a", "b", "region"], unit="id")
    assert isinstance(result, MatchResult)
    summary = check_summary(result, capsys)
    pd.testing.assert_frame_equal(summary.table, result.sample_sizes(), check_names=False)
    assert summary.table.index.name == "Sample sizes"
    [(name, balance)] = summary.tables
    assert name.startswith("Balance")
    pd.testing.assert_frame_equal(balance, result.balance())
    assert summary.warnings == ()
    assert "method=nearest" in summary.notes and "distance=logit" in summary.notes
    text = summary.as_text()
    sizes = result.sample_sizes()
    assert f"{sizes.loc['All', 'control']:.6g}" in text
    assert f"{sizes.loc['Matched (ESS)', 'control']:.6g}" in text
    assert f"{balance.loc['a', 'smd_after']:.6g}" in text
    assert "WARNING" not in text
    assert f"{balance.loc['a', 'smd_after']:.6g}" in summary.as_html()


def test_match_result_summary_warns_about_dropped_and_short_treated(units, capsys):
    with pytest.warns(UnmatchedUnitsWarning):
        dropped = match(units, treatment="t", covariates=["a", "b"], unit="id", caliper=0.05)
    n_dropped = int((dropped.units["reason"] != "").sum())
    summary = check_summary(dropped, capsys)
    assert len(summary.warnings) == 1
    assert summary.warnings[0].startswith(
        f"{n_dropped} treated: no available control within the caliper")
    assert f"WARNING: {n_dropped} treated" in summary.as_text()
    assert "caliper=0.05" in summary.notes

    with pytest.warns(UnmatchedUnitsWarning, match="fewer than 3 controls"):
        short = match(units, treatment="t", covariates=["a", "b"], unit="id", ratio=3)
    n_short = int((short.matches.groupby("treated_unit").size() < 3).sum())
    assert n_short > 0
    assert f"{n_short} treated units got fewer than 3 controls." in short.summary().warnings


def test_match_result_frame_and_plot(units):
    result = match(units, treatment="t", covariates=["a", "b", "region"], unit="id",
                   method="ipw")
    frame = result.to_frame()
    assert tuple(frame.columns) == UNIT_COLUMNS
    weights = result.unit_weights()
    assert list(frame["unit"]) == list(weights.index)
    np.testing.assert_array_equal(frame["weight"], weights.to_numpy())
    np.testing.assert_array_equal(frame["treated"],
                                  result.units.set_index("unit").loc[weights.index, "treated"])
    ax = check_plot(result, lambda ax: len(ax.collections))
    assert [t.get_text() for t in ax.get_yticklabels()] == list(result.balance().index)


# ---------------------------------------------------------------------------------------------
# SyntheticControl
# ---------------------------------------------------------------------------------------------


def test_synthetic_control_summary(synthetic_panel, capsys):
    fit = synthetic_control(synthetic_panel, [0], treatment_start=11)
    assert isinstance(fit, SyntheticControl)
    assert fit.converged and fit.warnings == ()
    assert fit.info["status"] == 0 and fit.info["iterations"] > 0
    assert fit.info["duality_gap"] < 1e-6
    summary = check_summary(fit, capsys)
    stats_ = fit.fit_statistics()
    np.testing.assert_allclose(summary.table["value"], stats_.to_numpy())
    [(name, donors)] = summary.tables
    assert name == "Donor weights"
    assert list(donors.index) == [5, 2]  # 0.7 * unit 5 + 0.3 * unit 2, largest first
    np.testing.assert_allclose(donors["weight"], [0.7, 0.3], atol=1e-6)
    text = summary.as_text()
    assert f"{stats_['post_mean_gap']:.6g}" in text
    assert f"{fit.weights[5]:.6g}" in text
    assert "fitted on 10 pre-periods (1 to 10); 4 post-periods from 11" in text
    assert "converged: True" in text and "WARNING" not in text
    assert f"{stats_['post_mean_gap']:.6g}" in summary.as_html()


def test_synthetic_control_frame_and_plot(synthetic_panel):
    fit = synthetic_control(synthetic_panel, [0], treatment_start=11, pre_periods=6)
    frame = fit.to_frame()
    assert list(frame.columns) == ["period", "treated", "synthetic", "gap", "pre"]
    assert list(frame["period"]) == list(range(5, 15))
    np.testing.assert_array_equal(frame["treated"], fit.paths["treated"])
    np.testing.assert_array_equal(frame["synthetic"], fit.paths["synthetic"])
    np.testing.assert_allclose(frame["gap"], frame["treated"] - frame["synthetic"])
    assert frame["pre"].sum() == 6
    check_plot(fit, lambda ax: len(ax.get_lines()))


def _with_maxiter(maxiter):
    real = optimize.minimize

    def minimize(*args, **kwargs):
        return real(*args, **{**kwargs, "options": {**kwargs["options"], "maxiter": maxiter}})

    return minimize


def test_synthetic_control_warns_when_the_optimiser_stops_early(synthetic_panel, monkeypatch):
    monkeypatch.setattr(SYNTHETIC_MODULE, "minimize", _with_maxiter(1))
    with pytest.warns(ConvergenceWarning,
                      match=r"stopped without converging \(status 9: Iteration limit reached; "
                            r"1 iterations"):
        fit = synthetic_control(synthetic_panel, [0], treatment_start=11)
    assert not fit.converged
    assert fit.info["status"] == 9 and fit.info["iterations"] == 1
    assert fit.info["message"] == "Iteration limit reached"
    assert fit.info["duality_gap"] > 1e-3
    assert fit.weights.sum() == pytest.approx(1.0)  # still a valid (simplex) last iterate
    summary = fit.summary()
    assert summary.warnings == fit.warnings and len(fit.warnings) == 1
    assert "WARNING: the SLSQP optimiser stopped without converging" in summary.as_text()
    assert "converged: False" in summary.as_text()


def test_synthetic_control_warns_on_a_reported_failure(synthetic_panel, monkeypatch):
    def failed(fun, x0, **kwargs):
        return optimize.OptimizeResult(x=x0, success=False, status=8, nit=4,
                                       message="Positive directional derivative for linesearch")

    monkeypatch.setattr(SYNTHETIC_MODULE, "minimize", failed)
    with pytest.warns(ConvergenceWarning, match="status 8: Positive directional derivative"):
        fit = synthetic_control(synthetic_panel, [0], treatment_start=11)
    assert not fit.converged and fit.info["status"] == 8 and fit.info["iterations"] == 4
    np.testing.assert_allclose(fit.weights, 1 / 6)


def test_synthetic_control_accepts_a_reported_failure_at_the_optimum(synthetic_panel,
                                                                       monkeypatch):
    """SLSQP's "positive directional derivative" at the solution is not a failure."""
    real = optimize.minimize

    def failed_at_optimum(fun, x0, **kwargs):
        solved = real(fun, x0, **kwargs)
        return optimize.OptimizeResult(x=solved.x, success=False, status=8, nit=solved.nit,
                                       message="Positive directional derivative for linesearch")

    monkeypatch.setattr(SYNTHETIC_MODULE, "minimize", failed_at_optimum)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        fit = synthetic_control(synthetic_panel, [0], treatment_start=11)
    assert fit.converged and fit.warnings == ()
    assert fit.info["status"] == 8
    np.testing.assert_allclose(fit.weights.to_numpy(), [0, 0.3, 0, 0, 0.7, 0], atol=1e-6)


# ---------------------------------------------------------------------------------------------
# PlaceboResult
# ---------------------------------------------------------------------------------------------


def test_placebo_frame_agrees_with_attributes(placebo):
    frame = placebo.to_frame()
    assert list(frame.columns) == ["term", "period", "estimate", "std_error", "ci_lower",
                                   "ci_upper", "p_value"]
    assert list(frame["term"]) == ["pooled", "6", "7"]
    assert frame["period"].tolist() == [None, 6, 7]
    pooled = frame.iloc[0]
    assert (pooled["estimate"], pooled["std_error"], pooled["ci_lower"], pooled["ci_upper"],
            pooled["p_value"]) == (placebo.estimate, placebo.std_error, placebo.conf_low,
                                   placebo.conf_high, placebo.p_value)
    rows = frame.iloc[1:]
    np.testing.assert_array_equal(rows["estimate"], placebo.by_period["estimate"])
    np.testing.assert_array_equal(rows["std_error"], placebo.by_period["std_error"])
    z = stats.norm.ppf(1 - placebo.alpha / 2)
    np.testing.assert_allclose(rows["ci_lower"], rows["estimate"] - z * rows["std_error"])
    np.testing.assert_allclose(rows["ci_upper"], rows["estimate"] + z * rows["std_error"])
    np.testing.assert_allclose(
        rows["p_value"], 2 * stats.norm.sf(np.abs(rows["estimate"] / rows["std_error"])))
    # the pooled interval is built the same way
    assert placebo.conf_low == pytest.approx(placebo.estimate - z * placebo.std_error)


def test_placebo_summary(placebo, capsys):
    summary = check_summary(placebo, capsys)
    assert list(summary.table.index) == ["pooled", "6", "7"]
    assert "period" not in summary.table
    text = summary.as_text()
    for value in (placebo.estimate, placebo.std_error, placebo.p_value,
                  placebo.by_period["estimate"].iloc[1]):
        assert f"{value:.6g}" in text
    assert f"{placebo.n_treated} treated and {placebo.n_control} control units" in text
    assert "95 % normal intervals" in text
    assert f"{placebo.estimate:.6g}" in summary.as_html()


def test_placebo_plot(placebo):
    ax = check_plot(placebo, lambda ax: len(ax.containers))
    assert len(ax.containers) == 2  # skipped periods, pooled
    assert [t.get_text() for t in ax.get_xticklabels()] == ["6", "7", "pooled"]
    pooled_marker = ax.containers[1].lines[0]
    np.testing.assert_allclose(np.asarray(pooled_marker.get_ydata(), dtype=float),
                               [placebo.estimate])
