"""Reference values of the HonestDiD sensitivity analysis from independent implementations.

Three steps, each in its own environment (neither package is a dependency of this one:
``honestdid`` 0.1.1 pulls in torch and CUDA, ``moderndid`` polars and cvxpy):

    .venv/bin/python tests/reference/honestdid_reference.py inputs
    /tmp/mdvenv/bin/python tests/reference/honestdid_reference.py ehec       # moderndid[didhonest]
    /tmp/hdvenv/bin/python tests/reference/honestdid [flci|sets]
    /tmp/mdvenv/bin/python tests/reference/honestdid_reference.py moderndid

``inputs`` writes the event studies (betahat, sigma) of two panels of this package (CS with a
universal base period and Sun-Abraham) to ``honestdid_inputs.json``; ``ehec`` adds the
HonestDiD README example (Medicaid expansion, ``dins`` on year-by-treatment dummies with state
and year fixed effects, 2014 adopters against never-adopters, 2008-2015, clustered by state).
The last two write ``honestdid_values.json`` entries computed by each package on those inputs.
"""

import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
INPUTS = HERE / "honestdid_inputs.json"
VALUES = HERE / "honestdid_values.json"
M_SD = [0.0, 0.02, 0.05]
M_RM = [0.5, 1.0]
GRID_POINTS = 1000
#: ``honestdid flci``: only the original intervals and the FLCIs (the conditional sets take
#: tens of minutes per case with honestdid's cvxpy-based code).
FLCI_ONLY = sys.argv[2:] == ["flci"]
#: ``honestdid sets``: only the conditional / hybrid sets, added to the stored FLCIs.
SETS_ONLY = sys.argv[2:] == ["sets"]


def inputs():
    sys.path.insert(0, str(HERE.parent))
    from _builders import staggered_panel

    from evaluation.estimators.callaway_santanna import CallawaySantAnna
    from evaluation.estimators.sun_abraham import SunAbraham
    from evaluation.inference.honest_result import event_study_inputs
    from evaluation.simulate import simulate_staggered

    out = json.loads(INPUTS.read_text()) if INPUTS.exists() else {}
    sim = simulate_staggered(n_units=600, n_periods=8, cohorts=(4, 6), effect=1.0, dynamic=0.2,
                             seed=11)
    panel = staggered_panel(sim.data)
    fits = {"cs": CallawaySantAnna(base_period="universal").fit(panel).aggregate("event"),
            "sa": SunAbraham().fit(panel)}
    for name, res in fits.items():
        b, s, npre, _, _ = event_study_inputs(res)
        # HonestDiD needs at most 3 pre / 3 post here to keep the reference runs short.
        keep = np.r_[np.arange(npre - 3, npre), np.arange(npre, npre + 3)]
        out[name] = {"betahat": b[keep].tolist(), "sigma": s[np.ix_(keep, keep)].tolist(),
                     "num_pre": 3, "num_post": 3}
    INPUTS.write_text(json.dumps(out, indent=1))


def ehec():
    from moderndid.core.data import load_ehec

    df = load_ehec().to_pandas()
    df = df[(df["year"] <= 2015) & (df["yexp2"].isna() | (df["yexp2"] == 2014))]
    df = df.sort_values(["stfips", "year"])
    years = sorted(df["year"].unique())
    treated = (df["yexp2"] == 2014).to_numpy(float)
    cols = [y for y in years if y != 2013]
    x = np.column_stack([treated * (df["year"].to_numpy() == y) for y in cols])
    y = df["dins"].to_numpy(float)
    state, year = df["stfips"].to_numpy(), df["year"].to_numpy()

    def demean(v):  # balanced panel: two-way within transformation
        v = np.asarray(v, float)
        out = v.copy()
        for g in (state, year):
            means = {k: out[g == k].mean(axis=0) for k in np.unique(g)}
            out = out - np.array([means[k] for k in g])
        return out

    xd, yd = demean(x), demean(y)
    coef, *_ = np.linalg.lstsq(xd, yd, rcond=None)
    resid = yd - xd @ coef
    bread = np.linalg.inv(xd.T @ xd)
    meat = sum(np.outer(xd[state == g].T @ resid[state == g], xd[state == g].T @ resid[state == g])
               for g in np.unique(state))
    n_g = len(np.unique(state))
    vcov = n_g / (n_g - 1) * bread @ meat @ bread
    out = json.loads(INPUTS.read_text())
    out["ehec"] = {"betahat": coef.tolist(), "sigma": vcov.tolist(),
                   "num_pre": int(sum(c < 2013 for c in cols)),
                   "num_post": int(sum(c > 2013 for c in cols)),
                   "event_years": [int(c) for c in cols]}
    INPUTS.write_text(json.dumps(out, indent=1))


def _grid(case, m):
    """Explicit theta grid (both packages changed their default grids between versions)."""
    b, s, npre = np.array(case["betahat"]), np.array(case["sigma"]), case["num_pre"]
    sd = float(np.sqrt(s[npre, npre]))
    return float(b[npre] - 20 * sd * (1 + m)), float(b[npre] + 20 * sd * (1 + m))


def honestdid():
    import honestdid.core as hd
    from scipy.optimize import brentq
    from scipy.stats import norm

    cases = json.loads(INPUTS.read_text())
    values = json.loads(VALUES.read_text()) if VALUES.exists() else {}
    out = {}
    mc_quantile = hd._qfoldednormal

    def exact_quantile(p, mu=0.0, sd=1.0, numSims=10**6, seed=0):
        mu = abs(float(mu))
        return brentq(lambda q: norm.cdf(q - mu) - norm.cdf(-q - mu) - p, 0, mu + 20, xtol=1e-14)

    for name, case in cases.items():
        b, s = np.array(case["betahat"]), np.array(case["sigma"])
        npre, npost = case["num_pre"], case["num_post"]
        if SETS_ONLY:
            if name == "sa":  # identical to cs on this panel
                continue
            res = values["honestdid 0.1.1"][name]
            hd._qfoldednormal = mc_quantile
        else:
            original = hd.constructOriginalCS(b, s, npre, npost)
            res = {"original": original[["lb", "ub"]].iloc[0].tolist()}
        for label, quantile in () if SETS_ONLY else (("flci_mc", mc_quantile),
                                                      ("flci_exact", exact_quantile)):
            hd._qfoldednormal = quantile
            res[label] = {str(m): list(hd.find_optimal_flci(b, s, M=m, numPrePeriods=npre,
                                                            numPostPeriods=npost)["FLCI"])
                          for m in M_SD}
        hd._qfoldednormal = mc_quantile
        if FLCI_ONLY:
            out[name] = res
            continue
        res["rm_clf"], res["rm_conditional"], res["sd_conditional"] = {}, {}, {}
        for m in M_RM:
            lb, ub = _grid(case, m)
            for key, flag in (("rm_clf", "LF"), ("rm_conditional", "ARP")):
                try:
                    cs = hd.computeConditionalCS_DeltaRM(b, s, npre, npost, Mbar=m,
                                                         hybrid_flag=flag,
                                                         gridPoints=GRID_POINTS, grid_lb=lb,
                                                         grid_ub=ub)
                except TypeError as exc:  # honestdid 0.1.1 fails on some nuisance problems
                    res[key][str(m)] = f"honestdid error: {exc}"
                    continue
                acc = cs["grid"][cs["accept"] > 0]
                res[key][str(m)] = [float(acc.min()), float(acc.max())] if len(acc) else None
        for m in M_SD[1:]:
            lb, ub = _grid(case, m)
            try:
                cs = hd.computeConditionalCS_DeltaSD(b, s, npre, npost, M=m, hybrid_flag="ARP",
                                                     gridPoints=GRID_POINTS, grid_lb=lb,
                                                     grid_ub=ub)
            except TypeError as exc:
                res["sd_conditional"][str(m)] = f"honestdid error: {exc}"
                continue
            acc = cs["grid"][cs["accept"] > 0]
            res["sd_conditional"][str(m)] = [float(acc.min()), float(acc.max())]
        out[name] = res
        print(name, res, flush=True)
        values["honestdid 0.1.1"] = {**values.get("honestdid 0.1.1", {}), **out}
        VALUES.write_text(json.dumps(values, indent=1))
    values["honestdid 0.1.1"] = {**values.get("honestdid 0.1.1", {}), **out}
    values["grid"] = {"points": GRID_POINTS, "bounds": "betahat[num_pre] -/+ 20 se (1 + M)"}
    VALUES.write_text(json.dumps(values, indent=1))


def moderndid():
    from moderndid.didhonest.fixed_length_ci import compute_flci

    cases = json.loads(INPUTS.read_text())
    values = json.loads(VALUES.read_text()) if VALUES.exists() else {}
    out = {}
    for name, case in cases.items():
        b, s = np.array(case["betahat"]), np.array(case["sigma"])
        out[name] = {"flci": {str(m): [float(v) for v in compute_flci(
            b, s, m, case["num_pre"], case["num_post"]).flci] for m in M_SD}}
    values["moderndid 0.2.0"] = out
    VALUES.write_text(json.dumps(values, indent=1))


if __name__ == "__main__":
    {"inputs": inputs, "ehec": ehec, "honestdid": honestdid, "moderndid": moderndid}[sys.argv[1]]()
