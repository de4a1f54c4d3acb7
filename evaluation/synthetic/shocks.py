r"""Common shocks by trial area and ELY region, shared by municipalities and their jobseekers.

Real evaluations face shocks that hit all municipalities of an area or a region at once (a
plant closure, a regional industry cycle). They make the municipalities of one trial area
move together, so standard errors that treat municipalities (or persons) as independent are
too small and inference must cluster by area. The shocks move untreated outcomes only.

Both simulators draw the same realisations from one random stream: the processes are
generated backwards from the last panel month, so any window ending on or before it sees
the same values in the months it shares with the municipal panel.
"""

from __future__ import annotations

import numpy as np

from evaluation.sources.trials import PANEL_END, month_index
from evaluation.synthetic.design import Design
from evaluation.synthetic.scenario import Scenario

#: Monthly persistence :math:`\rho` of the common AR(1) shocks (a half-life of 6.6 months).
SHOCK_PERSISTENCE = 0.9
_LAST_T = month_index(PANEL_END)
#: Municipal counts that are parts of the unemployed stock.
UNEMPLOYED_PARTS = ("long_term_unemployed", "unemployed_under25", "unemployed_over50",
                    "unemployed_foreign")
#: Other municipal counts that move with the shock (their own floor only).
OTHER_STOCKS = ("in_services", "other_jobseekers", "employment_plans")


def common_shocks(design: Design, scenario: Scenario, t: np.ndarray,
                  rng: np.random.Generator) -> np.ndarray | None:
    r"""Log shocks :math:`c_{it}` of every municipality in the months ``t``.

    Parameters
    ----------
    design
        The synthetic country (trial areas and ELY regions).
    scenario
        Supplies ``area_shock`` (:math:`\sigma_A`) and ``ely_shock`` (:math:`\sigma_E`).
    t
        Increasing month indices (2010M01 = 1), at most that of December 2024.
    rng
        Generator of the shock stream (used only when a knob is switched on).

    Returns
    -------
    numpy.ndarray or None
        ``(n_municipalities, len(t))``; None when both knobs are zero.

    Notes
    -----
    Each trial area :math:`a` (of any wave) and each ELY region :math:`e` has a stationary
    AR(1) process of unit variance, drawn backwards from December 2024 (:math:`T`):

    .. math::

        x_T = \varepsilon_T, \qquad x_{t} = \rho\, x_{t+1} + \sqrt{1 - \rho^2}\,
        \varepsilon_t, \qquad \varepsilon_t \sim N(0, 1),

    which has the same law as the forward recursion. A municipality's shock is

    .. math::

        c_{it} = \sigma_A \sum_{w=1}^{3} x^{A}_{a_w(i), t}\,[i \in \text{wave } w]
            + \sigma_E\, x^{E}_{e(i), t},

    so municipalities of one area (one region) share it and a municipality that ran several
    waves carries the processes of all its areas. The innovations of month :math:`t` are the
    :math:`(t_{max} - t)`-th row of one standard-normal draw, so the value in a month does
    not depend on how far back a window reaches.
    """
    if scenario.area_shock == 0 and scenario.ely_shock == 0:
        return None
    t = np.asarray(t, dtype=np.int64)
    n_areas = len(design.areas)
    ely_codes, ely_index = np.unique(design.municipalities["ely"].to_numpy(),
                                     return_inverse=True)
    n_steps = _LAST_T - int(t.min()) + 1
    eps = rng.standard_normal((n_steps, n_areas + len(ely_codes)))
    x = np.empty_like(eps)  # row r is month _LAST_T - r
    x[0] = eps[0]
    scale = np.sqrt(1 - SHOCK_PERSISTENCE**2)
    for r in range(1, n_steps):
        x[r] = SHOCK_PERSISTENCE * x[r - 1] + scale * eps[r]
    rows = _LAST_T - t
    area_x = scenario.area_shock * x[rows, :n_areas].T  # (n_areas, len(t))
    shock = scenario.ely_shock * x[rows, n_areas:].T[ely_index]
    for w in range(design.membership.shape[1]):
        member = design.membership[:, w]
        shock[member >= 0] += area_x[member[member >= 0]]
    return shock


def shift_municipal_counts(
    counts: dict[str, tuple[np.ndarray, np.ndarray]],
    costs: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    shock: np.ndarray,
    monthly_rate: np.ndarray,
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], list[tuple[np.ndarray, ...]]]:
    r"""Move both potential municipal counts by the same shock-driven number of people.

    Parameters
    ----------
    counts
        Name -> ``(Y0, Y1)`` drawn counts: ``unemployed``, its parts
        (:data:`UNEMPLOYED_PARTS`) and :data:`OTHER_STOCKS`.
    costs
        ``[(total, state, municipal)]`` labour-market-subsidy costs of both worlds.
    shock
        Log shocks :math:`c_{it}` of :func:`common_shocks`.
    monthly_rate
        Monthly subsidy per recipient (EUR), broadcastable to the counts.

    Returns
    -------
    tuple
        The shifted counts and costs (same structure).

    Notes
    -----
    With :math:`k = e^{c} - 1` every count moves by one integer :math:`\Delta` in both
    worlds, so :math:`Y(1) - Y(0)` and every true effect stay exactly as without shocks:

    .. math::

        \Delta_U = \max\big(\mathrm{round}(k U_0),\; -\min_{d, P}(U_d - P_d)\big), \qquad
        \Delta_P = \mathrm{clip}\big(\mathrm{round}(k P_0),\; -\min_d P_d,\;
            \min_d (U_d - P_d) + \Delta_U\big),

    for the parts :math:`P` of the unemployed, and
    :math:`\Delta_X = \max(\mathrm{round}(k X_0), -\min_d X_d)` for services, other
    jobseekers and plans. The floors keep counts non-negative and parts within the
    unemployed (they bind only for shocks far beyond the calibrated sizes). Costs move by
    :math:`\mathrm{round}(b(\Delta_L + 0.35(\Delta_U - \Delta_L) + 0.6\Delta_S))` and the
    municipal share by :math:`\mathrm{round}(0.56\, b\, \Delta_L)` (see
    :func:`~evaluation.synthetic.municipal.municipal_lms_costs`).
    """
    k = np.expm1(shock)
    u0, u1 = counts["unemployed"]
    room = np.minimum.reduce([np.minimum(u0 - counts[p][0], u1 - counts[p][1])
                              for p in UNEMPLOYED_PARTS])
    delta = {"unemployed": np.maximum(np.round(k * u0), -room)}
    for part in UNEMPLOYED_PARTS:
        x0, x1 = counts[part]
        delta[part] = np.clip(np.round(k * x0), -np.minimum(x0, x1),
                              np.minimum(u0 - x0, u1 - x1) + delta["unemployed"])
    for name in OTHER_STOCKS:
        x0, x1 = counts[name]
        delta[name] = np.maximum(np.round(k * x0), -np.minimum(x0, x1))
    shifted = {name: (pair[0] + delta[name], pair[1] + delta[name])
               for name, pair in counts.items()}
    d_ltu = delta["long_term_unemployed"]
    d_total = np.round(monthly_rate * (d_ltu + 0.35 * (delta["unemployed"] - d_ltu)
                                       + 0.6 * delta["in_services"]))
    d_municipal = np.round(monthly_rate * 0.56 * d_ltu)
    moved = []
    for total, _, municipal in costs:
        total, municipal = total + d_total, municipal + d_municipal
        moved.append((total, total - municipal, municipal))
    return shifted, moved
