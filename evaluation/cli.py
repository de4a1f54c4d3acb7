"""The ``evaluation`` command line (also ``python -m evaluation``).

Sub-commands::

    evaluation simulate [--scenario NAME] [--seed N] [--people N] --out DIR
    evaluation report --data DIR --out DIR

Errors the user can fix (bad options, bad data) end with a one-line message on stderr
and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from evaluation.errors import EvaluationError


def _simulate(args: argparse.Namespace) -> int:
    from evaluation.simulate import write_synthetic_data

    manifest = write_synthetic_data(args.out, scenario=args.scenario, seed=args.seed,
                                    n_people=args.people, wave_number=args.wave,
                                    n_municipalities=args.municipalities)
    print(f"wrote synthetic data and {manifest}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from evaluation.report import build_report

    path = build_report(args.data, args.out, timeout=args.timeout)
    print(f"wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of the ``evaluation`` command."""
    from evaluation.simulate import DEFAULT_SEED, SCENARIOS

    parser = argparse.ArgumentParser(
        prog="evaluation",
        description="Causal impact evaluation of the Finnish municipal employment trials.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    sim = sub.add_parser("simulate", help="write synthetic panels with their true effects")
    sim.add_argument("--scenario", default="default", choices=sorted(SCENARIOS))
    sim.add_argument("--seed", type=int, default=DEFAULT_SEED)
    sim.add_argument("--people", type=int, default=50_000,
                     help="number of people in the jobseeker panel (default 50000)")
    sim.add_argument("--wave", type=int, default=3, choices=(1, 2, 3),
                     help="trial wave of the jobseeker panel (default 3)")
    sim.add_argument("--municipalities", type=int, default=309)
    sim.add_argument("--out", required=True, help="output directory")
    sim.set_defaults(func=_simulate)

    rep = sub.add_parser("report", help="execute the report notebooks and render HTML")
    rep.add_argument("--data", required=True, help="directory with the data and manifest")
    rep.add_argument("--out", required=True, help="output directory for the report")
    rep.add_argument("--timeout", type=int, default=600,
                     help="seconds allowed per notebook cell (default 600)")
    rep.set_defaults(func=_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (EvaluationError, FileNotFoundError, PermissionError) as exc:
        message = " ".join(str(exc).split())
        print(f"evaluation {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
