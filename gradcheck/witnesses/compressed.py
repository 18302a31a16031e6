"""The full Jacobian of a convolution by compressed finite differences (Curtis, Powell & Reid).

Which outputs an entry reaches is known from the geometry, per spatial dim with
``E = r·(K − 1) + 1`` the dilated kernel extent::

    x[n, c, i]    reaches y[n, f, o] for f in group(c), o in box(i) = {o : 0 <= i + lo − s·o < E}
    w[f, c', t]   reaches y[·, f, ·]                         (one output channel)
    b[f]          reaches y[·, f, ·]

Entries whose sets of outputs do not overlap can be perturbed *together*: the difference of y
then holds each one's column of the Jacobian on its own outputs, and ``∂L/∂e = Σ δ·Δy`` over
those outputs recovers each gradient entry separately.  The classes ("colors") used here:

* x: ``(c mod C/G, i mod P)`` with ``P = min(E + s − 1, S)`` per dim — two positions of one
  channel in a class are at least ``E + s − 1`` apart in some dim, so their boxes are disjoint
  there; channels of different groups, and different samples, never share outputs.  That is
  ``C/G·∏P`` classes for the ``N·C·∏S`` entries.
* w: ``(c', t)``, all F filters at once: ``C/G·∏K`` classes.   b: one class.

With a stencil of q points (2 for central differences) that is ``q·C/G·∏P`` x-points (folded
into the batch axis: a call or two) and ``q·(C/G·∏K + 1)`` calls for w and b, instead of one
point per entry.  The perturbed points are formed and evaluated by
:func:`gradcheck.witnesses.differences.compressed_differences`; recovering the entries is a
box sum (x) or a plain sum (w, b).

**Assumption**: the forward *is* a convolution of the problem's geometry — samples treated
independently, each output reading only its window.  ``check_layer`` relies on it only after
the layer's forward has been compared with the reference (a linear map that agrees with the
convolution at a Gaussian x is the convolution, with probability one); without it, use
``assume_conv=False``: one entry per point.

**Rounding**, per output o of filter f (u of the working dtype, ``t = C/G·∏K + 1``)::

    |fl(y(p))_o − y(p)_o| <= γ_t·(conv(|p|, |w|)_o + |b_f|)

at a perturbed point p, plus ``γ_1`` of the same for rounding the perturbed entries, plus
``γ_4`` for combining the stencil's values; and ``conv(|p|, |w|) <= conv(|x|, |w|) + a·h·ω_f``
with ``ω_f = max|w_f|`` for x (at most one perturbed entry reaches an output), ``+ a·h·max|x|``
for w, ``+ a·h`` for b.  The recovered entry's bound is the sum of ``|δ_o|`` times these over
its outputs, divided by h, plus ``γ_n·Σ|δ_o·Δ_o|`` for the n-term recovery sum itself.

Under the judge's normwise rounding model (a forward computed by FFT or Winograd) each output
is further off by its plane's bound at the perturbed point; the judge passes that bound in
(``planes``, :func:`gradcheck.judge.bounds.forward_planes`), and it is added per (n, f).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from gradcheck.floating import gamma
from gradcheck.geometry.problem import ConvProblem, term_counts
from gradcheck.witnesses.differences import (
    BatchedFunction,
    compressed_differences,
    reach,
    step_size,
)
from gradcheck.witnesses.evaluations import (
    BatchBound,
    Forward,
    absolute_forward,
    wb_outputs,
    x_outputs,
)


def _extents(problem: ConvProblem) -> tuple[int, ...]:
    s = problem.spec
    return tuple(r * (k - 1) + 1 for r, k in zip(s.dilation, problem.w.shape[2:]))


def x_colors(problem: ConvProblem) -> np.ndarray:
    """The class of each entry of x, shaped like x: ``(c mod C/G, i mod P)`` (module notes)."""
    p = problem
    sizes = p.x.shape[2:]
    periods = tuple(min(e + s - 1, n) for e, s, n in zip(_extents(p), p.spec.stride, sizes))
    grid = np.meshgrid(*(np.arange(n) % q for n, q in zip(sizes, periods)), indexing="ij")
    residues = np.ravel_multi_index(tuple(grid), periods)
    channels = np.arange(p.x.shape[1]) % p.w.shape[1]
    colors = channels.reshape((-1,) + (1,) * len(sizes)) * int(np.prod(periods)) + residues
    return np.broadcast_to(colors, p.x.shape)


def w_colors(problem: ConvProblem) -> np.ndarray:
    """The class of each entry of w, shaped like w: ``(c', t)``, shared by all filters."""
    w = problem.w
    return np.broadcast_to(np.arange(int(np.prod(w.shape[1:]))).reshape(w.shape[1:]), w.shape)


def _box_sums(q: np.ndarray, problem: ConvProblem) -> np.ndarray:
    """``Σ_{o ∈ box(i)} q[…, o]`` for every input position i: (…, O…) -> (…, S…).

    Per spatial dim, with q↑s the stride-upsampled q: ``Σ_{m=0}^{E−1} q↑s[i + lo − m]``.
    """
    spec, d = problem.spec, problem.spec.dims
    for k, (e, s, (lo, _), size) in enumerate(
        zip(_extents(problem), spec.stride, spec.padding, problem.x.shape[2:])
    ):
        axis = q.ndim - d + k
        up_length = (q.shape[axis] - 1) * s + 1
        start = lo - (e - 1)  # window i covers up[start + i : start + i + e]
        shape = list(q.shape)
        shape[axis] = size + e - 1
        window = np.zeros(shape, dtype=q.dtype)
        first, last = max(start, 0), min(start + size + e - 1, up_length)
        if first < last:
            target = [slice(None)] * q.ndim
            source = [slice(None)] * q.ndim
            offset = (-first) % s  # first stride-multiple at or after `first`
            target[axis] = slice(first - start + offset, last - start, s)
            source[axis] = slice((first + offset) // s, (last - 1) // s + 1)
            window[tuple(target)] = q[tuple(source)]
        q = sliding_window_view(window, e, axis=axis).sum(axis=-1)
    return q


#: ``planes(which, step) -> (N, F)``: the judge's bound on every output of plane (n, f) when
#: ``which`` ("x", "w" or "b") is perturbed by up to ``step`` (see the module notes).
PlaneBound = Callable[[str, float], np.ndarray]


def _output_bound(problem: ConvProblem, dtype: np.dtype, extra: np.ndarray,
                  imaginary: bool) -> np.ndarray:
    """``γ_{t+5}·(conv(|x|, |w|) + |b| + extra)`` per output (module notes), float64."""
    p = problem
    g = gamma(term_counts(p)["y"] + 5, dtype)
    extra = np.broadcast_to(extra.reshape((1, -1) + (1,) * p.spec.dims), p.dy.shape)
    if imaginary:  # only the perturbation's own (imaginary) terms
        return g * extra
    magnitude = absolute_forward(p)
    if p.b is not None:
        extra = extra + np.abs(p.b).astype(np.float64).reshape((1, -1) + (1,) * p.spec.dims)
    return g * (magnitude + extra)


def x_class_count(problem: ConvProblem) -> int:
    """The most entries of one (n, c) plane of x that one color class perturbs together."""
    colors = x_colors(problem)[0].reshape(problem.x.shape[1], -1)
    return int(max(np.bincount(row).max() for row in colors))


Options = tuple[str, np.dtype, "PlaneBound | None"]


def _differences(
    problem: ConvProblem, point: np.ndarray, outputs: BatchedFunction, colors: np.ndarray,
    spread: np.ndarray | float, options: Options, which: str,
):
    """compressed_differences with the output bound for this argument.

    ``spread``: how much a unit perturbation of one class moves ``conv(|p|, |w|)`` at most, per
    filter (ω_f for x, max|x| for w, 1 for b).
    """
    method, dtype, planes = options
    h = float(step_size(method, float(np.abs(point).max(initial=0.0)), point.real.dtype,
                        linear=True))
    extra = np.asarray(spread, dtype=np.float64) * (reach(method) * h)
    bound = _output_bound(problem, dtype, extra, imaginary=method == "complex-step")
    if planes is not None:
        plane = planes(which, reach(method) * h)
        bound = bound + plane.reshape(plane.shape + (1,) * problem.spec.dims)
    point_bytes = np.dtype(dtype).itemsize * (point.size + problem.dy.size)
    return compressed_differences(
        outputs, point, colors, method=method, linear=True,
        error_bound=lambda points: bound[None], point_bytes=point_bytes,
    )


def _recovery_gamma(n: int) -> float:
    """Rounding of recovering an entry: n products and sums (plus one product), in float64."""
    return gamma(n + 1, np.float64)


def _dx(problem: ConvProblem, outputs: BatchedFunction, options: Options):
    p = problem
    n, c = p.x.shape[:2]
    groups = p.spec.groups
    colors = x_colors(p)
    omega = np.abs(p.w).reshape(len(p.w), -1).max(axis=1).astype(np.float64)
    delta = p.dy.astype(np.result_type(p.dy, np.float64))
    delta_g = delta.reshape(n, groups, -1, *p.dy.shape[2:])
    value = np.zeros((n, c, p.x[0, 0].size), dtype=np.result_type(delta, options[1]))
    error = np.zeros(value.shape)
    flat_colors = colors[0].reshape(c, -1)
    g = _recovery_gamma(delta_g.shape[2] + int(np.prod(_extents(p))))
    for classes, derivative in _differences(p, p.x.astype(options[1]), outputs, colors,
                                            omega, options, "x"):
        shape = (len(classes), *delta_g.shape)
        d = derivative.value.reshape(shape)
        products = d * delta_g[None]
        sums = [_box_sums(a.sum(axis=3), p) for a in
                (products, np.abs(products), derivative.roundoff.reshape(shape)
                 * np.abs(delta_g[None]))]
        sums = [a.reshape(len(classes), n, groups, -1) for a in sums]
        channel, position = np.nonzero((flat_colors >= classes[0])
                                       & (flat_colors <= classes[-1]))
        k = flat_colors[channel, position] - classes[0]
        group = channel // (c // groups)
        value[:, channel, position] = sums[0][k, :, group, position].T
        error[:, channel, position] = (sums[2] + g * sums[1])[k, :, group, position].T
    return value.reshape(p.x.shape), error.reshape(p.x.shape)


def _plane_sums(problem: ConvProblem, point: np.ndarray, outputs: BatchedFunction,
                colors: np.ndarray, spread: float, options: Options, which: str):
    """w or b: ``Σ_{n,o} δ[n, f, o]·Δ_k[n, f, o]`` for every class k and filter f."""
    p = problem
    delta = p.dy.astype(np.result_type(p.dy, np.float64))
    axes = (1, *range(3, delta.ndim + 1))
    count = int(colors.max()) + 1
    value = np.zeros((count, len(p.w)), dtype=np.result_type(delta, options[1]))
    error = np.zeros(value.shape)
    g = _recovery_gamma(delta.size // len(p.w))
    for classes, derivative in _differences(p, point, outputs, colors, spread, options, which):
        products = derivative.value * delta[None]
        value[classes] = products.sum(axis=axes)
        error[classes] = ((derivative.roundoff * np.abs(delta[None])).sum(axis=axes)
                          + g * np.abs(products).sum(axis=axes))
    return value, error


def structured_gradients(
    problem: ConvProblem, forward: Forward, method: str, dtype: np.dtype,
    y_base: np.ndarray | None, *, planes: PlaneBound | None = None,
    batch_bound: BatchBound | None = None,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``∂L/∂x``, ``∂L/∂w`` (and ``∂L/∂b``) with their error bounds, by compressed differences.

    ``y_base``: the forward's y at the problem's own x, w, b, to check every folded
    call (:func:`gradcheck.witnesses.evaluations.x_outputs`); None for the reference forward.
    ``planes`` and ``batch_bound``: the judge's extra bounds under the normwise rounding model
    (:data:`PlaneBound`, :data:`gradcheck.witnesses.evaluations.BatchBound`); None: entrywise.
    """
    p = problem
    options = (method, dtype, planes)
    result = {"dx": _dx(p, x_outputs(p, forward, dtype, fold=True, y_base=y_base,
                                     batch_bound=batch_bound), options)}
    f = len(p.w)
    point, outputs = wb_outputs(p, forward, dtype, "w")
    value, error = _plane_sums(p, point, outputs, w_colors(p), float(np.abs(p.x).max()),
                               options, "w")
    result["dw"] = (value.T.reshape(p.w.shape), error.T.reshape(p.w.shape))
    if p.b is not None:
        point, outputs = wb_outputs(p, forward, dtype, "b")
        value, error = _plane_sums(p, point, outputs, np.zeros(f, dtype=int), 1.0, options,
                                   "b")
        result["db"] = (value[0], error[0])
    return result
