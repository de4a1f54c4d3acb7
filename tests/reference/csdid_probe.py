"""Reference probe for the Callaway-Sant'Anna (2021) estimator as implemented by ``csdid``.

This is NOT a pytest module (the file name does not start with ``test_``). It is a
stand-alone harness meant to be run in a separate environment that has the
``csdid`` package installed, e.g.::

    python3 -m venv /tmp/csdidvenv
    /tmp/csdidvenv/bin/pip install "csdid==0.4.3" "drdid==1.1.7"
    /tmp/csdidvenv/bin/python tests/reference/csdid_probe.py

It builds a small synthetic staggered-adoption panel with NumPy (never-treated units
coded ``g = 0``, one time-invariant covariate ``x`` that shifts both cohort membership
and outcome trends, heterogeneous dynamic effects), runs ``csdid`` for
``est_method in {dr, ipw, reg}`` x ``control_group in {nevertreated, notyettreated}``
with ANALYTIC standard errors (``fit(bstrap=False)``), and prints

* ATT(g,t) with standard errors,
* the Wald pre-test of parallel trends (``W``, ``Wpval``),
* the simple / dynamic (event-study) / group / calendar aggregations with their
  overall summaries and pointwise critical values.

Numbers are printed with ``repr``-level precision so they can serve as reference
values for 1e-6 comparisons. ``--json`` writes everything to a JSON file,
``--npz`` additionally stores the influence-function matrices, and ``--data-out``
writes the simulated panel as CSV so another implementation can be run on exactly
the same data.

Benchmark mode (timing only)::

    /usr/bin/time -v python tests/reference/csdid_probe.py --units 50000 \
        --periods 12 --cohorts 4,7,10 --methods dr --controls nevertreated --quiet
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import time
import warnings

import numpy as np
import pandas as pd


def simulate_panel(
    n_units: int = 600, n_periods: int = 8, cohorts=(3, 5, 7), seed: int = 20240601
) -> pd.DataFrame:
    """Balanced staggered panel in long format: columns id, t, g, x, y.

    * ``g`` is the first treated period, 0 = never treated.
    * ``x ~ N(0, 1)`` raises the probability of early cohorts (multinomial logit),
      and has a time-varying outcome slope, so unconditional parallel trends fail
      but conditional parallel trends hold.
    * Effect for cohort g at event time e >= 0: ``scale_g * (1 + 0.5 e) + 0.3 x``.
    """
    rng = np.random.default_rng(seed)
    cohorts = np.asarray(cohorts, dtype=int)
    x = rng.normal(size=n_units)
    # multinomial logit over [never, cohorts...]; x pushes units into early cohorts
    k = len(cohorts)
    slopes = np.concatenate([[0.0], np.linspace(0.8, 0.2, k)])
    intercepts = np.concatenate([[0.3], np.zeros(k)])
    logits = intercepts[None, :] + x[:, None] * slopes[None, :]
    prob = np.exp(logits - logits.max(axis=1, keepdims=True))
    prob /= prob.sum(axis=1, keepdims=True)
    u = rng.random(n_units)
    choice = (u[:, None] > np.cumsum(prob, axis=1)).sum(axis=1)
    g = np.concatenate([[0], cohorts])[choice]

    alpha = rng.normal(size=n_units) + 0.5 * x  # unit fixed effects
    periods = np.arange(1, n_periods + 1)
    lam = 0.2 * periods + 0.1 * np.sin(periods)  # common time effects
    beta_t = 0.15 * periods  # x-specific trend
    scale = {int(c): s for c, s in zip(cohorts, np.linspace(1.5, 0.5, k), strict=True)}

    ids = np.repeat(np.arange(1, n_units + 1), n_periods)
    tt = np.tile(periods, n_units)
    gg = np.repeat(g, n_periods)
    xx = np.repeat(x, n_periods)
    e = tt - gg
    treated = (gg > 0) & (e >= 0)
    sc = np.array([scale.get(int(c), 0.0) for c in gg])
    tau = np.where(treated, sc * (1.0 + 0.5 * e) + 0.3 * xx, 0.0)
    y = (
        np.repeat(alpha, n_periods)
        + lam[tt - 1]
        + beta_t[tt - 1] * xx
        + tau
        + rng.normal(size=n_units * n_periods)
    )
    return pd.DataFrame({"id": ids, "t": tt, "g": gg, "x": xx, "y": y})


def _f(v):
    """Full-precision float for printing/JSON (None for missing)."""
    if v is None:
        return None
    v = float(v)
    return None if np.isnan(v) else v


def _fmt(v):
    return "NA" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{float(v):.12g}"


def run_one(
    df: pd.DataFrame,
    est_method: str,
    control_group: str,
    xformla: str | None,
    base_period: str = "varying",
    quiet_csdid: bool = True,
    aggregate: bool = True,
):
    from csdid.att_gt import ATTgt

    timings = {}
    sink = io.StringIO()
    with (
        warnings.catch_warnings(record=True) as caught,
        contextlib.redirect_stdout(sink) if quiet_csdid else contextlib.nullcontext(),
    ):
        warnings.simplefilter("always")
        t0 = time.perf_counter()
        res = ATTgt(
            yname="y",
            tname="t",
            idname="id",
            gname="g",
            data=df,
            xformla=xformla,
            control_group=control_group,
        )
        res.fit(est_method=est_method, base_period=base_period, bstrap=False)
        timings["att_gt"] = time.perf_counter() - t0
        r = res.results
        out = {
            "est_method": est_method,
            "control_group": control_group,
            "base_period": base_period,
            "xformla": xformla,
            "n_units": int(res.MP["n"]),
            "crit_val_pointwise": _f(r["c"]),
            "attgt": [
                {"group": int(g), "time": int(t), "att": _f(a), "se": _f(s), "post": int(p)}
                for g, t, a, s, p in zip(
                    r["group"], r["year"], r["att"], r["se"], r["post"], strict=True
                )
            ],
            "W": _f(res.MP["W"]),
            "Wpval": _f(res.MP["Wpval"]),
            "agg": {},
        }
        inf = {"attgt": np.asarray(res.MP["inffunc"]["inffunc"])}  # (n_units, n_cells)
        if aggregate:
            for typ in ("simple", "dynamic", "group", "calendar"):
                t0 = time.perf_counter()
                res.aggte(typec=typ)
                timings[f"aggte_{typ}"] = time.perf_counter() - t0
                a = res.atte
                entry = {"overall_att": _f(a["overall_att"]), "overall_se": _f(a["overall_se"])}
                if typ != "simple":
                    entry["egt"] = [_f(v) for v in np.asarray(a["egt"]).ravel()]
                    entry["att_egt"] = [_f(v) for v in np.asarray(a["att_egt"]).ravel()]
                    entry["se_egt"] = [_f(v) for v in np.asarray(a["se_egt"]).ravel()]
                    entry["crit_val_egt"] = _f(a["crit_val_egt"])
                out["agg"][typ] = entry
                for key, val in a["inf_function"].items():
                    inf[f"{typ}:{key}"] = np.asarray(val)
    out["warnings"] = sorted({str(w.message).splitlines()[0] for w in caught})
    out["timings_s"] = timings
    return out, inf


def print_result(out):
    print(
        f"=== est_method={out['est_method']} control_group={out['control_group']} "
        f"base_period={out['base_period']} xformla={out['xformla']!r} n={out['n_units']}"
    )
    print(f"{'g':>3} {'t':>3} {'post':>4} {'ATT(g,t)':>20} {'SE':>20}")
    for row in out["attgt"]:
        print(
            f"{row['group']:>3} {row['time']:>3} {row['post']:>4} "
            f"{_fmt(row['att']):>20} {_fmt(row['se']):>20}"
        )
    print(
        f"pre-test: W={_fmt(out['W'])} Wpval={_fmt(out['Wpval'])}  "
        f"pointwise crit={_fmt(out['crit_val_pointwise'])}"
    )
    for typ, a in out["agg"].items():
        print(f"  aggte {typ:8s}: overall ATT={_fmt(a['overall_att'])} SE={_fmt(a['overall_se'])}")
        if "egt" in a:
            print(f"    crit_val={_fmt(a['crit_val_egt'])}")
            for e, v, s in zip(a["egt"], a["att_egt"], a["se_egt"], strict=True):
                print(f"    {e:>6g} {_fmt(v):>20} {_fmt(s):>20}")
    if out["warnings"]:
        print("  warnings:", "; ".join(out["warnings"]))
    print("  timings (s):", {k: round(v, 3) for k, v in out["timings_s"].items()})
    print()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--units", type=int, default=600)
    p.add_argument("--periods", type=int, default=8)
    p.add_argument("--cohorts", default="3,5,7")
    p.add_argument("--seed", type=int, default=20240601)
    p.add_argument("--methods", default="dr,ipw,reg")
    p.add_argument("--controls", default="nevertreated,notyettreated")
    p.add_argument("--base-period", default="varying", choices=["varying", "universal"])
    p.add_argument("--no-covariate", action="store_true", help="use xformla=None (~1)")
    p.add_argument("--no-agg", action="store_true", help="skip aggte()")
    p.add_argument("--quiet", action="store_true", help="print only a summary line per run")
    p.add_argument("--json", help="write all results to this JSON file")
    p.add_argument("--npz", help="write influence functions to this .npz file")
    p.add_argument("--data-out", help="write the simulated panel to this CSV file")
    args = p.parse_args(argv)

    import csdid._version as cv
    import drdid._version_ as dv

    t0 = time.perf_counter()
    df = simulate_panel(
        args.units, args.periods, tuple(int(c) for c in args.cohorts.split(",")), args.seed
    )
    t_sim = time.perf_counter() - t0
    print(
        f"csdid {cv.__version} drdid {getattr(dv, 'version', '?')} "
        f"numpy {np.__version__} pandas {pd.__version__}"
    )
    counts = df[df.t == 1].g.value_counts().sort_index().to_dict()
    print(
        f"panel: {args.units} units x {args.periods} periods, cohorts(count)={counts}, "
        f"seed={args.seed}, simulated in {t_sim:.2f}s"
    )
    if args.data_out:
        df.to_csv(args.data_out, index=False, float_format="%.17g")

    xformla = None if args.no_covariate else "y ~ x"
    results, infs = [], {}
    for method in args.methods.split(","):
        for control in args.controls.split(","):
            out, inf = run_one(
                df, method, control, xformla, args.base_period, aggregate=not args.no_agg
            )
            results.append(out)
            for k, v in inf.items():
                infs[f"{method}/{control}/{k}"] = v
            if args.quiet:
                tm = out["timings_s"]
                print(
                    f"{method}/{control}: att_gt {tm['att_gt']:.2f}s, "
                    f"aggte total {sum(v for k, v in tm.items() if k != 'att_gt'):.2f}s, "
                    f"simple ATT={_fmt(out['agg'].get('simple', {}).get('overall_att'))} "
                    f"SE={_fmt(out['agg'].get('simple', {}).get('overall_se'))}, "
                    f"W={_fmt(out['W'])}"
                )
            else:
                print_result(out)
    print(f"total wall time {time.perf_counter() - t0:.2f}s")
    if args.json:
        meta = {
            "units": args.units,
            "periods": args.periods,
            "cohorts": args.cohorts,
            "seed": args.seed,
            "csdid": cv.__version,
            "numpy": np.__version__,
            "pandas": pd.__version__,
        }
        with open(args.json, "w") as fh:
            json.dump({"meta": meta, "results": results}, fh, indent=1)
    if args.npz:
        np.savez_compressed(args.npz, **{k.replace("/", "__"): v for k, v in infs.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
