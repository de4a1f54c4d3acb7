"""Regression values of the Sun-Abraham estimator from its dense implementation.

Before the rewrite that replaced the dense ``(observations x interactions)`` indicator
matrix by cell codes and ``bincount`` sums, ``SunAbraham.fit`` built every cohort x
relative-period indicator column, demeaned each one and formed a dense cluster-robust
meat. This script runs that implementation (``evaluation/estimators/sun_abraham.py`` at
commit ``a74a8fa``, read with ``git show`` and executed against the current package) on a
moderately sized unbalanced, weighted and clustered panel and writes
``sa_previous.json``; ``tests/test_sun_abraham.py`` requires the current implementation
to reproduce it to 1e-10 relative. Run from the repository root::

    .venv/bin/python tests/reference/sa_previous.py

``--current`` uses the installed implementation instead (to check the file reproduces).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd

from evaluation import Panel
from evaluation.simulate import simulate_staggered

HERE = Path(__file__).resolve().parent
COMMIT = "a74a8fa"
#: name -> (SunAbraham options, weighted, clustered)
CASES: dict[str, tuple[dict, bool, bool]] = {
    "never/weighted/cluster": ({}, True, True),
    "never/weighted/cluster/binned/ssc": (
        {"leads": 3, "lags": 2, "small_sample": True}, True, True),
    "last/weighted/cluster": ({"control": "last"}, True, True),
    "last/weighted/unit/binned": ({"control": "last", "leads": 2, "lags": 3}, True, False),
    "never/unweighted/unit/two-references/fixed-shares": (
        {"reference": (-3, -1), "share_uncertainty": False}, False, False),
}


def regression_data() -> pd.DataFrame:
    """600 units x 10 periods, cohorts 4, 6 and 8, 25 clusters, 12% of rows dropped."""
    sim = simulate_staggered(n_units=600, n_periods=10, cohorts=(4, 6, 8), dynamic=0.3,
                             cohort_effects=(2.0, 1.0, 0.4), n_clusters=25, seed=21,
                             keep_potential_outcomes=False)
    data = sim.data
    rng = np.random.default_rng(5)
    # unit weights varying within cohorts (the simulated ones may be constant)
    weight = rng.uniform(0.5, 2.0, size=data["unit"].nunique())
    data = data.assign(weight=weight[pd.factorize(data["unit"])[0]])
    return data[rng.uniform(size=len(data)) > 0.12].reset_index(drop=True)


def regression_panel(data: pd.DataFrame, weighted: bool, clustered: bool) -> Panel:
    """The panel of one case."""
    return Panel(data, unit="unit", time="time", outcome="y", cohort="cohort",
                 never_treated=0, weights="weight" if weighted else None,
                 cluster="cluster" if clustered else None)


def previous_estimator() -> type:
    """``SunAbraham`` from commit ``COMMIT``, executed against the current package."""
    source = subprocess.run(["git", "show", f"{COMMIT}:evaluation/estimators/sun_abraham.py"],
                            check=True, capture_output=True, text=True,
                            cwd=HERE.parent.parent).stdout
    module = types.ModuleType("_sa_previous")
    sys.modules[module.__name__] = module  # dataclasses look their module up
    exec(compile(source, "sa_previous", "exec"), module.__dict__)
    return module.SunAbraham


def summary(result) -> dict:
    """Event-time table, overall effect, cohort effects and both covariance matrices."""
    cohorts = result.cohort_effects
    return {
        "term": result.table["term"].tolist(),
        "event_time": result.table["event_time"].astype(int).tolist(),
        "estimate": result.table["estimate"].tolist(),
        "std_error": result.table["std_error"].tolist(),
        "vcov": np.asarray(result.vcov).tolist(),
        "overall": [float(result.overall["estimate"].iat[0]),
                    float(result.overall["std_error"].iat[0])],
        "cohort": cohorts["cohort"].astype(int).tolist(),
        "cohort_event_time": cohorts["event_time"].astype(int).tolist(),
        "cohort_estimate": cohorts["estimate"].tolist(),
        "cohort_std_error": cohorts["std_error"].tolist(),
        "cohort_weight": cohorts["weight"].tolist(),
        "cohort_vcov": np.asarray(result.cohort_vcov).tolist(),
        "observations": int(result.info["observations"]),
        "units": int(result.info["units"]),
    }


def relative_difference(new: object, old: object) -> float:
    """Largest difference relative to the old value (floored at 1e-6 of its largest)."""
    old = np.asarray(old, dtype=float)
    floor = 1e-6 * np.max(np.abs(old), initial=1e-300)
    return float(np.max(np.abs(np.asarray(new, dtype=float) - old)
                        / np.maximum(np.abs(old), floor), initial=0.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--current", action="store_true",
                        help="use the current implementation and compare with the file")
    args = parser.parse_args()
    if args.current:
        from evaluation.estimators.sun_abraham import SunAbraham as estimator
    else:
        estimator = previous_estimator()
    data = regression_data()
    out = {name: summary(estimator(**options).fit(regression_panel(data, weighted, clustered)))
           for name, (options, weighted, clustered) in CASES.items()}
    path = HERE / "sa_previous.json"
    if args.current:
        stored = json.loads(path.read_text())
        worst = max(relative_difference(out[c][k], stored[c][k])
                    for c in out for k in out[c] if k != "term")
        print(f"largest relative difference from {path.name}: {worst:.2e}")
        return
    out["_about"] = {"commit": COMMIT, "script": "tests/reference/sa_previous.py",
                     "rows": len(data), "units": int(data["unit"].nunique())}
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
