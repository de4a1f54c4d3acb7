"""Design Monte Carlo: does the whole evaluation design recover the truth.

Each replication draws fresh synthetic data, builds the report's comparison groups and runs
every design the report uses (through the report's own chapter functions), recording one row
per estimate with the simulator's truth beside it. ``designs`` names what is estimated,
``engine`` runs replications (resumable, identical serially, with joblib or on Dask),
``executors`` holds the three ways of running them and ``summary`` turns the rows into bias,
RMSE, coverage, size, power and minimum detectable effects.
"""

from evaluation.validation.designs import DESIGNS, SIZES
from evaluation.validation.engine import ValidationRun, replication_seed, validate
from evaluation.validation.summary import plot_distributions, summarize

__all__ = ["DESIGNS", "SIZES", "ValidationRun", "plot_distributions", "replication_seed",
           "summarize", "validate"]
