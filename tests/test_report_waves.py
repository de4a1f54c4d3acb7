"""Chapter 4's municipal analysis of all three waves (evaluation.report.chapters.waves).

The table functions run on simulated data of the ``default`` world (no carry-over: the
truth after a wave is zero) and the ``persistence`` world (30 % of a wave's effect persists,
decaying over a year); every estimate must lie within 3 standard errors of the simulator's
truth. The rest checks the table's mechanics in closed form.
"""

import json
import shlex
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evaluation.cli import main
from evaluation.errors import InvalidOptionError, ReportError
from evaluation.estimators.registry import estimate_table
from evaluation.report import chapters
from evaluation.report.chapters._wave_truth import WaveTruth
from evaluation.report.chapters.waves import (
    COMPARISON_LABELS,
    DERIVED_DIR,
    LEVEL_TREND,
    LEVEL_TREND_FILE,
    TRIAL_STATUS,
    cluster_contributions,
    dcdh_spec,
    effect_weights,
    fit_spec,
    sample_where,
    with_level_trend,
)
from evaluation.report.study import MUNICIPAL_OUTCOME, Study
from evaluation.simulate import write_synthetic_data
from evaluation.sources.trials import month_index

pytestmark = pytest.mark.filterwarnings("ignore::evaluation.errors.EvaluationWarning")
SCENARIOS = ("default", "persistence")


@pytest.fixture(scope="module")
def data_dirs(tmp_path_factory):
    dirs = {}
    for scenario in SCENARIOS:
        out = tmp_path_factory.mktemp(f"waves_{scenario}")
        write_synthetic_data(out, scenario=scenario, n_people=1500, seed=7)
        dirs[scenario] = out.resolve()
    return dirs


@pytest.fixture(scope="module")
def studies(data_dirs, tmp_path_factory):
    return {s: Study(d, seed=7, out_dir=tmp_path_factory.mktemp(f"report_{s}"))
            for s, d in data_dirs.items()}


@pytest.fixture(scope="module")
def tables(studies):
    return {s: chapters.all_wave_effects(study) for s, study in studies.items()}


@pytest.fixture(scope="module")
def naive(studies):
    return chapters.naive_twfe(studies["persistence"])


# ------------------------------------------------------------------ against the truth
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_estimate_lies_within_three_standard_errors_of_the_truth(tables, scenario):
    table = tables[scenario]
    estimated = table[table["estimate"].notna()]
    assert len(estimated) == 17 and len(table) == 19
    assert estimated["true_att"].notna().all() and (estimated["std_error"] > 0).all()
    z = (estimated["estimate"] - estimated["true_att"]) / estimated["std_error"]
    assert (z.abs() < 3).all(), estimated.assign(z=z)[["part", "wave", "effect", "z"]]


def test_persistence_truth_is_zero_by_default_and_negative_with_carry_over(tables):
    after = {s: t[(t["part"] == "after") & t["estimate"].notna()].set_index(["wave", "months"])
             for s, t in tables.items()}
    assert list(after["default"].index) == [(1, "41-52"), (1, "53-59"), (2, "18-29"),
                                            (2, "30-41")]
    assert (after["default"]["true_att"] == 0).all()
    persisting = after["persistence"]["true_att"]
    assert (persisting < -0.02).all()
    # carry-over decays: the first year after the end keeps more than the second
    assert persisting[(1, "41-52")] < persisting[(1, "53-59")]
    assert persisting[(2, "18-29")] < persisting[(2, "30-41")]
    # during the waves both worlds share the effect of wave 1 (nothing carried into it)
    during = {s: t[t["part"] == "during"].set_index("wave")["true_att"] for s, t in tables.items()}
    assert during["default"][1] == during["persistence"][1]


def test_rows_name_what_cut_or_hid_the_horizon(tables):
    table = tables["default"].set_index(["part", "wave", "effect"])
    cut = table.loc[("after", 1, "months 13-19 after the end")]
    assert "horizon cut at 19 months: wave 2 started in 2017M08" in cut["note"]
    hidden = table.loc[("after", 3, "months 1-12 after the end")]
    assert np.isnan(hidden["estimate"]) and hidden["switchers"] == 0
    assert hidden["note"] == "not observed: the panel ends with the wave"


# ------------------------------------------------------------------ mechanics
def test_wave_windows():
    windows = {n: chapters.wave_window(n) for n in (1, 2, 3)}
    assert [(w.first, w.last, w.start, w.end, w.cut_by) for w in windows.values()] == [
        (1, 91, 33, 72, 2), (73, 132, 92, 108, None), (109, 180, 135, 180, None)]
    assert [(w.months, w.post_months, w.effects) for w in windows.values()] == [
        (40, 19, 59), (17, 24, 41), (46, 0, 46)]
    assert windows[2].start == month_index(pd.Period("2017-08", "M"))


def test_sample_filters_select_the_stated_municipalities(studies):
    study = studies["default"]
    units = study.municipal.groupby("municipality")[["cohort_w1", "cohort_w2", "cohort_w3"]].first()
    window = chapters.wave_window(3)
    assert sample_where(window) == ("t >= 109 and t <= 180 and (cohort_w3 > 0 or not "
                                    "(cohort_w1 > 0 or cohort_w2 > 0))")
    assert sample_where(chapters.wave_window(1), members="post") == (
        "t >= 1 and t <= 91 and not (cohort_w1 > 0 and (cohort_w2 > 0))")

    def selected(where):
        return set(study.municipal.query(where)["municipality"])

    earlier = (units["cohort_w1"] > 0) | (units["cohort_w2"] > 0)
    member = units["cohort_w3"] > 0
    assert selected(sample_where(window, "include")) == set(units.index)
    assert selected(sample_where(window, "exclude")) == set(units.index[member | ~earlier])
    assert selected(sample_where(window, members="repeat")) == set(
        units.index[~earlier & ~member | member & earlier])
    assert selected(sample_where(window, members="first")) == set(units.index[~earlier])
    with pytest.raises(InvalidOptionError, match=r"comparison='drop' is not a valid option; "
                                                 r"choose one of 'exclude', 'include'\."):
        sample_where(window, "drop")
    with pytest.raises(InvalidOptionError, match=r"members='some' is not a valid option"):
        sample_where(window, members="some")


def test_level_trend_is_the_pre_wave_level_times_the_untreated_average(studies):
    study = studies["default"]
    frame = with_level_trend(study)
    data = study.municipal
    outside = (data[["cohort_w1", "cohort_w2", "cohort_w3"]] == 0).all(axis=1)
    unit = data.loc[data["cohort_w1"] > 0, "municipality"].iloc[0]
    cycle = {t: data.loc[outside & (data["t"] == t), MUNICIPAL_OUTCOME].mean() for t in (5, 150)}
    own = data[(data["municipality"] == unit) & (data["t"] < 33)]
    level = np.mean([row[MUNICIPAL_OUTCOME]
                     / data.loc[outside & (data["t"] == row["t"]), MUNICIPAL_OUTCOME].mean()
                     for _, row in own.iterrows()])
    for t in (5, 150):
        value = frame.loc[(frame["municipality"] == unit) & (frame["t"] == t), LEVEL_TREND]
        assert value.iloc[0] == pytest.approx(level * cycle[t], rel=1e-12)
    # untreated municipalities average a relative level of one before wave 1
    before = frame[outside & (frame["t"] < 33)]
    ratio = before[LEVEL_TREND] / before["t"].map(frame[outside].groupby("t")[MUNICIPAL_OUTCOME]
                                                  .mean())
    assert ratio.groupby(before["municipality"]).first().mean() == pytest.approx(1, rel=1e-12)


def test_rows_average_the_effects_of_their_command(studies, tables):
    study = studies["default"]
    frame = with_level_trend(study)
    window = chapters.wave_window(2)
    spec = dcdh_spec(study, window, members="post")
    result, _ = fit_spec(frame, spec)
    derived = study.out_dir / DERIVED_DIR
    # the command's data: what `evaluation estimate` reads, through the same estimate_table
    direct = spec.run(derived)
    effects = direct[direct["term"].str.startswith("effect ")]
    assert len(effects) == window.effects == 41
    np.testing.assert_allclose(result.table["estimate"].to_numpy()[:41],
                               effects["estimate"].to_numpy(), rtol=1e-12)
    row = tables["default"].set_index(["part", "wave", "months"]).loc[("after", 2, "18-29")]
    assert row["estimate"] == pytest.approx(effects["estimate"].iloc[17:29].mean(), rel=1e-12)
    weights = effect_weights(result, 18, 29)
    assert row["std_error"] == pytest.approx(np.sqrt(weights @ result.vcov @ weights), rel=1e-12)
    assert row["ci_upper"] - row["estimate"] == pytest.approx(1.959964 * row["std_error"],
                                                              rel=1e-6)
    assert row["switchers"] == 23 and row["fit_command"] == spec.command(Path(DERIVED_DIR))
    assert row["command"] == ""  # no command prints the average itself
    # a single effect's average is the effect itself, with its own standard error
    single = effect_weights(result, 5, 5)
    assert np.sqrt(single @ result.vcov @ single) == pytest.approx(
        effects["std_error"].iloc[4], rel=1e-12)
    # the cluster terms reproduce the variance: sum of squares = a'Va
    clusters = frame.groupby("municipality")[study.municipal_cluster].first()
    terms = cluster_contributions(result, weights, clusters)
    assert (terms**2).sum() == pytest.approx(weights @ result.vcov @ weights, rel=1e-10)
    argv = shlex.split(row["fit_command"])
    assert argv[argv.index("--treatment") + 1] == TRIAL_STATUS and "--cohort" not in argv
    assert argv[argv.index("--effects") + 1] == "41"
    assert argv[argv.index("--data") + 1] == str(Path(DERIVED_DIR) / LEVEL_TREND_FILE)


def test_second_wave_difference_is_repeat_minus_first(tables):
    table = tables["persistence"]
    second = table[(table["part"] == "second wave")].set_index(["wave", "effect"])
    for number, n_repeat, n_first in ((2, 8, 15), (3, 38, 80)):
        repeat = second.loc[(number, "repeat municipalities (ran an earlier wave)")]
        first = second.loc[(number, "first-time municipalities")]
        difference = second.loc[(number, "repeat minus first-time municipalities")]
        assert (repeat["switchers"], first["switchers"]) == (n_repeat, n_first)
        assert difference["estimate"] == pytest.approx(repeat["estimate"] - first["estimate"],
                                                       rel=1e-12)
        assert difference["true_att"] == pytest.approx(repeat["true_att"] - first["true_att"],
                                                       rel=1e-12)
        # the fits share their comparison municipalities, so the variance is not the sum
        assert difference["std_error"] != pytest.approx(
            np.hypot(repeat["std_error"], first["std_error"]), rel=1e-3)


def test_truth_of_the_rows(studies):
    study = studies["persistence"]
    truth = WaveTruth.of(study, MUNICIPAL_OUTCOME)
    rows = pd.read_parquet(study.truth_file("municipalities"))
    rows = rows[rows["outcome"] == MUNICIPAL_OUTCOME]
    full = rows[(rows["design"] == "wave1") & (rows["kind"] == "post_wave_1_12")]["att"].iloc[0]
    assert truth.after(1, 1, 12) == pytest.approx(full, rel=1e-12)
    assert np.isnan(truth.after(3, 1, 12))  # the panel ends with wave 3
    assert truth.added_design(3) == "wave3_added"
    repeat, first = truth.repeat_and_first(3)
    n_all, n_repeat = truth.units("wave3_added"), truth.units("wave3_added", "repeat")
    assert n_all * truth.overall("wave3_added") == pytest.approx(
        n_repeat * repeat + (n_all - n_repeat) * first, rel=1e-12)
    mass = [truth.units(f"wave{n}") * months for n, months in ((1, 40), (2, 17), (3, 46))]
    effects = [truth.overall(f"wave{n}") for n in (1, 2, 3)]
    assert truth.trial_months() == pytest.approx(np.dot(mass, effects) / sum(mass), rel=1e-12)
    assert WaveTruth.of(studies["default"], MUNICIPAL_OUTCOME).added_design(3) == "wave3"


def test_comparison_choice_rows(studies, tables):
    study = studies["default"]
    table = tables["default"]
    compared = table[table["part"] == "comparison group"].set_index(["estimator", "comparison"])
    exclude, include = (COMPARISON_LABELS[c] for c in ("exclude", "include"))
    units = study.municipal.groupby("municipality")[["cohort_w1", "cohort_w2", "cohort_w3"]].first()
    outside = compared["comparison_units"]
    assert outside[("dcdh", exclude)] == (units == 0).all(axis=1).sum() == 152
    assert outside[("dcdh", include)] == (units["cohort_w3"] == 0).sum() == 191
    during = table[(table["part"] == "during") & (table["wave"] == 3)].iloc[0]
    assert compared.loc[("dcdh", exclude), "estimate"] == during["estimate"]
    headline = study.municipal_spec(wave_number=3).run(study.data_dir)
    overall = headline[headline["term"] == "overall"].iloc[0]
    assert compared.loc[("cs", include), "estimate"] == pytest.approx(overall["estimate"],
                                                                       rel=1e-12)
    assert chapters.change_between(table, "cs") == pytest.approx(
        compared.loc[("cs", include), "estimate"] - compared.loc[("cs", exclude), "estimate"],
        rel=1e-12)


def test_naive_twfe_rows_and_diagnostics_agree(studies, naive):
    study = studies["persistence"]
    rows = naive.table.set_index("coding")
    absorbing = rows.iloc[0]
    switching = rows.iloc[1]
    assert naive.bacon.twfe == pytest.approx(absorbing["estimate"], rel=1e-10)
    assert naive.weights.twfe == pytest.approx(switching["estimate"], rel=1e-10)
    by_type = naive.bacon_table()
    assert by_type["weight"].sum() == pytest.approx(1, abs=1e-12)
    assert (by_type["weight"] * by_type["estimate"]).sum() == pytest.approx(naive.bacon.twfe,
                                                                             rel=1e-10)
    assert "later vs earlier treated" in set(by_type["type"])
    summary = naive.weights_table().iloc[0]
    assert summary["negative_sum"] + summary["positive_sum"] == pytest.approx(1, abs=1e-12)
    assert summary["negative_cells"] + summary["positive_cells"] <= summary["treated_cells"]
    truth = WaveTruth.of(study, MUNICIPAL_OUTCOME)
    assert absorbing["true_att"] == truth.first_treated()
    assert switching["true_att"] == truth.trial_months()
    # the absorbing row is the `evaluation estimate` command's number
    argv = shlex.split(absorbing["command"])
    assert argv[argv.index("--cohort") + 1] == "first_treated"
    direct = estimate_table(study.municipal, unit="municipality", time="t",
                            cohort="first_treated", outcome=MUNICIPAL_OUTCOME, never_treated=0,
                            cluster=study.municipal_cluster, estimator="twfe",
                            aggregate="simple")
    assert direct["estimate"].iloc[0] == pytest.approx(absorbing["estimate"], rel=1e-12)


def test_level_trend_needs_months_before_wave_one(data_dirs, tmp_path):
    study = Study(data_dirs["default"], seed=7)
    study.__dict__["municipal"] = study.municipal[study.municipal["t"] >= 33]
    with pytest.raises(ReportError, match=r"needs months before wave 1 \(2012M09\) and "
                                          "municipalities that ran no wave"):
        chapters.all_wave_effects(study)


def test_real_data_has_no_truth(data_dirs, tmp_path):
    real = tmp_path / "real"
    shutil.copytree(data_dirs["default"], real)
    manifest = json.loads((real / "manifest.json").read_text())
    manifest["scenario"] = None
    (real / "manifest.json").write_text(json.dumps(manifest))
    truth = WaveTruth.of(Study(real), MUNICIPAL_OUTCOME)
    assert truth.rows is None
    assert np.isnan([truth.overall("wave3"), truth.after(1, 1, 12), truth.first_treated(),
                     truth.trial_months(), *truth.repeat_and_first(3)]).all()


def test_fit_command_reproduces_the_fit(studies, tables, tmp_path, monkeypatch):
    monkeypatch.chdir(studies["default"].out_dir)  # the command reads derived/ from there
    row = tables["default"].set_index(["part", "wave"]).loc[("during", 2)]
    output = tmp_path / "estimate.csv"
    argv = shlex.split(row["fit_command"])
    argv[argv.index("--output") + 1] = str(output)
    assert main(argv[1:]) == 0
    from_cli = pd.read_csv(output)
    effects = from_cli[from_cli["term"].str.startswith("effect ")]["estimate"]
    assert row["estimate"] == pytest.approx(effects.iloc[:17].mean(), rel=1e-12)
