"""The command line for treatment that switches off: --treatment, dcdh, --window, and the flags
that pass through to the estimators (--critical-values, --on-nonconvergence)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from evaluation.cli import main
from evaluation.estimators.registry import estimate_table

REFERENCE = Path(__file__).parent / "reference"
ONOFF = REFERENCE / "dcdh_onoff.csv"
BASE = ["estimate", "--data", str(ONOFF), "--unit", "unit", "--time", "time", "--outcome", "y"]


def run(capsys, *argv):
    code = main(list(argv))
    return code, capsys.readouterr()


def test_dcdh_from_the_cli_equals_the_table_api(tmp_path, capsys):
    out = tmp_path / "dcdh.csv"
    code, printed = run(capsys, *BASE, "--treatment", "d", "--estimator", "dcdh", "--effects",
                        "3", "--placebo", "2", "--cluster", "cluster", "--weights", "weight",
                        "--output", str(out))
    assert code == 0, printed.err
    table = pd.read_csv(out)
    api = estimate_table(pd.read_csv(ONOFF), unit="unit", time="time", treatment="d",
                         outcome="y", estimator="dcdh", effects=3, placebo=2,
                         cluster="cluster", weights="weight")
    np.testing.assert_allclose(table["estimate"], api["estimate"], rtol=1e-12)
    np.testing.assert_allclose(table["std_error"], api["std_error"], rtol=1e-12)
    assert table["event_time"].tolist()[:5] == [1, 2, 3, -1, -2]
    assert table["term"].iloc[-1] == "average total effect"


def test_an_absorbing_estimator_refuses_the_switching_status_in_one_line(tmp_path, capsys):
    out = tmp_path / "cs.csv"
    code, printed = run(capsys, *BASE, "--treatment", "d", "--aggregate", "simple",
                        "--output", str(out))
    assert code == 2 and printed.err.count("\n") == 1 and "Traceback" not in printed.err
    assert "dcdh" in printed.err and "switch" in printed.err
    assert not out.exists()


def test_first_spell_window_runs_an_absorbing_estimator(tmp_path, capsys):
    out = tmp_path / "bjs.csv"
    code, printed = run(capsys, *BASE, "--treatment", "d", "--window", "first-spell",
                        "--estimator", "bjs", "--aggregate", "simple", "--output", str(out))
    assert code == 0, printed.err
    data = pd.read_csv(ONOFF)
    api = estimate_table(data, unit="unit", time="time", treatment="d", outcome="y",
                         estimator="bjs", aggregate="simple", window="first-spell")
    np.testing.assert_allclose(pd.read_csv(out)["estimate"], api["estimate"], rtol=1e-12)


def test_the_treatment_must_be_named(tmp_path, capsys):
    code, printed = run(capsys, *BASE, "--output", str(tmp_path / "o.csv"))
    assert code == 2 and printed.err.count("\n") == 1
    assert "--cohort COL" in printed.err and "--treatment COL" in printed.err


def test_cs_t_critical_values_from_the_cli(tmp_path, capsys):
    rng = np.random.default_rng(4)
    units, periods = 60, 5
    unit = np.repeat(np.arange(units), periods)
    time = np.tile(np.arange(1, periods + 1), units)
    cohort = np.where(np.arange(units) < 24, 4, 0)[unit]
    area = (np.arange(units) % 12)[unit]
    y = rng.normal(size=unit.size) + 0.5 * ((cohort > 0) & (time >= cohort))
    path = tmp_path / "panel.csv"
    pd.DataFrame({"unit": unit, "time": time, "cohort": cohort, "area": area, "y": y}).to_csv(
        path, index=False)
    out = tmp_path / "t.csv"
    code, printed = run(capsys, "estimate", "--data", str(path), "--unit", "unit", "--time",
                        "time", "--cohort", "cohort", "--never-treated", "0", "--outcome", "y",
                        "--cluster", "area", "--aggregate", "simple", "--critical-values", "t",
                        "--output", str(out))
    assert code == 0, printed.err
    row = pd.read_csv(out).iloc[-1]
    assert row["df"] == 11
    half = (row["ci_upper"] - row["ci_lower"]) / 2 / row["std_error"]
    assert half == pytest.approx(stats.t.ppf(0.975, 11), rel=1e-9)


def test_match_penalised_fallback_from_the_cli(tmp_path, capsys):
    rng = np.random.default_rng(5)
    n = 400
    treated = (rng.random(n) < 0.3).astype(int)
    data = pd.DataFrame({"id": np.arange(n), "d": treated, "x": rng.normal(size=n),
                         "kunta": [f"K{k:03d}" for k in rng.integers(0, 80, n)]})
    path = tmp_path / "units.csv"
    data.to_csv(path, index=False)
    argv = ["match", "--data", str(path), "--unit", "id", "--treatment", "d", "--covariates",
            "x,kunta", "--output", str(tmp_path / "m.csv")]
    code, printed = run(capsys, *argv)
    assert code == 2 and "'kunta' has 80 levels" in printed.err
    assert "--on-nonconvergence penalize" in printed.err  # the API advice in CLI words
    code, printed = run(capsys, *argv, "--on-nonconvergence", "penalize")
    assert code == 0, printed.err
    assert "ConvergenceWarning" in printed.err and "(--on-nonconvergence penalize)" in printed.err
    assert pd.read_csv(tmp_path / "m.csv")["treated"].sum() == treated.sum()


def test_import_statfin_allow_unknown_codes_from_the_cli(tmp_path, capsys):
    import json

    from _hostile_files import FILES

    (tmp_path / "12r5.csv").write_bytes(FILES["12r5_unknown.csv"]())
    (tmp_path / "trials.csv").write_bytes(FILES["trials.csv"]())
    argv = ["import-statfin", "--statfin", str(tmp_path / "12r5.csv"), "--trials",
            str(tmp_path / "trials.csv"), "--out", str(tmp_path / "out")]
    code, printed = run(capsys, *argv)
    assert code == 2 and "'KU49X'" in printed.err and "--allow-unknown-codes" in printed.err
    assert not (tmp_path / "out").exists()
    code, printed = run(capsys, *argv, "--allow-unknown-codes")
    assert code == 0, printed.err
    assert "KU49X" in printed.err and "(--allow-unknown-codes)" in printed.err
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["unknown_area_codes"] == ["KU49X"]
