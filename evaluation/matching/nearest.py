r"""Greedy nearest-neighbour matching (the algorithm of R's MatchIt ``method = "nearest"``).

Treated units are visited in the chosen order; each takes the closest control still
available (without replacement) within its exact-matching stratum and within every caliper.
With ``ratio = k`` matching runs in :math:`k` rounds: every treated unit gets its first control
before any gets a second. Ties in distance go to the control that comes first in the data.

Two searches give identical matches:

- a scalar distance (propensity score or user score) with no covariate caliper uses sorted
  scores and two union-find "next available" structures, :math:`O(n \log n)` overall;
- anything else (Mahalanobis-type metrics, Mahalanobis within a propensity caliper,
  covariate calipers) compares each treated unit with the available candidates of its
  stratum, restricted first to the score window of the caliper when there is one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from evaluation.errors import InvalidOptionError

MatchOrder = Literal["largest", "smallest", "random", "data"]


@dataclass
class NearestProblem:
    """Inputs of greedy nearest-neighbour matching (all arrays have one entry per unit).

    Attributes
    ----------
    treated, eligible
        Boolean arrays; ineligible (discarded) units are never matched.
    strata
        Integer exact-matching stratum per unit, or ``None``.
    score
        Scalar distance (propensity or user score), or ``None``.
    coords
        Coordinates of the matching metric (Mahalanobis and similar); when given, units are
        matched on these and ``score`` only serves the caliper and the order.
    caliper
        Maximum absolute score difference (raw units), or ``None``.
    covariate_values, covariate_widths
        Values ``(n, q)`` and maximum absolute differences ``(q,)`` of covariate calipers.
    ratio, replace, order, rng
        Controls per treated unit, reuse of controls, visiting order, random generator.
    """

    treated: np.ndarray
    eligible: np.ndarray
    strata: np.ndarray | None
    score: np.ndarray | None
    coords: np.ndarray | None
    caliper: float | None
    covariate_values: np.ndarray | None
    covariate_widths: np.ndarray | None
    ratio: int
    replace: bool
    order: MatchOrder
    rng: np.random.Generator

    def __post_init__(self) -> None:
        if self.score is None and (self.coords is None or self.caliper is not None):
            raise InvalidOptionError("matching needs a score (for a caliper on the distance) "
                                     "or covariate coordinates to measure distance on.")


def nearest_neighbour(problem: NearestProblem) -> tuple[np.ndarray, np.ndarray]:
    """Match every eligible treated unit to up to ``ratio`` controls.

    Returns
    -------
    treated_index, match_matrix
        Data positions of all treated units (ascending) and an ``(n_treated, ratio)`` integer
        matrix of the data positions of their controls, in the order they were chosen
        (``-1`` where no control was found).
    """
    treated_index = np.flatnonzero(problem.treated)
    matches = np.full((len(treated_index), problem.ratio), -1, dtype=np.int64)
    row_of = np.full(len(problem.treated), -1, dtype=np.int64)
    row_of[treated_index] = np.arange(len(treated_index))
    strata = (np.zeros(len(problem.treated), dtype=np.int64) if problem.strata is None
              else problem.strata)
    units = np.flatnonzero(problem.eligible)
    by_stratum = np.argsort(strata[units], kind="stable")
    bounds = np.flatnonzero(np.diff(strata[units][by_stratum])) + 1
    for members in np.split(units[by_stratum], bounds):
        t = members[problem.treated[members]]
        c = members[~problem.treated[members]]
        if len(t) == 0 or len(c) == 0:
            continue
        t = t[_visiting_order(problem, t)]
        fast = problem.coords is None and problem.covariate_values is None
        if fast and problem.replace:
            found = _score_with_replacement(problem, problem.score, t, c)
        elif fast:
            found = _score_greedy(problem, problem.score, t, c)
        else:
            found = _candidates_greedy(problem, t, c)
        matches[row_of[t]] = found
    return treated_index, matches


def _visiting_order(problem: NearestProblem, t: np.ndarray) -> np.ndarray:
    if problem.order == "data" or (problem.score is None and problem.order != "random"):
        return np.arange(len(t))
    if problem.order == "random":
        return problem.rng.permutation(len(t))
    key = problem.score[t] if problem.order == "smallest" else -problem.score[t]
    return np.argsort(key, kind="stable")


class _Available:
    """Union-find over sorted positions: the nearest still-available position in one direction.

    ``find(j)`` returns the first available position at or after ``j`` in the direction of
    travel (``size`` when none). Removing a position links it to its successor.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.parent = list(range(size + 1))

    def find(self, j: int) -> int:
        parent = self.parent
        root = j
        while parent[root] != root:
            root = parent[root]
        while parent[j] != root:
            parent[j], j = root, parent[j]
        return root

    def remove(self, j: int) -> None:
        self.parent[j] = j + 1


def _score_greedy(problem: NearestProblem, score: np.ndarray, t: np.ndarray, c: np.ndarray
                  ) -> np.ndarray:
    """Greedy matching on a scalar score without replacement (sorted search, union-find).

    Controls are sorted twice: by (score, data position) for the search to the right and by
    (score, -data position) read backwards for the search to the left, so that in both
    directions equal scores are met in data order.
    """
    cs = score[c]
    right = np.lexsort((c, cs))
    left = np.lexsort((-c, cs))[::-1]
    right_scores, left_scores = cs[right], cs[left]
    pos_right = np.empty(len(c), dtype=np.int64)
    pos_right[right] = np.arange(len(c))
    pos_left = np.empty(len(c), dtype=np.int64)
    pos_left[left] = np.arange(len(c))
    ts = score[t]
    start_right = np.searchsorted(right_scores, ts, side="left")
    # left order is descending; the first position whose score is below the treated score
    start_left = len(c) - np.searchsorted(left_scores[::-1], ts, side="left")
    go_right, go_left = _Available(len(c)), _Available(len(c))
    caliper = np.inf if problem.caliper is None else problem.caliper
    found = np.full((len(t), problem.ratio), -1, dtype=np.int64)
    c_list, rs, ls = c.tolist(), right_scores.tolist(), left_scores.tolist()
    right_l, left_l, ts_l = right.tolist(), left.tolist(), ts.tolist()
    sr, sl = start_right.tolist(), start_left.tolist()
    pr, pl = pos_right.tolist(), pos_left.tolist()
    n = len(c)
    for r in range(problem.ratio):
        for i in range(len(t)):
            if r and found[i, 0] < 0:
                continue
            jr = go_right.find(sr[i])
            jl = go_left.find(sl[i])
            best, best_d = -1, np.inf
            if jr < n:
                best, best_d = right_l[jr], rs[jr] - ts_l[i]
            if jl < n:
                d = ts_l[i] - ls[jl]
                k = left_l[jl]
                if d < best_d or (d == best_d and c_list[k] < c_list[best]):
                    best, best_d = k, d
            if best < 0 or best_d > caliper:
                continue
            found[i, r] = c_list[best]
            go_right.remove(pr[best])
            go_left.remove(pl[best])
    return found


def _score_with_replacement(problem: NearestProblem, score: np.ndarray, t: np.ndarray,
                            c: np.ndarray) -> np.ndarray:
    """Find the ``ratio`` nearest controls of every treated unit on a scalar score (vectorised)."""
    k = problem.ratio
    cs = score[c]
    right = np.lexsort((c, cs))
    left = np.lexsort((-c, cs))[::-1]
    ts = score[t]
    start_right = np.searchsorted(cs[right], ts, side="left")
    start_left = len(c) - np.searchsorted(cs[left][::-1], ts, side="left")
    steps = np.arange(k)
    cand_right = start_right[:, None] + steps
    cand_left = start_left[:, None] + steps
    valid = np.concatenate([cand_right < len(c), cand_left < len(c)], axis=1)
    pos = np.concatenate([right[np.minimum(cand_right, len(c) - 1)],
                          left[np.minimum(cand_left, len(c) - 1)]], axis=1)
    dist = np.where(valid, np.abs(cs[pos] - ts[:, None]), np.inf)
    data_pos = np.where(valid, c[pos], np.iinfo(np.int64).max)
    order = np.lexsort((data_pos, dist), axis=-1)[:, :k]
    chosen_dist = np.take_along_axis(dist, order, axis=1)
    chosen = np.take_along_axis(data_pos, order, axis=1)
    caliper = np.inf if problem.caliper is None else problem.caliper
    return np.where(np.isfinite(chosen_dist) & (chosen_dist <= caliper), chosen, -1)


def _candidates_greedy(problem: NearestProblem, t: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Greedy matching comparing each treated unit with its eligible candidates."""
    score, coords = problem.score, problem.coords
    metric = coords if coords is not None else score[:, None]  # type: ignore[index]
    caliper = problem.caliper
    if caliper is not None:  # then there is a score (checked in NearestProblem)
        by_score = np.argsort(score[c], kind="stable")
        sorted_scores = score[c][by_score]
        # widened against rounding of score +/- caliper; the exact test |gap| <= caliper follows
        slack = 1e-9 * (np.abs(score[t]) + caliper)
        low = np.searchsorted(sorted_scores, score[t] - caliper - slack, side="left")
        high = np.searchsorted(sorted_scores, score[t] + caliper + slack, side="right")
    used = np.zeros(len(c), dtype=bool)
    everyone = np.arange(len(c))
    found = np.full((len(t), problem.ratio), -1, dtype=np.int64)
    for r in range(problem.ratio):
        for i, unit in enumerate(t):
            if r and found[i, 0] < 0:
                continue
            cand = everyone if caliper is None else np.sort(by_score[low[i]:high[i]])
            if problem.replace:
                cand = cand[~np.isin(c[cand], found[i, :r])]
            else:
                cand = cand[~used[cand]]
            if caliper is not None and len(cand):
                cand = cand[np.abs(score[c[cand]] - score[unit]) <= caliper]
            if problem.covariate_values is not None and len(cand):
                gap = np.abs(problem.covariate_values[c[cand]] - problem.covariate_values[unit])
                cand = cand[(gap <= problem.covariate_widths).all(axis=1)]
            if len(cand) == 0:
                continue
            diff = metric[c[cand]] - metric[unit]
            dist = np.einsum("ij,ij->i", diff, diff)
            pick = cand[np.flatnonzero(dist == dist.min())[0]]
            found[i, r] = c[pick]
            used[pick] = True
    return found
