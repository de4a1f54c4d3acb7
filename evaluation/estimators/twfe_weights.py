r"""De Chaisemartin and D'Haultfoeuille (2020) weights of the static TWFE coefficient.

Under parallel trends the static TWFE coefficient
(:class:`~evaluation.estimators.did.TwoWayFixedEffects`) is a weighted sum of the average
effects :math:`ATT(g,t)` of the treated (cohort, period) cells, with weights that sum to
one but can be negative: then the coefficient can have the opposite sign to every
:math:`ATT(g,t)`. :func:`twfe_weights` computes the weights, counts the negative ones and
reports the paper's two sensitivity measures, the smallest heterogeneity of effects that
could reconcile the coefficient with an average effect of zero, or with effects that all
have the opposite sign.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from evaluation.errors import EvaluationError, InvalidOptionError, MissingColumnError
from evaluation.estimators._bacon_checks import (
    TreatmentGroups,
    identity_tolerance,
    require_diagnosable,
    static_twfe_coefficient,
    window_info,
)
from evaluation.messages import fmt_list
from evaluation.panel import Panel
from evaluation.protocol import ResultMixin, Summary, new_axes

if TYPE_CHECKING:
    from matplotlib.axes import Axes


@dataclass
class TWFEWeights(ResultMixin):
    r"""Weights of the treated (cohort, period) cells in the static TWFE coefficient.

    Attributes
    ----------
    table
        One row per treated cell: ``group`` (the cohort: first treated period), ``path`` (the 0/1
        treatment path, only when some unit's treatment switches off: cells are then
        groups of units with the same path), ``time``, ``event_time`` (in time units),
        ``units``, ``share`` (:math:`N_{g,t}/N_1`, the cell's share of the treated
        observations, weighted by the unit weights if any), ``residual``
        (:math:`\hat\varepsilon_{g,t}`) and ``weight`` (:math:`W_{g,t}`, summing to one).
    twfe
        The static TWFE coefficient :math:`\hat\beta_{fe}`.
    sigma_fe
        :math:`|\hat\beta_{fe}|/\sigma(w)`: the smallest standard deviation of the
        :math:`ATT(g,t)` across treated cells compatible with :math:`\hat\beta_{fe}` and an
        average treatment effect on the treated of zero (NaN when all weights are equal).
    underline_sigma_fe
        The smallest standard deviation of the :math:`ATT(g,t)` compatible with
        :math:`\hat\beta_{fe}` and every :math:`ATT(g,t)` having the opposite sign to it
        (NaN when no weight is negative or :math:`\hat\beta_{fe} = 0`).
    info
        Sample sizes and the residual of the identity checked.
    warnings
        Warnings recorded while computing (shown by :meth:`summary`).

    Notes
    -----
    With :math:`P_{g,t} = N_{g,t}/N_1` and the normalised weights
    :math:`w_{g,t} = W_{g,t}/P_{g,t}` (averaging one under :math:`P`),
    :math:`\sigma(w) = (\sum P_{g,t}(w_{g,t} - 1)^2)^{1/2}` (de Chaisemartin and
    D'Haultfoeuille 2020, Corollary 1; Stata ``twowayfeweights``). A small
    :math:`\sigma_{fe}` or :math:`\underline\sigma_{fe}` relative to plausible effect
    heterogeneity means the sign of :math:`\hat\beta_{fe}` is fragile.
    """

    table: pd.DataFrame
    twfe: float
    sigma_fe: float
    underline_sigma_fe: float
    info: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def n_negative(self) -> int:
        """Number of treated cells with a negative weight."""
        return int((self.table["weight"] < 0).sum())

    @property
    def n_positive(self) -> int:
        """Number of treated cells with a positive weight."""
        return int((self.table["weight"] > 0).sum())

    @property
    def negative_sum(self) -> float:
        """Sum of the negative weights (0 when there are none)."""
        weight = self.table["weight"]
        return float(weight[weight < 0].sum())

    @property
    def positive_sum(self) -> float:
        """Sum of the positive weights (``1 - negative_sum``)."""
        weight = self.table["weight"]
        return float(weight[weight > 0].sum())

    @property
    def keys(self) -> list[str]:
        """Columns that identify a cell: ``group``, ``time`` (and ``path`` if present)."""
        return ["group", "path", "time"] if "path" in self.table else ["group", "time"]

    def implied_estimate(self, att: pd.DataFrame, column: str = "att") -> float:
        r"""Return :math:`\sum_{g,t} W_{g,t}\,ATT(g,t)` for given cell effects.

        Parameters
        ----------
        att
            One row per treated cell with the columns of :attr:`keys` and the effect (e.g.
            the ``kind == "group_time"`` rows of a simulator's truth table, or the table of
            a group-time estimator's result with ``column="estimate"``). Extra rows, such
            as untreated cells, are ignored.
        column
            Column of ``att`` holding the effects.

        Returns
        -------
        float
            What the TWFE coefficient estimates under parallel trends; it equals
            :attr:`twfe` when ``att`` holds the cells' true effects and outcomes are
            noise-free.

        Raises
        ------
        MissingColumnError
            If a key column or ``column`` is missing.
        InvalidOptionError
            If a treated cell has no effect in ``att`` (or more than one).
        """
        missing = [c for c in [*self.keys, column] if c not in att]
        if missing:
            raise MissingColumnError(f"att lacks the column(s) {fmt_list(missing)}; it needs "
                                     f"{fmt_list([*self.keys, column])}.")
        effects = att[[*self.keys, column]].rename(columns={column: "att"})
        merged = self.table.merge(effects, on=self.keys, how="left", validate="one_to_many")
        if len(merged) != len(self.table) or merged["att"].isna().any():
            lacking = merged.loc[merged["att"].isna(), self.keys].head(3)
            raise InvalidOptionError(
                "att must hold exactly one effect per treated cell; "
                f"{int(merged['att'].isna().sum())} cell(s) have none (e.g. "
                f"{lacking.to_dict('records')}) or some cells repeat. Pass one row per "
                "(group, time) of the weights table.")
        return float((merged["weight"] * merged["att"]).sum())

    def to_frame(self) -> pd.DataFrame:
        """Return a copy of :attr:`table`."""
        return self.table.copy()

    def overview(self) -> pd.DataFrame:
        """Return the counts and sums of positive and negative weights, one row each."""
        return pd.DataFrame(
            {"cells": [self.n_positive, self.n_negative],
             "sum of weights": [self.positive_sum, self.negative_sum]},
            index=pd.Index(["positive", "negative"], name="weights"))

    def summary(self) -> Summary:
        """Positive and negative weights, the sensitivity measures, and the cell table."""
        notes = [f"TWFE coefficient: {self.twfe:.6g} = sum of W(g,t) ATT(g,t) over "
                 f"{len(self.table)} treated cells under parallel trends",
                 "sigma_fe (ATT = 0 compatible): "
                 + (f"{self.sigma_fe:.6g}" if np.isfinite(self.sigma_fe)
                    else "not defined (all weights equal: TWFE estimates the ATT)"),
                 "underline sigma_fe (all ATT(g,t) of the opposite sign compatible): "
                 + (f"{self.underline_sigma_fe:.6g}" if np.isfinite(self.underline_sigma_fe)
                    else "not defined (no negative weight, or a zero coefficient)")]
        notes += [f"{key}: {value}" for key, value in self.info.items()]
        return Summary("de Chaisemartin-D'Haultfoeuille weights of the static TWFE "
                       "coefficient", self.overview(), tuple(notes), tuple(self.warnings),
                       (("treated cells", self.table),))

    def plot(self, ax: Axes | None = None) -> Axes:
        """Plot each cell's weight against its event time, one colour per group (cohort).

        Negative weights lie below the zero line. Returns the Axes; never shows the figure.
        """
        ax = new_axes(ax, (6, 4))
        for position, (cohort, rows) in enumerate(self.table.groupby("group", sort=False)):
            ax.plot(rows["event_time"], rows["weight"], marker="o", linestyle="",
                    color=f"C{position % 10}", label=f"cohort {cohort}")
        ax.axhline(0, color="0.3", linewidth=0.8)
        ax.set_xlabel("event time")
        ax.set_ylabel("weight W(g,t)")
        ax.set_title(f"{self.n_negative} of {len(self.table)} weights negative "
                     f"(sum {self.negative_sum:.3g})", fontsize=9)
        ax.legend(fontsize=8, frameon=False)
        ax.grid(alpha=0.3)
        return ax

    def __repr__(self) -> str:
        return (f"TWFEWeights(twfe={self.twfe:.6g}, cells={len(self.table)}, "
                f"negative={self.n_negative}, negative_sum={self.negative_sum:.4g})")


def twfe_weights(panel: Panel) -> TWFEWeights:
    r"""Compute the weights of the treated cells in the static TWFE coefficient.

    Parameters
    ----------
    panel
        A balanced panel with a cohort or a 0/1 status column. The treatment may switch
        off: cells are then groups of units with the same treatment path, and the
        coefficient is that of the plain regression of the outcome on the status with unit
        and period effects (the paper's :math:`\hat\beta_{fe}`), which
        :class:`~evaluation.estimators.did.TwoWayFixedEffects` refuses to fit on such a
        panel. Unit weights are supported (the weighted regression's weights).

    Returns
    -------
    TWFEWeights
        The weights of the treated cells, their signs and the sensitivity measures.

    Raises
    ------
    PanelError
        If the panel is unbalanced, has no cohort or status, no treated unit, or no
        variation in treatment beyond the fixed effects.
    EvaluationError
        If the weights fail to sum to one or the cell-level formula fails to reproduce the
        regression coefficient (a numerical failure that should not happen).

    Notes
    -----
    Let :math:`\hat\varepsilon_{g,t}` be the residual of the regression of the treatment
    on unit and period fixed effects (constant within a group of units with the same
    treatment path), :math:`N_{g,t}` the (weighted) number of units of cell
    :math:`(g,t)` and :math:`N_1` that of the treated observations. Theorem 1 of de
    Chaisemartin and D'Haultfoeuille (2020) gives, under parallel trends,

    .. math::

        \beta_{fe} = \sum_{(g,t): D_{g,t}=1} W_{g,t}\,ATT(g,t), \qquad
        W_{g,t} = \frac{N_{g,t}\hat\varepsilon_{g,t}}
                       {\sum_{(g',t'): D_{g',t'}=1} N_{g',t'}\hat\varepsilon_{g',t'}},

    and :math:`\sum W_{g,t} = 1`. With :math:`P_{g,t} = N_{g,t}/N_1` and
    :math:`w_{g,t} = W_{g,t}/P_{g,t}`, Corollary 1 gives
    :math:`\sigma_{fe} = |\hat\beta_{fe}|/\sigma(w)` and, ordering the cells by
    decreasing :math:`w_{(1)} \ge \dots \ge w_{(n)}` with tail sums
    :math:`P_k = \sum_{i\ge k}P_{(i)}`, :math:`S_k = \sum_{i\ge k}P_{(i)}w_{(i)}`,
    :math:`T_k = \sum_{i\ge k}P_{(i)}w_{(i)}^2` and
    :math:`s = \min\{k: w_{(k)} < -S_k/(1-P_k)\}`,

    .. math::

        \underline\sigma_{fe} = \frac{|\hat\beta_{fe}|}{\sqrt{T_s + S_s^2/(1-P_s)}}.

    The identity :math:`\hat\beta_{fe} = \sum_{g,t}N_{g,t}\hat\varepsilon_{g,t}\bar
    Y_{g,t} / \sum_{g,t}N_{g,t}\hat\varepsilon_{g,t}D_{g,t}` (any outcome) is checked
    against the regression of :func:`~evaluation.estimators.did.fit_two_way`.
    """
    require_diagnosable(panel, "twfe_weights")
    twfe = static_twfe_coefficient(panel)  # raises PanelError without variation in treatment
    groups = TreatmentGroups.of(panel)
    residual = groups.residuals()
    numerator = groups.mass[:, None] * residual
    denominator = float((numerator * groups.paths).sum())
    implied = float((numerator * groups.means).sum()) / denominator
    table = _cell_table(panel, groups, residual, numerator / denominator)
    weight_gap = float(table["weight"].sum() - 1.0)
    twfe_gap = implied - twfe
    if abs(weight_gap) > 1e-10 or abs(twfe_gap) > identity_tolerance(groups.means, twfe):
        raise EvaluationError(
            f"the TWFE weights failed their identity checks (weights sum to 1 "
            f"{weight_gap:+.3g}, cell formula minus regression {twfe_gap:+.3g}); rescale the "
            "outcome and retry, and report the panel if it persists.")
    share = table["share"].to_numpy()
    normalised = table["weight"].to_numpy() / share
    spread = float(np.sqrt(share @ (normalised - 1) ** 2))
    sigma_fe = abs(twfe) / spread if spread > 1e-12 else float("nan")
    info = {"units": panel.n_units, "periods": panel.n_periods,
            "treated cells": len(table),
            "absorbing": "path" not in table,
            "unit weights": "no" if panel.unit_weights is None else panel.weights,
            "cell formula - TWFE": twfe_gap, **window_info(panel)}
    return TWFEWeights(table=table, twfe=twfe, sigma_fe=sigma_fe,
                       underline_sigma_fe=sign_reversal_spread(share, normalised, twfe),
                       info=info)


def sign_reversal_spread(share: np.ndarray, weight: np.ndarray, beta: float) -> float:
    r"""Return :math:`\underline\sigma_{fe}`, the smallest spread reversing every sign.

    Parameters
    ----------
    share
        :math:`P_{g,t}`, summing to one.
    weight
        Normalised weights :math:`w_{g,t}` (:math:`\sum P w = 1`).
    beta
        The TWFE coefficient.

    Returns
    -------
    float
        The smallest :math:`\sigma_P(\Delta)` over effects :math:`\Delta_{g,t}` all of the
        sign opposite to ``beta`` with :math:`\sum P w \Delta = \beta`; NaN when ``beta``
        is zero or no weight is negative (no such effects exist).

    Notes
    -----
    Formula of :func:`twfe_weights` (de Chaisemartin and D'Haultfoeuille 2020,
    Corollary 1). The head sums :math:`1 - P_k = \sum_{i<k}P_{(i)}` are accumulated
    directly so that :math:`k = 1` gives exactly :math:`-\infty`.
    """
    if beta == 0 or not (weight < 0).any():
        return float("nan")
    order = np.argsort(-weight, kind="stable")
    w, p = weight[order], share[order]
    tail_s = np.cumsum((p * w)[::-1])[::-1]
    tail_t = np.cumsum((p * w**2)[::-1])[::-1]
    head_p = np.concatenate(([0.0], np.cumsum(p)[:-1]))
    with np.errstate(divide="ignore"):
        threshold = np.where(head_p > 0, -tail_s / np.where(head_p > 0, head_p, 1.0), -np.inf)
    s = int(np.flatnonzero(w < threshold)[0])
    return abs(beta) / float(np.sqrt(tail_t[s] + tail_s[s] ** 2 / head_p[s]))


def _cell_table(panel: Panel, groups: TreatmentGroups, residual: np.ndarray,
                weight: np.ndarray) -> pd.DataFrame:
    """One row per treated (group, period) cell, sorted by cohort, path and period."""
    first = groups.paths.argmax(axis=1)  # treated groups only are used below
    group, period = np.nonzero(groups.paths > 0)
    step = panel.step if panel.time_kind == "integer" else 1
    treated_mass = float((groups.mass[:, None] * groups.paths).sum())
    table = pd.DataFrame({
        "group": [panel.period_label(int(first[g])) for g in group],
        "path": ["".join(str(int(v)) for v in groups.paths[g]) for g in group],
        "time": [panel.period_label(int(t)) for t in period],
        "event_time": (period - first[group]) * step,
        "units": groups.units[group],
        "share": groups.mass[group] / treated_mass,
        "residual": residual[group, period],
        "weight": weight[group, period],
    })
    order = np.lexsort((period, table["path"].to_numpy(), first[group]))
    table = table.iloc[order].reset_index(drop=True)
    absorbing = (np.arange(panel.n_periods)[None, :] >= first[:, None]) == (groups.paths > 0)
    if absorbing[groups.paths.any(axis=1)].all():
        table = table.drop(columns="path")
    return table
