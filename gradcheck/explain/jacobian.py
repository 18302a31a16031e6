"""The Jacobians of a convolution as matrices: the seed question answered by the tool itself.

A convolution is linear in its kernel and in its input, so each Jacobian is a matrix whose
column j is the convolution of the basis vector e_j.  For one channel, with multi-indices
o (output), t (tap) and i (input position) in row-major order::

    ∂y/∂k[o, t] = x_pad[s·o + r·t]                                  (built from x)
    ∂y/∂x[o, i] = k[(i + lo − s·o) / r]   (0 where that is no tap)   (built from k)

∂y/∂k is constant wherever ``s·o + r·t`` is: for s = r = 1 along the anti-diagonals, a
Hankel matrix of x, which is a Toeplitz matrix once the taps are numbered backwards (the
convolution convention).  ∂y/∂x is constant wherever ``i − s·o`` is: a banded Toeplitz matrix
of k↑r, of which stride s keeps every s-th row.  Backprop applies the transposes to δ::

    (∂y/∂k)ᵀ δ = x_pad ⋆ δ↑s, read at lags r·t          (correlation)
    (∂y/∂x)ᵀ δ = δ↑s * k↑r, padding cropped             (full convolution)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gradcheck.errors import invalid
from gradcheck.formulas.conv import conv_forward
from gradcheck.geometry.spec import ConvSpec, output_shape


def kernel_jacobian(x: np.ndarray, spec: ConvSpec, kernel_shape: Sequence[int]) -> np.ndarray:
    """The Jacobian ∂y/∂w of ``y = conv_forward(x, w)`` (no bias), as a matrix.

    Parameters
    ----------
    x : (N, C, S…)
    spec : ConvSpec
    kernel_shape : (F, C/G, K…)

    Returns
    -------
    (y.size, w.size) array
        Rows and columns are the row-major flat indices of y and w.

    Notes
    -----
    y is linear in w, so column j is ``conv(x, e_j)``.  All ``w.size`` basis kernels go
    through one ``conv_forward`` call, stacked as extra filters of each group.
    """
    x = np.asarray(x)
    kernel_shape = tuple(kernel_shape)
    output_shape(x.shape, kernel_shape, spec)
    f, c_g, *taps = kernel_shape
    size, groups = int(np.prod(kernel_shape)), spec.groups
    dtype = np.result_type(x.dtype, np.float64)
    basis = np.eye(size, dtype=dtype).reshape(size, groups, f // groups, c_g, *taps)
    w_all = basis.swapaxes(0, 1).reshape(groups * size * (f // groups), c_g, *taps)
    y_all = conv_forward(x, w_all, None, spec)  # (N, G·M·F/G, O…)
    y_all = y_all.reshape(x.shape[0], groups, size, f // groups, *y_all.shape[2:])
    return np.ascontiguousarray(np.moveaxis(y_all, 2, 0).reshape(size, -1).T)


def input_jacobian(w: np.ndarray, spec: ConvSpec, input_shape: Sequence[int]) -> np.ndarray:
    """The Jacobian ∂y/∂x of ``y = conv_forward(x, w)`` (no bias), as a matrix.

    Parameters
    ----------
    w : (F, C/G, K…)
    spec : ConvSpec
    input_shape : (N, C, S…)

    Returns
    -------
    (y.size, x.size) array
        Rows and columns are the row-major flat indices of y and x.

    Notes
    -----
    Column j is ``conv(e_j, w)``; the ``x.size`` basis inputs are folded into the batch axis of
    one ``conv_forward`` call, which holds ``x.size²`` numbers: meant for tiny problems.
    """
    w = np.asarray(w)
    input_shape = tuple(input_shape)
    output_shape(input_shape, w.shape, spec)
    size = int(np.prod(input_shape))
    dtype = np.result_type(w.dtype, np.float64)
    basis = np.eye(size, dtype=dtype).reshape(size * input_shape[0], *input_shape[1:])
    y_all = conv_forward(basis, w, None, spec)  # (M·N, F, O…)
    return np.ascontiguousarray(y_all.reshape(size, -1).T)


def _constant_along(J: np.ndarray, rows: Sequence[int], cols: Sequence[int],
                    row_step: int | Sequence[int] | np.ndarray,
                    col_step: int | Sequence[int] | np.ndarray) -> bool:
    """True when ``J[o, j]`` depends only on the vector ``row_step⊙o + col_step⊙j``."""
    J = np.asarray(J)
    rows, cols = tuple(rows), tuple(cols)
    if len(rows) != len(cols) or J.shape != (int(np.prod(rows)), int(np.prod(cols))):
        raise invalid("J.shape", J.shape, f"expected (prod(rows), prod(cols)) for {rows}, {cols}")
    d = len(rows)
    o = np.indices(rows).reshape(d, -1, 1)
    j = np.indices(cols).reshape(d, 1, -1)
    a = np.broadcast_to(row_step, (d,)).reshape(d, 1, 1)
    b = np.broadcast_to(col_step, (d,)).reshape(d, 1, 1)
    key = a * o + b * j  # (d, P, Q)
    key = key - key.min(axis=(1, 2), keepdims=True)
    flat = np.ravel_multi_index(tuple(key), tuple(key.max(axis=(1, 2)) + 1))
    _, inverse = np.unique(flat.ravel(), return_inverse=True)
    representative = np.empty(inverse.max() + 1, dtype=J.dtype)
    representative[inverse] = J.ravel()
    return bool(np.array_equal(J.ravel(), representative[inverse]))


def is_toeplitz(J: np.ndarray, stride: int | Sequence[int] = 1, dilation: int | Sequence[int] = 1,
                *, rows: Sequence[int] | None = None, cols: Sequence[int] | None = None) -> bool:
    """True when ``J[o, j]`` depends only on ``dilation·j − stride·o``.

    With stride = dilation = 1 that is "constant along every diagonal".  ``rows`` and ``cols``
    give the multi-index shapes behind the flat row and column indices (default 1-d); in 2-d
    a row-major Toeplitz matrix is block Toeplitz with Toeplitz blocks.  ∂y/∂x passes with the
    conv's stride and ``dilation=1`` (its dilation shows as zeros inside the band); ∂y/∂k
    passes with its columns reversed (``J[:, ::-1]``) and the conv's stride and dilation.
    The comparison is exact: Jacobians built from basis vectors carry no rounding.
    """
    rows = (J.shape[0],) if rows is None else rows
    cols = (J.shape[1],) if cols is None else cols
    return _constant_along(J, rows, cols, np.negative(stride), dilation)


def is_hankel(J: np.ndarray, stride: int | Sequence[int] = 1, dilation: int | Sequence[int] = 1,
              *, rows: Sequence[int] | None = None, cols: Sequence[int] | None = None) -> bool:
    """True when ``J[o, j]`` depends only on ``stride·o + dilation·j`` (anti-diagonals for 1, 1).

    ∂y/∂k in the correlation convention passes with the conv's stride and dilation.  ``rows``
    and ``cols`` as for :func:`is_toeplitz`.
    """
    rows = (J.shape[0],) if rows is None else rows
    cols = (J.shape[1],) if cols is None else cols
    return _constant_along(J, rows, cols, stride, dilation)


def _single(x: np.ndarray, w: np.ndarray, spec: ConvSpec) -> tuple[tuple[int, ...], ...]:
    """Validate a one-sample, one-channel, one-filter case; return (S, K, O) spatial shapes."""
    if x.shape[:2] != (1, 1) or w.shape[:2] != (1, 1) or spec.groups != 1:
        raise invalid("x.shape, w.shape", (x.shape, w.shape),
                      "expected one sample, one channel, one filter: (1, 1, S…), (1, 1, K…)")
    out = output_shape(x.shape, w.shape, spec)[2:]
    return x.shape[2:], w.shape[2:], out


def _kernel_matrix(x_pad: np.ndarray, spec: ConvSpec, taps: tuple, out: tuple) -> np.ndarray:
    """``M[o, t] = x_pad[s·o + r·t]`` by indexing, for a spatial-only ``x_pad``."""
    d = spec.dims
    o, t = np.indices(out).reshape(d, -1, 1), np.indices(taps).reshape(d, 1, -1)
    s, r = (np.reshape(v, (d, 1, 1)) for v in (spec.stride, spec.dilation))
    return x_pad[tuple(s * o + r * t)]


def _input_matrix(k: np.ndarray, spec: ConvSpec, size: tuple, out: tuple) -> np.ndarray:
    """``M[o, i] = k[(i + lo − s·o) / r]`` where that is a tap, else 0; ``k`` spatial-only."""
    d = spec.dims
    o, i = np.indices(out).reshape(d, -1, 1), np.indices(size).reshape(d, 1, -1)
    s, r = (np.reshape(v, (d, 1, 1)) for v in (spec.stride, spec.dilation))
    lo = np.reshape([p[0] for p in spec.padding], (d, 1, 1))
    taps = np.reshape(k.shape, (d, 1, 1))
    tap, rest = np.divmod(i + lo - s * o, r)
    on_band = np.all((rest == 0) & (tap >= 0) & (tap < taps), axis=0)
    return np.where(on_band, k[tuple(np.clip(tap, 0, taps - 1))], 0.0)


def _value(values: Sequence[int]) -> int | tuple[int, ...]:
    """One number when every axis has the same value, else the per-axis tuple."""
    return values[0] if len(set(values)) == 1 else tuple(values)


def _term(values: Sequence[int], symbol: str) -> str:
    value = _value(values)
    return symbol if value == 1 else f"{value}·{symbol}"


def _structure_sentence(spec: ConvSpec, holds: bool) -> str:
    """The index formulas of ∂y/∂k and ∂y/∂x, and the structure they give, in words."""
    s, r = spec.stride, spec.dilation
    window = f"{_term(s, 'o')} + {_term(r, 't')}"
    lows = {lo for lo, _ in spec.padding}
    shift = "" if lows == {0} else f" + {lows.pop()}" if len(lows) == 1 else " + lo"
    tap = f"i{shift} − {_term(s, 'o')}"
    tap = tap if set(r) == {1} else f"({tap}) / {_value(r)}"
    plain = set(s) == set(r) == {1}
    kernel = ("along anti-diagonals: a Hankel matrix of x" if plain
              else "a Hankel matrix of x_pad with strided rows and dilated columns")
    rows = "" if set(s) == {1} else f" (stride {_value(s)} keeps its rows at {_term(s, 'o')})"
    k_r = "k" if set(r) == {1} else "k↑r (r − 1 zeros between taps)"
    pairs = (" In 2-d, o, t and i are index pairs in row-major order and the same holds per"
             " axis: block matrices whose blocks have that structure.") if spec.dims > 1 else ""
    return (
        f"∂y/∂k[o, t] = x_pad[{window}]: row o is the window of x that output o sees; "
        f"constant wherever {window} is, {kernel} (Toeplitz once the taps are numbered "
        f"backwards, the convolution convention). ∂y/∂x[o, i] = k[{tap}], 0 off the band: "
        f"constant wherever i − {_term(s, 'o')} is, a banded Toeplitz matrix of {k_r}{rows}."
        f"{pairs} Verified entry by entry against x_pad and k: {'yes' if holds else 'NO'}."
    )


def toeplitz_structure(x: np.ndarray, w: np.ndarray, spec: ConvSpec) -> tuple[str, bool]:
    """State and verify the structure of ∂y/∂k and ∂y/∂x for a one-channel case.

    Parameters
    ----------
    x : (1, 1, S…)
    w : (1, 1, K…)
    spec : ConvSpec with groups = 1

    Returns
    -------
    sentence : str
        The two index formulas and what they make of each matrix.
    holds : bool
        Whether both Jacobians equal the matrices built by indexing x_pad and k with those
        formulas, and have the stated (strided) Hankel / Toeplitz structure.
    """
    x, w = np.asarray(x), np.asarray(w)
    size, taps, out = _single(x, w, spec)
    x_pad = np.pad(x[0, 0], spec.padding)
    J_k, J_x = kernel_jacobian(x, spec, w.shape), input_jacobian(w, spec, x.shape)
    holds = (
        np.array_equal(J_k, _kernel_matrix(x_pad, spec, taps, out))
        and np.array_equal(J_x, _input_matrix(w[0, 0], spec, size, out))
        and is_hankel(J_k, spec.stride, spec.dilation, rows=out, cols=taps)
        and is_toeplitz(J_k[:, ::-1], spec.stride, spec.dilation, rows=out, cols=taps)
        and is_toeplitz(J_x, spec.stride, 1, rows=out, cols=size)
    )
    return _structure_sentence(spec, bool(holds)), bool(holds)
