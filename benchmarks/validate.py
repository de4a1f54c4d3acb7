"""Replications per minute of the design Monte Carlo (`evaluation validate`).

Runs `evaluation validate` in fresh processes on this machine for `--size small` and
`--size report` (all designs of the report), serially and with 2 local workers, and prints
replications per minute and peak memory. Run with ``python benchmarks/validate.py``
(``--reps`` and ``--report-reps`` change the number of replications timed).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from _measure import measure


def rate(size: str, reps: int, workers: int) -> tuple[float, float]:
    """Replications per minute and peak memory (GB) of one fresh `evaluation validate`."""
    with tempfile.TemporaryDirectory() as tmp:
        run = measure([sys.executable, "-m", "evaluation", "validate", "--size", size,
                       "--reps", str(reps), "--workers", str(workers), "--quiet",
                       "--out", str(Path(tmp) / "run")])
    return 60 * reps / run["seconds"], run["peak_gb"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=6, help="replications at --size small")
    parser.add_argument("--report-reps", type=int, default=2,
                        help="replications at --size report")
    args = parser.parse_args()
    for size, reps in (("small", args.reps), ("report", args.report_reps)):
        for workers in (1, 2):
            per_minute, peak = rate(size, reps, workers)
            print(f"--size {size:<6} --workers {workers}: {per_minute:6.2f} replications per "
                  f"minute ({reps} timed), peak memory {peak:.2f} GB")


if __name__ == "__main__":
    main()
