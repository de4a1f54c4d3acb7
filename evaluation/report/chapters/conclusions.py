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

#: Design labels of the headline rows in the validation table, by table.
HEADLINE_DESIGN = "overall effect"
PLACEBO_PREFIX = "placebo"
#: Columns of :func:`headline_conclusions`.
CONCLUSION_COLUMNS = ["level", "outcome", "estimate", "ci_lower", "ci_upper", "p_value",
                      "mde", "validation", "placebo_p_value", "placebo_size", "conclusion"]


def _validation_of(validation: pd.DataFrame | None, level: str, outcome: str) -> str:
    if validation is None:
        return "not validated (no validation run)"
    rows = validation[(validation["level"] == level) & (validation["outcome"] == outcome)
                      & (validation["design"] == HEADLINE_DESIGN)
                      & (validation["estimator"] == "cs")]
    return str(rows["verdict"].iloc[0]) if len(rows) else "not validated (outcome not run)"


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


def _conclusion(row: dict, alpha: float) -> str:
    if not row["validation"].startswith("meets"):
        return ("no conclusion: the design did not pass its validation for this outcome "
                f"({row['validation']})")
    if row["placebo_p_value"] < alpha:
        return ("not credible on these data: the re-selected placebo rejects, so the "
                "comparison group diverged from the trial group before the trial")
    if row["p_value"] < alpha:
        return "effect found: the validated design's interval excludes zero"
    return (f"no effect detected; effects beyond ±{row['mde']:.4g} would have been found "
            "with 80 % power")


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
    The rule, in order: (1) an outcome whose headline design fails the validation criteria
    (|bias| > 0.1 SD of the errors or 95 % coverage outside [0.92, 0.98]) gets no
    conclusion; (2) when the placebo with the cohort re-selected 12 months earlier rejects
    at ``alpha``, the estimate is not credible; (3) otherwise an effect is found when the
    interval excludes zero, and a null result states its minimum detectable effect
    :math:`(z_{1-\alpha/2} + z_{0.8})\,\mathrm{SE}`. Placebo rows exist for the
    chapter-3 outcomes of the robustness chapter only; other outcomes skip step (2).
    """
    rows = []
    for _, row in overall[overall["estimator"] == "cs"].iterrows():
        placebo_p, placebo_size = _placebo_of(
            robustness if row["level"] == "jobseekers" else None, validation, row["outcome"])
        record = {"level": row["level"], "outcome": row["outcome"],
                  **{c: float(row[c]) for c in ("estimate", "ci_lower", "ci_upper",
                                                "p_value")},
                  "mde": float(minimum_detectable_effect(row["std_error"], alpha)),
                  "validation": _validation_of(validation, row["level"], row["outcome"]),
                  "placebo_p_value": placebo_p, "placebo_size": placebo_size}
        record["conclusion"] = _conclusion(record, alpha)
        rows.append(record)
    return pd.DataFrame(rows, columns=CONCLUSION_COLUMNS)
