"""Generic staggered-adoption panels with known effects, for testing estimators.

Unlike the Finnish simulators these panels have integer time, absorbing treatment and a
handful of cohorts, and they scale to millions of units: the design a methodologist varies
to see where an estimator works and where it breaks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from evaluation.errors import SimulationError


@dataclass(frozen=True)
class StaggeredDesign:
    """Parameters of :func:`draw_staggered`.

    Attributes
    ----------
    n_units, n_periods
        Panel size; periods are ``1..n_periods``.
    cohorts
        First treated periods of the treated cohorts (each in ``2..n_periods``).
    never_share
        Share of never-treated units (0 allowed: then only not-yet-treated comparisons).
    effect
        Effect at adoption (event time 0) for a cohort multiplier of one.
    dynamic
        Growth of the effect per period since adoption (``effect * (1 + dynamic * e)``).
    cohort_effects
        Multiplier per cohort (heterogeneity by cohort); default all ones.
    unit_heterogeneity
        Standard deviation of a unit-level multiplier of the effect, ``1 + sd * eta``.
    covariate_selection
        Log-odds shift of being treated per standard deviation of the covariate ``x``.
    covariate_trend
        Trend in the untreated outcome per period per unit of ``x``: with selection on
        ``x`` this breaks unconditional parallel trends but not conditional ones.
    pretrend
        Extra trend per period in the untreated outcome of treated units (violation).
    anticipation
        Periods before adoption in which the effect already starts.
    missing
        Share of unit-period cells dropped at random (unbalanced panel).
    n_clusters
        Number of clusters units are grouped in (0 = none).
    noise
        Standard deviation of the idiosyncratic error.
    """

    n_units: int = 1_000
    n_periods: int = 10
    cohorts: tuple[int, ...] = (4, 6, 8)
    never_share: float = 0.3
    effect: float = 1.0
    dynamic: float = 0.0
    cohort_effects: tuple[float, ...] | None = None
    unit_heterogeneity: float = 0.0
    covariate_selection: float = 0.0
    covariate_trend: float = 0.0
    pretrend: float = 0.0
    anticipation: int = 0
    missing: float = 0.0
    n_clusters: int = 0
    noise: float = 1.0

    def __post_init__(self) -> None:
        if self.n_units < 2 or self.n_periods < 2:
            raise SimulationError("a staggered panel needs at least 2 units and 2 periods.")
        bad = [g for g in self.cohorts if not 2 <= g <= self.n_periods]
        if bad or len(set(self.cohorts)) != len(self.cohorts):
            raise SimulationError(
                f"cohorts={self.cohorts!r} must be distinct periods in 2..{self.n_periods} "
                "(a cohort treated in period 1 has no pre-treatment period)."
            )
        if self.cohort_effects is not None and len(self.cohort_effects) != len(self.cohorts):
            raise SimulationError("cohort_effects needs one multiplier per cohort.")
        if not 0 <= self.never_share < 1 or not 0 <= self.missing < 0.9:
            raise SimulationError("never_share must lie in [0, 1) and missing in [0, 0.9).")
        if self.anticipation < 0 or self.n_clusters < 0 or self.noise < 0:
            raise SimulationError("anticipation, n_clusters and noise must be non-negative.")


def draw_staggered(design: StaggeredDesign, rng: np.random.Generator
                   ) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    r"""Draw a staggered panel and both potential outcomes.

    Returns
    -------
    tuple
        ``(data, cohort_by_unit, y0, y1)`` where ``data`` is the observed long panel with
        columns ``unit, time, cohort (0 = never), treated, y, x, weight`` and ``cluster``
        when clusters are requested, and ``y0``/``y1`` are ``(n_units, n_periods)``.

    Notes
    -----
    .. math::

        Y_{it}(0) = \alpha_i + \lambda_t + \gamma x_i t + \pi D_i t + \varepsilon_{it},
        \qquad Y_{it}(1) = Y_{it}(0) + \tau_g (1 + \delta e)(1 + \sigma \eta_i)
        \mathbb 1[e \ge -a],

    with :math:`e = t - G_i`, unit effects correlated with :math:`x_i`, cohort
    probabilities tilted by :math:`x_i` and :math:`\eta_i` standard normal. The same
    :math:`\varepsilon` enters both potential outcomes.
    """
    n, n_t = design.n_units, design.n_periods
    x = rng.standard_normal(n)
    n_groups = len(design.cohorts)
    base = np.r_[np.full(n_groups, (1 - design.never_share) / max(n_groups, 1)),
                 design.never_share]
    tilt = np.r_[np.full(n_groups, design.covariate_selection), 0.0]
    logits = np.log(np.maximum(base, 1e-300))[None, :] + x[:, None] * tilt[None, :]
    prob = np.exp(logits - logits.max(axis=1, keepdims=True))
    prob /= prob.sum(axis=1, keepdims=True)
    u = rng.random(n)
    group = (u[:, None] > np.cumsum(prob, axis=1)[:, :-1]).sum(axis=1)
    cohort_values = np.r_[np.asarray(design.cohorts, dtype=np.int64), 0]
    cohort = cohort_values[group]
    time = np.arange(1, n_t + 1)
    alpha = 0.5 * x + rng.standard_normal(n)
    lam = np.cumsum(rng.normal(0.1, 0.3, n_t))
    treated_unit = cohort > 0
    y0 = (alpha[:, None] + lam[None, :] + design.covariate_trend * x[:, None] * time[None, :]
          + design.pretrend * treated_unit[:, None] * time[None, :]
          + design.noise * rng.standard_normal((n, n_t)))
    multipliers = np.asarray(design.cohort_effects or np.ones(n_groups), dtype=float)
    tau_g = np.r_[design.effect * multipliers, 0.0][group]
    event = time[None, :] - np.where(treated_unit, cohort, 10**9)[:, None]
    active = treated_unit[:, None] & (event >= -design.anticipation)
    unit_mult = 1 + design.unit_heterogeneity * rng.standard_normal(n)
    effect = np.where(active, tau_g[:, None] * (1 + design.dynamic * np.maximum(event, 0))
                      * unit_mult[:, None], 0.0)
    y1 = y0 + effect
    status = treated_unit[:, None] & (event >= 0)
    columns = {
        "unit": np.repeat(np.arange(1, n + 1), n_t),
        "time": np.tile(time, n),
        "cohort": np.repeat(cohort, n_t),
        "treated": status.ravel().astype(np.int8),
        "y": y1.ravel(),  # observed: Y(1) = Y(0) wherever the effect is not active
        "x": np.repeat(x, n_t),
        "weight": np.repeat(rng.uniform(0.5, 1.5, n), n_t),
    }
    if design.n_clusters:
        columns["cluster"] = np.repeat(rng.integers(1, design.n_clusters + 1, n), n_t)
    data = pd.DataFrame(columns)
    if design.missing > 0:
        data = data.loc[rng.random(len(data)) >= design.missing].reset_index(drop=True)
    return data, cohort, y0, y1
