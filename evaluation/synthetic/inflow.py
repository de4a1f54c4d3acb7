r"""People who enter a wave's target group during the trial (inflow cohorts).

The individual-level design follows a cohort: the target-group members at a reference date
before the trial. Real target groups also take in people during the trial (newly unemployed
without earnings-related allowance, newly arrived immigrants, people whose spell reaches a
year), whom the trial serves from the month they enter. The scenario's ``inflow`` adds such
entrants as extra people, so a fixed cohort describes only the stock.

An entrant is outside the labour force (not registered) until the start of an unemployment
spell, is unemployed from then until the *entry month* :math:`t_e`, in which the spell
first meets the wave's target rule (one month for wave 3, twelve months for the long-term
unemployed of waves 1 and 2), and then moves freely. In a trial municipality the trial
treats the entrant's transitions from :math:`t_e + 1` on, the entrant's first trial month
(``cohort_entry``); before that both worlds coincide, so the entrant's
:math:`Y(1) - Y(0)` is exact and zero up to :math:`t_e`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from evaluation.sources.trials import Wave, month_index
from evaluation.synthetic.design import Design
from evaluation.synthetic.jobseekers import (
    PLAN_PROBABILITY,
    SV,
    ChainPaths,
    O,
    People,
    TransitionTable,
    U,
    _age_group,
    _empty_paths,
    _next_duration,
    _step,
    draw_people,
)
from evaluation.synthetic.scenario import Scenario

#: Months of unemployment with which an entrant meets each wave's target rule.
ENTRY_SPELL = {1: 12, 2: 12, 3: 1}


@dataclass
class Entrants:
    """Extra people who enter the target group during the trial.

    Attributes
    ----------
    people
        Their static attributes (drawn like everyone else's).
    spell_start
        Month ``t`` in which their unemployment spell starts.
    entry
        Month ``t`` in which they first meet the target rule (the entry month).
    """

    people: People
    spell_start: np.ndarray
    entry: np.ndarray


def draw_entrants(design: Design, scenario: Scenario, wave: Wave, n_people: int,
                  months: pd.PeriodIndex, rule, rng: np.random.Generator) -> Entrants | None:
    r"""Draw ``round(inflow * n_people)`` entrants who meet the wave's rule at entry.

    Parameters
    ----------
    design, scenario, wave
        The country, the world and the simulated wave.
    n_people
        Size of the reference-date sample.
    months
        The panel window (ages are counted as in the chains).
    rule
        The wave's target rule, ``rule(state, duration, age, people)``.
    rng
        Generator of the inflow stream.

    Returns
    -------
    Entrants or None
        None when no one enters.

    Notes
    -----
    Entry months are uniform on :math:`[g + d - 1,\ g + n_w - 2]` (:math:`g` the wave's
    first month, :math:`n_w` its length, :math:`d` = :data:`ENTRY_SPELL`), so the spell
    starts within the trial, after the reference month, and the first trial month
    :math:`t_e + 1` lies within the wave. Candidates are drawn like the sample and kept when
    the rule holds for an unemployed person with a :math:`d`-month spell at their age in
    the entry month (wave 3: no earnings-related allowance, under 30 or immigrant).
    """
    n_in = round(scenario.inflow * n_people)
    if n_in == 0:
        return None
    spell = ENTRY_SPELL[wave.number]
    start = month_index(wave.start)
    t0 = month_index(months[0])
    parts: list[tuple[People, np.ndarray]] = []
    found = 0
    while found < n_in:
        size = 2 * (n_in - found) + 16
        batch = draw_people(design, size, rng)
        entry = rng.integers(start + spell - 1, start + wave.n_months - 1, size)
        age = batch.age0 + (entry - t0 + batch.birth_offset) // 12
        eligible = rule(np.full(size, U, np.int8), np.full(size, spell, np.int16), age, batch)
        keep = np.flatnonzero(eligible)[: n_in - found]
        parts.append((take_people(batch, keep), entry[keep]))
        found += keep.size
    people = concat_people(*(p for p, _ in parts))
    entry = np.concatenate([e for _, e in parts])
    return Entrants(people, entry - spell + 1, entry)


def take_people(people: People, rows: np.ndarray) -> People:
    """Return the rows ``rows`` of every attribute."""
    return People(*(getattr(people, f.name)[rows] for f in fields(People)))


def concat_people(*parts: People) -> People:
    """Stack people (in order)."""
    return People(*(np.concatenate([getattr(p, f.name) for p in parts])
                    for f in fields(People)))


def concat_paths(*parts: ChainPaths) -> ChainPaths:
    """Stack the paths of several groups of people (in order)."""
    return ChainPaths(*(np.concatenate([getattr(p, f.name) for p in parts])
                        for f in fields(ChainPaths)))


class EntrantChains:
    """Both worlds' chains of the entrants, stepped inside :func:`simulate_chains`.

    Every month draws one transition and one plan uniform per entrant from the inflow
    generator (never from the sample's), forces the pre-entry states and, for entrants in
    reach of the trial, runs the trial-world chain with exposed transition types from the
    month after entry.
    """

    def __init__(self, entrants: Entrants, rng: np.random.Generator) -> None:
        self.entrants = entrants
        self.rng = rng

    def start(self, table: TransitionTable, reach: np.ndarray, months: pd.PeriodIndex) -> None:
        """Set up the chains (called once by the sample's simulation)."""
        people = self.entrants.people
        n = people.municipality.size
        self.table = table
        self.static = table.static_index(people)
        self.t0 = month_index(months[0])
        self.rows = np.flatnonzero(reach[people.municipality])  # simulated twice
        self.state = np.full(n, O, np.int8)
        self.duration = np.zeros(n, np.int16)
        self.state1, self.duration1 = self.state[self.rows], self.duration[self.rows]
        self.without = _empty_paths(n, len(months))
        self.sub = _empty_paths(self.rows.size, len(months))

    def _force(self, state: np.ndarray, duration: np.ndarray, t: int,
               rows: np.ndarray | slice) -> tuple[np.ndarray, np.ndarray]:
        spell_start, entry = self.entrants.spell_start[rows], self.entrants.entry[rows]
        before = t < spell_start
        spell = ~before & (t <= entry)
        state = np.where(before, O, np.where(spell, U, state)).astype(np.int8)
        duration = np.where(before, 0, np.where(spell, t - spell_start + 1, duration))
        return state, duration.astype(np.int16)

    def step(self, j: int, month: pd.Period, event: int, cum: np.ndarray) -> None:
        """Advance both chains to month ``j`` of the window (negative in the burn-in)."""
        people, rows, table = self.entrants.people, self.rows, self.table
        t = self.t0 + j
        age_group = _age_group(people.age0 + (j + people.birth_offset) // 12)
        u = self.rng.random(people.municipality.size, dtype=np.float32)
        u_plan = self.rng.random(people.municipality.size, dtype=np.float32)
        new = _step(cum, table.type_index(self.static, age_group, self.duration, 0),
                    self.state, u)
        self.state, self.duration = self._force(
            new, _next_duration(self.state, new, self.duration), t, slice(None))
        treated = t > self.entrants.entry[rows]
        new = _step(cum, table.type_index(self.static[rows], age_group[rows], self.duration1,
                                          treated.astype(np.int64)), self.state1, u[rows])
        self.state1, self.duration1 = self._force(
            new, _next_duration(self.state1, new, self.duration1), t, rows)
        if j < 0:
            return
        _, _, plan_change = table.treatment(event)
        p_plan = np.where(treated, PLAN_PROBABILITY * np.clip(
            1 + plan_change * table.strength[people.municipality[rows]], 0, None),
            PLAN_PROBABILITY)
        for paths, state, duration, draw, p in (
                (self.without, self.state, self.duration, u_plan, PLAN_PROBABILITY),
                (self.sub, self.state1, self.duration1, u_plan[rows], p_plan)):
            paths.state[:, j] = state
            paths.duration[:, j] = duration
            paths.plan[:, j] = ((state == U) | (state == SV)) & (draw < p)

    def paths(self) -> tuple[ChainPaths, ChainPaths]:
        """Return the entrants' paths without and with the trial."""
        with_trial = ChainPaths(*(getattr(self.without, f.name).copy()
                                  for f in fields(ChainPaths)))
        for f in fields(ChainPaths):
            getattr(with_trial, f.name)[self.rows] = getattr(self.sub, f.name)
        return self.without, with_trial


def entry_columns(entrants: Entrants, n_sample: int, target: np.ndarray,
                  in_trial: np.ndarray, start: int) -> dict[str, np.ndarray]:
    """Per-person columns that mark entrants (sample first, then entrants).

    Returns ``entrant`` (bool), ``entry_month`` (``t`` of the entry month, 0 for the
    sample) and ``cohort_entry``: the first trial month counting entrants (the wave's
    first month for treated sample members, the month after entry for entrants in a trial
    municipality, 0 otherwise). ``target`` and ``in_trial`` cover everyone.
    """
    n_in = entrants.entry.size
    entrant = np.r_[np.zeros(n_sample, bool), np.ones(n_in, bool)]
    entry_month = np.r_[np.zeros(n_sample, np.int16), entrants.entry.astype(np.int16)]
    first = np.where(entrant, entry_month + 1, start)
    cohort_entry = np.where((target | entrant) & in_trial, first, 0).astype(np.int16)
    return {"entrant": entrant, "entry_month": entry_month, "cohort_entry": cohort_entry}


def entry_design(columns: dict[str, np.ndarray], target: np.ndarray, in_trial: np.ndarray,
                 neighbour: np.ndarray, start: int
                 ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    r"""Units, cohorts and populations of the truth design ``waveN_entry``.

    Returns
    -------
    tuple
        ``(rows, cohort, populations)``: the exposed people (reference-date target group
        and entrants, in or next to a trial municipality), their first exposed month (the
        wave's first month or :math:`t_e + 1`) and the masks ``treated`` (target group or
        entrant in a trial municipality), ``entrants`` and ``neighbours`` over ``rows``.
    """
    entrant = columns["entrant"]
    eligible = target | entrant
    members = eligible & in_trial
    near = eligible & neighbour
    rows = np.flatnonzero(members | near)
    cohort = np.where(entrant, columns["entry_month"].astype(np.int64) + 1, start)[rows]
    populations = {"treated": members[rows], "entrants": (members & entrant)[rows],
                   "neighbours": near[rows]}
    return rows, cohort, populations
