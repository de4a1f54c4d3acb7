"""Tests of evaluation.panel.Panel: error contracts, exact indexing and invariances."""

from __future__ import annotations

import contextlib
import copy

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evaluation import errors
from evaluation.panel import Panel

NAN = np.nan
FAST = settings(max_examples=50, deadline=None, database=None)


def small(**overrides: object) -> pd.DataFrame:
    """Three units (a, b, c) x three periods (1, 2, 3); a treated from 2, b never, c from 3."""
    df = pd.DataFrame(
        {
            "u": ["a"] * 3 + ["b"] * 3 + ["c"] * 3,
            "t": [1, 2, 3] * 3,
            "y": np.arange(9, dtype=float),
            "g": [2.0] * 3 + [NAN] * 3 + [3.0] * 3,
        }
    )
    for name, value in overrides.items():
        df[name] = value
    return df


def build(df: pd.DataFrame, **kwargs: object) -> Panel:
    kwargs = {"unit": "u", "time": "t", "outcome": "y", **kwargs}
    return Panel(df, **kwargs)


# --------------------------------------------------------------------------------------------
# 1. Columns and roles
# --------------------------------------------------------------------------------------------
def test_missing_columns_are_listed_together_with_available_columns():
    with pytest.raises(
        errors.MissingColumnError,
        match=r"2 columns not found in data: 'tt' \(time\), 'z' \(outcome\)\. "
        r"Available columns: 'u', 't', 'y', 'g'",
    ):
        Panel(small(), unit="u", time="tt", outcome=["y", "z"])


def test_missing_column_that_is_an_index_level_suggests_reset_index():
    df = small().set_index("u")
    with pytest.raises(errors.MissingColumnError, match=r"'u' \(unit\).*reset_index\(\)"):
        build(df)


def test_same_column_in_two_roles_is_rejected():
    with pytest.raises(
        errors.InvalidOptionError, match="'y' is used both as outcome and as cohort"
    ):
        build(small(), cohort="y")


def test_invalid_missing_option():
    with pytest.raises(errors.InvalidOptionError, match=r"missing='ignore'.*'error', 'drop'"):
        build(small(), missing="ignore")


def test_duplicated_column_name_in_data():
    df = pd.concat([small(), small()[["y"]]], axis=1)
    with pytest.raises(errors.PanelError, match="'y' occurs 2 times"):
        build(df)


# --------------------------------------------------------------------------------------------
# 2. Missing values
# --------------------------------------------------------------------------------------------
def test_missing_unit_id():
    df = small()
    df["u"] = df["u"].astype(object)
    df.loc[4, "u"] = None
    with pytest.raises(
        errors.MissingValueError, match=r"'u' \(unit\) is missing in 1 row, e.g. row 4.*dropna"
    ):
        build(df)


def test_missing_time():
    df = small(t=[1.0, 2.0, 3.0, 1.0, NAN, 3.0, 1.0, 2.0, 3.0])
    with pytest.raises(
        errors.MissingValueError, match=r"'t' \(time\) is missing in 1 row, e.g. row 4"
    ):
        build(df)


def test_missing_outcome_and_covariate_are_reported_together():
    df = small(x=[0.0, 1, 2, 3, 4, NAN, NAN, 7, 8])
    df.loc[1, "y"] = NAN
    with pytest.raises(
        errors.MissingValueError,
        match=r"'y' \(outcome\) in 1 row, e.g. row 1 \(unit 'a', time 2\); "
        r"'x' \(covariate\) in 2 rows.*Pass missing='drop'",
    ):
        build(df, covariates=["x"])


def test_missing_drop_warns_and_drops_rows():
    df = small(x=[0.0, 1, 2, 3, 4, NAN, 6, 7, 8])
    df.loc[1, "y"] = NAN
    with pytest.warns(
        errors.DroppedObservationsWarning, match=r"Dropped 2 of 9 rows.*'y' \(1\), 'x' \(1\)"
    ):
        panel = build(df, covariates=["x"], cohort="g", missing="drop")
    assert panel.n_obs == 7
    assert not panel.is_balanced
    expected = np.array([[0, NAN, 2], [3, 4, NAN], [6, 7, 8]])
    np.testing.assert_array_equal(panel.wide(), expected)
    assert list(panel.data.index) == list(range(7))


def test_missing_drop_removes_units_without_rows():
    df = small()
    df.loc[df["u"] == "b", "y"] = NAN
    with pytest.warns(errors.DroppedObservationsWarning, match="Dropped 3 of 9 rows"):
        panel = build(df, missing="drop")
    assert list(panel.units) == ["a", "c"]
    assert panel.is_balanced


def test_missing_drop_with_nothing_left():
    with pytest.raises(errors.MissingValueError, match="no rows remain"):
        build(small(y=NAN), missing="drop")


def test_missing_cluster():
    df = small(c=["n", "n", "n", "s", None, "s", "n", "n", "n"])
    with pytest.raises(
        errors.MissingValueError,
        match=r"'c' \(cluster\) is missing in 1 row of 1 unit, e.g. unit 'b' in period 2",
    ):
        build(df, cluster="c")


def test_nan_cohort_with_explicit_never_treated_code():
    with pytest.raises(
        errors.MissingValueError,
        match=r"missing \(NaN\) in 1 unit \(3 rows\), e.g. unit 'b'\. never_treated=0 was set, "
        r"so 0 marks never-treated units and NaN is not allowed.*never_treated=np\.nan",
    ):
        build(small(), cohort="g", never_treated=0)


# --------------------------------------------------------------------------------------------
# 2b. Infinite values
# --------------------------------------------------------------------------------------------
def test_infinite_outcome_names_column_count_example_and_fix():
    df = small()
    df.loc[[4, 7], "y"] = [np.inf, -np.inf]
    with pytest.raises(
        errors.NonFiniteValueError,
        match=r"Infinite values in 'y' \(outcome\) in 2 rows, e.g. inf in row 4 \(unit 'b', "
        r"time 2\)\..*replace infinite values with NaN and pass missing='drop', or fix the "
        r"computation that produced them",
    ):
        build(df)


def test_infinite_values_are_reported_per_column_even_with_missing_drop():
    df = small(x=[0.0, 1, 2, 3, 4, -np.inf, 6, 7, 8])
    df.loc[1, "y"] = NAN
    df.loc[2, "y"] = np.inf
    with (
        pytest.warns(errors.DroppedObservationsWarning, match="Dropped 1 of 9 rows"),
        pytest.raises(
            errors.NonFiniteValueError,
            match=r"'y' \(outcome\) in 1 row, e.g. inf in row 2 \(unit 'a', time 3\); "
            r"'x' \(covariate\) in 1 row, e.g. -inf in row 5 \(unit 'b', time 3\)",
        ),
    ):
        build(df, covariates=["x"], missing="drop")


def test_infinite_values_in_dropped_rows_or_nullable_floats():
    df = small(x=[0.0, 1, 2, 3, 4, NAN, 6, 7, 8])
    df.loc[5, "y"] = np.inf  # the row is dropped for its missing covariate
    with pytest.warns(errors.DroppedObservationsWarning, match="Dropped 1 of 9 rows"):
        panel = build(df, covariates=["x"], missing="drop")
    assert np.isfinite(panel.data["y"]).all()
    nullable = small(x=pd.array([0.0, np.inf, None, 3, 4, 5, 6, 7, 8], dtype="Float64"))
    with (
        pytest.warns(errors.DroppedObservationsWarning, match="Dropped 1 of 9 rows"),
        pytest.raises(errors.NonFiniteValueError, match=r"'x' \(covariate\) in 1 row"),
    ):
        build(nullable, covariates=["x"], missing="drop")


# --------------------------------------------------------------------------------------------
# 3. Time formats
# --------------------------------------------------------------------------------------------
def test_datetime_time_is_rejected_with_to_period_hint():
    df = small(t=pd.to_datetime(["2021-01-01", "2021-02-01", "2021-03-01"] * 3))
    with pytest.raises(
        errors.TimeFormatError, match=r"'t' \(time\) holds datetimes.*to_period\('M'\)"
    ):
        build(df)


def test_fractional_float_time():
    df = small(t=[1.0, 1.5, 2.0] * 3)
    with pytest.raises(errors.TimeFormatError, match=r"3 rows have fractional values, e.g. 1.5"):
        build(df)


def test_unparseable_string_time():
    df = small(t=["2021M01", "2021M02", "March 2021"] * 3)
    with pytest.raises(
        errors.TimeFormatError, match=r"'t' \(time\).*not a recognised period: 'March 2021'"
    ):
        build(df)


def test_invalid_month_in_string_time():
    with pytest.raises(errors.TimeFormatError, match="'2021M13'"):
        build(small(t=["2021M11", "2021M12", "2021M13"] * 3))


def test_mixed_period_frequencies():
    periods = [pd.Period("2021-01", "M"), pd.Period("2021-02", "M"), pd.Period("2021Q2", "Q")]
    with pytest.raises(errors.TimeFormatError, match=r"mixes .*period\[M\].*period\[Q-DEC\]"):
        build(small(t=periods * 3))


def test_bool_time_is_rejected():
    with pytest.raises(errors.TimeFormatError, match="dtype bool"):
        build(small(t=[True, False, True] * 3))


def test_cohort_representation_must_match_time():
    df = small(t=pd.period_range("2021-01", periods=3, freq="M").tolist() * 3)
    with pytest.raises(
        errors.TimeFormatError,
        match=r"'g' \(cohort\) holds integers but column 't' \(time\) holds Periods",
    ):
        build(df, cohort="g")


def test_cohort_period_frequency_must_match_time():
    df = small(t=pd.period_range("2021-01", periods=3, freq="M").tolist() * 3)
    df["g"] = pd.Series([pd.Period("2021Q1", "Q")] * 9, dtype="period[Q-DEC]")
    with pytest.raises(errors.TimeFormatError, match="period\\[Q-DEC\\]"):
        build(df, cohort="g")


# --------------------------------------------------------------------------------------------
# 4. Duplicates, 5. grid
# --------------------------------------------------------------------------------------------
def test_duplicate_unit_time_pairs():
    df = pd.concat([small(), small().iloc[[4]]], ignore_index=True)
    with pytest.raises(
        errors.DuplicateObservationError,
        match=r"1 \(unit, time\) pair occurs more than once \(2 rows\), e.g. unit 'b' in "
        r"period 2.*drop_duplicates",
    ):
        build(df)


def test_duplicates_in_large_sparse_panel_use_the_sorting_path():
    # Many units observed in few of many periods: the (unit, time) grid is much larger than
    # the number of rows, so duplicates are found by argsort rather than counting.
    rng = np.random.default_rng(1)
    n_units, n_periods = 2000, 1000
    units = np.repeat(np.arange(n_units), 2)
    times = np.concatenate([rng.choice(n_periods, 2, replace=False) for _ in range(n_units)])
    times[:n_periods] = np.arange(n_periods)  # every period observed somewhere
    df = pd.DataFrame({"u": units, "t": times, "y": 1.0}).drop_duplicates(["u", "t"])
    panel = build(df.sample(frac=1, random_state=2))
    assert panel.n_periods == n_periods and not panel.is_balanced
    with pytest.raises(errors.DuplicateObservationError, match="1 \\(unit, time\\) pair"):
        build(pd.concat([df, df.iloc[[7]]]))


def test_irregular_integer_grid_names_missing_period():
    df = small(t=[1, 2, 3] * 2 + [1, 2, 5])
    with pytest.raises(
        errors.IrregularTimeGridError,
        match=r"'t' \(time\).*do not form a regular grid.*1\.\.5 \(step 1\), 1 period is "
        r"missing from every unit: 4\. .*drop or aggregate",
    ):
        build(df)


def test_irregular_monthly_grid():
    months = pd.PeriodIndex(["2021-01", "2021-02", "2021-05"], freq="M").tolist()
    with pytest.raises(
        errors.IrregularTimeGridError,
        match=r"2 periods are missing from every unit: 2021-03, 2021-04",
    ):
        build(small(t=months * 3))


def test_quarterly_spaced_months_get_an_asfreq_hint():
    months = pd.PeriodIndex(["2021-01", "2021-04", "2021-07"], freq="M").tolist()
    with pytest.raises(errors.IrregularTimeGridError, match=r"every 3 periods.*asfreq\('Q'\)"):
        build(small(t=months * 3))


def test_yyyymm_integers_get_a_conversion_hint():
    with pytest.raises(errors.IrregularTimeGridError, match=r"YYYYMM.*format='%Y%m'"):
        build(small(t=[202111, 202112, 202201] * 3))


# --------------------------------------------------------------------------------------------
# 6. Non-numeric columns
# --------------------------------------------------------------------------------------------
def test_non_numeric_outcome_shows_example_and_to_numeric_fix():
    df = small(y=["1.5", "..", "2", "3", "..", "4", "5", "6", "7"])
    with pytest.raises(
        errors.NonNumericColumnError,
        match=r"'y' \(outcome\) must be numeric.*2 of 9 rows are not numbers, e.g. '\.\.'.*"
        r"pd\.to_numeric\(df\['y'\], errors='coerce'\)",
    ):
        build(df)


def test_non_numeric_weights_and_categorical_covariate():
    with pytest.raises(errors.NonNumericColumnError, match=r"'w' \(weights\).*e.g. 'big'"):
        build(small(w=["big"] * 9), weights="w")
    df = small(x=pd.Categorical(["lo", "hi", "lo"] * 3))
    with pytest.raises(errors.NonNumericColumnError, match=r"'x' \(covariate\).*categorical"):
        build(df, covariates=["x"])


def test_bool_outcome_is_numeric():
    panel = build(small(y=[True, False, True] * 3))
    np.testing.assert_array_equal(panel.wide(), np.array([[1.0, 0.0, 1.0]] * 3))


# --------------------------------------------------------------------------------------------
# 7. Values that must be constant within a unit
# --------------------------------------------------------------------------------------------
def test_cohort_varying_within_unit():
    df = small(g=[2.0, 2.0, 3.0] + [NAN] * 3 + [3.0] * 3)
    with pytest.raises(
        errors.VaryingWithinUnitError,
        match=r"'g' \(cohort\) must be constant within each unit.*1 unit, e.g. unit 'a' has "
        r"values \[2, 3\]",
    ):
        build(df, cohort="g")


def test_cohort_partly_missing_within_unit_is_varying():
    df = small(g=[2.0, NAN, 2.0] + [NAN] * 3 + [3.0] * 3)
    with pytest.raises(errors.VaryingWithinUnitError, match=r"unit 'a' has values \[2, nan\]"):
        build(df, cohort="g")


def test_cluster_and_weights_varying_within_unit():
    df = small(c=["n", "n", "s"] + ["s"] * 6, w=[1.0] * 3 + [2.0, 2.0, 3.0] + [1.0] * 3)
    with pytest.raises(errors.VaryingWithinUnitError, match=r"'c' \(cluster\).*unit 'a'"):
        build(df, cluster="c")
    with pytest.raises(errors.VaryingWithinUnitError, match=r"'w' \(weights\).*unit 'b'"):
        build(df, weights="w")


# --------------------------------------------------------------------------------------------
# 8. Cohorts outside the grid
# --------------------------------------------------------------------------------------------
def test_zero_coded_never_treated_suggests_never_treated_0():
    with pytest.raises(
        errors.CohortOutOfRangeError,
        match=r"1 unit has a first treated period outside the time grid 1\.\.3, e.g. unit 'b' "
        r"with cohort 0\..*pass never_treated=0",
    ):
        build(small(g=small()["g"].fillna(0)), cohort="g")


def test_infinite_never_treated_code_suggests_np_inf():
    with pytest.raises(errors.CohortOutOfRangeError, match=r"pass never_treated=np\.inf"):
        build(small(g=small()["g"].fillna(np.inf)), cohort="g")


@pytest.mark.parametrize(("cohort", "example"), [(0.0, "0"), (4.0, "4"), (-3.0, "-3")])
def test_cohort_before_or_after_the_panel(cohort: float, example: str):
    df = small(g=[cohort] * 3 + [NAN] * 3 + [3.0] * 3)
    with pytest.raises(errors.CohortOutOfRangeError, match=rf"unit 'a' with cohort {example}\."):
        build(df, cohort="g")


def test_cohort_between_grid_points():
    df = small(t=[2010, 2012, 2014] * 3, g=[2011.0] * 3 + [NAN] * 3 + [2014.0] * 3)
    with pytest.raises(
        errors.CohortOutOfRangeError,
        match=r"2010\.\.2014 in steps of 2, e.g. unit 'a' with cohort 2011",
    ) as info:
        build(df, cohort="g")
    assert "never_treated=" not in str(info.value)  # on-range but off-grid: no sentinel hint


# --------------------------------------------------------------------------------------------
# 9. Weights
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "problem"), [(-1.0, "negative"), (NAN, "missing"), (np.inf, "infinite")]
)
def test_invalid_weight_values(value: float, problem: str):
    df = small(w=[1.0] * 3 + [value] * 3 + [2.0] * 3)
    with pytest.raises(
        errors.InvalidWeightError,
        match=rf"'w' \(weights\) has {problem} values in 3 rows of 1 unit",
    ):
        build(df, weights="w")


def test_all_zero_weights():
    with pytest.raises(errors.InvalidWeightError, match="zero for all 3 units"):
        build(small(w=0.0), weights="w")


# --------------------------------------------------------------------------------------------
# 10. Status
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "match"),
    [
        ([0, 2, 1, 0, 0, 0, 0, 0, 1], r"must be 0 or 1.*e.g. 2 for unit 'a'"),
        ([0, NAN, 1, 0, 0, 0, 0, 0, 1], r"must be 0 or 1 \(not missing\).*e.g. nan"),
        ([1, 1, 1, 0, 0, 0, 0, 0, 1], r"is 1 before the unit's cohort.*unit 'a' in period 1"),
        ([0, 0, 1, 0, 0, 0, 0, 0, 1], r"is 0 in the unit's cohort period.*unit 'a' in period 2"),
        ([0, 1, 1, 0, 1, 0, 0, 0, 1], r"is 1 in never-treated units.*1 row of 1 unit.*'b'"),
    ],
    ids=["value-2", "missing", "1-before-cohort", "0-at-cohort", "1-when-never-treated"],
)
def test_status_errors(status: list[float], match: str):
    with pytest.raises(errors.StatusCohortMismatchError, match=match):
        build(small(s=status), cohort="g", status="s")


def test_status_without_treated_rows_means_all_units_never_treated():
    panel = build(small(s=0), status="s")
    np.testing.assert_array_equal(panel.unit_cohort, [NAN] * 3)
    assert panel.cohorts.size == 0 and not panel.status_wide().any()


def test_string_status_is_rejected():
    with pytest.raises(
        errors.StatusCohortMismatchError,
        match=r"9 rows of 3 units.*e.g. 'no' for unit 'a'.*\.map\(",
    ):
        build(small(s=["no", "yes", "yes"] * 3), status="s")


# --------------------------------------------------------------------------------------------
# 11. Comparison units
# --------------------------------------------------------------------------------------------
def test_require_comparison_units_never():
    panel = build(small(g=[2.0] * 3 + [3.0] * 6), cohort="g")
    with pytest.raises(
        errors.NoComparisonUnitsError,
        match=r"all 3 units of column 'u' are treated \(cohorts 2, 3\)\. Pass "
        r"control_group='notyet'.*never_treated",
    ):
        panel.require_comparison_units("never")
    panel.require_comparison_units("notyet")  # cohort 3 is not yet treated at 2
    with pytest.raises(errors.NoComparisonUnitsError, match="anticipation=1"):
        panel.require_comparison_units("notyet", anticipation=1)


def test_require_comparison_units_passes_with_never_treated():
    panel = build(small(), cohort="g")
    panel.require_comparison_units("never")
    panel.require_comparison_units("notyet", anticipation=1)
    with pytest.raises(errors.InvalidOptionError):
        panel.require_comparison_units("later")
    with pytest.raises(errors.InvalidOptionError):
        panel.require_comparison_units("never", anticipation=-1)


def test_notyet_fails_with_a_single_cohort():
    panel = build(small(g=2.0), cohort="g")
    with pytest.raises(errors.NoComparisonUnitsError, match="control_group='notyet'"):
        panel.require_comparison_units("notyet")


# --------------------------------------------------------------------------------------------
# Mutation safety
# --------------------------------------------------------------------------------------------
def _time_variants() -> dict[str, list[object] | pd.Series]:
    months = pd.period_range("2021-03", periods=3, freq="M")
    return {
        "int": [2021, 2022, 2023] * 3,
        "period": pd.Series(list(months) * 3, dtype=months.dtype),
        "statfin": ["2021M03", "2021M04", "2021M05"] * 3,
        "categorical": pd.Categorical(["2021M03", "2021M04", "2021M05"] * 3),
    }


@pytest.mark.parametrize("kind", list(_time_variants()))
@pytest.mark.parametrize("missing", ["error", "drop"])
def test_input_frame_is_not_modified(kind: str, missing: str):
    df = small(t=_time_variants()[kind], s=[0, 1, 1, 0, 0, 0, 0, 0, 1], w=2.0, c="x")
    df["g"] = df["t"].where(df["s"].astype(bool)).groupby(df["u"]).transform("first")
    df.index = pd.Index([10, 11, 12, 13, 14, 15, 16, 17, 18], name="row")
    df = df.iloc[::-1]  # unsorted
    if missing == "drop":
        df.loc[13, "y"] = NAN
    before = copy.deepcopy(df)
    expect = pytest.warns(errors.DroppedObservationsWarning, match="Dropped 1 of 9 rows")
    with expect if missing == "drop" else contextlib.nullcontext():
        panel = build(df, cohort="g", status="s", weights="w", cluster="c", missing=missing)
    pd.testing.assert_frame_equal(df, before)
    assert df.dtypes.equals(before.dtypes)
    assert df.index.equals(before.index)
    # Writing into the panel's copy does not reach the caller either.
    panel.data.loc[0, "y"] = -99.0
    pd.testing.assert_frame_equal(df, before)
    assert panel.data["t"].dtype == df["t"].dtype
    assert not panel.unit_codes.flags.writeable


# --------------------------------------------------------------------------------------------
# Correctness on hand-written panels
# --------------------------------------------------------------------------------------------
def test_wide_unbalanced_panel_from_shuffled_rows():
    df = pd.DataFrame(
        {
            "kunta": ["Turku", "Oulu", "Turku", "Oulu", "Espoo", "Espoo", "Turku"],
            "year": [2012, 2011, 2010, 2010, 2011, 2012, 2011],
            "y": [3.0, 5.0, 1.0, 4.0, 8.0, 9.0, 2.0],
            "x": [0.3, 0.5, 0.1, 0.4, 0.8, 0.9, 0.2],
        }
    )
    panel = Panel(df, unit="kunta", time="year", outcome="y", covariates=["x"])
    assert list(panel.units) == ["Espoo", "Oulu", "Turku"]
    assert list(panel.periods) == [2010, 2011, 2012]
    assert (panel.n_units, panel.n_periods, panel.n_obs, panel.is_balanced) == (3, 3, 7, False)
    expected = np.array([[NAN, 8, 9], [4, 5, NAN], [1, 2, 3]])
    np.testing.assert_array_equal(panel.wide(), expected)
    np.testing.assert_array_equal(panel.wide("x"), expected / 10)
    assert list(panel.data.columns) == ["kunta", "year", "y", "x"]
    assert isinstance(panel.data.index, pd.RangeIndex)
    assert list(panel.data["kunta"]) == ["Espoo"] * 2 + ["Oulu"] * 2 + ["Turku"] * 3
    np.testing.assert_array_equal(panel.unit_codes, [0, 0, 1, 1, 2, 2, 2])
    np.testing.assert_array_equal(panel.time_codes, [1, 2, 0, 1, 0, 1, 2])
    np.testing.assert_array_equal(panel.unit_cohort, [NAN] * 3)
    assert panel.cohorts.size == 0
    assert repr(panel) == (
        "Panel(outcome='y', units=3, periods=3 [2010..2012], obs=7, balanced=False, cohorts=[])"
    )
    with pytest.raises(errors.MissingColumnError, match="'z' is not in the panel"):
        panel.wide("z")
    with pytest.raises(errors.NonNumericColumnError):
        panel.wide("kunta")


def test_biennial_integer_grid():
    df = small(t=[2010, 2012, 2014] * 3, g=[2012.0] * 3 + [NAN] * 3 + [2014.0] * 3)
    panel = build(df, cohort="g")
    assert panel.time_kind == "integer" and panel.step == 2
    assert list(panel.periods) == [2010, 2012, 2014]
    np.testing.assert_array_equal(panel.time_codes, [0, 1, 2] * 3)
    np.testing.assert_array_equal(panel.unit_cohort, [1, NAN, 2])
    np.testing.assert_array_equal(panel.cohorts, [1, 2])
    assert panel.period_label(1) == 2012 and panel.period_position(2014) == 2
    with pytest.raises(errors.CohortOutOfRangeError, match="not on the time grid"):
        panel.period_position(2013)
    with pytest.raises(errors.CohortOutOfRangeError, match="positions run from 0 to 2"):
        panel.period_label(3)
    with pytest.raises(errors.CohortOutOfRangeError):
        panel.period_label(NAN)


def test_float_integral_times_are_accepted():
    panel = build(small(t=[1.0, 2.0, 3.0] * 3))
    assert list(panel.periods) == [1, 2, 3] and panel.periods.dtype == np.int64


@pytest.mark.parametrize(
    "time",
    [
        pd.Series(list(pd.period_range("2021-03", periods=3, freq="M")) * 3),
        ["2021M03", "2021M04", "2021M05"] * 3,
        ["2021-03", "2021-04", "2021-05"] * 3,
        pd.Categorical(
            ["2021M03", "2021M04", "2021M05"] * 3,
            categories=["2021M02", "2021M03", "2021M04", "2021M05", "2021M06"],
        ),
        pd.Categorical(list(pd.period_range("2021-03", periods=3, freq="M")) * 3),
    ],
    ids=["period", "statfin", "iso", "categorical-statfin", "categorical-period"],
)
def test_monthly_time_representations(time: object):
    df = small(t=time)
    df["g"] = ["2021M04"] * 3 + [None] * 3 + ["2021M05"] * 3
    panel = build(df, cohort="g")
    assert panel.time_kind == "period" and panel.step == 1
    expected = pd.period_range("2021-03", periods=3, freq="M")
    assert list(panel.periods) == list(expected) and panel.periods.dtype == expected.dtype
    np.testing.assert_array_equal(panel.time_codes, [0, 1, 2] * 3)
    np.testing.assert_array_equal(panel.unit_cohort, [1, NAN, 2])
    assert panel.period_label(panel.unit_cohort[0]) == pd.Period("2021-04", "M")
    assert panel.period_position("2021M05") == panel.period_position(pd.Period("2021-05", "M")) == 2
    with pytest.raises(errors.TimeFormatError):
        panel.period_position(2021)


def test_categorical_time_with_categories_out_of_order_and_categorical_units():
    months = ["2021M05", "2021M03", "2021M04"]  # category order is not time order
    df = small(t=pd.Categorical(["2021M03", "2021M04", "2021M05"] * 3, categories=months))
    df["u"] = pd.Categorical(df["u"], categories=["c", "b", "a", "unused"])
    panel = build(df)
    assert list(panel.periods) == list(pd.period_range("2021-03", periods=3, freq="M"))
    assert list(panel.units) == ["a", "b", "c"]  # sorted labels, unused category dropped
    np.testing.assert_array_equal(panel.wide(), np.arange(9.0).reshape(3, 3))


def test_year_strings_are_integer_time():
    panel = build(small(t=["2019", "2020", "2021"] * 3))
    assert panel.time_kind == "integer" and list(panel.periods) == [2019, 2020, 2021]


def test_empty_data_and_object_numbers():
    with pytest.raises(errors.PanelError, match="no rows"):
        build(small().iloc[:0])
    with pytest.raises(errors.NonNumericColumnError, match=r"dtype object.*look like numbers"):
        build(small(y=pd.Series([1.5] * 9, dtype=object)))


def test_quarterly_strings():
    panel = build(small(t=["2020Q4", "2021Q1", "2021Q2"] * 3))
    assert list(panel.periods) == list(pd.period_range("2020Q4", periods=3, freq="Q"))


def test_never_treated_zero():
    panel = build(small(g=small()["g"].fillna(0)), cohort="g", never_treated=0)
    np.testing.assert_array_equal(panel.unit_cohort, [1, NAN, 2])
    panel.require_comparison_units("never")
    df = small(
        t=["2021M01", "2021M02", "2021M03"] * 3, g=["2021M02"] * 3 + ["0"] * 3 + ["2021M03"] * 3
    )
    with pytest.raises(errors.TimeFormatError, match="never_treated"):
        build(df, cohort="g")
    panel = build(df, cohort="g", never_treated="0")
    np.testing.assert_array_equal(panel.unit_cohort, [1, NAN, 2])


def test_status_wide_absorbing_and_switching_off():
    absorbing = build(small(), cohort="g")
    expected = np.array([[0, 1, 1], [0, 0, 0], [0, 0, 1]], dtype=bool)
    np.testing.assert_array_equal(absorbing.status_wide(), expected)
    switching = build(small(s=[0, 1, 0, 0, 0, 0, 0, 0, 1]), cohort="g", status="s")
    np.testing.assert_array_equal(
        switching.status_wide(), np.array([[0, 1, 0], [0, 0, 0], [0, 0, 1]], dtype=bool)
    )
    np.testing.assert_array_equal(switching.unit_cohort, [1, NAN, 2])


def test_cohort_derived_from_status():
    df = small(s=[0, 1, 0, 0, 0, 0, 1, 0, 1])  # c: treated at 1, off at 2, on again at 3
    panel = build(df, status="s")
    np.testing.assert_array_equal(panel.unit_cohort, [1, NAN, 0])
    np.testing.assert_array_equal(panel.cohorts, [0, 1])
    assert panel.cohort is None and panel.status == "s"
    np.testing.assert_array_equal(panel.status_wide(), df["s"].to_numpy().reshape(3, 3) == 1)


def test_status_wide_unbalanced_is_false_where_unobserved():
    df = small(s=[0, 1, 1, 0, 0, 0, 0, 0, 1]).drop(index=[2])
    panel = build(df, cohort="g", status="s")
    np.testing.assert_array_equal(
        panel.status_wide(), np.array([[0, 1, 0], [0, 0, 0], [0, 0, 1]], dtype=bool)
    )


def test_unit_level_columns():
    df = small(w=[2.0] * 3 + [0.0] * 3 + [1.0] * 3, c=["s"] * 3 + ["n"] * 6)
    panel = build(df, weights="w", cluster="c")
    np.testing.assert_array_equal(panel.unit_weights, [2.0, 0.0, 1.0])
    np.testing.assert_array_equal(panel.unit_cluster, [1, 0, 0])
    assert list(panel.clusters) == ["n", "s"]
    np.testing.assert_array_equal(panel.unit_values("w"), [2.0, 0.0, 1.0])
    with pytest.raises(errors.VaryingWithinUnitError, match=r"'y'.*check=False"):
        panel.unit_values("y")
    np.testing.assert_array_equal(panel.unit_values("y", check=False), [0.0, 3.0, 6.0])
    with pytest.raises(errors.MissingColumnError, match="'g' is not in the panel"):
        panel.unit_values("g")
    by_unit = build(df, cluster="u")
    np.testing.assert_array_equal(by_unit.unit_cluster, [0, 1, 2])


def test_multiple_outcomes():
    panel = build(small(z=np.arange(9.0) * 2), outcome=["y", "z"])
    assert panel.outcomes == ("y", "z") and panel.outcome == "y"
    np.testing.assert_array_equal(panel.wide("z"), 2 * panel.wide())


def test_nullable_integer_columns():
    df = small(t=pd.array([1, 2, 3] * 3, dtype="Int64"), y=pd.array(range(9), dtype="Int64"))
    df["g"] = pd.array([2, 2, 2, 0, 0, 0, 3, 3, 3], dtype="Int64")
    panel = build(df, cohort="g", never_treated=0)
    np.testing.assert_array_equal(panel.wide(), np.arange(9.0).reshape(3, 3))
    np.testing.assert_array_equal(panel.unit_cohort, [1, NAN, 2])
    df.loc[3:5, "g"] = pd.NA
    with pytest.raises(errors.MissingValueError, match="never_treated=0 was set"):
        build(df, cohort="g", never_treated=0)


# --------------------------------------------------------------------------------------------
# Property tests
# --------------------------------------------------------------------------------------------
@st.composite
def panels(draw: st.DrawFn) -> tuple[pd.DataFrame, int, int]:
    """A balanced panel with integer ids, a cohort column and a switching status column."""
    n_units = draw(st.integers(1, 6))
    n_periods = draw(st.integers(1, 5))
    first = draw(st.integers(-3, 2010))
    cohorts = draw(
        st.lists(
            st.one_of(st.none(), st.integers(0, n_periods - 1)), min_size=n_units, max_size=n_units
        )
    )
    values = draw(
        st.lists(st.integers(-100, 100), min_size=n_units * n_periods, max_size=n_units * n_periods)
    )
    switches = draw(
        st.lists(st.booleans(), min_size=n_units * n_periods, max_size=n_units * n_periods)
    )
    rows = []
    for i in range(n_units):
        g = cohorts[i]
        for t in range(n_periods):
            k = i * n_periods + t
            treated = g is not None and (t == g or (t > g and switches[k]))
            rows.append(
                {
                    "u": i,
                    "t": first + t,
                    "y": float(values[k]),
                    "g": NAN if g is None else float(first + g),
                    "s": int(treated),
                }
            )
    return pd.DataFrame(rows), n_units, n_periods


def _panel(df: pd.DataFrame) -> Panel:
    return Panel(df, unit="u", time="t", outcome="y", cohort="g", status="s")


@FAST
@given(data=panels(), seed=st.integers(0, 2**32 - 1))
def test_relabelling_units_and_shuffling_rows_changes_nothing(
    data: tuple[pd.DataFrame, int, int], seed: int
):
    df, n_units, _ = data
    rng = np.random.default_rng(seed)
    names = [f"kunta-{k:03d}" for k in rng.permutation(1000)[:n_units]]
    relabelled = df.assign(u=df["u"].map(dict(enumerate(names))))
    relabelled = relabelled.iloc[rng.permutation(len(df))]
    base, other = _panel(df), _panel(relabelled)
    # Align the relabelled panel's units with the original order.
    position = {label: k for k, label in enumerate(other.units)}
    align = np.array([position[names[int(u)]] for u in base.units])
    np.testing.assert_array_equal(other.wide()[align], base.wide())
    np.testing.assert_array_equal(other.unit_cohort[align], base.unit_cohort)
    np.testing.assert_array_equal(other.status_wide()[align], base.status_wide())
    np.testing.assert_array_equal(other.cohorts, base.cohorts)
    assert other.is_balanced and base.is_balanced
    assert other.periods.equals(base.periods)
    assert list(other.units) == sorted(names)


@FAST
@given(data=panels(), drop=st.lists(st.booleans(), min_size=30, max_size=30))
def test_dropping_rows_leaves_nan_exactly_in_dropped_cells(
    data: tuple[pd.DataFrame, int, int], drop: list[bool]
):
    df, n_units, n_periods = data
    dropped = np.array(drop[: n_units * n_periods]).reshape(n_units, n_periods)
    dropped[0] = False  # unit 0 keeps the full grid, so the grid stays the same
    dropped[dropped.all(axis=1), 0] = False  # every unit keeps at least one row
    full = _panel(df)
    panel = _panel(df[~dropped.ravel()])
    assert panel.is_balanced == (not dropped.any())
    assert panel.n_obs == dropped.size - dropped.sum()
    wide = panel.wide()
    np.testing.assert_array_equal(np.isnan(wide), dropped)
    np.testing.assert_array_equal(wide[~dropped], full.wide()[~dropped])
    np.testing.assert_array_equal(panel.status_wide(), full.status_wide() & ~dropped)
    assert panel.periods.equals(full.periods)
