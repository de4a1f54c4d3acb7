"""Descriptive monitoring indicators of the municipal panel: tables and figures.

Works on any municipality-month frame in the documented schema (the synthetic panel or a
real StatFin extract): indicators whose input columns are absent are skipped.
"""

from __future__ import annotations

from collections.abc import Callable

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from evaluation.errors import MissingColumnError
from evaluation.sources.trials import WAVES, Wave, format_month, wave

#: Indicator -> (label, input columns, ratio of the summed inputs).
INDICATORS: dict[str, tuple[str, tuple[str, ...], Callable[[pd.DataFrame], pd.Series]]] = {
    "unemployment_rate": ("Unemployment rate, %", ("unemployed", "labour_force"),
                          lambda s: 100 * s["unemployed"] / s["labour_force"]),
    "long_term_share": ("Long-term unemployed, % of unemployed",
                        ("long_term_unemployed", "unemployed"),
                        lambda s: 100 * s["long_term_unemployed"] / s["unemployed"]),
    "under25_share": ("Under 25, % of unemployed", ("unemployed_under25", "unemployed"),
                      lambda s: 100 * s["unemployed_under25"] / s["unemployed"]),
    "foreign_share": ("Foreign citizens, % of unemployed", ("unemployed_foreign", "unemployed"),
                      lambda s: 100 * s["unemployed_foreign"] / s["unemployed"]),
    "services_share": ("In services, % of jobseekers", ("in_services", "jobseekers"),
                       lambda s: 100 * s["in_services"] / s["jobseekers"]),
    "plans_rate": ("Plans per 100 unemployed or in services",
                   ("employment_plans", "unemployed", "in_services"),
                   lambda s: 100 * s["employment_plans"] / (s["unemployed"] + s["in_services"])),
    "vacancies_per_100": ("Open vacancies per 100 unemployed", ("vacancies", "unemployed"),
                          lambda s: 100 * s["vacancies"] / s["unemployed"]),
    "municipal_cost_share": ("Municipal share of subsidy costs, %",
                             ("lms_cost_municipal", "lms_cost_total"),
                             lambda s: 100 * s["lms_cost_municipal"] / s["lms_cost_total"]),
}


def _require(data: pd.DataFrame, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in data.columns]
    if missing:
        raise MissingColumnError(
            f"column(s) {missing} not in the municipal data; the documented schema has "
            "municipality, month, t and the count columns listed in README.md."
        )


def month_timestamps(month: pd.Series) -> pd.Series:
    """Convert StatFin month labels (``2021M03``) to month-start timestamps."""
    return pd.to_datetime(month.astype(str).str.replace("M", "-", regex=False), format="%Y-%m")


def wave_groups(data: pd.DataFrame, wave_number: int) -> pd.Series:
    """Label every row ``trial`` or ``comparison`` by membership in the given wave."""
    column = f"cohort_w{wave_number}"
    _require(data, (column,))
    return pd.Series(np.where(data[column].to_numpy() > 0, "trial", "comparison"),
                     index=data.index, name="group")


def monitoring_indicators(data: pd.DataFrame, groups: pd.Series) -> pd.DataFrame:
    r"""Monthly indicators of groups of municipalities (ratios of summed counts).

    Parameters
    ----------
    data
        Municipality-month frame with ``month`` and the count columns.
    groups
        Group label of every row (e.g. from :func:`wave_groups`).

    Returns
    -------
    pandas.DataFrame
        Long table ``group, month, date, indicator, label, value``.

    Notes
    -----
    Each indicator is a ratio of sums over the municipalities of a group, e.g. the
    unemployment rate :math:`100 \sum_i U_{it} / \sum_i L_{it}`, so large municipalities
    weigh in proportion to their size, as in the official monitoring statistics.
    """
    _require(data, ("month",))
    available = {k: v for k, v in INDICATORS.items() if set(v[1]) <= set(data.columns)}
    inputs = sorted({c for v in available.values() for c in v[1]})
    sums = data[inputs].groupby([groups.to_numpy(), data["month"].to_numpy()]).sum()
    sums.index.names = ["group", "month"]
    frames = []
    for key, (label, _, ratio) in available.items():
        values = ratio(sums).rename("value").reset_index()
        values["indicator"], values["label"] = key, label
        frames.append(values)
    out = pd.concat(frames, ignore_index=True)
    out["date"] = month_timestamps(out["month"])
    return out[["group", "month", "date", "indicator", "label", "value"]]


def plot_indicator(indicators: pd.DataFrame, indicator: str, *, shade: Wave | None = None,
                   ax: Axes | None = None) -> Axes:
    """Line plot of one indicator for each group, with the wave's months shaded.

    Returns the Axes; the figure is never shown from here.
    """
    import matplotlib.pyplot as plt

    rows = indicators[indicators["indicator"] == indicator]
    if rows.empty:
        raise ValueError(f"indicator {indicator!r} is not in the table; available: "
                         f"{sorted(indicators['indicator'].unique())}.")
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3))
    for (group, frame), style in zip(rows.groupby("group"), ("-", "--", ":", "-."),
                                     strict=False):
        ax.plot(frame["date"], frame["value"], style, label=group, linewidth=1.4)
    if shade is not None:
        ax.axvspan(shade.start.start_time, shade.end.end_time, color="0.85", zorder=0,
                   label=f"wave {shade.number}")
    ax.set_title(rows["label"].iloc[0], fontsize=10)
    ax.xaxis.set_major_locator(mdates.YearLocator(2))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y"))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, frameon=False)
    return ax


def pre_period_comparison(data: pd.DataFrame, wave_number: int, months: int = 24) -> pd.DataFrame:
    """Compare trial and comparison municipalities over the months before a wave.

    Returns a table with one row per indicator and columns ``trial``, ``comparison`` and
    ``difference`` (averages of the monthly group indicators over the window).
    """
    w = wave(wave_number)
    first = format_month(w.start - months)
    last = format_month(w.start - 1)
    month = data["month"].astype(str)
    window = data[(month >= first) & (month <= last)]
    if window.empty:
        raise ValueError(f"the data have no months between {first} and {last}.")
    table = monitoring_indicators(window, wave_groups(window, wave_number))
    wide = table.pivot_table(index="label", columns="group", values="value", aggfunc="mean")
    wide = wide.reindex(columns=["trial", "comparison"])
    wide["difference"] = wide["trial"] - wide["comparison"]
    wide.index.name = f"{first}–{last}"
    return wide.round(2)


def trial_overview(data: pd.DataFrame, areas: pd.DataFrame) -> pd.DataFrame:
    """One row per wave: areas, municipalities, population and jobseekers at the start.

    ``areas`` is the trial-area table (``wave, area, n_municipalities, population``).
    """
    _require(data, ("municipality", "month", "jobseekers", "unemployed"))
    rows = []
    month = data["month"].astype(str)
    for w in WAVES:
        at_start = data[month == format_month(w.start)]
        trial = at_start[at_start[f"cohort_w{w.number}"] > 0]
        wave_areas = areas[areas["wave"] == w.number]
        rows.append({
            "wave": w.label,
            "target group": w.target_group,
            "areas": len(wave_areas),
            "municipalities": int(wave_areas["n_municipalities"].sum()),
            "population": int(wave_areas["population"].sum()),
            "jobseekers at start": int(trial["jobseekers"].sum()),
            "share of national jobseekers, %":
                round(100 * trial["jobseekers"].sum() / at_start["jobseekers"].sum(), 1),
        })
    return pd.DataFrame(rows).set_index("wave")
