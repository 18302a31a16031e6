"""Compare a family layer's forward and gradients with the reference and with witnesses.

The checks of :mod:`gradcheck.judge.compare`, for the transposed convolution and the poolings,
under the bounds of :mod:`gradcheck.judge.family_bounds`:

* **forward** against the reference formula (:mod:`gradcheck.formulas`);
* **finite differences** of ``L = ⟨δ, y⟩`` — the full Jacobian (every entry perturbed) or
  directional derivatives along Gaussian directions (fast mode).  The transposed convolution
  is linear in x and in w, affine in b, average pooling linear in x: every rule is exact for
  any step, which is of the data's order.  Max pooling is linear only on the piece where every
  window keeps its maximum: the step is the largest power of two with ``reach·h < margin/2``
  (:func:`gradcheck.judge.family_bounds.max_pool_step`), so no stencil point leaves x's piece
  and the rule is again exact up to rounding; the complex step is refused (a maximum is not
  analytic);
* the **adjoint identity** ``⟨u, J v⟩ = ⟨Jᵀu, v⟩`` for the linear maps: the transposed
  convolution in x and in w, average pooling in x.

The layer is reached only through callables the harness hands over (``evaluate``,
``apply``, ``transpose``): the judge never calls user code itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from gradcheck.errors import invalid
from gradcheck.floating import gamma
from gradcheck.geometry.family_problem import PoolProblem
from gradcheck.judge.family_bounds import (
    FamilyProblem,
    analytic_bounds,
    arguments,
    evaluation_bound,
    forward_bound,
    max_pool_step,
    reference_forward,
    term_counts,
    widened,
)
from gradcheck.judge.result import CheckResult, compare_arrays
from gradcheck.witnesses.differences import directional_derivatives, numeric_gradient

#: ``evaluate(which, points)``: the layer's y at points (B, *shape) of argument ``which``,
#: the other arguments the problem's, as (B, *y.shape).
Evaluate = Callable[[str, np.ndarray], np.ndarray]

DIFFERENCES_TOLERANCE = (
    "analytic side γ_n·Σ|terms| (the reference backward on |δ|, |x|, |w|) + the differences' "
    "round-off (exact: y is linear in each argument — for max pooling on x's piece, the step "
    "below margin/2)"
)


def _step(problem: FamilyProblem, family: str, method: str, dtype: np.dtype) -> float | None:
    if family != "max_pool":
        return None
    if method == "complex-step":
        raise invalid("method", method, "max pooling is not analytic (a maximum has no "
                      "complex extension): use central, four-point or richardson")
    assert isinstance(problem, PoolProblem)
    return max_pool_step(problem, method, dtype)


def _loss(problem: FamilyProblem, evaluate: Evaluate, which: str,
          dtype: np.dtype) -> Callable[[np.ndarray], np.ndarray]:
    """``L = ⟨δ, y⟩`` at a batch of points of one argument, (B, …) -> (B,)."""
    dy = problem.dy.astype(dtype).reshape(-1)
    return lambda points: evaluate(which, points).reshape(len(points), -1) @ dy


def compare_family_forward(problem: FamilyProblem, family: str, y: np.ndarray) -> CheckResult:
    """The layer's y against the reference forward in float64, within both sides' rounding."""
    reference = reference_forward(widened(problem), family)
    bound = forward_bound(problem, family)
    return CheckResult(
        "forward", (compare_arrays("y", "reference forward", y, reference, bound),),
        "γ_n·(the forward on |x|, |w|, |b|) per output, layer dtype + float64 reference "
        "(max pooling: exact up to one rounding, u·|y|)", problem.describe())


def compare_family_differences(
    problem: FamilyProblem, family: str, gradients: Mapping[str, np.ndarray],
    evaluate: Evaluate, *, method: str = "central", numeric_dtype: np.dtype | None = None,
) -> CheckResult:
    """Every gradient entry against full-Jacobian finite differences of ``L = ⟨δ, y⟩``.

    Parameters
    ----------
    problem, family
        The problem and how it is read (:func:`gradcheck.judge.family_bounds.family_of`).
    gradients : dict
        The layer's ``dx`` (and ``dw``, ``db``).
    evaluate : callable
        ``evaluate(which, points)`` -> y per point (see :data:`Evaluate`).
    method : finite-difference method; numeric_dtype : working dtype (default float64)
    """
    p = problem
    dtype = np.dtype(np.result_type(p.dtype, np.float64) if numeric_dtype is None
                     else numeric_dtype)
    if method == "complex-step":
        dtype = np.result_type(dtype, 1j)
    step = _step(p, family, method, np.finfo(dtype).dtype)
    bounds = analytic_bounds(p, family)
    y_bytes = dtype.itemsize * p.dy.size
    comparisons = []
    for which, value in arguments(p).items():
        point = value.astype(dtype)
        numeric = numeric_gradient(
            _loss(p, evaluate, which, dtype), point, method=method, linear=True,
            error_bound=_evaluation(p, family, which, dtype, method), step=step,
            point_bytes=point.nbytes + y_bytes)
        name = "d" + which
        comparisons.append(compare_arrays(name, f"{method} differences", gradients[name],
                                          numeric.value, bounds[name] + numeric.error))
    return CheckResult("finite-differences", tuple(comparisons), DIFFERENCES_TOLERANCE,
                       p.describe())


def _evaluation(problem: FamilyProblem, family: str, which: str, dtype: np.dtype,
                method: str) -> Callable[[np.ndarray], np.ndarray]:
    """The evaluation bound; for the complex step only imaginary parts carry the derivative."""
    bound = evaluation_bound(problem, family, which, np.finfo(dtype).dtype)
    if method != "complex-step":
        return bound
    # Im L(x + i·h·e) = h·⟨∇L, e⟩ computed by the same sums on the imaginary parts alone:
    # γ_m·⟨A, |Im p|⟩, the fixed parts (real) do not enter.
    return lambda points: bound(points.imag) - bound(np.zeros_like(points.imag))


def compare_family_directional(
    problem: FamilyProblem, family: str, gradients: Mapping[str, np.ndarray],
    evaluate: Evaluate, *, method: str = "central", numeric_dtype: np.dtype | None = None,
    seed: int = 0, directions: int = 1,
) -> CheckResult:
    """Fast mode: ``⟨ĝ, v⟩`` against ``D_v L`` along Gaussian directions, per argument.

    Tolerance per direction (as :mod:`gradcheck.judge.directional`)::

        Σ_j |v_j|·β_j + γ_{n+2}·Σ_j |v_j·ĝ_j| + E_num

    β the analytic bounds, the middle term the float64 dot product, ``E_num`` the stencil's
    evaluation bounds (forming the points included) over the step.  A formula mistake e passes
    one direction with probability at most ``2τ/(√(2π)·‖e‖₂)``: essentially never.
    """
    p = problem
    dtype = np.dtype(np.result_type(p.dtype, np.float64) if numeric_dtype is None
                     else numeric_dtype)
    if method == "complex-step":
        dtype = np.result_type(dtype, 1j)
    real = np.finfo(dtype).dtype
    step = _step(p, family, method, real)
    bounds = analytic_bounds(p, family)
    rng = np.random.default_rng(seed)
    comparisons = []
    for which, value in arguments(p).items():
        name = "d" + which
        v = rng.standard_normal((directions, *value.shape)).astype(real)
        numeric = directional_derivatives(
            _loss(p, evaluate, which, dtype), value.astype(dtype), v, method=method,
            linear=True, error_bound=_evaluation(p, family, which, dtype, method), step=step)
        flat_v = np.abs(v.reshape(directions, -1)).astype(np.float64)
        g = np.asarray(gradients[name]).reshape(-1)
        tolerance = (flat_v @ bounds[name].reshape(-1)
                     + gamma(g.size + 2, np.float64) * (flat_v @ np.abs(g).astype(np.float64))
                     + numeric.error)
        analytic = v.reshape(directions, -1).astype(np.float64) @ g.astype(
            np.result_type(g, np.float64))
        comparisons.append(compare_arrays(name, f"{method} directional derivative", analytic,
                                          numeric.value, tolerance))
    return CheckResult("directional", tuple(comparisons), DIFFERENCES_TOLERANCE,
                       p.describe())


#: ``apply(which, v)``: J_which·v, the layer's forward without bias at v (the other arguments
#: the problem's).  ``transpose(u)``: the layer's gradients at δ = u, without bias.
Apply = Callable[[str, np.ndarray], np.ndarray]
Transpose = Callable[[np.ndarray], Mapping[str, np.ndarray]]

#: Families that are linear in their arguments: the adjoint identity applies.
LINEAR_FAMILIES = ("conv_transpose", "avg_pool")


def compare_family_adjoint(problem: FamilyProblem, family: str, apply: Apply,
                           transpose: Transpose, *, seed: int = 0) -> CheckResult:
    """``⟨u, J v⟩ = ⟨Jᵀu, v⟩`` for x (and w), random u and v, in the problem's dtype.

    Both sides sum the same products ``u·(terms of y at v)``, each within ``γ_m·T`` of the
    exact value, ``T = ⟨|u|, Y(|v|)⟩`` (the reference forward on absolute values) and m the
    depth of the longer sum: ``n_y + dy.size`` for the left, ``n_grad + size`` for the right.
    """
    if family not in LINEAR_FAMILIES:
        raise invalid("family", family, f"the adjoint identity needs a linear map: one of "
                      f"{LINEAR_FAMILIES}")
    p = problem
    rng = np.random.default_rng(seed)
    dtype = p.dtype

    def draw(shape: tuple[int, ...]) -> np.ndarray:
        values = rng.standard_normal(shape).astype(dtype)
        if dtype.kind == "c":
            values = values + 1j * rng.standard_normal(shape)
        return values

    u = draw(p.dy.shape)
    back = transpose(u)
    terms = term_counts(p, family)
    comparisons = []
    for which, value in arguments(p).items():
        if which == "b":
            continue
        v = draw(value.shape)
        left = np.sum(u * apply(which, v))
        right = np.sum(np.asarray(back["d" + which]) * v)
        magnitudes = {k: np.abs(a).astype(np.float64) for k, a in arguments(p).items()
                      if k != "b"}
        magnitudes[which] = np.abs(v).astype(np.float64)
        total = float(np.sum(np.abs(u) * reference_forward(
            problem, family, **magnitudes, **({"b": None} if "b" in arguments(p) else {}))))
        bound = (gamma(terms["y"] + p.dy.size, dtype)
                 + gamma(terms["d" + which] + value.size, dtype)) * total
        comparisons.append(compare_arrays(f"⟨u, J_{which} v⟩", f"⟨J_{which}ᵀu, v⟩",
                                          np.asarray(left), np.asarray(right),
                                          np.asarray(bound)))
    return CheckResult("adjoint", tuple(comparisons),
                       "both sides within γ_m·⟨|u|, Y(|v|)⟩ of the exact value", p.describe())
