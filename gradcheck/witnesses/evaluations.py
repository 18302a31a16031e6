"""The scalar that finite differences evaluate, ``L = ⟨δ, y⟩``, and y itself, as batched functions.

The engine (:mod:`gradcheck.witnesses.differences`) asks for y (or L) at a whole batch of points
at once; how many forward calls that costs depends on what is known about the forward:

========= ============================================ ==========================================
argument  the reference ``conv_forward``               a user's forward
========= ============================================ ==========================================
x         one call per batch when folding: the points go into the batch axis,
          ``(B, N, C, S…) → (B·N, C, S…)``, and the output comes back out, ``→ (B, N, F, O…)``
w         one call per batch: the points stacked as    one call per point (a layer takes one
          the filters of each group                    kernel)
b         no call: ``y = y(b = 0) + b``, added as the  one call per point
          forward adds it
========= ============================================ ==========================================

**What folding assumes.**  The forward treats the samples of a batch independently at any
batch size: ``y[n]`` depends on ``x[n]`` only — what the batch axis of a convolution means.
A user's forward is folded only when asked (``check_layer`` asks once the layer's forward has
been compared with the reference convolution, which treats samples independently), and every
folded call is checked for it at no extra cost: the engines' batches are symmetric stencils
around x, so their points average to x and, y being affine in x, their outputs must average
to the forward's own ``y(x)`` at batch N within rounding.  A forward that mixes samples, or
breaks at other batch sizes, is a :class:`~gradcheck.errors.LayerError`
(``reason="batch-dependent"``), not a verdict on its gradient.
The rounding bounds of these evaluations are the judge's (:mod:`gradcheck.judge.bounds`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from gradcheck.errors import LayerError
from gradcheck.floating import gamma
from gradcheck.formulas.conv import conv_forward
from gradcheck.geometry.problem import ConvProblem, remembered
from gradcheck.witnesses.differences import BatchedFunction

Forward = Callable[..., np.ndarray]
Gradients = tuple[np.ndarray, np.ndarray, "np.ndarray | None"]

#: ``batch_bound(points, dtype) -> (N, F)``: the judge's extra bound (normwise rounding model,
#: :func:`gradcheck.judge.bounds.forward_planes`) on every output of plane (n, f), at the
#: worst of ``points`` (B, N, C, S…) evaluated in ``dtype``, plus at the problem's own x in
#: y_base's dtype; added to :func:`_check_batch`'s entrywise bound.
BatchBound = Callable[[np.ndarray, np.dtype], np.ndarray]


def absolute_forward(problem: ConvProblem) -> np.ndarray:
    """``conv(|x|, |w|)`` without the bias (float64): every y entry's Σ|terms|; remembered by
    the problem's content (:func:`gradcheck.geometry.problem.remembered`)."""
    p = problem
    return remembered(p, "absolute forward", lambda: conv_forward(
        np.abs(p.x).astype(np.float64), np.abs(p.w).astype(np.float64), None, p.spec))


def _cast(problem: ConvProblem,
          dtype: np.dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
    p = problem
    b = None if p.b is None else p.b.astype(dtype)
    return p.x.astype(dtype), p.w.astype(dtype), b, p.dy.astype(dtype)


def paired(problem: ConvProblem, outputs: BatchedFunction, dtype: np.dtype) -> BatchedFunction:
    """``L = ⟨δ, y⟩`` from a batched y: (B, N, F, O…) -> (B,)."""
    dy = problem.dy.astype(dtype)
    axes = tuple(range(1, dy.ndim + 1))
    return lambda points: (outputs(points) * dy[None]).sum(axis=axes)


def _check_batch(points: np.ndarray, y: np.ndarray, y_base: np.ndarray, x: np.ndarray,
                 w: np.ndarray, b: np.ndarray | None,
                 batch_bound: BatchBound | None = None) -> None:
    """The mean of a folded call's outputs against the forward's own y at x (module notes).

    Exactly, ``mean_i y(p̂_i) = y(x + mean_i r_i)`` with ``r_i = p̂_i − p_i`` the rounding of
    forming the points (``|r_i| <= u·P``, ``P = max(|p̂|, |x|)``), and every computed output
    is within ``γ_t·(P·Σ|w_f| + |b_f|)`` of the exact one, so a forward that treats samples
    independently stays within ``(γ_{t+B+2} + γ_t')·(P·Σ|w_f| + |b_f|)`` per filter f, with B
    the points averaged and γ' in y_base's dtype.
    """
    count = len(points)
    mean = y.reshape(count, *y_base.shape).mean(axis=0)
    if np.iscomplexobj(mean) and not np.iscomplexobj(y_base):
        mean = mean.real  # the complex step: Re y(x + i·h·v) = y(x)
    t = int(np.prod(w.shape[1:])) + 1
    largest = max(float(np.abs(points).max(initial=0.0)), float(np.abs(x).max(initial=0.0)))
    per_filter = largest * np.abs(w).reshape(len(w), -1).sum(axis=1).astype(np.float64)
    if b is not None:
        per_filter = per_filter + np.abs(b)
    scale = gamma(t + count + 2, y.dtype) + gamma(t, y_base.dtype)
    bound = (scale * per_filter).reshape((1, -1) + (1,) * (y_base.ndim - 2))
    if batch_bound is not None:
        planes = batch_bound(points, y.dtype)
        bound = bound + planes.reshape(planes.shape + (1,) * (y_base.ndim - 2))
    error = np.abs(mean - y_base)
    if np.all(error <= bound):
        return
    worst = np.unravel_index(int(np.argmax(error - bound)), error.shape)
    raise LayerError(
        f"the layer's forward is not the same in a batch of {count * len(y_base)} samples as "
        f"in a batch of {len(y_base)}: the mean of its outputs at {count} points around x, "
        f"which is y(x) for a forward that treats samples independently, differs from its y(x) "
        f"by {error[worst]:.3g} > rounding bound {np.broadcast_to(bound, error.shape)[worst]:.3g}"
        " at y" f"{list(map(int, worst))}.  gradcheck folds perturbations into the batch axis; "
        "check a layer that mixes samples with reference_forward=False (no folding)",
        "batch-dependent",
    )


def x_outputs(problem: ConvProblem, forward: Forward, dtype: np.dtype, *, fold: bool,
              y_base: np.ndarray | None = None,
              batch_bound: BatchBound | None = None) -> BatchedFunction:
    """y as a function of x: points (B, N, C, S…) -> (B, N, F, O…).

    ``fold``: one forward call per batch, the points folded into the batch axis; else one
    call per point.  With ``y_base`` (the forward's output at the problem's own x, w, b)
    every folded call is checked: the engines' batches are symmetric stencils around x (their
    points average to x), so the outputs must average to ``y_base`` (see the module notes).
    ``batch_bound``: the judge's extra bound for a normwise layer (:data:`BatchBound`).
    """
    x, w, b, _ = _cast(problem, dtype)
    spec, n = problem.spec, x.shape[0]
    if not fold:
        return lambda points: np.stack([forward(pt, w, b, spec) for pt in points])

    def outputs(points: np.ndarray) -> np.ndarray:
        y = forward(points.reshape(-1, *x.shape[1:]), w, b, spec)
        if y_base is not None:
            _check_batch(points, y, y_base, x, w, b, batch_bound)
        return y.reshape(len(points), n, *y.shape[1:])

    return outputs


def conv_at_kernels(x: np.ndarray, ws: np.ndarray, bs: np.ndarray | None,
                  problem: ConvProblem) -> np.ndarray:
    """conv_forward at B kernels (and biases) in one call: (B, F, …) -> y (B, N, F, O…).

    The kernels are stacked as the filters of each group: ``(G, B, F/G)`` filters.
    """
    count, groups = len(ws), problem.spec.groups
    f, n = ws.shape[1], x.shape[0]
    stacked = ws.reshape(count, groups, f // groups, *ws.shape[2:]).swapaxes(0, 1)
    bias = None if bs is None else bs.reshape(count, groups, f // groups).swapaxes(0, 1)
    y = conv_forward(x, stacked.reshape(-1, *ws.shape[2:]),
                     None if bias is None else bias.reshape(-1), problem.spec)
    y = y.reshape(n, groups, count, f // groups, *y.shape[2:]).swapaxes(0, 2)
    return y.swapaxes(1, 2).reshape(count, n, f, *y.shape[4:])


def wb_outputs(problem: ConvProblem, forward: Forward, dtype: np.dtype,
               which: str = "wb") -> tuple[np.ndarray, BatchedFunction]:
    """y as a function of w (``"w"``), b (``"b"``) or both (``"wb"``, flat ``concat(w, b)``).

    Returns the point (in ``dtype``) and the batched function of it, (B, …) -> (B, N, F, O…).
    The reference forward takes every point in one call (and none for b alone: y is affine
    in b, which is added exactly as the forward adds it); a user's forward one call per point.
    """
    x, w, b, _ = _cast(problem, dtype)
    spec = problem.spec
    reference = forward is conv_forward
    point = {"w": w, "b": b}.get(which)
    if point is None:
        point = w.reshape(-1) if b is None else np.concatenate([w.reshape(-1), b])
    if which == "b" and reference:
        y_unbiased = conv_forward(x, w, None, spec)[None]
        shape = (1, -1) + (1,) * spec.dims
        return point, lambda points: y_unbiased + points.reshape(len(points), *shape)

    def unpack(points: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        count = len(points)
        if which == "w":
            return points.reshape(count, *w.shape), None if b is None else np.tile(b, (count, 1))
        if which == "b":
            return np.broadcast_to(w, (count, *w.shape)), points.reshape(count, -1)
        flat = points.reshape(count, -1)
        return flat[:, : w.size].reshape(count, *w.shape), flat[:, w.size :]

    def outputs(points: np.ndarray) -> np.ndarray:
        ws, bs = unpack(points)
        if b is None:
            bs = None
        if reference:
            return conv_at_kernels(x, ws, bs, problem)
        return np.stack([forward(x, w_pt, None if bs is None else bs[i], spec)
                         for i, w_pt in enumerate(ws)])

    return point, outputs


