"""Hostile input, reading side: malformed data files, StatFin exports, scores and options.

A table-driven corpus (:data:`CASES`) of malformed inputs to the readers
(:func:`evaluation.sources.files.read_data_file`, the StatFin and trial-assignment readers),
to ``match`` and to the option checks, run through the shared contract of
``tests/_hostile.py``: the expected exception class (API) or exit status 2 (command line),
one stderr line holding the expected words, no traceback, every input byte-identical
afterwards and no file left behind. The lenient inputs (BOM, unicode column names, ``;`` with
decimal commas, other encodings, StatFin ``..``, an unbalanced panel) must give the numbers
of the clean input, with the warning stated.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _hostile import Case, problems, run_case, tiny_panel
from _hostile_files import FILES, PANEL, panel_csv, with_line, write_inputs

from evaluation.errors import (
    ConvergenceWarning,
    DataFileError,
    DataFileNotFoundError,
    DataFileWarning,
    InvalidOptionError,
    MatchingError,
    ReportError,
    StatFinError,
    StatFinWarning,
)
from evaluation.matching import match
from evaluation.options import check_anticipation, check_caliper, check_draws, check_seed
from evaluation.sources.files import load_estimation_data, read_data_file
from evaluation.sources.statfin import read_statfin_12r5
from evaluation.sources.trial_assignment import (
    add_trial_columns,
    read_trial_assignment,
    trial_areas_table,
    write_municipal_extract,
)

ROLES = ("--unit", "unit", "--time", "time", "--cohort", "cohort", "--outcome", "y",
         "--never-treated", "0")

# -------------------------------------------------------------------------------- cases


def api(name: str, call: Callable[[Path], object], error: type[BaseException], message: str,
        *files: str) -> Case:
    """A Python call in the case's directory that must raise ``error`` with ``message``."""
    return Case(f"api-{name}", "api", files=files, call=call, error=error, message=message)


def read(name: str, message: str, error: type[BaseException] = DataFileError,
         columns: tuple[str, ...] | None = ("unit", "y")) -> Case:
    label = name if columns is not None else f"{name}-all-columns"
    return api(f"read-{label}", lambda root: read_data_file(
        root / name, None if columns is None else list(columns)), error, message, name)


def cli(name: str, argv: tuple[str, ...], message: str, *files: str) -> Case:
    """A command line that must exit with status 2 and the one-line ``message``."""
    return Case(f"cli-{name}", argv[0], argv, files=files, status=2, message=message)


def estimate(data: str, message: str) -> Case:
    return cli(f"estimate-{data}", ("estimate", "--data", data, *ROLES, "--output", "o.csv"),
               message, data)


def match_cli(name: str, data: str, message: str, *extra: str,
              covariates: str = "x,z") -> Case:
    return cli(f"match-{name}", ("match", "--data", data, "--unit", "unit", "--treatment",
                                 "treated", "--covariates", covariates, *extra, "--output",
                                 "m.csv"), message, data)


def statfin(name: str, message: str) -> Case:
    return api(f"statfin-{name}", lambda root: read_statfin_12r5(root / name), StatFinError,
               message, name)


def statfin_cli(name: str, message: str, trials: str = "trials.csv") -> Case:
    return cli(f"import-{name}-{trials}", ("import-statfin", "--statfin", name, "--trials",
                                          trials, "--out", "ext"), message, name, trials)


def trials(name: str, message: str) -> Case:
    return api(f"trials-{name}", lambda root: read_trial_assignment(root / name),
               StatFinError, message, name)


def study(name: str, message: str) -> Case:
    def call(root: Path) -> object:
        from evaluation.report.study import Study

        return Study(root / name)
    return api(f"manifest-{name}", call, ReportError, message, name)


def matching(name: str, message: str, error: type[BaseException] = InvalidOptionError,
             data: str = "units.csv", **options) -> Case:
    def call(root: Path) -> object:
        frame = pd.read_csv(root / data)
        arguments = {"treatment": "treated", "covariates": ["x", "z"], "unit": "unit",
                     **options}
        return match(frame, **arguments)
    return api(f"match-{name}", call, error, message, data)


def option(name: str, check: Callable[[], object], message: str) -> Case:
    return api(f"option-{name}", lambda root: check(), InvalidOptionError, message)


READING = [
    read("ragged_extra.csv", "line 5 (9 fields)"),
    read("ragged_short.csv", "line 7 (7 fields)"),
    read("ragged_trailing.csv", "a delimiter at the end of a line adds an empty field"),
    read("ragged_many.csv", "2 rows whose number of fields differs from the header's 8: "
                            "line 3 (9 fields), line 9 (9 fields)"),
    read("ragged_extra.csv", "line 5 (9 fields)", columns=None),
    read("stray_field_in_outcome.csv", "line 10 (9 fields)", columns=("y",)),
    read("unclosed_quote.csv", "lines 6-241 (1 field; a quoted value runs over several "
                               "lines: check for a quote opened on line 6"),
    read("empty.csv", "is empty; write the header row"),
    read("blank.csv", "is empty"),
    read("header_only.csv", "has a header row (unit, time, cohort, y) but no data rows"),
    read("header_blank_lines.csv", "but no data rows"),
    read("workbook.csv", "is an Excel workbook (.xlsx), whatever its extension; export it as "
                         "CSV"),
    read("workbook.xlsx", "is an Excel workbook (.xlsx)"),
    read("workbook.parquet", "is an Excel workbook (.xlsx)"),
    read("old_workbook.csv", "is an Excel workbook (.xls); export it as CSV"),
    read("archive.csv", "is a zip archive holding panel.csv; unpack it"),
    read("compressed.csv", "is gzip-compressed; decompress it"),
    read("really_parquet.csv", "is a Parquet file, not CSV text; rename it to end in .parquet"),
    read("really_csv.parquet", "is not a Parquet file (it looks like text, perhaps CSV: "
                               "rename it to end in .csv)"),
    read("broken.parquet", "is not a readable Parquet file"),
    read("truncated.parquet", "is not a readable Parquet file"),
    read("empty.parquet", "is not a Parquet file (it is empty)"),
    read("binary.csv", "holds binary data (zero bytes), not CSV text"),
    read("controls.csv", "holds binary data (control characters)"),
    read("bad_bom.csv", "starts with a byte-order mark but is not valid utf-8-sig text"),
    read("bad_utf16.csv", "starts with a byte-order mark but is not valid utf-16 text"),
    read("duplicate_names.csv", "has more than one column named 'y'; rename or remove"),
    read("panel.txt", "must end in .csv or .parquet (got .txt)"),
    read("panel", "must end in .csv or .parquet (got no extension)"),
    read("nope.csv", "does not exist; check the path", DataFileNotFoundError),
    api("read-directory", lambda root: read_data_file(root), DataFileError,
        "is a directory, not a file"),
    api("where-ragged", lambda root: load_estimation_data(root / "ragged_extra.csv", ["y"],
                                                          "time > 1"),
        DataFileError, "line 5 (9 fields)", "ragged_extra.csv"),
    estimate("ragged_extra.csv", "differs from the header's 8: line 5 (9 fields)"),
    estimate("stray_field_in_outcome.csv", "line 10 (9 fields)"),
    estimate("workbook.xlsx", "is an Excel workbook"),
    estimate("compressed.csv", "is gzip-compressed"),
    estimate("duplicate_names.csv", "more than one column named 'y'"),
    estimate("controls.csv", "holds binary data"),
]

MATCHING = [
    match_cli("ragged", "units_ragged.csv", "line 12 (6 fields)"),
    match_cli("text-score", "units_text_score.csv",
              "distance: column 's' must hold numbers (one score per unit) but holds 'high' "
              "(3 values)", "--distance", "s"),
    match_cli("many-levels", "units_many_levels.csv",
              "covariate 'kunta' has 30 levels among 60 units (more than 10", covariates="x,kunta"),
    match_cli("pure-level", "units_pure_level.csv",
              "covariate 'kind' has 1 level whose units are all treated or all controls: 'b' "
              "(0 treated", covariates="x,kind"),
    match_cli("ratio", "units.csv", "ratio=0 must be a whole number of at least 1",
              "--ratio", "0"),
    match_cli("caliper-zero", "units.csv", "caliper=0.0 must be a finite number greater than 0",
              "--caliper", "0"),
    match_cli("caliper-nan", "units.csv", "caliper=nan must be a finite number", "--caliper",
              "nan"),
    match_cli("caliper-inf", "units.csv", "caliper=inf must be a finite number", "--caliper",
              "inf"),
    match_cli("seed", "units.csv", "must be a non-negative whole number", "--order", "random",
              "--seed", "-1"),
    matching("text-score", "distance: column 's' must hold numbers", MatchingError,
             data="units_text_score.csv", distance="s"),
    matching("score-list", "a user score needs one finite number per unit (60); got 3 values",
             MatchingError, distance=[0.1, 0.2, 0.3]),
    matching("score-nan", "with missing or infinite ones", MatchingError,
             distance=np.r_[np.nan, np.linspace(0.1, 0.9, 59)]),
    matching("score-text-list", "must hold numbers (one score per unit) but holds 'x'",
             MatchingError, distance=["x"] * 60),
    matching("many-levels", "covariate 'kunta' has 30 levels among 60 units", MatchingError,
             data="units_many_levels.csv", covariates=["x", "kunta"]),
    matching("pure-level", "covariate 'kind' has 1 level whose units are all treated or all "
             "controls", MatchingError, data="units_pure_level.csv", covariates=["x", "kind"]),
    matching("ratio-zero", "ratio=0 must be a whole number of at least 1", ratio=0),
    matching("ratio-float", "ratio=1.5 must be a whole number", ratio=1.5),
    matching("caliper-negative", "caliper=-1 must be a finite number greater than 0",
             caliper=-1),
    matching("caliper-inf", "caliper=inf must be a finite number", caliper=float("inf")),
    matching("caliper-mapping", "caliper['x']=0 must be a finite number", caliper={"x": 0}),
    matching("caliper-text", "caliper='wide' must be a finite number", caliper="wide"),
    matching("seed-negative", "seed=-1 must be a non-negative whole number", seed=-1,
             order="random"),
    matching("seed-float", "seed=1.5 must be a non-negative whole number", seed=1.5),
    matching("replace-text", "replace='yes' must be True or False", replace="yes"),
    matching("nonconvergence", "on_nonconvergence='ignore' is not a valid option; choose one "
             "of 'error', 'penalize'", on_nonconvergence="ignore"),
    matching("nonconvergence-cem", "method='cem' does not use on_nonconvergence",
             method="cem", on_nonconvergence="penalize"),
]

STATFIN_CASES = [
    statfin("12r5_unknown.csv", "neither municipalities (KU + 3 digits such as KU091) nor other "
                                "StatFin areas (SSS, MK01, ELY01, SK011): 'KU49X' (line 152)"),
    statfin("12r5_names.csv", "'ESPOO' (line 146)"),
    statfin("12r5_negative.csv", "12r5_negative.csv': unemployed -500 on line 3 "
                                 "(municipality KU091, month 2020M01) is not a count, never "
                                 "negative"),
    statfin("12r5_rate.csv", "is not a percentage between 0 and 100"),
    statfin("12r5_text.csv", "12r5_text.csv': cannot read the number 'n/a' on line 74"),
    statfin("12r5_month.csv", "malformed month labels: '2021-05'"),
    statfin("12r5_footer.csv", "remove notes or footers below the table"),
    statfin("12r5.xlsx", "is an Excel workbook (.xlsx)"),
    statfin("binary.csv", "holds binary data"),
    statfin("empty.csv", "is empty; export the table again"),
    statfin("nope.csv", "StatFin file"),
    api("statfin-flag", lambda root: read_statfin_12r5(root / "12r5.csv",
                                                       allow_unknown_codes="yes"),
        StatFinError, "allow_unknown_codes='yes' must be True or False", "12r5.csv"),
    trials("trials_code.csv", "municipality codes that do not parse: 'KU91X' (line 3)"),
    trials("workbook.xlsx", "Excel workbook"),
    api("trials-wave", lambda root: add_trial_columns(
        read_statfin_12r5(root / "12r5.csv"), read_trial_assignment(root / "trials_wave.csv")),
        StatFinError, "unknown wave(s) 2.5", "12r5.csv", "trials_wave.csv"),
    api("trials-population", lambda root: trial_areas_table(
        read_trial_assignment(root / "trials_population.csv"),
        read_statfin_12r5(root / "12r5.csv")),
        StatFinError, "is not a non-negative number", "12r5.csv", "trials_population.csv"),
    statfin_cli("12r5_unknown.csv", "pass --allow-unknown-codes to leave those rows out"),
    statfin_cli("12r5_negative.csv", "is not a count, never negative"),
    statfin_cli("12r5.csv", "municipality codes that do not parse: 'KU91X'", "trials_code.csv"),
    study("manifest_not_json", "is not valid JSON"),
    study("manifest_list", "holds a JSON list, not an object"),
    study("manifest_wave", "jobseeker_wave=2.5 must be a whole number"),
    study("manifest_wave_text", "jobseeker_wave='3' must be a whole number"),
]

OPTIONS = [
    option("draws-zero", lambda: check_draws("draws", 0), "draws=0 must be a whole number of "
                                                          "at least 1"),
    option("draws-huge", lambda: check_draws("draws", 10**7),
           "draws=10000000 is more draws than 1,000,000"),
    option("draws-float", lambda: check_draws("draws", 99.5), "draws=99.5 must be a whole"),
    option("caliper-nan", lambda: check_caliper("caliper", float("nan")),
           "caliper=nan must be a finite number greater than 0"),
    option("caliper-bool", lambda: check_caliper("caliper", True), "caliper=True must be"),
    option("anticipation", lambda: check_anticipation("anticipation", 5, 6),
           "anticipation=5 leaves no period before (anticipated) treatment in a panel of 6 "
           "periods (at most 4)"),
    option("anticipation-negative", lambda: check_anticipation("anticipation", -1),
           "anticipation=-1 must be a whole number of at least 0"),
    option("seed-negative", lambda: check_seed("seed", -3),
           "seed=-3 must be a non-negative whole number"),
]

CASES = READING + MATCHING + STATFIN_CASES + OPTIONS


def test_corpus_is_large_and_ids_are_unique():
    assert len(CASES) >= 60
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_malformed_input_gives_one_clear_error(case, tmp_path, monkeypatch, capsys):
    files = case.files
    plain = Case(case.id, case.command, case.argv, (), case.status, case.message,
                 case.outputs, case.call, case.error)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataFileWarning)  # the error is what is asserted
        outcome = run_case(plain, tmp_path, monkeypatch, capsys,
                           prepare=lambda root: write_inputs(root, files))
    assert problems(case, outcome) == []
    assert outcome.status == 2
    assert "Traceback" not in outcome.stderr


# ------------------------------------------------------------------------------ lenient


def read_with_warnings(path: Path, columns=None) -> tuple[pd.DataFrame, list[str]]:
    before = path.read_bytes()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame = read_data_file(path, columns)
    assert path.read_bytes() == before
    return frame, [f"{w.category.__name__}: {w.message}" for w in caught]


@pytest.mark.parametrize(("encode", "expected"), [
    (lambda text: b"\xef\xbb\xbf" + text.encode("utf-8"), None),
    (lambda text: text.encode("utf-16"), "it was read as UTF-16."),
    (lambda text: text.encode("utf-16-le"), "UTF-16 (little-endian, no byte-order mark)"),
    (lambda text: text.encode("cp1252"), "it was read as cp1252 (Windows Latin-1)"),
])
def test_encodings_give_the_clean_values(tmp_path, encode, expected):
    clean = tiny_panel().rename(columns={"y": "työttömyys", "x": "ikä"})
    path = tmp_path / "panel.csv"
    path.write_bytes(encode(clean.to_csv(index=False)))
    frame, messages = read_with_warnings(path)
    pd.testing.assert_frame_equal(frame, clean, check_dtype=False)
    assert list(frame.columns) == ["unit", "time", "cohort", "treated", "työttömyys", "ikä",
                                   "weight", "cluster"]
    if expected is None:
        assert messages == []
    else:
        assert len(messages) == 1 and messages[0].startswith("DataFileWarning")
        assert expected in messages[0]


@pytest.mark.parametrize(("options", "expected"), [
    ({"sep": ";", "decimal": ","}, "was read as semicolon-delimited with decimal commas"),
    ({"sep": ";"}, "was read as semicolon-delimited;"),
    ({"sep": "\t"}, "was read as tab-delimited;"),
    ({"sep": "|"}, "was read as vertical bar-delimited;"),
])
def test_other_delimiters_give_the_clean_values_with_a_warning(tmp_path, options, expected):
    path = tmp_path / "panel.csv"
    path.write_text(panel_csv(**options), encoding="utf-8")
    frame, messages = read_with_warnings(path, ["unit", "time", "y", "x"])
    clean = tiny_panel()[["unit", "time", "y", "x"]]
    pd.testing.assert_frame_equal(frame, clean, check_exact=False, rtol=1e-15)
    assert len(messages) == 1 and expected in messages[0]


def test_excel_sep_line_names_the_delimiter(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_text("sep=;\n" + panel_csv(sep=";", decimal=","), encoding="utf-8")
    frame, messages = read_with_warnings(path, ["unit", "time", "y"])
    pd.testing.assert_frame_equal(frame, tiny_panel()[["unit", "time", "y"]],
                                  check_exact=False, rtol=1e-15)
    assert len(messages) == 1
    assert "semicolon-delimited (as its first line sep= says) with decimal commas" in messages[0]
    ragged = tmp_path / "excel_ragged.csv"
    ragged.write_text(with_line("sep=;\n" + panel_csv(sep=";"), 4, lambda s: s + ";1"))
    with pytest.raises(DataFileError, match=r"line 4 \(9 fields\)\. .*a stray semicolon"):
        read_with_warnings(ragged)


def test_missing_last_line_ending_is_read_with_a_warning(tmp_path):
    path = tmp_path / "panel.csv"
    path.write_text(PANEL.rstrip("\n"), encoding="utf-8")
    frame, messages = read_with_warnings(path)
    pd.testing.assert_frame_equal(frame, tiny_panel(), check_dtype=False)
    assert messages == [f"DataFileWarning: data file {str(path)!r}: the last line (line 241) "
                        "has no line ending; if the file was cut off, its last row is "
                        "incomplete. Check the last row or write the file again."]


def test_semicolon_decimal_comma_estimate_equals_the_clean_one(tmp_path, monkeypatch, capsys):
    from evaluation.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "clean.csv").write_text(PANEL)
    (tmp_path / "finnish.csv").write_text(panel_csv(sep=";", decimal=","))
    args = [*ROLES, "--aggregate", "simple"]
    assert main(["estimate", "--data", "clean.csv", *args, "--output", "a.csv"]) == 0
    capsys.readouterr()
    assert main(["estimate", "--data", "finnish.csv", *args, "--output", "b.csv"]) == 0
    assert "semicolon-delimited with decimal commas" in capsys.readouterr().err
    clean, finnish = pd.read_csv("a.csv"), pd.read_csv("b.csv")
    pd.testing.assert_frame_equal(clean, finnish, check_exact=False, rtol=1e-12)
    assert np.isfinite(clean["estimate"]).all()


def test_ragged_row_no_longer_changes_the_estimate_silently(tmp_path):
    # The audit's case: a stray field shifted the outcome of one row (ATT -125 for -0.16).
    path = tmp_path / "stray.csv"
    path.write_bytes(FILES["stray_field_in_outcome.csv"]())
    with pytest.raises(DataFileError, match=r"line 10 \(9 fields\)"):
        load_estimation_data(path, ["unit", "time", "cohort", "y"])


def test_unbalanced_panel_estimates_with_a_warning(tmp_path):
    from evaluation.estimators.registry import estimate_table

    unbalanced = tiny_panel().drop(index=[3, 10, 17])
    path = tmp_path / "unbalanced.csv"
    unbalanced.to_csv(path, index=False)
    frame, messages = read_with_warnings(path, ["unit", "time", "cohort", "y"])
    assert messages == []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = estimate_table(frame, unit="unit", time="time", cohort="cohort", outcome="y",
                               never_treated=0, aggregate="simple")
        direct = estimate_table(unbalanced, unit="unit", time="time", cohort="cohort",
                                outcome="y", never_treated=0, aggregate="simple")
    assert any("unbalanced" in str(w.message).lower() for w in caught)
    np.testing.assert_allclose(table["estimate"], direct["estimate"], rtol=1e-12)
    assert np.isfinite(table["estimate"]).all()


def test_statfin_missing_symbols_are_counted(tmp_path):
    path = tmp_path / "12r5.csv"
    path.write_bytes(FILES["12r5_dots.csv"]())
    with pytest.warns(StatFinWarning, match=r"1 cell hold the StatFin symbols .* read as "
                                            r"missing: labour_force 1\."):
        frame = read_statfin_12r5(path)
    turku = frame[frame["municipality"] == "KU853"]
    assert np.isnan(turku["labour_force"].iat[0])
    assert turku["labour_force"].iloc[1:].eq(95_000).all()
    assert frame.attrs["missing_cells"] == {"labour_force": 1}


def test_statfin_unknown_codes_left_out_only_on_request(tmp_path):
    path = tmp_path / "12r5.csv"
    path.write_bytes(FILES["12r5_unknown.csv"]())
    with pytest.warns(StatFinWarning, match=r"left out the rows of 1 area code that do not "
                                            r"parse: 'KU49X' \(line 152\)"):
        frame = read_statfin_12r5(path, allow_unknown_codes=True)
    assert frame.attrs["unknown_area_codes"] == ["KU49X"]
    assert sorted(frame["municipality"].unique()) == ["KU049", "KU091", "KU853"]
    assert len(frame) == 3 * 24
    # Espoo's 2020M03 labour force was on the line with the unknown code: missing, not moved
    espoo = frame[frame["municipality"] == "KU049"].set_index("month")
    assert np.isnan(espoo.loc["2020M03", "labour_force"])
    assert espoo["labour_force"].drop("2020M03").eq(150_000).all()


def test_import_statfin_lists_unknown_codes_in_the_manifest(tmp_path):
    import json

    (tmp_path / "12r5.csv").write_bytes(FILES["12r5_unknown.csv"]())
    (tmp_path / "trials.csv").write_bytes(FILES["trials.csv"]())
    with pytest.warns(StatFinWarning, match="KU49X"):
        path = write_municipal_extract(tmp_path / "12r5.csv", tmp_path / "trials.csv",
                                       tmp_path / "out", allow_unknown_codes=True)
    manifest = json.loads(path.read_text(encoding="utf-8"))
    assert manifest["unknown_area_codes"] == ["KU49X"]
    assert manifest["missing_cells"] == {}


# --------------------------------------------------------------- non-converging score fits


def many_levels(n: int = 2000, levels: int = 1000) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame({"unit": np.arange(n), "treated": rng.integers(0, 2, n),
                         "x": rng.normal(size=n),
                         "kunta": [f"K{k:04d}" for k in rng.integers(0, levels, n)]})


def test_high_cardinality_fails_fast():
    data = many_levels()
    levels = data["kunta"].nunique()
    start = time.perf_counter()
    with pytest.raises(MatchingError, match=rf"covariate 'kunta' has {levels} levels among "
                                            r"2000 units \(more than 200, a tenth"):
        match(data, treatment="treated", covariates=["x", "kunta"], unit="unit")
    assert time.perf_counter() - start < 3.0


@pytest.mark.parametrize("link", ["logit", "probit"])
def test_penalized_fallback_only_on_request(link):
    data = many_levels(n=600, levels=200)
    with pytest.warns(ConvergenceWarning, match=r"has \d+ levels among 600 units.*as asked "
                                                r"\(on_nonconvergence='penalize'\)"):
        result = match(data, treatment="treated", covariates=["x", "kunta"], unit="unit",
                       distance=link, on_nonconvergence="penalize",
                       replace=True)
    score = result.units["distance"].to_numpy()
    assert ((score > 0.05) & (score < 0.95)).all()
    assert any("on_nonconvergence='penalize'" in text for text in result.info["warnings"])
    assert any("on_nonconvergence='penalize'" in text for text in result.summary().warnings)
    if link == "logit":  # the unpenalised intercept: mean score equals the treated share
        assert score.mean() == pytest.approx(data["treated"].mean(), abs=1e-9)


def test_separated_fit_falls_back_to_the_penalized_score():
    from evaluation.matching.distance import penalized_propensity_score, propensity_score

    design = np.array([[5.0], [6], [7], [1], [2], [3], [4], [2.5]])
    treated = np.array([1, 1, 1, 0, 0, 0, 0, 0], dtype=bool)
    with pytest.warns(ConvergenceWarning, match="separates treated and control units"):
        score = propensity_score(design, treated, on_nonconvergence="penalize")
    np.testing.assert_allclose(score, penalized_propensity_score(design, treated), rtol=1e-12)
    assert score.mean() == pytest.approx(3 / 8, abs=1e-9)
    assert (np.diff(score[np.argsort(design[:, 0])]) > 0).all()


# ------------------------------------------------------------------- field-count counters


def test_vectorised_field_counts_equal_the_csv_module():
    """The byte-level counter of unquoted text agrees with ``csv`` line by line."""
    from evaluation.sources import _reading

    def by_csv_module(text: str):
        counter = _reading._unquoted_widths
        _reading._unquoted_widths = lambda text, delimiter: None
        try:
            return _reading._header_and_widths(text, ",")
        finally:
            _reading._unquoted_widths = counter

    base = ("a,b,c\n1,2,3\n\n4,5,6\n  \n7,8,9\r\n10,11\n12,13,14,\n15,16,17,18\n 19 ,20,21"
            "\n\t\n,,\n ,x,\nä,ö,å").split("\n")
    rng = np.random.default_rng(1)
    compared = 0
    for _ in range(200):
        body = list(rng.permutation(base[1:]))
        text = "\n".join([base[0], *body]) + ("\n" if rng.random() < 0.5 else "")
        fast = _reading._unquoted_widths(text, ",")
        if fast is not None:  # None only for a last line ending in a lone carriage return
            assert fast == by_csv_module(text)
            compared += 1
        else:
            assert text.endswith("\r")
    assert compared > 150
    header, rows, ragged, last = _reading._unquoted_widths(
        "a,b,c\n1,2\n\n3,4,5,\n 6,7,8\n", ",")
    assert (header, rows, last) == (["a", "b", "c"], 3, 5)
    assert ragged == [(2, 2, 2, False), (4, 4, 4, True)]
    assert _reading._unquoted_widths('a,b\n"1,2",3\n', ",") is None  # quotes: csv module


def test_unreadable_file_is_a_data_file_error(tmp_path, monkeypatch):
    path = tmp_path / "panel.csv"
    path.write_text(PANEL)

    def refuse(self):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", refuse)
    with pytest.raises(DataFileError, match=r"panel\.csv' cannot be read \(Permission denied\); "
                                            r"check that it is a file you may read\."):
        read_data_file(path)
