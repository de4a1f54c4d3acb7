import json
import re

import nbformat
import numpy as np
import pandas as pd
import pytest

from evaluation import describe
from evaluation.cli import main
from evaluation.errors import MissingColumnError, ReportError
from evaluation.report import CHAPTERS, build_report, execute_notebook, inject_parameters
from evaluation.simulate import sha256_file, write_synthetic_data


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("synthetic")
    write_synthetic_data(out, n_people=300, seed=11)
    return out


@pytest.fixture(scope="module")
def built_report(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    html = build_report(data_dir, out, timeout=300)
    return out, html


def tiny_panel() -> pd.DataFrame:
    return pd.DataFrame({
        "municipality": ["A", "A", "B", "B", "C", "C"],
        "month": ["2021M01", "2021M02"] * 3,
        "unemployed": [10, 20, 30, 40, 5, 5],
        "labour_force": [100, 100, 300, 300, 50, 50],
        "long_term_unemployed": [5, 5, 10, 10, 1, 1],
        "cohort_w3": [135, 135, 0, 0, 135, 135],
    })


def test_indicators_are_ratios_of_group_sums():
    data = tiny_panel()
    table = describe.monitoring_indicators(data, describe.wave_groups(data, 3))
    rate = table[table["indicator"] == "unemployment_rate"].set_index(["group", "month"])["value"]
    # trial = A + C: (10 + 5) / (100 + 50); comparison = B.
    assert rate[("trial", "2021M01")] == pytest.approx(100 * 15 / 150)
    assert rate[("trial", "2021M02")] == pytest.approx(100 * 25 / 150)
    assert rate[("comparison", "2021M02")] == pytest.approx(100 * 40 / 300)
    lt = table[table["indicator"] == "long_term_share"].set_index(["group", "month"])["value"]
    assert lt[("trial", "2021M01")] == pytest.approx(100 * 6 / 15)
    # indicators whose inputs are absent are skipped, not faked
    assert set(table["indicator"]) == {"unemployment_rate", "long_term_share"}
    assert table["date"].iloc[0] == pd.Timestamp("2021-01-01")


def test_indicators_need_month_and_cohort_columns():
    data = tiny_panel()
    with pytest.raises(MissingColumnError, match="cohort_w2"):
        describe.wave_groups(data, 2)
    with pytest.raises(MissingColumnError, match="month"):
        describe.monitoring_indicators(data.drop(columns="month"), describe.wave_groups(data, 3))


def test_pre_period_comparison_and_overview(data_dir):
    municipal = pd.read_parquet(data_dir / "municipalities.parquet")
    areas = pd.read_parquet(data_dir / "trial_areas.parquet")
    table = describe.pre_period_comparison(municipal, 1, months=24)
    assert table.index.name == "2010M09–2012M08"
    np.testing.assert_allclose(table["difference"], table["trial"] - table["comparison"],
                               atol=0.011)
    # wave 1 was selected for high unemployment
    assert table.loc["Unemployment rate, %", "difference"] > 1.0
    overview = describe.trial_overview(municipal, areas)
    assert overview["areas"].tolist() == [23, 8, 25]
    assert overview["municipalities"].tolist()[2] == 118
    assert (overview["share of national jobseekers, %"] < 100).all()


def test_plot_indicator_returns_axes_with_lines(data_dir):
    import matplotlib

    matplotlib.use("Agg")
    municipal = pd.read_parquet(data_dir / "municipalities.parquet")
    table = describe.monitoring_indicators(municipal, describe.wave_groups(municipal, 3))
    from evaluation.trials import wave

    ax = describe.plot_indicator(table, "unemployment_rate", shade=wave(3))
    assert len(ax.get_lines()) == 2
    assert ax.get_title() == "Unemployment rate, %"
    with pytest.raises(ValueError, match="available"):
        describe.plot_indicator(table, "no_such_indicator")


def test_report_has_every_section_and_figures(built_report):
    out, html_path = built_report
    html = html_path.read_text(encoding="utf-8")
    for heading in ("1. Data and monitoring indicators", "The trials", "Wave 1", "Wave 2",
                    "Wave 3", "Labour-market subsidy costs", "Municipalities by size"):
        assert heading in html
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) >= 5
    assert min(len(i) for i in images) > 10_000  # no empty figures
    assert "Traceback" not in html and not re.search(r"[A-Z]\w+Error: ", html)
    assert "Synthetic data" in html and "seed 11" in html
    executed = nbformat.read(out / "notebooks" / CHAPTERS[0], as_version=4)
    outputs = [o for c in executed.cells for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert not [o for o in outputs if o.get("name") == "stderr"]  # no warnings in the report


def test_report_manifest_records_inputs_and_runs(built_report, data_dir):
    out, _ = built_report
    manifest = json.loads((out / "manifest.json").read_text())
    data_manifest = json.loads((data_dir / "manifest.json").read_text())
    for name, entry in data_manifest["files"].items():
        assert manifest["inputs"][name] == entry["sha256"] == sha256_file(data_dir / name)
    assert manifest["data_manifest"]["seed"] == 11
    assert [r["notebook"] for r in manifest["notebooks"]] == list(CHAPTERS)
    assert all(r["seconds"] > 0 for r in manifest["notebooks"])
    assert manifest["packages"]["pandas"] == pd.__version__
    assert "git_commit" in manifest
    assert "--seed 11" in manifest["rerun"]


def test_report_errors_are_specific(tmp_path, data_dir):
    with pytest.raises(ReportError, match=r"manifest\.json"):
        build_report(tmp_path / "empty", tmp_path / "out")
    with pytest.raises(ReportError, match="chapter notebook"):
        build_report(data_dir, tmp_path / "out", notebooks_dir=tmp_path)
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    with pytest.raises(ReportError, match="parameters"):
        inject_parameters(notebook, {"DATA_DIR": "x"})


def test_failing_notebook_is_reported_with_its_error(tmp_path):
    cell = nbformat.v4.new_code_cell("DATA_DIR = None", metadata={"tags": ["parameters"]})
    failing = nbformat.v4.new_notebook(cells=[cell, nbformat.v4.new_code_cell(
        "raise RuntimeError('boom in chapter')")])
    path = tmp_path / "broken.ipynb"
    nbformat.write(failing, path)
    with pytest.raises(ReportError, match=r"broken\.ipynb failed: RuntimeError: boom in chapter"):
        execute_notebook(path, {"DATA_DIR": "x"}, timeout=60)


def test_parameters_are_injected_after_the_tagged_cell(tmp_path):
    cells = [nbformat.v4.new_code_cell("A = 1", metadata={"tags": ["parameters"]}),
             nbformat.v4.new_code_cell("print(A * 2)")]
    path = tmp_path / "p.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    chapter = execute_notebook(path, {"A": 21}, timeout=60)
    assert chapter.notebook.cells[1].metadata["tags"] == ["injected-parameters"]
    assert chapter.notebook.cells[2].outputs[0]["text"].strip() == "42"


def test_cli_report_error_is_one_line(tmp_path, capsys):
    code = main(["report", "--data", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "evaluation report: error:" in err and "evaluation simulate" in err


def test_kernel_failure_becomes_report_error(tmp_path, monkeypatch):
    from nbclient import NotebookClient

    def no_kernel(self, *args, **kwargs):
        raise RuntimeError("Kernel didn't respond in 60 seconds")

    monkeypatch.setattr(NotebookClient, "execute", no_kernel)
    cell = nbformat.v4.new_code_cell("DATA_DIR = None", metadata={"tags": ["parameters"]})
    path = tmp_path / "k.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), path)
    with pytest.raises(ReportError, match=r"kernel failed .*ipykernel is installed"):
        execute_notebook(path, {"DATA_DIR": "x"}, timeout=60)
