"""``evaluation estimate --where``: a pandas query row filter applied before estimation."""

import numpy as np
import pandas as pd
import pytest

from evaluation.cli import main
from evaluation.errors import EvaluationError
from evaluation.estimators.registry import estimate_table
from evaluation.simulate import simulate_staggered
from evaluation.sources.files import load_estimation_data

ARGS = ["--unit", "unit", "--time", "time", "--cohort", "cohort", "--outcome", "y",
        "--never-treated", "0"]
OPTIONS = {"unit": "unit", "time": "time", "cohort": "cohort", "outcome": "y",
           "never_treated": 0}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("where")
    data = simulate_staggered(n_units=400, n_periods=6, cohorts=(3, 5), n_clusters=10,
                              seed=5).data
    rng = np.random.default_rng(1)
    units = data["unit"].unique()
    target = pd.Series(rng.random(len(units)) < 0.6, index=units)
    region = pd.Series(rng.choice(["north", "south"], len(units)), index=units)
    data = data.assign(target_group=data["unit"].map(target).astype(bool),
                       region=data["unit"].map(region))
    data.to_parquet(folder / "panel.parquet", index=False)
    data.to_csv(folder / "panel.csv", index=False)
    return folder, data


def run(folder, name, *extra, output="out.csv"):
    out = folder / output
    code = main(["estimate", "--data", str(folder / name), *ARGS, *extra,
                 "--output", str(out)])
    return code, out


@pytest.mark.parametrize("name", ["panel.parquet", "panel.csv"])
@pytest.mark.parametrize("aggregate", ["simple", "event"])
def test_where_equals_filtering_first(files, tmp_path, name, aggregate):
    folder, data = files
    out = tmp_path / "est.csv"
    code = main(["estimate", "--data", str(folder / name), *ARGS, "--where",
                 "target_group == True", "--aggregate", aggregate, "--cluster", "cluster",
                 "--output", str(out)])
    assert code == 0
    subset = data[data["target_group"]]
    assert 0 < subset["unit"].nunique() < data["unit"].nunique()
    expected = estimate_table(subset, **OPTIONS, aggregate=aggregate, cluster="cluster")
    got = pd.read_csv(out)
    pd.testing.assert_frame_equal(got, expected.reset_index(drop=True), check_dtype=False,
                                  check_exact=True)
    everyone = estimate_table(data, **OPTIONS, aggregate=aggregate, cluster="cluster")
    assert not np.allclose(got["estimate"], everyone["estimate"])  # the filter mattered


def test_where_on_a_column_that_is_not_requested(files, tmp_path):
    folder, data = files
    out = tmp_path / "north.csv"
    code = main(["estimate", "--data", str(folder / "panel.parquet"), *ARGS, "--where",
                 "region == 'north' and time >= 2", "--aggregate", "simple",
                 "--output", str(out)])
    assert code == 0
    subset = data[(data["region"] == "north") & (data["time"] >= 2)]
    expected = estimate_table(subset, **OPTIONS, aggregate="simple")
    pd.testing.assert_frame_equal(pd.read_csv(out), expected.reset_index(drop=True),
                                  check_dtype=False, check_exact=True)
    # the loader reads every column when filtering, only the requested ones otherwise
    loaded = load_estimation_data(folder / "panel.parquet", ["unit", "time"], "region == 'north'")
    assert {"region", "target_group", "y"} <= set(loaded.columns)
    assert (loaded["region"] == "north").all()
    assert len(loaded) == int((data["region"] == "north").sum())
    plain = load_estimation_data(folder / "panel.parquet", ["unit", "time"])
    assert list(plain.columns) == ["unit", "time"] and len(plain) == len(data)


@pytest.mark.parametrize("where", ["target_group ==", "no_such_column > 1", "y >>> 2"])
def test_bad_expression_is_a_one_line_error(files, tmp_path, capsys, where):
    folder, _ = files
    out = tmp_path / "never.csv"
    code = main(["estimate", "--data", str(folder / "panel.parquet"), *ARGS, "--where", where,
                 "--output", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("evaluation estimate: error: could not apply the row filter")
    assert repr(where) in err and "panel.parquet" in err
    assert not out.exists()


@pytest.mark.parametrize("name", ["panel.parquet", "panel.csv"])
def test_expression_selecting_no_rows_is_a_one_line_error(files, tmp_path, capsys, name):
    folder, _ = files
    out = tmp_path / "never.csv"
    where = "time > 1000"
    code = main(["estimate", "--data", str(folder / name), *ARGS, "--where", where,
                 "--output", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"the row filter {where!r} selects no rows of" in err and name in err
    assert not out.exists()


def test_loader_errors_name_the_expression(files):
    folder, _ = files
    with pytest.raises(EvaluationError, match=r"'time > 1000' selects no rows"):
        load_estimation_data(folder / "panel.csv", ["unit"], "time > 1000")
    with pytest.raises(EvaluationError, match=r"could not apply the row filter 'nope == 1'"):
        load_estimation_data(folder / "panel.csv", ["unit"], "nope == 1")
