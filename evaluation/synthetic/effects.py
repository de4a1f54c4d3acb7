"""Treatment-effect paths over event time, shared by the municipal and jobseeker simulators."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evaluation.synthetic.scenario import Scenario

#: Conversion of municipal-scale effects into individual monthly transition log-odds shifts:
#: a service shift of 0.04 of the unemployed becomes +0.32 on the log-odds of moving from
#: unemployment into services; a 1 % change in unemployment becomes 0.06 on the log-odds
#: of finding a job (with opposite sign).
SERVICE_LOGIT_PER_SHARE = 8.0
JOB_LOGIT_PER_UNEMPLOYMENT = 6.0


@dataclass(frozen=True)
class EffectPaths:
    """Effect components at each event time (already multiplied by ``effect_scale``).

    Attributes
    ----------
    service_shift
        Share of the untreated unemployed stock moved into services.
    unemployment
        Relative change of the unemployed stock from the start-up dip and the employment
        effect (positive = more unemployment).
    plans
        Relative change of the number of employment plans drawn up (negative = fewer).
    active
        Whether the event time lies in the effect window
        ``-anticipation <= e <= wave_months - 1`` (carried-over effects lie outside it).
    """

    service_shift: np.ndarray
    unemployment: np.ndarray
    plans: np.ndarray
    active: np.ndarray


def effect_paths(scenario: Scenario, event_time: np.ndarray, wave_months: int) -> EffectPaths:
    r"""Evaluate the scenario's effect components at the given event times.

    Parameters
    ----------
    scenario
        The simulated world.
    event_time
        Months since the wave started (0 = first trial month); any shape.
    wave_months
        Length of the wave in months; effects stop after its last month.

    Returns
    -------
    EffectPaths
        Arrays with the shape of ``event_time``; zero outside the effect window.

    Notes
    -----
    With :math:`k = e + a` months since effects began (``a`` = anticipation),

    .. math::

        r(k) = 1 - e^{-(k+1)/m_r}, \qquad d(k) = e^{-k/m_d},

        \text{shift}(e) = s\,r(k), \qquad
        \text{unemployment}(e) = \delta\,d(k) - \eta\,r(k), \qquad
        \text{plans}(e) = -p \text{ if } e < m_p \text{ else } -p_{late},

    all multiplied by ``effect_scale`` and set to zero when :math:`k < 0` or
    :math:`e \ge` ``wave_months``. With ``carry_over`` :math:`\kappa > 0` the shift and
    unemployment components persist after the wave's last month :math:`n - 1`:

    .. math::

        f(e) = \kappa\, f(n - 1)\, e^{-(e - n + 1)/m_\kappa}, \qquad e \ge n,

    with :math:`m_\kappa` = ``carry_months``; ``active`` stays the wave's own window.
    """
    e = np.asarray(event_time, dtype=float)
    k = e + scenario.anticipation
    active = (k >= 0) & (e <= wave_months - 1)
    kk = np.where(active, k, 0.0)
    ramp = 1.0 - np.exp(-(kk + 1.0) / scenario.ramp_months)
    dip = np.exp(-kk / scenario.dip_months)
    scale = scenario.effect_scale * active
    shift = scale * scenario.service_shift * ramp
    unemployment = scale * (scenario.employment_dip * dip - scenario.employment_effect * ramp)
    plans = -scale * np.where(e < scenario.plan_months, scenario.plan_reduction,
                              scenario.plan_reduction_late)
    if scenario.carry_over > 0:
        last = effect_paths(scenario.replace(carry_over=0.0), np.array([wave_months - 1]),
                            wave_months)
        after = e >= wave_months
        decay = np.where(after, scenario.carry_over
                         * np.exp(-(np.where(after, e, wave_months) - wave_months + 1)
                                  / scenario.carry_months), 0.0)
        shift = shift + decay * last.service_shift[0]
        unemployment = unemployment + decay * last.unemployment[0]
    return EffectPaths(shift, unemployment, plans, active)
