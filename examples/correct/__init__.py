"""Correct convolution layers of every common strategy, each declaring its support honestly.

``CORRECT`` maps a strategy name to its layer; :func:`correct_layers` adds torch's when torch is
installed.  Every layer follows the protocol of :mod:`examples.naive_conv` and declares its
``supports`` (dims, stride, dilation, groups, padding, dtypes, rounding): the FFT and Winograd
layers ``rounding="normwise"``, the direct sums the default ``"entrywise"``.

=========================== ============================ ===== ========== ===========
name                        strategy                     dims  geometry   rounding
=========================== ============================ ===== ========== ===========
direct-loops                shift-and-add (naive_conv)   1–3   all        entrywise
im2col-blas                 im2col + np.matmul (sgemm)   1–3   all        entrywise
sum-recursive               one term at a time           1–3   all        entrywise
sum-pairwise                numpy pairwise               1–3   all        entrywise
sum-blocked                 16 lanes, then in order      1–3   all        entrywise
fft-scipy-signal            scipy.signal.fftconvolve     1–3   all        normwise
fft-scipy-fft               scipy.fft rfftn, fast length 1–3   all        normwise
fft-numpy                   numpy.fft rfftn, power of 2  1–3   all        normwise
winograd-f2x2-3x3           Winograd F(2×2, 3×3)         2     stride 1,  normwise
                                                               K <= 3
torch-conv{1,2,3}d          torch CPU                    1–3   all        entrywise
torch-conv{2,3}d-channels-… torch CPU, channels_last     2, 3  all        entrywise
=========================== ============================ ===== ========== ===========

All take float32 and float64 (direct-loops complex128 too).
"""

from __future__ import annotations

from typing import Any

from examples.correct.fft import fft_numpy, fft_scipy_fft, fft_scipy_signal
from examples.correct.im2col import im2col_blas
from examples.correct.summation import sum_blocked, sum_pairwise, sum_recursive
from examples.correct.torch_layers import torch_layers
from examples.correct.winograd import winograd_f2x2_3x3
from examples.naive_conv import layer as direct_loops

CORRECT: dict[str, Any] = {
    "direct-loops": direct_loops,
    "im2col-blas": im2col_blas,
    "sum-recursive": sum_recursive,
    "sum-pairwise": sum_pairwise,
    "sum-blocked": sum_blocked,
    "fft-scipy-signal": fft_scipy_signal,
    "fft-scipy-fft": fft_scipy_fft,
    "fft-numpy": fft_numpy,
    "winograd-f2x2-3x3": winograd_f2x2_3x3,
}


def correct_layers(include_torch: bool = True) -> dict[str, Any]:
    """Every correct layer: :data:`CORRECT`, plus torch's when torch is installed."""
    layers = dict(CORRECT)
    if include_torch:
        layers.update(torch_layers())
    return layers
