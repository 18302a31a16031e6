"""Finite differences: gradients and directional derivatives of a scalar function, numerically.

Methods (``h`` the step, u the unit roundoff of the working dtype, ε the error of one
evaluation of f):

============== ===================================================== =============== ===========
method         formula                                               truncation      round-off
============== ===================================================== =============== ===========
central        (f(x+h) − f(x−h)) / 2h                                O(h²)           ε/h
four-point     (−f(x+2h) + 8f(x+h) − 8f(x−h) + f(x−2h)) / 12h        O(h⁴)           1.5ε/h
richardson     (4·D(h/2) − D(h)) / 3, D the central difference       O(h⁴), estimate 3ε/h
complex-step   Im f(x + i·h) / h                                     O(h²)           ε (none/h)
============== ===================================================== =============== ===========

Steps (after :mod:`scipy.optimize._numdiff`): for a general smooth f the step balances
truncation against round-off, ``h = u^(1/3)·max(1, |x|)`` for central and Richardson,
``u^(1/5)·max(1, |x|)`` for four-point; the complex step has no subtraction, so
``h = 2^-66·max(1, |x|)`` makes its truncation negligible.  When f is known to be **linear**
in x (a convolution, in x or in w separately), every difference rule is exact for any h:
there is no truncation, and the round-off ε/h shrinks as h grows, so the step is taken of the
order of the data, ``h = 2^ceil(log2 max|x|)``.  (A tiny absolute step on a float32 linear map
leaves about ε/h ≈ 1e-7·|L|/1e-6 ≈ 10 % error from cancellation alone.)

Steps are powers of two and stencil offsets are ±1, ±2, ±1/2 times h, so the only rounding in
forming a point is that of ``x_j + a·h`` itself, ≤ u·|x_j + a·h|; it is part of the round-off
estimate returned with every derivative.

The function f is *batched*: ``f(points)`` maps an array of points (B, *x.shape) to their
values (B,).  :func:`batched` wraps a one-point function with a loop over the batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from gradcheck.errors import invalid, invalid_type
from gradcheck.tolerance import unit_roundoff

BatchedFunction = Callable[[np.ndarray], np.ndarray]

METHODS = ("central", "four-point", "richardson", "complex-step")

#: (offsets a_k, coefficients c_k): derivative ≈ Σ_k c_k·f(x + a_k·h·d) / h.
_STENCILS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "central": ((1.0, -1.0), (0.5, -0.5)),
    "four-point": ((2.0, 1.0, -1.0, -2.0), (-1 / 12, 8 / 12, -8 / 12, 1 / 12)),
    "richardson": ((1.0, -1.0, 0.5, -0.5), (-1 / 6, 1 / 6, 4 / 3, -4 / 3)),
}

#: Default memory for one batch of perturbed points.
DEFAULT_CHUNK_BYTES = 64 * 2**20


@dataclass(frozen=True)
class Derivative:
    """Numerical derivatives with their own error estimates.

    Attributes
    ----------
    value : ndarray
        The derivatives (the gradient, shaped like x, or one per direction).
    truncation : ndarray
        Estimated truncation error per entry; exactly 0 where f is declared linear.
    roundoff : ndarray
        Bound on the round-off per entry: Σ_k |c_k|·(ε_k + u·|x_j + a_k·h|·|value|) / h, ε_k the
        evaluation error bound of f at point k (0 when none was supplied).
    step : ndarray
        The step h used per entry.
    method : str
    """

    value: np.ndarray
    truncation: np.ndarray
    roundoff: np.ndarray
    step: np.ndarray
    method: str

    @property
    def error(self) -> np.ndarray:
        """Total error bound: truncation + round-off."""
        return self.truncation + self.roundoff


def batched(f: Callable[[np.ndarray], float]) -> BatchedFunction:
    """Wrap a one-point scalar function as a batched one (one call per point)."""

    def f_batched(points: np.ndarray) -> np.ndarray:
        return np.array([f(point) for point in points])

    return f_batched


def _check_method(method: str) -> str:
    if method not in METHODS:
        raise invalid("method", method, f"expected one of {METHODS}")
    return method


def step_size(
    method: str, x: np.ndarray | float, dtype: np.dtype | type, *, linear: bool = False
) -> np.ndarray:
    """The step h for each entry of ``x``, a power of two (see the module docstring).

    Parameters
    ----------
    method : {"central", "four-point", "richardson", "complex-step"}
    x : ndarray or float
        The point (entrywise steps) or one scale.
    dtype : working dtype, whose unit roundoff u sets the step
    linear : bool
        f is linear in x: take ``h = 2^ceil(log2 max|x|)`` (exact differences, least round-off).
    """
    _check_method(method)
    u = unit_roundoff(dtype)
    magnitude = np.abs(np.asarray(x, dtype=np.float64))
    if linear:
        scale = np.full(magnitude.shape, max(float(magnitude.max(initial=0.0)), 1e-300))
        return np.exp2(np.ceil(np.log2(scale)))
    relative = {"central": u ** (1 / 3), "richardson": u ** (1 / 3),
                "four-point": u ** (1 / 5), "complex-step": 2.0**-66}[method]
    return np.exp2(np.round(np.log2(relative * np.maximum(1.0, magnitude))))


def _evaluate(f: BatchedFunction, points: np.ndarray) -> np.ndarray:
    values = np.asarray(f(points))
    if values.shape != (points.shape[0],):
        raise invalid(
            "f", f"returned shape {values.shape}", f"expected one value per point: ({len(points)},)"
        )
    return values


def _derivative_batch(
    f: BatchedFunction,
    points_at: Callable[[complex], np.ndarray],
    step: np.ndarray,
    method: str,
    magnitude: np.ndarray,
    error_bound: BatchedFunction | None,
    u: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One batch: value, truncation estimate and round-off bound per perturbation."""
    if method == "complex-step":
        points = points_at(1j)
        value = _evaluate(f, points).imag / step
        eps = 0.0 if error_bound is None else error_bound(points)
        # No subtraction: only the evaluation's own relative error, and truncation
        # h²·f'''/6 with h = 2^-66·max(1, |x|) is below u for any f of moderate curvature.
        return value, np.zeros(value.shape), eps / step
    offsets, coefficients = _STENCILS[method]
    samples, errors = [], []
    for a in offsets:
        points = points_at(a)
        samples.append(_evaluate(f, points))
        errors.append(0.0 if error_bound is None else error_bound(points))
    value = sum(c * s for c, s in zip(coefficients, samples)) / step
    roundoff = sum(
        abs(c) * (e + u * (magnitude + abs(a) * step) * np.abs(value))
        for a, c, e in zip(offsets, coefficients, errors)
    ) / step
    if method == "central":
        truncation = np.zeros(value.shape)  # exact when linear; the caller's estimate otherwise
    elif method == "four-point":
        central = (samples[1] - samples[2]) / (2 * step)
        truncation = np.abs(value - central)  # error of the lower-order rule: conservative
    else:
        half = (samples[2] - samples[3]) / step
        truncation = np.abs(value - half)
    return value, truncation, roundoff


def _chunk_size(x: np.ndarray, points_per_entry: int, chunk_bytes: int) -> int:
    per_point = max(x.nbytes, 1) * (2 if np.iscomplexobj(x) else 1)
    return max(1, chunk_bytes // (per_point * points_per_entry))


def numeric_gradient(
    f: BatchedFunction,
    x: np.ndarray,
    *,
    method: str = "central",
    linear: bool = False,
    error_bound: BatchedFunction | None = None,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> Derivative:
    """Full numerical gradient of a scalar f: one perturbation per entry of x.

    Parameters
    ----------
    f : batched function, (B, *x.shape) -> (B,)
        For a VJP check, ``f(x) = ⟨δ, y(x)⟩``, whose gradient is ``Jᵀδ``.
    x : ndarray
        The point; its dtype is the working dtype (complex for the complex step).
    method : {"central", "four-point", "richardson", "complex-step"}
    linear : bool
        f is linear in x (h of the data's order, no truncation).  Only a declaration:
        a wrong declaration gives wrong numbers.
    error_bound : batched function, optional
        Bound on the absolute rounding error of each evaluation of f, for the round-off term.
    chunk_bytes : int
        Memory cap of one batch of perturbed points; batches are evaluated one after another.

    Returns
    -------
    Derivative
        value shaped like x.
    """
    method = _check_method(method)
    if not isinstance(x, np.ndarray):
        raise invalid_type("x", x, "expected a numpy array")
    work = x.astype(np.result_type(x, 1j) if method == "complex-step" else x.dtype)
    flat = work.reshape(-1)
    steps = step_size(method, x.real, x.dtype, linear=linear).reshape(-1).astype(x.real.dtype)
    steps = steps.astype(np.float64)
    magnitude = np.abs(x).reshape(-1).astype(np.float64)
    u = unit_roundoff(x.real.dtype)
    results = []
    size = flat.size
    chunk = _chunk_size(x, len(_STENCILS.get(method, ((1,), ()))[0]), chunk_bytes)
    for start in range(0, size, chunk):
        index = np.arange(start, min(start + chunk, size))
        h = steps[index]

        def points_at(a: complex, index: np.ndarray = index, h: np.ndarray = h) -> np.ndarray:
            points = np.repeat(flat[None, :], len(index), axis=0)
            points[np.arange(len(index)), index] += (a * h).astype(points.dtype)
            return points.reshape((len(index), *x.shape))

        results.append(
            _derivative_batch(f, points_at, h, method, magnitude[index], error_bound, u)
        )
    value, truncation, roundoff = (np.concatenate(parts) for parts in zip(*results))
    shape = x.shape
    return Derivative(
        value.reshape(shape), truncation.reshape(shape), roundoff.reshape(shape),
        steps.reshape(shape), method,
    )


def directional_derivatives(
    f: BatchedFunction,
    x: np.ndarray,
    directions: np.ndarray,
    *,
    method: str = "central",
    linear: bool = False,
    error_bound: BatchedFunction | None = None,
) -> Derivative:
    """Derivatives ``⟨∇f(x), v_b⟩`` along each direction v_b, one batched call per offset.

    Parameters
    ----------
    f : batched function, (B, *x.shape) -> (B,)
    x : ndarray
    directions : (B, *x.shape)
        The directions; each is scaled so that its largest entry is 1 before stepping.
    method, linear, error_bound
        As for :func:`numeric_gradient`.

    Returns
    -------
    Derivative
        value of shape (B,): the derivative along the *unscaled* directions.
    """
    method = _check_method(method)
    directions = np.asarray(directions)
    if directions.shape[1:] != x.shape:
        raise invalid(
            "directions", f"shape {directions.shape}", f"expected (B, *x.shape) = (B, *{x.shape})"
        )
    norms = np.abs(directions).reshape(len(directions), -1).max(axis=1)
    if np.any(norms == 0):
        raise invalid("directions", "a zero direction", "every direction must be non-zero")
    unit = directions / norms.reshape((-1,) + (1,) * x.ndim)
    work = x.astype(np.result_type(x, 1j) if method == "complex-step" else x.dtype)
    scale = step_size(method, float(np.abs(x).max(initial=0.0)), x.real.dtype, linear=linear)
    h = np.full(len(directions), float(scale))
    magnitude = np.full(len(directions), float(np.abs(x).max(initial=0.0)))
    u = unit_roundoff(x.real.dtype)

    def points_at(a: complex) -> np.ndarray:
        return work[None] + (a * h).reshape((-1,) + (1,) * x.ndim) * unit

    value, truncation, roundoff = _derivative_batch(
        f, points_at, h, method, magnitude, error_bound, u
    )
    return Derivative(value * norms, truncation * norms, roundoff * norms, h, method)
