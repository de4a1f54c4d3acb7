"""Reference values for the two-stage estimator with a covariate in the first stage.

Run with pyfixest (see ``did2s_pyfixest.py`` for the environment)::

    /tmp/pfvenv/bin/python tests/reference/did2s_covariates_pyfixest.py

Reads ``twfe_panel.csv`` (its column ``z`` is a time-varying covariate made from ``x`` and
noise, seed 77) and writes ``did2s_covariates_pyfixest.json``: the static and dynamic
two-stage estimates with first stage ``y ~ z | unit + time`` on untreated rows, clustered
by unit and by ``cluster``. pyfixest recovers first-stage fixed effects with LSQR at
tolerance 1e-6 by default; as in ``did2s_pyfixest.py`` the tolerance is tightened so that
the reference is exact.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyfixest as pf
from did2s_pyfixest import tight_fixef

HERE = Path(__file__).resolve().parent


def main() -> None:
    data = pd.read_csv(HERE / "twfe_panel.csv")
    data["treated"] = data["treated"].astype(int)
    data["rel_year"] = (data["time"] - data["cohort"]).where(data["cohort"] > 0, -1.0)
    out = {}
    for label, second in (("static", "~ 0 + treated"), ("dynamic", "~ i(rel_year, ref=-1.0)")):
        for cluster in ("unit", "cluster"):
            with tight_fixef():
                fit = pf.did2s(data, yname="y", first_stage="~ z | unit + time",
                               second_stage=second, treatment="treated", cluster=cluster)
            out[f"{label}/{cluster}"] = {"terms": list(fit.coef().index),
                                         "estimate": fit.coef().to_numpy().tolist(),
                                         "std_error": fit.se().to_numpy().tolist()}
    out["versions"] = {"pyfixest": pf.__version__}
    (HERE / "did2s_covariates_pyfixest.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({k: v["estimate"][:2] for k, v in out.items() if "/" in k}))


if __name__ == "__main__":
    main()
