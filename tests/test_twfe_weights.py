"""De Chaisemartin-D'Haultfoeuille weights: closed forms, known effects, diff-diff, errors."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from _builders import staggered_panel
from scipy.optimize import minimize

from evaluation import Panel
from evaluation.errors import (
    EvaluationError,
    InvalidOptionError,
    MissingColumnError,
    PanelError,
)
from evaluation.estimators.did import TwoWayFixedEffects, fit_two_way
from evaluation.estimators.twfe_weights import TWFEWeights, sign_reversal_spread, twfe_weights
from evaluation.simulate import simulate_staggered


def two_unit_panel(effects: dict[int, list[float]]) -> pd.DataFrame:
    """Unit 1 adopts in period 2, unit 2 in period 4 (T = 4); ``effects`` per period."""
    rows = [{"unit": unit, "time": t, "cohort": cohort,
             "y": 3.0 * unit - 0.5 * t + effects[unit][t - 1]}
            for unit, cohort in ((1, 2), (2, 4)) for t in range(1, 5)]
    return pd.DataFrame(rows)


def effects_truth(sim) -> pd.DataFrame:
    return sim.truth.query("kind == 'group_time'")


@pytest.mark.filterwarnings("ignore::evaluation.errors.FewClustersWarning")
def test_weights_of_the_classic_two_cohort_example_by_hand():
    # Shares 1/2, periods 1-4: Dbar_t = (0, 1/2, 1/2, 1), Dbar = 1/2; the residuals of the
    # treated cells are 1/4, 1/4, -1/4 (early unit, periods 2-4) and 1/4 (late, period 4),
    # so the weights are 1/2, 1/2, -1/2, 1/2: the early unit's last period counts negatively.
    data = two_unit_panel({1: [0, 1, 2, 3], 2: [0, 0, 0, 1]})
    result = twfe_weights(staggered_panel(data))
    assert result.table[["group", "time", "event_time"]].values.tolist() == [
        [2, 2, 0], [2, 3, 1], [2, 4, 2], [4, 4, 0]]
    assert np.allclose(result.table["residual"], [0.25, 0.25, -0.25, 0.25], atol=1e-14)
    assert np.allclose(result.table["weight"], [0.5, 0.5, -0.5, 0.5], atol=1e-14)
    assert np.allclose(result.table["share"], 0.25, atol=1e-15)
    assert (result.n_negative, result.n_positive) == (1, 3)
    assert (result.negative_sum, result.positive_sum) == pytest.approx((-0.5, 1.5), abs=1e-14)
    # beta = (1 + 2 - 3 + 1) / 2 = 0.5, as the regression finds.
    twfe = float(TwoWayFixedEffects().fit(staggered_panel(data)).estimates["ATT"])
    assert result.twfe == pytest.approx(0.5, abs=1e-12) and twfe == pytest.approx(0.5)
    # w = W/P = (2, 2, -2, 2): sigma(w) = sqrt(3); the all-negative effects closest to
    # equal put -2 beta on the negative cell alone: sd = beta sqrt(3)/2.
    assert result.sigma_fe == pytest.approx(0.5 / np.sqrt(3), abs=1e-12)
    assert result.underline_sigma_fe == pytest.approx(0.5 * np.sqrt(3) / 2, abs=1e-12)


def test_known_effects_recombine_to_twfe_exactly():
    sim = simulate_staggered(n_units=900, n_periods=9, cohorts=(3, 5, 8), never_share=0.2,
                             effect=1.0, dynamic=0.4, cohort_effects=(2.0, 1.0, 0.5),
                             noise=0.0, seed=21)
    panel = staggered_panel(sim.data)
    result = twfe_weights(panel)
    twfe = float(TwoWayFixedEffects().fit(panel).estimates["ATT"])
    assert result.table["weight"].sum() == pytest.approx(1.0, abs=1e-12)
    assert result.twfe == pytest.approx(twfe, abs=1e-12)
    assert result.implied_estimate(effects_truth(sim)) == pytest.approx(twfe, abs=1e-10)
    assert result.info["cell formula - TWFE"] == pytest.approx(0.0, abs=1e-10)
    assert len(result.table) == (9 - 3 + 1) + (9 - 5 + 1) + (9 - 8 + 1)


def test_known_effects_recombine_with_unit_weights():
    sim = simulate_staggered(n_units=900, n_periods=8, cohorts=(3, 6), never_share=0.3,
                             dynamic=0.5, noise=0.0, seed=22)
    weighted = twfe_weights(staggered_panel(sim.data, weights="weight"))
    plain = twfe_weights(staggered_panel(sim.data))
    assert abs(weighted.twfe - plain.twfe) > 1e-4
    assert weighted.implied_estimate(effects_truth(sim)) == pytest.approx(weighted.twfe,
                                                                         abs=1e-10)
    units = sim.data.drop_duplicates("unit").set_index("unit")
    cohort_mass = units.groupby("cohort")["weight"].sum()
    treated_mass = (cohort_mass[3] * 6 + cohort_mass[6] * 3)
    first = weighted.table.iloc[0]
    assert first["share"] == pytest.approx(cohort_mass[3] / treated_mass, abs=1e-14)


def test_growing_effects_give_negative_weights_and_a_reversed_sign():
    # No never-treated units, effects growing by one per period: every ATT(g,t) >= 1, yet
    # the late periods of the early cohort get negative weight and TWFE is negative.
    sim = simulate_staggered(n_units=3000, n_periods=10, cohorts=(3, 6), never_share=0.0,
                             effect=1.0, dynamic=1.0, noise=0.0, seed=3)
    result = twfe_weights(staggered_panel(sim.data))
    negative = result.table[result.table["weight"] < 0]
    assert negative[["group", "time"]].values.tolist() == [[3, t] for t in range(6, 11)]
    assert result.negative_sum == pytest.approx(-5 / 7, abs=1e-12)
    assert result.positive_sum == pytest.approx(12 / 7, abs=1e-12)
    truth = effects_truth(sim).query("event_time >= 0")
    assert truth["att"].min() == pytest.approx(1.0)
    assert result.twfe == pytest.approx(-1 / 7, abs=1e-10)
    assert result.implied_estimate(truth) == pytest.approx(result.twfe, abs=1e-10)
    assert 0 < result.sigma_fe < result.underline_sigma_fe


def _qp_spread(share: np.ndarray, weight: np.ndarray, beta: float) -> float:
    """Smallest sd of effects all of sign -beta with sum(P w effect) = beta, numerically."""
    def variance(delta):
        return share @ (delta - share @ delta) ** 2

    constraint = {"type": "eq", "fun": lambda d: share @ (weight * d) - beta}
    start = np.where(weight < 0, beta / (share @ np.minimum(weight, 0) ** 2) * weight, 0.0)
    bounds = [(None, 0.0)] * share.size if beta > 0 else [(0.0, None)] * share.size
    fit = minimize(variance, start, constraints=[constraint], bounds=bounds,
                   method="SLSQP", options={"ftol": 1e-15, "maxiter": 1000})
    assert fit.success
    return float(np.sqrt(fit.fun))


@pytest.mark.parametrize("seed", range(6))
def test_sign_reversal_formula_solves_corollary_one_program(seed):
    rng = np.random.default_rng(seed)
    n = 8
    share = rng.dirichlet(np.ones(n))
    raw = rng.normal(1.0, 1.5, n)
    weight = raw / (share @ raw)
    assert (weight < 0).any()
    beta = float(rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 2.0))
    closed = sign_reversal_spread(share, weight, beta)
    assert closed == pytest.approx(_qp_spread(share, weight, beta), rel=1e-5)


def test_summary_explains_an_undefined_sign_reversal_measure():
    # With never-treated units and equal shares, cohort (2) x periods has no negative weight.
    data = two_unit_panel({1: [0, 1, 1, 1], 2: [0, 0, 0, 0]}).assign(
        cohort=lambda d: d["cohort"].where(d["unit"] == 1, 0))
    result = twfe_weights(staggered_panel(data))
    assert result.n_negative == 0 and np.isnan(result.underline_sigma_fe)
    assert np.allclose(result.table["weight"], 1 / 3, atol=1e-14)
    assert np.isnan(result.sigma_fe)  # equal weights: sigma(w) = 0
    assert "compatible): not defined (no negative weight" in str(result.summary())
    assert "compatible): not defined (all weights equal" in str(result.summary())


def test_sign_reversal_is_undefined_without_negative_weights():
    share = np.full(4, 0.25)
    assert np.isnan(sign_reversal_spread(share, np.array([0.5, 1.0, 1.0, 1.5]), 1.0))
    assert np.isnan(sign_reversal_spread(share, np.array([-1.0, 1.0, 2.0, 2.0]), 0.0))


def _diff_diff_weights(data: pd.DataFrame, weights: str | None):
    from diff_diff import SurveyDesign, twowayfeweights

    # diff-diff's groups are our cohorts (with unit weights: its unit-level cells).
    group = "cohort" if weights is None else "unit"
    design = None if weights is None else SurveyDesign(weights=weights)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = twowayfeweights(data, outcome="y", unit=group, time="time",
                                 treatment="treated", survey_design=design)
    if weights is not None:
        cells = result.weights.merge(data[["unit", "time", "cohort"]], on=["unit", "time"])
        result.weights = cells.groupby(["cohort", "time"], as_index=False)["weight"].sum()
    return result


@pytest.mark.parametrize(("never_share", "weights"),
                         [(0.3, None), (0.0, None), (0.3, "weight")])
def test_weights_agree_with_diff_diff_twowayfeweights(never_share, weights):
    pytest.importorskip("diff_diff")
    data = simulate_staggered(n_units=400 if weights is None else 120, n_periods=8,
                              cohorts=(3, 5, 7), never_share=never_share, dynamic=0.5,
                              noise=2.0, seed=11).data
    ours = twfe_weights(staggered_panel(data, weights=weights))
    reference = _diff_diff_weights(data, weights)
    treated = data.drop_duplicates(["cohort", "time"]).query("treated == 1")[
        ["cohort", "time"]]
    cells = reference.weights.merge(treated, on=["cohort", "time"]).rename(
        columns={"cohort": "group"}).sort_values(["group", "time"]).reset_index(drop=True)
    assert cells[["group", "time"]].values.tolist() == ours.table[["group", "time"]].values.tolist()
    assert np.allclose(ours.table["weight"], cells["weight"], atol=1e-8, rtol=0)
    assert ours.twfe == pytest.approx(reference.beta_fe, abs=1e-8)
    assert ours.sigma_fe == pytest.approx(reference.sigma_fe, abs=1e-8)
    if weights is None:
        assert ours.n_negative / len(ours.table) == pytest.approx(
            reference.fraction_negative)


def switching_panel() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Units in five treatment paths (two switch off) with unit-specific effects.

    Returns the long data and the average effect of each treated (group, path, time) cell.
    """
    paths = ["00111", "01100", "01111", "00000", "00101"]
    rows = []
    for unit in range(30):
        path = paths[unit % 5]
        for t in range(1, 6):
            treated = int(path[t - 1])
            effect = (1.0 + unit / 10 + t**2 / 5) * treated
            rows.append({"unit": unit, "time": t, "status": treated, "path": path,
                         "y": unit * 0.7 + np.sin(t) + effect,
                         "effect": effect})
    data = pd.DataFrame(rows)
    first = data[data["status"] == 1].groupby("unit")["time"].min()
    data["group"] = data["unit"].map(first)
    att = (data[data["status"] == 1].groupby(["group", "path", "time"], as_index=False)
           ["effect"].mean().rename(columns={"effect": "att"}))
    return data, att


def test_switching_treatment_groups_cells_by_path():
    data, att = switching_panel()
    panel = Panel(data, unit="unit", time="time", outcome="y", status="status")
    result = twfe_weights(panel)
    assert "path" in result.table and result.keys == ["group", "path", "time"]
    assert sorted(result.table["path"].unique()) == ["00101", "00111", "01100", "01111"]
    assert len(result.table) == 3 + 2 + 4 + 2
    assert result.info["absorbing"] is False
    status = data["status"].to_numpy(dtype=float)[:, None]
    twfe = float(fit_two_way(panel, status).params[0])  # TwoWayFixedEffects refuses it
    assert result.twfe == pytest.approx(twfe, abs=1e-12)
    assert result.table["weight"].sum() == pytest.approx(1.0, abs=1e-12)
    assert result.implied_estimate(att) == pytest.approx(twfe, abs=1e-10)


def test_switching_weights_agree_with_diff_diff_unit_cells():
    pytest.importorskip("diff_diff")
    from diff_diff import twowayfeweights

    data, _ = switching_panel()
    result = twfe_weights(Panel(data, unit="unit", time="time", outcome="y",
                                status="status"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = twowayfeweights(data, outcome="y", unit="unit", time="time",
                                    treatment="status")
    cells = reference.weights.merge(data[["unit", "time", "status", "path"]],
                                    on=["unit", "time"]).query("status == 1")
    summed = cells.groupby(["path", "time"])["weight"].sum()
    ours = result.table.set_index(["path", "time"])["weight"]
    assert np.allclose(ours.sort_index(), summed.sort_index(), atol=1e-8, rtol=0)
    assert result.twfe == pytest.approx(reference.beta_fe, abs=1e-8)
    assert result.sigma_fe == pytest.approx(reference.sigma_fe, abs=1e-8)


def test_implied_estimate_contracts():
    sim = simulate_staggered(n_units=200, n_periods=6, cohorts=(3,), noise=0.0, seed=2)
    result = twfe_weights(staggered_panel(sim.data))
    truth = effects_truth(sim)
    with pytest.raises(MissingColumnError, match="att lacks the column"):
        result.implied_estimate(truth.drop(columns="att"))
    with pytest.raises(InvalidOptionError, match=r"exactly one effect per treated cell; 1 "
                                                 r"cell\(s\) have none"):
        result.implied_estimate(truth.query("time != 6"))
    with pytest.raises(InvalidOptionError, match="exactly one effect per treated cell"):
        result.implied_estimate(pd.concat([truth, truth]))
    estimates = truth.rename(columns={"att": "estimate"})
    assert result.implied_estimate(estimates, column="estimate") == pytest.approx(
        result.twfe, abs=1e-10)


def test_summary_and_plot_show_the_weights():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = two_unit_panel({1: [0, 1, 2, 3], 2: [0, 0, 0, 1]})
    result = twfe_weights(staggered_panel(data))
    assert isinstance(result, TWFEWeights)
    overview = result.overview()
    assert overview.loc["negative"].tolist() == [1, pytest.approx(-0.5)]
    text = str(result.summary())
    assert "TWFE coefficient: 0.5" in text and "treated cells:" in text
    assert f"sigma_fe (ATT = 0 compatible): {0.5 / np.sqrt(3):.6g}" in text
    ax = result.plot()
    assert [line.get_ydata().tolist() for line in ax.lines[:2]] == [
        pytest.approx([0.5, 0.5, -0.5]), pytest.approx([0.5])]
    assert ax.get_title() == "1 of 4 weights negative (sum -0.5)"
    plt.close(ax.figure)


def test_unbalanced_panel_is_refused():
    data = simulate_staggered(n_units=100, n_periods=6, cohorts=(3,), seed=1).data.iloc[2:]
    with pytest.raises(PanelError, match=r"twfe_weights needs a balanced panel.*"
                                         r"Balance the panel first"):
        twfe_weights(staggered_panel(data))


def test_panel_without_treated_units_or_variation_is_refused():
    data = two_unit_panel({1: [0] * 4, 2: [0] * 4})
    with pytest.raises(PanelError, match="needs treated units"):
        twfe_weights(staggered_panel(data.assign(cohort=0)))
    with pytest.raises(PanelError, match="no variation beyond the unit and period effects"):
        twfe_weights(staggered_panel(data.assign(cohort=2)))


def test_a_failed_identity_check_raises(monkeypatch):
    import evaluation.estimators.twfe_weights as module

    monkeypatch.setattr(module, "static_twfe_coefficient", lambda panel: 0.5 - 1e-6)
    data = two_unit_panel({1: [0, 1, 2, 3], 2: [0, 0, 0, 1]})
    with pytest.raises(EvaluationError, match=r"failed their identity checks \(weights sum to "
                                              r"1 [-+][0-9.e+-]+, cell formula minus regression "
                                              r"\+1e-06\)"):
        twfe_weights(staggered_panel(data))
