"""Two-way fixed effects against pyfixest values committed in tests/reference/."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _builders import staggered_panel

from evaluation.estimators.did import TwoWayFixedEffects

REFERENCE = Path(__file__).parent / "reference"
VALUES = json.loads((REFERENCE / "twfe_pyfixest.json").read_text())


@pytest.mark.parametrize("dynamic", [False, True])
@pytest.mark.parametrize("cluster", ["unit", "cluster"])
@pytest.mark.parametrize("small_sample", [False, True])
def test_twfe_matches_pyfixest(dynamic, cluster, small_sample):
    data = pd.read_csv(REFERENCE / "twfe_panel.csv")
    panel = staggered_panel(data, cluster=None if cluster == "unit" else "cluster")
    model = TwoWayFixedEffects(dynamic=dynamic, leads=4, lags=3, small_sample=small_sample)
    fit = model.fit(panel)
    key = f"{'dynamic' if dynamic else 'static'}/{cluster}/"
    reference = VALUES[key + ("small_sample" if small_sample else "none")]
    assert len(reference["estimate"]) == len(fit.table)
    np.testing.assert_allclose(fit.table["estimate"], reference["estimate"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(fit.table["std_error"], reference["std_error"], rtol=0,
                               atol=1e-6)
    if dynamic:
        expected = [t.replace("e_m", "-").replace("e_p", "") for t in reference["terms"]]
        assert [t.lstrip("<=>") for t in fit.table["term"]] == expected
