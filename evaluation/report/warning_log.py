"""Warnings raised while the report is computed, kept next to the table they affect.

The report never silences a warning. :class:`WarningLog` collects every warning issued
while a chapter computes its numbers (:meth:`WarningLog.capture` as a context manager, or
:meth:`WarningLog.install` for a whole notebook kernel); :meth:`WarningLog.flush` hands the
collected warnings to the table (or figure) they belong to, which shows them next to it, and
appends them to ``warnings.json`` in the report directory, from which the build copies them
into ``manifest.json``.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: File (in the report's output directory) that lists every flushed warning.
WARNINGS_FILE = "warnings.json"


@dataclass
class WarningLog:
    """Warnings issued since the last flush, deduplicated with a count.

    Attributes
    ----------
    path
        ``warnings.json`` to append flushed warnings to (None keeps them in memory only).
    pending
        ``(category, message) -> count`` of the warnings not yet flushed.
    flushed
        Every flushed record (``context, category, message, count``).
    """

    path: Path | None = None
    pending: dict[tuple[str, str], int] = field(default_factory=dict)
    flushed: list[dict[str, Any]] = field(default_factory=list)

    def record(self, message: Warning | str, category: type[Warning], *_: Any,
               **__: Any) -> None:
        """Add one warning (the signature of :func:`warnings.showwarning`)."""
        key = (category.__name__, " ".join(str(message).split()))
        self.pending[key] = self.pending.get(key, 0) + 1

    @contextmanager
    def capture(self) -> Iterator[None]:
        """Record every warning issued inside the block (none is lost or silenced)."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
        for item in caught:
            self.record(item.message, item.category)

    def install(self) -> None:
        """Route every warning shown in this process into the log (a notebook's set-up).

        The package's own warnings are recorded every time they are issued (so the log
        counts them per table); other warnings follow Python's filters, as they would on
        the console.
        """
        from evaluation.errors import EvaluationWarning

        warnings.simplefilter("always", EvaluationWarning)
        warnings.showwarning = self.record

    def flush(self, context: str) -> list[dict[str, Any]]:
        """Attach the pending warnings to ``context`` (a table or figure) and return them."""
        records = [{"context": context, "category": category, "message": message,
                    "count": count} for (category, message), count in self.pending.items()]
        self.pending.clear()
        self.flushed.extend(records)
        if records and self.path is not None:
            existing = json.loads(self.path.read_text()) if self.path.is_file() else []
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(existing + records, indent=2) + "\n")
        return records


def warning_lines(records: list[dict[str, Any]]) -> list[str]:
    """One line per record: ``Category: message (n times)``."""
    return [f"{r['category']}: {r['message']}" + (f" ({r['count']} times)" if r["count"] > 1
                                                   else "") for r in records]
