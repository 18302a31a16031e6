"""Compare analytic convolution gradients with independent witnesses, under derived bounds.

Three witnesses, each independent of the direct formulas in :mod:`gradcheck.formulas.conv`:

* **finite differences** of ``L = ⟨δ, y⟩`` — the forward pass only, never the backward: the
  full Jacobian (:func:`compare_finite_differences`, entries with disjoint outputs perturbed
  together, :mod:`gradcheck.witnesses.compressed`; at most :data:`FULL_JACOBIAN_MAX`
  perturbations) or directional derivatives along random directions (fast mode,
  :mod:`gradcheck.judge.directional`);
* the **Fourier identity** (:mod:`gradcheck.witnesses.fourier`) — the convolution theorem;
* the **adjoint identity** ``⟨u, J v⟩ = ⟨Jᵀu, v⟩`` — forward against backward, any size.

Every comparison is entrywise, ``|analytic − witness| <= bound``, where the bound is the sum
of the analytic side's rounding bound (:mod:`gradcheck.floating`: ``γ_n·Σ|terms|``; under
``rounding="normwise"`` plus each plane's FFT/Winograd bound, :mod:`gradcheck.judge.bounds`)
and the witness's own error bound.  Results are frozen :class:`CheckResult`s;
:func:`raise_on_failure` turns a failed one into :class:`GradientMismatch`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from gradcheck.errors import GradientMismatch, invalid
from gradcheck.floating import gamma
from gradcheck.formulas.conv import conv_backward, conv_forward
from gradcheck.geometry.problem import ConvProblem, term_counts
from gradcheck.judge.bounds import (
    Norms,
    analytic_bounds,
    batch_planes,
    check_rounding,
    difference_planes,
    evaluation_bound,
    forward_planes,
    input_planes,
    plane_entries,
    refuse_complex_step,
    refuse_full_jacobian,
    weight_planes,
)
from gradcheck.judge.result import CheckResult, Comparison, compare_arrays
from gradcheck.witnesses import fourier
from gradcheck.witnesses.compressed import structured_gradients
from gradcheck.witnesses.differences import numeric_gradient
from gradcheck.witnesses.evaluations import absolute_forward, paired, wb_outputs, x_outputs

Forward = Callable[..., np.ndarray]
Backward = Callable[..., tuple[Any, Any, Any]]
Gradients = tuple[np.ndarray, np.ndarray, "np.ndarray | None"]

ANALYTIC_TOLERANCE = (
    "analytic side γ_n·Σ|terms| (n = terms per entry, via the backward on |δ|, |x|, |w|)"
)


NORMWISE_TOLERANCE = (
    "each plane's FFT/Winograd bound (normwise rounding: Higham Thm 24.2, Winograd growth)"
)


def work_dtype(problem: ConvProblem, method: str) -> np.dtype:
    """Numeric side in at least float64: the witness is more precise than the witnessed."""
    base = np.result_type(problem.dtype, np.float64)
    return np.result_type(base, 1j) if method == "complex-step" else base


def _analytic(problem: ConvProblem, backward: Backward) -> Gradients:
    p = problem
    return backward(p.dy, p.x, p.w, p.b, p.spec)


def base_output(problem: ConvProblem, forward: Forward, y: np.ndarray | None) -> np.ndarray | None:
    """The forward's y at the problem's x, w, b — to check folded calls against (None for the
    reference forward, which needs no checking)."""
    if forward is conv_forward:
        return None
    p = problem
    return forward(p.x, p.w, p.b, p.spec) if y is None else y


def _numeric_one_by_one(
    problem: ConvProblem, forward: Forward, method: str, dtype: np.dtype,
    rounding: str = "entrywise",
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each gradient of L entry by entry: one perturbation per entry, one call per point."""
    p = problem
    imaginary = method == "complex-step"
    y_bytes = np.dtype(dtype).itemsize * p.dy.size
    arguments = {"x": (p.x.astype(dtype), x_outputs(p, forward, dtype, fold=False))}
    for which in ("w", "b") if p.b is not None else ("w",):
        arguments[which] = wb_outputs(p, forward, dtype, which)
    numeric = {}
    for which, (point, outputs) in arguments.items():
        derivative = numeric_gradient(
            paired(p, outputs, dtype), point, method=method, linear=True,
            error_bound=evaluation_bound(p, which, dtype, imaginary=imaginary,
                                         rounding=rounding),
            point_bytes=point.nbytes + y_bytes,
        )
        numeric["d" + which] = (derivative.value, derivative.error)
    return numeric


def compare_finite_differences(
    problem: ConvProblem,
    backward: Backward = conv_backward,
    forward: Forward = conv_forward,
    *,
    method: str = "central",
    gradients: Gradients | None = None,
    numeric_dtype: np.dtype | str | None = None,
    assume_conv: bool = True,
    y: np.ndarray | None = None,
    rounding: str = "entrywise",
) -> CheckResult:
    """Analytic ``(dx, dw, db)`` against full-Jacobian finite differences of ``L = ⟨δ, y⟩``.

    The convolution is linear in x and in w separately (affine with the bias), so every
    difference rule is exact for any step: the step is of the data's order and the only
    numeric error is the round-off of the evaluations, bounded per point.  The numeric side
    runs in float64 (complex128 for the complex step) whatever the problem's dtype.

    Every entry of x, w and b is perturbed (:func:`perturbation_count` of them, at most
    :data:`FULL_JACOBIAN_MAX`).  With ``assume_conv`` several at a time — entries that reach
    disjoint outputs (:mod:`gradcheck.witnesses.compressed`) — and x's points folded into the batch
    axis: ``2·C/G·∏min(E + s − 1, S)`` x-points in one or a few calls and
    ``2·(C/G·∏K + 1)`` calls for w and b, for central differences.  Without it, one entry per
    point and one call per point (:mod:`gradcheck.witnesses.evaluations`).

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
    assume_conv : bool
        The forward is a convolution of the problem's geometry: it treats the samples of a
        batch independently at any batch size (checked on every folded call: a forward that
        does not raises LayerError, reason "batch-dependent") and each output reads only its
        kernel window.  False: any forward, one call per perturbation.
    y : ndarray, optional
        The forward's output at the problem's x, w, b, if already computed (it is what folded
        calls are checked against; otherwise one more forward call computes it).
    rounding : {"entrywise", "normwise"}
        The rounding model of the backward and the forward (:mod:`gradcheck.judge.bounds`):
        both the analytic side's bounds and the evaluations of L follow it.

    Raises
    ------
    InvalidArgument
        More than FULL_JACOBIAN_MAX perturbations; the complex step under normwise rounding.
    """
    refuse_full_jacobian(problem)
    refuse_complex_step(check_rounding(rounding), method)
    p = problem
    dtype = work_dtype(p, method) if numeric_dtype is None else np.dtype(numeric_dtype)
    analytic = _analytic(p, backward) if gradients is None else gradients
    bounds = analytic_bounds(p, rounding=rounding)
    normwise = rounding == "normwise"
    if assume_conv:
        numeric = structured_gradients(
            p, forward, method, dtype, base_output(p, forward, y),
            planes=difference_planes(p, dtype) if normwise else None,
            batch_bound=batch_planes(p) if normwise else None)
        how = "entries with disjoint outputs perturbed together"
    else:
        numeric = _numeric_one_by_one(p, forward, method, dtype, rounding)
        how = "one entry at a time"
    comparisons = tuple(
        compare_arrays(name, f"{method} differences", value, numeric[name][0],
                       bound + numeric[name][1])
        for name, value, bound in zip(("dx", "dw", "db"), analytic, bounds)
        if name in numeric and value is not None and bound is not None
    )
    return CheckResult(
        "finite-differences", comparisons,
        f"{_analytic_tolerance(rounding)} + {method} differences' round-off (exact: y is linear "
        f"in each argument, step of the data's order; {how})",
        p.describe(),
    )


def _analytic_tolerance(rounding: str) -> str:
    if rounding == "normwise":
        return f"{ANALYTIC_TOLERANCE} + {NORMWISE_TOLERANCE}"
    return ANALYTIC_TOLERANCE


def compare_fourier(
    problem: ConvProblem, backward: Backward = conv_backward, *,
    gradients: Gradients | None = None, rounding: str = "entrywise",
) -> CheckResult:
    """Analytic dx and dw against the same gradients computed by the convolution theorem."""
    p = problem
    if np.iscomplexobj(p.x) or np.iscomplexobj(p.w) or np.iscomplexobj(p.dy):
        raise invalid("problem", p.describe(), "the Fourier check needs real arrays")
    analytic = _analytic(p, backward) if gradients is None else gradients
    bound_dx, bound_dw, _ = analytic_bounds(p, rounding=rounding)
    f_dx, f_dw = fourier.fourier_backward(p.dy, p.x, p.w, p.spec)
    e_dx, e_dw = fourier.fourier_error_bound(p.dy, p.x, p.w, p.spec)
    comparisons = (
        compare_arrays("dx", "Fourier identity", analytic[0], f_dx, bound_dx + e_dx),
        compare_arrays("dw", "Fourier identity", analytic[1], f_dw, bound_dw + e_dw),
    )
    return CheckResult(
        "fourier", comparisons,
        f"{_analytic_tolerance(rounding)} + FFT error bound (Higham Thm 24.2, float64)",
        p.describe(),
    )


def compare_adjoint(
    problem: ConvProblem,
    backward: Backward = conv_backward,
    forward: Forward = conv_forward,
    *,
    seed: int = 0,
    rounding: str = "entrywise",
) -> CheckResult:
    """The dot-product identity ``⟨u, J v⟩ = ⟨Jᵀu, v⟩`` for x, w (and b), in the problem dtype.

    With random u (shaped like y) and v (shaped like the argument), ``J v`` is the forward
    without bias at v and ``Jᵀu`` the backward at δ = u.  Both sides are sums over the same
    products ``u·w·v`` (or ``u·v·x``), so each is within ``γ_m·T`` of the exact value, with
    ``T = ⟨|u|, conv(|v|, |w|)⟩`` and m the depth of the longer of the two summations.
    Under ``rounding="normwise"`` each side adds its planes' bounds paired with the other
    vector: ``J v``'s y-planes with u, ``Jᵀu``'s gradient planes with v
    (:meth:`gradcheck.judge.bounds.PlaneErrors.paired`).
    """
    p = problem
    check_rounding(rounding)
    rng = np.random.default_rng(seed)
    dtype = p.dtype

    def draw(shape: tuple[int, ...]) -> np.ndarray:  # float32 draws: Gaussian, and quicker
        values = rng.standard_normal(shape, dtype=np.float32).astype(dtype)
        if dtype.kind == "c":
            values = values + 1j * rng.standard_normal(shape, dtype=np.float32)
        return values

    u, v_x, v_w = draw(p.dy.shape), draw(p.x.shape), draw(p.w.shape)
    terms = term_counts(p)
    du_x, du_w, _ = backward(u, p.x, p.w, None, p.spec)
    comparisons = []
    for name, v, jv, jtu, n_back in (
        ("x", v_x, forward(v_x, p.w, None, p.spec), du_x, terms["dx"] + p.x.size),
        ("w", v_w, forward(p.x, v_w, None, p.spec), du_w, terms["dw"] + p.w.size),
    ):
        left = np.sum(u * jv)
        right = np.sum(np.asarray(jtu) * v)
        first, second = (v, p.w) if name == "x" else (p.x, v)
        total = float(np.sum(np.abs(u) * conv_forward(np.abs(first).astype(np.float64),
                                                       np.abs(second).astype(np.float64),
                                                       None, p.spec)))
        bound = (gamma(terms["y"] + p.dy.size, dtype) + gamma(n_back, dtype)) * total
        if rounding == "normwise":
            bound = bound + _adjoint_planes(p, name, u, v)
        comparisons.append(
            compare_arrays(f"⟨u, J_{name} v⟩", f"⟨J_{name}ᵀu, v⟩", left, right,
                           np.asarray(bound))
        )
    return CheckResult(
        "adjoint", tuple(comparisons),
        "both sides within γ_m·⟨|u|, conv(|v|, |w|)⟩ of the exact value", p.describe(),
    )


def _adjoint_planes(problem: ConvProblem, name: str, u: np.ndarray, v: np.ndarray) -> float:
    """Normwise part of the adjoint identity's bound for argument ``name`` (x or w)."""
    p, dtype = problem, problem.dtype
    norms_u, norms_v = Norms.of(u), Norms.of(v)
    if name == "x":
        forward_side = forward_planes(p, dtype, x=norms_v).paired(norms_u)
        backward_side = input_planes(p, dtype, dy=norms_u).paired(norms_v)
    else:
        forward_side = forward_planes(p, dtype, w=norms_v).paired(norms_u)
        backward_side = weight_planes(p, dtype, dy=norms_u).paired(norms_v)
    return float(forward_side + backward_side)


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


def compare_forward(problem: ConvProblem, y: np.ndarray,
                    rounding: str = "entrywise") -> CheckResult:
    """The layer's y against the reference forward, within both sides' rounding bounds.

    Each y entry is ``b + Σ w·x`` over ``n = C/G·∏K`` products: ``γ_{n+1}·(conv(|x|, |w|) + |b|)``
    in the layer's dtype, plus the same in float64 for the reference (a direct sum).  Under
    ``rounding="normwise"`` the layer's side adds the bound of its (n, f) plane
    (:func:`gradcheck.judge.bounds.forward_planes`).
    """
    p = problem
    wide = np.result_type(p.dtype, np.float64)
    x, w = p.x.astype(wide), p.w.astype(wide)
    b = None if p.b is None else p.b.astype(wide)
    reference = conv_forward(x, w, b, p.spec)
    magnitude = absolute_forward(p)
    if b is not None:
        magnitude = magnitude + np.abs(b).reshape((1, -1) + (1,) * p.spec.dims)
    n = p.w.shape[1] * int(np.prod(p.w.shape[2:])) + 1
    bound = (gamma(n, p.dtype) + gamma(n, np.float64)) * magnitude
    tolerance = "γ_n·(conv(|x|, |w|) + |b|) per output, layer dtype + float64 reference"
    if check_rounding(rounding) == "normwise":
        bound = bound + plane_entries(forward_planes(p, p.dtype), bound.ndim)
        tolerance = f"{tolerance} + {NORMWISE_TOLERANCE}"
    return CheckResult(
        "forward", (compare_arrays("y", "reference forward", y, reference, bound),),
        tolerance, p.describe(),
    )


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
    rounding: str = "entrywise",
) -> tuple[CheckResult, ...]:
    """Run finite differences, Fourier and adjoint checks; raise on the first failure."""
    __tracebackhide__ = True
    gradients = _analytic(problem, backward)
    results = [compare_finite_differences(problem, backward, forward, method=method,
                                          gradients=gradients, rounding=rounding)]
    if not np.iscomplexobj(problem.x):
        results.append(compare_fourier(problem, backward, gradients=gradients,
                                       rounding=rounding))
    results.append(compare_adjoint(problem, backward, forward, rounding=rounding))
    for result in results:
        raise_on_failure(result)
    return tuple(results)
