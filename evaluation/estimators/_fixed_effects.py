r"""Sparse two-way fixed-effects algebra on a subset of observations.

The imputation and two-stage estimators fit unit and period effects on the untreated
observations only and need products with :math:`(X_{10}'X_{10})^{-1}`, where
:math:`X_{10}` holds the unit and period dummies of those observations. Nothing here
builds an ``N x N`` or ``NT x N`` matrix: dummy products are ``bincount`` sums and the
linear systems are solved iteratively (alternating projections, conjugate gradients), so
100,000 units x 20 periods take seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse.linalg import LinearOperator, cg

from evaluation.errors import EvaluationError


class ConvergenceError(EvaluationError):
    """An iterative fixed-effects solver did not converge."""


@dataclass(frozen=True)
class TwoWayDesign:
    """Unit and period codes of observations, with a mask of those used for fitting.

    Attributes
    ----------
    unit, time
        Integer codes (0..n_units-1, 0..n_periods-1) of every observation.
    fit_rows
        Observations whose dummies form :math:`X_{10}` (e.g. the untreated ones).
    n_units, n_periods
        Numbers of codes.
    weights
        Optional regression weights of every observation (weighted least squares).
    """

    unit: np.ndarray
    time: np.ndarray
    fit_rows: np.ndarray
    n_units: int
    n_periods: int
    weights: np.ndarray | None = None

    @property
    def fit_weights(self) -> np.ndarray:
        """Weights of the fitting rows (ones without weights)."""
        if self.weights is None:
            return np.ones(int(self.fit_rows.sum()))
        return self.weights[self.fit_rows]

    def counts(self) -> tuple[np.ndarray, np.ndarray]:
        """Sum the weights of the fitting observations per unit and per period."""
        w = self.fit_weights
        return (np.bincount(self.unit[self.fit_rows], weights=w, minlength=self.n_units),
                np.bincount(self.time[self.fit_rows], weights=w, minlength=self.n_periods))

    def demean(self, values: np.ndarray, tol: float = 1e-13, max_iter: int = 10_000
               ) -> np.ndarray:
        r"""Residuals of the fitting rows' columns after unit and period effects.

        Alternating projections (the method of ``fixest`` and ``pyhdfe``): subtract unit
        means, then period means, until the largest change is below ``tol`` times the
        scale of the data.

        Parameters
        ----------
        values
            ``(n_fit, k)`` columns over the fitting rows.
        """
        unit, time = self.unit[self.fit_rows], self.time[self.fit_rows]
        n_unit, n_time = self.counts()
        w = self.fit_weights
        out = np.array(values, dtype=float, copy=True)
        scale = max(float(np.abs(out).max(initial=0.0)), 1.0)
        for _ in range(max_iter):
            change = 0.0
            for codes, counts in ((unit, n_unit), (time, n_time)):
                for j in range(out.shape[1]):
                    means = np.bincount(codes, weights=w * out[:, j], minlength=counts.size)
                    means = np.divide(means, counts, out=np.zeros_like(means), where=counts > 0)
                    out[:, j] -= means[codes]
                    change = max(change, float(np.abs(means).max(initial=0.0)))
            if change < tol * scale:
                return out
        raise ConvergenceError("alternating projections did not converge; unit and period "
                               "effects are (nearly) not identified from the untreated "
                               "observations.")

    def effects(self, y: np.ndarray, tol: float = 1e-13, max_iter: int = 10_000
                ) -> tuple[np.ndarray, np.ndarray]:
        r"""Fit unit and period effects to ``y`` (values on the fitting rows) by backfitting.

        Returns ``(alpha, lam)``; only :math:`\alpha_i + \lambda_t` is identified. Units or
        periods without fitting rows get zero.
        """
        unit, time = self.unit[self.fit_rows], self.time[self.fit_rows]
        n_unit, n_time = self.counts()
        w = self.fit_weights
        alpha, lam = np.zeros(self.n_units), np.zeros(self.n_periods)
        resid = np.array(y, dtype=float, copy=True)
        scale = max(float(np.abs(resid).max(initial=0.0)), 1.0)
        for _ in range(max_iter):
            step_unit = np.bincount(unit, weights=w * resid, minlength=self.n_units)
            step_unit = np.divide(step_unit, n_unit, out=np.zeros_like(step_unit),
                                  where=n_unit > 0)
            alpha += step_unit
            resid -= step_unit[unit]
            step_time = np.bincount(time, weights=w * resid, minlength=self.n_periods)
            step_time = np.divide(step_time, n_time, out=np.zeros_like(step_time),
                                  where=n_time > 0)
            lam += step_time
            resid -= step_time[time]
            if max(np.abs(step_unit).max(), np.abs(step_time).max()) < tol * scale:
                return alpha, lam
        raise ConvergenceError("backfitting of unit and period effects did not converge; "
                               "they are (nearly) not identified from the untreated "
                               "observations.")

    def solve_normal(self, rhs_unit: np.ndarray, rhs_time: np.ndarray, tol: float = 1e-12
                     ) -> tuple[np.ndarray, np.ndarray]:
        r"""Solve :math:`(X_{10}'WX_{10})\gamma = b` for each column of ``b``.

        ``b`` is given by its unit and period blocks, ``(n_units, k)`` and
        ``(n_periods, k)``. The system is singular (unit and period dummies share a
        constant); conjugate gradients return the minimum-norm solution of the consistent
        system, and any solution gives the same fitted values :math:`X\gamma`.
        """
        unit, time = self.unit[self.fit_rows], self.time[self.fit_rows]
        n_unit, n_time = self.counts()
        w = self.fit_weights
        size = self.n_units + self.n_periods

        def matvec(v: np.ndarray) -> np.ndarray:
            a, lam = v[:self.n_units], v[self.n_units:]
            fitted = w * (a[unit] + lam[time])
            return np.concatenate([np.bincount(unit, weights=fitted, minlength=self.n_units),
                                   np.bincount(time, weights=fitted,
                                               minlength=self.n_periods)])

        operator = LinearOperator((size, size), matvec=matvec, dtype=float)
        diagonal = np.concatenate([n_unit, n_time])
        preconditioner = LinearOperator(
            (size, size), matvec=lambda v: np.divide(v, diagonal, out=np.zeros_like(v),
                                                     where=diagonal > 0), dtype=float)
        k = rhs_unit.shape[1]
        out_unit, out_time = np.zeros((self.n_units, k)), np.zeros((self.n_periods, k))
        for j in range(k):
            b = np.concatenate([rhs_unit[:, j], rhs_time[:, j]])
            solution, info = cg(operator, b, rtol=tol, atol=0.0, maxiter=10_000,
                                M=preconditioner)
            if info != 0:
                raise ConvergenceError("the fixed-effects normal equations did not converge "
                                       f"(conjugate gradients, code {info}).")
            out_unit[:, j], out_time[:, j] = solution[:self.n_units], solution[self.n_units:]
        return out_unit, out_time
