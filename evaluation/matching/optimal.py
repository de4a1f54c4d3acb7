r"""Optimal pair (and 1:k) matching: the assignment that minimises the total distance.

Within every exact-matching stratum the problem is a rectangular linear assignment, solved
by :func:`scipy.optimize.linear_sum_assignment`; for ``ratio = k`` every treated unit appears
``k`` times as a row. Pairs outside a caliper are forbidden through a prohibitive cost and
dropped afterwards.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from evaluation.errors import MatchingError
from evaluation.matching.nearest import NearestProblem

#: Largest treated x control cost matrix (cells) solved in one stratum.
MAX_CELLS = 40_000_000


def optimal_matching(problem: NearestProblem) -> tuple[np.ndarray, np.ndarray]:
    r"""Optimal matching of every eligible treated unit to ``ratio`` distinct controls.

    Returns
    -------
    treated_index, match_matrix
        As :func:`evaluation.matching.nearest.nearest_neighbour`.

    Notes
    -----
    Minimises :math:`\sum_{(i,j)\in M} d_{ij}` over sets :math:`M` in which every control is
    used at most once and every treated unit gets at most ``ratio`` controls, with as many
    pairs as possible (:math:`\min(k n_1, n_0)` per stratum).

    Raises
    ------
    MatchingError
        If a stratum's cost matrix would exceed :data:`MAX_CELLS` cells.
    """
    treated_index = np.flatnonzero(problem.treated)
    row_of = np.full(len(problem.treated), -1, dtype=np.int64)
    row_of[treated_index] = np.arange(len(treated_index))
    matches = np.full((len(treated_index), problem.ratio), -1, dtype=np.int64)
    strata = (np.zeros(len(problem.treated), dtype=np.int64) if problem.strata is None
              else problem.strata)
    metric = problem.coords if problem.coords is not None else problem.score[:, None]
    for s in np.unique(strata[problem.eligible]):
        in_s = problem.eligible & (strata == s)
        t = np.flatnonzero(in_s & problem.treated)
        c = np.flatnonzero(in_s & ~problem.treated)
        if len(t) == 0 or len(c) == 0:
            continue
        if len(t) * problem.ratio * len(c) > MAX_CELLS:
            raise MatchingError(
                f"optimal matching in a stratum of {len(t)} treated and {len(c)} control units "
                f"needs a {len(t) * problem.ratio:,} x {len(c):,} cost matrix (limit "
                f"{MAX_CELLS:,} cells); add exact strata (exact=[...]) or use method='nearest'.")
        diff = metric[t][:, None, :] - metric[c][None, :, :]
        cost = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))
        allowed = _allowed(problem, t, c)
        big = (cost[allowed].max() if allowed.any() else 1.0) * (len(t) + 1) * 10 + 1
        rows, cols = linear_sum_assignment(np.repeat(np.where(allowed, cost, big),
                                                     problem.ratio, axis=0))
        ok = allowed[rows // problem.ratio, cols]
        for row, col in zip(rows[ok], cols[ok], strict=True):
            i = row_of[t[row // problem.ratio]]
            matches[i, np.argmax(matches[i] < 0)] = c[col]
    return treated_index, matches


def _allowed(problem: NearestProblem, t: np.ndarray, c: np.ndarray) -> np.ndarray:
    allowed = np.ones((len(t), len(c)), dtype=bool)
    if problem.caliper is not None:
        allowed &= np.abs(problem.score[t][:, None] - problem.score[c][None, :]) <= problem.caliper
    if problem.covariate_values is not None:
        gap = np.abs(problem.covariate_values[t][:, None, :] - problem.covariate_values[c][None])
        allowed &= (gap <= problem.covariate_widths).all(axis=2)
    return allowed
