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
``u^(1/5)·max(1, |x|)`` for four-point.  Richardson's own O(h⁴) truncation would allow
u^(1/5) too, but the error estimate it reports, ``|R − D(h/2)|`` (the error of the central
difference it improves on, ≈ h²·|f‴|/24), is what enters the tolerance: at u^(1/3) that
estimate stays near u^(2/3), at u^(1/5) it would grow to u^(2/5) and blunt the check.  The
complex step has no subtraction, so
``h = 2^-66·max(1, |x|)`` makes its truncation negligible.  When f is known to be **linear**
in x (a convolution, in x or in w separately), every difference rule is exact for any h:
there is no truncation, and the round-off ε/h shrinks as h grows, so the step is taken of the
order of the data, ``h = 2^ceil(log2 max|x|)``.  (A tiny absolute step on a float32 linear map
leaves about ε/h ≈ 1e-7·|L|/1e-6 ≈ 10 % error from cancellation alone.)

Steps are powers of two and stencil offsets are ±1, ±2, ±1/2 times h, so the only rounding in
forming a point is that of ``x_j + a·h`` itself, ≤ u·|x_j + a·h|; it is part of the round-off
estimate returned with every derivative.

The function f is *batched*: ``f(points)`` maps an array of points (B, *x.shape) to their
values (B,) — or, for :func:`directional_derivatives` and :func:`compressed_differences`, to
vectors (B, …).  :func:`batched` wraps a one-point function with a loop over the batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from gradcheck.errors import invalid, invalid_type
from gradcheck.floating import unit_roundoff

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


def reach(method: str) -> float:
    """The largest |offset| of the method's stencil, in steps (2 for four-point, else 1)."""
    offsets = _STENCILS.get(_check_method(method), ((1.0,), ()))[0]
    return max(abs(a) for a in offsets)


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


def _evaluate(f: BatchedFunction, points: np.ndarray, scalar: bool) -> np.ndarray:
    values = np.asarray(f(points))
    if values.shape[:1] != (len(points),) or (scalar and values.ndim != 1):
        expected = f"({len(points)},)" if scalar else f"({len(points)}, …)"
        raise invalid("f", f"returned shape {values.shape}",
                      f"expected one value per point: {expected}")
    return values


def _derivative_batch(
    f: BatchedFunction,
    points_at: Callable[[complex], np.ndarray],
    step: np.ndarray,
    method: str,
    point_error: Callable[[complex, np.ndarray], np.ndarray] | None,
    error_bound: BatchedFunction | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One batch: value, truncation estimate and round-off bound per perturbation.

    Every stencil point of the batch goes to ``f`` in one call (offsets stacked along the batch
    axis), and to ``error_bound`` in one call; f may be vector-valued, (B, …).
    ``point_error(a, value)`` bounds the effect on f of rounding the points ``x + a·h·d``
    (None: ``error_bound`` already includes it).
    """
    offsets, coefficients = _STENCILS.get(method, ((1j,), (1.0,)))
    stacked = np.concatenate([points_at(a) for a in offsets])
    count = len(step)
    samples = _evaluate(f, stacked, point_error is not None)
    samples = samples.reshape(len(offsets), count, *samples.shape[1:])
    if error_bound is None:
        errors = np.zeros(samples.shape)
    else:
        errors = np.asarray(error_bound(stacked), dtype=np.float64)
        if errors.shape != (len(stacked), *samples.shape[2:]):
            errors = np.broadcast_to(errors, (len(stacked), *samples.shape[2:]))
        errors = errors.reshape(samples.shape)
    step = step.reshape((-1,) + (1,) * (samples.ndim - 2))
    if method == "complex-step":
        # No subtraction: only the evaluation's own relative error, and truncation
        # h²·f'''/6 with h = 2^-66·max(1, |x|) is below u for any f of moderate curvature.
        # Forming x + i·h·d is exact (the imaginary part is a power of two times d).
        value = samples[0].imag / step
        return value, np.zeros(np.shape(value)), errors[0] / step
    value = sum(c * s for c, s in zip(coefficients, samples)) / step
    roundoff = sum(
        abs(c) * (e + (0.0 if point_error is None else point_error(a, value)))
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


def _chunk_size(point_bytes: int, points_per_entry: int, chunk_bytes: int) -> int:
    """Perturbations per batch so that the batch's points take at most ``chunk_bytes``."""
    return max(1, chunk_bytes // (max(point_bytes, 1) * points_per_entry))


def numeric_gradient(
    f: BatchedFunction,
    x: np.ndarray,
    *,
    method: str = "central",
    linear: bool = False,
    error_bound: BatchedFunction | None = None,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    point_bytes: int | None = None,
    step: float | None = None,
) -> Derivative:
    """Full numerical gradient of a scalar f: one perturbation per entry of x.

    Parameters
    ----------
    f : batched function, (B, *x.shape) -> (B,)
        For a VJP check, ``f(x) = ⟨δ, y(x)⟩``, whose gradient is ``Jᵀδ``.  It receives every
        stencil point of a batch of perturbations in one call.
    x : ndarray
        The point; its dtype is the working dtype (complex for the complex step).
    method : {"central", "four-point", "richardson", "complex-step"}
    linear : bool
        f is linear in x (h of the data's order, no truncation).  Only a declaration:
        a wrong declaration gives wrong numbers.
    error_bound : batched function, optional
        Bound on the absolute rounding error of each evaluation of f, for the round-off term.
        (The rounding of forming ``x_j + a·h`` is added here: ``u·|x_j + a·h|·|value|``.)
    chunk_bytes : int
        Memory cap of one batch of perturbed points; batches are evaluated one after another.
    point_bytes : int, optional
        Memory f needs per point (the point and, say, its output); default ``x.nbytes``.
        A batch holds ``chunk_bytes // (point_bytes · stencil points)`` perturbations.
    step : float, optional
        One step h for every entry, overriding the rule above: for f known to be linear on
        the box ``|Δ| <= reach(method)·h`` around x (max pooling inside its margin), declared
        with ``linear=True``.

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
    steps = (step_size(method, x.real, x.dtype, linear=linear) if step is None
             else np.full(x.shape, float(step))).reshape(-1).astype(np.float64)
    magnitude = np.abs(x).reshape(-1).astype(np.float64)
    u = unit_roundoff(x.real.dtype)
    results = []
    size = flat.size
    per_point = work.nbytes if point_bytes is None else point_bytes
    chunk = _chunk_size(per_point, len(_STENCILS.get(method, ((1,), ()))[0]), chunk_bytes)
    for start in range(0, size, chunk):
        index = np.arange(start, min(start + chunk, size))
        h = steps[index]

        def points_at(a: complex, index: np.ndarray = index, h: np.ndarray = h) -> np.ndarray:
            points = np.repeat(flat[None, :], len(index), axis=0)
            points[np.arange(len(index)), index] += (a * h).astype(points.dtype)
            return points.reshape((len(index), *x.shape))

        def point_error(a: complex, value: np.ndarray, index: np.ndarray = index,
                        h: np.ndarray = h) -> np.ndarray:
            return u * (magnitude[index] + abs(a) * h) * np.abs(value)

        results.append(_derivative_batch(f, points_at, h, method, point_error, error_bound))
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
    step: float | None = None,
) -> Derivative:
    """Derivatives ``J_f(x)·v_b`` along each direction v_b, every stencil point in one call.

    Parameters
    ----------
    f : batched function, (B, *x.shape) -> (B,) or (B, …)
        Scalar (the derivative is ``⟨∇f(x), v_b⟩``) or vector-valued (``J·v_b``).
    x : ndarray
    directions : (B, *x.shape)
        The directions, cast to x's real dtype (compare with ``⟨∇f, v⟩`` for the cast v); each
        is divided by the power of two ``2^ceil(log2 max|v_b|)`` (exactly, so that its largest
        entry lies in (1/2, 1]) before stepping, so ``a·h·v`` is exact and forming a point
        rounds once.
    method, linear
        As for :func:`numeric_gradient`; the step is one for all directions, from ``max|x|``.
    error_bound : batched function, optional
        Bound on ``|fl(f(p)) − f(x + a·h·v)|`` at each computed point ``p = fl(x + a·h·v)``
        (one per point, or per output entry for a vector f): the evaluation's own rounding
        **and** the effect of rounding the point, whose entries are each off by at most
        ``u·|p_j|`` — for f with ``|∇f| <= B`` entrywise, add ``u·⟨B, |p|⟩``.  (Unlike a
        one-entry perturbation, every entry of a direction is rounded, and only the caller
        knows B.)  Without it the round-off is reported as 0.
    step : float, optional
        One step h overriding the rule above (see :func:`numeric_gradient`); the directions
        are scaled so that ``max|v| <= 1``, so no entry moves by more than ``reach·h``.

    Returns
    -------
    Derivative
        value of shape (B,) (or (B, …)): the derivative along the *unscaled* directions.

    Notes
    -----
    When f is affine along each line ``x + t·v`` (declared by ``linear=True``), every rule
    is exact for any h; when f is a quadratic polynomial along the line (a bilinear form, say
    perturbing both factors at once), the symmetric rules still are: their odd stencils cancel
    the ``t²`` term.
    """
    method = _check_method(method)
    directions = np.asarray(directions)
    if directions.shape[1:] != x.shape:
        raise invalid(
            "directions", f"shape {directions.shape}", f"expected (B, *x.shape) = (B, *{x.shape})"
        )
    largest = np.abs(directions).reshape(len(directions), -1).max(axis=1)
    if np.any(largest == 0):
        raise invalid("directions", "a zero direction", "every direction must be non-zero")
    norms = np.exp2(np.ceil(np.log2(largest)))  # powers of two: scaling is exact
    unit = (directions / norms.reshape((-1,) + (1,) * x.ndim)).astype(x.real.dtype)
    work = x.astype(np.result_type(x, 1j) if method == "complex-step" else x.dtype)
    scale = float(step_size(method, float(np.abs(x).max(initial=0.0)), x.real.dtype,
                            linear=linear)) if step is None else float(step)
    h = np.full(len(directions), scale)

    def points_at(a: complex) -> np.ndarray:
        shift = (a * scale) * unit  # a power of two times v: exact in v's dtype
        return (work[None] + shift).astype(work.dtype, copy=False)

    value, truncation, roundoff = _derivative_batch(f, points_at, h, method, None, error_bound)
    norms = norms.reshape((-1,) + (1,) * (value.ndim - 1))
    return Derivative(value * norms, truncation * norms, roundoff * norms, h, method)


def compressed_differences(
    f: BatchedFunction,
    x: np.ndarray,
    colors: np.ndarray,
    *,
    method: str = "central",
    linear: bool = False,
    error_bound: BatchedFunction | None = None,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    point_bytes: int | None = None,
) -> Iterator[tuple[np.ndarray, Derivative]]:
    """Jacobian columns summed over each color class: ``J·1_k`` for ``k = 0 … K − 1``.

    Curtis, Powell and Reid (1974): when no output depends on two entries of the same color,
    the column sum ``J·1_k`` holds each of those columns on its own rows, so K perturbations
    give the whole Jacobian of a sparse f (the caller knows the rows; see
    :mod:`gradcheck.explain.jacobian`).  Each class is one direction for
    :func:`directional_derivatives` (its indicator ``1_k``), so every stencil point of a batch
    of classes goes to f in one call.

    Parameters
    ----------
    f : batched function, (B, *x.shape) -> (B, …), vector-valued
    x : ndarray
    colors : int array, x.shape
        The class of each entry, ``0 … K − 1``; every class must be non-empty.
    method, linear, error_bound
        As for :func:`directional_derivatives`.
    chunk_bytes, point_bytes
        As for :func:`numeric_gradient` (count the output in ``point_bytes``).

    Yields
    ------
    (classes, Derivative)
        The classes of one batch and ``J·1_k`` for each, value (len(classes), …).
    """
    colors = np.asarray(colors)
    if colors.shape != x.shape or colors.dtype.kind not in "iu":
        raise invalid("colors", f"{colors.dtype} array of shape {colors.shape}",
                      f"expected integers shaped like x: {x.shape}")
    count = int(colors.max(initial=-1)) + 1
    per_point = x.nbytes if point_bytes is None else point_bytes
    chunk = _chunk_size(per_point, len(_STENCILS.get(method, ((1,), ()))[0]), chunk_bytes)
    for start in range(0, count, chunk):
        classes = np.arange(start, min(start + chunk, count))
        indicators = colors[None] == classes.reshape((-1,) + (1,) * x.ndim)
        yield classes, directional_derivatives(
            f, x, indicators.astype(x.real.dtype), method=method, linear=linear,
            error_bound=error_bound,
        )
