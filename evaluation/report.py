"""Execute the report notebooks headlessly and render them to HTML with a manifest.

The notebooks in ``notebooks/`` are the chapters; each has a cell tagged ``parameters``
whose values are overridden by a cell injected right after it (the papermill convention),
so the same notebook runs on the synthetic data or on a real extract.
"""

from __future__ import annotations

import json
import platform
import re
import subprocess
import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError
from nbconvert import HTMLExporter

from evaluation.errors import ReportError
from evaluation.simulate import sha256_file

#: The chapters built so far, in report order.
CHAPTERS: tuple[str, ...] = ("01_data.ipynb",)
NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"
REQUIRED_INPUTS = ("manifest.json", "municipalities.parquet", "trial_areas.parquet")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_VERSIONED = ("kuntakokeilu-evaluation", "numpy", "scipy", "pandas", "statsmodels",
              "linearmodels", "matplotlib", "pyarrow", "nbclient", "nbconvert", "ipykernel")


@dataclass(frozen=True)
class ExecutedChapter:
    """A notebook after execution, with its wall-clock run time in seconds."""

    name: str
    notebook: nbformat.NotebookNode
    seconds: float


def inject_parameters(notebook: nbformat.NotebookNode, parameters: dict[str, Any]) -> None:
    """Insert a cell assigning ``parameters`` right after the cell tagged ``parameters``.

    Raises
    ------
    ReportError
        If the notebook has no cell tagged ``parameters``.
    """
    for index, cell in enumerate(notebook.cells):
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            source = "\n".join(f"{key} = {value!r}" for key, value in parameters.items())
            injected = nbformat.v4.new_code_cell(source)
            injected.metadata["tags"] = ["injected-parameters"]
            notebook.cells.insert(index + 1, injected)
            return
    raise ReportError("the notebook has no cell tagged 'parameters'; tag the cell that "
                      "defines the notebook's parameters.")


def execute_notebook(path: Path, parameters: dict[str, Any], timeout: int = 600
                     ) -> ExecutedChapter:
    """Execute one notebook in a fresh kernel with the given parameters.

    Raises
    ------
    ReportError
        If a cell raises or times out (the message names the notebook and the error).
    """
    notebook = nbformat.read(path, as_version=4)
    inject_parameters(notebook, parameters)
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    started = time.perf_counter()
    try:
        client.execute()
    except (CellExecutionError, CellTimeoutError) as exc:
        lines = _ANSI.sub("", str(exc)).strip().splitlines()
        raise ReportError(f"notebook {path.name} failed: {lines[-1] if lines else exc}") from exc
    except (RuntimeError, OSError) as exc:  # the kernel did not start or died
        raise ReportError(f"could not run notebook {path.name}: the Jupyter kernel failed "
                          f"({exc}); check that ipykernel is installed in this environment."
                          ) from exc
    seconds = time.perf_counter() - started
    _check_outputs(path.name, notebook)
    return ExecutedChapter(path.name, notebook, seconds)


def _check_outputs(name: str, notebook: nbformat.NotebookNode) -> None:
    """Fail on error outputs and on empty figures."""
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                raise ReportError(f"notebook {name} has an error output: {output.get('ename')}")
            png = output.get("data", {}).get("image/png")
            if png is not None and len(png) < 2000:
                raise ReportError(f"notebook {name} produced an empty figure.")


def render_html(chapter: ExecutedChapter) -> str:
    """Render an executed chapter to self-contained HTML with the code hidden."""
    exporter = HTMLExporter(template_name="lab", exclude_input=True, exclude_input_prompt=True,
                            exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(chapter.notebook)
    return body


def package_versions() -> dict[str, str]:
    """Versions of Python and of the packages that produce the numbers."""
    versions = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git_commit(directory: Path) -> str | None:
    """Return the checked-out git commit of ``directory`` (None outside a repository)."""
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=directory, check=True,
                                capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None


def build_report(data_dir: str | Path, out_dir: str | Path, *,
                 notebooks_dir: str | Path | None = None, timeout: int = 600) -> Path:
    """Execute every chapter on the data in ``data_dir`` and write HTML and a manifest.

    Parameters
    ----------
    data_dir
        Directory with the data files and the data manifest written by
        ``evaluation simulate`` (or prepared in the same schema from real data).
    out_dir
        Where ``data_chapter.html``, the executed notebooks and ``manifest.json`` go.
    notebooks_dir
        Directory of the chapter notebooks (default: the repository's ``notebooks/``).
    timeout
        Seconds allowed per cell.

    Returns
    -------
    pathlib.Path
        Path of the rendered HTML.
    """
    data_dir = Path(data_dir).resolve()
    out_dir = Path(out_dir)
    notebooks = Path(notebooks_dir) if notebooks_dir is not None else NOTEBOOKS_DIR
    missing = [name for name in REQUIRED_INPUTS if not (data_dir / name).is_file()]
    if missing:
        raise ReportError(f"{data_dir} lacks {missing}; run `evaluation simulate --out "
                          f"{data_dir}` or prepare the files in the documented schema.")
    data_manifest = json.loads((data_dir / "manifest.json").read_text(encoding="utf-8"))
    out_dir.mkdir(parents=True, exist_ok=True)
    executed_dir = out_dir / "notebooks"
    executed_dir.mkdir(exist_ok=True)
    parameters = {"DATA_DIR": str(data_dir)}
    runs = []
    html_path = out_dir / "data_chapter.html"
    for name in CHAPTERS:
        path = notebooks / name
        if not path.is_file():
            raise ReportError(f"chapter notebook {path} is missing; pass --notebooks DIR.")
        chapter = execute_notebook(path, parameters, timeout)
        nbformat.write(chapter.notebook, executed_dir / name)
        html_path.write_text(render_html(chapter), encoding="utf-8")
        runs.append({"notebook": name, "seconds": round(chapter.seconds, 2)})
    manifest = {
        "report": html_path.name,
        "data_dir": str(data_dir),
        "inputs": {p.name: sha256_file(p) for p in sorted(data_dir.glob("*.parquet"))},
        "data_manifest": {k: data_manifest.get(k) for k in ("seed", "scenario", "n_people",
                                                            "n_municipalities", "version")},
        "parameters": parameters,
        "notebooks": runs,
        "packages": package_versions(),
        "git_commit": git_commit(notebooks),
        "rerun": f"evaluation simulate --scenario {data_manifest.get('scenario', {}).get('name')}"
                 f" --seed {data_manifest.get('seed')} --people {data_manifest.get('n_people')}"
                 f" --out DIR && evaluation report --data DIR --out OUT",
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n",
                                           encoding="utf-8")
    return html_path
