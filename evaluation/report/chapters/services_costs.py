r"""Chapter 5 (services and costs): effects on services, plans and subsidy costs.

The cost-shift question (did the trials move labour-market-subsidy costs from the
municipalities to the state?) is answered by :func:`cost_shift`: the effects on the state's
and on the municipalities' costs of the same people, their sum and the municipal share of
the change, each with a confidence interval from the joint influence functions of the two
fits (:mod:`evaluation.estimators.joint`), overall and as a path over event time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from evaluation.estimators.joint import ShareOfTotal, share_of_total
from evaluation.protocol import ResultMixin, Summary, new_axes
from evaluation.report.chapters.common import EFFECT_COLUMNS, overall_row
from evaluation.report.study import (
    SERVICE_OUTCOMES,
    Study,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from evaluation.panel import Panel

#: The two payers' subsidy costs (EUR per person-month): the part, then the other part.
COST_PARTS = ("lms_cost_municipal", "lms_cost_state")
#: Quantity labels of :func:`cost_shift`'s tables, in table order.
COST_QUANTITIES = (*COST_PARTS, "total", "municipal share of the change, %")
#: Columns of :attr:`CostShift.table` (the report's ``cost_split`` table).
COST_SHIFT_COLUMNS = ["period", "quantity", *EFFECT_COLUMNS, "interval", "true_att", "command"]


def service_effects(study: Study, outcomes: Sequence[str] = SERVICE_OUTCOMES,
                    first_months: int = 12) -> pd.DataFrame:
    """Overall CS effects on services, plans and subsidy costs, all months and the first ones.

    Returns
    -------
    pandas.DataFrame
        ``outcome, period, estimate, std_error, ci_lower, ci_upper, p_value, true_att,
        command`` (the command reproduces the all-months row).
    """
    rows = []
    for outcome in outcomes:
        spec = study.jobseeker_spec(outcome)
        fit = study.headline_estimator().fit(study.jobseeker_panel(outcome))
        periods = {"all trial months": (np.inf, spec.command(study.data_dir)),
                   f"first {first_months} months": (first_months - 1, "")}
        for period, (max_e, command) in periods.items():
            row = overall_row(fit.aggregate("simple", max_e=max_e).to_frame())
            truth = study.true_event_mean("jobseekers", outcome, max_e)
            rows.append({"outcome": outcome, "period": period,
                         **{c: float(row[c]) for c in EFFECT_COLUMNS},
                         "true_att": np.nan if truth is None else truth, "command": command})
    return pd.DataFrame(rows)


@dataclass
class CostShift(ResultMixin):
    """Who pays for the subsidy-cost change: the result of :func:`cost_shift`.

    Attributes
    ----------
    table
        By period (``all trial months``, ``first N months``) and quantity
        (:data:`COST_QUANTITIES`): columns :data:`COST_SHIFT_COLUMNS`. EUR rows have normal
        intervals, the share row its delta-method standard error and Fieller set
        (``ci_lower, ci_upper`` are ``-inf, inf`` when it is unbounded; ``interval`` says
        which). ``true_att`` holds the simulator's truth on synthetic data.
    path
        The same quantities by event time (:class:`~evaluation.estimators.joint.ShareOfTotal`
        of the event-time aggregations).
    path_table
        ``path`` as a table (``event_time, quantity, ...`` as ``table``, without command).
    """

    table: pd.DataFrame
    path: ShareOfTotal
    path_table: pd.DataFrame

    def to_frame(self) -> pd.DataFrame:
        """Return :attr:`table`."""
        return self.table

    def summary(self) -> Summary:
        """Return the table by period, the path by event time and how to read them."""
        shown = self.table.drop(columns="command").set_index(["period", "quantity"])
        path = self.path_table.set_index(["event_time", "quantity"])
        notes = self.path.summary().notes
        return Summary("Subsidy costs: state, municipalities and the municipal share", shown,
                       notes, tables=(("by event time", path),))

    def plot(self, ax: Axes | None = None, *, kind: str = "auto") -> Axes:
        """Draw the path over event time (the share, or the EUR effects when it is unbounded).

        Parameters
        ----------
        ax
            Axes to draw on (a new figure when None).
        kind
            As :meth:`~evaluation.estimators.joint.ShareOfTotal.plot`: ``"auto"`` draws the
            share when every event time's Fieller set is bounded, else the effects. True
            values (synthetic data) are drawn as dashed lines.

        Returns
        -------
        matplotlib.axes.Axes
        """
        ax = new_axes(ax, (8, 3.5))
        if kind == "auto":
            kind = "share" if self.path.bounded[~self._overall].all() else "effects"
        self.path.plot(ax, kind=kind)  # type: ignore[arg-type]
        names = [COST_QUANTITIES[3]] if kind == "share" else list(COST_QUANTITIES[:3])
        for name in names:
            truth = self.path_table[self.path_table["quantity"] == name]
            if truth["true_att"].notna().any():
                colour = "C0" if kind == "share" else f"C{self.path.names.index(name)}"
                ax.plot(truth["event_time"].astype(float), truth["true_att"], "--",
                        color=colour, linewidth=1, label=f"true {name}")
        ax.set_ylabel("% of the total change" if kind == "share" else "EUR per person-month")
        ax.legend(fontsize=7, frameon=False, ncol=2)
        return ax

    def describe(self) -> str:
        """Say, period by period, which way costs moved and what the share is, from the CIs.

        Returns
        -------
        str
            Markdown, one bullet per period: the direction of the shift only where the
            confidence intervals support it, and the municipal share only where its
            Fieller set is bounded.
        """
        level = f"{100 * (1 - self.path.alpha):g} %"

        def effect(row: pd.Series) -> str:
            return (f"**{row['estimate']:+.2f} EUR** ({level} CI {row['ci_lower']:+.2f} to "
                    f"{row['ci_upper']:+.2f})")

        bullets = []
        for period, rows in self.table.groupby("period", sort=False):
            rows = rows.set_index("quantity")
            municipal, state, total, share = (rows.loc[q] for q in COST_QUANTITIES)
            payers = (f"the municipalities' costs changed by {effect(municipal)} and the "
                      f"state's by {effect(state)} per person and month")
            if municipal["ci_upper"] < 0 < state["ci_lower"]:
                text = f"costs moved from the municipalities to the state: {payers}"
            elif state["ci_upper"] < 0 < municipal["ci_lower"]:
                text = f"costs moved from the state to the municipalities: {payers}"
            else:
                up = {k: r["ci_lower"] > 0 for k, r in (("m", municipal), ("s", state))}
                down = {k: r["ci_upper"] < 0 for k, r in (("m", municipal), ("s", state))}
                significant = [name for key, name in (("m", "the municipalities'"),
                                                      ("s", "the state's"))
                               if up[key] or down[key]]
                if all(up.values()) or all(down.values()):
                    verdict = f"both payers' costs {'rose' if all(up.values()) else 'fell'}"
                elif significant:
                    verdict = (f"only {significant[0]} change is statistically significant, "
                               "so the intervals do not establish a shift between the payers")
                else:
                    verdict = "neither payer's change is statistically significant"
                text = f"{verdict}: {payers}"
            if np.isfinite(share["ci_lower"]) and np.isfinite(share["ci_upper"]):
                against = (" (negative: the municipal costs moved against the total)"
                           if share["ci_upper"] < 0 else "")
                text += (f". The total changed by {effect(total)}; the municipal share of "
                         f"that change is {share['estimate']:+.0f} % ({level} Fieller CI "
                         f"{share['ci_lower']:+.0f} % to {share['ci_upper']:+.0f} %){against}")
            else:
                text += (f". The total change, {effect(total)}, is not significantly "
                         "different from zero, so the data do not pin down the municipal "
                         f"share of it (its {level} confidence set is unbounded); the two "
                         "effects in euros are the answer")
            bullets.append(f"* **{str(period).capitalize()}**: {text}.")
        return "\n".join(bullets)

    @property
    def _overall(self) -> np.ndarray:
        return np.array([e is None for e in self.path.event_time], dtype=bool)


def cost_shift(study: Study, first_months: int = 12, path_max_e: float = 36) -> CostShift:
    r"""State and municipal subsidy-cost effects, their sum and the municipal share.

    One Callaway-Sant'Anna fit per payer on the target-group panel (never-treated
    comparison, doubly robust, clustered by municipality, as :func:`service_effects`); the
    two fits share their units, so their influence functions give the joint covariance.

    Parameters
    ----------
    study
        The study (its target-group panel and, for synthetic data, the truth).
    first_months
        Length of the early period reported next to all trial months.
    path_max_e
        Last event time (months since the start) of the path.

    Returns
    -------
    CostShift
        ``table`` (the report's ``cost_split`` table) by period and quantity, ``path`` and
        ``path_table`` by event time, ``plot()`` of the path.

    Notes
    -----
    With :math:`\hat m` and :math:`\hat s` the effects on the municipal and state costs
    (EUR per person-month) and :math:`\hat V` their joint covariance
    (:func:`~evaluation.estimators.joint.joint_covariance`), the total is
    :math:`\hat m + \hat s` with variance :math:`v_{mm} + 2v_{ms} + v_{ss}` and the
    municipal share of the change is :math:`\hat\theta = \hat m / (\hat m + \hat s)`
    (in %), with the delta-method standard error and the Fieller confidence set of
    :func:`~evaluation.estimators.joint.share_of_total`. The Fieller set is bounded exactly
    when the total change differs significantly from zero; otherwise the data do not pin
    the share down, and the two EUR effects are the answer. The true share (synthetic data)
    is the ratio of the true mean effects.
    """
    panels = _cost_panels(study)
    fits = {o: study.headline_estimator().fit(panel) for o, panel in panels.items()}
    names = {"names": COST_PARTS, "total_name": COST_QUANTITIES[2],
             "share_name": COST_QUANTITIES[3], "scale": 100.0}
    parts = []
    for period, max_e in {"all trial months": np.inf,
                          f"first {first_months} months": first_months - 1}.items():
        share = share_of_total(*(fits[o].aggregate("simple", max_e=max_e) for o in COST_PARTS),
                               **names)
        frame = share.to_frame().drop(columns=["term", "event_time"])
        truth = {o: study.true_event_mean("jobseekers", o, max_e) for o in COST_PARTS}
        frame["true_att"] = frame["quantity"].map(_true_values(truth))
        frame["command"] = [study.jobseeker_spec(q).command(study.data_dir)  # as the CLI
                            if np.isinf(max_e) and q in COST_PARTS else ""
                            for q in frame["quantity"]]
        parts.append(frame.assign(period=period))
    table = pd.concat(parts, ignore_index=True)[COST_SHIFT_COLUMNS]
    path = share_of_total(*(fits[o].aggregate("event", min_e=0, max_e=path_max_e)
                            for o in COST_PARTS), **names)
    path_table = path.to_frame()
    path_table = path_table[path_table["event_time"].notna()].drop(columns="term")
    path_table["event_time"] = path_table["event_time"].astype(int)  # months since the start
    truth_paths = {o: _true_event_path(study, o, path_max_e) for o in COST_PARTS}
    path_table["true_att"] = [
        _true_values({o: truth_paths[o].get(e) for o in COST_PARTS}).get(q, np.nan)
        for e, q in zip(path_table["event_time"], path_table["quantity"], strict=True)]
    return CostShift(table, path, path_table.reset_index(drop=True))


def _cost_panels(study: Study) -> dict[str, Panel]:
    """Target-group panels of both cost outcomes on the same person-months."""
    complete = study.jobseekers[list(COST_PARTS)].notna().all(axis=1)
    rows = None if complete.all() else complete
    return {o: study.jobseeker_panel(o, rows=rows) for o in COST_PARTS}


def _true_values(truth: dict[str, float | None]) -> dict[str, float]:
    """Return the true effects, their total and the true municipal share (%)."""
    municipal, state = (truth[o] for o in COST_PARTS)
    if municipal is None or state is None or pd.isna(municipal) or pd.isna(state):
        return {}
    total = municipal + state
    return {"lms_cost_municipal": municipal, "lms_cost_state": state, "total": total,
            COST_QUANTITIES[3]: 100 * municipal / total if total != 0 else np.nan}


def _true_event_path(study: Study, outcome: str, max_e: float) -> pd.Series:
    """Return the true event-time ATTs from 0 to ``max_e`` (empty for real data)."""
    path = study.truth_file("jobseekers")
    if not study.synthetic or not path.is_file():
        return pd.Series(dtype=float)
    truth = pd.read_parquet(path)
    rows = truth[(truth["design"] == f"wave{study.wave}") & (truth["kind"] == "event")
                 & (truth["population"] == "treated") & (truth["outcome"] == outcome)
                 & (truth["event_time"] >= 0) & (truth["event_time"] <= max_e)]
    return rows.set_index(rows["event_time"].astype(int))["att"].astype(float)
