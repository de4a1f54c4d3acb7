"""Tests of the real-data path of the municipal panel (evaluation.sources.statfin and
evaluation.sources.trial_assignment).

Small StatFin 12r5 exports are written to ``tmp_path`` in the layouts, encodings and
delimiters StatFin produces; every test checks exact values, and the trial columns are
checked against the simulator's own coding.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evaluation.errors import EvaluationError, StatFinError
from evaluation.panel import Panel
from evaluation.simulate import simulate_municipalities
from evaluation.sources.statfin import STATFIN_12R5_MEASURES, read_statfin_12r5
from evaluation.sources.trial_assignment import (
    TRIAL_COLUMNS,
    add_trial_columns,
    read_trial_assignment,
    trial_areas_table,
    write_municipal_extract,
)
from evaluation.sources.trials import month_index, wave

W1_START, W3_START = month_index(wave(1).start), month_index(wave(3).start)  # 33, 135
W1_END = month_index(wave(1).end)  # 72 (2015M12)


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# Long export: UTF-8 with byte-order mark, ';', quoted, decimal comma, title above header.
LONG = (
    '"Työnvälitystilasto: työttömät ja työnhakijat kuukauden lopussa"\n'
    '\n'
    '"Alue";"Kuukausi";"Tiedot";"Työnvälitystilasto 12r5"\n'
    '"KU091 Helsinki";"2021M03";"TYOTTOMATLOPUSSA";"41234"\n'
    '"KU091 Helsinki";"2021M03";"TYOTOSUUS";"12,5"\n'
    '"KU091 Helsinki";"2021M02";"TYOTTOMATLOPUSSA";"40000"\n'
    '"KU091 Helsinki";"2021M02";"TYOTOSUUS";"12,1"\n'
    '"KU179 Jyväskylä";"2021M03";"TYOTTOMATLOPUSSA";"-"\n'
    '"KU179 Jyväskylä";"2021M03";"TYOTOSUUS";"..."\n'
    '"KU179 Jyväskylä";"2021M02";"TYOTTOMATLOPUSSA";".."\n'
    '"KU179 Jyväskylä";"2021M02";"TYOTOSUUS";"."\n'
    '"MK01 Uusimaa";"2021M03";"TYOTTOMATLOPUSSA";"70000"\n'
    '"ELY01 Uudenmaan ELY-keskus";"2021M03";"TYOTTOMATLOPUSSA";"71000"\n'
    '"SSS KOKO MAA";"2021M03";"TYOTTOMATLOPUSSA";"300000"\n'
    '"SSS KOKO MAA";"2021M02";"TYOTTOMATLOPUSSA";"301000"\n'
)

# Wide export: Latin-1, ',', separate label column, months out of order, trailing delimiter.
WIDE = (
    'Alue,Alue (label),Kuukausi,HAKIJALOPUSSA,TYOVOIMATK,AVPAIKATLOPUSSA,\n'
    'KU109,Hämeenlinna,2010M02,"5001",33000,..,\n'
    'KU109,Hämeenlinna,2010M01,5000,33001.5,-,\n'
    'SSS,KOKO MAA,2010M01,400000,2700000,50000,\n'
    'KU005,KU005 Alajärvi,2010M01,...,4000,12,\n'
)


@pytest.fixture
def long_csv(tmp_path) -> Path:
    return write(tmp_path / "12r5_long.csv", "\ufeff" + LONG)


@pytest.fixture
def wide_csv(tmp_path) -> Path:
    return write(tmp_path / "12r5_wide.csv", WIDE, "latin-1")


# ------------------------------------------------------------------------- reading 12r5


def test_measure_codes_map_to_the_panel_schema():
    assert STATFIN_12R5_MEASURES == {
        "TYOVOIMATK": "labour_force", "HAKIJALOPUSSA": "jobseekers",
        "TYOTTOMATLOPUSSA": "unemployed", "PITKAAIKAISTYOTTOMAT": "long_term_unemployed",
        "TYOTTOMAT25": "unemployed_under25", "TYOTTOMAT50": "unemployed_over50",
        "TYOTTOMATULK": "unemployed_foreign", "TYOTOSUUS": "unemployment_rate",
        "AVPAIKATLOPUSSA": "vacancies",
    }
    assert TRIAL_COLUMNS == ("treated", "wave", "earlier_waves", "first_treated", "cohort_w1",
                             "area_w1", "cohort_w2", "area_w2", "cohort_w3", "area_w3")


def test_long_export_utf8_bom_semicolon(long_csv):
    before = digest(long_csv)
    frame = read_statfin_12r5(long_csv)
    assert digest(long_csv) == before
    expected = pd.DataFrame({
        "municipality": ["KU091", "KU091", "KU179", "KU179"],
        "name": ["Helsinki", "Helsinki", "Jyväskylä", "Jyväskylä"],
        "month": ["2021M02", "2021M03", "2021M02", "2021M03"],
        "t": np.array([134, 135, 134, 135], dtype=np.int64),
        "year": np.array([2021] * 4, dtype=np.int64),
        "unemployed": [40000.0, 41234.0, np.nan, 0.0],
        "unemployment_rate": [12.1, 12.5, np.nan, np.nan],
    })
    for column in ("municipality", "name", "month"):
        expected[column] = expected[column].to_numpy(dtype=str)
    pd.testing.assert_frame_equal(frame, expected)
    assert frame.attrs["dropped_areas"] == 3
    assert frame.attrs["dropped_area_codes"] == ["ELY01", "MK01", "SSS"]


def test_wide_export_latin1_comma_label_column(wide_csv):
    before = digest(wide_csv)
    frame = read_statfin_12r5(wide_csv)
    assert digest(wide_csv) == before
    assert list(frame.columns) == ["municipality", "name", "month", "t", "year",
                                   "labour_force", "jobseekers", "vacancies"]
    assert frame["municipality"].tolist() == ["KU005", "KU109", "KU109"]
    assert frame["name"].tolist() == ["Alajärvi", "Hämeenlinna", "Hämeenlinna"]
    assert frame["month"].tolist() == ["2010M01", "2010M01", "2010M02"]
    assert frame["t"].tolist() == [1, 1, 2]
    np.testing.assert_array_equal(frame["labour_force"], [4000.0, 33001.5, 33000.0])
    np.testing.assert_array_equal(frame["jobseekers"], [np.nan, 5000.0, 5001.0])
    np.testing.assert_array_equal(frame["vacancies"], [12.0, 0.0, np.nan])
    assert all(frame[c].dtype == np.float64 for c in ("labour_force", "jobseekers", "vacancies"))
    assert frame.attrs["dropped_areas"] == 1


def test_cp1252_tab_codes_only_and_english_headings(tmp_path):
    path = write(tmp_path / "x.tsv",
                 "Area\tMonth\tInformation\tvalue\r\n"
                 "KU398\t2024M12\tTYOTOSUUS\t9,75\r\n"
                 "KU398\t2024M12\tPITKAAIKAISTYOTTOMAT\t1 \r\n", "cp1252")
    frame = read_statfin_12r5(path)
    assert frame["name"].tolist() == ["KU398"]  # no labels: the code
    assert frame["t"].tolist() == [180]
    assert frame["long_term_unemployed"].tolist() == [1.0]
    assert frame["unemployment_rate"].tolist() == [9.75]
    assert frame.attrs["dropped_areas"] == 0


def test_long_export_without_some_measure_rows_gives_nan(tmp_path):
    path = write(tmp_path / "x.csv", "Alue,Kuukausi,Tiedot,v\nKU091,2021M03,TYOTTOMAT25,7\n"
                                     "KU091,2021M04,TYOTTOMAT50,8\n")
    frame = read_statfin_12r5(path)
    np.testing.assert_array_equal(frame["unemployed_under25"], [7.0, np.nan])
    np.testing.assert_array_equal(frame["unemployed_over50"], [np.nan, 8.0])


@pytest.mark.parametrize(("text", "match"), [
    ("Alue;Tiedot;v\nKU091;TYOTOSUUS;1\n", r"lacks the required column\(s\) Kuukausi"),
    ("", r"is empty"),
    ("Alue;Kuukausi;Tiedot;v\nKU091;2021M03;TYOTTOMAT;1\nKU091;2021M03;KOKO;2\n",
     r"unknown Tiedot code\(s\) in column Tiedot: 'KOKO', 'TYOTTOMAT'\. .*codes read are "
     r"TYOVOIMATK, HAKIJALOPUSSA"),
    ("Alue;Kuukausi;TYOTOSUUS;Työttömät\nKU091;2021M03;1;2\n",
     r"unknown Tiedot code\(s\) as column headings: 'TYÖTTÖMÄT'"),
    ("Alue;Kuukausi;TYOTOSUUS\nKU091;2021M03;1\nKU091;2021-04;1\nKU091;2021M13;1\n",
     r"malformed month labels: '2021-04' \(line 3\), '2021M13' \(line 4\); .*2021M03"),
    ("Alue;Kuukausi;Tiedot;v\nKU091;2021M03;TYOTOSUUS;1\nKU049;2021M03;TYOTOSUUS;1\n"
     "KU091;2021M03;TYOTOSUUS;2\n",
     r"municipality KU091, month 2021M03, measure TYOTOSUUS occurs more than once "
     r"\(lines 2, 4\)"),
    ("Alue;Kuukausi;TYOTOSUUS\nKU091;2021M03;1\nKU091;2021M03;1\n",
     r"municipality KU091, month 2021M03 occurs more than once"),
    ("Alue;Kuukausi;TYOTOSUUS\nSSS;2021M03;1\nHelsinki;2021M03;1\n",
     r"area codes in column Alue that are neither municipalities .*: 'HELSINKI' \(line 3\)\. "
     r".*allow_unknown_codes=True"),
    ("Alue;Kuukausi;TYOTOSUUS\nSSS;2021M03;1\nMK01;2021M03;1\n",
     r"no municipality rows .* holds the areas SSS, MK01"),
    ("Alue;Kuukausi;Tiedot;v\nSSS;2021M03;TYOTOSUUS;x\nKU091;2021M03;TYOTOSUUS;12.5%\n",
     r"cannot read the number '12\.5%' on line 3 \(municipality KU091, month 2021M03, "
     r"TYOTOSUUS\)"),
    ('Alue,Kuukausi,TYOTOSUUS\nKU091,2021M03,"12,5"\n',
     r"'12,5' on line 2 .*decimal commas are read only in semicolon-delimited files"),
    ("Alue;Kuukausi;Tiedot;v;w\nKU091;2021M03;TYOTOSUUS;1;2\n",
     r"exactly one value column .* found \['v', 'w'\]"),
    ("Alue;Kuukausi\nKU091;2021M03\n", r"has no measure columns"),
    ("Alue;Kuukausi;TYOTOSUUS\nKU091;2021M03;1\nSource: Statistics Finland\n",
     r"line 3: 1 field\(s\) where the header has 3 .*remove notes or footers"),
    ("Alue;Kuukausi;TYOTOSUUS\n;2021M03;1\n", r"line 2: the area \(Alue\) is empty"),
    ("Alue;Kuukausi;TYOTOSUUS\n", r"has a header but no data rows"),
])
def test_read_errors_name_the_problem(tmp_path, text, match):
    path = write(tmp_path / "bad.csv", text)
    before = digest(path)
    with pytest.raises(StatFinError, match=match):
        read_statfin_12r5(path)
    assert digest(path) == before


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(StatFinError, match=r"StatFin file .*nope\.csv' does not exist"):
        read_statfin_12r5(tmp_path / "nope.csv")
    with pytest.raises(StatFinError, match=r"is a directory"):
        read_statfin_12r5(tmp_path)
    assert issubclass(StatFinError, EvaluationError)


# ---------------------------------------------------------------------- trial columns


@pytest.fixture(scope="module")
def synthetic() -> pd.DataFrame:
    return simulate_municipalities("default", seed=1, n_municipalities=100,
                                   keep_potential_outcomes=False)


def assignment_from_panel(data: pd.DataFrame) -> pd.DataFrame:
    units = data.drop_duplicates("municipality")
    rows = [
        {"municipality": m, "wave": n, "area": a}
        for n in (1, 2, 3)
        for m, a in zip(units["municipality"], units[f"area_w{n}"], strict=True) if a
    ]
    return pd.DataFrame(rows)


def test_add_trial_columns_reproduces_the_simulator(synthetic):
    data = synthetic.data
    assignment = assignment_from_panel(data)
    stripped = data.drop(columns=list(TRIAL_COLUMNS))
    rebuilt = add_trial_columns(stripped, assignment)
    pd.testing.assert_frame_equal(rebuilt, data)
    assert list(stripped.columns) == [c for c in data.columns if c not in TRIAL_COLUMNS]
    # Existing trial columns are replaced, not duplicated.
    pd.testing.assert_frame_equal(add_trial_columns(data, assignment), data)


def test_area_names_are_numbered_like_the_simulator(synthetic):
    data = synthetic.data
    assignment = assignment_from_panel(data).sort_values(["wave", "area"], kind="stable")
    named = assignment.assign(area="Trial " + assignment["area"].str.slice(3))
    rebuilt = add_trial_columns(data.drop(columns=list(TRIAL_COLUMNS)), named)
    pd.testing.assert_frame_equal(rebuilt, data)
    areas = trial_areas_table(named, data)
    assert areas["area"].tolist() == synthetic.areas["area"].tolist()
    assert areas["area_name"].tolist() == ("Trial " + areas["area"].str.slice(3)).tolist()


def test_trial_areas_table_matches_the_simulator(synthetic):
    assignment = assignment_from_panel(synthetic.data)
    population = synthetic.units.set_index("municipality")["population"]
    assignment["population"] = assignment["municipality"].map(population)
    areas = trial_areas_table(assignment, synthetic.data)
    expected = synthetic.areas
    assert list(areas.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(
        areas[["wave", "area", "n_municipalities", "population"]],
        expected[["wave", "area", "n_municipalities", "population"]])
    assert areas["area_name"].tolist() == areas["area"].tolist()
    assert areas["area_z"].isna().all() and areas["area_z"].dtype == np.float64
    assert areas.attrs["population_source"] == "assignment"
    for row in areas.itertuples():
        members = assignment[(assignment["wave"] == row.wave) & (assignment["area"] == row.area)]
        assert row.anchor == members.loc[members["population"].idxmax(), "municipality"]


def small_panel() -> pd.DataFrame:
    months = pd.period_range("2012-07", "2016-02", freq="M")
    t = [month_index(m) for m in months]
    rows = [{"municipality": m, "t": ti, "labour_force": lf + ti}
            for m, lf in (("KU001", 1000), ("KU002", 3000), ("KU003", 500)) for ti in t]
    return pd.DataFrame(rows)


def test_trial_columns_semantics_on_a_small_panel():
    panel = small_panel()
    original = panel.copy()
    assignment = pd.DataFrame({"municipality": ["KU002", "1", "KU001"], "wave": [1, "1", 3.0],
                               "area": ["Kakkonen", "Ykkönen", "Ykkönen"]})
    out = add_trial_columns(panel, assignment)
    pd.testing.assert_frame_equal(panel, original)
    one = out[out["municipality"] == "KU001"].set_index("t")
    assert one.loc[W1_START - 1, "treated"] == 0 and one.loc[W1_START, "treated"] == 1
    assert one.loc[W1_END, "treated"] == 1 and one.loc[W1_END + 1, "treated"] == 0
    assert one.loc[W1_START, "wave"] == 1 and one.loc[W1_END + 1, "wave"] == 0
    assert set(one["first_treated"]) == {W1_START}
    assert set(one["cohort_w1"]) == {W1_START} and set(one["cohort_w3"]) == {W3_START}
    assert set(one["area_w1"]) == {"W1-02"} and set(one["area_w3"]) == {"W3-01"}
    assert set(one["area_w2"]) == {""} and set(one["cohort_w2"]) == {0}
    never = out[out["municipality"] == "KU003"]
    assert (never[["treated", "wave", "first_treated", "cohort_w1"]] == 0).all().all()
    assert out["treated"].dtype == np.int8 and out["wave"].dtype == np.int8
    assert out["first_treated"].dtype == np.int64 and out["cohort_w3"].dtype == np.int64
    assert list(out.columns) == [*panel.columns, *TRIAL_COLUMNS]


def test_trial_areas_table_from_labour_force():
    panel = small_panel()
    assignment = pd.DataFrame({"municipality": ["KU001", "KU002", "KU003"], "wave": [1, 1, 3],
                               "area": ["Seutu", "Seutu", "Kolmonen"]})
    areas = trial_areas_table(assignment, panel)
    # Wave 1 starts at t = 33; the panel covers only t = 31, 32 before it.
    expected_w1 = round((1000 + 31.5) * 2.1) + round((3000 + 31.5) * 2.1)
    # Wave 3 starts after the panel ends: mean over all months (t = 31..74).
    expected_w3 = round((500 + 52.5) * 2.1)
    assert areas["population"].tolist() == [expected_w1, expected_w3]
    assert areas["population"].dtype == np.int64
    assert areas["anchor"].tolist() == ["KU002", "KU003"]
    assert areas["area"].tolist() == ["W1-01", "W3-01"]
    assert areas["area_name"].tolist() == ["Seutu", "Kolmonen"]
    assert areas["n_municipalities"].tolist() == [2, 1]
    assert areas.attrs["population_source"] == "labour_force"
    unknown = trial_areas_table(assignment, panel.drop(columns="labour_force"))
    assert unknown["population"].isna().all() and unknown["anchor"].tolist() == ["KU001", "KU003"]
    assert unknown.attrs["population_source"] == "unavailable"


@pytest.mark.parametrize(("assignment", "match"), [
    ({"municipality": ["KU001"], "wave": [4], "area": ["A"]},
     r"unknown wave\(s\) 4; the trials had waves 1, 2, 3"),
    ({"municipality": ["KU001"], "wave": ["kolmas"], "area": ["A"]}, r"unknown wave\(s\) kolmas"),
    ({"municipality": ["KU001", "KU404", "KU405"], "wave": [3, 3, 1], "area": ["A", "A", "B"]},
     r"not in the panel: KU404, KU405"),
    ({"municipality": ["KU001", "KU001", "KU002", "KU001"], "wave": [3, 3, 3, 1],
      "area": ["A", "B", "A", "C"]}, r"more than once in one wave: KU001 \(wave 3\)"),
    ({"municipality": ["KU001"], "wave": [3]}, r"lacks the column\(s\) area"),
    ({"municipality": ["KU001", "KU002"], "wave": [3, 3], "area": ["A", " "]},
     r"empty area on row\(s\) 2"),
])
def test_assignment_errors(assignment, match):
    with pytest.raises(StatFinError, match=match):
        add_trial_columns(small_panel(), pd.DataFrame(assignment))
    with pytest.raises(StatFinError, match=match):
        trial_areas_table(pd.DataFrame(assignment), small_panel())


def test_read_trial_assignment_finnish_headings_latin1(tmp_path):
    path = write(tmp_path / "trials.csv",
                 "kunta;aalto;kokeilualue;nimi;vakiluku\n"
                 "91;3;Helsinki;Helsinki;658457\n"
                 "KU092;3;Vantaa-Kerava;Vantaa;239206,0\n", "latin-1")
    frame = read_trial_assignment(path)
    assert frame.columns.tolist() == ["municipality", "wave", "area", "population"]
    assert frame["population"].tolist() == [658457.0, 239206.0]
    panel = pd.DataFrame({"municipality": ["KU091", "KU092"], "t": [135, 135]})
    out = add_trial_columns(panel, frame)
    assert out["area_w3"].tolist() == ["W3-01", "W3-02"] and out["treated"].tolist() == [1, 1]
    with pytest.raises(StatFinError, match=r"lacks the required column\(s\) wave"):
        read_trial_assignment(write(tmp_path / "t2.csv", "municipality,area\nKU091,A\n"))


# ------------------------------------------------------------------------- the extract


def extract_inputs(tmp_path: Path) -> tuple[Path, Path]:
    months = pd.period_range("2020-01", "2021-12", freq="M")
    lines = ['"Alue";"Kuukausi";"Tiedot";"12r5"']
    for code, name, lf in (("KU091", "Helsinki", 340_000), ("KU853", "Turku", 95_000),
                           ("KU049", "Espoo", 150_000), ("SSS", "KOKO MAA", 2_700_000)):
        for k, m in enumerate(months):
            label = f"{m.year}M{m.month:02d}"
            unemployed = lf // 10 + 7 * k
            lines.append(f'"{code} {name}";"{label}";"TYOVOIMATK";"{lf}"')
            lines.append(f'"{code} {name}";"{label}";"TYOTTOMATLOPUSSA";"{unemployed}"')
            rate = f"{100 * unemployed / lf:.1f}".replace(".", ",")
            lines.append(f'"{code} {name}";"{label}";"TYOTOSUUS";"{rate}"')
    statfin = write(tmp_path / "12r5.csv", "\n".join(lines) + "\n", "cp1252")
    trials = write(tmp_path / "trials.csv",
                   "municipality,wave,area\nKU853,1,Turun seutu\nKU091,3,Helsinki\n"
                   "KU853,3,Turun seutu\n")
    return statfin, trials


def test_written_extract_round_trips_into_a_panel(tmp_path):
    statfin, trials = extract_inputs(tmp_path)
    hashes = (digest(statfin), digest(trials))
    manifest_path = write_municipal_extract(statfin, trials, tmp_path / "out")
    assert (digest(statfin), digest(trials)) == hashes
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    assert manifest["command"] == "evaluation import-statfin"
    assert manifest["scenario"] is None and manifest["seed"] is None
    assert manifest["n_municipalities"] == 3 and manifest["dropped_areas"] == 1
    assert manifest["months"] == ["2020M01", "2021M12"]
    assert manifest["population_source"] == "labour_force"
    assert manifest["sources"]["statfin"] == {"file": "12r5.csv", "sha256": hashes[0]}
    assert manifest["sources"]["trials"] == {"file": "trials.csv", "sha256": hashes[1]}
    assert set(manifest["files"]) == {"municipalities.parquet", "trial_areas.parquet"}
    for name, entry in manifest["files"].items():
        assert entry["sha256"] == digest(tmp_path / "out" / name)
    data = pd.read_parquet(tmp_path / "out" / "municipalities.parquet")
    assert manifest["files"]["municipalities.parquet"]["rows"] == len(data) == 72
    assert manifest["files"]["municipalities.parquet"]["columns"] == list(data.columns)
    assert list(data.columns)[-len(TRIAL_COLUMNS):] == list(TRIAL_COLUMNS)
    turku = data[data["municipality"] == "KU853"]
    assert set(turku["first_treated"]) == {W1_START} and set(turku["cohort_w3"]) == {W3_START}
    assert turku.loc[turku["t"] == W3_START, "treated"].item() == 1
    assert turku.loc[turku["t"] == W3_START - 1, "treated"].item() == 0
    panel = Panel(data, unit="municipality", time="t", outcome="unemployed",
                  cohort="cohort_w3", never_treated=0)
    assert panel.n_units == 3 and panel.n_periods == 24 and panel.is_balanced
    np.testing.assert_array_equal(panel.unit_cohort, [np.nan, 14.0, 14.0])
    areas = pd.read_parquet(tmp_path / "out" / "trial_areas.parquet")
    assert areas[["wave", "area", "area_name", "anchor"]].values.tolist() == [
        [1, "W1-01", "Turun seutu", "KU853"], [3, "W3-01", "Helsinki", "KU091"],
        [3, "W3-02", "Turun seutu", "KU853"]]
    assert areas["population"].tolist() == [round(95_000 * 2.1), round(340_000 * 2.1),
                                            round(95_000 * 2.1)]
    # The same inputs give byte-identical files.
    again = write_municipal_extract(statfin, trials, tmp_path / "again")
    assert json.loads(again.read_text(encoding="utf-8"))["files"] == manifest["files"]


def test_extract_errors(tmp_path):
    statfin, trials = extract_inputs(tmp_path)
    with pytest.raises(StatFinError, match=r"Trial assignment file .*missing\.csv' does not"):
        write_municipal_extract(statfin, tmp_path / "missing.csv", tmp_path / "out")
    with pytest.raises(StatFinError, match=r"is an existing file"):
        write_municipal_extract(statfin, trials, statfin)
    assert not (tmp_path / "out").exists()


def test_import_statfin_command_writes_the_extract(tmp_path, capsys):
    from evaluation.cli import main

    statfin, trials = extract_inputs(tmp_path)
    assert main(["import-statfin", "--statfin", str(statfin), "--trials", str(trials),
                 "--out", str(tmp_path / "cli")]) == 0
    assert "manifest.json" in capsys.readouterr().out
    expected = write_municipal_extract(statfin, trials, tmp_path / "function")
    files = json.loads(expected.read_text(encoding="utf-8"))["files"]
    for name, entry in files.items():
        assert digest(tmp_path / "cli" / name) == entry["sha256"]
    # a municipal estimate runs on the imported panel (clustered by municipality: no ely);
    # with one comparison municipality its standard error is not identified, which the
    # command refuses unless asked to keep the partial result
    command = ["estimate", "--data", str(tmp_path / "cli" / "municipalities.parquet"),
               "--unit", "municipality", "--time", "t", "--cohort", "cohort_w3",
               "--never-treated", "0", "--outcome", "unemployed", "--aggregate", "simple",
               "--output", str(tmp_path / "est.csv")]
    capsys.readouterr()
    assert main(command) == 2 and not (tmp_path / "est.csv").exists()
    assert "1 never-treated unit" in capsys.readouterr().err
    assert main([*command, "--allow-partial"]) == 0
    table = pd.read_csv(tmp_path / "est.csv")
    assert table["term"].tolist() == ["overall"] and np.isfinite(table["estimate"]).all()


def test_import_statfin_command_error_is_one_line(tmp_path, capsys):
    from evaluation.cli import main

    statfin, _ = extract_inputs(tmp_path)
    code = main(["import-statfin", "--statfin", str(statfin), "--trials",
                 str(tmp_path / "none.csv"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "none.csv" in err
