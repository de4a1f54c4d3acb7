r"""Bias-reduced (CR2) cluster-robust covariance with Bell-McCaffrey degrees of freedom.

Two estimators are covered:

* :func:`cr2_two_way`: least squares with unit and period fixed effects (two-way fixed
  effects, TWFE), equal to R ``clubSandwich``'s ``vcovCR(fit, cluster, type = "CR2")`` and
  ``coef_test(fit, vcov, test = "Satterthwaite")`` for the ``lm`` with unit and period factor
  dummies, computed without ever forming those dummies or an ``n_c x n_c`` matrix for a large
  cluster (the adjustment is a low-rank update of the identity, see the Notes).
* :func:`cr2_linear`: estimators that are linear in the outcome with a clustered variance
  that is a sum of squared linear forms (the imputation and two-stage DiD estimators); a
  scalar CR2 analogue with its Satterthwaite degrees of freedom (no R reference exists).

References: Bell and McCaffrey (2002); Imbens and Kolesár (2016); Pustejovsky and Tipton
(2018), "Small-sample methods for cluster-robust variance estimation and hypothesis testing in
fixed effects models", JBES 36(4).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import sparse

from evaluation.errors import InvalidOptionError, PanelError

#: Largest dense per-cluster matrix (entries) or low-rank basis (entries) CR2 will build.
MAX_CLUSTER_ENTRIES = 2**27
#: CR2 loops over clusters; beyond this many it would take minutes (and CR0 is accurate).
MAX_CLUSTERS = 20_000
_EIGEN_TOL = 1e-12  # clubSandwich's matrix_power: eigenvalues <= 1e-12 count as zero


def _too_large(what: str) -> InvalidOptionError:
    return InvalidOptionError(
        f"CR2 would need {what}, more memory than is reasonable; use se='wild' (the wild "
        "cluster bootstrap needs only per-cluster sums) or se='analytic'.")


@dataclass(frozen=True)
class CR2Fit:
    r"""CR2 covariance of regression coefficients and what their Satterthwaite df need.

    Attributes
    ----------
    vcov
        ``(k, k)`` CR2 covariance :math:`\hat V^{CR2}`.

    Notes
    -----
    The degrees of freedom of the test of a contrast :math:`c'\beta` are
    :math:`\nu = (\operatorname{tr}P)^2 / \lVert P\rVert_F^2` with the ``G x G`` matrix
    :math:`P_{ij} = g_i'g_j`, :math:`g_j = (I-H)_j' A_j W_j X_j M c` (Bell and McCaffrey
    2002, under the working model :math:`\operatorname{Var}(\varepsilon) = I` that
    ``clubSandwich`` uses for ``lm``). With unit effects nested in clusters and :math:`Z` the
    within-unit demeaned regressors and period dummies,
    :math:`P = \operatorname{diag}(u_j'u_j) + F\,\Omega F'`, where row :math:`j` of :math:`F`
    is :math:`[Z_j'u_j,\ Z_j'W_ju_j]`, :math:`u_j = A_jW_jX_jMc` and
    :math:`\Omega = \begin{pmatrix} M_ZZ'W^2ZM_Z & -M_Z \\ -M_Z & 0\end{pmatrix}`, so
    :math:`\lVert P\rVert_F^2` needs only ``2r x 2r`` products (:meth:`df`).
    """

    vcov: np.ndarray
    z_u: np.ndarray  # (G, r, k): Z_j' U_j with U_j = A_j W_j X_j M
    z_wu: np.ndarray  # (G, r, k): Z_j' W_j U_j
    u_u: np.ndarray  # (G, k, k): U_j' U_j
    omega: np.ndarray  # (2r, 2r)

    def df(self, contrast: np.ndarray) -> float:
        """Bell-McCaffrey (Satterthwaite) degrees of freedom of ``contrast @ beta``."""
        c = np.asarray(contrast, dtype=float)
        d = np.einsum("gkl,k,l->g", self.u_u, c, c)
        f = np.concatenate([self.z_u @ c, self.z_wu @ c], axis=1)  # (G, 2r)
        f_omega = f @ self.omega
        lead = np.einsum("gi,gi->g", f_omega, f)  # diagonal of F Omega F'
        gram = f.T @ f
        core = self.omega @ gram
        trace = d.sum() + lead.sum()
        squares = d @ d + 2 * d @ lead + np.einsum("ij,ji->", core, core)
        return float(trace**2 / squares) if squares > 0 else float("nan")

    @property
    def dfs(self) -> np.ndarray:
        """Degrees of freedom of each coefficient's t-test."""
        k = self.vcov.shape[0]
        return np.array([self.df(np.eye(k)[j]) for j in range(k)])


def _within_period_dummies(unit: np.ndarray, time: np.ndarray, column: np.ndarray
                           ) -> np.ndarray:
    """Period dummies minus their unit means (rows of one cluster).

    ``column`` maps each period code to its dummy's column (-1: no dummy).
    """
    local = np.unique(unit, return_inverse=True)[1]
    dummies = np.zeros((time.size, int(column.max()) + 1))
    hit = column[time] >= 0
    dummies[np.flatnonzero(hit), column[time[hit]]] = 1.0
    return _unit_demean(dummies, local, int(local.max()) + 1)


def _unit_demean(values: np.ndarray, local: np.ndarray, n_local: int) -> np.ndarray:
    """Subtract from each row its unit's mean (``local`` codes 0..n_local-1)."""
    members = sparse.csr_matrix((np.ones(local.size), (local, np.arange(local.size))),
                                shape=(n_local, local.size))
    sizes = np.asarray(members.sum(axis=1)).ravel()
    return values - (members @ values / sizes[:, None])[local]


def _inverse_sqrt_apply(y: np.ndarray, core: np.ndarray, local: np.ndarray, n_local: int,
                        targets: np.ndarray, path: str = "auto") -> np.ndarray:
    r"""Apply :math:`B^{+1/2}` to ``targets`` for :math:`B = \Pi - Y C Y'`.

    :math:`\Pi` is the within-unit demeaning projection of the cluster's rows and the
    columns of ``y`` and ``targets`` lie in its range.
    """
    n_rows, q = y.shape
    if path == "low-rank" or (path == "auto" and 2 * q < n_rows):
        # low rank: B = I - Q S Q' on range(Pi), with Q an orthonormal basis of Y
        if n_rows * q > MAX_CLUSTER_ENTRIES:
            raise _too_large(f"a {n_rows} x {q} basis for one cluster")
        gram = y.T @ y
        g_val, g_vec = np.linalg.eigh(gram)
        keep = g_val > max(g_val.max(initial=0.0), 1.0) * 1e-13
        coef = g_vec[:, keep] / np.sqrt(g_val[keep])  # Q = Y coef
        small = coef.T @ gram @ core @ gram @ coef
        lam, vec = np.linalg.eigh((small + small.T) / 2)
        rest = 1.0 - lam
        shift = np.where(rest > _EIGEN_TOL, 1 / np.sqrt(np.maximum(rest, _EIGEN_TOL)), 0.0) - 1
        mix = coef @ (vec * shift) @ vec.T @ coef.T
        return targets + y @ (mix @ (y.T @ targets))
    if n_rows * n_rows > MAX_CLUSTER_ENTRIES:
        raise _too_large(f"a dense {n_rows} x {n_rows} matrix for one cluster")
    sizes = np.bincount(local, minlength=n_local).astype(float)
    projection = np.eye(n_rows) - (local[:, None] == local[None, :]) / sizes[local][None, :]
    full = projection - y @ core @ y.T
    lam, vec = np.linalg.eigh((full + full.T) / 2)
    power = np.where(lam > _EIGEN_TOL, 1 / np.sqrt(np.maximum(lam, _EIGEN_TOL)), 0.0)
    return (vec * power) @ (vec.T @ targets)


def cr2_two_way(x: np.ndarray, resid: np.ndarray, weights: np.ndarray | None,
                unit: np.ndarray, time: np.ndarray, cluster: np.ndarray, *,
                path: Literal["auto", "dense", "low-rank"] = "auto") -> CR2Fit:
    r"""CR2 covariance of two-way fixed-effects coefficients (``clubSandwich`` for ``lm``).

    Parameters
    ----------
    x
        ``(n, k)`` treatment regressors with the (weighted) unit and period effects
        partialled out, :math:`\tilde X`.
    resid
        ``(n,)`` residuals of the full regression, :math:`\tilde y - \tilde X\hat\beta`.
    weights
        ``(n,)`` regression weights, constant within unit (None: unweighted).
    unit, time, cluster
        ``(n,)`` integer codes; every unit must lie in one cluster.
    path
        ``"auto"`` (default) picks, per cluster, the low-rank update when its rank is below
        half the cluster's rows and the dense matrix otherwise; the others force one (tests).

    Returns
    -------
    CR2Fit
        The covariance and the ingredients of the Bell-McCaffrey degrees of freedom.

    Raises
    ------
    PanelError
        If a unit spans clusters or its weight varies.
    InvalidOptionError
        If a cluster is too large for the exact computation (use ``se="wild"``).

    Notes
    -----
    ``clubSandwich`` fits :math:`y = U\gamma + \varepsilon` with the full design
    :math:`U = [X, D_{unit}, D_{period}]`, weights :math:`W` and target variance
    :math:`\Phi = I`, and computes

    .. math::

        \hat V = M\Big[\sum_j X_j'W_jA_j e_je_j'A_jW_jX_j\Big]M,\quad
        A_j = B_j^{+1/2},\quad B_j = \big[(I - H)(I - H)'\big]_{jj},\quad
        H = UM_UU'W,

    with :math:`M = (\tilde X'W\tilde X)^{-1}` (only the :math:`X` rows of
    :math:`M_UU'` matter, which by Frisch-Waugh-Lovell are :math:`M\tilde X'`) and
    :math:`B^{+1/2}` the symmetric inverse square root with eigenvalues :math:`\le 10^{-12}`
    set to zero. (Unweighted, :math:`B_j = (I - H)_{jj}` as in Bell-McCaffrey.) Because
    unit dummies are nested in clusters and weights are constant within unit, every vector
    :math:`v` of a cluster's rows with zero within-unit sums satisfies
    :math:`H'v = WZM_ZZ'v` with :math:`Z` the within-unit demeaned :math:`[\tilde X,
    D_{period}]` (one period dropped) and :math:`M_Z = (Z'WZ)^{-1}`, which gives

    .. math::

        B_j = \Pi_j - W_jZ_jM_ZZ_j' - Z_jM_ZZ_j'W_j + Z_jM_ZZ'W^2ZM_ZZ_j'
            = \Pi_j - Y_jCY_j', \quad Y_j = [W_jZ_j,\ Z_j],

    :math:`\Pi_j` the within-unit demeaning of the cluster's rows (:math:`B_j` vanishes on
    unit-constant vectors). Residuals and :math:`W_j\tilde X_j` lie in the range of
    :math:`\Pi_j`, where :math:`B_j` is the identity minus a matrix of rank
    :math:`q \le 2(k + T - 1)` (:math:`k + T - 1` unweighted): with an orthonormal basis
    :math:`Q` of :math:`Y_j` and the eigen-decomposition :math:`Q'Y_jCY_j'Q = E\Lambda E'`,
    :math:`A_jv = v + QE\,[(1-\Lambda)^{-1/2} - I]\,E'Q'v`, which costs
    :math:`O(n_jq^2)` instead of :math:`O(n_j^3)`. This is the absorption argument of
    Pustejovsky and Tipton (2018, Theorem 2) made explicit for the period effects that are not
    nested in clusters; clusters with :math:`2q \ge n_j` (e.g. one unit) use the dense
    :math:`n_j \times n_j` matrix. The tests check both against ``clubSandwich``.
    """
    x = np.asarray(x, dtype=float)
    resid = np.asarray(resid, dtype=float)
    n, k = x.shape
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float) / np.mean(weights)
    weighted = weights is not None and not np.allclose(w, 1.0)
    unit_cluster = np.full(int(unit.max()) + 1, -1)
    unit_cluster[unit] = cluster
    if (unit_cluster[unit] != cluster).any():
        raise PanelError("CR2 with fixed effects needs every unit inside one cluster.")
    unit_weight = np.zeros(unit_cluster.size)
    unit_weight[unit] = w
    if not np.allclose(unit_weight[unit], w, rtol=1e-12, atol=0):
        raise PanelError("CR2 with unit fixed effects needs weights constant within unit.")
    observed = np.flatnonzero(np.bincount(time) > 0)
    column = np.full(int(time.max()) + 1, -1)
    column[observed[:-1]] = np.arange(observed.size - 1)  # drop one: the dummies sum to one
    order = np.argsort(cluster, kind="stable")
    bounds = np.flatnonzero(np.diff(np.r_[-1, cluster[order], -2]))
    groups = [order[a:b] for a, b in itertools.pairwise(bounds)]
    if len(groups) > MAX_CLUSTERS:
        raise InvalidOptionError(
            f"se='cr2' handles at most {MAX_CLUSTERS} clusters ({len(groups)} given); with "
            "this many clusters the analytic CR0 variance is accurate: use se='analytic' "
            "(or se='wild').")

    def design(rows: np.ndarray) -> np.ndarray:
        return np.column_stack([x[rows], _within_period_dummies(unit[rows], time[rows],
                                                                column)])

    r = k + observed.size - 1
    zwz, zw2z = np.zeros((r, r)), np.zeros((r, r))
    for rows in groups:
        z = design(rows)
        zwz += z.T @ (w[rows, None] * z)
        zw2z += z.T @ ((w[rows] ** 2)[:, None] * z)
    m_z = np.linalg.pinv(zwz, hermitian=True)
    k2 = m_z @ zw2z @ m_z
    bread = np.linalg.inv(x.T @ (w[:, None] * x))
    if weighted:
        core = np.block([[np.zeros((r, r)), m_z], [m_z, -k2]])
    else:
        core = m_z
    n_groups = len(groups)
    meat = np.zeros((k, k))
    z_u, z_wu = np.zeros((n_groups, r, k)), np.zeros((n_groups, r, k))
    u_u = np.zeros((n_groups, k, k))
    for j, rows in enumerate(groups):
        z = design(rows)
        wj = w[rows, None]
        y = np.column_stack([wj * z, z]) if weighted else z
        local = np.unique(unit[rows], return_inverse=True)[1]
        targets = np.column_stack([resid[rows], wj * x[rows]])
        adjusted = _inverse_sqrt_apply(y, core, local, int(local.max()) + 1, targets, path)
        score = (wj * x[rows]).T @ adjusted[:, 0]
        meat += np.outer(score, score)
        u = adjusted[:, 1:] @ bread
        z_u[j], z_wu[j], u_u[j] = z.T @ u, z.T @ (wj * u), u.T @ u
    omega = np.block([[k2, -m_z], [-m_z, np.zeros((r, r))]])
    return CR2Fit(bread @ meat @ bread, z_u, z_wu, u_u, omega)


@dataclass(frozen=True)
class LinearCR2:
    """Scalar-CR2 variance of a linear estimator and its Satterthwaite degrees of freedom."""

    variance: float
    df: float


def cr2_linear(estimator: np.ndarray, sums: np.ndarray, y: np.ndarray,
               cluster: np.ndarray) -> LinearCR2:
    r"""Bias-reduced clustered variance of :math:`\hat\theta = \lambda'y` (a CR2 analogue).

    Parameters
    ----------
    estimator
        ``(n,)`` weights :math:`\lambda` of the outcome in the estimate.
    sums
        ``(n, G)`` vectors :math:`\ell_c`: the analytic variance is
        :math:`\sum_c (\ell_c'y)^2` (BJS's conservative variance, Gardner's GMM variance).
    y
        ``(n,)`` outcome.
    cluster
        ``(n,)`` cluster codes 0..G-1.

    Returns
    -------
    LinearCR2
        The variance and its degrees of freedom.

    Notes
    -----
    An extension (no R reference exists). Under the working model
    :math:`y = \mu + \varepsilon`, :math:`\operatorname{Var}(\varepsilon) = I`, with
    :math:`\ell_c'\mu = 0` (the fixed effects and cell-level effects drop out of the
    residuals), :math:`E(\ell_c'y)^2 = \lVert\ell_c\rVert^2`, whereas cluster :math:`c`'s
    share of the true variance :math:`\lVert\lambda\rVert^2` is
    :math:`\lVert\lambda_c\rVert^2` (its rows of :math:`\lambda`). As CR2 does with a matrix
    :math:`A_c` for least squares, each cluster's term is rescaled to be unbiased:

    .. math::

        \hat\sigma^2 = \sum_c \kappa_c(\ell_c'y)^2, \qquad
        \kappa_c = \lVert\lambda_c\rVert^2 / \lVert\ell_c\rVert^2,

    so :math:`E\hat\sigma^2 = \lVert\lambda\rVert^2` under the working model (for least
    squares :math:`\ell_c = (I - H)'1_c\lambda` and the scalar and matrix adjustments make the
    same per-cluster expectation). Its Satterthwaite degrees of freedom (Bell and McCaffrey
    2002) are :math:`\nu = (\sum_c\kappa_c\lVert\ell_c\rVert^2)^2 /
    \sum_{c,d}\kappa_c\kappa_d(\ell_c'\ell_d)^2`.
    """
    index = sparse.csr_matrix((np.ones(cluster.size), (cluster, np.arange(cluster.size))),
                              shape=(sums.shape[1], cluster.size))
    own = index @ (estimator**2)
    gram = sums.T @ sums
    norms = np.diag(gram)
    kappa = np.divide(own, norms, out=np.ones_like(own), where=norms > 0)
    terms = sums.T @ y
    weighted = kappa[:, None] * gram * kappa[None, :]
    denominator = np.einsum("cd,cd->", weighted, gram)
    df = float((kappa @ norms) ** 2 / denominator) if denominator > 0 else float("nan")
    return LinearCR2(float(kappa @ terms**2), df)
