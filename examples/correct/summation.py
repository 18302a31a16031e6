"""Correct convolution layers that sum their terms in a chosen order: recursive, pairwise, blocked.

Every entry of y, dx, dw and db is a sum of products.  These layers first form all the
products of each entry side by side (a "terms" axis) and then add them in one of three
orders, in the inputs' own precision (float32 inputs: float32 accumulation)::

    recursive  s = t₀; s = s + t₁; s = s + t₂; …           (a Python loop: error <= γ_{n−1}·Σ|t|)
    pairwise   numpy's np.add.reduce on a contiguous axis   (pairwise in blocks of 8: O(log n))
    blocked    16 running lanes, then the lanes in order    (what SIMD / BLAS kernels do)

Each is within ``γ_n·Σ|terms|`` of the exact sum whatever the order (Higham §3.1), so these
layers are entrywise: ``rounding="entrywise"`` (the default).  The terms, per formula::

    y[n, f, o]      : x_pad[n, c, s·o + r·t] · w[f, c', t]          over (c', t)
    dx_pad[n, c, i] : δ_full[n, f, i + r·t] · flip(w)[f, c', t]      over (f ∈ group, t)
    dw[f, c', t]    : δ↑s[n, f, i] · x_pad[n, c, i + r·t]           over (n, i)
    db[f]           : δ[n, f, o]                                    over (n, o)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from examples.correct.im2col import im2col, tap
from examples.naive_conv import by_input_channel, flip, pad, spatial, zero_insert

if TYPE_CHECKING:
    from gradcheck.geometry.spec import ConvSpec

Reduce = Callable[[np.ndarray], np.ndarray]


def recursive(terms: np.ndarray) -> np.ndarray:
    """``((t₀ + t₁) + t₂) + …`` along the last axis, one addition at a time."""
    total = terms[..., 0].copy()
    for j in range(1, terms.shape[-1]):
        total += terms[..., j]
    return total


def pairwise(terms: np.ndarray) -> np.ndarray:
    """numpy's pairwise summation (contiguous last axis)."""
    return np.add.reduce(np.ascontiguousarray(terms), axis=-1)


def blocked(terms: np.ndarray, lanes: int = 16) -> np.ndarray:
    """16 running lanes (lane j sums terms j, j + 16, …), then the lanes recursively."""
    count = terms.shape[-1]
    padded = np.concatenate([terms, np.zeros((*terms.shape[:-1], (-count) % lanes),
                                             dtype=terms.dtype)], axis=-1)
    blocks = padded.reshape(*terms.shape[:-1], -1, lanes)
    running = blocks[..., 0, :].copy()
    for k in range(1, blocks.shape[-2]):
        running += blocks[..., k, :]
    return recursive(running)


ORDERS: dict[str, Reduce] = {"recursive": recursive, "pairwise": pairwise, "blocked": blocked}


def correlate_terms(a: np.ndarray, kernel: np.ndarray, spec_groups: int,
                    stride: tuple[int, ...], dilation: tuple[int, ...],
                    reduce: Reduce, spec: ConvSpec) -> np.ndarray:
    """Grouped correlation of a padded (N, C, L…) with kernel (F, C/G, K…), summed by ``reduce``."""
    from dataclasses import replace

    local = replace(spec, stride=stride, dilation=dilation, groups=spec_groups)
    cols = im2col(a, kernel.shape[2:], local)                      # (N, G, P, C/G·∏K)
    g = spec_groups
    w_mat = kernel.reshape(g, kernel.shape[0] // g, -1)            # (G, F/G, C/G·∏K)
    terms = cols[:, :, None] * w_mat[None, :, :, None]             # (N, G, F/G, P, C/G·∏K)
    out = tuple((length - r * (k - 1) - 1) // s + 1 for length, k, r, s in zip(
        a.shape[2:], kernel.shape[2:], dilation, stride, strict=True))
    return reduce(terms).reshape(len(a), kernel.shape[0], *out)


class OrderedSumConv:
    """Convolution whose every sum is taken in one fixed order (module notes).

    Parameters
    ----------
    order : {"recursive", "pairwise", "blocked"}
    """

    supports: ClassVar[dict[str, object]] = {"dtypes": ("float32", "float64")}

    def __init__(self, order: str) -> None:
        self.order, self.reduce = order, ORDERS[order]

    def __repr__(self) -> str:
        return f"OrderedSumConv({self.order!r})"

    def forward(self, x: np.ndarray, w: np.ndarray, b: np.ndarray | None,
                spec: ConvSpec) -> np.ndarray:
        """``y[n, f, o] = Σ_{c', t} x_pad[n, c, s·o + r·t]·w[f, c', t]`` (+ b)."""
        y = correlate_terms(pad(x, spec.padding), w, spec.groups, spec.stride, spec.dilation,
                            self.reduce, spec)
        if b is not None:
            y = y + b.reshape((1, -1) + (1,) * spec.dims)
        return y

    def backward(self, dy: np.ndarray, x: np.ndarray, w: np.ndarray, b: np.ndarray | None,
                 spec: ConvSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """dx, dw, db, each sum in the layer's order (module notes)."""
        d, groups = spec.dims, spec.groups
        ones = (1,) * d
        extent = tuple(r * (k - 1) + 1 for r, k in zip(spec.dilation, w.shape[2:], strict=True))
        delta_up = zero_insert(dy, spec.stride)
        delta_full = pad(delta_up, tuple((e - 1, e - 1) for e in extent))
        w_flipped = flip(by_input_channel(w, groups))
        reached = correlate_terms(delta_full, w_flipped, groups, ones, spec.dilation,
                                  self.reduce, spec)
        x_pad = pad(x, spec.padding)
        dx_pad = np.zeros(x_pad.shape, dtype=reached.dtype)
        dx_pad[spatial(*(slice(0, m) for m in reached.shape[2:]))] = reached
        crop = tuple(slice(lo, lo + s) for (lo, _), s in zip(spec.padding, x.shape[2:],
                                                               strict=True))
        dx = np.ascontiguousarray(dx_pad[spatial(*crop)])
        n, c_g, f = x.shape[0], w.shape[1], w.shape[0]
        length = delta_up.shape[2:]
        delta_g = delta_up.reshape(n, groups, f // groups, 1, -1)      # (N, G, F/G, 1, L)
        dw = np.zeros(w.shape, dtype=np.result_type(dy, x))
        for t in np.ndindex(*w.shape[2:]):
            lag = tuple(r * i for r, i in zip(spec.dilation, t, strict=True))
            x_lag = x_pad[spatial(*(slice(a, a + m) for a, m in zip(lag, length, strict=True)))]
            x_g = x_lag.reshape(n, groups, 1, c_g, -1)                 # (N, G, 1, C/G, L)
            terms = np.moveaxis(delta_g * x_g, 0, -2)                  # (G, F/G, C/G, N, L)
            dw[tap(t)] = self.reduce(terms.reshape(*terms.shape[:3], -1)).reshape(f, c_g)
        db = None
        if b is not None:
            db = self.reduce(np.moveaxis(dy, 1, 0).reshape(f, -1))
        return dx, dw, db


sum_recursive = OrderedSumConv("recursive")
sum_pairwise = OrderedSumConv("pairwise")
sum_blocked = OrderedSumConv("blocked")
