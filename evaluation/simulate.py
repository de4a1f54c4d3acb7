"""Synthetic Finnish trial panels that carry their true effects.

Two levels of data, drawn from one synthetic country (:func:`build_design`):

* :func:`simulate_municipalities`: the municipality-month panel of 309 municipalities in 15
  ELY regions, January 2010 - December 2024, with the StatFin 12r5 monitoring indicators,
  service participation, employment plans and labour-market-subsidy costs split into state
  and municipal shares, and the three trial waves (switching off at each wave's end).
* :func:`simulate_jobseekers`: a jobseeker-month panel of one wave's design from a Markov
  model of labour-market states, with the wave's target-group rule.

Every simulator draws both potential outcomes with common random numbers and returns the
true effects computed from them (never from the formula that generated them), together with
the observed data. :func:`write_synthetic_data` writes Parquet files plus a JSON manifest;
the same seed and parameters give byte-identical files.

Scenario knobs for what real evaluations face (all off by default; switched off they leave
the data of every seed byte-identical because they draw from streams of their own): common
shocks by trial area and ELY region (:mod:`evaluation.synthetic.shocks`), anticipation,
people entering the target group during the trial (:mod:`evaluation.synthetic.inflow`) and
effects of earlier waves carried over into later ones.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from evaluation.errors import SimulationError
from evaluation.sources.cohort import add_reference_covariates
from evaluation.sources.files import sha256_file
from evaluation.sources.trials import WAVES, Wave, month_index, wave
from evaluation.synthetic import jobseekers as js
from evaluation.synthetic.design import Design, build_design, check_municipality_count
from evaluation.synthetic.inflow import (
    EntrantChains,
    concat_paths,
    concat_people,
    draw_entrants,
    entry_columns,
    entry_design,
)
from evaluation.synthetic.jobseeker_tables import jobseeker_frame, people_table
from evaluation.synthetic.municipal import (
    MUNICIPAL_OUTCOMES,
    draw_municipal_panel,
    monthly_calendar,
    to_long_frame,
    wave_end_truth,
)
from evaluation.synthetic.scenario import DEFAULT_SEED, SCENARIOS, Scenario, get_scenario
from evaluation.synthetic.shocks import common_shocks
from evaluation.synthetic.staggered import StaggeredDesign, draw_staggered
from evaluation.synthetic.truth import truth_table

__all__ = [
    "DEFAULT_SEED",
    "SCENARIOS",
    "Scenario",
    "SimulatedPanel",
    "StaggeredDesign",
    "build_design",
    "get_scenario",
    "simulate_jobseekers",
    "simulate_municipalities",
    "simulate_staggered",
    "write_synthetic_data",
]

# Independent random streams derived from one seed (new knobs draw from new streams only,
# so switching them off reproduces the data of earlier versions byte for byte).
_DESIGN, _MUNICIPAL, _JOBSEEKERS, _ATTRITION, _STAGGERED, _SHOCKS, _INFLOW = range(7)


def _rng(seed: int, stream: int) -> np.random.Generator:
    if not isinstance(seed, int | np.integer) or seed < 0:
        raise SimulationError(f"seed={seed!r} must be a non-negative integer.")
    return np.random.default_rng([int(seed), stream])


@dataclass
class SimulatedPanel:
    """A simulated long panel together with its truth.

    Attributes
    ----------
    data
        The observed long panel (one row per unit and month present).
    truth
        Tidy table of true effects (columns ``design, population, outcome, kind, group,
        time, event_time, att, n_units``): ``kind`` is ``group_time`` (ATT(g,t)), ``event``
        (effect ``event_time`` months after adoption) or ``overall``. ``design`` names the
        cohort column the effects refer to (``first_treated``, ``wave1``-``wave3`` or, for a
        jobseeker panel with inflow, ``waveN_entry`` for ``cohort_entry``).
    units
        One row per unit (municipality or person) with its time-invariant attributes.
    areas
        One row per trial area (all waves).
    scenario
        The parameters of the simulated world (a :class:`StaggeredDesign` for
        :func:`simulate_staggered`).
    seed, design_seed
        Seeds of the outcomes and of the geography / trial assignment.
    times
        The month index ``t`` of the columns of the wide potential-outcome arrays.
    potential_outcomes
        Outcome -> ``(Y0, Y1)`` arrays of shape ``(n_units, n_months)`` (rows in the order
        of :attr:`units`), or ``None`` when not kept.
    """

    data: pd.DataFrame
    truth: pd.DataFrame
    units: pd.DataFrame
    areas: pd.DataFrame
    scenario: Scenario | StaggeredDesign
    seed: int
    design_seed: int
    times: np.ndarray
    potential_outcomes: dict[str, tuple[np.ndarray, np.ndarray]] | None = None

    def true_effects(self, outcome: str, *, kind: str = "event", design: str | None = None,
                     population: str = "treated") -> pd.DataFrame:
        """Rows of :attr:`truth` for one outcome, kind, design and population.

        ``design`` defaults to the only design of a jobseeker panel and to
        ``first_treated`` for the municipal panel.
        """
        designs = self.truth["design"].unique()
        design = design or ("first_treated" if "first_treated" in designs else designs[0])
        rows = self.truth[(self.truth["outcome"] == outcome) & (self.truth["kind"] == kind)
                          & (self.truth["design"] == design)
                          & (self.truth["population"] == population)]
        if rows.empty:
            raise SimulationError(
                f"no true effects for outcome={outcome!r}, kind={kind!r}, design={design!r}, "
                f"population={population!r}; available designs {sorted(designs)}, outcomes "
                f"{sorted(self.truth['outcome'].unique())}, populations "
                f"{sorted(self.truth['population'].unique())}."
            )
        return rows.reset_index(drop=True)


def simulate_municipalities(
    scenario: str | Scenario = "default",
    *,
    seed: int = DEFAULT_SEED,
    design_seed: int | None = None,
    n_municipalities: int = 309,
    keep_potential_outcomes: bool = True,
) -> SimulatedPanel:
    """Simulate the municipality-month panel of the three trial waves.

    Parameters
    ----------
    scenario
        Name of a scenario in :data:`SCENARIOS` or a :class:`Scenario`.
    seed
        Seed of the outcome draws (and of the design when ``design_seed`` is None).
    design_seed
        Seed of the geography and trial assignment; fix it to keep the same country and
        trials across Monte Carlo replications.
    n_municipalities
        Number of municipalities (309 reproduces Finland; trial sizes scale with it).
    keep_potential_outcomes
        Keep the wide ``(Y0, Y1)`` arrays in the result.

    Returns
    -------
    SimulatedPanel
        ``data`` has one row per municipality-month with columns ``municipality, name, ely,
        month ('2021M03'), t (2010M01 = 1), year, labour_force, jobseekers, unemployed,
        long_term_unemployed, unemployed_under25, unemployed_over50, unemployed_foreign,
        unemployment_rate, vacancies, in_services, other_jobseekers, employment_plans,
        lms_cost_total, lms_cost_state, lms_cost_municipal, treated (trial running this
        month), wave (the wave running, 0 if none), earlier_waves (waves the municipality
        ran that ended before the month), first_treated, cohort_w1..cohort_w3 (first
        trial month t, 0 = never) and area_w1..area_w3``.

    Notes
    -----
    True effects are averages of the realised :math:`Y_{it}(1) - Y_{it}(0)` (see
    :func:`evaluation.synthetic.truth.truth_table`). For ``first_treated`` they cover the
    whole path after a unit's first trial (later waves included); for ``waveN`` they count
    only that wave's effect window and the overall effect averages the wave's own months,
    so evaluate a wave on a panel cut to its period.

    Common shocks (``area_shock``, ``ely_shock``; see
    :func:`evaluation.synthetic.shocks.common_shocks`) move both potential outcomes by the
    same counts, so the truth equals that of the same seed without them. With
    ``carry_over`` the effects of a wave persist after it ends: the ``first_treated`` truth
    contains them, each ``waveN`` design has a population ``carry_over`` (municipalities
    outside wave N that ran an earlier wave, or neighboured one with spillovers) whose
    effects in wave N's window are the carried-over ones (members' effects include what
    their own earlier wave carries over), and ``units`` gets boolean columns
    ``carry_over_w2`` and ``carry_over_w3``. Effects after each wave ended (kinds
    ``post_wave*``) and of the municipalities that ran an earlier wave (population
    ``repeat``; design ``waveN_added`` for what wave N itself added) are described in
    :func:`evaluation.synthetic.municipal.wave_end_truth`.
    """
    scenario = get_scenario(scenario)
    design_seed = seed if design_seed is None else design_seed
    design = build_design(n_municipalities, _rng(design_seed, _DESIGN))
    shock = common_shocks(design, scenario, monthly_calendar()[1], _rng(seed, _SHOCKS))
    draw = draw_municipal_panel(design, scenario, _rng(seed, _MUNICIPAL), shock)
    data = to_long_frame(design, draw, scenario, _rng(seed, _ATTRITION))
    effects = {k: draw.potential[k][1] - draw.potential[k][0] for k in MUNICIPAL_OUTCOMES}
    truth = [truth_table(effects, design.first_treated, draw.t,
                         {"treated": design.first_treated > 0}, "first_treated")]
    for w in WAVES:
        start = month_index(w.start)
        window = ((draw.t >= start - scenario.anticipation)
                  & (draw.t < start + w.n_months))[None, :]
        wave_effects = {k: v * window for k, v in effects.items()}
        cohort = np.full(design.n_municipalities, start)
        members = design.membership[:, w.number - 1]
        populations = {"treated": members >= 0, "neighbours": design.neighbour[:, w.number - 1]}
        if scenario.carry_over > 0:
            populations["carry_over"] = _carries_over(design, scenario, w.number)
        truth.append(truth_table(wave_effects, cohort, draw.t, populations, f"wave{w.number}",
                                 (0, w.n_months - 1)))
        truth.append(truth_table(
            wave_effects, cohort, draw.t,
            {area: members == row for row, area in enumerate(design.areas["area"])
             if design.areas["wave"].iat[row] == w.number},
            f"wave{w.number}", (0, w.n_months - 1), kinds=("overall",)))
    truth += wave_end_truth(design, scenario, draw, lambda other: draw_municipal_panel(
        design, other, _rng(seed, _MUNICIPAL), shock))
    units = _municipality_table(design)
    if scenario.carry_over > 0:
        for w in WAVES[1:]:
            units[f"carry_over_w{w.number}"] = _carries_over(design, scenario, w.number)
    return SimulatedPanel(
        data=data, truth=pd.concat(truth, ignore_index=True), units=units,
        areas=design.areas.copy(), scenario=scenario, seed=seed, design_seed=design_seed,
        times=draw.t, potential_outcomes=draw.potential if keep_potential_outcomes else None,
    )


def _carries_over(design: Design, scenario: Scenario, wave_number: int) -> np.ndarray:
    """Municipalities outside the wave whose earlier wave's effect carries into it."""
    return js.carry_reach(design, scenario, wave_number) & ~design.treated(wave_number)


def _municipality_table(design: Design) -> pd.DataFrame:
    units = design.municipalities.copy()
    units["first_treated"] = design.first_treated
    for w in WAVES:
        units[f"area_w{w.number}"] = design.area_ids(w.number)
        units[f"neighbour_w{w.number}"] = design.neighbour[:, w.number - 1]
    return units


def simulate_jobseekers(
    n_people: int = 20_000,
    *,
    wave_number: int = 3,
    n_months: int = 72,
    scenario: str | Scenario = "default",
    seed: int = DEFAULT_SEED,
    design_seed: int | None = None,
    n_municipalities: int = 309,
    keep_potential_outcomes: bool = False,
) -> SimulatedPanel:
    """Simulate a jobseeker-month panel for one trial wave.

    People are drawn in proportion to municipal unemployment; their monthly labour-market
    state (unemployed, open-market job, subsidised job, education, employment services,
    outside the labour force) follows a Markov model whose transition probabilities depend
    on age, immigrant background, unemployment duration, an unobserved frailty class, the
    local labour market, the national cycle and, for target-group members of trial
    municipalities (and, with spillovers, of their neighbours), the trial.

    Parameters
    ----------
    n_people
        Number of people (scales to 1,000,000 with 72 months in well under a minute).
    wave_number
        Which wave's design to simulate (1, 2 or 3).
    n_months
        Length of the window, which ends with the wave's last month.
    scenario, seed, design_seed, n_municipalities
        As in :func:`simulate_municipalities` (same seeds give the same country).
    keep_potential_outcomes
        Keep the wide ``(Y0, Y1)`` arrays (memory: about 2 bytes x people x months x 22).

    Returns
    -------
    SimulatedPanel
        ``data`` has one row per person-month with ``person, municipality, month, t, age,
        under30, immigrant, era_member, unemployment_duration (months), state`` and the
        outcomes ``unemployed, employed_open, employed_subsidised, employed, in_education,
        in_services, outside_labour_force, plan, lms_cost, lms_cost_state,
        lms_cost_municipal`` plus ``target_group`` (meets the wave's rule in the month before
        the trial), ``treated`` (target group and trial municipality), ``cohort`` (first
        trial month t, 0 = never) and ``status`` (trial running). Truth populations are
        ``treated``, its subgroups ``under30``, ``immigrant`` and ``no_era``, and
        ``neighbours`` (target group next to a trial area).

    Notes
    -----
    Scenario knobs that change the panel (each off by default, and then the data are those
    of earlier versions byte for byte):

    * ``area_shock``, ``ely_shock``: the common shocks of
      :func:`evaluation.synthetic.shocks.common_shocks` (the same realisations as in the
      municipal panel of the same seed) shift every person's job-finding and lay-off
      log-odds like the national cycle, in both worlds; the truth stays exact but, as
      transitions are non-linear, only close to that without shocks.
    * ``carry_over``: target-group members in municipalities that ran an earlier wave (or
      neighboured one, with spillovers) carry that wave's decaying effect from the
      reference month on (members too, on top of the wave's effect); ``units`` gets
      ``carry_over`` and the truth the population ``carry_over`` (such people outside the
      wave's trial municipalities).
    * ``inflow``: ``round(inflow * n_people)`` extra people (ids after the sample) enter the
      target group during the trial (:mod:`evaluation.synthetic.inflow`). ``data`` and
      ``units`` get ``entrant``, ``entry_month`` (``t`` of the month they first meet the
      rule, 0 for the sample) and ``cohort_entry`` (first trial month counting entrants:
      the wave's first month for the treated sample, the month after entry for entrants in
      a trial municipality, 0 otherwise). Entrants have ``target_group``, ``treated``,
      ``cohort`` and ``status`` false or 0, so the reference-date cohort is unchanged. The
      truth gets the design ``waveN_entry`` (cohort ``cohort_entry``) with populations
      ``treated`` (sample and entrants), ``entrants`` and ``neighbours``.
    """
    scenario = get_scenario(scenario)
    w = _check_jobseeker_arguments(n_people, wave_number, n_months, scenario)
    design_seed = seed if design_seed is None else design_seed
    design = build_design(n_municipalities, _rng(design_seed, _DESIGN))
    rng = _rng(seed, _JOBSEEKERS)
    people = js.draw_people(design, n_people, rng)
    months = js.window(w, n_months)
    t = np.array([month_index(m) for m in months])
    rule = js.target_rule(w.number)
    shock = common_shocks(design, scenario, np.arange(t[0] - js.BURN_IN, t[-1] + 1),
                          _rng(seed, _SHOCKS))
    inflow_rng = _rng(seed, _INFLOW)
    entrants = (draw_entrants(design, scenario, w, n_people, months, rule, inflow_rng)
                if scenario.inflow > 0 else None)
    extra = None if entrants is None else EntrantChains(entrants, inflow_rng)
    without, with_trial, target = js.simulate_chains(design, scenario, w, people, months, rng,
                                                     rule, shock, extra)
    if extra is not None:
        people = concat_people(people, entrants.people)
        without, with_trial = (concat_paths(a, b) for a, b in
                               zip((without, with_trial), extra.paths(), strict=True))
        target = np.r_[target, np.zeros(entrants.entry.size, bool)]
    n_all = people.municipality.size
    costs = (js.person_lms_costs(without, people.era_member, months),
             js.person_lms_costs(with_trial, people.era_member, months))
    start = month_index(w.start)
    reference = int(np.flatnonzero(t == js.reference_month(w, scenario))[0])
    exit_month = (_rng(seed, _ATTRITION).geometric(scenario.attrition, n_people)
                  if scenario.attrition > 0 else None)
    if exit_month is not None:  # who has left the registers is in no reference-month cohort
        target[:n_people] &= exit_month > reference
    units = people_table(design, people, target, w.number, reference, with_trial)
    member = units["treated"].to_numpy()
    neighbour_muni = design.neighbour[people.municipality, w.number - 1]
    neighbour = neighbour_muni & target
    carry = js.carry_reach(design, scenario, w.number)[people.municipality] & target & ~member
    exposed = np.flatnonzero(member | neighbour | carry)
    populations = {
        "treated": member[exposed],
        "under30": (member & units["under30"].to_numpy())[exposed],
        "immigrant": (member & units["immigrant"].to_numpy())[exposed],
        "no_era": (member & ~units["era_entitled"].to_numpy())[exposed],
        "neighbours": neighbour[exposed],
    }
    if scenario.carry_over > 0:
        populations["carry_over"] = carry[exposed]
        units["carry_over"] = carry
    entry_truth: list[pd.DataFrame] = []
    if entrants is not None:
        in_trial = design.treated(w.number)[people.municipality]
        columns = entry_columns(entrants, n_people, target, in_trial, start)
        for name, values in columns.items():
            units[name] = values
        entry_rows, entry_cohort, entry_populations = entry_design(
            columns, target, in_trial, neighbour_muni, start)
    potential = {}
    truth = []
    for name in js.JOBSEEKER_OUTCOMES:
        y0, y1 = js.outcome_pair(name, without, with_trial, costs)
        effect = y1[exposed].astype(np.float64) - y0[exposed]
        truth.append(truth_table({name: effect}, np.full(exposed.size, start), t, populations,
                                 f"wave{w.number}", (0, w.n_months - 1)))
        if entrants is not None:
            effect = y1[entry_rows].astype(np.float64) - y0[entry_rows]
            entry_truth.append(truth_table({name: effect}, entry_cohort, t, entry_populations,
                                           f"wave{w.number}_entry"))
        if keep_potential_outcomes:
            potential[name] = (y0, y1)
    data = jobseeker_frame(design, people, units, with_trial, costs, months, t, w)
    if entrants is not None:
        for name in columns:
            data[name] = np.repeat(columns[name], t.size)
    if scenario.attrition > 0:
        # Everyone is observed in the first month; a person leaves after `exit_month`
        # months (an entrant's clock starts with the spell: no one leaves before entering).
        if entrants is not None:
            exit_month = np.r_[exit_month, entrants.spell_start - t[0] + inflow_rng.geometric(
                scenario.attrition, entrants.entry.size)]
        data = data.loc[np.repeat(exit_month, t.size) > np.tile(np.arange(t.size), n_all)]
        data = data.reset_index(drop=True)
    return SimulatedPanel(
        data=data, truth=pd.concat(truth + entry_truth, ignore_index=True), units=units,
        areas=design.areas.copy(), scenario=scenario, seed=seed, design_seed=design_seed,
        times=t, potential_outcomes=potential if keep_potential_outcomes else None,
    )


def _check_jobseeker_arguments(n_people: int, wave_number: int, n_months: int,
                               scenario: Scenario) -> Wave:
    """Validate the jobseeker simulator's arguments; return the wave."""
    if isinstance(n_people, bool) or not isinstance(n_people, int | np.integer) or n_people < 10:
        raise SimulationError(f"n_people={n_people!r} must be an integer of at least 10.")
    if wave_number not in (1, 2, 3):
        raise SimulationError(f"wave_number={wave_number!r} does not exist; the trials had "
                              "waves 1, 2 and 3.")
    w = wave(wave_number)
    minimum = w.n_months + scenario.anticipation + 12
    if not isinstance(n_months, int | np.integer) or n_months < minimum:
        raise SimulationError(
            f"n_months={n_months!r} leaves too few months before wave {w.number}; it needs at "
            f"least {minimum} (the wave's {w.n_months} months, the anticipation and 12 "
            "pre-trial months)."
        )
    return w


def simulate_staggered(
    design: StaggeredDesign | None = None,
    *,
    seed: int = DEFAULT_SEED,
    keep_potential_outcomes: bool = True,
    **parameters: Any,
) -> SimulatedPanel:
    """Simulate a generic staggered-adoption panel with integer time and known effects.

    Parameters
    ----------
    design
        A :class:`StaggeredDesign`; keyword ``parameters`` override its fields (or build
        one from the defaults), e.g. ``simulate_staggered(n_units=500_000, n_periods=12,
        cohorts=(5, 7, 9), dynamic=0.3, covariate_selection=1.0)``.
    seed
        Seed of all draws.
    keep_potential_outcomes
        Keep the wide ``(Y0, Y1)`` arrays of outcome ``y``.

    Returns
    -------
    SimulatedPanel
        ``data`` with columns ``unit, time, cohort (0 = never treated), treated, y, x,
        weight`` (and ``cluster``); ``truth`` with design ``cohort``, population
        ``treated`` and outcome ``y``.
    """
    try:
        design = (StaggeredDesign(**parameters) if design is None
                  else dataclasses.replace(design, **parameters))
    except TypeError as exc:
        raise SimulationError(f"invalid staggered design parameter: {exc}") from exc
    data, cohort, y0, y1 = draw_staggered(design, _rng(seed, _STAGGERED))
    times = np.arange(1, design.n_periods + 1)
    truth = truth_table({"y": y1 - y0}, cohort, times, {"treated": cohort > 0}, "cohort")
    first = data.drop_duplicates("unit")
    units = pd.DataFrame({"unit": np.arange(1, design.n_units + 1), "cohort": cohort})
    units = units.merge(first.drop(columns=["time", "treated", "y"]).drop(columns="cohort"),
                        on="unit", how="left")
    return SimulatedPanel(
        data=data, truth=truth, units=units, areas=pd.DataFrame(), scenario=design, seed=seed,
        design_seed=seed, times=times,
        potential_outcomes={"y": (y0, y1)} if keep_potential_outcomes else None,
    )


def write_synthetic_data(
    out_dir: str | Path,
    *,
    scenario: str | Scenario = "default",
    seed: int = DEFAULT_SEED,
    n_people: int = 50_000,
    wave_number: int = 3,
    n_municipalities: int = 309,
    overwrite: bool = False,
) -> Path:
    """Simulate both panels and write them with their truth and a manifest.

    Files written to ``out_dir``: ``municipalities.parquet`` (panel),
    ``municipality_info.parquet``, ``trial_areas.parquet``, ``truth_municipalities.parquet``,
    ``jobseekers.parquet``, ``jobseeker_info.parquet``, ``truth_jobseekers.parquet`` and
    ``manifest.json`` (seed, parameters, package version and the sha256 of every file).
    No time stamps are written, so the same arguments give byte-identical files.

    The files are written through :class:`~evaluation.outputs.Outputs`: each appears
    complete or not at all, a failure leaves nothing behind (a directory it created is
    removed), and ``out_dir`` must be new, empty or hold an earlier ``evaluation simulate``
    output unless ``overwrite`` is True (so an imported real extract is never replaced).

    Returns
    -------
    pathlib.Path
        Path of the manifest.
    """
    from evaluation.options import check_flag, check_seed
    from evaluation.outputs import Outputs, check_outputs, manifest_command

    scenario = get_scenario(scenario)
    check_seed("seed", seed)
    check_flag("overwrite", overwrite)
    _check_jobseeker_arguments(n_people, wave_number, 72, scenario)
    check_municipality_count(n_municipalities)
    check_outputs({"output directory": out_dir}, {}, directories=("output directory",))
    with Outputs() as outputs:
        out = outputs.directory(
            out_dir, overwrite=overwrite,
            owned=lambda path: manifest_command(path) == "evaluation simulate")
        return _write_synthetic_files(outputs, out, scenario, seed, n_people, wave_number,
                                      n_municipalities)


def _write_synthetic_files(outputs: Any, out: Path, scenario: Scenario, seed: int,
                           n_people: int, wave_number: int, n_municipalities: int) -> Path:
    """Simulate and stage every file of :func:`write_synthetic_data` in ``outputs``."""
    from evaluation import __version__

    muni = simulate_municipalities(scenario, seed=seed, n_municipalities=n_municipalities,
                                   keep_potential_outcomes=False)
    tables = {
        "municipalities.parquet": muni.data,
        "municipality_info.parquet": muni.units,
        "trial_areas.parquet": muni.areas,
        "truth_municipalities.parquet": muni.truth,
    }
    files = {name: _write_parquet(outputs, frame, out / name) for name, frame in tables.items()}
    people = simulate_jobseekers(n_people, wave_number=wave_number, scenario=scenario, seed=seed,
                                 n_municipalities=n_municipalities)
    reference = js.reference_month(wave(wave_number), scenario)
    data = add_reference_covariates(people.data, reference, muni.data)
    del muni, tables
    for name, frame in (("jobseekers.parquet", data),
                        ("jobseeker_info.parquet", people.units),
                        ("truth_jobseekers.parquet", people.truth)):
        files[name] = _write_parquet(outputs, frame, out / name)
    manifest = {
        "package": "kuntakokeilu-evaluation",
        "version": __version__,
        "command": "evaluation simulate",
        "scenario": scenario.to_dict(),
        "seed": seed,
        "n_municipalities": n_municipalities,
        "n_people": n_people,
        "jobseeker_wave": wave_number,
        "reference_t": reference,
        "time_index": "t = months since December 2009 (2010M01 = 1); cohort 0 = never treated",
        "files": files,
    }
    path = out / "manifest.json"
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    outputs.write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return path


def _write_parquet(outputs: Any, frame: pd.DataFrame, path: Path) -> dict[str, Any]:
    tmp = outputs.write(path, lambda tmp: frame.to_parquet(tmp, index=False, compression="zstd"))
    return {"sha256": sha256_file(tmp), "rows": len(frame), "columns": list(frame.columns)}
