"""``gradcheck jacobian``: the command line of the Jacobian explainer
(:mod:`gradcheck.explain.jacobian_text`)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import numpy as np

from gradcheck.errors import InvalidArgument, integer
from gradcheck.explain.jacobian_text import MAX_INPUT, explain, format_number, spec_for
from gradcheck.faces.flags import EXIT_PASSED, EXIT_USAGE, flag_type


def _at_least_one(name: str, value: Any) -> int:
    return integer(name, value, low=1)


def _numbers(flag: str):
    """argparse type: ``1,2,3`` (1-d) or rows ``1,2;3,4`` (2-d) of finite numbers."""

    def parse(text: str) -> list[float] | list[list[float]]:
        try:
            rows = [[float(v) for v in row.split(",")] for row in text.split(";")]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{flag}={text!r}: expected numbers separated by ',' "
                "(and rows of a 2-d array separated by ';')") from None
        if not all(np.isfinite(v) for row in rows for v in row):
            raise argparse.ArgumentTypeError(f"{flag}={text!r}: expected finite numbers")
        if len({len(row) for row in rows}) > 1:
            counts = ", ".join(str(len(row)) for row in rows)
            raise argparse.ArgumentTypeError(
                f"{flag}={text!r}: every row needs as many numbers as the first (got {counts})")
        if sum(len(row) for row in rows) > MAX_INPUT:
            raise argparse.ArgumentTypeError(
                f"{flag}={text!r}: at most {MAX_INPUT} numbers (the matrices are printed)")
        return rows[0] if len(rows) == 1 else rows

    return parse


def _padding(text: str) -> int | tuple[int, ...] | str:
    """argparse type for --padding: ``1``, ``lo,hi`` or valid / same / full."""
    if text in ("valid", "same", "full"):
        return text
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) not in (1, 2) or min(values) < 0:
        raise argparse.ArgumentTypeError(
            f"--padding={text!r}: expected an integer >= 0, lo,hi, or valid / same / full")
    return values[0] if len(values) == 1 else values


def add_jacobian_parser(commands: argparse._SubParsersAction) -> None:
    """Add the ``jacobian`` subcommand to an argparse subparsers object.

    Every bad value is an argparse error naming its flag (exit 2); :func:`run_jacobian` reports
    the combinations no single flag shows (a kernel wider than the padded input, a --delta
    not of y's shape) the same way.
    """
    jacobian = commands.add_parser(
        "jacobian", help="show dy/dk and dy/dx as matrices and Jᵀδ = x ⋆ δ for a tiny case",
        description="For a tiny 1-d or 2-d convolution (one channel, one filter), print the "
        "Jacobians of y with respect to the kernel and the input as matrices, their "
        "Hankel/Toeplitz structure, and check that Jᵀδ is x ⋆ δ and δ * k. "
        "Example: gradcheck jacobian --input 1,2,3,4 --kernel 1,0,-1",
    )
    numbers = "numbers separated by ','; a 2-d array as rows separated by ';' (1,2;3,4)"
    jacobian.add_argument("--input", required=True, type=_numbers("--input"), metavar="X",
                          help=f"the input x: {numbers}; at most {MAX_INPUT} numbers")
    jacobian.add_argument("--kernel", required=True, type=_numbers("--kernel"), metavar="K",
                          help="the kernel k, as many dims as the input")
    jacobian.add_argument("--stride", type=flag_type("--stride", _at_least_one), default=1,
                          help="stride s, every axis (default 1)")
    jacobian.add_argument("--padding", type=_padding, default=0,
                          help="zeros on both sides (int), lo,hi, or valid / same / full; "
                          "every axis (default 0)")
    jacobian.add_argument("--dilation", type=flag_type("--dilation", _at_least_one), default=1,
                          help="dilation r, every axis (default 1)")
    jacobian.add_argument("--delta", type=_numbers("--delta"), metavar="D",
                          help="the upstream gradient δ = dL/dy, y's shape, in the format of "
                          "--input (default: small random integers)")
    jacobian.add_argument("--seed", type=flag_type("--seed", integer), default=0,
                          help="seed of the random δ (default 0)")
    jacobian.set_defaults(run=run_jacobian)


def _flag_text(values: list) -> str:
    """Parsed --input / --kernel / --delta values written back in the command-line format."""
    rows = np.atleast_2d(values)
    return repr(";".join(",".join(format_number(v) for v in row) for row in rows))


def _combination_error(args: argparse.Namespace) -> str | None:
    """What no single flag shows: dims that differ, a kernel wider than the padded input."""
    x, k = np.array(args.input), np.array(args.kernel)
    if x.ndim != k.ndim:
        return (f"--kernel={_flag_text(args.kernel)} is {k.ndim}-d but --input is {x.ndim}-d: "
                "give both as 1-d lists or both as ';'-separated rows")
    spec = spec_for(x.ndim, k.shape, args.stride, args.padding, args.dilation)
    padded = tuple(n + lo + hi for n, (lo, hi) in zip(x.shape, spec.padding))
    extent = tuple(args.dilation * (n - 1) + 1 for n in k.shape)
    if any(e > p for e, p in zip(extent, padded)):
        return (f"--kernel={_flag_text(args.kernel)} spans {extent} positions (with --dilation="
                f"{args.dilation}) but the padded --input has {padded}: add --padding or use a "
                "smaller kernel or dilation")
    out = spec.output_size(x.shape, k.shape)
    if args.delta is not None and np.array(args.delta).shape != out:
        return f"--delta={_flag_text(args.delta)}: expected y's shape {out} for these flags"
    return None


def run_jacobian(args: argparse.Namespace) -> int:
    """Print :func:`explain` for the parsed flags; 0 on success, 2 on a usage error."""
    try:
        problem = _combination_error(args)
        text = None if problem else explain(
            args.input, args.kernel, stride=args.stride, padding=args.padding,
            dilation=args.dilation, delta=args.delta, seed=args.seed)
    except InvalidArgument as error:
        problem = str(error)
    if problem is not None:
        print(f"gradcheck jacobian: error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    print(text)
    return EXIT_PASSED
