"""The jobseeker simulator's output tables: the people table and the person-month panel.

:func:`evaluation.simulate.simulate_jobseekers` draws the chains
(:mod:`evaluation.synthetic.jobseekers`); these functions lay them out in the data schema
of the README.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from evaluation.sources.trials import Wave, month_index
from evaluation.synthetic import jobseekers as js
from evaluation.synthetic.design import Design


def people_table(design: Design, people: js.People, target: np.ndarray, wave_number: int,
                 reference: int, paths: js.ChainPaths) -> pd.DataFrame:
    """Return one row per person: characteristics in the reference month (column ``reference``).

    ``target`` marks the target group; ``treated`` adds living in one of the wave's trial
    municipalities.
    """
    muni = design.municipalities
    age_ref = people.age0 + (reference + people.birth_offset) // 12
    duration_ref = paths.duration[:, reference]
    return pd.DataFrame({
        "person": np.arange(people.municipality.size, dtype=np.int32),
        "municipality": muni["municipality"].to_numpy()[people.municipality],
        "ely": muni["ely"].to_numpy()[people.municipality],
        "area": design.area_ids(wave_number)[people.municipality],
        "age": age_ref.astype(np.int16),
        "under30": age_ref < 30,
        "immigrant": people.immigrant,
        "era_member": people.era_member,
        "era_entitled": people.era_member & (duration_ref < js.ERA_MONTHS),
        "frailty": people.frailty.astype(np.int8),
        "state_at_reference": pd.Categorical.from_codes(paths.state[:, reference], js.STATES),
        "target_group": target,
        "treated": target & design.treated(wave_number)[people.municipality],
    })


def jobseeker_frame(design: Design, people: js.People, units: pd.DataFrame,
                    paths: js.ChainPaths, costs: tuple, months: pd.PeriodIndex, t: np.ndarray,
                    w: Wave) -> pd.DataFrame:
    """Return the person-month panel of the trial world (``paths``, ``costs``) in the schema.

    ``units`` is :func:`people_table`; ``t`` holds the month indices of ``months``.
    """
    n, n_t = people.municipality.size, t.size
    start = month_index(w.start)
    treated = units["treated"].to_numpy()

    def per_person(values: np.ndarray) -> np.ndarray:
        return np.repeat(values, n_t)

    cost, municipal = costs[1]
    state = paths.state.ravel()
    cols: dict[str, Any] = {
        "person": per_person(np.arange(n, dtype=np.int32)),
        "municipality": pd.Categorical.from_codes(
            per_person(people.municipality), design.municipalities["municipality"]),
        "month": pd.Categorical.from_codes(np.tile(np.arange(n_t, dtype=np.int16), n),
                                           js.month_labels(months)),
        "t": np.tile(t.astype(np.int16), n),
        "age": (people.age0[:, None] + (np.arange(n_t)[None, :] + people.birth_offset[:, None])
                // 12).astype(np.int8).ravel(),
        "under30": per_person(units["under30"].to_numpy()),
        "immigrant": per_person(people.immigrant),
        "era_member": per_person(people.era_member),
        "unemployment_duration": paths.duration.ravel(),
        "state": pd.Categorical.from_codes(state, js.STATES),
    }
    for name, states in js._STATE_OUTCOMES.items():
        lookup = np.isin(np.arange(6), states).astype(np.int8)
        cols[name] = lookup[state]
    cols["plan"] = paths.plan.ravel()
    cols["lms_cost"] = cost.ravel()
    cols["lms_cost_state"] = (cost - municipal).ravel()
    cols["lms_cost_municipal"] = municipal.ravel()
    cols["target_group"] = per_person(units["target_group"].to_numpy())
    cols["treated"] = per_person(treated)
    cols["cohort"] = per_person(np.where(treated, start, 0).astype(np.int16))
    running = ((t >= start) & (t < start + w.n_months)).astype(np.int8)
    cols["status"] = (treated[:, None] * running[None, :]).astype(np.int8).ravel()
    return pd.DataFrame(cols, copy=False)
