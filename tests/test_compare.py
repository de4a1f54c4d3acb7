import matplotlib
import numpy as np
import pytest

from evaluation import Panel
from evaluation.errors import InvalidOptionError
from evaluation.estimators.compare import COLUMNS, compare_estimators
from evaluation.simulate import simulate_staggered

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def comparison():
    sim = simulate_staggered(n_units=1500, n_periods=8, cohorts=(4, 6), dynamic=0.3,
                             cohort_effects=(2.0, 0.5), seed=29)
    panel = Panel(sim.data, unit="unit", time="time", outcome="y", cohort="cohort",
                  never_treated=0)
    return sim, compare_estimators(panel, min_e=-3, max_e=3)


def test_tidy_table_has_every_estimator(comparison):
    _, result = comparison
    table = result.table
    assert list(table.columns) == COLUMNS
    assert list(table["estimator"].unique()) == ["cs", "sa", "bjs", "did2s", "twfe"]
    assert table["event_time"].between(-3, 3).all()
    np.testing.assert_allclose(table["ci_upper"] - table["estimate"],
                               1.959963984540054 * table["std_error"], rtol=1e-12)
    # the imputation estimator reports post-treatment effects only
    assert table.loc[table["estimator"] == "bjs", "event_time"].min() == 0


def test_robust_estimators_agree_and_recover_the_truth(comparison):
    sim, result = comparison
    truth = sim.true_effects("y", kind="event").set_index("event_time")["att"]
    wide = result.table.pivot(index="event_time", columns="estimator", values="estimate")
    post = wide.loc[0:3]
    np.testing.assert_allclose(post["sa"], post["cs"], atol=1e-8)  # identical by theory
    np.testing.assert_allclose(post["bjs"], post["did2s"], atol=1e-8)
    for name in ("cs", "sa", "bjs", "did2s"):
        rows = result.table[(result.table["estimator"] == name)
                            & (result.table["event_time"] >= 0)].set_index("event_time")
        z = (rows["estimate"] - truth.reindex(rows.index)) / rows["std_error"]
        assert np.abs(z).max() < 3, name


def test_plot_offsets_every_estimator(comparison):
    _, result = comparison
    ax = result.plot()
    assert len(ax.containers) == 5
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0] == "Callaway-Sant'Anna" and labels[-1] == "Dynamic TWFE"
    xs = [c.lines[0].get_xdata() for c in ax.containers]
    assert xs[0][0] < xs[1][0] < xs[-1][0]  # side by side, not on top of each other


def test_unknown_estimator_is_an_error(comparison):
    sim, _ = comparison
    panel = Panel(sim.data, unit="unit", time="time", outcome="y", cohort="cohort",
                  never_treated=0)
    with pytest.raises(InvalidOptionError, match="choose from"):
        compare_estimators(panel, ["cs", "synthetic_control"])
