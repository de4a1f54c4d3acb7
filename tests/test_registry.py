"""The estimator registry, the shared option validation and the result protocol."""

from dataclasses import dataclass

import matplotlib
import numpy as np
import pandas as pd
import pytest

from evaluation import Panel
from evaluation.cli import build_parser, main
from evaluation.errors import InvalidOptionError
from evaluation.estimators import CallawaySantAnna, compare_estimators
from evaluation.estimators.did import TwoWayFixedEffects
from evaluation.estimators.imputation import ImputationDiD, TwoStageDiD
from evaluation.estimators.registry import (
    REGISTRY,
    EstimatorEntry,
    estimate_table,
    get_estimator,
    register,
    unregister,
)
from evaluation.estimators.results import EstimationResult, PretrendTest
from evaluation.estimators.sun_abraham import SunAbraham
from evaluation.options import DEFAULT_RANDOM_SEED, validate_fields
from evaluation.protocol import ResultProtocol
from evaluation.simulate import simulate_staggered

matplotlib.use("Agg")

ESTIMATOR_CLASSES = [CallawaySantAnna, SunAbraham, ImputationDiD, TwoStageDiD,
                     TwoWayFixedEffects]


@dataclass(frozen=True)
class ToyMeanDifference:
    """A toy estimator: post minus pre mean of treated minus the same of controls, by event time."""

    alpha: float = 0.05

    def __post_init__(self) -> None:
        validate_fields(self)

    def fit(self, panel: Panel) -> EstimationResult:
        y = panel.wide()
        cohort = panel.unit_cohort
        treated = ~np.isnan(cohort)
        g = int(np.nanmin(cohort))
        base = y[:, g - 1]
        rows = []
        for t in range(panel.n_periods):
            change = y[:, t] - base
            rows.append({"term": str(t - g), "event_time": t - g,
                         "estimate": change[treated].mean() - change[~treated].mean(),
                         "std_error": 1.0})
        return EstimationResult("toy", "event", pd.DataFrame(rows), alpha=self.alpha)


@pytest.fixture
def toy():
    entry = register(EstimatorEntry(
        "toy", f"{__name__}:ToyMeanDifference", "Toy difference", ("none", "event"),
        comparison={}, description="a test estimator"))
    yield entry
    unregister("toy")


@pytest.fixture(scope="module")
def sim():
    return simulate_staggered(n_units=400, n_periods=6, cohorts=(4,), seed=8)


@pytest.fixture(scope="module")
def panel(sim):
    return Panel(sim.data, unit="unit", time="time", outcome="y", cohort="cohort",
                 never_treated=0)


def test_registered_toy_estimator_appears_in_cli_help_and_runs(toy, sim, tmp_path):
    estimate = next(a for a in build_parser()._subparsers._group_actions[0].choices.items()
                    if a[0] == "estimate")[1]
    option = next(a for a in estimate._actions if "--estimator" in a.option_strings)
    assert "toy" in option.choices and "Toy difference" in option.help
    data = tmp_path / "panel.parquet"
    sim.data.to_parquet(data)
    out = tmp_path / "toy.csv"
    code = main(["estimate", "--data", str(data), "--unit", "unit", "--time", "time",
                 "--cohort", "cohort", "--outcome", "y", "--never-treated", "0",
                 "--estimator", "toy", "--output", str(out)])
    assert code == 0
    table = pd.read_csv(out)
    assert set(table["estimator"]) == {"toy"} and len(table) == 6


def test_registered_toy_estimator_appears_in_compare_estimators(toy, panel):
    comparison = compare_estimators(panel)
    assert list(comparison.results) == ["cs", "sa", "bjs", "did2s", "twfe", "toy"]
    toy_rows = comparison.table[comparison.table["estimator"] == "toy"]
    cs_rows = comparison.table[comparison.table["estimator"] == "cs"]
    # with one cohort and no covariates the toy equals CS with the universal base period
    np.testing.assert_allclose(toy_rows["estimate"].to_numpy(),
                               cs_rows["estimate"].to_numpy(), atol=1e-10)


def test_unregistered_names_are_rejected_with_the_list(panel):
    with pytest.raises(InvalidOptionError, match="estimator 'nope' is not available; use one "
                                                 "of cs, sa, bjs, did2s, twfe"):
        get_estimator("nope")
    with pytest.raises(InvalidOptionError, match="already registered"):
        register(REGISTRY["cs"])


def test_options_an_estimator_does_not_use_are_rejected(sim):
    with pytest.raises(InvalidOptionError, match=r"twfe \(Dynamic TWFE\) does not use --method"):
        estimate_table(sim.data, unit="unit", time="time", cohort="cohort", outcome="y",
                       never_treated=0, estimator="twfe", method="ipw")
    with pytest.raises(InvalidOptionError, match="--aggregate group is not available for sa"):
        estimate_table(sim.data, unit="unit", time="time", cohort="cohort", outcome="y",
                       never_treated=0, estimator="sa", aggregate="group")


def test_weights_reach_the_estimator_through_the_table(sim):
    data = sim.data.assign(w=np.where(sim.data["unit"] % 2 == 0, 1.0, 3.0))
    weighted = estimate_table(data, unit="unit", time="time", cohort="cohort", outcome="y",
                              never_treated=0, estimator="twfe", weights="w")
    panel = Panel(data, unit="unit", time="time", outcome="y", cohort="cohort",
                  never_treated=0, weights="w")
    direct = TwoWayFixedEffects().fit(panel).to_frame()
    assert weighted["estimate"].iloc[0] == direct["estimate"].iloc[0]
    plain = estimate_table(data, unit="unit", time="time", cohort="cohort", outcome="y",
                           never_treated=0, estimator="twfe")
    assert plain["estimate"].iloc[0] != weighted["estimate"].iloc[0]


@pytest.mark.parametrize("cls", ESTIMATOR_CLASSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("alpha", [7, 0, 1, -0.1, float("nan"), True, "0.05", None])
def test_every_estimator_rejects_a_bad_alpha(cls, alpha):
    with pytest.raises(InvalidOptionError, match=r"alpha=.* must be a number strictly between"):
        cls(alpha=alpha)


@pytest.mark.parametrize("cls", [TwoWayFixedEffects, TwoStageDiD, SunAbraham],
                         ids=lambda c: c.__name__)
@pytest.mark.parametrize("value", [0, -2, 1.5, True, "3"])
def test_leads_and_lags_are_positive_whole_numbers(cls, value):
    for name in ("leads", "lags"):
        with pytest.raises(InvalidOptionError, match=f"{name}=.* must be a whole number of at "
                                                     "least 1 or None"):
            cls(**{name: value})


@pytest.mark.parametrize(("options", "message"), [
    ({"draws": 0}, "draws=0 must be a whole number of at least 1"),
    ({"se": "bootstrap", "draws": 50}, "draws=50 must be an integer of at least 100"),
    ({"seed": -1}, "seed=-1 must be a non-negative whole number"),
    ({"seed": 1.5}, "seed=1.5 must be a non-negative whole number"),
    ({"anticipation": -1}, "anticipation=-1 must be a whole number of at least 0"),
    ({"control_group": "sometimes"}, "control_group='sometimes' is not a valid option"),
    ({"method": "ols"}, "method='ols' is not a valid option"),
    ({"formula": 3}, "formula=3 must be a formula string"),
])
def test_callaway_santanna_option_errors(options, message):
    with pytest.raises(InvalidOptionError, match=message):
        CallawaySantAnna(**options)


@pytest.mark.parametrize(("cls", "options", "message"), [
    (TwoWayFixedEffects, {"dynamic": "yes"}, "dynamic='yes' must be True or False"),
    (TwoWayFixedEffects, {"small_sample": 1}, "small_sample=1 must be True or False"),
    (TwoWayFixedEffects, {"reference": 1.5}, "reference=1.5 must be a whole number"),
    (SunAbraham, {"reference": ()}, r"reference=\(\) must be a non-empty tuple"),
    (SunAbraham, {"control": "everyone"}, "control='everyone' is not a valid option"),
    (ImputationDiD, {"by": "year"}, "by='year' is not a valid option"),
    (ImputationDiD, {"pretrend_leads": -1}, "pretrend_leads=-1 must be a whole number"),
    (ImputationDiD, {"horizons": (-1, 2)}, "horizons=.* must be None or a non-empty tuple"),
])
def test_other_estimator_option_errors(cls, options, message):
    with pytest.raises(InvalidOptionError, match=message):
        cls(**options)


def test_bootstrap_is_reproducible_by_default_and_records_its_seed(panel):
    first = CallawaySantAnna(se="bootstrap", draws=199).fit(panel)
    second = CallawaySantAnna(se="bootstrap", draws=199).fit(panel)
    assert first.info["seed"] == DEFAULT_RANDOM_SEED
    np.testing.assert_array_equal(first.table["std_error"], second.table["std_error"])
    other = CallawaySantAnna(se="bootstrap", draws=199, seed=5).fit(panel)
    assert other.info["seed"] == 5
    assert not np.array_equal(other.table["std_error"], first.table["std_error"])


def test_pretrend_tests_are_one_typed_result(panel):
    cs = CallawaySantAnna().fit(panel).pretest
    bjs = ImputationDiD(pretrend_leads=2).fit(panel).pretest
    for test in (cs, bjs):
        assert isinstance(test, PretrendTest) and isinstance(test, ResultProtocol)
        assert test.computable and test.df >= 1 and 0 <= test.p_value <= 1
        frame = test.to_frame()
        assert list(frame.columns) == ["test", "statistic", "df", "p_value", "reason"]
        assert frame["statistic"].iloc[0] == test.statistic
        assert f"chi2({test.df})" in str(test.summary()) and "<table" in test._repr_html_()
        assert test.plot().lines
    missing = PretrendTest.unavailable("CS Wald test", "no pre-treatment ATT(g,t)")
    assert not missing.computable and np.isnan(missing.p_value)
    assert missing.as_text() == "not computable: no pre-treatment ATT(g,t)"


def test_comparison_and_estimates_follow_the_result_protocol(panel):
    comparison = compare_estimators(panel, ["cs", "twfe"])
    results = [comparison, comparison.results["cs"], CallawaySantAnna().fit(panel)]
    for result in results:
        assert isinstance(result, ResultProtocol)
        assert isinstance(result.to_frame(), pd.DataFrame) and len(result.to_frame())
        assert "<table" in result._repr_html_() and str(result.summary())
        fig_ax = result.plot()
        assert fig_ax.has_data()


@dataclass(frozen=True)
class WarningToy(ToyMeanDifference):
    """The toy estimator, warning that it dropped something."""

    def fit(self, panel: Panel) -> EstimationResult:
        import warnings

        from evaluation.errors import DroppedObservationsWarning

        warnings.warn("toy dropped 3 units", DroppedObservationsWarning, stacklevel=2)
        return super().fit(panel)


def test_compare_estimators_records_and_reissues_warnings(panel):
    from evaluation.errors import DroppedObservationsWarning

    register(EstimatorEntry("warny", f"{__name__}:WarningToy", "Warning toy", ("event",),
                            comparison={}))
    try:
        with pytest.warns(DroppedObservationsWarning, match="toy dropped 3 units"):
            comparison = compare_estimators(panel, ["cs", "warny"])
    finally:
        unregister("warny")
    assert comparison.warnings == ["warny: DroppedObservationsWarning: toy dropped 3 units"]
    assert "toy dropped 3 units" in comparison.summary().as_html()


def test_random_order_matching_is_reproducible_by_default_and_records_its_seed():
    from evaluation.matching import match

    rng = np.random.default_rng(4)
    units = pd.DataFrame({"id": range(200), "t": (rng.random(200) < 0.3).astype(int),
                          "x": rng.normal(size=200)})
    first = match(units, unit="id", treatment="t", covariates=["x"], order="random")
    second = match(units, unit="id", treatment="t", covariates=["x"], order="random")
    assert first.info["seed"] == DEFAULT_RANDOM_SEED
    pd.testing.assert_frame_equal(first.matches, second.matches)
    other = match(units, unit="id", treatment="t", covariates=["x"], order="random", seed=9)
    assert other.info["seed"] == 9
    with pytest.raises(InvalidOptionError, match="seed=-1 must be a non-negative whole number"):
        match(units, unit="id", treatment="t", covariates=["x"], order="random", seed=-1)
    assert match(units, unit="id", treatment="t", covariates=["x"]).info["seed"] is None
