r"""Coarsened exact matching (Iacus, King and Porro 2012), as R's MatchIt ``method = "cem"``.

Numeric covariates are cut into bins, categorical ones are kept as they are; units whose
coarsened covariates coincide form a stratum, and strata holding both treated and control
units are kept. Weights then make the kept controls of every stratum stand for its treated
units (see :func:`evaluation.matching._weights.weights_from_subclasses`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from evaluation.errors import InvalidOptionError, NoMatchesError
from evaluation.matching._covariates import is_categorical, require_columns

Cutpoints = int | str | Sequence[float]


def coarsen(values: np.ndarray, cutpoints: Cutpoints = "sturges") -> np.ndarray:
    r"""Bin a numeric covariate; returns the bin number of every value.

    Parameters
    ----------
    values
        The covariate.
    cutpoints
        ``"sturges"`` (default), ``"scott"`` or ``"fd"`` for that many equal-width bins, an
        integer number of equal-width bins, or the cut points themselves.

    Notes
    -----
    With :math:`b` bins the breaks are :math:`\min x + j(\max x - \min x)/b`,
    :math:`j = 1, \dots, b-1`, and a value goes to the bin :math:`[c_j, c_{j+1})` that contains
    it. Sturges' rule is :math:`b = \lceil\log_2 n + 1\rceil`; Scott's
    :math:`h = 3.5\, s\, n^{-1/3}` and Freedman-Diaconis' :math:`h = 2\,\mathrm{IQR}\,n^{-1/3}`
    give :math:`b = \lceil(\max x - \min x)/h\rceil`.
    """
    if isinstance(cutpoints, str):
        bins = _rule_bins(values, cutpoints)
        inner = np.linspace(values.min(), values.max(), bins + 1)[1:-1]
    elif isinstance(cutpoints, (int, np.integer)):
        if cutpoints < 1:
            raise InvalidOptionError(f"cutpoints={cutpoints} must be a positive number of bins.")
        inner = np.linspace(values.min(), values.max(), int(cutpoints) + 1)[1:-1]
    else:
        inner = np.unique(np.asarray(cutpoints, dtype=float))
    return np.searchsorted(inner, values, side="right")


def cem_subclasses(data: pd.DataFrame, columns: Sequence[str], treated: np.ndarray,
                   eligible: np.ndarray,
                   cutpoints: Mapping[str, Cutpoints] | Cutpoints | None = None) -> np.ndarray:
    """Stratum of every unit after coarsening, ``-1`` for units in strata without both groups.

    Raises
    ------
    NoMatchesError
        If no stratum holds both treated and control units.
    """
    require_columns(data, columns, "covariate")
    per_column = dict(cutpoints) if isinstance(cutpoints, Mapping) else {}
    unknown = set(per_column) - set(columns)
    if unknown:
        raise InvalidOptionError(f"cutpoints names {sorted(unknown)}, which are not among the "
                                 f"covariates {list(columns)}.")
    default = "sturges" if cutpoints is None or isinstance(cutpoints, Mapping) else cutpoints
    keys = []
    for column in columns:
        series = data[column]
        if is_categorical(series):
            keys.append(pd.factorize(series.astype(str))[0])
        else:
            keys.append(coarsen(series.to_numpy(dtype=float), per_column.get(column, default)))
    strata = pd.MultiIndex.from_arrays(keys).factorize()[0] if len(keys) > 1 else keys[0]
    strata = np.where(eligible, strata, -1)
    n = int(strata.max()) + 1
    has_t = np.bincount(strata[eligible & treated], minlength=n) > 0
    has_c = np.bincount(strata[eligible & ~treated], minlength=n) > 0
    both = has_t & has_c
    if not both.any():
        raise NoMatchesError(
            f"coarsened exact matching found no stratum with both treated and control units "
            f"among {n} strata; coarsen further (fewer cut points) or match on fewer covariates.")
    relabel = np.full(n, -1)
    relabel[both] = np.arange(both.sum())
    return np.where(strata >= 0, relabel[np.maximum(strata, 0)], -1)


def _rule_bins(values: np.ndarray, rule: str) -> int:
    n = len(values)
    spread = values.max() - values.min()
    if rule == "sturges":
        return int(np.ceil(np.log2(n) + 1))
    if rule in ("scott", "fd"):
        if rule == "scott":
            h = 3.5 * np.std(values, ddof=1) * n ** (-1 / 3)
        else:
            q75, q25 = np.percentile(values, [75, 25])
            h = 2 * (q75 - q25) * n ** (-1 / 3)
        return max(int(np.ceil(spread / h)), 1) if h > 0 else 1
    raise InvalidOptionError(f"cutpoints={rule!r} is not a binning rule; use 'sturges', "
                             "'scott', 'fd', a number of bins or a list of cut points.")
