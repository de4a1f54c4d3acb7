"""Randomization inference over the assignment of areas (evaluation.inference.randomization)."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binom

from evaluation.errors import EvaluationWarning, InvalidOptionError, MissingColumnError, PanelError
from evaluation.estimators.did import TwoWayFixedEffects
from evaluation.estimators.registry import EstimatorEntry, register, unregister
from evaluation.inference.randomization import INFERENCE_COLUMNS, randomization_inference
from evaluation.panel import Panel


def area_frame(n_areas: int, treated: dict[int, int], *, per_area: int = 2, periods: int = 4,
               effect: float = 0.0, seed: int = 0) -> pd.DataFrame:
    """Long data: areas assigned at random to cohorts (``treated``: cohort -> areas)."""
    rng = np.random.default_rng(seed)
    cohorts = np.zeros(n_areas, dtype=int)
    cohorts[:sum(treated.values())] = np.repeat(list(treated), list(treated.values()))
    cohorts = rng.permutation(cohorts)
    n_units = n_areas * per_area
    unit = np.repeat(np.arange(n_units), periods)
    area = unit // per_area
    time = np.tile(np.arange(1, periods + 1), n_units)
    cohort = cohorts[area]
    post = (cohort > 0) & (time >= cohort)
    # area shocks per period (clustered errors) plus heteroskedastic unit noise
    shock = rng.normal(size=(n_areas, periods))[area, time - 1]
    noise = rng.normal(size=unit.size) * (0.5 + (area % 3) / 2)
    y = rng.normal(size=n_units)[unit] + 0.3 * time + shock + noise + effect * post
    return pd.DataFrame({"unit": unit, "time": time, "area": area, "cohort": cohort, "y": y})


def area_panel(*args: object, **kwargs: object) -> Panel:
    return Panel(area_frame(*args, **kwargs), unit="unit", time="time", outcome="y",
                 cohort="cohort", never_treated=0, cluster="area")


def test_exact_enumeration_reproduces_the_hand_computed_distribution():
    data = area_frame(7, {3: 2}, effect=1.0, seed=1)
    panel = Panel(data, unit="unit", time="time", outcome="y", cohort="cohort",
                  never_treated=0, cluster="area")
    result = randomization_inference(panel, "twfe", statistic="estimate", ci=False,
                                     progress=False)
    # static TWFE on a balanced panel with one adoption date = difference in differences
    change = (data[data.time >= 3].groupby("area").y.mean()
              - data[data.time < 3].groupby("area").y.mean()).to_numpy()
    by_pair = {pair: change[list(pair)].mean() - np.delete(change, list(pair)).mean()
               for pair in itertools.combinations(range(7), 2)}
    observed = by_pair[tuple(np.flatnonzero(data.groupby("area").cohort.first().to_numpy()))]
    hand = np.array(list(by_pair.values()))
    assert result.exact and result.permutations == result.distinct_assignments == 21
    row = result.table.iloc[0]
    assert row.estimate == pytest.approx(observed, abs=1e-10)
    np.testing.assert_allclose(np.sort(result.distribution[:, 0]), np.sort(hand), atol=1e-10)
    assert row.p_value == pytest.approx(np.mean(np.abs(hand) >= abs(observed) - 1e-12))
    assert result.treated_per_cohort == {"never": 5, 3: 2}


def test_to_frame_and_summary():
    result = randomization_inference(area_panel(8, {3: 2}, seed=2), "twfe", ci=False,
                                     progress=False)
    frame = result.to_frame()
    assert list(frame.columns) == INFERENCE_COLUMNS
    assert frame.loc[0, "method"] == "randomization-t" and bool(frame.loc[0, "exact"])
    text = str(result.summary())
    assert "Randomization inference: TWFE" in text and "28 distinct" in text


def test_serial_and_parallel_permutations_are_identical():
    panel = area_panel(12, {3: 2, 4: 1}, seed=3)
    serial = randomization_inference(panel, "cs", permutations=19, seed=11, ci=False,
                                     progress=False)
    parallel = randomization_inference(panel, "cs", permutations=19, seed=11, ci=False,
                                       n_jobs=2, progress=False)
    assert not serial.exact and serial.permutations == 19
    pd.testing.assert_frame_equal(serial.table, parallel.table)
    np.testing.assert_array_equal(serial.distribution, parallel.distribution)


def test_size_under_the_null_is_nominal_within_monte_carlo_error():
    # 20 areas, 4 treated at random, no effect: P(p <= k/20) = k/20 exactly with B = 19
    reps, level = 40, 0.05
    p = np.array([randomization_inference(area_panel(20, {2: 4}, per_area=1, periods=3,
                                                     seed=100 + r),
                                          "twfe", permutations=19, seed=r, ci=False,
                                          progress=False).table.p_value.iloc[0]
                  for r in range(reps)])
    for alpha in (level, 0.25, 0.5):
        low, high = binom.ppf([0.0005, 0.9995], reps, alpha)
        assert low <= np.sum(p <= alpha + 1e-12) <= high, (alpha, np.sort(p))


def test_interval_endpoints_have_p_equal_to_alpha_and_match_direct_refits():
    data = area_frame(9, {3: 2, 4: 1}, effect=1.0, seed=5)
    panel = Panel(data, unit="unit", time="time", outcome="y", cohort="cohort",
                  never_treated=0, cluster="area")
    result = randomization_inference(panel, "cs", permutations=39, seed=2, progress=False)
    row = result.table.iloc[0]
    assert row.ci_lower < row.estimate < row.ci_upper
    step = 1e-6 * row.std_error
    for end, outward in ((row.ci_lower, -step), (row.ci_upper, step)):
        inside, outside = (result.p_value_at(end - outward), result.p_value_at(end + outward))
        assert inside > 0.05 >= outside
        assert outside == pytest.approx(0.05, abs=1 / 40)
    # the exact curves equal a direct refit on Y - tau * D just outside the upper endpoint
    post = (data.cohort > 0) & (data.time >= data.cohort)
    tau = row.ci_upper + step
    shifted = Panel(data.assign(y=data.y - tau * post), unit="unit", time="time", outcome="y",
                    cohort="cohort", never_treated=0, cluster="area")
    direct = randomization_inference(shifted, "cs", permutations=39, seed=2, ci=False,
                                     progress=False)
    assert direct.table.p_value.iloc[0] == pytest.approx(result.p_value_at(tau))
    np.testing.assert_allclose(direct.distribution[:, 0],
                               result.curves.statistics(tau, True)[1:, 0], rtol=1e-7)


@pytest.mark.parametrize("estimator", ["cs", "sa", "bjs", "did2s", "twfe"])
def test_every_registered_estimator_event_time(estimator):
    result = randomization_inference(area_panel(8, {3: 1, 4: 1}, periods=5, effect=2.0,
                                                seed=6),
                                     estimator, aggregate="event", permutations=19, seed=1,
                                     progress=False)
    table = result.table.set_index("term")
    assert "overall" in table.index and "0" in table.index
    assert table.p_value.between(0, 1).all()
    post = [t for t in table.index if t == "overall" or int(t) >= 0]
    assert (table.loc[post, "ci_lower"] <= table.loc[post, "estimate"]).all()
    pre = [t for t in table.index if t != "overall" and int(t) < 0]
    assert table.loc[pre, "ci_lower"].isna().all()


def test_mixed_cohorts_within_an_assignment_unit_are_an_error():
    data = area_frame(10, {3: 3}, seed=7)
    data.loc[data.unit == 0, "cohort"] = 4 if data.loc[data.unit == 0, "cohort"].iloc[0] else 3
    panel = Panel(data, unit="unit", time="time", outcome="y", cohort="cohort",
                  never_treated=0, cluster="area")
    with pytest.raises(PanelError, match="assignment unit area=0 holds units with different"):
        randomization_inference(panel, "twfe", progress=False)


def test_too_few_assignments_for_a_five_percent_test():
    with pytest.raises(InvalidOptionError, match=r"only 15 distinct assignments.*at least 20"):
        randomization_inference(area_panel(6, {3: 2}), "twfe", progress=False)
    with pytest.raises(InvalidOptionError, match="permutations=10 cannot give p <= alpha"):
        randomization_inference(area_panel(20, {3: 4}), "twfe", permutations=10,
                                progress=False)


def test_missing_assignment_column_is_an_error():
    with pytest.raises(MissingColumnError, match="assignment column 'region' is not in"):
        randomization_inference(area_panel(8, {3: 2}), "twfe", assignment="region",
                                progress=False)
    no_cluster = Panel(area_frame(8, {3: 2}), unit="unit", time="time", outcome="y",
                       cohort="cohort", never_treated=0)
    with pytest.raises(InvalidOptionError, match="no cluster column"):
        randomization_inference(no_cluster, "twfe", progress=False)


def test_bootstrap_standard_errors_are_refused():
    with pytest.raises(InvalidOptionError, match="se='bootstrap'"):
        randomization_inference(area_panel(8, {3: 2}), "cs", se="bootstrap", progress=False)


class NoisyTWFE(TwoWayFixedEffects):
    """TWFE that warns on every fit (to check that refit warnings are recorded)."""

    def fit(self, panel: Panel):
        warnings.warn("fitted once more", EvaluationWarning, stacklevel=2)
        return super().fit(panel)


def test_refit_warnings_are_issued_once_and_recorded_with_their_count():
    register(EstimatorEntry("noisy", "test_randomization:NoisyTWFE", "Noisy TWFE",
                            ("none", "simple", "event"), by_aggregation={"simple": {}}))
    try:
        with pytest.warns(EvaluationWarning, match="fitted once more") as caught:
            result = randomization_inference(area_panel(8, {3: 2}, seed=8), "noisy",
                                             ci=False, progress=False)
    finally:
        unregister("noisy")
    assert len([w for w in caught if "fitted once more" in str(w.message)]) == 1
    # 29 assignments (observed + 28 enumerated) and the check of the re-assigned panel
    assert "EvaluationWarning: fitted once more (30 of 30 refits)" in result.warnings


def test_period_labels_and_unit_level_assignment():
    data = area_frame(6, {3: 1, 4: 1}, per_area=1, periods=5, seed=9)
    months = {t: f"2021M{t:02d}" for t in range(1, 6)}
    data = data.assign(time=data.time.map(months),
                       cohort=data.cohort.map(months).where(data.cohort > 0))
    panel = Panel(data, unit="unit", time="time", outcome="y", cohort="cohort")
    result = randomization_inference(panel, "bjs", assignment="unit", ci=False,
                                     progress=False)
    assert result.exact and result.distinct_assignments == 30
    assert result.treated_per_cohort == {"never": 4, pd.Period("2021-03", "M"): 1,
                                         pd.Period("2021-04", "M"): 1}
    assert 0 < result.table.p_value.iloc[0] <= 1 and np.isnan(result.table.ci_upper.iloc[0])


def test_universal_base_period_reference_term_has_no_p_value():
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        result = randomization_inference(area_panel(10, {3: 2, 4: 1}, periods=5, seed=3),
                                         "cs", aggregate="event", permutations=19, ci=False,
                                         base_period="universal", progress=False)
    reference = result.table.set_index("term").loc["-1"]
    assert reference.estimate == 0 and np.isnan(reference.p_value)
    assert result.table.p_value.isna().sum() == 1 and np.isnan(reference.ci_lower)
