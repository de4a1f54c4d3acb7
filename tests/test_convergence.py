"""Iterative fits warn or raise when they do not converge; none returns a silent last iterate.

Covers the matching propensity score (statsmodels Logit/Probit/GLM), the logit and the
inverse-probability-tilting propensity scores of Callaway-Sant'Anna (``_drdid``) and entropy
balancing.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from statsmodels.tools.sm_exceptions import ConvergenceWarning as StatsmodelsConvergenceWarning

from evaluation import Panel
from evaluation.errors import (
    ConvergenceError,
    ConvergenceWarning,
    EvaluationError,
    EvaluationWarning,
    InfeasibleBalanceError,
    MatchingError,
)
from evaluation.estimators import CallawaySantAnna
from evaluation.estimators._drdid import (
    Comparison,
    calibrated_propensity,
    dr_improved_did,
    fit_logit,
    logit_coefficients,
)
from evaluation.matching import match
from evaluation.matching.distance import _reissue, propensity_score
from evaluation.matching.weighting import entropy_balance
from evaluation.simulate import simulate_staggered


def convergence_records(caught):
    """Recorded warnings about convergence, the package's and statsmodels' own."""
    return [w for w in caught
            if issubclass(w.category, (ConvergenceWarning, StatsmodelsConvergenceWarning))]


@pytest.fixture(scope="module")
def selection():
    """Treatment that depends on z through a logit; u is noise."""
    rng = np.random.default_rng(1)
    n = 1000
    z = rng.normal(size=n)
    treated = z + rng.logistic(size=n) > 0
    return np.column_stack([z, rng.normal(size=n)]), treated


def test_convergence_classes_fit_the_hierarchy():
    assert issubclass(ConvergenceWarning, EvaluationWarning)
    assert issubclass(ConvergenceError, EvaluationError)
    assert issubclass(ConvergenceError, RuntimeError)


# ---------------------------------------------------------------------------------------------
# Matching propensity score


@pytest.mark.parametrize("link", ["logit", "probit"])
def test_score_at_the_iteration_limit_raises(selection, link):
    design, treated = selection
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ConvergenceError,
                           match=rf"the {link} propensity-score model did not converge: it "
                                 r"stopped after 1 of at most 1 Newton iterations.*one more "
                                 r"Newton step would still move .* mostly through 'age'"):
            propensity_score(design, treated, link, names=["age", "noise"], max_iter=1)
    # statsmodels' own warning is part of the error, not issued beside it
    assert not convergence_records(caught)


def test_weighted_score_at_the_iteration_limit_raises(selection):
    # statsmodels' GLM does not warn at all when IRLS stops at maxiter
    design, treated = selection
    with pytest.raises(ConvergenceError, match=r"stopped after 1 of at most 1 IRLS iterations"):
        propensity_score(design, treated, weights=np.full(len(treated), 2.0),
                         names=["age", "noise"], max_iter=1)


def test_badly_scaled_covariate_stalls_newton_and_matching_refuses_it(selection):
    design, treated = selection
    data = pd.DataFrame({"t": treated.astype(int), "income": design[:, 0] * 1e-6,
                         "noise": design[:, 1]})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ConvergenceError,
                           match=r"stopped after 200 of at most 200 Newton iterations "
                                 r"\(statsmodels: Maximum Likelihood optimization failed to "
                                 r"converge.*Rescale 'income'"):
            match(data, treatment="t", covariates=["income", "noise"])
    assert not convergence_records(caught)
    # rescaled, the same model converges silently
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        match(data.assign(income=data["income"] * 1e6), treatment="t",
              covariates=["income", "noise"])
    assert not convergence_records(caught)


def test_stop_at_floating_point_precision_warns_and_keeps_the_scores(selection):
    design, treated = selection
    converged = propensity_score(design, treated)
    with pytest.warns(ConvergenceWarning,
                      match=r"stopped after 5 of at most 5 Newton iterations.*at "
                            r"floating-point precision"):
        stopped = propensity_score(design, treated, max_iter=5)
    np.testing.assert_allclose(stopped, converged, atol=1e-12)


def test_separating_covariate_is_named():
    design = np.column_stack([[5.0, 6, 7, 1, 2, 3, 4, 2.5], [1.0, 2, 1, 2, 1, 2, 1, 2]])
    treated = np.array([1, 1, 1, 0, 0, 0, 0, 0], dtype=bool)
    with pytest.raises(MatchingError,
                       match=r"separates treated and control units perfectly .*'x' predicts "
                             r"treatment exactly on its own \(every treated unit has x >= 5, "
                             r"every control x <= 4\).*exact=\[\.\.\.\]"):
        propensity_score(design, treated, names=["x", "z"])


def test_high_cardinality_categorical_is_named(selection):
    z, treated = selection[0][:, 0], selection[1].copy()
    region = np.arange(len(z)) % 40
    treated[np.isin(region, [3, 7])] = True
    treated[region == 11] = False
    indicators = [(region == level).astype(float) for level in range(1, 40)]
    names = ["z", *(f"region[{level}]" for level in range(1, 40))]
    with pytest.raises(MatchingError,
                       match=r"quasi-complete separation\); the categorical 'region' has 3 "
                             r"levels whose units are all treated or all controls "
                             r"\(region\[3\], region\[7\], region\[11\]\): too many small "
                             r"levels"):
        propensity_score(np.column_stack([z, *indicators]), treated, names=names)


def test_well_posed_scores_issue_no_convergence_warning(selection):
    design, treated = selection
    data = pd.DataFrame({"t": treated.astype(int), "z": design[:, 0], "u": design[:, 1],
                         "w": np.linspace(0.5, 2, len(treated))})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for distance in ("logit", "probit"):
            match(data, treatment="t", covariates=["z", "u"], distance=distance)
            match(data, treatment="t", covariates=["z", "u"], distance=distance, weights="w",
                  replace=True)
    assert not convergence_records(caught)


def test_other_warnings_of_a_fit_are_issued_again():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.warn("Maximum Likelihood optimization failed", StatsmodelsConvergenceWarning,
                      stacklevel=1)
        warnings.warn("overflow encountered in exp", RuntimeWarning, stacklevel=1)
    with pytest.warns(RuntimeWarning, match="overflow encountered in exp"):
        reported = _reissue(caught)
    assert reported == ["Maximum Likelihood optimization failed"]


# ---------------------------------------------------------------------------------------------
# Callaway-Sant'Anna propensity scores


def separated_design(level_group: str):
    """Logit data with an indicator whose 8 units are all treated or all comparisons."""
    rng = np.random.default_rng(0)
    n = 300
    z = rng.normal(size=n)
    d = (z + rng.logistic(size=n) > 0).astype(float)
    level = np.zeros(n)
    level[np.flatnonzero(d == (1.0 if level_group == "treated" else 0.0))[:8]] = 1
    return d, np.column_stack([np.ones(n), z, level]), np.ones(n)


def test_cs_logit_with_a_comparison_only_level_warns():
    d, x, w = separated_design("comparison")
    with pytest.warns(ConvergenceWarning,
                      match=r"propensity-score logit did not converge: it stopped after 100 "
                            r"of at most 100 Newton-Raphson iterations.*'covariate column 2' "
                            r"predicts treatment exactly on its own \(all 8 units with "
                            r"covariate column 2 = 1 are controls\).*method='reg'"):
        gamma = logit_coefficients(d, x, w)
    assert gamma[2] < -50  # the last iterate, on its way to minus infinity


def test_cs_logit_with_a_treated_only_level_warns_instead_of_failing():
    d, x, w = separated_design("treated")
    with pytest.warns(ConvergenceWarning,
                      match=r"did not converge: .*X'WX became singular as fitted "
                            r"probabilities reached 0 or 1.*all 8 units with covariate column "
                            r"2 = 1 are treated"):
        ps = fit_logit(d, x, w)
    assert not ps.converged
    assert ps.ps.max() >= 0.999  # Callaway-Sant'Anna leaves such dr/ipw cells NaN


def test_cs_logit_stopped_at_floating_point_precision_warns():
    d, x, w = separated_design("none")
    x = x[:, :2]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        converged = fit_logit(d, x, w)
    assert converged.converged and not convergence_records(caught)
    with pytest.warns(ConvergenceWarning, match=r"at floating-point precision"):
        stopped = logit_coefficients(d, x, w, max_iter=converged.iterations - 1)
    np.testing.assert_allclose(stopped, logit_coefficients(d, x, w), atol=1e-9)


def test_tilting_on_separated_data_warns_and_the_improved_estimator_is_nan():
    rng = np.random.default_rng(0)
    n = 300
    z = rng.normal(size=n)
    d = (z > 0).astype(float)
    x = np.column_stack([np.ones(n), z])
    with np.errstate(over="ignore"):
        with pytest.warns(ConvergenceWarning,
                          match=r"calibrated propensity score \(inverse probability "
                                r"tilting\) did not converge.*'covariate column 1' predicts "
                                r"treatment exactly.*The scores are those of the last "
                                r"iterate"):
            calibrated_propensity(d, x, np.ones(n))
        with pytest.warns(ConvergenceWarning, match=r"The ATT\(g,t\) of this comparison is "
                                                    r"NaN"):
            att, influence, _ = dr_improved_did(rng.normal(size=n), Comparison(d, x, np.ones(n)))
    assert np.isnan(att)
    assert not influence.any()


@pytest.fixture(scope="module")
def separated_panel():
    """Staggered panel whose covariate 'sep' separates cohort 3 from the never treated."""
    sim = simulate_staggered(n_units=600, n_periods=6, cohorts=(3, 5), dynamic=0.2,
                             covariate_selection=0.8, covariate_trend=0.2, seed=21)
    data = sim.data.copy()
    cohort = data["unit"].map(sim.units.set_index("unit")["cohort"])
    spread = np.random.default_rng(3).normal(size=sim.units["unit"].max() + 1)
    size = np.abs(spread[data["unit"].to_numpy()])
    data["sep"] = np.where(cohort == 3, 5 + size, -size)
    panel = Panel(data, unit="unit", time="time", outcome="y", cohort="cohort",
                  never_treated=0, covariates=["x", "sep"])
    return panel, Panel(sim.data, unit="unit", time="time", outcome="y", cohort="cohort",
                        never_treated=0, covariates=["x"])


@pytest.mark.parametrize("method", ["dr", "ipw", "dr_improved"])
def test_callaway_santanna_on_separated_data(separated_panel, method):
    panel, _ = separated_panel
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with np.errstate(over="ignore"):
            fit = CallawaySantAnna(method=method).fit(panel)
    messages = [str(w.message) for w in convergence_records(caught)]
    assert messages, "separation went unreported"
    assert all("'covariate column 2' predicts treatment exactly" in m for m in messages)
    table = fit.table
    cohort3 = (table["group"] == table["group"].min()).to_numpy()
    assert table.loc[cohort3, "estimate"].isna().all()
    assert table.loc[~cohort3, "estimate"].notna().all()


@pytest.mark.parametrize("method", ["dr", "ipw", "reg", "dr_improved"])
def test_well_posed_callaway_santanna_issues_no_convergence_warning(separated_panel, method):
    _, panel = separated_panel
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        CallawaySantAnna(method=method).fit(panel)
    assert not convergence_records(caught)


# ---------------------------------------------------------------------------------------------
# Entropy balancing


def hard_balance_problem():
    """Treated means reachable only with nearly all weight on one control."""
    rng = np.random.default_rng(10)
    k = int(rng.integers(1, 4))
    n_controls = int(rng.integers(k + 2, 12))
    controls = rng.normal(size=(n_controls, k)) * rng.choice([1, 1e3, 1e-3], size=k)
    tilt = rng.normal(size=n_controls) * 30
    weights = np.exp(tilt - tilt.max())
    target = weights / weights.sum() @ controls
    moments = np.r_[np.repeat(target[None], 3, axis=0), controls]
    treated = np.r_[np.ones(3), np.zeros(n_controls)].astype(bool)
    return moments, treated, [f"x{j}" for j in range(k)]


def test_entropy_balancing_that_cannot_converge_in_time_raises():
    moments, treated, names = hard_balance_problem()
    with pytest.raises(InfeasibleBalanceError,
                       match=r"entropy balancing did not converge: after 1 of at most 1 "
                             r"trust-region Newton iterations \(.*\) and a root polish of \d+ "
                             r"evaluations \(.*\), the reweighted control mean of 'x\d' is "
                             r"still .* \(tolerance 1e-10\)\. The iteration limit was reached"):
        entropy_balance(moments, treated, names, max_iter=1)


def test_entropy_balancing_that_converges_balances_without_warning():
    moments, treated, names = hard_balance_problem()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        weights = entropy_balance(moments, treated, names)
    assert not convergence_records(caught)
    reweighted = np.average(moments[~treated], axis=0, weights=weights[~treated])
    scale = moments[~treated].std(axis=0)
    assert np.all(np.abs(reweighted - moments[treated].mean(axis=0)) / scale <= 1e-10)


def test_separated_propensity_score_gives_a_nan_cell_not_a_linalg_error():
    """Three treated units among 42, eight covariates: the logit separates them.

    Its information matrix is then singular; the cell is NaN with the reason, never a
    LinAlgError from inverting it (as happened in small report subgroups).
    """
    rng = np.random.default_rng(0)
    n, periods, k = 42, 4, 8
    x = rng.normal(size=(n, k))
    frame = pd.DataFrame({
        "unit": np.repeat(np.arange(n), periods), "time": np.tile(np.arange(1, 5), n),
        "cohort": np.repeat(np.where(np.arange(n) < 3, 3, 0), periods),
        "y": rng.normal(size=n * periods),
        **{f"x{j}": np.repeat(x[:, j], periods) for j in range(k)}})
    panel = Panel(frame, unit="unit", time="time", outcome="y", cohort="cohort",
                  never_treated=0, covariates=[f"x{j}" for j in range(k)])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = CallawaySantAnna().fit(panel)
    cells = [str(w.message) for w in caught if w.category.__name__ == "CellEstimationWarning"]
    assert len(cells) == 3
    assert all("the propensity score is not identified" in text for text in cells)
    assert np.isnan(result.to_frame()["estimate"]).all()
