"""A correct 2-d convolution layer by Winograd's minimal filtering F(2×2, 3×3) (Lavin & Gray).

Each 2×2 tile of outputs comes from a 4×4 tile of the (padded) input ``d`` and the 3×3 kernel
``g`` of every input channel::

    Y = Aᵀ [ Σ_c (G g_c Gᵀ) ⊙ (Bᵀ d_c B) ] A

    Bᵀ = [[1, 0, −1, 0], [0, 1, 1, 0], [0, −1, 1, 0], [0, 1, 0, −1]]
    G  = [[1, 0, 0], [½, ½, ½], [½, −½, ½], [0, 0, 1]]
    Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]]

16 multiplications per tile and channel instead of 36, at the price of normwise-only
stability: the transforms grow the data by ``‖Aᵀ‖_∞·‖G‖_∞·‖Bᵀ‖_∞ = 9`` per dim, so the layer
declares ``rounding="normwise"`` (the bound is :func:`gradcheck.judge.bounds.winograd_growth`).

* stride 1, no dilation (Winograd's tiles assume both), 2-d, any padding, groups one at a time;
* kernels up to 3×3: a smaller kernel is zero-extended to 3 at its end and the input by as many
  zeros at its end, which leaves every valid output unchanged;
* dx is the same F(2×2, 3×3) correlation of δ (padded by 2) with the flipped, channel-swapped
  kernel; dw, a correlation with a δ-sized kernel, is a direct sum; db a sum.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from examples.naive_conv import by_input_channel, flip, pad

if TYPE_CHECKING:
    from gradcheck.geometry.spec import ConvSpec

B_T = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=float)
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], dtype=float)
A_T = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=float)


def winograd_correlate(d: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Valid 2-d correlation of d (N, C, H, W) with g (F, C, 3, 3) by F(2×2, 3×3).

    Returns (N, F, H − 2, W − 2) in the promoted dtype of d and g.
    """
    dtype = np.result_type(d, g)
    b_t, g_m, a_t = (m.astype(dtype) for m in (B_T, G, A_T))
    out_h, out_w = d.shape[2] - 2, d.shape[3] - 2
    tiles_h, tiles_w = -(-out_h // 2), -(-out_w // 2)
    d = np.pad(d, ((0, 0), (0, 0), (0, 2 * tiles_h + 2 - d.shape[2]),
                   (0, 2 * tiles_w + 2 - d.shape[3])))
    tiles = sliding_window_view(d, (4, 4), axis=(2, 3))[:, :, ::2, ::2]  # (N, C, Th, Tw, 4, 4)
    v = np.einsum("ij,nchwjk,lk->nchwil", b_t, tiles, b_t)       # Bᵀ d B
    u = np.einsum("ij,fcjk,lk->fcil", g_m, g.astype(dtype), g_m)  # G g Gᵀ
    m = np.einsum("nchwij,fcij->nfhwij", v, u)                    # Σ_c, elementwise
    y = np.einsum("ij,nfhwjk,lk->nfhwil", a_t, m, a_t)            # Aᵀ M A: (N, F, Th, Tw, 2, 2)
    y = y.transpose(0, 1, 2, 4, 3, 5).reshape(len(d), len(g), 2 * tiles_h, 2 * tiles_w)
    return np.ascontiguousarray(y[:, :, :out_h, :out_w])


def _extend(x_pad: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Zero-extend the kernel to 3×3 and the input by the same amounts at their ends."""
    extra = [3 - k for k in w.shape[2:]]
    if any(e < 0 for e in extra):
        raise ValueError(f"w.shape={w.shape}: F(2×2, 3×3) takes kernels up to 3×3")
    widths = ((0, 0), (0, 0), *((0, e) for e in extra))
    return np.pad(x_pad, widths), np.pad(w, widths)


class WinogradConv:
    """2-d convolution, stride 1, kernels up to 3×3, by Winograd F(2×2, 3×3)."""

    supports: ClassVar[dict[str, object]] = {
        "dims": (2,), "max_stride": 1, "dilation": False, "dtypes": ("float32", "float64"),
        "rounding": "normwise"}

    def forward(self, x: np.ndarray, w: np.ndarray, b: np.ndarray | None,
                spec: ConvSpec) -> np.ndarray:
        """``y = Aᵀ[Σ_c (G g Gᵀ) ⊙ (Bᵀ d B)]A`` tile by tile, group by group, plus b."""
        x_ext, w_ext = _extend(pad(x, spec.padding), w)
        c_g, f_g = x.shape[1] // spec.groups, w.shape[0] // spec.groups
        y = np.concatenate([
            winograd_correlate(x_ext[:, g * c_g:(g + 1) * c_g], w_ext[g * f_g:(g + 1) * f_g])
            for g in range(spec.groups)], axis=1)
        if b is not None:
            y = y + b.reshape(1, -1, 1, 1)
        return y

    def backward(self, dy: np.ndarray, x: np.ndarray, w: np.ndarray, b: np.ndarray | None,
                 spec: ConvSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """dx by F(2×2, 3×3) on δ padded by 2; dw and db by direct sums."""
        x_pad = pad(x, spec.padding)
        _, w_ext = _extend(x_pad, w)
        groups = spec.groups
        # dx_pad = δ * w (full) = correlation of δ padded by 2 with flip(w) channel-swapped;
        # with the kernel extended it covers x_pad and 3 − K positions beyond: cropped.
        w_in = flip(by_input_channel(w_ext, groups))  # (C, F/G, 3, 3)
        delta_full = np.pad(dy, ((0, 0), (0, 0), (2, 2), (2, 2)))
        c_g, f_g = x.shape[1] // groups, w.shape[0] // groups
        dx_ext = np.concatenate([
            winograd_correlate(delta_full[:, g * f_g:(g + 1) * f_g], w_in[g * c_g:(g + 1) * c_g])
            for g in range(groups)], axis=1)
        (lo_h, _), (lo_w, _) = spec.padding
        dx = np.ascontiguousarray(dx_ext[:, :, lo_h:lo_h + x.shape[2], lo_w:lo_w + x.shape[3]])
        # dw[f, c', t] = Σ_{n, o} δ[n, f, o]·x_pad[n, c, o + t]: a direct sum per group
        windows = sliding_window_view(x_pad, dy.shape[2:], axis=(2, 3))  # (N, C, K1, K2, O1, O2)
        dw = np.concatenate([
            np.einsum("nckluv,nfuv->fckl", windows[:, g * c_g:(g + 1) * c_g],
                      dy[:, g * f_g:(g + 1) * f_g])
            for g in range(groups)], axis=0)
        db = None if b is None else dy.sum(axis=(0, 2, 3))
        return dx, dw.astype(np.result_type(dy, x), copy=False), db


winograd_f2x2_3x3 = WinogradConv()
