"""A wheel built with ``python -m build`` runs ``evaluation report`` from a fresh environment.

The wheel must carry the report notebooks as package data: an installed (not editable)
package has no repository around it. The fresh virtual environment gets the wheel only; its
dependencies come from the test environment's site-packages through a ``.pth`` file (they
are the dependencies the wheel declares, already installed; nothing is downloaded), and their
data files (nbconvert's HTML templates) through ``JUPYTER_PATH``.
"""

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from evaluation.report.build import REPORT_ORDER
from evaluation.simulate import write_synthetic_data

ROOT = Path(__file__).resolve().parent.parent


def _run(argv, cwd, **kwargs):
    result = subprocess.run([str(a) for a in argv], cwd=cwd, capture_output=True, text=True,
                            timeout=900, **kwargs)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    source = tmp_path_factory.mktemp("source")
    files = _run(["git", "ls-files", "-z"], ROOT).stdout.split("\0")
    for name in filter(None, files):
        target = source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        path = ROOT / name
        if path.is_symlink():
            target.symlink_to(path.readlink())
        elif path.is_file():
            target.write_bytes(path.read_bytes())
    dist = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", dist, "."],
         source)
    (built,) = dist.glob("*.whl")
    return built


def test_wheel_ships_the_report_notebooks(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    for notebook in REPORT_ORDER:
        assert f"evaluation/report/notebooks/{notebook}" in names
    assert not [n for n in names if n.startswith(("tests/", "notebooks/"))]


@pytest.mark.slow
def test_installed_wheel_runs_the_report(wheel, tmp_path):
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], tmp_path)
    python = venv / "bin" / "python"
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     tmp_path).stdout.strip())
    _run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", site,
          wheel], tmp_path)
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    where = _run([python, "-c", "import evaluation; print(evaluation.__file__)"], tmp_path)
    assert where.stdout.strip().startswith(str(site))  # the wheel, not the source tree
    data = tmp_path / "data"
    write_synthetic_data(data, n_people=1500, seed=7)
    out = tmp_path / "report"
    env = {**os.environ, "JUPYTER_PATH": str(Path(sys.prefix) / "share" / "jupyter")}
    _run([python, "-m", "evaluation", "report", "--data", data, "--out", out, "--outcomes",
          "employed", "--quiet", "--validation-reps", "1"], tmp_path, env=env)
    assert (out / "teas_report.html").stat().st_size > 100_000
    manifest = json.loads((out / "manifest.json").read_text())
    assert [n["notebook"] for n in manifest["notebooks"]] == list(REPORT_ORDER)
