"""gradcheck against torch.autograd.gradcheck on the same numpy layer, side by side in one run.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_vs_torch.py
    python benchmarks/bench_vs_torch.py --quick

The layer is ``examples/naive_conv.py``'s NaiveConv (numpy): torch checks it wrapped as a
``torch.autograd.Function`` (forward calls ``NaiveConv.forward``, backward ``NaiveConv.backward``,
on numpy arrays); gradcheck checks the layer itself with ``check_layer``.  Both run in this
process on the same inputs (float64, stride 1, padding 1, with a bias), and every forward and
backward call either checker makes is counted.

1. Time per check, the median of ``--repeat`` runs: torch slow mode (the full Jacobian, one element
   at a time) and ``fast_mode=True``; gradcheck ``mode="full"`` and ``mode="fast"``; and the
   ratios torch / gradcheck.  torch's slow mode at the largest size is estimated first, from its
   call counts times the measured cost of one call (calibrated on the middle size), and skipped
   when the estimate exceeds ``--slow-cap`` seconds.
2. The wrong layers of ``examples/mistakes.py`` at the one configuration a person would write in
   a unit test — x (2,3,8,8), w (4,3,3,3), stride 1, padding 1, no dilation, groups 1, bias —
   checked by torch (slow and fast) and by gradcheck's ``check_layer``; then by gradcheck's
   fuzzing (``fuzz_layer``'s draws and checks over the layer's whole support claim, timed to
   the first failing configuration, before fuzz_layer would shrink it) given the same
   wall-clock time as torch's slow mode took on that layer.

``--quick``: the same two tables on the two smaller sizes, ``--repeat 2``, ``--slow-cap 1``, and
the wrong layers at x (1,2,5,5), w (2,2,3,3) — a few seconds.  torch is an optional extra:
without it the torch columns are skipped (gradcheck's are still timed, with the ratio of its
full to its fast mode) and the fuzzing budget is ``--fuzz-budget`` seconds per layer.

Environment: OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE, when set, slow numpy's BLAS; unset them for
this command only, as above.  gradcheck's reference convolutions (which bound the rounding) are
BLAS matrix products, and on some machines (seen on a 2-vCPU sandbox) OpenBLAS's worker threads,
once woken, make the single-threaded numpy work that follows stall — there, the first write to
a freshly allocated megabyte took ~100 ms instead of ~0.1 ms.  Run it a second time with
``OPENBLAS_NUM_THREADS=1`` to see whether a machine has that problem: the two runs differ
wildly if it has, and little if not.  Timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hypothesis
import numpy as np

try:
    import torch
except ImportError:  # the torch extra is optional: its columns are skipped
    torch = None

# examples/ is a folder of the checkout, not installed: put the repository root on the path.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from examples.mistakes import MISTAKES
from examples.naive_conv import NaiveConv
from gradcheck import ConvProblem, ConvSpec, GradientMismatch, check_layer
from gradcheck.formulas.conv import conv_forward
from gradcheck.harness.layer import supports_of
from gradcheck.strategies import conv_problems

SIZES = (((1, 1, 8, 8), (1, 1, 3, 3)), ((2, 3, 16, 16), (4, 3, 3, 3)),
         ((4, 8, 32, 32), (8, 8, 3, 3)))
UNIT_TEST = ((2, 3, 8, 8), (4, 3, 3, 3))
#: ``--quick``: the two smaller sizes, and the wrong layers at a smaller unit-test configuration.
QUICK_SIZES = SIZES[:2]
QUICK_UNIT_TEST = ((1, 2, 5, 5), (2, 2, 3, 3))
SKIPPED = "skipped"
SPEC = ConvSpec.create(2, padding=1)


class Counting:
    """A layer that counts the forward and backward calls made on it."""

    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self.supports = getattr(layer, "supports", None)
        self.forwards = self.backwards = 0

    def forward(self, x, w, b, spec):
        self.forwards += 1
        return self.layer.forward(x, w, b, spec)

    def backward(self, dy, x, w, b, spec):
        self.backwards += 1
        return self.layer.backward(dy, x, w, b, spec)


def torch_function(layer: Counting) -> Callable[..., torch.Tensor]:
    """``layer`` as a torch.autograd.Function on (x, w, b); its calls are counted by ``layer``."""

    class NumpyConv(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, w, b):
            ctx.save_for_backward(x, w, b)
            arrays = (t.detach().numpy() for t in (x, w, b))
            return torch.from_numpy(np.ascontiguousarray(layer.forward(*arrays, SPEC)))

        @staticmethod
        def backward(ctx, dy):
            x, w, b = (t.detach().numpy() for t in ctx.saved_tensors)
            grads = layer.backward(dy.detach().numpy(), x, w, b, SPEC)
            return tuple(torch.from_numpy(np.ascontiguousarray(g)) for g in grads)

    return NumpyConv.apply


def make_problem(x_shape: tuple[int, ...], w_shape: tuple[int, ...], seed: int = 0) -> ConvProblem:
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0])
    dy = rng.standard_normal(conv_forward(x, w, b, SPEC).shape)
    return ConvProblem(x, w, b, dy, SPEC)


def tensors(problem: ConvProblem) -> tuple[torch.Tensor, ...]:
    return tuple(torch.tensor(a, requires_grad=True) for a in (problem.x, problem.w, problem.b))


def median(fn: Callable[[], Any], repeat: int) -> float:
    """The median wall-clock time of ``repeat`` calls (robust to the odd stall either way)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def run_torch(layer: Any, problem: ConvProblem, fast: bool, repeat: int) -> dict[str, Any]:
    counting = Counting(layer)
    fn, inputs = torch_function(counting), tensors(problem)
    outcome = {}

    def check() -> None:
        try:
            outcome["ok"] = torch.autograd.gradcheck(fn, inputs, fast_mode=fast,
                                                     raise_exception=False)
        except Exception as error:  # a wrong layer may break torch's own invariants
            outcome["ok"] = False
            outcome["error"] = type(error).__name__

    check()
    calls = (counting.forwards, counting.backwards)
    seconds = median(check, repeat - 1) if repeat > 1 else None
    return {"ok": outcome["ok"], "calls": calls, "seconds": seconds}


def run_gradcheck(layer: Any, problem: ConvProblem, mode: str, repeat: int) -> dict[str, Any]:
    counting = Counting(layer)
    outcome = {}

    def check() -> None:
        try:
            check_layer(counting, problem, mode=mode)
            outcome["ok"] = True
        except GradientMismatch:
            outcome["ok"] = False

    check()
    calls = (counting.forwards, counting.backwards)
    return {"ok": outcome["ok"], "calls": calls, "seconds": median(check, repeat)}


def call_seconds(problem: ConvProblem) -> tuple[float, float]:
    """One forward and one backward of the torch-wrapped layer at this size (medians)."""
    fn, (x, w, b) = torch_function(Counting(NaiveConv())), tensors(problem)
    dy = torch.tensor(problem.dy)
    forward = median(lambda: fn(x, w, b), 7)
    backward = median(lambda: torch.autograd.grad(fn(x, w, b), (x, w, b), dy), 7) - forward
    return forward, max(backward, 0.0)


def torch_slow_calls(problem: ConvProblem) -> tuple[int, int]:
    """torch's slow mode: 2 forwards per input element, 2 backwards per output element."""
    p = problem
    return 2 * (p.x.size + p.w.size + p.b.size) + 2, 2 * p.dy.size + 2


def torch_checks(p: ConvProblem, repeat: int, slow_cap: float,
                 calibration: float | None) -> tuple[dict[str, Any], dict[str, Any], float | None]:
    """torch's slow (run, or estimated above ``slow_cap``) and fast checks of the correct layer.

    Returns them with the calibration (measured slow time / the call counts' predicted time)
    that the next, larger size's estimate uses.
    """
    layer = NaiveConv()
    slow_repeat = 1 if p.x.size > 100 else repeat
    predicted = None
    if calibration is not None:
        f_calls, b_calls = torch_slow_calls(p)
        f_sec, b_sec = call_seconds(p)
        predicted = calibration * (f_calls * f_sec + b_calls * b_sec)
    if predicted is not None and predicted > slow_cap:
        slow = {"seconds": None, "calls": torch_slow_calls(p), "estimate": predicted}
    else:
        slow = run_torch(layer, p, fast=False, repeat=slow_repeat + 1)
        f_calls, b_calls = slow["calls"]
        f_sec, b_sec = call_seconds(p)
        calibration = slow["seconds"] / (f_calls * f_sec + b_calls * b_sec)
    fast = run_torch(layer, p, fast=True, repeat=repeat + 1)
    return slow, fast, calibration


def timing_table(sizes: tuple[tuple[tuple[int, ...], tuple[int, ...]], ...], repeat: int,
                 slow_cap: float) -> None:
    print(f"1. time per check of the correct layer (median of {repeat}), float64, stride 1, "
          "padding 1")
    if torch is None:
        print("torch not installed: the torch columns are skipped "
              "(pip install 'gradcheck[torch]')")
    header = (f"{'x / w':<26}{'torch slow':>12}{'torch fast':>12}{'gc full':>10}{'gc fast':>10}"
              f"{'slow/full':>11}{'fast/fast':>11}{'full/fast':>11}")
    print(header)
    calibration = None
    calls_lines = []
    for x_shape, w_shape in sizes:
        p = make_problem(x_shape, w_shape)
        if torch is not None:  # torch first, then gradcheck, as the table reads
            slow, fast, calibration = torch_checks(p, repeat, slow_cap, calibration)
        full = run_gradcheck(NaiveConv(), p, "full", repeat)
        quick = run_gradcheck(NaiveConv(), p, "fast", repeat)
        name = f"{x_shape}/{w_shape}".replace(" ", "")
        gc_text = (f"{1e3 * full['seconds']:8.2f}ms{1e3 * quick['seconds']:8.2f}ms")
        own_ratio = f"{full['seconds'] / quick['seconds']:10.2f}x"
        gc_calls = (f"gc full {full['calls'][0]:>4} fwd {full['calls'][1]:>2} bwd | "
                    f"gc fast {quick['calls'][0]:>2} fwd {quick['calls'][1]:>2} bwd")
        if torch is None:
            print(f"{name:<26}{SKIPPED:>12}{SKIPPED:>12}{gc_text}{SKIPPED:>11}{SKIPPED:>11}"
                  f"{own_ratio:>11}")
            calls_lines.append(f"{name:<26}{gc_calls}")
            continue
        slow_text = (f"{1e3 * slow['seconds']:10.1f}ms" if slow["seconds"] is not None
                     else f"~{slow['estimate']:.0f}s*")
        slow_ratio = (f"{slow['seconds'] / full['seconds']:10.1f}x" if slow["seconds"]
                      else f"~{slow['estimate'] / full['seconds']:.0f}x")
        print(f"{name:<26}{slow_text:>12}{1e3 * fast['seconds']:10.2f}ms{gc_text}"
              f"{slow_ratio:>11}{fast['seconds'] / quick['seconds']:10.2f}x{own_ratio:>11}")
        calls_lines.append(
            f"{name:<26}torch slow {slow['calls'][0]:>6} fwd {slow['calls'][1]:>6} bwd | "
            f"torch fast {fast['calls'][0]:>2} fwd {fast['calls'][1]:>2} bwd | {gc_calls}")
        if slow["seconds"] is None:
            calls_lines[-1] += "  (* torch slow: calls and time estimated, not run)"
    print("slow/full, fast/fast > 1: gradcheck faster; full/fast: gradcheck's full mode's time "
          "over its fast mode's.  Forward/backward calls made on the layer per check:")
    print("\n".join(calls_lines))


class _Found(BaseException):
    """Stops hypothesis at once (it only catches Exception): no replay, no shrinking."""


def fuzz_within(layer: Any, budget: float) -> tuple[float, int] | None:
    """(seconds, configurations) until gradcheck's fuzzing meets a failing configuration.

    The same draws and checks as ``fuzz_layer`` (``conv_problems`` inside the layer's support
    claim, ``check_layer`` on each), timed to the first mismatch; ``fuzz_layer`` would go on
    to shrink it to a minimal configuration, which is not counted.  None if the budget ran out.
    """
    supports = supports_of(layer)
    start, seed, count = time.perf_counter(), 0, [0]

    def check(problem: ConvProblem) -> None:
        if time.perf_counter() - start > budget:
            raise _Found  # out of time: stop without a verdict
        count[0] += 1
        try:
            check_layer(layer, problem)
        except GradientMismatch:
            raise _Found from None

    while time.perf_counter() - start < budget:
        run = hypothesis.seed(seed)(hypothesis.settings(
            max_examples=100, database=None, deadline=None, phases=[hypothesis.Phase.generate],
            suppress_health_check=list(hypothesis.HealthCheck),
        )(hypothesis.given(conv_problems(supports))(check)))
        try:
            run()
        except _Found:
            elapsed = time.perf_counter() - start
            return (elapsed, count[0]) if elapsed <= budget else None
        seed += 1
    return None


def mistakes_table(unit_test: tuple[tuple[int, ...], tuple[int, ...]], fuzz_budget: float) -> None:
    p = make_problem(*unit_test)
    print(f"\n2. the wrong layers at one unit-test configuration: {p.describe()}")
    print("   torch: gradcheck on the wrapped layer; gc check: check_layer on the same problem; "
          "gc fuzz: fuzz_layer's draws\n   and checks over the layer's whole support claim, "
          "for as long as torch's slow mode took on that layer")
    if torch is None:
        print(f"   torch not installed: the torch columns are skipped; gc fuzz gets "
              f"--fuzz-budget {fuzz_budget:g}s per layer")
    print(f"{'mistake':<28}{'torch slow':>11}{'torch fast':>11}{'gc check':>10}"
          f"{'gc fuzz: first failure (budget)':>40}")
    caught = {"torch slow": 0, "torch fast": 0, "gc check": 0, "gc fuzz": 0}
    for name, layer in MISTAKES.items():
        verdicts: dict[str, bool | None] = {"torch slow": None, "torch fast": None}
        budget = fuzz_budget
        if torch is not None:
            slow = run_torch(layer, p, fast=False, repeat=2)
            fast = run_torch(layer, p, fast=True, repeat=1)
            verdicts = {"torch slow": not slow["ok"], "torch fast": not fast["ok"]}
            budget = slow["seconds"]
        verdicts["gc check"] = not run_gradcheck(layer, p, "auto", 1)["ok"]
        found = fuzz_within(layer, budget)
        verdicts["gc fuzz"] = found is not None
        for key, value in verdicts.items():
            caught[key] += bool(value)
        marks = [SKIPPED if verdicts[k] is None else "CAUGHT" if verdicts[k] else "missed"
                 for k in ("torch slow", "torch fast", "gc check")]
        fuzz_text = (f"CAUGHT {found[0]:.2f}s, {found[1]:>3} configs" if found is not None
                     else "missed") + f" ({budget:.2f}s)"
        print(f"{name:<28}{marks[0]:>11}{marks[1]:>11}{marks[2]:>10}{fuzz_text:>40}")
    total = len(MISTAKES)
    print("caught: " + ", ".join(f"{k} {v}/{total}" for k, v in caught.items()
                                 if torch is not None or not k.startswith("torch")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=None, help="median of (default 5; 2 quick)")
    parser.add_argument("--slow-cap", type=float, default=None,
                        help="skip torch's slow mode when its estimated time exceeds this "
                             "(s; default 60, 1 quick)")
    parser.add_argument("--fuzz-budget", type=float, default=1.0,
                        help="without torch: seconds of fuzzing per wrong layer (default 1)")
    parser.add_argument("--skip-mistakes", action="store_true")
    parser.add_argument("--quick", action="store_true",
                        help="the same tables on small sizes, in a few seconds")
    args = parser.parse_args()
    repeat = args.repeat if args.repeat is not None else (2 if args.quick else 5)
    slow_cap = args.slow_cap if args.slow_cap is not None else (1.0 if args.quick else 60.0)
    sizes = QUICK_SIZES if args.quick else SIZES
    blas = {k: os.environ.get(k, "unset") for k in
            ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS")}
    versions = (f"torch {torch.__version__} ({torch.get_num_threads()} threads)"
                if torch is not None else "torch not installed")
    print(f"numpy {np.__version__}, {versions}, "
          f"{', '.join(f'{k}={v}' for k, v in blas.items())}")
    warm = make_problem(*sizes[0])
    if torch is not None:
        run_torch(NaiveConv(), warm, fast=True, repeat=1)  # torch's first call pays its imports
    run_gradcheck(NaiveConv(), warm, "fast", 1)
    timing_table(sizes, repeat, slow_cap)
    if not args.skip_mistakes:
        mistakes_table(QUICK_UNIT_TEST if args.quick else UNIT_TEST, args.fuzz_budget)


if __name__ == "__main__":
    main()
