"""Causal impact evaluation of the Finnish municipal employment trials (kuntakokeilut).

Public entry points:

* :class:`Panel` — the one place where a long panel is validated and indexed;
* :func:`simulate_municipalities`, :func:`simulate_jobseekers`, :func:`write_synthetic_data`
  — synthetic panels with their true effects (:mod:`evaluation.simulate`);
* :mod:`evaluation.describe` and :mod:`evaluation.report` — the report chapters.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from evaluation.panel import Panel
from evaluation.simulate import (
    Scenario,
    SimulatedPanel,
    get_scenario,
    simulate_jobseekers,
    simulate_municipalities,
    write_synthetic_data,
)

try:
    __version__ = version("kuntakokeilu-evaluation")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = [
    "Panel",
    "Scenario",
    "SimulatedPanel",
    "__version__",
    "get_scenario",
    "simulate_jobseekers",
    "simulate_municipalities",
    "write_synthetic_data",
]
