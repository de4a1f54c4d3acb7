r"""Chapter 3, sensitivity: how much a violation of parallel trends would change the headline.

Two questions for each headline event study (CS, the headline design, universal base
period, :data:`PRE_MONTHS` months before and :data:`POST_MONTHS` months after the start):

* **HonestDiD** (Rambachan and Roth 2023): the fixed-length confidence interval of the
  average effect over the first :data:`POST_MONTHS` trial months when the trend of the
  difference between the groups may bend by at most :math:`M` per month (smoothness
  restriction :math:`\Delta^{SD}(M)`), and the breakdown value: the smallest :math:`M`
  at which the interval includes zero (0 when the interval under parallel trends
  includes zero already, NaN when zero stays excluded over the whole search range).
* **Pre-test power** (Roth 2022): the linear pre-trend (per month) that the Wald pre-test
  detects with 50 % and 80 % power, and the bias of the average effect among data sets
  that pass the pre-test under the trend detected with 80 % power.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from evaluation.estimators.results import EstimationResult
from evaluation.inference.honest import sensitivity
from evaluation.inference.pretrend_power import pretrend_power
from evaluation.report.study import Study

#: Months of the event-study window before the start (the reference month -1 included).
PRE_MONTHS = 12
#: Months after the start whose average effect the sensitivity analysis is about.
POST_MONTHS = 12
#: Columns of :func:`sensitivity_summary`.
SENSITIVITY_COLUMNS = ["outcome", "estimate", "ci_lower", "ci_upper", "breakdown_m",
                       "pretrend_slope_50", "pretrend_slope_80", "bias_if_passed_80"]


def headline_event_study(study: Study, outcome: str) -> EstimationResult:
    """CS event study of the headline design in the sensitivity window (universal base)."""
    fit = study.headline_estimator(base_period="universal").fit(study.jobseeker_panel(outcome))
    return fit.aggregate("event", min_e=-PRE_MONTHS, max_e=POST_MONTHS - 1)


def sensitivity_analysis(study: Study, outcome: str) -> dict:
    """HonestDiD (smoothness) and pre-test power of one headline event study.

    Returns
    -------
    dict
        ``honest`` (:class:`~evaluation.inference.honest_result.HonestResult`), ``power``
        (:class:`~evaluation.inference.pretrend_power.PretrendPower`) and ``row`` (one row
        of :func:`sensitivity_summary`).
    """
    event = headline_event_study(study, outcome)
    honest = sensitivity(event, restriction="sd", target="average")
    power = pretrend_power(event, seed=study.seed)
    low, high = honest.original
    post = power.bias[power.bias["event_time"] >= 0]
    row = {"outcome": outcome, "estimate": float(np.mean(honest_targets(event))),
           "ci_lower": low, "ci_upper": high, "breakdown_m": honest.breakdown,
           "pretrend_slope_50": power.slope_50, "pretrend_slope_80": power.slope_80,
           "bias_if_passed_80": float(post["bias_given_pass"].mean())}
    return {"honest": honest, "power": power, "row": row}


def honest_targets(event: EstimationResult) -> np.ndarray:
    """Return the post-period estimates that the sensitivity analysis averages."""
    table = event.table
    return table.loc[table["event_time"].astype(float) >= 0, "estimate"].to_numpy(float)


def sensitivity_summary(analyses: Sequence[dict]) -> pd.DataFrame:
    """One row per outcome: :data:`SENSITIVITY_COLUMNS` (from :func:`sensitivity_analysis`)."""
    return pd.DataFrame([a["row"] for a in analyses], columns=SENSITIVITY_COLUMNS)
