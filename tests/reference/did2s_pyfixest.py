"""Reference values for Gardner's two-stage DiD (did2s), computed with pyfixest.

Run in a separate environment (pyfixest is not a dependency of the package)::

    python3 -m venv /tmp/pfvenv && /tmp/pfvenv/bin/pip install pyfixest==0.60.0
    /tmp/pfvenv/bin/python tests/reference/did2s_pyfixest.py

It reads ``twfe_panel.csv`` (300 units x 8 periods, cohorts 0 = never treated, 3, 5, 7)
and writes ``did2s_pyfixest.json``. Every configuration is

    pf.did2s(data, yname="y", first_stage="~ 0 | unit + time", second_stage=...,
             treatment="treated", cluster=..., weights=None or "weight")

* First stage: ``y ~ 0 | unit + time`` fitted on the rows with ``treated == 0`` only;
  ``y_tilde = y - (alpha_unit + lambda_time)`` for all rows.
* Second stage (OLS/WLS of ``y_tilde`` on all rows, no intercept):
  ``static``: ``~ 0 + treated``;
  ``dynamic``: ``~ i(rel_year, ref=-1.0)`` with ``rel_year = time - cohort`` for treated
  cohorts and ``rel_year = -1`` (the reference) for never-treated units, i.e. dummies
  ``1{cohort > 0, time - cohort = e}`` for e in -6..5 minus -1, never-treated rows all zero
  (no binning);
  ``dynamic_binned``: the same with ``rel_year`` clipped to [-4, 3] for treated cohorts
  (leads <= -4 pooled, lags >= 3 pooled, like the TWFE reference).
* Variance: pyfixest's GMM (Gardner / R did2s) cluster-robust sandwich, no small-sample
  factor:  V = (X2'X2)^-1 [sum_c psi_c psi_c'] (X2'X2)^-1,
  psi_c = X2_c' e2_c - X2'X1 (X10'X10)^-1 X10_c' e1_c, X1 = [unit dummies, time dummies],
  X10 = X1 with treated rows zeroed, e1 = y_tilde (first-stage residual), e2 = second-stage
  residual; with weights every row of X1, X2, e1, e2 is multiplied by sqrt(weight).
* Clustering by ``unit`` and by the ``cluster`` column; ``/weighted`` keys use
  ``weights="weight"``.

pyfixest recovers the first-stage fixed effects with ``scipy.sparse.linalg.lsqr`` at
``atol = btol = 1e-6`` (``Feols.fixef``), which moves the estimates by up to ~1e-6. The main
values (``estimate`` / ``std_error``) are therefore computed with that tolerance tightened
to 1e-14 (monkeypatching ``Feols.fixef``; nothing else changes) and verified against a dense
NumPy re-derivation; the unmodified pyfixest output is stored under ``lsqr_default``.
The ``imputation`` block records the Borusyak-Jaravel-Spiess imputation averages (mean of
``y_tilde`` over treated rows, overall and by event time), which equal the did2s
coefficients on ``treated`` and on the e >= 0 dummies.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyfixest as pf
from pyfixest.estimation.models.feols_ import Feols

HERE = Path(__file__).resolve().parent
FIRST_STAGE = "~ 0 | unit + time"
SECOND_STAGE = {
    "static": "~ 0 + treated",
    "dynamic": "~ i(rel_year, ref=-1.0)",
    "dynamic_binned": "~ i(rel_year_binned, ref=-1.0)",
}
TIGHT = 1e-14


@contextlib.contextmanager
def tight_fixef():
    """Run ``Feols.fixef`` (LSQR recovery of fixed effects) with a tight tolerance."""
    original = Feols.fixef

    def fixef(self, atol=TIGHT, btol=TIGHT):
        return original(self, TIGHT, TIGHT)

    Feols.fixef = fixef
    try:
        yield
    finally:
        Feols.fixef = original


def prepare(data: pd.DataFrame) -> pd.DataFrame:
    data = data.copy()
    event = (data["time"] - data["cohort"]).where(data["cohort"] > 0)
    data["rel_year"] = event.fillna(-1).astype(float)
    data["rel_year_binned"] = event.clip(lower=-4, upper=3).fillna(-1).astype(float)
    return data


def numpy_did2s(data: pd.DataFrame, spec: str, cluster: str, weights: str | None) -> dict:
    """Dense re-derivation of the two stages and of the GMM variance."""
    w = np.ones(len(data)) if weights is None else data[weights].to_numpy(float)
    sw = np.sqrt(w)
    D = data["treated"].to_numpy() == 1
    y = data["y"].to_numpy()
    X1 = np.hstack([pd.get_dummies(data["unit"]).to_numpy(float),
                    pd.get_dummies(data["time"]).to_numpy(float)[:, 1:]])
    gamma = np.linalg.lstsq(X1[~D] * sw[~D, None], y[~D] * sw[~D], rcond=None)[0]
    e1 = y - X1 @ gamma  # y_tilde
    if spec == "static":
        X2 = D[:, None].astype(float)
    else:
        col = "rel_year" if spec == "dynamic" else "rel_year_binned"
        levels = sorted(v for v in data[col].unique() if v != -1)
        X2 = np.column_stack([(data[col] == v).to_numpy(float) for v in levels])
    X2w, X1w = X2 * sw[:, None], X1 * sw[:, None]
    X10w = X1w * (~D)[:, None]
    beta = np.linalg.solve(X2w.T @ X2w, X2w.T @ (e1 * sw))
    e2 = e1 - X2 @ beta
    M = np.linalg.solve(X10w.T @ X10w, X1w.T @ X2w).T  # X2'X1 (X10'X10)^-1
    meat = np.zeros((X2.shape[1],) * 2)
    for c in np.unique(data[cluster]):
        idx = (data[cluster] == c).to_numpy()
        psi = X2w[idx].T @ (e2[idx] * sw[idx]) - M @ (X10w[idx].T @ (e1[idx] * sw[idx]))
        meat += np.outer(psi, psi)
    bread = np.linalg.inv(X2w.T @ X2w)
    return {"beta": beta, "se": np.sqrt(np.diag(bread @ meat @ bread)), "y_tilde": e1}


def run(data: pd.DataFrame, spec: str, cluster: str, weights: str | None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pf.did2s(data, yname="y", first_stage=FIRST_STAGE,
                        second_stage=SECOND_STAGE[spec], treatment="treated",
                        cluster=cluster, weights=weights)


def imputation(data: pd.DataFrame, y_tilde: np.ndarray, weights: str | None) -> dict:
    """BJS imputation averages of y_tilde over treated rows (weighted if requested)."""
    treated = data["treated"].to_numpy() == 1
    w = np.ones(len(data)) if weights is None else data[weights].to_numpy(float)
    ev = data["rel_year"].to_numpy()
    es = sorted({int(e) for e in ev[treated]})
    return {
        "att": float(np.average(y_tilde[treated], weights=w[treated])),
        "rel_year": es,
        "att_by_rel_year": [float(np.average(y_tilde[treated & (ev == e)],
                                             weights=w[treated & (ev == e)])) for e in es],
    }


def main() -> None:
    data = prepare(pd.read_csv(HERE / "twfe_panel.csv"))
    out: dict = {}
    checks: dict = {}
    for weights in (None, "weight"):
        for spec in SECOND_STAGE:
            for cluster in ("unit", "cluster"):
                key = f"{spec}/{cluster}" + ("/weighted" if weights else "")
                loose = run(data, spec, cluster, weights)
                with tight_fixef():
                    fit = run(data, spec, cluster, weights)
                ref = numpy_did2s(data, spec, cluster, weights)
                terms = list(fit._coefnames)
                assert terms == list(loose._coefnames)
                d_beta = float(np.abs(ref["beta"] - fit._beta_hat).max())
                d_se = float(np.abs(ref["se"] - fit._se).max())
                assert d_beta < 1e-10 and d_se < 1e-10, (key, d_beta, d_se)
                checks[key] = {
                    "max_abs_diff_estimate_vs_numpy": d_beta,
                    "max_abs_diff_se_vs_numpy": d_se,
                    "max_abs_diff_estimate_lsqr_default": float(
                        np.abs(loose._beta_hat - fit._beta_hat).max()),
                    "max_abs_diff_se_lsqr_default": float(np.abs(loose._se - fit._se).max()),
                }
                out[key] = {
                    "second_stage": SECOND_STAGE[spec],
                    "terms": terms,
                    "estimate": fit._beta_hat.tolist(),
                    "std_error": fit._se.tolist(),
                    "n_clusters": int(data[cluster].nunique()),
                    "lsqr_default": {"estimate": loose._beta_hat.tolist(),
                                     "std_error": loose._se.tolist()},
                }
                if spec == "static":
                    imp = imputation(data, ref["y_tilde"], weights)
                    out[f"imputation{'/weighted' if weights else ''}"] = imp
                    assert abs(imp["att"] - fit._beta_hat[0]) < 1e-10
                if spec == "dynamic":
                    imp = imputation(data, ref["y_tilde"], weights)
                    post = [t for t in terms if float(t.split("::")[1]) >= 0]
                    got = [fit._beta_hat[terms.index(t)] for t in post]
                    assert np.allclose(got, imp["att_by_rel_year"], rtol=0, atol=1e-10)
    out["checks"] = checks
    out["first_stage"] = FIRST_STAGE
    out["n_first_stage_rows"] = int((data["treated"] == 0).sum())
    out["versions"] = {"pyfixest": pf.__version__, "numpy": np.__version__,
                       "pandas": pd.__version__}
    (HERE / "did2s_pyfixest.json").write_text(json.dumps(out, indent=2) + "\n")
    for key, val in out.items():
        if isinstance(val, dict) and "terms" in val:
            print(key, val["terms"][0], val["estimate"][0], val["std_error"][0],
                  "max |tight - default| est:", checks[key]["max_abs_diff_estimate_lsqr_default"])


if __name__ == "__main__":
    main()
