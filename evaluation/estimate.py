"""One call from a data file to a tidy table of estimates (what the reviewer CLI runs)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from evaluation.errors import EvaluationError, InvalidOptionError
from evaluation.estimators import ESTIMATORS
from evaluation.estimators.callaway_santanna import CallawaySantAnna
from evaluation.panel import Panel
from evaluation.results import ESTIMATE_COLUMNS


def read_table(path: str | Path, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Read a ``.csv`` or ``.parquet`` file (optionally only some columns) into a DataFrame.

    Columns named but absent are left out here; the Panel then reports them as missing.

    Raises
    ------
    EvaluationError
        For other extensions or unreadable files (the message names the file).
    FileNotFoundError
        If the file does not exist.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"data file {path} does not exist.")
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise EvaluationError(f"data file {path} must end in .csv or .parquet (got "
                              f"{suffix or 'no extension'}).")
    try:
        if suffix == ".csv":
            wanted = None if columns is None else (lambda name: name in set(columns))
            return pd.read_csv(path, usecols=wanted)
        if columns is not None:
            import pyarrow.parquet as pq

            present = set(pq.read_schema(path).names)
            columns = [c for c in dict.fromkeys(columns) if c in present]
        return pd.read_parquet(path, columns=columns)
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise EvaluationError(f"could not read {path}: {exc}") from exc


def load_estimation_data(path: str | Path, columns: Sequence[str],
                         where: str | None = None) -> pd.DataFrame:
    """Read the columns an estimate needs and keep the rows selected by ``where``.

    Parameters
    ----------
    path
        ``.csv`` or ``.parquet`` file.
    columns
        Columns the estimate uses; with ``where`` every column is read, because the
        expression may name others.
    where
        A pandas :meth:`~pandas.DataFrame.query` expression such as
        ``"target_group == True"`` (None keeps every row).

    Raises
    ------
    EvaluationError
        If the expression cannot be evaluated or selects no rows.
    """
    data = read_table(path, None if where else columns)
    if not where:
        return data
    try:
        selected = data.query(where)
    except Exception as exc:  # pandas raises many types for a bad expression
        raise EvaluationError(f"could not apply the row filter {where!r} to {path}: {exc}; "
                              "write a pandas query expression over the file's columns, "
                              "e.g. \"target_group == True and t >= 109\".") from exc
    if selected.empty:
        raise EvaluationError(f"the row filter {where!r} selects no rows of {path}.")
    return selected


def estimate_table(
    data: pd.DataFrame,
    *,
    unit: str,
    time: str,
    cohort: str,
    outcome: str,
    never_treated: object = float("nan"),
    covariates: Sequence[str] = (),
    estimator: str = "cs",
    control: str = "never",
    method: str = "dr",
    base_period: str = "varying",
    anticipation: int = 0,
    aggregate: str = "none",
    cluster: str | None = None,
    se: str = "analytic",
    draws: int = 999,
    seed: int | None = None,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Validate the panel, run the estimator and return rows with ESTIMATE_COLUMNS.

    ``aggregate="none"`` returns the ATT(g,t) of Callaway and Sant'Anna, or the static TWFE
    coefficient; ``"event"`` returns event-time effects (the dynamic TWFE for ``twfe``)
    with an ``overall`` row for CS aggregations.
    """
    panel = Panel(data, unit=unit, time=time, outcome=outcome, cohort=cohort,
                  never_treated=never_treated, covariates=list(covariates), cluster=cluster)
    if estimator == "cs":
        fit = CallawaySantAnna(control_group=control, method=method, base_period=base_period,
                               anticipation=anticipation, se=se, draws=draws, seed=seed,
                               alpha=alpha).fit(panel)
        result = fit if aggregate == "none" else fit.aggregate(aggregate)
    elif estimator == "sa":
        from evaluation.estimators.sun_abraham import SunAbraham

        if aggregate not in ("none", "event"):
            raise InvalidOptionError(f"--aggregate {aggregate} is not available for sa; the "
                                     "Sun-Abraham estimator reports event-time effects "
                                     "(none or event).")
        result = SunAbraham(alpha=alpha).fit(panel)
    elif estimator == "bjs":
        from evaluation.estimators.imputation import ImputationDiD

        if aggregate not in ("none", "simple", "event"):
            raise InvalidOptionError(f"--aggregate {aggregate} is not available for bjs; use "
                                     "none or event (event-time effects and the overall "
                                     "effect) or simple (overall effect only).")
        result = ImputationDiD(alpha=alpha).fit(panel)
        if aggregate == "simple":
            result.table = result.table.iloc[0:0]
    elif estimator == "did2s":
        from evaluation.estimators.imputation import TwoStageDiD

        if aggregate not in ("none", "simple", "event"):
            raise InvalidOptionError(f"--aggregate {aggregate} is not available for did2s; "
                                     "use none or simple (static) or event (dynamic).")
        result = TwoStageDiD(dynamic=aggregate == "event", alpha=alpha).fit(panel)
    elif estimator == "twfe":
        from evaluation.estimators.did import TwoWayFixedEffects  # linearmodels: import on use

        if aggregate not in ("none", "simple", "event"):
            raise InvalidOptionError(f"--aggregate {aggregate} is not available for twfe; "
                                     "use none or simple (static) or event (dynamic).")
        result = TwoWayFixedEffects(dynamic=aggregate == "event", alpha=alpha).fit(panel)
    else:
        raise InvalidOptionError(f"estimator {estimator!r} is not available; use one of "
                                 f"{', '.join(ESTIMATORS)}.")
    return result.to_frame()[ESTIMATE_COLUMNS]
