"""Municipal headline under area shocks: the cluster jackknife vs randomization over areas.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/municipal_area_inference.py
[--scenario area_shock] [--reps 100] [--permutations 99]``.

Each replication simulates the municipal panel of the scenario (the country fixed by
``design_seed``, outcomes by seed 1000 + replication), estimates the report's wave-3
municipal effect on the unemployment rate (CS, never-treated comparisons, cluster jackknife
over the ELY centres with t(G-1) intervals) and tests the true effect by randomization
inference: treatment re-assigned across assignment units (a wave-3 trial area, or a
comparison municipality on its own) on the outcome with the true effect removed, the
studentised statistic, ``--permutations`` re-assignments. Prints the share of replications
whose jackknife interval covers the truth and whose randomization test does not reject it.

Measured (area_shock, 100 replications, 99 re-assignments, 2026-11-30): jackknife 0.93,
randomization over areas 0.92 (Monte Carlo s.e. about 0.025).
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import pandas as pd

from evaluation.errors import EvaluationWarning
from evaluation.estimators.callaway_santanna import CallawaySantAnna
from evaluation.inference.randomization import randomization_inference
from evaluation.panel import Panel
from evaluation.report.study import analysis_window
from evaluation.simulate import simulate_municipalities

OUTCOME = "unemployment_rate"


def replication(scenario: str, rep: int, permutations: int) -> dict:
    """Coverage of the jackknife interval and of the randomization test in one replication."""
    sim = simulate_municipalities(scenario, seed=1000 + rep, design_seed=20120901)
    first, last = analysis_window(3)
    data = sim.data[sim.data["t"].between(first, last)].copy()
    truth = sim.truth
    true_att = float(truth[(truth["design"] == "wave3") & (truth["kind"] == "overall")
                           & (truth["population"] == "treated")
                           & (truth["outcome"] == OUTCOME)]["att"].iloc[0])
    unit = np.where(data["cohort_w3"] > 0, "A" + data["area_w3"].astype(str),
                    "M" + data["municipality"].astype(str))
    data["assignment"] = pd.factorize(unit)[0].astype(float)
    panel = Panel(data, unit="municipality", time="t", outcome=OUTCOME, cohort="cohort_w3",
                  never_treated=0, cluster="ely")
    row = CallawaySantAnna(se="cr3").fit(panel).aggregate("simple").to_frame().iloc[-1]
    treated = (data["cohort_w3"] > 0) & (data["t"] >= data["cohort_w3"])
    data["y0"] = data[OUTCOME] - true_att * treated
    null_panel = Panel(data, unit="municipality", time="t", outcome="y0", cohort="cohort_w3",
                       never_treated=0, cluster="ely", covariates=["assignment"])
    test = randomization_inference(null_panel, "cs", assignment="assignment",
                                   permutations=permutations, seed=rep, ci=False,
                                   progress=False)
    return {"jackknife": bool(row["ci_lower"] <= true_att <= row["ci_upper"]),
            "randomization": bool(float(test.to_frame()["p_value"].iloc[0]) > 0.05)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="area_shock")
    parser.add_argument("--reps", type=int, default=100)
    parser.add_argument("--permutations", type=int, default=99)
    args = parser.parse_args()
    warnings.simplefilter("ignore", EvaluationWarning)
    rows = pd.DataFrame([replication(args.scenario, r, args.permutations)
                         for r in range(args.reps)])
    print(f"{args.scenario}, {args.reps} replications: coverage of the true municipal effect")
    print(rows.mean().to_string(float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
