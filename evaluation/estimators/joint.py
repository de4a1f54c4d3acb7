r"""Joint inference on estimates of several outcomes of the same units.

Effects on different outcomes of the same people (say the state's and the municipality's
subsidy costs) are correlated, because the same units enter both. Each
:class:`~evaluation.estimators.results.EstimationResult` that keeps its influence functions
(``influence``, ``cluster``, ``units``) can be stacked with others fitted on the same units:
:func:`joint_covariance` returns the clustered covariance of all their estimates at once,
and :func:`share_of_total` uses it for the share :math:`a / (a + b)` of one effect in the sum
of two, with a delta-method standard error and a Fieller confidence set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri, stdtr, stdtrit

from evaluation.errors import InvalidOptionError
from evaluation.estimators._inference import influence_covariance
from evaluation.estimators.results import EstimationResult
from evaluation.options import check_option
from evaluation.protocol import ResultMixin, Summary, new_axes

if TYPE_CHECKING:
    from matplotlib.axes import Axes

#: Columns of :meth:`ShareOfTotal.to_frame`.
SHARE_COLUMNS = ["term", "event_time", "quantity", "estimate", "std_error", "ci_lower",
                 "ci_upper", "p_value", "interval"]
PlotKind = Literal["auto", "share", "effects"]


def _stacked_influence(results: Sequence[EstimationResult]) -> tuple[np.ndarray,
                                                                      np.ndarray | None]:
    """Influence functions of ``results`` side by side, and their common cluster codes."""
    if len(results) == 0:
        raise InvalidOptionError("joint_covariance needs at least one result.")
    for i, result in enumerate(results):
        if result.influence is None or result.units is None:
            raise InvalidOptionError(
                f"result {i} ({result.estimator}, {result.aggregation}) keeps no influence "
                "functions or unit ids; joint inference needs Callaway-Sant'Anna results "
                "(CallawaySantAnna().fit(panel) and its aggregate(...)).")
        n_columns = len(result.table) + (0 if result.overall is None else len(result.overall))
        if result.influence.shape != (len(result.units), n_columns):
            raise InvalidOptionError(
                f"result {i} has influence functions of shape {result.influence.shape} for "
                f"{len(result.units)} units and {n_columns} estimates.")
    first = results[0]
    for i, result in enumerate(results[1:], start=1):
        if len(result.units) != len(first.units) or not np.array_equal(result.units,
                                                                         first.units):
            differ = np.setdiff1d(np.union1d(first.units, result.units),
                                  np.intersect1d(first.units, result.units))
            what = (f"{differ.size} units are in only one of them (e.g. {differ[0]!r})"
                    if differ.size else "the same units come in a different order")
            raise InvalidOptionError(
                f"results 0 and {i} were estimated on different units ({len(first.units)} vs "
                f"{len(result.units)}; {what}); fit every outcome on the same panel rows "
                "(an outcome with missing values drops units from the balanced panel).")
        if (first.cluster is None) != (result.cluster is None) or (
                first.cluster is not None
                and not np.array_equal(first.cluster, result.cluster)):
            raise InvalidOptionError(
                f"results 0 and {i} cluster the same units differently; use the same "
                "cluster column for every outcome.")
    return np.hstack([r.influence for r in results]), first.cluster


def joint_covariance(results: Sequence[EstimationResult]) -> np.ndarray:
    r"""Clustered covariance of the estimates of several results on the same units.

    Parameters
    ----------
    results
        Results that keep their influence functions (Callaway-Sant'Anna fits and their
        aggregations), all estimated on the same units in the same order and with the
        same clusters.

    Returns
    -------
    numpy.ndarray
        Square matrix over the estimates of all results in order; within a result, its
        ``table`` rows and then its ``overall`` row (the rows of ``to_frame()``).

    Raises
    ------
    InvalidOptionError
        When a result keeps no influence functions, or the units or clusters differ.

    Notes
    -----
    With :math:`\psi^{(r)}_i` the influence functions of result :math:`r` for unit
    :math:`i`, stack :math:`\psi_i = (\psi^{(1)\prime}_i, \dots, \psi^{(R)\prime}_i)'` and

    .. math::

        \hat V = \frac{1}{n^2} \sum_{c} S_c S_c^\prime, \qquad
        S_c = \sum_{i \in c} \psi_i,

    the covariance each result computes for itself
    (:func:`~evaluation.estimators._inference.influence_covariance`); its diagonal blocks
    are the results' own analytic covariances, the off-diagonal blocks their covariances
    across outcomes. The analytic covariance is used even when a result's standard errors
    come from the bootstrap.
    """
    influence, cluster = _stacked_influence(results)
    return influence_covariance(influence, cluster)


@dataclass(frozen=True)
class FiellerSet:
    r"""A Fieller confidence set for a ratio: an interval, two rays or the whole line.

    Attributes
    ----------
    kind
        ``"bounded"`` (the interval ``[lower, upper]``), ``"two rays"`` (everything outside
        the open interval ``(lower, upper)``) or ``"whole line"`` (every value).
    lower, upper
        Interval limits (for ``"two rays"`` the ends of the excluded gap; NaN for the
        whole line).
    """

    kind: Literal["bounded", "two rays", "whole line"]
    lower: float = float("nan")
    upper: float = float("nan")

    @property
    def bounded(self) -> bool:
        """Whether the set is a finite interval."""
        return self.kind == "bounded"

    @property
    def limits(self) -> tuple[float, float]:
        """``(lower, upper)`` of a bounded set, ``(-inf, inf)`` otherwise."""
        return (self.lower, self.upper) if self.bounded else (-np.inf, np.inf)

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies in the set."""
        if self.kind == "bounded":
            return bool(self.lower <= value <= self.upper)
        if self.kind == "two rays":
            return bool(value <= self.lower or value >= self.upper)
        return True

    def as_text(self, scale: float = 1.0, fmt: str = "{:+.3g}") -> str:
        """Describe the set in words, its limits multiplied by ``scale``."""
        low, high = fmt.format(scale * self.lower), fmt.format(scale * self.upper)
        if self.kind == "bounded":
            return f"[{low}, {high}]"
        if self.kind == "two rays":
            return f"unbounded: (-inf, {low}] and [{high}, +inf)"
        return "unbounded: the whole real line"


def critical_value(alpha: float, df: float | None = None) -> float:
    """Two-sided critical value: normal, or :math:`t_{df}` when ``df`` is given."""
    if df is None or not np.isfinite(df):
        return float(ndtri(1 - alpha / 2))
    return float(stdtrit(df, 1 - alpha / 2))


def two_sided_p(t: float, df: float | None = None) -> float:
    """Two-sided p-value of ``t``: normal, or :math:`t_{df}` when ``df`` is given."""
    if df is None or not np.isfinite(df):
        return float(2 * ndtr(-abs(t)))
    return float(2 * stdtr(df, -abs(t)))


def fieller_set(a: float, d: float, v_aa: float, v_ad: float, v_dd: float,
                alpha: float = 0.05, df: float | None = None) -> FiellerSet:
    r"""Fieller confidence set of the ratio :math:`\theta = a / d`.

    Parameters
    ----------
    a, d
        Estimates of numerator and denominator.
    v_aa, v_ad, v_dd
        Their variances and covariance.
    alpha
        One minus the confidence level.

    Returns
    -------
    FiellerSet
        Bounded exactly when :math:`\hat d^2 / v_{dd} > z^2`, i.e. when the denominator
        differs significantly from zero at level ``alpha``.

    Notes
    -----
    The set collects every :math:`\theta_0` that the test of
    :math:`a - \theta_0 d = 0` does not reject:

    .. math::

        (\hat a - \theta_0 \hat d)^2 \le z^2 (v_{aa} - 2\theta_0 v_{ad} + \theta_0^2 v_{dd}),
        \qquad z = \Phi^{-1}(1 - \alpha/2),

    i.e. :math:`A\theta_0^2 + B\theta_0 + C \le 0` with :math:`A = \hat d^2 - z^2 v_{dd}`,
    :math:`B = -2(\hat a\hat d - z^2 v_{ad})`, :math:`C = \hat a^2 - z^2 v_{aa}`. For
    :math:`A > 0` it is the interval between the roots; for :math:`A \le 0` it is
    unbounded: two rays outside the roots when :math:`B^2 - 4AC > 0`, else the whole line.
    Unlike the delta method its coverage does not depend on the denominator being far
    from zero (Fieller 1954).
    """
    z2 = critical_value(alpha, df) ** 2
    qa, qb, qc = d * d - z2 * v_dd, -2 * (a * d - z2 * v_ad), a * a - z2 * v_aa
    disc = qb * qb - 4 * qa * qc
    if not np.isfinite([qa, qb, qc]).all():
        return FiellerSet("whole line")
    if qa > 0:
        root = np.sqrt(max(disc, 0.0))
        return FiellerSet("bounded", (-qb - root) / (2 * qa), (-qb + root) / (2 * qa))
    if disc > 0 and qa < 0:
        root = np.sqrt(disc)
        low, high = sorted(((-qb + root) / (2 * qa), (-qb - root) / (2 * qa)))
        return FiellerSet("two rays", low, high)
    return FiellerSet("whole line")


def share_delta_se(a: float, b: float, vcov: np.ndarray) -> float:
    r"""Delta-method standard error of :math:`\theta = a / (a + b)`.

    Parameters
    ----------
    a, b
        The two estimates.
    vcov
        Their ``(2, 2)`` covariance matrix.

    Notes
    -----
    With :math:`d = a + b`, the gradient is
    :math:`\nabla\theta = (b / d^2,\; -a / d^2)'` and
    :math:`\widehat{se}(\hat\theta) = \sqrt{\nabla\theta' \hat V \nabla\theta}`, i.e.
    :math:`d^{-2}\sqrt{b^2 v_{aa} - 2ab\,v_{ab} + a^2 v_{bb}}`.
    """
    d = a + b
    if d == 0:
        return float("nan")
    gradient = np.array([b, -a]) / d**2
    return float(np.sqrt(max(gradient @ vcov @ gradient, 0.0)))


@dataclass
class ShareOfTotal(ResultMixin):
    r"""The share :math:`a / (a + b)` of one effect in the sum of two, term by term.

    Built by :func:`share_of_total`. Every term (an event time, or the overall row) has
    the two effects, their total and the share.

    Attributes
    ----------
    terms
        Term labels (those of ``to_frame()`` of the input results).
    event_time
        Event time of each term (None where the term is not an event time).
    estimates
        ``(n_terms, 2)`` estimates of ``part`` and ``other``.
    vcov
        ``(n_terms, 2, 2)`` joint covariance of the two estimates of each term.
    names
        Names of ``part``, ``other``, the total and the share.
    alpha
        One minus the confidence level.
    scale
        Multiplier of the share in ``to_frame()`` and ``plot()`` (100 for percent).
    fieller
        Fieller confidence set of the share (unscaled) of each term.
    df
        Degrees of freedom of a t reference distribution (None: normal), e.g. the
        :math:`G - 1` of the cluster jackknife; intervals, p-values and Fieller sets use it.
    """

    terms: list[str]
    event_time: list[float | None]
    estimates: np.ndarray
    vcov: np.ndarray
    names: tuple[str, str, str, str] = ("part", "other", "total", "share")
    alpha: float = 0.05
    scale: float = 1.0
    fieller: list[FiellerSet] = field(default_factory=list)
    df: float | None = None

    def __post_init__(self) -> None:
        if not self.fieller:
            self.fieller = [fieller_set(a, a + b, v[0, 0], v[0, 0] + v[0, 1],
                                        v.sum(), self.alpha, self.df)
                            for (a, b), v in zip(self.estimates, self.vcov, strict=True)]

    @property
    def share(self) -> np.ndarray:
        """Point estimates of the share, one per term."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.estimates[:, 0] / self.estimates.sum(axis=1)

    @property
    def bounded(self) -> np.ndarray:
        """Whether the share's Fieller set is a finite interval, one per term."""
        return np.array([f.bounded for f in self.fieller], dtype=bool)

    def to_frame(self) -> pd.DataFrame:
        """Tidy table: one row per term and quantity (part, other, total, share).

        Columns are :data:`SHARE_COLUMNS`. Effects have normal (or :math:`t_{df}`) intervals;
        the share
        (times ``scale``) has its delta-method standard error, its Fieller set in
        ``ci_lower, ci_upper`` (``-inf, inf`` when unbounded; ``interval`` describes the
        set exactly) and the p-value of share = 0 (the Fieller test, the same as the test
        of ``part`` = 0).
        """
        z = critical_value(self.alpha, self.df)
        rows = []
        for j, term in enumerate(self.terms):
            a, b = self.estimates[j]
            v = self.vcov[j]
            ses = np.sqrt([v[0, 0], v[1, 1], v.sum()])
            for name, value, se in zip(self.names[:3], (a, b, a + b), ses, strict=True):
                rows.append({"term": term, "event_time": self.event_time[j], "quantity": name,
                             "estimate": value, "std_error": se, "ci_lower": value - z * se,
                             "ci_upper": value + z * se,
                             "p_value": two_sided_p(value / se, self.df) if se > 0
                             else np.nan,
                             "interval": "normal" if self.df is None else f"t({self.df:g})"})
            fieller = self.fieller[j]
            low, high = fieller.limits
            rows.append({"term": term, "event_time": self.event_time[j],
                         "quantity": self.names[3], "estimate": self.scale * self.share[j],
                         "std_error": self.scale * share_delta_se(a, b, v),
                         "ci_lower": self.scale * low, "ci_upper": self.scale * high,
                         "p_value": rows[-3]["p_value"],
                         "interval": f"Fieller {fieller.as_text(self.scale)}"})
        return pd.DataFrame(rows, columns=SHARE_COLUMNS)

    def summary(self) -> Summary:
        """Return the table by term and quantity, with how to read an unbounded share."""
        frame = self.to_frame().dropna(axis=1, how="all").set_index(["term", "quantity"])
        level = f"{100 * (1 - self.alpha):g} %"
        notes = [f"share = {self.names[0]} / ({self.names[0]} + {self.names[1]}); standard "
                 "error by the delta method, confidence set by Fieller's method",
                 f"{level} intervals; covariances from the stacked influence functions of "
                 "both outcomes (clustered)"]
        unbounded = [t for t, ok in zip(self.terms, self.bounded, strict=True) if not ok]
        if unbounded:
            notes.append(f"the share is unbounded for {len(unbounded)} of {len(self.terms)} "
                         f"terms ({', '.join(unbounded[:5])}{' ...' if len(unbounded) > 5 else ''}"
                         f"): the total is not significantly different from zero, so the "
                         "data do not pin the share down; read the two effects instead")
        return Summary(f"Share of {self.names[0]} in {self.names[2]}", frame, tuple(notes))

    def plot(self, ax: Axes | None = None, *, kind: PlotKind = "auto") -> Axes:
        """Draw the share (or the two effects and their total) by term with their intervals.

        Parameters
        ----------
        ax
            Axes to draw on (a new figure when None).
        kind
            ``"share"``, ``"effects"`` (part, other and total) or ``"auto"``: the share when
            every drawn term's Fieller set is bounded, else the effects. Unbounded shares are
            drawn as open markers without an interval.

        Returns
        -------
        matplotlib.axes.Axes
            Event-time terms against event time (the overall row left out), other terms
            against their labels.
        """
        check_option("kind", kind, PlotKind)
        ax = new_axes(ax, (7, 3.5))
        keep = np.array([e is not None for e in self.event_time], dtype=bool)
        events = bool(keep.any())
        if not events:
            keep[:] = True
        x = (np.array([e for e in self.event_time if e is not None], dtype=float) if events
             else np.arange(keep.sum(), dtype=float))
        ok = self.bounded[keep]
        if kind == "auto":
            kind = "share" if ok.all() else "effects"
        frame = self.to_frame()
        if kind == "share":
            share = frame[frame["quantity"] == self.names[3]][keep]
            est = share["estimate"].to_numpy()
            low, high = share["ci_lower"].to_numpy(), share["ci_upper"].to_numpy()
            ax.errorbar(x[ok], est[ok], yerr=[est[ok] - low[ok], high[ok] - est[ok]], fmt="o",
                        markersize=4, capsize=2, color="C0",
                        label=f"{self.names[3]} (Fieller {100 * (1 - self.alpha):g} % CI)")
            if (~ok).any():
                ax.plot(x[~ok], est[~ok], "o", mfc="none", color="C0",
                        label="unbounded confidence set")
            _clip_to_estimates(ax, est, low[ok], high[ok])
            ax.set_ylabel(self.names[3])
        else:
            for i, name in enumerate(self.names[:3]):
                rows = frame[frame["quantity"] == name][keep]
                est = rows["estimate"].to_numpy()
                ax.errorbar(x + (i - 1) * 0.2, est,
                            yerr=[est - rows["ci_lower"], rows["ci_upper"] - est], fmt="o",
                            markersize=3, capsize=1.5, color=f"C{i}", label=name)
            ax.set_ylabel("effect")
        ax.axhline(0, color="0.4", linewidth=0.8)
        if events:
            ax.set_xlabel("event time")
        else:
            ax.set_xticks(x, self.terms, rotation=45, ha="right")  # every term is kept
        ax.legend(fontsize=7, frameon=False, ncol=2)
        ax.grid(alpha=0.3)
        return ax


def _clip_to_estimates(ax: Axes, estimates: np.ndarray, low: np.ndarray,
                       high: np.ndarray) -> None:
    """Limit the y-axis to the intervals, but to no more than twice the estimates' spread.

    Fieller limits far out (a total barely significant) would otherwise flatten the
    estimates into a line; the cut intervals run off the axes.
    """
    finite = estimates[np.isfinite(estimates)]
    if finite.size == 0:
        return
    lo, hi = finite.min(), finite.max()
    spread = max(hi - lo, 0.25 * max(abs(lo), abs(hi)), 1e-9)
    bottom = min(lo, *low[np.isfinite(low)]) if low.size else lo
    top = max(hi, *high[np.isfinite(high)]) if high.size else hi
    bottom, top = max(bottom, lo - 2 * spread), min(top, hi + 2 * spread)
    pad = 0.05 * (top - bottom)
    ax.set_ylim(bottom - pad, top + pad)


def share_of_total(part: EstimationResult, other: EstimationResult, *,
                   names: tuple[str, str] = ("part", "other"), total_name: str | None = None,
                   share_name: str | None = None, scale: float = 1.0,
                   alpha: float | None = None) -> ShareOfTotal:
    r"""Estimate the share of ``part`` in ``part + other`` for every term of two results.

    Parameters
    ----------
    part, other
        Results of the same estimator and aggregation on two outcomes of the same units
        (e.g. ``fit.aggregate("event")`` of the municipal and of the state costs); their
        terms (rows of ``to_frame()``, including the overall row) must agree.
    names
        Names of the two effects.
    total_name, share_name
        Names of their sum and of the share (default ``"<part> + <other>"`` and
        ``"share of <part>"``).
    scale
        Multiplier of the share in tables and plots (100 for percent).
        Intervals use the results' ``info["df"]`` (a t reference distribution, e.g. of the
        cluster jackknife) when they have one.
    alpha
        One minus the confidence level (default: ``part.alpha``).

    Returns
    -------
    ShareOfTotal
        Effects, total and share per term, with ``summary()``, ``to_frame()`` and
        ``plot()``.

    Raises
    ------
    InvalidOptionError
        When the terms differ, or the units, clusters or influence functions do not allow
        joint inference (see :func:`joint_covariance`).

    Notes
    -----
    For each term, with :math:`\hat a` (``part``), :math:`\hat b` (``other``) and their
    joint covariance :math:`\hat V` from :func:`joint_covariance`:

    .. math::

        \hat\theta = \frac{\hat a}{\hat a + \hat b}, \qquad
        \widehat{se}(\hat\theta) = \frac{\sqrt{\hat b^2 v_{aa} - 2\hat a\hat b\, v_{ab}
          + \hat a^2 v_{bb}}}{(\hat a + \hat b)^2}
        \quad\text{(delta method)},

    and the Fieller set :math:`\{\theta_0 : (\hat a - \theta_0 \hat d)^2 \le
    z^2\,\mathrm{Var}(\hat a - \theta_0 \hat d)\}` with :math:`\hat d = \hat a + \hat b`,
    :math:`v_{dd} = v_{aa} + 2v_{ab} + v_{bb}` and :math:`v_{ad} = v_{aa} + v_{ab}`
    (:func:`fieller_set`). The Fieller set is a bounded interval exactly when the total
    differs significantly from zero; otherwise the data do not bound the share and the
    two effects are the answer. The delta-method interval
    :math:`\hat\theta \pm z\,\widehat{se}` is reliable only when the total is many
    standard errors from zero.
    """
    part_frame, other_frame = part.to_frame(), other.to_frame()
    terms = part_frame["term"].astype(str).tolist()
    other_terms = other_frame["term"].astype(str).tolist()
    if terms != other_terms:
        raise InvalidOptionError(
            f"the two results have different terms ({terms[:4]}... vs {other_terms[:4]}...); "
            "aggregate both fits the same way (same kind, min_e, max_e, balance_e).")
    vcov = joint_covariance([part, other])
    k = len(terms)
    idx = np.arange(k)
    pairs = np.stack([np.stack([vcov[idx, idx], vcov[idx, idx + k]], axis=-1),
                      np.stack([vcov[idx + k, idx], vcov[idx + k, idx + k]], axis=-1)],
                     axis=1)
    first, second = names
    return ShareOfTotal(
        terms=terms,
        event_time=[None if e is None or pd.isna(e) else e for e in part_frame["event_time"]],
        estimates=np.column_stack([part_frame["estimate"], other_frame["estimate"]]),
        vcov=pairs, names=(first, second, total_name or f"{first} + {second}",
                           share_name or f"share of {first}"),
        alpha=part.alpha if alpha is None else alpha, scale=scale, df=_common_df(part, other))


def _common_df(part: EstimationResult, other: EstimationResult) -> float | None:
    """Degrees of freedom both results use (None: normal), refusing a mix."""
    df, other_df = part.info.get("df"), other.info.get("df")
    if df != other_df:
        raise InvalidOptionError(
            f"the two results use different reference distributions (df {df} and "
            f"{other_df}); fit both outcomes with the same se= and clusters.")
    return None if df is None else float(df)
