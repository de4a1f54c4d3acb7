"""Build the panels on which ``dcdh_reference.py`` runs ``did_multiplegt_dyn`` (project venv).

Run from the repository root with the project's virtualenv::

    .venv/bin/python tests/reference/dcdh_panels.py

It writes ``tests/reference/dcdh_<name>.csv`` (columns ``unit, time, d, y, x, cluster,
weight``; ``d`` is the 0/1 treatment status, ``x`` a time-varying control):

* ``staggered``: absorbing staggered adoption from :func:`evaluation.simulate.simulate_staggered`
  (cohorts 4, 6, 8 and never treated, dynamic effects).
* ``onoff``: the same simulator's outcomes with a status that switches off after 3 periods;
  a third of the units start treated and switch out (switchers in and out).
* ``onoff_unbalanced``: ``onoff`` with 5 % of the unit-periods dropped at random.
* ``municipal``: 120 municipalities x 180 months of
  :func:`evaluation.simulate.simulate_municipalities` with the simulator's own multi-wave
  trial status ``treated`` (waves 2012-2015, 2017-2018, 2021-2024, switching off at each
  wave's end), outcome ``unemployment_rate``, control the vacancy rate, cluster the ELY
  region and weight the labour force of January 2010.
"""

from __future__ import annotations

import pathlib

import numpy as np
import pandas as pd

HERE = pathlib.Path(__file__).parent
COLUMNS = ["unit", "time", "d", "y", "x", "cluster", "weight"]


def staggered() -> pd.DataFrame:
    """Absorbing staggered adoption (simulator defaults, small)."""
    from evaluation.simulate import simulate_staggered

    sim = simulate_staggered(seed=11, n_units=240, n_periods=10, cohorts=(4, 6, 8),
                             keep_potential_outcomes=False)
    data = sim.data
    rng = np.random.default_rng(13)
    control = (rng.normal(size=len(data)) + 0.1 * data["time"] * (data["unit"] % 4)).round(4)
    return pd.DataFrame({
        "unit": data["unit"], "time": data["time"], "d": data["treated"].astype(int),
        "y": (data["y"] + 0.5 * control).round(6), "x": control,
        "cluster": (data["unit"] % 24).astype(int),
        "weight": (1 + data["unit"] % 3).astype(float)})


def onoff() -> pd.DataFrame:
    """Status on for 3 periods from the cohort, then off; a third of units start treated."""
    frame = staggered()
    rng = np.random.default_rng(5)
    cohort = frame.groupby("unit")["d"].transform(
        lambda d: frame.loc[d.index, "time"][d.to_numpy() == 1].min())
    on = (frame["time"] >= cohort) & (frame["time"] < cohort + 3)
    starts_treated = frame["unit"] % 3 == 0
    status = np.where(starts_treated, ~on, on).astype(int)
    effect = 1.0 + 0.25 * (frame["time"] - 5)
    frame["y"] = (frame["y"] - 2.0 * frame["d"] + effect * status
                  + rng.normal(0, 0.1, len(frame))).round(6)
    frame["d"] = status
    return frame


def onoff_unbalanced() -> pd.DataFrame:
    """``onoff`` with 5 % of the rows dropped."""
    frame = onoff()
    rng = np.random.default_rng(9)
    return frame.drop(index=rng.choice(len(frame), len(frame) // 20, replace=False))


def municipal() -> pd.DataFrame:
    """Municipal simulator: 120 municipalities, all months, the three-wave status."""
    from evaluation.simulate import simulate_municipalities

    data = simulate_municipalities(seed=3).data
    names = data["municipality"].unique()
    chosen = names[np.random.default_rng(2).choice(len(names), 120, replace=False)]
    data = data[data["municipality"].isin(chosen)]
    unit = pd.factorize(data["municipality"], sort=True)[0] + 1
    first_force = data.groupby("municipality")["labour_force"].transform("first")
    return pd.DataFrame({
        "unit": unit, "time": data["t"].astype(int), "d": data["treated"].astype(int),
        "y": data["unemployment_rate"].round(6),
        "x": (100 * data["vacancies"] / data["labour_force"]).round(6),
        "cluster": pd.factorize(data["ely"], sort=True)[0] + 1,
        "weight": first_force.astype(float)})


PANELS = {"staggered": staggered, "onoff": onoff, "onoff_unbalanced": onoff_unbalanced,
          "municipal": municipal}


if __name__ == "__main__":
    for name, make in PANELS.items():
        frame = make()[COLUMNS].sort_values(["unit", "time"])
        frame.to_csv(HERE / f"dcdh_{name}.csv", index=False)
        print(name, frame.shape)
