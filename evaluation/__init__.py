"""Causal impact evaluation of the Finnish municipal employment trials (kuntakokeilut).

Public entry points:

* :class:`Panel` — the one place where a long panel is validated and indexed;
* :func:`simulate_municipalities`, :func:`simulate_jobseekers`, :func:`write_synthetic_data`
  — synthetic panels with their true effects (:mod:`evaluation.simulate`);
* :func:`match` and :class:`MatchResult` — matched comparison groups and balance
  (:mod:`evaluation.matching`);
* :mod:`evaluation.estimators` — the estimators, their registry and results;
* :func:`bacon_decomposition` and :func:`twfe_weights` — what the static two-way
  fixed-effects coefficient averages (Goodman-Bacon 2x2 comparisons; de Chaisemartin-
  D'Haultfoeuille weights);
* :mod:`evaluation.report` — the report: study design, chapter tables, notebooks, build.

Layers point down only: ``cli`` -> ``report`` -> ``estimators`` / ``matching`` -> ``panel``
-> ``errors``; ``sources`` and ``synthetic`` produce the data the panel reads.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names below are imported lazily (fast start-up of the CLI)
    from evaluation.estimators.bacon import bacon_decomposition
    from evaluation.estimators.twfe_weights import twfe_weights
    from evaluation.matching import MatchResult, match
    from evaluation.panel import Panel
    from evaluation.simulate import (
        Scenario,
        SimulatedPanel,
        get_scenario,
        simulate_jobseekers,
        simulate_municipalities,
        write_synthetic_data,
    )

_LAZY = {"Panel": "evaluation.panel", "match": "evaluation.matching",
         "MatchResult": "evaluation.matching", "Scenario": "evaluation.simulate",
         "SimulatedPanel": "evaluation.simulate", "get_scenario": "evaluation.simulate",
         "simulate_jobseekers": "evaluation.simulate",
         "simulate_municipalities": "evaluation.simulate",
         "write_synthetic_data": "evaluation.simulate",
         "bacon_decomposition": "evaluation.estimators.bacon",
         "twfe_weights": "evaluation.estimators.twfe_weights"}


def __getattr__(name: str) -> Any:
    """Import public names on first use (PEP 562), keeping ``import evaluation`` cheap."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'evaluation' has no attribute {name!r}")

try:
    __version__ = version("kuntakokeilu-evaluation")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = [
    "MatchResult",
    "Panel",
    "Scenario",
    "SimulatedPanel",
    "__version__",
    "bacon_decomposition",
    "get_scenario",
    "match",
    "simulate_jobseekers",
    "simulate_municipalities",
    "twfe_weights",
    "write_synthetic_data",
]
