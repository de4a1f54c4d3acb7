"""The design Monte Carlo engine: replications on disk, resumable, executor-independent.

Replication ``r`` of a run with seed ``S`` draws its data with the seed
:func:`replication_seed` ``(S, r)``, the first word of ``SeedSequence(S, spawn_key=(r,))``,
so the same replication gives the same rows whether it runs first or last, serially, on local
workers or on a cluster, and however many replications the run has. Each finished replication
is written to ``replications/rep-NNNNNN.parquet`` at once (through a temporary file renamed
into place), so an interrupted run keeps its work and rerunning the same command resumes.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from evaluation.errors import InvalidOptionError
from evaluation.options import check_count, check_option, check_seed
from evaluation.outputs import Outputs, with_default_permissions
from evaluation.protocol import ResultMixin, Summary
from evaluation.report.study import DEFAULT_OUTCOMES, Study
from evaluation.report.warning_log import WarningLog, warning_lines
from evaluation.simulate import write_synthetic_data
from evaluation.synthetic.scenario import DEFAULT_SEED, SCENARIOS
from evaluation.validation.designs import DESIGNS, SIZES
from evaluation.validation.executors import run_dask, run_joblib, run_serial
from evaluation.validation.summary import (
    CONFIG_FILE,
    ESTIMATES_FILE,
    FIGURE_FILE,
    REPLICATIONS_DIR,
    SUMMARY_FILE,
    finished_replications,
    plot_distributions,
    summarize,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes



def replication_seed(seed: int, replication: int) -> int:
    """Return the data seed of replication ``replication`` of a run seeded ``seed``.

    Notes
    -----
    The first 32-bit word of ``numpy.random.SeedSequence(seed, spawn_key=(replication,))``:
    the ``replication``-th child of ``SeedSequence(seed).spawn(n)`` for any ``n``.
    """
    child = np.random.SeedSequence(seed, spawn_key=(replication,))
    return int(child.generate_state(1, dtype=np.uint32)[0])


@dataclass(frozen=True)
class ValidationConfig:
    """What a run simulates and estimates (a resumed run must match it)."""

    scenario: str
    size: str
    seed: int
    designs: tuple[str, ...]
    outcomes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON form (lists for tuples)."""
        return {key: list(value) if isinstance(value, tuple) else value
                for key, value in asdict(self).items()}


def run_replication(task: tuple[ValidationConfig, int]) -> pd.DataFrame:
    """Simulate one data set, run every design on it and return the rows.

    Warnings issued by a design are recorded in its rows' ``warnings`` column (never
    silenced). The data live in a temporary directory removed afterwards.
    """
    config, replication = task
    seed = replication_seed(config.seed, replication)
    frames = []
    with tempfile.TemporaryDirectory(prefix="validate-") as data_dir:
        write_synthetic_data(data_dir, scenario=config.scenario, seed=seed,
                             **SIZES[config.size])
        study = Study(Path(data_dir), outcomes=config.outcomes, seed=seed)
        for name in config.designs:
            log = WarningLog()
            with log.capture():
                rows = DESIGNS[name](study)
            rows["warnings"] = "; ".join(warning_lines(log.flush(name)))
            frames.append(rows)
    out = pd.concat(frames, ignore_index=True)
    out.insert(0, "seed", seed)
    out.insert(0, "replication", replication)
    return out


@dataclass
class ValidationRun(ResultMixin):
    """A finished (or resumed) design Monte Carlo.

    Attributes
    ----------
    out_dir
        The run's directory.
    config
        Scenario, size, seed, designs and outcomes.
    rows
        One row per replication and estimate (``replication, seed, level, outcome, design,
        estimator, estimate, std_error, ci_lower, ci_upper, p_value, truth, warnings``).
    table
        :func:`~evaluation.validation.summary.summarize` of ``rows``.
    ran, reused
        Replications computed by this call and found on disk from an earlier one.
    """

    out_dir: Path
    config: ValidationConfig
    rows: pd.DataFrame
    table: pd.DataFrame = field(repr=False)
    ran: int = 0
    reused: int = 0

    def to_frame(self) -> pd.DataFrame:
        """Return the summary table (one row per level, outcome, design and estimator)."""
        return self.table.copy()

    def summary(self) -> Summary:
        """Bias, RMSE, coverage, size, power and MDE of every design and outcome."""
        keys = ["level", "outcome", "design", "estimator"]
        shown = self.table.set_index(keys)
        replications = int(self.rows["replication"].nunique())
        notes = (f"scenario {self.config.scenario}, size {self.config.size}, seed "
                 f"{self.config.seed}: {replications} replications ({self.ran} run now, "
                 f"{self.reused} reused from {self.out_dir})",)
        warned = self.rows.loc[self.rows["warnings"] != "", "warnings"]
        lines = tuple(sorted(set("; ".join(warned).split("; ")) - {""}))[:20]
        return Summary("Design Monte Carlo", shown, notes, lines)

    def plot(self, ax: Axes | None = None) -> Axes:
        """Distribution of the estimates around the truth, one row per design and outcome."""
        return plot_distributions(self.rows, ax=ax)


def _check_config(out: Path, config: ValidationConfig) -> None:
    """Write the run's config, or check that a resumed run asks for the same one."""
    path = out / CONFIG_FILE
    wanted = config.to_dict()
    if path.is_file():
        try:
            found = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, OSError) as exc:
            raise InvalidOptionError(f"{path} is not a readable validation config ({exc}); "
                                     "remove it or pass another --out.") from exc
        if not isinstance(found, dict):
            raise InvalidOptionError(f"{path} is not a validation config (a JSON object); "
                                     "remove it or pass another --out.")
        differ = sorted(k for k in wanted if found.get(k) != wanted[k])
        if differ:
            details = ", ".join(f"{k}: {found.get(k)!r} on disk, {wanted[k]!r} now"
                                for k in differ)
            raise InvalidOptionError(
                f"{out} holds a validation run with other settings ({details}); rerun with "
                "the same settings to resume it, or pass another --out.")
        return
    _atomic_write(path, lambda tmp: tmp.write_text(json.dumps(wanted, indent=2) + "\n"))


def _atomic_write(path: Path, write: Any) -> None:
    """Write ``path`` through a temporary file in the same directory, renamed when complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    tmp = Path(name)
    try:
        write(tmp)
        with_default_permissions(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _replication_file(directory: Path, replication: int) -> Path:
    return directory / f"rep-{replication:06d}.parquet"


def validate(out_dir: str | Path, *, scenario: str = "default", reps: int = 200,
             size: str = "small", seed: int = DEFAULT_SEED,
             designs: Sequence[str] | None = None,
             outcomes: Sequence[str] | None = None, workers: int = 1,
             scheduler: Any = None, quiet: bool = False,
             overwrite: bool = False) -> ValidationRun:
    """Run (or resume) the design Monte Carlo and summarise it.

    Parameters
    ----------
    out_dir
        Directory of the run: ``config.json``, ``replications/``, ``estimates.parquet``,
        ``summary.csv`` and ``distributions.png``.
    scenario
        A named simulator scenario (:data:`~evaluation.synthetic.scenario.SCENARIOS`).
    reps
        Number of replications (a rerun with more continues where the last one stopped).
    size
        ``"small"`` or ``"report"`` (:data:`~evaluation.validation.designs.SIZES`).
    seed
        Seed from which every replication's seed is spawned (:func:`replication_seed`).
    designs
        Names from :data:`~evaluation.validation.designs.DESIGNS` (default: all).
    outcomes
        Individual-level outcomes of the designs (default: the report's,
        :data:`~evaluation.report.study.DEFAULT_OUTCOMES`).
    workers
        Local worker processes (joblib); 1 runs serially.
    scheduler
        Address of a Dask distributed scheduler (or a ``distributed.Client``); the
        replications then run on that cluster.
    quiet
        No progress bar on stderr.
    overwrite
        Start a run in a non-empty directory that holds no run (a directory holding a run,
        ``config.json``, is resumed without it when the settings agree).

    Returns
    -------
    ValidationRun
        The rows of every replication and their summary.
    """
    check_option("scenario", scenario, tuple(SCENARIOS))
    check_option("size", size, tuple(SIZES))
    check_count("reps", reps, 1)
    check_count("workers", workers, 1)
    check_seed("seed", seed)
    names = tuple(DESIGNS) if designs is None else tuple(designs)
    for name in names:
        check_option("design", name, tuple(DESIGNS))
    if not names:
        raise InvalidOptionError(f"designs is empty; choose from {', '.join(DESIGNS)}.")
    if scheduler is not None and workers != 1:
        raise InvalidOptionError("pass either workers (local processes) or scheduler (a Dask "
                                 "cluster), not both.")
    config = ValidationConfig(scenario, size, int(seed), names,
                              tuple(DEFAULT_OUTCOMES if outcomes is None else outcomes))
    with Outputs(keep=_has_replications) as outputs:
        out = outputs.directory(out_dir, label="--out", overwrite=overwrite,
                                owned=lambda path: (path / CONFIG_FILE).is_file())
        return _run(out, config, reps, scheduler, workers, quiet)


def _has_replications(directory: Path) -> bool:
    """Whether a failed run left finished replications (kept, so a rerun resumes)."""
    return any(directory.rglob("rep-*.parquet"))


def _run(out: Path, config: ValidationConfig, reps: int, scheduler: Any, workers: int,
         quiet: bool) -> ValidationRun:
    """Run the missing replications of ``config`` in ``out`` and summarise (see validate)."""
    scenario = config.scenario
    directory = out / REPLICATIONS_DIR
    _check_config(out, config)
    directory.mkdir(parents=True, exist_ok=True)
    wanted = range(reps)
    done = finished_replications(directory) & set(wanted)
    todo = [(config, r) for r in wanted if r not in done]
    if scheduler is not None:
        results = run_dask(run_replication, todo, scheduler)
    elif workers > 1:
        results = run_joblib(run_replication, todo, workers)
    else:
        results = run_serial(run_replication, todo)
    from tqdm.auto import tqdm

    with tqdm(total=reps, initial=len(done), desc=f"validate {scenario}", unit="rep",
              disable=quiet) as bar:
        for frame in results:
            replication = int(frame["replication"].iloc[0])
            _atomic_write(_replication_file(directory, replication),
                          lambda tmp, f=frame: f.to_parquet(tmp, index=False))
            bar.update()
    rows = pd.concat([pd.read_parquet(_replication_file(directory, r)) for r in wanted],
                     ignore_index=True)
    table = summarize(rows)
    _atomic_write(out / ESTIMATES_FILE, lambda tmp: rows.to_parquet(tmp, index=False))
    _atomic_write(out / SUMMARY_FILE, lambda tmp: table.to_csv(tmp, index=False))
    run = ValidationRun(out, config, rows, table, ran=len(todo), reused=len(done))
    _atomic_write(out / FIGURE_FILE, lambda tmp: _save_figure(run, tmp))
    return run


def _save_figure(run: ValidationRun, path: Path) -> None:
    import matplotlib.pyplot as plt

    ax = run.plot()
    ax.figure.savefig(path, format="png", dpi=110, bbox_inches="tight")
    plt.close(ax.figure)
