r"""Goodman-Bacon (2021) decomposition of the static two-way fixed-effects coefficient.

With staggered adoption the static TWFE coefficient
(:class:`~evaluation.estimators.did.TwoWayFixedEffects`) is a weighted average of every
2x2 difference-in-differences between two adoption cohorts, or a cohort and the never- (or
always-) treated units. Some of these comparisons use already-treated units as controls
("later vs earlier treated"); when effects change with time since adoption they pull the
coefficient away from any average effect, possibly past zero.
:func:`bacon_decomposition` lists the comparisons with their weights and estimates, and
checks that the weights sum to one and reproduce the regression coefficient.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from evaluation.errors import EvaluationError, PanelError
from evaluation.estimators._bacon_checks import (
    TreatmentGroups,
    identity_tolerance,
    require_diagnosable,
    require_staggered_adoption,
    static_twfe_coefficient,
    window_info,
)
from evaluation.panel import Panel
from evaluation.protocol import ResultMixin, Summary, new_axes

if TYPE_CHECKING:
    from matplotlib.axes import Axes

EARLIER_VS_LATER = "earlier vs later treated"
LATER_VS_EARLIER = "later vs earlier treated"
TREATED_VS_NEVER = "treated vs never treated"
TREATED_VS_ALWAYS = "treated vs always treated"
#: The comparison types, in the order of :meth:`BaconDecomposition.by_type`.
COMPARISON_TYPES = (EARLIER_VS_LATER, LATER_VS_EARLIER, TREATED_VS_NEVER, TREATED_VS_ALWAYS)
#: Labels of the comparison column for the untreated and always-treated units.
NEVER_LABEL, ALWAYS_LABEL = "never treated", "always treated"
TABLE_COLUMNS = ["treated_cohort", "comparison_cohort", "type", "weight", "estimate",
                 "n_treated", "n_comparison"]


@dataclass
class BaconDecomposition(ResultMixin):
    r"""The 2x2 comparisons behind a static TWFE coefficient.

    Attributes
    ----------
    table
        One row per 2x2 comparison: ``treated_cohort`` (first treated period of the units
        treated in the comparison), ``comparison_cohort`` (first treated period of the
        comparison units, or ``"never treated"`` / ``"always treated"``), ``type`` (one of
        :data:`COMPARISON_TYPES`), ``weight`` (summing to one over the table), ``estimate``
        (the 2x2 DiD) and the unit counts ``n_treated`` and ``n_comparison``.
    twfe
        The static TWFE coefficient, equal to ``(table.weight * table.estimate).sum()``.
    info
        Sample sizes and the residuals of the two identities checked.
    warnings
        Warnings recorded while decomposing (shown by :meth:`summary`).

    Notes
    -----
    "later vs earlier treated" comparisons use units that are already treated as
    controls: their estimate is biased by any change in the earlier cohort's effect over
    the comparison window (Goodman-Bacon 2021, eq. 15). So are "treated vs always
    treated" comparisons, whose controls are treated throughout.
    """

    table: pd.DataFrame
    twfe: float
    info: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def by_type(self) -> pd.DataFrame:
        """Return the summed weight and weighted-average estimate of each comparison type.

        Returns
        -------
        pandas.DataFrame
            Indexed by ``type`` (types present, in :data:`COMPARISON_TYPES` order), with
            columns ``comparisons``, ``weight`` (summing to one) and ``estimate`` (the
            weight-averaged 2x2 estimate of the type); ``weight * estimate`` sums to
            :attr:`twfe`.
        """
        frame = self.table.assign(product=self.table["weight"] * self.table["estimate"])
        grouped = frame.groupby("type", sort=False).agg(
            comparisons=("weight", "size"), weight=("weight", "sum"),
            product=("product", "sum"))
        grouped["estimate"] = grouped["product"] / grouped["weight"]
        order = [t for t in COMPARISON_TYPES if t in grouped.index]
        return grouped.loc[order, ["comparisons", "weight", "estimate"]]

    def to_frame(self) -> pd.DataFrame:
        """Return a copy of :attr:`table`."""
        return self.table.copy()

    def summary(self) -> Summary:
        """Summary by comparison type, with the full table of 2x2 comparisons below."""
        notes = [f"TWFE coefficient: {self.twfe:.6g} = sum of weight x estimate over "
                 f"{len(self.table)} comparisons"]
        notes += [f"{key}: {value}" for key, value in self.info.items()]
        return Summary("Goodman-Bacon decomposition of the static TWFE coefficient",
                       self.by_type(), tuple(notes), tuple(self.warnings),
                       (("2x2 comparisons", self.table),))

    def plot(self, ax: Axes | None = None) -> Axes:
        """Scatter each comparison's weight against its estimate, coloured by type.

        A horizontal line marks the TWFE coefficient. Returns the Axes; never shows the
        figure.
        """
        ax = new_axes(ax, (6, 4))
        for position, kind in enumerate(COMPARISON_TYPES):
            rows = self.table[self.table["type"] == kind]
            if len(rows):
                ax.scatter(rows["weight"], rows["estimate"], s=30, color=f"C{position}",
                           label=kind)
        ax.axhline(self.twfe, color="0.3", linestyle="--", linewidth=1,
                   label=f"TWFE = {self.twfe:.3g}")
        ax.set_xlabel("weight")
        ax.set_ylabel("2x2 DiD estimate")
        ax.legend(fontsize=8, frameon=False)
        ax.grid(alpha=0.3)
        return ax

    def __repr__(self) -> str:
        return (f"BaconDecomposition(twfe={self.twfe:.6g}, comparisons={len(self.table)}, "
                f"types={list(self.by_type().index)})")


def bacon_decomposition(panel: Panel) -> BaconDecomposition:
    r"""Decompose the static TWFE coefficient into its 2x2 DiD comparisons.

    Parameters
    ----------
    panel
        A balanced panel with absorbing (staggered) adoption: a cohort column, or a status
        column that never switches off. Never-treated units and units treated from the
        first period ("always treated") are allowed. Unit weights are supported: shares
        and means are then weighted, as in the weighted TWFE regression.

    Returns
    -------
    BaconDecomposition
        The comparisons, their weights and estimates, and the TWFE coefficient.

    Raises
    ------
    PanelError
        If the panel is unbalanced, has no cohort or status, no treated unit, or no
        variation in treatment beyond the fixed effects (one adoption date and no never- or
        always-treated units).
    NonAbsorbingTreatmentError
        If some unit's status switches off (a :class:`PanelError` too).
    EvaluationError
        If the weights do not sum to one or do not reproduce the TWFE coefficient to
        :math:`10^{-10}` (relative to the largest estimate): a numerical failure that
        should not happen on a valid panel.

    Notes
    -----
    Let cohort :math:`k` adopt at period :math:`g_k` and be treated a share
    :math:`\bar D_k = (T - g_k)/T` of the :math:`T` periods (positions
    :math:`0..T-1`), :math:`n_k` the (weighted) share of units in it, :math:`U` the
    never-treated and :math:`A` the always-treated units. With
    :math:`\hat V^D = \frac{1}{NT}\sum_{it}(D_{it} - \bar D_i - \bar D_t + \bar D)^2`,
    Goodman-Bacon's Theorem 1 gives
    :math:`\hat\beta^{TWFE} = \sum_k s_{kU}\hat\beta_{kU} + \sum_k s_{kA}\hat\beta_{kA}
    + \sum_{k<l}(s^k_{kl}\hat\beta^k_{kl} + s^l_{kl}\hat\beta^l_{kl})` with weights

    .. math::

        s_{kU} = \frac{n_k n_U \bar D_k(1-\bar D_k)}{\hat V^D},\quad
        s_{kA} = \frac{n_k n_A \bar D_k(1-\bar D_k)}{\hat V^D},\quad
        s^k_{kl} = \frac{n_k n_l(\bar D_k - \bar D_l)(1-\bar D_k)}{\hat V^D},\quad
        s^l_{kl} = \frac{n_k n_l \bar D_l(\bar D_k - \bar D_l)}{\hat V^D}

    (eqs. 10e-g multiplied out; :math:`U` and :math:`A` together form the paper's
    untreated group of footnote 11, split here in two). :math:`\hat\beta_{kU}` and
    :math:`\hat\beta_{kA}` compare cohort :math:`k`'s mean change from
    :math:`t < g_k` to :math:`t \ge g_k` with that of :math:`U` or :math:`A`;
    :math:`\hat\beta^k_{kl}` ("earlier vs later") compares :math:`k` with :math:`l` over
    :math:`t < g_l`, before :math:`g_k` against :math:`[g_k, g_l)`;
    :math:`\hat\beta^l_{kl}` ("later vs earlier") compares :math:`l` with the already
    treated :math:`k` over :math:`t \ge g_k`, :math:`[g_k, g_l)` against
    :math:`t \ge g_l`. Both identities, :math:`\sum s = 1` and
    :math:`\sum s\hat\beta = \hat\beta^{TWFE}` (the regression of
    :func:`~evaluation.estimators.did.fit_two_way`), are checked before returning.
    """
    what = "the Goodman-Bacon decomposition"
    require_diagnosable(panel, what)
    require_staggered_adoption(panel, what)
    groups = TreatmentGroups.of(panel)
    first = np.where(groups.paths.any(axis=1), groups.paths.argmax(axis=1), -1)
    never = np.flatnonzero(first == -1)
    always = np.flatnonzero(first == 0)
    timing = np.flatnonzero(first > 0)
    timing = timing[np.argsort(first[timing])]
    if timing.size == 0 or (timing.size == 1 and never.size + always.size == 0):
        raise PanelError(
            f"{what} needs variation in treatment timing: the panel has "
            f"{timing.size} adoption date(s) within the sample, "
            f"{int(groups.units[never].sum())} never-treated and "
            f"{int(groups.units[always].sum())} always-treated units, so the static TWFE "
            "coefficient is not identified. Add never-treated units or cohorts adopting "
            "at other dates.")
    comparisons = _comparisons(groups, first, timing, never, always)
    variance = groups.treatment_variance()
    table = pd.DataFrame(comparisons, columns=[*TABLE_COLUMNS[:3], "numerator", "estimate",
                                               "n_treated", "n_comparison"])
    table["weight"] = table.pop("numerator") / variance
    table = table[TABLE_COLUMNS]
    label = _cohort_labeller(panel)
    table["treated_cohort"] = [label(g) for g in table["treated_cohort"]]
    table["comparison_cohort"] = [label(g) for g in table["comparison_cohort"]]
    twfe = static_twfe_coefficient(panel)
    weight_gap = float(table["weight"].sum() - 1.0)
    twfe_gap = float((table["weight"] * table["estimate"]).sum() - twfe)
    if abs(weight_gap) > 1e-10 or abs(twfe_gap) > identity_tolerance(table["estimate"], twfe):
        raise EvaluationError(
            f"{what} failed its identity checks (weights sum to 1 {weight_gap:+.3g}, "
            f"weighted 2x2 estimates minus TWFE {twfe_gap:+.3g}); the panel may be too "
            "ill-conditioned (e.g. outcomes of very different magnitudes). Rescale the "
            "outcome and retry, and report the panel if it persists.")
    info = {"units": panel.n_units, "periods": panel.n_periods,
            "cohorts": int(timing.size), "never-treated units": int(groups.units[never].sum()),
            "always-treated units": int(groups.units[always].sum()),
            "unit weights": "no" if panel.unit_weights is None else panel.weights,
            "weights sum - 1": weight_gap, "weighted sum - TWFE": twfe_gap,
            **window_info(panel)}
    return BaconDecomposition(table=table, twfe=twfe, info=info)


def _comparisons(groups: TreatmentGroups, first: np.ndarray, timing: np.ndarray,
                 never: np.ndarray, always: np.ndarray) -> list[tuple]:
    r"""Rows ``(treated, comparison, type, numerator, estimate, n_treated, n_comparison)``.

    Cohorts are grid positions, ``-1`` for never treated and ``0`` for always treated.
    The numerator is the weight times :math:`\hat V^D`.
    """
    n_periods = groups.paths.shape[1]
    share = groups.shares
    treated_share = groups.paths.mean(axis=1)
    periods = np.arange(n_periods)

    def pooled(members: np.ndarray) -> tuple[float, np.ndarray, int]:
        """Return the share, share-weighted mean outcome path and unit count of groups."""
        total = share[members].sum()
        return (float(total), share[members] @ groups.means[members] / total,
                int(groups.units[members].sum()))

    def did(treated: np.ndarray, control: np.ndarray, pre: np.ndarray,
            post: np.ndarray) -> float:
        gap = treated - control
        return float(gap[post].mean() - gap[pre].mean())

    rows: list[tuple] = []
    for k in timing:
        d_k, y_k, n_k = treated_share[k], groups.means[k], int(groups.units[k])
        pre, post = periods < first[k], periods >= first[k]
        for members, kind, code in ((never, TREATED_VS_NEVER, -1),
                                    (always, TREATED_VS_ALWAYS, 0)):
            if members.size:
                share_c, y_c, n_c = pooled(members)
                rows.append((first[k], code, kind, share[k] * share_c * d_k * (1 - d_k),
                             did(y_k, y_c, pre, post), n_k, n_c))
    for i, k in enumerate(timing):
        for l in timing[i + 1:]:  # noqa: E741 - the paper's cohort l
            d_k, d_l, both = treated_share[k], treated_share[l], share[k] * share[l]
            y_k, y_l = groups.means[k], groups.means[l]
            n_k, n_l = int(groups.units[k]), int(groups.units[l])
            early = periods < first[l]
            rows.append((first[k], first[l], EARLIER_VS_LATER,
                         both * (d_k - d_l) * (1 - d_k),
                         did(y_k, y_l, early & (periods < first[k]),
                             early & (periods >= first[k])), n_k, n_l))
            late = periods >= first[k]
            rows.append((first[l], first[k], LATER_VS_EARLIER, both * d_l * (d_k - d_l),
                         did(y_l, y_k, late & (periods < first[l]), periods >= first[l]),
                         n_l, n_k))
    return rows


def _cohort_labeller(panel: Panel) -> Any:
    """Map cohort codes (grid positions, -1 never, 0 always) to the table's labels."""
    def label(code: int) -> Any:
        if code == -1:
            return NEVER_LABEL
        if code == 0:
            return ALWAYS_LABEL
        return panel.period_label(int(code))
    return label
