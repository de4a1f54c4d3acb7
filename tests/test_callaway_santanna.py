"""Numerical tests of the Callaway-Sant'Anna estimator.

1. Agreement with ``csdid`` 0.4.3 (the Python port of R ``did``) to 1e-6 on panels drawn by
   :func:`evaluation.simulate.simulate_staggered`: ATT(g,t), analytic standard errors,
   influence functions, the Wald pre-test and all four aggregations.
2. Closed forms of the 2x2 comparison without covariates.
3. The result surface (tables, summary, plot, covariance, HTML).
4. The multiplier bootstrap and clustered inference.
5. Errors and the no-never-treated fallback.

Every reference fit is built once per session (``functools.cache``); ``csdid`` is only
needed by the reference tests, which are skipped when it is not installed.
"""

from __future__ import annotations

import contextlib
import functools
import io
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from _builders import staggered_panel
from numpy.testing import assert_allclose
from scipy import stats

from evaluation import Panel
from evaluation.errors import (
    DroppedObservationsWarning,
    EvaluationWarning,
    InvalidOptionError,
    NoComparisonUnitsError,
    PanelError,
)
from evaluation.estimators import CallawaySantAnna
from evaluation.estimators.results import ESTIMATE_COLUMNS, EstimationResult
from evaluation.simulate import simulate_staggered

ATOL = 1e-6  # agreement with csdid (absolute, rtol=0)
N_UNITS = 600
N_PERIODS = 7
COHORTS = (3, 5, 6)
CSDID_CONTROL = {"never": "nevertreated", "notyet": "notyettreated"}
CSDID_KIND = {"simple": "simple", "group": "group", "event": "dynamic", "calendar": "calendar"}
AGGREGATIONS = tuple(CSDID_KIND)

#: Largest absolute difference from csdid seen per quantity (filled as the tests run).
ACHIEVED: dict[str, float] = {}


# ------------------------------------------------------------------------------------------
# Data and cached fits
# ------------------------------------------------------------------------------------------
@functools.cache
def staggered_data(unbalanced: bool = False, never_treated: bool = True) -> pd.DataFrame:
    """600 units x 7 periods, cohorts 3, 5, 6, selection on and trends in ``x``."""
    data = simulate_staggered(
        n_units=N_UNITS, n_periods=N_PERIODS, cohorts=COHORTS, dynamic=0.3,
        cohort_effects=(0.5, 1.0, 2.0), covariate_selection=0.5, covariate_trend=0.2,
        missing=0.05 if unbalanced else 0.0, n_clusters=40, seed=11,
    ).data
    if not never_treated:
        data = data.loc[data["cohort"] > 0].reset_index(drop=True)
    return data


def data_copy(unbalanced: bool = False, never_treated: bool = True) -> pd.DataFrame:
    return staggered_data(unbalanced, never_treated).copy()


@dataclass(frozen=True)
class Config:
    """One estimator configuration, applied identically to ours and to csdid."""

    method: str = "dr"
    control: str = "never"
    covariates: bool = True
    unbalanced: bool = False
    base: str = "varying"
    anticipation: int = 0
    weights: bool = False
    cluster: bool = False
    never_treated: bool = True

    @property
    def id(self) -> str:
        parts = [self.method, self.control, "x" if self.covariates else "nox",
                 "unbalanced" if self.unbalanced else "balanced"]
        if self.base != "varying":
            parts.append(self.base)
        if self.anticipation:
            parts.append(f"antic{self.anticipation}")
        if self.weights:
            parts.append("weighted")
        if self.cluster:
            parts.append("clustered")
        if not self.never_treated:
            parts.append("no-never")
        return "-".join(parts)


def panel_for(cfg: Config, data: pd.DataFrame | None = None) -> Panel:
    data = data_copy(cfg.unbalanced, cfg.never_treated) if data is None else data
    return staggered_panel(data, covariates=["x"] if cfg.covariates else [],
                           weights="weight" if cfg.weights else None,
                           cluster="cluster" if cfg.cluster else None)


def estimator_for(cfg: Config, **options) -> CallawaySantAnna:
    return CallawaySantAnna(control_group=cfg.control, method=cfg.method,
                            base_period=cfg.base, anticipation=cfg.anticipation, **options)


@functools.cache
def ours(cfg: Config):
    """Our fit of ``cfg`` and the warnings it issued."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = estimator_for(cfg).fit(panel_for(cfg))
    return fit, tuple(caught)


@functools.cache
def reference(cfg: Config):
    """csdid's ATTgt object for ``cfg`` (analytic inference)."""
    att_gt = pytest.importorskip("csdid.att_gt")
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = att_gt.ATTgt(
            yname="y", tname="time", idname="unit", gname="cohort",
            data=data_copy(cfg.unbalanced, cfg.never_treated),
            xformla="y ~ x" if cfg.covariates else None,
            control_group=CSDID_CONTROL[cfg.control], anticipation=cfg.anticipation,
            weights_name="weight" if cfg.weights else None,
            clustervar="cluster" if cfg.cluster else None,
        )
        res.fit(est_method=cfg.method, base_period=cfg.base, bstrap=False)
    return res


@functools.cache
def reference_aggregation(cfg: Config, kind: str, window: tuple = ()) -> dict:
    """csdid's ``aggte`` output (a copy of ``res.atte``); ``window`` are keyword pairs."""
    res = reference(cfg)
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res.aggte(typec=CSDID_KIND[kind], **dict(window))
    return dict(res.atte)


def close(actual, desired, quantity: str) -> None:
    """assert_allclose(atol=1e-6, rtol=0), recording the achieved difference."""
    actual = np.asarray(actual, dtype=float)
    desired = np.asarray(desired, dtype=float)
    assert actual.shape == desired.shape, quantity
    assert_allclose(actual, desired, rtol=0, atol=ATOL, err_msg=quantity)
    both = np.isfinite(actual) & np.isfinite(desired)
    diff = float(np.max(np.abs(actual[both] - desired[both]), initial=0.0))
    ACHIEVED[quantity] = max(ACHIEVED.get(quantity, 0.0), diff)


# ------------------------------------------------------------------------------------------
# 1. Agreement with csdid
# ------------------------------------------------------------------------------------------
GRID = [Config(method=m, control=c, covariates=x, unbalanced=u)
        for m in ("dr", "ipw", "reg") for c in ("never", "notyet")
        for x in (True, False) for u in (False, True)]
EXTRA = [
    Config(base="universal"),
    Config(control="notyet", base="universal"),
    Config(covariates=False, unbalanced=True, base="universal"),
    Config(method="ipw", control="notyet", base="universal"),
    Config(method="reg", base="universal", unbalanced=True),
    Config(control="notyet", anticipation=1),
    Config(method="reg", covariates=False, unbalanced=True, anticipation=1),
    Config(base="universal", anticipation=1),
    Config(weights=True),
    Config(method="ipw", control="notyet", unbalanced=True, weights=True),
    Config(method="reg", covariates=False, weights=True, base="universal"),
    Config(cluster=True),
    Config(method="reg", control="notyet", covariates=False, unbalanced=True, cluster=True),
]
NO_NEVER = [Config(never_treated=False), Config(control="notyet", never_treated=False),
            Config(method="reg", control="notyet", covariates=False, never_treated=False)]
CONFIGS = GRID + EXTRA + NO_NEVER


def check_group_time(cfg: Config) -> None:
    fit, _ = ours(cfg)
    res = reference(cfg)
    r = res.results
    table = fit.table
    assert table["group"].tolist() == [int(g) for g in r["group"]]
    assert table["time"].tolist() == [int(t) for t in r["year"]]
    assert table["post"].tolist() == [bool(p) for p in np.asarray(r["post"])]
    assert fit.info["units"] == res.MP["n"]
    close(table["estimate"], r["att"], "ATT(g,t)")
    se_ref = np.asarray(r["se"], dtype=float)
    np.testing.assert_array_equal(np.isnan(table["std_error"]), np.isnan(se_ref))
    close(table["std_error"], se_ref, "ATT(g,t) SE")


def check_influence(cfg: Config) -> None:
    fit, _ = ours(cfg)
    close(fit.influence, reference(cfg).MP["inffunc"]["inffunc"], "influence function")


def check_pretest(cfg: Config) -> None:
    fit, _ = ours(cfg)
    mp = reference(cfg).MP
    if mp["W"] is None:
        assert not fit.pretest.computable
        return
    assert fit.pretest.computable
    table = fit.table
    n_pre = np.sum((table["group"] - cfg.anticipation > table["time"])
                   & np.isfinite(table["std_error"]))
    assert fit.pretest.df == n_pre
    close(fit.pretest.statistic, mp["W"], "Wald statistic")
    close(fit.pretest.p_value, mp["Wpval"], "Wald p-value")


def check_aggregation(cfg: Config, kind: str, window: tuple = ()) -> None:
    fit, _ = ours(cfg)
    agg = fit.aggregate(kind, **dict(window))
    ref = reference_aggregation(cfg, kind, window)
    close(agg.overall["estimate"].iat[0], ref["overall_att"], f"{kind} overall")
    close(agg.overall["std_error"].iat[0], ref["overall_se"], f"{kind} overall SE")
    if kind == "simple":
        assert len(agg.table) == 0
        return
    label = {"group": "group", "event": "event_time", "calendar": "time"}[kind]
    assert agg.table[label].astype(int).tolist() == [int(v) for v in ref["egt"]]
    close(agg.table["estimate"], np.asarray(ref["att_egt"], dtype=float), f"{kind} estimates")
    close(agg.table["std_error"], np.asarray(ref["se_egt"], dtype=float).ravel(),
          f"{kind} SEs")


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: c.id)
def test_group_time_effects_and_ses_match_csdid(cfg):
    check_group_time(cfg)


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: c.id)
def test_influence_functions_match_csdid(cfg):
    check_influence(cfg)


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: c.id)
def test_wald_pretest_matches_csdid(cfg):
    check_pretest(cfg)


@pytest.mark.parametrize("kind", AGGREGATIONS)
@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: c.id)
def test_aggregations_match_csdid(cfg, kind):
    check_aggregation(cfg, kind)


WINDOWS = [
    ("event", (("min_e", -2), ("max_e", 2))),
    ("event", (("min_e", 0), ("max_e", 0))),
    ("event", (("balance_e", 1),)),
    ("event", (("balance_e", 2), ("min_e", -3), ("max_e", 1))),
    ("simple", (("max_e", 1),)),
    ("group", (("max_e", 1),)),
]


@pytest.mark.parametrize(("kind", "window"), WINDOWS, ids=lambda v: str(v))
@pytest.mark.parametrize("cfg", [Config(), Config(control="notyet", unbalanced=True),
                                 Config(base="universal", anticipation=1, weights=True)],
                         ids=lambda c: c.id)
def test_windowed_aggregations_match_csdid(cfg, kind, window):
    check_aggregation(cfg, kind, window)


def test_balance_e_keeps_only_cohorts_observed_long_enough():
    agg = ours(Config())[0].aggregate("event", balance_e=2)
    # cohorts 3 and 5 are observed for e = 0..2, cohort 6 only for e = 0..1 and is dropped
    # (with it, e = -4 would appear: cohort 5's earliest pre-period cell is e = -3)
    assert agg.table["event_time"].tolist() == [-3, -2, -1, 0, 1, 2]
    fit = ours(Config())[0]
    table = fit.table
    cells = table[(table["time"] - table["group"] == 1) & table["group"].isin([3, 5])]
    share = staggered_data().drop_duplicates("unit")["cohort"].value_counts()
    expected = np.average(cells["estimate"], weights=share[cells["group"]].to_numpy())
    assert agg.table.set_index("event_time").loc[1, "estimate"] == pytest.approx(expected,
                                                                                abs=1e-12)


def test_group_aggregation_with_min_e_matches_csdid():
    check_aggregation(Config(), "group", (("min_e", 1),))


@pytest.mark.parametrize("cfg", [c for c in CONFIGS if c.unbalanced], ids=lambda c: c.id)
def test_unbalanced_panel_drops_incomplete_units_with_warning(cfg):
    fit, caught = ours(cfg)
    dropped = [w for w in caught if issubclass(w.category, DroppedObservationsWarning)]
    assert len(dropped) == 1
    data = staggered_data(unbalanced=True)
    complete = (data.groupby("unit")["time"].count() == N_PERIODS).sum()
    assert f"dropped {N_UNITS - complete} of {N_UNITS} units" in str(dropped[0].message)
    assert fit.info["units"] == complete == reference(cfg).MP["n"]
    assert fit.influence.shape[0] == complete


def test_unbalanced_warning_is_issued_at_fit():
    panel = panel_for(Config(unbalanced=True))
    with pytest.warns(DroppedObservationsWarning, match=r"dropped \d+ of 600 units not observ"):
        CallawaySantAnna(method="reg").fit(panel)


def test_balanced_panels_fit_without_warnings():
    for cfg in GRID + EXTRA:
        if not cfg.unbalanced:
            assert ours(cfg)[1] == (), cfg.id


# ------------------------------------------------------------------------------------------
# 2. Closed forms without covariates
# ------------------------------------------------------------------------------------------
def wide(column: str = "y") -> pd.DataFrame:
    return staggered_data().pivot(index="unit", columns="time", values=column)


def unit_cohort() -> pd.Series:
    return staggered_data().groupby("unit")["cohort"].first()


def hand_two_by_two(g: int, t: int, base: int, control: pd.Series,
                    weights: pd.Series | None = None) -> dict:
    """2x2 DiD of cohort ``g`` against ``control`` units, Y_t - Y_base, by hand."""
    y = wide()
    cohort = unit_cohort()
    treated = cohort == g
    sample = treated | control
    change = (y[t] - y[base])[sample]
    d = treated[sample].to_numpy().astype(float)
    w = np.ones(d.size) if weights is None else weights[sample].to_numpy()
    w = w / w.mean()
    dy = change.to_numpy()
    mean1 = np.sum(w * d * dy) / np.sum(w * d)
    mean0 = np.sum(w * (1 - d) * dy) / np.sum(w * (1 - d))
    n, n1 = len(y), d.size  # all units, units in the comparison
    p1, p0 = np.mean(w * d), np.mean(w * (1 - d))  # shares of the comparison
    psi = (n / n1) * (w * d / p1 * (dy - mean1) - w * (1 - d) / p0 * (dy - mean0))
    influence = pd.Series(0.0, index=y.index)
    influence[sample] = psi
    return {"att": mean1 - mean0, "influence": influence.to_numpy(), "n": n,
            "dy1": dy[d == 1], "dy0": dy[d == 0], "w1": w[d == 1], "w0": w[d == 0]}


# (cohort, time, base period) of a few cells: post-treatment and pre-treatment (varying)
CELLS = [(3, 3, 2), (3, 7, 2), (5, 6, 4), (6, 6, 5), (5, 3, 2), (6, 5, 4)]


def cell_index(fit, g: int, t: int) -> int:
    rows = np.flatnonzero((fit.table["group"] == g) & (fit.table["time"] == t))
    assert rows.size == 1
    return int(rows[0])


@pytest.mark.parametrize("method", ["dr", "ipw", "reg"])
def test_att_is_difference_of_mean_changes_against_never_treated(method):
    fit = ours(Config(method=method, covariates=False))[0]
    never = unit_cohort() == 0
    for g, t, base in CELLS:
        hand = hand_two_by_two(g, t, base, never)
        j = cell_index(fit, g, t)
        # ATT(g,t) = mean change of cohort g minus mean change of the never treated
        y, cohort = wide(), unit_cohort()
        direct = ((y[t] - y[base])[cohort == g].mean() - (y[t] - y[base])[never].mean())
        assert hand["att"] == pytest.approx(direct, abs=1e-12)
        assert fit.table["estimate"].iat[j] == pytest.approx(direct, abs=1e-10)
        # IF_i = (n/n1) (D_i/p1 (dY_i - mean1) - (1-D_i)/p0 (dY_i - mean0)) in the 2x2
        # sample of size n1 (p1, p0 the treated and control shares of it), zero elsewhere
        assert_allclose(fit.influence[:, j], hand["influence"], rtol=0, atol=1e-10)
        # SE = sqrt(mean(IF^2)/n) = sqrt(var1/N1 + var0/N0), population variances (ddof=0),
        # N1 and N0 the numbers of treated and control units in the comparison
        se_if = np.sqrt(np.mean(hand["influence"] ** 2) / hand["n"])
        se_closed = np.sqrt(np.var(hand["dy1"]) / hand["dy1"].size
                            + np.var(hand["dy0"]) / hand["dy0"].size)
        assert se_if == pytest.approx(se_closed, rel=1e-12)
        assert fit.table["std_error"].iat[j] == pytest.approx(se_closed, rel=1e-10)


def test_not_yet_treated_closed_form_uses_units_treated_after_t():
    fit = ours(Config(method="reg", control="notyet", covariates=False))[0]
    cohort = unit_cohort()
    for g, t, base in CELLS:
        # comparison: never treated or first treated after max(t, base + 1), not cohort g
        control = (cohort == 0) | ((cohort > max(t, base + 1)) & (cohort != g))
        hand = hand_two_by_two(g, t, base, control)
        j = cell_index(fit, g, t)
        assert fit.table["estimate"].iat[j] == pytest.approx(hand["att"], abs=1e-10)
        assert_allclose(fit.influence[:, j], hand["influence"], rtol=0, atol=1e-10)
        se = np.sqrt(np.var(hand["dy1"]) / hand["dy1"].size
                     + np.var(hand["dy0"]) / hand["dy0"].size)
        assert fit.table["std_error"].iat[j] == pytest.approx(se, rel=1e-10)


def test_weighted_closed_form():
    fit = ours(Config(method="reg", covariates=False, weights=True))[0]
    weights = staggered_data().groupby("unit")["weight"].first()
    never = unit_cohort() == 0
    for g, t, base in CELLS:
        hand = hand_two_by_two(g, t, base, never, weights)
        j = cell_index(fit, g, t)
        assert fit.table["estimate"].iat[j] == pytest.approx(hand["att"], abs=1e-10)
        assert_allclose(fit.influence[:, j], hand["influence"], rtol=0, atol=1e-10)
        # SE^2 = sum_T w^2 (dY - m1)^2 / (sum_T w)^2 + the same over controls
        m1 = np.average(hand["dy1"], weights=hand["w1"])
        m0 = np.average(hand["dy0"], weights=hand["w0"])
        var = (np.sum(hand["w1"] ** 2 * (hand["dy1"] - m1) ** 2) / hand["w1"].sum() ** 2
               + np.sum(hand["w0"] ** 2 * (hand["dy0"] - m0) ** 2) / hand["w0"].sum() ** 2)
        assert fit.table["std_error"].iat[j] == pytest.approx(np.sqrt(var), rel=1e-10)


def test_simple_aggregation_closed_form():
    fit = ours(Config(method="reg", covariates=False))[0]
    table = fit.table
    post = table[table["post"]]
    share = unit_cohort().value_counts()
    expected = np.average(post["estimate"], weights=share[post["group"]].to_numpy())
    simple = fit.aggregate("simple").overall["estimate"].iat[0]
    assert simple == pytest.approx(expected, abs=1e-12)
    group = fit.aggregate("group").table.set_index("group")["estimate"]
    for g in COHORTS:
        assert group[g] == pytest.approx(post.loc[post["group"] == g, "estimate"].mean(),
                                         abs=1e-12)


# ------------------------------------------------------------------------------------------
# 3. Result surface
# ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fit():
    return ours(Config())[0]


def test_to_frame_columns(fit):
    frame = fit.to_frame()
    assert list(frame.columns) == ESTIMATE_COLUMNS
    assert len(frame) == len(fit.table)
    event = fit.aggregate("event")
    assert isinstance(event, EstimationResult) and isinstance(fit, EstimationResult)
    frame = event.to_frame()
    assert list(frame.columns) == ESTIMATE_COLUMNS
    assert frame["term"].iloc[-1] == "overall"
    assert len(frame) == len(event.table) + 1
    z = stats.norm.ppf(0.975)
    assert_allclose(frame["ci_upper"], frame["estimate"] + z * frame["std_error"], atol=1e-12)
    assert_allclose(frame["p_value"],
                    2 * stats.norm.sf(np.abs(frame["estimate"] / frame["std_error"])),
                    atol=1e-12)
    uniform = event.to_frame(uniform=True)
    assert {"uniform_lower", "uniform_upper"} <= set(uniform.columns)


def test_summary_contains_estimates_and_never_prints(fit, capsys):
    for result in (fit, fit.aggregate("event"), fit.aggregate("simple")):
        summary = result.summary()
        text = str(summary)
        for value in result.table["estimate"]:
            assert f"{value:.6g}" in text
        if result.overall is not None:
            assert f"{result.overall['estimate'].iat[0]:.6g}" in text
        assert "<table" in summary._repr_html_()
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_plot_returns_axes_with_error_bars(fit):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.axes import Axes
    from matplotlib.container import ErrorbarContainer

    event = fit.aggregate("event")
    ax = event.plot()
    try:
        assert isinstance(ax, Axes)
        bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
        assert len(bars) == 1
        segments = bars[0].lines[2][0].get_segments()
        frame = event.to_frame(include_overall=False)
        assert len(segments) == len(frame)
        lows = [s[0][1] for s in segments]
        highs = [s[1][1] for s in segments]
        assert_allclose(lows, frame["ci_lower"], atol=1e-12)
        assert_allclose(highs, frame["ci_upper"], atol=1e-12)
        assert_allclose([s[0][0] for s in segments], frame["event_time"].astype(float))
    finally:
        plt.close(ax.figure)


def test_event_aggregation_vcov(fit):
    event = fit.aggregate("event")
    vcov = event.vcov
    m = len(event.table)
    assert vcov.shape == (m, m)
    assert_allclose(vcov, vcov.T, rtol=0, atol=1e-15)
    assert_allclose(np.sqrt(np.diag(vcov)), event.table["std_error"], rtol=1e-12)
    assert np.all(np.linalg.eigvalsh(vcov) > -1e-14)


def test_repr_html(fit):
    for result in (fit, fit.aggregate("group")):
        html = result._repr_html_()
        assert isinstance(html, str)
        assert html.startswith("<h4>") and "<table" in html and "</table>" in html
    assert "EstimationResult(" in repr(fit.aggregate("calendar"))


# ------------------------------------------------------------------------------------------
# 4. Bootstrap and clustered inference
# ------------------------------------------------------------------------------------------
@functools.cache
def bootstrap_fit(seed: int = 123, cluster: bool = False, weights: str = "mammen"):
    cfg = Config(cluster=cluster)
    return estimator_for(cfg, se="bootstrap", draws=999, seed=seed,
                         bootstrap_weights=weights).fit(panel_for(cfg))


def test_bootstrap_is_reproducible_with_a_seed():
    first = bootstrap_fit(123)
    again = estimator_for(Config(), se="bootstrap", draws=999, seed=123).fit(panel_for(Config()))
    np.testing.assert_array_equal(first.table["std_error"], again.table["std_error"])
    for kind in AGGREGATIONS:
        a, b = first.aggregate(kind), again.aggregate(kind)
        np.testing.assert_array_equal(a.table["std_error"], b.table["std_error"])
        assert a.overall["std_error"].iat[0] == b.overall["std_error"].iat[0]
        assert a.critical_value == b.critical_value
    other = bootstrap_fit(124)
    assert not np.array_equal(first.table["std_error"], other.table["std_error"])
    # estimates do not depend on the inference
    np.testing.assert_array_equal(first.table["estimate"], ours(Config())[0].table["estimate"])


def test_bootstrap_ses_close_to_analytic():
    boot = bootstrap_fit(123)
    analytic = ours(Config())[0]
    ratio = boot.table["std_error"] / analytic.table["std_error"]
    assert np.all(np.abs(ratio - 1) < 0.15), ratio.describe()
    for kind in AGGREGATIONS:
        b, a = boot.aggregate(kind), analytic.aggregate(kind)
        ratios = np.r_[b.table["std_error"] / a.table["std_error"],
                       b.overall["std_error"].iat[0] / a.overall["std_error"].iat[0]]
        assert np.all(np.abs(ratios - 1) < 0.15), (kind, ratios)


def test_uniform_critical_value_of_event_aggregation():
    event = bootstrap_fit(123).aggregate("event")
    pointwise = stats.norm.ppf(1 - event.alpha / 2)
    m = len(event.table)
    assert event.critical_value > 1.96
    assert event.critical_value > pointwise
    # a simultaneous band over m estimates is at most Bonferroni (plus Monte Carlo noise)
    assert event.critical_value < stats.norm.ppf(1 - event.alpha / (2 * m)) + 0.2
    analytic = ours(Config())[0].aggregate("event")
    assert analytic.critical_value == pytest.approx(pointwise)
    assert bootstrap_fit(123).critical_value > pointwise


@functools.cache
def clustered_panels() -> tuple[Panel, Panel, np.ndarray]:
    """Panels (clustered, unclustered) with a cluster-level treatment effect shock.

    The shock makes the influence functions of treated units correlated within the 40
    clusters, so clustered SEs of post-treatment cells are clearly larger than unit-level
    ones; returns the cluster code of each unit as well.
    """
    data = data_copy()
    shock = np.random.default_rng(0).normal(0.0, 3.0, data["cluster"].max() + 1)
    data["y"] += shock[data["cluster"]] * data["treated"]
    clustered = panel_for(Config(cluster=True), data)
    plain = panel_for(Config(), data)
    codes = data.groupby("unit")["cluster"].first().to_numpy()
    return clustered, plain, codes


@functools.cache
def clustered_fit(se: str = "analytic", weights: str = "mammen", cluster: bool = True):
    clustered, plain, _ = clustered_panels()
    return CallawaySantAnna(se=se, bootstrap_weights=weights, seed=7).fit(
        clustered if cluster else plain)


def test_analytic_clustered_se_by_hand():
    fit = clustered_fit()
    psi = fit.influence
    n = psi.shape[0]
    codes = clustered_panels()[2]
    sums = pd.DataFrame(psi).groupby(codes).sum().to_numpy()
    assert sums.shape[0] == 40
    by_hand = np.sqrt(np.sum(sums**2, axis=0)) / n  # sqrt(sum_c (sum_{i in c} psi_i)^2) / n
    assert_allclose(fit.table["std_error"], by_hand, rtol=1e-12, atol=0)
    # same influence functions as without clusters; only the variance changes
    plain = clustered_fit(cluster=False)
    assert_allclose(plain.influence, psi, rtol=0, atol=1e-14)
    assert_allclose(plain.table["std_error"], np.sqrt(np.sum(psi**2, axis=0)) / n,
                    rtol=1e-12, atol=0)
    post = fit.table["post"].to_numpy()
    assert np.all(fit.table["std_error"][post] > 1.4 * plain.table["std_error"][post])


@pytest.mark.parametrize("weights", ["rademacher", "mammen", "webb"])
def test_clustered_bootstrap(weights):
    boot = clustered_fit("bootstrap", weights)
    analytic = clustered_fit()
    unit_level = clustered_fit(cluster=False)
    assert boot.draws.shape == (999, boot.influence.shape[1] + len(COHORTS))
    ratio = boot.table["std_error"] / analytic.table["std_error"]
    assert np.all(np.abs(ratio - 1) < 0.2), ratio.describe()
    # multipliers are drawn per cluster: the bootstrap picks up the within-cluster correlation
    post = boot.table["post"].to_numpy()
    assert np.all(boot.table["std_error"][post] > 1.4 * unit_level.table["std_error"][post])
    event = boot.aggregate("event")
    assert np.all(np.isfinite(event.table["std_error"]))
    assert event.critical_value > stats.norm.ppf(0.975)
    ratio = event.table["std_error"] / analytic.aggregate("event").table["std_error"]
    assert np.all(np.abs(ratio - 1) < 0.2), ratio.describe()


# ------------------------------------------------------------------------------------------
# 5. Errors and the no-never-treated fallback
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("options", "match"), [
    ({"control_group": "nevertreated"}, "control_group"),
    ({"method": "dml"}, "method"),
    ({"base_period": "fixed"}, "base_period"),
    ({"se": "jackknife"}, "se="),
    ({"anticipation": -1}, "anticipation"),
    ({"anticipation": 1.5}, "anticipation"),
    ({"alpha": 0.0}, "alpha"),
    ({"alpha": 1.0}, "alpha"),
    ({"se": "bootstrap", "draws": 50}, "draws"),
])
def test_invalid_options(options, match):
    with pytest.raises(InvalidOptionError, match=match):
        CallawaySantAnna(**options)


def test_anticipation_beyond_the_panel_is_refused_not_estimated_as_zero(fit):
    panel = fit.panel
    with pytest.raises(InvalidOptionError, match=f"leaves no period before .* {panel.n_periods} "
                                                 "periods"):
        CallawaySantAnna(anticipation=panel.n_periods - 1).fit(panel)


def test_invalid_aggregation_and_bootstrap_weights(fit):
    with pytest.raises(InvalidOptionError, match="kind"):
        fit.aggregate("dynamic")
    with pytest.raises(InvalidOptionError, match="bootstrap_weights='normal'"):
        CallawaySantAnna(se="bootstrap", bootstrap_weights="normal", seed=1)
    with pytest.raises(InvalidOptionError, match="bootstrap_weights='normal'"):
        CallawaySantAnna(bootstrap_weights="normal")  # checked even with analytic SEs
    with pytest.raises(InvalidOptionError, match="anticipation=True"):
        CallawaySantAnna(anticipation=True)


def test_panel_without_cohort():
    panel = Panel(data_copy(), unit="unit", time="time", outcome="y")
    with pytest.raises(PanelError, match="cohort"):
        CallawaySantAnna().fit(panel)


@pytest.mark.parametrize("control", ["never", "notyet"])
def test_everyone_treated_at_once(control):
    data = data_copy().assign(cohort=4)
    panel = staggered_panel(data)
    with pytest.raises(NoComparisonUnitsError, match="no comparison group"):
        CallawaySantAnna(control_group=control).fit(panel)


def test_no_never_treated_last_cohort_is_the_comparison():
    cfg = Config(never_treated=False)
    with pytest.warns(EvaluationWarning, match="last cohort .*6.* serves as the never-treated"):
        fit = estimator_for(cfg).fit(panel_for(cfg))
    # periods from the last cohort on are dropped; the last cohort gets no ATT
    assert fit.info["periods"] == COHORTS[-1] - 1
    assert sorted(set(fit.table["group"])) == list(COHORTS[:-1])
    assert fit.info["control group"] == "last cohort 6"


@pytest.mark.parametrize("cfg", NO_NEVER, ids=lambda c: c.id)
def test_no_never_treated_warns_like_csdid(cfg):
    _, caught = ours(cfg)
    assert any(issubclass(w.category, EvaluationWarning) and "last cohort" in str(w.message)
               for w in caught)
    assert reference(cfg).MP["n"] == ours(cfg)[0].info["units"]

