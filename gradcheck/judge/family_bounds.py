"""Rounding bounds of the convolution's siblings, derived as for the convolution.

A family problem is a :class:`ConvTransposeProblem` (family ``"conv_transpose"``) or a
:class:`PoolProblem` (``"max_pool"`` or ``"avg_pool"``: the problem does not say which, the layer
does).  Every output and gradient entry is a sum of n terms, so a correct computation in any
order is within ``γ_n·Σ|terms| + n·η`` of the exact value (Higham §3.1, see
:mod:`gradcheck.judge.bounds`), ``Σ|terms|`` being the formula applied to absolute values:

================ ========================== ============================ =======================
family           y entry: n, Σ|terms|        dx entry: n, Σ|terms|          dw, db
================ ========================== ============================ =======================
conv_transpose   C_in/G·∏K + 1, ct(|x|,|w|)  C_out/G·∏K, backward(|δ|)     N·∏S, N·∏O
avg_pool         ∏K + 2, avg(|x|)            ∏K + 2, avg backward(|δ|)     —
max_pool         1, |y|                      ∏K, max backward(|δ|, x)      —
================ ========================== ============================ =======================

* transposed convolution: at most ``C_in/G`` channels times ``∏K`` taps reach one output (a tap
  reaches it from at most one input position), plus the bias; dx is a convolution of δ
  (``C_out/G·∏K`` products); dw sums over the batch and the input, db over the batch and the
  output.
* average pooling: ``∏K`` window terms and the division by ``|W|`` — or a multiplication by a
  rounded ``1/|W|``: two roundings, hence ``∏K + 2``; backward the same, at most ``∏K`` windows
  reach one input position (a tap reaches it from at most one window).
* max pooling: a maximum is one of its inputs, exact; ``u·|y|`` allows a layer that computes it
  in a wider dtype and rounds once.  dx sums the δ of at most ``∏K`` windows routed to one
  position: ``γ_{∏K}·Σ|δ routed|``, the reference backward applied to ``|δ|``.

**One evaluation of L = ⟨δ, y⟩** at a point p of one argument is a sum ``m = n_y + 1 +
dy.size`` roundings deep, so ``|fl(L) − L| <= γ_m·⟨|δ|, Y(|p|)⟩`` with Y(|p|) the Σ|terms| of
y at p: for the linear maps ``⟨A_p, |p|⟩ + ⟨|δ|, fixed part⟩`` with A the Σ|terms| of the
gradient (adjointness), and for max pooling ``⟨|δ|, maxpool(|p|)⟩ >= ⟨|δ|, |maxpool(p)|⟩``.
Four more roundings cover the stencil's combination and one more the rounding of forming a
point (``|∇L| <= A`` entrywise), as in :func:`gradcheck.judge.bounds.evaluation_bound`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from gradcheck.errors import invalid
from gradcheck.floating import gamma, underflow, unit_roundoff
from gradcheck.formulas.conv_transpose import conv_transpose_backward, conv_transpose_forward
from gradcheck.formulas.pool import (
    avg_pool_backward,
    avg_pool_forward,
    max_pool_backward,
    max_pool_forward,
    max_pool_margin,
)
from gradcheck.geometry.family_problem import ConvTransposeProblem, PoolProblem
from gradcheck.witnesses.differences import BatchedFunction, reach

FamilyProblem = ConvTransposeProblem | PoolProblem

#: The families other than the convolution, and the problem type each is checked on.
FAMILY_PROBLEMS = {"conv_transpose": ConvTransposeProblem, "max_pool": PoolProblem,
                   "avg_pool": PoolProblem}

#: Gradient names per family, in the order the backward returns them.
GRADIENTS = {"conv_transpose": ("dx", "dw", "db"), "max_pool": ("dx",), "avg_pool": ("dx",)}

_POOL_FORMULAS: dict[str, tuple[Callable[..., np.ndarray], Callable[..., np.ndarray]]] = {
    "max_pool": (max_pool_forward, max_pool_backward),
    "avg_pool": (avg_pool_forward, avg_pool_backward),
}


def family_of(problem: Any, family: str | None = None) -> str:
    """The family a problem is checked as: its type decides, ``family`` picks max or avg.

    Raises
    ------
    InvalidArgument
        A pooling problem without ``"max_pool"`` / ``"avg_pool"``, or a family that does not
        fit the problem's type.
    """
    if isinstance(problem, ConvTransposeProblem):
        if family not in (None, "conv_transpose"):
            raise invalid("family", family, "a ConvTransposeProblem is a 'conv_transpose'")
        return "conv_transpose"
    if isinstance(problem, PoolProblem):
        if family not in ("max_pool", "avg_pool"):
            raise invalid("family", family, "a PoolProblem needs the layer's family: "
                          "'max_pool' or 'avg_pool' (supports={'family': ...})")
        return family
    raise invalid("problem", type(problem).__name__,
                  "expected a ConvTransposeProblem or a PoolProblem")


def arguments(problem: FamilyProblem) -> dict[str, np.ndarray]:
    """The differentiable arguments: x, w, b (when present) or x alone."""
    if isinstance(problem, PoolProblem):
        return {"x": problem.x}
    out = {"x": problem.x, "w": problem.w}
    if problem.b is not None:
        out["b"] = problem.b
    return out


def reference_forward(problem: FamilyProblem, family: str, **replaced: Any) -> np.ndarray:
    """The reference y at the problem's arguments, some replaced (``x=…``, ``w=…``, ``b=…``)."""
    a = {**arguments(problem), **replaced}
    if family == "conv_transpose":
        assert isinstance(problem, ConvTransposeProblem)
        return conv_transpose_forward(a["x"], a["w"], a.get("b") if "b" in replaced or
                                      problem.b is not None else None, problem.spec)
    return _POOL_FORMULAS[family][0](a["x"], problem.spec)


def reference_backward(problem: FamilyProblem, family: str, dy: np.ndarray | None = None,
                       **replaced: Any) -> tuple[np.ndarray | None, ...]:
    """The reference gradients, in :data:`GRADIENTS` order, at δ = dy (default the problem's)."""
    a = {**arguments(problem), **replaced}
    delta = problem.dy if dy is None else dy
    if family == "conv_transpose":
        assert isinstance(problem, ConvTransposeProblem)
        return conv_transpose_backward(delta, a["x"], a["w"], a.get("b"), problem.spec)
    return (_POOL_FORMULAS[family][1](delta, a["x"], problem.spec),)


def widened(problem: FamilyProblem) -> FamilyProblem:
    """The problem cast exactly to float64 (complex128 when complex)."""
    wide = np.result_type(problem.dtype, np.float64)
    if isinstance(problem, PoolProblem):
        return PoolProblem(problem.x.astype(wide), problem.dy.astype(wide), problem.spec)
    p = problem
    return ConvTransposeProblem(p.x.astype(wide), p.w.astype(wide),
                                None if p.b is None else p.b.astype(wide),
                                p.dy.astype(wide), p.spec)


def _absolute(problem: FamilyProblem, family: str) -> FamilyProblem:
    """|x|, |w|, |b|, |δ| in float64 (x kept as it is for max pooling: it routes)."""
    if isinstance(problem, PoolProblem):
        x = problem.x.real if family == "max_pool" else np.abs(problem.x)
        return PoolProblem(x.astype(np.float64),
                           np.abs(problem.dy).astype(np.float64), problem.spec)
    p = problem
    return ConvTransposeProblem(
        np.abs(p.x).astype(np.float64), np.abs(p.w).astype(np.float64),
        None if p.b is None else np.abs(p.b).astype(np.float64),
        np.abs(p.dy).astype(np.float64), p.spec)


def term_counts(problem: FamilyProblem, family: str) -> dict[str, int]:
    """n, the terms of one entry of y and of each gradient (module table)."""
    taps = int(np.prod(problem.spec.kernel_size if isinstance(problem, PoolProblem)
                       else problem.w.shape[2:]))
    if family == "max_pool":
        return {"y": 1, "dx": taps}
    if family == "avg_pool":
        return {"y": taps + 2, "dx": taps + 2}
    assert isinstance(problem, ConvTransposeProblem)
    p, groups = problem, problem.spec.groups
    return {"y": p.x.shape[1] // groups * taps + 1, "dx": p.w.shape[1] * taps,
            "dw": p.x.shape[0] * int(np.prod(p.x.shape[2:])),
            "db": p.dy.shape[0] * int(np.prod(p.dy.shape[2:]))}


def absolute_gradients(problem: FamilyProblem, family: str) -> dict[str, np.ndarray]:
    """``Σ|terms|`` of every gradient entry: the reference backward on absolute values."""
    magnitudes = _absolute(problem, family)
    values = reference_backward(magnitudes, family)
    return {name: v for name, v in zip(GRADIENTS[family], values) if v is not None}


def analytic_bounds(problem: FamilyProblem, family: str,
                    dtype: np.dtype | None = None) -> dict[str, np.ndarray]:
    """``γ_n·Σ|terms| + n·η`` per gradient entry of a correct backward in ``dtype``."""
    dtype = problem.dtype if dtype is None else np.dtype(dtype)
    terms = term_counts(problem, family)
    return {name: gamma(terms[name], dtype) * a + underflow(terms[name], dtype)
            for name, a in absolute_gradients(problem, family).items()}


def forward_bound(problem: FamilyProblem, family: str) -> np.ndarray:
    """Bound on |layer y − reference y|: both sides' rounding (layer dtype + float64)."""
    if family == "max_pool":
        y = reference_forward(widened(problem), family)
        return unit_roundoff(problem.dtype) * np.abs(y)
    n = term_counts(problem, family)["y"]
    magnitudes = _absolute(problem, family)
    magnitude = reference_forward(magnitudes, family)
    return (gamma(n, problem.dtype) + gamma(n, np.float64)) * magnitude


def evaluation_bound(problem: FamilyProblem, family: str, which: str,
                     dtype: np.dtype) -> BatchedFunction:
    """``p ↦ γ_{m+5}·⟨|δ|, Y(|p|)⟩`` for points p of argument ``which`` (module notes)."""
    p = problem
    m = term_counts(p, family)["y"] + 1 + p.dy.size + 5
    g = gamma(m, dtype)
    abs_dy = np.abs(p.dy).astype(np.float64)
    if family == "max_pool":
        assert isinstance(p, PoolProblem)
        spec = p.spec

        def max_bound(points: np.ndarray) -> np.ndarray:
            folded = np.abs(points).reshape(-1, *p.x.shape[1:]).astype(np.float64)
            y = max_pool_forward(folded, spec).reshape(len(points), *p.dy.shape)
            return g * np.einsum("bj,j->b", y.reshape(len(points), -1), abs_dy.reshape(-1))
        return max_bound
    weights = absolute_gradients(p, family)["d" + which].reshape(-1)
    fixed = 0.0
    if family == "conv_transpose":
        assert isinstance(p, ConvTransposeProblem)
        abs_all = absolute_gradients(p, family)
        parts = {"x": float(np.sum(np.abs(p.x) * abs_all["dx"])),
                 "b": 0.0 if p.b is None else float(np.sum(np.abs(p.b) * abs_all["db"]))}
        fixed = parts["b"] if which in ("x", "w") else parts["x"]

    def linear_bound(points: np.ndarray) -> np.ndarray:
        magnitude = np.abs(points).reshape(len(points), -1).astype(np.float64)
        return g * (magnitude @ weights + fixed)

    return linear_bound


def max_pool_step(problem: PoolProblem, method: str, dtype: np.dtype) -> float | None:
    """The finite-difference step for max pooling: the largest power of two h with
    ``reach·h < margin/2`` (:func:`gradcheck.formulas.pool.max_pool_margin`), so every
    stencil point lies on x's linear piece and any rule is exact up to rounding.  None when
    every window holds one input position (linear everywhere: the usual step).

    Raises
    ------
    InvalidArgument
        A tie (margin 0): max pooling has no gradient there; draw tie-free data
        (:func:`gradcheck.strategies.pool_problems` does).
    """
    margin = max_pool_margin(problem.x.real.astype(dtype), problem.spec)
    if margin == float("inf"):
        return None
    if not margin > 0:
        raise invalid("problem", problem.describe(),
                      "two entries of a max-pooling window tie for the maximum: there is no "
                      "gradient at a tie; use tie-free data (gradcheck.strategies.pool_problems)")
    limit = margin / (2 * reach(method))
    h = float(np.exp2(np.floor(np.log2(limit))))
    return h / 2 if h >= limit else h
