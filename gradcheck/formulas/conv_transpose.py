"""The reference N-d transposed convolution and its analytic backward, written as the math.

Shapes (channels first; d = 1, 2 or 3 spatial dims; G groups; PyTorch's ConvTranspose layout)::

    x (N, C_in, S…)    w (C_in, C_out/G, K…)    b (C_out,)    y, δ = dL/dy (N, C_out, O…)

The transposed convolution is the input gradient of the convolution with the same stride s,
padding (lo, hi), dilation r and groups — the map ``δ ↦ dx`` of :func:`conv_backward`, with x in
the role of δ.  With ``x↑s`` the input with s − 1 zeros inserted between samples and ``w↑r`` the
dilated kernel::

    full[n, j, i] = Σ_{c ∈ group(j)} Σ_t x↑s[n, c, i − r·t] · w[c, j', t]  = (x↑s * w↑r)[i]
    y[n, j, o]    = b[j] + full[n, j, lo + o]      o = 0 … O − 1,  full = 0 past its end

so ``(lo, hi)`` positions are cropped off the full convolution, and output_padding ``a`` adds
positions at the end (zeros when ``a > hi``): ``O = (S − 1)·s − lo − hi + r·(K − 1) + a + 1``.
Equivalently ``y[n, j, s·i + r·t − lo] += x[n, c, i]·w[c, j', t]`` for every i, t.

Backward, with ``δ_pad`` the upstream gradient zero-padded by (lo, hi)::

    db[j]        = Σ_{n, o} δ[n, j, o]
    dx[n, c, i]  = Σ_{j, t} w[c, j', t] · δ_pad[n, j, s·i + r·t]      (conv_forward(δ, w), first S)
    dw[c, j', t] = Σ_{n, i} x[n, c, i] · δ_pad[n, j, s·i + r·t]        (δ correlated with x↑s)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gradcheck.errors import invalid
from gradcheck.formulas.conv import (
    _check_arrays,
    conv_forward,
    flip,
    grouped_correlation,
    pad,
    swap_channels,
    windows,
    zero_insert,
)
from gradcheck.geometry.family_spec import ConvTransposeSpec, conv_transpose_output_shape

__all__ = [
    "conv_transpose_backward",
    "conv_transpose_forward",
    "crop_or_extend",
    "full_transposed",
]


def full_transposed(
    x: np.ndarray,
    w: np.ndarray,
    groups: int,
    stride: tuple[int, ...],
    dilation: tuple[int, ...],
) -> np.ndarray:
    """The full transposed convolution ``x↑s * w↑r``, nothing cropped.

    Parameters
    ----------
    x : (N, C_in, S…)
    w : (C_in, C_out/G, K…)

    Returns
    -------
    (N, C_out, L…) with ``L = (S − 1)·s + r·(K − 1) + 1``, in the promoted dtype.

    Notes
    -----
    ``full[n, j, i] = Σ_{c ∈ group(j)} Σ_t x↑s[n, c, i − r·t] · w[c, j', t]``: a true
    convolution, computed as the correlation of ``x↑s`` padded by ``r·(K − 1)`` on both sides
    with the flipped kernel seen from the output channels (``flip(w↑r) = (flip w)↑r``).
    """
    x_up = zero_insert(x, stride)
    reach = tuple(r * (k - 1) for r, k in zip(dilation, w.shape[2:]))
    x_full = pad(x_up, tuple((e, e) for e in reach))
    kernel = flip(swap_channels(w, groups))  # (C_out, C_in/G, K…)
    return grouped_correlation(x_full, kernel, groups, (1,) * len(stride), dilation)


def crop_or_extend(a: np.ndarray, start: Sequence[int], size: Sequence[int]) -> np.ndarray:
    """``a[..., start : start + size]`` per spatial axis, reading zeros past the end of ``a``.

    Parameters
    ----------
    a : (N, C, L…)
    start, size : one int >= 0 per spatial axis
    """
    short = tuple(max(0, b + n - length) for b, n, length in zip(start, size, a.shape[2:]))
    if any(short):
        a = np.pad(a, ((0, 0), (0, 0), *[(0, e) for e in short]))
    crop = (slice(None), slice(None), *(slice(b, b + n) for b, n in zip(start, size)))
    return np.ascontiguousarray(a[crop])


def conv_transpose_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None, spec: ConvTransposeSpec
) -> np.ndarray:
    """Reference transposed convolution ``y = crop(x↑s * w↑r) + b``.

    Parameters
    ----------
    x : (N, C_in, S…)
    w : (C_in, C_out/G, K…)
    b : (C_out,) or None
    spec : ConvTransposeSpec

    Returns
    -------
    y : (N, C_out, O…), ``O = (S − 1)·s − lo − hi + r·(K − 1) + a + 1``

    Notes
    -----
    ``y[n, j, o] = b[j] + (x↑s * w↑r)[n, j, lo + o]``, the full convolution read as zero past
    its end (the output padding when ``a > hi``).  This is ``dx`` of the convolution with the
    same stride, padding, dilation and groups, on an input of size O, for ``δ = x``.
    """
    _check_arrays(x=x, w=w, b=b)
    y_shape = conv_transpose_output_shape(x.shape, w.shape, spec, None if b is None else b.shape)
    full = full_transposed(x, w, spec.groups, spec.stride, spec.dilation)
    y = crop_or_extend(full, [lo for lo, _ in spec.padding], y_shape[2:])
    if b is not None:
        y = y + b.reshape((1, -1) + (1,) * spec.dims)
    return y


def conv_transpose_backward(
    dy: np.ndarray,
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    spec: ConvTransposeSpec,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Analytic gradients ``(dx, dw, db)`` of ``L = ⟨δ, y⟩`` with ``δ = dy``.

    Parameters
    ----------
    dy : (N, C_out, O…)
        Upstream gradient δ.
    x, w, b, spec
        As for :func:`conv_transpose_forward`.

    Returns
    -------
    dx : (N, C_in, S…)
    dw : (C_in, C_out/G, K…)
    db : (C_out,) or None when ``b`` is None

    Notes
    -----
    With ``δ_pad`` the upstream gradient zero-padded by (lo, hi)::

        db[j]        = Σ_{n,o} δ[n, j, o]
        dx[n, c, i]  = Σ_{j ∈ group(c), t} w[c, j', t] · δ_pad[n, j, s·i + r·t]
                     = conv_forward(δ, w) with the same geometry, its first S outputs
        dw[c, j', t] = Σ_{n, i} x[n, c, i] · δ_pad[n, j, s·i + r·t]

    The convolution of δ has ``floor(a / s)`` more outputs than S when ``a >= s`` (possible
    when r > s): they read only output padding and are not part of x.
    """
    _check_arrays(dy=dy, x=x, w=w, b=b)
    y_shape = conv_transpose_output_shape(x.shape, w.shape, spec, None if b is None else b.shape)
    if dy.shape != y_shape:
        raise invalid("dy.shape", dy.shape, f"expected the output shape {y_shape}")
    d, groups = spec.dims, spec.groups
    first_s = (slice(None), slice(None), *(slice(0, n) for n in x.shape[2:]))

    db = None if b is None else dy.sum(axis=(0, *range(2, 2 + d)))

    dx = np.ascontiguousarray(conv_forward(dy, w, None, spec.conv_spec())[first_s])

    # dw[c, j', t] = Σ_{n,i} x[n, c, i] · δ_pad[n, j, s·i + r·t]: the windows of δ_pad that the
    # convolution of δ reads (im2col), one per input position i, contracted with x, per group.
    n, c_in, taps = x.shape[0], x.shape[1], w.shape[2:]
    c_g, j_g, sizes = c_in // groups, w.shape[1], x.shape[2:]
    cols = windows(pad(dy, spec.padding), taps, spec.stride, spec.dilation)[first_s]
    cols = cols.reshape(n, groups, j_g, *sizes, *taps)      # (N, G, C_out/G, S…, K…)
    order = (1, 0, *range(3, 3 + d), 2, *range(3 + d, 3 + 2 * d))
    cols = cols.transpose(order).reshape(groups, n * int(np.prod(sizes)), -1)
    x_mat = np.moveaxis(x.reshape(n, groups, c_g, *sizes), 0, 2)
    x_mat = x_mat.reshape(groups, c_g, -1)                   # (G, C_in/G, N·∏S)
    dw = (x_mat @ cols).reshape(w.shape)
    return dx, dw, db
