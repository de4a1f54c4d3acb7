"""The surface every result object of the package shares.

Estimates, matches, synthetic controls, placebo tests, estimator comparisons and pre-trend
tests all offer ``summary()`` (a :class:`Summary` with text and HTML forms; it never
prints), ``to_frame()`` (a tidy :class:`pandas.DataFrame`), ``plot(ax=None)`` (returns the
Axes, never shows the figure) and ``_repr_html_`` for notebooks. :class:`ResultProtocol`
states that contract for type checkers and tests; :class:`ResultMixin` implements
``_repr_html_``, ``__str__`` and ``warnings`` from ``summary()`` so a result class only
writes its three methods.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import pandas as pd

if TYPE_CHECKING:
    from matplotlib.axes import Axes


@dataclass(frozen=True)
class Summary:
    """A printable summary: ``str()`` gives text, ``_repr_html_`` gives HTML.

    Attributes
    ----------
    title
        One-line heading.
    table
        The main table (estimates, sample sizes, balance ...).
    notes
        Settings and diagnostics, one line each.
    warnings
        Warnings recorded while the result was computed; shown next to the table.
    tables
        Further named tables (e.g. balance after matching), shown below the main one.
    """

    title: str
    table: pd.DataFrame
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    tables: tuple[tuple[str, pd.DataFrame], ...] = ()

    def as_text(self) -> str:
        """Plain-text rendering."""
        def render(frame: pd.DataFrame) -> str:
            with pd.option_context("display.width", 140, "display.max_columns", 30):
                return frame.to_string(float_format=lambda v: f"{v:.6g}")

        lines = [self.title, "=" * len(self.title), render(self.table)]
        for name, frame in self.tables:
            lines += ["", f"{name}:", render(frame)]
        lines += [f"  {note}" for note in self.notes]
        lines += [f"  WARNING: {warning}" for warning in self.warnings]
        return "\n".join(lines)

    def as_html(self) -> str:
        """HTML rendering (a heading, the tables, notes and warnings)."""
        def render(frame: pd.DataFrame) -> str:
            return frame.to_html(float_format=lambda v: f"{v:.6g}", border=0)

        parts = [f"<h4>{html.escape(self.title)}</h4>", render(self.table)]
        for name, frame in self.tables:
            parts += [f"<p><b>{html.escape(name)}</b></p>", render(frame)]
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in self.notes)
        warned = "".join(f'<li style="color:#a40">warning: {html.escape(w)}</li>'
                         for w in self.warnings)
        parts.append(f"<ul>{notes}{warned}</ul>")
        return "".join(parts)

    def __str__(self) -> str:
        return self.as_text()

    def _repr_html_(self) -> str:
        return self.as_html()


@runtime_checkable
class ResultProtocol(Protocol):
    """What every result object offers."""

    def summary(self) -> Summary:
        """Return the printable summary."""

    def to_frame(self) -> pd.DataFrame:
        """Return a tidy table."""

    def plot(self, ax: Axes | None = None) -> Axes:
        """Draw the result and return the Axes."""

    def _repr_html_(self) -> str:
        """Return HTML for notebooks."""


class ResultMixin:
    """``_repr_html_`` and ``__str__`` from ``summary()`` (which the class defines)."""

    def summary(self) -> Summary:  # pragma: no cover - every subclass defines it
        """Return the printable summary."""
        raise NotImplementedError

    def _repr_html_(self) -> str:
        return self.summary().as_html()

    def __str__(self) -> str:
        return self.summary().as_text()


def new_axes(ax: Any, figsize: tuple[float, float]) -> Axes:
    """Return ``ax``, or the Axes of a new figure of ``figsize`` when ``ax`` is None."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=figsize)
    return ax
