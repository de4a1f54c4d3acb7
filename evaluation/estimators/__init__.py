"""Estimators: one module per family; ``ESTIMATORS`` lists the command-line names."""

from evaluation.estimators.callaway_santanna import CallawaySantAnna, GroupTimeResult
from evaluation.estimators.compare import compare_estimators

#: Command-line names of the estimators (modules imported on use where they are heavy:
#: the values are ``module.Class`` paths inside this package).
ESTIMATORS = {"cs": "callaway_santanna.CallawaySantAnna", "twfe": "did.TwoWayFixedEffects",
              "sa": "sun_abraham.SunAbraham", "bjs": "imputation.ImputationDiD",
              "did2s": "imputation.TwoStageDiD"}

__all__ = ["ESTIMATORS", "CallawaySantAnna", "GroupTimeResult", "compare_estimators"]
