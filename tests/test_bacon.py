"""Goodman-Bacon decomposition: Theorem 1 by hand, the TWFE identity, diff-diff agreement."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from _builders import staggered_panel

from evaluation import Panel
from evaluation.errors import EvaluationError, NonAbsorbingTreatmentError, PanelError
from evaluation.estimators.bacon import (
    ALWAYS_LABEL,
    EARLIER_VS_LATER,
    LATER_VS_EARLIER,
    NEVER_LABEL,
    TREATED_VS_ALWAYS,
    TREATED_VS_NEVER,
    BaconDecomposition,
    bacon_decomposition,
)
from evaluation.estimators.did import TwoWayFixedEffects
from evaluation.simulate import simulate_staggered


def hand_panel() -> pd.DataFrame:
    """2 never-treated units, one adopting in period 2 and one in period 4; T = 4.

    Effects: the early unit gains 1, 2, 3 in periods 2-4 (growing), the late unit 5 in
    period 4. Unit and period effects are added to show they cancel.
    """
    rows = []
    effects = {1: [0, 0, 0, 0], 2: [0, 0, 0, 0], 3: [0, 1, 2, 3], 4: [0, 0, 0, 5]}
    cohorts = {1: 0, 2: 0, 3: 2, 4: 4}
    for unit, path in effects.items():
        for t in range(1, 5):
            rows.append({"unit": unit, "time": t, "cohort": cohorts[unit],
                         "y": 10.0 * unit + t**2 + path[t - 1]})
    return pd.DataFrame(rows)


def staggered(never_share: float, seed: int = 1, **design) -> pd.DataFrame:
    return simulate_staggered(n_units=400, n_periods=8, cohorts=(3, 5, 7),
                              never_share=never_share, dynamic=0.5, seed=seed, **design).data


def twfe_of(panel: Panel) -> float:
    return float(TwoWayFixedEffects().fit(panel).estimates["ATT"])


@pytest.mark.filterwarnings("ignore::evaluation.errors.FewClustersWarning")
def test_theorem_one_by_hand():
    # n_U = 1/2, n_k = n_l = 1/4, Dbar_k = 3/4, Dbar_l = 1/4 and
    # V^D = 1/16: s_kU = n_k n_U Dk(1-Dk)/V = 0.375, s_lU = 0.375,
    # s_kl^k = n_k n_l (Dk-Dl)(1-Dk)/V = 0.125, s_kl^l = n_k n_l Dl (Dk-Dl)/V = 0.125.
    result = bacon_decomposition(staggered_panel(hand_panel()))
    table = result.table.set_index(["treated_cohort", "comparison_cohort"])
    expected = {(2, NEVER_LABEL): (TREATED_VS_NEVER, 0.375, 2.0),   # mean(1,2,3) - 0
                (4, NEVER_LABEL): (TREATED_VS_NEVER, 0.375, 5.0),
                (2, 4): (EARLIER_VS_LATER, 0.125, 1.5),             # periods 1-3
                (4, 2): (LATER_VS_EARLIER, 0.125, 3.5)}             # 5 - (3 - 1.5)
    assert set(table.index) == set(expected)
    for key, (kind, weight, estimate) in expected.items():
        assert table.loc[key, "type"] == kind
        assert table.loc[key, "weight"] == pytest.approx(weight, abs=1e-14)
        assert table.loc[key, "estimate"] == pytest.approx(estimate, abs=1e-12)
    assert result.twfe == pytest.approx(3.25, abs=1e-12)
    assert twfe_of(staggered_panel(hand_panel())) == pytest.approx(3.25, abs=1e-12)
    assert table.loc[(2, NEVER_LABEL), ["n_treated", "n_comparison"]].tolist() == [1, 2]


@pytest.mark.parametrize(("never_share", "weights", "always"), [
    (0.3, None, 0), (0.0, None, 0), (0.3, "weight", 0), (0.0, "weight", 0), (0.3, None, 40),
    (0.0, None, 40), (0.0, "weight", 40)])
def test_weighted_estimates_reproduce_twfe(never_share, weights, always):
    data = staggered(never_share, seed=5)
    data.loc[data["unit"] <= always, "cohort"] = 1  # treated from the first period
    panel = staggered_panel(data, weights=weights)
    result = bacon_decomposition(panel)
    assert result.table["weight"].sum() == pytest.approx(1.0, abs=1e-10)
    assert (result.table["weight"] > 0).all()
    implied = float((result.table["weight"] * result.table["estimate"]).sum())
    assert implied == pytest.approx(twfe_of(panel), abs=1e-10)
    assert result.twfe == pytest.approx(twfe_of(panel), abs=1e-12)
    by_type = result.by_type()
    assert by_type["weight"].sum() == pytest.approx(1.0, abs=1e-12)
    assert float((by_type["weight"] * by_type["estimate"]).sum()) == pytest.approx(
        result.twfe, abs=1e-10)
    kinds = {EARLIER_VS_LATER, LATER_VS_EARLIER}
    kinds |= {TREATED_VS_NEVER} if never_share else set()
    kinds |= {TREATED_VS_ALWAYS} if always else set()
    assert set(by_type.index) == kinds
    assert by_type["comparisons"].sum() == 6 + 3 * (never_share > 0) + 3 * (always > 0)


def test_unit_weights_change_the_decomposition():
    data = staggered(0.3, seed=5)
    plain = bacon_decomposition(staggered_panel(data))
    weighted = bacon_decomposition(staggered_panel(data, weights="weight"))
    assert abs(weighted.twfe - plain.twfe) > 1e-3
    assert np.abs(weighted.table["weight"] - plain.table["weight"]).max() > 1e-4


def test_period_time_and_status_column_give_the_same_decomposition():
    data = staggered(0.3, seed=7)
    integer = bacon_decomposition(staggered_panel(data))
    monthly = data.assign(month=pd.PeriodIndex.from_ordinals(data["time"] + 600, freq="M"),
                          first=lambda d: pd.PeriodIndex.from_ordinals(
                              np.where(d["cohort"] > 0, d["cohort"] + 600, 0), freq="M"))
    monthly["first"] = monthly["first"].where(monthly["cohort"] > 0)
    by_status = Panel(monthly, unit="unit", time="month", outcome="y", status="treated")
    result = bacon_decomposition(by_status)
    assert result.table["treated_cohort"].iloc[0] == pd.Period("2020-04", freq="M")
    assert np.allclose(result.table["weight"], integer.table["weight"], atol=1e-14, rtol=0)
    assert np.allclose(result.table["estimate"], integer.table["estimate"], atol=1e-12,
                       rtol=0)


def _diff_diff(data: pd.DataFrame, weights: str | None = None
               ) -> dict[tuple, tuple[str, float, float]]:
    from diff_diff import BaconDecomposition as Reference
    from diff_diff import SurveyDesign

    design = None if weights is None else SurveyDesign(weights=weights)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its always-treated remapping notice
        result = Reference().fit(data, outcome="y", unit="unit", time="time",
                                 first_treat="cohort", survey_design=design)
    names = {"treated_vs_never": TREATED_VS_NEVER, "earlier_vs_later": EARLIER_VS_LATER,
             "later_vs_earlier": LATER_VS_EARLIER}
    out = {(int(c.treated_group),
            NEVER_LABEL if c.comparison_type == "treated_vs_never" else int(c.control_group)):
           (names[c.comparison_type], c.weight, c.estimate) for c in result.comparisons}
    out["twfe"] = ("twfe", 1.0, result.twfe_estimate)
    return out


@pytest.mark.parametrize(("never_share", "weights"),
                         [(0.3, None), (0.0, None), (0.3, "weight")])
def test_every_comparison_agrees_with_diff_diff(never_share, weights):
    pytest.importorskip("diff_diff")
    data = staggered(never_share, seed=11, noise=2.0)
    ours = bacon_decomposition(staggered_panel(data, weights=weights))
    reference = _diff_diff(data, weights)
    assert reference.pop("twfe")[2] == pytest.approx(ours.twfe, abs=1e-8)
    assert len(reference) == len(ours.table) == (9 if never_share else 6)
    for row in ours.table.itertuples():
        kind, weight, estimate = reference[(row.treated_cohort, row.comparison_cohort)]
        assert row.type == kind
        assert row.weight == pytest.approx(weight, abs=1e-8)
        assert row.estimate == pytest.approx(estimate, abs=1e-8)


def test_always_treated_comparisons_pool_to_diff_diffs_untreated_group():
    # diff-diff folds always-treated units into the untreated group (Goodman-Bacon 2021,
    # footnote 11); the two comparisons of a cohort add up to its pooled one.
    pytest.importorskip("diff_diff")
    data = staggered(0.3, seed=13)
    data.loc[data["unit"] <= 30, "cohort"] = 1
    ours = bacon_decomposition(staggered_panel(data)).table
    reference = _diff_diff(data)
    assert reference.pop("twfe")[2] == pytest.approx(twfe_of(staggered_panel(data)),
                                                     abs=1e-8)
    for cohort in (3, 5, 7):
        pair = ours[(ours["treated_cohort"] == cohort)
                    & ours["comparison_cohort"].isin([NEVER_LABEL, ALWAYS_LABEL])]
        assert sorted(pair["type"]) == [TREATED_VS_ALWAYS, TREATED_VS_NEVER]
        _, weight, estimate = reference[(cohort, NEVER_LABEL)]
        assert pair["weight"].sum() == pytest.approx(weight, abs=1e-8)
        pooled = float((pair["weight"] * pair["estimate"]).sum() / pair["weight"].sum())
        assert pooled == pytest.approx(estimate, abs=1e-8)
    timing = ours[~ours["comparison_cohort"].isin([NEVER_LABEL, ALWAYS_LABEL])]
    for row in timing.itertuples():
        _, weight, estimate = reference[(row.treated_cohort, row.comparison_cohort)]
        assert (row.weight, row.estimate) == pytest.approx((weight, estimate), abs=1e-8)


def test_forbidden_comparisons_are_biased_by_growing_effects():
    # Effects grow by 1 per period after adoption, identical across cohorts: the clean
    # comparisons estimate positive averages, the later-vs-earlier ones subtract the
    # earlier cohort's growth and come out negative.
    sim = simulate_staggered(n_units=3000, n_periods=10, cohorts=(3, 6), never_share=0.0,
                             effect=1.0, dynamic=1.0, noise=0.0, seed=3)
    result = bacon_decomposition(staggered_panel(sim.data))
    by_type = result.by_type()
    assert by_type.loc[EARLIER_VS_LATER, "estimate"] > 1.0
    assert by_type.loc[LATER_VS_EARLIER, "estimate"] < 0.0
    truth = sim.truth.query("kind == 'overall'")["att"].iloc[0]
    assert result.twfe < truth - 1.0


def test_summary_and_plot_show_the_decomposition():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    result = bacon_decomposition(staggered_panel(hand_panel()))
    assert isinstance(result, BaconDecomposition)
    text = str(result.summary())
    assert "TWFE coefficient: 3.25" in text
    assert "later vs earlier treated" in text and "2x2 comparisons:" in text
    assert "<h4>Goodman-Bacon decomposition" in result._repr_html_()
    assert result.to_frame().equals(result.table) and result.to_frame() is not result.table
    ax = result.plot()
    points = np.vstack([c.get_offsets() for c in ax.collections])
    assert sorted(map(tuple, points.tolist())) == sorted(
        zip(result.table["weight"], result.table["estimate"], strict=True))
    assert ax.lines[0].get_ydata()[0] == pytest.approx(3.25)
    assert len(ax.collections) == 3  # one scatter per type present
    plt.close(ax.figure)


def test_unbalanced_panel_is_refused_with_the_fix():
    data = staggered(0.3).iloc[1:]  # unit 1 loses its first period
    with pytest.raises(PanelError, match=r"needs a balanced panel, but 1 unit .* \(e\.g\. unit "
                                         r"1, 7 periods\)\. Balance the panel first"):
        bacon_decomposition(staggered_panel(data))


def test_panel_without_treated_units_is_refused():
    data = staggered(0.3).assign(cohort=0)
    with pytest.raises(PanelError, match="needs treated units, but no unit"):
        bacon_decomposition(staggered_panel(data))


def test_switching_treatment_is_refused():
    data = hand_panel()
    data["status"] = ((data["cohort"] > 0) & (data["time"] >= data["cohort"])).astype(int)
    data.loc[(data["unit"] == 3) & (data["time"] == 3), "status"] = 0
    panel = Panel(data, unit="unit", time="time", outcome="y", status="status")
    with pytest.raises(NonAbsorbingTreatmentError,
                       match=r"absorbing \(staggered\) adoption only, but the status of 1 "
                             r"unit switches off again \(e\.g\. unit 3: 0101\)\. Use "
                             r"twfe_weights\(panel\).*panel\.restrict_to_first_spell"):
        bacon_decomposition(panel)


def test_one_adoption_date_without_controls_is_refused():
    data = hand_panel().query("unit == 3")
    with pytest.raises(PanelError, match="needs variation in treatment timing: the panel has "
                                         "1 adoption date"):
        bacon_decomposition(staggered_panel(data))


def test_panel_without_treatment_columns_is_refused():
    panel = Panel(hand_panel(), unit="unit", time="time", outcome="y")
    with pytest.raises(PanelError, match="needs a cohort or status column"):
        bacon_decomposition(panel)


def test_a_failed_identity_check_raises(monkeypatch):
    import evaluation.estimators.bacon as bacon

    monkeypatch.setattr(bacon, "static_twfe_coefficient", lambda panel: 3.25 + 1e-6)
    with pytest.raises(EvaluationError, match=r"failed its identity checks \(weights sum to 1 "
                                              r"[-+][0-9.e+-]+, weighted 2x2 estimates minus TWFE "
                                              r"-1e-06\)"):
        bacon_decomposition(staggered_panel(hand_panel()))
