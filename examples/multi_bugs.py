"""Layers with several bugs at once, as hand-written layers in the wild have them.

One ``gradcheck fuzz`` run must report every one of them, each shrunk on its own, not just the
first: ``MULTI_BUGS`` maps a name to the layer and the distinct failures a run must find (a
layer-error reason, or the arrays a mismatch is about).  The three are modelled on public numpy
layers: a fast path for 1×k kernels plus a mean for a sum; an early return plus an overwrite;
a crash plus a stride bug plus a bias added per kernel tap.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from examples.mistakes import StrideIgnoredDx
from examples.naive_conv import NaiveConv, pad, spatial
from gradcheck import ConvSpec


class OneByKFastPathAndMeanBias(NaiveConv):
    """Two bugs: the 1×k fast path of dx forgets the stride, and db is a mean, not a sum.

    - dx: when some kernel axis has size 1 the author took a "fast path" that uses δ densely
      (without the zeros of δ↑s) — visible for 1×k kernels with a stride > 1;
    - db: averaged over batch and positions. Right: ``db[f] = Σ_{n, o} δ[n, f, o]``.
    """

    mistakes = ("stride-ignored-dx", "bias-not-summed")

    def grad_input(self, dy: np.ndarray, x: np.ndarray, w: np.ndarray,
                   spec: ConvSpec) -> np.ndarray:
        if 1 in w.shape[2:]:
            return StrideIgnoredDx.grad_input(self, dy, x, w, spec)  # MISTAKE: no δ↑s
        return super().grad_input(dy, x, w, spec)

    def grad_bias(self, dy: np.ndarray, b: np.ndarray) -> np.ndarray:
        return dy.mean(axis=(0, *range(2, dy.ndim)))  # MISTAKE: mean instead of sum


class EarlyReturnAndOverwrite(NaiveConv):
    """Two bugs: an empty dx without padding, and overwriting where windows overlap.

    - with no padding at all the author's "nothing to crop" branch returns ``dx[..., :0]``;
    - the scatter loop writes each tap's contribution with ``=`` instead of ``+=``, so where
      windows overlap (kernel extent larger than the stride) only the last tap survives.
    """

    supports: ClassVar[dict[str, object]] = {"groups": False,
                                             "dtypes": ("float32", "float64")}
    mistakes = ("wrong-shape", "overwrite-not-accumulate")

    def grad_input(self, dy: np.ndarray, x: np.ndarray, w: np.ndarray,
                   spec: ConvSpec) -> np.ndarray:
        x_pad = pad(x, spec.padding)
        dx_pad = np.zeros(x_pad.shape, dtype=np.result_type(dy, w))
        out = dy.shape[2:]
        for t in np.ndindex(*w.shape[2:]):
            window = tuple(slice(r * i, r * i + s * (o - 1) + 1, s) for r, i, s, o in
                           zip(spec.dilation, t, spec.stride, out, strict=True))
            tap = w[(slice(None), slice(None), *t)]
            dx_pad[spatial(*window)] = np.einsum("nf...,fc->nc...", dy, tap)  # MISTAKE: =
        if all(lo == hi == 0 for lo, hi in spec.padding):
            return dx_pad[..., :0]  # MISTAKE: the "no padding" branch returns nothing
        crop = tuple(slice(lo, lo + n) for (lo, _), n in zip(spec.padding, x.shape[2:],
                                                             strict=True))
        return np.ascontiguousarray(dx_pad[spatial(*crop)])


class CrashStrideAndBiasPerTap(StrideIgnoredDx):
    """Three bugs: a crash without padding, the stride ignored in dx, the bias added per tap.

    - the forward computes its padding offsets with ``np.max`` over the nonzero pads and
      raises on a configuration without padding;
    - dx uses δ densely (the stride is ignored, as in ``StrideIgnoredDx``);
    - the forward adds the bias inside its loop over kernel taps: ``y + ∏K·b``.
    """

    mistakes = ("raised", "bias-per-tap", "stride-ignored-dx")

    def forward(self, x: np.ndarray, w: np.ndarray, b: np.ndarray | None,
                spec: ConvSpec) -> np.ndarray:
        nonzero = [p for pair in spec.padding for p in pair if p]
        _ = np.max(nonzero)  # MISTAKE: raises ValueError when there is no padding at all
        y = super().forward(x, w, None, spec)
        if b is not None:
            taps = int(np.prod(w.shape[2:]))
            y = y + taps * b.reshape((1, -1) + (1,) * spec.dims)  # MISTAKE: once per tap
        return y


#: name -> (layer, the distinct failures one run must report: layer-error reasons and the
#: arrays of mismatches, most fundamental first).
MULTI_BUGS: dict[str, tuple[Any, tuple[str, ...]]] = {
    "one-by-k-fast-path-and-mean-bias": (OneByKFastPathAndMeanBias(), ("dx", "db")),
    "early-return-and-overwrite": (EarlyReturnAndOverwrite(), ("wrong-shape", "dx")),
    "crash-stride-and-bias-per-tap": (CrashStrideAndBiasPerTap(), ("raised", "y", "dx")),
}

one_by_k_fast_path_and_mean_bias = MULTI_BUGS["one-by-k-fast-path-and-mean-bias"][0]
early_return_and_overwrite = MULTI_BUGS["early-return-and-overwrite"][0]
crash_stride_and_bias_per_tap = MULTI_BUGS["crash-stride-and-bias-per-tap"][0]
