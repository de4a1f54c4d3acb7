"""`make report` writes into the project's own output directories, which ship with a README.

The output rule refuses a non-empty directory a command did not write (tests/test_hostile_cli.py),
so on a fresh clone `evaluation simulate --out data/synthetic` and `evaluation report --out
reports` would stop at the committed README.md. The Makefile therefore passes --overwrite,
which writes the outputs and keeps every other file.
"""

import re
import shutil
from pathlib import Path

from evaluation.cli import main

ROOT = Path(__file__).resolve().parent.parent


def _recipe(target: str) -> str:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    return re.search(rf"^{target}:.*\n((?:\t.*\n)+)", text, re.M).group(1)


def test_make_report_writes_into_the_shipped_directories_with_overwrite():
    assert (ROOT / "data" / "synthetic" / "README.md").is_file()
    assert (ROOT / "reports" / "README.md").is_file()
    simulate, report = _recipe("simulate"), _recipe("report")
    assert "evaluation simulate" in simulate and "--overwrite" in simulate
    assert "evaluation report" in report and "--overwrite" in report


def test_simulate_into_a_directory_with_a_readme(tmp_path, capsys):
    target = tmp_path / "synthetic"
    target.mkdir()
    shutil.copy(ROOT / "data" / "synthetic" / "README.md", target / "README.md")
    readme = (target / "README.md").read_bytes()
    argv = ["simulate", "--people", "200", "--out", str(target)]
    assert main(argv) == 2 and "README.md" in capsys.readouterr().err
    assert main([*argv, "--overwrite"]) == 0
    assert (target / "README.md").read_bytes() == readme
    assert (target / "manifest.json").is_file() and (target / "jobseekers.parquet").is_file()
