"""Coverage of few-cluster inference for the regression-based DiD estimators, and timings.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/few_cluster.py [--reps 300]``.

Design: 20 clusters of unequal size (4 to 16 units, 200 units), 8 periods, the first
``n_treated`` clusters (the larger ones) adopt in period 5; outcome = unit effect + period
effect + cluster x period shock with cluster-specific scale (0.5 to 2, treated clusters the
noisiest) + unit noise + a homogeneous effect 1, so every estimator targets 1. Prints the
share of 95 % intervals covering 1 for CR0 with normal and t(G-1) critical values, CR2 with
Bell-McCaffrey df, WCR with Rademacher and Webb weights and WCU (Rademacher), for static TWFE,
BJS (overall effect) and two-stage DiD; then the time of 9,999 WCR draws for TWFE on
100,000 units x 20 periods in 15 clusters and of ``wildboottest`` on a smaller panel.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd
from scipy.special import stdtrit

from evaluation import Panel
from evaluation.errors import FewClustersWarning
from evaluation.estimators.did import TwoWayFixedEffects
from evaluation.estimators.imputation import ImputationDiD, TwoStageDiD

SIZES = np.array([16, 15, 14, 13, 12, 12, 11, 11, 10, 10, 9, 9, 8, 8, 7, 7, 6, 6, 5, 4])
METHODS = {"CR0 normal": {}, "CR0 t(G-1)": {}, "CR2 + BM": {"se": "cr2"},
           "WCR Rademacher": {"se": "wild"}, "WCR Webb": {"se": "wild", "wild_weights": "webb"},
           "WCU Rademacher": {"se": "wild", "wild_null": "unrestricted"}}


def simulate(n_treated: int, rng: np.random.Generator, periods: int = 8) -> Panel:
    """One draw of the few-cluster design (see the module docstring)."""
    cluster = np.repeat(np.arange(SIZES.size), SIZES)
    units = cluster.size
    unit = np.repeat(np.arange(units), periods)
    time_ = np.tile(np.arange(1, periods + 1), units)
    treated_cluster = np.arange(SIZES.size) < n_treated
    cohort = np.where(treated_cluster[cluster], 5, 0)
    scale = np.linspace(2.0, 0.5, SIZES.size)
    shock = rng.normal(size=(SIZES.size, periods)) * scale[:, None]
    y = (rng.normal(size=units)[unit] + 0.1 * time_ + shock[cluster[unit], time_ - 1]
         + 1.0 * ((cohort[unit] > 0) & (time_ >= 5)) + rng.normal(size=unit.size))
    data = pd.DataFrame({"unit": unit, "time": time_, "y": y, "cohort": cohort[unit],
                         "cluster": cluster[unit]})
    return Panel(data, unit="unit", time="time", outcome="y", cohort="cohort",
                 never_treated=0, cluster="cluster")


def covers(estimator: type, options: dict, method: str, panel: Panel, draws: int) -> bool:
    """Whether the method's 95 % interval of the overall/static effect covers 1."""
    extra = {"draws": draws} if options.get("se") == "wild" else {}
    fit = estimator(**options, **extra).fit(panel)
    frame = fit.to_frame()
    row = frame[frame["term"] == "overall"] if "overall" in set(frame["term"]) else frame
    row = row.iloc[0]
    if method == "CR0 t(G-1)":
        half = stdtrit(SIZES.size - 1, 0.975) * row["std_error"]
        return bool(row["estimate"] - half <= 1 <= row["estimate"] + half)
    return bool(row["ci_lower"] <= 1 <= row["ci_upper"])


def coverage_table(reps: int, draws: int, seed: int = 1) -> pd.DataFrame:
    estimators = {"TWFE": (TwoWayFixedEffects, {}), "BJS": (ImputationDiD, {}),
                  "two-stage": (TwoStageDiD, {})}
    rows = []
    for n_treated in (2, 4, 10):
        rng = np.random.default_rng(seed + n_treated)
        hits = {(e, m): 0 for e in estimators for m in METHODS}
        for _ in range(reps):
            panel = simulate(n_treated, rng)
            for name, (estimator, base) in estimators.items():
                for method, options in METHODS.items():
                    hits[name, method] += covers(estimator, {**base, **options}, method,
                                                 panel, draws)
        for name in estimators:
            rows.append({"treated clusters": n_treated, "estimator": name,
                         **{m: hits[name, m] / reps for m in METHODS}})
    return pd.DataFrame(rows)


def timing() -> tuple[float, float, float]:
    """Seconds for 9,999 WCR draws (TWFE, 100,000 x 20, 15 clusters) and wildboottest."""
    start = time.perf_counter()
    rng = np.random.default_rng(1)
    units, periods, clusters = 100_000, 20, 15
    unit = np.repeat(np.arange(units), periods)
    time_ = np.tile(np.arange(1, periods + 1), units)
    cluster = rng.integers(0, clusters, units)
    y = rng.normal(size=unit.size) + rng.normal(size=(clusters, periods))[cluster[unit],
                                                                          time_ - 1]
    data = pd.DataFrame({"unit": unit, "time": time_, "y": y,
                         "cohort": np.where(cluster < 4, 11, 0)[unit],
                         "cluster": cluster[unit]})
    panel = Panel(data, unit="unit", time="time", outcome="y", cohort="cohort",
                  never_treated=0, cluster="cluster")
    fit_start = time.perf_counter()
    TwoWayFixedEffects(se="wild", seed=1).fit(panel)
    ours_fit = time.perf_counter() - fit_start
    ours_total = time.perf_counter() - start
    # The same test with ``wildboottest`` on 10,000 x 20 (partialled regression).
    from wildboottest.wildboottest import WildboottestCL

    small = panel.data[panel.data["unit"] < 10_000]
    small_panel = Panel(small, unit="unit", time="time", outcome="y", cohort="cohort",
                        never_treated=0, cluster="cluster")
    ours_small = time.perf_counter()
    TwoWayFixedEffects(se="wild", seed=1, wild_weights="webb").fit(small_panel)
    ours_small = time.perf_counter() - ours_small
    from evaluation.estimators.did import fit_two_way

    status = small_panel.status_wide()[small_panel.unit_codes, small_panel.time_codes]
    data2 = fit_two_way(small_panel, status.astype(float)[:, None]).partialled
    theirs = time.perf_counter()
    boot = WildboottestCL(X=data2.x, Y=data2.y, cluster=data2.cluster, R=np.ones(1), B=9999,
                          seed=1, parallel=False)
    boot.get_scores(bootstrap_type="11", impose_null=True)
    boot.get_weights(weights_type="webb")
    boot.get_numer()
    boot.get_denom()
    boot.get_tboot()
    boot.get_vcov()
    boot.get_tstat()
    boot.get_pvalue()
    theirs = time.perf_counter() - theirs
    print(f"9,999 WCR draws, TWFE 100,000 x 20, 15 clusters: fit {ours_fit:.2f} s, whole "
          f"process incl. data and panel {ours_total:.2f} s")
    print(f"10,000 x 20 (Webb, 9,999 draws, p-value and CI): ours {ours_small:.2f} s, "
          f"wildboottest (p-value only, incl. numba compile) {theirs:.2f} s, "
          f"ratio {theirs / ours_small:.1f}")
    return ours_fit, ours_small, theirs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=300)
    parser.add_argument("--draws", type=int, default=999)
    args = parser.parse_args()
    warnings.simplefilter("ignore", FewClustersWarning)
    start = time.perf_counter()
    table = coverage_table(args.reps, args.draws)
    pd.set_option("display.width", 200)
    print(f"95 % coverage of the true effect, {args.reps} replications, 20 clusters, "
          f"wild bootstraps with {args.draws} draws (Monte Carlo s.e. about "
          f"{np.sqrt(0.95 * 0.05 / args.reps):.3f}); {time.perf_counter() - start:.0f} s")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    timing()


if __name__ == "__main__":
    main()
