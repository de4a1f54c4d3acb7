"""Result objects shared by all estimators.

Every estimator returns an :class:`EstimationResult` with the same small surface:
:meth:`~EstimationResult.summary` (text and HTML, never prints),
:meth:`~EstimationResult.to_frame` (a tidy table), :meth:`~EstimationResult.plot` (returns
the Axes) and ``_repr_html_`` for notebooks. Event-study results keep the full covariance
matrix of their coefficients for sensitivity analysis.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy.special import chdtrc, ndtr, ndtri, stdtr, stdtrit

from evaluation.protocol import ResultMixin, Summary, new_axes

if TYPE_CHECKING:
    from matplotlib.axes import Axes

#: Columns of :meth:`EstimationResult.to_frame` (and of the CLI's output file).
ESTIMATE_COLUMNS = ["estimator", "aggregation", "term", "group", "time", "event_time",
                    "estimate", "std_error", "ci_lower", "ci_upper", "p_value"]


def minimum_detectable_effect(std_error: np.ndarray | float, alpha: float = 0.05,
                              power: float = 0.80, df: np.ndarray | float | None = None
                              ) -> np.ndarray | float:
    r"""Smallest true effect a two-sided test of level ``alpha`` detects with ``power``.

    Parameters
    ----------
    std_error
        Standard error of the estimate.
    alpha, power
        Level of the test and the power wanted.
    df
        Degrees of freedom of a :math:`t` reference distribution (None or NaN: normal),
        e.g. the ``df`` column of a table with CR2 or cluster-jackknife intervals.

    Notes
    -----
    :math:`MDE = (z_{1-\alpha/2} + z_{power})\,\widehat{se}`; 2.80 standard errors for a
    5 % test with 80 % power (Bloom 1995). With :math:`\nu` degrees of freedom the
    quantiles are those of :math:`t_\nu` (3.01 standard errors with :math:`\nu = 14`).
    """
    normal = ndtri(1 - alpha / 2) + ndtri(power)
    if df is None:
        return normal * std_error
    nu = np.asarray(df, dtype=float)
    has = np.isfinite(nu) & (nu > 0)
    safe = np.where(has, nu, 1.0)
    factor = np.where(has, stdtrit(safe, 1 - alpha / 2) + stdtrit(safe, power), normal)
    out = factor * np.asarray(std_error, dtype=float)
    return float(out) if out.ndim == 0 else out


def normal_inference(estimate: np.ndarray, std_error: np.ndarray, alpha: float
                     ) -> dict[str, np.ndarray]:
    r"""Pointwise confidence limits and two-sided p-values under normality.

    Notes
    -----
    With :math:`z = \Phi^{-1}(1 - \alpha/2)`: :math:`\hat\theta \pm z\,\widehat{se}`
    and :math:`p = 2\,(1 - \Phi(|\hat\theta| / \widehat{se}))`.
    """
    estimate = np.asarray(estimate, dtype=float)
    std_error = np.asarray(std_error, dtype=float)
    z = ndtri(1 - alpha / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        p_value = 2 * ndtr(-np.abs(estimate / std_error))
    return {"ci_lower": estimate - z * std_error, "ci_upper": estimate + z * std_error,
            "p_value": p_value}


def table_inference(frame: pd.DataFrame, alpha: float) -> dict[str, np.ndarray]:
    r"""Confidence limits and p-values of a result table's rows.

    Normal (:func:`normal_inference`) by default; rows with a finite ``df`` use the
    :math:`t_{df}` distribution (:math:`\hat\theta \pm t_{df,1-\alpha/2}\,\widehat{se}`,
    :math:`p = 2\,F_{t_{df}}(-|\hat\theta/\widehat{se}|)`), and finite values of optional
    ``p_value``, ``ci_lower`` and ``ci_upper`` columns (e.g. from a wild cluster bootstrap)
    replace the computed ones.
    """
    estimate = np.asarray(frame["estimate"], dtype=float)
    std_error = np.asarray(frame["std_error"], dtype=float)
    out = normal_inference(estimate, std_error, alpha)
    if "df" in frame:
        df = np.asarray(frame["df"], dtype=float)
        has = np.isfinite(df) & (df > 0)
        t = np.where(has, stdtrit(np.where(has, df, 1.0), 1 - alpha / 2), np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            p_t = 2 * stdtr(np.where(has, df, 1.0), -np.abs(estimate / std_error))
        out = {"ci_lower": np.where(has, estimate - t * std_error, out["ci_lower"]),
               "ci_upper": np.where(has, estimate + t * std_error, out["ci_upper"]),
               "p_value": np.where(has, p_t, out["p_value"])}
    for column in out:
        if column in frame:
            given = np.asarray(frame[column], dtype=float)
            out[column] = np.where(np.isfinite(given), given, out[column])
    return out


@dataclass(frozen=True)
class PretrendTest(ResultMixin):
    r"""A joint test that pre-treatment effects are zero, or the reason it is missing.

    Attributes
    ----------
    test
        What was tested, e.g. ``"CS Wald test of the pre-treatment ATT(g,t)"``.
    statistic
        The Wald statistic (NaN when not computable).
    df
        Degrees of freedom of its :math:`\chi^2` reference distribution (0 when not
        computable).
    p_value
        :math:`P(\chi^2_{df} > W)` (NaN when not computable).
    reason
        Why the test could not be computed (None when it was).

    Notes
    -----
    :math:`W = \hat\theta_{pre}'\hat V_{pre}^{-1}\hat\theta_{pre}` with
    :math:`\hat\theta_{pre}` the pre-treatment estimates and :math:`\hat V_{pre}` their
    (clustered) covariance; under the null of no pre-trends
    :math:`W \sim \chi^2_{df}` asymptotically.
    """

    test: str
    statistic: float = float("nan")
    df: int = 0
    p_value: float = float("nan")
    reason: str | None = None

    @classmethod
    def wald(cls, test: str, estimate: np.ndarray, vcov: np.ndarray,
             decimals: int | None = None) -> PretrendTest:
        """Compute the Wald test of ``estimate == 0`` with covariance ``vcov``.

        ``decimals`` rounds the p-value (R ``did`` reports it to 5 decimals).
        """
        statistic = float(estimate @ np.linalg.solve(vcov, estimate))
        p_value = float(chdtrc(estimate.size, statistic))
        if decimals is not None:
            p_value = round(p_value, decimals)
        return cls(test, statistic, int(estimate.size), p_value)

    @classmethod
    def unavailable(cls, test: str, reason: str) -> PretrendTest:
        """Return a test that could not be computed, with the reason."""
        return cls(test, reason=reason)

    @property
    def computable(self) -> bool:
        """Whether the statistic was computed."""
        return self.reason is None

    def as_text(self) -> str:
        """One line: ``Wald chi2(df) = W, p = p`` or ``not computable: reason``."""
        if not self.computable:
            return f"not computable: {self.reason}"
        return f"Wald chi2({self.df}) = {self.statistic:.3f}, p = {self.p_value:.4f}"

    def to_frame(self) -> pd.DataFrame:
        """One row: ``test, statistic, df, p_value, reason``."""
        return pd.DataFrame([{"test": self.test, "statistic": self.statistic, "df": self.df,
                              "p_value": self.p_value, "reason": self.reason}])

    def summary(self) -> Summary:
        """Return the test as a one-row table with its verdict."""
        return Summary(self.test, self.to_frame().set_index("test"), (self.as_text(),))

    def plot(self, ax: Axes | None = None) -> Axes:
        r"""Draw the :math:`\chi^2_{df}` density with the statistic marked; returns the Axes."""
        from scipy.stats import chi2

        ax = new_axes(ax, (5, 3))
        if self.computable:
            upper = max(chi2.ppf(0.999, self.df), self.statistic * 1.1)
            grid = np.linspace(0, upper, 400)
            ax.plot(grid, chi2.pdf(grid, self.df), color="0.3")
            ax.axvline(self.statistic, color="C3", label=self.as_text())
            ax.legend(fontsize=8, frameon=False)
        else:
            ax.text(0.5, 0.5, self.as_text(), ha="center", va="center", wrap=True,
                    transform=ax.transAxes)
        ax.set_title(self.test, fontsize=9)
        return ax


@dataclass
class EstimationResult(ResultMixin):
    """Estimates of one estimator and aggregation, with their uncertainty.

    Attributes
    ----------
    estimator
        Short name (``cs``, ``twfe``, ``2x2`` ...).
    aggregation
        ``none`` (group-time effects), ``simple``, ``event``, ``group``, ``calendar``,
        ``static`` or ``dynamic``.
    table
        One row per estimate: ``term, group, time, event_time, estimate, std_error``;
        optionally ``df`` (t reference distribution) and ``p_value, ci_lower, ci_upper``
        (e.g. wild cluster bootstrap), which :meth:`to_frame` uses when present.
    alpha
        Significance level of the confidence intervals.
    critical_value
        Critical value of the simultaneous (uniform) band; the pointwise normal value when
        no bootstrap was run.
    vcov
        Covariance matrix of ``table["estimate"]`` (rows in table order), or None. It is
        the analytic (influence-function or cluster-robust) covariance even when
        ``std_error`` comes from a bootstrap.
    overall
        The aggregation's summary row (same columns as ``table``), or None.
    info
        Settings and diagnostics (control group, method, sample sizes, pre-test, ...).
    pretest
        Joint pre-trend test (:class:`PretrendTest`) where the estimator computes one.
    warnings
        Warnings issued while estimating (category and message), shown by ``summary()``.
    influence
        ``(n_units, k)`` influence functions of the estimates where the estimator keeps
        them (None otherwise): rows are the units of the estimation sample (in the order
        of ``units``), columns the rows of ``table`` followed by the ``overall`` row (when
        there is one), scaled so that
        ``_inference.influence_covariance(influence, cluster)`` is their analytic
        covariance. Results on the same units combine through
        :func:`evaluation.estimators.joint.joint_covariance`.
    cluster
        ``(n_units,)`` integer cluster codes of those units (None: each unit is its own
        cluster).
    units
        ``(n_units,)`` ids of those units (the panel's unit column).
    """

    estimator: str
    aggregation: str
    table: pd.DataFrame
    alpha: float = 0.05
    critical_value: float | None = None
    vcov: np.ndarray | None = None
    overall: pd.DataFrame | None = None
    info: dict[str, Any] = field(default_factory=dict)
    pretest: PretrendTest | None = None
    warnings: list[str] = field(default_factory=list)
    influence: np.ndarray | None = field(default=None, repr=False)
    cluster: np.ndarray | None = field(default=None, repr=False)
    units: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.critical_value is None:
            self.critical_value = float(ndtri(1 - self.alpha / 2))

    @property
    def estimates(self) -> pd.Series:
        """Point estimates indexed by term."""
        return self.table.set_index("term")["estimate"]

    @property
    def std_errors(self) -> pd.Series:
        """Standard errors indexed by term."""
        return self.table.set_index("term")["std_error"]

    def to_frame(self, *, include_overall: bool = True, uniform: bool = False) -> pd.DataFrame:
        """Tidy table with the columns of :data:`ESTIMATE_COLUMNS` (and ``df``).

        A ``df`` column follows ``p_value`` when intervals use a :math:`t_{df}` reference
        distribution (CR2 with Bell-McCaffrey degrees of freedom, the cluster jackknife with
        :math:`G - 1`); rows with NaN there use the normal distribution.

        Parameters
        ----------
        include_overall
            Append the aggregation's summary row (``term == "overall"``).
        uniform
            Add ``uniform_lower`` and ``uniform_upper`` (simultaneous band).
        """
        parts = [self.table]
        if include_overall and self.overall is not None:
            parts.append(self.overall)
        labels = ("group", "time", "event_time")
        # object dtype keeps integer labels integers next to the overall row's empty cells
        parts = [p.astype({c: object for c in labels if c in p}) for p in parts]
        frame = pd.concat(parts, ignore_index=True)
        frame = frame.assign(**table_inference(frame, self.alpha))
        frame.insert(0, "aggregation", self.aggregation)
        frame.insert(0, "estimator", self.estimator)
        for col in labels:
            if col not in frame:
                frame[col] = pd.NA
            frame[col] = frame[col].astype("object").where(frame[col].notna(), None)
        out = frame[ESTIMATE_COLUMNS + (["df"] if "df" in frame else [])].copy()
        if uniform:
            out["uniform_lower"] = frame["estimate"] - self.critical_value * frame["std_error"]
            out["uniform_upper"] = frame["estimate"] + self.critical_value * frame["std_error"]
        return out

    def summary(self) -> Summary:
        """Summary of the estimates (``str()`` for text, ``_repr_html_`` in notebooks)."""
        frame = self.to_frame(uniform=True).drop(columns=["estimator", "aggregation"])
        frame = frame.dropna(axis=1, how="all").set_index("term")
        notes = [f"{key}: {value}" for key, value in self.info.items()
                 if isinstance(value, str | int | float | np.integer | np.floating)]
        notes.append(f"{100 * (1 - self.alpha):g} % pointwise intervals; simultaneous band "
                     f"critical value {self.critical_value:.3f}")
        if self.pretest is not None:
            notes.append(f"{self.pretest.test}: {self.pretest.as_text()}")
        title = f"{self.estimator.upper()} estimates ({self.aggregation})"
        return Summary(title, frame, tuple(notes), tuple(self.warnings))

    def __repr__(self) -> str:
        return (f"EstimationResult(estimator={self.estimator!r}, aggregation="
                f"{self.aggregation!r}, estimates={len(self.table)})")

    def plot(self, ax: Axes | None = None, *, uniform: bool = True, label: str | None = None,
             offset: float = 0.0, color: str | None = None) -> Axes:
        """Plot estimates with pointwise intervals (and the simultaneous band).

        Event-time results are drawn against event time with a reference line at zero;
        other results against their term labels. Returns the Axes; never shows the figure.
        """
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(7, 3.5))
        frame = self.to_frame(include_overall=False, uniform=True)
        if frame["event_time"].notna().all() and len(frame):
            x = frame["event_time"].astype(float).to_numpy() + offset
            ax.axvline(-0.5, color="0.6", linewidth=0.8, linestyle=":")
            ax.set_xlabel("event time")
        else:
            x = np.arange(len(frame)) + offset
            ax.set_xticks(np.arange(len(frame)), frame["term"].astype(str), rotation=45,
                          ha="right")
        ax.axhline(0, color="0.4", linewidth=0.8)
        line = ax.errorbar(x, frame["estimate"],
                           yerr=[frame["estimate"] - frame["ci_lower"],
                                 frame["ci_upper"] - frame["estimate"]],
                           fmt="o", markersize=4, capsize=2, color=color,
                           label=label or self.estimator)
        if uniform:
            ax.fill_between(x, frame["uniform_lower"], frame["uniform_upper"], alpha=0.15,
                            color=line[0].get_color(), step=None, linewidth=0)
        ax.set_ylabel("estimate")
        ax.grid(alpha=0.3)
        return ax
