"""False alarms on correct layers of every strategy, and the detection floor of each model.

    python benchmarks/false_alarms.py            # >= 10,000 configurations (several minutes)
    python benchmarks/false_alarms.py --quick    # a few dozen, under 30 s (run by the tests)

**False alarms.**  Every layer of :mod:`examples.correct` (direct loops, im2col + BLAS,
recursive / pairwise / blocked sums, FFT by scipy.signal, scipy.fft and numpy.fft, Winograd
F(2×2, 3×3), torch CPU contiguous and channels_last when torch is installed) is fuzzed with
:func:`gradcheck.fuzz_layer` under its own support claim, in float64 and in float32 separately,
in runs of ``--chunk`` configurations with distinct seeds.  A correct layer must pass every run:
a failed run is a false alarm (fuzz_layer stops at the first failure of a run, so a run counts
at most one).  The FFT layer fuzzed *without* declaring its rounding shows the verdict a user
gets then: ``normwise-rounding`` (:class:`gradcheck.harness.check.UndeclaredRounding`), never a
mismatch.

**Detection floor.**  For each dtype and rounding model: the smallest relative error ε of a
single gradient entry that ``check_layer`` still catches.  On problems of the default fuzzing
distribution (``conv_problems()``, fixed seed), the reference layer (examples/naive_conv.py)
claiming only that dtype and model gets ``g_i ← g_i·(1 + ε)`` at the entry i of dx (and, apart,
of dw) whose magnitude is the median of that gradient:

* *derived*: ``(analytic bound_i + finite differences' error bound_i) / |g_i|``, the bounds of
  the full-Jacobian comparison (``mode="auto"`` takes the full Jacobian on these problems);
* *measured*: ε bisected (in log scale, 1e-18 … 1) between passed and not passed (a
  GradientMismatch, or under the entrywise model an UndeclaredRounding).

The medians over the problems are printed.  The measured floor agrees with the derived one to
within the layer's own rounding error (which adds to or takes from the injected one); on tiny
problems the adjoint identity can catch a little below it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, ClassVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `examples` from a fresh clone

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import seed as hypothesis_seed

from examples.correct import correct_layers
from examples.correct.fft import fft_scipy_signal
from examples.naive_conv import NaiveConv
from gradcheck import fuzz_layer
from gradcheck.errors import GradientMismatch
from gradcheck.geometry.problem import ConvProblem
from gradcheck.harness.check import Inconclusive, UndeclaredRounding, check_layer
from gradcheck.harness.layer import layer_from_functions, supports_of
from gradcheck.judge.bounds import analytic_bounds, batch_planes, difference_planes
from gradcheck.strategies import conv_problems
from gradcheck.witnesses.compressed import structured_gradients

DTYPES = ("float64", "float32")
MODELS = ("entrywise", "normwise")


# --------------------------------------------------------------------------- false alarms


def false_alarms(per_layer: int, chunk: int, seed: int) -> list[dict[str, Any]]:
    """Fuzz every correct layer in each dtype it claims; one row per (layer, dtype)."""
    rows = []
    for name, layer in correct_layers().items():
        for dtype in DTYPES:
            if dtype not in supports_of(layer).dtypes:
                continue
            rows.append(_fuzz_rows(name, layer, dtype, per_layer, chunk, seed))
            _print_row(rows[-1])
    undeclared = layer_from_functions(fft_scipy_signal.forward, fft_scipy_signal.backward,
                                      {"dtypes": DTYPES})
    for dtype in DTYPES:
        rows.append(_fuzz_rows("fft-scipy-signal, rounding undeclared", undeclared, dtype,
                               max(chunk, per_layer // 4), chunk, seed))
        _print_row(rows[-1])
    return rows


def _fuzz_rows(name: str, layer: Any, dtype: str, total: int, chunk: int,
               seed: int) -> dict[str, Any]:
    row: dict[str, Any] = {"layer": name, "dtype": dtype, "examples": 0, "runs": 0,
                           "alarms": 0, "worst": 0.0, "outcomes": {}, "seconds": 0.0}
    start = time.perf_counter()
    run = 0
    while row["examples"] < total:
        result = fuzz_layer(layer, examples=min(chunk, total - row["examples"]),
                            seed=seed + run, explain=False, claim={"dtypes": (dtype,)})
        run += 1
        row["runs"] += 1
        row["examples"] += max(result.examples, 1)
        row["worst"] = max(row["worst"], result.worst_ratio)
        outcome = result.status
        if result.status == "layer-error":
            outcome = getattr(result.error, "reason", outcome)
        row["outcomes"][outcome] = row["outcomes"].get(outcome, 0) + 1
        if result.status not in ("passed", "inconclusive"):
            row["alarms"] += 1
            row.setdefault("first", f"{result.problem.describe() if result.problem else ''}: "
                                    f"{str(result.error).splitlines()[0][:160]}")
    row["seconds"] = time.perf_counter() - start
    return row


def _print_row(row: dict[str, Any]) -> None:
    outcomes = ", ".join(f"{k} {v}" for k, v in sorted(row["outcomes"].items()))
    what = "not passed" if "undeclared" in row["layer"] else "false alarms"
    print(f"  {row['layer']:40s} {row['dtype']:8s} {row['examples']:6d} configs "
          f"{row['alarms']:3d} {what}  worst error/bound {row['worst']:.3g}  "
          f"runs: {outcomes}  ({row['seconds']:.0f} s)", flush=True)
    if "first" in row:
        print(f"      first: {row['first']}", flush=True)


# --------------------------------------------------------------------------- detection floor


class _Injected(NaiveConv):
    """The reference layer with one gradient entry off by a relative ε, claiming one dtype."""

    supports: ClassVar[dict[str, object]] = {}

    def __init__(self, dtype: str, rounding: str, target: str, index: tuple[int, ...]):
        self.supports = {"dtypes": (dtype,), "rounding": rounding}  # type: ignore[misc]
        self.target, self.index, self.epsilon = target, index, 0.0

    def backward(self, dy, x, w, b, spec):
        dx, dw, db = super().backward(dy, x, w, b, spec)
        wrong = (dx if self.target == "dx" else dw).copy()
        wrong[self.index] *= 1 + self.epsilon
        return (wrong, dw, db) if self.target == "dx" else (dx, wrong, db)


def _problems(count: int, dtype: str, seed: int) -> list[ConvProblem]:
    drawn: list[ConvProblem] = []

    @hypothesis_seed(seed)
    @settings(max_examples=count, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(conv_problems(dtypes=(dtype,)))
    def draw(problem: ConvProblem) -> None:
        drawn.append(problem)

    draw()
    return drawn[:count]


def _gradient(problem: ConvProblem, target: str) -> np.ndarray:
    """The reference layer's dx or dw."""
    p = problem
    dx, dw, _ = NaiveConv().backward(p.dy, p.x, p.w, p.b, p.spec)
    return dx if target == "dx" else dw


def _derived(problem: ConvProblem, layer: _Injected, rounding: str) -> float:
    """``(analytic bound_i + differences' bound_i) / |g_i|`` at the layer's entry."""
    p, dtype = problem, problem.dtype
    k = 0 if layer.target == "dx" else 1
    g = _gradient(p, layer.target)
    y = layer.forward(p.x, p.w, p.b, p.spec)
    normwise = rounding == "normwise"
    numeric = structured_gradients(
        p, layer.forward, "central", dtype, y,
        planes=difference_planes(p, dtype) if normwise else None,
        batch_bound=batch_planes(p) if normwise else None)[layer.target]
    analytic = analytic_bounds(p, rounding=rounding)[k]
    assert analytic is not None  # dx or dw, never db
    bound = analytic[layer.index] + numeric[1][layer.index]
    return float(bound / abs(g[layer.index]))


def _caught(layer: _Injected, problem: ConvProblem, epsilon: float) -> bool:
    layer.epsilon = epsilon
    try:
        check_layer(layer, problem, explain=False)
    except (GradientMismatch, UndeclaredRounding):
        return True
    except Inconclusive:
        return False
    return False


def _measured(layer: _Injected, problem: ConvProblem, steps: int) -> float:
    """Bisect log10 ε in [-18, 0] between passed and caught."""
    low, high = -18.0, 0.0
    if _caught(layer, problem, 10**low) or not _caught(layer, problem, 10**high):
        return float("nan")
    for _ in range(steps):
        middle = (low + high) / 2
        low, high = (low, middle) if _caught(layer, problem, 10**middle) else (middle, high)
    return float(10**high)


def detection_floor(problems: int, steps: int, seed: int) -> list[dict[str, Any]]:
    """Derived and measured floors per dtype, model and gradient (medians over problems)."""
    rows = []
    for dtype in DTYPES:
        drawn = _problems(problems, dtype, seed)
        for rounding in MODELS:
            row: dict[str, Any] = {"dtype": dtype, "rounding": rounding}
            for target in ("dx", "dw"):
                derived, measured = [], []
                for p in drawn:
                    g = _gradient(p, target)
                    magnitude = np.abs(g).reshape(-1)
                    order = np.argsort(magnitude)
                    flat = int(order[len(order) // 2])
                    if magnitude[flat] == 0:
                        continue
                    index = tuple(int(i) for i in np.unravel_index(flat, g.shape))
                    layer = _Injected(dtype, rounding, target, index)
                    derived.append(_derived(p, layer, rounding))
                    measured.append(_measured(layer, p, steps))
                row[target] = (float(np.median(derived)), float(np.nanmedian(measured)))
            rows.append(row)
            print(f"  {dtype:8s} {rounding:10s} dx: derived {row['dx'][0]:.2g}, measured "
                  f"{row['dx'][1]:.2g}   dw: derived {row['dw'][0]:.2g}, measured "
                  f"{row['dw'][1]:.2g}", flush=True)
    return rows


# --------------------------------------------------------------------------- main


def _one_torch_thread() -> None:
    """Torch's intra-op threads spin-wait; on small problems and a shared machine one thread
    is several times faster (and the timings comparable)."""
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="a few dozen configurations in all and one floor problem (< 30 s)")
    parser.add_argument("--per-layer", type=int, default=400,
                        help="configurations per layer and dtype (default 400: >= 10,000 in all)")
    parser.add_argument("--chunk", type=int, default=100, help="configurations per fuzz run")
    parser.add_argument("--floor-problems", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    _one_torch_thread()
    per_layer, chunk, floor_problems, steps = args.per_layer, args.chunk, args.floor_problems, 20
    if args.quick:
        per_layer, chunk, floor_problems, steps = 2, 2, 1, 10
    start = time.perf_counter()
    print(f"false alarms ({per_layer} configurations per layer and dtype, runs of {chunk}):")
    rows = false_alarms(per_layer, chunk, args.seed)
    correct = [r for r in rows if "undeclared" not in r["layer"]]
    total = sum(r["examples"] for r in correct)
    alarms = sum(r["alarms"] for r in correct)
    print(f"total: {total} configurations of correct layers, {alarms} false alarms")
    undeclared = [r for r in rows if "undeclared" in r["layer"]]
    mismatches = sum(r["outcomes"].get("mismatch", 0) for r in undeclared)
    print(f"undeclared FFT layer: {mismatches} mismatch verdicts (must be 0)")
    print(f"detection floor (relative error of one gradient entry, median of "
          f"{floor_problems} problems of the default distribution):")
    detection_floor(floor_problems, steps, args.seed)
    print(f"({time.perf_counter() - start:.0f} s)")
    return 1 if alarms or mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
