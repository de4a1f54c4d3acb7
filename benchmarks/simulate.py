"""Time and peak memory of the simulators (targets from the foundation issue).

Each measurement runs in a fresh Python process so that peak resident memory belongs to
that job alone. Run with ``python benchmarks/simulate.py`` (``--people`` to change size).

Targets on the 2-core / 24 GiB reference machine:
* municipal panel (309 municipalities x 180 months, with truth): under 1 s;
* jobseeker panel of 1,000,000 people x 72 months (with truth): under 60 s and 8 GB.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap

JOB = textwrap.dedent("""
    import json, resource, time
    from evaluation.simulate import simulate_jobseekers, simulate_municipalities
    simulate_municipalities()  # warm imports and caches
    kind, size, out = {kind!r}, {size!r}, {out!r}
    started = time.perf_counter()
    if kind == "municipal":
        result = simulate_municipalities()
    else:
        result = simulate_jobseekers(size, n_months=72)
    seconds = time.perf_counter() - started
    write_seconds = None
    if out:
        started = time.perf_counter()
        result.data.to_parquet(out, index=False, compression="zstd")
        write_seconds = time.perf_counter() - started
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(json.dumps({{"seconds": seconds, "write_seconds": write_seconds,
                      "rows": len(result.data), "peak_gb": peak_gb}}))
""")


def measure(kind: str, size: int = 0, out: str = "") -> dict:
    """Run one simulation in a subprocess and return its timings and peak memory."""
    code = JOB.format(kind=kind, size=size, out=out)
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                          text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="repetitions of the municipal run")
    parser.add_argument("--parquet", default="", help="also time writing the panel here")
    args = parser.parse_args()

    runs = [measure("municipal") for _ in range(args.repeat)]
    best = min(r["seconds"] for r in runs)
    print(f"municipal panel: {runs[0]['rows']:,} rows in {best:.2f} s (best of {args.repeat}); "
          f"target 1 s -> {best / 1.0:.2f} of budget; peak {runs[0]['peak_gb']:.2f} GB")

    big = measure("jobseekers", args.people, args.parquet)
    print(f"jobseeker panel: {big['rows']:,} rows ({args.people:,} people x 72 months) in "
          f"{big['seconds']:.1f} s; target 60 s -> {big['seconds'] / 60:.2f} of budget; "
          f"peak {big['peak_gb']:.2f} GB; target 8 GB -> {big['peak_gb'] / 8:.2f} of budget")
    if big["write_seconds"] is not None:
        print(f"  writing {args.parquet}: {big['write_seconds']:.1f} s")


if __name__ == "__main__":
    main()
