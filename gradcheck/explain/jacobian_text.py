"""`gradcheck jacobian`: print the Jacobians of a tiny convolution and the adjoint identities.

The text answers the seed question — why ``df/dk = x × dk/dk`` seems to give an N×N identity
that does not fit — with the case given on the command line: the Jacobians as matrices
(:mod:`gradcheck.explain.jacobian`), their Toeplitz/Hankel structure, and ``Jᵀδ`` next to the
correlation ``x ⋆ δ`` and the full convolution ``δ * k`` computed independently by scipy.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence
from typing import Any

import numpy as np

from gradcheck.errors import invalid
from gradcheck.explain.jacobian import (
    _term,
    _value,
    input_jacobian,
    kernel_jacobian,
    toeplitz_structure,
)
from gradcheck.formulas.conv import conv_backward, conv_forward
from gradcheck.geometry.spec import ConvSpec

MAX_INPUT = 25  # positions: ∂y/∂x has one column per input position, and it is printed


def _upsample(a: np.ndarray, factors: Sequence[int]) -> np.ndarray:
    """``a↑f`` on a spatial-only array: f − 1 zeros between neighbouring samples."""
    up = np.zeros(tuple((n - 1) * f + 1 for n, f in zip(a.shape, factors)), dtype=a.dtype)
    up[tuple(slice(None, None, f) for f in factors)] = a
    return up


def _correlate_x_delta(x_pad: np.ndarray, delta: np.ndarray, spec: ConvSpec,
                       taps: tuple) -> np.ndarray:
    """``(x_pad ⋆ δ↑s)[r·t]`` with scipy.signal.correlate, independently of conv.py."""
    from scipy.signal import correlate

    lags = correlate(x_pad, _upsample(delta, spec.stride), mode="valid", method="direct")
    return lags[tuple(slice(0, r * (k - 1) + 1, r) for r, k in zip(spec.dilation, taps))]


def _convolve_delta_k(delta: np.ndarray, k: np.ndarray, spec: ConvSpec,
                      size: tuple) -> np.ndarray:
    """``δ↑s * k↑r`` (full convolution) cropped by the padding, with scipy.signal.convolve."""
    from scipy.signal import convolve

    full = convolve(_upsample(delta, spec.stride), _upsample(k, spec.dilation), mode="full",
                    method="direct")
    padded = np.zeros(tuple(n + lo + hi for n, (lo, hi) in zip(size, spec.padding)))
    padded[tuple(slice(0, n) for n in full.shape)] = full
    return padded[tuple(slice(lo, lo + n) for n, (lo, _) in zip(size, spec.padding))]


def _wrap(text: str, width: int = 92) -> list[str]:
    """Wrap prose without breaking a formula: no line break next to + − / ⋆ * ∘."""
    glued = re.sub(r" ([+−/⋆*∘]) ", "\xa0\\1\xa0", text)
    return [line.replace("\xa0", " ") for line in textwrap.wrap(glued, width)]


def format_number(value: float) -> str:
    return f"{float(value) + 0.0:g}"  # + 0.0 turns -0 into 0


def _grid(a: np.ndarray, indent: str = "    ") -> list[str]:
    """A 1-d or 2-d array as aligned rows of %g numbers, width 6."""
    rows = np.atleast_2d(a)
    width = max(6, *(len(format_number(v)) for v in rows.ravel()))
    return [indent + " ".join(f"{format_number(v):>{width}}" for v in row) for row in rows]


def _names(symbol: str, shape: tuple[int, ...]) -> list[str]:
    return [f"{symbol}[{','.join(map(str, index))}]" for index in np.ndindex(*shape)]


def _matrix(J: np.ndarray, row_names: list[str], col_names: list[str]) -> list[str]:
    """J as an aligned table with row and column labels."""
    width = max(6, *(len(n) for n in col_names), *(len(format_number(v)) for v in J.ravel()))
    label = max(len(n) for n in row_names)
    lines = ["    " + " " * label + " " + " ".join(f"{n:>{width}}" for n in col_names)]
    for name, row in zip(row_names, J):
        cells = " ".join(f"{format_number(v):>{width}}" for v in row)
        lines.append(f"    {name:>{label}} {cells}")
    return lines


def spec_for(d: int, kernel_size: tuple, stride: Any, padding: Any, dilation: Any) -> ConvSpec:
    """The spec for explain: an int or (lo, hi) padding applies to every axis."""
    if (isinstance(padding, Sequence) and not isinstance(padding, str) and len(padding) == 2
            and all(isinstance(v, (int, np.integer)) for v in padding)):
        padding = (tuple(padding),) * d
    return ConvSpec.create(d, stride=stride, padding=padding, dilation=dilation,
                           kernel_size=kernel_size)


def _as_values(name: str, values: Any, dims: int | None = None) -> np.ndarray:
    try:
        a = np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise invalid(name, values, "expected a 1-d or 2-d array of real numbers") from None
    if a.ndim not in (1, 2) or a.size == 0 or (dims is not None and a.ndim != dims):
        expected = "a non-empty 1-d or 2-d array" if dims is None else f"a {dims}-d array"
        raise invalid(name, values, f"expected {expected} of numbers")
    if not np.all(np.isfinite(a)):
        raise invalid(name, values, "expected finite numbers")
    return a


def _case_lines(x: np.ndarray, k: np.ndarray, spec: ConvSpec, y: np.ndarray) -> list[str]:
    d, (lo, hi) = spec.dims, spec.padding[0]
    same = all(p == spec.padding[0] for p in spec.padding)
    pad = f"({lo}, {hi})" if same else str(spec.padding)
    stride, dilation = _value(spec.stride), _value(spec.dilation)
    lines = [f"case: {d}-d, x {x.shape}, k {k.shape} -> y {y.shape}; stride {stride}, "
             f"padding {pad}, dilation {dilation}",
             "      y = x_pad ⋆ k (cross-correlation, the deep-learning convention)"]
    if d == 2:
        lines.append("positions in row-major order: x[i,j] is column i·S2 + j of ∂y/∂x")
    x_pad = np.pad(x, spec.padding)
    for name, a in (("x", x), ("x_pad", x_pad), ("k", k)):
        if name != "x_pad" or x_pad.shape != x.shape:
            lines += [f"  {name} =", *_grid(a)]
    formula = f"k[t]·x_pad[{_term(spec.stride, 'o')} + {_term(spec.dilation, 't')}]"
    return [*lines, f"  y[o] = Σ_t {formula} =", *_grid(y)]


def _random_delta(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Small nonzero integers, so that every number printed stays readable."""
    rng = np.random.default_rng(seed)
    return rng.choice([-3.0, -2.0, -1.0, 1.0, 2.0, 3.0], size=shape)


def _agree(*arrays: np.ndarray, scale: float) -> bool:
    tol = 64 * np.finfo(np.float64).eps * max(scale, 1.0)
    return all(np.allclose(arrays[0], a, rtol=0, atol=tol) for a in arrays[1:])


def _adjoint_lines(x: np.ndarray, k: np.ndarray, spec: ConvSpec, delta: np.ndarray,
                   source: str) -> list[str]:
    """Jᵀδ for the kernel and for the input, each next to its closed form and conv_backward."""
    x4, k4, d4 = x[None, None], k[None, None], delta[None, None]
    J_k, J_x = kernel_jacobian(x4, spec, k4.shape), input_jacobian(k4, spec, x4.shape)
    kernel_side = (J_k.T @ delta.ravel()).reshape(k.shape)
    input_side = (J_x.T @ delta.ravel()).reshape(x.shape)
    dx, dw, _ = conv_backward(d4, x4, k4, None, spec)
    x_corr = _correlate_x_delta(np.pad(x, spec.padding), delta, spec, k.shape)
    d_conv = _convolve_delta_k(delta, k, spec, x.shape)
    scale = float(np.abs(np.pad(x, spec.padding)).sum() + np.abs(k).sum()) * np.abs(delta).sum()
    up = "δ" if set(spec.stride) == {1} else "δ↑s"
    at = "" if set(spec.dilation) == {1} else ", read at lags r·t"
    k_r = "k" if set(spec.dilation) == {1} else "k↑r"
    verdict = {True: "yes", False: "NO"}
    return [
        f"δ = dL/dy ({source}):", *_grid(delta),
        "kernel: dL/dk = (∂y/∂k)ᵀ δ =", *_grid(kernel_side),
        f"        x ⋆ {up} (scipy.signal.correlate of x_pad with {up}{at}) =", *_grid(x_corr),
        f"        equal to rounding: {verdict[_agree(kernel_side, x_corr, dw[0, 0], scale=scale)]}"
        " (conv_backward's dw included)",
        "input:  dL/dx = (∂y/∂x)ᵀ δ =", *_grid(input_side),
        f"        {up} * {k_r} (full convolution: {up} correlated with flip({k_r}); crop) =",
        *_grid(d_conv),
        f"        equal to rounding: {verdict[_agree(input_side, d_conv, dx[0, 0], scale=scale)]}"
        " (conv_backward's dx included)",
    ]


_SEED_ANSWER = (
    "Why does df/dk = x × dk/dk give an N×N identity that does not fit? dk/dk is indeed the "
    "K×K identity, but y is not the product x × k: every output y[o] multiplies each tap k[t] "
    "by a different sample of x. So 'x ×' has to be read as the linear map 'correlate with x', "
    "and ∂y/∂k = (correlate with x) ∘ I is the {O}×{K} matrix above (shape (O, K), not an "
    "N×N identity): row o is the window of x that output o sees. It holds no k at all, because "
    "y is linear in k. Backprop applies its transpose to δ: dL/dk = (∂y/∂k)ᵀ δ = x ⋆ δ, a "
    "vector with the kernel's shape, and in the same way dL/dx = (∂y/∂x)ᵀ δ = δ * k."
)


def explain(input_values: Any, kernel_values: Any, *, stride: int | Sequence[int] = 1,
            padding: Any = 0, dilation: int | Sequence[int] = 1, delta: Any = None,
            seed: int = 0) -> str:
    """The text of ``gradcheck jacobian``: both Jacobians, their structure, Jᵀδ, the answer.

    Parameters
    ----------
    input_values : (S,) or (S1, S2) array-like
        One sample, one channel.
    kernel_values : (K,) or (K1, K2) array-like
        One filter, as many dims as the input.
    stride, dilation : int or per-dim ints
    padding : int, (lo, hi) for every axis, per-dim pairs, or 'valid' / 'same' / 'full'
    delta : array-like of y's shape, optional
        The upstream gradient δ; by default small random nonzero integers drawn with ``seed``.
    seed : int

    Returns
    -------
    str

    Raises
    ------
    InvalidArgument
        Naming the argument, e.g. a kernel whose dilated extent exceeds the padded input.
    """
    x = _as_values("input_values", input_values)
    k = _as_values("kernel_values", kernel_values, dims=x.ndim)
    spec = spec_for(x.ndim, k.shape, stride, padding, dilation)
    x4, k4 = x[None, None], k[None, None]
    y = conv_forward(x4, k4, None, spec)[0, 0]
    if delta is None:
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
            raise invalid("seed", seed, "expected an int >= 0")
        delta_values = _random_delta(y.shape, seed)
    else:
        delta_values = _as_values("delta", delta, dims=x.ndim)
        if delta_values.shape != y.shape:
            raise invalid("delta", delta, f"expected the shape of y, {y.shape}")
    structure, _ = toeplitz_structure(x4, k4, spec)
    lines = _case_lines(x, k, spec, y)
    lines += [f"∂y/∂k: shape (O, K) = ({y.size}, {k.size}), rows y[o], columns k[t]"]
    rows = _names("y", y.shape)
    lines += _matrix(kernel_jacobian(x4, spec, k4.shape), rows, _names("k", k.shape))
    lines += [f"∂y/∂x: shape (O, S) = ({y.size}, {x.size}), rows y[o], columns x[i]"]
    lines += _matrix(input_jacobian(k4, spec, x4.shape), rows, _names("x", x.shape))
    lines += _wrap(structure)
    source = "given" if delta is not None else f"random small integers, seed {seed}"
    lines += _adjoint_lines(x, k, spec, delta_values, source)
    answer = _SEED_ANSWER.format(O=y.size, K=k.size)
    return "\n".join([*lines, "", *_wrap(answer)])
