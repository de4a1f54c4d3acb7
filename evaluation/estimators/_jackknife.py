r"""Leave-one-cluster-out jackknife of the 2x2 comparisons of Callaway and Sant'Anna.

The cluster jackknife (CV3 in MacKinnon, Nielsen and Webb 2023) re-estimates every
ATT(g,t) without each cluster in turn, nuisance models included. All cells of a cohort
that share the comparison sample and covariates share the propensity score and the
outcome-regression Gram matrix, and given those every 2x2 estimator is linear in the
outcome change, :math:`\hat\tau = \sum_i s_i \Delta Y_i` (the weights of
:class:`~evaluation.estimators._drdid.TwoByTwo`, signed by group). So the nuisance models
are refitted once per left-out cluster and comparison sample, and each cell's leave-one-out
estimates are one matrix-vector product.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from evaluation.estimators import _drdid
from evaluation.estimators._inference import summarise_warnings

#: Largest number of (left-out cluster x unit) weights held at once (8 bytes each).
MAX_JACKKNIFE_CELLS = 200_000_000
_RECENT_SIZE = 4  # jackknives kept for reuse by fits on the same comparison sample
_RECENT: dict[str, ClusterJackknife] = {}


@dataclass(frozen=True)
class ClusterJackknife:
    r"""Leave-one-cluster-out weights of one comparison sample.

    Attributes
    ----------
    codes
        ``(n,)`` cluster of each unit of the sample, coded 0..G-1 within the sample.
    signed_weights
        ``(G, n)``: row :math:`c` gives :math:`\hat\tau_{(c)} = s_{(c)}'\Delta Y`, the
        estimate without cluster :math:`c` (zero weight on its units).
    defined
        ``(G,)``: False where the estimate without the cluster does not exist (it holds every
        treated or every comparison unit, or the refit fails the checks of a cell).
    notes
        Warnings of the refits, summarised: ``(category, message)``.
    """

    codes: np.ndarray
    signed_weights: np.ndarray
    defined: np.ndarray
    notes: tuple[tuple[type[Warning], str], ...] = ()

    @classmethod
    def fit(cls, comparison: _drdid.Comparison, cluster: np.ndarray,
            estimator: Callable[[np.ndarray, _drdid.Comparison], _drdid.TwoByTwo],
            needs_score: bool, label: str) -> ClusterJackknife:
        """Refit the comparison's nuisance models without each cluster in turn.

        Parameters
        ----------
        comparison
            The comparison sample (treatment, covariates, weights).
        cluster
            ``(n,)`` cluster codes of its units.
        estimator
            The 2x2 estimator (:data:`~evaluation.estimators.callaway_santanna._TWO_BY_TWO`).
        needs_score
            Whether the estimator uses the propensity score (its refits are then checked for
            overlap as the cells are).
        label
            Names the comparison in warnings (e.g. ``"cohort 2021-01"``).

        Notes
        -----
        The refits depend only on the treatment, covariates, weights and clusters, not on
        the outcome, so the last few are kept (keyed by content): the report's outcomes
        share one comparison sample and refit it once. The warnings of the refits are
        issued again when a kept jackknife is reused.
        """
        key = _content_key(comparison, cluster, estimator.__name__)
        if key in _RECENT:
            for category, note in _RECENT[key].notes:
                warnings.warn(note, category, stacklevel=3)
            return _RECENT[key]
        jackknife = cls._refit(comparison, cluster, estimator, needs_score, label)
        _RECENT[key] = jackknife
        while len(_RECENT) > _RECENT_SIZE:
            _RECENT.pop(next(iter(_RECENT)))
        return jackknife

    @classmethod
    def _refit(cls, comparison: _drdid.Comparison, cluster: np.ndarray,
               estimator: Callable[[np.ndarray, _drdid.Comparison], _drdid.TwoByTwo],
               needs_score: bool, label: str) -> ClusterJackknife:
        codes = np.unique(cluster, return_inverse=True)[1]
        n_clusters = int(codes.max()) + 1
        n = codes.size
        if n_clusters * n > MAX_JACKKNIFE_CELLS:
            raise MemoryError(
                f"the cluster jackknife of {label} would hold {n_clusters} x {n} weights "
                f"(more than {MAX_JACKKNIFE_CELLS:,}); use se='cr2', its leverage "
                "approximation, or fewer clusters.")
        weights = np.zeros((n_clusters, n))
        defined = np.zeros(n_clusters, dtype=bool)
        zeros = np.zeros(n)
        start = comparison.ps.coefficients if needs_score else None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for c in range(n_clusters):
                keep = codes != c
                d, x, w = comparison.d[keep], comparison.x[keep], comparison.w[keep]
                if d.sum() == 0 or d.sum() == d.size:
                    continue
                part = _drdid.Comparison(d, x, w / w.mean(), start)
                if part.singular or (needs_score and (part.ps.hessian is None
                                                      or part.ps.ps.max() >= 0.999)):
                    continue
                fit = estimator(zeros[keep], part)
                if not np.isfinite(fit.att):
                    continue
                weights[c, keep] = np.where(d == 1, fit.weights, -fit.weights)
                defined[c] = True
        notes = summarise_warnings(caught, f"cluster jackknife of {label}", n_clusters,
                                   "leave-one-cluster-out refits")
        for category, note in notes:
            warnings.warn(note, category, stacklevel=4)
        return cls(codes, weights, defined, tuple(notes))

    def pseudo_influence(self, influence: np.ndarray, att: float, dy: np.ndarray,
                         n_total: int) -> tuple[np.ndarray, int]:
        r"""Shift a cell's influence function so its cluster sums are the jackknife's.

        Parameters
        ----------
        influence
            The cell's influence function on the sample's units (scaled to the full
            sample, so that :math:`\hat V = n^{-2}\sum_c S_c^2`).
        att, dy
            The cell's estimate and outcome changes.
        n_total
            :math:`n`, the number of units of the whole panel.

        Returns
        -------
        tuple
            The shifted influence function and the number of clusters whose leave-out
            estimate does not exist (their sums are left as they were).

        Notes
        -----
        Each unit of cluster :math:`c` gets :math:`(T_c - S_c)/m_c` added, with :math:`S_c`
        the cluster's sum, :math:`m_c` its units and :math:`T_c = n(\hat\tau -
        \hat\tau_{(c)})`, so that :math:`n^{-2}\sum_c T_c^2 = \sum_c(\hat\tau_{(c)} -
        \hat\tau)^2`, the jackknife variance (without the :math:`(G-1)/G` factor and
        centring, as CV3), and aggregations, which are linear in the influence functions,
        get the jackknife of the aggregate (with the cohort shares' own influence as
        before).
        """
        sums = np.bincount(self.codes, weights=influence, minlength=self.defined.size)
        target = np.where(self.defined, n_total * (att - self.signed_weights @ dy), sums)
        sizes = np.bincount(self.codes, minlength=self.defined.size)
        return influence + ((target - sums) / sizes)[self.codes], int((~self.defined).sum())


def _content_key(comparison: _drdid.Comparison, cluster: np.ndarray, method: str) -> str:
    """Digest of everything a jackknife's refits depend on."""
    digest = hashlib.blake2b(method.encode(), digest_size=20)
    for array in (comparison.d, comparison.x, comparison.w, cluster):
        array = np.ascontiguousarray(array)
        digest.update(str((array.dtype, array.shape)).encode())
        digest.update(array.data)
    return digest.hexdigest()
