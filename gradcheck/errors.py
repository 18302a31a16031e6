"""The exception hierarchy and the validation helpers: one root, bases that let pytest react.

``InvalidArgument`` is also a ``ValueError`` and ``InvalidArgumentType`` a ``TypeError``, so code
that catches the built-in classes keeps working; ``GradientMismatch`` is an ``AssertionError`` so
that pytest reports a failed check as a *failure*, not an error; ``LayerError`` is distinct from
both: a layer that misbehaves (raises, returns the wrong shape, mutates its inputs) has not had
its gradient checked at all.
"""

from __future__ import annotations

import numbers
import os
import traceback
from collections.abc import Callable
from pathlib import Path
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

    def __init__(self, message: str, result: Any = None, note: str | None = None) -> None:
        super().__init__(message)
        self.result = result
        self.note = note


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


#: gradcheck's own source tree: its frames are cut from a user's traceback.
_PACKAGE_DIR = str(Path(__file__).resolve().parent)


def call_user(what: str, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``, user code: any exception becomes a LayerError (reason ``"raised"``).

    The one guarded call into code gradcheck did not write — a layer's forward or backward, a
    function and its VJP, a forward under the Fourier check.  The message is ``"<what> raised
    <Type>: <message>"`` and the traceback trimmed to the user's own frames (gradcheck's
    frames removed, and installed libraries' frames below the user's last one).
    """
    try:
        return fn(*args)
    except Exception as error:  # the user's code: anything can come out
        raise LayerError(f"{what} raised {type(error).__name__}: {error}\n"
                         f"{user_traceback(error)}", "raised") from error


def user_traceback(error: BaseException) -> str:
    """The traceback of ``error`` trimmed to the user's frames (see :func:`call_user`)."""
    frames = [f for f in traceback.extract_tb(error.__traceback__)
              if not str(Path(f.filename).resolve()).startswith(_PACKAGE_DIR + os.sep)]
    while len(frames) > 1 and _installed(frames[-1].filename):
        frames.pop()
    lines = traceback.format_list(frames) + traceback.format_exception_only(type(error), error)
    return "".join(lines).rstrip()


def _installed(filename: str) -> bool:
    """A frame of an installed library (site-packages), not of the user's own files."""
    parts = Path(filename).parts
    return "site-packages" in parts or "dist-packages" in parts


def invalid(name: str, value: Any, expected: str) -> InvalidArgument:
    """Build the standard message ``name=value: expected``."""
    return InvalidArgument(f"{name}={value!r}: {expected}")


def invalid_type(name: str, value: Any, expected: str) -> InvalidArgumentType:
    """Build the standard message for a wrong type, naming the type received."""
    return InvalidArgumentType(
        f"{name}={value!r} (type {type(value).__name__}): {expected}"
    )


# --------------------------------------------------------------------------- validation helpers
# The one implementation of each rule for user input.  Each accepts the value as given in
# Python or as command-line text (faces wrap these with :func:`gradcheck.faces.flags.flag_type`).
# Standard library only: the pytest plugin parses its options with them at start-up.


def integer(name: str, value: Any, *, low: int = 0, text: bool = True) -> int:
    """``value`` as an int >= ``low``; bools are not; text such as ``"12"`` only with ``text``."""
    if isinstance(value, str) and text:
        try:
            value = int(value.strip())
        except ValueError:
            raise invalid(name, value, f"expected an integer >= {low}") from None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise invalid_type(name, value, f"expected an integer >= {low}")
    if value < low:
        raise invalid(name, value, f"expected an integer >= {low}")
    return int(value)


def choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    """``value`` if it is one of ``choices`` (strings)."""
    if not isinstance(value, str) or value not in choices:
        raise invalid(name, value, f"expected one of {', '.join(map(repr, choices))}")
    return value


def seconds_or_none(name: str, value: Any) -> float | None:
    """A positive finite number of seconds, or None (text ``"none"``): no limit."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "none"):
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise invalid(name, value, "expected seconds > 0, or None ('none')") from None
    if isinstance(value, bool) or not (0 < seconds < float("inf")):
        raise invalid(name, value, "expected seconds > 0, or None ('none')")
    return seconds


def boolean(name: str, value: Any) -> bool:
    """``value`` if it is a bool."""
    if not isinstance(value, bool):
        raise invalid_type(name, value, "expected True or False")
    return value
