r"""Covariate balance diagnostics before and after matching or weighting (as MatchIt/cobalt).

The statistics follow R's MatchIt 4.5 ``summary.matchit`` for the ATT so that tables agree
with it to rounding: standardised mean differences use the treated group's standard
deviation in the unmatched sample, variance ratios and eCDF statistics use the matching
weights, and effective sample sizes are Kish's.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

_SQRT_EPS = float(np.sqrt(np.finfo(float).eps))

#: Columns of :func:`balance_table`, in order.
BALANCE_COLUMNS = (
    "mean_treated_before", "mean_control_before", "mean_treated", "mean_control",
    "smd_before", "smd_after", "var_ratio_before", "var_ratio_after",
    "ecdf_mean_before", "ecdf_mean_after", "ecdf_max_before", "ecdf_max_after",
)


def weighted_variance(x: np.ndarray, w: np.ndarray, binary: bool) -> float:
    r"""Weighted variance as MatchIt's ``wvar``.

    Notes
    -----
    With normalised weights :math:`\tilde w_i = w_i/\sum w`, mean :math:`m = \sum\tilde w_i x_i`:
    :math:`m(1-m)` for a 0/1 variable, otherwise
    :math:`\sum \tilde w_i (x_i - m)^2 / (1 - \sum\tilde w_i^2)`.
    """
    w = w / w.sum()
    m = float(w @ x)
    if binary:
        return m * (1 - m)
    return float(w @ (x - m) ** 2 / (1 - w @ w))


def effective_sample_size(w: np.ndarray) -> float:
    r"""Kish's effective sample size :math:`(\sum w)^2/\sum w^2`."""
    return float(w.sum() ** 2 / (w @ w)) if (w @ w) > 0 else 0.0


def ecdf_differences(x: np.ndarray, treated: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    r"""Mean and maximum absolute difference between the weighted eCDFs of the two groups.

    Notes
    -----
    With weights normalised within each group, :math:`F_1` and :math:`F_0` the weighted
    empirical distribution functions, the differences :math:`|F_1(u) - F_0(u)|` are taken at
    every distinct value :math:`u` of ``x`` in the sample (units with zero weight included);
    the statistics are their mean and maximum.
    """
    w = w.astype(float).copy()
    for group in (treated, ~treated):
        w[group] /= w[group].sum()
    order = np.argsort(x, kind="stable")
    xs, ws, ts = x[order], w[order], treated[order]
    signed = np.where(ts == ts[0], -ws, ws)
    last_of_value = np.append(np.diff(xs) != 0, True)
    diff = np.abs(np.cumsum(signed))[last_of_value]
    return float(diff.mean()), float(diff.max())


def _balance_one(x: np.ndarray, treated: np.ndarray, weights: np.ndarray,
                 base: np.ndarray, binary: bool, sd: float | None) -> dict[str, float]:
    w1, w0 = weights[treated], weights[~treated]
    too_small = (w1 != 0).sum() < 2 and (w0 != 0).sum() < 2
    m1 = float(np.average(x[treated], weights=w1))
    m0 = float(np.average(x[~treated], weights=w0))
    diff = m1 - m0
    smd = diff / sd if sd is not None and abs(diff) > _SQRT_EPS and not too_small else diff
    if binary:
        ratio, e_mean, e_max = np.nan, abs(diff), abs(diff)
    elif too_small:
        ratio, e_mean, e_max = np.nan, np.nan, np.nan
    else:
        ratio = (weighted_variance(x[treated], w1, False)
                 / weighted_variance(x[~treated], w0, False))
        e_mean, e_max = ecdf_differences(x, treated, weights)
    return {"mean_treated": m1, "mean_control": m0, "smd": smd, "var_ratio": ratio,
            "ecdf_mean": e_mean, "ecdf_max": e_max}


def treated_sd(x: np.ndarray, treated: np.ndarray, base: np.ndarray, binary: bool) -> float:
    """Return the treated group's standard deviation in the unmatched sample (SMD denominator).

    Falls back to the pooled standard deviation when the treated group does not vary.
    """
    sd = np.sqrt(weighted_variance(x[treated], base[treated], binary))
    if np.isfinite(sd) and sd >= _SQRT_EPS:
        return float(sd)
    total = base.sum()
    if binary:
        pooled = sum((base[g] @ x[g]) * (1 - (base[g] @ x[g]) / base[g].sum())
                     for g in (treated, ~treated)) / total
        return float(np.sqrt(pooled))
    centred = x.astype(float).copy()
    for g in (treated, ~treated):
        centred[g] -= np.average(x[g], weights=base[g])
    share = base / total
    return float(np.sqrt(share @ centred**2 / (1 - share @ share)))


def balance_table(values: np.ndarray, names: Sequence[str], treated: np.ndarray,
                  weights: np.ndarray, *, base_weights: np.ndarray | None = None,
                  binary: Sequence[bool] | None = None) -> pd.DataFrame:
    r"""Balance of every covariate before and after matching or weighting.

    Parameters
    ----------
    values
        ``(n, k)`` covariates (categoricals as 0/1 indicators, one per level).
    names
        Row labels.
    treated
        Boolean treatment indicator.
    weights
        Matching or balancing weights (0 for units not kept).
    base_weights
        Sampling weights (default ones); "before" uses them alone, "after" their product
        with ``weights``.
    binary
        Which columns are 0/1 (detected when omitted).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``variable`` with the columns of :data:`BALANCE_COLUMNS`.

    Notes
    -----
    For covariate :math:`x` with weighted group means :math:`\bar x_1, \bar x_0`:

    - standardised mean difference :math:`(\bar x_1 - \bar x_0)/s_1`, :math:`s_1` the treated
      standard deviation in the unmatched sample (the same denominator before and after, so
      the two are comparable); the raw difference when it is below :math:`\sqrt\epsilon`;
    - variance ratio :math:`s^2_{1,w}/s^2_{0,w}` (not defined for 0/1 variables);
    - eCDF mean and max: see :func:`ecdf_differences`; for 0/1 variables both equal
      :math:`|\bar x_1 - \bar x_0|`.
    """
    treated = np.asarray(treated, dtype=bool)
    base = np.ones(len(treated)) if base_weights is None else np.asarray(base_weights, float)
    after = np.asarray(weights, dtype=float) * base
    if binary is None:
        binary = [bool(np.isin(values[:, j], (0.0, 1.0)).all()) for j in range(values.shape[1])]
    rows = []
    for j, name in enumerate(names):
        x = values[:, j]
        sd = treated_sd(x, treated, base, binary[j])
        before = _balance_one(x, treated, base, base, binary[j], sd)
        matched = _balance_one(x, treated, after, base, binary[j], sd)
        rows.append({
            "variable": name,
            "mean_treated_before": before["mean_treated"],
            "mean_control_before": before["mean_control"],
            "mean_treated": matched["mean_treated"], "mean_control": matched["mean_control"],
            "smd_before": before["smd"], "smd_after": matched["smd"],
            "var_ratio_before": before["var_ratio"], "var_ratio_after": matched["var_ratio"],
            "ecdf_mean_before": before["ecdf_mean"], "ecdf_mean_after": matched["ecdf_mean"],
            "ecdf_max_before": before["ecdf_max"], "ecdf_max_after": matched["ecdf_max"],
        })
    return pd.DataFrame(rows).set_index("variable")


def sample_sizes(treated: np.ndarray, weights: np.ndarray, discarded: np.ndarray,
                 base_weights: np.ndarray | None = None) -> pd.DataFrame:
    """Count units and effective sample sizes by group (MatchIt's ``nn``).

    Rows: ``All (ESS)``, ``All``, ``Matched (ESS)``, ``Matched``, ``Unmatched``,
    ``Discarded``; columns ``control`` and ``treated``.
    """
    base = np.ones(len(treated)) if base_weights is None else np.asarray(base_weights, float)
    after = weights * base
    table = {}
    for label, group in (("control", ~treated), ("treated", treated)):
        table[label] = [
            effective_sample_size(base[group]), float(group.sum()),
            effective_sample_size(after[group]), float((group & (weights > 0)).sum()),
            float((group & (weights == 0) & ~discarded).sum()), float((group & discarded).sum()),
        ]
    return pd.DataFrame(table, index=["All (ESS)", "All", "Matched (ESS)", "Matched",
                                      "Unmatched", "Discarded"])


def love_plot(table: pd.DataFrame, ax=None, threshold: float = 0.1, absolute: bool = True):
    """Love plot: standardised mean differences before and after, one row per covariate.

    Parameters
    ----------
    table
        Output of :func:`balance_table`.
    ax
        Matplotlib Axes to draw on (a new figure when omitted).
    threshold
        Reference lines at plus/minus this value (0.1 is the usual rule of thumb).
    absolute
        Plot absolute differences.

    Returns
    -------
    matplotlib.axes.Axes
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 0.3 * len(table) + 1.5))
    before, after = table["smd_before"].to_numpy(), table["smd_after"].to_numpy()
    if absolute:
        before, after = np.abs(before), np.abs(after)
    y = np.arange(len(table))[::-1]
    ax.scatter(before, y, marker="o", facecolors="none", edgecolors="tab:red", label="Before")
    ax.scatter(after, y, marker="o", color="tab:blue", label="After")
    ax.set_yticks(y, [str(v) for v in table.index])
    for line in ((threshold,) if absolute else (-threshold, threshold)):
        ax.axvline(line, color="grey", linestyle="--", linewidth=0.8)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel("Absolute standardised mean difference" if absolute
                  else "Standardised mean difference")
    ax.legend(loc="lower right")
    ax.set_title("Covariate balance")
    return ax
