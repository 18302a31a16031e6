"""Rounding bounds of a correct convolution backward and of one evaluation of L — derived.

Every gradient entry is a dot product of n terms, so a correct backward in any summation order
is within ``γ_n·Σ|terms|`` of the exact value (:func:`gradcheck.floating.gamma`), and
``Σ|terms|`` is the backward applied to ``|δ|``, ``|x|``, ``|w|`` (:func:`absolute_gradients`).

**Rounding of one evaluation of L.**  ``L = Σ_{n,f,o} δ·(b + Σ w·x)`` is one long sum of
``m = (C/G·∏K + 1) + 1 + N·F·∏O`` roundings deep, so (Higham §3.1)::

    |fl(L) − L| <= γ_m·(⟨|δ|, conv(|x|, |w|)⟩ + ⟨|δ|, |b|⟩)

and, conv being linear in each argument, ``⟨|δ|, conv(|x|, |w|)⟩ = ⟨A_x, |x|⟩ = ⟨A_w, |w|⟩``
with ``A = (A_x, A_w, A_b)`` the Σ|terms| of each gradient entry.  The witnesses take these
bounds as arguments: they belong to the judge, which alone brings the formulas
(:mod:`gradcheck.formulas`) and the witnesses together.
"""

from __future__ import annotations

import numpy as np

from gradcheck.errors import invalid
from gradcheck.floating import gamma, underflow
from gradcheck.formulas.conv import conv_backward
from gradcheck.geometry.problem import ConvProblem, remembered, term_counts
from gradcheck.witnesses.differences import BatchedFunction

Gradients = tuple[np.ndarray, np.ndarray, "np.ndarray | None"]

def absolute_gradients(problem: ConvProblem) -> Gradients:
    """``Σ|terms|`` of each gradient entry: the backward applied to |δ|, |x|, |w| (float64).

    Remembered by the problem's content (:attr:`ConvProblem.key`), so a problem rebuilt from
    the same arrays — a cast, a corpus replay — is not recomputed.
    """
    return remembered(problem, "absolute gradients", lambda: _absolute_gradients(problem))


def _absolute_gradients(p: ConvProblem) -> Gradients:
    abs_dy = np.abs(p.dy).astype(np.float64)
    dx, dw, _ = conv_backward(
        abs_dy, np.abs(p.x).astype(np.float64), np.abs(p.w).astype(np.float64), None, p.spec
    )
    db = None if p.b is None else abs_dy.sum(axis=(0, *range(2, p.dy.ndim)))
    return dx, dw, db



def _depth(problem: ConvProblem) -> int:
    """m: roundings in the deepest chain of one evaluation of L."""
    return term_counts(problem)["y"] + 1 + problem.dy.size



def _linear_bound(weights: np.ndarray, constant: float, m: int, dtype: np.dtype, *,
                  imaginary: bool) -> BatchedFunction:
    """``p ↦ γ_m·(⟨weights, |p|⟩ + constant)`` (imaginary parts only, no constant, if asked)."""
    g = gamma(m, dtype)
    flat_weights = weights.reshape(-1)

    def evaluation_error(points: np.ndarray) -> np.ndarray:
        magnitude = np.abs(points.imag) if imaginary else np.abs(points)
        weighted = np.einsum("bj,j->b", magnitude.reshape(len(points), -1), flat_weights)
        return g * (weighted + (0.0 if imaginary else constant))

    return evaluation_error


def evaluation_bound(problem: ConvProblem, which: str, dtype: np.dtype, *, imaginary: bool,
                     point_rounding: bool = False) -> BatchedFunction:
    """Bound on the rounding of one evaluation of L at a point of x, w, b or ``concat(w, b)``.

    ``γ_{m+4}·(⟨A_arg, |p|⟩ + ⟨|δ|, the fixed arguments' part⟩)`` (module notes); the 4
    extra roundings cover combining a stencil's (at most 4) values with its rounded
    coefficients, whose error is at most ``γ_4·Σ|c_k||L_k|``.  With ``point_rounding`` it also
    covers the rounding of forming the point itself (every entry of a direction is rounded:
    ``|p̂ − p| <= γ_1·|p̂|`` moves L by ``γ_1·⟨A_arg, |p̂|⟩``): ``γ_{m+5} >= γ_{m+4} + γ_1``.
    For the complex step only imaginary parts count.
    """
    p = problem
    m = _depth(p) + 4 + (1 if point_rounding else 0)
    abs_dx, abs_dw, abs_db = absolute_gradients(p)
    bias_part = 0.0 if p.b is None else float(np.sum(np.abs(p.b) * abs_db))
    if which == "x":
        return _linear_bound(abs_dx, bias_part, m, dtype, imaginary=imaginary)
    if which == "w":
        return _linear_bound(abs_dw, bias_part, m, dtype, imaginary=imaginary)
    conv_part = float(np.sum(np.abs(p.x) * abs_dx))
    if which == "b":
        return _linear_bound(abs_db, conv_part, m, dtype, imaginary=imaginary)
    weights = abs_dw if abs_db is None else np.concatenate([abs_dw.reshape(-1), abs_db])
    return _linear_bound(weights, 0.0, m, dtype, imaginary=imaginary)


#: Largest number of perturbations (x.size + w.size + b.size) a full Jacobian is computed for.
#: Entry by entry (``assume_conv=False``) that is one forward call per perturbation, quadratic
#: in the problem's size; with the convolution's structure, ``2·C/G·(∏min(E + s − 1, S) + ∏K)``
#: points of growing size.  Above it, use directional derivatives (``check_layer(mode="fast")``,
#: :func:`gradcheck.judge.directional.compare_directional`): a handful of calls at any size.
FULL_JACOBIAN_MAX = 200_000


def perturbation_count(problem: ConvProblem) -> int:
    """Entries a full Jacobian perturbs one by one: ``x.size + w.size (+ b.size)``."""
    p = problem
    return p.x.size + p.w.size + (0 if p.b is None else p.b.size)


def refuse_full_jacobian(problem: ConvProblem) -> None:
    """Raise InvalidArgument if ``problem`` has more than FULL_JACOBIAN_MAX perturbations."""
    count = perturbation_count(problem)
    if count > FULL_JACOBIAN_MAX:
        raise invalid(
            "problem", problem.describe(),
            f"a full Jacobian needs {count} perturbations, more than FULL_JACOBIAN_MAX = "
            f"{FULL_JACOBIAN_MAX}: use mode=\"fast\" (directional derivatives along random "
            "directions: a handful of forward calls at any size)",
        )


def analytic_bounds(problem: ConvProblem, dtype: np.dtype | None = None) -> Gradients:
    """Entrywise rounding bounds of a correct backward computed in ``dtype``.

    ``γ_n·Σ|terms| + n·η`` per entry: the dot-product bound (:func:`gradcheck.floating.gamma`)
    and gradual underflow (:func:`gradcheck.floating.underflow`), n the number of terms.
    """
    dtype = problem.dtype if dtype is None else dtype
    terms = term_counts(problem)
    abs_dx, abs_dw, abs_db = absolute_gradients(problem)

    def bound(name: str, magnitude: np.ndarray) -> np.ndarray:
        return gamma(terms[name], dtype) * magnitude + underflow(terms[name], dtype)

    return (
        bound("dx", abs_dx),
        bound("dw", abs_dw),
        None if abs_db is None else bound("db", abs_db),
    )


def resolution(bound: np.ndarray, reference: np.ndarray) -> float:
    """How large a relative error a check can still see: median of ``bound / |reference|``.

    A formula mistake changes a gradient by O(|g|); when the rounding bound is already a sizable
    fraction of |g| (long float32 or float16 sums: the worst-case γ_n·Σ|terms| grows like n·u
    while |g| grows like √n), a pass means little.
    """
    magnitude = np.abs(np.asarray(reference, dtype=np.complex128))
    bound = np.broadcast_to(np.asarray(bound, dtype=np.float64), magnitude.shape)
    seen = magnitude > 0
    if not np.any(seen):
        return 0.0
    return float(np.median(bound[seen] / magnitude[seen]))
