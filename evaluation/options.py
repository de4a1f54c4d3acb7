"""One helper that checks an option against its ``typing.Literal`` set."""

from __future__ import annotations

from typing import Any, get_args

from evaluation.errors import InvalidOptionError


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
    if value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise InvalidOptionError(f"{name}={value!r} is not a valid option; choose one of {listed}.")
    return value
