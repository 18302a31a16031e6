"""What every command-line face shares: exit codes and ``type=`` parsers that name their flag.

A parser wraps the one validation helper of :mod:`gradcheck.errors`, so ``--examples abc`` on
the command line and ``examples="abc"`` in Python are refused by the same rule, each in its
own words.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from gradcheck.errors import InvalidArgument, InvalidArgumentType

#: Exit codes of every ``gradcheck`` command.
EXIT_PASSED, EXIT_MISMATCH, EXIT_USAGE, EXIT_LAYER = 0, 1, 2, 3


def flag_type(flag: str, validate: Callable[[str, Any], Any]) -> Callable[[str], Any]:
    """An argparse ``type=`` that runs ``validate(flag, text)`` and names the flag on error."""

    def parse(text: str) -> Any:
        try:
            return validate(flag, text)
        except (InvalidArgument, InvalidArgumentType) as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    parse.__name__ = flag.lstrip("-").replace("-", "_")
    return parse
