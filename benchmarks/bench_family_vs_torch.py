"""The family against torch.autograd.gradcheck on the same numpy layers, one medium size each.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_family_vs_torch.py
    python benchmarks/bench_family_vs_torch.py --quick      # smaller sizes, one repetition

The layers are ``examples/family_layers.py``'s (numpy); torch checks each wrapped as a
``torch.autograd.Function`` (forward and backward call the numpy layer), gradcheck checks the
layer itself with ``check_layer``.  Same float64 inputs; max pooling's input is tie-free (a
permutation of a grid spaced 1/8, so torch's step 1e-6 stays on one piece too).  Printed: the
median of ``--repeat`` runs of torch slow mode (full Jacobian, one entry at a time), torch
``fast_mode=True``, gradcheck ``mode="full"`` and ``mode="fast"``, and the ratios torch slow /
gradcheck full and torch fast / gradcheck fast measured in the same run.  Timings are printed,
never asserted (see bench_vs_torch.py on OpenBLAS threads).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

# examples/ lives at the repository root, which a script run by path does not have on sys.path.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from examples.family_layers import avg_pool, conv_transpose, max_pool
from gradcheck import ConvTransposeProblem, ConvTransposeSpec, PoolProblem, PoolSpec, check_layer


def _problems(side: int = 16) -> dict[str, Any]:
    """One medium problem per family (``side`` 16: x (2,4,8,8) transposed, (2,4,16,16) pooled)."""
    rng = np.random.default_rng(0)
    spec = ConvTransposeSpec(2, stride=2, padding=1, output_padding=1)
    half = side // 2
    x, w, b = (rng.standard_normal(s) for s in ((2, 4, half, half), (4, 4, 3, 3), (4,)))
    out = spec.output_size((half, half), (3, 3))
    ct = ConvTransposeProblem(x, w, b, rng.standard_normal((2, 4, *out)), spec)
    pool = PoolSpec(2, kernel_size=3, stride=2, padding=1)
    size = 2 * 4 * side * side
    x_pool = (rng.permutation(size) - size // 2).reshape(2, 4, side, side) / 8.0
    dy = rng.standard_normal((2, 4, *pool.output_size((side, side))))
    return {"conv_transpose": (conv_transpose, ct), "max_pool": (max_pool, PoolProblem(
        x_pool, dy, pool)), "avg_pool": (avg_pool, PoolProblem(
            rng.standard_normal((2, 4, side, side)), dy, pool))}


def _torch_function(layer: Any, problem: Any, family: str) -> tuple[Callable, tuple]:
    spec = problem.spec

    class Wrapped(torch.autograd.Function):
        @staticmethod
        def forward(ctx, *tensors):  # type: ignore[override]
            ctx.save_for_backward(*tensors)
            arrays = [t.detach().numpy() for t in tensors]
            return torch.from_numpy(layer.forward(*arrays, spec))

        @staticmethod
        def backward(ctx, dy):  # type: ignore[override]
            arrays = [t.detach().numpy() for t in ctx.saved_tensors]
            grads = layer.backward(dy.numpy(), *arrays, spec)
            grads = grads if isinstance(grads, tuple) else (grads,)
            return tuple(torch.from_numpy(np.ascontiguousarray(g)) for g in grads)

    arrays = (problem.x, problem.w, problem.b) if family == "conv_transpose" else (problem.x,)
    inputs = tuple(torch.from_numpy(a.copy()).requires_grad_(True) for a in arrays)
    return Wrapped.apply, inputs


def _median(run: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: x (2,4,4,4) / (2,4,8,8), one repetition")
    args = parser.parse_args()
    repeat, side = (1, 8) if args.quick else (args.repeat, 16)
    print(f"{'family':<15} {'size':<34} {'torch slow':>10} {'torch fast':>10} "
          f"{'gc full':>8} {'gc fast':>8} {'slow/full':>9} {'fast/fast':>9}")
    for family, (layer, problem) in _problems(side).items():
        row = _row(family, layer, problem, repeat)
        sizes = f"x{problem.x.shape}" + (f" w{problem.w.shape}" if hasattr(problem, "w") else "")
        print(f"{family:<15} {sizes:<34} " + " ".join(f"{t:>9.3f}s" for t in row[:2]) + " "
              + " ".join(f"{t:>7.3f}s" for t in row[2:])
              + f" {row[0] / row[2]:>8.2f}x {row[1] / row[3]:>8.2f}x")


def _row(family: str, layer: Any, problem: Any, repeat: int) -> list[float]:
    fn, inputs = _torch_function(layer, problem, family)
    return [
        _median(lambda: torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-5), repeat),
        _median(lambda: torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-5,
                                                 fast_mode=True), repeat),
        _median(lambda: check_layer(layer, problem, mode="full"), repeat),
        _median(lambda: check_layer(layer, problem, mode="fast"), repeat),
    ]

if __name__ == "__main__":
    main()
