"""Fast mode: the gradient along a few random directions instead of the full Jacobian.

For ``L = ⟨δ, y⟩`` and Gaussian directions ``v`` (drawn from ``np.random.default_rng(seed)``),
compare the analytic ``⟨∇L, v⟩`` (the layer's gradients dotted with v) with the numeric
directional derivative ``D_v L``
(:func:`gradcheck.witnesses.differences.directional_derivatives`).  L is linear in x and
affine in ``(w, b)``, so along x alone or along ``(w, b)`` together every difference rule is
exact; the cost is a few forward calls whatever the size:

* **x**: the k directions' stencil points folded into the batch axis: one forward call of
  ``(stencil points)·k·N`` samples (checked against the forward's own y, see
  :mod:`gradcheck.witnesses.evaluations`);
* **(w, b)** together: one forward call per stencil point and direction (2k for central).

When the ``(w, b)`` comparison fails, w and b are compared separately as well, so the report
names the wrong gradient (a failure is worth two more forward calls per direction).

Tolerance, per direction v (u the unit roundoff of each side's dtype, ``A = Σ|terms|`` of each
gradient entry, ``β = γ_t·A`` the analytic side's entrywise rounding bound)::

    |⟨ĝ, v⟩_computed − D̂_v L| <= Σ_j |v_j|·β_j  +  γ_{n+2}·Σ_j |v_j ĝ_j|  +  E_num

* a correct ĝ has ``|⟨ĝ − g, v⟩| <= Σ|v_j|·β_j = γ_t·⟨A, |v|⟩``, and by adjointness
  ``⟨A_x, |v|⟩ = ⟨|δ|, conv(|v|, |w|)⟩`` (``⟨|δ|, conv(|x|, |v|)⟩`` for w): one reference
  forward on absolute values, no backward;
* ``γ_{n+2}·Σ|v_j ĝ_j|`` is the rounding of the float64 dot product of n terms (and of the
  numeric side's final scaling);
* ``E_num = Σ_k |c_k|·ε / h``, the stencil's evaluation errors over the step, where
  ``ε = γ_{m+6}·(⟨A, |p|⟩ + the fixed arguments' part)`` bounds one evaluation of L at any
  computed stencil point ``p = fl(x + a·h·v/ν)`` — its own rounding (``γ_m``, m the depth of L's
  sum), forming p (``γ_1·⟨A, |p|⟩``, since ``|∇L| <= A``), combining the stencil (``γ_4``) —
  with ``⟨A, |p|⟩ <= ⟨A, |x|⟩ + a·h·⟨A, |v|⟩/max|v|`` at the stencil's farthest points.

Detection guarantee.  Let the layer's gradient be ``g' = g + e``.  For ``v ~ N(0, I_n)``,
``⟨e, v⟩ ~ N(0, ‖e‖₂²)``, so one direction passes (``|⟨e, v⟩ + rounding| <= τ``) with
probability at most ``2τ / (√(2π)·‖e‖₂)`` — the Gaussian mass of an interval of width 2τ —
and k independent directions all pass with probability at most ``(2τ / (√(2π)·‖e‖₂))^k``
(τ depends on v only through ``Σ|v_j|β_j ≈ √(2/π)·‖β‖₁``, weakly).  Scaling:
``τ ≈ Σ|v_j|β_j <= ‖v‖₂·‖β‖₂ ≈ √n·‖β‖₂``, with ``β ∝ γ_t·A ∝ u``, while the signal grows
like ``‖e‖₂``.  A formula mistake makes ``e`` of the order of g itself, many orders of
magnitude above τ: the chance of missing it is essentially zero.  What fast mode gives up is
resolution at the rounding level: entrywise rounding-sized errors of random sign must be
about √n times larger than the entrywise bound before a random projection sees them, where
the full Jacobian (``mode="full"``) compares every entry with its own bound.

Under ``rounding="normwise"`` (:mod:`gradcheck.judge.bounds`) both sides widen by their planes'
bounds paired with the direction: ``|⟨ĝ − g, v⟩|`` by ``max(Σ‖v_plane‖₂·E_FFT,
Σ‖v_plane‖₁·E_Winograd)`` over the gradient's planes, and every evaluation of L by the pairing of
δ with y's planes at the stencil's farthest points, whose planes' norms are at most x's (or
w's) plus ``a·h/max|v|`` times v's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gradcheck.errors import invalid
from gradcheck.floating import gamma
from gradcheck.formulas.conv import conv_backward, conv_forward
from gradcheck.geometry.problem import ConvProblem, term_counts
from gradcheck.judge.bounds import (
    Norms,
    batch_planes,
    check_rounding,
    input_planes,
    loss_error,
    refuse_complex_step,
    weight_planes,
)
from gradcheck.judge.compare import (
    Backward,
    Forward,
    Gradients,
    base_output,
    work_dtype,
)
from gradcheck.judge.result import CheckResult, Comparison, compare_arrays
from gradcheck.witnesses.differences import (
    BatchedFunction,
    directional_derivatives,
    reach,
    step_size,
)
from gradcheck.witnesses.evaluations import (
    absolute_forward,
    conv_at_kernels,
    paired,
    wb_outputs,
    x_outputs,
)

#: Random directions per argument group (x; w and b together) in fast mode.  With the adjoint
#: identity's own random projection (check_layer runs both), every gradient is projected on
#: two independent Gaussian vectors.
DEFAULT_DIRECTIONS = 1

TOLERANCE = (
    "Σ|v|·(analytic bound γ_t·Σ|terms|) + γ_{n+2}·Σ|v·g| (dot product) + the differences' "
    "evaluation error / step (exact along v: L is linear in x, affine in (w, b))"
)

def _sums(problem: ConvProblem, v_x: np.ndarray, v_w: np.ndarray,
          v_b: np.ndarray | None) -> dict[str, Any]:
    """The magnitudes the tolerances need, by the reference forward on absolute values.

    With ``A`` the Σ|terms| of each gradient entry, by adjointness (no backward needed)::

        T_x     = ⟨A_x, |x|⟩   = ⟨|δ|, conv(|x|, |w|)⟩   (= ⟨A_w, |w|⟩)
        T_vx[k] = ⟨A_x, |v_x|⟩ = ⟨|δ|, conv(|v_x|, |w|)⟩
        T_vw[k] = ⟨A_w, |v_w|⟩ = ⟨|δ|, conv(|x|, |v_w|)⟩
        A_b     = Σ_{n,o} |δ|,   T_b = ⟨A_b, |b|⟩,   T_vb[k] = ⟨A_b, |v_b|⟩
    """
    p = problem
    k, n = len(v_x), p.x.shape[0]
    abs_dy = np.abs(p.dy).astype(np.float64)
    axes = tuple(range(1, abs_dy.ndim + 1))
    y = conv_forward(np.abs(v_x).reshape(-1, *p.x.shape[1:]).astype(np.float64),
                     np.abs(p.w).astype(np.float64), None, p.spec)
    per_direction = (y.reshape(k, n, *y.shape[1:]) * abs_dy[None]).sum(axis=axes)
    y_w = conv_at_kernels(np.abs(p.x).astype(np.float64), np.abs(v_w).astype(np.float64),
                          None, p)
    a_b = abs_dy.sum(axis=(0, *range(2, abs_dy.ndim)))
    return {
        "T_x": float(np.sum(absolute_forward(p) * abs_dy)), "T_vx": per_direction,
        "T_vw": (y_w * abs_dy[None]).sum(axis=axes),
        "T_b": 0.0 if p.b is None else float(np.sum(a_b * np.abs(p.b))),
        "T_vb": np.zeros(k) if v_b is None else np.abs(v_b).astype(np.float64) @ a_b,
    }


def _along(
    name: str,
    method: str,
    point: np.ndarray,
    loss: BatchedFunction,
    directions: np.ndarray,
    gradient: np.ndarray,
    analytic_rounding: np.ndarray,
    evaluation_error: np.ndarray,
) -> Comparison:
    """``⟨ĝ, v⟩`` against ``D_v L`` for each of the directions, under the module's tolerance.

    ``analytic_rounding[k] = Σ_j |v_kj|·β_j``; ``evaluation_error[k]`` bounds one evaluation of
    L at any stencil point of direction k (the largest of them is used for every point).
    """
    bound = float(np.max(evaluation_error))
    numeric = directional_derivatives(
        loss, point, directions, method=method, linear=True,
        error_bound=lambda points: np.full(len(points), bound),
    )
    v = directions.reshape(len(directions), -1).astype(np.float64)
    g = gradient.reshape(-1).astype(np.result_type(gradient, np.float64))
    # einsum, not BLAS: no thread start-up for a matrix-vector product
    tolerance = (analytic_rounding
                 + gamma(g.size + 2, np.float64) * np.einsum("kj,j->k", np.abs(v), np.abs(g))
                 + numeric.error)
    return compare_arrays(name, f"{method} directional derivative", np.einsum("kj,j->k", v, g),
                          numeric.value, tolerance)


def _loss_planes(problem: ConvProblem, dtype: np.dtype, which: str, v: np.ndarray,
                 scale: np.ndarray) -> np.ndarray:
    """Normwise part of one evaluation of L at direction k's farthest stencil points, (k,).

    The points are ``x + a·h·v_k/2^⌈log₂ max|v_k|⌉`` (or the same for w): their planes' norms
    are at most x's (w's) plus ``scale_k = a·h/max|v_k|`` times v_k's.  b enters no transform.
    """
    p = problem
    k = len(v)
    if which == "x":
        moved = Norms.of(p.x).plus(Norms.of(v, lead=3).scaled(scale.reshape(k, 1, 1)))
        return loss_error(p, dtype, x=moved)
    if which == "b":
        return np.full(k, float(loss_error(p, dtype)))
    kernels = v.reshape(k, -1)[:, : p.w.size].reshape(k, *p.w.shape)
    moved = Norms.of(p.w).plus(Norms.of(kernels, lead=3).scaled(scale.reshape(k, 1, 1)))
    return loss_error(p, dtype, w=moved)


def _flat(*arrays: np.ndarray | None) -> np.ndarray:
    """The arrays that are not None, flattened and laid end to end."""
    return np.concatenate([a.reshape(-1) for a in arrays if a is not None])


def _rows(*arrays: np.ndarray | None) -> np.ndarray:
    """Arrays (k, …) that are not None, side by side as (k, Σ sizes)."""
    return np.concatenate([a.reshape(len(a), -1) for a in arrays if a is not None], axis=1)


def compare_directional(
    problem: ConvProblem,
    backward: Backward = conv_backward,
    forward: Forward = conv_forward,
    *,
    directions: int = DEFAULT_DIRECTIONS,
    seed: int = 0,
    method: str = "central",
    gradients: Gradients | None = None,
    numeric_dtype: np.dtype | str | None = None,
    assume_conv: bool = True,
    y: np.ndarray | None = None,
    rounding: str = "entrywise",
) -> CheckResult:
    """Analytic gradients against directional derivatives of ``L = ⟨δ, y⟩`` (fast mode).

    Parameters
    ----------
    problem : ConvProblem
    backward, forward : callables
        As for :func:`gradcheck.judge.compare.compare_finite_differences`.
    directions : int
        Gaussian directions k for x and for (w, b); each has a miss probability of at most
        ``2τ/(√(2π)·‖e‖₂)`` for a gradient error e (module notes).
    seed : int
        Seed of ``np.random.default_rng`` for the directions.
    method, gradients, numeric_dtype
        As for :func:`gradcheck.judge.compare.compare_finite_differences`.
    assume_conv : bool
        The forward treats samples independently: x's points are folded into the batch axis
        (one call); False: one call per point.
    y : ndarray, optional
        The forward's output at the problem's x, w, b, if already computed (folded calls are
        checked against it).
    rounding : {"entrywise", "normwise"}
        The layer's rounding model (module notes).

    Returns
    -------
    CheckResult
        ``"directional"``, comparisons ``dx`` and ``dw`` (or ``(dw, db)``, plus ``dw`` and
        ``db`` separately when that one failed), each over the k directions.
    """
    if isinstance(directions, bool) or not isinstance(directions, int) or directions < 1:
        raise invalid("directions", directions, "expected an int >= 1")
    refuse_complex_step(check_rounding(rounding), method)
    normwise = rounding == "normwise"
    p = problem
    dtype = work_dtype(p, method) if numeric_dtype is None else np.dtype(numeric_dtype)
    real = np.finfo(dtype).dtype  # the real dtype of the numeric side
    dx, dw, db = backward(p.dy, p.x, p.w, p.b, p.spec) if gradients is None else gradients
    rng = np.random.default_rng(seed)

    def draw(shape: tuple[int, ...]) -> np.ndarray:  # float32 draws: Gaussian, and quicker
        return rng.standard_normal((directions, *shape), dtype=np.float32).astype(real)

    v_x, v_w = draw(p.x.shape), draw(p.w.shape)
    v_b = None if p.b is None else draw(p.b.shape)
    t = _sums(p, v_x, v_w, v_b)
    terms = term_counts(p)

    def analytic(name: str, sums: np.ndarray, v: np.ndarray | None = None) -> np.ndarray:
        """Σ|v|·β = γ_t·⟨A, |v|⟩, plus the planes' pairing with v under normwise rounding."""
        g = gamma(terms[name], p.dtype)
        bound = np.where(sums == 0, 0.0, g * np.where(sums == 0, 1.0, sums))
        if normwise and v is not None and name != "db":
            planes = input_planes if name == "dx" else weight_planes
            bound = bound + planes(p, p.dtype).paired(Norms.of(v, lead=3))
        return bound

    def evaluation(point: np.ndarray, fixed: float, moved: np.ndarray,
                   v: np.ndarray, which: str) -> np.ndarray:
        """γ·(the fixed part + a·h·⟨A, |v|⟩/max|v|) at the stencil's farthest points."""
        g = gamma(terms["y"] + 1 + p.dy.size + 6, dtype)
        h = float(step_size(method, float(np.abs(point).max(initial=0.0)), real, linear=True))
        largest = np.abs(v).reshape(len(v), -1).max(axis=1).astype(np.float64)
        moving = reach(method) * h * moved / largest
        bound = g * (moving if method == "complex-step" else fixed + moving)
        if normwise:
            bound = bound + _loss_planes(p, dtype, which, v, reach(method) * h / largest)
        return bound

    y_base = base_output(p, forward, y) if assume_conv else None
    outputs = x_outputs(p, forward, dtype, fold=assume_conv, y_base=y_base,
                        batch_bound=batch_planes(p) if normwise else None)
    point = p.x.astype(dtype)
    fixed = t["T_x"] + t["T_b"]  # ⟨|δ|, conv(|x|, |w|) + |b|⟩
    comparisons = [_along("dx", method, point, paired(p, outputs, dtype), v_x, dx,
                          analytic("dx", t["T_vx"], v_x),
                          evaluation(point, fixed, t["T_vx"], v_x, "x"))]
    point, outputs = wb_outputs(p, forward, dtype, "wb")
    v_wb = _rows(v_w, v_b)
    joint = _along("dw" if p.b is None else "(dw, db)", method, point,
                   paired(p, outputs, dtype), v_wb, _flat(dw, db),
                   analytic("dw", t["T_vw"], v_w) + analytic("db", t["T_vb"]),
                   evaluation(point, fixed, t["T_vw"] + t["T_vb"], v_wb, "wb"))
    comparisons.append(joint)
    if not joint.passed and v_b is not None and db is not None:  # which of the two is wrong?
        for name, v, g, sums in (("dw", v_w, dw, t["T_vw"]), ("db", v_b, db, t["T_vb"])):
            point, outputs = wb_outputs(p, forward, dtype, name[1])
            comparisons.append(_along(name, method, point, paired(p, outputs, dtype), v, g,
                                      analytic(name, sums, v),
                                      evaluation(point, fixed, sums, v, name[1])))
    return CheckResult("directional", tuple(comparisons), TOLERANCE, p.describe())
