"""Time the report build: simulation, every notebook, and the whole `evaluation report`.

Target (issue 6): `make report` on a fresh clone, installation included, in under 10 minutes
on the 2-core reference machine. This script times the two steps after installation in fresh
processes and prints the run time of each notebook from the report manifest. Run with
``python benchmarks/report.py`` (``--people`` to change the jobseeker panel size).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from _measure import measure

TARGET_SECONDS = 600


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--people", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=20120901)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data, out = Path(tmp) / "data", Path(tmp) / "report"
        simulate = measure([sys.executable, "-m", "evaluation", "simulate", "--people",
                            str(args.people), "--seed", str(args.seed), "--out", str(data)])
        report = measure([sys.executable, "-m", "evaluation", "report", "--data", str(data),
                          "--out", str(out)])
        manifest = json.loads((out / "manifest.json").read_text())
        size = (out / "teas_report.html").stat().st_size / 1e6
    print(f"simulate ({args.people:,} people): {simulate['seconds']:6.1f} s, "
          f"peak {simulate['peak_gb']:.2f} GB")
    print(f"report (9 notebooks):        {report['seconds']:6.1f} s, "
          f"peak {report['peak_gb']:.2f} GB, HTML {size:.1f} MB")
    for run in manifest["notebooks"]:
        print(f"  {run['notebook']:<28} {run['seconds']:6.1f} s")
    total = simulate["seconds"] + report["seconds"]
    print(f"simulate + report: {total:.0f} s = {total / TARGET_SECONDS:.2f} x the "
          f"{TARGET_SECONDS} s budget of `make report` (installation not included)")


if __name__ == "__main__":
    main()
