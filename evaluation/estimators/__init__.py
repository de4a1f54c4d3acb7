"""Estimators: one module per family; ``ESTIMATORS`` maps CLI names to classes."""

from evaluation.estimators.callaway_santanna import CallawaySantAnna, GroupTimeResult

ESTIMATORS = {"cs": CallawaySantAnna}

__all__ = ["ESTIMATORS", "CallawaySantAnna", "GroupTimeResult"]
