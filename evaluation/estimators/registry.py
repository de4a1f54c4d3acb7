"""The estimator registry: command-line name -> class, with what each estimator supports.

``evaluation estimate``, :func:`estimate_table`, :func:`~evaluation.estimators.compare_estimators`
and the command-line help all read :data:`REGISTRY`. Adding an estimator is one module with
its class plus one :func:`register` call below (or in user code)::

    register(EstimatorEntry(
        name="mine", target="mypackage.mine:MyEstimator", label="My estimator",
        aggregations=("none", "event"), comparison={}))

An estimator class is a dataclass of options (validated in ``__post_init__`` with
:func:`evaluation.options.validate_fields`) whose ``fit(panel)`` returns an
:class:`~evaluation.estimators.results.EstimationResult`.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from evaluation.errors import InvalidOptionError, PanelError
from evaluation.estimators.results import ESTIMATE_COLUMNS, EstimationResult
from evaluation.options import check_option
from evaluation.panel import Panel

#: Every value of ``--aggregate`` (what each one means is in :func:`estimate_table`).
AGGREGATIONS = ("none", "simple", "event", "group", "calendar")


@dataclass(frozen=True)
class EstimatorEntry:
    """What the registry knows about one estimator.

    Attributes
    ----------
    name
        Command-line name (``--estimator NAME``).
    target
        ``"module:Class"`` of the estimator class, imported on first use.
    label
        Human-readable name (plots, help).
    aggregations
        Values of ``--aggregate`` the estimator supports.
    options
        Table options it accepts (``control``, ``method``, ``se`` ...) mapped to the name of
        its constructor argument; ``covariates`` and ``weights`` map to None (they are panel
        columns, not constructor arguments).
    by_aggregation
        Constructor arguments an aggregation implies (e.g. TWFE's ``dynamic=True`` for
        ``event``).
    aggregate_after_fit
        Aggregations computed from the fitted result by ``result.aggregate(kind)`` (CS).
    overall_only
        Aggregations that keep only the result's overall row (BJS ``simple``).
    comparison
        Constructor arguments of the estimator's event study in
        :func:`~evaluation.estimators.compare_estimators` (None: not compared), or a
        function of the panel returning them.
    compared_by_default
        Part of ``compare_estimators``' default set (else only when asked for by name).
    event_time_offset
        Added to the result's ``event_time`` to put it on the comparison's scale (0 = the
        first treated period, -1 the reference period).
    description
        One line for the command-line help.
    """

    name: str
    target: str
    label: str
    aggregations: tuple[str, ...]
    options: Mapping[str, str | None] = field(default_factory=dict)
    by_aggregation: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    aggregate_after_fit: tuple[str, ...] = ()
    overall_only: tuple[str, ...] = ()
    comparison: Mapping[str, Any] | Callable[[Panel], Mapping[str, Any]] | None = None
    compared_by_default: bool = True
    event_time_offset: int = 0
    description: str = ""

    def load(self) -> type:
        """Import and return the estimator class."""
        module, _, name = self.target.partition(":")
        return getattr(importlib.import_module(module), name)

    def check(self, aggregate: str, options: Mapping[str, Any]) -> None:
        """Raise :class:`InvalidOptionError` for an aggregation or option it does not support."""
        if aggregate not in self.aggregations:
            raise InvalidOptionError(
                f"--aggregate {aggregate} is not available for {self.name} ({self.label}); "
                f"use one of {', '.join(self.aggregations)}.")
        unknown = [key for key, value in options.items()
                   if value not in (None, (), []) and key not in self.options]
        if unknown:
            accepted = ", ".join(sorted(self.options)) or "none besides alpha"
            raise InvalidOptionError(
                f"{self.name} ({self.label}) does not use "
                f"{', '.join('--' + k.replace('_', '-') for k in unknown)}; its options are "
                f"{accepted}. Drop them or choose an estimator that uses them.")

    def build(self, aggregate: str = "none", alpha: float = 0.05, **options: Any) -> Any:
        """Return the estimator configured for ``aggregate`` and ``options``."""
        self.check(aggregate, options)
        arguments = {self.options[key]: value for key, value in options.items()
                     if value is not None and self.options.get(key) is not None}
        arguments.update(self.by_aggregation.get(aggregate, {}))
        return self.load()(alpha=alpha, **arguments)

    def estimate(self, panel: Panel, aggregate: str = "none", alpha: float = 0.05,
                 **options: Any) -> EstimationResult:
        """Fit on ``panel`` and aggregate as ``aggregate`` asks."""
        return self.aggregated(self.build(aggregate, alpha, **options).fit(panel), aggregate)

    def aggregated(self, result: EstimationResult, aggregate: str) -> EstimationResult:
        """Turn a fitted result into the ``aggregate`` the estimator reports."""
        if aggregate in self.aggregate_after_fit:
            return result.aggregate(aggregate)
        if aggregate in self.overall_only:
            result.table = result.table.iloc[0:0]
        return result


#: The registered estimators by command-line name, in the order of the help and plots.
REGISTRY: dict[str, EstimatorEntry] = {}


def register(entry: EstimatorEntry, *, replace: bool = False) -> EstimatorEntry:
    """Add ``entry`` to :data:`REGISTRY` (``replace=True`` to redefine a name)."""
    if entry.name in REGISTRY and not replace:
        raise InvalidOptionError(f"an estimator named {entry.name!r} is already registered; "
                                 "pass replace=True to redefine it.")
    unknown = [a for a in entry.aggregations if a not in AGGREGATIONS]
    if unknown:
        raise InvalidOptionError(f"aggregations {unknown} of {entry.name!r} are not among "
                                 f"{', '.join(AGGREGATIONS)}.")
    REGISTRY[entry.name] = entry
    return entry


def unregister(name: str) -> None:
    """Remove an estimator from :data:`REGISTRY` (no error if absent)."""
    REGISTRY.pop(name, None)


def get_estimator(name: str) -> EstimatorEntry:
    """Return the registry entry of ``name``.

    Raises
    ------
    InvalidOptionError
        If no estimator of that name is registered (the message lists the names).
    """
    if name not in REGISTRY:
        raise InvalidOptionError(f"estimator {name!r} is not available; use one of "
                                 f"{', '.join(REGISTRY)}.")
    return REGISTRY[name]


_CS_OPTIONS = {"control": "control_group", "method": "method", "base_period": "base_period",
               "anticipation": "anticipation", "se": "se", "draws": "draws", "seed": "seed",
               "wild_weights": "bootstrap_weights", "critical_values": "critical_values",
               "covariates": None, "weights": None}
#: Few-cluster inference options of the regression-based estimators (TWFE, BJS, two-stage).
_REGRESSION_INFERENCE = {"se": "se", "draws": "draws", "seed": "seed",
                         "wild_weights": "wild_weights", "wild_null": "wild_null"}
_STATUS = {"none": {"dynamic": False}, "simple": {"dynamic": False}, "event": {"dynamic": True}}


def dcdh_comparison(panel: Panel) -> dict[str, int]:
    r"""Effects and placebos of the dcdh event study that ``panel`` can support.

    Notes
    -----
    With first-switch positions :math:`F_g` on the grid ``0..T-1``: effects
    :math:`\ell = 1, \dots, T - \min_g F_g` (the earliest switchers' periods from their
    switch on) and placebos :math:`1, \dots, \min(\max_g F_g - 1, L)`. Effect
    :math:`\ell` is the effect in the :math:`\ell`-th period of treatment (event time
    :math:`\ell - 1`); placebo :math:`k` compares period :math:`F_g - 1 - k` with
    :math:`F_g - 1` (event time :math:`-k - 1` against the reference :math:`-1`).
    Horizons the data do not support come back as NaN rows with a warning.
    """
    first = panel.unit_cohort[~np.isnan(panel.unit_cohort)]
    if first.size == 0:
        raise PanelError("no unit is ever treated: there is no event study to compare.")
    effects = max(int(panel.n_periods - first.min()), 1)
    return {"effects": effects, "placebo": max(min(int(first.max()) - 1, effects), 0)}


register(EstimatorEntry(
    "cs", "evaluation.estimators.callaway_santanna:CallawaySantAnna", "Callaway-Sant'Anna",
    AGGREGATIONS, _CS_OPTIONS, aggregate_after_fit=("simple", "event", "group", "calendar"),
    comparison={"base_period": "universal"},
    description="group-time ATT(g,t) and their aggregations (R did)"))
register(EstimatorEntry(
    "sa", "evaluation.estimators.sun_abraham:SunAbraham", "Sun-Abraham", ("none", "event"),
    {"small_sample": "small_sample", "weights": None, **_REGRESSION_INFERENCE}, comparison={},
    description="interaction-weighted event study (fixest sunab)"))
register(EstimatorEntry(
    "bjs", "evaluation.estimators.imputation:ImputationDiD", "Imputation (BJS)",
    ("none", "simple", "event"), {"weights": None, **_REGRESSION_INFERENCE},
    overall_only=("simple",), comparison={},
    description="Borusyak-Jaravel-Spiess imputation: event-time and overall effects"))
register(EstimatorEntry(
    "did2s", "evaluation.estimators.imputation:TwoStageDiD", "Two-stage (Gardner)",
    ("none", "simple", "event"), {"weights": None, **_REGRESSION_INFERENCE},
    by_aggregation=_STATUS, comparison={"dynamic": True},
    description="Gardner's two-stage DiD: static (none, simple) or dynamic (event)"))
register(EstimatorEntry(
    "twfe", "evaluation.estimators.did:TwoWayFixedEffects", "Dynamic TWFE",
    ("none", "simple", "event"),
    {"small_sample": "small_sample", "weights": None, **_REGRESSION_INFERENCE},
    by_aggregation=_STATUS, comparison={"dynamic": True},
    description="two-way fixed effects: static (none, simple) or event study (event)"))
register(EstimatorEntry(
    "dcdh", "evaluation.estimators.dcdh:ChaisemartinDHaultfoeuille",
    "de Chaisemartin-D'Haultfoeuille", ("none", "event"),
    {"effects": "effects", "placebo": "placebo", "normalized": "normalized",
     "switchers": "switchers", "se": "se", "draws": "draws", "seed": "seed",
     "covariates": None, "weights": None},
    comparison=dcdh_comparison, compared_by_default=False,
    event_time_offset=-1,
    description="DID_l after the first switch of a treatment that switches on and off "
                "(did_multiplegt_dyn); needs the status column (treatment=)"))


def estimate_table(
    data: pd.DataFrame,
    *,
    unit: str,
    time: str,
    cohort: str | None = None,
    outcome: str,
    treatment: str | None = None,
    window: str | None = None,
    never_treated: object = float("nan"),
    covariates: Sequence[str] = (),
    estimator: str = "cs",
    aggregate: str = "none",
    cluster: str | None = None,
    weights: str | None = None,
    alpha: float = 0.05,
    **options: Any,
) -> pd.DataFrame:
    """Validate the panel, run a registered estimator and return rows with ESTIMATE_COLUMNS.

    Parameters
    ----------
    data
        Long panel.
    unit, time, cohort, outcome, never_treated, cluster
        Roles of the :class:`~evaluation.panel.Panel`.
    treatment
        Optional 0/1 treatment-status column (the Panel's ``status``; with it ``cohort`` may
        be omitted). Estimators that assume absorbing treatment refuse a status that
        switches off (:class:`~evaluation.errors.NonAbsorbingTreatmentError`).
    window
        ``"first-spell"``: estimate on each unit's first treatment spell
        (:meth:`~evaluation.panel.Panel.restrict_to_first_spell`); None: the whole panel.
    covariates, weights
        Covariate columns and a sampling-weight column (estimators that use them).
    estimator
        Registered name (:data:`REGISTRY`).
    aggregate
        ``"none"``: the ATT(g,t) of Callaway and Sant'Anna, the event-time effects of SA
        and BJS, or the static TWFE / two-stage coefficient; ``"simple"``: the overall
        effect; ``"event"``: event-time effects (the dynamic TWFE / two-stage model);
        ``"group"`` and ``"calendar"``: CS aggregations by cohort and by period.
    alpha
        Significance level.
    **options
        Estimator options by table name (``control``, ``method``, ``base_period``,
        ``anticipation``, ``se``, ``draws``, ``seed``, ``small_sample``); None means "not
        given". An option the estimator does not use raises :class:`InvalidOptionError`.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`~evaluation.estimators.results.ESTIMATE_COLUMNS`, plus ``df`` when
        intervals use a :math:`t_{df}` reference distribution (e.g. ``se="cr2"``).
    """
    entry = get_estimator(estimator)
    randomization = options.get("se") == "randomization"
    if randomization:
        options = {**options, "se": None}
        _check_randomization(estimator, aggregate, cluster)
    entry.check(aggregate, {**options, "covariates": list(covariates), "weights": weights})
    check_option("window", window, (None, "first-spell"))
    panel = Panel(data, unit=unit, time=time, outcome=outcome, cohort=cohort,
                  status=treatment, never_treated=never_treated,
                  covariates=list(covariates), cluster=cluster, weights=weights)
    if window == "first-spell":
        panel = panel.restrict_to_first_spell()
    frame = entry.estimate(panel, aggregate, alpha, **options).to_frame()
    table = frame[ESTIMATE_COLUMNS + (["df"] if "df" in frame else [])]
    if randomization:
        table = _with_randomization(table, panel, estimator, aggregate, alpha, options)
    return table


def _check_randomization(estimator: str, aggregate: str, cluster: str | None) -> None:
    """Refuse randomization inference where it is not defined, naming the fix."""
    if cluster is None:
        raise InvalidOptionError(
            "se='randomization' re-assigns treatment across the units of assignment named by "
            "--cluster (e.g. the trial area); pass cluster=<column>.")
    if aggregate not in ("simple", "event"):
        raise InvalidOptionError(
            f"se='randomization' tests the overall or event-time effects; use aggregate="
            f"'simple' or 'event' (not {aggregate!r}) with {estimator}.")


def _with_randomization(table: pd.DataFrame, panel: Panel, estimator: str, aggregate: str,
                        alpha: float, options: Mapping[str, Any]) -> pd.DataFrame:
    """Replace the p-values and intervals of ``table`` by randomization inference.

    Assignments are permuted across the panel's clusters
    (:func:`~evaluation.inference.randomization.randomization_inference`, ``draws``
    permutations, seeded); the estimates and standard errors stay the estimator's own.
    """
    from evaluation.inference.randomization import randomization_inference

    chosen = {k: v for k, v in options.items() if v is not None}
    permutations, seed = chosen.pop("draws", 999), chosen.pop("seed", None)
    chosen.pop("se", None)
    result = randomization_inference(panel, estimator, aggregate=aggregate,
                                     permutations=permutations, seed=seed, alpha=alpha,
                                     progress=False, **chosen)
    inference = result.to_frame().set_index("term")
    # the summary row is "ATT" (static TWFE, two-stage) or "overall"; event rows by event time
    terms = table["term"].where(table["term"].isin(inference.index), "overall")
    matched = inference.reindex(terms)
    if not np.allclose(matched["estimate"], table["estimate"], rtol=1e-9, atol=1e-12,
                       equal_nan=True):
        raise RuntimeError("randomization inference re-estimated different effects than the "
                           "estimator's table; please report this.")
    out = table.copy()
    for column in ("p_value", "ci_lower", "ci_upper"):
        out[column] = matched[column].to_numpy(dtype=float)
    return out


def comparable(default_only: bool = False) -> tuple[str, ...]:
    """Names of the registered estimators that have an event study to compare.

    With ``default_only``, those :func:`compare_estimators` runs when not told which.
    """
    return tuple(name for name, entry in REGISTRY.items() if entry.comparison is not None
                 and (entry.compared_by_default or not default_only))


def run_event_study(name: str, panel: Panel, alpha: float = 0.05) -> EstimationResult:
    """Run the event study of estimator ``name`` as :func:`compare_estimators` shows it.

    Warnings are recorded on the result (``result.warnings``) and issued again, so a caller
    can both see them and find them next to the number they affect.
    """
    entry = get_estimator(name)
    if entry.comparison is None:
        raise InvalidOptionError(f"{name} has no event study to compare; use one of "
                                 f"{', '.join(comparable())}.")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        options = (entry.comparison(panel) if callable(entry.comparison)
                   else entry.comparison)
        fitted = entry.load()(alpha=alpha, **options).fit(panel)
        result = entry.aggregated(fitted, "event")
    for item in caught:
        line = f"{item.category.__name__}: {item.message}"
        if line not in result.warnings:  # some estimators record their warnings themselves
            result.warnings.append(line)
        warnings.warn_explicit(item.message, item.category, item.filename, item.lineno)
    return result
