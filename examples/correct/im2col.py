"""A correct convolution layer by im2col + BLAS matrix products (float32: sgemm).

The way most frameworks lower a convolution to a GEMM.  ``cols`` gathers, for every output
position o, the C/G·∏K input values its window reads (one strided view, no loop)::

    cols[n, g, o, (c', t)] = x_pad[n, g·C/G + c', s·o + r·t]
    y[n, g·F/G + j, o]     = Σ_{(c', t)} cols[n, g, o, (c', t)] · w[g·F/G + j, c', t]   (+ b)

so y is one batched matrix product per group (np.matmul: BLAS gemm, sgemm for float32), and
the backward is two more::

    dw_g    = δ_gᵀ · cols_g            (F/G × N·∏O) · (N·∏O × C/G·∏K): one gemm per group
    dcols   = δ_g · w_g                 then col2im: each tap t adds its slice back into
    dx_pad[n, c, s·o + r·t] += dcols[n, g, o, (c', t)]                  (one add per tap)

BLAS reorders and blocks its sums freely: direct sums, so ``rounding="entrywise"`` (the
default) holds.  Any dims, stride, padding, dilation and groups.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from examples.naive_conv import pad, spatial

if TYPE_CHECKING:
    from gradcheck.geometry.spec import ConvSpec


def im2col(x_pad: np.ndarray, taps: tuple[int, ...], spec: ConvSpec) -> np.ndarray:
    """``cols`` (N, G, ∏O, C/G·∏K) of the padded input (module notes)."""
    d = spec.dims
    extents = tuple(r * (k - 1) + 1 for r, k in zip(spec.dilation, taps, strict=True))
    windows = sliding_window_view(x_pad, extents, axis=tuple(range(2, 2 + d)))
    every = spatial(*(slice(None, None, s) for s in spec.stride),
                    *(slice(None, None, r) for r in spec.dilation))
    windows = windows[every]  # (N, C, O…, K…)
    n, c = x_pad.shape[:2]
    outputs = int(np.prod(windows.shape[2:2 + d]))
    grouped = windows.reshape(n, spec.groups, c // spec.groups, outputs, -1)
    return np.ascontiguousarray(grouped.transpose(0, 1, 3, 2, 4)).reshape(
        n, spec.groups, outputs, -1)


class Im2colConv:
    """Convolution as matrix products: im2col, then np.matmul (BLAS)."""

    supports: ClassVar[dict[str, object]] = {"dtypes": ("float32", "float64")}

    def forward(self, x: np.ndarray, w: np.ndarray, b: np.ndarray | None,
                spec: ConvSpec) -> np.ndarray:
        """``y_g = cols_g · w_gᵀ`` per group (module notes)."""
        groups, f = spec.groups, w.shape[0]
        cols = im2col(pad(x, spec.padding), w.shape[2:], spec)  # (N, G, P, C/G·∏K)
        w_mat = w.reshape(groups, f // groups, -1)               # (G, F/G, C/G·∏K)
        y = np.matmul(cols, np.swapaxes(w_mat, 1, 2))            # (N, G, P, F/G)
        out = _output_sizes(x, w, spec)
        y = np.swapaxes(y, 2, 3).reshape(len(x), f, *out)
        if b is not None:
            y = y + b.reshape((1, -1) + (1,) * spec.dims)
        return y

    def backward(self, dy: np.ndarray, x: np.ndarray, w: np.ndarray, b: np.ndarray | None,
                 spec: ConvSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """dw by one gemm per group, dx by a gemm and col2im (module notes)."""
        groups, f = spec.groups, w.shape[0]
        n, c = x.shape[:2]
        x_pad = pad(x, spec.padding)
        cols = im2col(x_pad, w.shape[2:], spec)                        # (N, G, P, C/G·∏K)
        delta = dy.reshape(n, groups, f // groups, -1)                 # (N, G, F/G, P)
        delta_t = np.ascontiguousarray(delta.transpose(1, 2, 0, 3)).reshape(groups, f // groups,
                                                                           -1)
        cols_t = np.ascontiguousarray(cols.transpose(1, 0, 2, 3)).reshape(groups, -1,
                                                                         cols.shape[-1])
        dw = np.matmul(delta_t, cols_t).reshape(w.shape)              # (G, F/G, C/G·∏K)
        w_mat = w.reshape(groups, f // groups, -1)
        dcols = np.matmul(np.swapaxes(delta, 2, 3), w_mat)            # (N, G, P, C/G·∏K)
        out = dy.shape[2:]
        taps = w.shape[2:]
        dcols = dcols.reshape(n, groups, *out, c // groups, *taps)
        dcols = np.moveaxis(dcols, 2 + spec.dims, 2)                   # (N, G, C/G, O…, K…)
        dcols = dcols.reshape(n, c, *out, *taps)
        dx_pad = np.zeros(x_pad.shape, dtype=dcols.dtype)
        for t in np.ndindex(*taps):
            target = spatial(*(slice(r * i, r * i + s * (o - 1) + 1, s) for i, r, s, o in zip(
                t, spec.dilation, spec.stride, out, strict=True)))
            dx_pad[target] += dcols[tap(t)]
        crop = tuple(slice(lo, lo + s) for (lo, _), s in zip(spec.padding, x.shape[2:],
                                                               strict=True))
        db = None if b is None else dy.sum(axis=(0, *range(2, dy.ndim)))
        return np.ascontiguousarray(dx_pad[spatial(*crop)]), dw, db


def tap(t: tuple[int, ...]) -> tuple:
    """Index of kernel tap t on the last axes: ``a[..., t₁, …, t_d]``."""
    return (Ellipsis, *t)


def _output_sizes(x: np.ndarray, w: np.ndarray, spec: ConvSpec) -> tuple[int, ...]:
    return tuple(
        (s + lo + hi - r * (k - 1) - 1) // st + 1
        for s, (lo, hi), r, k, st in zip(x.shape[2:], spec.padding, spec.dilation, w.shape[2:],
                                          spec.stride, strict=True))


im2col_blas = Im2colConv()
