"""Input files of the reading-side hostile corpus (``tests/test_hostile_input.py``).

:data:`FILES` maps a relative path to a function giving its bytes: the tiny panel and unit
tables of ``tests/_hostile.py`` with one defect each (ragged rows, Excel, zip, gzip, binary,
wrong encodings, ...), StatFin 12r5 exports and trial assignments with bad codes or values,
and report data directories with broken manifests. :func:`write_inputs` creates them.
"""

from __future__ import annotations

import gzip
import io
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from _hostile import statfin_text, tiny_panel, tiny_units


def panel_csv(**options) -> str:
    return tiny_panel().to_csv(index=False, **options)


def with_line(text: str, number: int, change: Callable[[str], str]) -> str:
    """Replace physical line ``number`` (1-based) of ``text`` by ``change(line)``."""
    lines = text.split("\n")
    lines[number - 1] = change(lines[number - 1])
    return "\n".join(lines)


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def xlsx_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
    return buffer.getvalue()


def zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("panel.csv", panel_csv())
    return buffer.getvalue()


def units_csv(**columns) -> str:
    return tiny_units().assign(**columns).to_csv(index=False)


PANEL = panel_csv()
STATFIN = statfin_text()
TRIALS = "municipality,wave,area\nKU853,1,Turun seutu\nKU091,3,Helsinki\nKU853,3,Turun seutu\n"

#: File name -> bytes of every input the corpus uses (written into the case's directory).
FILES: dict[str, Callable[[], bytes]] = {
    "panel.csv": lambda: PANEL.encode(),
    "ragged_extra.csv": lambda: with_line(PANEL, 5, lambda s: s + ",9").encode(),
    "ragged_short.csv": lambda: with_line(PANEL, 7, lambda s: s.rsplit(",", 1)[0]).encode(),
    "ragged_trailing.csv": lambda: with_line(PANEL, 4, lambda s: s + ",").encode(),
    "ragged_many.csv": lambda: with_line(with_line(PANEL, 3, lambda s: s + ",1"), 9,
                                         lambda s: s + ",2").encode(),
    "stray_field_in_outcome.csv": lambda: with_line(
        PANEL, 10, lambda s: s.replace(",", ",-125,", 1)).encode(),
    "unclosed_quote.csv": lambda: with_line(PANEL, 6, lambda s: '"' + s).encode(),
    "empty.csv": lambda: b"",
    "blank.csv": lambda: b"  \n\n \r\n",
    "header_only.csv": lambda: b"unit,time,cohort,y\n",
    "header_blank_lines.csv": lambda: b"unit,time,cohort,y\n\n\n",
    "workbook.csv": xlsx_bytes,
    "workbook.xlsx": xlsx_bytes,
    "workbook.parquet": xlsx_bytes,
    "old_workbook.csv": lambda: b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(200),
    "archive.csv": zip_bytes,
    "compressed.csv": lambda: gzip.compress(PANEL.encode()),
    "really_parquet.csv": lambda: parquet_bytes(tiny_panel()),
    "really_csv.parquet": lambda: PANEL.encode(),
    "broken.parquet": lambda: b"PAR1 not really parquet PAR1",
    "truncated.parquet": lambda: parquet_bytes(tiny_panel())[:600],
    "empty.parquet": lambda: b"",
    "binary.csv": lambda: bytes(range(256)) * 8,
    "controls.csv": lambda: bytes(range(1, 32)) * 40,
    "bad_bom.csv": lambda: b"\xef\xbb\xbfunit,y\n1,\xff\xfe\n",
    "bad_utf16.csv": lambda: b"\xff\xfe" + "unit,y\n1,2\n".encode("utf-16-le") + b"\x00",
    "duplicate_names.csv": lambda: b"unit,time,y,y\n1,1,2,3\n",
    "panel.txt": lambda: PANEL.encode(),
    "panel": lambda: PANEL.encode(),
    "units.csv": lambda: units_csv().encode(),
    "units_ragged.csv": lambda: with_line(units_csv(), 12, lambda s: s + ",7").encode(),
    "units_text_score.csv": lambda: units_csv(
        s=["high"] * 3 + list(np.linspace(0.1, 0.9, 57))).encode(),
    "units_many_levels.csv": lambda: units_csv(
        kunta=[f"K{i % 30:02d}" for i in range(60)]).encode(),
    "units_pure_level.csv": lambda: units_csv(
        kind=np.where(tiny_units()["treated"] == 1, "a", np.where(
            np.arange(60) % 2 == 0, "b", "a"))).encode(),
    "12r5.csv": lambda: STATFIN.encode("cp1252"),
    "12r5_unknown.csv": lambda: STATFIN.replace('"KU049 Espoo";"2020M03"',
                                                '"KU49X Espoo";"2020M03"', 1).encode("cp1252"),
    "12r5_names.csv": lambda: STATFIN.replace('"KU049 Espoo"', '"Espoo"').encode("cp1252"),
    "12r5_negative.csv": lambda: STATFIN.replace('"TYOTTOMATLOPUSSA";"34000"',
                                                 '"TYOTTOMATLOPUSSA";"-500"', 1
                                                 ).encode("cp1252"),
    "12r5_rate.csv": lambda: STATFIN.replace('"TYOTOSUUS";"10,0"', '"TYOTOSUUS";"150,0"', 1
                                             ).encode("cp1252"),
    "12r5_text.csv": lambda: STATFIN.replace('"TYOVOIMATK";"95000"', '"TYOVOIMATK";"n/a"', 1
                                             ).encode("cp1252"),
    "12r5_month.csv": lambda: STATFIN.replace('"2021M05"', '"2021-05"', 1).encode("cp1252"),
    "12r5_footer.csv": lambda: (STATFIN + "Source: Statistics Finland;;\n").encode("cp1252"),
    "12r5_dots.csv": lambda: STATFIN.replace('"TYOVOIMATK";"95000"', '"TYOVOIMATK";".."', 1
                                             ).encode("cp1252"),
    "12r5.xlsx": xlsx_bytes,
    "trials.csv": lambda: TRIALS.encode(),
    "trials_code.csv": lambda: TRIALS.replace("KU091,3", "KU91X,3").encode(),
    "trials_wave.csv": lambda: TRIALS.replace("KU091,3", "KU091,2.5").encode(),
    "trials_population.csv": lambda: (
        b"municipality,wave,area,population\nKU091,3,Helsinki,-5\n"),
    "manifest_not_json/manifest.json": lambda: b"{not json",
    "manifest_list/manifest.json": lambda: b"[1, 2]",
    "manifest_wave/manifest.json": lambda: b'{"jobseeker_wave": 2.5}',
    "manifest_wave_text/manifest.json": lambda: b'{"jobseeker_wave": "3"}',
}
_REPORT_FILES = ("municipalities.parquet", "trial_areas.parquet", "jobseekers.parquet",
                 "jobseeker_info.parquet")
for _directory in ("manifest_not_json", "manifest_list", "manifest_wave", "manifest_wave_text"):
    for _name in _REPORT_FILES:
        FILES[f"{_directory}/{_name}"] = lambda: b"PAR1-stub"


def write_inputs(root: Path, names: tuple[str, ...]) -> None:
    for name in names:
        group = [key for key in FILES if key.startswith(name + "/")] or [name]
        for key in group:
            if key not in FILES:  # a path that must not exist
                continue
            target = root / key
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(FILES[key]())
