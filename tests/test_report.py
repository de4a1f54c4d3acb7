"""The rebuilt report: one build on reduced synthetic data, checked section by section.

Two builds run at once (2 cores): the one under test in this process and, in a subprocess,
the manifest's own ``rerun`` command, which the reproducibility test compares table by table.
"""

import base64
import itertools
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from datetime import date
from html import escape

import nbformat
import numpy as np
import pandas as pd
import pytest

import evaluation
from evaluation.cli import main
from evaluation.errors import MissingColumnError, ReportError
from evaluation.report import chapters as analysis
from evaluation.report import indicators as describe
from evaluation.report.build import (
    REPORT_ORDER,
    build_report,
    execute_notebook,
    inject_parameters,
    report_manifest,
    report_parameters,
    table_of_contents,
)
from evaluation.report.disclosure import SUPPRESSED, disclose, suppression_intervals
from evaluation.report.study import REQUIRED_FILES, Study
from evaluation.simulate import write_synthetic_data
from evaluation.sources.files import sha256_file

SEED = 11
PEOPLE = 2000
THRESHOLD = 5
EFFECTS = ["estimate", "std_error", "ci_lower", "ci_upper", "p_value"]
CHAPTER_HEADINGS = [
    "1. Data and monitoring indicators", "2. Comparison groups",
    "3. Effects on employment and unemployment", "4. Heterogeneity", "5. Services and costs",
    "6. Robustness", "7. Validation of the design",
]
TITLE = "Municipal employment trials: impact evaluation"
#: Replications of the reduced validation of every test build (the report's default is 20).
VALIDATION_REPS = 2
RERUN_REPORT = (f"evaluation report --data DATA_DIR --out OUT_DIR --wave 3 --outcomes "
                f"employed,unemployed --seed {SEED} --threshold {THRESHOLD} "
                f"--validation-reps {VALIDATION_REPS}")


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("synthetic")
    write_synthetic_data(out, n_people=PEOPLE, seed=SEED)
    return out.resolve()


@pytest.fixture(scope="module")
def builds(data_dir, tmp_path_factory):
    """(first out dir, html path, second out dir): the same report built twice at once."""
    first = tmp_path_factory.mktemp("report")
    second = tmp_path_factory.mktemp("report_again")
    argv = [second if a == "OUT_DIR" else data_dir if a == "DATA_DIR" else a
            for a in shlex.split(RERUN_REPORT)]
    log = tmp_path_factory.mktemp("logs") / "build.log"  # OUT_DIR must hold only the report
    with open(log, "w") as handle:
        process = subprocess.Popen([sys.executable, "-m", "evaluation", *map(str, argv[1:])],
                                   stdout=handle, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        try:
            html = build_report(data_dir, first, timeout=300, validation_reps=VALIDATION_REPS)
            code = process.wait(timeout=900)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    assert code == 0, log.read_text()
    return first, html, second


@pytest.fixture(scope="module")
def built(builds):
    first, html_path, _ = builds
    return first, html_path.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def wave1_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("synthetic_wave1")
    write_synthetic_data(out, n_people=200, seed=5, wave_number=1)
    return out.resolve()


# ----------------------------------------------------------------------- html helpers
_HEADING = re.compile(r'<h([1-6]) id="([^"]+)"[^>]*>(.*?)</h\1>', re.S)


def _text(fragment: str) -> str:
    return re.sub(r"<[^>]+>", "", fragment).replace("\u00b6", "").strip()


def headings(html: str) -> list[tuple[int, str, str, int]]:
    """(level, id, text, position) of every heading with an id."""
    return [(int(m.group(1)), m.group(2), _text(m.group(3)), m.start())
            for m in _HEADING.finditer(html)]


def body(html: str) -> str:
    return html[html.index("<body"):]


def table_rows(html: str, marker: str) -> list[tuple[list[str], list[str]]]:
    """(header cells, data cells) of every row of the first table after ``marker``."""
    start = html.index(marker)
    table = html[html.index("<table", start):html.index("</table>", start)]
    rows = []
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S):
        rows.append(([_text(c) for c in re.findall(r"<th[^>]*>(.*?)</th>", row, re.S)],
                     [_text(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]))
    return rows


def read_table(out, name: str, raw: bool = False) -> pd.DataFrame:
    path = out / "tables" / f"{name}.csv"
    if raw:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    return pd.read_csv(path)


# ---------------------------------------------------------------- describe (unchanged)
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
    from evaluation.sources.trials import wave

    ax = describe.plot_indicator(table, "unemployment_rate", shade=wave(3))
    assert len(ax.get_lines()) == 2
    assert ax.get_title() == "Unemployment rate, %"
    with pytest.raises(ValueError, match="available"):
        describe.plot_indicator(table, "no_such_indicator")


# ---------------------------------------------------------------- 1. sections and html
def test_sections_are_in_reading_order(built):
    _, html = built
    found = headings(html)
    h1 = [text for level, _, text, _ in found if level == 1]
    assert h1 == [TITLE, *CHAPTER_HEADINGS, "Conclusions", "Appendix: full tables"]
    position = {text: pos for _, _, text, pos in reversed(found)}  # first occurrence
    order = [TITLE, "Description sheet", "Contents", "Summary", *CHAPTER_HEADINGS,
             "Conclusions", "Appendix: full tables"]
    assert [position[t] for t in order] == sorted(position[t] for t in order)
    # every chapter has sections of its own, except robustness (one page)
    bounds = [position[t] for t in [*CHAPTER_HEADINGS, "Conclusions"]]
    for chapter, (start, end) in zip(CHAPTER_HEADINGS, itertools.pairwise(bounds),
                                     strict=True):
        if chapter != "6. Robustness":
            assert any(level == 2 and start < pos < end for level, _, _, pos in found), chapter


def test_description_sheet_has_title_date_abstract_keywords(built):
    out, html = built
    sheet = html[html.index('id="Description-sheet"'):html.index('id="Contents"')]
    for label in ("Title", "Date", "Data", "Keywords"):
        assert f"<strong>{label}</strong>" in sheet
    stamp = re.search(r"<strong>Date</strong></td>\s*<td>(\d{4}-\d{2}-\d{2})</td>", sheet)
    assert stamp and date.fromisoformat(stamp.group(1)) <= date.today()
    assert "<strong>Abstract.</strong>" in sheet and "Wave 3 (2021M03–2024M12)" in sheet
    assert "seed 11" in sheet and "kuntakokeilut" in sheet
    # the abstract quotes the headline (CS) estimates of the overall-effect table
    overall = read_table(out, "overall_effects")
    cs = overall[overall["estimator"] == "cs"].set_index("outcome")
    for outcome in ("employed", "unemployed", "unemployment_rate"):
        row = cs.loc[outcome]
        quoted = (f"{row['estimate']:+.4f}{' pp' if outcome == 'unemployment_rate' else ''} "
                  f"(95 % CI {row['ci_lower']:+.4f} to {row['ci_upper']:+.4f};")
        assert quoted in sheet, quoted


def test_table_of_contents_links_to_existing_headings(built):
    _, html = built
    assert "[[TABLE-OF-CONTENTS]]" not in html
    assert html.count('<nav class="toc">') == 1
    start = html.index('<nav class="toc">')
    nav = html[start:html.index("</nav>", start)]
    assert html.index('id="Contents"') < start < html.index('id="Summary"')
    links = re.findall(r'<a href="#([^"]+)">([^<]+)</a>', nav)
    ids = set(re.findall(r'\bid="([^"]+)"', html))
    assert links and all(anchor in ids for anchor, _ in links)
    found = [(anchor, text) for level, anchor, text, _ in headings(html) if level <= 2]
    after_contents = [h for _, h in found].index("Contents") + 1  # title and sheet come first
    assert links == found[after_contents:]
    assert "Description sheet" not in [text for _, text in links]
    labels = [text for _, text in links]
    assert [t for t in labels if t in CHAPTER_HEADINGS] == CHAPTER_HEADINGS
    assert labels.index("Conclusions") < labels.index("Appendix: full tables")


def test_executed_notebooks_have_no_errors_or_stderr(builds):
    out, _, _ = builds
    assert sorted(p.name for p in (out / "notebooks").iterdir()) == sorted(REPORT_ORDER)
    for name in REPORT_ORDER:
        notebook = nbformat.read(out / "notebooks" / name, as_version=4)
        outputs = [o for c in notebook.cells for o in c.get("outputs", [])]
        assert outputs, name
        assert not [o for o in outputs if o.get("output_type") == "error"], name
        stderr = [o.get("text") for o in outputs if o.get("name") == "stderr"]
        assert not stderr, (name, stderr)  # warnings would show in the report
        injected = [c for c in notebook.cells if "injected-parameters" in c.metadata.get(
            "tags", [])]
        assert len(injected) == 1 and f"SEED = {SEED}" in injected[0].source, name


def test_html_is_self_contained_without_code_or_errors(built):
    _, html = built
    page = body(html)
    # warnings appear only in the boxes under the tables they affect, never as raw output
    outside = re.sub(r'<div class="report-warnings".*?</div>', "", page, flags=re.S)
    assert "Traceback" not in page and not re.search(r"\b[A-Z]\w*(Error|Warning): ", outside)
    assert 'data-mime-type="application/vnd.jupyter.stderr"' not in page
    assert not re.search(r'<script[^>]*src="http', html)
    assert not re.search(r'<link[^>]*href="http', html)
    # no code input: the setup and chapter code are hidden, outputs kept
    for code in ("import matplotlib", "notebook.show_table", "chapters.overall_effects",
                 "plt.show()", "# Parameters (overridden"):
        assert code not in html
    code_cells = re.findall(r'class="jp-Cell jp-CodeCell([^"]*)"', page)
    assert len(code_cells) > 40 and all("jp-mod-noInput" in c for c in code_cells)
    assert "jp-CodeMirrorEditor" not in page and 'class="highlight' not in page
    assert "Synthetic data" in page


def test_figures_are_embedded_and_not_empty(built):
    _, html = built
    page = body(html)
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) >= 15
    sizes = [len(base64.b64decode(i)) for i in images]
    assert min(sizes) > 10_000
    assert not re.search(r'<img[^>]*src="(?!data:)', page)  # no linked image files
    positions = [m.start() for m in re.finditer(r'src="data:image/png;base64,', page)]
    found = headings(page)
    starts = [pos for _, _, text, pos in found if text in CHAPTER_HEADINGS]
    ends = [*starts[1:], next(p for _, _, t, p in found if t == "Conclusions")]
    for text, start, end in zip(CHAPTER_HEADINGS, starts, ends, strict=True):
        assert any(start < p < end for p in positions), f"no figure in {text}"


def test_appendix_lists_every_table(built):
    out, html = built
    index = json.loads((out / "tables" / "index.json").read_text())
    appendix = html[html.index('id="Appendix:-full-tables"'):]
    for name, entry in index.items():
        assert f"Table {entry['chapter']}: {name.replace('_', ' ')}" in appendix
        for command in entry["commands"]:
            assert escape(command, quote=False) in appendix, command


def test_unit_table_of_contents_skips_sheet_and_contents():
    html = ('<h1 id="T">T<a class="anchor-link" href="#T">\u00b6</a></h1>'
            '<h2 id="Description-sheet">Description sheet</h2><h2 id="Contents">Contents</h2>'
            '<h2 id="A-b">A <em>b</em></h2><h3 id="x">deep</h3>')
    toc = table_of_contents(html)
    assert re.findall(r'href="#([^"]+)">([^<]+)<', toc) == [("A-b", "A b")]
    assert 'class="toc-h2"' in toc and "deep" not in toc
    no_contents = table_of_contents('<h1 id="T">T</h1><h2 id="A">A</h2>')
    assert re.findall(r'href="#([^"]+)">', no_contents) == ["T", "A"]  # everything listed


# ------------------------------------------------------------------------- 2. manifest
def test_manifest_records_inputs_seeds_and_parameters(builds, data_dir):
    out, _, _ = builds
    manifest = json.loads((out / "manifest.json").read_text())
    data_manifest = json.loads((data_dir / "manifest.json").read_text())
    assert manifest["report"] == "teas_report.html"
    assert set(manifest["inputs"]) == {*data_manifest["files"], "manifest.json"}
    for name, digest in manifest["inputs"].items():
        assert digest == sha256_file(data_dir / name)
        if name != "manifest.json":
            assert digest == data_manifest["files"][name]["sha256"]
    assert manifest["data_manifest"]["seed"] == SEED
    assert manifest["data_manifest"]["n_people"] == PEOPLE
    assert manifest["data_manifest"]["scenario"]["name"] == "default"
    assert manifest["seeds"] == {"data": SEED, "report": SEED}
    assert manifest["parameters"] == {
        "DATA_DIR": str(data_dir), "OUT_DIR": str(out.resolve()), "WAVE": 3,
        "OUTCOMES": ["employed", "unemployed"], "SEED": SEED, "THRESHOLD": THRESHOLD,
        "VALIDATION_DIR": str((out / "validation").resolve())}


def test_manifest_records_runs_packages_and_commit(builds):
    out, _, _ = builds
    manifest = json.loads((out / "manifest.json").read_text())
    assert [r["notebook"] for r in manifest["notebooks"]] == list(REPORT_ORDER)
    assert len(manifest["notebooks"]) == len(REPORT_ORDER) == 10
    assert all(r["seconds"] > 0 for r in manifest["notebooks"])
    packages = manifest["packages"]
    assert packages["pandas"] == pd.__version__ and packages["numpy"] == np.__version__
    assert packages["kuntakokeilu-evaluation"] == evaluation.__version__
    assert packages["python"] == ".".join(map(str, sys.version_info[:3]))
    assert "git_commit" in manifest
    commit = manifest["git_commit"]
    assert commit is None or re.fullmatch(r"[0-9a-f]{40}", commit)


def test_manifest_lists_every_table_with_its_commands(builds):
    out, _, _ = builds
    manifest = json.loads((out / "manifest.json").read_text())
    index = json.loads((out / "tables" / "index.json").read_text())
    csvs = {p.stem for p in (out / "tables").glob("*.csv")}
    assert set(manifest["tables"]) == set(index) == csvs
    assert {"overall_effects", "effects_by_target_group", "effects_by_area",
            "effects_on_services_and_costs", "cost_split", "robustness"} <= csvs
    for name, entry in manifest["tables"].items():
        assert (out / entry["file"]).is_file()
        assert entry["rows"] == len(read_table(out, name))
        assert entry["commands"] == index[name]["commands"]
        assert entry["chapter"] in range(1, 9) and isinstance(entry["individual"], bool)
    # 3 estimators x (municipal rate + employed, unemployed + open-market employment and
    # extended unemployment)
    assert len(manifest["tables"]["overall_effects"]["commands"]) == 15


def test_manifest_rerun_commands(builds, data_dir, tmp_path):
    out, _, _ = builds
    manifest = json.loads((out / "manifest.json").read_text())
    rerun = manifest["rerun"]
    assert rerun["report"] == RERUN_REPORT  # what the fixture ran for the second build
    assert "evaluation estimate" in rerun["one_table"]
    # the data command redraws byte-identical files
    argv = [str(tmp_path) if a == "DATA_DIR" else a for a in shlex.split(rerun["data"])]
    assert argv[:2] == ["evaluation", "simulate"]
    assert main(argv[1:]) == 0
    for name, digest in manifest["inputs"].items():
        if name != "manifest.json":
            assert sha256_file(tmp_path / name) == digest, name



def test_rerun_data_command_keeps_the_municipality_count(data_dir, tmp_path):
    data_manifest = json.loads((data_dir / "manifest.json").read_text())
    data_manifest["n_municipalities"] = 150
    parameters = report_parameters(data_dir, tmp_path, data_manifest, wave=3, outcomes=None,
                                   seed=None, threshold=5)
    manifest = report_manifest(data_dir, tmp_path, data_manifest, parameters, [], None)
    assert "--municipalities 150" in manifest["rerun"]["data"]

# ------------------------------------------------------------- 3. numbers = command line
def _rerun(command: str, output) -> pd.Series:
    argv = shlex.split(command)
    assert argv[:2] == ["evaluation", "estimate"]
    argv[argv.index("--output") + 1] = str(output)
    assert main(argv[1:]) == 0
    result = pd.read_csv(output)
    assert len(result) == 1 and result["term"].iloc[0] in ("overall", "ATT")
    return result.iloc[0]


def test_overall_effects_equal_the_command_line(builds, data_dir, tmp_path):
    out, _, _ = builds
    overall = read_table(out, "overall_effects")
    assert len(overall) == 15
    assert set(overall["estimator"]) == {"cs", "bjs", "twfe"}
    assert overall[["level", "outcome"]].drop_duplicates().values.tolist() == [
        ["municipalities", "unemployment_rate"], ["jobseekers", "employed"],
        ["jobseekers", "unemployed"], ["jobseekers", "employed_open"],
        ["jobseekers", "extended_unemployed"]]
    for k, row in overall.iterrows():
        assert f"--data {data_dir}/" in row["command"]
        assert f"--estimator {row['estimator']}" in row["command"]
        result = _rerun(row["command"], tmp_path / f"overall{k}.csv")
        np.testing.assert_allclose(result[EFFECTS].astype(float), row[EFFECTS].astype(float),
                                   rtol=1e-10, atol=0)
        assert result["estimator"] == row["estimator"]


def test_every_row_with_a_command_equals_the_command_line(builds, tmp_path):
    out, _, _ = builds
    index = json.loads((out / "tables" / "index.json").read_text())
    checked = 0
    for name, entry in index.items():
        if not entry["commands"] or name == "overall_effects":
            continue
        table = read_table(out, name)
        rows = table[table["command"].fillna("") != ""]
        assert rows["command"].tolist() == entry["commands"], name
        for k, row in rows.iterrows():
            result = _rerun(row["command"], tmp_path / f"{name}{k}.csv")
            np.testing.assert_allclose(result[EFFECTS].astype(float),
                                       row[EFFECTS].astype(float), rtol=1e-10, atol=0)
            checked += 1
    # the wave-3 CS rows of the all-waves table (earlier-wave comparison municipalities
    # included or excluded) and the absorbing TWFE over all waves, services (all months), the
    # two payers' costs of the cost split (all months) and the distinct robustness variants
    # with a command
    robust = read_table(out, "robustness")
    assert checked == 3 + 4 + 2 + int((robust["command"].fillna("") != "").sum())
    assert checked >= 3 + 4 + 10


def test_html_overall_table_shows_the_csv_numbers(built):
    out, html = built
    overall = read_table(out, "overall_effects")
    rows = table_rows(html, 'id="Overall-effects"')
    header = [c for c in rows[0][0] if c]
    assert header == [*EFFECTS, "mde", "true_att"]
    data = [(th, td) for th, td in rows if td]
    assert len(data) == len(overall)
    for (th, td), (_, row) in zip(data, overall.iterrows(), strict=True):
        assert th[-1] == row["estimator"]
        assert td == [f"{row[c]:,.4f}" for c in header]


def test_tables_agree_with_each_other(builds):
    out, _, _ = builds
    overall = read_table(out, "overall_effects").set_index(["level", "outcome", "estimator"])
    groups = read_table(out, "effects_by_target_group")
    whole = groups[groups["group"] == "whole target group"].set_index("outcome")
    for outcome in ("employed", "unemployed"):
        np.testing.assert_allclose(
            whole.loc[outcome, EFFECTS].astype(float),
            overall.loc[("jobseekers", outcome, "cs"), EFFECTS].astype(float), rtol=1e-10)
    robust = read_table(out, "robustness")
    base = robust[robust["design"].str.startswith("baseline")].set_index("outcome")
    for outcome in ("employed", "unemployed"):
        np.testing.assert_allclose(base.loc[outcome, EFFECTS].astype(float),
                                   overall.loc[("jobseekers", outcome, "cs"), EFFECTS]
                                   .astype(float), rtol=1e-10)
    waves = read_table(out, "effects_of_all_waves")
    headline = waves[(waves["part"] == "comparison group") & (waves["estimator"] == "cs")
                     & (waves["comparison"] == "all outside the wave")].set_index("wave")
    np.testing.assert_allclose(headline.loc[3, EFFECTS].astype(float),
                               overall.loc[("municipalities", "unemployment_rate", "cs"),
                                           EFFECTS].astype(float), rtol=1e-10)
    services = read_table(out, "effects_on_services_and_costs")
    split = read_table(out, "cost_split").set_index(["period", "quantity"])
    costs = services.set_index(["period", "outcome"])
    assert set(split.index.get_level_values("period")) == set(services["period"])
    for period in services["period"].unique():
        for outcome in ("lms_cost_state", "lms_cost_municipal"):
            np.testing.assert_allclose(split.loc[(period, outcome), EFFECTS].astype(float),
                                       costs.loc[(period, outcome), EFFECTS].astype(float),
                                       rtol=1e-10)
        state = costs.loc[(period, "lms_cost_state"), "estimate"]
        municipal = costs.loc[(period, "lms_cost_municipal"), "estimate"]
        assert split.loc[(period, "total"), "estimate"] == pytest.approx(state + municipal,
                                                                         rel=1e-12)
        share = split.loc[(period, "municipal share of the change, %")]
        assert share["estimate"] == pytest.approx(100 * municipal / (state + municipal),
                                                  rel=1e-10)
        assert share["ci_lower"] <= share["estimate"] <= share["ci_upper"]  # inf if unbounded


def test_sensitivity_table_states_breakdown_and_pretest_power(builds):
    out, _, _ = builds
    table = read_table(out, "sensitivity").set_index("outcome")
    assert list(table.index) == ["employed", "unemployed"]
    for _, row in table.iterrows():
        assert row["ci_lower"] < row["estimate"] < row["ci_upper"]
        # the smallest M whose interval contains zero (0: already at M = 0; NaN: never)
        assert row["breakdown_m"] >= 0 or np.isnan(row["breakdown_m"])
        assert 0 < row["pretrend_slope_50"] < row["pretrend_slope_80"]
        assert np.isfinite(row["bias_if_passed_80"])


# --------------------------------------------------------------------- 4. disclosure
def _treated_counts(data_dir, column: str | None = None) -> tuple[int, int]:
    """(treated, comparison) persons of the target group, from the people file."""
    people = pd.read_parquet(data_dir / "jobseeker_info.parquet")
    people = people[people["target_group"].astype(bool)]
    if column == "no_era":
        people = people[~people["era_entitled"].astype(bool)]
    elif column:
        people = people[people[column].astype(bool)]
    treated = people["treated"].astype(bool)
    return int(treated.sum()), int((~treated).sum())


def test_individual_tables_publish_no_small_counts(builds, data_dir):
    out, _, _ = builds
    index = json.loads((out / "tables" / "index.json").read_text())
    individual = [name for name, entry in index.items() if entry["individual"]]
    assert {"effects_by_target_group", "effects_by_area"} <= set(individual)
    hidden_rows = shown_rows = 0
    for name in individual:
        table = read_table(out, name, raw=True)
        counts = [c for c in ("n_treated", "n_comparison") if c in table]
        for column in counts:
            for value in table[column]:
                assert value == SUPPRESSED or (value.isdigit() and (
                    int(value) >= THRESHOLD or int(value) == 0)), (name, column, value)
        if not counts:
            continue
        hidden = (table[counts] == SUPPRESSED).any(axis=1)
        estimates = [c for c in (*EFFECTS, "true_att") if c in table]
        assert (table.loc[hidden, estimates] == SUPPRESSED).all().all(), name
        assert (table.loc[~hidden, EFFECTS] != SUPPRESSED).all().all(), name
        # a published row has its estimate, or none at all when the adjusted design is not
        # identified in that small group (the warning says so next to the table)
        empty = (table.loc[~hidden, EFFECTS] == "")
        # ... or its estimate only, where too few clusters support any inference
        notes = (table.loc[~hidden, "inference"] if "inference" in table
                 else pd.Series("", index=empty.index))
        estimate_only = notes.fillna("").astype(str).str.startswith("estimate only")
        inference_blank = empty.drop(columns="estimate").all(axis=1)
        assert (estimate_only <= (inference_blank & ~empty["estimate"])).all(), name
        assert (empty.all(axis=1) | ~empty.any(axis=1) | estimate_only).all(), name
        if empty.all(axis=1).any():
            assert any("CellEstimationWarning" in line for line in index[name]["warnings"])
        assert (~empty.all(axis=1)).sum() >= 2, name  # most groups are estimated
        hidden_rows += int(hidden.sum())
        shown_rows += int((~hidden).sum())
    assert hidden_rows > 0 and shown_rows > 0  # the reduced data exercise both branches
    # published counts are the true counts (computed here from the people file)
    groups = read_table(out, "effects_by_target_group", raw=True)
    whole = groups[groups["group"] == "whole target group"].iloc[0]
    assert (int(whole["n_treated"]), int(whole["n_comparison"])) == _treated_counts(data_dir)


def test_area_counts_cannot_be_recovered_from_the_whole_group(builds):
    out, _, _ = builds
    areas = read_table(out, "effects_by_area", raw=True)
    groups = read_table(out, "effects_by_target_group", raw=True)
    for outcome, rows in areas.groupby("outcome"):
        whole = groups[(groups["outcome"] == outcome)
                       & (groups["group"] == "whole target group")]["n_treated"].iloc[0]
        hidden = rows["n_treated"] == SUPPRESSED
        if whole != SUPPRESSED:
            # areas partition the treated persons: one hidden area = total - the others
            assert hidden.sum() != 1, outcome
        published = rows.loc[~hidden, "n_treated"].astype(int).sum()
        assert whole == SUPPRESSED or published <= int(whole)


def test_html_target_group_counts_are_the_disclosed_counts(built, data_dir):
    _, html = built
    study = Study(data_dir, threshold=THRESHOLD, seed=SEED)
    expected = analysis.target_group_counts(study)
    rows = table_rows(html, "Target-group persons by trial area")
    assert rows[0][0][1:] == ["persons"]  # one column: the areas are rows
    published = expected.table.loc["persons"]
    assert [th[0] for th, _ in rows[1:]] == [str(c) for c in published.index]
    shown = np.array([td[0] for _, td in rows[1:]])
    assert shown.tolist() == [str(v) for v in published]
    counts = expected.counts.loc["persons"].to_numpy()
    assert ((shown == SUPPRESSED) >= ((counts > 0) & (counts < THRESHOLD))).all()
    assert (shown[shown != SUPPRESSED].astype(int) == counts[shown != SUPPRESSED]).all()
    assert int(published["Total"]) == sum(_treated_counts(data_dir))
    assert int(published["comparison"]) == _treated_counts(data_dir)[1]


def _assert_protected(published, threshold):
    """Primary cells hidden, no line with exactly one hidden cell, LP audit passes."""
    hidden = published.suppressed.to_numpy()
    counts = published.counts.to_numpy()
    primary = (counts > 0) & (counts < threshold)
    assert (published.primary.to_numpy() == primary).all()
    assert (hidden >= primary).all()
    assert ((published.table.to_numpy() == SUPPRESSED) == hidden).all()
    for line in [*hidden, *hidden.T]:
        assert line.sum() != 1
    audit = suppression_intervals(published.counts, published.suppressed)
    small = {(published.counts.index[i], published.counts.columns[j])
             for i, j in zip(*np.nonzero(primary), strict=True)}
    audit = audit[[(r, c) in small for r, c in zip(audit["row"], audit["column"], strict=True)]]
    assert len(audit) == len(small) > 0
    assert ((audit["upper"] - audit["lower"]) >= 1).all()


def test_state_distribution_and_counts_at_a_large_threshold(data_dir):
    study = Study(data_dir, threshold=40, seed=SEED)
    states = analysis.state_distribution(study)
    assert states.counts.iloc[:-1, :-1].to_numpy().sum() == sum(_treated_counts(data_dir))
    assert 0 < states.n_suppressed < states.table.size  # a mix of hidden and shown cells
    _assert_protected(states, 40)
    shares = states.table.to_numpy()
    counts = states.counts.to_numpy()
    for i, j in zip(*np.nonzero(shares != SUPPRESSED), strict=True):
        assert shares[i, j] == pytest.approx(round(100 * counts[i, j] / counts[i, -1], 1))
    persons = analysis.target_group_counts(Study(data_dir, threshold=10, seed=SEED))
    assert 0 < persons.n_suppressed < persons.table.size
    _assert_protected(persons, 10)
    everything = analysis.target_group_counts(Study(data_dir, threshold=400, seed=SEED))
    assert (everything.table == SUPPRESSED).all().all()  # the total is below 400


def test_subgroup_effects_hide_estimates_on_small_counts(data_dir, builds):
    out, _, _ = builds
    threshold = 100
    table = analysis.subgroup_effects(Study(data_dir, threshold=threshold, seed=SEED),
                                      "employed")
    reference = read_table(out, "effects_by_target_group")
    reference = reference[reference["outcome"] == "employed"].set_index("group")
    labels = {"whole target group": None, **{k: v for k, v in analysis.SUBGROUPS.items()}}
    assert table["group"].tolist() == list(labels)
    mixed, secondary = set(), 0
    for _, row in table.iterrows():
        counts = _treated_counts(data_dir, labels[row["group"]])
        small = False
        for column, count in zip(("n_treated", "n_comparison"), counts, strict=True):
            if 0 < count < threshold:
                assert row[column] == SUPPRESSED
                small = True
            elif row[column] == SUPPRESSED:  # hidden to protect the rest of the group
                secondary += 1
            else:
                assert row[column] == count
        if labels[row["group"]] is not None:  # subgroup and rest cannot both be small-safe
            rest = [t - c for t, c in zip(_treated_counts(data_dir, None), counts, strict=True)]
            for column, count, other in zip(("n_treated", "n_comparison"), counts, rest,
                                            strict=True):
                if 0 < other < threshold and count > 0:
                    assert row[column] == SUPPRESSED  # else whole - subgroup = rest
        if small:
            assert (row[[*EFFECTS, "true_att"]] == SUPPRESSED).all()
        else:
            np.testing.assert_allclose(row[EFFECTS].astype(float),
                                       reference.loc[row["group"], EFFECTS].astype(float),
                                       rtol=1e-10)
        mixed.add(small)
    assert mixed == {True, False}


def test_a_single_small_area_cannot_be_recovered(data_dir, tmp_path):
    # a real extract where exactly one trial area is small: drop the persons of the others
    shutil.copytree(data_dir, tmp_path / "data")
    folder = tmp_path / "data"
    people = pd.read_parquet(folder / "jobseeker_info.parquet")
    target = people[people["target_group"].astype(bool) & people["treated"].astype(bool)]
    sizes = target.groupby("area").size()
    small = sizes[(sizes > 0) & (sizes < THRESHOLD)]
    keep = small.idxmax()
    drop = target.loc[target["area"].isin(small.index) & (target["area"] != keep), "person"]
    people[~people["person"].isin(drop)].to_parquet(folder / "jobseeker_info.parquet",
                                                    index=False)
    panel = pd.read_parquet(folder / "jobseekers.parquet")
    panel[~panel["person"].isin(drop)].to_parquet(folder / "jobseekers.parquet", index=False)
    study = Study(folder, threshold=THRESHOLD, seed=SEED)
    areas = analysis.area_effects(study, "employed")
    whole = analysis.subgroup_effects(study, "employed")["n_treated"].iloc[0]
    persons = analysis.target_group_counts(study)
    published = pd.to_numeric(areas["n_treated"], errors="coerce")
    hidden_areas = areas.loc[published.isna(), "group"].str.split().str[0].tolist()
    assert keep in hidden_areas and len(hidden_areas) >= 2  # secondary suppression
    hidden_total = int(whole) - int(published.sum())
    assert hidden_total > small[keep]  # the remainder mixes the small area with others
    # the area table publishes exactly what chapter 1 publishes (linked tables agree)
    hidden_in_chapter1 = [c for c in persons.table.columns if persons.table.loc[
        "persons", c] == SUPPRESSED]
    assert set(hidden_in_chapter1) - {"comparison", "Total"} == set(hidden_areas)
    shown = areas[areas["estimate"] == SUPPRESSED]["group"].str.split().str[0].tolist()
    assert shown == [keep]  # only the small area's estimate is withheld


# --------------------------------------------------------------- 5. reproducibility
def test_two_builds_with_the_same_seed_give_identical_tables(builds):
    first, _, second = builds
    names = sorted(p.name for p in (first / "tables").glob("*.csv"))
    assert names == sorted(p.name for p in (second / "tables").glob("*.csv"))
    assert len(names) >= 10
    for name in names:
        pd.testing.assert_frame_equal(
            pd.read_csv(first / "tables" / name), pd.read_csv(second / "tables" / name),
            check_exact=True, obj=name)
    assert (json.loads((first / "tables" / "index.json").read_text())
            == json.loads((second / "tables" / "index.json").read_text()))
    one = json.loads((first / "manifest.json").read_text())
    two = json.loads((second / "manifest.json").read_text())
    assert one["inputs"] == two["inputs"] and one["tables"] == two["tables"]
    where = ("OUT_DIR", "VALIDATION_DIR")  # inside each build's own output directory
    assert {k: v for k, v in one["parameters"].items() if k not in where} == {
        k: v for k, v in two["parameters"].items() if k not in where}
    assert (second / "teas_report.html").is_file()


# ------------------------------------------------------------------------ 6. errors
def test_missing_data_files_are_named(tmp_path, data_dir):
    with pytest.raises(ReportError, match=r"manifest\.json.*evaluation simulate"):
        build_report(tmp_path / "empty", tmp_path / "out")
    partial = tmp_path / "partial"
    partial.mkdir()
    for name in REQUIRED_FILES:
        if name != "jobseekers.parquet":
            shutil.copy(data_dir / name, partial / name)
    with pytest.raises(ReportError) as info:
        build_report(partial, tmp_path / "out")
    message = str(info.value)
    assert "jobseekers.parquet" in message and "evaluation simulate" in message
    assert "municipalities.parquet" not in message
    assert not (tmp_path / "out").exists()


def test_missing_notebooks_are_named(tmp_path, data_dir):
    with pytest.raises(ReportError, match=r"notebooks 00_summary\.ipynb, 01_data"):
        build_report(data_dir, tmp_path / "out", notebooks_dir=tmp_path)
    from evaluation.report.build import NOTEBOOKS_DIR

    some = tmp_path / "some"
    some.mkdir()
    for name in REPORT_ORDER:
        if name != "05_services_costs.ipynb":
            shutil.copy(NOTEBOOKS_DIR / name, some / name)
    with pytest.raises(ReportError, match=r"notebooks 05_services_costs\.ipynb are missing"):
        build_report(data_dir, tmp_path / "out", notebooks_dir=some)
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    with pytest.raises(ReportError, match="parameters"):
        inject_parameters(notebook, {"DATA_DIR": "x"})


@pytest.mark.parametrize("threshold", [0, -3, "5", 2.5])
def test_bad_threshold_fails_before_any_notebook_runs(tmp_path, data_dir, threshold):
    with pytest.raises(ReportError, match=r"threshold=.*positive whole number"):
        build_report(data_dir, tmp_path / "out", threshold=threshold)
    assert not (tmp_path / "out").exists()


def test_boolean_threshold_is_rejected_early(data_dir, tmp_path):
    manifest = json.loads((data_dir / "manifest.json").read_text())
    with pytest.raises(ReportError, match="threshold"):
        report_parameters(data_dir, tmp_path, manifest, wave=None, outcomes=None, seed=None,
                          threshold=True)


def test_wave_not_matching_the_jobseeker_panel(wave1_dir):
    with pytest.raises(ReportError, match=r"wave 1.*pass wave=1"):
        Study(wave1_dir, wave=3)


def test_report_defaults_to_the_wave_of_the_data(wave1_dir, tmp_path):
    manifest = json.loads((wave1_dir / "manifest.json").read_text())
    parameters = report_parameters(wave1_dir, tmp_path, manifest, wave=None, outcomes=None,
                                   seed=None, threshold=5)
    assert parameters["WAVE"] == 1


def test_report_parameters_defaults(data_dir, tmp_path):
    manifest = json.loads((data_dir / "manifest.json").read_text())
    parameters = report_parameters(data_dir, tmp_path, manifest, wave=None, outcomes=None,
                                   seed=None, threshold=3)
    assert parameters == {"DATA_DIR": str(data_dir), "OUT_DIR": str(tmp_path.resolve()),
                          "WAVE": 3, "OUTCOMES": ["employed", "unemployed"], "SEED": SEED,
                          "THRESHOLD": 3}
    parameters = report_parameters(data_dir, tmp_path, manifest, wave=3,
                                   outcomes=["in_services"], seed=4, threshold=5)
    assert (parameters["OUTCOMES"], parameters["SEED"]) == (["in_services"], 4)


def test_failing_notebook_is_reported_with_its_error(tmp_path):
    cell = nbformat.v4.new_code_cell("DATA_DIR = None", metadata={"tags": ["parameters"]})
    failing = nbformat.v4.new_notebook(cells=[cell, nbformat.v4.new_code_cell(
        "raise RuntimeError('boom in chapter')")])
    path = tmp_path / "broken.ipynb"
    nbformat.write(failing, path)
    with pytest.raises(ReportError, match=r"notebook broken\.ipynb failed in code cell 2 "
                                          r"\(.raise RuntimeError\('boom in chapter'\).\): "
                                          r"RuntimeError: boom in chapter"):
        execute_notebook(path, {"DATA_DIR": "x"}, timeout=60)


def test_parameters_are_injected_after_the_tagged_cell(tmp_path):
    cells = [nbformat.v4.new_code_cell("A = 1", metadata={"tags": ["parameters"]}),
             nbformat.v4.new_code_cell("print(A * 2)")]
    path = tmp_path / "p.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    chapter = execute_notebook(path, {"A": 21}, timeout=60)
    assert chapter.notebook.cells[1].metadata["tags"] == ["injected-parameters"]
    assert chapter.notebook.cells[2].outputs[0]["text"].strip() == "42"
    assert chapter.seconds > 0


def test_cli_report_error_is_one_line(tmp_path, capsys):
    code = main(["report", "--data", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "evaluation report: error:" in err and "evaluation simulate" in err


def test_cli_report_bad_threshold_is_one_line(tmp_path, data_dir, capsys):
    code = main(["report", "--data", str(data_dir), "--out", str(tmp_path / "o"),
                 "--threshold", "0"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("evaluation report: error: threshold=0")
    assert not (tmp_path / "o").exists()


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


def test_disclose_rule_used_by_the_report():
    # the helper the effect tables use: only primary suppression without margins
    counts = pd.DataFrame({"n_treated": [10, 3, 0], "n_comparison": [20, 20, 4]},
                          index=["a", "b", "c"])
    published = disclose(counts, threshold=THRESHOLD, margins=False)
    assert published.table.to_numpy().tolist() == [[10, 20], [SUPPRESSED, 20],
                                                    [0, SUPPRESSED]]


# ------------------------------------------------------------- warnings in the report
@pytest.fixture(scope="module")
def attrition_build(tmp_path_factory):
    """A report on the attrition scenario, where the balanced CS panels lose many persons."""
    data = tmp_path_factory.mktemp("attrition_data")
    write_synthetic_data(data, scenario="attrition", n_people=PEOPLE, seed=SEED)
    out = tmp_path_factory.mktemp("attrition_report")
    html = build_report(data, out, timeout=300, quiet=True, validation_reps=VALIDATION_REPS)
    return out, html.read_text(encoding="utf-8")


def test_attrition_warnings_are_shown_next_to_their_table_and_in_the_manifest(
        attrition_build):
    out, html = attrition_build
    manifest = json.loads((out / "manifest.json").read_text())
    dropped = [w for w in manifest["warnings"] if w["context"] == "overall_effects"
               and w["category"] == "DroppedObservationsWarning"]
    persons = [w for w in dropped if "units not observed in all" in w["message"]]
    assert persons, manifest["warnings"]
    index = json.loads((out / "tables" / "index.json").read_text())
    assert any("units not observed in all" in w for w in index["overall_effects"]["warnings"])
    # in the HTML the warning box follows the overall-effects table, before the next heading
    page = body(html)
    start = page.index('id="Overall-effects"')
    end = page.index('id="Event-studies"')
    section = page[start:end]
    assert 'class="report-warnings"' in section
    assert escape(persons[0]["message"])[:80] in section
    assert manifest["stderr"] == {}


# ------------------------------------------------------------------ validation chapter
def test_validation_chapter_shows_the_monte_carlo_and_the_manifest_records_it(builds):
    out, html_path, second = builds
    manifest = json.loads((out / "manifest.json").read_text())
    validation = manifest["validation"]
    assert validation["source"] == "computed" and validation["replications"] == VALIDATION_REPS
    assert validation["scenario"] == "default" and validation["size"] == "small"
    assert validation["seed"] == SEED
    table = read_table(out, "validation")
    summary = pd.read_csv(out / "validation" / "summary.csv")
    assert len(table) == len(summary) and (table["replications"] == VALIDATION_REPS).all()
    np.testing.assert_allclose(table["bias"], summary["bias"], rtol=0)
    assert set(table["verdict"].str.split(":").str[0]) <= {"meets the criteria", "fails"}
    # same seed, same replications: the second build's Monte Carlo is identical
    pd.testing.assert_frame_equal(pd.read_parquet(out / "validation" / "estimates.parquet"),
                                  pd.read_parquet(second / "validation" / "estimates.parquet"))
    page = body(html_path.read_text(encoding="utf-8"))
    start = page.index('id="7.-Validation-of-the-design"')
    assert f"{VALIDATION_REPS} replications" in page[start:]


def test_report_reads_a_finished_validation_run(builds, data_dir, tmp_path):
    out, _, _ = builds
    from evaluation.report.build import _prepare_validation

    parameters = {"SEED": SEED, "OUTCOMES": ["employed"]}
    entry = _prepare_validation(tmp_path, {}, parameters, out / "validation", 99, quiet=True)
    assert entry["source"] == "read" and entry["replications"] == VALIDATION_REPS
    assert parameters["VALIDATION_DIR"] == str((out / "validation").resolve())
    assert not (tmp_path / "validation").exists()  # nothing recomputed
    with pytest.raises(ReportError, match="holds no validation run"):
        _prepare_validation(tmp_path, {}, parameters, tmp_path, 2, quiet=True)
