"""Minimum detectable effects: normal and t reference distributions."""

import numpy as np
import pytest
from scipy import stats

from evaluation.estimators.results import minimum_detectable_effect


def test_normal_mde_is_2_8_standard_errors_and_has_80_percent_power():
    mde = minimum_detectable_effect(0.5)
    assert mde == pytest.approx((stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) * 0.5, rel=1e-12)
    z = stats.norm.ppf(0.975)
    power = stats.norm.sf(z - mde / 0.5) + stats.norm.cdf(-z - mde / 0.5)
    assert power == pytest.approx(0.80, abs=1e-3)


@pytest.mark.parametrize("df", [5, 14, 60])
def test_t_mde_has_about_80_percent_power_under_the_noncentral_t(df):
    mde = minimum_detectable_effect(1.0, df=df)
    assert mde == pytest.approx(stats.t.ppf(0.975, df) + stats.t.ppf(0.8, df), rel=1e-12)
    crit = stats.t.ppf(0.975, df)
    power = stats.nct.sf(crit, df, mde) + stats.nct.cdf(-crit, df, mde)
    assert power == pytest.approx(0.80, abs=0.01)
    assert mde > minimum_detectable_effect(1.0)


def test_vectorised_df_with_nan_rows_falls_back_to_normal():
    out = minimum_detectable_effect(np.array([1.0, 2.0]), df=np.array([np.nan, 14.0]))
    assert out[0] == pytest.approx(minimum_detectable_effect(1.0), rel=1e-12)
    assert out[1] == pytest.approx(2 * minimum_detectable_effect(1.0, df=14), rel=1e-12)
