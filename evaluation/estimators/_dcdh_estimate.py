r"""Assemble the de Chaisemartin-D'Haultfoeuille estimates from both directions (private).

:func:`estimate_all` runs :func:`~evaluation.estimators._dcdh_core.side_effect` for every
lag and direction, pools switchers in and out, normalises, builds the average total effect
and returns the estimates with their variance influence functions. See
:class:`~evaluation.estimators.dcdh.ChaisemartinDHaultfoeuille` for the formulas.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from evaluation.errors import IdentificationError
from evaluation.estimators._dcdh_controls import ControlFit, control_changes
from evaluation.estimators._dcdh_core import (
    SideEffect,
    lagged_difference,
    placebo_difference,
    side_effect,
)
from evaluation.estimators._dcdh_design import SwitchDesign

#: Directions by the ``switchers`` option: 1 switchers in, 0 switchers out.
DIRECTIONS = {"both": (1, 0), "in": (1,), "out": (0,)}


@dataclass
class DCDHEstimates:
    """Point estimates and variance influence functions of one fit.

    ``estimate`` and the columns of ``influence_var`` are ordered: effects 1..L, placebos
    1..K, the average total effect (NaN where not estimable, with the reason in
    ``reasons``).
    """

    estimate: np.ndarray
    influence_var: np.ndarray
    switchers: np.ndarray
    switchers_weighted: np.ndarray
    observations: np.ndarray
    n_effects: int
    n_placebos: int
    supported_effects: int
    supported_placebos: int
    delta_avg_total: float
    reasons: dict[int, str] = field(default_factory=dict)


def _switch_path_change(design: SwitchDesign, lag: int) -> np.ndarray:
    r"""``(G,)`` :math:`\sum_{t=F_g}^{F_g-1+\ell} |D_{g,t} - D_{g,1}|` (signed by direction)."""
    change = np.nan_to_num(design.treatment - design.baseline[:, None])
    cumulative = np.cumsum(change, axis=1)
    rows = np.arange(design.n_groups)
    end = np.clip(design.first_switch - 1 + lag, 0, design.n_periods - 1)
    start = np.clip(design.first_switch - 1, 0, design.n_periods - 1)
    total = cumulative[rows, end] - cumulative[rows, start]
    return np.where(design.baseline == 0, total, -total)


def _change_at_switch(design: SwitchDesign, side: SideEffect) -> np.ndarray:
    r"""``(G,)`` :math:`|D_{g,F_g-1+\ell} - D_{g,1}|` of the used switchers (0 elsewhere)."""
    rows = np.arange(design.n_groups)
    period = np.clip(side.switch_period, 0, design.n_periods - 1)
    change = np.abs(np.nan_to_num(design.treatment[rows, period] - design.baseline))
    return np.where(side.used_switchers, change, 0.0)


def _weighted_mean(side: SideEffect, design: SwitchDesign, values: np.ndarray) -> float:
    """Mean of ``values`` over the used switchers weighted by their cell weights."""
    rows = np.arange(design.n_groups)
    period = np.clip(side.switch_period, 0, design.n_periods - 1)
    weights = np.where(side.used_switchers, design.cell_weight[rows, period], 0.0)
    return float(weights @ values / side.weight)


def supported_lags(design: SwitchDesign, switchers: str, effects: int, placebo: int
                   ) -> tuple[int, int, dict[int, int], dict[int, int]]:
    """Numbers of effects and placebos the data support, overall and by direction.

    Raises
    ------
    IdentificationError
        If no switcher of the requested direction(s) has a comparison unit.
    """
    directions = DIRECTIONS[switchers]
    max_effects = {d: design.max_effects(d) for d in directions}
    max_placebos = {d: design.max_placebos(d) for d in directions}
    if max(max_effects.values()) == 0:
        what = {"both": "switcher", "in": "switcher in (0 -> 1)",
                "out": "switcher out (1 -> 0)"}[switchers]
        raise IdentificationError(
            f"no effect can be estimated: no {what} has a not-yet-switched comparison unit "
            "with the same baseline status at its switch. Check the status column, or use "
            "switchers='both'.")
    n_effects = min(max(max_effects.values()), effects)
    n_placebos = min(max(max_placebos.values()), placebo, effects)
    by_effects = {d: min(max_effects[d], n_effects) for d in directions}
    by_placebos = {d: min(max_placebos[d], n_placebos) for d in directions}
    return n_effects, n_placebos, by_effects, by_placebos


def estimate_all(design: SwitchDesign, *, effects: int, placebo: int, normalized: bool,
                 switchers: str, controls: ControlFit | None = None) -> DCDHEstimates:
    r"""Estimate :math:`DID_\ell`, the placebos and the average total effect."""
    n_effects, n_placebos, by_effects, by_placebos = supported_lags(
        design, switchers, effects, placebo)
    directions = DIRECTIONS[switchers]
    n_groups = design.n_groups
    size = effects + placebo + 1
    estimate = np.full(size, np.nan)
    influence_var = np.zeros((n_groups, size))
    switcher_count = np.zeros(size)
    switcher_weight = np.zeros(size)
    observations = np.zeros(size)
    reasons: dict[int, str] = {}
    total_cells = np.zeros((n_groups, design.n_periods), dtype=bool)
    ate_parts: dict[int, list[tuple[SideEffect, float]]] = {d: [] for d in directions}
    average_numerator = average_denominator = 0.0
    y = design.outcome

    for lag in range(1, max(effects, placebo) + 1):
        needed = lag <= n_effects or lag <= n_placebos
        if not needed:
            continue
        diff = lagged_difference(y, lag)
        grid = np.arange(design.n_periods)
        comparable = (design.first_switch[:, None] > grid[None, :]) & ~np.isnan(diff)
        reach = design.first_switch - 1 + lag <= design.last_control
        moved = None if controls is None else control_changes(controls.values, lag, False)
        change = diff if controls is None else controls.adjusted(design, diff, moved)
        sides = {d: _corrected(side_effect(design, lag, d, change, comparable, reach, moved),
                               design, controls, d, placebo=False)
                 for d in directions}
        if lag <= n_effects:
            active = {d: s for d, s in sides.items() if lag <= by_effects[d]}
            column = lag - 1
            _pool(active, design, lag, normalized, column, estimate, influence_var,
                  switcher_count, switcher_weight, observations, reasons, "effect")
            for d, s in active.items():
                if s.weight > 0:
                    ate_parts[d].append((s, float(_weighted_mean(
                        s, design, _change_at_switch(design, s)))))
                    total_cells[s.rows, s.columns] |= s.cells
                    change = _change_at_switch(design, s)
                    lengths = design.last_control - design.first_switch + 1
                    remaining = np.minimum(n_effects, lengths) - lag + 1
                    average_numerator += float(change @ np.where(change != 0, remaining, 0))
                    average_denominator += float(change.sum())
        elif lag <= effects:
            reasons[lag - 1] = (f"effect {lag} is not estimable: no switcher is observed "
                                f"{lag} periods after its switch with a not-yet-switched "
                                "comparison unit")
        if lag <= n_placebos:
            pl_diff = placebo_difference(y, lag)
            pl_comparable = comparable & ~np.isnan(pl_diff)
            pl_moved = (None if controls is None
                        else control_changes(controls.values, lag, True))
            pl_change = (pl_diff if controls is None
                         else controls.adjusted(design, pl_diff, pl_moved))
            placebo_sides = {
                d: _corrected(side_effect(design, lag, d, pl_change, pl_comparable,
                                          s.used_switchers, pl_moved),
                              design, controls, d, placebo=True)
                for d, s in sides.items() if lag <= by_placebos[d]}
            _pool(placebo_sides, design, lag, normalized, effects + lag - 1, estimate,
                  influence_var, switcher_count, switcher_weight, observations, reasons,
                  "placebo")
    for lag in range(n_effects + 1, effects + 1):
        reasons.setdefault(lag - 1, f"effect {lag} is not estimable: no switcher is observed "
                                    f"{lag} periods after its switch with a not-yet-switched "
                                    "comparison unit")
    for lag in range(n_placebos + 1, placebo + 1):
        reasons[effects + lag - 1] = (
            f"placebo {lag} is not estimable: " + (
                "placebos are reported only up to the number of effects"
                if lag > effects else
                f"no switcher is observed {lag} periods before its switch with a comparison"))

    _average_total_effect(ate_parts, design, switchers, size - 1, estimate, influence_var,
                          switcher_count, switcher_weight, observations, reasons, total_cells,
                          n_effects)
    delta_avg = (average_numerator / average_denominator if average_denominator > 0
                 else float("nan"))
    return DCDHEstimates(estimate, influence_var, switcher_count, switcher_weight,
                         observations, effects, placebo, n_effects, n_placebos, delta_avg,
                         reasons)


def _corrected(side: SideEffect, design: SwitchDesign, controls: ControlFit | None,
               direction: int, *, placebo: bool) -> SideEffect:
    """Subtract the controls' estimation term from the variance influence function."""
    if controls is None or side.weight == 0:
        return side
    term = controls.correction(design, side.derivative, 1 - direction, only_level=placebo)
    return replace(side, influence_var=side.influence_var - term)


def _pool(sides: dict[int, SideEffect], design: SwitchDesign, lag: int, normalized: bool,
          column: int, estimate: np.ndarray, influence_var: np.ndarray,
          switcher_count: np.ndarray, switcher_weight: np.ndarray, observations: np.ndarray,
          reasons: dict[int, str], kind: str) -> None:
    r"""Pool switchers in and out into one column (weights :math:`N_{\pm}/(N_+ + N_-)`)."""
    total = sum(s.weight for s in sides.values())
    if total == 0:
        reasons[column] = (f"{kind} {lag} is not estimable: no switcher has a comparison "
                           "unit at that lag")
        return
    influence = np.zeros(design.n_groups)
    variance = np.zeros(design.n_groups)
    delta = 0.0
    path = _switch_path_change(design, lag) if normalized else None
    for direction, side in sides.items():
        if side.weight == 0:
            continue
        sign = 1.0 if direction == 1 else -1.0
        share = side.weight / total
        influence += share * sign * side.influence
        variance += share * sign * side.influence_var
        if path is not None:
            delta += share * _weighted_mean(side, design, np.where(side.used_switchers, path,
                                                                    0.0))
        observations[column] += side.cells.sum()
        switcher_count[column] += side.switchers
        switcher_weight[column] += side.weight
    value = influence.sum() / design.n_groups
    if normalized:
        value, variance = value / delta, variance / delta
    estimate[column] = value
    influence_var[:, column] = variance


def _average_total_effect(parts: dict[int, list[tuple[SideEffect, float]]],
                          design: SwitchDesign, switchers: str, column: int,
                          estimate: np.ndarray, influence_var: np.ndarray,
                          switcher_count: np.ndarray, switcher_weight: np.ndarray,
                          observations: np.ndarray, reasons: dict[int, str],
                          total_cells: np.ndarray, n_effects: int) -> None:
    r"""Fill the column of the average total effect per unit of treatment :math:`\hat\delta`."""
    pooled: dict[int, tuple[np.ndarray, np.ndarray, float, float]] = {}
    for direction, effects in parts.items():
        total = sum(s.weight for s, _ in effects)
        if total == 0:
            continue
        numerator = sum(s.weight / total * s.influence for s, _ in effects)
        numerator_var = sum(s.weight / total * s.influence_var for s, _ in effects)
        denominator = sum(s.weight / total * change for s, change in effects)
        sign = 1.0 if direction == 1 else -1.0
        pooled[direction] = (sign * numerator / denominator,
                             sign * numerator_var / denominator, denominator, total)
    if not pooled:
        reasons[column] = "the average total effect needs at least one estimable effect"
        return
    if switchers == "in":
        share_in = 1.0
    elif switchers == "out":
        share_in = 0.0
    else:
        plus = pooled[1][2] * pooled[1][3] if 1 in pooled else 0.0
        minus = pooled[0][2] * pooled[0][3] if 0 in pooled else 0.0
        share_in = plus / (plus + minus)
    shares = {1: share_in, 0: 1.0 - share_in}
    influence = sum(shares[d] * pooled[d][0] for d in pooled)
    variance = sum(shares[d] * pooled[d][1] for d in pooled)
    estimate[column] = float(np.sum(influence)) / design.n_groups
    influence_var[:, column] = variance
    switcher_count[column] = switcher_count[:n_effects].sum()
    switcher_weight[column] = switcher_weight[:n_effects].sum()
    observations[column] = total_cells.sum()
