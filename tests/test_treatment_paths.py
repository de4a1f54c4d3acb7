"""Treatment that switches off: path counts, the absorbing estimators' refusal, the
first-spell window, and the simulator's truth after a wave ends."""

import re
import warnings

import numpy as np
import pandas as pd
import pytest

from evaluation import Panel
from evaluation.errors import InvalidOptionError, NonAbsorbingTreatmentError, PanelError
from evaluation.estimators import CallawaySantAnna
from evaluation.estimators.did import TwoWayFixedEffects
from evaluation.estimators.imputation import ImputationDiD, TwoStageDiD
from evaluation.estimators.registry import estimate_table
from evaluation.estimators.sun_abraham import SunAbraham
from evaluation.simulate import simulate_municipalities
from evaluation.sources.trials import WAVES, month_index
from evaluation.synthetic.scenario import SCENARIOS, get_scenario

PATHS = ["never treated", "absorbing", "always treated", "switches off", "switches on again"]
COHORTS = (2, 4, 6)  # first treated periods of the 3-periods-on design (periods 0..9)


def three_on(n_per: int = 50, *, noise: float = 0.0, carry: float = 0.5, seed: int = 0
             ) -> pd.DataFrame:
    """Treated for 3 periods, then untreated again with a one-period carry-over.

    Cohorts 2, 4 and 6 and never-treated units, ``n_per`` units each, periods 0..9:
    :math:`Y = a_i + 0.3 t + 1\\{on\\} + carry\\,1\\{t = G_i + 3\\} + noise\\,\\varepsilon`.
    """
    rng = np.random.default_rng(seed)
    cohort = np.repeat(np.array([*COHORTS, -1]), n_per)
    unit = np.repeat(np.arange(cohort.size), 10)
    time = np.tile(np.arange(10), cohort.size)
    g = cohort[unit]
    on = (g >= 0) & (time >= g) & (time <= g + 2)
    after = (g >= 0) & (time == g + 3)
    y = (rng.normal(size=cohort.size)[unit] + 0.3 * time + 1.0 * on + carry * after
         + noise * rng.normal(size=unit.size))
    return pd.DataFrame({"unit": unit, "time": time, "d": on.astype(int), "y": y})


def switching_panel(data: pd.DataFrame) -> Panel:
    return Panel(data, unit="unit", time="time", outcome="y", status="d")


def hand_built() -> pd.DataFrame:
    """One unit of each path type, years 2000..2004."""
    status = {"a": [0, 0, 0, 0, 0], "b": [0, 0, 1, 1, 1], "c": [1, 1, 1, 1, 1],
              "d": [0, 1, 1, 0, 0], "e": [0, 1, 0, 1, 1]}
    rows = [(u, 2000 + t, s, 10.0 * k + t) for k, (u, path) in enumerate(status.items())
            for t, s in enumerate(path)]
    return pd.DataFrame(rows, columns=["u", "year", "d", "y"])


# ------------------------------------------------------------------ 1. path counts
def test_path_counts_on_a_hand_built_panel():
    panel = Panel(hand_built(), unit="u", time="year", outcome="y", status="d")
    table = panel.treatment_paths()
    assert list(table["path"]) == PATHS
    assert list(table["units"]) == [1, 1, 1, 1, 1]
    np.testing.assert_allclose(table["share"], 0.2)
    assert list(table["examples"]) == ["'a'", "'b'", "'c'", "'d'", "'e'"]
    assert panel.is_absorbing is False


def test_a_gap_does_not_end_a_spell_and_cohorts_are_absorbing():
    gap = hand_built()
    gap = gap[~((gap["u"] == "e") & (gap["year"] == 2002))]  # e: 0, 1, -, 1, 1
    panel = Panel(gap, unit="u", time="year", outcome="y", status="d")
    assert list(panel.treatment_paths()["units"]) == [1, 2, 1, 1, 0]
    many = pd.DataFrame({"u": np.repeat(np.arange(6), 4), "t": np.tile(np.arange(4), 6),
                         "y": 0.0, "g": np.repeat([0, 1, 1, 3, np.nan, np.nan], 4)})
    cohorts = Panel(many, unit="u", time="t", outcome="y", cohort="g")
    assert list(cohorts.treatment_paths()["units"]) == [2, 3, 1, 0, 0]
    assert cohorts.is_absorbing is True


# ------------------------------------------------------------------ 2. the refusal
ESTIMATORS = [
    ("cs", "Callaway-Sant'Anna", CallawaySantAnna),
    ("sa", "Sun-Abraham", SunAbraham),
    ("bjs", "Imputation DiD (BJS)", ImputationDiD),
    ("did2s", "Two-stage DiD (Gardner)", TwoStageDiD),
    ("did2s", "Two-stage DiD (Gardner)", lambda: TwoStageDiD(dynamic=True)),
    ("twfe", "Two-way fixed effects", TwoWayFixedEffects),
    ("twfe", "Two-way fixed effects", lambda: TwoWayFixedEffects(dynamic=True)),
]


def _refusal(name: str, label: str, n_off: int, examples: str) -> str:
    return re.escape(
        f"{label} ({name}) assumes absorbing treatment (once treated, always treated), but "
        f"column 'd' (status) switches off in {n_off} units (e.g. {examples}). Their "
        "untreated periods after a spell would serve as comparisons or be averaged into the "
        "effect. Estimate with 'dcdh' (the de Chaisemartin-D'Haultfoeuille estimator), which "
        "allows treatment to switch off and on again, or analyse a stated window: "
        "panel.restrict_to_first_spell() drops each unit's periods after its first treatment "
        "spell ends (effects during the first spell only).")


@pytest.mark.parametrize(("name", "label", "make"), ESTIMATORS)
def test_absorbing_estimators_refuse_switching_treatment(name, label, make):
    panel = switching_panel(three_on())
    with pytest.raises(NonAbsorbingTreatmentError,
                       match=_refusal(name, label, 150, "0, 1, 2, 3, 4, ... (145 more)")):
        make().fit(panel)


@pytest.mark.parametrize("name", ["cs", "sa", "bjs", "did2s", "twfe"])
def test_estimate_table_passes_the_treatment_column_to_the_guard(name):
    label = dict((n, lab) for n, lab, _ in ESTIMATORS)[name]
    message = _refusal(name, label, 150, "0, 1, 2, 3, 4, ... (145 more)")
    with pytest.raises(PanelError, match=message):
        estimate_table(three_on(), unit="unit", time="time", outcome="y", treatment="d",
                       estimator=name)


def test_the_refusal_names_units_that_switch_on_again():
    panel = Panel(hand_built(), unit="u", time="year", outcome="y", status="d")
    with pytest.raises(NonAbsorbingTreatmentError,
                       match=r"switches off in 2 units \(e.g. 'd', 'e'\), 1 of which switches "
                             r"on again \(e.g. 'e'\)\. "):
        ImputationDiD().fit(panel)


# ------------------------------------------------------------------ 3. the window
def test_first_spell_window_drops_each_units_periods_after_its_spell():
    data = hand_built()
    before = data.copy()
    panel = Panel(data, unit="u", time="year", outcome="y", status="d")
    window = panel.restrict_to_first_spell()
    dropped = ((data["u"] == "d") & (data["year"] >= 2003)) | (
        (data["u"] == "e") & (data["year"] >= 2002))
    expected = data[~dropped].reset_index(drop=True)
    pd.testing.assert_frame_equal(window.data, expected[window.data.columns])
    assert window.window == ("first spell: observations after a unit's first treatment "
                             "spell ends are dropped (5 unit-periods of 2 units)")
    assert list(window.treatment_paths()["units"]) == [1, 3, 1, 0, 0]
    assert window.is_absorbing and panel.window is None
    pd.testing.assert_frame_equal(data, before)  # the caller's frame is untouched


def test_window_end_makes_later_cohorts_never_treated_without_mutating_inputs():
    data = hand_built()
    data["g"] = data["u"].map({"a": np.nan, "b": 2002, "c": 2000, "d": 2001, "e": 2001})
    before = data.copy()
    panel = Panel(data, unit="u", time="year", outcome="y", cohort="g", status="d")
    cohorts = panel.unit_cohort.copy()
    window = panel.restrict_to_first_spell(end=2001)
    assert window.n_periods == 2 and window.n_obs == 10
    np.testing.assert_array_equal(window.unit_cohort, [np.nan, np.nan, 0, 1, 1])
    assert window.window.endswith("; the window ends in 2001 (15 later unit-periods dropped)")
    pd.testing.assert_frame_equal(data, before)
    np.testing.assert_array_equal(panel.unit_cohort, cohorts)
    assert panel.n_obs == 25 and panel.data["g"].isna().sum() == 5


def test_first_spell_window_recovers_the_effect_without_noise():
    panel = switching_panel(three_on())
    window = panel.restrict_to_first_spell()
    text = ("first spell: observations after a unit's first treatment spell ends are dropped "
            "(450 unit-periods of 150 units)")
    assert window.window == text
    bjs = ImputationDiD().fit(window)
    assert bjs.overall["estimate"].iat[0] == pytest.approx(1.0, abs=1e-10)
    np.testing.assert_allclose(bjs.table["estimate"], 1.0, atol=1e-10)
    assert bjs.info["window"] == text
    for model in (TwoStageDiD(), TwoWayFixedEffects()):
        fit = model.fit(window)
        assert fit.table["estimate"].iat[0] == pytest.approx(1.0, abs=1e-10)
        assert fit.info["window"] == text
    sa = SunAbraham().fit(window)
    post = sa.table[sa.table["event_time"] >= 0]
    np.testing.assert_allclose(post["estimate"], 1.0, atol=1e-10)
    # CS needs balanced units: the per-unit window is refused, naming the calendar end
    with pytest.raises(NonAbsorbingTreatmentError,
                       match=r"cut 150 units short .* restrict_to_first_spell\(end=4\) on the "
                             r"full panel"):
        CallawaySantAnna().fit(window)
    calendar = panel.restrict_to_first_spell(end=4)
    assert calendar.is_balanced
    cs = CallawaySantAnna().fit(calendar)
    simple = cs.aggregate("simple")
    assert simple.overall["estimate"].iat[0] == pytest.approx(1.0, abs=1e-10)
    assert cs.info["window"] == simple.info["window"] == calendar.window
    assert calendar.window.endswith("the window ends in 4 (1,000 later unit-periods dropped)")


def test_absorbing_coding_of_the_same_data_averages_off_periods_into_the_effect():
    """What the guard prevents: cohorts of the switching design read as absorbing."""
    data = three_on()
    first = data[data["d"] == 1].groupby("unit")["time"].min()
    data["g"] = data["unit"].map(first)
    panel = Panel(data, unit="unit", time="time", outcome="y", cohort="g")
    simple = CallawaySantAnna().fit(panel).aggregate("simple")
    # each cohort's post cells: 1, 1, 1, 0.5 (carry-over), then zeros; 18 cells in all
    assert simple.overall["estimate"].iat[0] == pytest.approx(10.5 / 18, abs=1e-10)


def test_first_spell_window_is_unbiased_over_replications():
    cs, bjs = [], []
    for seed in range(50):
        panel = switching_panel(three_on(40, noise=1.0, seed=seed))
        bjs.append(ImputationDiD().fit(panel.restrict_to_first_spell()).overall)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # few-cluster notes are not the point here
            fit = CallawaySantAnna().fit(panel.restrict_to_first_spell(end=4))
            cs.append(fit.aggregate("simple").overall)
    for rows in (cs, bjs):
        estimates = np.array([r["estimate"].iat[0] for r in rows])
        mc_se = estimates.std(ddof=1) / np.sqrt(estimates.size)
        assert abs(estimates.mean() - 1.0) < 3 * mc_se
        assert 0.05 < estimates.std(ddof=1) < 0.5  # the noise is real


def test_estimate_table_window_option():
    table = estimate_table(three_on(), unit="unit", time="time", outcome="y", treatment="d",
                           window="first-spell", estimator="bjs", aggregate="simple")
    assert list(table["term"]) == ["overall"]
    assert table["estimate"].iat[0] == pytest.approx(1.0, abs=1e-10)
    with pytest.raises(InvalidOptionError, match=r"window='all' is not a valid option; "
                                                 r"choose one of None, 'first-spell'"):
        estimate_table(three_on(), unit="unit", time="time", outcome="y", treatment="d",
                       window="all")


# ------------------------------------------------------------------ 4. municipal panel
@pytest.fixture(scope="module")
def persistence():
    return simulate_municipalities("persistence", seed=3)


def _members(units: pd.DataFrame) -> dict[int, np.ndarray]:
    return {w.number: (units[f"area_w{w.number}"] != "").to_numpy() for w in WAVES}


def test_municipal_status_switches_and_the_panel_says_so(persistence):
    units, data = persistence.units, persistence.data
    member = _members(units)
    n_waves = sum(m.astype(int) for m in member.values())
    only3 = member[3] & (n_waves == 1)
    panel = Panel(data, unit="municipality", time="t", outcome="unemployed",
                  status="treated")
    counts = dict(zip(panel.treatment_paths()["path"], panel.treatment_paths()["units"],
                      strict=True))
    assert counts == {"never treated": int((n_waves == 0).sum()),
                      "absorbing": int(only3.sum()), "always treated": 0,
                      "switches off": int(((n_waves == 1) & ~member[3]).sum()),
                      "switches on again": int((n_waves >= 2).sum())}
    with pytest.raises(NonAbsorbingTreatmentError, match="'dcdh'"):
        CallawaySantAnna().fit(panel)
    # earlier_waves counts the waves a municipality ran that ended before the month
    t = data["t"].to_numpy()
    row_member = {w: pd.Series(m, index=units["municipality"]).reindex(
        data["municipality"]).to_numpy() for w, m in member.items()}
    expected = sum(row_member[w.number] & (t > month_index(w.end)) for w in WAVES)
    np.testing.assert_array_equal(data["earlier_waves"].to_numpy(), expected)


def test_persistence_scenario_is_the_default_with_modest_carry_over():
    scenario, default = SCENARIOS["persistence"], SCENARIOS["default"]
    assert (scenario.carry_over, scenario.carry_months) == (0.3, 12.0)
    assert scenario.replace(name="default", carry_over=0.0, carry_months=36.0) == default


def test_post_wave_truth_equals_the_drawn_effects(persistence):
    truth, units = persistence.truth, persistence.units
    member = _members(units)
    t = persistence.times
    for w in WAVES[:2]:
        last = month_index(w.end)
        later = [v for v in WAVES if last < month_index(v.start) <= last + 24]
        population = member[w.number] & ~np.any([member[v.number] for v in later], axis=0)
        rows = truth[(truth["design"] == f"wave{w.number}")
                     & (truth["population"] == "post_wave")]
        assert set(rows["kind"]) == {"post_wave", "post_wave_1_12", "post_wave_13_24"}
        assert (rows["n_units"] == population.sum()).all()
        for outcome in ("in_services", "unemployed", "lms_cost_state"):
            y0, y1 = persistence.potential_outcomes[outcome]
            tau = (y1 - y0)[population]
            own = rows[rows["outcome"] == outcome]
            monthly = own[own["kind"] == "post_wave"].sort_values("event_time")
            np.testing.assert_array_equal(monthly["event_time"], np.arange(1, 25))
            np.testing.assert_allclose(monthly["att"], tau[:, last:last + 24].mean(axis=0),
                                       rtol=1e-12)
            for lo, hi in ((1, 12), (13, 24)):
                value = own.loc[own["kind"] == f"post_wave_{lo}_{hi}", "att"].iat[0]
                months = (t - last >= lo) & (t - last <= hi)
                assert value == pytest.approx(tau[:, months].mean(), rel=1e-12)
    services = truth[(truth["population"] == "post_wave") & (truth["outcome"] == "in_services")]
    year = services.set_index(["design", "kind"])["att"]
    assert year["wave1", "post_wave_1_12"] > year["wave1", "post_wave_13_24"] > 0
    assert not (truth["design"].eq("wave3") & truth["population"].eq("post_wave")).any()


def test_default_scenario_has_no_effect_after_a_wave_ends():
    truth = simulate_municipalities("default", seed=3).truth
    rows = truth[truth["population"] == "post_wave"]
    assert len(rows) == 2 * len(set(rows["outcome"])) * (24 + 2)
    assert (rows["att"] == 0).all()
    assert not truth["design"].str.endswith("_added").any()


def test_repeat_municipalities_truth_and_what_the_second_wave_added(persistence):
    truth, member = persistence.truth, _members(persistence.units)
    t = persistence.times
    without3 = simulate_municipalities(get_scenario("persistence", cohort_effects=(1, 1, 0)),
                                       seed=3)
    for w, earlier in ((WAVES[2], member[1] | member[2]), (WAVES[1], member[1])):
        repeat = member[w.number] & earlier
        window = (t >= month_index(w.start)) & (t <= month_index(w.end))
        for outcome in ("in_services", "unemployed"):
            y0, y1 = persistence.potential_outcomes[outcome]
            total = truth[(truth["design"] == f"wave{w.number}")
                          & (truth["population"] == "repeat") & (truth["kind"] == "overall")
                          & (truth["outcome"] == outcome)]
            assert total["n_units"].iat[0] == repeat.sum()
            assert total["att"].iat[0] == pytest.approx(
                (y1 - y0)[repeat][:, window].mean(), rel=1e-12)
    # wave 3 added: Y(1) minus the trial world without wave 3, drawn independently
    window = (t >= month_index(WAVES[2].start)) & (t <= month_index(WAVES[2].end))
    added = truth[(truth["design"] == "wave3_added") & (truth["kind"] == "overall")]
    for outcome in ("in_services", "unemployed"):
        y1 = persistence.potential_outcomes[outcome][1]
        y1_without = without3.potential_outcomes[outcome][1]
        y0 = persistence.potential_outcomes[outcome][0]
        repeat = member[3] & (member[1] | member[2])
        for population, mask in (("treated", member[3]), ("repeat", repeat)):
            row = added[(added["population"] == population) & (added["outcome"] == outcome)]
            assert row["att"].iat[0] == pytest.approx(
                (y1 - y1_without)[mask][:, window].mean(), rel=1e-12)
        # the total effect of repeat municipalities includes what wave 1 or 2 carried over
        carried = (y1_without - y0)[repeat][:, window].mean()
        assert carried != 0


def test_a_reweighted_panel_keeps_the_window():
    window = switching_panel(three_on()).restrict_to_first_spell()
    carried = window.with_unit_weights(pd.Series(2.0, index=window.units))
    assert carried.window == window.window and carried.n_obs == window.n_obs
    assert ImputationDiD().fit(carried).info["window"] == window.window
    with pytest.raises(NonAbsorbingTreatmentError, match=r"cut 150 units short"):
        CallawaySantAnna().fit(carried)
