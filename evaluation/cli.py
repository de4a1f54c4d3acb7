"""The ``evaluation`` command line (also ``python -m evaluation``).

Sub-commands::

    evaluation simulate [--scenario NAME] [--seed N] [--people N] --out DIR
    evaluation estimate --data FILE --unit COL --time COL (--cohort COL | --treatment COL)
        --outcome COL [--window first-spell] [--never-treated VALUE] [--covariates COL,COL]
        [--where EXPR] [--estimator NAME (see --help: the registry's estimators)]
        [--control never|notyet] [--method dr|ipw|reg] [--base-period varying|universal]
        [--anticipation K] [--effects L] [--placebo K]
        [--aggregate none|simple|event|group|calendar] [--cluster COL] [--weights COL]
        [--small-sample] [--se analytic|cr2|cr3|bootstrap|wild|randomization]
        [--wild-weights W] [--wild-null N] [--critical-values normal|t] [--draws B]
        [--seed S] [--alpha 0.05] [--allow-partial] --output FILE.csv
    evaluation match --data FILE --unit COL --treatment COL --covariates COL,COL
        [--method nearest|optimal|cem|ebal|ipw]
        [--distance logit|probit|mahalanobis|robust_mahalanobis|euclidean|scaled_euclidean]
        [--ratio K] [--replace] [--caliper X] [--exact COL,COL]
        [--order largest|smallest|random|data] [--discard none|both|control|treated]
        [--on-nonconvergence error|penalize] [--seed S] --output FILE.csv
        [--balance FILE.csv]
    evaluation validate --scenario NAME [--reps R] [--size small|report] [--seed S]
        [--workers N | --scheduler ADDRESS] [--designs LIST] [--outcomes LIST] [--quiet]
        --out DIR
    evaluation import-statfin --statfin FILE.csv --trials FILE.csv [--allow-unknown-codes]
        --out DIR [--overwrite]
    evaluation report --data DIR --out DIR [--wave W] [--outcomes COL,COL] [--seed S]
        [--threshold N] [--quiet] [--validation DIR | --validation-reps R]

Exit status: 0 success; 2 an error the user can fix (bad options, bad data, an output that
would replace an input, an estimand the data cannot identify), reported in ONE line on
stderr naming the problem and the fix, argparse's own errors included; 1 an internal error
(a bug), reported in one line that names the file holding the full traceback; 130
interrupted. No command overwrites its inputs or a foreign non-empty directory (without
``--overwrite``), and a failed command leaves no file behind (:mod:`evaluation.outputs`).
"""

from __future__ import annotations

import argparse
import functools
import re
import sys
import tempfile
import traceback
import warnings
from collections.abc import Sequence
from typing import NoReturn

from evaluation.errors import EvaluationError, InvalidOptionError
from evaluation.outputs import Outputs, check_outputs


class UsageError(Exception):
    """A command line argparse rejected (one line, exit status 2)."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (no usage block) and do not exit."""

    def error(self, message: str) -> NoReturn:
        """Raise :class:`UsageError` with ``PROG: error: MESSAGE`` and where to get help."""
        text = " ".join(message.split())
        raise UsageError(f"{self.prog}: error: {text}; see `{self.prog} --help`.")


def _simulate(args: argparse.Namespace) -> int:
    from evaluation.simulate import write_synthetic_data

    manifest = write_synthetic_data(args.out, scenario=args.scenario, seed=args.seed,
                                    n_people=args.people, wave_number=args.wave,
                                    n_municipalities=args.municipalities,
                                    overwrite=args.overwrite)
    print(f"wrote synthetic data and {manifest}")
    return 0


def _never_treated(value: str) -> object:
    """Parse ``--never-treated``: a number, ``nan``, or a string label."""
    if value.lower() in ("nan", "na", ""):
        return float("nan")
    try:
        number = float(value)
    except ValueError:
        return value
    return int(number) if number.is_integer() else number


def _columns(value: str | None) -> list[str]:
    return [c.strip() for c in (value or "").split(",") if c.strip()]


def _write_csv(tables: dict[str, object]) -> None:
    """Write tables to CSV files (path -> table) atomically, all or none.

    Parent directories are created; on failure nothing is left behind
    (:class:`~evaluation.outputs.Outputs`).
    """
    with Outputs() as outputs:
        for path, table in tables.items():
            outputs.write(path, lambda tmp, t=table: t.to_csv(tmp, index=False))


def _estimate(args: argparse.Namespace) -> int:
    from evaluation.estimators._identification import check_estimates, check_periods
    from evaluation.estimators.registry import estimate_table
    from evaluation.options import check_alpha, check_seed
    from evaluation.sources.files import load_estimation_data

    check_outputs({"--output": args.output}, {"--data": args.data})
    check_alpha("--alpha", args.alpha)
    check_seed("--seed", args.seed)
    if args.cohort is None and args.treatment is None:
        raise InvalidOptionError(
            "name the treatment: --cohort COL (first treated period of each unit) or "
            "--treatment COL (0/1 status per row, for treatment that switches off; dcdh "
            "needs it).")
    covariates = _columns(args.covariates)
    wanted = [args.unit, args.time, args.outcome, *covariates,
              *[c for c in (args.cohort, args.treatment, args.cluster, args.weights) if c]]
    data = load_estimation_data(args.data, wanted, args.where)
    check_periods(data, args.time)
    with warnings.catch_warnings(record=True) as caught:  # re-issued below, kept as hints
        warnings.simplefilter("always")
        table = estimate_table(
            data, unit=args.unit, time=args.time, cohort=args.cohort, outcome=args.outcome,
            treatment=args.treatment, window=args.window,
            never_treated=_never_treated(args.never_treated), covariates=covariates,
            estimator=args.estimator, aggregate=args.aggregate, cluster=args.cluster,
            weights=args.weights, alpha=args.alpha, control=args.control, method=args.method,
            base_period=args.base_period, anticipation=args.anticipation, se=args.se,
            draws=args.draws, seed=args.seed, small_sample=args.small_sample or None,
            wild_weights=args.wild_weights, wild_null=args.wild_null,
            critical_values=args.critical_values, effects=args.effects, placebo=args.placebo)
    for item in caught:
        warnings.warn_explicit(item.message, item.category, item.filename, item.lineno)
    table = check_estimates(
        table, data, unit=args.unit, time=args.time, cohort=args.cohort, outcome=args.outcome,
        never_treated=_never_treated(args.never_treated), covariates=covariates,
        anticipation=args.anticipation or 0, se=args.se, cluster=args.cluster,
        allow_partial=args.allow_partial, hints=[str(item.message) for item in caught])
    _write_csv({args.output: table})
    print(f"wrote {len(table)} estimates to {args.output}")
    return 0


#: Columns of the balance file written by ``evaluation match --balance``.
BALANCE_FILE_COLUMNS = ("mean_treated", "mean_control", "smd_before", "smd_after",
                        "var_ratio_before", "var_ratio_after", "ecdf_max_after")


def _match(args: argparse.Namespace) -> int:
    from evaluation.matching import match
    from evaluation.options import check_seed
    from evaluation.sources.files import read_data_file

    check_outputs({"--output": args.output, "--balance": args.balance}, {"--data": args.data})
    check_seed("--seed", args.seed)
    covariates, exact = _columns(args.covariates), _columns(args.exact)
    from evaluation.matching.matcher import COVARIATE_DISTANCES, SCORE_DISTANCES

    score = [] if args.distance in SCORE_DISTANCES + COVARIATE_DISTANCES else [args.distance]
    data = read_data_file(args.data, [args.unit, args.treatment, *covariates, *exact, *score])
    result = match(data, unit=args.unit, treatment=args.treatment, covariates=covariates,
                   method=args.method, distance=args.distance, ratio=args.ratio,
                   replace=args.replace, caliper=args.caliper, exact=exact or None,
                   order=args.order, discard=args.discard, seed=args.seed,
                   on_nonconvergence=args.on_nonconvergence)
    kept = result.to_frame()
    tables = {args.output: kept}
    if args.balance:
        tables[args.balance] = result.balance().loc[:, list(BALANCE_FILE_COLUMNS)].reset_index()
    _write_csv(tables)
    sizes = result.sample_sizes()
    print(f"wrote {len(kept)} units ({int(sizes.loc['Matched', 'treated'])} treated, "
          f"{int(sizes.loc['Matched', 'control'])} controls) to {args.output}")
    if args.balance:
        print(f"wrote balance of {len(tables[args.balance])} variables to {args.balance}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from evaluation.report.build import build_report

    path = build_report(args.data, args.out, wave=args.wave,
                        outcomes=_columns(args.outcomes) or None, seed=args.seed,
                        threshold=args.threshold, timeout=args.timeout, quiet=args.quiet,
                        validation=args.validation, validation_reps=args.validation_reps,
                        overwrite=args.overwrite)
    print(f"wrote {path}")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from evaluation.validation import validate

    run = validate(args.out, scenario=args.scenario, reps=args.reps, size=args.size,
                   seed=args.seed, designs=_columns(args.designs) or None,
                   outcomes=_columns(args.outcomes) or None,
                   workers=args.workers, scheduler=args.scheduler, quiet=args.quiet,
                   overwrite=args.overwrite)
    print(f"{run.ran} replications run, {run.reused} reused; wrote {args.out}/summary.csv "
          f"({len(run.table)} rows), estimates.parquet and distributions.png")
    return 0


def _import_statfin(args: argparse.Namespace) -> int:
    from evaluation.sources.trial_assignment import write_municipal_extract

    manifest = write_municipal_extract(args.statfin, args.trials, args.out,
                                       overwrite=args.overwrite,
                                       allow_unknown_codes=args.allow_unknown_codes)
    print(f"wrote the municipal panel and {manifest}")
    return 0


#: Values of ``estimate --se`` (which estimators take each is in its help).
SE_CHOICES = ("analytic", "cr2", "cr3", "bootstrap", "wild", "randomization")


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of the ``evaluation`` command."""
    from evaluation.estimators.registry import AGGREGATIONS, REGISTRY
    from evaluation.options import DEFAULT_RANDOM_SEED
    from evaluation.synthetic.scenario import DEFAULT_SEED, SCENARIOS

    parser = _Parser(
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
    _overwrite_flag(sim)
    sim.set_defaults(func=_simulate)

    est = sub.add_parser("estimate", help="estimate treatment effects from a long panel file")
    est.add_argument("--data", required=True, help="panel in .csv or .parquet format")
    est.add_argument("--unit", required=True)
    est.add_argument("--time", required=True)
    est.add_argument("--cohort", default=None,
                     help="first treated period of each unit (absorbing treatment)")
    est.add_argument("--treatment", default=None,
                     help="0/1 treatment-status column, per row: treatment that switches off "
                          "(dcdh needs it; with the other estimators it is checked to be "
                          "absorbing, or cut with --window first-spell)")
    est.add_argument("--window", default=None, choices=("first-spell",),
                     help="estimate on each unit's first treatment spell (observations after "
                          "it ends are dropped; recorded in the result)")
    est.add_argument("--effects", type=int, default=None,
                     help="dcdh: effects after the first switch, 1..L (default 1)")
    est.add_argument("--placebo", type=int, default=None,
                     help="dcdh: placebos before the first switch, -1..-K (default 0)")
    est.add_argument("--outcome", required=True)
    est.add_argument("--never-treated", default="nan",
                     help="cohort value of never-treated units (default NaN; R did uses 0)")
    est.add_argument("--covariates", default="", help="comma-separated covariate columns")
    est.add_argument("--where", default=None,
                     help='row filter as a pandas query, e.g. "target_group == True"')
    est.add_argument("--estimator", default="cs", choices=tuple(REGISTRY),
                     help="; ".join(f"{e.name}: {e.label}, {e.description} (aggregate: "
                                    f"{', '.join(e.aggregations)})" for e in REGISTRY.values()))
    est.add_argument("--control", default=None, choices=("never", "notyet"),
                     help="cs: comparison units (default never)")
    est.add_argument("--method", default=None, choices=("dr", "ipw", "reg"),
                     help="cs: doubly robust, IPW or outcome regression (default dr)")
    est.add_argument("--base-period", default=None, choices=("varying", "universal"),
                     help="cs: base period of pre-treatment effects (default varying)")
    est.add_argument("--anticipation", type=int, default=None,
                     help="cs: periods of anticipation (default 0)")
    est.add_argument("--aggregate", default="none", choices=AGGREGATIONS)
    est.add_argument("--cluster", default=None, help="cluster column of the standard errors "
                     "(default: the unit)")
    est.add_argument("--weights", default=None,
                     help="sampling-weight column (constant within unit)")
    est.add_argument("--small-sample", action="store_true",
                     help="twfe, sa: multiply the cluster-robust covariance by "
                          "G/(G-1) x (N-1)/(N-K), with G clusters, N observations and K the "
                          "treatment regressors only (the absorbed unit and period effects "
                          "are not counted), as pyfixest's ssc(k_adj=True, k_fixef='none', "
                          "G_adj=True); default off: no correction, pyfixest's "
                          "ssc(k_adj=False, G_adj=False)")
    est.add_argument("--se", default=None, choices=SE_CHOICES,
                     help="inference: analytic (clustered, normal); cr2 (bias-reduced; "
                          "Bell-McCaffrey df for twfe, sa, bjs, did2s; t(G-1) for cs); cr3 (cs: "
                          "the leave-one-cluster-out jackknife, t(G-1)); bootstrap (cs, dcdh: "
                          "multiplier or cluster bootstrap); wild (twfe, sa, bjs, did2s: wild "
                          "cluster "
                          "bootstrap p-values and intervals); randomization (any estimator: "
                          "treatment re-assigned across the --cluster units, --aggregate "
                          "simple or event)")
    est.add_argument("--wild-weights", default=None, choices=("rademacher", "webb", "mammen"),
                     help="multipliers of the wild (and, for cs, the multiplier) bootstrap; "
                          "webb with few clusters")
    est.add_argument("--wild-null", default=None, choices=("restricted", "unrestricted"),
                     help="wild bootstrap with the null imposed (restricted, default) or not")
    est.add_argument("--critical-values", default=None, choices=("normal", "t"),
                     help="cs: reference distribution of the analytic and bootstrap intervals "
                          "(t: t(G-1) with G clusters; cr2 and cr3 always use it)")
    est.add_argument("--draws", type=int, default=None,
                     help="bootstrap draws (cs 999, wild 9999) or permutations (randomization "
                          "999)")
    est.add_argument("--seed", type=int, default=None,
                     help=f"seed of the bootstrap or permutations (default "
                          f"{DEFAULT_RANDOM_SEED})")
    est.add_argument("--alpha", type=float, default=0.05)
    est.add_argument("--output", required=True, help="CSV file for the estimates")
    est.add_argument("--allow-partial", action="store_true",
                     help="write the table even if some estimates are not identified (NaN), "
                          "with a `note` column giving the reason; default: fail")
    est.set_defaults(func=_estimate)

    mat = sub.add_parser("match", help="build a matched or weighted comparison group")
    mat.add_argument("--data", required=True, help="one row per unit, .csv or .parquet")
    mat.add_argument("--unit", required=True)
    mat.add_argument("--treatment", required=True, help="0/1 column (1 = treated)")
    mat.add_argument("--covariates", required=True, help="comma-separated covariate columns")
    mat.add_argument("--method", default="nearest",
                     choices=("nearest", "optimal", "cem", "ebal", "ipw"))
    mat.add_argument("--distance", default="logit",
                     help="logit, probit, mahalanobis, robust_mahalanobis, euclidean, "
                          "scaled_euclidean, or a column holding a user score")
    mat.add_argument("--ratio", type=int, default=1, help="controls per treated unit")
    mat.add_argument("--replace", action="store_true", help="match with replacement")
    mat.add_argument("--caliper", type=float, default=None,
                     help="caliper on the distance in standard deviations")
    mat.add_argument("--exact", default="", help="comma-separated columns to match exactly")
    mat.add_argument("--order", default=None, choices=("largest", "smallest", "random", "data"))
    mat.add_argument("--discard", default="none", choices=("none", "both", "control", "treated"))
    mat.add_argument("--on-nonconvergence", default="error", choices=("error", "penalize"),
                     help="a propensity fit that cannot converge (separation, categories with "
                          "too many levels): stop naming the covariate (default) or use a "
                          "ridge-penalised fit, with a warning")
    mat.add_argument("--seed", type=int, default=None, help="seed of --order random")
    mat.add_argument("--output", required=True, help="CSV file for the kept units")
    mat.add_argument("--balance", default=None, help="CSV file for the balance table")
    mat.set_defaults(func=_match)

    rep = sub.add_parser("report", help="execute the report notebooks and render HTML")
    rep.add_argument("--data", required=True, help="directory with the data and manifest")
    rep.add_argument("--out", required=True, help="output directory for the report")
    rep.add_argument("--wave", type=int, default=None, choices=(1, 2, 3),
                     help="wave evaluated (default: the wave of the jobseeker panel)")
    rep.add_argument("--outcomes", default=None,
                     help="comma-separated individual-level outcomes (default employed,"
                          "unemployed)")
    rep.add_argument("--seed", type=int, default=None,
                     help="seed of the random steps (default: the data's seed)")
    rep.add_argument("--threshold", type=int, default=5,
                     help="smallest count published from individual-level data (default 5)")
    rep.add_argument("--timeout", type=int, default=600,
                     help="seconds allowed per notebook cell (default 600)")
    rep.add_argument("--quiet", action="store_true",
                     help="no progress on stderr (notebook i of n, name, elapsed time)")
    rep.add_argument("--validation", default=None,
                     help="directory of a finished `evaluation validate` run for the "
                          "validation chapter (default: run a reduced one into OUT/validation)")
    rep.add_argument("--validation-reps", type=int, default=20,
                     help="replications of the reduced validation (default 20)")
    _overwrite_flag(rep)
    rep.set_defaults(func=_report)

    val = sub.add_parser("validate", help="design Monte Carlo: does the whole design recover "
                                          "the truth on simulated data")
    val.add_argument("--scenario", default="default", choices=sorted(SCENARIOS))
    val.add_argument("--reps", type=int, default=200, help="replications (default 200)")
    val.add_argument("--size", default="small", choices=("small", "report"),
                     help="data size of a replication (default small)")
    val.add_argument("--seed", type=int, default=DEFAULT_SEED,
                     help="seed every replication's seed is spawned from")
    where = val.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, default=1, help="local worker processes")
    where.add_argument("--scheduler", default=None,
                       help="address of a Dask distributed scheduler (tcp://host:port)")
    val.add_argument("--designs", default="",
                     help="comma-separated designs (default all: overall, services, placebo, "
                          "matched, alternatives)")
    val.add_argument("--outcomes", default="",
                     help="comma-separated individual-level outcomes (default employed,"
                          "unemployed)")
    val.add_argument("--quiet", action="store_true", help="no progress bar")
    val.add_argument("--out", required=True,
                     help="directory of the run (rerunning the same command resumes it)")
    _overwrite_flag(val, "; the directory of a run with the same settings is resumed "
                         "without it")
    val.set_defaults(func=_validate)

    imp = sub.add_parser("import-statfin",
                         help="build the municipal panel from a StatFin 12r5 CSV export")
    imp.add_argument("--statfin", required=True, help="CSV export of StatFin table tyonv 12r5")
    imp.add_argument("--allow-unknown-codes", action="store_true",
                     help="leave out rows whose area code does not parse (listed on stderr "
                          "and in the manifest) instead of failing")
    imp.add_argument("--trials", required=True,
                     help="CSV with municipality, wave, area (one row per municipality and wave)")
    imp.add_argument("--out", required=True, help="output directory")
    _overwrite_flag(imp)
    imp.set_defaults(func=_import_statfin)
    return parser


def _overwrite_flag(parser: argparse.ArgumentParser, extra: str = "") -> None:
    parser.add_argument("--overwrite", action="store_true",
                        help="write into --out even if it holds files this command did not "
                             f"write (default: refuse){extra}")


#: API advice the command line cannot follow, and what to say instead (regex, replacement).
_CLI_WORDING = (
    (re.compile(r"[Pp]ass missing='drop' to drop these rows or impute the values before "
                r"building the panel"),
     'drop these rows with --where (e.g. --where "COLUMN == COLUMN" keeps the rows where '
     "COLUMN is not missing) or impute the values in the file"),
    (re.compile(r"then pass missing='drop' or impute them"),
     "then drop those rows with --where or impute them"),
    (re.compile(r"replace infinite values with NaN and pass missing='drop'"),
     "drop these rows with --where (e.g. --where \"abs(COLUMN) < inf\")"),
    (re.compile(r"; no rows remain after missing='drop'"), ""),
    (re.compile(r"pass never_treated=(.+?) \(with the default never_treated=np\.nan only "
                r"missing cohorts mean never treated\)"),
     r"pass --never-treated \1 (by default only missing cohorts mean never treated)"),
    (re.compile(r"allow_unknown_codes=True"), "--allow-unknown-codes"),
    (re.compile(r"on_nonconvergence='(\w+)'"), r"--on-nonconvergence \1"),
)


def cli_wording(message: str) -> str:
    """Rewrite advice about Python arguments the command line lacks (``missing='drop'``).

    ``COLUMN`` in the advice becomes the first column the message names.
    """
    for pattern, replacement in _CLI_WORDING:
        message = pattern.sub(replacement, message)
    named = re.search(r"'([^']+)' \(", message)
    return message.replace("COLUMN", named.group(1) if named else "COLUMN")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (0, 2 user error, 1 internal error)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        print(exc, file=sys.stderr)
        return 2
    prog = f"evaluation {args.command}"
    issued: list[str] = []
    with warnings.catch_warnings():
        warnings.showwarning = functools.partial(_one_line_warning, issued)
        try:
            _check_paths_given(args)
            status = args.func(args)
            for line in dict.fromkeys(issued):  # each distinct warning once, after success
                print(line, file=sys.stderr)
            return status
        except (EvaluationError, OSError) as exc:
            message = cli_wording(" ".join(str(exc).split()))
            print(f"{prog}: error: {message}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print(f"{prog}: interrupted; no output was left half-written.", file=sys.stderr)
            return 130
        except Exception as exc:  # a bug: one line here, the traceback in a file
            print(f"{prog}: internal error: {type(exc).__name__}: "
                  f"{' '.join(str(exc).split())[:300]} (full traceback in "
                  f"{_save_traceback(prog)}; please report it).", file=sys.stderr)
            return 1


def _save_traceback(prog: str) -> str:
    """Write the current exception's traceback to a temporary file; return its path."""
    with tempfile.NamedTemporaryFile("w", prefix="evaluation-traceback-", suffix=".txt",
                                     delete=False, encoding="utf-8") as handle:
        handle.write(f"{prog}\n{traceback.format_exc()}")
    return handle.name


def _one_line_warning(issued: list[str], message, category, filename, lineno, file=None,
                      line=None) -> None:
    """Collect a warning as one line (no source lines), printed when the command succeeds.

    A failing command prints only its error line: the warnings that led to it are part of
    the diagnosis the error gives.
    """
    text = cli_wording(" ".join(str(message).split()))
    issued.append(f"evaluation: warning ({category.__name__}): {text}")


def _check_paths_given(args: argparse.Namespace) -> None:
    """Refuse empty output paths (``--out ""`` would mean the working directory)."""
    from evaluation.outputs import check_path_given

    for name in ("out", "output", "balance"):
        value = getattr(args, name, None)
        if value is not None:
            check_path_given(f"--{name}", value)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
