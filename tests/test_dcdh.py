"""The de Chaisemartin-D'Haultfoeuille DID_l estimator: reference values, closed forms, truth.

Reference values come from the authors' Python port ``py-did-multiplegt-dyn`` 0.1.9, run
by ``tests/reference/dcdh_reference.py`` on the committed ``tests/reference/dcdh_*.csv``
panels (the port needs ``polars<1.20``, so it runs in its own venv; CI reads the JSON).
"""

from __future__ import annotations

import json
import pathlib
import warnings

import numpy as np
import pandas as pd
import pytest

from evaluation.errors import (
    DroppedObservationsWarning,
    IdentificationError,
    IdentificationWarning,
    InvalidOptionError,
    PanelError,
)
from evaluation.estimators.dcdh import AVERAGE_TOTAL_EFFECT, ChaisemartinDHaultfoeuille
from evaluation.estimators.registry import estimate_table
from evaluation.panel import Panel

REFERENCE = pathlib.Path(__file__).parent / "reference"
ENTRIES = json.loads((REFERENCE / "dcdh_reference.json").read_text())


def _panel(frame: pd.DataFrame, **roles) -> Panel:
    return Panel(frame, unit="unit", time="time", outcome="y", status="d", **roles)


def _fit_like_reference(entry: dict):
    """Our fit with the reference entry's options (translated to our names)."""
    frame = pd.read_csv(REFERENCE / f"dcdh_{entry['panel']}.csv")
    options = dict(entry["options"])
    roles = {}
    if "cluster" in options:
        roles["cluster"] = options.pop("cluster")
    if "weight" in options:
        roles["weights"] = options.pop("weight")
    if "controls" in options:
        roles["covariates"] = options.pop("controls")
    options["switchers"] = options.get("switchers") or "both"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IdentificationWarning)
        return ChaisemartinDHaultfoeuille(**options).fit(_panel(frame, **roles))


def _term(label: str) -> str:
    kind, _, number = label.partition("_")
    return {"Effect": f"effect {number}", "Placebo": f"placebo {number}"}.get(
        kind, AVERAGE_TOTAL_EFFECT)


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: f"{e['panel']}-{e['options']}")
def test_agrees_with_did_multiplegt_dyn(entry):
    result = _fit_like_reference(entry)
    table = result.table.set_index("term")
    for row in entry["rows"]:
        ours = table.loc[_term(row["row"])]
        assert ours["estimate"] == pytest.approx(row["estimate"], abs=1e-6, rel=1e-6), row
        assert ours["std_error"] == pytest.approx(row["std_error"], abs=1e-6, rel=1e-6), row
        assert ours["switchers"] == row["switchers"], row
        assert ours["switchers_weighted"] == pytest.approx(row["switchers_weighted"]), row
        assert ours["observations"] == row["observations"], row
    delta = result.info["average number of periods a treatment change is accumulated"]
    assert delta == pytest.approx(entry["delta_D_avg_total"], rel=1e-9)
    for test, expected in ((result.effects_test, entry["p_joint_effects"]),
                           (result.pretest, entry["p_joint_placebos"])):
        if expected is None:
            assert test is None or not test.computable
        else:  # the port reports 1 - cdf, exact to about 1e-16 only
            assert test.p_value == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("entry", [e for e in ENTRIES if e["options"]["effects"] > sum(
    r["row"].startswith("Effect") for r in e["rows"])], ids=lambda e: e["panel"])
def test_effects_beyond_the_data_are_nan_rows_with_a_warning(entry):
    estimable = sum(r["row"].startswith("Effect") for r in entry["rows"])
    result = _fit_like_reference(entry)
    effects = result.table[result.table["term"].str.startswith("effect ")]
    assert effects["estimate"].iloc[estimable:].isna().all()
    assert effects["std_error"].iloc[estimable:].isna().all()
    assert effects["estimate"].iloc[:estimable].notna().all()
    assert f"effect {estimable + 1}: effect {estimable + 1} is not estimable" in " ".join(
        result.warnings)
    assert result.info["effects supported by the data"] == estimable


# ------------------------------------------------------------------ closed forms
def _two_by_two() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    units = np.repeat(np.arange(10), 2)
    time = np.tile([1, 2], 10)
    treated = units < 4
    y = rng.normal(size=20) + units * 0.3
    return pd.DataFrame({"unit": units, "time": time, "d": (treated & (time == 2)).astype(int),
                         "y": y})


def test_two_periods_two_groups_is_the_simple_did():
    frame = _two_by_two()
    wide = frame.pivot(index="unit", columns="time", values="y")
    change = wide[2] - wide[1]
    expected = change[wide.index < 4].mean() - change[wide.index >= 4].mean()
    result = ChaisemartinDHaultfoeuille().fit(_panel(frame))
    assert result.table.set_index("term").loc["effect 1", "estimate"] == pytest.approx(
        expected, abs=1e-12)
    assert result.table.set_index("term").loc[AVERAGE_TOTAL_EFFECT, "estimate"] == \
        pytest.approx(expected, abs=1e-12)


def _additive_panel(status: np.ndarray, effect: float) -> pd.DataFrame:
    n_units, n_periods = status.shape
    rng = np.random.default_rng(1)
    unit_effect = rng.normal(size=n_units)[:, None]
    time_effect = rng.normal(size=n_periods)[None, :]
    y = unit_effect + time_effect + effect * status
    return pd.DataFrame({"unit": np.repeat(np.arange(n_units), n_periods),
                         "time": np.tile(np.arange(1, n_periods + 1), n_units),
                         "d": status.ravel().astype(int), "y": y.ravel()})


def test_absorbing_staggered_with_a_constant_effect_recovers_it_exactly():
    cohorts = np.repeat([3, 5, 7, 99], 5)
    status = np.arange(1, 11)[None, :] >= cohorts[:, None]
    result = ChaisemartinDHaultfoeuille(effects=4, placebo=2).fit(
        _panel(_additive_panel(status, 2.5)))
    table = result.table.set_index("term")
    assert table.loc[[f"effect {e}" for e in range(1, 5)], "estimate"].to_numpy() == \
        pytest.approx(np.full(4, 2.5), abs=1e-12)
    assert table.loc[["placebo 1", "placebo 2"], "estimate"].to_numpy() == pytest.approx(
        [0.0, 0.0], abs=1e-12)
    assert table.loc[AVERAGE_TOTAL_EFFECT, "estimate"] == pytest.approx(2.5, abs=1e-12)


def test_normalized_effect_of_a_spell_that_ends_is_per_period_of_exposure():
    # on for 2 periods then off: DID_4 = 0 (no carry-over), exposure 2 periods
    cohorts = np.repeat([3, 5, 99], 6)
    grid = np.arange(1, 11)[None, :]
    status = (grid >= cohorts[:, None]) & (grid < cohorts[:, None] + 2)
    panel = _panel(_additive_panel(status, 1.0))
    raw = ChaisemartinDHaultfoeuille(effects=4).fit(panel).table.set_index("term")
    per_period = ChaisemartinDHaultfoeuille(effects=4, normalized=True).fit(panel)
    per_period = per_period.table.set_index("term")
    assert raw["estimate"].iloc[:4].to_numpy() == pytest.approx([1, 1, 0, 0], abs=1e-12)
    assert per_period["estimate"].iloc[:4].to_numpy() == pytest.approx([1, 0.5, 0, 0],
                                                                       abs=1e-12)


def test_switchers_out_estimate_the_effect_of_treatment_with_the_sign_of_an_increase():
    cohorts = np.repeat([4, 6, 99], 6)
    grid = np.arange(1, 11)[None, :]
    status = ~(grid >= cohorts[:, None])  # treated at first, switched off for good
    result = ChaisemartinDHaultfoeuille(effects=3, switchers="out").fit(
        _panel(_additive_panel(status, 1.5)))
    assert result.table["estimate"].iloc[:3].to_numpy() == pytest.approx(np.full(3, 1.5),
                                                                         abs=1e-12)


@pytest.mark.filterwarnings("ignore::evaluation.errors.IdentificationWarning")
def test_a_control_that_moves_with_treatment_is_adjusted_for_exactly():
    cohorts = np.repeat([3, 5, 7, 99], 6)
    grid = np.arange(1, 11)[None, :]
    status = (grid >= cohorts[:, None]) & (grid < cohorts[:, None] + 3)
    frame = _additive_panel(status, 2.0)
    rng = np.random.default_rng(3)
    control = rng.normal(size=status.shape) + 1.5 * status  # confounder: jumps with D
    frame["x"] = control.ravel()
    frame["y"] += 0.8 * frame["x"]
    panel = Panel(frame, unit="unit", time="time", outcome="y", status="d", covariates=["x"])
    adjusted = ChaisemartinDHaultfoeuille(effects=4, placebo=2).fit(panel)
    ignored = ChaisemartinDHaultfoeuille(effects=4, placebo=2, controls=()).fit(panel)
    table = adjusted.table.set_index("term")
    assert table["estimate"].iloc[:3].to_numpy() == pytest.approx([2.0, 2.0, 2.0], abs=1e-10)
    assert table.loc["effect 4", "estimate"] == pytest.approx(0.0, abs=1e-10)
    assert table.loc[["placebo 1", "placebo 2"], "estimate"].to_numpy() == pytest.approx(
        [0.0, 0.0], abs=1e-10)
    assert adjusted.info["controls"] == "x" and ignored.info["controls"] == "none"
    assert abs(ignored.table["estimate"].iloc[0] - 2.0) > 0.5  # biased without the control


def test_controls_must_be_panel_covariates_that_vary():
    frame = _two_by_two().assign(x=1.0)
    with pytest.raises(InvalidOptionError, match=r"controls \['z'\] are not covariates"):
        ChaisemartinDHaultfoeuille(controls=("z",)).fit(_panel(frame, covariates=["x"]))
    with pytest.raises(InvalidOptionError, match="controls are collinear"):
        ChaisemartinDHaultfoeuille(controls=("x",)).fit(_panel(frame, covariates=["x"]))


# ------------------------------------------------------------------ truth recovery
def _switching_draw(rng: np.random.Generator, effect: float) -> pd.DataFrame:
    n_units, n_periods = 300, 10
    cohort = rng.choice([3, 4, 5, 6, 99], n_units)
    grid = np.arange(1, n_periods + 1)[None, :]
    on = (grid >= cohort[:, None]) & (grid < cohort[:, None] + 3)
    starts_treated = rng.random(n_units) < 0.3
    status = np.where(starts_treated[:, None], ~on, on)
    y = (rng.normal(size=(n_units, 1)) + 0.2 * grid + effect * status
         + rng.normal(size=(n_units, n_periods)))
    return pd.DataFrame({"unit": np.repeat(np.arange(n_units), n_periods),
                         "time": np.tile(grid[0], n_units), "d": status.ravel().astype(int),
                         "y": y.ravel()})


def test_recovers_a_known_effect_on_a_switching_panel_within_monte_carlo_error():
    rng = np.random.default_rng(2024)
    estimates, std_errors = [], []
    for _ in range(60):
        result = ChaisemartinDHaultfoeuille(effects=4, placebo=2).fit(
            _panel(_switching_draw(rng, 1.0)))
        estimates.append(result.table["estimate"].to_numpy())
        std_errors.append(result.table["std_error"].to_numpy())
    estimates, std_errors = np.array(estimates), np.array(std_errors)
    # effects 1-3 during the spell (1), effect 4 after it ended (0), placebos 0;
    # the average total effect per unit of treatment is 1
    truth = np.array([1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0])
    monte_carlo_error = estimates.std(axis=0, ddof=1) / np.sqrt(len(estimates))
    assert np.all(np.abs(estimates.mean(axis=0) - truth) < 3.5 * monte_carlo_error)
    # the analytic standard errors track the sampling spread (conservative by design)
    ratio = std_errors.mean(axis=0) / estimates.std(axis=0, ddof=1)
    assert np.all((ratio > 0.8) & (ratio < 1.35)), ratio


# ------------------------------------------------------------------ inference options
def test_bootstrap_standard_errors_are_close_to_the_analytic_ones_and_reproducible():
    # a constant effect: resampling units does not move the estimand, so the bootstrap
    # spread is the sampling spread the analytic variance estimates
    frame = _switching_draw(np.random.default_rng(8), 1.0)
    frame["cluster"] = frame["unit"] // 3
    panel = _panel(frame, cluster="cluster")
    analytic = ChaisemartinDHaultfoeuille(effects=3, placebo=1).fit(panel)
    boot = ChaisemartinDHaultfoeuille(effects=3, placebo=1, se="bootstrap", draws=150,
                                      seed=4).fit(panel)
    again = ChaisemartinDHaultfoeuille(effects=3, placebo=1, se="bootstrap", draws=150,
                                       seed=4).fit(panel)
    np.testing.assert_array_equal(boot.table["std_error"], again.table["std_error"])
    np.testing.assert_array_equal(boot.table["estimate"], analytic.table["estimate"])
    ratio = boot.table["std_error"] / analytic.table["std_error"]
    assert ((ratio > 0.7) & (ratio < 1.3)).all(), ratio
    assert boot.info["se"] == "bootstrap (150 draws)" and boot.info["seed"] == 4


def test_influence_functions_reproduce_the_covariance():
    from evaluation.estimators._inference import influence_covariance

    result = _fit_like_reference(next(e for e in ENTRIES if e["options"].get("cluster")))
    assert result.influence.shape == (len(result.units), len(result.table))
    np.testing.assert_allclose(influence_covariance(result.influence, result.cluster),
                               result.vcov, rtol=1e-12, atol=0)
    np.testing.assert_allclose(np.sqrt(np.diag(result.vcov)), result.table["std_error"],
                               rtol=1e-12)


def test_summary_shows_both_joint_tests():
    result = _fit_like_reference(ENTRIES[0])
    text = str(result.summary())
    assert "joint test that all effects are zero: Wald chi2(4)" in text
    assert "joint test that all placebos are zero: Wald chi2(3)" in text
    assert result.estimator == "dcdh" and result.vcov.shape == (8, 8)


def test_estimate_table_runs_dcdh_on_a_status_column():
    frame = pd.read_csv(REFERENCE / "dcdh_onoff.csv")
    table = estimate_table(frame, unit="unit", time="time", treatment="d", outcome="y",
                           estimator="dcdh", effects=3, placebo=2, cluster="cluster",
                           weights="weight")
    direct = ChaisemartinDHaultfoeuille(effects=3, placebo=2).fit(
        _panel(frame, cluster="cluster", weights="weight"))
    np.testing.assert_allclose(table["estimate"], direct.table["estimate"], rtol=0, atol=0)
    np.testing.assert_allclose(table["std_error"], direct.table["std_error"], rtol=0, atol=0)
    assert table["term"].tolist() == ["effect 1", "effect 2", "effect 3", "placebo 1",
                                      "placebo 2", AVERAGE_TOTAL_EFFECT]
    assert table["event_time"].tolist()[:5] == [1, 2, 3, -1, -2]


# ------------------------------------------------------------------ errors
def test_a_panel_without_status_is_refused_with_the_fix():
    frame = pd.read_csv(REFERENCE / "dcdh_staggered.csv")
    panel = Panel(frame, unit="unit", time="time", outcome="y")
    with pytest.raises(PanelError, match=r"pass status=<column> .*--treatment <column>"):
        ChaisemartinDHaultfoeuille().fit(panel)
    with pytest.raises(PanelError, match=r"pass status=<column>"):
        estimate_table(frame, unit="unit", time="time", outcome="y", estimator="dcdh")


def test_units_whose_baseline_has_no_comparison_are_dropped_with_a_warning():
    frame = _two_by_two()
    extra = pd.DataFrame({"unit": [20, 20, 21, 21], "time": [1, 2, 1, 2], "d": [1, 1, 1, 1],
                          "y": [0.0, 1.0, 2.0, 2.5]})  # treated throughout: no switch
    with pytest.warns(DroppedObservationsWarning, match="2 of 12 units left out"):
        result = ChaisemartinDHaultfoeuille().fit(_panel(pd.concat([frame, extra])))
    alone = ChaisemartinDHaultfoeuille().fit(_panel(frame))
    assert result.table["estimate"].iloc[0] == alone.table["estimate"].iloc[0]
    assert result.info["dropped units"] == 2 and result.info["units"] == 10


def test_no_switchers_is_an_identification_error():
    frame = pd.read_csv(REFERENCE / "dcdh_staggered.csv").assign(d=0)
    with pytest.raises(IdentificationError, match="no effect can be estimated"):
        ChaisemartinDHaultfoeuille().fit(_panel(frame))
    staggered = pd.read_csv(REFERENCE / "dcdh_staggered.csv")  # only switchers in
    with pytest.raises(IdentificationError, match=r"no switcher out \(1 -> 0\)"):
        ChaisemartinDHaultfoeuille(switchers="out").fit(_panel(staggered))


@pytest.mark.parametrize(("options", "message"), [
    ({"effects": 0}, "effects"), ({"placebo": -1}, "placebo"),
    ({"switchers": "up"}, "switchers"), ({"se": "cr2"}, "se"), ({"draws": 1}, "draws")])
def test_invalid_options_are_refused(options, message):
    with pytest.raises(InvalidOptionError, match=message):
        ChaisemartinDHaultfoeuille(**options)


# ------------------------------------------------------------------ comparison with others
def test_dcdh_joins_compare_estimators_on_the_common_event_time_scale():
    from evaluation.estimators.compare import compare_estimators

    units, periods = 60, 8
    cohort = np.repeat([4, 6, 0], units // 3)  # two adoption dates and never treated
    unit = np.repeat(np.arange(units), periods)
    time = np.tile(np.arange(1, periods + 1), units)
    g = cohort[unit]
    treated = (g > 0) & (time >= g)
    effect = np.where(treated, 1.0 + 0.5 * (time - g), 0.0)  # grows with event time
    noise = np.random.default_rng(3).normal(size=unit.size)
    frame = pd.DataFrame({"unit": unit, "time": time, "cohort": cohort[unit],
                          "d": treated.astype(int), "y": 0.1 * unit + 0.3 * time + effect})
    noise_free = Panel(frame, unit="unit", time="time", outcome="y", cohort="cohort",
                       never_treated=0)
    comparison = compare_estimators(noise_free, ["cs", "dcdh"])
    table = comparison.table.set_index(["estimator", "event_time"])["estimate"]
    for e in range(0, 5):  # dcdh effects 1..5 at event times 0..4
        assert table[("dcdh", float(e))] == pytest.approx(1.0 + 0.5 * e, abs=1e-10)
        assert table[("cs", float(e))] == pytest.approx(1.0 + 0.5 * e, abs=1e-10)
    for e in (-2.0, -3.0):  # placebos against the reference period -1
        assert table[("dcdh", e)] == pytest.approx(0.0, abs=1e-10)
    assert "dcdh" not in compare_estimators(noise_free).results  # opt-in only
    # a cohort column is absorbing status: the same numbers as the status column
    noisy = frame.assign(y=frame["y"] + noise)
    status = Panel(noisy, unit="unit", time="time", outcome="y", status="d")
    cohort_only = Panel(noisy, unit="unit", time="time", outcome="y", cohort="cohort",
                        never_treated=0)
    np.testing.assert_allclose(ChaisemartinDHaultfoeuille(effects=3).fit(status).table[
        "estimate"], ChaisemartinDHaultfoeuille(effects=3).fit(cohort_only).table["estimate"],
        rtol=0, atol=1e-12)


def test_bootstrap_draws_that_fail_are_reported_not_hidden():
    rng = np.random.default_rng(0)
    units, periods = 40, 5
    unit = np.repeat(np.arange(units), periods)
    time = np.tile(np.arange(1, periods + 1), units)
    cluster = unit // 10  # only cluster 0 switches: resamples without it have no switchers
    d = ((cluster == 0) & (time >= 3)).astype(int)
    frame = pd.DataFrame({"unit": unit, "time": time, "d": d, "c": cluster,
                          "y": rng.normal(size=unit.size) + d})
    panel = Panel(frame, unit="unit", time="time", outcome="y", status="d", cluster="c")
    with pytest.warns(IdentificationWarning, match=r"dcdh bootstrap: \d+ of 50 draws could "
                                                   "not be estimated"):
        result = ChaisemartinDHaultfoeuille(effects=2, se="bootstrap", draws=50,
                                            seed=1).fit(panel)
    failed = result.info["failed bootstrap draws"]
    assert 0 < failed < 50
    assert result.warnings == [
        f"IdentificationWarning: dcdh bootstrap: {failed} of 50 draws could not be estimated "
        "(no switchers or no comparison in the resample) and are left out of the standard "
        "errors"]
