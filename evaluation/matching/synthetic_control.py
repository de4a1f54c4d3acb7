r"""Synthetic-control weights for one treated area from non-treated municipalities.

Abadie, Diamond and Hainmueller (2010): the synthetic area is a convex combination of donor
units whose pre-treatment outcome path is as close as possible to the treated area's. The
gap after treatment estimates the area's effect; the pre-period fit says whether to trust it.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from evaluation.errors import ConvergenceWarning, MatchingError
from evaluation.panel import Panel
from evaluation.protocol import ResultMixin, Summary, new_axes

if TYPE_CHECKING:
    from matplotlib.axes import Axes

#: Donors with a weight above this count as used.
_USED = 1e-6
#: Largest duality gap, relative to the objective at the equal-weight start, at which the
#: last iterate of a fit the optimiser reports as failed is still accepted as the solution.
_GAP_TOLERANCE = 1e-6


@dataclass(frozen=True)
class SyntheticControl(ResultMixin):
    """Donor weights and the treated and synthetic outcome paths.

    Follows :class:`evaluation.protocol.ResultProtocol`: :meth:`summary`, :meth:`to_frame`
    (the outcome paths), :meth:`plot` and ``_repr_html_``.

    Attributes
    ----------
    weights
        Non-negative donor weights summing to one, indexed by donor id (zeros included);
        what tidysynth's ``grab_unit_weights()`` and Synth's ``synth.tab()$tab.w`` give.
    paths
        Per period: ``treated``, ``synthetic``, ``gap`` and ``pre`` (whether the period is
        used for fitting).
    converged
        Whether the weights solve the fitting problem: the optimiser reported success, or its
        last iterate has a duality gap within tolerance (see :func:`synthetic_control`).
        When False a :class:`~evaluation.errors.ConvergenceWarning` was issued.
    info
        The fit's settings and the optimiser's report: ``outcome``, ``treated_units``,
        ``treatment_start``, ``n_donors``, ``pre_periods``, ``optimizer``, ``status``,
        ``message``, ``iterations`` and ``duality_gap``.
    warnings
        Warnings issued while fitting, shown by :meth:`summary`.
    """

    weights: pd.Series
    paths: pd.DataFrame
    converged: bool = True
    info: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def fit_statistics(self) -> pd.Series:
        r"""Pre-period fit and post-period gap.

        Notes
        -----
        RMSPE :math:`=\sqrt{T^{-1}\sum_t (y_{1t} - \hat y_{1t})^2}` over pre or post periods;
        their ratio is the statistic of Abadie et al.'s permutation inference; :math:`R^2`
        is :math:`1 - \sum_t(y_{1t}-\hat y_{1t})^2/\sum_t (y_{1t}-\bar y_1)^2` over the pre
        periods; the mean gap is the average post-period effect estimate.
        """
        pre = self.paths["pre"].to_numpy(dtype=bool)
        gap = self.paths["gap"].to_numpy()
        y = self.paths["treated"].to_numpy()
        pre_rmspe = float(np.sqrt(np.mean(gap[pre] ** 2)))
        post_rmspe = float(np.sqrt(np.mean(gap[~pre] ** 2))) if (~pre).any() else np.nan
        sst = float(((y[pre] - y[pre].mean()) ** 2).sum())
        return pd.Series({
            "pre_rmspe": pre_rmspe,
            "pre_mae": float(np.mean(np.abs(gap[pre]))),
            "pre_r2": 1 - float((gap[pre] ** 2).sum()) / sst if sst > 0 else np.nan,
            "post_rmspe": post_rmspe,
            "rmspe_ratio": post_rmspe / pre_rmspe if pre_rmspe > 0 else np.nan,
            "post_mean_gap": float(gap[~pre].mean()) if (~pre).any() else np.nan,
            "n_donors_used": int((self.weights > _USED).sum()),
        })

    def to_frame(self) -> pd.DataFrame:
        """Tidy table of the outcome paths, one row per period.

        Returns
        -------
        pandas.DataFrame
            Columns ``period``, ``treated`` (the treated area's outcome), ``synthetic``,
            ``gap`` (treated minus synthetic: the effect estimate after treatment) and
            ``pre`` (fitting period). This is what tidysynth's ``grab_synthetic_control()``
            returns (``time_unit``, ``real_y``, ``synth_y``) and what Synth's
            ``path.plot``/``gaps.plot`` draw; the donor weights are :attr:`weights`.
        """
        return self.paths.reset_index()

    def summary(self) -> Summary:
        """Fit statistics, donor weights, the settings and the optimiser's report.

        Returns
        -------
        Summary
            Main table: :meth:`fit_statistics`; further table: the donors with positive
            weight, largest first; notes: settings and the optimiser's report; warnings:
            those issued while fitting (such as non-convergence). ``str()`` gives the text,
            ``_repr_html_`` the HTML; nothing is printed.
        """
        stats = self.fit_statistics().to_frame("value").rename_axis("statistic")
        used = self.weights[self.weights > _USED].sort_values(ascending=False)
        donors = used.to_frame("weight").rename_axis("donor")
        info = self.info
        pre = self.paths["pre"].to_numpy(dtype=bool)
        labels = list(self.paths.index)
        notes = []
        if "outcome" in info:
            notes.append(f"outcome: {info['outcome']}")
        if "treated_units" in info:
            notes.append(f"treated units: {', '.join(map(str, info['treated_units']))}")
        notes.append(f"fitted on {int(pre.sum())} pre-periods "
                     f"({labels[0]} to {labels[int(pre.sum()) - 1]}); {int((~pre).sum())} "
                     f"post-periods" + (f" from {labels[int(pre.sum())]}" if (~pre).any() else ""))
        notes.append(f"{len(used)} of {len(self.weights)} donors with weight > {_USED:g}")
        if "message" in info:
            notes.append(f"{info.get('optimizer', 'optimizer')}: {info['message']} after "
                         f"{info.get('iterations')} iterations; duality gap "
                         f"{info.get('duality_gap', np.nan):.3g}; converged: {self.converged}")
        title = "Synthetic control" + (f" for {info['outcome']}" if "outcome" in info else "")
        return Summary(title, stats, tuple(notes), tuple(self.warnings),
                       (("Donor weights", donors),))

    def plot(self, ax: Axes | None = None) -> Axes:
        """Plot the treated and synthetic paths, with a line at the start of treatment.

        Parameters
        ----------
        ax
            Axes to draw on; a new figure when omitted.

        Returns
        -------
        matplotlib.axes.Axes
            The Axes drawn on (the figure is not shown).
        """
        ax = new_axes(ax, (7, 3.5))
        x = np.arange(len(self.paths))
        ax.plot(x, self.paths["treated"], color="black", label="Treated area")
        ax.plot(x, self.paths["synthetic"], color="tab:blue", linestyle="--", label="Synthetic")
        pre = self.paths["pre"].to_numpy(dtype=bool)
        if (~pre).any():
            ax.axvline(np.flatnonzero(~pre)[0] - 0.5, color="grey", linewidth=0.8)
        ticks = np.linspace(0, len(x) - 1, min(8, len(x))).astype(int)
        ax.set_xticks(ticks, [str(self.paths.index[i]) for i in ticks])
        ax.legend()
        ax.set_title("Synthetic control")
        return ax


def synthetic_control(panel: Panel, treated_units: Sequence[Any], *, treatment_start: Any,
                      donors: Sequence[Any] | None = None, outcome: str | None = None,
                      pre_periods: int | None = None) -> SyntheticControl:
    r"""Fit synthetic-control weights for a treated area.

    Parameters
    ----------
    panel
        Long panel (balanced over the periods used).
    treated_units
        Ids of the municipalities that form the treated area; their outcomes are averaged
        (weighted by the panel's weights when it has them, e.g. labour force for rates).
    treatment_start
        First treated period; earlier periods are pre-periods.
    donors
        Donor ids (default: the panel's never-treated units).
    outcome
        Outcome column (default the panel's first outcome).
    pre_periods
        Number of pre-periods to fit on (default all).

    Returns
    -------
    SyntheticControl

    Notes
    -----
    Solves :math:`\min_w \sum_{t<T_0}(y_{1t} - \sum_j w_j y_{jt})^2` subject to
    :math:`w_j\ge 0`, :math:`\sum_j w_j = 1` (scipy's SLSQP with the analytic gradient, on
    outcomes scaled by the treated area's pre-period standard deviation).

    Convergence is checked on the returned weights :math:`w` by the Frank-Wolfe duality gap
    :math:`g^\top w - \min_j g_j` (:math:`g` the gradient of the objective), an upper bound
    on how far the objective is above its minimum. With the tight tolerance used, SLSQP often
    ends with "Positive directional derivative for linesearch" at the optimum; such a fit is
    accepted when the gap is at most ``1e-6`` times the objective at equal weights (or
    ``1e-6``). Otherwise the result has ``converged=False`` and a warning is issued. The
    optimiser's status, message and iteration count are in ``info`` either way.

    Raises
    ------
    MatchingError
        If ids are unknown, treated units are among the donors, there are no donors or too
        few pre-periods, or donors have missing outcomes in the pre-periods.

    Warns
    -----
    ConvergenceWarning
        When the optimiser fails and its last iterate does not pass the duality-gap check;
        the warning gives the optimiser's message and iteration count.
    """
    column = panel.outcome if outcome is None else outcome
    y = panel.wide(column)
    index = pd.Index(panel.units)
    treated_codes = _codes(index, treated_units, "treated_units")
    if donors is None:
        donor_codes = np.flatnonzero(np.isnan(panel.unit_cohort))
    else:
        donor_codes = _codes(index, donors, "donors")
    if np.isin(donor_codes, treated_codes).any():
        raise MatchingError("treated_units and donors overlap; a treated municipality cannot "
                            "be its own donor.")
    if len(donor_codes) < 2:
        raise MatchingError(f"synthetic control needs at least 2 donors; found "
                            f"{len(donor_codes)} (never-treated units by default).")
    start = panel.period_position(treatment_start)
    first = 0 if pre_periods is None else start - pre_periods
    if start - first < 2 or first < 0:
        raise MatchingError(f"need at least 2 pre-periods within the panel before "
                            f"{treatment_start!r}; got {start - max(first, 0)}.")
    weights = (np.ones(len(treated_codes)) if panel.unit_weights is None
               else panel.unit_weights[treated_codes])
    y1 = np.average(y[treated_codes], axis=0, weights=weights)
    y0 = y[donor_codes]
    if np.isnan(y0[:, first:start]).any() or np.isnan(y1[first:start]).any():
        raise MatchingError(f"outcome {column!r} is missing for some treated units or donors "
                            "in the pre-periods; drop those donors or fill the gaps.")
    scale = np.std(y1[first:start]) or 1.0
    a = y0[:, first:start].T / scale
    b = y1[first:start] / scale
    n = len(donor_codes)

    def objective(w: np.ndarray) -> float:
        return 0.5 * np.sum((b - a @ w) ** 2)

    initial = np.full(n, 1 / n)
    fit = minimize(objective, initial, jac=lambda w: -a.T @ (b - a @ w), method="SLSQP",
                   bounds=[(0.0, 1.0)] * n,
                   constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1,
                                 "jac": lambda w: np.ones_like(w)}],
                   options={"ftol": 1e-14, "maxiter": 1000})
    w = np.clip(fit.x, 0, None)
    w /= w.sum()
    gradient = -a.T @ (b - a @ w)
    gap = float(gradient @ w - gradient.min())
    converged = bool(fit.success) or gap <= _GAP_TOLERANCE * max(objective(initial), 1.0)
    iterations = getattr(fit, "nit", None)
    info = {"outcome": column, "treated_units": list(treated_units),
            "treatment_start": treatment_start, "n_donors": n, "pre_periods": start - first,
            "optimizer": "SLSQP", "status": int(fit.status), "message": str(fit.message),
            "iterations": iterations, "duality_gap": gap}
    issued = []
    if not converged:
        issued.append(f"the SLSQP optimiser stopped without converging (status {fit.status}: "
                      f"{fit.message}; {iterations} iterations; duality gap {gap:.3g}); the "
                      "weights are its last iterate and may not give the best pre-period fit.")
        warnings.warn(f"synthetic control for {list(treated_units)}: {issued[-1]}",
                      ConvergenceWarning, stacklevel=2)
    synthetic = w @ y0
    periods = [panel.period_label(p) for p in range(first, panel.n_periods)]
    paths = pd.DataFrame({"treated": y1[first:], "synthetic": synthetic[first:],
                          "gap": (y1 - synthetic)[first:],
                          "pre": np.arange(first, panel.n_periods) < start},
                         index=pd.Index(periods, name="period"))
    return SyntheticControl(pd.Series(w, index=index[donor_codes], name="weight"), paths,
                            converged, info, tuple(issued))


def _codes(index: pd.Index, ids: Sequence[Any], role: str) -> np.ndarray:
    ids = list(ids)
    codes = index.get_indexer(ids)
    if len(ids) == 0 or (codes < 0).any():
        unknown = [i for i, c in zip(ids, codes, strict=True) if c < 0][:3]
        raise MatchingError(f"{role} must be unit ids of the panel; unknown: {unknown}"
                            if ids else f"{role} is empty.")
    return codes
