"""Coverage of few-cluster inference for every estimator and inference method, and timings.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/few_cluster.py [--reps 400]
[--ri-reps 200] [--designs unequal,equal] [--estimators TWFE,BJS,two-stage,SA,CS]``.

Designs (20 clusters, 8 periods, the first ``n_treated`` clusters adopt in period 5, a
homogeneous effect 1, so every estimator targets 1; outcome = unit effect + trend +
cluster x period shock + unit noise):

- ``unequal``: clusters of 4 to 16 units (200 units), the treated ones the largest, and
  cluster shocks with scale 2 (largest) to 0.5 (smallest): the treated clusters are also the
  noisiest, the case where MacKinnon and Webb (2017, 2018) show that every cluster-based
  method (wild bootstrap included) and randomization inference lose their guarantees.
- ``equal``: 10 units per cluster, shock scale 1 everywhere: the case where the literature
  says few-cluster methods (CR2 with Bell-McCaffrey df, Imbens and Kolesar 2016; the
  restricted wild bootstrap, Cameron, Gelbach and Miller 2008; randomization inference,
  MacKinnon and Webb 2020) should be close to exact even with few treated clusters.

Prints the share of 95 % intervals covering 1 for each estimator x method, then the
randomization-inference and Conley-Taber rows (on fewer replications: each randomization
test refits the estimator on 99 re-assignments), then timings of the wild bootstrap.

Measured 2026-11-30 (300 replications; SA 400; randomization and Conley-Taber 100), with 4
of 20 clusters treated (unequal / equal design): CR2 + Bell-McCaffrey 0.940 / 0.960 for
TWFE, BJS and two-stage, 0.940 / 0.950 for SA; CS cluster jackknife 0.930 / 0.950; CR0
normal 0.84-0.85 / 0.87-0.89; WCR Rademacher 0.913 / 0.940 (TWFE), 1.000 (BJS, two-stage);
randomization (TWFE) 0.91 / 0.98. These are the recommendations of
:data:`evaluation.inference.clusters.ADVICE`.
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd

from evaluation import Panel
from evaluation.errors import EvaluationWarning
from evaluation.estimators.callaway_santanna import CallawaySantAnna
from evaluation.estimators.did import TwoWayFixedEffects
from evaluation.estimators.imputation import ImputationDiD, TwoStageDiD
from evaluation.estimators.sun_abraham import SunAbraham
from evaluation.inference.conley_taber import conley_taber
from evaluation.inference.randomization import randomization_inference

UNEQUAL_SIZES = np.array([16, 15, 14, 13, 12, 12, 11, 11, 10, 10, 9, 9, 8, 8, 7, 7, 6, 6, 5, 4])
DESIGNS = {"unequal": (UNEQUAL_SIZES, np.linspace(2.0, 0.5, 20)),
           "equal": (np.full(20, 10), np.ones(20))}
#: Inference methods of the regression-based estimators (options of the estimator).
REGRESSION_METHODS = {"CR0 normal": {}, "CR0 t(G-1)": {"t": True}, "CR2 + BM": {"se": "cr2"},
                      "WCR Rademacher": {"se": "wild"},
                      "WCR Webb": {"se": "wild", "wild_weights": "webb"},
                      "WCU Rademacher": {"se": "wild", "wild_null": "unrestricted"}}
#: Inference methods of Callaway-Sant'Anna.
CS_METHODS = {"CR0 normal": {}, "CR0 t(G-1)": {"critical_values": "t"},
              "CR2 t(G-1)": {"se": "cr2"}, "CR3 jackknife t(G-1)": {"se": "cr3"},
              "bootstrap Webb": {"se": "bootstrap", "bootstrap_weights": "webb"},
              "bootstrap Webb t(G-1)": {"se": "bootstrap", "bootstrap_weights": "webb",
                                        "critical_values": "t"}}
ESTIMATORS: dict[str, tuple[Callable, dict, dict]] = {
    "TWFE": (TwoWayFixedEffects, {}, REGRESSION_METHODS),
    "BJS": (ImputationDiD, {}, REGRESSION_METHODS),
    "two-stage": (TwoStageDiD, {}, REGRESSION_METHODS),
    "SA": (SunAbraham, {}, REGRESSION_METHODS),
    "CS": (CallawaySantAnna, {}, CS_METHODS),
}
REGISTRY_NAMES = {"TWFE": "twfe", "BJS": "bjs", "two-stage": "did2s", "SA": "sa", "CS": "cs"}


def simulate_data(n_treated: int, rng: np.random.Generator, design: str = "unequal",
                  periods: int = 8) -> pd.DataFrame:
    """One draw of a few-cluster design (see the module docstring)."""
    sizes, scale = DESIGNS[design]
    cluster = np.repeat(np.arange(sizes.size), sizes)
    units = cluster.size
    unit = np.repeat(np.arange(units), periods)
    time_ = np.tile(np.arange(1, periods + 1), units)
    cohort = np.where(np.arange(sizes.size) < n_treated, 5, 0)[cluster]
    shock = rng.normal(size=(sizes.size, periods)) * scale[:, None]
    treated = (cohort[unit] > 0) & (time_ >= 5)
    y = (rng.normal(size=units)[unit] + 0.1 * time_ + shock[cluster[unit], time_ - 1]
         + 1.0 * treated + rng.normal(size=unit.size))
    return pd.DataFrame({"unit": unit, "time": time_, "y": y, "cohort": cohort[unit],
                         "cluster": cluster[unit], "effect": treated.astype(float)})


def to_panel(data: pd.DataFrame, outcome: str = "y") -> Panel:
    """The panel of :func:`simulate_data`, clustered by ``cluster``."""
    return Panel(data, unit="unit", time="time", outcome=outcome, cohort="cohort",
                 never_treated=0, cluster="cluster")


def simulate(n_treated: int, rng: np.random.Generator, periods: int = 8) -> Panel:
    """One draw of the ``unequal`` design as a panel."""
    return to_panel(simulate_data(n_treated, rng, "unequal", periods))


def overall_row(fit) -> pd.Series:
    """The overall (or static) effect's row of a result."""
    frame = fit.to_frame()
    rows = frame[frame["term"] == "overall"] if "overall" in set(frame["term"]) else frame
    return rows.iloc[0]


def covers(name: str, options: dict, panel: Panel, draws: int) -> bool:
    """Whether the method's 95 % interval of the overall/static effect covers 1."""
    estimator, base, _ = ESTIMATORS[name]
    options = dict(options)
    t_based = options.pop("t", False)
    if options.get("se") in ("wild", "bootstrap"):
        options["draws"] = draws
    fit = estimator(**base, **options).fit(panel)
    if name == "CS":
        fit = fit.aggregate("simple")
    row = overall_row(fit)
    if t_based:
        from scipy.special import stdtrit

        half = stdtrit(panel.clusters.size - 1, 0.975) * row["std_error"]
        return bool(row["estimate"] - half <= 1 <= row["estimate"] + half)
    return bool(row["ci_lower"] <= 1 <= row["ci_upper"])


def coverage_table(reps: int, draws: int, designs: list[str], estimators: list[str],
                   seed: int = 1) -> pd.DataFrame:
    """Coverage of every estimator x method (one row per design, treated clusters, estimator)."""
    rows = []
    for design in designs:
        for n_treated in (2, 4, 10):
            rng = np.random.default_rng(seed + n_treated)
            hits: dict[tuple[str, str], int] = {}
            for _ in range(reps):
                panel = to_panel(simulate_data(n_treated, rng, design))
                for name in estimators:
                    for method, options in ESTIMATORS[name][2].items():
                        hits[name, method] = (hits.get((name, method), 0)
                                              + covers(name, options, panel, draws))
            rows += report_block(design, n_treated, hits, reps)
    return wide(pd.DataFrame(rows))


def report_block(design: str, n_treated: int, hits: dict[tuple[str, str], int],
                 reps: int) -> list[dict]:
    """Coverage rows of one design x treated clusters, printed as soon as they are done."""
    block = [{"design": design, "treated": n_treated, "estimator": name, "method": method,
              "coverage": hit / reps} for (name, method), hit in hits.items()]
    print(pd.DataFrame(block).to_string(index=False), flush=True)
    return block


def wide(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per estimator x method, one column per design x treated clusters."""
    return rows.pivot_table(index=["estimator", "method"], columns=["design", "treated"],
                            values="coverage", sort=False)


def permutation_table(reps: int, designs: list[str], estimators: list[str],
                      permutations: int = 99, seed: int = 7) -> pd.DataFrame:
    """Coverage of randomization inference (studentised) and of Conley-Taber.

    Randomization inference tests :math:`\\theta = 1` by re-assigning treatment across
    clusters on the outcome with the hypothesised effect removed (:math:`y - 1 \\cdot D`),
    which is the test the package inverts for its intervals; covering means not rejected.
    """
    rows = []
    for design in designs:
        for n_treated in (2, 4, 10):
            rng = np.random.default_rng(seed + n_treated)
            hits: dict[tuple[str, str], int] = {}
            for _ in range(reps):
                data = simulate_data(n_treated, rng, design)
                data["y0"] = data["y"] - data["effect"]
                null_panel = to_panel(data, "y0")
                for name in estimators:
                    test = randomization_inference(
                        null_panel, REGISTRY_NAMES[name], permutations=permutations,
                        seed=int(rng.integers(2**31)), ci=False, progress=False)
                    p_value = float(test.to_frame()["p_value"].iloc[0])
                    hits[name, "randomization (t)"] = (hits.get((name, "randomization (t)"), 0)
                                                       + (p_value > 0.05))
                panel = to_panel(data)
                for method in ("none", "ferman-pinto"):
                    if method == "ferman-pinto" and design == "equal":
                        continue  # needs unequal cluster sizes
                    ct = conley_taber(panel, heteroskedasticity=method, draws=20_000,
                                      seed=int(rng.integers(2**31)))
                    key = ("TWFE", f"Conley-Taber ({method})")
                    hits[key] = hits.get(key, 0) + (ct.ci_lower <= 1 <= ct.ci_upper)
            rows += report_block(design, n_treated, hits, reps)
    return wide(pd.DataFrame(rows))


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
    parser.add_argument("--reps", type=int, default=400)
    parser.add_argument("--ri-reps", type=int, default=200)
    parser.add_argument("--draws", type=int, default=999)
    parser.add_argument("--designs", default="unequal,equal")
    parser.add_argument("--estimators", default=",".join(ESTIMATORS))
    parser.add_argument("--ri-estimators", default="TWFE")
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: "
                        "coverage, permutation, timing")
    args = parser.parse_args()
    designs, estimators = args.designs.split(","), args.estimators.split(",")
    skip = set(filter(None, args.skip.split(",")))
    warnings.simplefilter("ignore", EvaluationWarning)
    pd.set_option("display.width", 250)
    if "coverage" not in skip:
        start = time.perf_counter()
        table = coverage_table(args.reps, args.draws, designs, estimators)
        print(f"95 % coverage of the true effect, {args.reps} replications, 20 clusters, "
              f"bootstraps with {args.draws} draws (Monte Carlo s.e. about "
              f"{np.sqrt(0.95 * 0.05 / args.reps):.3f}); {time.perf_counter() - start:.0f} s")
        print(table.to_string(float_format=lambda v: f"{v:.3f}"), flush=True)
    if "permutation" not in skip:
        start = time.perf_counter()
        table = permutation_table(args.ri_reps, designs, args.ri_estimators.split(","))
        print(f"\nRandomization inference (studentised, 99 re-assignments) and "
              f"Conley-Taber, {args.ri_reps} replications (MC s.e. about "
              f"{np.sqrt(0.95 * 0.05 / args.ri_reps):.3f}); {time.perf_counter() - start:.0f} s")
        print(table.to_string(float_format=lambda v: f"{v:.3f}"), flush=True)
    if "timing" not in skip:
        timing()


if __name__ == "__main__":
    main()
