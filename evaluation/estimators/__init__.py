"""Estimators: one module per family; ``ESTIMATORS`` maps CLI names to classes."""

from evaluation.estimators.callaway_santanna import CallawaySantAnna, GroupTimeResult

#: Command-line names of the estimators (modules imported on use where they are heavy:
#: ``twfe`` -> ``did.TwoWayFixedEffects``, ``sa`` -> ``sun_abraham.SunAbraham``).
ESTIMATORS = {"cs": "callaway_santanna.CallawaySantAnna", "twfe": "did.TwoWayFixedEffects",
              "sa": "sun_abraham.SunAbraham"}

__all__ = ["ESTIMATORS", "CallawaySantAnna", "GroupTimeResult"]
