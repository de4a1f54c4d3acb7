"""Unit-level data sets for the MatchIt reference values (``matchit_reference.R``).

Run from the repository root with the package importable::

    PYTHONPATH=. python tests/reference/matching_data.py

Both data sets come from the project's simulators at their default seeds
(``DEFAULT_SEED``, design seed = seed), so they are fully deterministic. Continuous
covariates are written with exactly 10 decimals (``%.10f``) so that R and Python parse the
same doubles from the text.

``matching_municipalities.csv`` -- wave 1 (Kuntakokeilu, from 2012M09), one row per
municipality of ``simulate_municipalities()``:

* ``treated`` = 1 for municipalities in a wave-1 trial area (``area_w1`` non-empty), 0 for
  municipalities in neither a wave-1 nor a wave-2 area (wave-3 and never-treated ones).
  Wave-2-only municipalities are dropped.
* ``unemp_2011``: mean monthly ``unemployment_rate`` (percent) in 2011;
  ``unemp_trend``: 2011 mean minus 2010 mean;
  ``log_pop``: natural log of ``population``;
  ``ltu_share``, ``foreign_share``, ``vacancy_ratio``: unit attributes of ``.units``;
  ``ely``: region (string); ``size_class``: ``small`` (< 10,000 inhabitants), ``medium``
  (10,000-49,999) or ``large`` (>= 50,000).

``matching_individuals.csv`` -- wave-1 target group of ``simulate_jobseekers(40_000,
wave_number=1)`` (72 months, 2010M01-2015M12), one row per person:

* Only target-group members (long-term unemployed or in services at 2012M08, the month
  before the trial) are kept, since only they can be treated.
* ``treated`` = 1 if the person lives in a wave-1 trial municipality (the simulator's
  ``treated``), 0 if the municipality is in neither a wave-1 nor a wave-2 area (as above);
  target-group members of wave-2-only municipalities are dropped.
* ``age`` (years at 2012M08); ``immigrant`` (``"yes"``/``"no"``); ``era_member``
  (``"yes"``/``"no"``, member of an unemployment fund); ``state_ref`` (``"unemployed"`` or
  ``"services"`` at 2012M08); ``duration_ref`` (months of unemployment at 2012M08);
  ``unemp_months_pre24`` (months unemployed in the 24 months 2010M09-2012M08, the
  pre-period outcome summary). The unobserved ``frailty`` class is not included.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from evaluation import simulate_jobseekers, simulate_municipalities
from evaluation.sources.trials import month_index, wave

HERE = Path(__file__).resolve().parent
N_PEOPLE = 40_000


def _size_class(population: pd.Series) -> pd.Series:
    return pd.Series(np.select([population < 10_000, population < 50_000],
                               ["small", "medium"], "large"), index=population.index)


def municipalities() -> pd.DataFrame:
    sim = simulate_municipalities(keep_potential_outcomes=False)
    units = sim.units.set_index("municipality")
    in_w1 = units["area_w1"].astype(str) != ""
    in_w2 = units["area_w2"].astype(str) != ""
    keep = in_w1 | ~in_w2
    yearly = (sim.data.loc[sim.data["year"].isin([2010, 2011])]
              .groupby(["municipality", "year"])["unemployment_rate"].mean().unstack("year"))
    out = pd.DataFrame({
        "municipality": units.index,
        "treated": in_w1.astype(int).to_numpy(),
        "unemp_2011": yearly.loc[units.index, 2011].to_numpy(),
        "unemp_trend": (yearly.loc[units.index, 2011] - yearly.loc[units.index, 2010]).to_numpy(),
        "log_pop": np.log(units["population"].to_numpy(dtype=float)),
        "ltu_share": units["ltu_share"].to_numpy(),
        "foreign_share": units["foreign_share"].to_numpy(),
        "vacancy_ratio": units["vacancy_ratio"].to_numpy(),
        "ely": units["ely"].astype(str).to_numpy(),
        "size_class": _size_class(units["population"]).to_numpy(),
    })
    return out.loc[keep.to_numpy()].reset_index(drop=True)


def individuals() -> pd.DataFrame:
    w = wave(1)
    sim = simulate_jobseekers(N_PEOPLE, wave_number=1)
    muni = simulate_municipalities(keep_potential_outcomes=False).units.set_index("municipality")
    in_w2_only = (muni["area_w1"].astype(str) == "") & (muni["area_w2"].astype(str) != "")
    people = sim.units
    data = sim.data
    start = month_index(w.start)
    reference = start - 1
    pre = data.loc[(data["t"] >= start - 24) & (data["t"] < start)]
    months_unemployed = pre.groupby("person")["unemployed"].sum()
    at_ref = data.loc[data["t"] == reference].set_index("person")
    assert np.array_equal(months_unemployed.index, people["person"]) and len(at_ref) == len(people)
    out = pd.DataFrame({
        "person": people["person"].to_numpy(),
        "treated": people["treated"].astype(int).to_numpy(),
        "age": people["age"].astype(int).to_numpy(),
        "immigrant": np.where(people["immigrant"], "yes", "no"),
        "era_member": np.where(people["era_member"], "yes", "no"),
        "state_ref": people["state_at_reference"].astype(str).to_numpy(),
        "duration_ref": at_ref.loc[people["person"], "unemployment_duration"].astype(int)
        .to_numpy(),
        "unemp_months_pre24": months_unemployed.loc[people["person"]].astype(int).to_numpy(),
    })
    keep = (people["target_group"].to_numpy()
            & ~people["municipality"].map(in_w2_only).to_numpy(dtype=bool))
    assert not (people["treated"] & ~people["target_group"]).any()
    return out.loc[keep].reset_index(drop=True)


def main() -> None:
    muni = municipalities()
    muni.to_csv(HERE / "matching_municipalities.csv", index=False, float_format="%.10f")
    people = individuals()
    people.to_csv(HERE / "matching_individuals.csv", index=False, float_format="%.10f")
    for name, frame in (("municipalities", muni), ("individuals", people)):
        print(f"{name}: {len(frame)} rows, {int(frame['treated'].sum())} treated "
              f"({frame['treated'].mean():.1%})")


if __name__ == "__main__":
    main()
