"""Estimators: one module per family, a registry of their names, one result protocol.

``registry.REGISTRY`` maps command-line names to classes and what they support;
``results`` holds the result objects every estimator returns; ``compare`` runs several
event studies side by side. Private helpers: ``_drdid`` (Sant'Anna-Zhao 2x2 estimators),
``_aggregation``, ``_inference`` (influence functions, clustered variance, bootstrap) and
``_fixed_effects`` (exact sparse two-way fixed effects).
"""

from evaluation.estimators.callaway_santanna import CallawaySantAnna, GroupTimeResult
from evaluation.estimators.compare import compare_estimators
from evaluation.estimators.registry import REGISTRY, EstimatorEntry, register

__all__ = ["REGISTRY", "CallawaySantAnna", "EstimatorEntry", "GroupTimeResult",
           "compare_estimators", "register"]
