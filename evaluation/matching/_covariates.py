"""Unit-level inputs of matching: the treatment indicator and covariate matrices.

Categorical covariates (strings, categoricals, booleans with more than two states) are
expanded to indicators as R's MatchIt does: one indicator per level for balance tables and
distances, and one level dropped for the propensity-score model, which needs full rank.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from evaluation.errors import MatchingError, MissingColumnError, TreatmentNotBinaryError
from evaluation.messages import listing


@dataclass(frozen=True)
class Covariates:
    """A numeric matrix built from named DataFrame columns.

    Attributes
    ----------
    values
        ``(n_units, k)`` float matrix.
    names
        Column names: the covariate itself, or ``"column[level]"`` for an indicator.
    source
        For every column, the DataFrame column it came from.
    binary
        Whether each column only holds 0 and 1.
    """

    values: np.ndarray
    names: tuple[str, ...]
    source: tuple[str, ...]
    binary: np.ndarray

    def columns(self, sources: Sequence[str]) -> Covariates:
        """Return the columns built from the given DataFrame columns, in their order."""
        keep = [j for s in sources for j, src in enumerate(self.source) if src == s]
        return Covariates(self.values[:, keep], tuple(self.names[j] for j in keep),
                          tuple(self.source[j] for j in keep), self.binary[keep])

    def frame(self) -> pd.DataFrame:
        """Return the matrix as a DataFrame with the column names."""
        return pd.DataFrame(self.values, columns=list(self.names))


def is_categorical(series: pd.Series) -> bool:
    """Whether a column is treated as categorical (expanded to indicators)."""
    return not (pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series))


def require_columns(data: pd.DataFrame, columns: Sequence[str], role: str) -> None:
    """Raise :class:`MissingColumnError` if any named column is absent."""
    missing = [c for c in columns if c not in data.columns]
    if missing:
        raise MissingColumnError(
            f"{role} column{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))} "
            f"not in the data; its columns are {listing(data.columns, 12)}.")


def treatment_indicator(data: pd.DataFrame, column: str) -> np.ndarray:
    """Read a binary treatment column as a boolean array.

    Accepts 0/1 (integers or floats) and ``True``/``False``. Both groups must be present.

    Raises
    ------
    TreatmentNotBinaryError
        If values are missing, other than 0/1, or only one group occurs.
    """
    require_columns(data, [column], "treatment")
    values = data[column]
    if values.isna().any():
        n = int(values.isna().sum())
        raise TreatmentNotBinaryError(
            f"treatment column {column!r} has {n} missing value{'s' * (n > 1)}; every unit must "
            "be coded 1 (treated) or 0 (control). Drop or recode those rows first.")
    if pd.api.types.is_bool_dtype(values):
        treated = values.to_numpy(dtype=bool)
    else:
        numeric = pd.to_numeric(values, errors="coerce")
        bad = numeric.isna() | ~numeric.isin([0, 1])
        if bad.any():
            found = sorted(map(str, pd.unique(values[bad])))[:5]
            raise TreatmentNotBinaryError(
                f"treatment column {column!r} must be binary (1 = treated, 0 = control) but holds "
                f"{', '.join(found)}. Recode it, for example "
                f"data[{column!r}] = (data[{column!r}] > 0).astype(int) for a wave number.")
        treated = numeric.to_numpy() == 1
    if treated.all() or not treated.any():
        group = "treated" if treated.all() else "control"
        raise TreatmentNotBinaryError(
            f"treatment column {column!r} only holds {group} units ({len(treated)}); matching "
            "needs both treated (1) and control (0) units.")
    return treated


def build_covariates(data: pd.DataFrame, columns: Sequence[str], *, drop_first: bool = False,
                     indicator_scale: float = 1.0) -> Covariates:
    r"""Numeric matrix of the named columns with categorical ones expanded to indicators.

    Parameters
    ----------
    data
        Unit-level DataFrame.
    columns
        Covariate columns, numeric or categorical.
    drop_first
        Drop the first level of every categorical (for regression models).
    indicator_scale
        Multiply indicators by this factor (MatchIt uses :math:`1/\sqrt 2` for distances, so
        that two units differing in one category are one unit apart).

    Raises
    ------
    MissingColumnError, MatchingError
        For absent columns, missing or infinite values, or unusable types.
    """
    require_columns(data, columns, "covariate")
    blocks: list[np.ndarray] = []
    names: list[str] = []
    source: list[str] = []
    for column in columns:
        series = data[column]
        _check_missing(series, column)
        if is_categorical(series):
            codes, levels = _levels(series)
            start = 1 if drop_first else 0
            for j in range(start, len(levels)):
                blocks.append((codes == j).astype(float) * indicator_scale)
                names.append(f"{column}[{levels[j]}]")
                source.append(column)
        else:
            values = series.to_numpy(dtype=float)
            if not np.isfinite(values).all():
                n = int((~np.isfinite(values)).sum())
                raise MatchingError(f"covariate {column!r} has {n} infinite value"
                                    f"{'s' * (n > 1)}; replace or drop them before matching.")
            blocks.append(values)
            names.append(column)
            source.append(column)
    matrix = np.column_stack(blocks) if blocks else np.empty((len(data), 0))
    binary = np.array([np.isin(matrix[:, j], (0.0, 1.0)).all() for j in range(matrix.shape[1])],
                      dtype=bool)
    return Covariates(matrix, tuple(names), tuple(source), binary)


#: A categorical covariate of a propensity model may have at most this share of the units as
#: levels (and at least :data:`MIN_LEVEL_LIMIT` levels are always allowed).
MAX_LEVEL_SHARE = 0.1
MIN_LEVEL_LIMIT = 10


def check_score_covariates(data: pd.DataFrame, columns: Sequence[str], treated: np.ndarray,
                           weights: np.ndarray | None = None) -> None:
    """Raise :class:`MatchingError` for the problem :func:`score_covariate_problem` finds."""
    found = score_covariate_problem(data, columns, treated, weights)
    if found is not None:
        column, problem = found
        raise MatchingError(
            f"{problem}. To use {column!r}, coarsen it (group small levels), match exactly on "
            "it with exact=[...], drop it from the covariates, or pass "
            "on_nonconvergence='penalize' for a ridge-penalised score.")


def score_covariate_problem(data: pd.DataFrame, columns: Sequence[str], treated: np.ndarray,
                            weights: np.ndarray | None = None) -> tuple[str, str] | None:
    r"""Stop before a propensity fit that cannot converge because of a categorical covariate.

    Checks every categorical covariate (see :func:`is_categorical`) of a logit or probit
    propensity model over the units with positive weight. A fit with one coefficient per
    level runs for minutes and then fails to converge when a categorical has very many
    levels, or diverges when a level holds only treated or only control units (its
    coefficient goes to :math:`\pm\infty`: quasi-complete separation).

    Parameters
    ----------
    data
        Unit-level DataFrame.
    columns
        Covariates of the propensity model.
    treated
        Boolean treatment indicator.
    weights
        Optional sampling weights; units with weight zero do not count.

    Returns
    -------
    tuple of str or None
        The first covariate with a problem and a sentence describing it (its number of
        levels, or its levels with only treated or only control units); None if none has.

    Notes
    -----
    With :math:`n` units and a categorical of :math:`L` levels the check fails when
    :math:`L > \max(10, 0.1\,n)` (:data:`MAX_LEVEL_SHARE`, :data:`MIN_LEVEL_LIMIT`), or
    when some level :math:`\ell` has :math:`n_{\ell 1} = 0` or :math:`n_{\ell 0} = 0`
    treated or control units.
    """
    used = np.ones(len(data), dtype=bool) if weights is None else np.asarray(weights) > 0
    for column in columns:
        series = data[column]
        if not is_categorical(series):
            continue
        codes, levels = _levels(series)
        present = np.unique(codes[used])
        limit = max(MIN_LEVEL_LIMIT, MAX_LEVEL_SHARE * int(used.sum()))
        if len(present) > limit:
            return column, (
                f"covariate {column!r} has {len(present)} levels among {int(used.sum())} units "
                f"(more than {limit:g}, a tenth of the units): a propensity model with one "
                "coefficient per level does not converge")
        n1 = np.bincount(codes[used & treated], minlength=len(levels))
        n0 = np.bincount(codes[used & ~treated], minlength=len(levels))
        pure = np.flatnonzero(((n1 == 0) | (n0 == 0)) & (n1 + n0 > 0))
        if len(pure):
            shown = listing((f"{levels[j]!r} ({n1[j]} treated, {n0[j]} controls)"
                             for j in pure), 4)
            return column, (
                f"covariate {column!r} has {len(pure)} level{'s' * (len(pure) > 1)} whose units "
                f"are all treated or all controls: {shown}; the propensity model separates "
                "them perfectly (scores of 0 or 1)")
    return None


def stratum_codes(data: pd.DataFrame, columns: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Integer code of every unit's exact-matching stratum and a label per stratum."""
    require_columns(data, columns, "exact-matching")
    for column in columns:
        _check_missing(data[column], column)
    codes, uniques = pd.MultiIndex.from_frame(data[list(columns)].astype(str)).factorize()
    labels = [", ".join(f"{c}={v}" for c, v in zip(columns, key, strict=True))
              for key in uniques]
    return codes.astype(np.int64), labels


def _levels(series: pd.Series) -> tuple[np.ndarray, list[str]]:
    if isinstance(series.dtype, pd.CategoricalDtype):
        series = series.cat.remove_unused_categories()
        return series.cat.codes.to_numpy(), [str(c) for c in series.cat.categories]
    codes, uniques = pd.factorize(series.astype(str), sort=True)
    return codes, [str(u) for u in uniques]


def _check_missing(series: pd.Series, column: str) -> None:
    missing = series.isna()
    if missing.any():
        n = int(missing.sum())
        raise MatchingError(
            f"covariate {column!r} has {n} missing value{'s' * (n > 1)} (first at row "
            f"{int(np.flatnonzero(missing.to_numpy())[0])}); matching needs complete covariates. "
            "Impute them or drop those units first.")
