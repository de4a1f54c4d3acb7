"""Run the authors' ``did_multiplegt_dyn`` Python port on the dcdh panels; write JSON.

Not collected by pytest and not needed by CI: ``tests/test_dcdh.py`` reads the committed
``dcdh_reference.json``. The port pins ``polars<1.20``, so it lives in its own venv::

    python3.11 -m venv /tmp/dcdh_ref_venv
    /tmp/dcdh_ref_venv/bin/pip install "py-did-multiplegt-dyn==0.1.9" "polars<1.20"
    .venv/bin/python tests/reference/dcdh_panels.py            # the CSV panels
    /tmp/dcdh_ref_venv/bin/python tests/reference/dcdh_reference.py

Verified with py-did-multiplegt-dyn 0.1.9, polars 1.19.0, numpy 2.4.6, pandas 3.1.1,
scipy 1.17.1, statsmodels 0.15.0. Each entry records the panel, the options (the port's
names: ``cluster``, ``weight``, ``controls``, ``switchers`` ``""``/``"in"``/``"out"``), every row
(``Effect_l``, ``Placebo_l``, ``Average_Total_Effect``: estimate, standard error, number of
switchers and of unit-periods), the two joint p-values and ``delta_D_avg_total``.
"""

from __future__ import annotations

import json
import pathlib
import time
import warnings

import polars as pl
from did_multiplegt_dyn import DidMultiplegtDyn

HERE = pathlib.Path(__file__).parent

CONFIGS = {
    "staggered": [
        {"effects": 4, "placebo": 3},
        {"effects": 4, "placebo": 3, "cluster": "cluster"},
        {"effects": 4, "placebo": 3, "weight": "weight"},
        {"effects": 4, "placebo": 3, "normalized": True},
        {"effects": 9, "placebo": 6},
        {"effects": 4, "placebo": 3, "controls": ["x"], "cluster": "cluster"},
    ],
    "onoff": [
        {"effects": 5, "placebo": 3},
        {"effects": 5, "placebo": 3, "switchers": "in"},
        {"effects": 5, "placebo": 3, "switchers": "out"},
        {"effects": 5, "placebo": 3, "normalized": True},
        {"effects": 5, "placebo": 3, "cluster": "cluster", "weight": "weight"},
        {"effects": 5, "placebo": 3, "normalized": True, "switchers": "out",
         "cluster": "cluster"},
        {"effects": 5, "placebo": 3, "controls": ["x"]},
        {"effects": 5, "placebo": 3, "controls": ["x"], "cluster": "cluster",
         "weight": "weight", "normalized": True},
        {"effects": 5, "placebo": 3, "controls": ["x"], "switchers": "in"},
    ],
    "onoff_unbalanced": [
        {"effects": 5, "placebo": 3},
        {"effects": 5, "placebo": 3, "normalized": True, "cluster": "cluster",
         "weight": "weight"},
        {"effects": 5, "placebo": 3, "controls": ["x"], "cluster": "cluster"},
    ],
    "municipal": [
        {"effects": 12, "placebo": 6},
        {"effects": 12, "placebo": 6, "cluster": "cluster"},
        {"effects": 12, "placebo": 6, "weight": "weight", "normalized": True},
        {"effects": 24, "placebo": 3, "switchers": "in", "cluster": "cluster"},
        {"effects": 12, "placebo": 6, "controls": ["x"], "cluster": "cluster"},
    ],
}


def _number(value) -> float | None:
    """JSON-safe float (None for a missing value)."""
    if value is None:
        return None
    value = float(value)
    return None if value != value else value


def run(name: str, options: dict) -> dict:
    """Fit the port on panel ``name`` with ``options``; return the rows and tests."""
    frame = pl.read_csv(HERE / f"dcdh_{name}.csv")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        fit = DidMultiplegtDyn(frame, "y", "unit", "time", "d", **options).fit()
        seconds = time.perf_counter() - start
    out = fit.result["did_multiplegt_dyn"]
    rows = []
    for block in ("Effects", "Placebos", "ATE"):
        table = out.get(block)
        if table is None:
            continue
        for label, row in table.iterrows():
            rows.append({"row": label, "estimate": _number(row["Estimate"]),
                         "std_error": _number(row["SE"]),
                         "switchers": _number(row["Switchers"]),
                         "switchers_weighted": _number(row["Switchers.w"]),
                         "observations": _number(row["N"])})
    return {"panel": name, "options": options, "rows": rows,
            "p_joint_effects": _number(out.get("p_jointeffects")),
            "p_joint_placebos": _number(out.get("p_jointplacebo")),
            "delta_D_avg_total": _number(out.get("delta_D_avg_total")),
            "warnings": sorted({str(w.message) for w in caught}),
            "seconds": round(seconds, 3)}


if __name__ == "__main__":
    results = [run(name, options) for name, configs in CONFIGS.items()
               for options in configs]
    (HERE / "dcdh_reference.json").write_text(json.dumps(results, indent=1) + "\n")
    for entry in results:
        print(entry["panel"], entry["options"], len(entry["rows"]), "rows",
              f"{entry['seconds']:.1f}s")
