"""Pieces shared by the chapter modules: effect columns and the overall row of a table."""

from __future__ import annotations

import pandas as pd

EFFECT_COLUMNS = ["estimate", "std_error", "ci_lower", "ci_upper", "p_value"]


def overall_row(table: pd.DataFrame) -> pd.Series:
    """Return the overall (``overall`` or ``ATT``) row of a tidy table, else its last row."""
    rows = table[table["term"].astype(str).isin(["overall", "ATT"])]
    return (rows if len(rows) else table).iloc[-1]
