"""The reference N-d convolution and its analytic backward formulas, written as the math.

Shapes (channels first; d = 1, 2 or 3 spatial dims; G groups)::

    x (N, C, S…)    w (F, C/G, K…)    b (F,)    y, δ = dL/dy (N, F, O…)

Forward, with ``x_pad`` the input zero-padded by (lo, hi)::

    y[n, f, o] = b[f] + Σ_{c ∈ group(f)} Σ_t w[f, c', t] · x_pad[n, c, s·o + r·t]

Backward, with ``delta_up = δ↑s`` (s − 1 zeros inserted between samples) and
``w_dilated = w↑r``::

    db[f]        = Σ_{n, o} δ[n, f, o]
    dw[f, c', t] = Σ_{n, i} δ↑s[n, f, i] · x_pad[n, c, i + r·t]   (x_pad ⋆ δ↑s at lags r·t)
    dx_pad[n, c] = Σ_{f ∈ group(c)} δ↑s[n, f] * w↑r[f, c']         (full convolution)
    dx           = dx_pad with the padding cropped off

Every contraction is one batched matrix product over sliding-window views (im2col): no
Python loop touches batch, channels or positions.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from gradcheck.errors import invalid, invalid_type
from gradcheck.geometry.spec import ConvSpec, output_shape, spatial_index


def _check_arrays(**arrays: np.ndarray | None) -> None:
    """Every array argument: a numpy array of floating or complex dtype, all values finite."""
    for name, a in arrays.items():
        if a is None and name == "b":
            continue
        if not isinstance(a, np.ndarray):
            raise invalid_type(name, a, "expected a numpy array")
        if a.dtype.kind not in "fc":
            raise invalid_type(name, f"array of dtype {a.dtype}",
                               "expected a floating or complex dtype (cast integers first)")
        if not np.isfinite(a).all():
            raise invalid(name, "an array with NaN/Inf", "every value must be finite")


def pad(a: np.ndarray, padding: tuple[tuple[int, int], ...]) -> np.ndarray:
    """Zero-pad the spatial axes (all but the first two) by (lo, hi) each."""
    return np.pad(a, ((0, 0), (0, 0), *padding))


def zero_insert(a: np.ndarray, factors: tuple[int, ...]) -> np.ndarray:
    """``a↑s``: insert s − 1 zeros between neighbouring samples of each spatial axis.

    ``up[..., s·i] = a[..., i]``; the spatial length L becomes ``(L − 1)·s + 1``.
    Used for the stride (δ↑s) and for the dilation (w↑r).
    """
    spatial = a.shape[2:]
    up = np.zeros(
        a.shape[:2] + tuple((n - 1) * f + 1 for n, f in zip(spatial, factors)), dtype=a.dtype
    )
    up[spatial_index(slice(None, None, f) for f in factors)] = a
    return up


def flip(a: np.ndarray) -> np.ndarray:
    """Reverse every spatial axis: ``flip(k)[t] = k[K − 1 − t]``."""
    return a[spatial_index((slice(None, None, -1),) * (a.ndim - 2))]


def windows(
    a: np.ndarray, taps: tuple[int, ...], step: tuple[int, ...], gap: tuple[int, ...]
) -> np.ndarray:
    """View of ``a`` (N, C, L…) as (N, C, O…, K…) with ``[n, c, o, t] = a[n, c, step·o + gap·t]``.

    ``O = floor((L − gap·(K − 1) − 1) / step) + 1``; no copy is made.
    """
    d = a.ndim - 2
    extent = tuple(g * (k - 1) + 1 for g, k in zip(gap, taps))
    view = sliding_window_view(a, extent, axis=tuple(range(2, 2 + d)))
    return view[spatial_index(
        (*(slice(None, None, s) for s in step), *(slice(None, None, g) for g in gap)))]


def grouped_correlation(
    a: np.ndarray, kernel: np.ndarray, groups: int, step: tuple[int, ...], gap: tuple[int, ...]
) -> np.ndarray:
    """``out[n, f, o] = Σ_{c ∈ group(f)} Σ_t kernel[f, c', t] · a[n, c, step·o + gap·t]``.

    Parameters
    ----------
    a : (N, C, L…)
    kernel : (F, C/G, K…)

    Returns
    -------
    (N, F, O…) in the promoted dtype of ``a`` and ``kernel``.
    """
    n = a.shape[0]
    f, c_g = kernel.shape[:2]
    taps = kernel.shape[2:]
    d = len(taps)
    cols = windows(a, taps, step, gap)  # (N, C, O…, K…)
    out_sizes = cols.shape[2 : 2 + d]
    cols = cols.reshape(n, groups, c_g, *out_sizes, *taps)
    # (G, C/G, K…, N, O…) → im2col matrix (G, C/G·∏K, N·∏O): output positions stay the
    # fastest axis, so the gather copies whole rows of the input.
    order = (1, 2, *range(3 + d, 3 + 2 * d), 0, *range(3, 3 + d))
    cols = cols.transpose(order).reshape(groups, c_g * int(np.prod(taps)), -1)
    w_mat = kernel.reshape(groups, f // groups, -1)
    out = w_mat @ cols  # (G, F/G, N·∏O)
    out = out.reshape(groups, f // groups, n, *out_sizes)
    out = np.moveaxis(out, 2, 0)  # (N, G, F/G, O…)
    return np.ascontiguousarray(out).reshape(n, f, *out_sizes)


def conv_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None, spec: ConvSpec
) -> np.ndarray:
    """Reference forward pass ``y = b + Σ w · x_pad`` (cross-correlation, channels first).

    Parameters
    ----------
    x : (N, C, S…)
    w : (F, C/G, K…)
    b : (F,) or None
    spec : ConvSpec

    Returns
    -------
    y : (N, F, O…)

    Notes
    -----
    ``y[n, f, o] = b[f] + Σ_{c ∈ group(f)} Σ_t w[f, c', t] · x_pad[n, c, s·o + r·t]``.
    """
    _check_arrays(x=x, w=w, b=b)
    output_shape(x.shape, w.shape, spec, None if b is None else b.shape)
    x_pad = pad(x, spec.padding)
    y = grouped_correlation(x_pad, w, spec.groups, spec.stride, spec.dilation)
    if b is not None:
        y = y + b.reshape((1, -1) + (1,) * spec.dims)
    return y


def swap_channels(w: np.ndarray, groups: int) -> np.ndarray:
    """(F, C/G, K…) → (C, F/G, K…): the kernel seen from the input channels, group by group."""
    f, c_g = w.shape[:2]
    w_g = w.reshape(groups, f // groups, c_g, *w.shape[2:])
    return w_g.swapaxes(1, 2).reshape(groups * c_g, f // groups, *w.shape[2:])


def conv_backward(
    dy: np.ndarray, x: np.ndarray, w: np.ndarray, b: np.ndarray | None, spec: ConvSpec
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Analytic gradients ``(dx, dw, db)`` of ``L = ⟨δ, y⟩`` with ``δ = dy``.

    Parameters
    ----------
    dy : (N, F, O…)
        Upstream gradient δ.
    x, w, b, spec
        As for :func:`conv_forward`.

    Returns
    -------
    dx : (N, C, S…)
    dw : (F, C/G, K…)
    db : (F,) or None when ``b`` is None

    Notes
    -----
    With ``δ↑s`` the stride-dilated upstream gradient and ``w↑r`` the dilated kernel::

        db[f]        = Σ_{n,o} δ[n, f, o]
        dw[f, c', t] = (x_pad ⋆ δ↑s)[r·t]      (correlation read at the dilated lags)
        dx_pad       = δ↑s * w↑r               (full convolution = correlation with flip(w↑r))
        dx           = dx_pad[lo : lo + S]     (positions no window reaches stay 0)
    """
    _check_arrays(dy=dy, x=x, w=w, b=b)
    y_shape = output_shape(x.shape, w.shape, spec, None if b is None else b.shape)
    if dy.shape != y_shape:
        raise invalid("dy.shape", dy.shape, f"expected the output shape {y_shape}")
    d, groups = spec.dims, spec.groups
    spatial_axes = tuple(range(2, 2 + d))
    taps = w.shape[2:]

    db = None if b is None else dy.sum(axis=(0, *spatial_axes))

    delta_up = zero_insert(dy, spec.stride)  # δ↑s, spatial length L = (O − 1)·s + 1
    x_pad = pad(x, spec.padding)

    # dw[f, c', t] = Σ_{n,i} δ↑s[n, f, i] · x_pad[n, c, i + r·t]: windows of x_pad as long as
    # δ↑s, one per lag r·t, contracted with δ↑s over batch and position, group by group.
    n, c_g, f_g = x.shape[0], w.shape[1], w.shape[0] // groups
    length = delta_up.shape[2:]
    lags = windows(x_pad, length, spec.dilation, (1,) * d)  # (N, C, T…, L…), T >= K
    lags = lags[spatial_index(slice(0, k) for k in taps)]
    lags = lags.reshape(n, groups, c_g, *taps, *length)
    order = (1, 2, *range(3, 3 + d), 0, *range(3 + d, 3 + 2 * d))
    lags = lags.transpose(order).reshape(groups, c_g * int(np.prod(taps)), -1)
    delta_mat = np.moveaxis(delta_up.reshape(n, groups, f_g, *length), 0, 2)
    delta_mat = delta_mat.reshape(groups, f_g, -1)  # (G, F/G, N·∏L)
    dw = (delta_mat @ lags.transpose(0, 2, 1)).reshape(w.shape)

    # dx_pad = δ↑s * w↑r: the full convolution, as a correlation of δ↑s padded by the dilated
    # kernel's extent − 1 on both sides with flip(w↑r), channels swapped.
    w_dilated = zero_insert(w, spec.dilation)
    extent = w_dilated.shape[2:]
    delta_full = pad(delta_up, tuple((e - 1, e - 1) for e in extent))
    dx_reached = grouped_correlation(
        delta_full, flip(swap_channels(w_dilated, groups)), groups, (1,) * d, (1,) * d
    )                                     # length L + r·(K − 1) <= S + lo + hi
    dx_pad = np.zeros(x_pad.shape, dtype=dx_reached.dtype)
    dx_pad[spatial_index(slice(0, n) for n in dx_reached.shape[2:])] = dx_reached
    crop = tuple(slice(lo, lo + s) for (lo, _), s in zip(spec.padding, x.shape[2:]))
    dx = dx_pad[spatial_index(crop)]
    return np.ascontiguousarray(dx), dw, db
