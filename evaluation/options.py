"""Option validation shared by every estimator, matcher and command (one mechanism).

:func:`check_option` checks a value against its ``typing.Literal`` set; the ``check_*``
helpers check numbers (significance levels, counts, seeds); :func:`validate_fields` runs
them over the fields of an options dataclass, so an estimator validates its options with
one call in ``__post_init__``: fields named in :data:`FIELD_RULES` get their rule, fields
annotated with a ``Literal`` get :func:`check_option` and ``bool`` fields must be booleans.
Every failure raises :class:`~evaluation.errors.InvalidOptionError` naming the option, the
value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable
from typing import Any, Literal, get_args, get_origin, get_type_hints

from evaluation.errors import InvalidOptionError

#: Seed used when the caller gives none: random steps are reproducible by default.
DEFAULT_RANDOM_SEED = 20120901


def check_option(name: str, value: Any, allowed: Any) -> Any:
    """Return ``value`` if it is one of the members of the ``Literal`` type ``allowed``.

    Parameters
    ----------
    name
        Name of the option, used in the error message (for example ``"missing"``).
    value
        The value passed by the caller.
    allowed
        A ``typing.Literal[...]`` type, or any iterable of allowed values.

    Returns
    -------
    Any
        ``value`` unchanged.

    Raises
    ------
    InvalidOptionError
        If ``value`` is not allowed; the message lists the allowed values.
    """
    choices = get_args(allowed) or tuple(allowed)
    if isinstance(value, bool) and not any(isinstance(c, bool) for c in choices):
        valid = False
    else:
        try:
            valid = value in choices
        except TypeError:  # unhashable or incomparable values are never valid
            valid = False
    if not valid:
        listed = ", ".join(repr(c) for c in choices)
        raise InvalidOptionError(f"{name}={value!r} is not a valid option; choose one of {listed}.")
    return value


def _is_integer(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_alpha(name: str, value: Any) -> float:
    """Return a significance level strictly between 0 and 1 (e.g. 0.05).

    Raises
    ------
    InvalidOptionError
        For booleans, non-numbers, NaN, and values outside ``(0, 1)``.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (
            math.isfinite(value) and 0 < value < 1):
        raise InvalidOptionError(f"{name}={value!r} must be a number strictly between 0 and 1 "
                                 "(0.05 gives 95 % confidence intervals).")
    return float(value)


def check_count(name: str, value: Any, minimum: int = 0, *, optional: bool = False) -> Any:
    """Return an integer of at least ``minimum`` (or None when ``optional``).

    Raises
    ------
    InvalidOptionError
        For booleans, non-integers and integers below ``minimum``.
    """
    if optional and value is None:
        return None
    if not _is_integer(value) or value < minimum:
        none = " or None" if optional else ""
        raise InvalidOptionError(f"{name}={value!r} must be a whole number of at least "
                                 f"{minimum}{none}.")
    return int(value)


def check_seed(name: str, value: Any) -> int | None:
    """Return a seed for :func:`numpy.random.default_rng`: None or a non-negative integer.

    Raises
    ------
    InvalidOptionError
        For negative numbers, booleans and non-integers.
    """
    if value is None:
        return None
    if not _is_integer(value) or value < 0:
        raise InvalidOptionError(f"{name}={value!r} must be a non-negative whole number "
                                 "(or None for the default seed).")
    return int(value)


def check_flag(name: str, value: Any) -> bool:
    """Return ``value`` if it is a boolean.

    Raises
    ------
    InvalidOptionError
        For anything but True and False (``"no"`` would otherwise count as true).
    """
    if not isinstance(value, bool):
        raise InvalidOptionError(f"{name}={value!r} must be True or False.")
    return value


#: Most bootstrap or permutation draws accepted: beyond this the Monte Carlo error of a
#: p-value (at most 0.5/sqrt(draws) = 0.0005) is negligible and memory and time are not.
MAX_DRAWS = 1_000_000


def check_draws(name: str, value: Any) -> int:
    r"""Return a number of random draws: a whole number from 1 to :data:`MAX_DRAWS`.

    Raises
    ------
    InvalidOptionError
        For booleans, non-integers, numbers below 1 and above :data:`MAX_DRAWS`.

    Notes
    -----
    The Monte Carlo standard error of a p-value :math:`p` from :math:`B` draws is
    :math:`\sqrt{p(1-p)/B} \le 0.5/\sqrt B`, 0.0005 at the upper bound.
    """
    count = check_count(name, value, 1)
    if count > MAX_DRAWS:
        raise InvalidOptionError(f"{name}={value!r} is more draws than {MAX_DRAWS:,}; the "
                                 "Monte Carlo error is already below 0.0005 there. Use 999 to "
                                 "9999 draws.")
    return count


def check_caliper(name: str, value: Any, *, optional: bool = True) -> float | None:
    """Return a caliper width: a finite number greater than 0 (or None when ``optional``).

    Raises
    ------
    InvalidOptionError
        For booleans, non-numbers, NaN, infinity, zero and negative numbers.
    """
    if optional and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (
            math.isfinite(value) and value > 0):
        raise InvalidOptionError(f"{name}={value!r} must be a finite number greater than 0 "
                                 "(a width in standard deviations of the score, e.g. 0.2); "
                                 "leave it unset for no caliper.")
    return float(value)


def check_anticipation(name: str, value: Any, n_periods: int | None = None) -> int:
    r"""Return a number of anticipation periods: a whole number from 0 to ``n_periods - 2``.

    Raises
    ------
    InvalidOptionError
        For booleans, non-integers and negative numbers, and (when ``n_periods`` is given)
        for ``n_periods - 1`` or more, which leaves no unit a period before its anticipated
        treatment to compare with.

    Notes
    -----
    A cohort first treated in period :math:`g` with :math:`\delta` anticipation periods is
    compared with period :math:`g - \delta - 1`; with periods :math:`1, \dots, T` the
    latest cohort :math:`g \le T` has such a period only if :math:`\delta \le T - 2`.
    """
    count = check_count(name, value, 0)
    if n_periods is not None and count > n_periods - 2:
        raise InvalidOptionError(f"{name}={value!r} leaves no period before (anticipated) "
                                 f"treatment in a panel of {n_periods} periods (at most "
                                 f"{max(n_periods - 2, 0)}); use a smaller number (usually 0 "
                                 "or 1).")
    return count


def _integer(name: str, value: Any) -> Any:
    if not _is_integer(value):
        raise InvalidOptionError(f"{name}={value!r} must be a whole number.")
    return value


#: Rules for option names shared across estimators.
FIELD_RULES: dict[str, Callable[[str, Any], Any]] = {
    "alpha": check_alpha,
    "seed": check_seed,
    "draws": check_draws,
    "anticipation": lambda name, value: check_count(name, value, 0),
    "leads": lambda name, value: check_count(name, value, 1, optional=True),
    "lags": lambda name, value: check_count(name, value, 1, optional=True),
    "pretrend_leads": lambda name, value: check_count(name, value, 0),
    "reference": _integer,
}


def validate_fields(options: Any, rules: dict[str, Callable[[str, Any], Any]] | None = None
                    ) -> None:
    """Validate every field of the options dataclass ``options`` (one mechanism for all).

    Parameters
    ----------
    options
        A dataclass instance (an estimator's settings).
    rules
        Extra or overriding rules by field name, on top of :data:`FIELD_RULES`.

    Raises
    ------
    InvalidOptionError
        For the first field whose value breaks its rule, its ``Literal`` set or its ``bool``
        annotation.
    """
    table = {**FIELD_RULES, **(rules or {})}
    hints = get_type_hints(type(options))
    for field in dataclasses.fields(options):
        value = getattr(options, field.name)
        hint = hints.get(field.name)
        if field.name in table:
            table[field.name](field.name, value)
        elif get_origin(hint) is Literal:
            check_option(field.name, value, hint)
        elif hint is bool:
            check_flag(field.name, value)
