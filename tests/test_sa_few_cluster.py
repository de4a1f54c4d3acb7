"""Few-cluster inference of the Sun-Abraham estimator: CR2 and the wild cluster bootstrap.

CR2 is checked against R clubSandwich (``tests/reference/cr2_clubsandwich.R`` writes
``cr2_clubsandwich_sa.json``) and against CR2 of the dense cohort x relative-period dummy
regression; the wild bootstrap of an event-time contrast against ``wildboottest``'s test
of ``R'beta = 0`` under full enumeration.
"""

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _builders import staggered_panel
from reference.sa_previous import regression_data, regression_panel

from evaluation.errors import FewClustersWarning, InvalidOptionError
from evaluation.estimators._sun_abraham_design import (
    InteractionDesign,
    demeaned_cells,
    fit_cells,
)
from evaluation.estimators._sun_abraham_inference import cluster_squares, contrast_problems
from evaluation.estimators.did import TwoWayFixedEffects, fit_two_way
from evaluation.estimators.registry import get_estimator
from evaluation.estimators.sun_abraham import SunAbraham
from evaluation.inference.cr2 import cr2_two_way
from evaluation.inference.wild import _Draws, _p_value, bootstrap_weights, wild_test
from evaluation.options import DEFAULT_RANDOM_SEED

REFERENCE = Path(__file__).parent / "reference"
VALUES = json.loads((REFERENCE / "cr2_clubsandwich_sa.json").read_text())
KEYS = [key for key in VALUES if key != "versions"]


def _fit_quietly(model, panel):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FewClustersWarning)
        return model.fit(panel)


def _reference_panel(name, weighting, clustering):
    data = pd.read_csv(REFERENCE / f"cr2_{name}.csv")
    return staggered_panel(data, weights="weight" if weighting == "weight" else None,
                           cluster="cluster" if clustering == "cluster" else None)


@pytest.mark.parametrize("key", KEYS)
def test_cr2_matches_clubsandwich(key):
    name, weighting, clustering = key.split("/")
    reference = VALUES[key]
    panel = _reference_panel(name, weighting, clustering)
    fixed = _fit_quietly(SunAbraham(se="cr2", share_uncertainty=False), panel)
    assert fixed.info["se"] == "cr2 (Bell-McCaffrey df)"
    cells = fixed.cohort_effects
    assert cells["cohort"].tolist() == reference["cohort"]
    assert cells["event_time"].tolist() == reference["event_time"]
    np.testing.assert_allclose(cells["estimate"], reference["estimate"], rtol=0, atol=1e-8)
    np.testing.assert_allclose(fixed.cohort_vcov, reference["vcov"], rtol=0, atol=1e-8)
    np.testing.assert_allclose(cells["std_error"], reference["std_error"], rtol=0, atol=1e-8)
    np.testing.assert_allclose(cells["df"], reference["df"], rtol=0, atol=1e-8)
    # event-time effects and the overall effect: contrasts of the cell coefficients
    weights = np.array(reference["contrast_weights"])
    frame = fixed.to_frame()
    assert frame["term"].tolist() == reference["contrast_terms"]
    np.testing.assert_allclose(weights[:-1].sum(axis=0), cells["weight"], rtol=0, atol=1e-12)
    for column, key_ in (("estimate", "contrast_estimate"),
                         ("std_error", "contrast_std_error"),
                         ("p_value", "contrast_p_value")):
        np.testing.assert_allclose(frame[column], reference[key_], rtol=0, atol=1e-8)
    df = pd.concat([fixed.table["df"], fixed.overall["df"]])
    np.testing.assert_allclose(df, reference["contrast_df"], rtol=0, atol=1e-8)
    linear = np.array(reference["contrast_df_linear"], dtype=float)
    if weighting == "none":  # linear_contrast agrees with Wald_test's HTZ df (q = 1)
        np.testing.assert_allclose(linear, reference["contrast_df"], rtol=1e-10)
    np.testing.assert_allclose((frame["estimate"] / frame["std_error"]) ** 2,
                               reference["contrast_F"], rtol=1e-8)
    # with the share uncertainty: same estimates and df, the share term added to the variance
    full = _fit_quietly(SunAbraham(se="cr2"), panel)
    pd.testing.assert_series_equal(full.table["df"], fixed.table["df"])
    variance = full.table["std_error"] ** 2 - fixed.table["std_error"] ** 2
    assert (variance >= -1e-14).all() and (variance > 1e-6).any()
    np.testing.assert_allclose(full.table["estimate"], fixed.table["estimate"], rtol=0,
                               atol=1e-14)


def _dense_cells(panel, design):
    """The ``(kept rows x cells)`` indicator matrix of ``design`` aligned with the panel."""
    dense = np.zeros((panel.n_obs, design.n_cells))
    kept = np.flatnonzero(design.rows)
    inside = design.cell >= 0
    dense[kept[inside], design.cell[inside]] = 1.0
    return dense


@pytest.mark.parametrize("control", ["never", "last"])
def test_cr2_equals_dense_dummy_regression(control):
    """Unbalanced, weighted, 25 clusters: CR2 of the cell-code fit equals ``cr2_two_way`` on
    the dynamic TWFE path with dense cohort x relative-period dummies."""
    panel = regression_panel(regression_data(), True, True)
    model = SunAbraham(control=control, se="cr2")
    fit = _fit_quietly(model, panel)
    design = InteractionDesign.build(panel, model)
    dense = fit_two_way(panel, _dense_cells(panel, design)[design.rows], rows=design.rows)
    data = dense.partialled
    cr2 = cr2_two_way(data.x, data.y - data.x @ dense.params, data.weights, data.unit,
                      data.time, data.cluster)
    np.testing.assert_allclose(fit.cohort_effects["estimate"], dense.params, rtol=1e-10)
    scale = np.abs(cr2.vcov).max()
    np.testing.assert_allclose(fit.cohort_vcov, cr2.vcov, rtol=1e-9, atol=1e-12 * scale)
    np.testing.assert_allclose(fit.cohort_effects["df"], cr2.dfs, rtol=1e-9)
    cells = fit.cohort_effects
    for row in fit.table.itertuples():
        contrast = np.where(cells["event_time"] == row.event_time, cells["weight"], 0.0)
        assert row.df == pytest.approx(cr2.df(contrast), rel=1e-9)
    # the partialled regression of the cell-code fit is the dense one
    mine = fit_cells(panel, design, partialled=True).partialled
    np.testing.assert_allclose(mine.x, data.x, rtol=0, atol=1e-12)
    np.testing.assert_allclose(mine.y, data.y, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(mine.cluster, data.cluster)


wildboottest = pytest.importorskip("wildboottest.wildboottest")


def _wildboottest(x, y, cluster, r, restricted):
    """``wildboottest``'s WCR/WCU test of ``r'beta = 0`` ("11", Rademacher, enumerated)."""
    boot = wildboottest.WildboottestCL(X=x, Y=y, cluster=cluster, R=r, B=9999, seed=1,
                                       parallel=False)
    boot.get_scores(bootstrap_type="11", impose_null=restricted)
    with warnings.catch_warnings():  # "2^G < the number of boot iterations"
        warnings.simplefilter("ignore", UserWarning)
        boot.get_weights(weights_type="rademacher")
    boot.get_numer()
    boot.get_denom()
    boot.get_tboot()
    boot.get_vcov()
    boot.get_tstat()
    boot.get_pvalue(pval_type="two-tailed")
    return boot


@pytest.mark.parametrize("null", ["restricted", "unrestricted"])
@pytest.mark.parametrize("weighting", ["none", "weight"])
def test_wild_event_contrast_matches_wildboottest(null, weighting):
    """Event time 0 (two cohorts, 8 clusters, 256 sign vectors): the reparametrised bootstrap
    equals wildboottest's test of the contrast p'delta on the demeaned regression."""
    panel = _reference_panel("unbalanced", weighting, "cluster")
    model = SunAbraham(se="wild", wild_null=null)
    with pytest.warns(FewClustersWarning, match="only 3 of 8 clusters"):
        fit = model.fit(panel)
    kind = "WCR" if null == "restricted" else "WCU"
    assert fit.info["se"] == f"wild cluster bootstrap ({kind}, Rademacher, 256 draws, " \
                             "full enumeration)"
    assert "seed" not in fit.info
    design = InteractionDesign.build(panel, model)
    data = fit_cells(panel, design, partialled=True).partialled
    cells = fit.cohort_effects
    contrast = np.where(cells["event_time"] == 0, cells["weight"], 0.0)
    assert np.count_nonzero(contrast) == 2
    root = np.ones(data.y.size) if data.weights is None else np.sqrt(data.weights)
    reference = _wildboottest(data.x * root[:, None], data.y * root, data.cluster, contrast,
                              null == "restricted")
    problem = contrast_problems(data.x, data.y, data.cluster, contrast[None, :],
                                weights=data.weights, null=null)[0]
    x, y, cluster = cluster_squares(data.x.__getitem__, data.y, data.weights, data.cluster)
    squared = contrast_problems(x, y, cluster, contrast[None, :], null=null)[0]
    v, enumerated = bootstrap_weights("rademacher", 8, 9999, np.random.default_rng(0))
    mine = wild_test(problem, v, enumerated, interval=False)
    row = fit.table.index[fit.table["event_time"] == 0][0]
    assert problem.estimate == pytest.approx(fit.table.loc[row, "estimate"], abs=1e-12)
    # wildboottest's t statistics use the CR1 factors, the package's CR0 (same p-values)
    n, k, g = data.y.size, data.x.shape[1], 8
    factor = np.sqrt((n - 1) / (n - k) * g / (g - 1))
    t_ref = float(np.ravel(reference.t_stat)[0])
    assert mine.t == pytest.approx(t_ref * factor, abs=1e-8)
    ties = np.isclose(np.abs(reference.t_boot), abs(t_ref), rtol=1e-10, atol=0)
    exact = np.mean((abs(t_ref) < np.abs(reference.t_boot)) & ~ties)
    assert ties.sum() == (2 if null == "restricted" else 0)
    assert mine.p_value == pytest.approx(exact, abs=1e-8)
    assert fit.table.loc[row, "p_value"] == pytest.approx(exact, abs=1e-8)
    np.testing.assert_allclose(np.sort(np.abs(mine.t_boot)),
                               np.sort(np.abs(reference.t_boot)) * factor, rtol=0, atol=1e-8)
    # the estimator's path: each cluster's rows replaced by a QR factor (same cross products)
    compressed = wild_test(squared, v, enumerated, interval=False)
    assert compressed.t == pytest.approx(mine.t, rel=1e-10)
    np.testing.assert_allclose(compressed.t_boot, mine.t_boot, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("kind, null", [("webb", "restricted"), ("mammen", "unrestricted")])
def test_wild_intervals_invert_the_test(kind, null):
    """The table's intervals are where the bootstrap p-value crosses alpha (event times and
    the overall effect), and the bootstrap keeps the analytic standard errors."""
    panel = regression_panel(regression_data(), False, True)
    model = SunAbraham(se="wild", wild_weights=kind, wild_null=null, draws=999, seed=4,
                       alpha=0.1)
    fit = _fit_quietly(model, panel)
    assert fit.info["se"] == f"wild cluster bootstrap ({'WCR' if null == 'restricted' else 'WCU'}" \
                             f", {kind.capitalize()}, 999 draws)"
    assert fit.info["seed"] == 4
    analytic = _fit_quietly(SunAbraham(), panel)
    pd.testing.assert_series_equal(fit.table["std_error"], analytic.table["std_error"])
    design = InteractionDesign.build(panel, model)
    data = fit_cells(panel, design, partialled=True).partialled
    cells = fit.cohort_effects
    events = np.array([np.where(cells["event_time"] == e, cells["weight"], 0.0)
                       for e in fit.table["event_time"]])
    overall = events[fit.table["event_time"].to_numpy() >= 0].mean(axis=0)
    v, _ = bootstrap_weights(kind, 25, 999, np.random.default_rng(4))
    cells = demeaned_cells(panel, design)
    np.testing.assert_allclose(cells.rows(np.arange(data.y.size)), data.x, rtol=0, atol=1e-13)
    x, y, cluster = cluster_squares(cells.rows, cells.y, cells.weights, cells.cluster)
    problems = contrast_problems(x, y, cluster, events, null=null)
    rows = [(fit.table, i, problem) for i, problem in enumerate(problems)]
    rows.append((fit.overall, 0, contrast_problems(x, y, cluster, overall[None, :],
                                                   null=null)[0]))
    for frame, i, problem in rows:
        draws = _Draws(problem, v)
        assert problem.estimate == pytest.approx(frame["estimate"].iloc[i], abs=1e-10)
        assert frame["p_value"].iloc[i] == _p_value(problem, draws, 0.0)
        lower, upper = frame["ci_lower"].iloc[i], frame["ci_upper"].iloc[i]
        assert lower < problem.estimate < upper
        for end, inside in ((lower, 1.0), (upper, -1.0)):
            step = 1e-7 * problem.std_error
            p_in = _p_value(problem, draws, end + inside * step)
            p_out = _p_value(problem, draws, end - inside * step)
            assert p_out <= 0.1 < p_in
            assert abs(p_in - 0.1) <= 2 / 999 and abs(p_out - 0.1) <= 2 / 999


def _four_of_twenty(seed=4):
    """20 clusters of 4 to 16 units, 8 periods; clusters 0-1 adopt in 4, 2-3 in 6."""
    rng = np.random.default_rng(seed)
    sizes = np.array([16, 15, 14, 13, 12, 12, 11, 11, 10, 10, 9, 9, 8, 8, 7, 7, 6, 6, 5, 4])
    cluster = np.repeat(np.arange(sizes.size), sizes)
    unit = np.repeat(np.arange(cluster.size), 8)
    time_ = np.tile(np.arange(1, 9), cluster.size)
    cohort = np.select([cluster < 2, cluster < 4], [4, 6], 0)[unit]
    y = (rng.normal(size=cluster.size)[unit] + 0.1 * time_
         + rng.normal(size=(sizes.size, 8))[cluster[unit], time_ - 1]
         + ((cohort > 0) & (time_ >= cohort)) + rng.normal(size=unit.size))
    return staggered_panel(pd.DataFrame({"unit": unit, "time": time_, "y": y, "cohort": cohort,
                                         "cluster": cluster[unit]}), cluster="cluster")


def test_few_cluster_warning_and_labels():
    panel = _four_of_twenty()
    for se, label, advice in (
            ("analytic", None, "use se='cr2'"), ("cr2", "cr2 (Bell-McCaffrey df)",
                                                 "the recommended inference here"),
            ("wild", "wild cluster bootstrap (WCR, Rademacher, 9999 draws)",
             "se='cr2' (Bell-McCaffrey df) is recommended")):
        with pytest.warns(FewClustersWarning, match="only 4 of 20 clusters") as caught:
            fit = SunAbraham(se=se, draws=9999).fit(panel)
        assert len(caught) == 1 and advice in str(caught[0].message)
        assert fit.warnings == [f"FewClustersWarning: {caught[0].message}"]
        assert fit.info.get("se") == label
        if se == "wild":
            assert fit.info["seed"] == DEFAULT_RANDOM_SEED  # 2^20 > draws: random draws
            assert {"p_value", "ci_lower", "ci_upper"} <= set(fit.overall)
            assert "df" not in fit.table
        if se == "cr2":
            assert (fit.table["df"] > 0).all() and fit.overall["df"].iloc[0] > 0
            assert "p_value" not in fit.table


def test_registry_passes_the_inference_options():
    entry = get_estimator("sa")
    for option in ("se", "draws", "seed", "wild_weights", "wild_null"):
        assert entry.options[option] == option


def test_without_a_cluster_column_units_are_the_clusters_as_in_twfe():
    """No cluster column: CR2 and the bootstrap cluster by unit (as TWFE does), i.e. the
    same numbers as with a cluster column holding the unit ids; CR2 on more clusters than
    it handles raises TWFE's error."""
    data = pd.read_csv(REFERENCE / "cr2_balanced.csv")
    plain = staggered_panel(data)
    by_unit = staggered_panel(data.assign(region=data["unit"]), cluster="region")
    for model in (SunAbraham(se="cr2"), SunAbraham(se="wild", wild_weights="webb", draws=499)):
        first, second = _fit_quietly(model, plain), _fit_quietly(model, by_unit)
        pd.testing.assert_frame_equal(first.to_frame(), second.to_frame(), rtol=1e-12)
    np.testing.assert_allclose(
        _fit_quietly(SunAbraham(se="cr2"), plain).cohort_vcov,
        VALUES["balanced/none/unit"]["vcov"], rtol=0, atol=1e-8)
    n_units = 20_001
    big = pd.DataFrame({"unit": np.repeat(np.arange(n_units), 3),
                        "time": np.tile([1, 2, 3], n_units),
                        "cohort": np.repeat(np.where(np.arange(n_units) % 2 == 0, 3, 0), 3)})
    big["y"] = np.random.default_rng(0).normal(size=len(big))
    panel = staggered_panel(big)
    messages = []
    for model in (TwoWayFixedEffects(dynamic=True, se="cr2"), SunAbraham(se="cr2")):
        with pytest.raises(InvalidOptionError, match="se='analytic'") as error:
            model.fit(panel)
        messages.append(str(error.value))
    assert messages[0] == messages[1]
    assert "at most 20000 clusters (20001 given)" in messages[1]
