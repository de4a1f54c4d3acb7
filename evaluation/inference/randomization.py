r"""Randomization inference over the assignment of areas to treatment (few treated clusters).

The trials were assigned to about 25 areas, so cluster-robust normal inference over-rejects;
:func:`randomization_inference` re-assigns the observed cohorts across areas, refits any
registered estimator each time and inverts the test for intervals.
"""

from __future__ import annotations

import copy
import itertools
import math
import sys
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from evaluation.errors import EvaluationError, InvalidOptionError, MissingColumnError, PanelError
from evaluation.estimators.registry import get_estimator
from evaluation.messages import fmt, fmt_list
from evaluation.options import check_alpha, check_count, check_flag, check_option, check_seed
from evaluation.panel import Panel
from evaluation.protocol import ResultMixin, Summary, new_axes
from evaluation.validation.executors import run_joblib, run_serial, single_threaded

if TYPE_CHECKING:
    from matplotlib.axes import Axes

Aggregate = Literal["simple", "event"]
Statistic = Literal["t", "estimate"]
Term = tuple[str, int | None]
Caught = Counter[tuple[type[Warning], str]]

#: Columns of :meth:`RandomizationResult.to_frame` (shared with the Conley-Taber result).
INFERENCE_COLUMNS = ["term", "event_time", "estimate", "p_value", "ci_lower", "ci_upper",
                     "method", "permutations", "exact"]
#: Largest number of distinct assignments enumerated with ``permutations="exact"``.
EXACT_LIMIT = 100_000
_TIE = 1e-9  # relative tolerance of |T*| >= |T| (the same statistic recomputed in floats)
_CHUNK = 20  # assignments per task (progress granularity and joblib task size)


@dataclass
class RandomizationResult(ResultMixin):
    r"""Randomization p-values and test-inversion intervals of one estimator's effects.

    Attributes
    ----------
    table
        One row per term (``overall``, event times): ``term, event_time, estimate,
        std_error, statistic, p_value, ci_lower, ci_upper``.
    estimator, aggregation, statistic, alpha
        Registered estimator, ``"simple"``/``"event"``, ``"t"``/``"estimate"``, level.
    permutations, exact
        Assignments in the reference distribution; whether they are all distinct ones.
    assignment, n_assignment_units, treated_per_cohort
        Column naming the assignment unit (area), their number, and their number per
        cohort label (kept fixed by every re-assignment).
    distinct_assignments
        Number of distinct assignments :math:`N` (a multinomial coefficient).
    distribution
        ``(permutations, n_terms)`` statistics of the reference assignments (no shift).
    seed, warnings, info
        Seed of the sampled assignments (None if exact); warnings of the refits with the
        number of refits that issued each; settings.
    curves
        The exact estimate and variance curves behind :meth:`p_value_at`.

    Notes
    -----
    The test and the interval are defined in :func:`randomization_inference`.
    """

    table: pd.DataFrame
    estimator: str
    aggregation: str
    statistic: str
    permutations: int
    exact: bool
    alpha: float
    assignment: str
    n_assignment_units: int
    treated_per_cohort: dict[Any, int]
    distinct_assignments: int
    distribution: np.ndarray = field(repr=False)
    seed: int | None = None
    warnings: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    curves: _Curves | None = field(default=None, repr=False)

    def to_frame(self) -> pd.DataFrame:
        """Return one row per term with the columns :data:`INFERENCE_COLUMNS`."""
        return self.table[INFERENCE_COLUMNS[:6]].assign(
            method=f"randomization-{self.statistic}", permutations=self.permutations,
            exact=self.exact)

    def p_value_at(self, tau: float, term: str = "overall") -> float:
        r"""Return the randomization p-value of a constant additive effect ``tau``.

        ``tau`` is the effect :math:`\tau_0` in every treated post-treatment cell, ``term``
        ``"overall"`` or an event time as text (``"2"``); the interval of the term is
        :math:`\{\tau_0 : p(\tau_0) > \alpha\}`.
        """
        terms = list(self.table["term"])
        if term not in terms:
            raise InvalidOptionError(f"term={term!r} is not estimated; use one of "
                                     f"{fmt_list(terms)}.")
        if self.curves is None or not np.isfinite(self.curves.slope[0]).any():
            raise InvalidOptionError("the p-value curve was not computed (ci=False).")
        p = self.curves.p_values(tau, self.statistic == "t", self.exact)
        return float(p[terms.index(term)])

    def summary(self) -> Summary:
        """Return the estimates, randomization p-values and intervals, with the settings."""
        frame = self.table.drop(columns=["event_time"]).set_index("term")
        kind = "all" if self.exact else "a sample of"
        cohorts = ", ".join(f"{fmt(k)}: {v}" for k, v in self.treated_per_cohort.items())
        shown = "estimate / own standard error" if self.statistic == "t" else "estimate"
        notes = [f"reference distribution: {kind} {self.permutations:,} re-assignments of the "
                 f"treatment paths across {self.n_assignment_units} {self.assignment} units "
                 f"({self.distinct_assignments:,} distinct)",
                 f"{self.assignment} units per cohort: {cohorts}",
                 f"statistic: {shown}, two-sided",
                 f"{100 * (1 - self.alpha):g} % intervals by test inversion under a constant "
                 "additive effect (none for pre-treatment terms)"]
        notes += [f"{key}: {value}" for key, value in self.info.items()]
        title = f"Randomization inference: {self.estimator.upper()} ({self.aggregation})"
        return Summary(title, frame, tuple(notes), tuple(self.warnings))

    def plot(self, ax: Axes | None = None, *, term: str = "overall") -> Axes:
        """Draw the re-assignment statistics of ``term`` with the observed one; return the Axes."""
        ax = new_axes(ax, (5, 3))
        terms = list(self.table["term"])
        k = terms.index(term) if term in terms else 0
        ax.hist(self.distribution[:, k], bins=30, color="0.7")
        observed, p = self.table["statistic"].iloc[k], self.table["p_value"].iloc[k]
        ax.axvline(observed, color="C3", label=f"observed, p = {p:.3f}")
        ax.axvline(-observed, color="C3", linestyle=":")
        ax.set_xlabel(f"{self.statistic} statistic ({terms[k]})")
        ax.legend(fontsize=8, frameon=False)
        return ax


@dataclass
class _Curves:
    r"""Exact estimate and variance curves in the shift of every assignment (row 0 observed).

    :math:`\hat\theta_b(\tau) = e_b + s_b\tau` and :math:`\hat V_b(\tau) = v_{0b} +
    v_{1b}\tau + v_{2b}\tau^2`; each array is ``(1 + B, K)``.
    """

    est: np.ndarray
    slope: np.ndarray
    var0: np.ndarray
    var1: np.ndarray
    var2: np.ndarray

    def statistics(self, tau: float, studentised: bool) -> np.ndarray:
        """Return the ``(1 + B, K)`` statistics of every assignment under the shift ``tau``."""
        est = self.est if tau == 0 else self.est + tau * self.slope
        if not studentised:
            return est
        var = self.var0 if tau == 0 else self.var0 + tau * self.var1 + tau**2 * self.var2
        with np.errstate(divide="ignore", invalid="ignore"):
            return est / np.sqrt(np.maximum(var, 0.0))

    def p_values(self, tau: float, studentised: bool, exact: bool) -> np.ndarray:
        """Return the two-sided p-value of every term under the shift ``tau``."""
        stat = np.abs(self.statistics(tau, studentised))
        observed, reference = stat[0], stat[1:]
        count = (np.isnan(reference) | (reference >= observed * (1 - _TIE))).sum(axis=0)
        p = count / reference.shape[0] if exact else (1 + count) / (1 + reference.shape[0])
        return np.where(np.isnan(observed), np.nan, p)


def randomization_inference(
    panel: Panel,
    estimator: str = "cs",
    *,
    assignment: str | None = None,
    aggregate: Aggregate = "simple",
    permutations: int | Literal["exact"] = 999,
    seed: int | None = None,
    alpha: float = 0.05,
    statistic: Statistic = "t",
    ci: bool = True,
    n_jobs: int = 1,
    progress: bool = True,
    **options: Any,
) -> RandomizationResult:
    r"""Randomization (permutation) inference over the assignment of areas to treatment.

    Parameters
    ----------
    panel
        The panel; its cohort (first treated period) must be constant within each
        assignment unit, and it must not have a ``status`` column.
    estimator
        Registered estimator name (``cs``, ``sa``, ``bjs``, ``did2s``, ``twfe``).
    assignment
        Column of the panel, constant within unit, naming the unit of assignment (trial
        area); default the panel's cluster column (``panel.unit``: single units).
    aggregate
        ``"simple"``: the overall effect; ``"event"``: the overall effect (the static model
        for ``twfe`` and ``did2s``) and every event-time effect.
    permutations
        Number of sampled re-assignments :math:`B`; when the number of distinct assignments
        is :math:`N \le B` (or with ``"exact"``) all of them are enumerated.
    seed, alpha
        Seed of the sampled re-assignments (None: the package's fixed default seed); level
        of the test and of the intervals.
    statistic
        ``"t"`` (default): the estimate over its own standard error, recomputed on every
        re-assignment; ``"estimate"``: the estimate itself.
    ci, progress
        Compute the intervals (three refits per assignment instead of one); show a
        progress bar on stderr.
    n_jobs
        Worker processes (joblib; ``-1``: every core). Results equal ``n_jobs=1``'s: all
        assignments are drawn before any refit, each refit runs with one BLAS thread.
    **options
        Estimator options by table name (``control``, ``method``, ``base_period``,
        ``anticipation``, ``small_sample``; ``se`` other than the bootstraps).

    Returns
    -------
    RandomizationResult
        Observed estimates, p-values and intervals per term.

    Raises
    ------
    MissingColumnError
        If the assignment column is not a column of the panel.
    PanelError
        If the units of one assignment unit have different cohorts.
    InvalidOptionError
        For invalid options, a panel without cohort or with a status column, or fewer
        distinct assignments (or permutations) than a test of level ``alpha`` needs.
        Warnings of the refits are issued once each and recorded on the result.

    Notes
    -----
    **Re-assignments.** With :math:`A` assignment units of which :math:`n_g` have cohort
    :math:`g` (:math:`n_\infty` never treated), a re-assignment permutes the cohorts
    across the units, keeping every :math:`n_g`; there are
    :math:`N = A! / (n_\infty! \prod_g n_g!)` distinct ones. If :math:`N \le B` all are
    enumerated (``itertools.combinations`` of the units, cohort by cohort), otherwise
    :math:`B` uniform permutations are drawn from ``numpy.random.default_rng(seed)``.

    **Test.** For each term the statistic is :math:`T = \hat\theta/\widehat{se}` (``"t"``;
    studentising keeps the test valid for the average effect when effects are
    heterogeneous, Young 2019, MacKinnon and Webb 2020) or :math:`T = \hat\theta`. With
    :math:`T_b^*` on the re-assignments,

    .. math::

        p = \frac{1 + \#\{b \le B: |T_b^*| \ge |T|\}}{1 + B} \;\text{(sampled)}, \qquad
        p = \frac{\#\{b \le N: |T_b^*| \ge |T|\}}{N} \;\text{(exact, observed included)}.

    A re-assignment whose statistic is NaN counts as extreme. The test is exact under the
    sharp null of no effect when areas were assigned at random with these cohort sizes.

    **Interval.** Under the sharp null of a constant additive effect :math:`\tau_0`,
    :math:`Y_{it}(0) = Y_{it} - \tau_0 D_{it}` with :math:`D_{it} = 1\{t \ge G_i\}` the
    observed treatment; testing no effect on :math:`Y - \tau_0 D` gives :math:`p(\tau_0)`
    and the interval is :math:`\{\tau_0 : p(\tau_0) > \alpha\}` around the estimate. The
    registered estimators are linear in the outcome with variances quadratic in it, so
    :math:`\hat\theta_b(\tau_0)` is linear and :math:`\hat V_b(\tau_0)` quadratic in
    :math:`\tau_0`; both are recovered exactly from refits at :math:`\tau_0 \in \{0, h,
    -h\}` (:math:`h` the standard deviation of the outcome) and checked by a refit at
    :math:`2h` on the observed assignment (a mismatch leaves the intervals NaN, with a
    warning). :math:`p(\tau_0)` is a step function, so each endpoint is found by
    root-finding on :math:`p(\tau_0) - \alpha` by bracketing and bisection: from the
    estimate the step doubles (from one standard error) until :math:`p \le \alpha`, then
    bisection narrows the bracket to :math:`10^{-9}` standard errors. An endpoint is
    infinite if :math:`p > \alpha` up to :math:`10^6` standard errors (possible with the
    studentised statistic and very few treated units). Pre-treatment event times do not
    move with :math:`\tau_0`: they get a p-value (a placebo test) but no interval.
    """
    aggregate = check_option("aggregate", aggregate, Aggregate)
    statistic = check_option("statistic", statistic, Statistic)
    from evaluation.options import DEFAULT_RANDOM_SEED

    alpha = check_alpha("alpha", alpha)
    seed = DEFAULT_RANDOM_SEED if check_seed("seed", seed) is None else seed
    ci, progress = check_flag("ci", ci), check_flag("progress", progress)
    n_jobs = n_jobs if n_jobs == -1 else check_count("n_jobs", n_jobs, 1)
    permutations = permutations if permutations == "exact" else check_count(
        "permutations", permutations, 1)
    if options.get("se") in ("bootstrap", "wild"):
        raise InvalidOptionError(f"se={options['se']!r} cannot be combined with randomization "
                                 "inference (a bootstrap in every refit); use se='analytic' "
                                 "or 'cr2'.")
    entry = get_estimator(estimator)
    entry.check(_main_aggregation(entry, aggregate), options)
    unit_area, codes, labels, name = _assignment_units(panel, assignment)
    distinct = _distinct(codes)
    needed = math.ceil(1 / alpha - 1e-9)
    if distinct < needed:
        raise InvalidOptionError(
            f"only {distinct} distinct assignments of the treatment paths across "
            f"{codes.size} {name} units exist: the smallest attainable p-value 1/{distinct} "
            f"exceeds alpha={alpha:g}; a test at that level needs at least {needed}.")
    exact = permutations == "exact" or distinct <= permutations
    if exact and distinct > EXACT_LIMIT:
        raise InvalidOptionError(f"{distinct:,} distinct assignments are too many to "
                                 f"enumerate (limit {EXACT_LIMIT:,}); pass a number of "
                                 "permutations instead of 'exact'.")
    if exact:
        reference = _enumerate(codes)
    elif 1 / (1 + permutations) > alpha:
        raise InvalidOptionError(f"permutations={permutations} cannot give p <= alpha="
                                 f"{alpha:g}; use at least {needed - 1}.")
    else:
        rng = np.random.default_rng(seed)
        reference = np.stack([codes[rng.permutation(codes.size)] for _ in range(permutations)])
    refit = _Refit.build(panel, entry.name, aggregate, alpha, options, unit_area, codes)
    taus = (0.0, refit.h, -refit.h) if ci else (0.0,)
    values, caught = _run(refit, np.vstack([codes, reference]), taus, n_jobs, progress)
    curves = _curves(values, refit, codes, caught)
    for (category, message) in caught:
        warnings.warn(message, category, stacklevel=2)
    return _result(refit, curves, values, codes, labels, name, distinct, exact, statistic,
                   seed, caught)


def _assignment_units(panel: Panel, assignment: str | None
                      ) -> tuple[np.ndarray, np.ndarray, list[Any], str]:
    """Return each unit's area, each area's cohort code (sorted, never first), labels, column."""
    if panel.cohort is None or panel.status is not None:
        raise InvalidOptionError("randomization inference re-assigns absorbing treatment paths: "
                                 "build the panel with a cohort column and no status column.")
    column = assignment if assignment is not None else panel.cluster
    if column is None:
        raise InvalidOptionError("the panel has no cluster column: pass assignment=<the column "
                                 "naming the area each unit was assigned with>.")
    if column not in panel.data.columns:
        raise MissingColumnError(
            f"assignment column {column!r} is not in the panel (columns "
            f"{fmt_list([str(c) for c in panel.data.columns])}); build the Panel with "
            f"cluster={column!r} or name it as a covariate.")
    unit_area, area_labels = pd.factorize(panel.unit_values(column))
    position = np.nan_to_num(panel.unit_cohort, nan=-1.0).astype(np.int64)
    cohort_values, unit_code = np.unique(position, return_inverse=True)
    codes = np.zeros(len(area_labels), dtype=np.int64)
    codes[unit_area] = unit_code
    mixed = np.unique(unit_area[codes[unit_area] != unit_code])
    if mixed.size:
        found = sorted({int(p) for p in position[unit_area == mixed[0]]})
        shown = ["never treated" if p < 0 else fmt(panel.period_label(p)) for p in found]
        raise PanelError(
            f"assignment unit {column}={fmt(area_labels[mixed[0]])} holds units with "
            f"different cohorts ({', '.join(shown)}); {mixed.size} {column!r} unit(s) are "
            "mixed. Re-assignment moves whole assignment units, so all their units must "
            "share one cohort: name the column treatment was assigned by.")
    labels = ["never" if p < 0 else panel.period_label(p) for p in cohort_values]
    return unit_area, codes, labels, str(column)


def _distinct(codes: np.ndarray) -> int:
    """Count the distinct arrangements of the cohort codes across areas (multinomial)."""
    return math.factorial(codes.size) // math.prod(map(math.factorial, np.bincount(codes).tolist()))


def _enumerate(codes: np.ndarray) -> np.ndarray:
    """Return every distinct arrangement of ``codes`` (areas pick cohorts, one by one)."""
    values, counts = np.unique(codes, return_counts=True)
    order = np.argsort(counts, kind="stable")  # the largest group is filled last
    rows: list[np.ndarray] = []

    def place(free: tuple[int, ...], k: int, current: np.ndarray) -> None:
        for chosen in itertools.combinations(free, int(counts[order[k]])):
            row = current.copy()
            row[list(chosen)] = values[order[k]]
            rest = tuple(i for i in free if i not in chosen)
            if k == len(values) - 1:
                rows.append(row)
            else:
                place(rest, k + 1, row)

    place(tuple(range(codes.size)), 0, np.zeros(codes.size, dtype=codes.dtype))
    return np.array(rows)


def _main_aggregation(entry: Any, aggregate: str) -> str:
    """Return the aggregation fitted first (``event`` for estimators without ``simple``)."""
    return "event" if aggregate == "event" or "simple" not in entry.aggregations else "simple"


@dataclass
class _Refit:
    """What a worker needs to refit the estimator on one re-assignment (picklable)."""

    panel: Panel
    estimator: str
    aggregate: str
    alpha: float
    options: dict[str, Any]
    unit_area: np.ndarray  # area code of every unit
    code_row: np.ndarray  # a row holding each cohort code's label
    code_position: np.ndarray  # grid position of each cohort code (NaN: never treated)
    treated: np.ndarray  # observed D_it of every row
    h: float
    terms: list[Term] = field(default_factory=list)

    @classmethod
    def build(cls, panel: Panel, estimator: str, aggregate: str, alpha: float,
              options: dict[str, Any], unit_area: np.ndarray, codes: np.ndarray) -> _Refit:
        """Precompute the row maps of ``panel`` for :meth:`panel_for`."""
        row_code = codes[unit_area[panel.unit_codes]]
        code_row = np.array([np.flatnonzero(row_code == c)[0] for c in range(codes.max() + 1)])
        position = np.unique(np.nan_to_num(panel.unit_cohort, nan=-1.0))
        treated = (panel.time_codes >= panel.unit_cohort[panel.unit_codes]).astype(float)
        h = float(np.std(panel.data[panel.outcome].to_numpy(dtype=float))) or 1.0
        return cls(panel, estimator, aggregate, alpha, dict(options), unit_area, code_row,
                   np.where(position < 0, np.nan, position), treated, h)

    def panel_for(self, codes: np.ndarray, tau: float, *, validate: bool = False) -> Panel:
        """Return the panel with cohorts re-assigned by area ``codes`` and outcome Y - tau D.

        Only the cohort and the outcome change, so the validated panel is copied and they
        are replaced; ``validate=True`` builds and validates a new :class:`Panel` instead.
        """
        p = self.panel
        data = p.data.copy()
        rows = self.code_row[codes[self.unit_area[p.unit_codes]]]
        data[p.cohort] = p.data[p.cohort].take(rows).reset_index(drop=True)
        if tau:
            data[p.outcome] = data[p.outcome].to_numpy(dtype=float) - tau * self.treated
        if validate:
            return Panel(data, unit=p.unit, time=p.time, outcome=list(p.outcomes),
                         cohort=p.cohort, covariates=list(p.covariates), weights=p.weights,
                         cluster=p.cluster, never_treated=p.never_treated)
        new = copy.copy(p)
        new.data = data
        new.unit_cohort = self.code_position[codes[self.unit_area]]
        new.cohorts = np.unique(new.unit_cohort[~np.isnan(new.unit_cohort)]).astype(np.int64)
        new.unit_cohort.flags.writeable = new.cohorts.flags.writeable = False
        return new

    def fit(self, codes: np.ndarray, tau: float, *, validate: bool = False
            ) -> dict[Term, tuple[float, float]]:
        """Return ``{(kind, event time): (estimate, std_error)}`` on one re-assignment."""
        entry = get_estimator(self.estimator)
        panel = self.panel_for(codes, tau, validate=validate)
        main = _main_aggregation(entry, self.aggregate)
        result = entry.estimate(panel, main, self.alpha, **self.options)
        overall = result.overall
        if (overall is None or not len(overall)) and main == "simple":
            overall = result.table
        elif overall is None and "simple" in entry.aggregations:  # static TWFE / two-stage
            simple = entry.estimate(panel, "simple", self.alpha, **self.options)
            overall = simple.overall if simple.overall is not None else simple.table
        out: dict[Term, tuple[float, float]] = {}
        if overall is not None and len(overall) == 1:
            out[("overall", None)] = (overall["estimate"].iloc[0], overall["std_error"].iloc[0])
        if self.aggregate == "event":
            out.update({("event", int(r.event_time)): (r.estimate, r.std_error)
                        for r in result.table.itertuples()})
        return out

    def values(self, codes: np.ndarray, tau: float, *, validate: bool = False) -> np.ndarray:
        """Return ``(2, K)`` estimates and standard errors of :attr:`terms` (NaN if absent)."""
        fitted = self.fit(codes, tau, validate=validate)
        if not self.terms:
            self.terms = list(fitted)
        return np.array([fitted.get(t, (np.nan, np.nan)) for t in self.terms], dtype=float).T


def _run_chunk(refit: _Refit, task: tuple[int, np.ndarray, tuple[float, ...]]
               ) -> tuple[int, np.ndarray, list[tuple[type[Warning], str]]]:
    """Refit every assignment of one chunk at every shift; return values and warnings."""
    index, rows, taus = task
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = np.stack([np.stack([refit.values(row, tau) for tau in taus]) for row in rows])
    return index, out, [(w.category, str(w.message)) for w in caught]


def _run(refit: _Refit, rows: np.ndarray, taus: tuple[float, ...], n_jobs: int,
         progress: bool) -> tuple[np.ndarray, Caught]:
    """Return the ``(n_rows, n_taus, 2, K)`` values of every assignment and the warnings."""
    # the observed assignment first: it fixes the terms before any worker starts
    _, first, messages = single_threaded(partial(_run_chunk, refit), (0, rows[:1], taus))
    if not refit.terms:
        raise InvalidOptionError(f"{refit.estimator} returned no estimate to test.")
    tasks = [(i, rows[start:start + _CHUNK], taus)
             for i, start in enumerate(range(1, rows.shape[0], _CHUNK), start=1)]
    function = partial(_run_chunk, refit)
    results: Iterator[Any] = (run_serial(function, tasks) if n_jobs == 1
                              else run_joblib(function, tasks, n_jobs))
    chunks, caught = {0: first}, Counter(messages)
    with tqdm(total=rows.shape[0], initial=1, desc="randomization", unit="assignment",
              file=sys.stderr, disable=not progress) as bar:
        for index, values, found in results:
            chunks[index] = values
            caught.update(found)
            bar.update(values.shape[0])
    return np.concatenate([chunks[i] for i in sorted(chunks)]), caught


def _curves(values: np.ndarray, refit: _Refit, codes: np.ndarray, caught: Caught) -> _Curves:
    """Return the exact curves in the shift, checked on the observed assignment.

    The fast re-assigned panel is checked against a validated one; linearity in the outcome
    against a refit at ``2h``. Warnings of the checks are added to ``caught``.
    """
    est, var, h = values[:, :, 0, :], values[:, :, 1, :] ** 2, refit.h
    with warnings.catch_warnings(record=True) as found:
        warnings.simplefilter("always")
        full = refit.values(codes, 0.0, validate=True)
        shifted = refit.values(codes, 2 * h) if values.shape[1] == 3 else None
    caught.update((w.category, str(w.message)) for w in found)
    scale = 1 + np.abs(values[0, 0])
    if not np.allclose(full, values[0, 0], rtol=1e-9, atol=1e-9 * np.nanmax(scale), equal_nan=True):
        raise EvaluationError("internal check failed: the re-assigned panel differs from a "
                              "validated one; please report this.")
    nan = np.full_like(est[:, 0], np.nan)
    flat = _Curves(est[:, 0], nan, var[:, 0], nan, nan)
    if shifted is None:
        return flat
    curves = _Curves(est[:, 0], (est[:, 1] - est[:, 2]) / (2 * h), var[:, 0],
                     (var[:, 1] - var[:, 2]) / (2 * h),
                     (var[:, 1] + var[:, 2] - 2 * var[:, 0]) / (2 * h**2))
    predicted = np.stack([curves.est[0] + 2 * h * curves.slope[0],
                          np.sqrt(np.maximum(curves.var0[0] + 2 * h * curves.var1[0]
                                             + 4 * h**2 * curves.var2[0], 0.0))])
    linear = np.nanmax(np.abs(shifted - predicted) / scale, initial=0.0) <= 1e-6
    if not linear:
        caught[(UserWarning, f"{refit.estimator} is not linear in the outcome: the intervals "
                             "by test inversion are left NaN.")] += 1
    return curves if linear else flat


def _interval(curves: _Curves, k: int, alpha: float, studentised: bool, exact: bool,
              scale: float) -> tuple[float, float]:
    """Return the endpoints of ``{tau : p(tau) > alpha}`` around the estimate of term ``k``."""
    slope = curves.slope[0, k]
    if not np.isfinite(slope) or abs(slope) < 1e-8:
        return np.nan, np.nan
    center = -curves.est[0, k] / slope

    def accepted(tau: float) -> bool:
        return bool(curves.p_values(tau, studentised, exact)[k] > alpha)

    if not accepted(center):
        return np.nan, np.nan
    ends = []
    for direction in (-1.0, 1.0):
        inner, outer, step = center, np.inf * direction, scale
        while step <= 1e6 * scale:
            if not accepted(center + direction * step):
                outer = center + direction * step
                break
            inner, step = center + direction * step, 2 * step
        while np.isfinite(outer) and abs(outer - inner) > 1e-9 * scale:
            middle = (inner + outer) / 2
            inner, outer = (middle, outer) if accepted(middle) else (inner, middle)
        ends.append((inner + outer) / 2 if np.isfinite(outer) else outer)
    return ends[0], ends[1]


def _result(refit: _Refit, curves: _Curves, values: np.ndarray, codes: np.ndarray,
            labels: list[Any], name: str, distinct: int, exact: bool, statistic: str,
            seed: int | None, caught: Caught) -> RandomizationResult:
    """Assemble the result: p-values at no shift and the inverted intervals per term."""
    studentised = statistic == "t"
    stats = curves.statistics(0.0, studentised)
    p = curves.p_values(0.0, studentised, exact)
    rows = []
    for k, (kind, event) in enumerate(refit.terms):
        est, se = values[0, 0, :, k]
        scale = se if np.isfinite(se) and se > 0 else max(abs(est), 1.0)
        lower, upper = _interval(curves, k, refit.alpha, studentised, exact, scale)
        rows.append({"term": "overall" if kind == "overall" else str(event),
                     "event_time": event, "estimate": est, "std_error": se,
                     "statistic": stats[0, k], "p_value": p[k], "ci_lower": lower,
                     "ci_upper": upper})
    table = pd.DataFrame(rows)
    table["event_time"] = pd.Series([r["event_time"] for r in rows], dtype=object)
    counts = np.bincount(codes, minlength=len(labels))
    refits = values.shape[0] * values.shape[1] + (2 if values.shape[1] == 3 else 1)  # + checks
    return RandomizationResult(
        table=table, estimator=refit.estimator, aggregation=refit.aggregate,
        statistic=statistic, permutations=values.shape[0] - 1, exact=exact,
        alpha=refit.alpha, assignment=name, n_assignment_units=codes.size,
        treated_per_cohort={label: int(c) for label, c in zip(labels, counts, strict=True)},
        distinct_assignments=distinct, distribution=stats[1:],
        seed=None if exact else seed,
        warnings=[f"{category.__name__}: {message} ({n} of {refits} refits)"
                  for (category, message), n in caught.items()],
        info={"estimator options": dict(refit.options)} if refit.options else {},
        curves=curves)
