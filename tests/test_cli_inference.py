"""``evaluation estimate --se``: few-cluster and randomization inference from the CLI."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from evaluation.cli import main
from evaluation.estimators.registry import estimate_table
from evaluation.estimators.results import ESTIMATE_COLUMNS
from evaluation.simulate import simulate_staggered

ARGS = ["--unit", "unit", "--time", "time", "--cohort", "cohort", "--outcome", "y",
        "--never-treated", "0"]


@pytest.fixture(scope="module")
def area_panel(tmp_path_factory):
    """12 areas, treatment assigned by area (4 early, 3 late, 5 never)."""
    data = simulate_staggered(n_units=360, n_periods=7, cohorts=(3, 5), seed=4).data
    data["area"] = data["unit"] % 12
    area_cohort = np.array([3, 3, 3, 3, 5, 5, 5, 0, 0, 0, 0, 0])
    data["cohort"] = area_cohort[data["area"]]
    rng = np.random.default_rng(1)
    data["y"] = (rng.normal(size=len(data)) + 0.2 * data["time"]
                 + 0.5 * ((data["cohort"] > 0) & (data["time"] >= data["cohort"])))
    path = tmp_path_factory.mktemp("inference") / "panel.csv"
    data.to_csv(path, index=False)
    return path, data


def run(path, out, *options):
    code = main(["estimate", "--data", str(path), *ARGS, "--cluster", "area", *options,
                 "--output", str(out)])
    return code, (pd.read_csv(out) if code == 0 else None)


@pytest.mark.parametrize("estimator", ["twfe", "bjs", "did2s"])
def test_cr2_intervals_use_t_with_bell_mccaffrey_df(area_panel, tmp_path, estimator):
    path, data = area_panel
    code, table = run(path, tmp_path / "o.csv", "--estimator", estimator, "--aggregate",
                      "simple", "--se", "cr2")
    assert code == 0 and list(table.columns) == [*ESTIMATE_COLUMNS, "df"]
    row = table.iloc[-1]
    half = (row["ci_upper"] - row["ci_lower"]) / 2 / row["std_error"]
    assert half > stats.norm.ppf(0.975)  # a t quantile with few clusters
    assert half == pytest.approx(stats.t.ppf(0.975, row["df"]), rel=1e-9)
    assert 1 < row["df"] < 12  # Bell-McCaffrey df, below G - 1 = 11
    analytic = estimate_table(data, unit="unit", time="time", cohort="cohort", outcome="y",
                              never_treated=0, cluster="area", estimator=estimator,
                              aggregate="simple")
    assert row["estimate"] == pytest.approx(analytic["estimate"].iloc[-1], rel=1e-12)


def test_wild_bootstrap_from_the_cli_is_seeded(area_panel, tmp_path):
    path, _ = area_panel
    options = ["--estimator", "twfe", "--aggregate", "simple", "--se", "wild",
               "--wild-weights", "webb", "--draws", "999", "--seed", "5"]
    _, first = run(path, tmp_path / "a.csv", *options)
    _, again = run(path, tmp_path / "b.csv", *options)
    pd.testing.assert_frame_equal(first, again)
    row = first.iloc[-1]
    assert 0 <= row["p_value"] <= 1 and row["ci_lower"] < row["estimate"] < row["ci_upper"]
    _, other = run(path, tmp_path / "c.csv", *options[:-1], "6")
    assert other["p_value"].iloc[-1] != row["p_value"] or other["ci_lower"].iloc[-1] != \
        row["ci_lower"]


def test_cs_cluster_jackknife_from_the_cli(area_panel, tmp_path):
    path, _ = area_panel
    code, table = run(path, tmp_path / "o.csv", "--aggregate", "simple", "--se", "cr3")
    assert code == 0 and list(table.columns) == [*ESTIMATE_COLUMNS, "df"]
    row = table.iloc[-1]
    half = (row["ci_upper"] - row["ci_lower"]) / 2 / row["std_error"]
    assert half == pytest.approx(stats.t.ppf(0.975, 11), rel=1e-9)  # t(G - 1), G = 12
    assert (table["df"] == 11).all()


def test_randomization_inference_from_the_cli(area_panel, tmp_path):
    path, data = area_panel
    code, table = run(path, tmp_path / "o.csv", "--estimator", "twfe", "--aggregate",
                      "simple", "--se", "randomization", "--draws", "199", "--seed", "2")
    assert code == 0 and list(table.columns) == ESTIMATE_COLUMNS
    row = table.iloc[-1]
    assert 1 / 200 <= row["p_value"] <= 1
    assert row["ci_lower"] < row["estimate"] < row["ci_upper"]
    analytic = estimate_table(data, unit="unit", time="time", cohort="cohort", outcome="y",
                              never_treated=0, cluster="area", estimator="twfe",
                              aggregate="simple")
    assert row["std_error"] == pytest.approx(analytic["std_error"].iloc[-1], rel=1e-12)


@pytest.mark.parametrize(("options", "message"), [
    (["--se", "wild"], "se='wild' is not a valid option"),
    (["--se", "randomization", "--aggregate", "none"], "aggregate='simple' or 'event'"),
    (["--se", "randomization", "--aggregate", "simple", "--cluster", "unit"],
     None),
])
def test_inference_errors_are_one_line(area_panel, tmp_path, capsys, options, message):
    path, _ = area_panel
    argv = ["estimate", "--data", str(path), *ARGS, *options, "--output",
            str(tmp_path / "o.csv")]
    if "--cluster" not in options:
        argv[-2:-2] = ["--cluster", "area"]
    if message is None:  # units as their own assignment: fine, treatment is by unit
        assert main(argv) == 0
        return
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err
