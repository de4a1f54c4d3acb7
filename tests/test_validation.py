"""The design Monte Carlo engine: seeds, resume, executors, summary and the command."""

import json

import numpy as np
import pandas as pd
import pytest

from evaluation.cli import main
from evaluation.errors import InvalidOptionError
from evaluation.validation import engine, replication_seed, summarize, validate
from evaluation.validation.summary import (
    CONFIG_FILE,
    ESTIMATES_FILE,
    MDE_FACTOR,
    SUMMARY_FILE,
    committed_runs,
    replication_count,
)

#: The cheapest design (one CS fit per outcome on pre-trial months) keeps the tests quick.
FAST = {"designs": ["placebo"], "outcomes": ["employed"], "quiet": True, "seed": 5}


def test_replication_seeds_are_the_spawned_children():
    children = np.random.SeedSequence(42).spawn(7)
    for r, child in enumerate(children):
        assert replication_seed(42, r) == int(child.generate_state(1, dtype=np.uint32)[0])
    assert len({replication_seed(42, r) for r in range(50)}) == 50


@pytest.fixture(scope="module")
def serial_run(tmp_path_factory):
    return validate(tmp_path_factory.mktemp("serial"), reps=3, **FAST)


def test_rows_carry_the_contracted_columns_and_truth(serial_run):
    rows = serial_run.rows
    assert list(rows.columns) == ["replication", "seed", "level", "outcome", "design",
                                  "estimator", "estimate", "std_error", "ci_lower", "ci_upper",
                                  "p_value", "truth", "warnings"]
    assert list(rows["replication"]) == [0, 1, 2]
    assert list(rows["seed"]) == [replication_seed(5, r) for r in range(3)]
    assert (rows["truth"] == 0).all() and rows["estimate"].notna().all()
    out = serial_run.out_dir
    assert json.loads((out / "config.json").read_text())["designs"] == ["placebo"]
    pd.testing.assert_frame_equal(pd.read_parquet(out / "estimates.parquet"), rows)
    assert (out / "summary.csv").is_file() and (out / "distributions.png").stat().st_size > 5000
    assert not list(out.rglob("*.tmp"))


def test_rerun_resumes_and_extends_without_recomputing(serial_run, tmp_path, monkeypatch):
    same = validate(serial_run.out_dir, reps=3, **FAST)
    assert (same.ran, same.reused) == (0, 3)
    pd.testing.assert_frame_equal(same.rows, serial_run.rows)
    calls = []
    original = engine.run_replication
    monkeypatch.setattr(engine, "run_replication",
                        lambda task: calls.append(task[1]) or original(task))
    more = validate(serial_run.out_dir, reps=4, **FAST)
    assert calls == [3] and (more.ran, more.reused) == (1, 3)
    pd.testing.assert_frame_equal(more.rows.iloc[:3], serial_run.rows)


def test_resuming_with_other_settings_is_refused(serial_run):
    with pytest.raises(InvalidOptionError, match=r"holds a validation run with other settings "
                                                 r"\(scenario: 'default' on disk, 'null' now"):
        validate(serial_run.out_dir, reps=3, scenario="null", **FAST)


def test_interrupted_run_keeps_finished_replications(tmp_path, monkeypatch):
    original = engine.run_replication

    def interrupted(task):
        if task[1] == 1:
            raise KeyboardInterrupt
        return original(task)

    monkeypatch.setattr(engine, "run_replication", interrupted)
    with pytest.raises(KeyboardInterrupt):
        validate(tmp_path, reps=3, **FAST)
    assert sorted(p.name for p in (tmp_path / "replications").iterdir()) == [
        "rep-000000.parquet"]
    monkeypatch.setattr(engine, "run_replication", original)
    resumed = validate(tmp_path, reps=3, **FAST)
    assert (resumed.ran, resumed.reused) == (2, 1)


def test_joblib_and_dask_give_bit_identical_rows(serial_run, tmp_path):
    distributed = pytest.importorskip("distributed")
    local = validate(tmp_path / "joblib", reps=3, workers=2, **FAST)
    pd.testing.assert_frame_equal(local.rows, serial_run.rows, check_exact=True)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        on_dask = validate(tmp_path / "dask", reps=3, scheduler=cluster.scheduler_address,
                           **FAST)
    pd.testing.assert_frame_equal(on_dask.rows, serial_run.rows, check_exact=True)


def test_summary_statistics_by_hand():
    rows = pd.DataFrame({
        "level": "jobseekers", "outcome": "y", "design": ["d"] * 4 + ["null"] * 4,
        "estimator": "cs", "estimate": [1.1, 0.9, 1.3, np.nan, 0.1, -0.2, 0.05, 0.3],
        "std_error": [0.1, 0.1, 0.1, np.nan, 0.1, 0.1, 0.1, 0.1],
        "truth": [1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0],
        "p_value": [0.01, 0.2, 0.001, np.nan, 0.3, 0.04, 0.6, 0.002]})
    rows["ci_lower"] = rows["estimate"] - 1.96 * rows["std_error"]
    rows["ci_upper"] = rows["estimate"] + 1.96 * rows["std_error"]
    table = summarize(rows).set_index("design")
    d = table.loc["d"]
    errors = np.array([0.1, -0.1, 0.3])
    assert d["replications"] == 3 and d["failed"] == 1
    assert d["bias"] == pytest.approx(errors.mean())
    assert d["rmse"] == pytest.approx(np.sqrt((errors ** 2).mean()))
    assert d["sd_error"] == pytest.approx(errors.std(ddof=1))
    assert d["se_sd"] == pytest.approx(0.1 / errors.std(ddof=1))
    assert d["coverage"] == pytest.approx(2 / 3)  # 1.3 +- 0.196 misses 1.0
    assert d["coverage_mcse"] == pytest.approx(np.sqrt(2 / 3 * 1 / 3 / 3))
    assert d["power"] == pytest.approx(2 / 3) and np.isnan(d["size"])
    assert d["mde"] == pytest.approx(MDE_FACTOR * 0.1) and MDE_FACTOR == pytest.approx(2.8016,
                                                                                     abs=1e-4)
    null = table.loc["null"]
    assert null["size"] == pytest.approx(0.5) and np.isnan(null["power"])


@pytest.mark.parametrize(("options", "message"), [
    ({"reps": 0}, "reps=0 must be a whole number of at least 1"),
    ({"scenario": "nope"}, "scenario='nope' is not a valid option"),
    ({"size": "huge"}, "size='huge' is not a valid option"),
    ({"designs": ["overall", "nope"]}, "design='nope' is not a valid option"),
    ({"designs": []}, "designs is empty"),
    ({"seed": -1}, "seed=-1 must be a non-negative whole number"),
    ({"workers": 2, "scheduler": "tcp://127.0.0.1:1"}, "either workers .* or scheduler"),
])
def test_bad_options_fail_before_any_replication(tmp_path, options, message):
    with pytest.raises(InvalidOptionError, match=message):
        validate(tmp_path / "run", **{"reps": 1, **options})
    assert not (tmp_path / "run" / "replications").exists()


def test_command_line_runs_and_resumes(tmp_path, capsys):
    argv = ["validate", "--scenario", "default", "--reps", "1", "--designs", "placebo",
            "--outcomes", "employed", "--seed", "5", "--quiet", "--out", str(tmp_path)]
    assert main(argv) == 0
    assert "1 replications run, 0 reused" in capsys.readouterr().out
    assert main(argv) == 0
    assert "0 replications run, 1 reused" in capsys.readouterr().out
    table = pd.read_csv(tmp_path / "summary.csv")
    assert list(table["design"]) == ["placebo: cohort re-selected 12 months earlier"]
    assert main([*argv[:-2], "--out", str(tmp_path), "--size", "report"]) == 2
    assert "other settings" in capsys.readouterr().err


# ------------------------------------------------- the runs shipped with the package

COMMITTED = committed_runs()


def test_the_default_scenario_and_the_stress_scenarios_are_shipped():
    assert {"default", "heterogeneous", "attrition", "area_shock"} <= set(COMMITTED)
    assert replication_count(COMMITTED["default"]) >= 200


@pytest.mark.parametrize("scenario", sorted(COMMITTED))
def test_a_shipped_run_is_the_run_of_the_current_code(scenario):
    """Replication 0 recomputed now equals the shipped one, and the summary its rows."""
    directory = COMMITTED[scenario]
    config = json.loads((directory / CONFIG_FILE).read_text())
    config = engine.ValidationConfig(**{k: tuple(v) if isinstance(v, list) else v
                                        for k, v in config.items()})
    assert config.scenario == scenario
    shipped = pd.read_parquet(directory / ESTIMATES_FILE)
    fresh = engine.run_replication((config, 0))
    first = shipped[shipped["replication"] == 0].reset_index(drop=True)
    pd.testing.assert_frame_equal(fresh, first, check_exact=False, rtol=1e-9, atol=1e-12)
    pd.testing.assert_frame_equal(summarize(shipped), pd.read_csv(directory / SUMMARY_FILE),
                                  check_dtype=False, rtol=1e-9)
