"""Reference N-d max and average pooling and their analytic backward, written as the math.

Shapes (channels first; d = 1, 2 or 3 spatial dims)::

    x (N, C, S…)    y, δ = dL/dy (N, C, O…)

Window o of a spatial dim reads the padded positions ``s·o + r·t``, t = 0 … K − 1, i.e. the
input positions ``p = s·o − lo + r·t`` (see :class:`gradcheck.PoolSpec` for O).  In ceil mode the
last window may reach past the padded input; positions there are not read (−∞ for max, left
out of the divisor for average).

Max pooling, padding read as −∞, ``t*(o)`` the first tap holding the window's maximum (the
first in row-major tap order, as torch)::

    y[n, c, o]  = max_t x_pad[n, c, s·o + r·t]
    dx[n, c, p] = Σ_{o : s·o − lo + r·t*(o) = p} δ[n, c, o]    (accumulated where windows overlap)

Average pooling, a depthwise convolution with the constant kernel ``1/|W(o)|``::

    y[n, c, o]  = (1/|W(o)|) Σ_t x_pad[n, c, s·o + r·t]
    dx          = ((δ / |W|)↑s * 1↑r) with the padding cropped      (its transposed convolution)

where ``|W(o)| = ∏_dims #{t : p(o, t) inside R}`` and R is the padded input ``[−lo, S + hi)``
when ``count_include_pad`` and the input ``[0, S)`` otherwise — torch's divisor, so ceil mode's
partial windows are divided by the positions they actually cover.
"""

from __future__ import annotations

from functools import reduce

import numpy as np

from gradcheck.errors import invalid, invalid_type
from gradcheck.formulas.conv import _check_arrays, grouped_correlation, windows
from gradcheck.formulas.conv_transpose import crop_or_extend, full_transposed
from gradcheck.geometry.family_spec import PoolSpec, pool_output_shape, pool_window_starts

__all__ = [
    "avg_pool_backward",
    "avg_pool_divisor",
    "avg_pool_forward",
    "max_pool_backward",
    "max_pool_forward",
    "max_pool_margin",
]


def _check_dy(dy: np.ndarray, y_shape: tuple[int, ...]) -> None:
    if dy.shape != y_shape:
        raise invalid("dy.shape", dy.shape, f"expected the output shape {y_shape}")


def _check_real(x: np.ndarray) -> None:
    if x.dtype.kind != "f":
        raise invalid_type("x", f"array of dtype {x.dtype}",
                           "expected a real floating dtype: a maximum needs an order")


def _first(out: tuple[int, ...]) -> tuple[slice, ...]:
    """Index of the first O outputs of every spatial axis."""
    return (slice(None), slice(None), *(slice(0, o) for o in out))


def _padded(x: np.ndarray, spec: PoolSpec, fill: float) -> np.ndarray:
    """x padded by (lo, hi) with ``fill``, and further on the right, with ``fill``, as far as
    ceil mode's last window reaches past the padded input: ``(O − 1)·s + r·(K − 1) + 1``."""
    out = spec.output_size(x.shape[2:])
    reach = tuple((o - 1) * s + e for o, s, e in zip(out, spec.stride, spec.extent))
    pads = tuple(
        (lo, max(hi, r_ - size - lo))
        for (lo, hi), r_, size in zip(spec.padding, reach, x.shape[2:])
    )
    return np.pad(x, ((0, 0), (0, 0), *pads), constant_values=fill)


def _windows(x: np.ndarray, spec: PoolSpec, fill: float) -> np.ndarray:
    """View (N, C, O…, K…) of the windows, ``[n, c, o, t] = x_pad[n, c, s·o + r·t]``."""
    view = windows(_padded(x, spec, fill), spec.kernel_size, spec.stride, spec.dilation)
    return view[_first(spec.output_size(x.shape[2:]))]


def max_pool_forward(x: np.ndarray, spec: PoolSpec) -> np.ndarray:
    """Reference max pooling ``y[n, c, o] = max_t x_pad[n, c, s·o + r·t]``, padding −∞.

    Parameters
    ----------
    x : (N, C, S…), real floating
    spec : PoolSpec

    Returns
    -------
    y : (N, C, O…)
    """
    _check_arrays(x=x)
    _check_real(x)
    y_shape = pool_output_shape(x.shape, spec)
    cols = _windows(x, spec, -np.inf)
    return cols.reshape(*y_shape, -1).max(axis=-1)


def _argmax_positions(x: np.ndarray, spec: PoolSpec) -> tuple[np.ndarray, ...]:
    """Per spatial dim, the input index ``s·o − lo + r·t*(o)`` of each window's first maximum."""
    y_shape = pool_output_shape(x.shape, spec)
    cols = _windows(x, spec, -np.inf)
    best = cols.reshape(*y_shape, -1).argmax(axis=-1)  # first maximum on ties
    taps = np.unravel_index(best, spec.kernel_size)
    d = spec.dims
    positions = []
    for axis, (starts, r, t) in enumerate(
        zip(pool_window_starts(x.shape[2:], spec), spec.dilation, taps)
    ):
        shape = [1] * (2 + d)
        shape[2 + axis] = len(starts)
        positions.append(starts.reshape(shape) + r * t)
    return tuple(positions)


def max_pool_backward(dy: np.ndarray, x: np.ndarray, spec: PoolSpec) -> np.ndarray:
    """Analytic gradient ``dx`` of ``L = ⟨δ, max_pool(x)⟩`` with ``δ = dy``.

    Parameters
    ----------
    dy : (N, C, O…)
    x : (N, C, S…), real floating
    spec : PoolSpec

    Returns
    -------
    dx : (N, C, S…), in the promoted dtype of dy and x

    Notes
    -----
    ``dx[n, c, p] = Σ_{o : s·o − lo + r·t*(o) = p} δ[n, c, o]``, with ``t*(o)`` the first tap
    holding the maximum of window o (a maximum is never in the −∞ padding: every window reads
    an input position).  The sum is a scatter-add (``np.bincount``), accumulated in float64
    (complex128 for a complex δ) and rounded once to the result dtype.
    """
    _check_arrays(dy=dy, x=x)
    _check_real(x)
    _check_dy(dy, pool_output_shape(x.shape, spec))
    n, c, sizes = x.shape[0], x.shape[1], x.shape[2:]
    positions = _argmax_positions(x, spec)
    batch = np.arange(n).reshape((n,) + (1,) * (dy.ndim - 1))
    channel = np.arange(c).reshape((1, c) + (1,) * (dy.ndim - 2))
    flat = np.ravel_multi_index(
        np.broadcast_arrays(batch, channel, *positions), x.shape
    ).ravel()
    total = x.size
    dtype = np.result_type(dy, x)

    def scatter(weights: np.ndarray) -> np.ndarray:
        return np.bincount(flat, weights=weights.ravel(), minlength=total)

    dx = scatter(dy.real) + 1j * scatter(dy.imag) if dy.dtype.kind == "c" else scatter(dy)
    return dx.reshape(n, c, *sizes).astype(dtype, copy=False)


def max_pool_margin(x: np.ndarray, spec: PoolSpec) -> float:
    """Distance from x to the nearest kink of max pooling: the smallest ``max − runner-up``.

    Max pooling is linear on the set where every window's maximum is unique; it changes
    piece only where a window's two largest entries meet.  Moving every entry by at most
    ``margin / 2`` (an entrywise finite-difference step, or ``h·|v|`` along a direction) stays
    on x's piece, where any difference rule is exact up to rounding.  inf when every window
    has a single input position; 0 on a tie.

    Parameters
    ----------
    x : (N, C, S…), real floating
    spec : PoolSpec
    """
    _check_arrays(x=x)
    _check_real(x)
    y_shape = pool_output_shape(x.shape, spec)
    flat = _windows(x, spec, -np.inf).reshape(*y_shape, -1)
    if flat.shape[-1] < 2:
        return float("inf")
    top = np.partition(flat, -2, axis=-1)[..., -2:]
    with np.errstate(invalid="ignore"):  # −∞ − (−∞) cannot occur: every window reads input
        gaps = top[..., 1] - top[..., 0]
    return float(gaps.min())


def avg_pool_divisor(input_size: tuple[int, ...], spec: PoolSpec) -> np.ndarray:
    """``|W(o)|`` for every output position, an int array of shape (O…).

    ``|W(o)| = ∏_dims #{t : s·o − lo + r·t ∈ R}``, R = ``[−lo, S + hi)`` (the padded input)
    when ``spec.count_include_pad``, ``[0, S)`` otherwise.  Without ceil mode's partial
    windows and with count_include_pad this is ∏K everywhere.
    """
    counts = []
    for starts, size, k, r, (_, hi) in zip(
        pool_window_starts(input_size, spec), input_size, spec.kernel_size, spec.dilation,
        spec.padding,
    ):
        taps = starts[:, None] + r * np.arange(k)
        # every tap is >= −lo: inside the padded input means before its end
        inside = taps < size + hi if spec.count_include_pad else (taps >= 0) & (taps < size)
        counts.append(inside.sum(axis=1))
    return reduce(np.multiply.outer, counts)


def avg_pool_forward(x: np.ndarray, spec: PoolSpec) -> np.ndarray:
    """Reference average pooling ``y[n, c, o] = (1/|W(o)|) Σ_t x_pad[n, c, s·o + r·t]``.

    Parameters
    ----------
    x : (N, C, S…)
    spec : PoolSpec

    Returns
    -------
    y : (N, C, O…)

    Notes
    -----
    The window sums are a depthwise convolution (groups = C) with a kernel of ones; each is
    then divided by its count :func:`avg_pool_divisor`.
    """
    _check_arrays(x=x)
    pool_output_shape(x.shape, spec)
    c = x.shape[1]
    ones = np.ones((c, 1, *spec.kernel_size), dtype=x.real.dtype)
    sums = grouped_correlation(_padded(x, spec, 0.0), ones, c, spec.stride, spec.dilation)
    divisor = avg_pool_divisor(x.shape[2:], spec).astype(x.real.dtype)
    return sums[_first(spec.output_size(x.shape[2:]))] / divisor


def avg_pool_backward(dy: np.ndarray, x: np.ndarray, spec: PoolSpec) -> np.ndarray:
    """Analytic gradient ``dx`` of ``L = ⟨δ, avg_pool(x)⟩`` with ``δ = dy``.

    Parameters
    ----------
    dy : (N, C, O…)
    x : (N, C, S…)
        Only its shape matters: average pooling is linear.
    spec : PoolSpec

    Returns
    -------
    dx : (N, C, S…), in the promoted dtype of dy and x

    Notes
    -----
    The adjoint of the depthwise convolution with kernel ones, applied to ``δ/|W|``::

        dx[n, c, p] = Σ_{o, t : s·o − lo + r·t = p} δ[n, c, o] / |W(o)|
                    = ((δ/|W|)↑s * 1↑r)[lo + p]

    the full transposed convolution read from lo on (zero past its end: input positions no
    window reaches).
    """
    _check_arrays(dy=dy, x=x)
    _check_dy(dy, pool_output_shape(x.shape, spec))
    c = x.shape[1]
    dtype = np.result_type(dy, x)
    scaled = dy / avg_pool_divisor(x.shape[2:], spec).astype(dy.real.dtype)
    ones = np.ones((c, 1, *spec.kernel_size), dtype=dy.real.dtype)
    full = full_transposed(scaled, ones, c, spec.stride, spec.dilation)
    dx = crop_or_extend(full, [lo for lo, _ in spec.padding], x.shape[2:])
    return dx.astype(dtype, copy=False)
