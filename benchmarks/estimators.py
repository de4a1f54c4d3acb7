"""Whole-process speed and memory of the Callaway-Sant'Anna estimator against csdid.

Every measurement is a fresh process that starts Python, reads the Parquet file, estimates
and writes the output (what a reviewer runs), so start-up and I/O count. Peak memory is the
child's maximum resident set size. Run ``python benchmarks/estimators.py`` (add
``--quick`` for a smaller panel). csdid is the PyPI port of R ``did`` (test extra
``reference``); if it is missing only our timings are printed.

Targets (2-core reference machine): 500,000 units x 12 periods, 3 cohorts, DR with one
covariate, analytic SEs: at least 5x faster than csdid 0.4.x with lower peak memory, also
with 999 bootstrap draws; 1,000,000 units x 12 periods with estimation, event aggregation
and bootstrap in under 30 s and 8 GB; Sun-Abraham on 100,000 units x 20 periods (3
cohorts, 57 cohort x relative-period cells, event aggregation) in under 8 s and 1.5 GB,
also with ``--quick`` (measured twice: the whole process that imports the package,
simulates the panel and fits, with its CPU seconds beside the wall time, which a loaded
machine inflates; and the CLI on Parquet; ``--sa-only`` runs just these); the imputation
estimator (and, for reference, two-stage and dynamic TWFE) on 100,000 units x 20 periods in
under 30 s and 8 GB each. pyfixest (``sunab``) is not timed here: it is not a dependency
(``tests/reference/sa_pyfixest.py`` checks the numbers in a separate environment).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import textwrap
from pathlib import Path

from _measure import measure

SA_UNITS = 100_000  # Sun-Abraham panel: 100,000 units x 20 periods, also with --quick

#: The Sun-Abraham target's whole process: import, simulate the panel, fit (``sys.argv[1]``
#: is the ``se`` option). Prints the fit's wall seconds and the process's CPU seconds.
SA_PROCESS = textwrap.dedent("""
    import resource, sys, time
    from evaluation import Panel
    from evaluation.estimators.sun_abraham import SunAbraham
    from evaluation.simulate import simulate_staggered
    sim = simulate_staggered(n_units=int(sys.argv[2]), n_periods=20, cohorts=(6, 10, 14),
                             dynamic=0.2, covariate_selection=0.5, covariate_trend=0.1,
                             keep_potential_outcomes=False, seed=1)
    panel = Panel(sim.data, unit="unit", time="time", outcome="y", cohort="cohort",
                  never_treated=0)
    started = time.perf_counter()
    fit = SunAbraham(se=sys.argv[1]).fit(panel)
    fit_seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(f"{fit_seconds:.2f} {usage.ru_utime + usage.ru_stime:.2f} {len(fit.table)}")
""")


def sun_abraham_process(se: str = "analytic", n_units: int = SA_UNITS) -> str:
    """Measure :data:`SA_PROCESS` in a fresh process; one line with the targets."""
    run = measure([sys.executable, "-c", SA_PROCESS, se, str(n_units)])
    fit_seconds, cpu_seconds, rows = run["stdout"].split()
    return (f"Sun-Abraham (se={se!r}), {n_units:,} units x 20 periods, 3 cohorts: whole "
            f"process (import, simulate, fit) {run['seconds']:.1f} s wall, {cpu_seconds} s "
            f"CPU, {run['peak_gb']:.2f} GB peak; fit alone {fit_seconds} s, {rows} event "
            "times (targets 8 s, 1.5 GB)")

CSDID = textwrap.dedent("""
    import contextlib, io, sys
    import pandas as pd
    from csdid.att_gt import ATTgt
    data, out, bootstrap, draws = sys.argv[1], sys.argv[2], sys.argv[3] == "1", int(sys.argv[4])
    df = pd.read_parquet(data)
    res = ATTgt(yname="y", tname="time", idname="unit", gname="cohort", data=df,
                xformla="y ~ x", control_group="nevertreated", biters=draws)
    with contextlib.redirect_stdout(io.StringIO()):
        res.fit(est_method="dr", bstrap=bootstrap)
        if bootstrap:
            res.aggte(typec="dynamic")
    pd.DataFrame(res.results).to_csv(out, index=False)
""")


def make_panel(path: Path, n_units: int, n_periods: int = 12,
               cohorts: tuple[int, ...] = (4, 7, 10)) -> None:
    """Write a benchmark panel (default 12 periods, cohorts 4, 7 and 10, one covariate)."""
    from evaluation.simulate import simulate_staggered

    sim = simulate_staggered(n_units=n_units, n_periods=n_periods, cohorts=cohorts,
                             dynamic=0.2, covariate_selection=0.5, covariate_trend=0.1,
                             keep_potential_outcomes=False, seed=1)
    sim.data.to_parquet(path, index=False)


def ours(data: Path, out: Path, bootstrap: bool, aggregate: str = "none",
         estimator: str = "cs") -> list[str]:
    """Our reviewer CLI for the benchmark settings."""
    command = [sys.executable, "-m", "evaluation", "estimate", "--data", str(data),
               "--unit", "unit", "--time", "time", "--cohort", "cohort", "--outcome", "y",
               "--never-treated", "0", "--aggregate", aggregate, "--estimator", estimator,
               "--output", str(out)]
    if estimator == "cs":
        command += ["--covariates", "x"]
    if bootstrap:
        command += ["--se", "bootstrap", "--draws", "999", "--seed", "1"]
    return command


def sun_abraham_cli(data: Path, folder: Path) -> str:
    """Measure the reviewer CLI's Sun-Abraham event study on ``data`` (Parquet in, CSV out)."""
    sa = measure(ours(data, folder / "sa.csv", False, "event", "sa"))
    return (f"Sun-Abraham, {SA_UNITS:,} units x 20 periods, 3 cohorts, event aggregation "
            f"(CLI: start-up, read Parquet, estimate, write CSV): {sa['seconds']:.1f} s, "
            f"{sa['peak_gb']:.2f} GB (targets 8 s, 1.5 GB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 and 200,000 units")
    parser.add_argument("--sa-only", action="store_true",
                        help="only the Sun-Abraham measurements (whole process and CLI)")
    args = parser.parse_args()
    print(sun_abraham_process())
    if args.sa_only:
        with tempfile.TemporaryDirectory() as folder:
            data = Path(folder) / "panel.parquet"
            make_panel(data, SA_UNITS, n_periods=20, cohorts=(6, 10, 14))
            print(sun_abraham_cli(data, Path(folder)))
        return
    n_compare, n_large = (100_000, 200_000) if args.quick else (500_000, 1_000_000)
    have_csdid = importlib.util.find_spec("csdid") is not None
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        data = tmp / "panel.parquet"
        make_panel(data, n_compare)
        print(f"CS, never treated, DR with one covariate: {n_compare:,} units x 12 periods, "
              "3 cohorts (whole process: start-up, read Parquet, estimate, write CSV)")
        for bootstrap in (False, True):
            label = "999 bootstrap draws" if bootstrap else "analytic SEs"
            mine = measure(ours(data, tmp / "ours.csv", bootstrap,
                                "event" if bootstrap else "none"))
            line = f"  {label:20s} ours {mine['seconds']:6.1f} s {mine['peak_gb']:5.2f} GB"
            if have_csdid:
                ref = measure([sys.executable, "-c", CSDID, str(data), str(tmp / "ref.csv"),
                               "1" if bootstrap else "0", "999"])
                line += (f" | csdid {ref['seconds']:6.1f} s {ref['peak_gb']:5.2f} GB | "
                         f"speed-up {ref['seconds'] / mine['seconds']:4.1f}x, memory ratio "
                         f"{mine['peak_gb'] / ref['peak_gb']:4.2f}")
            print(line)
        if not have_csdid:
            print("  (csdid not installed: pip install -e '.[reference]' for the comparison)")
        make_panel(data, n_large)
        big = measure(ours(data, tmp / "big.csv", True, "event"))
        print(f"CS with event aggregation and 999 bootstrap draws, {n_large:,} units x 12 "
              f"periods: {big['seconds']:.1f} s, {big['peak_gb']:.2f} GB "
              f"(targets 30 s, 8 GB)")
        make_panel(data, SA_UNITS, n_periods=20, cohorts=(6, 10, 14))
        print(sun_abraham_cli(data, tmp))
        n_event = 20_000 if args.quick else 100_000
        if n_event != SA_UNITS:
            make_panel(data, n_event, n_periods=20, cohorts=(6, 10, 14))
        print(f"Event studies with unit and period effects, {n_event:,} units x 20 periods, "
              "3 cohorts (targets 30 s and 8 GB each):")
        for estimator in ("bjs", "did2s", "twfe"):
            run = measure(ours(data, tmp / f"{estimator}.csv", False, "event", estimator))
            print(f"  {estimator:6s} {run['seconds']:6.1f} s {run['peak_gb']:5.2f} GB")


if __name__ == "__main__":
    main()
