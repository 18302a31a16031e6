"""Compare analytic convolution gradients with independent witnesses, under derived bounds.

Three witnesses, each independent of the direct formulas in :mod:`gradcheck.conv`:

* **finite differences** of ``L = ⟨δ, y⟩`` — the forward pass only, never the backward;
* the **Fourier identity** (:mod:`gradcheck.fourier`) — the convolution theorem;
* the **adjoint identity** ``⟨u, J v⟩ = ⟨Jᵀu, v⟩`` — forward against backward, any size.

Every comparison is entrywise, ``|analytic − witness| <= bound``, where the bound is the sum
of the analytic side's rounding bound (:mod:`gradcheck.tolerance`: ``γ_n·Σ|terms|``) and the
witness's own error bound.  Results are frozen :class:`CheckResult`s; :func:`raise_on_failure`
turns a failed one into :class:`GradientMismatch`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from gradcheck import fourier
from gradcheck.conv import conv_backward, conv_forward
from gradcheck.errors import GradientMismatch, invalid
from gradcheck.numeric import BatchedFunction, numeric_gradient
from gradcheck.problem import ConvProblem
from gradcheck.result import CheckResult, Comparison, compare_arrays
from gradcheck.tolerance import gamma

Forward = Callable[..., np.ndarray]
Backward = Callable[..., tuple[Any, Any, Any]]
Gradients = tuple[np.ndarray, np.ndarray, "np.ndarray | None"]

ANALYTIC_TOLERANCE = (
    "analytic side γ_n·Σ|terms| (n = terms per entry, via the backward on |δ|, |x|, |w|)"
)


def _terms(problem: ConvProblem) -> dict[str, int]:
    """Number of products summed into one entry of each gradient."""
    p = problem
    kernel_taps = int(np.prod(p.w.shape[2:]))
    outputs_per_filter = p.dy.shape[0] * int(np.prod(p.dy.shape[2:]))
    return {
        "dx": (p.w.shape[0] // p.spec.groups) * kernel_taps,
        "dw": outputs_per_filter,
        "db": outputs_per_filter,
        "y": p.w.shape[1] * kernel_taps + 1,
    }


def absolute_gradients(problem: ConvProblem) -> Gradients:
    """``Σ|terms|`` of each gradient entry: the backward applied to |δ|, |x|, |w| (float64)."""
    p = problem
    dx, dw, _ = conv_backward(
        np.abs(p.dy).astype(np.float64), np.abs(p.x).astype(np.float64),
        np.abs(p.w).astype(np.float64), None, p.spec,
    )
    spatial = tuple(range(2, p.dy.ndim))
    db = None if p.b is None else np.abs(p.dy).astype(np.float64).sum(axis=(0, *spatial))
    return dx, dw, db


def analytic_bounds(problem: ConvProblem, dtype: np.dtype | None = None) -> Gradients:
    """Entrywise rounding bounds ``γ_n·Σ|terms|`` of a correct backward computed in ``dtype``."""
    dtype = problem.dtype if dtype is None else dtype
    terms = _terms(problem)
    abs_dx, abs_dw, abs_db = absolute_gradients(problem)
    return (
        gamma(terms["dx"], dtype) * abs_dx,
        gamma(terms["dw"], dtype) * abs_dw,
        None if abs_db is None else gamma(terms["db"], dtype) * abs_db,
    )


def _work_dtype(problem: ConvProblem, method: str) -> np.dtype:
    """Numeric side in at least float64: the witness is more precise than the witnessed."""
    base = np.result_type(problem.dtype, np.float64)
    return np.result_type(base, 1j) if method == "complex-step" else base


def _loss_functions(
    problem: ConvProblem, forward: Forward, dtype: np.dtype
) -> dict[str, tuple[np.ndarray, BatchedFunction]]:
    """``L(arg) = ⟨δ, forward(…)⟩`` as batched functions of x, w and b, in ``dtype``."""
    p = problem
    x, w, dy = p.x.astype(dtype), p.w.astype(dtype), p.dy.astype(dtype)
    b = None if p.b is None else p.b.astype(dtype)
    n, f = x.shape[0], w.shape[0]
    axes = tuple(range(1, dy.ndim + 1))

    def loss(y: np.ndarray) -> np.ndarray:  # (B, N, F, O…) -> (B,)
        return (y * dy[None]).sum(axis=axes)

    if forward is conv_forward:
        groups = p.spec.groups

        def loss_x(points: np.ndarray) -> np.ndarray:  # fold the perturbations into the batch
            y = conv_forward(points.reshape(-1, *x.shape[1:]), w, b, p.spec)
            return loss(y.reshape(len(points), n, *y.shape[1:]))

        def loss_w(points: np.ndarray) -> np.ndarray:  # fold them into the filters, per group
            count = len(points)
            stacked = points.reshape(count, groups, f // groups, *w.shape[1:]).swapaxes(0, 1)
            bias = None if b is None else np.tile(b.reshape(groups, 1, -1), (1, count, 1))
            y = conv_forward(
                x, stacked.reshape(-1, *w.shape[1:]), None if b is None else bias.reshape(-1),
                p.spec,
            )
            y = y.reshape(n, groups, count, f // groups, *y.shape[2:]).swapaxes(0, 2)
            return loss(y.swapaxes(1, 2).reshape(count, n, f, *y.shape[4:]))
    else:
        def loss_x(points: np.ndarray) -> np.ndarray:
            return np.array([loss(forward(pt, w, b, p.spec)[None])[0] for pt in points])

        def loss_w(points: np.ndarray) -> np.ndarray:
            return np.array([loss(forward(x, pt, b, p.spec)[None])[0] for pt in points])

    functions = {"dx": (x, loss_x), "dw": (w, loss_w)}
    if b is not None:
        y_without_bias = forward(x, w, None, p.spec)
        base = loss(y_without_bias[None])[0]
        summed_delta = dy.sum(axis=(0, *range(2, dy.ndim)))

        def loss_b(points: np.ndarray) -> np.ndarray:
            if forward is conv_forward:  # y = conv(x, w) + b exactly as the forward adds it
                return base + points @ summed_delta
            return np.array([loss(forward(x, w, pt, p.spec)[None])[0] for pt in points])

        functions["db"] = (b, loss_b)
    return functions


def _evaluation_bounds(
    problem: ConvProblem, dtype: np.dtype, imaginary: bool
) -> dict[str, BatchedFunction]:
    """Bound on the rounding error of one evaluation of L at a point, for each argument.

    ``L = Σ_{n,f,o} δ·(b + Σ w·x)`` is one long sum of ``m = (C/G·∏K + 1) + 1 + N·F·∏O``
    roundings deep, so ``|fl(L) − L| <= γ_m·(⟨|δ|, conv(|x|, |w|)⟩ + ⟨|δ|, |b|⟩)``; conv is
    linear in each argument, so ``⟨|δ|, conv(|x_pt|, |w|)⟩ = ⟨Σ|terms| of dx, |x_pt|⟩``.
    For the complex step only imaginary parts matter: the perturbation's own terms.
    """
    p = problem
    m = _terms(p)["y"] + 1 + p.dy.size
    g = gamma(m, dtype)
    abs_dx, abs_dw, abs_db = absolute_gradients(p)
    abs_b = 0.0 if p.b is None else float(np.abs(p.b).astype(np.float64) @ abs_db)

    def bound(weights: np.ndarray, constant: float) -> BatchedFunction:
        def evaluation_error(points: np.ndarray) -> np.ndarray:
            magnitude = np.abs(points.imag) if imaginary else np.abs(points)
            flat = magnitude.reshape(len(points), -1)
            return g * (flat @ weights.reshape(-1) + (0.0 if imaginary else constant))

        return evaluation_error

    bounds = {"dx": bound(abs_dx, abs_b), "dw": bound(abs_dw, abs_b)}
    if p.b is not None:
        bounds["db"] = bound(abs_db, _abs_forward_sum(p))
    return bounds


def _abs_forward_sum(problem: ConvProblem) -> float:
    """``⟨|δ|, conv(|x|, |w|)⟩`` — the part of L's magnitude that does not depend on b."""
    abs_dx, _, _ = absolute_gradients(problem)
    return float(np.abs(problem.x).astype(np.float64).reshape(-1) @ abs_dx.reshape(-1))


def _analytic(problem: ConvProblem, backward: Backward) -> Gradients:
    p = problem
    return backward(p.dy, p.x, p.w, p.b, p.spec)


def compare_finite_differences(
    problem: ConvProblem,
    backward: Backward = conv_backward,
    forward: Forward = conv_forward,
    *,
    method: str = "central",
    gradients: Gradients | None = None,
    numeric_dtype: np.dtype | str | None = None,
) -> CheckResult:
    """Analytic ``(dx, dw, db)`` against full-Jacobian finite differences of ``L = ⟨δ, y⟩``.

    The convolution is linear in x and in w separately (affine with the bias), so every
    difference rule is exact for any step: the step is of the data's order and the only
    numeric error is the round-off of evaluating L, bounded per point (see
    :func:`_evaluation_bounds`).  The numeric side runs in float64 (complex128 for the
    complex step) whatever the problem's dtype.

    Parameters
    ----------
    problem : ConvProblem
    backward, forward : callables
        The analytic backward and the forward it differentiates (default: the reference).
    method : {"central", "four-point", "richardson", "complex-step"}
    gradients : (dx, dw, db), optional
        Already computed analytic gradients (saves one backward).
    numeric_dtype : dtype, optional
        Working dtype of the numeric side; default float64 (complex128 for the complex step).
        A layer that accepts only float32 is differenced in float32, with float32's bounds.
    """
    dtype = _work_dtype(problem, method) if numeric_dtype is None else np.dtype(numeric_dtype)
    analytic = _analytic(problem, backward) if gradients is None else gradients
    bounds = dict(zip(("dx", "dw", "db"), analytic_bounds(problem)))
    losses = _loss_functions(problem, forward, dtype)
    evaluation = _evaluation_bounds(problem, dtype, imaginary=method == "complex-step")
    comparisons = []
    for name, value in zip(("dx", "dw", "db"), analytic):
        if name not in losses:
            continue
        point, loss = losses[name]
        numeric = numeric_gradient(
            loss, point, method=method, linear=True, error_bound=evaluation[name]
        )
        comparisons.append(
            compare_arrays(name, f"{method} differences", value, numeric.value,
                           bounds[name] + numeric.error)
        )
    return CheckResult(
        "finite-differences", tuple(comparisons),
        f"{ANALYTIC_TOLERANCE} + {method} differences' round-off (exact: L is linear in each "
        "argument, step of the data's order)",
        problem.describe(),
    )


def compare_fourier(
    problem: ConvProblem, backward: Backward = conv_backward, *, gradients: Gradients | None = None
) -> CheckResult:
    """Analytic dx and dw against the same gradients computed by the convolution theorem."""
    p = problem
    if np.iscomplexobj(p.x) or np.iscomplexobj(p.w) or np.iscomplexobj(p.dy):
        raise invalid("problem", p.describe(), "the Fourier check needs real arrays")
    analytic = _analytic(p, backward) if gradients is None else gradients
    bound_dx, bound_dw, _ = analytic_bounds(p)
    f_dx, f_dw = fourier.fourier_backward(p.dy, p.x, p.w, p.spec)
    e_dx, e_dw = fourier.fourier_error_bound(p.dy, p.x, p.w, p.spec)
    comparisons = (
        compare_arrays("dx", "Fourier identity", analytic[0], f_dx, bound_dx + e_dx),
        compare_arrays("dw", "Fourier identity", analytic[1], f_dw, bound_dw + e_dw),
    )
    return CheckResult(
        "fourier", comparisons,
        f"{ANALYTIC_TOLERANCE} + FFT error bound (Higham Thm 24.2, float64)",
        p.describe(),
    )


def compare_adjoint(
    problem: ConvProblem,
    backward: Backward = conv_backward,
    forward: Forward = conv_forward,
    *,
    seed: int = 0,
) -> CheckResult:
    """The dot-product identity ``⟨u, J v⟩ = ⟨Jᵀu, v⟩`` for x, w (and b), in the problem dtype.

    With random u (shaped like y) and v (shaped like the argument), ``J v`` is the forward
    without bias at v and ``Jᵀu`` the backward at δ = u.  Both sides are sums over the same
    products ``u·w·v`` (or ``u·v·x``), so each is within ``γ_m·T`` of the exact value, with
    ``T = ⟨|u|, conv(|v|, |w|)⟩`` and m the depth of the longer of the two summations.
    """
    p = problem
    rng = np.random.default_rng(seed)
    dtype = p.dtype

    def draw(shape: tuple[int, ...]) -> np.ndarray:
        values = rng.standard_normal(shape)
        if dtype.kind == "c":
            values = values + 1j * rng.standard_normal(shape)
        return values.astype(dtype)

    u, v_x, v_w = draw(p.dy.shape), draw(p.x.shape), draw(p.w.shape)
    terms = _terms(p)
    du_x, du_w, _ = backward(u, p.x, p.w, None, p.spec)
    comparisons = []
    for name, v, jv, jtu, n_back in (
        ("x", v_x, forward(v_x, p.w, None, p.spec), du_x, terms["dx"] + p.x.size),
        ("w", v_w, forward(p.x, v_w, None, p.spec), du_w, terms["dw"] + p.w.size),
    ):
        left = np.sum(u * jv)
        right = np.sum(np.asarray(jtu) * v)
        args = (np.abs(v), np.abs(p.w)) if name == "x" else (np.abs(p.x), np.abs(v))
        total = float(np.sum(np.abs(u) * conv_forward(*(a.astype(np.float64) for a in args),
                                                       None, p.spec)))
        bound = (gamma(terms["y"] + p.dy.size, dtype) + gamma(n_back, dtype)) * total
        comparisons.append(
            compare_arrays(f"⟨u, J_{name} v⟩", f"⟨J_{name}ᵀu, v⟩", left, right, bound)
        )
    return CheckResult(
        "adjoint", tuple(comparisons),
        "both sides within γ_m·⟨|u|, conv(|v|, |w|)⟩ of the exact value", p.describe(),
    )


def compare_transfer_function(
    problem: ConvProblem, forward: Forward = conv_forward, *, seed: int = 0
) -> CheckResult:
    """The kernel transfer function: spectrum of D_k y[k'] / conj(FFT(k'↑r)) = FFT(x_pad)."""
    p = problem
    outcome = fourier.transfer_function_check(forward, p.x, p.w, p.spec, seed=seed)
    comparison = Comparison(
        name="D_k y[k'] spectrum", witness="FFT(x_pad)", ratio=float(outcome.worst_ratio),
        max_error=float("nan"), worst_index=(), analytic=float("nan"), expected=float("nan"),
        bound=float("nan"), mismatched=0 if outcome.passed else 1, total=1,
    )
    return CheckResult("transfer-function", (comparison,), outcome.detail, p.describe())


def raise_on_failure(result: CheckResult) -> CheckResult:
    """Return ``result`` if it passed, else raise :class:`GradientMismatch` with its summary."""
    __tracebackhide__ = True
    if not result.passed:
        raise GradientMismatch(result.summary(), result)
    return result


def check_gradients(
    problem: ConvProblem,
    backward: Backward = conv_backward,
    forward: Forward = conv_forward,
    *,
    method: str = "central",
) -> tuple[CheckResult, ...]:
    """Run finite differences, Fourier and adjoint checks; raise on the first failure."""
    __tracebackhide__ = True
    gradients = _analytic(problem, backward)
    results = [compare_finite_differences(problem, backward, forward, method=method,
                                          gradients=gradients)]
    if not np.iscomplexobj(problem.x):
        results.append(compare_fourier(problem, backward, gradients=gradients))
    results.append(compare_adjoint(problem, backward, forward))
    for result in results:
        raise_on_failure(result)
    return tuple(results)
