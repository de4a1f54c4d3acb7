"""Scenario knobs of the simulator: effect sizes, dynamics, heterogeneity and violations."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from evaluation.errors import SimulationError

#: Seed of the default synthetic data set (the start date of the first wave).
DEFAULT_SEED = 20120901


@dataclass(frozen=True)
class Scenario:
    r"""Parameters of a synthetic world.

    Effect sizes are stated on the municipal scale (relative changes of monthly stocks); the
    jobseeker simulator converts them into shifts of monthly transition log-odds with the
    factors in :data:`INDIVIDUAL_LOGIT_PER_UNIT`, so both levels tell the same story.

    Attributes
    ----------
    name
        Label stored in manifests.
    effect_scale
        Multiplies every treatment effect (0 gives a world without effects).
    employment_effect
        Long-run relative fall in unemployment caused by faster job finding (0.05 = 5 %).
    employment_dip
        Relative rise in unemployment at the start of a wave (start-up disruption); decays
        with time constant ``dip_months``.
    dip_months
        Decay time constant of the start-up dip, in months.
    service_shift
        Share of the unemployed moved into employment-promoting services at full ramp-up.
    ramp_months
        Time constant of the ramp-up of the service shift and of the employment effect.
    plan_reduction, plan_months, plan_reduction_late
        Relative fall in employment plans drawn up during the first ``plan_months`` months of
        a wave, and afterwards.
    cohort_effects
        Multipliers of all effects for waves 1, 2 and 3 (heterogeneity by cohort).
    target_effects
        Multipliers of the individual-level effects for target-group members who are under
        30, immigrants, or neither (eligible because they lack earnings-related allowance).
    area_heterogeneity
        Standard deviation of a log-normal multiplier drawn per trial area.
    anticipation
        Months before the start of a wave in which effects already begin.
    pretrend
        Relative drift per year of the untreated unemployment of later-treated units,
        measured from their first treatment date (violates parallel trends; not an effect).
    spillover
        Share of the effect reaching untreated neighbours of a trial area.
    attrition
        Municipal panel: probability that a municipality-month cell is missing. Jobseeker
        panel: monthly probability of leaving the register for good.
    noise
        Multiplies every idiosyncratic shock (1 = calibrated default).
    area_shock
        Standard deviation of a common AR(1) shock to the log of the untreated jobseeker
        stocks shared by all municipalities (and their jobseekers) of one trial area; a
        municipality carries the shock of every area it belonged to in any wave. 0 = off.
    ely_shock
        Standard deviation of a common AR(1) shock shared by all municipalities (and their
        jobseekers) of one ELY region, on top of the calibrated regional cycle. 0 = off.
    inflow
        Jobseeker panel: extra people who enter the wave's target group during the trial
        (newly unemployed or newly arrived), as a share of ``n_people``. 0 = off.
    carry_over
        Share of a wave's effect (service shift and employment effect, as in its last month)
        that persists in its municipalities after the wave ended. 0 = off.
    carry_months
        Decay time constant (months) of the carried-over effect.

    Notes
    -----
    The common shocks move untreated outcomes only. With :math:`x^{(j)}_t` independent
    stationary AR(1) processes of unit variance and persistence :math:`\rho` =
    :data:`~evaluation.synthetic.shocks.SHOCK_PERSISTENCE`,

    .. math::

        x_t = \rho\, x_{t+1} + \sqrt{1-\rho^2}\,\varepsilon_t, \qquad
        c_{it} = \sigma_A \sum_{w} x^{(a_w(i))}_t + \sigma_E\, x^{(e(i))}_t,

    summed over the trial areas :math:`a_w(i)` of municipality :math:`i` and its ELY region
    :math:`e(i)` (:func:`~evaluation.synthetic.shocks.common_shocks`). Municipal stocks of
    both worlds move by the same count, about :math:`(e^{c_{it}} - 1) Y_{it}(0)`, so the
    municipal truth is unchanged; persons' monthly job-finding and lay-off log-odds move
    like the national cycle with :math:`2 c_{it}`, which moves their untreated
    unemployment by about the same factor.

    Carry-over extends the service-shift and unemployment components :math:`f` of wave
    :math:`w` (length :math:`n_w`, event time :math:`e`) past its last month:
    :math:`f(e) = \kappa\, f(n_w - 1)\, e^{-(e - n_w + 1)/m_\kappa}` for :math:`e \ge n_w`,
    with :math:`\kappa` = ``carry_over`` and :math:`m_\kappa` = ``carry_months``
    (:func:`~evaluation.synthetic.effects.effect_paths`). Plans do not carry over: the TE
    office draws them up again once a wave ends.

    Knobs added after the first release (see :data:`ADDED_FIELDS`) are left out of
    :meth:`to_dict` while they keep their default, so manifests of older scenarios do not
    change.
    """

    name: str = "default"
    effect_scale: float = 1.0
    employment_effect: float = 0.0
    employment_dip: float = 0.02
    dip_months: float = 6.0
    service_shift: float = 0.04
    ramp_months: float = 6.0
    plan_reduction: float = 0.12
    plan_months: int = 12
    plan_reduction_late: float = 0.03
    cohort_effects: tuple[float, float, float] = (1.0, 1.0, 1.0)
    target_effects: tuple[float, float, float] = (1.0, 1.0, 1.0)
    area_heterogeneity: float = 0.3
    anticipation: int = 0
    pretrend: float = 0.0
    spillover: float = 0.0
    attrition: float = 0.0
    noise: float = 1.0
    area_shock: float = 0.0
    ely_shock: float = 0.0
    inflow: float = 0.0
    carry_over: float = 0.0
    carry_months: float = 36.0

    def __post_init__(self) -> None:
        _check_range(self.dip_months, "dip_months", 0.1, 120)
        _check_range(self.ramp_months, "ramp_months", 0.1, 120)
        _check_range(self.service_shift, "service_shift", 0.0, 0.5)
        _check_range(self.employment_dip, "employment_dip", -0.5, 0.5)
        _check_range(self.employment_effect, "employment_effect", -0.5, 0.5)
        _check_range(self.plan_reduction, "plan_reduction", -1.0, 0.9)
        _check_range(self.plan_reduction_late, "plan_reduction_late", -1.0, 0.9)
        _check_range(self.area_heterogeneity, "area_heterogeneity", 0.0, 2.0)
        _check_range(self.spillover, "spillover", 0.0, 1.0)
        _check_range(self.attrition, "attrition", 0.0, 0.5)
        _check_range(self.noise, "noise", 0.0, 10.0)
        _check_range(self.anticipation, "anticipation", 0, 12, whole=True)
        _check_range(self.plan_months, "plan_months", 0, 60, whole=True)
        _check_range(self.area_shock, "area_shock", 0.0, 1.0)
        _check_range(self.ely_shock, "ely_shock", 0.0, 1.0)
        _check_range(self.inflow, "inflow", 0.0, 2.0)
        _check_range(self.carry_over, "carry_over", 0.0, 1.0)
        _check_range(self.carry_months, "carry_months", 0.1, 240)
        if len(self.cohort_effects) != 3 or len(self.target_effects) != 3:
            raise SimulationError(
                "cohort_effects and target_effects need exactly three multipliers "
                "(waves 1-3; under 30 / immigrant / other target members)."
            )

    def replace(self, **changes: Any) -> Scenario:
        """Return a copy with some fields changed (unknown names raise SimulationError)."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise SimulationError(
                f"unknown scenario parameter(s) {unknown}; "
                f"valid names are {[f.name for f in dataclasses.fields(self)]}."
            )
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dictionary of the parameters (for manifests).

        Fields of :data:`ADDED_FIELDS` at their default value are left out.
        """
        out = dataclasses.asdict(self)
        out["cohort_effects"] = list(self.cohort_effects)
        out["target_effects"] = list(self.target_effects)
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        for name in ADDED_FIELDS:
            if out[name] == defaults[name]:
                del out[name]
        return out


#: Scenario fields added after the first release (common shocks, inflow, carry-over).
ADDED_FIELDS = ("area_shock", "ely_shock", "inflow", "carry_over", "carry_months")


def _check_range(value: float, name: str, low: float, high: float, whole: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise SimulationError(f"scenario parameter {name}={value!r} must be a number.")
    if not np.isfinite(value) or not low <= value <= high:
        raise SimulationError(f"scenario parameter {name}={value!r} must lie in [{low}, {high}].")
    if whole and value != int(value):
        raise SimulationError(f"scenario parameter {name}={value!r} must be a whole number "
                              "of months.")


#: Named scenarios; ``get_scenario(name, **overrides)`` returns one of them.
SCENARIOS: dict[str, Scenario] = {
    # Calibrated to the published findings: no employment effect beyond a start-up dip,
    # a shift from open unemployment into services, fewer plans early, cost shift to the state.
    "default": Scenario(),
    "null": Scenario(name="null", effect_scale=0.0, area_heterogeneity=0.0),
    "positive": Scenario(name="positive", employment_effect=0.06, employment_dip=0.0),
    # Staggered, dynamic and heterogeneous effects: the case where static / dynamic TWFE fail.
    "heterogeneous": Scenario(
        name="heterogeneous",
        employment_effect=0.08,
        employment_dip=0.0,
        ramp_months=12.0,
        cohort_effects=(0.5, 1.5, 2.5),
        target_effects=(1.8, 0.6, 1.0),
        area_heterogeneity=0.4,
    ),
    "anticipation": Scenario(name="anticipation", anticipation=3, employment_effect=0.03),
    "pretrend": Scenario(name="pretrend", pretrend=0.03),
    "spillover": Scenario(name="spillover", spillover=0.5, employment_effect=0.04),
    "attrition": Scenario(name="attrition", attrition=0.01),
    # Common shocks: an area's municipalities move together (8 % standard deviation of the
    # untreated stocks, about a year of persistence), so clustering by area matters.
    "area_shock": Scenario(name="area_shock", area_shock=0.08),
    # Extra ELY-level shocks (5 %) on top of the calibrated regional cycle.
    "ely_shock": Scenario(name="ely_shock", ely_shock=0.05),
    # A fifth as many people again enter the target group during the trial.
    "inflow": Scenario(name="inflow", inflow=0.2),
    # Half of the earlier waves' effects persist, decaying over three years: wave-3
    # comparison municipalities that ran wave 1 or 2 are not clean controls.
    "carry_over": Scenario(name="carry_over", carry_over=0.5, carry_months=36.0,
                           employment_effect=0.04),
    # The default world with modest persistence after each wave ends: 30 % of the service
    # shift and unemployment effect of a wave's last month remain, decaying over a year (the
    # default scenario keeps carry_over=0 so its shipped validation runs stay as they are).
    "persistence": Scenario(name="persistence", carry_over=0.3, carry_months=12.0),
}


def get_scenario(name: str | Scenario = "default", **overrides: Any) -> Scenario:
    """Return the named scenario, optionally with some parameters overridden.

    Parameters
    ----------
    name
        A key of :data:`SCENARIOS` or a :class:`Scenario` instance.
    **overrides
        Parameters to change, e.g. ``employment_effect=0.05``.

    Raises
    ------
    SimulationError
        For an unknown scenario name or parameter.
    """
    if isinstance(name, Scenario):
        base = name
    else:
        if name not in SCENARIOS:
            raise SimulationError(
                f"unknown scenario {name!r}; choose one of {sorted(SCENARIOS)} "
                "or pass a Scenario instance."
            )
        base = SCENARIOS[name]
    return base.replace(**overrides) if overrides else base
