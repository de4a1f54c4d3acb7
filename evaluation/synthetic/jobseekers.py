"""Individual jobseeker-month panel from a Markov model of labour-market states.

Two chains are run for every person with the same uniform draws: one in a world without
trials, :math:`Y(0)`, and one in the world with the trial wave, :math:`Y(1)` (observed).
Transition probabilities are looked up in a monthly table indexed by a discrete person
type, so a month costs one gather over people whatever the number of people.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from evaluation.sources.trials import (
    ERA_MONTHS,
    WAVES,
    Wave,
    format_month,
    in_target_group,
    month_index,
)
from evaluation.synthetic.design import Design
from evaluation.synthetic.effects import (
    JOB_LOGIT_PER_UNEMPLOYMENT,
    SERVICE_LOGIT_PER_SHARE,
    effect_paths,
)
from evaluation.synthetic.municipal import LMS_DAILY, PAYMENT_DAYS, _by_year, national_rate
from evaluation.synthetic.scenario import Scenario

STATES = ("unemployed", "open_market_job", "subsidised_job", "education", "services",
          "outside_labour_force")
U, E, S, ED, SV, O = range(6)  # noqa: E741  (state codes)
#: Monthly transition probabilities of a reference person (rows: from, columns: to).
BASE_TRANSITIONS = np.array([
    [0.855, 0.055, 0.012, 0.012, 0.045, 0.021],
    [0.025, 0.965, 0.001, 0.003, 0.001, 0.005],
    [0.100, 0.040, 0.850, 0.002, 0.005, 0.003],
    [0.030, 0.030, 0.002, 0.920, 0.003, 0.015],
    [0.150, 0.035, 0.015, 0.010, 0.785, 0.005],
    [0.020, 0.010, 0.001, 0.005, 0.004, 0.960],
])
INITIAL_STATE = np.array([0.45, 0.20, 0.04, 0.08, 0.10, 0.13])
AGE_GROUPS = ((18, 29), (30, 54), (55, 64))
AGE_GROUP_SHARES = (0.28, 0.50, 0.22)
FRAILTY_SHARES = (0.30, 0.45, 0.25)
# Additive log-odds by type for moving into a job (open market); see `_type_logits`.
JOB_BY_AGE = np.array([0.10, 0.0, -0.40])
JOB_BY_IMMIGRANT = np.array([0.0, -0.30])
JOB_BY_DURATION = np.array([0.15, 0.0, -0.20, -0.45])
JOB_BY_FRAILTY = np.array([0.50, 0.0, -0.70])
DURATION_EDGES = np.array([3, 6, 12])  # months: buckets 0-2, 3-5, 6-11, 12+
PLAN_PROBABILITY = 0.12
#: Common shocks enter the transition log-odds as this multiple of a national-cycle change,
#: so that a shock :math:`c` moves the untreated unemployed stock by about :math:`e^{c}`
#: within a year, as in the municipal panel.
SHOCK_CYCLE_GAIN = 2.0
BURN_IN = 24

#: Outcomes for which true effects are reported (0/1 per person-month, or EUR per month).
JOBSEEKER_OUTCOMES = ("unemployed", "employed_open", "employed_subsidised", "employed",
                      "in_education", "in_services", "outside_labour_force", "plan",
                      "lms_cost", "lms_cost_state", "lms_cost_municipal",
                      "extended_unemployed")
_STATE_OUTCOMES = {"unemployed": (U,), "employed_open": (E,), "employed_subsidised": (S,),
                   "employed": (E, S), "in_education": (ED,), "in_services": (SV,),
                   "outside_labour_force": (O,),
                   # unemployed or in activation services (the wave-2 evaluation's measure):
                   # moving people into services does not lower it
                   "extended_unemployed": (U, SV)}


@dataclass
class People:
    """Static person attributes (arrays of length ``n_people``)."""

    municipality: np.ndarray
    age0: np.ndarray
    birth_offset: np.ndarray
    immigrant: np.ndarray
    era_member: np.ndarray
    frailty: np.ndarray


@dataclass
class ChainPaths:
    """Monthly paths of one world: states, durations and plans ``(n_people, T)``."""

    state: np.ndarray
    duration: np.ndarray
    plan: np.ndarray


def draw_people(design: Design, n_people: int, rng: np.random.Generator) -> People:
    """Draw who the jobseekers are and where they live."""
    muni = design.municipalities
    weight = muni["labour_force"].to_numpy(float) * muni["unemployment_level"].to_numpy()
    municipality = rng.choice(len(muni), size=n_people, p=weight / weight.sum())
    group = rng.choice(3, size=n_people, p=AGE_GROUP_SHARES)
    low = np.array([g[0] for g in AGE_GROUPS])[group]
    high = np.array([g[1] for g in AGE_GROUPS])[group]
    age0 = (low + rng.random(n_people) * (high - low + 1)).astype(np.int64)
    p_imm = np.minimum(1.3 * muni["foreign_share"].to_numpy()[municipality], 0.5)
    immigrant = rng.random(n_people) < p_imm
    p_era = np.where(immigrant, 0.40, np.where(age0 < 30, 0.45, 0.75))
    return People(
        municipality=municipality.astype(np.int32),
        age0=age0,
        birth_offset=rng.integers(0, 12, n_people),
        immigrant=immigrant,
        era_member=rng.random(n_people) < p_era,
        frailty=rng.choice(3, size=n_people, p=FRAILTY_SHARES),
    )


class TransitionTable:
    r"""Monthly cumulative transition probabilities for every person type.

    A type is (municipality, immigrant, frailty, age group, duration bucket, exposed);
    ``exposed`` marks target-group members living in a trial municipality or next to one.
    The month-invariant part of the log-odds is computed once; each month adds the business
    cycle and the treatment effect of that event time.

    Notes
    -----
    For a person of type :math:`k` in state :math:`o` the probability of moving to
    :math:`d` is a multinomial logit

    .. math::

        P(d \mid o, k, t) = \frac{\exp(\log P^0_{od} + x_k'\beta_{od} + c_t \gamma_{od}
            + D_k \tau_{od}(t - g))}{\sum_{d'} \exp(\cdot)},

    with base probabilities :data:`BASE_TRANSITIONS`, type effects (local labour market,
    age, immigrant, duration, frailty), the national cycle :math:`c_t` and, for exposed
    types :math:`D_k = 1`, the effect paths of :func:`~evaluation.synthetic.effects.effect_paths`.
    Common shocks :math:`c_{mt}` of the person's municipality
    (:func:`~evaluation.synthetic.shocks.common_shocks`) enter both worlds as a local
    cycle, :math:`c_t + \gamma\, c_{mt}` with :math:`\gamma` = :data:`SHOCK_CYCLE_GAIN`.
    With carry-over, exposed types of municipalities that ran an earlier wave :math:`v`
    (first month :math:`g_v`, multiplier :math:`h_v`) also get that wave's carried-over
    paths: :math:`\tau_{od}(t - g) + \sum_{v < w} h_v\, \tau^{v}_{od}(t - g_v)`.

    Parameters
    ----------
    design, scenario, wave
        The country, the world and the simulated wave.
    shock
        Optional ``(n_municipalities, n_months)`` common log shocks whose first column is
        month ``shock_t0``.
    shock_t0
        Month index ``t`` of the first column of ``shock``.
    """

    def __init__(self, design: Design, scenario: Scenario, wave: Wave,
                 shock: np.ndarray | None = None, shock_t0: int = 0) -> None:
        muni = design.municipalities
        n_m = len(muni)
        self.shape = (n_m, 2, 3, 3, 4, 2)
        self.scenario = scenario
        self.wave = wave
        self.strength = wave_strength(design, scenario, wave.number)
        target = np.array(scenario.target_effects)
        # Target-group multiplier by (immigrant, age group): under 30 first, then immigrants.
        by_person = np.array([[target[0], target[2], target[2]],
                              [target[0], target[1], target[1]]])
        self._h = self.strength[:, None, None] * by_person[None, :, :]  # (M, imm, age)
        # Earlier waves whose effects carry over: (wave, multiplier per (M, imm, age)).
        self._carry = [(WAVES[v], wave_strength(design, scenario, v + 1)[:, None, None]
                        * by_person[None, :, :])
                       for v in range(wave.number - 1) if scenario.carry_over > 0]
        self._shock, self._shock_t0 = shock, shock_t0
        m, i, f, a, d = np.ix_(np.arange(n_m), np.arange(2), np.arange(3), np.arange(3),
                               np.arange(4))
        local_job = -0.8 * np.log(muni["unemployment_level"].to_numpy())
        job = (local_job[m] + JOB_BY_IMMIGRANT[i] + JOB_BY_FRAILTY[f] + JOB_BY_AGE[a]
               + JOB_BY_DURATION[d])[..., None]  # trailing exposed axis
        logits = np.broadcast_to(np.log(BASE_TRANSITIONS), (*self.shape, 6, 6)).copy()
        for origin in (U, S, ED, SV, O):
            logits[..., origin, E] += job
            logits[..., origin, S] += 0.5 * job + 0.3 * (d == 3)[..., None]
        for origin in (U, SV):
            logits[..., origin, ED] += np.array([0.9, 0.0, -1.0])[a][..., None]
        logits[..., U, SV] += (np.array([-0.2, 0.0, 0.2, 0.4])[d]
                               + np.array([0.3, 0.0, -0.2])[a])[..., None]
        logits[..., U, O] += np.array([-0.1, 0.0, 0.6])[a][..., None]
        logits[..., E, U] += np.array([-0.3, 0.0, 0.4])[f][..., None]
        self._static = logits.astype(np.float32)
        self._to_job = np.zeros((6, 6), np.float32)  # where the cycle moves job finding
        self._to_job[[U, S, ED, SV, O], E] = 1.0
        self._to_job[[U, S, ED, SV, O], S] = 0.5
        self._layoff = np.zeros((6, 6), np.float32)
        self._layoff[E, U] = 1.0

    def treatment(self, event_time: int) -> tuple[np.ndarray, np.ndarray, float]:
        """Log-odds shifts (services, job) per (municipality, immigrant, age), plan change."""
        paths = effect_paths(self.scenario, np.array([event_time]), self.wave.n_months)
        services = SERVICE_LOGIT_PER_SHARE * paths.service_shift[0] * self._h
        job = -JOB_LOGIT_PER_UNEMPLOYMENT * paths.unemployment[0] * self._h
        t = month_index(self.wave.start) + event_time
        for earlier, h in self._carry:  # plans do not carry over
            tail = effect_paths(self.scenario, np.array([t - month_index(earlier.start)]),
                                earlier.n_months)
            services = services + SERVICE_LOGIT_PER_SHARE * tail.service_shift[0] * h
            job = job - JOB_LOGIT_PER_UNEMPLOYMENT * tail.unemployment[0] * h
        return services, job, float(paths.plans[0])

    def cumulative(self, month: pd.Period, event_time: int) -> np.ndarray:
        """Cumulative probabilities of the first five destinations, ``(n_types * 6, 5)``."""
        cycle = float(np.log(national_rate(pd.PeriodIndex([month]))[0] / 10.5))
        covid = 1.2 if month in (pd.Period("2020-03", "M"), pd.Period("2020-04", "M")) else 0.0
        services, job, _ = self.treatment(event_time)
        delta = np.zeros((self.shape[0], 2, 1, 3, 1, 2, 6, 6), np.float32)
        if self._shock is None:
            delta[...] = -1.5 * cycle * self._to_job + (cycle + covid) * self._layoff
        else:  # the common shock of each municipality moves like the national cycle
            local = (cycle + SHOCK_CYCLE_GAIN
                     * self._shock[:, month_index(month) - self._shock_t0]).reshape(
                -1, 1, 1, 1, 1, 1, 1, 1)
            delta[...] = -1.5 * local * self._to_job + (local + covid) * self._layoff
        exposed = delta[:, :, 0, :, 0, 1]  # (M, imm, age, 6, 6) view of the exposed slice
        for origin in (U, SV):
            exposed[..., origin, E] += job
        exposed[..., U, S] += job
        exposed[..., U, SV] += services
        prob = np.exp(self._static + delta)
        cum = np.cumsum(prob, axis=-1)
        cum /= cum[..., -1:]
        return np.ascontiguousarray(cum[..., :5].reshape(-1, 5))

    def static_index(self, people: People) -> np.ndarray:
        """Type index of the time-invariant attributes (municipality, immigrant, frailty)."""
        return (people.municipality.astype(np.int64) * 2 + people.immigrant) * 3 + people.frailty

    @staticmethod
    def type_index(static: np.ndarray, age_group: np.ndarray, duration: np.ndarray,
                   exposed: int) -> np.ndarray:
        """Flat type index (C order over :attr:`shape`) from the static index and the rest."""
        bucket = _DURATION_BUCKET[np.minimum(duration, 12)]
        return static * 24 + age_group * 8 + bucket * 2 + exposed


_DURATION_BUCKET = np.searchsorted(DURATION_EDGES, np.arange(13), side="right")


def wave_strength(design: Design, scenario: Scenario, wave_number: int) -> np.ndarray:
    """Effect multiplier of every municipality in a wave (area, spillover and cohort)."""
    member = design.membership[:, wave_number - 1]
    area_mult = np.exp(scenario.area_heterogeneity * design.areas["area_z"].to_numpy())
    strength = np.where(member >= 0, area_mult[np.maximum(member, 0)], 0.0)
    strength += scenario.spillover * design.neighbour[:, wave_number - 1]
    return strength * scenario.cohort_effects[wave_number - 1]


def carry_reach(design: Design, scenario: Scenario, wave_number: int) -> np.ndarray:
    """Municipalities that ran (or neighboured) an earlier wave whose effect carries over."""
    reach = np.zeros(design.n_municipalities, dtype=bool)
    if scenario.carry_over > 0:
        for v in range(wave_number - 1):
            reach |= design.membership[:, v] >= 0
            if scenario.spillover > 0:
                reach |= design.neighbour[:, v]
    return reach


def _age_group(age: np.ndarray) -> np.ndarray:
    return np.searchsorted(np.array([30, 55]), age, side="right")


def _step(cum: np.ndarray, types: np.ndarray, state: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Next state: the number of cumulative thresholds that ``u`` exceeds."""
    rows = cum[types * 6 + state]
    return (u[:, None] > rows).sum(axis=1, dtype=np.int8)


def _next_duration(old_state: np.ndarray, new_state: np.ndarray,
                   duration: np.ndarray) -> np.ndarray:
    """Unemployment spell length: grows while unemployed, pauses in services, else resets."""
    continuing = (old_state == U) | (old_state == SV)
    out = np.where(new_state == U, np.where(continuing, duration + 1, 1), 0)
    return np.where(new_state == SV, duration, out).astype(np.int16)


def simulate_chains(design: Design, scenario: Scenario, wave: Wave, people: People,
                    months: pd.PeriodIndex, rng: np.random.Generator,
                    target_rule, shock: np.ndarray | None = None,
                    extra=None) -> tuple[ChainPaths, ChainPaths, np.ndarray]:
    """Run the no-trial and the trial chains over ``months`` (after a burn-in).

    ``target_rule(state, duration, age, people)`` returns the target-group mask evaluated
    at the reference month (the month before effects begin), when both chains still agree.
    Only exposed people (target-group members in or next to a trial municipality, or in a
    municipality whose earlier wave carries over) can differ between the worlds, so only
    they are simulated twice. ``shock`` holds the common log shocks of every municipality
    from the first burn-in month on. ``extra`` (e.g.
    :class:`~evaluation.synthetic.inflow.EntrantChains`) is stepped through the same
    monthly transition tables with ``start(table, reach, months)`` and
    ``step(j, month, event, cum)``; it draws from its own generator.

    Returns
    -------
    tuple
        ``(paths_without_trial, paths_with_trial, target_group)``.
    """
    n, n_t = people.municipality.size, len(months)
    table = TransitionTable(design, scenario, wave, shock, month_index(months[0]) - BURN_IN)
    static = table.static_index(people)
    start = month_index(wave.start)
    t_values = np.array([month_index(m) for m in months])
    reference = int(np.flatnonzero(t_values == reference_month(wave, scenario))[0])
    reach = (design.membership[:, wave.number - 1] >= 0) | design.neighbour[:, wave.number - 1]
    reach |= carry_reach(design, scenario, wave.number)
    if extra is not None:
        extra.start(table, reach, months)
    state = rng.choice(6, size=n, p=INITIAL_STATE).astype(np.int8)
    duration = np.where(state == U, rng.geometric(1 / 9, n), 0).astype(np.int16)
    without = _empty_paths(n, n_t)
    sub: ChainPaths | None = None  # trial-world paths of the exposed people
    target = np.zeros(n, dtype=bool)
    exposed_rows = np.zeros(0, dtype=np.int64)
    for j in range(-BURN_IN, n_t):
        month = months[0] + j
        event = int(month_index(month) - start)
        age = people.age0 + (j + people.birth_offset) // 12
        age_group = _age_group(age)
        cum = table.cumulative(month, event)
        if extra is not None:
            extra.step(j, month, event, cum)
        u = rng.random(n, dtype=np.float32)
        new = _step(cum, table.type_index(static, age_group, duration, 0), state, u)
        duration, state = _next_duration(state, new, duration), new
        if j < 0:
            continue
        u_plan = rng.random(n, dtype=np.float32)
        without.state[:, j] = state
        without.duration[:, j] = duration
        without.plan[:, j] = ((state == U) | (state == SV)) & (u_plan < PLAN_PROBABILITY)
        if sub is not None:
            rows = exposed_rows
            st, dur = sub.state[:, j - 1], sub.duration[:, j - 1]
            new = _step(cum, table.type_index(static[rows], age_group[rows], dur, 1), st, u[rows])
            _, _, plan_change = table.treatment(event)
            p_plan = PLAN_PROBABILITY * np.clip(
                1 + plan_change * table.strength[people.municipality[rows]], 0, None)
            sub.state[:, j] = new
            sub.duration[:, j] = _next_duration(st, new, dur)
            sub.plan[:, j] = ((new == U) | (new == SV)) & (u_plan[rows] < p_plan)
        if j == reference:
            target = target_rule(state, duration, age, people)
            exposed_rows = np.flatnonzero(target & reach[people.municipality])
            sub = ChainPaths(*(np.array(getattr(without, f)[exposed_rows])
                               for f in ("state", "duration", "plan")))
    with_trial = ChainPaths(*(getattr(without, f).copy() for f in ("state", "duration", "plan")))
    if sub is not None:
        for f in ("state", "duration", "plan"):
            getattr(with_trial, f)[exposed_rows] = getattr(sub, f)
    return without, with_trial, target


def _empty_paths(n: int, n_t: int) -> ChainPaths:
    return ChainPaths(state=np.empty((n, n_t), np.int8), duration=np.empty((n, n_t), np.int16),
                      plan=np.empty((n, n_t), np.int8))


def person_lms_costs(paths: ChainPaths, era_member: np.ndarray,
              months: pd.PeriodIndex) -> tuple[np.ndarray, np.ndarray]:
    """Labour-market-subsidy cost per person-month (EUR): total and municipal share.

    Notes
    -----
    A person receives the subsidy when unemployed or in services without a running
    earnings-related allowance (members get it for the first :data:`ERA_MONTHS` months of a
    spell). The municipality pays 50 % of the subsidy of an unemployed person after 10
    months (300 days) on the subsidy and 70 % after 33 months (1,000 days); nothing while
    the person is in services.
    """
    rate = np.round(_by_year(LMS_DAILY, months) * PAYMENT_DAYS).astype(np.int16)[None, :]
    jobseeking = (paths.state == U) | (paths.state == SV)
    on_lms = jobseeking & ~(era_member[:, None] & (paths.duration < ERA_MONTHS))
    months_on_lms = np.cumsum(on_lms, axis=1, dtype=np.int16)
    cost = (on_lms * rate).astype(np.int16)
    share_rate = np.where(months_on_lms >= 33, np.round(0.7 * rate),
                          np.where(months_on_lms >= 10, np.round(0.5 * rate), 0))
    municipal = np.where(on_lms & (paths.state == U), share_rate, 0).astype(np.int16)
    return cost, municipal


def reference_month(wave: Wave, scenario: Scenario) -> int:
    """Month index ``t`` of the reference month: the month before effects begin.

    The target rule is applied then; with anticipation that is ``scenario.anticipation``
    months before the month preceding the wave's start.
    """
    return month_index(wave.start) - scenario.anticipation - 1


def target_rule(wave_number: int):
    """Return the wave's target-group rule as a function of the reference-month situation.

    The rule itself is :func:`evaluation.sources.trials.in_target_group`.
    """
    def rule(state: np.ndarray, duration: np.ndarray, age: np.ndarray,
             people: People) -> np.ndarray:
        return in_target_group(wave_number, (state == U) | (state == SV), duration,
                               people.era_member, age, people.immigrant)
    return rule


def outcome_pair(name: str, without: ChainPaths, with_trial: ChainPaths,
                 costs: tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Both potential outcomes ``(Y0, Y1)`` of one jobseeker outcome, shape ``(n, T)``.

    ``costs`` holds :func:`lms_costs` of the no-trial and the trial world.
    """
    if name in _STATE_OUTCOMES:
        states = _STATE_OUTCOMES[name]
        return tuple(np.isin(p.state, states).astype(np.int8) for p in (without, with_trial))
    if name == "plan":
        return without.plan, with_trial.plan
    if name == "lms_cost":
        return costs[0][0], costs[1][0]
    if name == "lms_cost_municipal":
        return costs[0][1], costs[1][1]
    if name == "lms_cost_state":
        return tuple((c[0] - c[1]).astype(np.int16) for c in costs)
    raise KeyError(name)


def window(wave: Wave, n_months: int) -> pd.PeriodIndex:
    """Return the ``n_months`` months ending with the wave's last month."""
    return pd.period_range(end=wave.end, periods=n_months, freq="M")


def month_labels(months: pd.PeriodIndex) -> list[str]:
    """StatFin labels (``2021M03``) of the months."""
    return [format_month(m) for m in months]
