"""Comparison groups for the trials: matching, weighting and balance diagnostics.

:func:`match` builds a matched or reweighted comparison group from a unit-level table
(municipalities or people) and returns a :class:`MatchResult` whose weights every DiD
estimator honours (:meth:`MatchResult.apply`). :func:`outcome_trajectories` turns a long
panel into pre-treatment outcome features to match on, :func:`placebo_did` checks the match on
skipped pre-periods, and :func:`synthetic_control` weights donor municipalities for one
treated area.
"""

from evaluation.matching.matcher import match
from evaluation.matching.result import MatchResult
from evaluation.matching.synthetic_control import SyntheticControl, synthetic_control
from evaluation.matching.trajectories import PlaceboResult, outcome_trajectories, placebo_did

__all__ = ["MatchResult", "PlaceboResult", "SyntheticControl", "match", "outcome_trajectories",
           "placebo_did", "synthetic_control"]
