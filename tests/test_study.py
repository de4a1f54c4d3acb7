"""The shared design of the report chapters: Study, EstimateSpec and the analysis helpers."""

import dataclasses
import json
import shlex
import shutil

import numpy as np
import pandas as pd
import pytest

from evaluation.cli import main
from evaluation.errors import InvalidOptionError, ReportError
from evaluation.report import chapters as analysis
from evaluation.report.chapters.heterogeneity import publish_counts
from evaluation.report.disclosure import SUPPRESSED, disclose
from evaluation.report.study import (
    DEFAULT_OUTCOMES,
    JOBSEEKER_FILE,
    MUNICIPAL_FILE,
    REQUIRED_FILES,
    Study,
    analysis_window,
)
from evaluation.simulate import write_synthetic_data
from evaluation.sources.trials import month_index, wave


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("study_data")
    write_synthetic_data(out, n_people=1500, seed=7)
    return out.resolve()


@pytest.fixture(scope="module")
def study(data_dir):
    return Study(data_dir, seed=7)


@pytest.fixture(scope="module")
def real_dir(data_dir, tmp_path_factory):
    """The same data presented as a real extract: no scenario, no truth files."""
    out = tmp_path_factory.mktemp("real") / "data"
    shutil.copytree(data_dir, out)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["scenario"] = None
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


# ------------------------------------------------------------------------ EstimateSpec
SPECS = {
    "jobseekers": lambda s: s.jobseeker_spec("employed"),
    "municipal window": lambda s: s.municipal_spec(),
    "covariates ipw notyet": lambda s: s.jobseeker_spec("unemployed").with_options(
        method="ipw", control="notyet", covariates=["under30", "immigrant"]),
    "bootstrap seeded": lambda s: s.jobseeker_spec("employed").with_options(
        se="bootstrap", draws=199, seed=3, alpha=0.1),
    "bjs event": lambda s: s.jobseeker_spec("plan", estimator="bjs", aggregate="event"),
    "twfe": lambda s: s.municipal_spec("lms_cost_state", estimator="twfe"),
    "group time": lambda s: s.jobseeker_spec("in_services").with_options(aggregate="none"),
}


@pytest.mark.filterwarnings("ignore::evaluation.errors.EvaluationWarning")
@pytest.mark.parametrize("name", list(SPECS))
def test_command_reproduces_run_exactly(study, data_dir, tmp_path, name):
    spec = SPECS[name](study)
    output = tmp_path / "out dir" / "estimate.csv"  # spaces must survive the shell quoting
    command = spec.command(data_dir, str(output))
    argv = shlex.split(command)
    assert argv[:2] == ["evaluation", "estimate"] and argv[-2:] == ["--output", str(output)]
    assert argv[argv.index("--data") + 1] == str(data_dir / spec.file)
    if spec.where:
        assert argv[argv.index("--where") + 1] == spec.where
    assert main(argv[1:]) == 0
    from_cli = pd.read_csv(output)
    expected = spec.run(data_dir)
    assert len(expected) >= 1
    pd.testing.assert_frame_equal(from_cli, expected.reset_index(drop=True), check_dtype=False,
                                  check_exact=True)


def test_command_with_a_spaced_data_path(study, data_dir, tmp_path):
    (tmp_path / "my data").symlink_to(data_dir, target_is_directory=True)
    spec = study.jobseeker_spec("employed")
    argv = shlex.split(spec.command(tmp_path / "my data", str(tmp_path / "o.csv")))
    assert argv[argv.index("--data") + 1] == str(tmp_path / "my data" / JOBSEEKER_FILE)
    assert main(argv[1:]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "o.csv"), spec.run(data_dir),
                                  check_dtype=False, check_exact=True)


def test_command_default_output_and_flags(study, data_dir):
    spec = study.municipal_spec()
    argv = shlex.split(spec.command(data_dir))
    assert argv[-2:] == ["--output", "estimate.csv"]
    options = dict(zip(argv[2::2], argv[3::2], strict=True))
    first, last = analysis_window(3)
    assert options == {
        "--data": str(data_dir / MUNICIPAL_FILE), "--unit": "municipality", "--time": "t",
        "--cohort": "cohort_w3", "--outcome": "unemployment_rate", "--never-treated": "0",
        "--cluster": "ely", "--where": f"t >= {first} and t <= {last}", "--estimator": "cs",
        "--aggregate": "simple", "--se": "cr3", "--output": "estimate.csv"}
    with_list = spec.with_options(covariates=("a", "b"), base_period="universal")
    argv = shlex.split(with_list.command(data_dir))
    assert argv[argv.index("--covariates") + 1] == "a,b"
    assert argv[argv.index("--base-period") + 1] == "universal"


def test_with_options_does_not_mutate(study):
    base = study.jobseeker_spec("employed", covariates=())  # the unadjusted CS
    before = dataclasses.asdict(base)
    changed = base.with_options(estimator="bjs", covariates=["under30"])
    relabelled = base.with_options(label="other", aggregate="event")
    assert dataclasses.asdict(base) == before
    assert base.options == {"estimator": "cs", "aggregate": "simple", "se": "cr3"}
    assert changed.options == {"estimator": "bjs", "aggregate": "simple",
                               "covariates": ["under30"]}
    assert changed.label == base.label == "jobseekers: employed"
    assert relabelled.label == "other" and relabelled.options["aggregate"] == "event"
    assert changed.options is not base.options
    assert changed.columns() == ["person", "t", "cohort", "employed", "under30", "municipality"]
    assert base.columns() == ["person", "t", "cohort", "employed", "municipality"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        base.label = "x"
    wild = base.with_options(estimator="twfe", se="wild", wild_weights="webb",
                             wild_null="unrestricted", draws=99)
    assert wild.with_options(estimator="bjs").options == {"estimator": "bjs",
                                                          "aggregate": "simple"}


def test_analysis_windows():
    assert analysis_window(1) == (1, 72)
    assert analysis_window(2) == (73, 108)
    assert analysis_window(3) == (109, 180)
    for number in (1, 2, 3):
        first, last = analysis_window(number)
        assert first < month_index(wave(number).start) <= last
        assert last == month_index(wave(number).end)
    # consecutive windows tile the panel without overlap
    assert analysis_window(2)[0] == analysis_window(1)[1] + 1
    assert analysis_window(3)[0] == analysis_window(2)[1] + 1
    with pytest.raises(InvalidOptionError, match="wave=4"):
        analysis_window(4)


# ------------------------------------------------------------------------------- Study
def test_study_errors(data_dir, tmp_path):
    with pytest.raises(InvalidOptionError, match=r"wave=4 does not exist"):
        Study(data_dir, wave=4)
    with pytest.raises(ReportError) as info:
        Study(tmp_path / "nowhere")
    for name in REQUIRED_FILES:
        assert name in str(info.value)
    assert "evaluation simulate" in str(info.value)
    partial = tmp_path / "partial"
    partial.mkdir()
    for name in REQUIRED_FILES:
        if name != "trial_areas.parquet":
            (partial / name).symlink_to(data_dir / name)
    with pytest.raises(ReportError, match=r"lacks trial_areas\.parquet; run `evaluation"):
        Study(partial)


def test_study_rejects_a_wave_the_panel_was_not_drawn_for(data_dir):
    with pytest.raises(ReportError, match=r"drawn for wave 3.*pass wave=3"):
        Study(data_dir, wave=2)


def test_study_normalises_its_fields(data_dir, tmp_path):
    study = Study(str(data_dir), outcomes=["employed"], out_dir=str(tmp_path))
    assert study.data_dir == data_dir and study.out_dir == tmp_path
    assert study.outcomes == ("employed",) and Study(data_dir).outcomes == DEFAULT_OUTCOMES
    assert study.start == month_index(wave(3).start) == 135
    assert study.cohort == "cohort_w3" and study.municipal_cluster == "ely"


def test_jobseekers_are_the_target_group_only(study, data_dir):
    panel = pd.read_parquet(data_dir / JOBSEEKER_FILE)
    people = pd.read_parquet(data_dir / "jobseeker_info.parquet")
    sample = study.jobseekers
    assert sample["target_group"].astype(bool).all()
    assert len(sample) == int(panel["target_group"].astype(bool).sum()) < len(panel)
    assert list(sample.index) == list(range(len(sample)))
    persons = set(people.loc[people["target_group"].astype(bool), "person"])
    assert set(sample["person"]) == persons
    treated = sample.drop_duplicates("person").set_index("person")["cohort"] > 0
    expected = people.set_index("person").loc[treated.index, "treated"].astype(bool)
    assert (treated == expected).all() and treated.any() and not treated.all()
    jobseeker_panel = study.jobseeker_panel("employed")
    assert jobseeker_panel.n_units == len(persons)


def test_municipal_panel_covers_only_the_window(study):
    panel = study.municipal_panel()
    first, last = analysis_window(3)
    assert panel.data["t"].min() == first and panel.data["t"].max() == last
    assert panel.n_periods == last - first + 1
    assert panel.n_units == study.municipal["municipality"].nunique() == 309
    assert panel.outcome == "unemployment_rate" and panel.cohort == "cohort_w3"
    assert panel.cluster == "ely"
    assert len(panel.data) == study.municipal["t"].between(first, last).sum()
    other = Study(study.data_dir, wave=3).municipal_panel("in_services")
    assert other.outcome == "in_services"


def test_true_effects_of_synthetic_data(study, data_dir):
    assert study.synthetic
    truth = pd.read_parquet(data_dir / "truth_jobseekers.parquet")
    row = truth[(truth["design"] == "wave3") & (truth["kind"] == "overall")
                & (truth["population"] == "treated") & (truth["outcome"] == "employed")]
    assert len(row) == 1
    assert study.true_overall("jobseekers", "employed") == row["att"].iloc[0]
    assert study.true_overall("jobseekers", "no_such_outcome") is None
    events = truth[(truth["design"] == "wave3") & (truth["kind"] == "event")
                   & (truth["population"] == "treated") & (truth["outcome"] == "employed")
                   & truth["event_time"].between(0, 11)]
    assert len(events) == 12
    assert study.true_event_mean("jobseekers", "employed", 11) == pytest.approx(
        events["att"].mean(), rel=1e-12)


def test_true_effects_are_none_for_real_data(real_dir):
    no_scenario = Study(real_dir)
    assert not no_scenario.synthetic  # truth files present but no scenario
    assert no_scenario.true_overall("jobseekers", "employed") is None
    assert no_scenario.true_overall("municipalities", "unemployment_rate") is None
    for name in ("truth_jobseekers.parquet", "truth_municipalities.parquet"):
        (real_dir / name).unlink()
    real = Study(real_dir)
    assert not real.synthetic
    assert real.true_overall("jobseekers", "employed") is None
    assert real.true_event_mean("jobseekers", "employed", 11) is None
    effects = analysis.all_wave_effects(real)
    assert effects["true_att"].isna().all() and len(effects) == 19
    assert effects["estimate"].notna().sum() == 17  # wave 3's persistence is not observed


# ------------------------------------------------------------------ analysis helpers
def _effects_table():
    return pd.DataFrame({
        "group": ["ok", "few treated", "no comparison", "few comparison"],
        "n_treated": [10, 3, 10, 10], "n_comparison": [20, 20, 0, 4],
        "estimate": [0.1, 0.2, 0.3, 0.4], "std_error": [0.01] * 4, "ci_lower": [0.0] * 4,
        "ci_upper": [0.5] * 4, "p_value": [0.04] * 4, "true_att": [0.05, 0.05, np.nan, 0.05],
    })


def test_publish_counts_replaces_counts_and_hides_small_groups():
    table = _effects_table().assign(outcome="employed")
    original = table.copy()
    counts = pd.DataFrame({"n_treated": [10, SUPPRESSED, 10, 10],
                           "n_comparison": [20, 20, 0, SUPPRESSED]},
                          index=table["group"])
    small = pd.Series([False, True, False, True], index=table["group"])
    out = publish_counts(table.iloc[::-1], counts, small)  # any row order
    pd.testing.assert_frame_equal(table, original)  # input untouched
    out = out.set_index("group")
    estimates = [*analysis.EFFECT_COLUMNS, "true_att"]
    assert out.loc["ok", estimates].tolist()[:5] == [0.1, 0.01, 0.0, 0.5, 0.04]
    assert (out.loc["ok", "n_treated"], out.loc["ok", "n_comparison"]) == (10, 20)
    assert out.loc["few treated", "n_treated"] == SUPPRESSED
    assert (out.loc["few treated", estimates] == SUPPRESSED).all()
    assert out.loc["no comparison", "n_comparison"] == 0
    assert out.loc["no comparison", "estimate"] == 0.3  # zeros identify nobody
    assert (out.loc["few comparison", estimates] == SUPPRESSED).all()
    assert out.columns.tolist()[:2] == ["n_treated", "n_comparison"]


def test_subgroup_counts_are_the_people_counts(study, data_dir):
    table = analysis.subgroup_effects(study, "employed")  # threshold 5: all published
    people = pd.read_parquet(data_dir / "jobseeker_info.parquet")
    people = people[people["target_group"].astype(bool)]
    rules = {"whole target group": np.ones(len(people), bool),
             "under 30": people["under30"].astype(bool).to_numpy(),
             "immigrants": people["immigrant"].astype(bool).to_numpy(),
             "without earnings-related allowance": ~people["era_entitled"].astype(bool)
             .to_numpy()}
    treated = people["treated"].astype(bool).to_numpy()
    assert table["group"].tolist() == list(rules)
    for _, row in table.iterrows():
        rows = rules[row["group"]]
        assert row["n_treated"] == (rows & treated).sum()
        assert row["n_comparison"] == (rows & ~treated).sum()
        assert np.isfinite(float(row["estimate"]))
    assert (table["outcome"] == "employed").all()


def _monthly_counts(study, outcome):
    data = study.jobseekers
    group = np.where(data["cohort"] > 0, "trial", "comparison")
    frame = pd.DataFrame({"month": data["month"].astype(str), "group": group,
                          "yes": data[outcome].astype(int)})
    counts = frame.groupby(["month", "group"])["yes"].agg(["sum", "size"])
    return counts["sum"], counts["size"] - counts["sum"]


def test_monthly_shares_are_nan_exactly_where_counts_are_hidden(data_dir):
    threshold = 25
    study = Study(data_dir, threshold=threshold)
    shares = analysis.monthly_shares(study, "employed")
    yes, no = _monthly_counts(study, "employed")
    shares = shares.assign(month=shares["month"].astype(str)).set_index(["month", "group"])
    shares = shares["share"].reindex(yes.index)
    assert shares.index.equals(yes.index) and len(shares) == 2 * 72
    counts = pd.DataFrame({"yes": yes.to_numpy(), "no": no.to_numpy()},
                          index=[f"{m} {g}" for m, g in yes.index])
    hidden = disclose(counts, threshold=threshold, share="row").suppressed
    expected_nan = hidden.loc[counts.index, ["yes", "no"]].any(axis=1).to_numpy()
    assert (shares.isna().to_numpy() == expected_nan).all()
    small = (((yes > 0) & (yes < threshold)) | ((no > 0) & (no < threshold))).to_numpy()
    assert (shares.isna().to_numpy() >= small).all()  # every small count is hidden
    assert 0 < small.sum() and expected_nan.sum() < len(shares)  # a mix, on this data
    shown = ~expected_nan
    np.testing.assert_allclose(shares.to_numpy()[shown],
                               (100 * yes / (yes + no)).to_numpy()[shown], rtol=1e-12)
    low = analysis.monthly_shares(Study(data_dir, threshold=1), "employed")
    assert low["share"].notna().all()


def test_weighted_monthly_shares(study):
    persons = study.jobseekers["person"].drop_duplicates()
    weights = pd.Series(np.where(np.arange(len(persons)) % 3 == 0, 0.0, 2.0)
                        + np.arange(len(persons)) % 2, index=persons.to_numpy())
    shares = analysis.monthly_shares(study, "unemployed", weights)
    data = study.jobseekers.assign(w=study.jobseekers["person"].map(weights))
    data = data[data["w"] > 0]
    data = data.assign(group=np.where(data["cohort"] > 0, "trial", "comparison"),
                       wy=data["w"] * data["unemployed"])
    sums = data.groupby(["month", "group"])[["wy", "w"]].sum()
    expected = (100 * sums["wy"] / sums["w"]).rename("share")
    got = shares.set_index(["month", "group"])["share"]
    both = got.notna()
    assert both.sum() > 100
    np.testing.assert_allclose(got[both].to_numpy(), expected.loc[got.index[both]].to_numpy(),
                               rtol=1e-12)
    unweighted = analysis.monthly_shares(study, "unemployed").set_index(["month", "group"])
    assert not np.allclose(got[both], unweighted["share"].loc[got.index[both]])


def test_save_table_writes_csv_and_index(data_dir, tmp_path):
    study = Study(data_dir, out_dir=tmp_path / "out")
    first = pd.DataFrame({"a": [1, 2], "b": [0.5, np.nan], "c": ["x", SUPPRESSED]})
    returned = study.save_table(first, "first", chapter=3, individual=True,
                                spec=["evaluation estimate --x 1"], kind="overall")
    assert returned is None  # a notebook cell ending with it shows nothing
    study.save_table(first.iloc[:1], "second", chapter=1, individual=False)
    tables = tmp_path / "out" / "tables"
    pd.testing.assert_frame_equal(pd.read_csv(tables / "first.csv", keep_default_na=False,
                                              na_values=[""]), first)
    index = json.loads((tables / "index.json").read_text())
    assert index == {
        "first": {"chapter": 3, "individual": True, "kind": "overall", "rows": 2,
                  "commands": ["evaluation estimate --x 1"], "warnings": []},
        "second": {"chapter": 1, "individual": False, "kind": "estimates", "rows": 1,
                   "commands": [], "warnings": []}}
    study.save_table(first, "second", chapter=2, individual=True)  # overwrites its entry
    index = json.loads((tables / "index.json").read_text())
    assert index["second"]["rows"] == 2 and index["second"]["chapter"] == 2
    assert set(index) == {"first", "second"}
    in_memory = Study(data_dir)
    assert in_memory.save_table(first, "x", chapter=1, individual=False) is None
    assert not (data_dir / "tables").exists()


def test_match_sample_sizes_protect_small_cells_against_the_all_row(study):
    from evaluation.report.disclosure import suppression_intervals

    result = analysis.match_people(study)
    sizes = result.sample_sizes()
    threshold = 5
    published = analysis.disclosed_sample_sizes(result, threshold)
    table = published.table
    assert table.loc["All", "control"] == int(sizes.loc["All", "control"])
    assert table.loc["All", "treated"] == int(sizes.loc["All", "treated"])
    counts = published.counts
    for row in ("Matched", "Unmatched", "Discarded"):
        for column in ("control", "treated"):
            value = int(counts.loc[row, column])
            assert value == round(sizes.loc[row, column])
            if 0 < value < threshold:
                assert table.loc[row, column] == SUPPRESSED
            elif table.loc[row, column] != SUPPRESSED:
                assert table.loc[row, column] == value
    intervals = suppression_intervals(counts, published.suppressed)
    primary = published.primary.stack()
    for _, cell in intervals.iterrows():
        if primary.loc[(cell["row"], cell["column"])]:
            assert cell["upper"] - cell["lower"] >= 1  # not recoverable from "All"
    # a larger threshold forces suppression, still consistent with the published totals
    strict = analysis.disclosed_sample_sizes(result, 10_000).table
    assert (strict.drop(index="Discarded") == SUPPRESSED).all().all()
    assert (strict.loc["Discarded"] == 0).all()  # zeros identify nobody
