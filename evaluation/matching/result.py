"""The result of matching or weighting: kept units, weights, balance and the hand-off to DiD."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from evaluation.matching._covariates import Covariates
from evaluation.matching.balance import balance_table, love_plot, sample_sizes

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from evaluation.panel import Panel

#: Columns of :meth:`MatchResult.to_frame` (the CLI's output file).
UNIT_COLUMNS = ("unit", "treated", "weight", "subclass", "distance")


@dataclass
class MatchResult:
    """Matched or reweighted comparison group.

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
        The options used, for summaries and reports.
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

    def summary(self) -> MatchSummary:
        """Sample sizes, balance and why treated units were dropped."""
        reasons = self.units.loc[self.units["reason"] != "", "reason"].value_counts()
        return MatchSummary(self.info, self.sample_sizes(), self.balance(), reasons)

    def plot(self, ax: Axes | None = None, threshold: float = 0.1) -> Axes:
        """Love plot of absolute standardised mean differences; returns the Axes."""
        return love_plot(self.balance(), ax=ax, threshold=threshold)

    def to_frame(self) -> pd.DataFrame:
        """Kept units (positive weight): ``unit, treated, weight, subclass, distance``."""
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

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()

    def __repr__(self) -> str:
        return str(self.summary())


@dataclass
class MatchSummary:
    """What :meth:`MatchResult.summary` returns: printable, with HTML for notebooks."""

    info: dict[str, Any]
    sample_sizes: pd.DataFrame
    balance: pd.DataFrame
    dropped: pd.Series

    def _header(self) -> str:
        options = ", ".join(f"{k}={v}" for k, v in self.info.items() if v is not None)
        return f"Matching: {options}"

    def _dropped_text(self) -> str:
        if self.dropped.empty:
            return ""
        lines = [f"  {n} treated: {reason}" for reason, n in self.dropped.items()]
        return "\nTreated units without a match:\n" + "\n".join(lines)

    def __str__(self) -> str:
        with pd.option_context("display.width", 140, "display.max_columns", 20):
            return (f"{self._header()}\n\nSample sizes:\n{self.sample_sizes.round(2)}\n\n"
                    f"Balance (ATT; SMD uses the treated SD before matching):\n"
                    f"{self.balance.round(4)}{self._dropped_text()}")

    __repr__ = __str__

    def _repr_html_(self) -> str:
        dropped = self._dropped_text().replace("\n", "<br>")
        return (f"<p><b>{self._header()}</b></p><p>Sample sizes</p>"
                f"{self.sample_sizes.round(2).to_html()}<p>Balance</p>"
                f"{self.balance.round(4).to_html()}<p>{dropped}</p>")
