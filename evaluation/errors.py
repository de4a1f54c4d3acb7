"""Exceptions and warnings raised by the package.

Every error a user can trigger with bad input has its own class here, so that callers can
catch precisely what they expect and tests can assert on it. All errors derive from
:class:`EvaluationError`; those about the shape or content of a long panel derive from
:class:`PanelError`. Warnings derive from :class:`EvaluationWarning` so that a user can
filter all of the package's warnings with one line.
"""

from __future__ import annotations


class EvaluationError(Exception):
    """Base class of every error raised on purpose by the package."""


class InvalidOptionError(EvaluationError, ValueError):
    """An option was given a value outside its documented set."""


class PanelError(EvaluationError, ValueError):
    """A long panel failed validation."""


class MissingColumnError(PanelError, KeyError):
    """A column named by the caller is not in the DataFrame."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class DuplicateObservationError(PanelError):
    """The same (unit, time) pair occurs on more than one row."""


class VaryingWithinUnitError(PanelError):
    """A column that must be constant within a unit (cohort, cluster, weight) varies."""


class NonNumericColumnError(PanelError, TypeError):
    """An outcome, covariate or weight column is not numeric."""


class MissingValueError(PanelError):
    """A required value (id, time, outcome, covariate, cluster) is missing."""


class NonFiniteValueError(PanelError):
    """An outcome, covariate or weight holds an infinite value."""


class TimeFormatError(PanelError, TypeError):
    """Time or cohort values are of a type the panel cannot interpret."""


class IrregularTimeGridError(PanelError):
    """The observed periods do not lie on a regular grid."""


class CohortOutOfRangeError(PanelError):
    """A unit's first treated period lies outside the panel's time range or grid."""


class NoComparisonUnitsError(PanelError):
    """No units are available as comparisons for the requested control group."""


class InvalidWeightError(PanelError):
    """Weights are negative, missing, non-finite or all zero."""


class StatusCohortMismatchError(PanelError):
    """The treatment-status column contradicts the cohort (first treated period)."""


class NonAbsorbingTreatmentError(PanelError):
    """Treatment switches off (or on again), but the estimator assumes absorbing treatment."""


class SimulationError(EvaluationError, ValueError):
    """Simulator parameters are invalid or inconsistent."""


class CohortError(EvaluationError, ValueError):
    """Person-month data cannot define the target-group cohort or its covariates."""


class StatFinError(EvaluationError, ValueError):
    """A StatFin export or a trial-assignment file could not be read into the panel schema."""


class MatchingError(EvaluationError, ValueError):
    """A comparison group could not be built as asked (bad treatment, covariates or options)."""


class TreatmentNotBinaryError(MatchingError):
    """The treatment column does not hold exactly two values coded as treated and control."""


class NoControlsInStratumError(MatchingError):
    """An exact-matching stratum holds treated units but no control units."""


class NoMatchesError(MatchingError):
    """Matching left no treated unit with a match (for example a caliper that is too tight)."""


class InfeasibleBalanceError(MatchingError):
    """Weights that balance the requested moments do not exist or were not found."""


class EvaluationWarning(UserWarning):
    """Base class of every warning issued by the package."""


class DroppedObservationsWarning(EvaluationWarning):
    """Rows were dropped from a panel (for example because the outcome was missing)."""


class DroppedCovariatesWarning(EvaluationWarning):
    """Covariates were left out of an adjustment because the sample cannot identify them."""


class UnmatchedUnitsWarning(EvaluationWarning):
    """Some treated units got fewer matches than asked for, or none."""


class RegressionToMeanWarning(EvaluationWarning):
    """Matching on pre-treatment outcome levels can create bias through regression to the mean."""


class ConvergenceWarning(EvaluationWarning):
    """An iterative fit stopped before it converged; the result may be unreliable."""


class ConvergenceError(EvaluationError, RuntimeError):
    """An iterative fit did not converge and its last iterate is unusable for what was asked."""


class ReportError(EvaluationError):
    """The report could not be built (missing inputs or a notebook failed)."""


class FewClustersWarning(EvaluationWarning):
    """Few clusters are treated (or one dominates): clustered normal inference over-rejects."""


class OutputError(EvaluationError, ValueError):
    """An output path would replace an input, a foreign directory's files, or is unusable."""


class IdentificationError(EvaluationError, ValueError):
    """The data cannot identify the requested estimates (no treated unit, no pre-period ...)."""


class DataFileError(EvaluationError, ValueError):
    """A data file cannot be read as a table (format, encoding, ragged rows, empty, binary)."""


class DataFileNotFoundError(DataFileError, FileNotFoundError):
    """A data file named by the caller does not exist."""


class DataFileWarning(EvaluationWarning):
    """A data file was read with an inferred format (encoding, delimiter) or looks cut off."""


class StatFinWarning(EvaluationWarning):
    """A StatFin export held cells read as missing or codes left out on request."""


class IdentificationWarning(EvaluationWarning):
    """Some estimates are not identified and were kept as NaN rows with the reason."""
