"""Tests of the simulator knobs that real evaluations face (evaluation.synthetic).

Common shocks by trial area and ELY region, anticipation, inflow into the target group during
the trial and carry-over of earlier waves: each knob moves the data in the intended
direction, keeps the truth exact (recomputed here from the potential outcomes) and, at its
default, leaves every existing data set byte-identical.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pyarrow
import pytest

import evaluation
from evaluation.errors import SimulationError
from evaluation.simulate import (
    SCENARIOS,
    SimulatedPanel,
    build_design,
    get_scenario,
    simulate_jobseekers,
    simulate_municipalities,
    write_synthetic_data,
)
from evaluation.sources.cohort import REFERENCE_COVARIATES
from evaluation.sources.trials import month_index, wave
from evaluation.synthetic.effects import effect_paths
from evaluation.synthetic.scenario import ADDED_FIELDS
from evaluation.synthetic.shocks import SHOCK_PERSISTENCE, UNEMPLOYED_PARTS, common_shocks

W3_START = month_index(wave(3).start)  # 135
W3_LAST = W3_START + wave(3).n_months - 1  # 180
COUNTS = ("jobseekers", "unemployed", "long_term_unemployed", "unemployed_under25",
          "unemployed_over50", "unemployed_foreign", "in_services", "other_jobseekers",
          "employment_plans", "lms_cost_total", "lms_cost_state", "lms_cost_municipal")

# Content hashes of panels written by the simulator before the knobs existed (seed 11).
REFERENCE_CONTENT = {
    "jobseekers/anticipation/data": "29a17c817f83bcb9",
    "jobseekers/anticipation/truth": "62d8a2a418f35b5e",
    "jobseekers/anticipation/units": "d4cb4a6bd0ee1e35",
    "jobseekers/attrition/data": "782c449bd7e1e3d8",
    "jobseekers/attrition/truth": "fc6e78a31781980f",
    "jobseekers/attrition/units": "e90914f22f1914b0",
    "jobseekers/default/data": "fcf0474aa6d01731",
    "jobseekers/default/truth": "dc90019bf2bc5c5d",
    "jobseekers/default/units": "f1b92384af770961",
    "jobseekers/spillover/data": "afb35ae5b751d981",
    "jobseekers/spillover/truth": "a353fd35ca438d1e",
    "jobseekers/spillover/units": "f1b92384af770961",
    "municipalities/anticipation/data": "7c6d34fae2543f4b",
    "municipalities/anticipation/truth": "f62d01ae3bb151d6",
    "municipalities/anticipation/units": "644afe0d3282bf01",
    "municipalities/attrition/data": "9e6035970bb3ec16",
    "municipalities/attrition/truth": "2c839c2c90ecd9fe",
    "municipalities/attrition/units": "644afe0d3282bf01",
    "municipalities/default/data": "c9448e1fd64b5054",
    "municipalities/default/truth": "2c839c2c90ecd9fe",
    "municipalities/default/units": "644afe0d3282bf01",
    "municipalities/spillover/data": "70ca70f72c70b0b1",
    "municipalities/spillover/truth": "d664f19b5e43acf4",
    "municipalities/spillover/units": "644afe0d3282bf01",
}
# sha256 of `write_synthetic_data(n_people=2000, seed=11)` before the knobs existed (the
# jobseeker panel, its truth and the manifest as they are since `extended_unemployed` was
# added; the jobseeker panel and the manifest since the reference-month covariates and
# `reference_t` were added, which `test_written_panel_adds_only_the_reference_covariates`
# shows to be the only change; the municipal panel, its truth and the manifest since the
# ``earlier_waves`` column and the truth rows after a wave ends were added, which
# `test_existing_scenarios_give_the_reference_data` shows to be the only change; the other
# three files unchanged since before the knobs);
# Parquet files record the writer's version, so they are compared under the same pyarrow.
REFERENCE_PYARROW, REFERENCE_VERSION = "26.0.1", "0.1.0"
REFERENCE_FILES = {
    "jobseeker_info.parquet": "0de4a5206431a1c0076a28efa410384b365d2e793ebe3c81a6e7799f40fd2e54",
    "jobseekers.parquet": "cb4174a340ac4f27877bd3fdb6e8bf6fb3766f3fcfa7596d9b5e3e4f21889eaa",
    "manifest.json": "f8318ad04a2a81f1979a713ab50b3fc10b0bc398bbed70bca3c0746799b757ab",
    "municipalities.parquet": "376c5050236ab8c4e25dd527fbc2017c79be998f1b37735e9c4ba3e830bf0fa0",
    "municipality_info.parquet":
        "988d0838dd6eb071bd676cd1d617ef864e2930454cd803fe157c82033e9044d1",
    "trial_areas.parquet": "fdf96de7c2997a0999917958852f6535f77f7ccfdf329a711c13e559439d9b80",
    "truth_jobseekers.parquet":
        "ffb79981eabdc7ec8535480d205420b068c05863073574ad883686b98cd2dc3d",
    "truth_municipalities.parquet":
        "06efd9c2511530535b169fd3ae44ee2e61fef9f011c5eaa569ba8d94cd2ab98e",
}
MANIFEST_SCENARIO_KEYS = {
    "anticipation", "area_heterogeneity", "attrition", "cohort_effects", "dip_months",
    "effect_scale", "employment_dip", "employment_effect", "name", "noise", "plan_months",
    "plan_reduction", "plan_reduction_late", "pretrend", "ramp_months", "service_shift",
    "spillover", "target_effects"}


def _content(frame: pd.DataFrame) -> str:
    digest = hashlib.sha256()
    digest.update(repr([(c, str(t)) for c, t in frame.dtypes.items()]).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]


#: Outcomes added to the jobseeker panel after the reference hashes were taken; they are
#: functions of the existing states, so leaving them out must give the reference content.
#: Likewise the municipal panel's ``earlier_waves`` column (a function of the trial dates)
#: and the truth rows after a wave ends (populations ``post_wave`` and ``repeat``).
LATER_OUTCOMES = ("extended_unemployed", "earlier_waves")
LATER_POPULATIONS = ("post_wave", "repeat")


def _without_later_outcomes(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.drop(columns=[c for c in LATER_OUTCOMES if c in frame.columns])
    if "outcome" in frame.columns:
        later = frame["outcome"].isin(LATER_OUTCOMES) | frame["population"].isin(
            LATER_POPULATIONS)
        frame = frame[~later].reset_index(drop=True)
    return frame


def _rows(truth: pd.DataFrame, **where) -> pd.DataFrame:
    mask = np.ones(len(truth), dtype=bool)
    for col, value in where.items():
        mask &= (truth[col] == value).to_numpy(dtype=bool, na_value=False)
    return truth[mask]


def _wide(panel: SimulatedPanel, column: str) -> np.ndarray:
    return panel.data[column].to_numpy().reshape(len(panel.units), -1)


def _pair_correlation(y0: np.ndarray, groups: np.ndarray, lag: int = 12) -> float:
    """Mean correlation of 12-month log changes of ``y0`` between units of one group."""
    x = np.log1p(y0)
    change = x[:, lag:] - x[:, :-lag]
    change = change - change.mean(axis=0, keepdims=True)  # national movements out
    corr = np.corrcoef(change)
    same = (groups[:, None] == groups[None, :]) & (groups != "")[:, None]
    np.fill_diagonal(same, False)
    return float(corr[same].mean())


def _check_truth(truth: pd.DataFrame, tau: np.ndarray, cohort: np.ndarray,
                 times: np.ndarray) -> None:
    """Recompute event-time and overall effects of one population from unit effects."""
    event = times[None, :] - cohort[:, None]
    rows = _rows(truth, kind="event").sort_values("event_time")
    expected_e = np.unique(event)
    np.testing.assert_array_equal(rows["event_time"].to_numpy(dtype=np.int64), expected_e)
    np.testing.assert_allclose(rows["att"].to_numpy(),
                               [tau[event == e].mean() for e in expected_e],
                               rtol=1e-12, atol=1e-12)
    overall = _rows(truth, kind="overall")
    np.testing.assert_allclose(overall["att"].iat[0], tau[event >= 0].mean(), rtol=1e-12)
    assert overall["n_units"].iat[0] == len(tau)
    for g in np.unique(cohort)[:3]:
        gt = _rows(truth, kind="group_time", group=g).sort_values("time")
        np.testing.assert_allclose(gt["att"].to_numpy(), tau[cohort == g].mean(axis=0),
                                   rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------- defaults unchanged


@pytest.mark.parametrize("name", ["default", "anticipation", "spillover", "attrition"])
def test_existing_scenarios_give_the_reference_data(name):
    muni = simulate_municipalities(name, seed=11, keep_potential_outcomes=False)
    people = simulate_jobseekers(1000, scenario=name, seed=11)
    for level, panel in (("municipalities", muni), ("jobseekers", people)):
        for part in ("data", "units", "truth"):
            key = f"{level}/{name}/{part}"
            assert _content(_without_later_outcomes(getattr(panel, part))) == \
                REFERENCE_CONTENT[key], key


def test_default_files_are_byte_identical(tmp_path):
    manifest_path = write_synthetic_data(tmp_path, n_people=2000, seed=11)
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    assert set(manifest["scenario"]) == MANIFEST_SCENARIO_KEYS  # no new keys at default
    if pyarrow.__version__ != REFERENCE_PYARROW:
        pytest.skip(f"reference files were written with pyarrow {REFERENCE_PYARROW}")
    for name, digest in REFERENCE_FILES.items():
        if name == "manifest.json" and evaluation.__version__ != REFERENCE_VERSION:
            continue  # the manifest records the package version
        assert hashlib.sha256((tmp_path / name).read_bytes()).hexdigest() == digest, name


def test_written_panel_adds_only_the_reference_covariates(tmp_path):
    write_synthetic_data(tmp_path, n_people=300, seed=11)
    written = pd.read_parquet(tmp_path / "jobseekers.parquet")
    simulated = simulate_jobseekers(300, seed=11).data
    assert list(written.columns) == [*simulated.columns, *REFERENCE_COVARIATES]
    pd.testing.assert_frame_equal(written[list(simulated.columns)], simulated,
                                  check_categorical=False)  # Parquet drops category names
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    reference = manifest["reference_t"]
    assert reference == month_index(wave(3).start) - 1
    # constant within a person, computed at the reference month of the wave
    first = written.drop_duplicates("person").set_index("person")
    assert (written.groupby("person")[list(REFERENCE_COVARIATES)].nunique() <= 1).all().all()
    at = written[written["t"] == reference].set_index("person")
    np.testing.assert_array_equal(first["ref_in_services"],
                                  (at["state"].astype(str) == "services").astype(float))


def test_attrition_cohort_holds_only_persons_seen_at_the_reference_month():
    panel = simulate_jobseekers(1000, scenario="attrition", seed=11)
    reference = month_index(wave(3).start) - 1
    seen = set(panel.data.loc[panel.data["t"] == reference, "person"])
    cohort = set(panel.units.loc[panel.units["target_group"], "person"])
    assert cohort and cohort <= seen


def test_knobs_default_off_and_named_scenarios():
    default = SCENARIOS["default"]
    for name in ("area_shock", "ely_shock", "inflow", "carry_over"):
        assert getattr(default, name) == 0.0
        assert getattr(SCENARIOS[name], name) > 0, name
        assert name in default.replace(**{name: 0.1}).to_dict()
    for name in ("null", "positive", "heterogeneous", "anticipation", "pretrend", "spillover",
                 "attrition"):
        assert all(getattr(SCENARIOS[name], f) == getattr(default, f)
                   for f in ADDED_FIELDS), name
    assert not set(ADDED_FIELDS) & set(default.to_dict())
    assert 0.02 <= SCENARIOS["area_shock"].area_shock <= 0.15
    assert 0.02 <= SCENARIOS["ely_shock"].ely_shock <= 0.15
    assert SCENARIOS["carry_over"].carry_months == 36.0


@pytest.mark.parametrize(("field", "value", "message"), [
    ("area_shock", -0.1, r"area_shock=-0.1 must lie in \[0.0, 1.0\]"),
    ("ely_shock", 1.5, r"ely_shock=1.5 must lie in \[0.0, 1.0\]"),
    ("ely_shock", float("nan"), r"ely_shock=nan must lie in"),
    ("inflow", -0.2, r"inflow=-0.2 must lie in \[0.0, 2.0\]"),
    ("inflow", "many", r"inflow='many' must be a number"),
    ("carry_over", 1.2, r"carry_over=1.2 must lie in \[0.0, 1.0\]"),
    ("carry_months", 0.0, r"carry_months=0.0 must lie in \[0.1, 240\]"),
    ("area_shock", True, r"area_shock=True must be a number"),
])
def test_bad_knob_values_raise(field, value, message):
    with pytest.raises(SimulationError, match=message):
        get_scenario("default", **{field: value})


# ----------------------------------------------------------------- common shocks


@pytest.fixture(scope="module")
def base() -> SimulatedPanel:
    return simulate_municipalities("default", seed=5)


def test_area_shock_correlates_untreated_changes_within_areas(base):
    shocked = simulate_municipalities("area_shock", seed=5)
    area = base.units["area_w3"].to_numpy().astype(object)
    before = _pair_correlation(base.potential_outcomes["unemployed"][0], area)
    after = _pair_correlation(shocked.potential_outcomes["unemployed"][0], area)
    assert after > 0.2 and after > before + 0.15  # observed 0.34 against 0.10
    # only municipalities of some trial area move; the others keep their data
    in_area = (base.units[["area_w1", "area_w2", "area_w3"]] != "").any(axis=1).to_numpy()
    y0_base, y0_shock = base.potential_outcomes["unemployed"][0], \
        shocked.potential_outcomes["unemployed"][0]
    np.testing.assert_array_equal(y0_shock[~in_area], y0_base[~in_area])
    assert (y0_shock[in_area] != y0_base[in_area]).mean() > 0.8


def test_ely_shock_correlates_untreated_changes_within_regions(base):
    shocked = simulate_municipalities("ely_shock", seed=5)
    ely = base.units["ely"].to_numpy().astype(object)
    before = _pair_correlation(base.potential_outcomes["unemployed"][0], ely)
    after = _pair_correlation(shocked.potential_outcomes["unemployed"][0], ely)
    assert after > before + 0.08  # observed 0.29 against 0.16


def test_shocks_leave_the_municipal_truth_unchanged(base):
    shocked = simulate_municipalities(get_scenario("default", area_shock=0.1, ely_shock=0.1),
                                      seed=5)
    for name in COUNTS:
        y0b, y1b = base.potential_outcomes[name]
        y0s, y1s = shocked.potential_outcomes[name]
        assert (y0s != y0b).mean() > 0.3, name  # untreated outcomes move ...
        np.testing.assert_array_equal(y1s - y0s, y1b - y0b, err_msg=name)  # ... effects don't
    rate = shocked.truth["outcome"] == "unemployment_rate"
    pd.testing.assert_frame_equal(shocked.truth[~rate], base.truth[~rate])
    np.testing.assert_allclose(shocked.truth.loc[rate, "att"], base.truth.loc[rate, "att"],
                               rtol=0, atol=1e-12)  # equal up to floating-point rounding


def test_extreme_shocks_keep_counts_consistent(base):
    shocked = simulate_municipalities(get_scenario("default", area_shock=0.8, ely_shock=0.8),
                                      seed=5)
    data = shocked.data
    assert (data.select_dtypes("number") >= 0).all().all()
    np.testing.assert_array_equal(data["unemployed"] + data["in_services"]
                                  + data["other_jobseekers"], data["jobseekers"])
    np.testing.assert_array_equal(data["lms_cost_state"] + data["lms_cost_municipal"],
                                  data["lms_cost_total"])
    for part in UNEMPLOYED_PARTS:
        assert (data[part] <= data["unemployed"]).all(), part
        y0 = shocked.potential_outcomes[part][0]
        assert (y0 <= shocked.potential_outcomes["unemployed"][0]).all(), part
        assert (y0 >= 0).all()
    for name in COUNTS:
        y0b, y1b = base.potential_outcomes[name]
        y0s, y1s = shocked.potential_outcomes[name]
        np.testing.assert_array_equal(y1s - y0s, y1b - y0b, err_msg=name)


def test_common_shocks_are_stationary_and_shared_by_both_panels():
    design = build_design(309, np.random.default_rng(3))
    scenario = get_scenario("default", area_shock=0.1)
    full = common_shocks(design, scenario, np.arange(1, 181), np.random.default_rng(8))
    window = common_shocks(design, scenario, np.arange(-23, 73), np.random.default_rng(8))
    np.testing.assert_array_equal(window[:, 24:], full[:, :72])  # same months, same values
    assert common_shocks(design, get_scenario("default"), np.arange(1, 181),
                         np.random.default_rng(8)) is None
    single = ((design.membership >= 0).sum(axis=1) == 1)
    values = full[single]
    assert 0.07 < values.std() < 0.13  # sigma_A = 0.1
    lag1 = np.corrcoef(values[:, 1:].ravel(), values[:, :-1].ravel())[0, 1]
    assert abs(lag1 - SHOCK_PERSISTENCE) < 0.05
    outside = ~(design.membership >= 0).any(axis=1)
    assert (full[outside] == 0).all()
    area = np.where(single, design.membership[:, 2], -1)
    shared = np.flatnonzero(area == np.bincount(area[area >= 0]).argmax())
    assert shared.size >= 2  # municipalities of one wave-3 area (and no other) share it
    np.testing.assert_array_equal(full[shared[0]], full[shared[1]])


def _area_month_variance(panel: SimulatedPanel, column: str) -> float:
    """Variance of 12-month changes of group means of Y(0) unemployment (times group size)."""
    y0 = panel.potential_outcomes["unemployed"][0].astype(float)
    groups = panel.units[column].to_numpy()
    keep = groups != ""
    _, index = np.unique(groups[keep], return_inverse=True)
    sums = np.zeros((index.max() + 1, y0.shape[1]))
    np.add.at(sums, index, y0[keep])
    size = np.bincount(index)[:, None]
    change = (sums / size)[:, 12:] - (sums / size)[:, :-12]
    change -= change.mean(axis=0, keepdims=True)
    return float((change**2 * size).mean())


def test_shocks_reach_the_jobseekers_without_moving_their_effects():
    base = simulate_jobseekers(20_000, seed=4, keep_potential_outcomes=True)
    shocked = simulate_jobseekers(20_000, seed=4, keep_potential_outcomes=True,
                                  scenario=get_scenario("default", area_shock=0.15))
    before, after = (_area_month_variance(p, "area") for p in (base, shocked))
    assert after > 1.3 * before  # observed 0.52 against 0.31 (sampling noise alone)
    assert (base.potential_outcomes["unemployed"][0]
            != shocked.potential_outcomes["unemployed"][0]).any(axis=1).mean() > 0.2
    pd.testing.assert_frame_equal(shocked.units, base.units.assign(
        state_at_reference=shocked.units["state_at_reference"],
        target_group=shocked.units["target_group"], treated=shocked.units["treated"],
        era_entitled=shocked.units["era_entitled"]))
    overall = [_rows(p.truth, population="treated", kind="overall").set_index("outcome")["att"]
               for p in (base, shocked)]
    for outcome in ("employed", "unemployed", "in_services"):
        assert abs(overall[0][outcome] - overall[1][outcome]) < 0.01, outcome
    # the truth stays exact: recompute it from the shocked potential outcomes
    y0, y1 = shocked.potential_outcomes["in_services"]
    treated = shocked.units["treated"].to_numpy()
    _check_truth(_rows(shocked.truth, population="treated", outcome="in_services"),
                 (y1.astype(float) - y0)[treated], np.full(treated.sum(), W3_START),
                 shocked.times)


def test_ely_shock_reaches_the_jobseekers():
    base = simulate_jobseekers(20_000, seed=4, keep_potential_outcomes=True)
    shocked = simulate_jobseekers(20_000, seed=4, keep_potential_outcomes=True,
                                  scenario=get_scenario("default", ely_shock=0.15))
    assert _area_month_variance(shocked, "ely") > 1.3 * _area_month_variance(base, "ely")


# ------------------------------------------------------------------- anticipation


def test_anticipation_at_both_levels():
    scenario = get_scenario("anticipation", anticipation=2)
    muni = simulate_municipalities(scenario)
    for design in ("first_treated", "wave1", "wave2", "wave3"):
        events = _rows(muni.truth, design=design, population="treated", kind="event",
                       outcome="in_services").set_index("event_time")["att"]
        assert (events.loc[-2:-1] > 0).all(), design
        assert (events.loc[:-3] == 0).all(), design
    y0, y1 = muni.potential_outcomes["unemployed"]
    members = (muni.units["area_w3"] != "").to_numpy()
    assert (y1 != y0)[members][:, W3_START - 3].mean() > 0.5  # t index = column + 1
    assert (y1 == y0)[members][:, W3_START - 4].all()
    people = simulate_jobseekers(6_000, scenario=scenario, keep_potential_outcomes=True)
    treated = people.units["treated"].to_numpy()
    y0, y1 = people.potential_outcomes["in_services"]
    before = (people.times >= W3_START - 2) & (people.times < W3_START)
    assert (y1 != y0)[treated][:, before].any()
    assert (y1 == y0)[:, people.times < W3_START - 2].all()
    events = _rows(people.truth, population="treated", kind="event",
                   outcome="in_services").set_index("event_time")["att"]
    assert events.loc[-2:-1].abs().sum() > 0
    assert (events.loc[:-3] == 0).all()
    _check_truth(_rows(people.truth, population="treated", outcome="in_services"),
                 (y1.astype(float) - y0)[treated], np.full(treated.sum(), W3_START),
                 people.times)


# ------------------------------------------------------------------------- inflow


@pytest.fixture(scope="module")
def inflow() -> tuple[SimulatedPanel, SimulatedPanel]:
    base = simulate_jobseekers(4_000, seed=6, keep_potential_outcomes=True)
    panel = simulate_jobseekers(4_000, seed=6, keep_potential_outcomes=True,
                                scenario=get_scenario("default", inflow=0.25))
    return base, panel


def test_inflow_adds_people_who_enter_later(inflow):
    base, panel = inflow
    units = panel.units
    assert len(units) == 5_000 and len(panel.data) == 5_000 * 72
    entrant = units["entrant"].to_numpy()
    np.testing.assert_array_equal(entrant, units["person"].to_numpy() >= 4_000)
    entry = units["entry_month"].to_numpy()
    assert (entry[~entrant] == 0).all()
    assert entry[entrant].min() >= W3_START and entry[entrant].max() <= W3_LAST - 1
    assert len(np.unique(entry[entrant])) > 30  # spread over the trial
    # the reference-date cohort is untouched: entrants are not in it
    assert not units.loc[entrant, ["target_group", "treated"]].any().any()
    data = panel.data
    assert (data.loc[data["entrant"], ["cohort", "status"]] == 0).all().all()
    sample = data[~data["entrant"]].drop(columns=["entrant", "entry_month", "cohort_entry"])
    pd.testing.assert_frame_equal(sample.reset_index(drop=True), base.data)
    pd.testing.assert_frame_equal(
        units[~entrant].drop(columns=["entrant", "entry_month", "cohort_entry"]), base.units)
    pd.testing.assert_frame_equal(_rows(panel.truth, design="wave3").reset_index(drop=True),
                                  base.truth)
    # outside before the spell, newly unemployed and in the target group at entry
    state = _wide(panel, "state")[entrant]
    times = panel.times
    entry_col = entry[entrant][:, None]
    assert (state[times[None, :] < entry_col] == "outside_labour_force").all()
    at_entry = times[None, :] == entry_col
    assert (state[at_entry] == "unemployed").all()
    assert (_wide(panel, "unemployment_duration")[entrant][at_entry] == 1).all()
    age = _wide(panel, "age")[entrant][at_entry]
    eligible = (~units.loc[entrant, "era_member"].to_numpy() | (age < 30)
                | units.loc[entrant, "immigrant"].to_numpy())
    assert eligible.all()
    assert 0.2 < (state[times[None, :] > entry_col] == "unemployed").mean() < 0.9


def test_inflow_cohort_columns_and_exact_truth(inflow):
    _, panel = inflow
    units = panel.units
    entrant = units["entrant"].to_numpy()
    in_trial = (units["area"] != "").to_numpy()
    cohort_entry = units["cohort_entry"].to_numpy()
    expected = np.where(entrant, units["entry_month"] + 1, W3_START)
    expected = np.where((units["target_group"].to_numpy() | entrant) & in_trial, expected, 0)
    np.testing.assert_array_equal(cohort_entry, expected)
    np.testing.assert_array_equal(_wide(panel, "cohort_entry")[:, 0], cohort_entry)
    assert (entrant & in_trial).sum() > 50
    truth = _rows(panel.truth, design="wave3_entry")
    assert set(truth["population"]) == {"treated", "entrants", "neighbours"}
    assert panel.true_effects("in_services", kind="overall")["design"].iat[0] == "wave3"
    for outcome in ("in_services", "unemployed", "plan", "lms_cost_state"):
        y0, y1 = panel.potential_outcomes[outcome]
        tau = y1.astype(float) - y0
        for population, rows in (("entrants", entrant & in_trial),
                                 ("treated", cohort_entry > 0)):
            _check_truth(_rows(truth, population=population, outcome=outcome), tau[rows],
                         cohort_entry[rows].astype(np.int64), panel.times)
    # entrants are treated only after their entry month, and only in trial municipalities
    y0, y1 = panel.potential_outcomes["in_services"]
    until_entry = (panel.times[None, :] <= units["entry_month"].to_numpy()[:, None])[entrant]
    np.testing.assert_array_equal(y1[entrant][until_entry], y0[entrant][until_entry])
    outside = entrant & ~in_trial
    np.testing.assert_array_equal(y1[outside], y0[outside])
    assert (y1 != y0)[entrant & in_trial].any(axis=1).mean() > 0.1
    overall = _rows(truth, population="entrants", kind="overall").set_index("outcome")["att"]
    assert overall["in_services"] > 0


def test_inflow_in_wave1_enters_after_a_year_of_unemployment():
    panel = simulate_jobseekers(2_000, wave_number=1, seed=2,
                                scenario=get_scenario("default", inflow=0.2))
    units = panel.units
    entrant = units["entrant"].to_numpy()
    assert entrant.sum() == 400
    start, last = month_index(wave(1).start), month_index(wave(1).start) + 39
    entry = units.loc[entrant, "entry_month"].to_numpy()
    assert entry.min() >= start + 11 and entry.max() <= last - 1
    duration = _wide(panel, "unemployment_duration")[entrant]
    at_entry = panel.times[None, :] == entry[:, None]
    assert (duration[at_entry] == 12).all()


def test_inflow_with_attrition_keeps_entrants_until_their_spell_starts():
    panel = simulate_jobseekers(1_000, seed=3,
                                scenario=get_scenario("attrition", inflow=0.3))
    months = panel.data.groupby("person")["t"].agg(["min", "max", "size"])
    assert (months["min"] == panel.times[0]).all()
    np.testing.assert_array_equal(months["max"] - months["min"] + 1, months["size"])
    entry = panel.units.set_index("person")["entry_month"]
    entrants = entry[entry > 0].index
    assert len(entrants) == 300
    # the register clock of an entrant starts with the spell (wave 3: the entry month)
    assert (months.loc[entrants, "max"] >= entry.loc[entrants]).all()
    assert (months.loc[entrants, "max"] < panel.times[-1]).mean() > 0.05


# --------------------------------------------------------------------- carry-over


def test_effect_paths_carry_over_formula():
    scenario = get_scenario("carry_over", carry_over=0.4, carry_months=20.0)
    plain = effect_paths(scenario.replace(carry_over=0.0), np.arange(-5, 80), 40)
    carry = effect_paths(scenario, np.arange(-5, 80), 40)
    e = np.arange(-5, 80)
    inside = e < 40
    for part in ("service_shift", "unemployment"):
        np.testing.assert_array_equal(getattr(carry, part)[inside],
                                      getattr(plain, part)[inside])
        last = getattr(plain, part)[e == 39][0]
        expected = 0.4 * last * np.exp(-(e[~inside] - 39) / 20.0)
        np.testing.assert_allclose(getattr(carry, part)[~inside], expected, rtol=1e-12)
        assert last != 0
    np.testing.assert_array_equal(carry.plans, plain.plans)  # plans do not carry over
    np.testing.assert_array_equal(carry.active, plain.active)


def test_carry_over_makes_earlier_wave_municipalities_unclean_controls():
    panel = simulate_municipalities("carry_over", seed=5)
    clean = simulate_municipalities(get_scenario("carry_over", carry_over=0.0), seed=5)
    units = panel.units
    in_wave = {w: (units[f"area_w{w}"] != "").to_numpy() for w in (1, 2, 3)}
    expected = (in_wave[1] | in_wave[2]) & ~in_wave[3]
    np.testing.assert_array_equal(units["carry_over_w3"].to_numpy(), expected)
    np.testing.assert_array_equal(units["carry_over_w2"].to_numpy(), in_wave[1] & ~in_wave[2])
    assert "carry_over_w3" not in clean.units
    for name in COUNTS:  # untreated outcomes are the same
        np.testing.assert_array_equal(panel.potential_outcomes[name][0],
                                      clean.potential_outcomes[name][0], err_msg=name)
    # wave-1-only municipalities: no effect after wave 1 without carry-over, an effect with it
    only1 = in_wave[1] & ~in_wave[2] & ~in_wave[3]
    after = panel.times > month_index(wave(1).start) + 39
    y0, y1 = panel.potential_outcomes["in_services"]
    c0, c1 = clean.potential_outcomes["in_services"]
    np.testing.assert_array_equal(c1[only1][:, after], c0[only1][:, after])
    assert (y1 - y0)[only1][:, after].mean() > 0
    observed = _wide(panel, "in_services")
    observed_clean = _wide(clean, "in_services")
    assert (observed[only1][:, after] != observed_clean[only1][:, after]).mean() > 0.5
    never = ~(in_wave[1] | in_wave[2] | in_wave[3])
    np.testing.assert_array_equal(observed[never], observed_clean[never])
    # the truth records the carried-over effect on wave 3's comparison municipalities
    carry = _rows(panel.truth, design="wave3", population="carry_over",
                  kind="overall").set_index("outcome")
    assert carry.loc["in_services", "att"] > 0 and carry.loc["unemployed", "att"] < 0
    assert carry.loc["unemployed", "n_units"] == expected.sum()
    window = (panel.times >= W3_START) & (panel.times <= W3_LAST)
    np.testing.assert_allclose(carry.loc["in_services", "att"],
                               (y1 - y0)[expected][:, window].mean(), rtol=1e-12)
    assert "carry_over" not in set(clean.truth["population"])


def test_carry_over_reaches_comparison_jobseekers():
    scenario = get_scenario("carry_over", carry_over=1.0, carry_months=120.0,
                            service_shift=0.2)
    panel = simulate_jobseekers(8_000, seed=7, scenario=scenario, keep_potential_outcomes=True)
    units = panel.units
    carry = units["carry_over"].to_numpy()
    assert carry.sum() > 100
    assert not (carry & units["treated"].to_numpy()).any()
    assert (carry <= units["target_group"].to_numpy()).all()
    y0, y1 = panel.potential_outcomes["in_services"]
    reference = panel.times < W3_START
    np.testing.assert_array_equal(y1[:, reference & (panel.times < W3_START - 1)],
                                  y0[:, reference & (panel.times < W3_START - 1)])
    assert (y1 != y0)[carry].any(axis=1).mean() > 0.1
    truth = _rows(panel.truth, population="carry_over", outcome="in_services")
    assert _rows(truth, kind="overall")["att"].iat[0] > 0
    _check_truth(truth, (y1.astype(float) - y0)[carry], np.full(carry.sum(), W3_START),
                 panel.times)
