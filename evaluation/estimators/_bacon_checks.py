r"""Checks and group-level algebra shared by the two TWFE diagnostics.

:func:`~evaluation.estimators.bacon.bacon_decomposition` and
:func:`~evaluation.estimators.twfe_weights.twfe_weights` both work on a balanced panel
whose units fall into a few groups with the same treatment path (the adoption cohorts
under staggered adoption). Everything they need is a function of the weighted group shares,
the groups' treatment paths and the groups' period means of the outcome, computed here once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evaluation.errors import NonAbsorbingTreatmentError, PanelError
from evaluation.messages import fmt, plural
from evaluation.panel import Panel


def require_diagnosable(panel: Panel, what: str) -> None:
    """Raise :class:`PanelError` unless ``panel`` is balanced and has a treatment.

    ``what`` names the diagnostic in the messages.
    """
    if panel.cohort is None and panel.status is None:
        raise PanelError(f"{what} needs a cohort or status column; pass cohort= or status= "
                         "when building the Panel.")
    if not panel.is_balanced:
        observed = np.bincount(panel.unit_codes, minlength=panel.n_units)
        short = np.flatnonzero(observed < panel.n_periods)
        raise PanelError(
            f"{what} needs a balanced panel, but {plural(short.size, 'unit')} of column "
            f"{panel.unit!r} {'is' if short.size == 1 else 'are'} not observed in all "
            f"{panel.n_periods} periods (e.g. unit {fmt(panel.units[short[0]])}, "
            f"{int(observed[short[0]])} periods). Balance the panel first, e.g. keep the units "
            f"observed in every period: df.groupby({panel.unit!r}).filter(lambda g: "
            f"g[{panel.time!r}].nunique() == {panel.n_periods}).")
    if not panel.status_wide().any():
        raise PanelError(f"{what} needs treated units, but no unit of column {panel.unit!r} "
                         "is ever treated; check the cohort or status column (and its "
                         "never_treated coding).")


def require_staggered_adoption(panel: Panel, what: str) -> None:
    """Raise :class:`NonAbsorbingTreatmentError` when a unit's treatment switches off."""
    status = panel.status_wide()
    absorbing = np.arange(panel.n_periods)[None, :] >= panel.unit_cohort[:, None]
    switching = np.flatnonzero((status != absorbing).any(axis=1))
    if switching.size:
        unit = switching[0]
        path = "".join(str(int(v)) for v in status[unit])
        raise NonAbsorbingTreatmentError(
            f"{what} applies to absorbing (staggered) adoption only, but the status of "
            f"{plural(switching.size, 'unit')} switches off again (e.g. unit "
            f"{fmt(panel.units[unit])}: {path}). Use twfe_weights(panel), whose de "
            "Chaisemartin-D'Haultfoeuille weights cover any binary treatment, or decompose "
            "an absorbing window: panel.restrict_to_first_spell(end=...) with end the "
            "earliest end of a first spell keeps the panel balanced.")


def window_info(panel: Panel) -> dict[str, str]:
    """Return ``{"window": ...}`` for a panel cut to a window, else an empty dict."""
    window = getattr(panel, "window", None)
    return {} if window is None else {"window": str(window)}


@dataclass(frozen=True)
class TreatmentGroups:
    r"""Units grouped by treatment path, with their shares and outcome means.

    Attributes
    ----------
    paths
        ``(n_groups, n_periods)`` 0/1 treatment path of each group.
    shares
        ``(n_groups,)`` weighted share :math:`n_j` of the units (summing to one).
    units
        ``(n_groups,)`` number of units (unweighted).
    mass
        ``(n_groups,)`` summed unit weights (the number of units without weights).
    means
        ``(n_groups, n_periods)`` weighted mean outcome :math:`\bar y_{jt}` of the group,
        centred by each unit's own mean (the centring cancels from every comparison).
    inverse
        ``(n_units,)`` group of each unit.
    """

    paths: np.ndarray
    shares: np.ndarray
    units: np.ndarray
    mass: np.ndarray
    means: np.ndarray
    inverse: np.ndarray

    @classmethod
    def of(cls, panel: Panel) -> TreatmentGroups:
        """Group the units of a balanced ``panel`` by their treatment path."""
        status = panel.status_wide().astype(np.int8)
        if panel.n_periods <= 62:  # one exact int64 code per path: a fast 1-d unique
            codes = status.astype(np.int64) @ (np.int64(1) << np.arange(panel.n_periods))
            _, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
            paths = status[first]
        else:
            paths, inverse = np.unique(status, axis=0, return_inverse=True)
        inverse = np.asarray(inverse).ravel()
        weight = np.ones(panel.n_units) if panel.unit_weights is None else panel.unit_weights
        mass = np.bincount(inverse, weights=weight, minlength=len(paths))
        y = panel.wide()
        y = y - y.mean(axis=1, keepdims=True)
        sums = np.stack([np.bincount(inverse, weights=weight * y[:, t], minlength=len(paths))
                         for t in range(panel.n_periods)], axis=1)
        return cls(paths.astype(float), mass / mass.sum(),
                   np.bincount(inverse, minlength=len(paths)), mass,
                   sums / mass[:, None], inverse)

    def residuals(self) -> np.ndarray:
        r"""Return the residual :math:`\tilde D_{jt}` of the status on unit and period effects.

        Notes
        -----
        In a balanced panel with time-invariant unit weights the two-way projection is
        explicit:
        :math:`\tilde D_{jt} = D_{jt} - \bar D_{j\cdot} - \bar D_{\cdot t} + \bar D`, with
        :math:`\bar D_{\cdot t} = \sum_j n_j D_{jt}` and :math:`\bar D` the overall mean.
        """
        d = self.paths
        by_period = self.shares @ d
        return d - d.mean(axis=1, keepdims=True) - by_period[None, :] + by_period.mean()

    def treatment_variance(self) -> float:
        r"""Return :math:`\hat V^D = \sum_j n_j \frac1T\sum_t \tilde D_{jt}^2`."""
        return float(self.shares @ (self.residuals() ** 2).mean(axis=1))


def identity_tolerance(*values: np.ndarray | float) -> float:
    """Return the absolute tolerance ``1e-10 * max(1, |values|)`` of an identity check."""
    scale = max([1.0] + [float(np.max(np.abs(np.asarray(v, dtype=float)), initial=0.0))
                         for v in values])
    return 1e-10 * scale


def static_twfe_coefficient(panel: Panel) -> float:
    """Return the static TWFE coefficient on the status (no standard errors needed).

    It is the estimate of ``TwoWayFixedEffects().fit(panel)``; raises
    :class:`PanelError` when the status has no variation beyond the fixed effects.
    """
    from evaluation.estimators.did import fit_two_way

    status = panel.status_wide()[panel.unit_codes, panel.time_codes].astype(float)
    return float(fit_two_way(panel, status[:, None]).params[0])
