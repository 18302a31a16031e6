"""The ``gradcheck`` command line (also ``python -m gradcheck``).

Exit codes: 0 every check passed; 1 a gradient mismatch; 2 a usage or input error;
3 the checked layer misbehaved.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

EXIT_PASSED, EXIT_MISMATCH, EXIT_USAGE, EXIT_LAYER = 0, 1, 2, 3


def _int_at_least(flag: str, low: int):
    """An argparse ``type=`` parser for an integer >= low whose errors name the flag."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag}={text!r}: expected an integer") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{flag}={value}: expected an integer >= {low}")
        return value

    return parse


def _positive_int(flag: str):
    return _int_at_least(flag, 1)


_seed = _int_at_least("--seed", 0)


def _add_verify(commands: argparse._SubParsersAction) -> None:
    verify = commands.add_parser(
        "verify", help="fuzz the built-in convolution formulas against every witness",
        description="Fuzz the reference convolution's backward formulas against finite "
        "differences, the complex step, the Fourier identity, the adjoint identity and the "
        "kernel transfer function; print one row per check.",
    )
    verify.add_argument("--examples", type=_positive_int("--examples"), default=500,
                        help="configurations to draw (default 500)")
    verify.add_argument("--seed", type=_seed, default=0, help="random seed (default 0)")
    verify.add_argument("--quiet", action="store_true", help="no progress line")
    verify.set_defaults(run=_run_verify)


def _run_verify(args: argparse.Namespace) -> int:
    from gradcheck.faces.verify import verify

    report = verify(args.examples, args.seed, show_progress=not args.quiet)
    print(report.table())
    return EXIT_PASSED if report.passed else EXIT_MISMATCH


def _dims(text: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--dims={text!r}: expected e.g. 2 or 1,2") from None
    if not dims or any(d not in (1, 2, 3) for d in dims):
        raise argparse.ArgumentTypeError(f"--dims={text!r}: each must be 1, 2 or 3")
    return dims


def _deadline(text: str) -> float | None:
    if text == "none":
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--deadline={text!r}: expected seconds or 'none'") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"--deadline={value}: expected seconds > 0")
    return value


def _add_fuzz(commands: argparse._SubParsersAction) -> None:
    fuzz = commands.add_parser(
        "fuzz", help="fuzz your own layer's backward; minimal failing configuration",
        description="Draw convolution problems inside the layer's support claim, check the "
        "layer's backward against finite differences of its forward, the adjoint identity and "
        "the reference forward, and shrink the first failure to a minimal configuration. "
        "Exit 0 passed, 1 gradient mismatch, 2 usage error, 3 the layer misbehaved.",
    )
    fuzz.add_argument("target", help="path/to/file.py:NAME or package.module:NAME (a layer "
                      "object, a layer class, or a zero-argument factory)")
    fuzz.add_argument("--examples", type=_positive_int("--examples"), default=100,
                      help="configurations to draw (default 100)")
    fuzz.add_argument("--seed", type=_seed, default=0, help="hypothesis seed (default 0)")
    claim = fuzz.add_argument_group("support restrictions (override the layer's `supports`)")
    claim.add_argument("--dims", type=_dims, help="spatial dims handled, e.g. 2 or 1,2")
    claim.add_argument("--max-stride", type=_positive_int("--max-stride"),
                       help="largest stride (1 = no stride support)")
    claim.add_argument("--no-dilation", dest="dilation", action="store_false", default=None,
                       help="dilation is always 1")
    claim.add_argument("--no-groups", dest="groups", action="store_false", default=None,
                       help="groups is always 1")
    claim.add_argument("--padding", choices=("asymmetric", "symmetric", "none"),
                       help="padding kinds handled")
    claim.add_argument("--uniform", action="store_true", default=None,
                       help="one stride/padding/dilation value shared by every dim")
    claim.add_argument("--exact-tiling", action="store_true", default=None,
                       help="only configurations whose windows tile the input exactly")
    claim.add_argument("--square-input", action="store_true", default=None)
    claim.add_argument("--square-kernel", action="store_true", default=None)
    claim.add_argument("--no-bias", dest="bias", action="store_false", default=None,
                       help="b is always None")
    claim.add_argument("--dtype", dest="dtypes", action="append",
                       choices=("float64", "float32", "complex128"),
                       help="dtype to draw (repeatable)")
    fuzz.add_argument("--method", default="central",
                      choices=("central", "four-point", "richardson", "complex-step"),
                      help="finite-difference method (default central)")
    fuzz.add_argument("--mode", default="auto", choices=("auto", "full", "fast"),
                      help="full Jacobian, fast random directions, or auto (full for small "
                      "problems; default)")
    fuzz.add_argument("--plot", metavar="DIR",
                      help="write a PNG error map per wrong gradient (needs the plot extra)")
    fuzz.add_argument("--no-reference-forward", dest="reference_forward",
                      action="store_false", help="do not compare the forward with the reference")
    fuzz.add_argument("--deadline", type=_deadline, default=10.0,
                      help="seconds allowed per layer call, or 'none' (default 10)")
    fuzz.add_argument("--json", action="store_true", help="print one JSON object")
    fuzz.add_argument("--save-regressions", metavar="DIR",
                      help="save the minimal failing case as a regression corpus entry")
    fuzz.add_argument("--quiet", action="store_true", help="no progress line")
    fuzz.set_defaults(run=_run_fuzz)


CLAIM_KEYS = ("dims", "max_stride", "dilation", "groups", "padding", "uniform",
              "exact_tiling", "square_input", "square_kernel", "bias", "dtypes")


def _run_fuzz(args: argparse.Namespace) -> int:
    import json

    from gradcheck.errors import GradcheckError
    from gradcheck.faces.render import fuzz_json, fuzz_text
    from gradcheck.harness.fuzz import fuzz_layer
    from gradcheck.harness.target import load_target

    def usage_error(message: str) -> int:
        if args.json:
            print(json.dumps({"status": "usage-error", "message": message}))
        else:
            print(f"gradcheck fuzz: error: {message}", file=sys.stderr)
        return EXIT_USAGE

    try:
        layer = load_target(args.target)
    except GradcheckError as error:
        return usage_error(str(error))
    except Exception as error:  # the user's module failed to import
        return usage_error(f"importing {args.target} raised {type(error).__name__}: {error}")
    claim = {key: getattr(args, key) for key in CLAIM_KEYS if getattr(args, key) is not None}
    if "dtypes" in claim:
        claim["dtypes"] = tuple(claim["dtypes"])
    try:
        result = fuzz_layer(layer, max_examples=args.examples, seed=args.seed, mode=args.mode,
                            plot=args.plot,
                            method=args.method, reference_forward=args.reference_forward,
                            deadline=args.deadline,
                            show_progress=not (args.quiet or args.json), **claim)
    except GradcheckError as error:  # e.g. an invalid `supports` on the layer
        return usage_error(str(error))
    except ImportError as error:  # --plot without matplotlib
        return usage_error(str(error))
    saved = None
    if args.save_regressions and result.problem is not None:
        from gradcheck.harness.fuzz import save_failure

        saved = save_failure(result, args.save_regressions, target=args.target)
    if args.json:
        out = fuzz_json(result, args.target)
        if saved is not None:
            out["failure"]["saved"] = str(saved)
        print(json.dumps(out, indent=2))
    else:
        print(fuzz_text(result, args.target))
        if saved is not None:
            print(f"saved regression case: {saved}")
    return {"passed": EXIT_PASSED, "mismatch": EXIT_MISMATCH,
            "inconclusive": EXIT_USAGE}.get(result.status, EXIT_LAYER)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gradcheck",
        description="Check hand-derived gradients — convolution first — three independent ways.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    _add_verify(commands)
    _add_fuzz(commands)
    from gradcheck.faces.jacobian_command import add_jacobian_parser

    add_jacobian_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse exits 2 on usage errors, 0 on --help
        return int(exit_.code or 0)
    try:
        return int(args.run(args))
    except BrokenPipeError:  # output piped into `head`: not an error
        sys.stderr.close()
        return EXIT_PASSED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
