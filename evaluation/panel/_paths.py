r"""Treatment paths of a panel: absorbing or switching, and the first-spell window.

The Finnish trials switched off when a wave ended and many municipalities were treated in
more than one wave, so a status column may switch off and on again. The functions here
classify every unit's path of statuses (:func:`path_table`, :func:`unit_paths`), refuse
switching panels for estimators that assume absorbing treatment
(:func:`require_absorbing`) and cut a panel to each unit's first treatment spell
(:func:`first_spell`). The bodies of :meth:`Panel.treatment_paths`,
:attr:`Panel.is_absorbing` and :meth:`Panel.restrict_to_first_spell` live here.

Spells are counted on the rows a unit is observed in: a period missing in the middle of a
spell does not end it. Every computation is a handful of vectorised passes over the sorted
rows (no grouping), so a panel of a million units stays fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from evaluation.errors import NonAbsorbingTreatmentError, PanelError
from evaluation.messages import N_EXAMPLES, fmt, fmt_list, plural, verb
from evaluation.panel._arrays import runs

if TYPE_CHECKING:
    from evaluation.panel.panel import Panel

#: Path types of :meth:`Panel.treatment_paths`, in table order, with their descriptions.
PATH_TYPES: dict[str, str] = {
    "never treated": "status 0 in every observed period",
    "absorbing": "switches on once and stays on: 0..0 1..1",
    "always treated": "status 1 in every observed period",
    "switches off": "one spell that ends: 0..0 1..1 0..0 (or 1..1 0..0)",
    "switches on again": "several spells: on, off and on again (0..0 1..1 0..0 1..1 ...)",
}
_NEVER, _ABSORBING, _ALWAYS, _OFF, _AGAIN = range(len(PATH_TYPES))

#: Registry name of the estimator that allows treatment to switch off and on again.
SWITCHING_ESTIMATOR = "dcdh"


@dataclass(frozen=True, eq=False)
class UnitPaths:
    """Each unit's treatment path, summarised over its observed rows.

    Attributes
    ----------
    spells
        ``(n_units,)`` int64 number of spells (maximal runs of status 1).
    switch_offs
        ``(n_units,)`` int64 number of switches from 1 to 0 between observed periods.
    first_on
        ``(n_units,)`` bool status in the unit's first observed period.
    first_off_row
        ``(n_units,)`` int64 row (of the panel's sorted rows) of the unit's first period after
        its first spell ended; ``n_obs`` if the first spell never ends (or never starts).
    last_on_row
        ``(n_units,)`` int64 row of the last period of the unit's first spell; -1 if the
        unit is never treated.
    """

    spells: np.ndarray
    switch_offs: np.ndarray
    first_on: np.ndarray
    first_off_row: np.ndarray
    last_on_row: np.ndarray

    @property
    def is_absorbing(self) -> bool:
        """True if no unit's status switches from 1 back to 0."""
        return not bool(self.switch_offs.any())

    def path_codes(self) -> np.ndarray:
        """Return each unit's path type as an index into :data:`PATH_TYPES` (int64)."""
        off = self.switch_offs > 0
        return np.select(
            [self.spells == 0, self.spells >= 2, off, self.first_on],
            [_NEVER, _AGAIN, _OFF, _ALWAYS],
            default=_ABSORBING,
        ).astype(np.int64)


def row_status(panel: Panel) -> np.ndarray:
    r"""Return the treatment status of each row of ``panel.data`` as bool.

    The status column if the panel has one, else absorbing :math:`1\{t \ge G_i\}`.
    """
    if panel._status is not None:
        return panel._status
    return panel.time_codes >= panel.unit_cohort[panel.unit_codes]  # NaN cohort -> False


def unit_paths(panel: Panel) -> UnitPaths:
    r"""Summarise every unit's treatment path (computed once per panel, then cached).

    Notes
    -----
    With rows sorted by (unit, time) and :math:`D_r` the status of row :math:`r`, let
    :math:`D^-_r` be the status of the unit's previous observed row (0 for its first row).
    A spell starts where :math:`D_r = 1, D^-_r = 0` and ends before a row with
    :math:`D_r = 0, D^-_r = 1`; spells and switches off are counted per unit with one
    ``bincount`` each.
    """
    cached = panel.__dict__.get("_unit_paths")
    if cached is not None:
        return cached
    status = row_status(panel)
    codes, n_units, n_obs = panel.unit_codes, panel.n_units, panel.n_obs
    previous = np.empty(n_obs, dtype=bool)
    previous[:1] = False
    previous[1:] = status[:-1]
    previous[panel._starts] = False
    switch_on = status & ~previous
    switch_off = previous & ~status
    spells = np.bincount(codes[switch_on], minlength=n_units).astype(np.int64)
    offs = np.bincount(codes[switch_off], minlength=n_units).astype(np.int64)
    first_off_row = np.full(n_units, n_obs, dtype=np.int64)
    off_rows = np.flatnonzero(switch_off)
    if off_rows.size:
        off_units = codes[off_rows]
        first = np.concatenate(([True], off_units[1:] != off_units[:-1]))
        first_off_row[off_units[first]] = off_rows[first]
    # the first spell's last row: the row before its end, or the unit's last row
    unit_end = np.append(panel._starts[1:], n_obs) if n_units else np.zeros(0, np.int64)
    last_on_row = np.where(first_off_row < n_obs, first_off_row, unit_end) - 1
    last_on_row = np.where(spells > 0, last_on_row, -1)
    paths = UnitPaths(spells, offs, status[panel._starts], first_off_row, last_on_row)
    panel.__dict__["_unit_paths"] = paths
    return paths


def path_table(panel: Panel) -> pd.DataFrame:
    """Return the number of units of each treatment-path type (body of ``treatment_paths``)."""
    code = unit_paths(panel).path_codes()
    counts = np.bincount(code, minlength=len(PATH_TYPES))
    examples = []
    for k, count in enumerate(counts):
        shown = np.flatnonzero(code == k)[:N_EXAMPLES] if count else np.zeros(0, np.int64)
        examples.append(fmt_list(list(panel.units[shown]), total=int(count)))
    return pd.DataFrame({
        "path": list(PATH_TYPES),
        "units": counts.astype(np.int64),
        "share": counts / max(panel.n_units, 1),
        "description": list(PATH_TYPES.values()),
        "examples": examples,
    })


def require_absorbing(panel: Panel, estimator: str, label: str, *,
                      balanced: bool = False) -> None:
    """Raise :class:`NonAbsorbingTreatmentError` unless treatment in ``panel`` is absorbing.

    Parameters
    ----------
    panel
        The panel an estimator is about to fit.
    estimator, label
        Registry name and readable name of the estimator (for the message).
    balanced
        The estimator needs every unit observed in every period (Callaway-Sant'Anna): a
        first-spell window that cut units short before the window's last period is refused
        too (those units would be dropped), naming the calendar end that keeps them.

    Raises
    ------
    NonAbsorbingTreatmentError
        If some unit's status switches off, or ``balanced`` and the panel's window cut
        units short.
    """
    if panel.status is not None:
        paths = unit_paths(panel)
        if not paths.is_absorbing:
            raise NonAbsorbingTreatmentError(_switching_message(panel, paths, estimator, label))
    cut = panel.__dict__.get("_window_cut_units")
    if balanced and cut is not None and len(cut):
        end = panel.__dict__["_window_balanced_end"]
        raise NonAbsorbingTreatmentError(
            f"{label} ({estimator}) needs every unit observed in every period, but the "
            f"first-spell window cut {plural(len(cut), 'unit')} short (e.g. "
            f"{fmt_list(list(cut[:N_EXAMPLES]), total=len(cut))}): their periods after "
            "their first spell are dropped, so the estimator would drop these units. End the "
            f"window in calendar time instead: restrict_to_first_spell(end={fmt(end)}) on "
            "the full panel (the earliest end of a first spell) keeps every unit up to then; "
            "or use 'bjs' or 'did2s', which use the window's unit-periods as they are."
        )


def _switching_message(panel: Panel, paths: UnitPaths, estimator: str, label: str) -> str:
    """Name the units that switch off / on again, the switching estimator and the window."""
    off = np.flatnonzero(paths.switch_offs > 0)
    again = np.flatnonzero(paths.spells >= 2)
    text = (
        f"{label} ({estimator}) assumes absorbing treatment (once treated, always treated), "
        f"but column {panel.status!r} (status) switches off in {plural(off.size, 'unit')} "
        f"(e.g. {fmt_list(list(panel.units[off[:N_EXAMPLES]]), total=off.size)})"
    )
    if again.size:
        text += (
            f", {again.size:,} of which {verb(again.size, 'switches', 'switch')} on again "
            f"(e.g. {fmt_list(list(panel.units[again[:N_EXAMPLES]]), total=again.size)})"
        )
    return text + (
        ". Their untreated periods after a spell would serve as comparisons or be averaged "
        f"into the effect. Estimate with '{SWITCHING_ESTIMATOR}' (the de Chaisemartin-"
        "D'Haultfoeuille estimator), which allows treatment to switch off and on again, or "
        "analyse a stated window: panel.restrict_to_first_spell() drops each unit's periods "
        "after its first treatment spell ends (effects during the first spell only). "
        "panel.treatment_paths() counts the units of each path."
    )


def first_spell(panel: Panel, end: Any = None) -> Panel:
    r"""Return the panel cut to each unit's first treatment spell (an absorbing window).

    Body of :meth:`Panel.restrict_to_first_spell`.

    Parameters
    ----------
    panel
        The full panel (its status may switch off and on again).
    end
        Optional last period of the window (a label such as ``2015`` or ``"2015M12"``):
        later periods are dropped for every unit, and units first treated after it count
        as never treated. Ending the window at the earliest end of a first spell keeps
        every unit observed up to then, which the Callaway-Sant'Anna estimator needs.

    Returns
    -------
    Panel
        A new panel (the same roles) without each unit's observations after its first
        spell ends. Its ``window`` says what was dropped, e.g. ``"first spell: observations
        after a unit's first treatment spell ends are dropped (123 unit-periods of 41
        units)"``; estimators copy it into ``result.info["window"]``.

    Raises
    ------
    PanelError
        If no observation is left.
    CohortOutOfRangeError, TimeFormatError
        If ``end`` is not a period of the panel's grid.

    Notes
    -----
    With :math:`G_i` the first treated period and :math:`E_i` the last period of unit
    :math:`i`'s first spell, the window keeps the observations with :math:`t \le E_i`
    (and :math:`t \le` ``end``), where treatment is absorbing:
    :math:`D_{it} = 1\{t \ge G_i\}`. The estimand is the effect *during the first spell*:
    :math:`E[Y_{it}(1) - Y_{it}(0) \mid G_i = g, t \le E_i]`, not the effect that persists
    after a spell nor that of later spells. Never-treated units remain comparisons
    throughout and not-yet-treated units until they switch on, so periods after a spell
    (where effects may carry over) never serve as comparisons and are never averaged into
    the effect.
    """
    from evaluation.panel.panel import Panel

    paths = unit_paths(panel)
    rows = np.arange(panel.n_obs)
    after_spell = rows >= paths.first_off_row[panel.unit_codes]
    keep = ~after_spell
    in_window = None
    if end is not None:
        end_position = panel.period_position(end)
        in_window = panel.time_codes <= end_position
        keep &= in_window
        after_spell &= in_window
    if not keep.any():
        raise PanelError("the first-spell window keeps no observation; choose a later end.")
    cut_units = runs(panel.unit_codes[after_spell])
    frame = panel.data.take(np.flatnonzero(keep))
    if end is not None and panel.cohort is not None:
        later = panel.unit_cohort[panel.unit_codes[keep]] > end_position
        if later.any():  # first treated after the window: never treated within it
            frame[panel.cohort] = frame[panel.cohort].where(~later, panel.never_treated)
    restricted = Panel(frame, unit=panel.unit, time=panel.time, outcome=list(panel.outcomes),
                       cohort=panel.cohort, status=panel.status,
                       covariates=list(panel.covariates), weights=panel.weights,
                       cluster=panel.cluster, never_treated=panel.never_treated)
    n_cut = int(after_spell.sum())
    text = (f"first spell: observations after a unit's first treatment spell ends are dropped "
            f"({plural(n_cut, 'unit-period')} of {plural(cut_units.size, 'unit')})")
    if in_window is not None:
        n_late = int((~in_window).sum())
        text += (f"; the window ends in {fmt(panel.period_label(end_position))} "
                 f"({plural(n_late, 'later unit-period')} dropped)")
    if panel.window is not None:
        text = f"{panel.window}; {text}"
    restricted.window = text
    restricted.__dict__["_window_cut_units"] = panel.units[cut_units]
    if cut_units.size:
        last_on = paths.last_on_row[cut_units]
        earliest = int(panel.time_codes[last_on].min())
        restricted.__dict__["_window_balanced_end"] = panel.period_label(earliest)
    return restricted


def carry_window(source: Panel, target: Panel) -> Panel:
    """Give ``target`` (a panel derived from ``source``'s rows) ``source``'s window.

    For derived panels such as :meth:`Panel.with_unit_weights`, so that estimators still
    record the window and Callaway-Sant'Anna still refuses units the window cut short.
    """
    target.window = source.window
    for key in ("_window_cut_units", "_window_balanced_end"):
        if key in source.__dict__:
            target.__dict__[key] = source.__dict__[key]
    return target
