"""The ``gradcheck`` command line (also ``python -m gradcheck``).

Exit codes: 0 every check passed; 1 a gradient mismatch; 2 a usage or input error, or an
inconclusive run; 3 the checked layer misbehaved.

``gradcheck fuzz`` turns its flags into one :class:`~gradcheck.harness.request.Request`,
runs it, and prints the run's :class:`~gradcheck.harness.outcome.FuzzResult` as text or JSON;
the report's ``reproduce:`` line is the request's own command, which this parser reads back into
the same request.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import fields
from typing import Any, NoReturn

from gradcheck.errors import GradcheckError, choice, integer, invalid, seconds_or_none
from gradcheck.faces.flags import EXIT_LAYER, EXIT_MISMATCH, EXIT_PASSED, EXIT_USAGE, flag_type
from gradcheck.geometry.supports import FAMILIES, PADDING_MODES, ROUNDING_MODELS, Supports
from gradcheck.harness.request import BOOLEAN_CLAIM_KEYS, METHODS, MODES, Request

#: Exit code per run status.
EXIT_CODES = {"passed": EXIT_PASSED, "mismatch": EXIT_MISMATCH, "inconclusive": EXIT_USAGE,
              "layer-error": EXIT_LAYER}


class UsageError(Exception):
    """A bad command line: the message names the flag (raised instead of argparse's exit).

    Attributes
    ----------
    usage : str
        The subcommand's usage lines.
    option : str or None
        The flag at fault, when argparse names one.
    """

    def __init__(self, message: str, usage: str, option: str | None) -> None:
        super().__init__(message)
        self.usage, self.option = usage, option


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is raised (so ``--json`` can print it as JSON)."""

    def error(self, message: str) -> NoReturn:
        named = re.match(r"argument (\S+?)(?:/\S+)?: ", message)
        option = named.group(1) if named else None
        if named and message[named.end():].startswith(f"{option}="):
            message = message[named.end():]  # "--examples='abc': ..." names the flag already
        unknown = re.match(r"unrecognized arguments: (\S+)", message)
        if unknown:
            option = unknown.group(1)
        raise UsageError(f"{self.prog}: error: {message}", self.format_usage(), option)


def _at_least_one(name: str, value: Any) -> int:
    return integer(name, value, low=1)


def _dims(name: str, text: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise invalid(name, text, "expected e.g. 2 or 1,2") from None
    if not dims or any(d not in (1, 2, 3) for d in dims):
        raise invalid(name, text, "each must be 1, 2 or 3")
    return dims


def _directory_or_none(name: str, text: str) -> str | None:
    return None if text.strip().lower() == "none" else text


def _add_verify(commands: argparse._SubParsersAction) -> None:
    from gradcheck.faces.verify import DEFAULT_EXAMPLES

    verify = commands.add_parser(
        "verify", help="fuzz the built-in convolution formulas against every witness",
        description="Fuzz the reference convolution's backward formulas against finite "
        "differences, the complex step, the Fourier identity, the adjoint identity and the "
        "kernel transfer function; print one row per check.",
    )
    verify.add_argument("--examples", type=flag_type("--examples", _at_least_one),
                        default=DEFAULT_EXAMPLES,
                        help=f"configurations to draw (default {DEFAULT_EXAMPLES})")
    verify.add_argument("--seed", type=flag_type("--seed", integer), default=0,
                        help="random seed (default 0)")
    verify.add_argument("--quiet", action="store_true", help="no progress line")
    verify.set_defaults(run=_run_verify)


def _run_verify(args: argparse.Namespace) -> int:
    from gradcheck.faces.verify import verify

    _hypothesis_home(None)
    report = verify(args.examples, args.seed, show_progress=not args.quiet)
    print(report.table())
    return EXIT_PASSED if report.passed else EXIT_MISMATCH


def _add_claim_flags(fuzz: argparse.ArgumentParser) -> None:
    claim = fuzz.add_argument_group(
        "support claim (narrows or overrides the layer's `supports`)")
    claim.add_argument("--dims", type=flag_type("--dims", _dims),
                       help="spatial dims handled, e.g. 2 or 1,2")
    claim.add_argument("--max-stride", type=flag_type("--max-stride", _at_least_one),
                       help="largest stride (1 = no stride support)")
    claim.add_argument("--padding", type=flag_type(
        "--padding", lambda name, v: choice(name, v, PADDING_MODES)),
        help="padding kinds handled: asymmetric, symmetric (lo == hi) or none")
    helps = {"dilation": "dilation > 1 (--no-dilation: always 1)",
             "groups": "groups > 1 (--no-groups: always 1)",
             "bias": "a bias (--no-bias: b is always None)",
             "uniform": "one stride/padding/dilation value shared by every dim",
             "exact_tiling": "only configurations whose windows tile the input exactly",
             "square_input": "equal spatial sizes of the input",
             "square_kernel": "equal spatial sizes of the kernel"}
    for key in BOOLEAN_CLAIM_KEYS:
        claim.add_argument("--" + key.replace("_", "-"), dest=key, default=None,
                           action=argparse.BooleanOptionalAction, help=helps[key])
    claim.add_argument("--rounding", type=flag_type(
        "--rounding", lambda name, v: choice(name, v, ROUNDING_MODELS)),
        help="rounding model of the layer: entrywise (direct sums in any order; default) or "
        "normwise (FFT, Winograd)")
    claim.add_argument("--family", type=flag_type(
        "--family", lambda name, v: choice(name, v, FAMILIES)),
        help="what the layer computes: conv, conv_transpose, max_pool or avg_pool (a "
        "layer's own `supports` family wins)")
    claim.add_argument("--dtype", dest="dtypes", action="append",
                       choices=("float64", "float32", "float16", "complex128"),
                       help="dtype to draw (repeatable)")


def _add_fuzz(commands: argparse._SubParsersAction) -> None:
    default = Request()
    fuzz = commands.add_parser(
        "fuzz", help="fuzz your own layer's backward; minimal failing configurations",
        description="Draw convolution problems inside the layer's support claim, check the "
        "layer's backward against finite differences of its forward, the adjoint identity and "
        "the reference forward, and shrink every distinct failure to a minimal configuration. "
        "Exit 0 passed, 1 gradient mismatch, 2 usage error or inconclusive, 3 the layer "
        "misbehaved.",
    )
    fuzz.add_argument("target", help="path/to/file.py:NAME or package.module:NAME (a layer "
                      "object, a layer class, or a zero-argument factory)")
    fuzz.add_argument("--examples", type=flag_type("--examples", _at_least_one),
                      default=default.examples,
                      help=f"configurations to draw (default {default.examples})")
    fuzz.add_argument("--seed", type=flag_type("--seed", integer), default=default.seed,
                      help="hypothesis seed (default 0)")
    _add_claim_flags(fuzz)
    fuzz.add_argument("--method", default=default.method, type=flag_type(
        "--method", lambda name, v: choice(name, v, METHODS)),
        help="finite-difference method: " + ", ".join(METHODS) + " (default central)")
    fuzz.add_argument("--mode", default=default.mode, type=flag_type(
        "--mode", lambda name, v: choice(name, v, MODES)),
        help="full Jacobian, fast random directions, or auto (full for small problems; default)")
    fuzz.add_argument("--reference-forward", dest="reference_forward", default=True,
                      action=argparse.BooleanOptionalAction,
                      help="compare the forward with the reference convolution (default on)")
    fuzz.add_argument("--deadline", type=flag_type("--deadline", seconds_or_none),
                      default=default.deadline,
                      help=f"seconds allowed per layer call, or 'none' (default "
                      f"{default.deadline:g})")
    fuzz.add_argument("--database", type=flag_type("--database", _directory_or_none),
                      default=None, metavar="DIR",
                      help="hypothesis's storage directory: the example database (DIR/examples) "
                      "replays earlier failures first; 'none' (default): no database, and "
                      "hypothesis's caches go to a temporary directory, not the working one")
    fuzz.add_argument("--plot", metavar="DIR",
                      help="write a PNG error map per wrong gradient (needs the plot extra)")
    fuzz.add_argument("--save-regressions", metavar="DIR",
                      help="save each minimal failing case as a regression corpus entry")
    fuzz.add_argument("--explain", default=True, action=argparse.BooleanOptionalAction,
                      help="explain each mismatch (default on)")
    fuzz.add_argument("--json", action="store_true", help="print one JSON object")
    fuzz.add_argument("--quiet", action="store_true", help="no progress line")
    fuzz.set_defaults(run=_run_fuzz)


def request_from_args(args: argparse.Namespace) -> Request:
    """The :class:`Request` the parsed ``gradcheck fuzz`` flags describe."""
    claim = {f.name: getattr(args, f.name) for f in fields(Supports)
             if getattr(args, f.name, None) is not None}
    if "dtypes" in claim:
        claim["dtypes"] = tuple(claim["dtypes"])
    return Request(
        target=args.target, claim=tuple(claim.items()), examples=args.examples, seed=args.seed,
        mode=args.mode, method=args.method, reference_forward=args.reference_forward,
        deadline=args.deadline, database=args.database, plot=args.plot,
        save_regressions=args.save_regressions, explain=args.explain,
        progress=not (args.quiet or args.json),
    )


def parse_request(argv: Sequence[str]) -> Request:
    """Parse a ``gradcheck fuzz ...`` command line (without or with the leading words)."""
    words = list(argv)
    if words[:1] == ["gradcheck"]:
        words = words[1:]
    return request_from_args(build_parser().parse_args(words))


def _hypothesis_home(database: str | None) -> None:
    """Keep hypothesis's files where the request says: DIR, or a temporary directory.

    Hypothesis writes caches (and, with a database, examples) under its storage directory,
    ``./.hypothesis`` by default; a command run in someone's project must not leave one
    behind unasked.  Only the CLI does this: it owns its process.
    """
    import tempfile
    from pathlib import Path

    from hypothesis.configuration import set_hypothesis_home_dir

    home = database or str(Path(tempfile.gettempdir()) / "gradcheck-hypothesis")
    set_hypothesis_home_dir(home)


def _run_fuzz(args: argparse.Namespace) -> int:
    from gradcheck.harness.fuzz import fuzz_layer
    from gradcheck.harness.outcome import usage_error_json
    from gradcheck.harness.target import load_target

    def usage_error(message: str) -> int:
        if args.json:
            print(json.dumps(usage_error_json(message), indent=2))
        else:
            print(f"gradcheck fuzz: error: {message}", file=sys.stderr)
        return EXIT_USAGE

    try:
        request = request_from_args(args)
        layer = load_target(args.target)
    except GradcheckError as error:
        return usage_error(str(error))
    except Exception as error:  # the user's module failed to import
        return usage_error(f"importing {args.target} raised {type(error).__name__}: {error}")
    _hypothesis_home(request.database)
    try:
        result = fuzz_layer(layer, request)
    except GradcheckError as error:  # e.g. an invalid `supports` on the layer
        return usage_error(str(error))
    except ImportError as error:  # --plot without matplotlib
        return usage_error(str(error))
    if args.json:
        print(json.dumps(result.as_json(), indent=2))
    else:
        print(result.report())
    return EXIT_CODES[result.status]


def build_parser() -> argparse.ArgumentParser:
    """The ``gradcheck`` parser: ``verify``, ``fuzz`` and ``jacobian``."""
    from gradcheck.faces.jacobian_command import add_jacobian_parser

    parser = _Parser(
        prog="gradcheck",
        description="Check hand-derived gradients — convolution first — three independent ways.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True
    _add_verify(commands)
    _add_fuzz(commands)
    add_jacobian_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    words = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(words)
    except UsageError as error:
        if "--json" in words and words[:1] == ["fuzz"]:
            from gradcheck.harness.outcome import usage_error_json

            print(json.dumps(usage_error_json(str(error), error.option), indent=2))
        else:
            print(f"{error.usage}{error}", file=sys.stderr)
        return EXIT_USAGE
    except SystemExit as exit_:  # --help
        return int(exit_.code or 0)
    try:
        return int(args.run(args))
    except BrokenPipeError:  # output piped into `head`: not an error
        sys.stderr.close()
        return EXIT_PASSED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
