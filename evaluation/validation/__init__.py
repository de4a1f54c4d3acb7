"""Design Monte Carlo: does the whole evaluation design recover the truth.

Each replication draws fresh synthetic data, builds the report's comparison groups and runs
every design the report uses (through the report's own chapter functions), recording one row
per estimate with the simulator's truth beside it. ``designs`` names what is estimated,
``engine`` runs replications (resumable, identical serially, with joblib or on Dask),
``executors`` holds the three ways of running them and ``summary`` turns the rows into bias,
RMSE, coverage, size, power and minimum detectable effects.

Names are imported on first use, so the report can read a run's summary
(:mod:`evaluation.validation.summary`) without importing the engine, which itself runs the
report's chapter functions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evaluation.validation.designs import DESIGNS, SIZES
    from evaluation.validation.engine import ValidationRun, replication_seed, validate
    from evaluation.validation.summary import plot_distributions, summarize

_LAZY = {"DESIGNS": "designs", "SIZES": "designs", "ValidationRun": "engine",
         "replication_seed": "engine", "validate": "engine",
         "plot_distributions": "summary", "summarize": "summary"}


def __getattr__(name: str) -> Any:
    """Import public names on first use (PEP 562)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"evaluation.validation.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'evaluation.validation' has no attribute {name!r}")


__all__ = ["DESIGNS", "SIZES", "ValidationRun", "plot_distributions", "replication_seed",
           "summarize", "validate"]
