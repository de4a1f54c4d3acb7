"""Nothing is swallowed: warnings reach the table they affect; the matched row is the match."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from evaluation.errors import DroppedObservationsWarning, EvaluationWarning
from evaluation.estimators import CallawaySantAnna
from evaluation.report import chapters, notebook
from evaluation.report.build import _Progress
from evaluation.report.study import Study
from evaluation.report.warning_log import WARNINGS_FILE, WarningLog, warning_lines
from evaluation.simulate import write_synthetic_data
from evaluation.sources.cohort import COHORT_COVARIATES


@pytest.fixture(scope="module")
def attrition_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("attrition")
    write_synthetic_data(out, scenario="attrition", n_people=1200, seed=3)
    return out.resolve()


@pytest.fixture(scope="module")
def default_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("default")
    write_synthetic_data(out, n_people=1500, seed=7)
    return out.resolve()


def test_warning_log_counts_flushes_and_writes(tmp_path):
    log = WarningLog(tmp_path / WARNINGS_FILE)
    with log.capture():
        for _ in range(3):
            warnings.warn("dropped 5 of 9 units", DroppedObservationsWarning, stacklevel=1)
        warnings.warn("something   else\n  entirely", EvaluationWarning, stacklevel=1)
    records = log.flush("overall_effects")
    assert records == [
        {"context": "overall_effects", "category": "DroppedObservationsWarning",
         "message": "dropped 5 of 9 units", "count": 3},
        {"context": "overall_effects", "category": "EvaluationWarning",
         "message": "something else entirely", "count": 1}]
    assert warning_lines(records) == ["DroppedObservationsWarning: dropped 5 of 9 units "
                                      "(3 times)", "EvaluationWarning: something else entirely"]
    assert log.flush("next table") == [] and not log.pending
    log.record("late", UserWarning)
    log.flush("figure")
    written = json.loads((tmp_path / WARNINGS_FILE).read_text())
    assert [r["context"] for r in written] == ["overall_effects", "overall_effects", "figure"]


def test_attrition_warnings_are_attached_to_the_overall_table(attrition_dir, tmp_path):
    study = Study(attrition_dir, out_dir=tmp_path)
    with study.warnings.capture():
        overall = chapters.overall_effects(study, estimators=("cs",))
    study.save_table(overall, "overall_effects", chapter=3, individual=False)
    entry = study.saved_index()["overall_effects"]
    # the message says how many target persons the balanced CS panel lost
    persons = study.jobseekers["person"].nunique()
    dropped = [w for w in entry["warnings"] if w.startswith("DroppedObservationsWarning")
               and f"of {persons} units not observed in all" in w]
    assert len(dropped) == 1, entry["warnings"]
    share = int(dropped[0].split("dropped ")[1].split(" of")[0]) / persons
    assert share > 0.3  # attrition drops a large part of the target group
    on_file = json.loads((tmp_path / WARNINGS_FILE).read_text())
    assert {r["context"] for r in on_file} == {"overall_effects"}


def test_show_table_saves_and_returns_the_warnings_of_its_table(attrition_dir, tmp_path,
                                                                capsys):
    study = Study(attrition_dir, out_dir=tmp_path)
    with study.warnings.capture():
        warnings.warn("a problem with this table", EvaluationWarning, stacklevel=1)
    table = pd.DataFrame({"term": ["x"], "estimate": [1.0], "true_att": [np.nan],
                          "command": ["evaluation estimate --x"]})
    notebook.show_table(study, table, "t", chapter=3, individual=False)
    entry = study.saved_index()["t"]
    assert entry["warnings"] == ["EvaluationWarning: a problem with this table"]
    assert entry["commands"] == ["evaluation estimate --x"]
    html = notebook.warnings_html(entry["warnings"])
    assert "Warnings while computing the numbers above" in html
    assert "a problem with this table" in html
    assert notebook.warnings_html([]) == ""
    shown = capsys.readouterr().out
    assert "command" not in shown and "true_att" not in shown  # hidden when not numbers


def test_matched_row_uses_exactly_the_matched_persons_and_weights(default_dir):
    study = Study(default_dir)
    matched = chapters.match_people(study)
    weights = matched.unit_weights()
    kept = weights[weights > 0]
    panel = chapters.matched_panel(study, "employed", matched)
    assert panel.n_units == len(kept)
    persons = panel.data.drop_duplicates("person").set_index("person")
    assert set(persons.index) == set(kept.index)
    np.testing.assert_array_equal(persons[panel.weights].sort_index(), kept.sort_index())
    # the robustness row is CS on that panel, rebuilt here from the person ids by hand
    data = study.jobseekers[study.jobseekers["person"].isin(kept.index)]
    data = data.assign(w=data["person"].map(kept))
    from evaluation import Panel

    by_hand = Panel(data, unit="person", time="t", outcome="employed", cohort="cohort",
                    never_treated=0, cluster="municipality", weights="w",
                    covariates=list(COHORT_COVARIATES))  # matched and regression-adjusted
    expected = CallawaySantAnna().fit(by_hand).aggregate("simple").overall["estimate"].iloc[0]
    table = chapters.robustness_table(study, "employed", matched)
    row = table[table["design"] == "CS on the matched comparison (weights)"].iloc[0]
    assert row["estimate"] == pytest.approx(expected, rel=1e-12)


def test_progress_names_each_notebook_with_elapsed_time(capsys):
    with _Progress(["a.ipynb", "b.ipynb"], quiet=False) as progress:
        progress.start("a.ipynb")
        progress.done("a.ipynb", 1.2)
        progress.start("b.ipynb")
        progress.done("b.ipynb", 3.4)
    err = capsys.readouterr().err
    assert "evaluation report: notebook 1 of 2 a.ipynb done in 1 s" in err
    assert "evaluation report: notebook 2 of 2 b.ipynb done in 3 s" in err
    with _Progress(["a.ipynb"], quiet=True) as progress:
        progress.done("a.ipynb", 1.0)
    assert capsys.readouterr().err == ""


def test_robustness_counts_distinct_designs_with_the_reason(default_dir):
    study = Study(default_dir)
    table = chapters.robustness_table(study, "employed")
    designs = list(table["design"])
    assert "CS, not-yet-treated controls" not in designs  # = never treated: one start date
    base = table.set_index("design").loc[chapters.BASELINE]
    assert "CS, not-yet-treated controls (with one start date" in base["same_as"]
    bjs = table.set_index("design").loc["imputation (BJS)"]
    assert "two-stage (Gardner)" in bjs["same_as"] and "static TWFE" in bjs["same_as"]
    pairs = table[["estimate", "std_error"]].round(12)
    assert not pairs.duplicated().any()  # every remaining row is a distinct number


def test_distinct_designs_keeps_rows_that_differ():
    table = pd.DataFrame({"design": ["a", "b", "c"], "estimate": [1.0, 1.0, 1.0],
                          "std_error": [0.1, 0.2, 0.1]})
    out = chapters.distinct_designs(table)
    assert list(out["design"]) == ["a", "b"]
    assert out["same_as"].tolist() == ["c (identical estimate and standard error on these "
                                       "data)", ""]


def test_overall_effects_add_open_market_and_extended_unemployment(default_dir):
    study = Study(default_dir)
    overall = chapters.overall_effects(study, estimators=("cs",))
    assert list(overall["outcome"]) == ["unemployment_rate", "employed", "unemployed",
                                        "employed_open", "extended_unemployed"]
    rows = overall.set_index("outcome")
    # extended unemployment is unemployment plus services: the truths add up
    truth = {o: study.true_overall("jobseekers", o)
             for o in ("unemployed", "in_services", "extended_unemployed")}
    assert truth["extended_unemployed"] == pytest.approx(truth["unemployed"]
                                                         + truth["in_services"], abs=1e-12)
    assert rows.loc["extended_unemployed", "true_att"] == truth["extended_unemployed"]
    text = chapters.what_moved(overall)
    assert "Open unemployment changed by" in text and "extended unemployment" in text
    assert "open-market employment by" in text


def test_what_moved_names_the_shift_into_services():
    overall = pd.DataFrame({
        "level": "jobseekers", "estimator": "cs",
        "outcome": ["unemployed", "extended_unemployed", "employed", "employed_open"],
        "estimate": [-0.03, 0.001, 0.002, 0.001], "p_value": [0.001, 0.8, 0.7, 0.9]})
    text = chapters.what_moved(overall)
    assert text.startswith("Open unemployment changed by -3.0 percentage points "
                           "(significant at 5 %) and extended unemployment")
    assert "the difference is the move from open unemployment into services" in text
    assert "Employment changed by +0.2 percentage points (not significant at 5 %)" in text
    assert chapters.what_moved(overall.iloc[:0]) == ""


def test_treated_persons_of_a_stratum_without_controls_are_dropped_with_a_warning(
        default_dir, monkeypatch):
    from evaluation.errors import UnmatchedUnitsWarning
    from evaluation.report.chapters import comparison_groups

    study = Study(default_dir)
    frame = comparison_groups.person_covariates(study)
    frame.loc[frame["treated"] == 0, "immigrant"] = 0  # no immigrant comparison persons
    orphans = int(((frame["treated"] == 1) & (frame["immigrant"] == 1)).sum())
    assert orphans > 0
    monkeypatch.setattr(comparison_groups, "person_covariates", lambda _: frame)
    with pytest.warns(UnmatchedUnitsWarning, match=f"{orphans} treated persons were dropped "
                      "without a match: no comparison person shares their under30 and "
                      "immigrant"):
        result = comparison_groups.match_people(study)
    matched = result.unit_weights()
    immigrants = frame.loc[frame["immigrant"] == 1, "person"]
    assert not matched[matched > 0].index.isin(immigrants).any()
