"""CR2 with Bell-McCaffrey degrees of freedom against R clubSandwich (tests/reference/)."""

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _builders import staggered_panel

from evaluation.errors import FewClustersWarning, InvalidOptionError
from evaluation.estimators._fixed_effects import TwoWayDesign
from evaluation.estimators.did import TwoWayFixedEffects
from evaluation.inference.cr2 import cr2_two_way

REFERENCE = Path(__file__).parent / "reference"
VALUES = json.loads((REFERENCE / "cr2_clubsandwich.json").read_text())
KEYS = [key for key in VALUES if key != "versions"]


def _panel(name, weighting, clustering):
    data = pd.read_csv(REFERENCE / f"cr2_{name}.csv")
    return staggered_panel(data, weights="weight" if weighting == "weight" else None,
                           cluster="cluster" if clustering == "cluster" else None)


@pytest.mark.parametrize("key", KEYS)
def test_twfe_cr2_matches_clubsandwich(key):
    name, design, weighting, clustering = key.split("/")
    reference = VALUES[key]
    model = TwoWayFixedEffects(dynamic=design == "dynamic", leads=2, lags=2, se="cr2")
    if clustering == "cluster":  # 3 of 8 clusters treated
        with pytest.warns(FewClustersWarning, match="only 3 of 8 clusters"):
            fit = model.fit(_panel(name, weighting, clustering))
        assert fit.warnings and "the recommended inference here" in fit.warnings[0]
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("error", FewClustersWarning)
            fit = model.fit(_panel(name, weighting, clustering))
        assert not fit.warnings
    frame = fit.to_frame()
    np.testing.assert_allclose(fit.table["estimate"], reference["estimate"], rtol=0, atol=1e-8)
    np.testing.assert_allclose(fit.vcov, reference["vcov"], rtol=0, atol=1e-8)
    np.testing.assert_allclose(fit.table["std_error"], reference["std_error"], rtol=0,
                               atol=1e-8)
    np.testing.assert_allclose(fit.table["df"], reference["df"], rtol=0, atol=1e-8)
    np.testing.assert_allclose(frame["p_value"], reference["p_value"], rtol=0, atol=1e-8)
    np.testing.assert_allclose(frame["estimate"] / frame["std_error"], reference["t"],
                               rtol=0, atol=1e-8)
    assert fit.info["se"] == "cr2 (Bell-McCaffrey df)"


@pytest.mark.parametrize("key", [k for k in KEYS if "/cluster" in k])
def test_dense_and_low_rank_adjustments_agree(key):
    name, design, weighting, _ = key.split("/")
    data = pd.read_csv(REFERENCE / f"cr2_{name}.csv")
    terms = ["treated"] if design == "static" else [c for c in data if c.startswith("e_")]
    unit = pd.factorize(data["unit"])[0]
    time = pd.factorize(data["time"], sort=True)[0]
    weights = data["weight"].to_numpy() if weighting == "weight" else None
    fe = TwoWayDesign(unit, time, np.ones(len(data), dtype=bool), unit.max() + 1,
                      time.max() + 1, weights)
    x = fe.demean(data[terms].to_numpy(dtype=float))
    y = fe.demean(data[["y"]].to_numpy(dtype=float))[:, 0]
    w = np.ones(len(data)) if weights is None else weights
    beta = np.linalg.solve(x.T @ (w[:, None] * x), x.T @ (w * y))
    cluster = pd.factorize(data["cluster"])[0]
    fits = [cr2_two_way(x, y - x @ beta, weights, unit, time, cluster, path=path)
            for path in ("dense", "low-rank")]
    np.testing.assert_allclose(fits[0].vcov, fits[1].vcov, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(fits[0].dfs, fits[1].dfs, rtol=1e-10)
    np.testing.assert_allclose(fits[1].vcov, VALUES[key]["vcov"], rtol=0, atol=1e-8)


def test_cr2_to_frame_uses_t_quantiles():
    panel = _panel("balanced", "none", "cluster")
    with pytest.warns(FewClustersWarning):
        fit = TwoWayFixedEffects(se="cr2", alpha=0.1).fit(panel)
    frame = fit.to_frame()
    from scipy.stats import t as student

    half = student.ppf(0.95, fit.table["df"].iloc[0]) * fit.table["std_error"].iloc[0]
    assert frame["ci_upper"].iloc[0] - frame["estimate"].iloc[0] == pytest.approx(half)


def test_cr2_with_large_cluster_is_cheap():
    """A cluster of 40,000 rows never builds a dense n_c x n_c matrix (low-rank update)."""
    rng = np.random.default_rng(5)
    units, periods = 8_000, 10
    unit = np.repeat(np.arange(units), periods)
    time = np.tile(np.arange(periods), units)
    cluster = unit % 2
    x = ((unit % 4 == 0) & (time >= 5)).astype(float)[:, None]
    fe = TwoWayDesign(unit, time, np.ones(unit.size, dtype=bool), units, periods)
    xt = fe.demean(x)
    y = fe.demean((rng.normal(size=unit.size) + x[:, 0])[:, None])[:, 0]
    beta = (xt[:, 0] @ y) / (xt[:, 0] @ xt[:, 0])
    fit = cr2_two_way(xt, y - xt[:, 0] * beta, None, unit, time, cluster)
    assert np.isfinite(fit.vcov).all() and fit.dfs[0] > 0
    with pytest.raises(InvalidOptionError, match="se='wild'"):
        cr2_two_way(xt, y - xt[:, 0] * beta, None, unit, time, cluster, path="dense")


@pytest.mark.parametrize("option, value", [("se", "cr3"), ("wild_weights", "normal"),
                                           ("wild_null", "yes"), ("draws", 0), ("seed", -1)])
def test_invalid_inference_options(option, value):
    with pytest.raises(InvalidOptionError, match=option):
        TwoWayFixedEffects(**{option: value})


def test_cr2_refuses_tens_of_thousands_of_clusters(monkeypatch):
    import evaluation.inference.cr2 as cr2

    monkeypatch.setattr(cr2, "MAX_CLUSTERS", 5)
    data = pd.read_csv(REFERENCE / "cr2_balanced.csv")
    with pytest.raises(InvalidOptionError, match="se='analytic'"):
        TwoWayFixedEffects(se="cr2").fit(staggered_panel(data))
