"""Truth recovery and Monte Carlo calibration of the Callaway-Sant'Anna estimator."""

import warnings

import numpy as np
import pytest
from _builders import staggered_panel

from evaluation import Panel
from evaluation.errors import EvaluationWarning
from evaluation.estimators import CallawaySantAnna
from evaluation.simulate import simulate_municipalities, simulate_staggered

#: Staggered adoption with dynamic effects that differ strongly by cohort and selection on
#: a covariate that also shifts trends (parallel trends hold only conditionally on x).
HETEROGENEOUS = dict(n_units=1000, n_periods=8, cohorts=(4, 6, 8), dynamic=0.3,
                     cohort_effects=(2.0, 1.0, 0.4), covariate_selection=0.8,
                     covariate_trend=0.15)


def test_municipal_heterogeneous_scenario_event_study_within_three_se():
    sim = simulate_municipalities("heterogeneous", seed=1)
    panel = Panel(sim.data, unit="municipality", time="t", outcome="unemployment_rate",
                  cohort="first_treated", never_treated=0, cluster="ely")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EvaluationWarning)
        event = CallawaySantAnna(method="reg").fit(panel).aggregate("event", min_e=-12,
                                                                    max_e=24)
    truth = sim.true_effects("unemployment_rate", kind="event").set_index("event_time")["att"]
    table = event.table.set_index("event_time")
    z = (table["estimate"] - truth.reindex(table.index)) / table["std_error"]
    assert len(z) == 37 and z.notna().all()
    assert np.abs(z).max() < 3  # observed 2.1
    assert truth[(truth.index >= 0) & (truth.index <= 24)].mean() < -0.5  # a real effect


@pytest.mark.slow
def test_monte_carlo_coverage_and_uniform_bands():
    """200 replications: 95 % intervals and simultaneous bands cover the truth."""
    covered, jointly, critical = [], [], []
    for rep in range(200):
        sim = simulate_staggered(seed=1000 + rep, **HETEROGENEOUS)
        panel = staggered_panel(sim.data, covariates=["x"])
        simple = CallawaySantAnna().fit(panel).aggregate("simple").to_frame()
        truth = sim.true_effects("y", kind="overall")["att"].iat[0]
        covered.append(simple["ci_lower"].iat[0] <= truth <= simple["ci_upper"].iat[0])
        boot = CallawaySantAnna(se="bootstrap", draws=499, seed=rep).fit(panel)
        event = boot.aggregate("event")
        band = event.to_frame(include_overall=False, uniform=True).set_index("event_time")
        true_event = sim.true_effects("y", kind="event").set_index("event_time")["att"]
        inside = ((band["uniform_lower"] <= true_event.reindex(band.index))
                  & (true_event.reindex(band.index) <= band["uniform_upper"]))
        jointly.append(bool(inside.all()))
        critical.append(event.critical_value)
    assert 0.92 <= np.mean(covered) <= 0.98  # observed 0.975
    assert 0.90 <= np.mean(jointly) <= 0.99  # observed 0.955
    assert min(critical) > 1.96  # observed minimum 2.60 (mean 2.79)
