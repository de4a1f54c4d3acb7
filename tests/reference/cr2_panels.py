"""Write the small panels on which ``cr2_clubsandwich.R`` computes reference CR2 values.

Run from the repository root (``PYTHONPATH=. python tests/reference/cr2_panels.py``). It
writes ``cr2_balanced.csv`` (30 units x 6 periods in 8 clusters of 2-5 units; cohorts 3 and
5 in three clusters, the rest never treated) and ``cr2_unbalanced.csv`` (the same panel with
about 12 % of the rows dropped at random, every unit keeping at least two rows). Columns:
``unit, time, cohort`` (0 = never treated), ``treated``, ``y``, ``weight`` (constant within
unit), ``cluster`` and the event-time dummies ``e_m2, e_p0, e_p1, e_p2`` of the event study
with reference period -1 and event times binned at -2 and 2 (built with the package's own
``event_time_dummies`` so R and Python use identical regressors). Numbers are written with
17 significant digits (exact double round trip).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from evaluation.estimators.did import event_time_dummies

HERE = Path(__file__).resolve().parent
SIZES = [2, 3, 3, 4, 4, 5, 4, 5]
COHORT_OF_CLUSTER = {0: 3, 1: 3, 2: 5}


def balanced(seed: int = 2018) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cluster = np.repeat(np.arange(len(SIZES)), SIZES)
    n_units, n_periods = cluster.size, 6
    unit = np.repeat(np.arange(1, n_units + 1), n_periods)
    time = np.tile(np.arange(1, n_periods + 1), n_units)
    unit_cluster = cluster[unit - 1]
    cohort = np.array([COHORT_OF_CLUSTER.get(c, 0) for c in unit_cluster])
    treated = (cohort > 0) & (time >= cohort)
    shock = rng.normal(0, 1, (len(SIZES), n_periods))[unit_cluster, time - 1]
    scale = 0.5 + unit_cluster / 4
    y = (rng.normal(0, 1, n_units)[unit - 1] + 0.3 * time + 0.8 * shock
         + (1.0 + 0.2 * (time - cohort)) * treated + scale * rng.normal(0, 1, unit.size))
    weight = rng.uniform(0.5, 2.0, n_units)[unit - 1]
    return pd.DataFrame({"unit": unit, "time": time, "cohort": cohort,
                         "treated": treated.astype(int), "y": y, "weight": weight,
                         "cluster": unit_cluster + 1})


def add_event_dummies(data: pd.DataFrame) -> pd.DataFrame:
    event = np.where(data["cohort"] > 0, data["time"] - data["cohort"], np.nan)
    columns, values, _ = event_time_dummies(event, -1, 2, 2)
    for column, e in zip(columns.T, values):
        data[f"e_m{-e}" if e < 0 else f"e_p{e}"] = column.astype(int)
    return data


def unbalanced(data: pd.DataFrame, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    drop = rng.random(len(data)) < 0.12
    kept = data[~drop]
    rows = kept.groupby("unit")["time"].transform("size")
    return data[~drop & (rows.reindex(data.index, fill_value=0) >= 2)].reset_index(drop=True)


def main() -> None:
    full = balanced()
    for name, frame in (("balanced", full), ("unbalanced", unbalanced(full))):
        add_event_dummies(frame.copy()).to_csv(HERE / f"cr2_{name}.csv", index=False,
                                               float_format="%.17g")


if __name__ == "__main__":
    main()
