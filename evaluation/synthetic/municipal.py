"""Monthly municipal employment-service statistics (StatFin table 12r5 and more).

Both potential outcomes are drawn for every municipality-month with common random numbers:
:math:`Y(0)` in a world without any trial and :math:`Y(1)` in the world with the trials as
they happened (including spillovers to neighbours). The observed panel is :math:`Y(1)`;
for never-exposed cells the two coincide.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from evaluation.sources.trials import PANEL_END, PANEL_START, WAVES, format_month, month_index
from evaluation.synthetic.design import Design
from evaluation.synthetic.effects import effect_paths
from evaluation.synthetic.scenario import Scenario
from evaluation.synthetic.shocks import shift_municipal_counts
from evaluation.synthetic.truth import AFTER_END_RANGES, after_end_table, truth_table

#: Annual average register unemployment rate (%) of the whole country, interpolated monthly.
NATIONAL_RATE = {2010: 9.6, 2011: 9.0, 2012: 9.4, 2013: 10.6, 2014: 11.7, 2015: 12.9,
                 2016: 12.5, 2017: 11.0, 2018: 9.3, 2019: 8.7, 2020: 10.0, 2021: 10.4,
                 2022: 9.0, 2023: 9.6, 2024: 10.9}
#: Long-term unemployed share relative to a municipality's structural level, by year.
LTU_FACTOR = {2010: 0.9, 2011: 0.95, 2012: 0.95, 2013: 1.0, 2014: 1.15, 2015: 1.3,
              2016: 1.45, 2017: 1.4, 2018: 1.25, 2019: 1.1, 2020: 1.05, 2021: 1.5,
              2022: 1.45, 2023: 1.25, 2024: 1.15}
#: Daily labour-market subsidy (EUR), by year; 21.5 payment days a month.
LMS_DAILY = {2010: 31.4, 2011: 32.0, 2012: 32.5, 2013: 32.7, 2014: 32.7, 2015: 32.8,
             2016: 32.4, 2017: 32.4, 2018: 32.4, 2019: 33.8, 2020: 33.8, 2021: 33.8,
             2022: 34.3, 2023: 37.2, 2024: 37.2}
PAYMENT_DAYS = 21.5
#: Log seasonal factors (January..December) of unemployment and of the under-25 share.
SEASON_UNEMPLOYED = np.array([0.06, 0.05, 0.01, -0.03, -0.04, 0.07, 0.06, -0.03, -0.07,
                              -0.07, -0.04, 0.03])
SEASON_UNDER25 = np.array([0.0, 0.0, -0.02, -0.05, 0.05, 0.25, 0.20, -0.05, -0.12, -0.10,
                           -0.08, -0.05])
SEASON_VACANCIES = np.array([-0.05, 0.0, 0.08, 0.15, 0.12, 0.0, -0.12, -0.05, 0.0, -0.02,
                             -0.05, -0.1])
PLAN_RATE = 0.07  # plans drawn up per month per unemployed or service participant
LTU_SHARE_OF_SHIFT = 0.6  # share of those moved into services who were long-term unemployed

#: Outcomes for which true effects are reported.
MUNICIPAL_OUTCOMES = ("jobseekers", "unemployed", "long_term_unemployed", "unemployed_under25",
                      "unemployed_over50", "unemployed_foreign", "unemployment_rate",
                      "in_services", "other_jobseekers", "employment_plans", "lms_cost_total",
                      "lms_cost_state", "lms_cost_municipal")


@dataclass(frozen=True)
class MunicipalDraw:
    """Result of :func:`draw_municipal_panel`: wide potential outcomes and exposure."""

    months: pd.PeriodIndex
    t: np.ndarray
    potential: dict[str, tuple[np.ndarray, np.ndarray]]
    labour_force: np.ndarray
    vacancies: np.ndarray
    status: np.ndarray
    current_wave: np.ndarray
    earlier_waves: np.ndarray | None = None


def monthly_calendar() -> tuple[pd.PeriodIndex, np.ndarray]:
    """Months of the municipal panel and their 1-based index ``t`` (2010M01 -> 1)."""
    months = pd.period_range(PANEL_START, PANEL_END, freq="M")
    return months, np.array([month_index(m) for m in months], dtype=np.int64)


def _by_year(table: dict[int, float], months: pd.PeriodIndex) -> np.ndarray:
    """Interpolate annual values (placed mid-year) to months, flat beyond the ends."""
    years = np.array(sorted(table), dtype=float) + 0.5 - 1 / 24
    values = np.array([table[y] for y in sorted(table)])
    x = np.asarray(months.year) + (np.asarray(months.month) - 1) / 12
    return np.interp(x, years, values)


def national_rate(months: pd.PeriodIndex) -> np.ndarray:
    """National register unemployment rate (%) by month, with the spring 2020 lay-off spike."""
    base = _by_year(NATIONAL_RATE, months)
    since_april_2020 = np.array([(m - pd.Period("2020-04", "M")).n for m in months])
    covid = np.where(since_april_2020 >= 0, 0.45 * np.exp(-since_april_2020 / 4.0), 0.0)
    covid = np.where(since_april_2020 == -1, 0.12, covid)
    return base * np.exp(covid)


def _ar1(rng: np.random.Generator, shape: tuple[int, int], rho: float,
         sd: np.ndarray | float) -> np.ndarray:
    """AR(1) paths along axis 1 started from their stationary distribution."""
    shocks = rng.standard_normal(shape) * np.asarray(sd, dtype=float).reshape(-1, 1)
    out = np.empty(shape)
    out[:, 0] = shocks[:, 0] / np.sqrt(1 - rho**2)
    for j in range(1, shape[1]):
        out[:, j] = rho * out[:, j - 1] + shocks[:, j]
    return out


def _coupled_count(mu0: np.ndarray, mu1: np.ndarray, z: np.ndarray,
                   dispersion: float) -> tuple[np.ndarray, np.ndarray]:
    """Draw both potential counts with the same standard-normal shock ``z``."""
    def draw(mu: np.ndarray) -> np.ndarray:
        return np.maximum(0.0, np.round(mu + np.sqrt(dispersion * mu) * z))
    return draw(mu0), draw(mu1)


def _coupled_part(total: tuple[np.ndarray, np.ndarray], share: tuple[np.ndarray, np.ndarray],
                  z: np.ndarray, dispersion: float) -> tuple[np.ndarray, np.ndarray]:
    """Draw a sub-count (e.g. long-term unemployed) of a drawn total in both worlds."""
    def draw(n: np.ndarray, p: np.ndarray) -> np.ndarray:
        p = np.clip(p, 0.0, 1.0)
        return np.clip(np.round(p * n + np.sqrt(dispersion * p * (1 - p) * n) * z), 0, n)
    return draw(total[0], share[0]), draw(total[1], share[1])


def exposure(design: Design, scenario: Scenario, t: np.ndarray) -> dict[str, np.ndarray]:
    """Effect components of every municipality-month in the world with the trials.

    Returns arrays ``shift``, ``unemployment``, ``plans`` (see
    :class:`~evaluation.synthetic.effects.EffectPaths`), the trial ``status`` (1 in the
    months a municipality ran a trial), ``wave`` (the wave running, 0 if none) and
    ``earlier_waves`` (the number of waves the municipality ran that ended before the month).
    """
    n, n_t = design.n_municipalities, t.size
    out = {k: np.zeros((n, n_t)) for k in ("shift", "unemployment", "plans")}
    status = np.zeros((n, n_t), dtype=np.int8)
    current = np.zeros((n, n_t), dtype=np.int8)
    earlier = np.zeros((n, n_t), dtype=np.int8)
    area_mult = np.exp(scenario.area_heterogeneity * design.areas["area_z"].to_numpy())
    for w in WAVES:
        start = month_index(w.start)
        paths = effect_paths(scenario, t - start, w.n_months)
        member = design.membership[:, w.number - 1]
        multiplier = np.where(member >= 0, area_mult[np.maximum(member, 0)], 0.0)
        multiplier += scenario.spillover * design.neighbour[:, w.number - 1]
        multiplier *= scenario.cohort_effects[w.number - 1]
        for key, path in (("shift", paths.service_shift), ("unemployment", paths.unemployment),
                          ("plans", paths.plans)):
            out[key] += multiplier[:, None] * path[None, :]
        running = (member >= 0)[:, None] & ((t >= start) & (t < start + w.n_months))[None, :]
        status[running] = 1
        current[running] = w.number
        earlier += (member >= 0)[:, None] & (t >= start + w.n_months)[None, :]
    out["status"], out["wave"], out["earlier_waves"] = status, current, earlier
    return out


def draw_municipal_panel(design: Design, scenario: Scenario, rng: np.random.Generator,
                         shock: np.ndarray | None = None) -> MunicipalDraw:
    r"""Draw both potential outcomes of every municipal monthly series.

    Parameters
    ----------
    design, scenario
        The synthetic country and world.
    rng
        Generator of the municipal stream.
    shock
        Optional ``(n_municipalities, n_months)`` common log shocks of
        :func:`~evaluation.synthetic.shocks.common_shocks`, applied to both worlds' counts
        with :func:`~evaluation.synthetic.shocks.shift_municipal_counts` (the truth does not
        change).

    Returns
    -------
    MunicipalDraw

    Notes
    -----
    Expected untreated unemployment of municipality :math:`i` in month :math:`t` is

    .. math::

        \mu^U_{it}(0) = L_{it}\, \frac{r_t}{100}\, \lambda_i
            \exp(s_{m(t)} + \rho_{e(i)t} + \nu_{it} + \beta_i (t - \bar t)/12
                  + \pi_i (t - G_i)/12),

    with labour force :math:`L`, national rate :math:`r_t`, structural level
    :math:`\lambda_i`, seasonality :math:`s`, AR(1) regional (:math:`\rho`) and municipal
    (:math:`\nu`) shocks, a municipal trend and the scenario's differential pre-trend
    :math:`\pi_i` for later-treated units. In the trial world the unemployed stock becomes
    :math:`\mu^U(1) = \mu^U(0)(1 + u_{it} - s_{it})` and services
    :math:`\mu^S(1) = \mu^S(0) + s_{it}\mu^U(0)`, with the effect components of
    :func:`exposure`. Counts are drawn as :math:`\max(0, \mathrm{round}(\mu + \sqrt{\phi
    \mu} z))` with the same :math:`z` in both worlds.
    """
    months, t = monthly_calendar()
    muni = design.municipalities
    n, n_t = len(muni), t.size
    noise = scenario.noise
    dispersion = 1.5 * noise**2
    years_from_mid = (t - t.mean())[None, :] / 12
    lf0 = muni["labour_force"].to_numpy(float)
    labour_force = np.round(lf0[:, None] * np.exp(muni["growth"].to_numpy()[:, None]
                                                  * years_from_mid))
    month_of_year = np.asarray(months.month) - 1
    ely_codes, ely_index = np.unique(muni["ely"].to_numpy(), return_inverse=True)
    regional = _ar1(rng, (len(ely_codes), n_t), 0.92, 0.02 * noise)[ely_index]
    local = _ar1(rng, (n, n_t), 0.85, noise * (0.015 + 0.6 / np.sqrt(lf0)))
    trend = 0.012 * rng.standard_normal(n)[:, None] * years_from_mid
    cohort = design.first_treated
    drift = (np.where(cohort > 0, scenario.pretrend, 0.0)[:, None]
             * (t[None, :] - cohort[:, None]) / 12)
    log_rate = (np.log(national_rate(months) / 100)[None, :]
                + np.log(muni["unemployment_level"].to_numpy())[:, None]
                + SEASON_UNEMPLOYED[month_of_year][None, :] + regional + local + trend + drift)
    mu_u0 = labour_force * np.minimum(np.exp(log_rate), 0.45)
    year = np.asarray(months.year)
    activation = 1 + 0.1 * ((year >= 2013) & (year <= 2018))
    mu_s0 = muni["services_ratio"].to_numpy()[:, None] * activation[None, :] * mu_u0
    ltu_share0 = np.minimum(muni["ltu_share"].to_numpy()[:, None]
                            * _by_year(LTU_FACTOR, months)[None, :], 0.8)

    ex = exposure(design, scenario, t)
    mu_u1 = mu_u0 * np.maximum(1 + ex["unemployment"] - ex["shift"], 0.05)
    mu_s1 = mu_s0 + ex["shift"] * mu_u0
    moved_ltu = np.minimum(LTU_SHARE_OF_SHIFT * ex["shift"] * mu_u0,
                           0.9 * ltu_share0 * mu_u0 * (1 + ex["unemployment"]))
    ltu_share1 = (ltu_share0 * mu_u0 * (1 + ex["unemployment"]) - moved_ltu) / mu_u1

    z = {k: rng.standard_normal((n, n_t)) for k in
         ("u", "s", "o", "ltu", "u25", "u50", "f", "v", "p")}
    unemployed = _coupled_count(mu_u0, mu_u1, z["u"], dispersion)
    services = _coupled_count(mu_s0, mu_s1, z["s"], dispersion)
    mu_other = muni["other_ratio"].to_numpy()[:, None] * mu_u0
    other = _coupled_count(mu_other, mu_other, z["o"], dispersion)
    ltu = _coupled_part(unemployed, (ltu_share0, ltu_share1), z["ltu"], dispersion)
    share25 = np.minimum(0.11 * np.exp(SEASON_UNDER25[month_of_year])[None, :]
                         * np.exp(0.1 * rng.standard_normal(n))[:, None], 0.5)
    under25 = _coupled_part(unemployed, (share25, share25), z["u25"], dispersion)
    share50 = 0.36 * np.exp(0.1 * rng.standard_normal(n))[:, None] * np.ones((1, n_t))
    over50 = _coupled_part(unemployed, (share50, share50), z["u50"], dispersion)
    share_f = np.minimum(muni["foreign_share"].to_numpy()[:, None]
                         * np.exp(0.03 * (np.asarray(months.year) - 2010))[None, :], 0.5)
    foreign = _coupled_part(unemployed, (share_f, share_f), z["f"], dispersion)
    cycle = np.log(national_rate(months) / np.mean(list(NATIONAL_RATE.values())))
    mu_v = (muni["vacancy_ratio"].to_numpy()[:, None] * labour_force
            * np.exp(-cycle + SEASON_VACANCIES[month_of_year])[None, :])
    vacancies = _coupled_count(mu_v, mu_v, z["v"], dispersion)[0]
    plan_factor = (1.0, 1 + np.maximum(ex["plans"], -0.95))
    plans = tuple(_coupled_count(PLAN_RATE * (unemployed[d] + services[d]) * plan_factor[d],
                                 PLAN_RATE * (unemployed[d] + services[d]) * plan_factor[d],
                                 z["p"], dispersion)[0] for d in (0, 1))

    potential: dict[str, tuple[np.ndarray, np.ndarray]] = {
        "unemployed": unemployed, "long_term_unemployed": ltu, "unemployed_under25": under25,
        "unemployed_over50": over50, "unemployed_foreign": foreign, "in_services": services,
        "other_jobseekers": other, "employment_plans": plans,
    }
    daily = _by_year(LMS_DAILY, months)[None, :] * PAYMENT_DAYS
    costs = [municipal_lms_costs(unemployed[d], ltu[d], services[d], daily) for d in (0, 1)]
    if shock is not None:
        potential, costs = shift_municipal_counts(potential, costs, shock, daily)
        unemployed, services, other = (potential[k] for k in
                                       ("unemployed", "in_services", "other_jobseekers"))
    potential["jobseekers"] = tuple(unemployed[d] + services[d] + other[d] for d in (0, 1))
    potential["unemployment_rate"] = tuple(100 * unemployed[d] / labour_force for d in (0, 1))
    for k, name in enumerate(("lms_cost_total", "lms_cost_state", "lms_cost_municipal")):
        potential[name] = (costs[0][k], costs[1][k])
    return MunicipalDraw(months, t, {k: potential[k] for k in MUNICIPAL_OUTCOMES},
                         labour_force, vacancies, ex["status"], ex["wave"], ex["earlier_waves"])


def municipal_lms_costs(unemployed: np.ndarray, long_term: np.ndarray, services: np.ndarray,
              monthly_rate: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Labour-market-subsidy costs (EUR per month): total, state share, municipal share.

    Notes
    -----
    Recipients are the long-term unemployed, 35 % of the other unemployed (no earnings-related
    allowance) and 60 % of service participants. Municipalities pay 50 % of the subsidy after
    300 benefit days and 70 % after 1,000 days (averaging 56 % over the long-term unemployed)
    but nothing while a recipient takes part in services, so moving long-term unemployed into
    services shifts costs to the state:

    .. math::

        C = b\,(L + 0.35 (U - L) + 0.6 S), \qquad C_{mun} = 0.56\, b L, \qquad
        C_{state} = C - C_{mun}.
    """
    total = np.round(monthly_rate * (long_term + 0.35 * (unemployed - long_term) + 0.6 * services))
    municipal = np.round(monthly_rate * 0.56 * long_term)
    return total, total - municipal, municipal


def to_long_frame(design: Design, draw: MunicipalDraw, scenario: Scenario,
                  rng: np.random.Generator) -> pd.DataFrame:
    """Assemble the observed long panel (one row per municipality-month present)."""
    muni = design.municipalities
    n, n_t = len(muni), draw.t.size
    unit = np.repeat(np.arange(n), n_t)
    cols: dict[str, object] = {
        "municipality": muni["municipality"].to_numpy()[unit],
        "name": muni["name"].to_numpy()[unit],
        "ely": muni["ely"].to_numpy()[unit],
        "month": np.tile(np.array([format_month(m) for m in draw.months]), n),
        "t": np.tile(draw.t, n),
        "year": np.tile(np.asarray(draw.months.year), n),
        "labour_force": draw.labour_force.ravel().astype(np.int64),
    }
    for name in ("jobseekers", "unemployed", "long_term_unemployed", "unemployed_under25",
                 "unemployed_over50", "unemployed_foreign"):
        cols[name] = draw.potential[name][1].ravel().astype(np.int64)
    cols["unemployment_rate"] = draw.potential["unemployment_rate"][1].ravel()
    cols["vacancies"] = draw.vacancies.ravel().astype(np.int64)
    for name in ("in_services", "other_jobseekers", "employment_plans", "lms_cost_total",
                 "lms_cost_state", "lms_cost_municipal"):
        cols[name] = draw.potential[name][1].ravel().astype(np.int64)
    cols["treated"] = draw.status.ravel()
    cols["wave"] = draw.current_wave.ravel()
    if draw.earlier_waves is not None:
        cols["earlier_waves"] = draw.earlier_waves.ravel()
    cols["first_treated"] = design.first_treated[unit]
    for w in WAVES:
        member = design.treated(w.number)
        cols[f"cohort_w{w.number}"] = np.where(member, month_index(w.start), 0)[unit]
        cols[f"area_w{w.number}"] = design.area_ids(w.number)[unit]
    frame = pd.DataFrame(cols)
    if scenario.attrition > 0:
        keep = rng.random(n * n_t) >= scenario.attrition
        frame = frame.loc[keep].reset_index(drop=True)
    return frame


def wave_end_truth(design: Design, scenario: Scenario, draw: MunicipalDraw,
                   redraw: Callable[[Scenario], MunicipalDraw]) -> list[pd.DataFrame]:
    r"""Return the true effects beyond each wave's own months: persistence, repeat waves.

    Parameters
    ----------
    design, scenario, draw
        The country, the world and its draw (:func:`draw_municipal_panel`).
    redraw
        Draws the municipal panel again for another scenario with the same random numbers
        (the same seed's stream), e.g. ``lambda s: draw_municipal_panel(design, s,
        rng_of_the_same_seed, shock)``.

    Returns
    -------
    list of pandas.DataFrame
        Truth tables (columns :data:`~evaluation.synthetic.truth.TRUTH_COLUMNS`) per wave
        :math:`w`:

        * design ``wave{w}``, population ``post_wave``: the wave's municipalities that run no
          other wave in the :data:`~evaluation.synthetic.truth.AFTER_END_RANGES` months after
          it ended; kinds ``post_wave`` (per month after the end) and ``post_wave_1_12``,
          ``post_wave_13_24`` (:func:`~evaluation.synthetic.truth.after_end_table`). Zero
          without ``carry_over``; wave 3 ends with the panel and has none.
        * design ``wave{w}``, population ``repeat``: the wave's municipalities that ran an
          earlier wave, with the group-time, event and overall effects in the wave's window
          (what the earlier wave carries over included).
        * design ``wave{w}_added`` (only with ``carry_over`` > 0), populations ``treated`` and
          ``repeat``: event and overall effects of wave :math:`w` itself in its window, i.e.
          what the wave added to a world in which the other waves ran.

    Notes
    -----
    With :math:`\tau_{it} = Y_{it}(1) - Y_{it}(0)` (all waves against none), the repeat rows
    average :math:`\tau` like the ``treated`` rows. The added effect is
    :math:`Y_{it}(1) - Y_{it}(1_{-w})`, where :math:`Y(1_{-w})` is drawn with the same
    random numbers in the world where wave :math:`w` had no effect (its
    ``cohort_effects`` multiplier, spillovers included, set to zero). Without carry-over
    no other wave's effect reaches wave :math:`w`'s window, so the added effect equals
    :math:`\tau` there and these rows would repeat the ``wave{w}`` rows (up to
    rounding of the counts). With common shocks the redraw's floors could in principle
    differ; at calibrated shock sizes they never bind.
    """
    t = draw.t
    effects = {k: draw.potential[k][1] - draw.potential[k][0] for k in MUNICIPAL_OUTCOMES}
    horizon = max(hi for _, hi in AFTER_END_RANGES)
    starts = np.array([month_index(w.start) for w in WAVES])
    member = design.membership >= 0
    tables = []
    for w in WAVES:
        start, last = month_index(w.start), month_index(w.end)
        later = (starts > last) & (starts <= last + horizon)
        busy = (member[:, later]).any(axis=1)
        tables.append(after_end_table(effects, member[:, w.number - 1] & ~busy, t, last,
                                      f"wave{w.number}"))
        repeat = member[:, w.number - 1] & member[:, : w.number - 1].any(axis=1)
        if not repeat.any():
            continue
        window = ((t >= start - scenario.anticipation) & (t <= last))[None, :]
        cohort = np.full(design.n_municipalities, start)
        total = {k: v * window for k, v in effects.items()}
        tables.append(truth_table(total, cohort, t, {"repeat": repeat}, f"wave{w.number}",
                                  (0, w.n_months - 1)))
        if scenario.carry_over > 0:
            multipliers = list(scenario.cohort_effects)
            multipliers[w.number - 1] = 0.0
            without = redraw(scenario.replace(cohort_effects=tuple(multipliers)))
            added = {k: (draw.potential[k][1] - without.potential[k][1]) * window
                     for k in MUNICIPAL_OUTCOMES}
            tables.append(truth_table(
                added, cohort, t, {"treated": member[:, w.number - 1], "repeat": repeat},
                f"wave{w.number}_added", (0, w.n_months - 1), kinds=("event", "overall")))
    return [table for table in tables if len(table)]  # empty frames would turn dtypes to object
