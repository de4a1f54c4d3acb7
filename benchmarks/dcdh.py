"""Whole-process speed and memory of the de Chaisemartin-D'Haultfoeuille estimator.

Targets (issue 14, 2-core machine): the municipal panel, 309 municipalities x 180 months
with the simulator's three-wave trial status, in at most 5 s; 1,000,000 units x 12 periods
with a status that switches on for 3 periods (30 % of the units start treated and switch
out) in at most 60 s and 8 GB. Every measurement is a fresh process that starts Python,
reads the Parquet file, builds the Panel, fits (analytic standard errors clustered) and
prints the table, so start-up and I/O count; peak memory is the child's maximum resident
set size.

In the same run the authors' Python port ``py-did-multiplegt-dyn`` (which pins
``polars<1.20`` and so lives in its own venv, ``--reference-python``, default
``/tmp/dcdh_ref_venv/bin/python``; see ``tests/reference/dcdh_reference.py``) is timed on
the municipal panel and on a 10,000-unit cut of the large panel; on the full large panel
only with ``--reference-large`` (it needs hours: about 36 s for 21,600 unit-months).
Run ``python benchmarks/dcdh.py`` (``--quick``: 100,000 units instead of 1,000,000).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
from _measure import measure

EFFECTS, PLACEBOS = 12, 6  # municipal panel: a year of effects, half a year of placebos
LARGE_EFFECTS, LARGE_PLACEBOS = 5, 3

OURS = textwrap.dedent("""
    import sys, time
    import pandas as pd
    from evaluation.panel import Panel
    from evaluation.estimators.dcdh import ChaisemartinDHaultfoeuille
    start = time.perf_counter()
    data = pd.read_parquet(sys.argv[1])
    panel = Panel(data, unit="unit", time="time", outcome="y", status="d", cluster="cluster")
    result = ChaisemartinDHaultfoeuille(effects=int(sys.argv[2]),
                                        placebo=int(sys.argv[3])).fit(panel)
    print(result.table[["term", "estimate", "std_error"]].head(3).to_string())
    print(f"fit seconds {time.perf_counter() - start:.2f}")
""")

REFERENCE = textwrap.dedent("""
    import sys, time, warnings
    import polars as pl
    from did_multiplegt_dyn import DidMultiplegtDyn
    warnings.simplefilter("ignore")
    start = time.perf_counter()
    data = pl.read_parquet(sys.argv[1])
    fit = DidMultiplegtDyn(data, "y", "unit", "time", "d", effects=int(sys.argv[2]),
                           placebo=int(sys.argv[3]), cluster="cluster").fit()
    print(fit.result["did_multiplegt_dyn"]["Effects"].iloc[:3, :2].to_string())
    print(f"fit seconds {time.perf_counter() - start:.2f}")
""")


def municipal_panel(path: Path) -> None:
    """The simulator's 309 x 180 municipal panel with its three-wave status."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from evaluation.simulate import simulate_municipalities

    data = simulate_municipalities().data
    pd.DataFrame({
        "unit": pd.factorize(data["municipality"], sort=True)[0],
        "time": data["t"].astype(np.int64), "d": data["treated"].astype(np.int8),
        "y": data["unemployment_rate"].astype(float),
        "cluster": pd.factorize(data["ely"], sort=True)[0]}).to_parquet(path)


def switching_panel(path: Path, n_units: int, n_periods: int = 12, seed: int = 0) -> None:
    """Status on for 3 periods from cohort 3, 5, 7 (or never); 30 % start treated."""
    rng = np.random.default_rng(seed)
    cohort = rng.choice([3, 5, 7, 99], n_units)
    grid = np.arange(1, n_periods + 1)[None, :]
    on = (grid >= cohort[:, None]) & (grid < cohort[:, None] + 3)
    status = np.where((rng.random(n_units) < 0.3)[:, None], ~on, on)
    y = rng.normal(size=(n_units, 1)) + 0.2 * grid + status + rng.normal(size=status.shape)
    pd.DataFrame({
        "unit": np.repeat(np.arange(n_units), n_periods),
        "time": np.tile(grid[0], n_units), "d": status.ravel().astype(np.int8),
        "y": y.ravel(), "cluster": np.repeat(np.arange(n_units) // 20, n_periods),
    }).to_parquet(path)


def report(label: str, python: str, script: str, path: Path, effects: int,
           placebos: int) -> None:
    """Measure one whole process and print its wall time and peak memory."""
    try:
        out = measure([python, "-c", script, str(path), str(effects), str(placebos)])
    except RuntimeError as error:
        print(f"{label:<46} failed: {str(error)[-300:]}")
        return
    fit = [line for line in out["stdout"].splitlines() if line.startswith("fit seconds")]
    print(f"{label:<46} {out['seconds']:7.1f} s  {out['peak_gb']:5.2f} GB  "
          f"({fit[0] if fit else 'no timing'})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 units, not 1,000,000")
    parser.add_argument("--reference-python", default="/tmp/dcdh_ref_venv/bin/python")
    parser.add_argument("--reference-large", action="store_true",
                        help="also time the port on the full large panel (hours)")
    args = parser.parse_args()
    n_units = 100_000 if args.quick else 1_000_000
    reference = Path(args.reference_python)
    with tempfile.TemporaryDirectory() as folder:
        municipal = Path(folder) / "municipal.parquet"
        large = Path(folder) / "large.parquet"
        cut = Path(folder) / "cut.parquet"
        municipal_panel(municipal)
        switching_panel(large, n_units)
        switching_panel(cut, 10_000)
        print("whole process (start-up, read Parquet, Panel, fit), clustered analytic SEs")
        report(f"ours: municipal 309 x 180, L={EFFECTS} K={PLACEBOS} (<= 5 s)",
               sys.executable, OURS, municipal, EFFECTS, PLACEBOS)
        report(f"ours: {n_units:,} x 12, L={LARGE_EFFECTS} K={LARGE_PLACEBOS} (<= 60 s, 8 GB)",
               sys.executable, OURS, large, LARGE_EFFECTS, LARGE_PLACEBOS)
        report(f"ours: 10,000 x 12, L={LARGE_EFFECTS} K={LARGE_PLACEBOS}", sys.executable,
               OURS, cut, LARGE_EFFECTS, LARGE_PLACEBOS)
        if not reference.exists():
            print(f"reference port not installed at {reference}: not timed "
                  "(see tests/reference/dcdh_reference.py to install it)")
            return
        report("py-did-multiplegt-dyn: municipal 309 x 180", str(reference), REFERENCE,
               municipal, EFFECTS, PLACEBOS)
        report("py-did-multiplegt-dyn: 10,000 x 12", str(reference), REFERENCE, cut,
               LARGE_EFFECTS, LARGE_PLACEBOS)
        if args.reference_large:
            report(f"py-did-multiplegt-dyn: {n_units:,} x 12", str(reference), REFERENCE,
                   large, LARGE_EFFECTS, LARGE_PLACEBOS)
        else:
            print(f"py-did-multiplegt-dyn on {n_units:,} x 12: not run (hours; "
                  "--reference-large to run it)")


if __name__ == "__main__":
    main()
