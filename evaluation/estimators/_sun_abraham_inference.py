r"""Few-cluster inference of the Sun-Abraham estimator: CR2 and the wild cluster bootstrap.

The event-time effects and the overall effect of :class:`~evaluation.estimators.
sun_abraham.SunAbraham` are contrasts :math:`c'\delta` of the cohort x relative-period
coefficients :math:`\delta` of one fixed-effects regression (shares held fixed). Both
options work on that regression after the unit and period effects are partialled out
(:class:`~evaluation.estimators._sun_abraham_design.DemeanedCells`; CR2 uses its dense
matrix, :class:`~evaluation.estimators.did.PartialledRegression`):

* CR2 (:func:`~evaluation.inference.cr2.cr2_two_way`, equal to R ``clubSandwich``) gives
  :math:`V^{CR2}_\delta`, and the Bell-McCaffrey degrees of freedom of any contrast
  (:meth:`~evaluation.inference.cr2.CR2Fit.df`).
* The wild cluster bootstrap of a contrast (:func:`contrast_problems`) reparametrises the
  regression so that the contrast is a coefficient, and tests it with
  :func:`~evaluation.inference.wild.ols_problems`, as ``boottest(R = c)`` of R
  ``fwildclusterboot`` does; each cluster's rows are first replaced by the rows of a QR
  factor with the same cross products (:func:`cluster_squares`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from evaluation.options import DEFAULT_RANDOM_SEED

if TYPE_CHECKING:
    from collections.abc import Callable

    from evaluation.estimators._sun_abraham_design import DemeanedCells
    from evaluation.estimators.did import TwoWayFit
    from evaluation.estimators.sun_abraham import SunAbraham
    from evaluation.inference.cr2 import CR2Fit
    from evaluation.inference.wild import WildNull, WildProblem, WildTest


def cr2_cells(fit: TwoWayFit) -> CR2Fit:
    """CR2 covariance of the cell coefficients of ``fit`` (needs its partialled regression)."""
    from evaluation.inference.cr2 import cr2_two_way

    data = fit.partialled
    resid = data.y - data.x @ fit.params
    return cr2_two_way(data.x, resid, data.weights, data.unit, data.time, data.cluster)


def cluster_squares(rows_of: Callable[[np.ndarray], np.ndarray], y: np.ndarray,
                    weights: np.ndarray | None, cluster: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Replace each cluster's rows by at most :math:`k+1` rows with the same cross products.

    Parameters
    ----------
    rows_of
        Returns the regressors :math:`\tilde X` of the given row indices (a dense matrix's
        ``x.__getitem__`` or :meth:`DemeanedCells.rows
        <evaluation.estimators._sun_abraham_design.DemeanedCells.rows>`).
    y, weights, cluster
        Outcome, regression weights (None: unweighted) and cluster codes of the rows.

    Returns
    -------
    tuple
        ``(x, y, cluster)`` whose per-cluster :math:`X_g'X_g` and :math:`X_g'y_g` equal those
        of the weighted regression :math:`(\sqrt{w}\,\tilde X, \sqrt{w}\,\tilde y)`,
        which is all the wild bootstrap of least squares uses
        (:func:`~evaluation.inference.wild.ols_problems`), so it runs unweighted on
        ``(G (k + 1) x k)`` rows instead of the observations, and one cluster's rows are in
        memory at a time.

    Notes
    -----
    With the QR decomposition :math:`[X_g\ y_g] = Q_gR_g`,
    :math:`[X_g\ y_g]'[X_g\ y_g] = R_g'R_g`: the rows of :math:`R_g` are the new
    observations (clusters with at most :math:`k+1` rows are kept as they are).
    """
    n_clusters = int(cluster.max()) + 1
    order = np.argsort(cluster, kind="stable")
    bounds = np.searchsorted(cluster[order], np.arange(n_clusters + 1))
    root = None if weights is None else np.sqrt(weights)
    blocks = []
    for g in range(n_clusters):
        rows = order[bounds[g]:bounds[g + 1]]
        block = np.column_stack([rows_of(rows), y[rows]])
        if root is not None:
            block *= root[rows, None]
        blocks.append(np.linalg.qr(block, mode="r") if block.shape[0] > block.shape[1]
                      else block)
    stacked = np.vstack(blocks)
    sizes = [block.shape[0] for block in blocks]
    return stacked[:, :-1], stacked[:, -1], np.repeat(np.arange(n_clusters), sizes)


def contrast_problems(x: np.ndarray, y: np.ndarray, cluster: np.ndarray,
                      contrasts: np.ndarray, *, weights: np.ndarray | None = None,
                      null: WildNull = "restricted") -> list[WildProblem]:
    r"""Wild bootstrap problems of contrasts :math:`c_m'\delta` with disjoint supports.

    Parameters
    ----------
    x, y, cluster, weights
        The regression (fixed effects partialled out), as
        :func:`~evaluation.inference.wild.ols_problems` takes it.
    contrasts
        ``(m, k)`` rows :math:`c_m`; no two rows may be non-zero in the same column.
    null
        ``"restricted"`` (WCR) or ``"unrestricted"`` (WCU).

    Returns
    -------
    list of WildProblem
        One per row, testing :math:`c_m'\delta = b`.

    Notes
    -----
    With pivot :math:`j_m = \arg\max_j |c_{mj}|` of each row, let :math:`T` be the identity
    with row :math:`j_m` replaced by :math:`c_m`. Because the supports are disjoint,
    :math:`T` is block-triangular up to a permutation with determinant
    :math:`\prod_m c_{mj_m} \ne 0`. The regression
    :math:`\tilde y = \tilde X T^{-1}\theta + \varepsilon` has the same fitted values,
    residuals and restricted fits as the original one, and :math:`\theta_{j_m} =
    c_m'\delta`, so the bootstrap test of coefficient :math:`j_m`
    (:func:`~evaluation.inference.wild.ols_problems`) is the test of the contrast: the
    restricted estimate under :math:`c_m'\delta = b`, the clustered variance
    :math:`c_m'\hat V c_m` and the bootstrap draws do not depend on the parametrisation.
    """
    from evaluation.inference.wild import ols_problems

    contrasts = np.atleast_2d(np.asarray(contrasts, dtype=float))
    support = contrasts != 0
    if (support.sum(axis=0) > 1).any() or not support.any(axis=1).all():
        raise ValueError("contrasts must be non-zero and have disjoint supports.")
    pivots = np.abs(contrasts).argmax(axis=1)
    transform = np.eye(contrasts.shape[1])
    transform[pivots] = contrasts
    problems = ols_problems(x @ np.linalg.inv(transform), y, cluster, weights=weights,
                            null=null)
    return [problems[j] for j in pivots]


def wild_contrasts(cells: DemeanedCells, event_contrasts: np.ndarray,
                   overall_contrast: np.ndarray | None, options: SunAbraham
                   ) -> tuple[list[WildTest], WildTest | None, dict[str, object]]:
    """Wild cluster bootstrap of the event-time contrasts and the overall contrast.

    One set of multipliers serves every test. Returns the event-time tests, the overall
    test (None when ``overall_contrast`` is None: no post-treatment period) and the
    ``info`` entries (``se`` label, and ``seed`` unless fully enumerated).
    """
    from evaluation.inference.wild import describe, run_wild

    x, y, cluster = cluster_squares(cells.rows, cells.y, cells.weights, cells.cluster)
    problems = contrast_problems(x, y, cluster, event_contrasts, null=options.wild_null)
    if overall_contrast is not None:
        problems += contrast_problems(x, y, cluster, overall_contrast,
                                      null=options.wild_null)
    tests, n_draws, enumerated = run_wild(
        problems, int(cluster.max()) + 1, weights=options.wild_weights,
        draws=options.draws, seed=options.seed, alpha=options.alpha)
    info: dict[str, object] = {
        "se": describe(options.wild_null, options.wild_weights, n_draws, enumerated)}
    if not enumerated:
        info["seed"] = DEFAULT_RANDOM_SEED if options.seed is None else options.seed
    if overall_contrast is None:
        return tests, None, info
    return tests[:-1], tests[-1], info
