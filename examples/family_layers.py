"""Correct hand-written layers of the convolution's family: transposed convolution, pooling.

Written the way a person writes them by hand — a loop over the kernel taps, each tap a strided
slice of the whole batch — and independently of :mod:`gradcheck.formulas` (which zero-inserts
and correlates).  Each step is a method, so :mod:`examples.family_mistakes` can override one
with one plausible wrong line.

Notation: per spatial dim stride s, dilation r, padding (lo, hi), kernel K, input S, output O;
``E = r·(K − 1) + 1`` the window's extent, t a kernel tap.

* **Transposed convolution** scatters: ``full[n, j, s·i + r·t] += Σ_c x[n, c, i]·w[c, j', t]``
  and ``y = full[lo : lo + O] + b`` (zeros past the end of ``full``: output padding).
  Backward gathers the same slices: ``dx[n, c, i] = Σ_{j,t} w[c, j', t]·δ_full[n, j, s·i + r·t]``,
  ``dw[c, j', t] = Σ_{n,i} x[n, c, i]·δ_full[n, j, s·i + r·t]``, ``db = Σ δ``.
* **Max pooling** reads tap t of every window, ``x_pad[s·o + r·t]`` (padding −∞), keeps the
  first maximum and routes δ back to it with ``np.add.at`` (windows may overlap).
* **Average pooling** sums the taps (padding 0) and divides by ``|W(o)|``, the taps inside the
  padded input (count_include_pad) or inside the input; backward spreads ``δ/|W|`` over the taps.
"""

from __future__ import annotations

from itertools import product
from typing import Any, ClassVar

import numpy as np

Spec = Any  # gradcheck.ConvTransposeSpec or gradcheck.PoolSpec


def tap_slices(starts: tuple[int, ...], steps: tuple[int, ...],
               counts: tuple[int, ...]) -> tuple[slice, ...]:
    """``(:, :, start + step·i for i < count per spatial dim)`` as basic slices."""
    return (slice(None), slice(None), *(
        slice(b, b + s * (c - 1) + 1, s) for b, s, c in zip(starts, steps, counts)))


def taps(kernel: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Every kernel tap t, row-major (torch's order for the first maximum)."""
    return list(product(*(range(k) for k in kernel)))


# --------------------------------------------------------------------------- transposed conv


class TapConvTranspose:
    """Transposed convolution, one strided slice per kernel tap (module notes)."""

    supports: ClassVar[dict[str, object]] = {"family": "conv_transpose",
                                             "dtypes": ("float64", "float32")}

    # full[s·i + r·t] for t, the length of `full` per dim and its crop
    def full_size(self, x: np.ndarray, w: np.ndarray, spec: Spec) -> tuple[int, ...]:
        out = spec.output_size(x.shape[2:], w.shape[2:])
        return tuple(max((s_ - 1) * s + r * (k - 1) + 1, lo + o) for s_, k, s, r, (lo, _), o
                     in zip(x.shape[2:], w.shape[2:], spec.stride, spec.dilation,
                            spec.padding, out))

    def tap_start(self, t: tuple[int, ...], spec: Spec) -> tuple[int, ...]:
        return tuple(r * ti for r, ti in zip(spec.dilation, t))

    def crop_start(self, spec: Spec) -> tuple[int, ...]:
        return tuple(lo for lo, _ in spec.padding)

    def grouped(self, a: np.ndarray, groups: int) -> np.ndarray:
        """(N, C, …) -> (N, G, C/G, …)."""
        return a.reshape(a.shape[0], groups, a.shape[1] // groups, *a.shape[2:])

    def weights(self, w: np.ndarray, groups: int) -> np.ndarray:
        """(C_in, C_out/G, K…) -> (G, C_in/G, C_out/G, K…)."""
        return w.reshape(groups, w.shape[0] // groups, *w.shape[1:])

    def forward(self, x, w, b, spec):
        g = spec.groups
        out = spec.output_size(x.shape[2:], w.shape[2:])
        full = np.zeros((x.shape[0], g, w.shape[1], *self.full_size(x, w, spec)),
                        dtype=np.result_type(x, w))
        xg, wg = self.grouped(x, g), self.weights(w, g)
        for t in taps(w.shape[2:]):
            where = tap_slices(self.tap_start(t, spec), spec.stride, x.shape[2:])
            full[(slice(None), *where)] += np.einsum(
                "ngc...,gcj->ngj...", xg, wg[(..., *t)])
        full = full.reshape(x.shape[0], -1, *full.shape[3:])
        y = full[tap_slices(self.crop_start(spec), (1,) * spec.dims, out)]
        y = np.ascontiguousarray(y)
        if b is not None:
            y = y + b.reshape((1, -1) + (1,) * spec.dims)
        return y

    def delta_full(self, dy, x, w, spec):
        """δ placed where the forward read it: ``δ_full[lo + o] = δ[o]``, zeros elsewhere."""
        size = self.full_size(x, w, spec)
        delta = np.zeros((*dy.shape[:2], *size), dtype=dy.dtype)
        delta[tap_slices(self.crop_start(spec), (1,) * spec.dims, dy.shape[2:])] = dy
        return delta

    # hooks of the backward, each the correct step (examples.family_mistakes overrides one)
    def gather_start(self, t: tuple[int, ...], spec: Spec) -> tuple[int, ...]:
        """Where tap t of δ_full is read for input position 0: ``r·t``."""
        return self.tap_start(t, spec)

    def gather_stride(self, spec: Spec) -> tuple[int, ...]:
        """The step between input positions in δ_full: ``s``."""
        return tuple(spec.stride)

    def dx_weight(self, wg: np.ndarray, t: tuple[int, ...]) -> np.ndarray:
        """The kernel tap that multiplies δ_full[s·i + r·t] in dx: tap t itself (no flip)."""
        return wg[(..., *t)]

    def dx_delta(self, delta: np.ndarray) -> np.ndarray:
        """δ per group, (N, G, C_out/G, …), as dx's group g reads it: group g's own."""
        return delta

    def dw_layout(self, dw: np.ndarray, w: np.ndarray) -> np.ndarray:
        """(G, C_in/G, C_out/G, K…) -> w's layout (C_in, C_out/G, K…)."""
        return dw.reshape(w.shape)

    def backward(self, dy, x, w, b, spec):
        g = spec.groups
        delta = self.grouped(self.delta_full(dy, x, w, spec), g)
        xg, wg = self.grouped(x, g), self.weights(w, g)
        dx = np.zeros(xg.shape, dtype=np.result_type(dy, x, w))
        dw = np.zeros(wg.shape, dtype=dx.dtype)
        for t in taps(w.shape[2:]):
            where = tap_slices(self.gather_start(t, spec), self.gather_stride(spec),
                               x.shape[2:])
            d_t = delta[(slice(None), *where)]   # (N, G, J, S…)
            dx += np.einsum("ngj...,gcj->ngc...", self.dx_delta(delta)[(slice(None), *where)],
                            self.dx_weight(wg, t))
            dw[(..., *t)] = np.einsum("ngcp,ngjp->gcj", xg.reshape(*xg.shape[:3], -1),
                                      d_t.reshape(*d_t.shape[:3], -1))
        db = None if b is None else dy.sum(axis=(0, *range(2, dy.ndim)))
        return dx.reshape(x.shape), self.dw_layout(dw, w), db


# --------------------------------------------------------------------------- pooling


class _Pool:
    """What max and average pooling share: the padded input and the taps of every window."""

    fill: ClassVar[float] = 0.0

    def padded(self, x: np.ndarray, spec: Spec) -> np.ndarray:
        """x padded by lo on the left and, on the right, as far as the last window reaches."""
        out = spec.output_size(x.shape[2:])
        pads = [(lo, max(0, (o - 1) * s + r * (k - 1) + 1 - lo - size))
                for (lo, _), o, s, r, k, size in zip(spec.padding, out, spec.stride,
                                                     spec.dilation, spec.kernel_size,
                                                     x.shape[2:])]
        return np.pad(x, [(0, 0), (0, 0), *pads], constant_values=self.fill)

    def window_taps(self, x: np.ndarray, spec: Spec) -> np.ndarray:
        """(T, N, C, O…): tap t of every window, ``x_pad[s·o + r·t]``."""
        xp, out = self.padded(x, spec), spec.output_size(x.shape[2:])
        return np.stack([xp[tap_slices(tuple(r * ti for r, ti in zip(spec.dilation, t)),
                                       spec.stride, out)]
                         for t in taps(spec.kernel_size)])


class TapMaxPool(_Pool):
    """Max pooling: the first maximum over the taps; δ routed back with ``np.add.at``."""

    supports: ClassVar[dict[str, object]] = {"family": "max_pool",
                                             "dtypes": ("float64", "float32")}
    fill = -np.inf

    def forward(self, x, spec):
        return self.window_taps(x, spec).max(axis=0)

    def winners(self, x: np.ndarray, spec: Spec) -> np.ndarray:
        """(N, C, O…): the index of each window's first maximum among its taps."""
        return self.window_taps(x, spec).argmax(axis=0)

    def positions(self, x: np.ndarray, spec: Spec) -> list[np.ndarray]:
        """Per spatial dim, the input index ``s·o − lo + r·t*`` of each window's maximum."""
        tap = np.unravel_index(self.winners(x, spec), spec.kernel_size)
        out = spec.output_size(x.shape[2:])
        index = []
        for d, (s, r, (lo, _)) in enumerate(zip(spec.stride, spec.dilation, spec.padding)):
            shape = [1] * (2 + spec.dims)
            shape[2 + d] = out[d]
            index.append(s * np.arange(out[d]).reshape(shape) - lo + r * tap[d])
        return index

    def route(self, dx: np.ndarray, index: tuple, dy: np.ndarray) -> None:
        np.add.at(dx, index, dy)

    def backward(self, dy, x, spec):
        dx = np.zeros(x.shape, dtype=np.result_type(dy, x))
        n, c = x.shape[:2]
        batch = np.arange(n).reshape((n,) + (1,) * (dy.ndim - 1))
        channel = np.arange(c).reshape((1, c) + (1,) * (dy.ndim - 2))
        index = np.broadcast_arrays(batch, channel, *self.positions(x, spec))
        inside = np.ones(dy.shape, dtype=bool)
        for axis, p in enumerate(index[2:]):
            inside &= (p >= 0) & (p < x.shape[2 + axis])
        self.route(dx, tuple(a[inside] for a in index), dy[inside])
        return dx


class TapAvgPool(_Pool):
    """Average pooling: tap sums divided by ``|W(o)|``; backward spreads ``δ/|W|``."""

    supports: ClassVar[dict[str, object]] = {"family": "avg_pool",
                                             "dtypes": ("float64", "float32")}

    def counts(self, size: int, out: int, k: int, s: int, r: int, lo: int, hi: int,
               include_pad: bool) -> np.ndarray:
        """Per window of one dim, its taps inside ``[−lo, S + hi)`` or ``[0, S)``."""
        tap = s * np.arange(out)[:, None] - lo + r * np.arange(k)
        inside = (tap < size + hi) if include_pad else (tap >= 0) & (tap < size)
        return inside.sum(axis=1)

    def divisor(self, x: np.ndarray, spec: Spec) -> np.ndarray:
        """``|W(o)|`` (O…), the product of the per-dim counts."""
        out = spec.output_size(x.shape[2:])
        total = np.ones((), dtype=np.int64)
        for size, o, k, s, r, (lo, hi) in zip(x.shape[2:], out, spec.kernel_size, spec.stride,
                                              spec.dilation, spec.padding):
            count = self.counts(size, o, k, s, r, lo, hi, spec.count_include_pad)
            total = np.multiply.outer(total, count)
        return total

    def forward(self, x, spec):
        return self.window_taps(x, spec).sum(axis=0) / self.divisor(x, spec).astype(x.dtype)

    def backward(self, dy, x, spec):
        xp = self.padded(x, spec)
        dx_pad = np.zeros(xp.shape, dtype=np.result_type(dy, x))
        share = dy / self.divisor(x, spec).astype(dy.dtype)
        for t in taps(spec.kernel_size):
            start = tuple(r * ti for r, ti in zip(spec.dilation, t))
            dx_pad[tap_slices(start, spec.stride, dy.shape[2:])] += share
        crop = tuple(slice(lo, lo + size) for (lo, _), size in zip(spec.padding, x.shape[2:]))
        return np.ascontiguousarray(dx_pad[(slice(None), slice(None), *crop)])


conv_transpose = TapConvTranspose()
max_pool = TapMaxPool()
avg_pool = TapAvgPool()
