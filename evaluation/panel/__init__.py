"""The validated long panel: :class:`Panel` and its private helpers (one module per concept).

``panel.py`` holds the class; ``_columns`` (row-level checks of the named columns),
``_time`` (time and cohort labels, the time grid), ``_units`` (unit-level columns and
treatment status) and ``_arrays`` (integer coding) hold the checks it runs; ``_paths``
classifies treatment paths (absorbing or switching off), refuses switching panels for the
absorbing estimators and cuts a panel to each unit's first treatment spell.
"""

from evaluation.panel.panel import Panel

__all__ = ["Panel"]
