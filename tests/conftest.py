"""Fixtures shared by several test modules (plain builders are in ``_builders.py``)."""

import pytest

from evaluation.simulate import simulate_staggered


@pytest.fixture(scope="session")
def heterogeneous_staggered():
    """6000 units x 10 periods, cohorts 3, 5, 7 whose dynamic effects differ strongly.

    Dynamic TWFE is biased on it, the heterogeneity-robust estimators are not.
    """
    return simulate_staggered(n_units=6000, n_periods=10, cohorts=(3, 5, 7), effect=1.0,
                              dynamic=0.5, cohort_effects=(3.0, 1.0, 0.2), seed=9)
