"""The ``gradcheck`` command line (also ``python -m gradcheck``).

Exit codes: 0 every check passed; 1 a gradient mismatch; 2 a usage or input error;
3 the checked layer misbehaved.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

EXIT_PASSED, EXIT_MISMATCH, EXIT_USAGE, EXIT_LAYER = 0, 1, 2, 3


def _positive_int(flag: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag}={text!r}: expected an integer") from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"{flag}={value}: expected an integer >= 1")
        return value

    return parse


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seed={text!r}: expected an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"--seed={value}: expected an integer >= 0")
    return value


def _add_verify(commands: argparse._SubParsersAction) -> None:
    verify = commands.add_parser(
        "verify", help="fuzz the built-in convolution formulas against every witness",
        description="Fuzz the reference convolution's backward formulas against finite "
        "differences, the complex step, the Fourier identity, the adjoint identity and the "
        "kernel transfer function; print one row per check.",
    )
    verify.add_argument("--examples", type=_positive_int("--examples"), default=200,
                        help="configurations to draw (default 200)")
    verify.add_argument("--seed", type=_seed, default=0, help="random seed (default 0)")
    verify.add_argument("--quiet", action="store_true", help="no progress line")
    verify.set_defaults(run=_run_verify)


def _run_verify(args: argparse.Namespace) -> int:
    from gradcheck.verify import verify

    report = verify(args.examples, args.seed, show_progress=not args.quiet)
    print(report.table())
    return EXIT_PASSED if report.passed else EXIT_MISMATCH


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gradcheck",
        description="Check hand-derived gradients — convolution first — three independent ways.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    _add_verify(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse exits 2 on usage errors, 0 on --help
        return int(exit_.code or 0)
    return int(args.run(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
