"""The ``evaluation match`` sub-command: files written, agreement with Python, errors."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from evaluation.cli import main
from evaluation.errors import UnmatchedUnitsWarning
from evaluation.matching import match

UNIT_COLUMNS = ["unit", "treated", "weight", "subclass", "distance"]
BALANCE_COLUMNS = ["variable", "mean_treated", "mean_control", "smd_before", "smd_after",
                   "var_ratio_before", "var_ratio_after", "ecdf_max_after"]


def make_units(n: int = 90, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=n), rng.normal(size=n)
    t = (rng.random(n) < 1 / (1 + np.exp(-(-0.8 + 0.9 * a - 0.5 * b)))).astype(int)
    t[:3], t[3:6] = 1, 0
    return pd.DataFrame({
        "kunta": np.arange(1, n + 1) * 7,
        "kokeilu": t,
        "a": np.round(a, 4),
        "b": np.round(b, 4),
        "region": np.array(["Uusimaa", "Pirkanmaa", "Lappi"])[rng.integers(0, 3, n)],
        "size": np.array(["small", "large"])[rng.integers(0, 2, n)],
        "ps": np.round(rng.uniform(0.05, 0.95, n), 4),
        "other": rng.normal(size=n),
    })


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli_match")
    data = make_units()
    path = folder / "units.csv"
    data.to_csv(path, index=False)
    return folder, path, pd.read_csv(path)


BASE = ["--unit", "kunta", "--treatment", "kokeilu"]


def run(folder, path, name, extra, covariates="a,b", balance=True):
    out = folder / f"{name}.csv"
    bal = folder / f"{name}_balance.csv"
    argv = ["match", "--data", str(path), *BASE, "--covariates", covariates, *extra,
            "--output", str(out)]
    if balance:
        argv += ["--balance", str(bal)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnmatchedUnitsWarning)
        code = main(argv)
    return code, out, bal


def python_frame(data, covariates, **kwargs) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnmatchedUnitsWarning)
        result = match(data, unit="kunta", treatment="kokeilu", covariates=covariates,
                       **kwargs)
    return result


def test_match_writes_units_and_balance(files, capsys):
    folder, path, data = files
    code, out, bal = run(folder, path, "basic", [])
    assert code == 0
    units = pd.read_csv(out)
    assert list(units.columns) == UNIT_COLUMNS
    n1 = int(data["kokeilu"].sum())
    assert len(units) == 2 * n1  # every treated unit and one control each
    assert units["unit"].is_unique
    assert set(units["unit"]) <= set(data["kunta"])
    assert (units["weight"] > 0).all()
    assert units["treated"].sum() == n1
    balance = pd.read_csv(bal)
    assert list(balance.columns) == BALANCE_COLUMNS
    assert list(balance["variable"]) == ["distance", "a", "b"]
    stdout = capsys.readouterr().out
    assert f"wrote {2 * n1} units ({n1} treated, {n1} controls) to {out}" in stdout
    assert f"wrote balance of 3 variables to {bal}" in stdout


def test_output_equals_python_to_frame(files):
    folder, path, data = files
    code, out, bal = run(folder, path, "same", [])
    assert code == 0
    result = python_frame(data, ["a", "b"])
    assert out.read_text() == result.to_frame().to_csv(index=False)
    expected_balance = result.balance()[BALANCE_COLUMNS[1:]].reset_index()
    assert bal.read_text() == expected_balance.to_csv(index=False)


def test_categorical_covariate_expanded_in_balance(files):
    folder, path, data = files
    code, _, bal = run(folder, path, "categorical", [], covariates="a,region")
    assert code == 0
    balance = pd.read_csv(bal)
    assert list(balance["variable"]) == ["distance", "a", "region[Lappi]", "region[Pirkanmaa]",
                                         "region[Uusimaa]"]
    lappi = balance.set_index("variable").loc["region[Lappi]"]
    treated = data["kokeilu"] == 1
    share = (data.loc[treated, "region"] == "Lappi").mean()
    assert lappi["mean_treated"] == pytest.approx(share)
    assert np.isnan(lappi["var_ratio_before"]) and np.isnan(lappi["var_ratio_after"])


OPTIONS = [
    ("cem", ["--method", "cem"], {"method": "cem"}),
    ("ebal", ["--method", "ebal"], {"method": "ebal"}),
    ("ipw", ["--method", "ipw"], {"method": "ipw"}),
    ("probit", ["--distance", "probit"], {"distance": "probit"}),
    ("optimal", ["--method", "optimal"], {"method": "optimal"}),
    ("mahalanobis", ["--distance", "mahalanobis"], {"distance": "mahalanobis"}),
    ("ratio2-replace", ["--ratio", "2", "--replace"], {"ratio": 2, "replace": True}),
    ("caliper", ["--caliper", "0.1"], {"caliper": 0.1}),
    ("exact", ["--exact", "size"], {"exact": ["size"]}),
    ("order-smallest", ["--order", "smallest"], {"order": "smallest"}),
    ("random", ["--order", "random", "--seed", "1"], {"order": "random", "seed": 1}),
    ("discard", ["--discard", "both"], {"discard": "both"}),
]


@pytest.mark.parametrize(("name", "extra", "kwargs"), OPTIONS, ids=[o[0] for o in OPTIONS])
def test_options_agree_with_python(files, name, extra, kwargs):
    folder, path, data = files
    code, out, bal = run(folder, path, name, extra)
    assert code == 0
    units = pd.read_csv(out)
    assert list(units.columns) == UNIT_COLUMNS
    result = python_frame(data, ["a", "b"], **kwargs)
    assert out.read_text() == result.to_frame().to_csv(index=False)
    assert len(units) == int((result.weights > 0).sum())
    assert list(pd.read_csv(bal).columns) == BALANCE_COLUMNS


def test_option_effects_visible_in_output(files):
    folder, path, data = files
    _, out, _ = run(folder, path, "eff-cem", ["--method", "cem"], balance=False)
    cem = pd.read_csv(out)
    assert cem["distance"].isna().all() and cem["subclass"].notna().all()
    _, out, _ = run(folder, path, "eff-ipw", ["--method", "ipw"], balance=False)
    ipw = pd.read_csv(out)
    assert len(ipw) == len(data) and ipw["subclass"].isna().all()
    _, out, _ = run(folder, path, "eff-rep", ["--ratio", "2", "--replace"], balance=False)
    rep = pd.read_csv(out)
    assert rep["subclass"].isna().all()
    _, out, _ = run(folder, path, "eff-mah", ["--distance", "mahalanobis"], balance=False)
    mah = pd.read_csv(out)
    assert mah["distance"].isna().all()
    _, out, _ = run(folder, path, "eff-exact", ["--exact", "size"], balance=False)
    exact = pd.read_csv(out).merge(data[["kunta", "size"]], left_on="unit", right_on="kunta")
    assert exact.groupby("subclass")["size"].nunique().eq(1).all()


def test_random_order_reproducible(files):
    folder, path, _ = files
    texts = []
    for k, seed in enumerate(["1", "1", "2"]):
        code, out, _ = run(folder, path, f"random{k}", ["--order", "random", "--seed", seed],
                           balance=False)
        assert code == 0
        texts.append(out.read_text())
    assert texts[0] == texts[1]
    assert texts[0] != texts[2]


def test_caliper_warning_is_one_line(files, capsys):
    folder, path, data = files
    out = folder / "warn.csv"
    code = main(["match", "--data", str(path), *BASE, "--covariates", "a,b",
                 "--caliper", "0.02", "--output", str(out)])
    assert code == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line]
    assert len(lines) == 1
    assert lines[0].startswith("evaluation: warning (UnmatchedUnitsWarning): ")
    assert f"of {int(data['kokeilu'].sum())} treated units were dropped" in lines[0]


def test_user_score_column(files):
    folder, path, data = files
    code, out, _ = run(folder, path, "user-score", ["--distance", "ps"], balance=False)
    assert code == 0
    result = python_frame(data, ["a", "b"], distance="ps")
    assert out.read_text() == result.to_frame().to_csv(index=False)


def one_line_error(capsys) -> str:
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert "\n" not in err
    assert "Traceback" not in captured.err + captured.out
    assert err.startswith("evaluation match: error: ")
    return err


def test_non_binary_treatment_exits_2(tmp_path, capsys):
    data = make_units(n=30, seed=4)
    data.loc[[0, 5], "kokeilu"] = 2
    path = tmp_path / "bad.csv"
    data.to_csv(path, index=False)
    out = tmp_path / "out.csv"
    code = main(["match", "--data", str(path), *BASE, "--covariates", "a,b",
                 "--output", str(out)])
    assert code == 2
    err = one_line_error(capsys)
    assert "binary" in err and "'kokeilu'" in err
    assert not out.exists()


@pytest.mark.parametrize(("extra", "message"), [
    (["--covariates", "a,nope"], "'nope' not in the data"),
    (["--covariates", "a", "--exact", "nope"], "'nope' not in the data"),
    (["--covariates", "a,b", "--ratio", "0"], "ratio=0 must be a whole number of at least 1"),
    (["--covariates", "a,b", "--caliper", "-1"],
     "caliper=-1.0 must be a finite number greater than 0"),
    (["--covariates", "a,b", "--distance", "cosine"], "distance='cosine' is neither"),
    (["--covariates", "a,b", "--distance", "mahalanobis", "--order", "largest"],
     "needs a propensity or user score"),
    (["--covariates", "a,b", "--caliper", "1e-9"], "no treated unit got a match"),
    (["--covariates", "a,b", "--method", "cem", "--ratio", "2"],
     "method='cem' does not use ratio"),
])
def test_bad_input_exits_2(files, capsys, extra, message):
    folder, path, _ = files
    code = main(["match", "--data", str(path), *BASE, *extra,
                 "--output", str(folder / "never.csv")])
    assert code == 2
    assert message in one_line_error(capsys)
    assert not (folder / "never.csv").exists()


def test_missing_file_exits_2(tmp_path, capsys):
    code = main(["match", "--data", str(tmp_path / "nowhere.csv"), *BASE, "--covariates", "a",
                 "--output", str(tmp_path / "out.csv")])
    assert code == 2
    err = one_line_error(capsys)
    assert "nowhere.csv" in err and "does not exist" in err


def test_unsupported_extension_exits_2(tmp_path, capsys):
    path = tmp_path / "units.txt"
    path.write_text("kunta,kokeilu,a\n1,1,0.5\n")
    code = main(["match", "--data", str(path), *BASE, "--covariates", "a",
                 "--output", str(tmp_path / "out.csv")])
    assert code == 2
    assert "must end in .csv or .parquet" in one_line_error(capsys)


@pytest.mark.parametrize("argv", [
    ["--method", "genetic"],
    ["--order", "alphabetical"],
    ["--ratio", "two"],
])
def test_argparse_rejects_bad_choices(files, capsys, argv):
    folder, path, _ = files
    code = main(["match", "--data", str(path), *BASE, "--covariates", "a", *argv,
                 "--output", str(folder / "x.csv")])
    assert code == 2
    err = one_line_error(capsys)
    assert "invalid" in err and err.endswith("see `evaluation match --help`.")


def test_required_arguments(files, capsys):
    _, path, _ = files
    code = main(["match", "--data", str(path), *BASE, "--covariates", "a"])
    assert code == 2
    assert "the following arguments are required: --output" in one_line_error(capsys)


def test_parquet_input_agrees_with_csv(files):
    folder, path, data = files
    parquet = folder / "units.parquet"
    data.to_parquet(parquet)
    out_csv, out_parquet = folder / "from_csv.csv", folder / "from_parquet.csv"
    for source, out in ((path, out_csv), (parquet, out_parquet)):
        assert main(["match", "--data", str(source), *BASE, "--covariates", "a,b,region",
                     "--output", str(out)]) == 0
    assert out_csv.read_text() == out_parquet.read_text()
