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
    """Parameters of a synthetic world.

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
        """JSON-friendly dictionary of all parameters (for manifests)."""
        out = dataclasses.asdict(self)
        out["cohort_effects"] = list(self.cohort_effects)
        out["target_effects"] = list(self.target_effects)
        return out


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
