"""Execute the report notebooks headlessly and render them to HTML with a manifest.

The notebooks in ``notebooks/`` are the chapters; each has a cell tagged ``parameters``
whose values are overridden by a cell injected right after it (the papermill convention),
so the same notebook runs on the synthetic data or on a real extract.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError
from nbconvert import HTMLExporter

from evaluation.errors import InvalidOptionError, OutputError, ReportError
from evaluation.options import check_count, check_seed
from evaluation.outputs import Outputs, check_outputs, resolved
from evaluation.report.warning_log import WARNINGS_FILE
from evaluation.sources.files import sha256_file

#: The report's notebooks in reading order: description sheet and summary, the six
#: chapters, conclusions and the appendix of full tables.
REPORT_ORDER: tuple[str, ...] = (
    "00_summary.ipynb", "01_data.ipynb", "02_comparison_groups.ipynb", "03_effects.ipynb",
    "04_heterogeneity.ipynb", "05_services_costs.ipynb", "06_robustness.ipynb",
    "07_validation.ipynb", "08_conclusions.ipynb", "09_appendix.ipynb",
)
#: Notebooks that read the tables the chapters wrote, so they run after the chapters.
RUN_LAST: tuple[str, ...] = ("00_summary.ipynb", "08_conclusions.ipynb", "09_appendix.ipynb")
#: The chapters proper (what the report's sections are checked against).
CHAPTERS: tuple[str, ...] = tuple(n for n in REPORT_ORDER if n not in RUN_LAST)
#: The report notebooks, shipped inside the package (``notebooks/`` at the top of the
#: repository links here).
NOTEBOOKS_DIR = Path(__file__).resolve().parent / "notebooks"
REPORT_FILE = "teas_report.html"
TOC_PLACEHOLDER = "[[TABLE-OF-CONTENTS]]"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_HEADING = re.compile(r'<h([12]) id="([^"]+)"[^>]*>(.*?)</h\1>', re.S)
_EXTERNAL_SCRIPT = re.compile(r'<script[^>]*src="https?://[^"]*"[^>]*>\s*</script>\s*')
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
        If a cell raises or times out: one line naming the notebook, the cell, the data
        file the notebook read last (recorded by :func:`~evaluation.report.notebook.setup`
        in ``OUT_DIR``, see :data:`~evaluation.report.notebook.DATA_READS_FILE`; else the
        data directory) and the error.
    """
    from evaluation.report.notebook import DATA_READS_FILE

    reads = Path(parameters["OUT_DIR"]) / DATA_READS_FILE if "OUT_DIR" in parameters else None
    if reads is not None:
        reads.unlink(missing_ok=True)
    try:
        return _execute(path, parameters, timeout, reads)
    finally:
        if reads is not None:
            reads.unlink(missing_ok=True)


def _execute(path: Path, parameters: dict[str, Any], timeout: int, reads: Path | None
             ) -> ExecutedChapter:
    """Run the notebook (see :func:`execute_notebook`)."""
    notebook = nbformat.read(path, as_version=4)
    inject_parameters(notebook, parameters)
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    started = time.perf_counter()
    try:
        client.execute()
    except (CellExecutionError, CellTimeoutError) as exc:
        lines = _ANSI.sub("", str(exc)).strip().splitlines()
        raise ReportError(f"notebook {path.name} failed in {_failed_cell(notebook)}: "
                          f"{lines[-1] if lines else exc} (on {_data_read(reads, parameters)};"
                          " check it against the data schema in the README)") from exc
    except (RuntimeError, OSError) as exc:  # the kernel did not start or died
        raise ReportError(f"could not run notebook {path.name}: the Jupyter kernel failed "
                          f"({exc}); check that ipykernel is installed in this environment."
                          ) from exc
    seconds = time.perf_counter() - started
    _check_outputs(path.name, notebook)
    return ExecutedChapter(path.name, notebook, seconds)


def _data_read(reads: Path | None, parameters: dict[str, Any]) -> str:
    """Name the data file a failed notebook read last (else the data directory)."""
    names = []
    if reads is not None and reads.is_file():
        names = [line for line in reads.read_text(encoding="utf-8").splitlines() if line]
    if names:
        return f"data file {names[-1]}"
    return f"the data in {parameters.get('DATA_DIR', 'the data directory')}"


def _failed_cell(notebook: nbformat.NotebookNode) -> str:
    """Name the cell that raised: its number among the code cells and its first line."""
    code = [cell for cell in notebook.cells if cell.cell_type == "code"
            and "injected-parameters" not in cell.get("metadata", {}).get("tags", [])]
    for number, cell in enumerate(code, start=1):
        if any(output.get("output_type") == "error" for output in cell.get("outputs", [])):
            first = next((line for line in cell.source.splitlines() if line.strip()), "")
            return f"code cell {number} ({first.strip()[:60]!r})"
    return "a cell that timed out or stopped the kernel"


def _stderr_text(notebook: nbformat.NotebookNode) -> list[str]:
    """Text a notebook printed on stderr (anything not routed into the warning log)."""
    return [output.get("text", "").strip() for cell in notebook.cells
            for output in cell.get("outputs", [])
            if output.get("output_type") == "stream" and output.get("name") == "stderr"
            and output.get("text", "").strip()]


def _check_outputs(name: str, notebook: nbformat.NotebookNode) -> None:
    """Fail on error outputs and on empty figures."""
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                raise ReportError(f"notebook {name} has an error output: {output.get('ename')}")
            png = output.get("data", {}).get("image/png")
            if png is not None and len(png) < 2000:
                raise ReportError(f"notebook {name} produced an empty figure.")


def combine(chapters: list[ExecutedChapter]) -> nbformat.NotebookNode:
    """Concatenate executed notebooks (in the given order) into one report notebook.

    The parameter cells are left out; everything else keeps its outputs.
    """
    report = nbformat.v4.new_notebook()
    report.metadata = chapters[0].notebook.metadata if chapters else {}
    for chapter in chapters:
        for cell in chapter.notebook.cells:
            tags = cell.get("metadata", {}).get("tags", [])
            if "parameters" in tags or "injected-parameters" in tags:
                continue
            report.cells.append(cell)
    return report


def table_of_contents(html: str) -> str:
    """Return an HTML list linking the level-1 and level-2 headings after "Contents"."""
    items = []
    headings = _HEADING.findall(html)
    labels = [re.sub(r"<[^>]+>", "", text).replace("\u00b6", "").strip()
              for _, _, text in headings]
    start = labels.index("Contents") + 1 if "Contents" in labels else 0  # after the front
    for (level, anchor, _), label in zip(headings[start:], labels[start:], strict=True):
        items.append(f'<li class="toc-h{level}"><a href="#{anchor}">{label}</a></li>')
    style = ("<style>.toc ul{list-style:none;padding-left:0}.toc .toc-h2{margin-left:1.5em;"
             "font-size:0.95em}</style>")
    return f'{style}<nav class="toc"><ul>{"".join(items)}</ul></nav>'


def render_html(notebook: nbformat.NotebookNode, title: str) -> str:
    """Render the report notebook to one self-contained HTML page, code hidden.

    Figures are embedded as data URIs, external scripts (MathJax, require.js from a CDN)
    are dropped, and the table-of-contents placeholder is replaced by the contents.
    """
    exporter = HTMLExporter(template_name="lab", exclude_input=True, exclude_input_prompt=True,
                            exclude_output_prompt=True)
    notebook.metadata["title"] = title
    body, _ = exporter.from_notebook_node(notebook)
    body = _EXTERNAL_SCRIPT.sub("", body)
    return body.replace(f"<p>{TOC_PLACEHOLDER}</p>", table_of_contents(body), 1)


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


def report_parameters(data_dir: Path, out_dir: Path, data_manifest: dict[str, Any], *,
                      wave: int | None, outcomes: list[str] | None, seed: int | None,
                      threshold: int) -> dict[str, Any]:
    """Return the values injected into every notebook's ``parameters`` cell."""
    from evaluation.report.disclosure import check_threshold
    from evaluation.report.study import DEFAULT_OUTCOMES, jobseeker_wave
    from evaluation.synthetic.scenario import DEFAULT_SEED

    try:
        check_threshold(threshold)
    except InvalidOptionError as exc:
        raise ReportError(f"threshold={threshold!r}: the disclosure threshold must be a "
                          "positive whole number of persons (3 or 5 are usual).") from exc
    return {
        "DATA_DIR": str(data_dir),
        "OUT_DIR": str(out_dir.resolve()),
        "WAVE": int(wave if wave is not None else jobseeker_wave(data_manifest) or 3),
        "OUTCOMES": list(outcomes or DEFAULT_OUTCOMES),
        "SEED": int(seed if seed is not None else data_manifest.get("seed") or DEFAULT_SEED),
        "THRESHOLD": int(threshold),
    }


def build_report(data_dir: str | Path, out_dir: str | Path, *, wave: int | None = None,
                 outcomes: list[str] | None = None, seed: int | None = None,
                 threshold: int = 5, notebooks_dir: str | Path | None = None,
                 timeout: int = 600, quiet: bool = False,
                 validation: str | Path | None = None, validation_reps: int = 20,
                 overwrite: bool = False) -> Path:
    """Execute every notebook on the data in ``data_dir``; write the report and a manifest.

    Parameters
    ----------
    data_dir
        Directory with the data files and the data manifest written by
        ``evaluation simulate`` (or prepared in the same schema from real data).
    out_dir
        Where ``teas_report.html``, ``tables/``, the executed notebooks and
        ``manifest.json`` go.
    wave, outcomes, seed, threshold
        Report parameters (default: the data's wave and seed, employment and unemployment,
        disclosure threshold 5).
    notebooks_dir
        Directory of the notebooks (default: the repository's ``notebooks/``).
    timeout
        Seconds allowed per cell.
    quiet
        Do not show progress on stderr (notebook i of n, its name, elapsed time).
    validation
        Directory of a finished ``evaluation validate`` run for the validation chapter;
        None runs a reduced one (``validation_reps`` replications at ``--size small`` of the
        data's scenario, or ``default`` for real data) into ``out_dir/validation``, reusing
        the replications a previous build left there.
    validation_reps
        Replications of the reduced validation.
    overwrite
        Write into a non-empty ``out_dir`` that holds no earlier report. ``out_dir`` may
        never hold the data or the validation run read; a directory it creates is removed
        if the build fails.

    Returns
    -------
    pathlib.Path
        Path of the rendered HTML.
    """
    from evaluation.report.study import check_data_dir

    data_dir = Path(data_dir).resolve()
    out_dir = Path(out_dir)
    notebooks = Path(notebooks_dir) if notebooks_dir is not None else NOTEBOOKS_DIR
    check_data_dir(data_dir)
    absent = [name for name in REPORT_ORDER if not (notebooks / name).is_file()]
    if absent:
        raise ReportError(f"notebooks {', '.join(absent)} are missing from {notebooks}.")
    data_manifest = read_data_manifest(data_dir)
    parameters = report_parameters(data_dir, out_dir, data_manifest, wave=wave,
                                   outcomes=outcomes, seed=seed, threshold=threshold)
    check_count("validation_reps", validation_reps, 1)
    check_seed("seed", seed)
    check_outputs({"--out": out_dir}, {"--data": data_dir}, directories=("--out",))
    if validation is not None and resolved(validation) == resolved(out_dir):
        raise OutputError(f"--out {out_dir} is the input --validation {validation}; choose "
                          "another --out (OUT/validation is where a computed run goes).")
    if validation is not None and not Path(validation).is_dir():
        raise ReportError(f"--validation {validation} is not a directory; pass the --out "
                          "directory of a finished `evaluation validate` run.")
    with Outputs() as outputs:
        outputs.directory(out_dir, label="--out", overwrite=overwrite, owned=_holds_report)
        return _build(outputs, data_dir, out_dir, notebooks, data_manifest, parameters,
                      validation, validation_reps, timeout, quiet)


def _holds_report(directory: Path) -> bool:
    """Whether ``directory`` holds an earlier report (rebuilding it needs no --overwrite)."""
    try:
        manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and manifest.get("report") == REPORT_FILE


def read_data_manifest(data_dir: Path) -> dict[str, Any]:
    """Read ``data_dir/manifest.json``, checking the fields the report uses.

    Raises
    ------
    ReportError
        If it is not JSON, not an object, or its ``jobseeker_wave`` or ``seed`` is not a
        whole number (the message names the file and the field).
    """
    path = data_dir / "manifest.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ReportError(f"{path} is not valid JSON ({exc}); restore the manifest written "
                          "by `evaluation simulate` or `evaluation import-statfin`.") from exc
    if not isinstance(manifest, dict):
        raise ReportError(f"{path} holds a JSON {type(manifest).__name__}, not an object; "
                          "restore the manifest written by `evaluation simulate` or "
                          "`evaluation import-statfin`.")
    for key, low in (("jobseeker_wave", 1), ("seed", 0)):
        value = manifest.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or \
                not float(value).is_integer() or value < low:
            raise ReportError(f"{path}: {key}={value!r} must be a whole number of at least "
                              f"{low}; fix the manifest or pass --"
                              f"{'wave' if key == 'jobseeker_wave' else 'seed'}.")
    return manifest


def _build(outputs: Outputs, data_dir: Path, out_dir: Path, notebooks: Path,
           data_manifest: dict[str, Any], parameters: dict[str, Any],
           validation: str | Path | None, validation_reps: int, timeout: int, quiet: bool
           ) -> Path:
    """Run the validation and the notebooks, stage the HTML and manifest (build_report)."""
    checked = _prepare_validation(out_dir, data_manifest, parameters, validation,
                                  validation_reps, quiet)
    shutil.rmtree(out_dir / "tables", ignore_errors=True)  # no stale tables or warnings
    (out_dir / WARNINGS_FILE).unlink(missing_ok=True)
    executed_dir = out_dir / "notebooks"
    executed_dir.mkdir(exist_ok=True)
    order = [n for n in REPORT_ORDER if n not in RUN_LAST] + list(RUN_LAST)
    executed = {}
    with _Progress(order, quiet) as progress:
        for name in order:
            progress.start(name)
            executed[name] = execute_notebook(notebooks / name, parameters, timeout)
            nbformat.write(executed[name].notebook, executed_dir / name)
            progress.done(name, executed[name].seconds)
    chapters = [executed[name] for name in REPORT_ORDER]
    title = "Municipal employment trials: impact evaluation"
    html_path = out_dir / REPORT_FILE
    html = render_html(combine(chapters), title)
    outputs.write(html_path, lambda tmp: tmp.write_text(html, encoding="utf-8"))
    manifest = report_manifest(data_dir, out_dir, data_manifest, parameters, chapters,
                               git_commit(notebooks))
    manifest["validation"] = checked
    if checked["source"] == "computed":
        manifest["rerun"]["report"] += f" --validation-reps {validation_reps}"
    text = json.dumps(manifest, indent=2) + "\n"
    outputs.write(out_dir / "manifest.json", lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return html_path


def report_manifest(data_dir: Path, out_dir: Path, data_manifest: dict[str, Any],
                    parameters: dict[str, Any], chapters: list[ExecutedChapter],
                    commit: str | None) -> dict[str, Any]:
    """Return what a reviewer needs to rerun the report or any one table of it."""
    index_path = out_dir / "tables" / "index.json"
    tables = json.loads(index_path.read_text()) if index_path.is_file() else {}
    scenario = (data_manifest.get("scenario") or {}).get("name")
    simulate = (f"evaluation simulate --scenario {scenario} --seed {data_manifest.get('seed')}"
                f" --people {data_manifest.get('n_people')} --wave "
                f"{data_manifest.get('jobseeker_wave', parameters['WAVE'])} --municipalities "
                f"{data_manifest.get('n_municipalities', 309)} --out DATA_DIR"
                if scenario else None)
    options = (f" --wave {parameters['WAVE']} --outcomes {','.join(parameters['OUTCOMES'])}"
               f" --seed {parameters['SEED']} --threshold {parameters['THRESHOLD']}")
    return {
        "report": REPORT_FILE,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "data_dir": str(data_dir),
        "inputs": {p.name: sha256_file(p) for p in sorted(data_dir.iterdir())
                   if p.suffix in (".parquet", ".json", ".csv")},
        "data_manifest": {k: data_manifest.get(k) for k in (
            "seed", "scenario", "n_people", "n_municipalities", "jobseeker_wave", "version")},
        "seeds": {"data": data_manifest.get("seed"), "report": parameters["SEED"]},
        "parameters": parameters,
        "notebooks": [{"notebook": c.name, "seconds": round(c.seconds, 2)} for c in chapters],
        "warnings": _read_warnings(out_dir),
        "stderr": {c.name: text for c in chapters if (text := _stderr_text(c.notebook))},
        "packages": package_versions(),
        "git_commit": commit,
        "tables": {name: {**entry, "file": f"tables/{name}.csv"}
                   for name, entry in sorted(tables.items())},
        "rerun": {
            "data": simulate,
            "report": f"evaluation report --data DATA_DIR --out OUT_DIR{options}",
            "one_table": "every row of a table listed under `tables` with a `commands` entry "
                         "is reproduced by that `evaluation estimate` command (replace the "
                         "data path by DATA_DIR if the data moved).",
        },
    }


def _prepare_validation(out_dir: Path, data_manifest: dict[str, Any],
                        parameters: dict[str, Any], validation: str | Path | None,
                        reps: int, quiet: bool) -> dict[str, Any]:
    """Read or run the design Monte Carlo of the validation chapter; its manifest entry.

    Sets ``parameters["VALIDATION_DIR"]`` for the notebooks.
    """
    from evaluation.report.chapters.validation import validation_config, validation_table
    from evaluation.synthetic.scenario import SCENARIOS
    from evaluation.validation.summary import replication_count

    if validation is not None:
        directory = Path(validation).resolve()
        source = "read"
    else:
        from evaluation.validation import validate

        directory = (out_dir / "validation").resolve()
        name = (data_manifest.get("scenario") or {}).get("name")
        scenario = name if name in SCENARIOS else "default"
        workers = 2 if (os.cpu_count() or 1) >= 2 else 1
        try:
            validate(directory, scenario=scenario, reps=reps, size="small",
                     seed=parameters["SEED"], outcomes=parameters["OUTCOMES"],
                     workers=workers, quiet=quiet)
        except InvalidOptionError as exc:
            raise ReportError(f"the validation run in {directory} cannot be reused ({exc}); "
                              "remove that directory or pass --validation DIR.") from exc
        source = "computed"
    config = validation_config(directory)
    validation_table(directory)  # a finished run: its summary exists
    replications = replication_count(directory)
    parameters["VALIDATION_DIR"] = str(directory)
    return {"source": source, "dir": str(directory), "replications": replications, **config}


def _read_warnings(out_dir: Path) -> list[dict[str, Any]]:
    """Every warning the chapters recorded (``warnings.json``), by table or figure."""
    path = out_dir / WARNINGS_FILE
    return json.loads(path.read_text()) if path.is_file() else []


class _Progress:
    """Progress of the build on stderr: a tqdm bar over the notebooks plus one line each."""

    def __init__(self, names: list[str], quiet: bool) -> None:
        self.names, self.quiet = names, quiet
        self.started = time.perf_counter()

    def __enter__(self) -> _Progress:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=len(self.names), desc="report", unit="notebook",
                        disable=self.quiet, file=sys.stderr, leave=False)
        return self

    def start(self, name: str) -> None:
        """Announce the notebook about to run."""
        self.bar.set_postfix_str(name)

    def done(self, name: str, seconds: float) -> None:
        """Report a finished notebook with the elapsed time."""
        self.bar.update()
        if not self.quiet:
            self.bar.write(f"evaluation report: notebook {self.bar.n} of {len(self.names)} "
                           f"{name} done in {seconds:.0f} s (elapsed "
                           f"{time.perf_counter() - self.started:.0f} s)", file=sys.stderr)

    def __exit__(self, *exc: object) -> None:
        self.bar.close()
