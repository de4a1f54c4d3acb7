r"""Aggregations of group-time effects as linear maps of their influence functions.

An aggregate :math:`\theta_j` is :math:`\sum_k W_{kj} ATT_k`; its influence function is
:math:`\sum_k W_{kj}\psi_k + \sum_g C_{gj}\xi_g` where :math:`\xi_g` is the influence
function of the estimated cohort share :math:`p_g`. Representing every aggregation by the
pair :math:`(W, C)` lets analytic variances and bootstrap draws of all aggregations come
from one matrix product, exactly as in R ``did``'s ``aggte``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Aggregation:
    """Linear representation of one aggregation.

    Attributes
    ----------
    labels
        One row per aggregated estimate: ``term`` plus grid positions in ``group``,
        ``time`` or ``event_time`` (whichever applies).
    cell_weights, share_weights
        ``(n_cells, m)`` and ``(n_groups, m)`` matrices :math:`W` and :math:`C`.
    overall_cells, overall_shares
        The same for the aggregation's overall summary.
    """

    labels: pd.DataFrame
    cell_weights: np.ndarray
    share_weights: np.ndarray
    overall_cells: np.ndarray
    overall_shares: np.ndarray


class _Combiner:
    """Share-weighted averages of cells, with or without the weights' estimation effect."""

    def __init__(self, group: np.ndarray, att: np.ndarray, groups: np.ndarray,
                 shares: np.ndarray) -> None:
        self.att = att
        self.group_index = np.searchsorted(groups, group)
        self.cell_share = shares[self.group_index]
        self.n_groups = groups.size

    def combine(self, cells: np.ndarray, estimated_weights: bool = True
                ) -> tuple[np.ndarray, np.ndarray]:
        w = np.zeros(self.att.size)
        c = np.zeros(self.n_groups)
        if cells.size == 0:
            return w * np.nan, c
        total = self.cell_share[cells].sum()
        w[cells] = self.cell_share[cells] / total
        if estimated_weights:
            weighted = float(self.cell_share[cells] @ self.att[cells])
            np.add.at(c, self.group_index[cells], self.att[cells] / total - weighted / total**2)
        return w, c


def build_aggregation(kind: str, group: np.ndarray, time: np.ndarray, att: np.ndarray,
                      groups: np.ndarray, shares: np.ndarray, valid: np.ndarray,
                      n_periods: int, *, min_e: float = -np.inf, max_e: float = np.inf,
                      balance_e: int | None = None) -> Aggregation:
    r"""Build the :class:`Aggregation` of ``kind`` for cells ``(group, time)``.

    Parameters
    ----------
    kind
        ``simple``, ``event``, ``group`` or ``calendar``.
    group, time
        Grid positions of each cell's cohort and period.
    att
        ATT of each cell (NaN cells must be excluded through ``valid``).
    groups, shares
        Distinct cohort positions and their estimated shares :math:`p_g`.
    valid
        Cells that may enter the aggregation.
    n_periods
        Number of periods on the grid (for ``balance_e``).
    min_e, max_e, balance_e
        Event-time window and balancing, in periods (as R ``did``).

    Notes
    -----
    * simple: :math:`\sum_{k: g_k \le t_k} p_{g_k} ATT_k / \sum p_{g_k}`;
    * group: :math:`\theta(g)` is the mean of cohort :math:`g`'s post-treatment cells and the
      overall is :math:`\sum_g p_g\theta(g)/\sum_g p_g`;
    * event: :math:`\theta(e) = \sum_{k: t_k-g_k=e} p_{g_k}ATT_k/\sum p_{g_k}`; overall is
      the mean over :math:`e \ge 0`;
    * calendar: :math:`\theta(t)` averages post-treatment cells of period :math:`t`; overall
      is the mean over periods.
    """
    att = np.nan_to_num(att)
    event = time - group
    post = (group <= time) & valid
    comb = _Combiner(group, att, groups, shares)
    columns: list[tuple[np.ndarray, np.ndarray]] = []
    rows: list[dict] = []
    if kind == "simple":
        w, c = comb.combine(np.flatnonzero(post & (event >= min_e) & (event <= max_e)))
        return Aggregation(pd.DataFrame({"term": pd.Series(dtype=str)}), np.zeros((att.size, 0)),
                           np.zeros((groups.size, 0)), w, c)
    if kind == "group":
        values, present = [], []
        for j, g in enumerate(groups):
            cells = np.flatnonzero(post & (group == g) & (time >= g + min_e)
                                   & (time <= g + max_e))
            if cells.size == 0:
                continue
            columns.append(comb.combine(cells, estimated_weights=False))
            rows.append({"group": g})
            values.append(att @ columns[-1][0])
            present.append(j)
        present = np.array(present, dtype=int)
        p = shares[present]
        w_all = np.column_stack([col[0] for col in columns])
        overall_w = w_all @ (p / p.sum())
        overall_c = np.zeros(groups.size)
        overall_c[present] = np.array(values) / p.sum() - float(p @ values) / p.sum() ** 2
        return _finish(rows, columns, att.size, groups.size, overall_w, overall_c)
    if kind == "event":
        include = valid.copy()
        candidates = event[include]
        if balance_e is not None:
            include &= (n_periods - 1 - group) >= balance_e
            candidates = event[include]
            candidates = candidates[(candidates <= balance_e)
                                    & (candidates >= balance_e - n_periods + 1)]
        for e in np.unique(candidates):
            if min_e <= e <= max_e:
                columns.append(comb.combine(np.flatnonzero(include & (event == e))))
                rows.append({"event_time": e})
        keep = np.array([r["event_time"] >= 0 for r in rows], dtype=bool)
    elif kind == "calendar":
        for t in np.unique(time[post]):
            columns.append(comb.combine(np.flatnonzero(post & (time == t))))
            rows.append({"time": t})
        keep = np.ones(len(rows), dtype=bool)
    else:
        raise ValueError(f"unknown aggregation {kind!r}")
    w_all = np.column_stack([c[0] for c in columns]) if columns else np.zeros((att.size, 0))
    c_all = np.column_stack([c[1] for c in columns]) if columns else np.zeros((groups.size, 0))
    if keep.any():
        overall_w, overall_c = w_all[:, keep].mean(axis=1), c_all[:, keep].mean(axis=1)
    else:
        overall_w, overall_c = np.full(att.size, np.nan), np.zeros(groups.size)
    return _finish(rows, columns, att.size, groups.size, overall_w, overall_c)


def _finish(rows: list[dict], columns: list, n_cells: int, n_groups: int,
            overall_w: np.ndarray, overall_c: np.ndarray) -> Aggregation:
    w_all = np.column_stack([c[0] for c in columns]) if columns else np.zeros((n_cells, 0))
    c_all = np.column_stack([c[1] for c in columns]) if columns else np.zeros((n_groups, 0))
    return Aggregation(pd.DataFrame(rows), w_all, c_all, overall_w, overall_c)
