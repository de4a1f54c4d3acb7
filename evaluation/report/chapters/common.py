"""Pieces shared by the chapter modules: effect columns and the overall row of a table."""

from __future__ import annotations

import warnings

import pandas as pd

from evaluation.errors import EvaluationWarning

EFFECT_COLUMNS = ["estimate", "std_error", "ci_lower", "ci_upper", "p_value"]


def _quiet(function, *args, **kwargs):
    """Call ``function`` with the package's informational warnings silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EvaluationWarning)
        return function(*args, **kwargs)


def _overall_row(table: pd.DataFrame) -> pd.Series:
    rows = table[table["term"].astype(str).isin(["overall", "ATT"])]
    return (rows if len(rows) else table).iloc[-1]
