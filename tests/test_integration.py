"""The simulated panels pass through Panel unchanged, in every time representation."""

import numpy as np
import pytest

from evaluation import Panel, simulate_jobseekers, simulate_municipalities
from evaluation.errors import CohortOutOfRangeError


@pytest.fixture(scope="module")
def municipal():
    return simulate_municipalities(seed=3)


@pytest.fixture(scope="module")
def people():
    return simulate_jobseekers(2_000, seed=3, scenario="attrition")


def test_municipal_panel_validates_with_integer_time(municipal):
    panel = Panel(municipal.data, unit="municipality", time="t", outcome="unemployed",
                  cohort="cohort_w3", never_treated=0, cluster="ely")
    assert (panel.n_units, panel.n_periods, panel.is_balanced) == (309, 180, True)
    assert list(panel.periods[[0, -1]]) == [1, 180]
    np.testing.assert_array_equal(panel.cohorts, [134])  # position of t = 135
    # the wide view is the observed potential outcome Y(1), unit by unit
    order = np.argsort(municipal.units["municipality"].to_numpy())
    observed = municipal.potential_outcomes["unemployed"][1]
    np.testing.assert_array_equal(panel.wide(), observed[order])


def test_municipal_panel_validates_with_statfin_months(municipal):
    panel = Panel(municipal.data, unit="municipality", time="month", outcome="unemployment_rate",
                  status="treated", never_treated=0)
    assert panel.time_kind == "period"
    assert str(panel.periods[0]) == "2010-01" and str(panel.periods[-1]) == "2024-12"
    # cohort derived from the switching-off status: first trial month of each municipality
    first = municipal.units.set_index("municipality")["first_treated"]
    derived = panel.unit_cohort + 1  # position 0 is t = 1
    expected = first.reindex(panel.units).to_numpy().astype(float)
    expected[expected == 0] = np.nan
    np.testing.assert_array_equal(derived, expected)
    status = panel.status_wide()
    assert status.sum() == municipal.data["treated"].sum()


def test_r_did_coding_needs_never_treated_zero(municipal):
    with pytest.raises(CohortOutOfRangeError, match="never_treated=0"):
        Panel(municipal.data, unit="municipality", time="t", outcome="unemployed",
              cohort="cohort_w3")


def test_jobseeker_panel_with_attrition_is_unbalanced(people):
    panel = Panel(people.data, unit="person", time="t", outcome=["employed", "lms_cost"],
                  cohort="cohort", never_treated=0, covariates=["age"], cluster="municipality")
    assert panel.n_units == 2_000 and panel.n_periods == 72
    assert not panel.is_balanced
    assert panel.n_obs == len(people.data)
    wide = panel.wide("employed")
    assert np.isnan(wide).sum() == 2_000 * 72 - len(people.data)
    treated = people.units.set_index("person")["treated"].reindex(panel.units).to_numpy()
    np.testing.assert_array_equal(~np.isnan(panel.unit_cohort), treated)


def test_jobseeker_panel_with_categorical_months_and_status(people):
    panel = Panel(people.data, unit="person", time="month", outcome="unemployed",
                  status="status")
    assert panel.time_kind == "period" and panel.n_periods == 72
    # the cohort derived from status is March 2021 for every treated person still observed
    cohorts = {str(panel.period_label(c)) for c in panel.cohorts}
    assert cohorts == {"2021-03"}
