"""Reference values for the two-way fixed-effects estimator, computed with pyfixest.

Run in a separate environment (pyfixest is not a dependency of the package)::

    python3 -m venv /tmp/pfvenv && /tmp/pfvenv/bin/pip install pyfixest==0.60.0
    /tmp/pfvenv/bin/python tests/reference/twfe_pyfixest.py

It reads ``twfe_panel.csv`` (made by ``evaluation.simulate.simulate_staggered``, seed 31,
committed next to this script) and writes ``twfe_pyfixest.json``: coefficients and
cluster-robust standard errors of the static TWFE regression and of the dynamic event
study (reference period -1, leads binned at -4, lags binned at 3), clustered by unit and
by the ``cluster`` column, without small-sample corrections (the package default) and
with pyfixest's G/(G-1), (N-1)/(N-K) corrections with K excluding the fixed effects (the
package's ``small_sample=True``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyfixest as pf

HERE = Path(__file__).resolve().parent


def event_regressors(data: pd.DataFrame, leads: int, lags: int, reference: int) -> list[str]:
    """Add binned event-time dummies (never-treated rows all zero); return their names."""
    event = (data["time"] - data["cohort"]).where(data["cohort"] > 0)
    binned = event.clip(lower=-leads, upper=lags)
    names = []
    for e in sorted(binned.dropna().unique().astype(int)):
        if e == reference:
            continue
        name = f"e_m{-e}" if e < 0 else f"e_p{e}"
        data[name] = (binned == e).astype(float)
        names.append(name)
    return names


def main() -> None:
    data = pd.read_csv(HERE / "twfe_panel.csv")
    data["treated"] = data["treated"].astype(float)
    names = event_regressors(data, leads=4, lags=3, reference=-1)
    none = pf.ssc(k_adj=False, G_adj=False)
    fixest = pf.ssc(k_adj=True, k_fixef="none", G_adj=True)
    out = {}
    for label, formula in (("static", "y ~ treated | unit + time"),
                           ("dynamic", f"y ~ {' + '.join(names)} | unit + time")):
        for cluster in ("unit", "cluster"):
            for ssc_name, ssc in (("none", none), ("small_sample", fixest)):
                fit = pf.feols(formula, data=data, vcov={"CRV1": cluster}, ssc=ssc)
                out[f"{label}/{cluster}/{ssc_name}"] = {
                    "terms": list(fit.coef().index),
                    "estimate": fit.coef().to_numpy().tolist(),
                    "std_error": fit.se().to_numpy().tolist(),
                }
    out["versions"] = {"pyfixest": pf.__version__, "numpy": np.__version__,
                       "pandas": pd.__version__}
    (HERE / "twfe_pyfixest.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({k: v["estimate"][:2] for k, v in out.items() if "/" in k}, indent=1))


if __name__ == "__main__":
    main()
