r"""The switching design of the de Chaisemartin-D'Haultfoeuille estimator (private).

Turns a unit x period grid of outcomes and a 0/1 status into the quantities every
:math:`DID_\ell` needs, following ``did_multiplegt_dyn`` step by step:

* :math:`D_{g,1}` (``baseline``): the status at the unit's first observed period;
* :math:`F_g` (``first_switch``): the first period whose status differs from the baseline
  (never-switchers get :math:`T+1`);
* :math:`T_g` (``last_control``): the last period at which some unit with the same
  baseline has not switched yet, the last period at which a switcher's effects can be
  estimated;
* :math:`S_g` (``direction``): 1 for switchers in (baseline 0), 0 for switchers out
  (baseline 1), -1 for units that never switch or switch after :math:`T_g`;
* :math:`N_{g,t}` (``cell_weight``): the unit's weight where outcome and status are
  observed, 0 elsewhere.

Baseline levels in which every unit switches at the same date (or none switches) are
dropped (no comparison exists), and periods at which no unit of a baseline level is still
unswitched are dropped for that level. Rows are sorted by (baseline, cluster) so that
level blocks are contiguous slices and clusters are contiguous inside each block.
All times are 0-based positions on the panel's grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evaluation.errors import IdentificationError

NEVER = -1


@dataclass(frozen=True)
class SwitchDesign:
    """Arrays of the switching design (rows are the kept units, sorted by baseline).

    Attributes
    ----------
    outcome, treatment
        ``(G, T)`` float arrays, NaN where unusable.
    cell_weight
        ``(G, T)`` weights :math:`N_{g,t}` (0 where the outcome or status is missing).
    baseline
        ``(G,)`` baseline status :math:`D_{g,1}` (0 or 1).
    first_switch
        ``(G,)`` 0-based first switch period; ``T`` for never-switchers.
    last_control
        ``(G,)`` 0-based :math:`T_g - 1` (last period with a not-yet-switched comparison).
    direction
        ``(G,)`` 1 switchers in, 0 switchers out, -1 not a usable switcher.
    cluster
        ``(G,)`` cluster codes ``0..C-1`` or None (each unit its own cluster).
    rows
        ``(G,)`` positions of the kept units among the panel's units.
    levels
        ``(level, start, stop)`` slices of the baseline blocks.
    n_groups
        :math:`G`, the number of kept units (the scale of the influence functions).
    """

    outcome: np.ndarray
    treatment: np.ndarray
    cell_weight: np.ndarray
    baseline: np.ndarray
    first_switch: np.ndarray
    last_control: np.ndarray
    direction: np.ndarray
    cluster: np.ndarray | None
    rows: np.ndarray
    levels: tuple[tuple[int, int, int], ...]
    n_groups: int

    @property
    def n_periods(self) -> int:
        """Number of periods of the (possibly truncated) grid."""
        return self.outcome.shape[1]

    def max_effects(self, increase: int) -> int:
        r"""Largest :math:`\ell` with a switcher of this direction (:math:`L_u` or :math:`L_a`)."""
        chosen = self.direction == increase
        if not chosen.any():
            return 0
        return int((self.last_control[chosen] - self.first_switch[chosen] + 1).max())

    def max_placebos(self, increase: int) -> int:
        r"""Largest placebo lag :math:`\max_g \min(F_g - 2, L_g)` (switchers, :math:`F_g \ge 3`)."""
        chosen = (self.direction == increase) & (self.first_switch >= 2)
        if not chosen.any():
            return 0
        lengths = self.last_control[chosen] - self.first_switch[chosen] + 1
        return max(int(np.minimum(self.first_switch[chosen] - 1, lengths).max()), 0)


def build_switch_design(outcome: np.ndarray, treatment: np.ndarray, unit_weight: np.ndarray,
                 cluster: np.ndarray | None) -> SwitchDesign:
    """Build the switching design from wide arrays (NaN where a cell is not observed).

    Parameters
    ----------
    outcome, treatment
        ``(G0, T0)`` outcome and 0/1 status; NaN status marks an unobserved cell.
    unit_weight
        ``(G0,)`` non-negative unit weights.
    cluster
        ``(G0,)`` integer cluster codes or None.

    Raises
    ------
    IdentificationError
        If no baseline level has units switching at different dates (or never), so that no
        effect can be estimated.
    """
    outcome = np.where(np.isnan(treatment), np.nan, outcome)
    n_units, n_periods = outcome.shape
    grid = np.arange(n_periods)
    observed = ~np.isnan(treatment)
    first_obs = observed.argmax(axis=1)
    last_obs = n_periods - 1 - observed[:, ::-1].argmax(axis=1)
    baseline = treatment[np.arange(n_units), first_obs]
    changed = observed & (treatment != baseline[:, None])
    ever = changed.any(axis=1)
    first_switch = np.where(ever, changed.argmax(axis=1), NEVER)

    # 1. levels where every unit has the same first-switch date identify nothing
    keep = np.zeros(n_units, dtype=bool)
    for level in (0.0, 1.0):
        members = baseline == level
        if members.sum() > 1 and np.unique(first_switch[members]).size > 1:
            keep |= members
    if not keep.any():
        raise IdentificationError(
            "no effect can be estimated: within each baseline status (treated or untreated "
            "in the first period) all units switch at the same date or none switches, so no "
            "switcher has a not-yet-switched comparison unit (Design Restriction 1 of de "
            "Chaisemartin and D'Haultfoeuille 2024). Check the status column.")
    order = np.flatnonzero(keep)
    outcome, treatment, observed = outcome[order], treatment[order], observed[order]
    baseline, first_switch = baseline[order].astype(np.int64), first_switch[order]
    first_obs, last_obs = first_obs[order], last_obs[order]
    weights = unit_weight[order].astype(float)
    clusters = None if cluster is None else cluster[order]
    n_groups = order.size

    # 2. drop the periods at which no unit of the level is still unswitched
    unswitched = observed & ((first_switch[:, None] == NEVER)
                             | (grid[None, :] < first_switch[:, None]))
    has_control = np.zeros((2, n_periods), dtype=bool)
    for level in (0, 1):
        has_control[level] = unswitched[baseline == level].any(axis=0)
    usable = observed & has_control[baseline]
    remaining = np.flatnonzero(usable.any(axis=0))
    n_kept = int(remaining.max()) + 1
    outcome = np.where(usable, outcome, np.nan)[:, :n_kept]
    treatment = np.where(usable, treatment, np.nan)[:, :n_kept]
    observed = usable[:, :n_kept]
    first_switch = np.where(first_switch == NEVER, n_kept, first_switch)
    grid = grid[:n_kept]

    # 3. missing status around the switch (unbalanced panels), as did_multiplegt_dyn
    switcher = first_switch < n_kept
    before = observed & (grid[None, :] < first_switch[:, None])
    last_before = np.where(before.any(axis=1),
                           n_kept - 1 - before[:, ::-1].argmax(axis=1), -1)
    truncated = np.full(n_groups, np.iinfo(np.int64).max)
    ambiguous = switcher & (last_before < first_switch - 1)
    if ambiguous.any():  # the switch date is unknown: keep the unit as a control until then
        outcome[ambiguous] = np.where(grid[None, :] > last_before[ambiguous, None], np.nan,
                                      outcome[ambiguous])
        truncated[ambiguous] = last_before[ambiguous] + 1
        first_switch[ambiguous] = n_kept
    switcher = first_switch < n_kept
    never = ~switcher
    outcome[never] = np.where(grid[None, :] > last_obs[never, None], np.nan, outcome[never])
    truncated[never] = last_obs[never] + 1
    first_trunc = np.minimum(first_switch, truncated)
    last_control = np.zeros(n_groups, dtype=np.int64)
    for level in (0, 1):
        members = baseline == level
        if members.any():
            last_control[members] = first_trunc[members].max() - 1

    # 4. direction of the switch; the cell weights
    direction = np.full(n_groups, -1, dtype=np.int64)
    usable_switch = switcher & (first_switch <= last_control)
    direction[usable_switch] = 1 - baseline[usable_switch]
    cell_weight = np.where(~np.isnan(outcome) & ~np.isnan(treatment), weights[:, None], 0.0)

    # 5. sort by baseline (then cluster) so that levels and clusters are contiguous
    sort = (np.lexsort((clusters, baseline)) if clusters is not None
            else np.argsort(baseline, kind="stable"))
    baseline = baseline[sort]
    levels = tuple((int(level), int(np.searchsorted(baseline, level)),
                    int(np.searchsorted(baseline, level, side="right")))
                   for level in (0, 1) if (baseline == level).any())
    if clusters is not None:
        clusters = np.unique(clusters[sort], return_inverse=True)[1]
    return SwitchDesign(
        outcome=outcome[sort], treatment=treatment[sort], cell_weight=cell_weight[sort],
        baseline=baseline, first_switch=first_switch[sort], last_control=last_control[sort],
        direction=direction[sort], cluster=clusters, rows=order[sort], levels=levels,
        n_groups=n_groups)
