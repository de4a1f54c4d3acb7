"""Builders that several test modules call with arguments.

Import them as ``from _builders import ...``: pytest puts ``tests/`` (no package) on
``sys.path``, while ``conftest.py`` holds the shared fixtures and is not imported by name.
"""

from __future__ import annotations

import pandas as pd

from evaluation import Panel


def staggered_panel(data: pd.DataFrame, **options: object) -> Panel:
    """A :class:`Panel` of long staggered data as :func:`simulate_staggered` writes it.

    Columns ``unit``, ``time``, outcome ``y`` and ``cohort`` (0 = never treated); ``options``
    (``covariates``, ``weights``, ``cluster``, ...) go to :class:`Panel` as they are.
    """
    return Panel(data, unit="unit", time="time", outcome="y", cohort="cohort",
                 never_treated=0, **options)
