"""The reference-month cohort and its covariates (evaluation.sources.cohort), the headline
design's specs, and the validated rule of the conclusions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evaluation.errors import CohortError, DroppedCovariatesWarning, ReportError
from evaluation.report.chapters.conclusions import CONCLUSION_COLUMNS, headline_conclusions
from evaluation.report.study import JOBSEEKER_FILE, Study, identified_covariates
from evaluation.simulate import simulate_jobseekers, write_synthetic_data
from evaluation.sources.cohort import (
    COHORT_COVARIATES,
    REFERENCE_COVARIATES,
    add_reference_covariates,
    local_rates,
    reference_covariates,
    target_cohort,
)
from evaluation.sources.trials import month_index, wave

STATES = {"u": "unemployed", "e": "open_market_job", "s": "services", "o": "outside_labour_force"}


def _person(person: int, path: str, municipality: str, *, duration_at_end: int, age: int,
            era: bool = False, immigrant: bool = False) -> pd.DataFrame:
    """Rows t = 1..len(path) of one person; ``path`` spells the state by month.

    The spell length is ``duration_at_end`` in the last two months (the reference month
    t = 14 and the one after) and 0 before.
    """
    n = len(path)
    state = [STATES[c] for c in path]
    return pd.DataFrame({
        "person": person, "t": np.arange(1, n + 1), "municipality": municipality,
        "state": state, "unemployment_duration": [0] * (n - 2) + [duration_at_end] * 2,
        "age": age, "era_member": era, "immigrant": immigrant,
        "employed": [int(s == "open_market_job") for s in state],
        "unemployed": [int(s == "unemployed") for s in state],
        "lms_cost": [700 * (c in "us") for c in path]})


@pytest.fixture
def panel() -> pd.DataFrame:
    # 15 months; reference month t = 14, history t = 2..13
    return pd.concat([
        _person(1, "e" * 10 + "u" * 5, "A", duration_at_end=4, age=25, era=True),
        _person(2, "u" * 12 + "s" * 3, "B", duration_at_end=30, age=40, immigrant=True),
        _person(3, "o" * 15, "A", duration_at_end=0, age=50),
    ], ignore_index=True)


@pytest.fixture
def municipal() -> pd.DataFrame:
    t = np.arange(1, 16)
    return pd.concat([pd.DataFrame({"municipality": m, "t": t, "unemployment_rate": rate + t})
                      for m, rate in (("A", 5.0), ("B", 10.0))], ignore_index=True)


def test_reference_covariates_by_hand(panel, municipal):
    rates = local_rates(municipal, 14)
    assert rates["A"] == pytest.approx(5 + np.mean(np.arange(2, 14)))
    out = reference_covariates(panel, 14, rates)
    assert list(out.columns) == list(REFERENCE_COVARIATES)
    one, two, three = (out.loc[p] for p in (1, 2, 3))
    # person 1: employed t = 2..10 (9 months), unemployed t = 11..13 (3 months)
    assert (one["months_employed_12"], one["months_unemployed_12"],
            one["months_on_subsidy_12"]) == (9, 3, 3)
    assert one["ref_in_services"] == 0 and one["ref_on_era"] == 1 and one["ref_under30"] == 1
    # person 2: unemployed t = 2..12 (11 months), in services t = 13; 30-month spell
    assert (two["months_employed_12"], two["months_unemployed_12"],
            two["months_on_subsidy_12"]) == (0, 11, 12)
    assert two["ref_in_services"] == 1 and two["ref_long_term"] == 1
    assert two["ref_log_duration"] == pytest.approx(np.log(31))
    assert two["local_unemployment_rate"] == pytest.approx(rates["B"])
    assert three["months_on_subsidy_12"] == 0 and three["ref_log_duration"] == 0


def test_added_columns_are_constant_and_the_input_is_untouched(panel, municipal):
    before = panel.copy()
    out = add_reference_covariates(panel, 14, municipal)
    pd.testing.assert_frame_equal(panel, before)
    assert (out.groupby("person")[list(REFERENCE_COVARIATES)].nunique() == 1).all().all()


@pytest.mark.parametrize("change, message", [
    (lambda d: d.drop(columns="lms_cost"), "lack lms_cost"),
    (lambda d: d[d["t"] != 14], "no person-month rows at the reference month t = 14"),
])
def test_bad_person_months_fail_clearly(panel, municipal, change, message):
    with pytest.raises(CohortError, match=message):
        add_reference_covariates(change(panel), 14, municipal)


def test_too_little_history_and_unknown_municipality_fail_clearly(panel, municipal):
    with pytest.raises(CohortError, match="only 5 months of history"):
        add_reference_covariates(panel, 6, municipal)
    with pytest.raises(CohortError, match=r"lacks the municipalities \['B'\]"):
        add_reference_covariates(panel, 14, municipal[municipal["municipality"] == "A"])


def test_target_cohort_applies_the_simulators_rule():
    simulated = simulate_jobseekers(400, seed=3)
    reference = month_index(wave(3).start) - 1
    cohort = target_cohort(simulated.data, reference, 3)
    expected = simulated.units.loc[simulated.units["target_group"], "person"]
    assert set(cohort) == set(expected)
    long_term = target_cohort(simulated.data, reference, 1)  # waves 1-2: 12+ months
    at = simulated.data[simulated.data["t"] == reference].set_index("person")
    assert (at.loc[long_term, "unemployment_duration"] >= 12).all()


@pytest.fixture(scope="module")
def small_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("cohort-data")
    write_synthetic_data(directory, n_people=1500, seed=5)
    return directory


def test_headline_spec_is_adjusted_cs_and_fixed_effects_estimators_are_not(small_dir):
    study = Study(small_dir)
    assert study.jobseeker_spec("employed").options["covariates"] == list(COHORT_COVARIATES)
    assert "covariates" not in study.jobseeker_spec("employed", estimator="bjs").options
    assert "covariates" not in study.jobseeker_spec("employed", covariates=()).options
    command = study.jobseeker_spec("employed").command(small_dir)
    assert "--covariates ref_in_services,ref_log_duration" in command


def test_subset_panels_drop_covariates_without_variation(small_dir):
    study = Study(small_dir)
    young = study.jobseekers["ref_under30"] == 1
    with pytest.warns(DroppedCovariatesWarning, match="covariates ref_under30"):
        panel = study.jobseeker_panel("employed", rows=young)
    assert "ref_under30" not in panel.covariates
    assert study.jobseeker_panel("employed").covariates == COHORT_COVARIATES
    assert study.jobseeker_panel("employed", adjusted=False).covariates == ()


def test_data_without_the_covariates_are_refused_with_the_fix(small_dir, tmp_path):
    for path in small_dir.iterdir():
        (tmp_path / path.name).write_bytes(path.read_bytes())
    data = pd.read_parquet(tmp_path / JOBSEEKER_FILE).drop(columns="months_employed_12")
    data.to_parquet(tmp_path / JOBSEEKER_FILE)
    with pytest.raises(ReportError, match=r"lacks the reference-month covariates "
                       r"months_employed_12.*add_reference_covariates"):
        _ = Study(tmp_path).jobseekers


# ------------------------------------------------------------ the validated rule

def _overall(p_value: float, estimate: float = 0.02) -> pd.DataFrame:
    return pd.DataFrame({"level": ["jobseekers"], "outcome": ["employed"],
                         "estimator": ["cs"], "estimate": [estimate], "std_error": [0.01],
                         "ci_lower": [estimate - 0.0196], "ci_upper": [estimate + 0.0196],
                         "p_value": [p_value]})


def _validation(bias_share: float = 0.02, coverage: float = 0.95) -> pd.DataFrame:
    return pd.DataFrame({
        "level": ["jobseekers", "jobseekers"], "outcome": ["employed", "employed"],
        "design": ["overall effect", "placebo: cohort re-selected 12 months earlier"],
        "estimator": ["cs", "cs"], "verdict": ["(verdict)", "meets the criteria"],
        "bias_share": [bias_share, 0.0], "coverage": [coverage, 0.95],
        "size": [np.nan, 0.05]})


def _robust(placebo_p: float) -> pd.DataFrame:
    return pd.DataFrame({"outcome": ["employed"] * 2, "p_value": [0.5, placebo_p],
                         "design": ["baseline", "placebo: cohort re-selected 12 months "
                                                "earlier"]})


@pytest.mark.parametrize("p_value, placebo_p, bias_share, coverage, expected", [
    (0.01, 0.40, 0.02, 0.95, "effect found: the validated design's interval excludes zero"),
    (0.30, 0.40, 0.02, 0.95, "no effect detected; effects beyond ±0.02802 would have been found"),
    (0.01, 0.01, 0.02, 0.95, "not credible on these data"),
    (0.01, 0.01, -0.15, 0.95, "no conclusion: the design is biased for this outcome in the "
                              "validation (bias -0.15 SD"),
    (0.01, 0.40, 0.02, 0.91, "effect found: the validated design's interval excludes zero "
                             "(caveat: its 95 % intervals covered the truth in 91.0 %"),
])
def test_the_rule_in_order(p_value, placebo_p, bias_share, coverage, expected):
    table = headline_conclusions(_overall(p_value), _robust(placebo_p),
                                 _validation(bias_share, coverage))
    assert list(table.columns) == CONCLUSION_COLUMNS
    row = table.iloc[0]
    assert row["conclusion"].startswith(expected)
    assert row["placebo_size"] == 0.05 and row["placebo_p_value"] == placebo_p
    assert row["validation"] == "(verdict)"


def test_a_null_result_quotes_the_overall_tables_t_based_mde():
    from evaluation.estimators.results import minimum_detectable_effect

    overall = _overall(0.30).assign(mde=float(minimum_detectable_effect(0.01, df=14)))
    row = headline_conclusions(overall, _robust(0.40), _validation()).iloc[0]
    assert row["mde"] == pytest.approx(0.0301284, rel=1e-5)  # t(14) quantiles, not 2.80 SE
    assert "effects beyond ±0.03013 would have been found" in row["conclusion"]


def test_without_a_validation_run_nothing_is_concluded():
    row = headline_conclusions(_overall(0.001)).iloc[0]
    assert row["validation"] == "not validated"
    assert row["conclusion"].startswith("no conclusion: the design was not validated")


def test_identified_covariates_drops_constant_and_collinear_ones():
    data = pd.DataFrame({"person": [1, 2, 3, 4, 5], "cohort": [0, 0, 0, 0, 9],
                         "a": [1.0, 2, 3, 4, 5], "b": [2.0, 4, 6, 8, 1], "c": [1.0] * 5,
                         "d": [0.0, 1, 0, 1, 0]})
    with pytest.warns(DroppedCovariatesWarning, match="b, c dropped.*4 comparison persons"):
        assert identified_covariates(data, ["a", "b", "c", "d"]) == ["a", "d"]
