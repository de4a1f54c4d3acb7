"""Tests of statistical disclosure control (evaluation.report.disclosure).

The protection claims are checked with an LP written here independently of the module: every
cell of the published table is a variable, published cells are fixed through their bounds,
hidden cells are free and nonnegative, and the margins impose the row and column sums.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import linprog

from evaluation.errors import EvaluationError, InvalidOptionError
from evaluation.report.disclosure import (
    DEFAULT_THRESHOLD,
    SUPPRESSED,
    DisclosedTable,
    _line_rule,
    disclose,
    suppression_intervals,
)


def published_intervals(table: pd.DataFrame) -> dict[tuple[int, int], tuple[float, float]]:
    """Min and max of every '..' cell given only a published count table with margins."""
    vals = table.to_numpy(dtype=object)
    n_rows, n_cols = vals.shape
    flat = [(i, j) for i in range(n_rows) for j in range(n_cols)]
    bounds = [(0, None) if vals[c] == SUPPRESSED else (vals[c], vals[c]) for c in flat]
    a_eq = []
    for i in range(n_rows):  # interior of the row minus its total = 0
        a_eq.append([(c[0] == i) * (1 if c[1] < n_cols - 1 else -1) for c in flat])
    for j in range(n_cols):
        a_eq.append([(c[1] == j) * (1 if c[0] < n_rows - 1 else -1) for c in flat])
    out = {}
    for k, cell in enumerate(flat):
        if vals[cell] != SUPPRESSED:
            continue
        ends = []
        for sign in (1.0, -1.0):
            obj = np.zeros(len(flat))
            obj[k] = sign
            res = linprog(obj, A_eq=np.array(a_eq, dtype=float), b_eq=np.zeros(len(a_eq)),
                          bounds=bounds, method="highs")
            assert res.status in (0, 3), res.message
            ends.append(np.inf if res.status == 3 else sign * res.fun)
        out[cell] = (ends[0], ends[1])
    return out


def masked(full: np.ndarray, hidden: np.ndarray) -> pd.DataFrame:
    shown = full.astype(object)
    shown[hidden] = SUPPRESSED
    return pd.DataFrame(shown)


def with_margins(values: np.ndarray) -> np.ndarray:
    r, c = values.shape
    full = np.zeros((r + 1, c + 1), dtype=np.int64)
    full[:r, :c] = values
    full[:r, c], full[r, :c], full[r, c] = values.sum(1), values.sum(0), values.sum()
    return full


def assert_protected(result: DisclosedTable, intervals: dict | None = None) -> None:
    """Every primary cell has an independent LP interval of width >= 1 containing it."""
    intervals = published_intervals(result.table) if intervals is None else intervals
    counts = result.counts.to_numpy()
    for cell in zip(*np.nonzero(result.primary.to_numpy()), strict=True):
        lo, hi = intervals[cell]
        assert hi - lo >= 1 - 1e-7, (cell, lo, hi)
        assert lo - 1e-7 <= counts[cell] <= hi + 1e-7


def assert_lines_not_single(hidden: np.ndarray) -> None:
    assert all(n != 1 for n in hidden.sum(0)) and all(n != 1 for n in hidden.sum(1))


TABLE1 = pd.DataFrame([[3, 10, 12], [20, 30, 40]], index=["a", "b"], columns=["x", "y", "z"])


# --- adversarial tables ---------------------------------------------------------------------

def test_single_small_cell_in_a_row_with_total():
    result = disclose(TABLE1)
    expected = pd.DataFrame([["..", "..", 12, 25], ["..", "..", 40, 90], [23, 40, 52, 115]],
                            index=["a", "b", "Total"], columns=["x", "y", "z", "Total"],
                            dtype=object)
    pd.testing.assert_frame_equal(result.table, expected)
    row_a = result.suppressed.loc["a"]
    assert row_a["x"] and row_a.sum() >= 2
    assert result.primary.to_numpy().sum() == 1 and result.primary.loc["a", "x"]
    lo, hi = published_intervals(result.table)[(0, 0)]
    assert (lo, hi) == (0.0, 13.0)  # 3 + 10 = 13 is all that is known
    assert lo <= 3 <= hi and hi - lo >= 1


def test_single_small_cell_in_a_series_with_total():
    series = pd.Series([3, 10, 12], index=["x", "y", "z"], name="n")
    result = disclose(series)
    assert list(result.table.index) == ["n", "Total"]
    assert list(result.table.loc["n"]) == ["..", "..", 12, 25]
    assert list(result.table.loc["Total"]) == ["..", "..", 12, 25]
    lo, hi = published_intervals(result.table)[(0, 0)]
    assert lo <= 3 <= hi and hi - lo >= 1
    assert_protected(result)
    unnamed = disclose(pd.Series([3, 10], index=["x", "y"]), margins=False)
    assert list(unnamed.table.index) == ["count"]
    assert list(unnamed.table.loc["count"]) == ["..", 10]


def test_small_row_total_is_hidden_and_protected():
    values = pd.DataFrame([[1, 2, 0], [20, 30, 40], [7, 8, 9]])
    result = disclose(values)
    assert result.primary.loc[0, "Total"]  # the row total 3 is itself small
    expected = [["..", "..", 0, ".."], [20, 30, 40, 90], ["..", "..", 9, ".."], [28, 40, 49, 117]]
    assert result.table.to_numpy().tolist() == expected
    intervals = published_intervals(result.table)
    assert intervals[(0, 3)][0] <= 3 <= intervals[(0, 3)][1]
    assert_protected(result)


def test_line_rule_alone_leaves_a_pinned_cell_that_the_audit_repairs():
    values = np.array([[0, 1, 2], [3, 20, 6], [0, 8, 20]])
    full = with_margins(values)
    primary = (full > 0) & (full < 5)
    heuristic = _line_rule(full, primary)
    assert_lines_not_single(heuristic)  # every line has 0 or >= 2 hidden cells...
    lo, hi = published_intervals(masked(full, heuristic))[(0, 2)]
    assert lo == hi == 2  # ...yet the 2 is pinned: column 0 forces x10 = x30 and so on
    result = disclose(pd.DataFrame(values))
    assert result.n_suppressed > heuristic.sum()
    assert_protected(result)
    lo, hi = published_intervals(result.table)[(0, 2)]
    assert lo <= 2 <= hi and hi - lo >= 1


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_tables_are_protected(seed):
    rng = np.random.default_rng(seed)
    for _ in range(20):
        shape = (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
        values = rng.choice([0, 0, 1, 2, 3, 4, 5, 6, 9, 15, 40], size=shape)
        threshold = int(rng.choice([3, 5]))
        frame = pd.DataFrame(values)
        result = disclose(frame, threshold=threshold)
        full, table = with_margins(values), result.table.to_numpy(dtype=object)
        np.testing.assert_array_equal(result.counts.to_numpy(), full)
        shown = ~result.suppressed.to_numpy()
        assert (table[~shown] == SUPPRESSED).all()
        np.testing.assert_array_equal(table[shown].astype(np.int64), full[shown])
        published = table[shown].astype(np.int64)
        assert not ((published > 0) & (published < threshold)).any()
        np.testing.assert_array_equal(result.primary.to_numpy(), (full > 0) & (full < threshold))
        assert_lines_not_single(result.suppressed.to_numpy())
        theirs = published_intervals(result.table)
        assert_protected(result, theirs)
        # the module's own audit agrees with the independent LP on every hidden cell
        ours = suppression_intervals(result.counts, result.suppressed)
        for (lo, hi), ref in zip(ours[["lower", "upper"]].to_numpy(), theirs.values(),
                                 strict=True):
            assert lo == pytest.approx(ref[0], abs=1e-6)
            assert hi == pytest.approx(ref[1], abs=1e-6)
        only_primary = disclose(frame, threshold=threshold, margins=False)
        np.testing.assert_array_equal(only_primary.suppressed.to_numpy(),
                                      (values > 0) & (values < threshold))


# --- shares ---------------------------------------------------------------------------------

def test_row_shares_values_and_mask():
    result = disclose(TABLE1, share="row")
    counts = disclose(TABLE1)
    pd.testing.assert_frame_equal(result.suppressed, counts.suppressed)
    full = with_margins(TABLE1.to_numpy())
    expected = np.round(100 * full / full[:, [3]], 1)
    shown = ~result.suppressed.to_numpy()
    np.testing.assert_array_equal(result.table.to_numpy()[shown].astype(float), expected[shown])
    assert list(result.table.loc["a"]) == ["..", "..", 48.0, 100.0]
    assert list(result.table.loc["Total"]) == [20.0, 34.8, 45.2, 100.0]
    assert result.share == "row" and isinstance(result.table.loc["a", "z"], float)


def test_shares_hidden_where_denominator_hidden():
    values = pd.DataFrame([[1, 2, 0], [20, 30, 40], [7, 8, 9]])
    counts = disclose(values)
    assert counts.table.loc[0, 2] == 0 and counts.table.loc[2, 2] == 9  # published as counts
    rows = disclose(values, share="row")
    assert (rows.table.loc[[0, 2]] == SUPPRESSED).all().all()  # row totals hidden
    assert rows.table.loc[1].tolist() == [22.2, 33.3, 44.4, 100.0]
    cols = disclose(pd.DataFrame([[1, 10, 20], [2, 30, 40]], columns=["x", "y", "z"]),
                    share="column")
    assert (cols.table["x"] == SUPPRESSED).all()  # column total 3 hidden
    assert (cols.table["y"] == SUPPRESSED).all()  # column total 40 hidden as secondary
    assert cols.table["z"].tolist() == [33.3, 66.7, 100.0]
    assert cols.table["Total"].tolist() == [30.1, 69.9, 100.0]
    tiny = disclose(pd.DataFrame([[1, 1], [0, 1]]), share="total")
    assert (tiny.table == SUPPRESSED).all().all()  # grand total 3 hidden
    total = disclose(TABLE1, share="total", decimals=2)
    assert total.table.loc["b", "z"] == round(100 * 40 / 115, 2) == 34.78
    assert total.table.loc["Total", "Total"] == 100.0


def test_shares_without_margins_still_use_the_totals():
    values = pd.DataFrame([[1, 5, 9], [20, 30, 40], [25, 35, 45]])
    assert disclose(values, margins=False).table.loc[0].tolist() == ["..", 5, 9]
    # 9 / 60 % = 15 would give the row total and with it the hidden 1 = 15 - 5 - 9
    shares = disclose(values, margins=False, share="row")
    assert shares.table.shape == (3, 3)
    assert shares.table.to_numpy().tolist() == [
        ["..", "..", 60.0], ["..", "..", 44.4], [23.8, 33.3, 42.9]]
    with_totals = disclose(values, share="row")
    assert with_totals.table.iloc[:3, :3].to_numpy().tolist() == shares.table.to_numpy().tolist()


def test_zero_denominator_share_is_nan():
    result = disclose(pd.DataFrame([[0, 0], [10, 20]]), share="row", margins=False)
    assert np.isnan(result.table.loc[0, 0]) and np.isnan(result.table.loc[0, 1])
    assert result.table.loc[1].tolist() == [33.3, 66.7]


# --- options and plain behaviour ------------------------------------------------------------

def test_threshold_three_versus_five():
    values = pd.DataFrame([[4, 3, 10], [20, 30, 40]])
    assert disclose(values, threshold=3).n_suppressed == 0
    assert disclose(values, threshold=3).table.loc[0].tolist() == [4, 3, 10, 17]
    five = disclose(values, threshold=5)
    assert five.table.loc[0, 0] == five.table.loc[0, 1] == SUPPRESSED
    assert five.primary.to_numpy().sum() == 2 and five.threshold == 5
    assert disclose(values, threshold=1).n_suppressed == 0
    assert DEFAULT_THRESHOLD == 5


def test_margins_false_applies_only_primary_suppression():
    result = disclose(TABLE1, margins=False)
    assert result.table.shape == (2, 3) and "Total" not in result.table.index
    assert result.n_suppressed == 1 and result.table.loc["a", "x"] == SUPPRESSED
    assert result.table.loc["a"].tolist()[1:] == [10, 12]


def test_zeros_are_published():
    result = disclose(pd.DataFrame([[0, 10], [20, 0]]))
    assert result.n_suppressed == 0
    assert result.table.to_numpy().tolist() == [[0, 10, 10], [20, 0, 20], [20, 10, 30]]


def test_input_is_not_modified_and_floats_accepted():
    frame = TABLE1.astype(float)
    before = frame.copy()
    result = disclose(frame)
    pd.testing.assert_frame_equal(frame, before)
    assert result.table.loc["b", "z"] == 40 and type(result.table.loc["b", "z"]) is int
    series = pd.Series([3, 10], index=["x", "y"])
    disclose(series, share="row")
    pd.testing.assert_series_equal(series, pd.Series([3, 10], index=["x", "y"]))


def test_ties_are_broken_by_position_and_results_are_deterministic():
    values = pd.DataFrame([[3, 10, 10, 20], [20, 30, 40, 50]])
    first = disclose(values)
    assert first.suppressed.loc[0, 1] and not first.suppressed.loc[0, 2]
    pd.testing.assert_frame_equal(first.table, disclose(values).table)


def test_disclosed_table_api():
    result = disclose(TABLE1)
    frame = result.to_frame()
    frame.iloc[0, 0] = 999
    assert result.table.iloc[0, 0] == SUPPRESSED
    assert "<table" in result._repr_html_() and ">..<" in result._repr_html_()
    assert result.n_suppressed == 4 and result.table.dtypes.eq(object).all()
    assert result.suppressed.dtypes.eq(bool).all()
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.threshold = 3  # type: ignore[misc]


def test_multiindex_gets_a_padded_total_label():
    index = pd.MultiIndex.from_tuples([("north", "f"), ("north", "m"), ("south", "f")])
    result = disclose(pd.DataFrame([[3, 10], [20, 30], [15, 25]], index=index))
    assert result.table.index[-1] == ("Total", "")
    assert_protected(result)


def test_suppression_intervals_without_margins_are_unbounded():
    result = disclose(TABLE1, margins=False)
    out = suppression_intervals(result.counts, result.suppressed, margins=False)
    assert out.to_dict("records") == [
        {"row": "a", "column": "x", "value": 3, "lower": 0.0, "upper": np.inf}]


# --- errors ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("counts", "message"), [
    (pd.DataFrame({"x": [1.0, np.nan]}, index=["a", "b"]),
     r"missing \(NaN\) cell\(s\) at \(row 'b', column 'x'\)"),
    (pd.DataFrame({"x": [1, -2]}), r"negative cell\(s\) at \(row 1, column 'x'\)"),
    (pd.DataFrame({"x": [1.5, 2.0]}), r"non-integral cell\(s\) at \(row 0, column 'x'\)"),
    (pd.DataFrame({"x": [np.inf, 2.0]}), r"infinite cell"),
    (pd.DataFrame({"x": [1, 2], "y": ["a", "b"]}), r"non-numeric column\(s\) \['y'\]"),
    (pd.DataFrame({"x": [True, False]}), r"non-numeric column\(s\) \['x'\]"),
    (pd.DataFrame(), r"counts is empty"),
    (pd.DataFrame({"x": [1, 2]}, index=["a", "a"]), r"duplicate row label\(s\) \['a'\]"),
    (pd.DataFrame([[1, 2]], columns=["x", "x"]), r"duplicate column label\(s\) \['x'\]"),
    ([[1, 2]], r"must be a pandas DataFrame or Series, not list"),
])
def test_bad_counts_are_rejected(counts, message):
    with pytest.raises(EvaluationError, match=message):
        disclose(counts)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"threshold": 0}, r"threshold=0 must be an integer >= 1"),
    ({"threshold": 2.5}, r"threshold=2.5 must be an integer >= 1"),
    ({"threshold": True}, r"threshold=True must be an integer >= 1"),
    ({"share": "rows"}, r"share='rows' is not a valid option; choose one of 'row'"),
    ({"decimals": -1}, r"decimals=-1 must be an integer >= 0"),
])
def test_bad_options_are_rejected(kwargs, message):
    with pytest.raises(InvalidOptionError, match=message):
        disclose(TABLE1, **kwargs)


def test_total_label_collision():
    clash = pd.DataFrame([[1, 2]], index=["Total"], columns=["x", "y"])
    with pytest.raises(InvalidOptionError, match=r"label 'Total' is already in the counts"):
        disclose(clash)
    with pytest.raises(InvalidOptionError, match=r"label 'y' is already.*another total_label"):
        disclose(clash.rename(index={"Total": "a"}), total_label="y")
    assert disclose(clash, margins=False).table.shape == (1, 2)
    assert disclose(clash, total_label="All").table.index[-1] == "All"


def test_suppression_intervals_rejects_bad_input():
    result = disclose(TABLE1)
    with pytest.raises(EvaluationError, match=r"labels of counts"):
        suppression_intervals(result.counts, result.suppressed.iloc[:2])
    with pytest.raises(EvaluationError, match=r"booleans only"):
        suppression_intervals(result.counts, result.suppressed.astype(int))
    with pytest.raises(EvaluationError, match=r"must be the totals of the others"):
        suppression_intervals(TABLE1, TABLE1 < 5)
    with pytest.raises(EvaluationError, match=r"negative cell"):
        suppression_intervals(-result.counts, result.suppressed)
