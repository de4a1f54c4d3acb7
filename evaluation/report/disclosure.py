"""Statistical disclosure control for tables computed from individual-level register data.

Statistics Finland's remote-access rules require that every count or share computed from
individual-level data passes through one function before it leaves the environment:
:func:`disclose`. It hides small cells (primary suppression), hides further cells so that
the hidden ones cannot be recovered from the totals (secondary suppression), and proves the
result with a linear-programming audit (:func:`suppression_intervals`). Hidden cells are
shown as :data:`SUPPRESSED` (``".."``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy.optimize import linprog

from evaluation.errors import EvaluationError, InvalidOptionError
from evaluation.options import check_option

__all__ = ["DEFAULT_THRESHOLD", "SUPPRESSED", "DisclosedTable", "check_threshold", "disclose",
           "suppression_intervals"]

SUPPRESSED = ".."
DEFAULT_THRESHOLD = 5
Share = Literal["row", "column", "total"]
Cell = tuple[int, int]


@dataclass(frozen=True, eq=False)
class DisclosedTable:
    """A table that passed disclosure control, with the masks and counts behind it.

    Attributes
    ----------
    table
        What may be published (object dtype): integer counts, or shares rounded to
        ``decimals``, and :data:`SUPPRESSED` in hidden cells; margins included if requested.
    suppressed
        Boolean frame with the labels of ``table``; True where ``table`` shows ``".."`` (for
        shares this includes the cells hidden because their denominator is hidden).
    primary
        Boolean frame; True where the count itself is below the threshold (``0 < n < t``).
    counts
        The full counts, margins included if requested. NOT for publication (audits, tests).
    threshold
        The threshold used.
    share
        ``None`` for a count table, else the kind of share published.
    """

    table: pd.DataFrame
    suppressed: pd.DataFrame
    primary: pd.DataFrame
    counts: pd.DataFrame
    threshold: int
    share: str | None

    @property
    def n_suppressed(self) -> int:
        """Number of hidden cells in ``table``."""
        return int(self.suppressed.to_numpy().sum())

    def to_frame(self) -> pd.DataFrame:
        """Return a copy of the publishable table."""
        return self.table.copy()

    def _repr_html_(self) -> str:
        return self.table.to_html()


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def check_threshold(threshold: object) -> None:
    """Raise :class:`InvalidOptionError` unless ``threshold`` is an integer >= 1 (not a bool)."""
    if not _is_int(threshold) or threshold < 1:
        raise InvalidOptionError(f"threshold={threshold!r} must be an integer >= 1 "
                                 f"(the default is {DEFAULT_THRESHOLD}).")


def _where(frame: pd.DataFrame, mask: np.ndarray) -> str:
    cells = [f"(row {frame.index[i]!r}, column {frame.columns[j]!r})"
             for i, j in zip(*np.nonzero(mask), strict=True)]
    return ", ".join(cells[:3]) + (f" and {len(cells) - 3} more" if len(cells) > 3 else "")


def _check_counts(counts: object) -> tuple[pd.DataFrame, np.ndarray]:
    """Return the counts as a frame and an int64 array, or raise a precise error."""
    if isinstance(counts, pd.Series):
        counts = counts.to_frame("count" if counts.name is None else counts.name).T
    if not isinstance(counts, pd.DataFrame):
        raise EvaluationError(f"counts must be a pandas DataFrame or Series, not "
                              f"{type(counts).__name__}.")
    if counts.shape[0] == 0 or counts.shape[1] == 0:
        raise EvaluationError(f"counts is empty (shape {counts.shape}); pass at least one cell.")
    for axis, labels in (("row", counts.index), ("column", counts.columns)):
        if labels.has_duplicates:
            raise EvaluationError(f"duplicate {axis} label(s) {list(labels[labels.duplicated()])}"
                                  f" in counts; aggregate or rename them so each is unique.")
    bad = [c for c in counts.columns if not pd.api.types.is_numeric_dtype(counts[c])
           or pd.api.types.is_bool_dtype(counts[c])]
    if bad:
        raise EvaluationError(f"non-numeric column(s) {bad} in counts; counts must be integers "
                              "(convert with pd.to_numeric or drop the columns).")
    values = counts.astype("float64").to_numpy()
    problems = [(np.isnan(values), "missing (NaN)", "fill them (for example with 0) or drop"),
                (np.isinf(values), "infinite", "fix or drop"),
                (values < 0, "negative", "counts cannot be negative; fix or drop"),
                (values != np.round(values), "non-integral",
                 "counts must be whole numbers; round or recompute")]
    for mask, what, fix in problems:
        if mask.any():
            raise EvaluationError(f"counts has {what} cell(s) at {_where(counts, mask)}; {fix} "
                                  "them before disclosure.")
    return counts, values.astype(np.int64)


def _with_total(labels: pd.Index, total_label: str) -> pd.Index:
    key = (total_label, *[""] * (labels.nlevels - 1)) if labels.nlevels > 1 else total_label
    if key in labels:
        raise InvalidOptionError(f"label {key!r} is already in the counts; it collides with the "
                                 "margins' total_label. Pass another total_label or rename it.")
    extra = (pd.MultiIndex.from_tuples([key], names=labels.names) if labels.nlevels > 1
             else pd.Index([key], name=labels.name))
    return labels.append(extra)


def _lines(shape: tuple[int, int]) -> list[tuple[list[Cell], Cell]]:
    """Rows and columns of a table with margins: (interior cells of the line, margin cell)."""
    r, c = shape[0] - 1, shape[1] - 1
    rows = [([(i, j) for j in range(c)], (i, c)) for i in range(r + 1)]
    return rows + [([(i, j) for i in range(r)], (r, j)) for j in range(c + 1)]


def _line_rule(full: np.ndarray, hidden: np.ndarray) -> np.ndarray:
    """Hide one more cell in every line with exactly one hidden cell, until stable."""
    hidden = hidden.copy()
    changed = True
    while changed:
        changed = False
        for inner, margin in _lines(full.shape):
            if sum(hidden[cell] for cell in [*inner, margin]) != 1:
                continue
            free = [cell for cell in inner if not hidden[cell]]
            nonzero = [cell for cell in free if full[cell] > 0]
            pick = (min(nonzero, key=lambda cell: full[cell]) if nonzero
                    else free[0] if free else margin)
            hidden[pick] = changed = True
    return hidden


def _optimum(objective: np.ndarray, a_eq: list, b_eq: list) -> float:
    res = linprog(objective, A_eq=np.array(a_eq) if a_eq else None,
                  b_eq=np.array(b_eq) if b_eq else None, bounds=(0, None), method="highs")
    if res.status == 3:
        return -np.inf
    if res.status != 0:
        raise EvaluationError(f"the disclosure audit LP failed: {res.message}")
    return float(np.rint(res.fun)) if abs(res.fun - np.rint(res.fun)) < 1e-7 else float(res.fun)


def _bounds(full: np.ndarray, hidden: np.ndarray, cells: list[Cell],
            relations: bool) -> list[tuple[float, float]]:
    """Min and max of each of ``cells`` over nonnegative tables matching the published ones."""
    position = {cell: k for k, cell in enumerate(zip(*np.nonzero(hidden), strict=True))}
    a_eq, b_eq = [], []
    for inner, margin in _lines(full.shape) if relations else []:
        row, rhs = np.zeros(len(position)), 0.0
        for cell, sign in [*((cell, 1.0) for cell in inner), (margin, -1.0)]:
            if hidden[cell]:
                row[position[cell]] += sign
            else:
                rhs -= sign * full[cell]
        if row.any():
            a_eq.append(row)
            b_eq.append(rhs)
    out = []
    for cell in cells:
        unit = np.zeros(len(position))
        unit[position[cell]] = 1.0
        out.append((_optimum(unit, a_eq, b_eq), -_optimum(-unit, a_eq, b_eq)))
    return out


def _protect(full: np.ndarray, primary: np.ndarray) -> np.ndarray:
    """Secondary suppression: line rule, then LP audit and repair until every cell passes."""
    hidden = _line_rule(full, primary)
    cells = list(zip(*np.nonzero(primary), strict=True))
    while cells:
        bounds = _bounds(full, hidden, cells, relations=True)
        # Hiding more cells only relaxes the LP, so a cell that passes keeps passing.
        cells = [cell for cell, (lo, hi) in zip(cells, bounds, strict=True) if hi - lo < 1]
        if not cells:
            break
        i, j = cells[0]
        for line in ([(i, k) for k in range(full.shape[1])],
                     [(k, j) for k in range(full.shape[0])],
                     list(np.ndindex(full.shape))):
            free = [cell for cell in line if not hidden[cell] and full[cell] > 0]
            if free:
                break
        hidden[min(free, key=lambda cell: full[cell])] = True
        hidden = _line_rule(full, hidden)
    return hidden


def disclose(counts: pd.DataFrame | pd.Series, *, threshold: int = DEFAULT_THRESHOLD,
             margins: bool = True, share: Share | None = None, decimals: int = 1,
             total_label: str = "Total") -> DisclosedTable:
    """Apply primary and secondary suppression to a table of counts.

    Parameters
    ----------
    counts
        Nonnegative integer counts (integral floats accepted). A Series is a one-row table
        whose columns are its index and whose row label is its name (or ``"count"``).
    threshold
        Smallest nonzero count that may be published (integer >= 1).
    margins
        Add a row-total column, a column-total row and the grand total, labelled
        ``total_label``. Margins are published cells and are suppressed like any other.
    share
        Publish percentages instead of counts: ``"row"`` (of the row total), ``"column"``
        (of the column total) or ``"total"`` (of the grand total).
    decimals
        Decimals of the shares (``numpy.round``).
    total_label
        Label of the margins; must not already be a row or column label.

    Returns
    -------
    DisclosedTable
        The publishable table with its suppression masks and the (unpublishable) counts.

    Raises
    ------
    EvaluationError
        If the counts are not a nonempty, uniquely labelled table of nonnegative integers.
    InvalidOptionError
        If ``threshold``, ``share``, ``decimals`` or ``total_label`` is invalid.

    Notes
    -----
    *Primary*: every cell, margins included, with ``0 < n < threshold`` is hidden. Zeros are
    published: an empty cell identifies nobody.

    *Secondary*: with margins every row and column (margin cell included) satisfies
    ``sum(interior) = margin``, so a line with one hidden cell gives it away. Until stable,
    every line with exactly one hidden cell hides one more: its smallest nonzero interior
    cell, else a zero interior cell, else its margin (ties by position). The result is then
    audited with the LP of :func:`suppression_intervals`: the constraint matrix of a two-way
    table with margins is totally unimodular, so the LP bounds are integers and
    ``upper - lower >= 1`` means at least two integer values are consistent with the
    publication. For a primary cell failing the audit the smallest published nonzero cell of
    its row (else column, else table) is hidden, and the line rule and audit are rerun.
    Hiding cells only relaxes the LP, so passed cells stay passed. This terminates: once every
    nonzero cell is hidden, doubling all hidden cells stays feasible. Only primary cells are
    audited: a secondary cell is not small, so recovering it exposes nobody. Without margins
    and shares no relation is published and only primary suppression applies.

    *Shares*: a share is ``100 * n / d`` with ``d`` the row, column or grand total. It is
    hidden wherever its count is hidden, and wherever ``d`` is hidden: with ``d`` published,
    shares are the counts rescaled by a known number and reveal nothing the count table does
    not, while with ``d`` hidden, a share next to a published count gives ``d = n / share``
    and so reopens the hidden cells. Because shares thus reveal their denominators, share
    tables are protected with the margin relations even when ``margins=False`` (the margins
    are then computed and suppressed but not shown). A share with ``d = 0`` is NaN.
    """
    frame, values = _check_counts(counts)
    check_threshold(threshold)
    if share is not None:
        check_option("share", share, Share)
    if not _is_int(decimals) or decimals < 0:
        raise InvalidOptionError(f"decimals={decimals!r} must be an integer >= 0.")
    index, columns = frame.index, frame.columns
    if margins:
        index, columns = _with_total(index, total_label), _with_total(columns, total_label)
    r, c = values.shape
    full = np.zeros((r + 1, c + 1), dtype=np.int64)
    full[:r, :c] = values
    full[:r, c], full[r, :c], full[r, c] = values.sum(1), values.sum(0), values.sum()
    primary = (full > 0) & (full < threshold)
    if margins or share is not None:
        hidden = _protect(full, primary)
    else:
        hidden = primary.copy()
    shown = full.astype(object)
    if share is not None:
        denominator, den_hidden = {"row": (full[:, [c]], hidden[:, [c]]),
                                   "column": (full[[r], :], hidden[[r], :]),
                                   "total": (full[r, c], hidden[r, c])}[share]
        with np.errstate(divide="ignore", invalid="ignore"):
            shares = np.where(denominator > 0, 100 * full / denominator, np.nan)
        shown = np.round(shares, int(decimals)).astype(object)
        hidden = hidden | den_hidden
    shown[hidden] = SUPPRESSED
    keep = (slice(None), slice(None)) if margins else (slice(0, r), slice(0, c))
    cells = [[v.item() if isinstance(v, np.generic) else v for v in row] for row in shown[keep]]
    table = pd.DataFrame(cells, index=index, columns=columns, dtype=object)
    return DisclosedTable(
        table=table,
        suppressed=pd.DataFrame(hidden[keep], index=index, columns=columns),
        primary=pd.DataFrame(primary[keep], index=index, columns=columns),
        counts=pd.DataFrame(full[keep], index=index, columns=columns),
        threshold=int(threshold), share=share)


def suppression_intervals(counts: pd.DataFrame, suppressed: pd.DataFrame, *,
                          margins: bool = True) -> pd.DataFrame:
    """Compute the range of values of every hidden cell consistent with the publication.

    Parameters
    ----------
    counts
        The true counts, with the margins as last row and column if ``margins`` (as in
        :attr:`DisclosedTable.counts`).
    suppressed
        Boolean frame with the labels of ``counts``; True where the cell is hidden.
    margins
        Whether the last row and column of ``counts`` are published totals.

    Returns
    -------
    pandas.DataFrame
        One row per hidden cell (row-major): ``row, column, value, lower, upper``. ``upper``
        is ``inf`` when nothing bounds the cell.

    Raises
    ------
    EvaluationError
        If the frames do not match, the counts are invalid or the margins do not add up.

    Notes
    -----
    ``lower`` and ``upper`` are the minimum and maximum of the cell over all nonnegative
    tables that agree with every published cell and satisfy ``sum(interior) = margin`` in
    every row and column, solved with :func:`scipy.optimize.linprog` (HiGHS). The relations
    are totally unimodular, so the bounds are integers; a cell with ``upper - lower < 1`` is
    recoverable exactly.
    """
    frame, full = _check_counts(counts)
    if not isinstance(suppressed, pd.DataFrame) or not (
            suppressed.index.equals(frame.index) and suppressed.columns.equals(frame.columns)):
        raise EvaluationError("suppressed must be a DataFrame with the labels of counts "
                              "(use DisclosedTable.suppressed with DisclosedTable.counts).")
    if not all(pd.api.types.is_bool_dtype(dtype) for dtype in suppressed.dtypes):
        raise EvaluationError("suppressed must hold booleans only (True = hidden).")
    hidden = suppressed.to_numpy(dtype=bool)
    if margins:
        if min(full.shape) < 2 or not (
                (full[:-1, :-1].sum(1) == full[:-1, -1]).all()
                and (full[:-1, :].sum(0) == full[-1, :]).all()):
            raise EvaluationError("with margins=True the last row and column of counts must be "
                                  "the totals of the others; pass margins=False otherwise.")
    cells = list(zip(*np.nonzero(hidden), strict=True))
    bounds = _bounds(full, hidden, cells, relations=margins)
    return pd.DataFrame({
        "row": [frame.index[i] for i, _ in cells],
        "column": [frame.columns[j] for _, j in cells],
        "value": [int(full[cell]) for cell in cells],
        "lower": [lo for lo, _ in bounds],
        "upper": [hi for _, hi in bounds]})
