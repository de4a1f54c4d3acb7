"""Chapter 8 (conclusions): the validated rule that turns estimates into conclusions.

The rule is fixed before the numbers are read, and the design Monte Carlo (chapter 7)
checks it: the headline design is the one whose bias and coverage are validated, the
placebo is the one whose size is validated, and no other estimator takes over when a test
rejects (the Monte Carlo shows which alternatives are biased in this design).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from evaluation.estimators.results import minimum_detectable_effect
from evaluation.report.chapters.validation import COVERAGE_RANGE, MAX_BIAS_SHARE

#: Design labels of the headline rows in the validation table, by table.
HEADLINE_DESIGN = "overall effect"
PLACEBO_PREFIX = "placebo"
#: Columns of :func:`headline_conclusions`.
CONCLUSION_COLUMNS = ["level", "outcome", "estimate", "ci_lower", "ci_upper", "p_value",
                      "mde", "validation", "placebo_p_value", "placebo_size", "conclusion"]


def _validation_of(validation: pd.DataFrame | None, level: str, outcome: str
                   ) -> pd.Series | None:
    """Return the validation row of the headline design for one outcome (None if not run)."""
    if validation is None:
        return None
    rows = validation[(validation["level"] == level) & (validation["outcome"] == outcome)
                      & (validation["design"] == HEADLINE_DESIGN)
                      & (validation["estimator"] == "cs")]
    return rows.iloc[0] if len(rows) else None


def _placebo_of(robustness: pd.DataFrame | None, validation: pd.DataFrame | None,
                outcome: str) -> tuple[float, float]:
    p_value = size = np.nan
    if robustness is not None:
        rows = robustness[(robustness["outcome"] == outcome)
                          & robustness["design"].str.startswith(PLACEBO_PREFIX)]
        if len(rows):
            p_value = float(rows["p_value"].iloc[0])
    if validation is not None:
        rows = validation[(validation["outcome"] == outcome)
                          & validation["design"].str.startswith(PLACEBO_PREFIX)]
        if len(rows):
            size = float(rows["size"].iloc[0])
    return p_value, size


def _conclusion(row: dict, checked: pd.Series | None, alpha: float) -> str:
    if checked is None:
        return "no conclusion: the design was not validated for this outcome"
    if abs(checked["bias_share"]) > MAX_BIAS_SHARE:
        return ("no conclusion: the design is biased for this outcome in the validation "
                f"(bias {checked['bias_share']:+.2f} SD of its errors)")
    if row["placebo_p_value"] < alpha:
        return ("not credible on these data: the re-selected placebo rejects, so the "
                "comparison group diverged from the trial group before the trial")
    if row["p_value"] < alpha:
        text = "effect found: the validated design's interval excludes zero"
    else:
        text = (f"no effect detected; effects beyond ±{row['mde']:.4g} would have been found "
                "with 80 % power")
    low, high = COVERAGE_RANGE
    if not low <= checked["coverage"] <= high:
        covered = 100 * checked["coverage"]
        text += (f" (caveat: its 95 % intervals covered the truth in {covered:.1f} % of the "
                 "validation's replications, so they are somewhat too "
                 + ("narrow" if checked["coverage"] < low else "wide") + ")")
    return text


def headline_conclusions(overall: pd.DataFrame, robustness: pd.DataFrame | None = None,
                         validation: pd.DataFrame | None = None, alpha: float = 0.05
                         ) -> pd.DataFrame:
    r"""Apply the validated rule to every headline estimate (the CS rows of ``overall``).

    Parameters
    ----------
    overall
        The overall-effect table of chapter 3 (``level, outcome, estimator, estimate, ...``).
    robustness
        The robustness table of chapter 6 (its placebo rows), if computed.
    validation
        The validation table of chapter 7 (a verdict per design row), if computed.
    alpha
        Level of the tests.

    Returns
    -------
    pandas.DataFrame
        :data:`CONCLUSION_COLUMNS`; ``validation`` is the Monte Carlo verdict of the headline
        design for that outcome, ``placebo_size`` the placebo's rejection rate in the Monte
        Carlo, and ``conclusion`` the rule's outcome.

    Notes
    -----
    The rule, in order: (1) an outcome whose headline design was not validated, or is biased
    in the validation (|bias| > 0.1 SD of its errors), gets no conclusion; (2) when the
    placebo with the cohort re-selected 12 months earlier rejects at ``alpha``, the estimate
    is not credible; (3) otherwise an effect is found when the interval excludes zero, and
    a null result states its minimum detectable effect
    :math:`(z_{1-\alpha/2} + z_{0.8})\,\mathrm{SE}` (the overall table's ``mde``, with
    :math:`t_{df}` quantiles when the estimate's intervals use them); when the validation's
    95 % coverage
    lies outside [0.92, 0.98] the conclusion carries the measured coverage as a caveat.
    Placebo rows exist for the chapter-3 outcomes of the robustness chapter only; other
    outcomes skip step (2).
    """
    rows = []
    for _, row in overall[overall["estimator"] == "cs"].iterrows():
        placebo_p, placebo_size = _placebo_of(
            robustness if row["level"] == "jobseekers" else None, validation, row["outcome"])
        checked = _validation_of(validation, row["level"], row["outcome"])
        record = {"level": row["level"], "outcome": row["outcome"],
                  **{c: float(row[c]) for c in ("estimate", "ci_lower", "ci_upper",
                                                "p_value")},
                  "mde": float(row["mde"] if alpha == 0.05 and "mde" in row
                               else minimum_detectable_effect(row["std_error"], alpha)),
                  "validation": ("not validated" if checked is None
                                 else str(checked["verdict"])),
                  "placebo_p_value": placebo_p, "placebo_size": placebo_size}
        record["conclusion"] = _conclusion(record, checked, alpha)
        rows.append(record)
    return pd.DataFrame(rows, columns=CONCLUSION_COLUMNS)
