import pandas as pd
import pytest

from evaluation.cli import main
from evaluation.estimators.registry import estimate_table
from evaluation.estimators.results import ESTIMATE_COLUMNS
from evaluation.simulate import simulate_staggered

ARGS = ["--unit", "unit", "--time", "time", "--cohort", "cohort", "--outcome", "y"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    data = simulate_staggered(n_units=600, n_periods=7, cohorts=(3, 5), n_clusters=12,
                              seed=3).data
    data.to_parquet(folder / "panel.parquet")
    data.to_csv(folder / "panel.csv", index=False)
    return folder, data


@pytest.mark.parametrize("aggregate", ["none", "simple", "event", "group", "calendar"])
def test_estimate_writes_the_contracted_columns(files, aggregate):
    folder, data = files
    out = folder / f"{aggregate}.csv"
    code = main(["estimate", "--data", str(folder / "panel.parquet"), *ARGS,
                 "--never-treated", "0", "--covariates", "x", "--aggregate", aggregate,
                 "--output", str(out)])
    assert code == 0
    table = pd.read_csv(out)
    assert list(table.columns) == ESTIMATE_COLUMNS
    expected = estimate_table(data, unit="unit", time="time", cohort="cohort", outcome="y",
                              never_treated=0, covariates=["x"], aggregate=aggregate)
    pd.testing.assert_series_equal(table["estimate"], expected["estimate"], check_names=False)
    assert (table["estimator"] == "cs").all() and (table["aggregation"] == aggregate).all()
    if aggregate == "none":
        assert (table["term"] == "ATT(g,t)").all() and table["group"].notna().all()
    else:
        assert table["term"].iloc[-1] == "overall"
        assert table.iloc[-1][["group", "time", "event_time"]].isna().all()
    if aggregate == "event":
        assert table["event_time"].iloc[:-1].notna().all() and table["group"].isna().all()


def test_csv_and_parquet_inputs_agree_and_twfe_runs(files):
    folder, _ = files
    outs = []
    for name in ("panel.csv", "panel.parquet"):
        out = folder / f"twfe_{name}.csv"
        assert main(["estimate", "--data", str(folder / name), *ARGS, "--never-treated", "0",
                     "--estimator", "twfe", "--aggregate", "event", "--cluster", "cluster",
                     "--output", str(out)]) == 0
        outs.append(pd.read_csv(out))
    pd.testing.assert_frame_equal(outs[0], outs[1])
    assert (outs[0]["aggregation"] == "dynamic").all()


def test_bootstrap_is_seeded(files):
    folder, _ = files
    tables = []
    for k in range(2):
        out = folder / f"boot{k}.csv"
        assert main(["estimate", "--data", str(folder / "panel.parquet"), *ARGS,
                     "--never-treated", "0", "--se", "bootstrap", "--draws", "199",
                     "--seed", "42", "--aggregate", "event", "--output", str(out)]) == 0
        tables.append(pd.read_csv(out))
    pd.testing.assert_frame_equal(tables[0], tables[1])


@pytest.mark.parametrize(("extra", "message"), [
    ([], "pass --never-treated 0"),
    (["--never-treated", "0", "--outcome", "nope"], "nope"),
    (["--never-treated", "0", "--estimator", "twfe", "--aggregate", "group"],
     "not available for twfe"),
    (["--never-treated", "0", "--se", "bootstrap", "--draws", "5"], "draws=5"),
])
def test_bad_input_exits_2_with_one_line(files, capsys, extra, message):
    folder, _ = files
    code = main(["estimate", "--data", str(folder / "panel.parquet"), *ARGS, *extra,
                 "--output", str(folder / "bad.csv")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("evaluation estimate: error:")
    assert message in err[0]


def test_unreadable_or_missing_files(files, capsys, tmp_path):
    bad = tmp_path / "panel.txt"
    bad.write_text("x")
    assert main(["estimate", "--data", str(bad), *ARGS, "--output", "o.csv"]) == 2
    assert "must end in .csv or .parquet" in capsys.readouterr().err
    assert main(["estimate", "--data", str(tmp_path / "no.csv"), *ARGS, "--output",
                 "o.csv"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_sun_abraham_from_the_command_line(files):
    folder, _ = files
    out = folder / "sa.csv"
    assert main(["estimate", "--data", str(folder / "panel.parquet"), *ARGS,
                 "--never-treated", "0", "--estimator", "sa", "--output", str(out)]) == 0
    table = pd.read_csv(out)
    assert list(table.columns) == ESTIMATE_COLUMNS
    assert (table["estimator"] == "sa").all() and table["term"].iloc[-1] == "overall"
    assert table["event_time"].iloc[:-1].notna().all()


@pytest.mark.parametrize(("estimator", "aggregate", "aggregation"), [
    ("bjs", "event", "event"), ("bjs", "simple", "event"), ("did2s", "none", "static"),
    ("did2s", "event", "dynamic")])
def test_imputation_and_two_stage_from_the_command_line(files, estimator, aggregate,
                                                        aggregation):
    folder, _ = files
    out = folder / f"{estimator}_{aggregate}.csv"
    assert main(["estimate", "--data", str(folder / "panel.parquet"), *ARGS,
                 "--never-treated", "0", "--estimator", estimator, "--aggregate", aggregate,
                 "--output", str(out)]) == 0
    table = pd.read_csv(out)
    assert list(table.columns) == ESTIMATE_COLUMNS
    assert (table["estimator"] == estimator).all()
    assert (table["aggregation"] == aggregation).all()
    if estimator == "bjs" and aggregate == "simple":
        assert table["term"].tolist() == ["overall"]
