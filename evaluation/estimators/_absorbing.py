"""The guard of the estimators that assume absorbing treatment (once treated, always treated).

Callaway-Sant'Anna, Sun-Abraham, imputation (BJS), two-stage and two-way fixed effects read
a unit's periods after a treatment spell as untreated: as comparisons, or averaged into the
effect. Each of their ``fit`` methods carries the one-line decorator :func:`absorbing_only`,
which refuses a panel whose status switches off (naming the units, the ``dcdh`` estimator
and the first-spell window; :func:`evaluation.panel._paths.require_absorbing`) and copies
the window of a restricted panel (:meth:`evaluation.panel.Panel.restrict_to_first_spell`)
into the result's ``info["window"]``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from evaluation.panel._paths import require_absorbing

Fit = TypeVar("Fit", bound=Callable[..., Any])


def absorbing_only(name: str, label: str, *, balanced: bool = False) -> Callable[[Fit], Fit]:
    """Decorate an estimator's ``fit(self, panel, ...)`` with the absorbing-treatment guard.

    Parameters
    ----------
    name, label
        Registry name and readable name of the estimator (for the error message).
    balanced
        The estimator needs every unit observed in every period; a first-spell window that
        cut units short is refused as well (see
        :func:`~evaluation.panel._paths.require_absorbing`).

    Returns
    -------
    Callable
        The decorator. The decorated ``fit`` raises
        :class:`~evaluation.errors.NonAbsorbingTreatmentError` before fitting a switching
        panel, and sets ``result.info["window"]`` to ``panel.window`` when the panel was
        cut to a window.
    """
    def decorate(fit: Fit) -> Fit:
        @functools.wraps(fit)
        def guarded(self: Any, panel: Any, *args: Any, **kwargs: Any) -> Any:
            require_absorbing(panel, name, label, balanced=balanced)
            result = fit(self, panel, *args, **kwargs)
            window = getattr(panel, "window", None)
            if window is not None and isinstance(getattr(result, "info", None), dict):
                result.info["window"] = window
            return result

        return guarded  # type: ignore[return-value]

    return decorate
