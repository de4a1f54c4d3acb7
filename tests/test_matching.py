"""Properties and error contracts of matching, weighting and their hand-off to DiD.

Agreement with R's MatchIt is in ``test_matching_reference.py``; here the algorithms are
checked against their definitions (brute force, hand computations, invariants) on small
seeded data sets.
"""

from __future__ import annotations

import copy
import itertools
import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from _builders import staggered_panel
from matplotlib.axes import Axes

from evaluation.errors import (
    InfeasibleBalanceError,
    InvalidOptionError,
    InvalidWeightError,
    MatchingError,
    MissingColumnError,
    NoControlsInStratumError,
    NoMatchesError,
    RegressionToMeanWarning,
    TreatmentNotBinaryError,
    UnmatchedUnitsWarning,
)
from evaluation.estimators import CallawaySantAnna
from evaluation.matching import (
    match,
    outcome_trajectories,
    placebo_did,
    synthetic_control,
)
from evaluation.matching import optimal as optimal_module
from evaluation.matching.balance import balance_table, effective_sample_size
from evaluation.matching.cem import coarsen
from evaluation.matching.nearest import (
    NearestProblem,
    _candidates_greedy,
    _score_greedy,
    _score_with_replacement,
    nearest_neighbour,
)
from evaluation.simulate import simulate_staggered

# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------


def unit_table(n: int = 80, seed: int = 0, share: float = 0.35) -> pd.DataFrame:
    """Unit-level table: id, treatment t, numeric a and b, categorical region, weight w."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    b = rng.normal(size=n)
    region = np.array(["north", "south", "east"])[rng.integers(0, 3, n)]
    logit = np.log(share / (1 - share)) + 0.8 * a - 0.4 * b
    t = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    t[:3], t[3:6] = 1, 0  # both groups present whatever the draw
    return pd.DataFrame({"id": np.arange(100, 100 + n), "t": t, "a": a, "b": b,
                         "region": region, "w": rng.uniform(0.5, 2.0, n)})


@pytest.fixture(scope="module")
def units() -> pd.DataFrame:
    return unit_table()


def quiet_match(data: pd.DataFrame, **kwargs):
    """Match with UnmatchedUnitsWarning silenced (for tests that do not check it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnmatchedUnitsWarning)
        return match(data, **kwargs)


def pairs_of(result) -> list[tuple]:
    return sorted(zip(result.matches["treated_unit"], result.matches["control_unit"],
                      strict=True))


def pair_gaps(result) -> np.ndarray:
    score = result.units.set_index("unit")["distance"]
    m = result.matches
    return np.abs(score.loc[m["treated_unit"]].to_numpy()
                  - score.loc[m["control_unit"]].to_numpy())


# ---------------------------------------------------------------------------------------------
# 1. Greedy nearest neighbour: the sorted-score fast path equals the candidate search
# ---------------------------------------------------------------------------------------------


def nearest_problem(score, treated, ratio, replace, caliper, order="data", seed=0,
                    strata=None) -> NearestProblem:
    n = len(score)
    return NearestProblem(np.asarray(treated, bool), np.ones(n, bool), strata,
                          np.asarray(score, float), None, caliper, None, None, ratio, replace,
                          order, np.random.default_rng(seed))


@pytest.mark.parametrize("ratio", [1, 3])
@pytest.mark.parametrize("caliper", [None, 0.1, 0.25])
@pytest.mark.parametrize("replace", [False, True])
def test_fast_score_path_equals_candidate_path_with_ties(ratio, caliper, replace):
    fast = _score_with_replacement if replace else _score_greedy
    n_matched = 0
    for seed in range(25):
        rng = np.random.default_rng(seed)
        n = 45
        score = np.round(rng.uniform(0, 1, n), 1)  # 11 distinct values: many ties
        treated = rng.random(n) < 0.35
        t = np.flatnonzero(treated)
        t = t[rng.permutation(len(t))]  # an arbitrary visiting order
        c = np.flatnonzero(~treated)
        problem = nearest_problem(score, treated, ratio, replace, caliper)
        got = fast(problem, problem.score, t, c)
        expected = _candidates_greedy(problem, t, c)
        np.testing.assert_array_equal(got, expected)
        n_matched += int((got >= 0).sum())
    assert n_matched > 100  # the comparison was not vacuous


@pytest.mark.parametrize("controls", [[0.625, 0.375, 0.625], [0.375, 0.625, 0.375],
                                      [0.625, 0.625, 0.375]])
@pytest.mark.parametrize("replace", [False, True])
def test_fast_path_breaks_ties_by_data_position(controls, replace):
    # treated at 0.5; every control 0.125 away (exactly representable), on either side
    score = np.array([0.5, *controls])
    treated = np.array([True, False, False, False])
    problem = nearest_problem(score, treated, 3, replace, None)
    fast = _score_with_replacement if replace else _score_greedy
    t, c = np.array([0]), np.array([1, 2, 3])
    np.testing.assert_array_equal(fast(problem, problem.score, t, c), [[1, 2, 3]])
    np.testing.assert_array_equal(_candidates_greedy(problem, t, c), [[1, 2, 3]])


def test_candidate_path_keeps_control_exactly_on_the_caliper():
    score = np.array([0.2, 0.9])
    treated = np.array([True, False])
    assert abs(score[1] - score[0]) <= 0.7
    problem = nearest_problem(score, treated, 1, False, 0.7)
    t, c = np.array([0]), np.array([1])
    np.testing.assert_array_equal(_score_greedy(problem, problem.score, t, c), [[1]])
    np.testing.assert_array_equal(_candidates_greedy(problem, t, c), [[1]])


def test_match_on_caliper_boundary_same_with_and_without_mahalanobis():
    data = pd.DataFrame({"t": [1, 1, 0, 0, 0, 0], "x": [0.3, 1.0, 0.1, 0.8, 1.4, 2.0],
                         "s": [0.2, 2.5, 0.9, 2.0, 4.0, 5.0]})
    plain = match(data, treatment="t", covariates=["x"], distance="s", caliper=0.7,
                  std_caliper=False)
    assert pairs_of(plain) == [(0, 2), (1, 3)]
    within = quiet_match(data, treatment="t", covariates=["x"], distance="s", caliper=0.7,
                         std_caliper=False, mahalanobis=["x"])
    assert pairs_of(within) == [(0, 2), (1, 3)]


def test_nearest_neighbour_respects_strata():
    rng = np.random.default_rng(4)
    n = 60
    score = rng.uniform(size=n)
    treated = rng.random(n) < 0.3
    strata = rng.integers(0, 3, n)
    problem = nearest_problem(score, treated, 2, False, None, strata=strata.astype(np.int64))
    t_index, found = nearest_neighbour(problem)
    rows, cols = np.nonzero(found >= 0)
    assert len(rows) > 0
    np.testing.assert_array_equal(strata[t_index[rows]], strata[found[rows, cols]])
    assert len(set(found[found >= 0].tolist())) == int((found >= 0).sum())


def test_greedy_pairs_within_caliper_and_controls_used_once(units):
    result = quiet_match(units, treatment="t", covariates=["a", "b"], unit="id", caliper=0.1)
    score = result.units["distance"].to_numpy()
    width = 0.1 * np.std(score, ddof=1)
    gaps = pair_gaps(result)
    assert len(gaps) > 5
    assert (gaps <= width).all()
    controls = result.matches["control_unit"]
    assert not controls.duplicated().any()
    # every matched control has weight 1 and every unmatched unit weight 0
    kept = result.units["weight"] > 0
    assert kept.sum() == 2 * len(result.matches)


def test_greedy_ratio_gives_distinct_controls():
    data = unit_table(n=120, seed=2, share=0.12)
    n1 = int(data["t"].sum())
    assert 3 * n1 <= len(data) - n1
    result = match(data, treatment="t", covariates=["a", "b"], unit="id", ratio=3)
    m = result.matches
    assert len(m) == 3 * n1
    assert m.groupby("treated_unit")["control_unit"].nunique().eq(3).all()
    assert sorted(m["rank"].unique()) == [1, 2, 3]
    assert not m["control_unit"].duplicated().any()
    # MatchIt's weights: each control 1/3 of a treated unit, rescaled to the matched controls
    w = result.units.set_index("unit")["weight"]
    np.testing.assert_allclose(w.loc[m["control_unit"]], 1.0)
    np.testing.assert_allclose(w.loc[m["treated_unit"].unique()], 1.0)


def test_with_replacement_weights_count_reuse():
    data = pd.DataFrame({"t": [1, 1, 1, 0, 0, 0], "s": [0.50, 0.52, 0.90, 0.51, 0.2, 0.95],
                         "x": [0.0, 1, 2, 3, 4, 5]})
    result = match(data, treatment="t", covariates=["x"], distance="s", replace=True)
    assert pairs_of(result) == [(0, 3), (1, 3), (2, 5)]
    # control 3 stands for two treated units, control 5 for one; rescaled to 2 controls
    np.testing.assert_allclose(result.weights, [1, 1, 1, 4 / 3, 0, 2 / 3])
    assert result.units["subclass"].isna().all()


ORDER_DATA = pd.DataFrame({
    "t": [1, 1, 1, 0, 0, 0],
    "s": [0.50, 0.40, 0.60, 0.56, 0.45, 0.95],
    "x": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
})


@pytest.mark.parametrize(("order", "expected"), [
    ("largest", [(0, 4), (1, 5), (2, 3)]),
    ("smallest", [(0, 3), (1, 4), (2, 5)]),
    ("data", [(0, 4), (1, 3), (2, 5)]),
])
def test_order_changes_greedy_matches(order, expected):
    result = match(ORDER_DATA, treatment="t", covariates=["x"], distance="s", order=order)
    assert pairs_of(result) == expected


def test_default_order_with_score_is_largest():
    result = match(ORDER_DATA, treatment="t", covariates=["x"], distance="s")
    assert result.info["order"] == "largest"
    assert pairs_of(result) == [(0, 4), (1, 5), (2, 3)]


def test_random_order_is_reproducible_and_depends_on_seed():
    rng = np.random.default_rng(11)
    n = 60
    data = pd.DataFrame({"t": (np.arange(n) < 25).astype(int),
                         "s": np.round(rng.uniform(size=n), 2), "x": rng.normal(size=n)})
    def run(seed):
        return pairs_of(quiet_match(data, treatment="t", covariates=["x"], distance="s",
                                    order="random", seed=seed))

    first = run(1)
    assert run(1) == first
    assert run(2) != first
    assert run(2) == run(2)


# ---------------------------------------------------------------------------------------------
# 2. Optimal matching
# ---------------------------------------------------------------------------------------------


def total_distance(result) -> float:
    return float(pair_gaps(result).sum())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_optimal_total_not_above_greedy(seed):
    data = unit_table(n=70, seed=seed, share=0.3)
    greedy = match(data, treatment="t", covariates=["a", "b"], unit="id")
    best = match(data, treatment="t", covariates=["a", "b"], unit="id", method="optimal")
    assert len(best.matches) == len(greedy.matches)
    assert total_distance(best) <= total_distance(greedy) + 1e-12
    assert not best.matches["control_unit"].duplicated().any()


def test_optimal_equals_brute_force_on_score():
    rng = np.random.default_rng(5)
    t_score, c_score = rng.uniform(size=4), rng.uniform(size=6)
    data = pd.DataFrame({"t": [1] * 4 + [0] * 6, "s": np.r_[t_score, c_score],
                         "x": rng.normal(size=10)})
    result = match(data, treatment="t", covariates=["x"], distance="s", method="optimal")
    brute = min(sum(abs(t_score[i] - c_score[j]) for i, j in enumerate(perm))
                for perm in itertools.permutations(range(6), 4))
    assert total_distance(result) == pytest.approx(brute, abs=1e-12)
    greedy = match(data, treatment="t", covariates=["x"], distance="s")
    assert total_distance(greedy) >= brute - 1e-12


def test_optimal_equals_brute_force_on_euclidean_distance():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(10, 2))
    data = pd.DataFrame({"t": [1] * 4 + [0] * 6, "a": x[:, 0], "b": x[:, 1]})
    result = match(data, treatment="t", covariates=["a", "b"], distance="euclidean",
                   method="optimal")
    cost = np.linalg.norm(x[:4, None, :] - x[None, 4:, :], axis=2)
    brute = min(sum(cost[i, j] for i, j in enumerate(perm))
                for perm in itertools.permutations(range(6), 4))
    got = sum(np.linalg.norm(x[t] - x[c]) for t, c in pairs_of(result))
    assert got == pytest.approx(brute, abs=1e-12)


def test_optimal_ratio_two_equals_brute_force():
    rng = np.random.default_rng(7)
    t_score, c_score = rng.uniform(size=2), rng.uniform(size=5)
    data = pd.DataFrame({"t": [1] * 2 + [0] * 5, "s": np.r_[t_score, c_score],
                         "x": rng.normal(size=7)})
    result = match(data, treatment="t", covariates=["x"], distance="s", method="optimal",
                   ratio=2)
    m = result.matches
    assert m.groupby("treated_unit")["control_unit"].nunique().eq(2).all()
    assert not m["control_unit"].duplicated().any()
    brute = min(abs(t_score[0] - c_score[list(p[:2])]).sum()
                + abs(t_score[1] - c_score[list(p[2:])]).sum()
                for p in itertools.permutations(range(5), 4))
    assert total_distance(result) == pytest.approx(brute, abs=1e-12)


def test_optimal_ratio_two_not_above_greedy():
    data = unit_table(n=90, seed=8, share=0.2)
    greedy = match(data, treatment="t", covariates=["a", "b"], unit="id", ratio=2)
    best = match(data, treatment="t", covariates=["a", "b"], unit="id", ratio=2,
                 method="optimal")
    assert len(best.matches) == len(greedy.matches) == 2 * int(data["t"].sum())
    assert total_distance(best) <= total_distance(greedy) + 1e-12


def test_optimal_within_exact_strata(units):
    greedy = quiet_match(units, treatment="t", covariates=["a", "b"], unit="id",
                         exact=["region"])
    best = quiet_match(units, treatment="t", covariates=["a", "b"], unit="id",
                       exact=["region"], method="optimal")
    region = units.set_index("id")["region"]
    m = best.matches
    np.testing.assert_array_equal(region.loc[m["treated_unit"]].to_numpy(),
                                  region.loc[m["control_unit"]].to_numpy())
    assert len(m) == len(greedy.matches)
    assert total_distance(best) <= total_distance(greedy) + 1e-12


def test_optimal_respects_caliper(units):
    result = quiet_match(units, treatment="t", covariates=["a", "b"], unit="id",
                         method="optimal", caliper=0.05, std_caliper=False)
    gaps = pair_gaps(result)
    assert len(gaps) > 0
    assert (gaps <= 0.05).all()
    unmatched = result.units[(result.units["treated"]) & (result.units["weight"] == 0)]
    assert len(unmatched) > 0
    assert (unmatched["reason"] == "no available control within the caliper").all()


def test_optimal_cost_matrix_limit(units, monkeypatch):
    monkeypatch.setattr(optimal_module, "MAX_CELLS", 50)
    n1, n0 = int(units["t"].sum()), int((units["t"] == 0).sum())
    with pytest.raises(MatchingError, match=rf"{n1} treated and {n0} control units .*"
                                            r"limit 50 cells"):
        match(units, treatment="t", covariates=["a", "b"], unit="id", method="optimal")


def test_optimal_rejects_replacement(units):
    with pytest.raises(InvalidOptionError, match="method='optimal' does not use replace"):
        match(units, treatment="t", covariates=["a"], unit="id", method="optimal",
              replace=True)


# ---------------------------------------------------------------------------------------------
# 3. Coarsened exact matching
# ---------------------------------------------------------------------------------------------


def test_cem_kept_strata_share_coarsened_values(units):
    cuts = {"a": [-0.5, 0.5], "b": [0.0]}
    result = quiet_match(units, treatment="t", covariates=["a", "b", "region"], unit="id",
                         method="cem", cutpoints=cuts)
    table = units.assign(
        a_bin=np.searchsorted([-0.5, 0.5], units["a"], side="right"),
        b_bin=np.searchsorted([0.0], units["b"], side="right"),
        subclass=result.units["subclass"].to_numpy(), weight=result.weights)
    kept = table[table["subclass"].notna()]
    assert kept["subclass"].nunique() > 1
    for _, group in kept.groupby("subclass"):
        assert group[["a_bin", "b_bin", "region"]].nunique().eq(1).all()
        assert set(group["t"]) == {0, 1}
    # every stratum with both groups is kept
    both = table.groupby(["a_bin", "b_bin", "region"])["t"].transform(lambda s: s.nunique() == 2)
    np.testing.assert_array_equal(both.to_numpy(), table["subclass"].notna().to_numpy())
    assert ((table["weight"] > 0) == table["subclass"].notna()).all()


def test_cem_weights_formula(units):
    result = quiet_match(units, treatment="t", covariates=["a", "region"], unit="id",
                         method="cem", cutpoints=3)
    sub = result.units["subclass"]
    treated = result.treated
    kept = sub.notna().to_numpy()
    n1 = pd.Series(treated[kept]).groupby(sub[kept].to_numpy()).sum()
    n0 = pd.Series(~treated[kept]).groupby(sub[kept].to_numpy()).sum()
    raw = np.where(kept & ~treated,
                   (n1 / n0).reindex(sub.fillna(-1).to_numpy()).to_numpy(), 0.0)
    n_kept_controls = int((kept & ~treated).sum())
    expected = raw * n_kept_controls / raw.sum()
    expected[kept & treated] = 1.0
    np.testing.assert_allclose(result.weights, expected, rtol=1e-12)
    assert result.weights[~treated].sum() == pytest.approx(n_kept_controls)


def test_cem_integer_bins_are_equal_width():
    values = np.array([0.0, 0.9, 1.0, 1.9, 2.0, 2.5, 3.0])
    # three bins of width 1 on [0, 3]: breaks at 1 and 2, a value on a break goes right
    np.testing.assert_array_equal(coarsen(values, 3), [0, 0, 1, 1, 2, 2, 2])
    np.testing.assert_array_equal(coarsen(values, [0.5, 2.2]), [0, 1, 1, 1, 1, 2, 2])
    np.testing.assert_array_equal(coarsen(values, [2.2, 0.5, 0.5]), [0, 1, 1, 1, 1, 2, 2])
    # Sturges: ceil(log2(7) + 1) = 4 bins
    np.testing.assert_array_equal(coarsen(values, "sturges"),
                                  np.searchsorted([0.75, 1.5, 2.25], values, side="right"))
    with pytest.raises(InvalidOptionError, match="positive number of bins"):
        coarsen(values, 0)


def test_cem_categorical_is_matched_exactly():
    data = pd.DataFrame({"t": [1, 0, 1, 0, 1, 0, 0],
                         "g": ["x", "x", "y", "y", "z", "w", "x"],
                         "a": [0.1, 0.2, 0.1, 0.9, 0.5, 0.5, 0.15]})
    with pytest.warns(UnmatchedUnitsWarning, match=r"1 of 3 treated .*coarsened stratum"):
        result = match(data, treatment="t", covariates=["g", "a"], method="cem",
                       cutpoints={"a": 1})
    sub = result.units["subclass"]
    np.testing.assert_array_equal(sub.isna().to_numpy(),
                                  [False, False, False, False, True, True, False])
    assert sub[0] == sub[1] == sub[6] != sub[2] == sub[3]
    np.testing.assert_allclose(result.weights, [1, 0.75, 1, 1.5, 0, 0, 0.75])


def test_cem_no_common_stratum():
    data = pd.DataFrame({"t": [1, 1, 0, 0], "g": ["x", "x", "y", "y"]})
    with pytest.raises(NoMatchesError, match="no stratum with both treated and control"):
        match(data, treatment="t", covariates=["g"], method="cem")


def test_cem_cutpoints_for_unknown_column(units):
    with pytest.raises(InvalidOptionError, match="not among the covariates"):
        match(units, treatment="t", covariates=["a"], unit="id", method="cem",
              cutpoints={"zz": 3})


# ---------------------------------------------------------------------------------------------
# 4. Entropy balancing
# ---------------------------------------------------------------------------------------------


def weighted_means(matrix: np.ndarray, weights: np.ndarray) -> np.ndarray:
    return weights @ matrix / weights.sum()


def indicator_matrix(data: pd.DataFrame, moments: int) -> np.ndarray:
    cols = [data["a"], data["b"]]
    if moments == 2:
        cols += [data["a"] ** 2, data["b"] ** 2]
    cols += [(data["region"] == level).astype(float) for level in ("east", "north", "south")]
    return np.column_stack(cols)


@pytest.mark.parametrize("moments", [1, 2])
@pytest.mark.parametrize("sampling", [False, True])
def test_ebal_balances_moments(units, moments, sampling):
    result = match(units, treatment="t", covariates=["a", "b", "region"], unit="id",
                   method="ebal", moments=moments, weights="w" if sampling else None)
    treated = result.treated
    base = units["w"].to_numpy() if sampling else np.ones(len(units))
    effective = result.weights * base
    x = indicator_matrix(units, moments)
    target = weighted_means(x[treated], base[treated])
    reached = weighted_means(x[~treated], effective[~treated])
    np.testing.assert_allclose(reached, target, rtol=0, atol=1e-8)
    sd = x[treated].std(axis=0, ddof=1)
    assert (np.abs(reached - target) / sd).max() < 1e-8
    np.testing.assert_allclose(result.weights[treated], 1.0)
    assert effective[~treated].sum() == pytest.approx((~treated).sum(), rel=1e-12)
    assert (result.weights[~treated] > 0).all()
    if moments == 2:  # second moments too: weighted variances agree
        for j in (0, 1):
            col = x[:, j]
            var_t = weighted_means((col[treated] - target[j])[:, None] ** 2, base[treated])
            var_c = weighted_means((col[~treated] - reached[j])[:, None] ** 2,
                                   effective[~treated])
            np.testing.assert_allclose(var_c, var_t, atol=1e-8)
    table = result.balance()
    assert np.abs(table["smd_after"]).max() < 1e-7


def test_ebal_without_sampling_weights_control_sum(units):
    result = match(units, treatment="t", covariates=["a", "b"], unit="id", method="ebal")
    assert result.weights[~result.treated].sum() == pytest.approx((units["t"] == 0).sum())


def test_ebal_target_outside_range_names_variable():
    data = pd.DataFrame({"t": [0, 0, 0, 0, 1, 1], "x1": [0.0, 0.2, 0.5, 1.0, 0.4, 0.6],
                         "x2": [0.0, 1.0, 0.5, 1.0, 2.0, 3.0]})
    with pytest.raises(InfeasibleBalanceError, match=r"treated mean of 'x2' \(2\.5\) lies "
                                                     r"outside the range .*\[0, 1\]"):
        match(data, treatment="t", covariates=["x1", "x2"], method="ebal")


def test_ebal_target_outside_convex_hull():
    # controls on the line x2 = x1; the treated mean (0.5, 0.2) is within both ranges
    data = pd.DataFrame({"t": [0, 0, 0, 0, 0, 1, 1],
                         "x1": [0.0, 0.0, 0.5, 1.0, 1.0, 0.4, 0.6],
                         "x2": [0.0, 0.0, 0.5, 1.0, 1.0, 0.1, 0.3]})
    with pytest.raises(InfeasibleBalanceError, match=r"'x1', 'x2' lie outside the convex hull"):
        match(data, treatment="t", covariates=["x1", "x2"], method="ebal")


def test_ebal_moments_three(units):
    with pytest.raises(InvalidOptionError, match=r"moments=3 must be 1 \(means\) or 2"):
        match(units, treatment="t", covariates=["a"], unit="id", method="ebal", moments=3)


# ---------------------------------------------------------------------------------------------
# 5. Inverse probability weights
# ---------------------------------------------------------------------------------------------


def test_ipw_weights_are_odds_of_the_score(units):
    result = match(units, treatment="t", covariates=["a", "b", "region"], unit="id",
                   method="ipw")
    e = result.units["distance"].to_numpy()
    treated = result.treated
    np.testing.assert_allclose(result.weights[treated], 1.0)
    ratio = result.weights[~treated] / (e[~treated] / (1 - e[~treated]))
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-12)
    assert result.weights[~treated].sum() == pytest.approx((~treated).sum())
    assert result.units["subclass"].isna().all()
    assert result.matches.empty


def test_ipw_user_score_in_unit_interval():
    data = pd.DataFrame({"t": [1, 1, 0, 0, 0], "e": [0.6, 0.5, 0.2, 0.5, 0.8],
                         "x": [0.0, 1.0, 2.0, 3.0, 4.0]})
    result = match(data, treatment="t", covariates=["x"], distance="e", method="ipw")
    odds = np.array([0.25, 1.0, 4.0])
    np.testing.assert_allclose(result.weights, np.r_[1, 1, odds * 3 / odds.sum()])
    with pytest.raises(MatchingError, match="strictly between 0 and 1"):
        match(data.assign(e=[0.6, 0.5, 0.2, 1.5, 0.8]), treatment="t", covariates=["x"],
              distance="e", method="ipw")


def test_ipw_balances_correctly_specified_logit():
    rng = np.random.default_rng(3)
    n = 6000
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    e = 1 / (1 + np.exp(-(-0.5 + 0.8 * x1 - 0.5 * x2)))
    data = pd.DataFrame({"t": (rng.random(n) < e).astype(int), "x1": x1, "x2": x2})
    result = match(data, treatment="t", covariates=["x1", "x2"], method="ipw")
    treated = result.treated
    # before weighting the groups differ by about 0.5 SD in x1
    assert x1[treated].mean() - x1[~treated].mean() > 0.4
    for x in (x1, x2):
        gap = x[treated].mean() - np.average(x[~treated], weights=result.weights[~treated])
        assert abs(gap) < 0.05


# ---------------------------------------------------------------------------------------------
# 6. Balance table, sample sizes, plot, summary
# ---------------------------------------------------------------------------------------------


def test_balance_smd_uses_treated_sd_before(units):
    result = match(units, treatment="t", covariates=["a", "b", "region"], unit="id")
    table = result.balance()
    assert list(table.index) == ["distance", "a", "b", "region[east]", "region[north]",
                                 "region[south]"]
    t = units["t"].to_numpy() == 1
    w = result.weights
    a = units["a"].to_numpy()
    sd1 = a[t].std(ddof=1)
    before = (a[t].mean() - a[~t].mean()) / sd1
    after = (np.average(a[t], weights=w[t]) - np.average(a[~t], weights=w[~t])) / sd1
    assert table.loc["a", "smd_before"] == pytest.approx(before, rel=1e-12)
    assert table.loc["a", "smd_after"] == pytest.approx(after, rel=1e-12)
    assert table.loc["a", "mean_control"] == pytest.approx(np.average(a[~t], weights=w[~t]))
    var_ratio = a[t].var(ddof=1) / a[~t].var(ddof=1)
    assert table.loc["a", "var_ratio_before"] == pytest.approx(var_ratio, rel=1e-12)
    # a binary indicator: SD sqrt(p (1 - p)) of the treated, no variance ratio
    north = (units["region"] == "north").to_numpy(float)
    p = north[t].mean()
    smd = (p - north[~t].mean()) / np.sqrt(p * (1 - p))
    assert table.loc["region[north]", "smd_before"] == pytest.approx(smd, rel=1e-12)
    assert np.isnan(table.loc["region[north]", "var_ratio_before"])
    assert np.isnan(table.loc["region[north]", "var_ratio_after"])
    assert table.loc["region[north]", "ecdf_max_before"] == pytest.approx(
        abs(p - north[~t].mean()))


def hand_ks(x, treated, w) -> float:
    best = 0.0
    for u in np.unique(x):
        f1 = w[treated & (x <= u)].sum() / w[treated].sum()
        f0 = w[~treated & (x <= u)].sum() / w[~treated].sum()
        best = max(best, abs(f1 - f0))
    return best


def test_ecdf_max_is_weighted_ks_statistic():
    x = np.array([3.0, 1.0, 2.0, 2.0, 5.0, 4.0, 1.0, 6.0])
    treated = np.array([1, 1, 0, 1, 0, 0, 0, 1], dtype=bool)
    w = np.array([1.0, 1.0, 0.5, 1.0, 2.0, 0.0, 1.5, 1.0])
    table = balance_table(x[:, None], ["x"], treated, w)
    assert table.loc["x", "ecdf_max_after"] == pytest.approx(hand_ks(x, treated, w), abs=1e-14)
    assert table.loc["x", "ecdf_max_before"] == pytest.approx(
        hand_ks(x, treated, np.ones(8)), abs=1e-14)
    # by hand: at u = 3 the treated eCDF is 3/4, the controls' (1.5 + 0.5)/4
    assert table.loc["x", "ecdf_max_after"] == pytest.approx(0.25)


def test_ecdf_max_matches_hand_ks_after_matching(units):
    result = quiet_match(units, treatment="t", covariates=["a", "b"], unit="id",
                         replace=True, ratio=2)
    table = result.balance()
    for name in ("a", "b"):
        x = units[name].to_numpy()
        assert table.loc[name, "ecdf_max_after"] == pytest.approx(
            hand_ks(x, result.treated, result.weights), abs=1e-12)


def test_balance_before_uses_sampling_weights(units):
    result = match(units, treatment="t", covariates=["a"], unit="id", method="ebal",
                   weights="w")
    table = result.balance()
    t = result.treated
    a, q = units["a"].to_numpy(), units["w"].to_numpy()
    m1, m0 = np.average(a[t], weights=q[t]), np.average(a[~t], weights=q[~t])
    p = q[t] / q[t].sum()
    sd1 = np.sqrt(p @ (a[t] - m1) ** 2 / (1 - p @ p))  # MatchIt's weighted variance
    assert table.loc["a", "mean_treated_before"] == pytest.approx(m1)
    assert table.loc["a", "mean_control_before"] == pytest.approx(m0)
    assert table.loc["a", "smd_before"] == pytest.approx((m1 - m0) / sd1, rel=1e-12)
    assert abs(table.loc["a", "smd_after"]) < 1e-8


def test_sample_sizes_ess(units):
    result = match(units, treatment="t", covariates=["a", "b"], unit="id", method="ipw")
    sizes = result.sample_sizes()
    w = result.weights
    treated = result.treated
    ess = w[~treated].sum() ** 2 / (w[~treated] ** 2).sum()
    assert sizes.loc["Matched (ESS)", "control"] == pytest.approx(ess)
    assert effective_sample_size(w[~treated]) == pytest.approx(ess)
    assert sizes.loc["All", "control"] == (~treated).sum()
    assert sizes.loc["All", "treated"] == treated.sum()
    assert sizes.loc["All (ESS)", "treated"] == pytest.approx(treated.sum())
    assert sizes.loc["Matched (ESS)", "control"] < (~treated).sum()


def test_plot_has_one_tick_per_balance_row(units):
    result = match(units, treatment="t", covariates=["a", "b", "region"], unit="id")
    ax = result.plot()
    try:
        assert isinstance(ax, Axes)
        labels = [tick.get_text() for tick in ax.get_yticklabels()]
        assert len(labels) == len(result.balance()) == 6
        assert labels == list(result.balance().index)
        positions = ax.get_yticks()
        assert positions[0] == 5 and positions[-1] == 0  # first row on top
    finally:
        plt.close(ax.figure)


def test_summary_lists_sizes_and_reasons(units):
    with pytest.warns(UnmatchedUnitsWarning):
        result = match(units, treatment="t", covariates=["a", "b"], unit="id", caliper=0.05)
    sizes = result.sample_sizes()
    dropped = int(((result.units["reason"] != "")).sum())
    text = str(result.summary())
    assert "Sample sizes" in text and "Matched" in text and "Unmatched" in text
    assert f"{dropped} treated: no available control within the caliper" in text
    assert str(int(sizes.loc["All", "control"])) in text
    assert "method=nearest" in text and "caliper=0.05" in text
    assert str(result) == text
    clean = match(units, treatment="t", covariates=["a", "b"], unit="id")
    assert "without a match" not in str(clean.summary())


# ---------------------------------------------------------------------------------------------
# 7. Error contracts
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("values", "pattern"), [
    ([0, 1, 2, 1, 0, 0], r"must be binary .* holds 2"),
    (["yes", "no", "no", "yes", "no", "no"], r"must be binary .* holds no, yes"),
    ([1, 0, np.nan, 1, 0, 0], r"has 1 missing value;"),
    ([1, 1, 1, 1, 1, 1], r"only holds treated units \(6\)"),
    ([0, 0, 0, 0, 0, 0], r"only holds control units \(6\)"),
])
def test_treatment_not_binary(values, pattern):
    data = pd.DataFrame({"t": values, "x": [0.1, 0.5, 0.2, 0.9, 0.4, 0.3]})
    with pytest.raises(TreatmentNotBinaryError, match=pattern):
        match(data, treatment="t", covariates=["x"])


def test_discard_both_drops_units_outside_common_support():
    data = pd.DataFrame({"t": [1, 1, 1, 0, 0, 0, 0],
                         "s": [0.1, 0.5, 0.9, 0.3, 0.45, 0.6, 0.7], "x": np.arange(7.0)})
    with pytest.warns(UnmatchedUnitsWarning, match=r"2 of 3 treated units were dropped "
                                                   r"without a match: 2 outside the common "
                                                   r"support of the score \(discard='both'\)"):
        result = match(data, treatment="t", covariates=["x"], distance="s", discard="both")
    np.testing.assert_array_equal(result.units["discarded"],
                                  [True, False, True, False, False, False, False])
    assert pairs_of(result) == [(1, 4)]
    sizes = result.sample_sizes()
    assert sizes.loc["Discarded", "treated"] == 2 and sizes.loc["Unmatched", "control"] == 3
    assert sizes.loc["Matched", "treated"] == 1


def test_unit_ids_default_to_index():
    data = pd.DataFrame({"t": [1, 0, 1, 0], "s": [0.2, 0.25, 0.8, 0.7], "x": [1.0, 2, 3, 4]},
                        index=["a", "b", "c", "d"])
    result = match(data, treatment="t", covariates=["x"], distance="s")
    assert pairs_of(result) == [("a", "b"), ("c", "d")]
    assert list(result.unit_weights().index) == ["a", "b", "c", "d"]


def test_boolean_treatment_accepted():
    data = pd.DataFrame({"t": [True, False, True, False, False],
                         "s": [0.3, 0.35, 0.8, 0.7, 0.1], "x": [1.0, 2, 3, 4, 5]})
    result = match(data, treatment="t", covariates=["x"], distance="s")
    assert pairs_of(result) == [(0, 1), (2, 3)]


def test_covariate_with_missing_values(units):
    data = units.copy()
    data.loc[[4, 9], "b"] = np.nan
    with pytest.raises(MatchingError, match=r"covariate 'b' has 2 missing values \(first at "
                                            r"row 4\)"):
        match(data, treatment="t", covariates=["a", "b"], unit="id")


def test_duplicate_unit_ids(units):
    data = units.copy()
    data.loc[7, "id"] = data.loc[2, "id"]
    with pytest.raises(MatchingError, match=r"unique \(one row per unit\) but 1 repeat"):
        match(data, treatment="t", covariates=["a"], unit="id")


def test_duplicate_unit_id_message_shows_plain_id(units):
    data = units.copy()
    data.loc[7, "id"] = data.loc[2, "id"]
    with pytest.raises(MatchingError, match=r"for example 102\. "):
        match(data, treatment="t", covariates=["a"], unit="id")


@pytest.mark.parametrize("kwargs", [
    {"covariates": ["a", "nope"]},
    {"covariates": ["a"], "unit": "nope"},
    {"covariates": ["a"], "exact": ["nope"]},
    {"covariates": ["a"], "weights": "nope"},
])
def test_unknown_column(units, kwargs):
    with pytest.raises(MissingColumnError, match="'nope' not in the data"):
        match(units, treatment="t", **kwargs)


def test_unknown_treatment_column(units):
    with pytest.raises(MissingColumnError, match="treatment column 'nope'"):
        match(units, treatment="nope", covariates=["a"])


def test_exact_stratum_without_controls():
    data = pd.DataFrame({"t": [1, 0, 1, 0, 1, 1, 1, 0],
                         "region": ["A", "A", "B", "A", "C", "C", "C", "B"],
                         "x": [0.1, 0.3, 0.5, 0.7, 0.2, 0.4, 0.6, 0.8]})
    with pytest.raises(NoControlsInStratumError,
                       match=r"1 exact-matching stratum has treated units but no controls: "
                             r"region=C \(3 treated\)"):
        match(data, treatment="t", covariates=["x"], exact=["region"], distance="mahalanobis")


def test_exact_matching_keeps_pairs_within_strata(units):
    result = quiet_match(units, treatment="t", covariates=["a", "b"], unit="id",
                         exact=["region"])
    region = units.set_index("id")["region"]
    m = result.matches
    assert len(m) > 0
    np.testing.assert_array_equal(region.loc[m["treated_unit"]].to_numpy(),
                                  region.loc[m["control_unit"]].to_numpy())


def test_caliper_too_tight_no_matches(units):
    n1 = int(units["t"].sum())
    with pytest.raises(NoMatchesError, match=rf"no treated unit got a match \({n1} no available "
                                             "control within the caliper\\)"):
        match(units, treatment="t", covariates=["a", "b"], unit="id", caliper=1e-9)


def test_some_treated_dropped_warns(units):
    with pytest.warns(UnmatchedUnitsWarning) as record:
        result = match(units, treatment="t", covariates=["a", "b"], unit="id", caliper=0.05)
    n1 = int(units["t"].sum())
    dropped = int((result.treated & (result.weights == 0)).sum())
    assert 0 < dropped < n1
    messages = [str(r.message) for r in record]
    assert any(f"{dropped} of {n1} treated units were dropped without a match: {dropped} no "
               "available control within the caliper" in m for m in messages)


def test_too_few_controls_for_ratio_warns():
    data = pd.DataFrame({"t": [1, 1, 0, 0, 0], "s": [0.2, 0.8, 0.1, 0.3, 0.9],
                         "x": [0.0, 1, 2, 3, 4]})
    with pytest.warns(UnmatchedUnitsWarning, match="1 treated units got fewer than 2 controls"):
        result = match(data, treatment="t", covariates=["x"], distance="s", ratio=2)
    assert len(result.matches) == 3


@pytest.mark.parametrize(("kwargs", "pattern"), [
    ({"ratio": 0}, r"ratio=0 must be a whole number of at least 1\."),
    ({"ratio": 1.5}, r"ratio=1\.5 must be a whole number of at least 1\."),
    ({"ratio": True}, r"ratio=True must be a whole number of at least 1\."),
    ({"caliper": -0.1}, r"caliper=-0\.1 must be a finite number greater than 0"),
    ({"caliper": {"a": 0}}, r"caliper\['a'\]=0 must be a finite number greater than 0"),
    ({"caliper": float("inf")}, r"caliper=inf must be a finite number greater than 0"),
    ({"caliper": float("nan")}, r"caliper=nan must be a finite number greater than 0"),
    ({"replace": "yes"}, r"replace='yes' must be True or False"),
    ({"on_nonconvergence": "ignore"}, r"on_nonconvergence='ignore' is not a valid option"),
    ({"method": "genetic"}, r"method='genetic' is not a valid option"),
    ({"distance": "cosine"}, r"distance='cosine' is neither a distance"),
    ({"order": "alphabetical"}, r"order='alphabetical' is not a valid option"),
    ({"discard": "all"}, r"discard='all' is not a valid option"),
    ({"distance": "mahalanobis", "order": "largest"},
     r"order='largest' needs a propensity or user score"),
    ({"distance": "euclidean", "order": "smallest"},
     r"order='smallest' needs a propensity or user score"),
    ({"distance": "mahalanobis", "caliper": 0.2},
     r"caliper on the distance needs a propensity or user score"),
    ({"method": "ipw", "distance": "mahalanobis"}, r"method='ipw' needs a propensity score"),
    ({"distance": "mahalanobis", "mahalanobis": ["a"]}, r"needs distance='logit' or 'probit'"),
    ({"method": "cem", "discard": "both"}, r"discard='both' needs a propensity or user score"),
    ({"covariates": []}, r"covariates must name at least one column"),
    ({"method": "cem", "caliper": 0.1}, r"method='cem' does not use caliper"),
    ({"method": "ipw", "ratio": 2}, r"method='ipw' does not use ratio"),
    ({"method": "ebal", "replace": True}, r"method='ebal' does not use replace"),
    ({"caliper": {"region": 0.5}}, r"caliper covariate 'region' must be numeric"),
])
def test_invalid_options(units, kwargs, pattern):
    arguments = {"treatment": "t", "covariates": ["a", "b"], "unit": "id", **kwargs}
    with pytest.raises(InvalidOptionError, match=pattern):
        match(units, **arguments)


def test_data_must_be_a_dataframe(units):
    with pytest.raises(TypeError, match="pandas DataFrame"):
        match(units.to_dict(), treatment="t", covariates=["a"])


def test_covariate_calipers_respected(units):
    result = quiet_match(units, treatment="t", covariates=["a", "b"], unit="id",
                         caliper={"a": 0.2, "b": 0.5})
    x = units.set_index("id")
    m = result.matches
    assert len(m) > 0
    for name, width in (("a", 0.2), ("b", 0.5)):
        gap = np.abs(x.loc[m["treated_unit"], name].to_numpy()
                     - x.loc[m["control_unit"], name].to_numpy())
        assert (gap <= width * units[name].std(ddof=1)).all()


def test_perfect_separation_suggests_exact_matching():
    data = pd.DataFrame({"t": [1, 1, 1, 0, 0, 0, 0, 0],
                         "x": [5.0, 6, 7, 1, 2, 3, 4, 2.5],
                         "z": [1.0, 2, 1, 2, 1, 2, 1, 2]})
    with pytest.raises(MatchingError, match=r"separates treated and control units perfectly.*"
                                            r"exact=\[\.\.\.\]"):
        match(data, treatment="t", covariates=["x", "z"])


def test_invalid_sampling_weights(units):
    with pytest.raises(MatchingError, match="weights column 'w' must hold finite, non-negative"):
        match(units.assign(w=-units["w"]), treatment="t", covariates=["a"], unit="id",
              method="ebal", weights="w")


# ---------------------------------------------------------------------------------------------
# 8. The input is never modified
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs", [
    {},
    {"method": "optimal", "ratio": 2},
    {"method": "cem", "cutpoints": 3},
    {"method": "ebal", "moments": 2, "weights": "w"},
    {"method": "ipw", "distance": "probit"},
    {"distance": "mahalanobis", "exact": ["region"], "order": "random", "seed": 3},
    {"replace": True, "ratio": 2, "caliper": {"distance": 0.3, "a": 0.5}, "discard": "both"},
])
def test_input_not_modified(units, kwargs):
    data = units.copy()
    data["region"] = data["region"].astype("category")
    data["flag"] = data["a"] > 0
    before = copy.deepcopy(data)
    result = quiet_match(data, treatment="t", covariates=["a", "b", "region", "flag"],
                         unit="id", **kwargs)
    pd.testing.assert_frame_equal(data, before)
    assert list(data.columns) == list(before.columns)
    matched = result.matched_data()
    assert "weight" in matched.columns and "weight" not in data.columns
    pd.testing.assert_frame_equal(data, before)


# ---------------------------------------------------------------------------------------------
# 9. Hand-off to DiD estimators
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def staggered():
    sim = simulate_staggered(n_units=150, n_periods=6, cohorts=(5,), never_share=0.6,
                             covariate_selection=1.0, covariate_trend=0.3, seed=3)
    data = sim.data
    panel = staggered_panel(data, weights="weight")
    first = data[data["time"] == data["time"].min()]
    table = pd.DataFrame({"unit": first["unit"].to_numpy(),
                          "treated": (first["cohort"] > 0).astype(int).to_numpy(),
                          "x": first["x"].to_numpy()})
    return data, panel, table


def test_apply_restricts_and_multiplies_weights(staggered):
    data, panel, table = staggered
    result = quiet_match(table, treatment="treated", covariates=["x"], unit="unit",
                         replace=True, ratio=2)
    applied = result.apply(panel)
    kept = result.unit_weights()
    assert set(applied.units) == set(kept.index)
    assert applied.n_units == int((result.weights > 0).sum()) < panel.n_units
    assert applied.weights == "match_weight"
    rows = applied.data
    panel_weight = data.groupby("unit")["weight"].first()
    expected = kept.loc[rows["unit"]].to_numpy() * panel_weight.loc[rows["unit"]].to_numpy()
    np.testing.assert_allclose(rows["match_weight"].to_numpy(), expected, rtol=1e-12)
    assert len(rows) == applied.n_units * panel.n_periods
    # the original panel is untouched
    assert panel.n_units == 150 and "match_weight" not in panel.data.columns


def test_callaway_santanna_on_applied_panel_equals_hand_weighted(staggered):
    data, panel, table = staggered
    result = quiet_match(table, treatment="treated", covariates=["x"], unit="unit",
                         replace=True, ratio=2)
    applied = result.apply(panel)
    kept = result.unit_weights()
    hand = data[data["unit"].isin(kept.index)].copy()
    hand["w"] = kept.loc[hand["unit"]].to_numpy() * hand["weight"].to_numpy()
    hand_panel = staggered_panel(hand, weights="w")
    for method in ("dr", "reg"):
        got = CallawaySantAnna(method=method).fit(applied).table
        expected = CallawaySantAnna(method=method).fit(hand_panel).table
        np.testing.assert_allclose(got["estimate"], expected["estimate"], rtol=1e-10,
                                   atol=1e-12)
        np.testing.assert_allclose(got["std_error"], expected["std_error"], rtol=1e-10)
    unweighted = CallawaySantAnna(method="reg").fit(panel).table
    assert not np.allclose(unweighted["estimate"], expected["estimate"])


def test_apply_without_panel_weights(staggered):
    data, _, table = staggered
    panel = staggered_panel(data)
    result = match(table, treatment="treated", covariates=["x"], unit="unit", method="ipw")
    applied = result.apply(panel, name="w_ipw")
    w = result.unit_weights()
    np.testing.assert_allclose(applied.unit_weights, w.loc[applied.units].to_numpy())


def test_with_unit_weights_errors(staggered):
    _, panel, _ = staggered
    good = pd.Series(1.0, index=panel.units[:10])
    with pytest.raises(InvalidWeightError, match="finite and non-negative"):
        panel.with_unit_weights(good.where(good.index != good.index[0], -1.0))
    with pytest.raises(InvalidWeightError, match="finite and non-negative"):
        panel.with_unit_weights(good.where(good.index != good.index[0], np.nan))
    with pytest.raises(InvalidWeightError, match="none of the 150 units of the panel has a "
                                                 "positive weight"):
        panel.with_unit_weights(pd.Series(1.0, index=[10_001, 10_002]))
    with pytest.raises(InvalidWeightError, match="none of the 150 units"):
        panel.with_unit_weights(pd.Series(0.0, index=panel.units[:10]))
    duplicated = pd.Series([1.0, 2.0, 1.0], index=[panel.units[0], panel.units[0],
                                                   panel.units[1]])
    with pytest.raises(InvalidWeightError, match="1 ids repeat"):
        panel.with_unit_weights(duplicated)
    with pytest.raises(InvalidOptionError, match="name='y' is already a column"):
        panel.with_unit_weights(good, name="y")
    with pytest.raises(InvalidOptionError, match="name='weight' is already a column"):
        panel.with_unit_weights(good, name="weight")


def test_with_unit_weights_drops_zero_weights(staggered):
    _, panel, _ = staggered
    w = pd.Series([2.0, 0.0, 3.0], index=panel.units[:3])
    out = panel.with_unit_weights(w)
    assert list(out.units) == [panel.units[0], panel.units[2]]
    np.testing.assert_allclose(out.unit_weights,
                               [2.0 * panel.unit_weights[0], 3.0 * panel.unit_weights[2]])


# ---------------------------------------------------------------------------------------------
# 10. Outcome trajectories and the placebo DiD
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trajectory_panel():
    sim = simulate_staggered(n_units=120, n_periods=10, cohorts=(5, 8), never_share=0.5,
                             seed=9)
    return staggered_panel(sim.data)


def trajectories(panel, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RegressionToMeanWarning)
        return outcome_trajectories(panel, 8, **kwargs)


def test_trajectory_lags(trajectory_panel):
    panel = trajectory_panel
    out = trajectories(panel, window=4, skip=1, features="lags")
    assert list(out.columns) == ["unit", "treated", "y_m5", "y_m4", "y_m3", "y_m2"]
    cohort = pd.Series(panel.unit_cohort, index=panel.units)
    ref = panel.period_position(8)
    keep = cohort.isna() | (cohort == ref)
    assert list(out["unit"]) == list(panel.units[keep.to_numpy()])
    np.testing.assert_array_equal(out["treated"], (cohort[keep] == ref).astype(int))
    assert not out["unit"].isin(panel.units[cohort.to_numpy() == panel.period_position(5)]).any()
    y = panel.wide("y")[keep.to_numpy()]
    for k in (5, 4, 3, 2):  # k periods before time 8 = time 8 - k
        np.testing.assert_allclose(out[f"y_m{k}"], y[:, panel.period_position(8 - k)])


def test_trajectory_mean_and_slope(trajectory_panel):
    panel = trajectory_panel
    out = trajectories(panel, window=5, skip=2, features="mean_slope")
    assert list(out.columns) == ["unit", "treated", "y_mean", "y_slope"]
    keep = pd.Index(panel.units).get_indexer(out["unit"])
    y = panel.wide("y")[keep][:, 0:5]  # times 1..5: five periods ending two before time 8
    np.testing.assert_allclose(out["y_mean"], y.mean(axis=1))
    slopes = np.array([np.polyfit(np.arange(5), row, 1)[0] for row in y])
    np.testing.assert_allclose(out["y_slope"], slopes, rtol=1e-10, atol=1e-12)
    mean_only = trajectories(panel, window=5, skip=2, features="mean")
    assert list(mean_only.columns) == ["unit", "treated", "y_mean"]


def test_trajectory_notyet_controls(trajectory_panel):
    panel = trajectory_panel
    out = trajectories(panel, window=3, features="mean", controls="notyet")
    never = trajectories(panel, window=3, features="mean", controls="never")
    assert out.equals(never)  # no cohort after time 8
    early = pd.Index(panel.units[panel.unit_cohort == panel.period_position(8)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RegressionToMeanWarning)
        at5 = outcome_trajectories(panel, 5, window=3, features="mean", controls="notyet")
    assert early.isin(at5.loc[at5["treated"] == 0, "unit"]).all()


def test_trajectory_warnings(trajectory_panel):
    for features in ("lags", "mean", "mean_slope"):
        with pytest.warns(RegressionToMeanWarning, match="regression to the mean"):
            outcome_trajectories(trajectory_panel, 8, window=3, features=features)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RegressionToMeanWarning)
        out = outcome_trajectories(trajectory_panel, 8, window=3, features="slope")
    assert list(out.columns) == ["unit", "treated", "y_slope"]


def test_trajectory_window_errors(trajectory_panel):
    with pytest.raises(InvalidOptionError, match=r"start 1 period before the panel's first "
                                                 r"period 1"):
        outcome_trajectories(trajectory_panel, 8, window=6, skip=2, features="slope")
    with pytest.raises(InvalidOptionError, match="window=1 must be at least 2"):
        outcome_trajectories(trajectory_panel, 8, window=1, features="slope")
    with pytest.raises(InvalidOptionError, match="features='levels' is not a valid option"):
        outcome_trajectories(trajectory_panel, 8, window=3, features="levels")
    with pytest.raises(MatchingError, match="no unit is first treated at 7"):
        outcome_trajectories(trajectory_panel, 7, window=3, features="slope")


def test_placebo_did_equals_hand_computation(trajectory_panel):
    panel = trajectory_panel
    table = trajectories(panel, window=4, skip=2, features="lags")
    result = quiet_match(table, treatment="treated", unit="unit",
                         covariates=[c for c in table.columns if c.startswith("y_m")],
                         distance="mahalanobis", ratio=2)
    placebo = placebo_did(result, panel, 8, window=4, skip=2)
    weights = result.unit_weights()
    codes = pd.Index(panel.units).get_indexer(weights.index)
    y = panel.wide("y")[codes]
    ref = panel.period_position(8)
    delta = y[:, ref - 2:ref].mean(axis=1) - y[:, ref - 6:ref - 2].mean(axis=1)
    treated = result.units.set_index("unit").loc[weights.index, "treated"].to_numpy(bool)
    w = weights.to_numpy()
    hand = (np.average(delta[treated], weights=w[treated])
            - np.average(delta[~treated], weights=w[~treated]))
    assert placebo.estimate == pytest.approx(hand, rel=1e-10, abs=1e-12)
    assert placebo.n_treated == treated.sum() and placebo.n_control == (~treated).sum()
    assert list(placebo.by_period["period"]) == [6, 7]
    first = y[:, ref - 2] - y[:, ref - 6:ref - 2].mean(axis=1)
    hand_first = (np.average(first[treated], weights=w[treated])
                  - np.average(first[~treated], weights=w[~treated]))
    assert placebo.by_period["estimate"].iloc[0] == pytest.approx(hand_first, rel=1e-10)
    assert placebo.std_error > 0
    assert placebo.conf_low < placebo.estimate < placebo.conf_high


def test_placebo_did_needs_skip(trajectory_panel):
    table = trajectories(trajectory_panel, window=4, skip=0, features="mean")
    result = match(table, treatment="treated", unit="unit", covariates=["y_mean"])
    with pytest.raises(InvalidOptionError, match=r"skip >= 1"):
        placebo_did(result, trajectory_panel, 8, window=4, skip=0)


def test_placebo_did_unknown_units(trajectory_panel):
    table = trajectories(trajectory_panel, window=4, skip=1, features="mean")
    table["unit"] = table["unit"] + 10_000
    result = match(table, treatment="treated", unit="unit", covariates=["y_mean"])
    with pytest.raises(MatchingError, match="matched unit ids are not units of the panel"):
        placebo_did(result, trajectory_panel, 8, window=4, skip=1)


# ---------------------------------------------------------------------------------------------
# 11. Synthetic control
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def synthetic_panel():
    rng = np.random.default_rng(12)
    n_donors, n_periods, start = 6, 14, 11
    donors = rng.normal(size=(n_donors, n_periods)).cumsum(axis=1) + rng.normal(
        0, 3, size=(n_donors, 1))
    treated = 0.3 * donors[1] + 0.7 * donors[4]
    treated[start - 1:] += 2.0  # the effect from period 11 on
    paths = np.vstack([treated, donors])
    data = pd.DataFrame({"unit": np.repeat(np.arange(7), n_periods),
                         "time": np.tile(np.arange(1, n_periods + 1), 7),
                         "y": paths.ravel(),
                         "cohort": np.repeat([start, 0, 0, 0, 0, 0, 0], n_periods)})
    return staggered_panel(data)


def test_synthetic_control_recovers_convex_combination(synthetic_panel):
    fit = synthetic_control(synthetic_panel, [0], treatment_start=11)
    w = fit.weights
    assert list(w.index) == [1, 2, 3, 4, 5, 6]
    assert (w >= 0).all()
    assert w.sum() == pytest.approx(1.0, abs=1e-12)
    # the treated path is 0.3 * unit 2 + 0.7 * unit 5
    np.testing.assert_allclose(w.to_numpy(), [0, 0.3, 0, 0, 0.7, 0], atol=1e-6)
    stats = fit.fit_statistics()
    assert stats["pre_rmspe"] < 1e-6
    assert stats["post_mean_gap"] == pytest.approx(2.0, abs=1e-5)
    assert stats["n_donors_used"] == 2
    assert fit.paths["pre"].sum() == 10 and len(fit.paths) == 14


def test_synthetic_control_with_explicit_donors_and_pre_periods(synthetic_panel):
    fit = synthetic_control(synthetic_panel, [0], treatment_start=11, donors=[2, 3, 5],
                            pre_periods=6)
    np.testing.assert_allclose(fit.weights.to_numpy(), [0.3, 0, 0.7], atol=1e-6)
    assert len(fit.paths) == 10 and fit.paths["pre"].sum() == 6


def test_synthetic_control_weights_simplex_on_noisy_target(synthetic_panel):
    fit = synthetic_control(synthetic_panel, [0], treatment_start=11, donors=[1, 3, 4, 6])
    assert (fit.weights >= 0).all()
    assert fit.weights.sum() == pytest.approx(1.0)
    assert fit.fit_statistics()["pre_rmspe"] > 1e-3


def test_synthetic_control_errors(synthetic_panel):
    with pytest.raises(MatchingError, match=r"treated_units must be unit ids .* \[99\]"):
        synthetic_control(synthetic_panel, [99], treatment_start=11)
    with pytest.raises(MatchingError, match=r"donors must be unit ids .* \[42\]"):
        synthetic_control(synthetic_panel, [0], treatment_start=11, donors=[1, 42])
    with pytest.raises(MatchingError, match="overlap"):
        synthetic_control(synthetic_panel, [0], treatment_start=11, donors=[0, 1, 2])
    with pytest.raises(MatchingError, match="at least 2 donors"):
        synthetic_control(synthetic_panel, [0], treatment_start=11, donors=[1])
    with pytest.raises(MatchingError, match=r"at least 2 pre-periods .* got 1"):
        synthetic_control(synthetic_panel, [0], treatment_start=2)
    with pytest.raises(MatchingError, match=r"at least 2 pre-periods .* got 1"):
        synthetic_control(synthetic_panel, [0], treatment_start=11, pre_periods=1)


def test_synthetic_control_plot(synthetic_panel):
    fit = synthetic_control(synthetic_panel, [0], treatment_start=11)
    ax = fit.plot()
    try:
        assert isinstance(ax, Axes)
        assert len(ax.get_lines()) == 3  # treated, synthetic, start of treatment
        assert ax.get_title() == "Synthetic control"
    finally:
        plt.close(ax.figure)
