r"""Matching weights for the ATT from matched sets or subclasses (as R's MatchIt computes them)."""

from __future__ import annotations

import numpy as np


def weights_from_matches(n_units: int, treated_index: np.ndarray, matches: np.ndarray
                         ) -> np.ndarray:
    r"""ATT weights implied by a match matrix.

    Parameters
    ----------
    n_units
        Number of units.
    treated_index
        Data positions of the treated units (rows of ``matches``).
    matches
        ``(n_treated, k)`` data positions of matched controls, ``-1`` for none.

    Returns
    -------
    numpy.ndarray
        Weight of every unit (0 for unmatched ones).

    Notes
    -----
    A treated unit with at least one match has weight 1. Control :math:`j` gets
    :math:`\tilde w_j = \sum_{i: j\in M_i} 1/|M_i|` over the treated units :math:`i` whose
    matched set :math:`M_i` contains it; control weights are then rescaled to sum to the
    number of distinct matched controls, :math:`w_j = \tilde w_j\, n_c^{m} / \sum_k\tilde w_k`.
    """
    weights = np.zeros(n_units)
    matched = matches >= 0
    n_matches = matched.sum(axis=1)
    has = n_matches > 0
    weights[treated_index[has]] = 1.0
    share = np.where(matched, 1.0 / np.maximum(n_matches, 1)[:, None], 0.0)
    np.add.at(weights, matches[matched], share[matched])
    control = np.zeros(n_units, dtype=bool)
    control[matches[matched]] = True
    return rescale_controls(weights, control)


def weights_from_subclasses(subclass: np.ndarray, treated: np.ndarray) -> np.ndarray:
    r"""ATT weights of units in subclasses (strata); ``subclass < 0`` means not kept.

    Notes
    -----
    Treated units in a subclass with controls get weight 1; control :math:`j` in subclass
    :math:`s` gets :math:`n_{1s}/n_{0s}`, rescaled so that the control weights sum to the
    number of kept controls.
    """
    kept = subclass >= 0
    n_sub = int(subclass.max()) + 1 if kept.any() else 0
    n1 = np.bincount(subclass[kept & treated], minlength=n_sub).astype(float)
    n0 = np.bincount(subclass[kept & ~treated], minlength=n_sub).astype(float)
    weights = np.zeros(len(subclass))
    weights[kept & treated] = 1.0
    control = kept & ~treated
    weights[control] = n1[subclass[control]] / n0[subclass[control]]
    return rescale_controls(weights, control)


def rescale_controls(weights: np.ndarray, control: np.ndarray) -> np.ndarray:
    """Scale the weights of the kept controls to sum to their number (in place)."""
    total = weights[control].sum()
    if total > 0:
        weights[control] *= control.sum() / total
    return weights
