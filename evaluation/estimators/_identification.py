"""Why an estimate table is empty or NaN, said in words (one place for the diagnosis).

:func:`check_estimates` is what ``evaluation estimate`` runs on the table of
:func:`~evaluation.estimators.registry.estimate_table` before writing it. A table with no
row, a row whose estimate or standard error is NaN, or an inverted interval is not
written silently: the command fails with :class:`~evaluation.errors.IdentificationError`
naming what made the estimand unidentifiable (:func:`diagnose`), or, when the user allows
partial tables, the NaN rows get the reason in a ``note`` column.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from evaluation.errors import IdentificationError, IdentificationWarning
from evaluation.messages import fmt, fmt_list, plural

#: Columns that must hold numbers in every row of a written table.
REQUIRED_VALUES = ("estimate", "std_error", "ci_lower", "ci_upper")
#: Columns that may be NaN in some rows but not in all of them.
SOMETIMES_NAN = ("p_value",)
#: Inference options that resample or leave out units, so they need several per group.
_RESAMPLING = ("bootstrap", "cr3", "wild", "randomization")


def diagnose(data: pd.DataFrame, *, unit: str, time: str, cohort: str, outcome: str,
             never_treated: Any, covariates: Sequence[str] = (), anticipation: int = 0,
             se: str | None = None, cluster: str | None = None) -> dict[Any, list[str]]:
    r"""Return the reasons the panel cannot identify (some) effects, by cohort.

    Parameters
    ----------
    data, unit, time, cohort, outcome, never_treated, covariates, cluster
        The panel as :func:`~evaluation.estimators.registry.estimate_table` received it.
    anticipation
        Periods of anticipation :math:`K`.
    se
        Inference option (resampling ones need several units per group).

    Returns
    -------
    dict
        Reasons under the cohort label they concern, or under None when they concern every
        estimate; empty when nothing is found.

    Notes
    -----
    A cohort :math:`g` (first treated period, position :math:`p_g` on the time grid
    ``0..T-1``) has a pre-treatment comparison only if :math:`p_g - K \ge 1`, i.e. at least
    one period before the last untreated one :math:`g - K - 1`. Covariates are collinear
    when the rank of :math:`[1, X_1, \dots, X_j]` does not grow with :math:`X_j`.
    """
    from evaluation.panel import Panel

    panel = Panel(data, unit=unit, time=time, outcome=outcome, cohort=cohort,
                  never_treated=never_treated, covariates=list(covariates), cluster=cluster)
    reasons: dict[Any, list[str]] = {}

    def add(key: Any, text: str) -> None:
        reasons.setdefault(key, []).append(text)

    if panel.n_periods < 2:
        add(None, f"the panel has a single period ({fmt(panel.period_label(0))}); effects "
                  "need at least one period before and one after treatment starts")
    if len(panel.cohorts) == 0:
        add(None, f"no unit is treated: every value of {cohort!r} is the never-treated value "
                  f"{fmt(never_treated)} (check --cohort and --never-treated)")
    for position in panel.cohorts:
        label = panel.period_label(int(position))
        if position - anticipation < 1:
            if position == 0:
                why = "is treated in the first period, so it has no pre-treatment period"
            else:
                why = (f"has only {plural(int(position), 'period')} before treatment, fewer "
                       f"than --anticipation {anticipation} + 1")
            add(label, f"cohort {fmt(label)} {why}")
    if panel.cohorts.size and all(p - anticipation < 1 for p in panel.cohorts):
        add(None, "no cohort has a pre-treatment period"
                  + (" after the anticipation periods" if anticipation else
                     " (every cohort is treated in the first period)"))
    collinear = collinear_covariates(data, covariates)
    if collinear:
        add(None, f"covariates {fmt_list(collinear)} are constant or collinear with the "
                  "others; drop them from --covariates")
    treated = ~np.isnan(panel.unit_cohort)
    comparisons = int((~treated).sum())
    if se in _RESAMPLING or comparisons < 2 or treated.sum() < 2:
        for position in panel.cohorts:
            size = int((panel.unit_cohort == position).sum())
            if size < 2 or comparisons < 2:
                label = panel.period_label(int(position))
                add(label, f"cohort {fmt(label)} has {plural(size, 'treated unit')} and the "
                           f"panel {plural(comparisons, 'never-treated unit')}: too few "
                           "units to estimate a standard error (at least 2 of each)")
    return reasons


def check_periods(data: pd.DataFrame, time: str) -> None:
    """Raise :class:`IdentificationError` if the data hold fewer than two periods.

    Checked before the panel is built, whose cohort checks would otherwise blame the
    cohorts (every cohort lies outside a one-period grid).
    """
    if time not in data.columns:
        return  # the panel names the missing column
    periods = data[time].dropna().unique()
    if len(periods) < 2:
        seen = fmt(periods[0]) if len(periods) else "none"
        raise IdentificationError(
            f"the data hold a single period ({time} = {seen}); effects need at least one "
            "period before and one after treatment starts. Check --data and --where.")


def collinear_covariates(data: pd.DataFrame, covariates: Sequence[str]) -> list[str]:
    """Return the covariates that are constant or a linear combination of the ones before them."""
    found: list[str] = []
    columns = [np.ones(len(data))]
    rank = 1
    for name in covariates:
        values = pd.to_numeric(data[name], errors="coerce").to_numpy(dtype=float)
        values = np.where(np.isfinite(values), values, 0.0)
        trial = np.column_stack([*columns, values])
        scale = np.abs(trial).max(axis=0)
        new_rank = int(np.linalg.matrix_rank(trial / np.where(scale > 0, scale, 1.0)))
        if new_rank > rank:
            columns.append(values)
            rank = new_rank
        else:
            found.append(name)
    return found


def check_estimates(table: pd.DataFrame, data: pd.DataFrame, *, allow_partial: bool = False,
                    hints: Sequence[str] = (), **roles: Any) -> pd.DataFrame:
    r"""Return ``table`` if every estimate is identified; otherwise explain and fail.

    Parameters
    ----------
    table
        Rows of :func:`~evaluation.estimators.registry.estimate_table`.
    data
        The data the table was estimated from.
    allow_partial
        Return a table with NaN rows instead of failing; a ``note`` column then gives the
        reason of each NaN row (empty for identified rows).
    hints
        Warnings the estimator issued; quoted (at most three) when :func:`diagnose` finds
        no reason of its own.
    **roles
        ``unit``, ``time``, ``cohort``, ``outcome``, ``never_treated``, ``covariates``,
        ``anticipation``, ``se``, ``cluster`` as passed to :func:`diagnose`.

    Raises
    ------
    IdentificationError
        For a table without rows (always), with NaN estimates or standard errors (unless
        ``allow_partial``), or with an interval whose lower end exceeds the upper end.

    Notes
    -----
    A row is unidentified when :math:`\hat\theta`, :math:`\widehat{se}` or an interval end
    is NaN (every row when the whole ``p_value`` column is NaN); an interval is inverted
    when :math:`\ell > u` (for instance a significance level outside ``(0, 1)``).
    """
    values = table.loc[:, list(REQUIRED_VALUES)].apply(pd.to_numeric, errors="coerce")
    missing = values.isna().any(axis=1).to_numpy()
    for column in SOMETIMES_NAN:
        if column in table and len(table) and table[column].isna().all():
            missing = missing | True
    inverted = (pd.to_numeric(table["ci_lower"], errors="coerce")
                > pd.to_numeric(table["ci_upper"], errors="coerce")).to_numpy()
    if len(table) and not missing.any() and not inverted.any():
        return table.assign(note="") if allow_partial else table
    if inverted.any():
        raise IdentificationError(
            f"{plural(int(inverted.sum()), 'confidence interval')} of the estimates "
            "have a lower end above the upper end; check --alpha (between 0 and 1) and "
            "report this if it persists.")
    reasons = _reasons(data, roles)
    if not reasons and hints:
        reasons = {None: [" ".join(h.split()).rstrip(".") for h in dict.fromkeys(hints)][:3]}
    general = "; ".join(reasons.get(None, [])) or "; ".join(
        text for key, texts in reasons.items() if key is not None for text in texts)
    if not len(table):
        raise IdentificationError(
            f"no estimate can be computed: {general or 'the estimator returned no rows'}; "
            "fix the data or the options (see `evaluation estimate --help`).")
    if not allow_partial:
        count = int(missing.sum())
        what = ("every estimate is" if missing.all() else
                f"{count:,} of the {len(table):,} estimates {'is' if count == 1 else 'are'}")
        raise IdentificationError(
            f"{what} not identified (NaN estimate, standard error or interval): "
            f"{general or 'the estimator could not compute them'}; fix the data or the "
            "options, or pass --allow-partial to write the table with a note on each NaN row.")
    notes = [_note(row, reasons) if bad else "" for (_, row), bad in
             zip(table.iterrows(), missing, strict=True)]
    warnings.warn(f"{plural(int(missing.sum()), 'estimate')} not identified; written with "
                  "NaN and the reason in the note column (--allow-partial).",
                  IdentificationWarning, stacklevel=2)
    return table.assign(note=notes)


def _reasons(data: pd.DataFrame, roles: dict[str, Any]) -> dict[Any, list[str]]:
    """:func:`diagnose`, or no reason when the panel itself cannot be rebuilt.

    Without a cohort column (a status column only, e.g. for ``dcdh``) the cohort-based
    diagnosis does not apply and the estimator's own warnings give the reasons.
    """
    if roles.get("cohort") is None:
        return {}
    try:
        return diagnose(data, **roles)
    except Exception:  # the diagnosis must not hide the original problem
        return {}


def _note(row: pd.Series, reasons: dict[Any, list[str]]) -> str:
    """Return the reasons of the row's cohort, else the general ones, else a generic note."""
    group = row.get("group")
    mine = [text for key, texts in reasons.items() if key is not None and not pd.isna(group)
            and _same(key, group) for text in texts]
    chosen = mine or reasons.get(None) or ["not identified by the data (NaN estimate, "
                                           "standard error or interval)"]
    return "; ".join(chosen)


def _same(label: Any, group: Any) -> bool:
    try:
        return float(label) == float(group)
    except (TypeError, ValueError):
        return str(label) == str(group)
