"""Formatting of values, lists and counts for error messages (the one place for it).

Every message of the package quotes offending values the same way: strings in quotes,
integral floats without ``.0``, Periods as ``2021-03``, at most :data:`N_EXAMPLES` examples,
and counts with agreeing nouns and verbs. The panel, matching and the data sources all
format their messages here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

N_EXAMPLES = 5
"""The largest number of example values that a message lists."""


def fmt(value: Any) -> str:
    """Format a value for an error message (strings quoted, NumPy scalars unwrapped)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, pd.Period):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value) if isinstance(value, str) else str(value)


def fmt_arg(value: Any) -> str:
    """Format a value as it would be typed in a keyword argument (``np.inf``, ``0``)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        if np.isinf(value):
            return "np.inf" if value > 0 else "-np.inf"
        if value.is_integer():
            return str(int(value))
    if isinstance(value, pd.Period):
        return f"pd.Period({str(value)!r}, freq={value.freqstr!r})"
    return repr(value)


def fmt_list(values: Sequence[Any] | Iterable[Any], total: int | None = None, *,
             limit: int = N_EXAMPLES, formatter: Callable[[Any], str] = fmt) -> str:
    """Format the first ``limit`` values of a list, noting how many more there are.

    ``total`` is the full count when ``values`` holds only examples; ``formatter`` turns a
    value into text (:func:`fmt` by default; ``str`` for labels shown as they are).
    """
    values = list(values)
    shown = ", ".join(formatter(v) for v in values[:limit])
    total = len(values) if total is None else total
    return shown + (f", ... ({total - limit} more)" if total > limit else "")


def listing(items: Iterable[Any], limit: int = N_EXAMPLES) -> str:
    """Format labels as they are (``str``), at most ``limit`` of them, counting the rest."""
    return fmt_list(items, limit=limit, formatter=str)


def plural(count: int, word: str) -> str:
    """Return ``"1 unit"`` / ``"3 units"``."""
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def verb(count: int, singular: str, plural_form: str) -> str:
    """Return the verb form agreeing with ``count`` (``"has"`` / ``"have"``)."""
    return singular if count == 1 else plural_form
