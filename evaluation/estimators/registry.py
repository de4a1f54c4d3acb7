"""One call from a data file to a tidy table of estimates (what the reviewer CLI runs)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from evaluation.errors import InvalidOptionError
from evaluation.estimators import ESTIMATORS
from evaluation.estimators.callaway_santanna import CallawaySantAnna
from evaluation.estimators.results import ESTIMATE_COLUMNS
from evaluation.panel import Panel


def estimate_table(
    data: pd.DataFrame,
    *,
    unit: str,
    time: str,
    cohort: str,
    outcome: str,
    never_treated: object = float("nan"),
    covariates: Sequence[str] = (),
    estimator: str = "cs",
    control: str = "never",
    method: str = "dr",
    base_period: str = "varying",
    anticipation: int = 0,
    aggregate: str = "none",
    cluster: str | None = None,
    se: str = "analytic",
    draws: int = 999,
    seed: int | None = None,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Validate the panel, run the estimator and return rows with ESTIMATE_COLUMNS.

    ``aggregate="none"`` returns the ATT(g,t) of Callaway and Sant'Anna, or the static TWFE
    coefficient; ``"event"`` returns event-time effects (the dynamic TWFE for ``twfe``)
    with an ``overall`` row for CS aggregations.
    """
    panel = Panel(data, unit=unit, time=time, outcome=outcome, cohort=cohort,
                  never_treated=never_treated, covariates=list(covariates), cluster=cluster)
    if estimator == "cs":
        fit = CallawaySantAnna(control_group=control, method=method, base_period=base_period,
                               anticipation=anticipation, se=se, draws=draws, seed=seed,
                               alpha=alpha).fit(panel)
        result = fit if aggregate == "none" else fit.aggregate(aggregate)
    elif estimator == "sa":
        from evaluation.estimators.sun_abraham import SunAbraham

        if aggregate not in ("none", "event"):
            raise InvalidOptionError(f"--aggregate {aggregate} is not available for sa; the "
                                     "Sun-Abraham estimator reports event-time effects "
                                     "(none or event).")
        result = SunAbraham(alpha=alpha).fit(panel)
    elif estimator == "bjs":
        from evaluation.estimators.imputation import ImputationDiD

        if aggregate not in ("none", "simple", "event"):
            raise InvalidOptionError(f"--aggregate {aggregate} is not available for bjs; use "
                                     "none or event (event-time effects and the overall "
                                     "effect) or simple (overall effect only).")
        result = ImputationDiD(alpha=alpha).fit(panel)
        if aggregate == "simple":
            result.table = result.table.iloc[0:0]
    elif estimator == "did2s":
        from evaluation.estimators.imputation import TwoStageDiD

        if aggregate not in ("none", "simple", "event"):
            raise InvalidOptionError(f"--aggregate {aggregate} is not available for did2s; "
                                     "use none or simple (static) or event (dynamic).")
        result = TwoStageDiD(dynamic=aggregate == "event", alpha=alpha).fit(panel)
    elif estimator == "twfe":
        from evaluation.estimators.did import TwoWayFixedEffects  # linearmodels: import on use

        if aggregate not in ("none", "simple", "event"):
            raise InvalidOptionError(f"--aggregate {aggregate} is not available for twfe; "
                                     "use none or simple (static) or event (dynamic).")
        result = TwoWayFixedEffects(dynamic=aggregate == "event", alpha=alpha).fit(panel)
    else:
        raise InvalidOptionError(f"estimator {estimator!r} is not available; use one of "
                                 f"{', '.join(ESTIMATORS)}.")
    return result.to_frame()[ESTIMATE_COLUMNS]
