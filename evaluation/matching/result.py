"""The result of matching or weighting: kept units, weights, balance and the hand-off to DiD."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from evaluation.matching._covariates import Covariates
from evaluation.matching.balance import balance_table, love_plot, sample_sizes
from evaluation.protocol import ResultMixin, Summary

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from evaluation.panel import Panel

#: Columns of :meth:`MatchResult.to_frame` (the CLI's output file).
UNIT_COLUMNS = ("unit", "treated", "weight", "subclass", "distance")


@dataclass(repr=False)
class MatchResult(ResultMixin):
    """Matched or reweighted comparison group.

    Follows :class:`evaluation.protocol.ResultProtocol`: :meth:`summary`, :meth:`to_frame`,
    :meth:`plot` (a Love plot) and ``_repr_html_``.

    Attributes
    ----------
    units
        One row per input unit, in input order: ``unit``, ``treated``, ``weight``,
        ``subclass`` (pair or stratum id, missing with replacement or weighting),
        ``distance`` (propensity or user score; missing for covariate metrics),
        ``discarded`` and ``reason`` (why a treated unit was left without a match).
    matches
        Long table of matched pairs: ``treated_unit``, ``control_unit``, ``rank`` (1 for the
        first control chosen); empty for subclassification and weighting.
    method, distance
        What was done.
    covariates
        The balance covariates (categoricals as one indicator per level).
    base_weights
        Sampling weights of the units, or ``None``.
    data
        The input DataFrame (not modified; used by :meth:`matched_data`).
    info
        The options used, for summaries and reports; an optional ``"warnings"`` entry (a
        sequence of strings) is listed among the summary's warnings.
    """

    units: pd.DataFrame
    matches: pd.DataFrame
    method: str
    distance: str | None
    covariates: Covariates
    base_weights: np.ndarray | None
    data: pd.DataFrame = field(repr=False)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def weights(self) -> np.ndarray:
        """Matching weight of every unit (0 for units not kept)."""
        return self.units["weight"].to_numpy()

    @property
    def treated(self) -> np.ndarray:
        """Boolean treatment indicator in input order."""
        return self.units["treated"].to_numpy(dtype=bool)

    def _balance_inputs(self, include_distance: bool) -> tuple[np.ndarray, list[str], list[bool]]:
        values, names = self.covariates.values, list(self.covariates.names)
        binary = list(self.covariates.binary)
        score = self.units["distance"].to_numpy(dtype=float)
        if include_distance and np.isfinite(score).all():
            values = np.column_stack([score, values])
            names = ["distance", *names]
            binary = [False, *binary]
        return values, names, binary

    def balance(self, include_distance: bool = True) -> pd.DataFrame:
        """Balance table before and after (see :func:`evaluation.matching.balance.balance_table`).

        Parameters
        ----------
        include_distance
            Put the propensity (or user) score first, as MatchIt does, when there is one.
        """
        values, names, binary = self._balance_inputs(include_distance)
        return balance_table(values, names, self.treated, self.weights,
                             base_weights=self.base_weights, binary=binary)

    def sample_sizes(self) -> pd.DataFrame:
        """Count units and effective sample sizes (see :func:`.balance.sample_sizes`)."""
        return sample_sizes(self.treated, self.weights, self.units["discarded"].to_numpy(),
                            self.base_weights)

    def summary(self) -> Summary:
        """Sample sizes, balance, the options used and why treated units were dropped.

        Returns
        -------
        Summary
            Main table: :meth:`sample_sizes`; further table: :meth:`balance`; notes: the
            options of the match; warnings: treated units left without a match (by reason)
            and treated units that got fewer controls than ``ratio``. ``str()`` gives the text,
            ``_repr_html_`` the HTML; nothing is printed.
        """
        sizes = self.sample_sizes().rename_axis("Sample sizes")
        balance = ("Balance (ATT; SMD uses the treated SD before matching)", self.balance())
        notes = [f"{key}={value}" for key, value in self.info.items()
                 if value is not None and key != "warnings"]
        if self.base_weights is not None:
            notes.append("sampling weights multiply the matching weights")
        title = f"Matching: {self.method}" + (f" on {self.distance}" if self.distance else "")
        return Summary(title, sizes, tuple(notes), self._warnings(), (balance,))

    def _warnings(self) -> tuple[str, ...]:
        """Treated units without a match, treated units short of ``ratio``, recorded warnings."""
        reasons = self.units.loc[self.units["reason"] != "", "reason"].value_counts()
        found = [f"{n} treated: {reason} (left out without a match; the estimand is the ATT "
                 "of the matched treated units)" for reason, n in reasons.items()]
        ratio = self.info.get("ratio")
        if ratio is not None and ratio > 1 and not self.matches.empty:
            short = int((self.matches.groupby("treated_unit").size() < ratio).sum())
            if short:
                found.append(f"{short} treated units got fewer than {ratio} controls.")
        return (*found, *self.info.get("warnings", ()))

    def plot(self, ax: Axes | None = None, threshold: float = 0.1) -> Axes:
        """Love plot of absolute standardised mean differences before and after matching.

        Parameters
        ----------
        ax
            Axes to draw on; a new figure when omitted.
        threshold
            Reference lines at this absolute difference.

        Returns
        -------
        matplotlib.axes.Axes
            The Axes drawn on (the figure is not shown).
        """
        return love_plot(self.balance(), ax=ax, threshold=threshold)

    def to_frame(self) -> pd.DataFrame:
        """Tidy table of the kept units (positive weight), one row per unit.

        Returns
        -------
        pandas.DataFrame
            Columns :data:`UNIT_COLUMNS`: ``unit, treated`` (0/1), ``weight``, ``subclass``
            and ``distance``, like MatchIt's ``match.data`` without the covariates.
        """
        kept = self.units.loc[self.units["weight"] > 0, list(UNIT_COLUMNS)].copy()
        kept["treated"] = kept["treated"].astype(int)
        return kept.reset_index(drop=True)

    def unit_weights(self) -> pd.Series:
        """Weights of the kept units, indexed by unit id (what DiD estimators need)."""
        kept = self.units["weight"] > 0
        return pd.Series(self.units.loc[kept, "weight"].to_numpy(),
                         index=pd.Index(self.units.loc[kept, "unit"], name="unit"),
                         name="match_weight")

    def matched_data(self) -> pd.DataFrame:
        """Input rows of the kept units with ``weight``, ``subclass`` and ``distance`` added.

        Like MatchIt's ``match.data``; a new DataFrame (the input is not modified).
        """
        kept = (self.units["weight"] > 0).to_numpy()
        out = self.data.loc[kept].copy()
        for column in ("weight", "subclass", "distance"):
            out[column] = self.units.loc[kept, column].to_numpy()
        return out

    def apply(self, panel: Panel, *, name: str = "match_weight") -> Panel:
        """Restrict a panel to the kept units and weight it by the matching weights.

        Unit ids of the panel must be those matched on. Existing panel weights are multiplied
        by the matching weights; every DiD estimator then uses the product.
        """
        return panel.with_unit_weights(self.unit_weights(), name=name)

    def __repr__(self) -> str:
        return self.summary().as_text()
