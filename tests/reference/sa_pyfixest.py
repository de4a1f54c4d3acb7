"""Reference values for the Sun-Abraham saturated event study, computed with pyfixest.

Run in a separate environment (pyfixest is not a dependency of the package)::

    python3 -m venv /tmp/pfvenv && /tmp/pfvenv/bin/pip install pyfixest==0.60.0
    /tmp/pfvenv/bin/python tests/reference/sa_pyfixest.py

It reads ``twfe_panel.csv`` (300 units x 8 periods, cohorts 0 = never treated, 3, 5, 7)
and writes ``sa_pyfixest.json``.

The estimator is ``pf.event_study(..., estimator="saturated")`` (pyfixest 0.60.0,
``pyfixest/did/saturated_twfe.py``), i.e. the regression

    y ~ i(rel_time, first_treated_period, ref=-1, ref2=0) | unit + time

with ``rel_time = time - cohort`` for treated cohorts (``inf`` for never-treated units)
and ``first_treated_period = cohort`` (0 for never treated). This gives one dummy per
observed (cohort g > 0, relative period e != -1) cell; the never-treated units and the
e = -1 period of every cohort are the omitted category. There is no binning: every
observed relative period of every cohort gets its own dummy (21 terms here).

Per-period aggregates (``fit.aggregate()``, "shares" weighting) are
``sum_g w_{g,e} beta_{g,e}`` with ``w_{g,e} = n_{g,e} / sum_g' n_{g',e}``, where
``n_{g,e}`` counts observations of cohort g at relative period e (treated observations
for e >= 0, untreated ones for e < 0), and standard error ``sqrt(w' V w)`` (weights held
fixed, no weight-uncertainty term).

Keys ``saturated/{unit,cluster}/{ssc}``: CRV1 clustered by unit or by the ``cluster``
column, with

* ``pyfixest``: what ``pf.event_study`` reports (pyfixest default
  ``ssc(k_adj=True, k_fixef="nonnested", G_adj=True)``): factor
  ``G/(G-1) * (N-1)/(N-K)`` with K = 21 coefficients + 7 (time FE) + 1 (unit FE are nested
  in the clusters, counted as one) = 29;
* ``none``: no small-sample factor (the package default);
* ``small_sample``: ``G/(G-1) * (N-1)/(N-K)`` with K = 21 (fixed effects not counted,
  the package's ``small_sample=True`` convention from ``twfe_pyfixest.py``).

The script also re-derives everything with dense NumPy least squares and asserts
agreement (differences are recorded under ``checks``).
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyfixest as pf
from pyfixest.did.saturated_twfe import _compute_lincomb_stats, compute_period_weights

HERE = Path(__file__).resolve().parent
FORMULA = "y ~ i(rel_time, first_treated_period, ref = -1, ref2=0) | unit + time"
TERM = re.compile(r"^rel_time::(?P<e>[^:]+):first_treated_period::(?P<g>.+)$")


def split_terms(terms: list[str]) -> tuple[list[int], list[int]]:
    """Cohort and relative period of each ``rel_time::e:first_treated_period::g`` term."""
    parsed = [TERM.match(t) for t in terms]
    return [int(m["g"]) for m in parsed], [int(float(m["e"])) for m in parsed]


def aggregate(fit, weights: pd.DataFrame) -> dict:
    """Replicates ``SaturatedEventStudy.aggregate(agg="period", weighting="shares")``."""
    cohorts, rels = split_terms(list(fit._coefnames))
    w = weights.set_index(["cohort", "rel_time"])["weight"]
    periods = sorted(set(rels))
    est, se = [], []
    for e in periods:
        R = np.array([w.loc[(g, r)] if r == e else 0.0 for g, r in zip(cohorts, rels)])
        stats = _compute_lincomb_stats(R=R, coefs=fit._beta_hat, vcov=fit._vcov)
        est.append(float(stats["Estimate"]))
        se.append(float(stats["Std. Error"]))
    return {"rel_time": periods, "estimate": est, "std_error": se}


def numpy_check(data: pd.DataFrame, cluster: str, small: str) -> dict:
    """Dense re-derivation: OLS on cell dummies + unit + time dummies, CRV1 via FWL."""
    ev = data["time"] - data["cohort"]
    cells = sorted({(g, e) for g, e in zip(data["cohort"], ev) if g > 0 and e != -1},
                   key=lambda c: (c[1], c[0]))
    X = np.column_stack([((data["cohort"] == g) & (ev == e)).to_numpy(float)
                         for g, e in cells])
    fe = np.hstack([pd.get_dummies(data["unit"]).to_numpy(float),
                    pd.get_dummies(data["time"]).to_numpy(float)[:, 1:]])
    y = data["y"].to_numpy()
    Xt = X - fe @ np.linalg.lstsq(fe, X, rcond=None)[0]
    yt = y - fe @ np.linalg.lstsq(fe, y, rcond=None)[0]
    bread = np.linalg.inv(Xt.T @ Xt)
    beta = bread @ Xt.T @ yt
    u = yt - Xt @ beta
    meat = np.zeros_like(bread)
    for c in np.unique(data[cluster]):
        s = Xt[(data[cluster] == c).to_numpy()].T @ u[(data[cluster] == c).to_numpy()]
        meat += np.outer(s, s)
    V = bread @ meat @ bread
    N, k, G = len(data), X.shape[1], data[cluster].nunique()
    K = {"pyfixest": k + (data["time"].nunique() - 1) + 1, "small_sample": k}.get(small)
    if K is not None:
        V *= (N - 1) / (N - K) * G / (G - 1)
    return {"cells": cells, "beta": beta, "V": V}


def main() -> None:
    data = pd.read_csv(HERE / "twfe_panel.csv")
    out: dict = {}
    checks: dict = {}
    for cluster in ("unit", "cluster"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # beta warning + "variables dropped" (empty cells)
            es = pf.event_study(data, yname="y", idname="unit", tname="time",
                                gname="cohort", estimator="saturated", cluster=cluster)
            es_agg = es.aggregate()
        prepared = es._data  # has rel_time, first_treated_period, is_treated
        weights = compute_period_weights(data=prepared, cohort="cohort", period="rel_time",
                                         treatment="is_treated")
        weights = weights[weights["rel_time"] != np.inf].copy()
        weights["rel_time"] = weights["rel_time"].astype(int)
        for ssc_name, ssc in (("pyfixest", pf.ssc()),
                              ("none", pf.ssc(k_adj=False, G_adj=False)),
                              ("small_sample", pf.ssc(k_adj=True, k_fixef="none",
                                                      G_adj=True))):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fit = pf.feols(FORMULA, data=prepared, vcov={"CRV1": cluster}, ssc=ssc)
            terms = list(fit._coefnames)
            cohorts, rels = split_terms(terms)
            agg = aggregate(fit, weights)
            if ssc_name == "pyfixest":  # identical to the event_study object itself
                assert terms == list(es._coefnames)
                assert np.array_equal(fit._beta_hat, es._beta_hat)
                assert np.allclose(fit._se, es._se, rtol=0, atol=1e-14)
                assert np.allclose(agg["estimate"], es_agg["Estimate"].astype(float),
                                   rtol=0, atol=1e-14)
                assert np.allclose(agg["std_error"], es_agg["Std. Error"].astype(float),
                                   rtol=0, atol=1e-14)
            ref = numpy_check(data, cluster, ssc_name)
            assert ref["cells"] == list(zip(cohorts, rels))
            d_beta = float(np.abs(ref["beta"] - fit._beta_hat).max())
            d_se = float(np.abs(np.sqrt(np.diag(ref["V"])) - fit._se).max())
            assert d_beta < 1e-9 and d_se < 1e-9, (d_beta, d_se)
            key = f"saturated/{cluster}/{ssc_name}"
            checks[key] = {"max_abs_diff_estimate_vs_numpy": d_beta,
                           "max_abs_diff_se_vs_numpy": d_se}
            out[key] = {
                "terms": terms,
                "cohort": cohorts,
                "rel_time": rels,
                "estimate": fit._beta_hat.tolist(),
                "std_error": fit._se.tolist(),
                "ssc_factor": float(np.ravel(fit._ssc)[0]),
                "df_k": int(fit._df_k),
                "n_clusters": int(np.ravel(fit._G)[0]),
                "aggregate": agg,
            }
    nonzero = weights[weights["weight"] > 0].sort_values(["rel_time", "cohort"])
    out["aggregation_weights"] = {
        "cohort": nonzero["cohort"].astype(int).tolist(),
        "rel_time": nonzero["rel_time"].tolist(),
        "weight": nonzero["weight"].tolist(),
    }
    out["checks"] = checks
    out["formula"] = FORMULA
    out["versions"] = {"pyfixest": pf.__version__, "numpy": np.__version__,
                       "pandas": pd.__version__}
    (HERE / "sa_pyfixest.json").write_text(json.dumps(out, indent=2) + "\n")
    for key, val in out.items():
        if key.startswith("saturated/"):
            print(key, val["terms"][0], val["estimate"][0], val["std_error"][0],
                  "agg e=0:", val["aggregate"]["estimate"][5], val["aggregate"]["std_error"][5])


if __name__ == "__main__":
    main()
