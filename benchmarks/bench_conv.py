"""Reference forward + backward against torch's, side by side in one run.

    python benchmarks/bench_conv.py [--repeat 20]

x (8, 16, 32, 32), w (32, 16, 3, 3), stride 1, padding 1, float64. Prints the best time of
each and the ratio ours / torch (torch is an optional extra: without it only ours is timed).

Where the machine sets OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE (to work around old OpenBLAS
bugs), they slow a current numpy; to compare against torch on equal terms run
``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_conv.py``.
"""

from __future__ import annotations

import argparse
import timeit

import numpy as np

from gradcheck.formulas.conv import conv_backward, conv_forward
from gradcheck.geometry.spec import ConvSpec


def best_time(fn, repeat: int) -> float:
    fn()  # warm up
    return min(timeit.repeat(fn, number=1, repeat=repeat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 16, 32, 32))
    w = rng.standard_normal((32, 16, 3, 3))
    b = rng.standard_normal(32)
    spec = ConvSpec.create(2, padding=1)
    dy = rng.standard_normal(conv_forward(x, w, b, spec).shape)

    def ours() -> None:
        conv_forward(x, w, b, spec)
        conv_backward(dy, x, w, b, spec)

    t_ours = best_time(ours, args.repeat)
    print("x (8,16,32,32), w (32,16,3,3), stride 1, padding 1, float64, forward + backward")
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

    t_torch = best_time(theirs, args.repeat)
    threads = torch.get_num_threads()
    print(f"torch {torch.__version__:<14} {1e3 * t_torch:8.2f} ms  (threads: {threads})")
    print(f"ratio gradcheck / torch: {t_ours / t_torch:.2f}x")


if __name__ == "__main__":
    main()
