r"""Unit and period effects of the Sun-Abraham regression, solved once per unit type.

In the fixed-effects normal equations of the cell indicators (see
:func:`~evaluation.estimators._sun_abraham_design.fit_cells`) unit :math:`i` enters through
its weight :math:`w_i`, its observed periods :math:`o_i \in \{0,1\}^T` and its rows in each
cell :math:`b_i \in \mathbb{N}^k`; :math:`b_i` is fixed by the unit's cohort and
:math:`o_i`. Its block of the solution, :math:`\Gamma_{u,i} = (b_i - \Gamma_t'o_i)/n_i`
(:math:`n_i` its rows), does not depend on :math:`w_i > 0`, so units of one *type* (cohort,
observed periods, positive weight or not) share it: a balanced panel has as many types as
cohorts plus one, and every ``(units x cells)`` matrix of the fit becomes a
``(types x cells)`` one. Panels with more than 52 periods (whose observed periods do not fit
a float mantissa) use one type per unit, which is the same algebra without the saving.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy import sparse

_MASK_PERIODS = 52  # observed periods coded exactly as a sum of powers of two in a double


@dataclass(frozen=True)
class UnitTypes:
    r"""Kept units grouped by what their fixed-effect solution depends on.

    Attributes
    ----------
    unit
        Unit code (0..n_units-1, kept units only) of every kept row.
    time
        Period code of every kept row.
    of_unit
        Type of every kept unit.
    unit_weight
        Weight of every kept unit (ones without weights).
    observed
        ``(types, T)`` observed periods :math:`o_\tau` (0 or 1).
    sizes
        ``(types,)`` rows per unit :math:`n_\tau`.
    cells
        ``(types, k)`` rows per unit in each cell :math:`b_\tau`.
    weight
        ``(types,)`` total weight :math:`W_\tau = \sum_{i \in \tau} w_i`.
    """

    unit: np.ndarray
    time: np.ndarray
    of_unit: np.ndarray
    unit_weight: np.ndarray
    observed: np.ndarray
    sizes: np.ndarray
    cells: np.ndarray
    weight: np.ndarray

    @classmethod
    def build(cls, unit: np.ndarray, time: np.ndarray, cell: np.ndarray,
              unit_cohort: np.ndarray, unit_weight: np.ndarray, n_periods: int,
              n_cells: int) -> UnitTypes:
        """Group kept units by cohort code, observed periods and positive weight.

        ``unit`` are compact codes (every code has rows); ``unit_cohort`` is any integer code
        of the unit's cohort; the panel has at most one row per unit and period.
        """
        n_units = unit_weight.size
        if n_periods <= _MASK_PERIODS:
            mask = np.bincount(unit, weights=np.exp2(time), minlength=n_units)
            flag = 2 * (unit_cohort - unit_cohort.min()) + (unit_weight > 0)
            key = mask.astype(np.int64) * (int(flag.max()) + 1) + flag
            of_unit = np.unique(key, return_inverse=True)[1].ravel()
        else:
            of_unit = np.arange(n_units)
        n_types = int(of_unit.max()) + 1
        members = np.bincount(of_unit, minlength=n_types).astype(float)
        row_type = of_unit[unit]
        inside = cell >= 0
        per_type = np.bincount(row_type * n_periods + time, minlength=n_types * n_periods)
        in_cells = np.bincount(row_type[inside] * n_cells + cell[inside],
                               minlength=n_types * n_cells)
        return cls(unit=unit, time=time, of_unit=of_unit, unit_weight=unit_weight,
                   observed=per_type.reshape(n_types, n_periods) / members[:, None],
                   sizes=np.bincount(row_type, minlength=n_types) / members,
                   cells=in_cells.reshape(n_types, n_cells) / members[:, None],
                   weight=np.bincount(of_unit, weights=unit_weight, minlength=n_types))

    @property
    def n_types(self) -> int:
        """Number of types."""
        return self.sizes.size

    @cached_property
    def row_type(self) -> np.ndarray:
        """Type of every kept row."""
        return self.of_unit[self.unit]

    @cached_property
    def _pseudo_inverse(self) -> np.ndarray:
        r"""Pseudo-inverse of the Schur complement :math:`D_t - C'D_u^{-1}C`.

        :math:`C'D_u^{-1}C = \sum_\tau (W_\tau/n_\tau)\,o_\tau o_\tau'` and
        :math:`D_t = \sum_\tau W_\tau o_\tau`; eigenvalues below :math:`10^{-10}` of the
        largest count as zero, as in
        :class:`~evaluation.estimators._fixed_effects.TwoWayDesign`.
        """
        schur = (np.diag(self.observed.T @ self.weight)
                 - self.observed.T @ (self.observed * (self.weight / self.sizes)[:, None]))
        values, vectors = np.linalg.eigh((schur + schur.T) / 2)
        keep = values > 1e-10 * max(values.max(initial=0.0), 1.0)
        return (vectors[:, keep] / values[keep]) @ vectors[:, keep].T

    def solve_cells(self, b_time: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r"""Effects :math:`(\Gamma_u, \Gamma_t)` of the cell indicators, per type and period.

        ``b_time`` is :math:`T'WD`. Returns ``(types, k)`` :math:`\Gamma_\tau` (zero for
        types of weight zero, which have no unit equation) and ``(T, k)``
        :math:`\Gamma_t`.

        Notes
        -----
        :math:`\Gamma_t = S^+\big(T'WD - \sum_\tau (W_\tau/n_\tau)\,o_\tau b_\tau'\big)` and
        :math:`\Gamma_\tau = (b_\tau - \Gamma_t'o_\tau)/n_\tau`.
        """
        ratio = self.weight / self.sizes
        g_time = self._pseudo_inverse @ (b_time - self.observed.T @ (self.cells * ratio[:, None]))
        g_type = (self.cells - self.observed @ g_time) / self.sizes[:, None]
        g_type[self.weight <= 0] = 0.0
        return g_type, g_time

    def demean(self, values: np.ndarray, weights: np.ndarray) -> np.ndarray:
        r"""Residuals of ``values`` (one per kept row) on the weighted unit and period effects.

        Notes
        -----
        With :math:`r_u = U'Wy`, :math:`r_t = T'Wy`:
        :math:`\gamma_t = S^+(r_t - \sum_i o_i\,r_{u,i}/n_i)`,
        :math:`\gamma_{u,i} = r_{u,i}/(w_in_i) - \gamma_t'o_i/n_i` (zero when
        :math:`w_i = 0`) and :math:`\tilde y = y - \gamma_{u,i} - \gamma_{t,t}`.
        """
        n_units, n_periods = self.unit_weight.size, self.observed.shape[1]
        weighted = weights * values
        r_unit = np.bincount(self.unit, weights=weighted, minlength=n_units)
        r_time = np.bincount(self.time, weights=weighted, minlength=n_periods)
        n_unit = self.sizes[self.of_unit]
        per_row = r_unit / n_unit
        g_time = self._pseudo_inverse @ (
            r_time - np.bincount(self.time, weights=per_row[self.unit], minlength=n_periods))
        positive = self.unit_weight > 0
        g_unit = np.zeros(n_units)
        g_unit[positive] = ((r_unit[positive] / self.unit_weight[positive]
                             - (self.observed @ g_time)[self.of_unit[positive]])
                            / n_unit[positive])
        return values - g_unit[self.unit] - g_time[self.time]

    def by_cluster(self, unit_values: np.ndarray, unit_cluster: np.ndarray | None,
                   per_type: np.ndarray) -> np.ndarray:
        r"""Cluster sums :math:`\sum_{i \in c} v_i\,F_{\tau(i)}` as a ``(G, k)`` matrix.

        ``unit_values`` are :math:`v_i` of the kept units, ``per_type`` the ``(types, k)``
        rows :math:`F_\tau`; ``unit_cluster`` are compact cluster codes of the kept units
        (None: one cluster per unit).
        """
        if unit_cluster is None:
            return unit_values[:, None] * per_type[self.of_unit]
        return self._cluster_types(unit_values, unit_cluster) @ per_type

    def cluster_gram(self, unit_values: np.ndarray, unit_cluster: np.ndarray | None,
                     per_type: np.ndarray) -> np.ndarray:
        r""":math:`\sum_c S_cS_c'` of the cluster sums :math:`S_c` of :meth:`by_cluster`.

        Notes
        -----
        :math:`\sum_c S_cS_c' = F'(M'M)F` with :math:`M_{c\tau} = \sum_{i \in c, \tau(i)
        = \tau} v_i`: with one unit per cluster :math:`M'M` is the diagonal of
        :math:`\sum_{i \in \tau} v_i^2`; with fewer clusters than types the ``(G, k)``
        sums are formed instead.
        """
        if unit_cluster is None:
            squares = np.bincount(self.of_unit, weights=unit_values**2,
                                  minlength=self.n_types)
            return per_type.T @ (squares[:, None] * per_type)
        members = self._cluster_types(unit_values, unit_cluster)
        if members.shape[0] <= self.n_types:
            sums = members @ per_type
            return sums.T @ sums
        return per_type.T @ ((members.T @ members) @ per_type)

    def _cluster_types(self, unit_values: np.ndarray, unit_cluster: np.ndarray
                       ) -> sparse.csr_matrix:
        """Sparse ``(G, types)`` sums of ``unit_values`` by cluster and type."""
        return sparse.csr_matrix((unit_values, (unit_cluster, self.of_unit)),
                                 shape=(int(unit_cluster.max()) + 1, self.n_types))
