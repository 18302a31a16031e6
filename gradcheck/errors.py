"""The exception hierarchy: one root, and bases that let pytest and callers react correctly.

``InvalidArgument`` is also a ``ValueError`` and ``InvalidArgumentType`` a ``TypeError``, so code
that catches the built-in classes keeps working; ``GradientMismatch`` is an ``AssertionError`` so
that pytest reports a failed check as a *failure*, not an error; ``LayerError`` is distinct from
both: a layer that misbehaves (raises, returns the wrong shape, mutates its inputs) has not had
its gradient checked at all.
"""

from __future__ import annotations

from typing import Any


class GradcheckError(Exception):
    """Root of every exception gradcheck raises on purpose."""


class InvalidArgument(GradcheckError, ValueError):
    """An argument has an invalid value; the message names it, its value and what was expected."""


class InvalidArgumentType(GradcheckError, TypeError):
    """An argument has the wrong type; the message names it, its type and what was expected."""


class GradientMismatch(GradcheckError, AssertionError):
    """An analytic gradient disagrees with an independent witness beyond the derived bound.

    Attributes
    ----------
    result : object
        The frozen comparison result (``CheckResult`` or a layer report) that failed.
    """

    def __init__(self, message: str, result: Any = None) -> None:
        super().__init__(message)
        self.result = result


class LayerError(GradcheckError):
    """The user's layer misbehaved, so no gradient could be checked.

    Attributes
    ----------
    reason : str
        A stable machine-readable reason, e.g. ``"raised"``, ``"wrong-shape"``, ``"mutated-input"``.
    """

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def invalid(name: str, value: Any, expected: str) -> InvalidArgument:
    """Build the standard message ``name=value: expected``."""
    return InvalidArgument(f"{name}={value!r}: {expected}")


def invalid_type(name: str, value: Any, expected: str) -> InvalidArgumentType:
    """Build the standard message for a wrong type, naming the type received."""
    return InvalidArgumentType(
        f"{name}={value!r} (type {type(value).__name__}): {expected}"
    )
