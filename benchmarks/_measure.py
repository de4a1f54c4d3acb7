"""Run a command in a fresh process and report its wall time and peak memory."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

#: Runs ``sys.argv[1:]`` and prints wall seconds, peak resident memory (GB) and output tails.
MEASURE = textwrap.dedent("""
    import json, resource, subprocess, sys, time
    started = time.perf_counter()
    done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2
    print(json.dumps({"seconds": seconds, "peak_gb": peak, "code": done.returncode,
                      "stdout": done.stdout[-2000:], "stderr": done.stderr[-2000:]}))
""")


def measure(command: list[str]) -> dict:
    """Run ``command`` in a fresh process; return wall seconds, peak memory (GB) and output.

    Raises ``RuntimeError`` with the end of stderr when the command fails.
    """
    done = subprocess.run([sys.executable, "-c", MEASURE, *command], check=True,
                          capture_output=True, text=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["code"] != 0:
        raise RuntimeError(f"{command[:4]} failed: {result['stderr']}")
    return result
