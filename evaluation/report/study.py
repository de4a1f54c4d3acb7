"""The evaluation design the report chapters share: data, samples, panels and estimate specs.

Every chapter notebook builds one :class:`Study` from its parameters, so the chapters agree
on the analysis window, the estimation sample and the disclosure threshold. Every number in
the report's overall-effect table comes from an :class:`EstimateSpec`, which runs exactly
what ``evaluation estimate`` runs and prints that command for a reviewer.
"""

from __future__ import annotations

import json
import shlex
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from evaluation.errors import DroppedCovariatesWarning, ReportError
from evaluation.estimators.callaway_santanna import CallawaySantAnna
from evaluation.estimators.registry import estimate_table
from evaluation.panel import Panel
from evaluation.report.warning_log import WARNINGS_FILE, WarningLog, warning_lines
from evaluation.sources.cohort import COHORT_COVARIATES
from evaluation.sources.files import load_estimation_data, read_data_file
from evaluation.sources.trials import PANEL_START, WAVES, Wave, month_index, wave
from evaluation.synthetic.scenario import DEFAULT_SEED

MUNICIPAL_FILE = "municipalities.parquet"
AREAS_FILE = "trial_areas.parquet"
JOBSEEKER_FILE = "jobseekers.parquet"
PEOPLE_FILE = "jobseeker_info.parquet"
#: Files every report needs; the truth files are optional (synthetic data only).
REQUIRED_FILES = ("manifest.json", MUNICIPAL_FILE, AREAS_FILE, JOBSEEKER_FILE, PEOPLE_FILE)
#: Row filter of the individual-level estimation sample: the wave's target group.
TARGET_GROUP = "target_group == True"
#: Individual-level outcomes of chapter 3 (the ``OUTCOMES`` parameter's default).
DEFAULT_OUTCOMES = ("employed", "unemployed")
#: The municipal outcome of the monitoring statistics (StatFin TYOTOSUUS, %).
MUNICIPAL_OUTCOME = "unemployment_rate"
#: Service and cost outcomes of chapter 5.
SERVICE_OUTCOMES = ("in_services", "plan", "lms_cost_state", "lms_cost_municipal")
OUTCOME_LABELS = {
    "employed": "employed (open or subsidised)", "employed_open": "employed, open market",
    "employed_subsidised": "employed, subsidised", "unemployed": "unemployed",
    "in_services": "in employment services", "in_education": "in education",
    "plan": "employment plan drawn up", "lms_cost": "labour-market subsidy, EUR/month",
    "lms_cost_state": "subsidy paid by the state, EUR/month",
    "lms_cost_municipal": "subsidy paid by the municipality, EUR/month",
    "unemployment_rate": "unemployment rate, %",
    "extended_unemployed": "extended unemployment (unemployed or in services)",
}
#: Outcomes the overall-effect table adds to ``OUTCOMES``, as the trial evaluations
#: reported them: open-market employment next to all employment, and extended unemployment
#: next to unemployment (a move from open unemployment into services is no employment effect).
HEADLINE_EXTRAS = ("employed_open", "extended_unemployed")
#: Standard errors of every CS estimate of the report: the cluster jackknife (CV3 of
#: MacKinnon, Nielsen and Webb 2023). In the design Monte Carlo the analytic clustered
#: (CR0) intervals cover 0.915-0.93 and the CR2 ones hardly more: a few municipalities hold
#: much of the target group and the ELY regions are few.
HEADLINE_SE = "cr3"
#: Estimator options that set the inference (dropped when a spec switches estimator).
INFERENCE_OPTIONS = ("se", "draws", "seed", "wild_weights", "wild_null", "critical_values")


def check_data_dir(data_dir: Path) -> None:
    """Raise :class:`ReportError` naming the files of :data:`REQUIRED_FILES` that are absent."""
    missing = [name for name in REQUIRED_FILES if not (data_dir / name).is_file()]
    if missing:
        raise ReportError(f"{data_dir} lacks {', '.join(missing)}; run `evaluation simulate "
                          f"--out {data_dir}` or prepare the files in the schema documented "
                          "in the README.")


def jobseeker_wave(manifest: dict[str, Any]) -> int | None:
    """Return the wave the jobseeker panel was drawn for, from a data manifest (or None).

    The simulator records it as ``jobseeker_wave``; a real extract may say so too.
    """
    value = manifest.get("jobseeker_wave")
    return None if value is None else int(value)


def analysis_window(number: int) -> tuple[int, int]:
    """First and last month index ``t`` of wave ``number``'s municipal analysis window.

    The window starts after the previous wave ended (so no municipality is still treated
    by an earlier wave) and ends with the wave itself (treatment switches off then).
    """
    earlier = [w for w in WAVES if w.number < number]
    first = month_index(earlier[-1].end + 1) if earlier else month_index(PANEL_START)
    return first, month_index(wave(number).end)


def identified_covariates(data: pd.DataFrame, covariates: Sequence[str],
                          unit: str = "person", cohort: str = "cohort") -> list[str]:
    """Return the covariates whose coefficients the comparison units identify, in order.

    A covariate is kept when it raises the rank of ``[1, kept covariates]`` over the
    comparison units (``cohort == 0``, one row per unit): constant covariates and those that
    are linear combinations of earlier ones there (as in small subgroups) would make the
    outcome regression singular. The dropped ones are named in a
    :class:`~evaluation.errors.DroppedCovariatesWarning`.
    """
    units = data[data[cohort] == 0].drop_duplicates(unit)
    kept: list[str] = []
    design = np.ones((len(units), 1))
    for name in covariates:
        trial = np.column_stack([design, units[name].to_numpy(float)])
        if np.linalg.matrix_rank(trial) > design.shape[1]:
            kept.append(name)
            design = trial
    dropped = [c for c in covariates if c not in kept]
    if dropped:
        warnings.warn(f"covariates {', '.join(dropped)} dropped: constant or collinear among "
                      f"the {len(units)} comparison persons of this sample, so their "
                      "coefficients are not identified.", DroppedCovariatesWarning,
                      stacklevel=3)
    return kept


@dataclass(frozen=True)
class EstimateSpec:
    """One estimate of the report, stated as the ``evaluation estimate`` call that makes it.

    Attributes
    ----------
    label
        What the row reports, e.g. ``"jobseekers: employed"``.
    file
        Data file name inside the data directory.
    unit, time, cohort, outcome, never_treated, cluster, where
        As the options of ``evaluation estimate``.
    options
        Further ``estimate_table`` keyword arguments (``estimator``, ``control``,
        ``aggregate``, ...); their names map to the command-line flags.
    treatment
        0/1 treatment-status column (``--treatment``), used instead of ``cohort`` by
        estimators of treatments that switch on and off (``dcdh``); ``cohort`` is then None.
    """

    label: str
    file: str
    unit: str
    time: str
    cohort: str | None
    outcome: str
    never_treated: Any = 0
    cluster: str | None = None
    where: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    treatment: str | None = None

    def with_options(self, label: str | None = None, **options: Any) -> EstimateSpec:
        """Return a copy with more (or changed) estimator options.

        Switching to another estimator drops the inference options of the current one
        (:data:`INFERENCE_OPTIONS`: ``se``, ``draws``, ``seed``, the bootstrap's weights and
        null, the critical values) unless they are given again: they belong to the estimator
        (the headline's ``se`` is CS's cluster jackknife).
        """
        current = dict(self.options)
        if options.get("estimator", current.get("estimator")) != current.get("estimator"):
            for name in INFERENCE_OPTIONS:
                current.pop(name, None)
        return replace(self, label=label or self.label, options={**current, **options})

    def columns(self) -> list[str]:
        """Columns the estimate reads from the file."""
        roles = [c for c in (self.cohort, self.treatment) if c]
        extra = [self.cluster] if self.cluster else []
        return [self.unit, self.time, *roles, self.outcome,
                *self.options.get("covariates", ()), *extra]

    def run(self, data_dir: str | Path) -> pd.DataFrame:
        """Run the estimate exactly as ``evaluation estimate`` does; tidy table of estimates."""
        data = load_estimation_data(Path(data_dir) / self.file, self.columns(), self.where)
        return estimate_table(data, unit=self.unit, time=self.time, cohort=self.cohort,
                              outcome=self.outcome, treatment=self.treatment,
                              never_treated=self.never_treated, cluster=self.cluster,
                              **self.options)

    def command(self, data_dir: str | Path, output: str = "estimate.csv") -> str:
        """Return the shell command that reproduces :meth:`run` (to the last digit)."""
        argv = ["evaluation", "estimate", "--data", str(Path(data_dir) / self.file),
                "--unit", self.unit, "--time", self.time]
        if self.cohort:
            argv += ["--cohort", self.cohort]
        if self.treatment:
            argv += ["--treatment", self.treatment]
        argv += ["--outcome", self.outcome]
        if self.cohort:
            argv += ["--never-treated", str(self.never_treated)]
        if self.cluster:
            argv += ["--cluster", self.cluster]
        if self.where:
            argv += ["--where", self.where]
        for name, value in self.options.items():
            flag = "--" + name.replace("_", "-")
            argv += [flag, ",".join(value) if isinstance(value, list | tuple) else str(value)]
        return shlex.join([*argv, "--output", output])


@dataclass(frozen=True)
class Study:
    """The data and design of one evaluation report.

    Parameters
    ----------
    data_dir
        Directory with the files of :data:`REQUIRED_FILES` in the documented schema.
    wave
        Trial wave evaluated (the jobseeker panel must be drawn for this wave).
    outcomes
        Individual-level outcomes of the effect chapters.
    threshold
        Smallest count published from individual-level data (disclosure control).
    seed
        Seed of the random steps (the bootstrap draws of the uniform bands).
    out_dir
        Where chapters save their tables (``tables/``); None keeps them in memory.

    Attributes
    ----------
    warnings
        The :class:`~evaluation.report.warning_log.WarningLog` of this study: warnings
        issued while its numbers are computed, attached to the next saved table.
    """

    data_dir: Path
    wave: int = 3
    outcomes: tuple[str, ...] = DEFAULT_OUTCOMES
    threshold: int = 5
    seed: int = DEFAULT_SEED
    out_dir: Path | None = None
    warnings: WarningLog = field(default_factory=WarningLog, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_dir", Path(self.data_dir))
        if self.out_dir is not None:
            object.__setattr__(self, "out_dir", Path(self.out_dir))
            self.warnings.path = self.out_dir / WARNINGS_FILE
        object.__setattr__(self, "outcomes", tuple(self.outcomes))
        wave(self.wave)  # raises for an unknown wave
        check_data_dir(self.data_dir)
        data_wave = jobseeker_wave(self.manifest) or self.wave
        if data_wave != self.wave:
            raise ReportError(f"the jobseeker panel in {self.data_dir} was drawn for wave "
                              f"{data_wave}, not wave {self.wave}; pass wave={data_wave} or "
                              f"simulate with --wave {self.wave}.")

    # ---------------------------------------------------------------- data
    @cached_property
    def manifest(self) -> dict[str, Any]:
        """The data directory's manifest (seed, scenario, file hashes)."""
        from evaluation.report.build import read_data_manifest  # checks JSON, wave, seed

        return read_data_manifest(self.data_dir)

    @property
    def synthetic(self) -> bool:
        """Whether the data were drawn by the simulator (and carry their true effects)."""
        return bool(self.manifest.get("scenario")) and self.truth_file("jobseekers").is_file()

    @property
    def trial(self) -> Wave:
        """The evaluated wave."""
        return wave(self.wave)

    @property
    def window(self) -> tuple[int, int]:
        """First and last month index ``t`` of the municipal analysis window."""
        return analysis_window(self.wave)

    @property
    def start(self) -> int:
        """Month index of the wave's first trial month."""
        return month_index(self.trial.start)

    @cached_property
    def municipal(self) -> pd.DataFrame:
        """The municipality-month panel (all months)."""
        return read_data_file(self.data_dir / MUNICIPAL_FILE)

    @cached_property
    def areas(self) -> pd.DataFrame:
        """The trial areas of every wave."""
        return read_data_file(self.data_dir / AREAS_FILE)

    @cached_property
    def people(self) -> pd.DataFrame:
        """One row per person of the jobseeker panel (characteristics at the reference)."""
        return read_data_file(self.data_dir / PEOPLE_FILE)

    @cached_property
    def jobseekers(self) -> pd.DataFrame:
        """The person-month panel restricted to the wave's target group."""
        data = load_estimation_data(self.data_dir / JOBSEEKER_FILE, [], TARGET_GROUP)
        missing = [c for c in COHORT_COVARIATES if c not in data.columns]
        if missing:
            raise ReportError(
                f"{self.data_dir / JOBSEEKER_FILE} lacks the reference-month covariates "
                f"{', '.join(missing)} of the headline design; add them with "
                "evaluation.sources.cohort.add_reference_covariates(data, reference_t, "
                "municipal_panel) and save the result as a new file.")
        return data.reset_index(drop=True)

    @cached_property
    def headline_covariates(self) -> list[str]:
        """The :data:`~evaluation.sources.cohort.COHORT_COVARIATES` the target group identifies.

        All of them on data in the schema; :func:`identified_covariates` drops (and warns
        about) any that are constant or collinear among the comparison persons.
        """
        return identified_covariates(self.jobseekers, COHORT_COVARIATES)

    @cached_property
    def pre_trial_population(self) -> pd.DataFrame:
        """Every person of the jobseeker file (not only the target group), pre-trial months.

        The placebo re-selects its cohort from them at a fake reference month.
        """
        data = load_estimation_data(self.data_dir / JOBSEEKER_FILE, [],
                                    f"t < {self.start}")
        return data.reset_index(drop=True)

    def truth_file(self, level: str) -> Path:
        """Path of the true effects of the ``municipalities`` or ``jobseekers`` panel."""
        return self.data_dir / f"truth_{level}.parquet"

    def true_overall(self, level: str, outcome: str, population: str = "treated",
                     wave_number: int | None = None) -> float | None:
        """Return the simulator's true overall ATT (None for real data or unknown rows)."""
        path = self.truth_file(level)
        if not self.synthetic or not path.is_file():
            return None
        truth = pd.read_parquet(path)
        design = f"wave{wave_number or self.wave}"
        rows = truth[(truth["design"] == design) & (truth["kind"] == "overall")
                     & (truth["population"] == population) & (truth["outcome"] == outcome)]
        return float(rows["att"].iloc[0]) if len(rows) else None

    def true_event_mean(self, level: str, outcome: str, max_e: float = float("inf"),
                        population: str = "treated") -> float | None:
        """Return the true mean of the event-time ATTs from 0 to ``max_e`` (None if unknown)."""
        path = self.truth_file(level)
        if not self.synthetic or not path.is_file():
            return None
        truth = pd.read_parquet(path)
        rows = truth[(truth["design"] == f"wave{self.wave}") & (truth["kind"] == "event")
                     & (truth["population"] == population) & (truth["outcome"] == outcome)
                     & (truth["event_time"] >= 0) & (truth["event_time"] <= max_e)]
        return float(rows["att"].mean()) if len(rows) else None

    # ------------------------------------------------------------ samples
    @property
    def cohort(self) -> str:
        """Cohort column of the evaluated wave in the municipal panel."""
        return f"cohort_w{self.wave}"

    @property
    def municipal_cluster(self) -> str:
        """Cluster of municipal standard errors: the ELY centre, else the municipality.

        StatFin extracts carry no ELY column; clustering by municipality is then the
        conservative fallback.
        """
        return "ely" if "ely" in self.municipal.columns else "municipality"

    def municipal_where(self, wave_number: int | None = None) -> str:
        """Return the row filter of a wave's municipal analysis window (default: the study's)."""
        first, last = analysis_window(wave_number or self.wave)
        return f"t >= {first} and t <= {last}"

    def municipal_spec(self, outcome: str = MUNICIPAL_OUTCOME, wave_number: int | None = None,
                       **options: Any) -> EstimateSpec:
        """Spec of a municipal estimate of a wave (never-treated controls, in its window).

        CS estimates use the :data:`HEADLINE_SE` standard errors, as the headline does.
        """
        number = wave_number or self.wave
        options = {"estimator": "cs", "aggregate": "simple", **options}
        if options["estimator"] == "cs":
            options = {"se": HEADLINE_SE, **options}
        return EstimateSpec(f"municipalities: {outcome}", MUNICIPAL_FILE, "municipality", "t",
                            f"cohort_w{number}", outcome, 0, self.municipal_cluster,
                            self.municipal_where(number), options)

    def jobseeker_spec(self, outcome: str, **options: Any) -> EstimateSpec:
        """Spec of an individual-level estimate on the target group (clustered by municipality).

        The headline design: Callaway–Sant'Anna, doubly robust, never-treated comparison
        persons, adjusted for the :data:`~evaluation.sources.cohort.COHORT_COVARIATES`
        (reference-month state, spell, benefit, 12 months of history, local unemployment),
        with :data:`HEADLINE_SE` standard errors.
        Options override it; ``covariates=()`` drops the adjustment, and estimators other
        than CS (whose fixed effects absorb time-invariant covariates) get none.
        """
        options = {"estimator": "cs", "aggregate": "simple", **options}
        if options["estimator"] == "cs":
            options = {"covariates": self.headline_covariates, "se": HEADLINE_SE, **options}
        if not options.get("covariates", True):
            options.pop("covariates")
        return EstimateSpec(f"jobseekers: {outcome}", JOBSEEKER_FILE, "person", "t", "cohort",
                            outcome, 0, "municipality", TARGET_GROUP, options)

    def municipal_panel(self, outcome: str = MUNICIPAL_OUTCOME, **kwargs: Any) -> Panel:
        """Return the validated municipal panel of the analysis window."""
        first, last = self.window
        data = self.municipal[self.municipal["t"].between(first, last)]
        return Panel(data, unit="municipality", time="t", outcome=outcome, cohort=self.cohort,
                     never_treated=0, cluster=self.municipal_cluster, **kwargs)

    def panel(self, level: str, outcome: str) -> Panel:
        """Return the ``"municipalities"`` or ``"jobseekers"`` panel of ``outcome``."""
        if level == "municipalities":
            return self.municipal_panel(outcome)
        if level == "jobseekers":
            return self.jobseeker_panel(outcome)
        raise ReportError(f"level={level!r}: use 'municipalities' or 'jobseekers'.")

    @staticmethod
    def headline_estimator(**options: Any) -> CallawaySantAnna:
        """Return the CS estimator of the headline design (:data:`HEADLINE_SE` errors).

        Every chapter fits CS through it, on :meth:`jobseeker_panel` or
        :meth:`municipal_panel`, so the report's numbers share one inference.
        """
        return CallawaySantAnna(**{"se": HEADLINE_SE, **options})

    def jobseeker_panel(self, outcome: str, rows: pd.Series | None = None,
                        adjusted: bool = True, **kwargs: Any) -> Panel:
        """Return the person-month panel of the target group (optionally a subset of rows).

        With ``adjusted`` the panel carries the headline design's covariates
        (:data:`~evaluation.sources.cohort.COHORT_COVARIATES`), except those
        :func:`identified_covariates` drops for the selected rows (e.g. ``ref_under30``
        among the under-30s); a :class:`~evaluation.errors.DroppedCovariatesWarning` names
        them.
        """
        data = self.jobseekers if rows is None else self.jobseekers[rows.to_numpy()]
        if adjusted:
            kwargs.setdefault("covariates", self.headline_covariates if rows is None
                              else identified_covariates(data, COHORT_COVARIATES))
        return Panel(data, unit="person", time="t", outcome=outcome, cohort="cohort",
                     never_treated=0, cluster="municipality", **kwargs)

    def save_table(self, table: pd.DataFrame, name: str, *, chapter: int,
                   individual: bool, spec: list[str] | None = None,
                   kind: str = "estimates") -> None:
        """Write a chapter table to ``out_dir/tables/<name>.csv`` and index it.

        ``individual`` marks tables computed from individual-level data (their counts must
        have passed :func:`evaluation.report.disclosure.disclose`); ``spec`` lists the commands
        that reproduce the rows. The warnings issued since the previous table are attached to
        this one (``warnings`` in the index). The index ``tables/index.json`` feeds the
        appendix, the manifest and the tests.
        """
        records = self.warnings.flush(name)
        if self.out_dir is None:
            return
        directory = self.out_dir / "tables"
        directory.mkdir(parents=True, exist_ok=True)
        table.to_csv(directory / f"{name}.csv", index=False)
        index_path = directory / "index.json"
        index = json.loads(index_path.read_text()) if index_path.is_file() else {}
        index[name] = {"chapter": chapter, "individual": individual, "kind": kind,
                       "rows": len(table), "commands": spec or [],
                       "warnings": warning_lines(records)}
        index_path.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")

    def saved_index(self) -> dict[str, Any]:
        """Return ``tables/index.json``: every saved table with its chapter and warnings."""
        path = self._tables_dir() / "index.json"
        if not path.is_file():
            raise ReportError(f"{path} does not exist; run the chapter notebooks first.")
        return json.loads(path.read_text())

    def saved_table(self, name: str) -> pd.DataFrame:
        """Return a table a chapter saved (``tables/<name>.csv``)."""
        path = self._tables_dir() / f"{name}.csv"
        if not path.is_file():
            raise ReportError(f"table {name!r} was not saved ({path} does not exist); run "
                              "the chapter that computes it first.")
        return pd.read_csv(path)

    def _tables_dir(self) -> Path:
        if self.out_dir is None:
            raise ReportError("this study has no out_dir, so it saves no tables; pass "
                              "out_dir= to read saved tables.")
        return self.out_dir / "tables"
