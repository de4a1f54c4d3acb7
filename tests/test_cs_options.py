"""Options of the Callaway-Sant'Anna estimator beyond the csdid grid."""

import contextlib
import io

import numpy as np
import pytest
from _builders import staggered_panel

from evaluation.errors import PanelError
from evaluation.estimators import CallawaySantAnna
from evaluation.estimators._drdid import Comparison, calibrated_propensity, logit_coefficients
from evaluation.simulate import simulate_staggered


@pytest.fixture(scope="module")
def sim():
    return simulate_staggered(n_units=1500, n_periods=6, cohorts=(3, 5), dynamic=0.2,
                              covariate_selection=0.8, covariate_trend=0.2, seed=21)


def test_logit_matches_statsmodels(sim):
    import statsmodels.api as sm

    data = sim.units
    d = (data["cohort"] > 0).to_numpy(float)
    x = np.column_stack([np.ones(len(d)), data["x"], data["x"] ** 2])
    w = data["weight"].to_numpy()
    reference = sm.GLM(d, x, family=sm.families.Binomial(), freq_weights=w).fit(tol=1e-14)
    np.testing.assert_allclose(logit_coefficients(d, x, w), reference.params, atol=1e-10)


def test_inverse_probability_tilting_balances_covariates_exactly(sim):
    data = sim.units
    d = (data["cohort"] > 0).to_numpy(float)
    x = np.column_stack([np.ones(len(d)), data["x"]])
    w = data["weight"].to_numpy()
    ps = calibrated_propensity(d, x, w)
    treated = (w * d) @ x
    reweighted = (w * (1 - d) * ps / (1 - ps)) @ x
    np.testing.assert_allclose(reweighted, treated, rtol=1e-8)


def test_improved_dr_without_covariates_is_the_difference_of_means(sim):
    rng = np.random.default_rng(0)
    d = (rng.random(400) < 0.4).astype(float)
    dy = rng.normal(size=400) + d
    comparison = Comparison(d, np.ones((400, 1)), np.ones(400))
    from evaluation.estimators._drdid import dr_improved_did

    att, influence, weights = dr_improved_did(dy, comparison)
    assert att == pytest.approx(dy[d == 1].mean() - dy[d == 0].mean(), abs=1e-10)
    assert influence.mean() == pytest.approx(0.0, abs=1e-12)
    # the outcome weights of the difference of means: 1 / n_group in each group
    np.testing.assert_allclose(weights, np.where(d == 1, 1 / d.sum(), 1 / (1 - d).sum()))


def test_improved_dr_agrees_with_dr_when_the_outcome_model_is_right(sim):
    panel = staggered_panel(sim.data, covariates=["x"])
    dr = CallawaySantAnna(method="dr").fit(panel).aggregate("simple").overall
    improved = CallawaySantAnna(method="dr_improved").fit(panel).aggregate("simple").overall
    assert improved["estimate"].iat[0] == pytest.approx(dr["estimate"].iat[0], abs=0.02)
    assert improved["std_error"].iat[0] == pytest.approx(dr["std_error"].iat[0], rel=0.1)
    truth = sim.true_effects("y", kind="overall")["att"].iat[0]
    assert abs(improved["estimate"].iat[0] - truth) < 3 * improved["std_error"].iat[0]


def test_formula_covariates_equal_the_column_list(sim):
    listed = CallawaySantAnna().fit(staggered_panel(sim.data, covariates=["x"]))
    formula = CallawaySantAnna(formula="~ x").fit(staggered_panel(sim.data, covariates=["x"]))
    np.testing.assert_allclose(formula.table["estimate"], listed.table["estimate"], atol=1e-12)
    np.testing.assert_allclose(formula.influence, listed.influence, atol=1e-12)
    data = sim.data.assign(region=(sim.data["x"] > 0.5).astype(int))
    panel = staggered_panel(data, covariates=["x", "region"])
    rich = CallawaySantAnna(formula="~ x + I(x ** 2) + C(region)").fit(panel)
    dummies = data.assign(x2=data["x"] ** 2)
    explicit = CallawaySantAnna().fit(staggered_panel(dummies, covariates=["x", "x2", "region"]))
    np.testing.assert_allclose(rich.table["estimate"], explicit.table["estimate"], atol=1e-10)
    with pytest.raises(PanelError, match=r"Declare every variable of the formula"):
        CallawaySantAnna(formula="~ no_such_column").fit(panel)


def test_time_varying_covariates_come_from_the_base_period_as_in_csdid(sim):
    from csdid.att_gt import ATTgt

    rng = np.random.default_rng(3)
    data = sim.data.assign(z=sim.data["x"] + 0.3 * rng.standard_normal(len(sim.data)))
    ours = CallawaySantAnna(method="dr").fit(staggered_panel(data, covariates=["z"]))
    reference = ATTgt(yname="y", tname="time", idname="unit", gname="cohort", data=data,
                      xformla="y ~ z", control_group="nevertreated")
    with contextlib.redirect_stdout(io.StringIO()):
        reference.fit(est_method="dr", bstrap=False)
    np.testing.assert_allclose(ours.table["estimate"], reference.results["att"], atol=1e-8)
    np.testing.assert_allclose(ours.table["std_error"], np.asarray(reference.results["se"],
                                                                   dtype=float), atol=1e-8)
