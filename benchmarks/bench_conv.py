"""Reference forward + backward against torch's, side by side in one run.

    python benchmarks/bench_conv.py [--repeat 20] [--quick]

x (8, 16, 32, 32), w (32, 16, 3, 3), stride 1, padding 1, float64. Prints the best time of
each and the ratio ours / torch (torch is an optional extra: without it only ours is timed).
``--quick``: the same measurement on x (2, 4, 8, 8), w (4, 4, 3, 3), best of 3, in a second or two.

Where the machine sets OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE (to work around old OpenBLAS
bugs), they slow a current numpy; to compare against torch on equal terms run
``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_conv.py``.
"""

from __future__ import annotations

import argparse
import sys
import timeit
from collections.abc import Callable
from pathlib import Path

import numpy as np

# Run from a checkout: measure this repository's gradcheck, whatever the working directory.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gradcheck.formulas.conv import conv_backward, conv_forward
from gradcheck.geometry.spec import ConvSpec

#: (x shape, w shape) of the full run and of ``--quick``.
FULL = ((8, 16, 32, 32), (32, 16, 3, 3))
QUICK = ((2, 4, 8, 8), (4, 4, 3, 3))


def _shape(shape: tuple[int, ...]) -> str:
    return "(" + ",".join(map(str, shape)) + ")"


def best_time(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm up
    return min(timeit.repeat(fn, number=1, repeat=repeat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=None, help="best of (default 20; 3 quick)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, few repetitions")
    args = parser.parse_args()
    x_shape, w_shape = QUICK if args.quick else FULL
    repeat = args.repeat if args.repeat is not None else (3 if args.quick else 20)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0])
    spec = ConvSpec.create(2, padding=1)
    dy = rng.standard_normal(conv_forward(x, w, b, spec).shape)

    def ours() -> None:
        conv_forward(x, w, b, spec)
        conv_backward(dy, x, w, b, spec)

    t_ours = best_time(ours, repeat)
    print(f"x {_shape(x_shape)}, w {_shape(w_shape)}, stride 1, padding 1, float64, "
          f"forward + backward, best of {repeat}")
    print(f"gradcheck reference  {1e3 * t_ours:8.2f} ms")
    try:
        import torch
    except ImportError:
        print("torch not installed: no baseline (pip install 'gradcheck[torch]')")
        return
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    bt = torch.tensor(b, requires_grad=True)
    dyt = torch.tensor(dy)

    def theirs() -> None:
        y = torch.nn.functional.conv2d(xt, wt, bt, padding=1)
        torch.autograd.grad(y, (xt, wt, bt), dyt)

    t_torch = best_time(theirs, repeat)
    threads = torch.get_num_threads()
    print(f"torch {torch.__version__:<14} {1e3 * t_torch:8.2f} ms  (threads: {threads})")
    print(f"ratio gradcheck / torch: {t_ours / t_torch:.3g}x")


if __name__ == "__main__":
    main()
