"""Hostile-input corpus of the command line: every case one line, no traceback, no damage.

Each case (``tests/_hostile.py``: :class:`Case`, :func:`problems`) runs ``evaluation ...``
in an empty temporary directory holding only its input files, and is checked for the exit
status, exactly one stderr line with the expected text (errors), no traceback, inputs
byte-identical afterwards and no leftover file or directory. Lenient inputs the README
promises (unbalanced panels, a BOM, unicode column names, StatFin ``..``) must succeed.
``benchmarks/hostile_corpus.py`` prints the corpus table by command.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from _hostile import FIXTURES, Case, problems, run_case, snapshot, write_fixtures

from evaluation.errors import (
    IdentificationError,
    InvalidOptionError,
    OutputError,
    ReportError,
)

ROLES = ("--unit", "unit", "--time", "time", "--cohort", "cohort", "--outcome", "y",
         "--never-treated", "0")


def est(name: str, *extra: str, data: str = "panel.csv", output: str = "out.csv",
        status: int = 2, message: str = "", files: tuple[str, ...] | None = None,
        outputs: tuple[str, ...] | None = None, roles: tuple[str, ...] = ROLES) -> Case:
    """An ``estimate`` case on ``data`` (a fixture) writing ``output``."""
    argv = ("estimate", "--data", data, *roles, *extra)
    if output is not None:
        argv = (*argv, "--output", output)
    return Case(f"estimate-{name}", "estimate", argv, files if files is not None else (data,),
                status, message, outputs if outputs is not None else (output,) if output
                else ())


def mat(name: str, *extra: str, status: int = 2, message: str = "",
        data: str = "units.csv", covariates: str = "x,z", output: str | None = "m.csv",
        outputs: tuple[str, ...] = ("m.csv",)) -> Case:
    """A ``match`` case on the one-row-per-unit fixture ``data``."""
    argv = ("match", "--data", data, "--unit", "unit", "--treatment", "treated",
            "--covariates", covariates, *extra)
    if output is not None:
        argv = (*argv, "--output", output)
    files = tuple(f for f in (data, "file") if f in FIXTURES)
    return Case(f"match-{name}", "match", argv, files, status, message, outputs)


def sim(name: str, *extra: str, out: str | None = "sim", status: int = 2, message: str = "",
        files: tuple[str, ...] = (), modified: tuple[str, ...] = ()) -> Case:
    """A ``simulate`` case (errors only: a full simulation takes too long for the corpus)."""
    argv = ("simulate", *extra, *(("--out", out) if out is not None else ()))
    return Case(f"simulate-{name}", "simulate", argv, files, status, message,
                modified=modified)


def imp(name: str, *extra: str, statfin: str = "12r5.csv", trials: str = "trials.csv",
        out: str | None = "ext", status: int = 2, message: str = "",
        files: tuple[str, ...] | None = None, outputs: tuple[str, ...] = ("ext",),
        modified: tuple[str, ...] = ()) -> Case:
    """An ``import-statfin`` case."""
    argv = ("import-statfin", "--statfin", statfin, "--trials", trials, *extra,
            *(("--out", out) if out is not None else ()))
    names = files if files is not None else tuple(dict.fromkeys(
        f for f in (statfin, trials) if f in FIXTURES))
    return Case(f"import-statfin-{name}", "import-statfin", argv, names, status, message,
                outputs, modified=modified)


def rep(name: str, *extra: str, data: str = "data", out: str | None = "rep",
        status: int = 2, message: str = "", files: tuple[str, ...] | None = None) -> Case:
    """A ``report`` case that must fail before any notebook runs."""
    argv = ("report", "--data", data, *extra, *(("--out", out) if out is not None else ()))
    names = files if files is not None else (data,) if data.startswith("data") else ()
    return Case(f"report-{name}", "report", argv, names, status, message)


def val(name: str, *extra: str, out: str | None = "run-new", status: int = 2,
        message: str = "", files: tuple[str, ...] = ()) -> Case:
    """A ``validate`` case that must fail before any replication runs."""
    argv = ("validate", *extra, *(("--out", out) if out is not None else ()))
    return Case(f"validate-{name}", "validate", argv, files, status, message)


ESTIMATE = [
    est("ok-csv", status=0),
    est("ok-parquet", data="panel.parquet", status=0),
    est("ok-event-twfe", "--estimator", "twfe", "--aggregate", "event", status=0),
    est("ok-bjs-simple", "--estimator", "bjs", "--aggregate", "simple", status=0),
    est("ok-sa", "--estimator", "sa", status=0),
    est("ok-nested-output", output="new/dir/out.csv", status=0, outputs=("new",)),
    est("lenient-bom", data="bom.csv", status=0),
    est("lenient-unbalanced", data="unbalanced.csv", status=0, message="warning"),
    est("lenient-unicode-columns", data="unicode.csv", status=0,
        roles=("--unit", "kunta", "--time", "kuukausi", "--cohort", "cohort", "--outcome",
               "työttömyys", "--never-treated", "0")),
    est("partial-constant-covariate", "--covariates", "c", "--allow-partial",
        data="constant.csv", status=0, message="not identified"),
    # outputs that are inputs
    est("output-is-data-csv", output="panel.csv", message="would destroy the input"),
    est("output-is-data-parquet", data="panel.parquet", output="panel.parquet",
        message="would destroy the input"),
    est("output-is-data-other-spelling", output="./sub/../panel.csv",
        message="would destroy the input"),
    Case("estimate-output-symlink-to-data", "estimate",
         ("estimate", "--data", "panel.csv", *ROLES, "--output", "link.csv"), ("panel.csv",),
         message="would destroy the input", links=(("link.csv", "panel.csv"),)),
    Case("estimate-data-symlink-output-target", "estimate",
         ("estimate", "--data", "link.csv", *ROLES, "--output", "panel.csv"), ("panel.csv",),
         message="would destroy the input", links=(("link.csv", "panel.csv"),)),
    est("output-is-directory", output="foreign", files=("panel.csv", "foreign"),
        message="is a directory"),
    est("output-parent-is-file", output="file/out.csv", files=("panel.csv", "file"),
        message="is a file, not a directory"),
    est("output-empty", output="", message="--output is empty"),
    # unreadable data
    est("data-missing", data="nope.csv", files=(), message="does not exist"),
    est("data-extension", data="panel.txt", message="must end in .csv or .parquet"),
    est("data-empty-file", data="empty.csv", message="empty.csv"),
    est("data-header-only", data="header_only.csv", message="header_only.csv"),
    est("data-binary", data="binary.csv", message="binary.csv"),
    est("data-broken-parquet", data="broken.parquet", message="broken.parquet"),
    est("data-is-directory", data="foreign", files=("foreign",), message="foreign"),
    est("column-missing", roles=("--unit", "unit", "--time", "time", "--cohort", "cohort",
                                 "--outcome", "nothere", "--never-treated", "0"),
        message="nothere"),
    est("outcome-text", data="text_y.csv", message="must be numeric"),
    est("duplicate-rows", data="duplicated.csv", message="more than once"),
    est("missing-outcome-cli-wording", data="missing_y.csv",
        message='drop these rows with --where (e.g. --where "y == y" keeps the rows where y '
                "is not missing) or impute the values in the file"),
    est("infinite-outcome-cli-wording", data="infinite_y.csv",
        message='drop these rows with --where (e.g. --where "abs(y) < inf")'),
    est("single-period", data="single_period.csv", message="single period (time = 1)"),
    # unidentified estimands
    est("no-treated-unit", data="untreated.csv", message="no unit is treated"),
    est("every-cohort-first-period", data="first_period.csv", message="first period"),
    est("anticipation-50", "--anticipation", "50", message="anticipation"),
    est("constant-covariate", "--covariates", "c", data="constant.csv",
        message="'c' are constant or collinear"),
    est("collinear-covariates", "--covariates", "x,x2", data="collinear.csv",
        message="'x2' are constant or collinear"),
    est("bootstrap-two-units", "--se", "bootstrap", data="two_units.csv",
        message="too few units"),
    # options
    est("alpha-1.5-twfe", "--estimator", "twfe", "--alpha", "1.5", message="--alpha=1.5"),
    est("alpha-nan-bjs", "--estimator", "bjs", "--alpha", "nan", message="--alpha=nan"),
    est("alpha-zero", "--alpha", "0", message="strictly between 0 and 1"),
    est("alpha-negative-sa", "--estimator", "sa", "--alpha", "-0.1",
        message="strictly between 0 and 1"),
    est("alpha-inf", "--alpha", "inf", message="strictly between 0 and 1"),
    est("alpha-text", "--alpha", "five", message="invalid float value: 'five'"),
    est("seed-negative", "--se", "bootstrap", "--seed", "-1", message="--seed=-1"),
    est("seed-negative-twfe", "--estimator", "twfe", "--se", "wild", "--seed", "-5",
        message="--seed=-5"),
    est("seed-text", "--seed", "x", message="invalid int value: 'x'"),
    est("draws-zero", "--se", "bootstrap", "--draws", "0", message="draws=0"),
    est("anticipation-negative", "--anticipation", "-1", message="anticipation=-1"),
    est("estimator-choice", "--estimator", "nope", message="invalid choice: 'nope'"),
    est("aggregate-choice", "--aggregate", "yearly", message="invalid choice: 'yearly'"),
    est("aggregate-unsupported", "--estimator", "sa", "--aggregate", "simple",
        message="is not available for sa"),
    est("option-unused", "--estimator", "twfe", "--method", "dr", message="does not use"),
    est("randomization-without-cluster", "--se", "randomization", "--aggregate", "simple",
        message="--cluster"),
    est("cluster-missing-column", "--cluster", "region", message="region"),
    est("where-invalid", "--where", "y >>> 2", message="could not apply the row filter"),
    est("where-selects-nothing", "--where", "y > 1e9", message="selects no rows"),
    est("never-treated-wrong", "--never-treated", "99", message="pass --never-treated 0"),
    est("missing-output", output=None, message="required: --output"),
    est("unknown-flag", "--bogus", message="unrecognized arguments: --bogus"),
    Case("estimate-no-arguments", "estimate", ("estimate",), message="required"),
    Case("no-command", "cli", (), message="required: command"),
    Case("unknown-command", "cli", ("estimat",), message="invalid choice: 'estimat'"),
]

MATCH = [
    mat("ok", status=0),
    mat("ok-with-balance", "--balance", "b.csv", status=0, outputs=("m.csv", "b.csv")),
    mat("ok-random-order", "--order", "random", "--seed", "3", status=0),
    mat("output-is-data", output="units.csv", message="would destroy the input"),
    mat("balance-is-data", "--balance", "units.csv", message="would destroy the input"),
    mat("output-equals-balance", "--balance", "m.csv", message="are the same file"),
    mat("output-equals-balance-spelling", "--balance", "./m.csv", message="are the same file"),
    Case("match-output-symlink-to-data", "match",
         ("match", "--data", "units.csv", "--unit", "unit", "--treatment", "treated",
          "--covariates", "x", "--output", "l.csv"), ("units.csv",),
         message="would destroy the input", links=(("l.csv", "units.csv"),)),
    mat("output-parent-is-file", output="file/m.csv", message="is a file"),
    mat("balance-parent-is-file", "--balance", "units.csv/b.csv", message="is a file"),
    mat("seed-negative", "--order", "random", "--seed", "-1", message="--seed=-1"),
    mat("method-choice", "--method", "magic", message="invalid choice: 'magic'"),
    mat("ratio-zero", "--ratio", "0", message="ratio"),
    mat("ratio-text", "--ratio", "two", message="invalid int value: 'two'"),
    mat("caliper-negative", "--caliper", "-1", message="caliper"),
    mat("caliper-tiny", "--caliper", "1e-12", message="caliper"),
    mat("all-treated", data="units_all_treated.csv", message="treated"),
    mat("three-levels", data="units_three_levels.csv", message="treated"),
    mat("covariate-missing", covariates="x,nothere", message="nothere"),
    mat("exact-missing", "--exact", "nothere", message="nothere"),
    mat("distance-column-missing", "--distance", "score", message="score"),
    mat("data-missing", data="nope.csv", message="does not exist"),
    mat("missing-output", output=None, message="required: --output"),
    mat("order-choice", "--order", "sideways", message="invalid choice: 'sideways'"),
]

SIMULATE = [
    Case("simulate-ok-small", "simulate", ("simulate", "--people", "200", "--municipalities",
                                           "100", "--out", "new/sim"), status=0,
         outputs=("new",)),
    sim("out-empty", out="", message="is empty"),
    sim("out-parent-is-file", out="file/sim", files=("file",), message="is a file"),
    sim("out-is-file", out="file", files=("file",), message="is an existing file"),
    sim("into-imported-extract", out="extract", files=("extract",), message="--overwrite"),
    sim("into-foreign-directory", out="foreign", files=("foreign",), message="--overwrite"),
    sim("into-report-directory", out="oldreport", files=("oldreport",), message="--overwrite"),
    sim("scenario-choice", "--scenario", "nope", message="invalid choice: 'nope'"),
    sim("people-zero", "--people", "0", message="n_people"),
    sim("municipalities-50", "--municipalities", "50", message="n_municipalities=50"),
    sim("wave-choice", "--wave", "4", message="invalid choice: 4"),
    sim("seed-negative", "--seed", "-1", message="seed=-1"),
    sim("seed-text", "--seed", "1.5", message="invalid int value: '1.5'"),
    sim("missing-out", out=None, message="required: --out"),
    sim("failure-in-new-nested-directory", "--people", "0", out="new/deep/sim",
        message="n_people"),
]

IMPORT = [
    imp("ok", status=0),
    imp("lenient-statfin-dots", statfin="12r5_dots.csv", status=0),
    imp("rerun-into-own-extract", status=0, files=("12r5.csv", "trials.csv", "extract"),
        out="extract", outputs=("extract",)),
    imp("overwrite-foreign", "--overwrite", status=0, out="foreign",
        files=("12r5.csv", "trials.csv", "foreign"), outputs=("foreign",)),
    imp("out-is-statfin", out="12r5.csv", message="is an existing file"),
    imp("out-holds-inputs", out=".", message="holds the input"),
    imp("out-parent-is-file", out="file/ext", files=("12r5.csv", "trials.csv", "file"),
        message="is a file"),
    imp("out-empty", out="", message="is empty"),
    imp("into-foreign-directory", out="foreign", files=("12r5.csv", "trials.csv", "foreign"),
        message="--overwrite"),
    imp("statfin-missing", statfin="nope.csv", message="nope.csv"),
    imp("trials-missing", trials="nope.csv", message="nope.csv"),
    imp("trials-bad-wave", trials="trials_bad_wave.csv", message="wave"),
    imp("statfin-binary", statfin="binary.csv", message="binary.csv"),
    imp("statfin-empty", statfin="empty.csv", message="empty.csv"),
    imp("trials-is-statfin", trials="12r5.csv", message="12r5.csv"),
    imp("statfin-is-panel", statfin="panel.csv", message="panel.csv"),
    imp("missing-out", out=None, message="required: --out"),
]

REPORT = [
    rep("data-missing", data="nowhere", message="nowhere"),
    rep("data-empty-directory", data="foreign/", files=("foreign/",), message="lacks"),
    rep("manifest-not-json", data="data_not_json", message="is not valid JSON"),
    rep("manifest-list", data="data_list", message="not an object"),
    rep("manifest-wave-text", data="data_wave_text", message="jobseeker_wave='three'"),
    rep("manifest-wave-float", data="data_wave_float", message="jobseeker_wave=2.5"),
    rep("manifest-seed-text", data="data_seed_text", message="seed='x'"),
    rep("out-equals-data", out="data", message="is the input --data"),
    rep("out-holds-data", out=".", message="holds the input --data"),
    rep("out-parent-is-file", out="file/rep", files=("data", "file"), message="is a file"),
    rep("out-is-file", out="file", files=("data", "file"), message="is an existing file"),
    rep("out-empty", out="", message="--out is empty"),
    rep("out-foreign-directory", out="foreign", files=("data", "foreign"),
        message="--overwrite"),
    rep("threshold-zero", "--threshold", "0", message="threshold=0"),
    rep("validation-reps-zero", "--validation-reps", "0", message="validation_reps=0"),
    rep("validation-missing", "--validation", "nowhere", message="nowhere"),
    rep("validation-is-out", "--validation", "rep", files=("data", "foreign"),
        message="is the input --validation"),
    rep("wave-choice", "--wave", "4", message="invalid choice: 4"),
    rep("seed-text", "--seed", "x", message="invalid int value: 'x'"),
    rep("seed-negative", "--seed", "-4", message="seed=-4"),
    rep("missing-out", out=None, message="required: --out"),
]

VALIDATE = [
    val("reps-zero", "--reps", "0", message="reps=0"),
    val("workers-zero", "--workers", "0", message="workers=0"),
    val("design-unknown", "--designs", "overall,nope", message="design='nope'"),
    val("seed-negative", "--seed", "-3", message="seed=-3"),
    val("size-choice", "--size", "huge", message="invalid choice: 'huge'"),
    val("workers-and-scheduler", "--workers", "2", "--scheduler", "tcp://x:1",
        message="not allowed with argument"),
    val("out-parent-is-file", out="file/run", files=("file",), message="is a file"),
    val("out-is-file", out="file", files=("file",), message="is an existing file"),
    val("out-empty", out="", message="--out is empty"),
    val("out-foreign-directory", out="foreign", files=("foreign",), message="--overwrite"),
    val("out-other-settings", "--designs", "overall", "--outcomes", "employed", out="run",
        files=("run",), message="holds a validation run with other settings"),
    val("out-config-not-json", out="badrun", files=("badrun",), message="config.json"),
    val("missing-out", out=None, message="required: --out"),
]


def _estimate_api(**options: object):
    def call(root):
        from _hostile import tiny_panel

        from evaluation.estimators.registry import estimate_table

        return estimate_table(tiny_panel(), unit="unit", time="time", cohort="cohort",
                              outcome="y", never_treated=0, **options)
    return call


def _check_outputs_api(outputs, inputs, **options):
    def call(root):
        from evaluation.outputs import check_outputs

        check_outputs(outputs, inputs, **options)
    return call


def _simulate_api(out, **options):
    def call(root):
        from evaluation.simulate import write_synthetic_data

        write_synthetic_data(root / out, **options)
    return call


def _atomic_failure(root):
    """A writer that fails half-way: nothing may be left, not even the new directory."""
    from evaluation.outputs import Outputs

    def half(tmp):
        tmp.write_text("half a file")
        raise OutputError("disk full (simulated)")

    with Outputs() as outputs:
        outputs.write(root / "new" / "a.csv", lambda tmp: tmp.write_text("complete\n"))
        outputs.write(root / "new" / "b.csv", half)


def _interrupted(root):
    from evaluation.outputs import Outputs

    def interrupt(tmp):
        tmp.write_text("partial")
        raise KeyboardInterrupt

    with Outputs() as outputs:
        outputs.write(root / "panel.csv", interrupt)


def _identification_api(file, **roles):
    def call(root):
        from evaluation.estimators._identification import check_estimates
        from evaluation.estimators.registry import estimate_table

        data = pd.read_csv(root / file)
        options = dict(unit="unit", time="time", cohort="cohort", outcome="y",
                       never_treated=0, **roles)
        table = estimate_table(data, **options)
        check_estimates(table, data, **options)
    return call


def _report_manifest_api(root):
    from evaluation.report.build import read_data_manifest

    read_data_manifest(root / "data_wave_text")


def _validate_api(root):
    from evaluation.validation import validate

    validate(root / "foreign", reps=1)


API = [
    Case("api-twfe-alpha-1.5", "api", call=_estimate_api(estimator="twfe", alpha=1.5),
         error=InvalidOptionError, message="alpha=1.5"),
    Case("api-bjs-alpha-nan", "api", call=_estimate_api(estimator="bjs", alpha=math.nan),
         error=InvalidOptionError, message="alpha=nan"),
    Case("api-sa-alpha-zero", "api", call=_estimate_api(estimator="sa", alpha=0.0),
         error=InvalidOptionError, message="alpha=0"),
    Case("api-did2s-alpha-one", "api", call=_estimate_api(estimator="did2s", alpha=1.0),
         error=InvalidOptionError, message="alpha=1"),
    Case("api-cs-seed-negative", "api", call=_estimate_api(se="bootstrap", seed=-1),
         error=InvalidOptionError, message="seed=-1"),
    Case("api-check-outputs-same-file", "api",
         call=_check_outputs_api({"out": "a.csv"}, {"data": "./a.csv"}), error=OutputError,
         message="would destroy the input"),
    Case("api-check-outputs-pair", "api",
         call=_check_outputs_api({"--output": "m.csv", "--balance": "m.csv"}, {}),
         error=OutputError, message="are the same file"),
    Case("api-check-outputs-dir-holds-input", "api",
         call=_check_outputs_api({"--out": "."}, {"--data": "panel.csv"},
                                 directories=("--out",)),
         files=("panel.csv",), error=OutputError, message="holds the input"),
    Case("api-simulate-into-extract", "api", files=("extract",),
         call=_simulate_api("extract", n_people=200), error=OutputError,
         message="--overwrite"),
    Case("api-simulate-negative-seed", "api", call=_simulate_api("sim", seed=-2),
         error=InvalidOptionError, message="seed=-2"),
    Case("api-atomic-failure-leaves-nothing", "api", call=_atomic_failure, error=OutputError,
         message="disk full"),
    Case("api-interrupt-keeps-input", "api", call=_interrupted, files=("panel.csv",),
         error=KeyboardInterrupt),
    Case("api-identification-no-treated", "api", files=("untreated.csv",),
         call=_identification_api("untreated.csv"), error=IdentificationError,
         message="no unit is treated"),
    Case("api-identification-collinear", "api", files=("collinear.csv",),
         call=_identification_api("collinear.csv", covariates=["x", "x2"]),
         error=IdentificationError, message="'x2'"),
    Case("api-report-manifest-wave", "api", files=("data_wave_text",),
         call=_report_manifest_api, error=ReportError, message="jobseeker_wave"),
    Case("api-validate-foreign-directory", "api", files=("foreign",), call=_validate_api,
         error=OutputError, message="overwrite=True"),
]

CASES = ESTIMATE + MATCH + SIMULATE + IMPORT + REPORT + VALIDATE + API


def test_corpus_ids_are_unique_and_large_enough():
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))
    assert len(CASES) >= 150


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_hostile_case(case, tmp_path, monkeypatch, capsys):
    outcome = run_case(case, tmp_path, monkeypatch, capsys)
    assert problems(case, outcome) == []


# ------------------------------------------------------------- what the successes wrote


def test_allow_partial_writes_the_reason_of_each_nan_row(tmp_path, monkeypatch, capsys):
    case = est("partial", "--covariates", "c", "--allow-partial", data="constant.csv",
               status=0)
    assert problems(case, run_case(case, tmp_path, monkeypatch, capsys)) == []
    table = pd.read_csv(tmp_path / "out.csv")
    nan_rows = table["estimate"].isna() | table["std_error"].isna()
    assert nan_rows.sum() == 10 == len(table)
    assert table["note"].str.contains("covariates 'c' are constant or collinear").all()


def test_overwrite_replaces_only_the_files_the_command_writes(tmp_path, monkeypatch, capsys):
    case = imp("overwrite", "--overwrite", status=0, out="foreign",
               files=("12r5.csv", "trials.csv", "foreign"), outputs=("foreign",))
    outcome = run_case(case, tmp_path, monkeypatch, capsys)
    assert problems(case, outcome) == []
    assert sorted(p.name for p in (tmp_path / "foreign").iterdir()) == [
        "manifest.json", "municipalities.parquet", "notes.txt", "trial_areas.parquet"]
    assert (tmp_path / "foreign" / "notes.txt").read_bytes() == b"my own notes\n"


def test_outputs_get_the_permissions_of_a_new_file(tmp_path):
    import os

    from evaluation.outputs import Outputs

    umask = os.umask(0o022)
    try:
        with Outputs() as outputs:
            outputs.write(tmp_path / "a.csv", lambda tmp: tmp.write_text("x\n"))
    finally:
        os.umask(umask)
    assert (tmp_path / "a.csv").stat().st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["a.csv"]


def test_failed_write_keeps_the_previous_output(tmp_path, monkeypatch, capsys):
    """An estimate that fails after an earlier success leaves the earlier file intact."""
    ok = est("first", status=0)
    assert problems(ok, run_case(ok, tmp_path, monkeypatch, capsys)) == []
    before = snapshot(tmp_path)["out.csv"]
    failing = est("second", "--covariates", "c", data="constant.csv",
                  files=("constant.csv",), message="constant or collinear")
    assert problems(failing, run_case(failing, tmp_path, monkeypatch, capsys)) == []
    assert snapshot(tmp_path)["out.csv"] == before


def test_internal_error_is_one_line_with_the_traceback_file(tmp_path, monkeypatch, capsys):
    from evaluation import cli

    def broken(args):
        raise ZeroDivisionError("division by zero in a bug")

    write_fixtures(tmp_path, ["panel.csv"])
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli, "_estimate", broken)
    code = cli.main(["estimate", "--data", "panel.csv", *ROLES, "--output", "o.csv"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(lines) == 1
    assert lines[0].startswith("evaluation estimate: internal error: ZeroDivisionError: "
                               "division by zero in a bug (full traceback in ")
    path = lines[0].split("full traceback in ")[1].split(";")[0]
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    assert "Traceback" in text and "ZeroDivisionError" in text
    assert not (tmp_path / "o.csv").exists()


def test_validate_resumes_a_directory_holding_its_own_run(tmp_path):
    """A directory with the same config is not foreign (no --overwrite needed)."""
    from evaluation.outputs import Outputs

    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text(json.dumps({"scenario": "default"}))
    with Outputs() as outputs:
        assert outputs.directory(tmp_path / "run",
                                 owned=lambda p: (p / "config.json").is_file()) == \
            tmp_path / "run"
    with pytest.raises(OutputError, match=r"already holds files this command did not write "
                                          r"\(config.json\); pass --overwrite"):
        Outputs().directory(tmp_path / "run")


def test_failing_notebook_names_the_notebook_and_the_data_file(tmp_path):
    import nbformat

    from evaluation.report.build import execute_notebook

    data = tmp_path / "data"
    data.mkdir()
    pd.DataFrame({"t": [1, 2]}).to_parquet(data / "municipalities.parquet")
    cells = [nbformat.v4.new_code_cell("DATA_DIR = OUT_DIR = ''"),
             nbformat.v4.new_code_cell(
                 "from evaluation.report import notebook\n"
                 "import pandas as pd\n"
                 "notebook.track_data_reads(DATA_DIR, OUT_DIR)\n"
                 "frame = pd.read_parquet(DATA_DIR + '/municipalities.parquet')"),
             nbformat.v4.new_code_cell("frame['month']")]
    cells[0].metadata["tags"] = ["parameters"]
    path = tmp_path / "01_broken.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    with pytest.raises(ReportError) as caught:
        execute_notebook(path, {"DATA_DIR": str(data), "OUT_DIR": str(tmp_path)}, timeout=60)
    message = str(caught.value)
    assert "\n" not in message
    assert message == (f"notebook 01_broken.ipynb failed in code cell 3 (\"frame['month']\"):"
                       f" KeyError: 'month' (on data file {data.resolve()}/municipalities."
                       "parquet; check it against the data schema in the README)")
    assert not (tmp_path / ".data-reads.txt").exists()


def test_interrupted_command_is_one_line_and_leaves_nothing(tmp_path, monkeypatch, capsys):
    """Ctrl-C while the table is being written: exit 130, no half-written file."""
    from evaluation import cli

    def interrupted_to_csv(self, path, **options):
        Path(path).write_text("half a table")
        raise KeyboardInterrupt

    write_fixtures(tmp_path, ["panel.csv"])
    before = snapshot(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(pd.DataFrame, "to_csv", interrupted_to_csv)
    code = cli.main(["estimate", "--data", "panel.csv", *ROLES, "--output", "new/o.csv"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 130
    assert lines == ["evaluation estimate: interrupted; no output was left half-written."]
    assert snapshot(tmp_path) == before


def test_estimator_warnings_explain_nan_rows_the_diagnosis_cannot(tmp_path):
    """NaN rows on a panel without a known defect quote the estimator's own warnings."""
    from _hostile import tiny_panel

    from evaluation.estimators._identification import check_estimates
    from evaluation.estimators.registry import estimate_table

    roles = dict(unit="unit", time="time", cohort="cohort", outcome="y", never_treated=0)
    table = estimate_table(tiny_panel(), **roles)
    table.loc[[1, 4], ["estimate", "std_error"]] = math.nan
    hint = "effect 6 is not estimable: no switcher is observed 6 periods after its switch."
    with pytest.raises(IdentificationError) as caught:
        check_estimates(table, tiny_panel(), hints=[hint, hint], **roles)
    assert str(caught.value) == (
        "2 of the 10 estimates are not identified (NaN estimate, standard error or interval): "
        "effect 6 is not estimable: no switcher is observed 6 periods after its switch; fix "
        "the data or the options, or pass --allow-partial to write the table with a note on "
        "each NaN row.")
    with pytest.warns(UserWarning, match="2 estimates not identified"):
        partial = check_estimates(table, tiny_panel(), hints=[hint], allow_partial=True,
                                  **roles)
    assert partial["note"].tolist() == ["", hint.rstrip("."), "", "", hint.rstrip("."),
                                        "", "", "", "", ""]
    assert partial.drop(columns="note").equals(table)
