"""Fuzzing throughput: configurations checked per second, side by side in one run.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_fuzz.py [--examples 300]
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_fuzz.py --profile 20
    python benchmarks/bench_fuzz.py --quick

The problems are the default 2-d distribution, ``conv_problems(dims=2)``, drawn once by
hypothesis (the drawing is not timed) so that every variant checks the same configurations:

* the reference formulas with ``check.compare_*`` directly: finite differences alone, then
  with the adjoint identity, then with the Fourier identity as well;
* ``check_layer`` on the naive numpy layer (``examples/naive_conv.py``) in ``mode="full"``,
  ``"fast"`` and ``"auto"``;
* ``fuzz_layer`` on the same layer: the whole loop, hypothesis's generation included.

Each row's last column is its time per configuration over the first row's, measured in the
same run.  ``--quick`` is the same table on 12 configurations (a few seconds).

``--profile SECONDS`` instead runs ``fuzz_layer`` on the naive layer for about that long under
cProfile and prints the functions with the most time of their own, and how the total splits
between numpy's compiled code, Python code in numpy, hypothesis, gradcheck and the layer
(numpy arithmetic written with operators counts as its caller's time: cProfile sees no call).

Environment: OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE, when set, slow numpy's BLAS; unset them for
this command only, as above.  Timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from collections.abc import Callable
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import seed as hypothesis_seed

# examples/ is a folder of the checkout, not installed: put the repository root on the path.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from examples.naive_conv import layer as naive_layer
from gradcheck import check_layer, fuzz_layer
from gradcheck.geometry.problem import ConvProblem
from gradcheck.judge.compare import compare_adjoint, compare_finite_differences, compare_fourier
from gradcheck.strategies import conv_problems


def draw_problems(count: int, seed: int) -> list[ConvProblem]:
    """``count`` problems from ``conv_problems(dims=2)``, as hypothesis draws them."""
    problems: list[ConvProblem] = []

    @hypothesis_seed(seed)
    @settings(max_examples=count, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(conv_problems(dims=2))
    def collect(problem: ConvProblem) -> None:
        problems.append(problem)

    collect()
    return problems


def reference(*checks: Callable[[ConvProblem], object]) -> Callable[[ConvProblem], None]:
    def run(problem: ConvProblem) -> None:
        for check in checks:
            check(problem)

    return run


VARIANTS: dict[str, Callable[[ConvProblem], object]] = {
    "reference: finite differences": reference(compare_finite_differences),
    "reference: + adjoint": reference(compare_finite_differences, compare_adjoint),
    "reference: + adjoint + Fourier": reference(compare_finite_differences, compare_adjoint,
                                                compare_fourier),
    "check_layer(naive), full": lambda p: check_layer(naive_layer, p, mode="full"),
    "check_layer(naive), fast": lambda p: check_layer(naive_layer, p, mode="fast"),
    "check_layer(naive), auto": lambda p: check_layer(naive_layer, p, mode="auto"),
}


#: Configurations drawn by ``--quick`` (and by default).
QUICK_EXAMPLES = 12
DEFAULT_EXAMPLES = 300


def _row(name: str, count: int, elapsed: float, baseline: float) -> str:
    """One table row: configurations per second, ms per configuration, × the first row."""
    per = elapsed / count
    return f"{name:<36}{count / elapsed:11.1f}{1e3 * per:11.2f}{per / baseline:10.2f}x"


def throughput(examples: int, seed: int) -> None:
    problems = draw_problems(examples, seed)
    sizes = sorted(p.x.size + p.w.size + (0 if p.b is None else p.b.size) for p in problems)
    print(f"{len(problems)} problems from conv_problems(dims=2), seed {seed}; perturbations "
          f"(x.size + w.size + b.size) median {sizes[len(sizes) // 2]}, max {sizes[-1]}")
    print(f"ratio: time per configuration / '{next(iter(VARIANTS))}', this run")
    print(f"{'variant':<36}{'configs/s':>11}{'ms/config':>11}{'ratio':>11}")
    for check in VARIANTS.values():
        check(problems[0])  # warm up: the first call of each pays lazy imports and caches
    baseline = 0.0
    for name, check in VARIANTS.items():
        start = time.perf_counter()
        for problem in problems:
            check(problem)
        elapsed = time.perf_counter() - start
        baseline = baseline or elapsed / len(problems)
        print(_row(name, len(problems), elapsed, baseline))
    for mode in ("full", "fast"):
        start = time.perf_counter()
        result = fuzz_layer(naive_layer, examples=examples, seed=seed, mode=mode,
                            claim={"dims": (2,)})
        elapsed = time.perf_counter() - start
        print(_row(f"fuzz_layer(naive), {mode}", result.examples, elapsed, baseline)
              + f"   (hypothesis included; {result.status})")


def _origin(filename: str, name: str) -> str:
    if filename == "~":  # compiled: numpy's are named after their module or type
        return "numpy (compiled)" if "numpy" in name else "Python builtins"
    for key, label in (("/numpy/", "numpy (Python)"), ("/hypothesis/", "hypothesis"),
                       ("/gradcheck/", "gradcheck"), ("/examples/", "the layer (Python)")):
        if key in filename:
            return label
    return "other"


def profile(seconds: float) -> None:
    profiler = cProfile.Profile()
    start, seed, checked = time.perf_counter(), 0, 0
    profiler.enable()
    while time.perf_counter() - start < seconds:
        checked += fuzz_layer(naive_layer, examples=200, seed=seed).examples
        seed += 1
    profiler.disable()
    stats = pstats.Stats(profiler)
    total = sum(row[2] for row in stats.stats.values())  # tottime
    print(f"fuzz_layer(naive layer), default distribution, mode auto: {checked} configurations "
          f"in {time.perf_counter() - start:.1f} s under cProfile")
    shares: dict[str, float] = {}
    for (filename, _, name), row in stats.stats.items():
        label = _origin(filename, name)
        shares[label] = shares.get(label, 0.0) + row[2]
    print("own time by origin: " + ", ".join(
        f"{label} {100 * value / total:.0f}%" for label, value in
        sorted(shares.items(), key=lambda item: -item[1])))
    print("(numpy arithmetic written with operators, a + b or a += b, is its caller's own time: "
          "cProfile sees no call)")
    stats.sort_stats("tottime").print_stats(15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=None,
                        help=f"configurations (default {DEFAULT_EXAMPLES}; {QUICK_EXAMPLES} quick)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true",
                        help="the same table on a few configurations")
    parser.add_argument("--profile", type=float, metavar="SECONDS",
                        help="profile fuzz_layer on the naive layer for about this long")
    args = parser.parse_args()
    if args.profile:
        profile(args.profile)
    else:
        default = QUICK_EXAMPLES if args.quick else DEFAULT_EXAMPLES
        throughput(args.examples if args.examples is not None else default, args.seed)


if __name__ == "__main__":
    main()
