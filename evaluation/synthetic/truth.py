"""True effects computed from the two potential outcomes the simulators draw."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

TRUTH_COLUMNS = ["design", "population", "outcome", "kind", "group", "time", "event_time",
                 "att", "n_units"]
_NOT_APPLICABLE = np.iinfo(np.int64).min  # marks group / time / event_time cells left empty


def truth_table(
    effects: Mapping[str, np.ndarray],
    cohort: np.ndarray,
    times: np.ndarray,
    populations: Mapping[str, np.ndarray],
    design: str,
    overall_event_range: tuple[int, int] | None = None,
    kinds: tuple[str, ...] = ("group_time", "event", "overall"),
) -> pd.DataFrame:
    r"""Tidy table of true group-time, event-time and overall effects.

    Parameters
    ----------
    effects
        Outcome name -> ``(n_units, n_periods)`` array of realised unit-level effects
        :math:`Y_{it}(1) - Y_{it}(0)` (both potential outcomes drawn by the simulator).
    cohort
        ``(n_units,)`` first treated period of each unit on the scale of ``times``; only
        units in a population need a meaningful value.
    times
        ``(n_periods,)`` integer period labels.
    populations
        Population name -> boolean unit mask (e.g. ``treated``, ``under30``, ``neighbours``).
    design
        Label of the cohort definition (e.g. ``first_treated`` or ``wave3``).
    overall_event_range
        Event times ``(lo, hi)`` that the overall effect averages over; default all
        post-treatment periods ``e >= 0``.
    kinds
        Which of ``group_time``, ``event`` and ``overall`` to compute.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`TRUTH_COLUMNS`.

    Notes
    -----
    With :math:`\tau_{it} = Y_{it}(1) - Y_{it}(0)` and :math:`G_i` the cohort,

    .. math::

        ATT(g,t) = \frac{1}{|\{i: G_i=g\}|} \sum_{i: G_i = g} \tau_{it}, \qquad
        ATT(e) = \frac{\sum_{i} \tau_{i,G_i+e}}{|\{i: G_i + e \text{ in the panel}\}|},

    and the overall ATT is the mean of :math:`\tau_{it}` over all cells with
    :math:`lo \le t - G_i \le hi`. These are the cohort-size weighted averages of
    ATT(g,t) that the ``event`` and ``simple`` aggregations of Callaway and Sant'Anna (2021)
    target.
    """
    times = np.asarray(times)
    columns: dict[str, list[np.ndarray]] = {c: [] for c in TRUTH_COLUMNS if c != "design"}

    def add(kind: str, pop: str, outcome: str, att: np.ndarray, n_units: np.ndarray,
            group: np.ndarray | None = None, time: np.ndarray | None = None,
            event_time: np.ndarray | None = None) -> None:
        size = att.size
        missing = np.full(size, _NOT_APPLICABLE, dtype=np.int64)
        columns["kind"].append(np.full(size, kind, dtype=object))
        columns["population"].append(np.full(size, pop, dtype=object))
        columns["outcome"].append(np.full(size, outcome, dtype=object))
        columns["group"].append(missing if group is None else np.broadcast_to(group, size))
        columns["time"].append(missing if time is None else time)
        columns["event_time"].append(missing if event_time is None else event_time)
        columns["att"].append(att)
        columns["n_units"].append(np.broadcast_to(n_units, size))

    for pop, mask in populations.items():
        rows = np.flatnonzero(mask)
        if rows.size == 0:
            continue
        g = np.asarray(cohort, dtype=np.int64)[rows]
        event = times[None, :] - g[:, None]
        e_min = int(event.min())
        e_index = (event - e_min).ravel()
        counts = np.bincount(e_index)  # every unit has one cell per event time on the grid
        present = counts > 0
        lo, hi = (0, np.inf) if overall_event_range is None else overall_event_range
        in_overall = (event >= lo) & (event <= hi)
        cohorts, sizes = np.unique(g, return_counts=True)
        for outcome, tau in effects.items():
            tau_pop = np.asarray(tau, dtype=float)[rows]
            if "group_time" in kinds:
                for c, size in zip(cohorts, sizes, strict=True):
                    add("group_time", pop, outcome, tau_pop[g == c].mean(axis=0),
                        np.int64(size), np.int64(c), times, times - c)
            if "event" in kinds:
                sums = np.bincount(e_index, weights=tau_pop.ravel(), minlength=counts.size)
                add("event", pop, outcome, sums[present] / counts[present], counts[present],
                    event_time=np.arange(e_min, e_min + counts.size)[present])
            if "overall" in kinds:
                overall = tau_pop[in_overall].mean() if in_overall.any() else np.nan
                add("overall", pop, outcome, np.array([overall]), np.int64(rows.size))
    if not columns["att"]:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in TRUTH_COLUMNS})
    table = pd.DataFrame({k: np.concatenate(v) for k, v in columns.items()})
    for col in ("group", "time", "event_time"):
        values = table[col].to_numpy(dtype=np.int64)
        table[col] = pd.arrays.IntegerArray(values, values == _NOT_APPLICABLE)
    for col in ("kind", "population", "outcome"):
        table[col] = table[col].astype(str)
    table["n_units"] = table["n_units"].astype(np.int64)
    table.insert(0, "design", design)
    return table[TRUTH_COLUMNS]


#: Months after a spell's last month that :func:`after_end_table` summarises (two years).
AFTER_END_RANGES: tuple[tuple[int, int], ...] = ((1, 12), (13, 24))


def after_end_table(
    effects: Mapping[str, np.ndarray],
    members: np.ndarray,
    times: np.ndarray,
    last_period: int,
    design: str,
    population: str = "post_wave",
    ranges: tuple[tuple[int, int], ...] = AFTER_END_RANGES,
) -> pd.DataFrame:
    r"""Tidy table of the true effects after a treatment spell ended (persistence).

    Parameters
    ----------
    effects
        Outcome name -> ``(n_units, n_periods)`` realised effects
        :math:`Y_{it}(1) - Y_{it}(0)`.
    members
        Boolean unit mask of the population (units whose spell ended in ``last_period``).
    times
        ``(n_periods,)`` integer period labels.
    last_period
        The spell's last treated period on the scale of ``times``.
    design, population
        Labels of the rows.
    ranges
        Inclusive ranges :math:`[lo, hi]` of periods after ``last_period`` to average over.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`TRUTH_COLUMNS`. ``kind`` is ``post_wave`` for one row per period
        :math:`t` with :math:`1 \le t - E \le \max hi` in the panel (``time`` = :math:`t`,
        ``event_time`` = :math:`t - E`, months since the last treated month), and
        ``post_wave_{lo}_{hi}`` for the average over each range (ranges wholly outside the
        panel are left out). Empty when the population is empty.

    Notes
    -----
    With :math:`E` = ``last_period`` and population :math:`P`,

    .. math::

        \tau^{post}(t) = \frac{1}{|P|}\sum_{i \in P} \tau_{it}, \qquad
        \tau^{post}_{[lo, hi]} = \frac{1}{|P|\,|T_{lo,hi}|}
            \sum_{i \in P}\sum_{t \in T_{lo,hi}} \tau_{it},

    where :math:`T_{lo,hi} = \{t : lo \le t - E \le hi\}` (periods in the panel).
    """
    times = np.asarray(times)
    rows = np.flatnonzero(members)
    after = times - last_period
    horizon = max(hi for _, hi in ranges)
    monthly = np.flatnonzero((after >= 1) & (after <= horizon))
    records: list[dict] = []
    if rows.size == 0 or monthly.size == 0:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in TRUTH_COLUMNS})
    for outcome, tau in effects.items():
        tau_pop = np.asarray(tau, dtype=float)[rows]
        means = tau_pop[:, monthly].mean(axis=0)
        for j, column in enumerate(monthly):
            records.append({"outcome": outcome, "kind": "post_wave", "time": times[column],
                            "event_time": after[column], "att": means[j]})
        for lo, hi in ranges:
            window = (after >= lo) & (after <= hi)
            if window.any():
                records.append({"outcome": outcome, "kind": f"post_wave_{lo}_{hi}",
                                "time": None, "event_time": None,
                                "att": tau_pop[:, window].mean()})
    table = pd.DataFrame.from_records(records)
    table.insert(0, "design", design)
    table.insert(1, "population", population)
    for col in ("design", "population", "outcome", "kind"):
        table[col] = table[col].astype(str)
    table["group"] = None
    table["n_units"] = np.int64(rows.size)
    for col in ("group", "time", "event_time"):
        table[col] = pd.array(table[col].astype(object).where(table[col].notna(), None),
                              dtype="Int64")
    return table[TRUTH_COLUMNS]
