"""Joint inference across outcomes and the municipal share of the subsidy-cost change.

The joint covariance is the covariance of the stacked influence functions; the share
a / (a + b) has a delta-method standard error (checked against a numerical derivative) and a
Fieller confidence set (checked against a grid search of its defining inequality, covering
the truth in a Monte Carlo); the chapter function returns the documented table.
"""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.special import ndtri

from evaluation.errors import InvalidOptionError
from evaluation.estimators._inference import influence_covariance
from evaluation.estimators.callaway_santanna import CallawaySantAnna
from evaluation.estimators.joint import (
    ShareOfTotal,
    fieller_set,
    joint_covariance,
    share_delta_se,
    share_of_total,
)
from evaluation.estimators.results import EstimationResult
from evaluation.panel import Panel
from evaluation.protocol import ResultProtocol
from evaluation.report.chapters import COST_QUANTITIES, cost_shift, service_effects
from evaluation.report.chapters.services_costs import (
    COST_PARTS,
    COST_SHIFT_COLUMNS,
    CostShift,
)
from evaluation.report.study import Study
from evaluation.simulate import simulate_staggered, write_synthetic_data

Z = float(ndtri(0.975))


def two_outcomes(seed: int, n_units: int = 300, clusters: int = 0) -> pd.DataFrame:
    """A staggered panel with outcome ``y`` (effect 0.5) and a correlated ``b`` (effect -0.1).

    ``b = -0.6 y + u_i + e_it + 0.2 D_it``, so its effect is -0.6 * 0.5 + 0.2 = -0.1 and the
    true share of ``y`` in the total is 0.5 / 0.4 = 1.25.
    """
    data = simulate_staggered(n_units=n_units, n_periods=5, cohorts=(3, 4), effect=0.5,
                              n_clusters=clusters, seed=seed,
                              keep_potential_outcomes=False).data
    rng = np.random.default_rng(seed + 1_000_003)
    unit_effect = rng.normal(size=data["unit"].max() + 1)[data["unit"].to_numpy()]
    return data.assign(b=-0.6 * data["y"] + unit_effect + rng.normal(size=len(data))
                       + 0.2 * data["treated"])


def fit(data: pd.DataFrame, outcome: str, cluster: str | None = None):
    panel = Panel(data, unit="unit", time="time", outcome=outcome, cohort="cohort",
                  never_treated=0, cluster=cluster)
    return CallawaySantAnna().fit(panel)


@pytest.fixture(scope="module")
def clustered():
    data = two_outcomes(3, n_units=600, clusters=25)
    return data, fit(data, "y", "cluster"), fit(data, "b", "cluster")


# ------------------------------------------------------------------ joint covariance
def test_joint_covariance_is_the_covariance_of_the_stacked_influence_functions(clustered):
    _, fit_y, fit_b = clustered
    event_y, event_b = fit_y.aggregate("event"), fit_b.aggregate("event")
    joint = joint_covariance([event_y, event_b])
    psi = np.hstack([event_y.influence, event_b.influence])
    sums = pd.DataFrame(psi).groupby(event_y.cluster).sum().to_numpy()
    np.testing.assert_allclose(joint, sums.T @ sums / psi.shape[0] ** 2, rtol=1e-12)
    k = len(event_y.table) + 1
    np.testing.assert_allclose(joint[:k - 1, :k - 1], event_y.vcov, rtol=1e-12)
    np.testing.assert_allclose(joint[k:-1, k:-1], event_b.vcov, rtol=1e-12)
    se = event_b.to_frame()["std_error"].to_numpy()
    np.testing.assert_allclose(np.sqrt(np.diag(joint[k:, k:])), se, rtol=1e-12)
    assert np.abs(joint[:k, k:]).max() > 0.1 * np.abs(joint[:k, :k]).max()  # correlated


def test_joint_covariance_of_a_result_with_itself_repeats_its_variance(clustered):
    _, fit_y, _ = clustered
    simple = fit_y.aggregate("simple")
    joint = joint_covariance([simple, simple])
    variance = simple.to_frame()["std_error"].iloc[-1] ** 2
    np.testing.assert_allclose(joint, np.full((2, 2), variance), rtol=1e-12)
    np.testing.assert_allclose(influence_covariance(simple.influence, simple.cluster),
                               [[variance]], rtol=1e-12)
    cells = joint_covariance([fit_y])  # the ATT(g,t) result keeps its influence too
    np.testing.assert_allclose(cells, fit_y.vcov, rtol=1e-12)


def test_the_total_has_the_standard_error_of_a_fit_on_the_summed_outcome(clustered):
    """Doubly robust CS without covariates is linear in the outcome: a + b is one fit."""
    data, fit_y, fit_b = clustered
    share = share_of_total(fit_y.aggregate("simple"), fit_b.aggregate("simple"),
                           names=("y", "b"), total_name="y + b")
    total = share.to_frame().set_index("quantity").loc["y + b"]
    summed = fit(data.assign(s=data["y"] + data["b"]), "s", "cluster").aggregate("simple")
    row = summed.to_frame().iloc[-1]
    assert total["estimate"] == pytest.approx(row["estimate"], rel=1e-10)
    assert total["std_error"] == pytest.approx(row["std_error"], rel=1e-10)


def test_mismatched_units_clusters_or_terms_raise(clustered):
    data, fit_y, fit_b = clustered
    fewer = fit(data[data["unit"] > 5], "b", "cluster").aggregate("simple")
    with pytest.raises(InvalidOptionError, match="different units"):
        joint_covariance([fit_y.aggregate("simple"), fewer])
    with pytest.raises(InvalidOptionError, match="different units"):
        share_of_total(fit_y.aggregate("simple"), fewer)
    unclustered = fit(data, "b").aggregate("simple")
    with pytest.raises(InvalidOptionError, match="cluster"):
        joint_covariance([fit_y.aggregate("simple"), unclustered])
    with pytest.raises(InvalidOptionError, match="different terms"):
        share_of_total(fit_y.aggregate("simple"), fit_b.aggregate("event"))
    bare = EstimationResult("toy", "simple", fit_y.aggregate("simple").table)
    with pytest.raises(InvalidOptionError, match="keeps no influence functions"):
        joint_covariance([fit_y.aggregate("simple"), bare])


def test_existing_numbers_are_unchanged_by_keeping_the_influence(clustered):
    _, fit_y, _ = clustered
    event = fit_y.aggregate("event")
    assert event.influence.shape == (len(event.units), len(event.table) + 1)
    assert list(event.to_frame().columns)[:11] == list(EstimationResult(
        "cs", "event", event.table).to_frame().columns)
    np.testing.assert_allclose(influence_covariance(event.influence, event.cluster)[:-1, :-1],
                               event.vcov, rtol=1e-12)
    np.testing.assert_array_equal(event.units, np.sort(np.unique(event.units)))


# ---------------------------------------------------------------------- the ratio
def test_share_of_jackknifed_fits_uses_their_t_distribution(clustered):
    data = clustered[0]
    panels = [Panel(data, unit="unit", time="time", outcome=o, cohort="cohort",
                    never_treated=0, cluster="cluster") for o in ("y", "b")]
    fits = [CallawaySantAnna(se="cr3").fit(p).aggregate("simple") for p in panels]
    share = share_of_total(*fits)
    assert share.df == 24  # 25 clusters
    frame = share.to_frame()
    row = frame[(frame["term"] == "overall") & (frame["quantity"] == "part")].iloc[0]
    t = stats.t.ppf(0.975, 24)
    assert row["ci_upper"] - row["estimate"] == pytest.approx(t * row["std_error"], rel=1e-12)
    assert row["p_value"] == pytest.approx(
        2 * stats.t.sf(abs(row["estimate"] / row["std_error"]), 24), rel=1e-10)
    assert row["interval"] == "t(24)"
    by_fit = fits[0].to_frame().iloc[-1]  # the fit's own table: the same interval
    assert row["ci_lower"] == pytest.approx(by_fit["ci_lower"], rel=1e-12)
    with pytest.raises(InvalidOptionError, match="different reference distributions"):
        share_of_total(fits[0], CallawaySantAnna().fit(panels[1]).aggregate("simple"))


def test_delta_method_standard_error_matches_a_numerical_derivative():
    a, b = 1.7, -0.4
    vcov = np.array([[0.09, -0.05], [-0.05, 0.16]])

    def share(x: np.ndarray) -> float:
        return x[0] / (x[0] + x[1])

    step = 1e-6
    gradient = np.array([(share(np.array([a, b]) + step * e) - share(np.array([a, b])
                                                                        - step * e)) / (2 * step)
                         for e in np.eye(2)])
    assert share_delta_se(a, b, vcov) == pytest.approx(np.sqrt(gradient @ vcov @ gradient),
                                                       rel=1e-7)


def test_share_arithmetic_by_hand():
    share = ShareOfTotal(terms=["overall"], event_time=[None],
                         estimates=np.array([[-1.0, 3.0]]),
                         vcov=np.array([[[0.01, 0.0], [0.0, 0.04]]]), scale=100)
    frame = share.to_frame().set_index("quantity")
    assert frame.loc["total", "estimate"] == 2.0
    assert frame.loc["total", "std_error"] == pytest.approx(np.sqrt(0.05))
    assert frame.loc["share", "estimate"] == -50.0
    # delta method: sqrt(b^2 v_aa + a^2 v_bb) / d^2 = sqrt(0.09 + 0.04) / 4
    assert frame.loc["share", "std_error"] == pytest.approx(100 * np.sqrt(0.13) / 4)
    assert frame.loc["share", "p_value"] == frame.loc["part", "p_value"]


def _grid_accepts(a, d, v_aa, v_ad, v_dd, grid):
    return (a - grid * d) ** 2 <= Z**2 * (v_aa - 2 * grid * v_ad + grid**2 * v_dd)


@pytest.mark.parametrize(("a", "d", "v_aa", "v_ad", "v_dd"), [
    (1.0, 2.5, 0.04, 0.03, 0.25),  # denominator 5 se from zero
    (-0.8, 1.2, 0.09, -0.02, 0.30),  # 2.2 se: wide, skewed interval
    (0.3, 3.0, 0.20, 0.00, 0.50),
])
def test_bounded_fieller_interval_matches_a_grid_search(a, d, v_aa, v_ad, v_dd):
    fieller = fieller_set(a, d, v_aa, v_ad, v_dd)
    assert fieller.bounded and fieller.contains(a / d)
    grid = np.linspace(-20, 20, 400_001)
    accepted = grid[_grid_accepts(a, d, v_aa, v_ad, v_dd, grid)]
    step = grid[1] - grid[0]
    assert fieller.lower == pytest.approx(accepted.min(), abs=step)
    assert fieller.upper == pytest.approx(accepted.max(), abs=step)
    assert accepted.size == pytest.approx((accepted.max() - accepted.min()) / step + 1, abs=1)


def test_fieller_set_is_unbounded_when_the_denominator_is_insignificant():
    # |d| / se(d) = 1.5 < 1.96: two rays around a gap
    a, d, v_aa, v_ad, v_dd = 1.0, 0.6, 0.04, 0.01, 0.16
    fieller = fieller_set(a, d, v_aa, v_ad, v_dd)
    assert fieller.kind == "two rays" and fieller.limits == (-np.inf, np.inf)
    grid = np.linspace(-50, 50, 200_001)
    rejected = grid[~_grid_accepts(a, d, v_aa, v_ad, v_dd, grid)]
    step = grid[1] - grid[0]
    assert fieller.lower == pytest.approx(rejected.min(), abs=step)
    assert fieller.upper == pytest.approx(rejected.max(), abs=step)
    assert fieller.contains(a / d) and not fieller.contains((fieller.lower + fieller.upper) / 2)
    assert "unbounded" in fieller.as_text()
    # numerator and denominator both insignificant: every value is in the set
    whole = fieller_set(0.1, 0.2, 0.04, 0.0, 0.16)
    assert whole.kind == "whole line" and "whole real line" in whole.as_text()
    assert _grid_accepts(0.1, 0.2, 0.04, 0.0, 0.16, grid).all()


def test_share_result_follows_the_result_protocol(clustered):
    _, fit_y, fit_b = clustered
    share = share_of_total(fit_y.aggregate("event", min_e=0), fit_b.aggregate("event", min_e=0),
                           names=("y", "b"), scale=100)
    assert isinstance(share, ResultProtocol)
    frame = share.to_frame()
    assert list(frame["quantity"].unique()) == ["y", "b", "y + b", "share of y"]
    assert len(frame) == 4 * len(share.terms)
    rows = frame[frame["quantity"] == "share of y"]
    np.testing.assert_allclose(rows["estimate"], 100 * share.share)
    assert "Fieller" in str(share) and "<table" in share._repr_html_()
    for kind in ("auto", "share", "effects"):
        assert share.plot(kind=kind).get_xlabel() == "event time"
    with pytest.raises(InvalidOptionError):
        share.plot(kind="ratio")


def test_fieller_share_interval_covers_the_truth_in_a_monte_carlo():
    """200 small panels: the total is about 3 se from zero, so some sets are unbounded."""
    covered, bounded = [], []
    for seed in range(200):
        data = two_outcomes(seed)
        share = share_of_total(fit(data, "y").aggregate("simple"),
                               fit(data, "b").aggregate("simple"))
        covered.append(share.fieller[0].contains(0.5 / 0.4))
        bounded.append(share.fieller[0].bounded)
    assert 0.9 <= np.mean(covered) <= 0.99
    assert 0.5 < np.mean(bounded) < 1  # both kinds of sets occur


# ------------------------------------------------------------------ the chapter
@pytest.fixture(scope="module")
def small_study(tmp_path_factory):
    out = tmp_path_factory.mktemp("synthetic")
    write_synthetic_data(out, n_people=1500, seed=7)
    return Study(out)


def test_cost_shift_returns_the_documented_table(small_study):
    shift = cost_shift(small_study)
    table = shift.table
    assert list(table.columns) == COST_SHIFT_COLUMNS
    assert list(table["period"].unique()) == ["all trial months", "first 12 months"]
    assert list(table["quantity"].unique()) == list(COST_QUANTITIES)
    services = service_effects(small_study, outcomes=COST_PARTS).set_index(["period",
                                                                              "outcome"])
    indexed = table.set_index(["period", "quantity"])
    for period in ("all trial months", "first 12 months"):
        for outcome in COST_PARTS:
            np.testing.assert_allclose(
                indexed.loc[(period, outcome), ["estimate", "std_error", "true_att"]]
                .astype(float),
                services.loc[(period, outcome), ["estimate", "std_error", "true_att"]]
                .astype(float), rtol=1e-12)
        parts = indexed.loc[[(period, o) for o in COST_PARTS], "estimate"]
        assert indexed.loc[(period, "total"), "estimate"] == pytest.approx(parts.sum())
        share = indexed.loc[(period, COST_QUANTITIES[3])]
        assert share["estimate"] == pytest.approx(100 * parts.iloc[0] / parts.sum())
        truth = indexed.loc[[(period, o) for o in COST_PARTS], "true_att"]
        assert share["true_att"] == pytest.approx(100 * truth.iloc[0] / truth.sum())
        total = indexed.loc[(period, "total")]
        significant = total["ci_lower"] > 0 or total["ci_upper"] < 0
        if significant:
            assert np.isfinite([share["ci_lower"], share["ci_upper"]]).all()
            assert share["interval"].startswith("Fieller [")
        else:  # explicitly unbounded
            assert (share["ci_lower"], share["ci_upper"]) == (-np.inf, np.inf)
            assert "unbounded" in share["interval"]
            assert "do not pin down" in shift.describe()
    assert table["command"].str.startswith("evaluation estimate").sum() == 2
    path = shift.path_table
    assert list(path.columns) == ["event_time", *COST_SHIFT_COLUMNS[1:-1]]
    assert path["event_time"].min() == 0 and path["event_time"].max() == 36
    euros = path[path["quantity"] != COST_QUANTITIES[3]]
    assert euros["true_att"].notna().all()
    true_total = path.loc[path["quantity"] == "total", "true_att"].to_numpy()
    true_share = path.loc[path["quantity"] == COST_QUANTITIES[3], "true_att"].to_numpy()
    np.testing.assert_array_equal(np.isnan(true_share), true_total == 0)  # 0/0 is no share
    assert shift.plot().get_xlabel() == "event time"
    assert isinstance(shift, ResultProtocol) and "by event time" in str(shift)


@pytest.mark.parametrize(("municipal", "state", "says"), [
    (-5.0, 8.0, ["costs moved from the municipalities to the state", "Fieller CI"]),
    (6.0, -9.0, ["costs moved from the state to the municipalities", "Fieller CI"]),
    (-3.0, 1.5, ["only the municipalities' change is statistically significant",
                 "do not pin down"]),
    (0.5, -0.3, ["neither payer's change", "do not pin down"]),
    (4.0, 3.0, ["both payers' costs rose", "Fieller CI"]),
])
def test_cost_shift_sentence_follows_the_confidence_intervals(municipal, state, says):
    share = ShareOfTotal(terms=["overall"], event_time=[None],
                         estimates=np.array([[municipal, state]]),
                         vcov=np.array([[[1.0, -0.3], [-0.3, 1.0]]]),
                         names=tuple(COST_QUANTITIES), scale=100)
    table = share.to_frame().drop(columns=["term", "event_time"]).assign(
        period="all trial months", true_att=np.nan, command="")[COST_SHIFT_COLUMNS]
    text = CostShift(table, share, table).describe()
    assert text.startswith("* **All trial months**")
    for phrase in says:
        assert phrase in text
