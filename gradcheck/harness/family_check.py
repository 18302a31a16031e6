"""Check a transposed-convolution or pooling layer on one problem (``check_layer`` dispatches here).

The route of :mod:`gradcheck.harness.check`, for the family's protocols::

    conv_transpose:  forward(x, w, b, spec) -> y,  backward(dy, x, w, b, spec) -> (dx, dw, db)
    max/avg pool:    forward(x, spec) -> y,        backward(dy, x, spec) -> dx

In order: the guarded calls (forward once, backward twice: determinism), the forward against the
reference, the gradients against finite differences of the layer's own forward (full Jacobian
or directional derivatives, :mod:`gradcheck.judge.family_compare`), the adjoint identity for the
linear families, and — when a float32 (or float16) problem passed and the layer takes float64 —
the same checks on the exact float64 cast, where a formula mistake cannot hide in rounding.  A
failure raises :class:`GradientMismatch` carrying the :class:`LayerReport`, explained by the
family's named mistakes (:mod:`gradcheck.explain.family_mistakes`); a misbehaving layer raises
:class:`LayerError` as for a convolution.

**Folding.**  With ``reference_forward`` on (the forward has just been shown equal to the
reference, which treats the samples of a batch independently), x's finite-difference points
are folded into the batch axis: one forward call per batch of points.  Otherwise, and for w and
b, one call per point.
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np

from gradcheck.errors import GradientMismatch, LayerError, invalid
from gradcheck.explain.family_mistakes import explain_family
from gradcheck.geometry.family_problem import ConvTransposeProblem
from gradcheck.harness.guard import _call, _validate
from gradcheck.harness.layer import describe_layer, supports_of
from gradcheck.harness.outcome import problem_text
from gradcheck.harness.request import CheckOptions, resolve_mode
from gradcheck.judge.family_bounds import (
    GRADIENTS,
    FamilyProblem,
    analytic_bounds,
    arguments,
    family_of,
    widened,
)
from gradcheck.judge.family_compare import (
    LINEAR_FAMILIES,
    compare_family_adjoint,
    compare_family_differences,
    compare_family_directional,
    compare_family_forward,
)
from gradcheck.judge.result import CheckResult, LayerReport, compare_arrays


def resolve_family_mode(mode: str, problem: FamilyProblem) -> str:
    """``"full"`` or ``"fast"`` for ``mode`` on ``problem`` (one perturbation per argument
    entry: x, and w and b for a transposed convolution)."""
    return resolve_mode(mode, sum(a.size for a in arguments(problem).values()))


def call_family_forward(layer: Any, problem: FamilyProblem, family: str, *,
                        deadline: float | None, dtype: np.dtype | None = None,
                        **replaced: Any) -> np.ndarray:
    """The layer's forward on the problem (x, w or b replaced), through the guarded call;
    with ``dtype`` every argument is cast to it (the finite differences' working dtype)."""
    a = {**arguments(problem), **replaced}
    if dtype is not None:
        a = {k: None if v is None else v.astype(dtype, copy=False) for k, v in a.items()}
    if family == "conv_transpose":
        b = a.get("b") if "b" in a else None
        args: tuple[Any, ...] = (a["x"], a["w"], b, problem.spec)
        dtype = np.result_type(*(v for v in args[:3] if v is not None))
    else:
        args, dtype = (a["x"], problem.spec), a["x"].dtype
    y = _call("forward", layer.forward, args, deadline)
    return _validate("y", y, (len(a["x"]), *problem.dy.shape[1:]), dtype, "forward")


def call_family_backward(layer: Any, problem: FamilyProblem, family: str, *,
                         deadline: float | None, dy: np.ndarray | None = None,
                         without_bias: bool = False) -> dict[str, np.ndarray]:
    """The layer's backward at δ = dy (default the problem's), validated, as a dict."""
    p = problem
    delta = p.dy if dy is None else dy
    if family != "conv_transpose":
        dx = _call("backward", layer.backward, (delta, p.x, p.spec), deadline)
        if isinstance(dx, (tuple, list)) and len(dx) == 1:
            dx = dx[0]
        return {"dx": _validate("dx", dx, p.x.shape, np.result_type(delta, p.x), "backward")}
    assert isinstance(p, ConvTransposeProblem)
    b = None if without_bias else p.b
    w = p.w
    out = _call("backward", layer.backward, (delta, p.x, w, b, p.spec), deadline)
    if not isinstance(out, (tuple, list)) or len(out) != 3:
        count = len(out) if isinstance(out, (tuple, list)) else type(out).__name__
        raise LayerError(f"the layer's backward returned {count} value(s): expected (dx, dw, "
                         "db), with db None when b is None", "wrong-count")
    dtype = np.result_type(delta, p.x, w, *(() if b is None else (b,)))
    grads = {"dx": _validate("dx", out[0], p.x.shape, dtype, "backward"),
             "dw": _validate("dw", out[1], w.shape, dtype, "backward")}
    if b is None:
        if out[2] is not None:
            raise LayerError("the layer's backward returned a db for b=None: expected None",
                             "wrong-count")
    else:
        grads["db"] = _validate("db", out[2], b.shape, dtype, "backward")
    return grads


def _determinism(problem: FamilyProblem, family: str, first: dict[str, np.ndarray],
                 second: dict[str, np.ndarray]) -> CheckResult:
    """Two backward calls agree within twice the rounding bound (each is within it)."""
    identical = all(np.array_equal(first[n], second[n]) for n in first)
    bounds = analytic_bounds(problem, family)
    comparisons = tuple(compare_arrays(n, "second call", first[n], second[n],
                                       np.zeros(()) if identical else 2 * bounds[n])
                        for n in first)
    return CheckResult("determinism", comparisons, "twice the analytic bound",
                       problem.describe())


def _numeric_dtype(layer: Any, problem: FamilyProblem, method: str) -> np.dtype:
    accepted = supports_of(layer).dtypes
    if (method == "complex-step" or problem.dtype.kind == "c") and "complex128" in accepted:
        return np.dtype(np.complex128)
    if problem.dtype.kind == "c":
        return problem.dtype
    return np.dtype(np.float64) if "float64" in accepted else problem.dtype


def _checks(layer: Any, p: FamilyProblem, family: str, options: CheckOptions) -> LayerReport:
    deadline = options.deadline
    mode = resolve_family_mode(options.mode, p)
    y = call_family_forward(layer, p, family, deadline=deadline)
    gradients = call_family_backward(layer, p, family, deadline=deadline)
    again = call_family_backward(layer, p, family, deadline=deadline)
    determinism = _determinism(p, family, gradients, again)
    if not determinism.passed:
        raise LayerError("the layer's backward is nondeterministic: two calls on the same "
                         f"inputs differ beyond rounding\n{determinism.summary()}",
                         "nondeterministic")
    results: list[CheckResult] = []
    if options.reference_forward:
        results.append(compare_family_forward(p, family, y))
    fold = options.reference_forward
    batch = len(p.x)

    def evaluate(which: str, points: np.ndarray) -> np.ndarray:
        if which == "x" and fold:
            folded = points.reshape(-1, *p.x.shape[1:])
            allowed = None if deadline is None else deadline * len(folded) / batch
            out = call_family_forward(layer, p, family, deadline=allowed, x=folded,
                                      dtype=points.dtype)
            return out.reshape(len(points), *p.dy.shape)
        one: list[np.ndarray] = []
        for point in points:
            replaced: dict[str, Any] = {which: point}
            one.append(call_family_forward(layer, p, family, deadline=deadline,
                                           dtype=points.dtype, **replaced))
        return np.stack(one)

    compare = compare_family_differences if mode == "full" else compare_family_directional
    extra = {} if mode == "full" else {"seed": options.seed}
    results.append(compare(p, family, gradients, evaluate, method=options.method,
                           numeric_dtype=_numeric_dtype(layer, p, options.method), **extra))
    if family in LINEAR_FAMILIES:
        def apply(which: str, v: np.ndarray) -> np.ndarray:
            replaced: dict[str, Any] = {which: v}
            if family == "conv_transpose":
                replaced["b"] = None
            return call_family_forward(layer, p, family, deadline=deadline, **replaced)

        def transpose(u: np.ndarray) -> dict[str, np.ndarray]:
            return call_family_backward(layer, p, family, deadline=deadline, dy=u,
                                        without_bias=True)

        results.append(compare_family_adjoint(p, family, apply, transpose, seed=options.seed))
    grads = tuple(gradients.get(n) for n in GRADIENTS[family])
    report = LayerReport(cast(Any, p), tuple(results), gradients=cast(Any, grads), y=y,
                         mode=mode)
    return report


def check_family_layer(layer: Any, problem: FamilyProblem, options: CheckOptions,
                       family: str | None = None) -> LayerReport:
    """Check a family layer on one problem; raise on the first failed check.

    Parameters
    ----------
    layer
        The family's protocol (module notes).
    problem : ConvTransposeProblem or PoolProblem
    options : CheckOptions
    family : str, optional
        ``"max_pool"`` or ``"avg_pool"`` for a PoolProblem; default the layer's
        ``supports["family"]``.

    Raises
    ------
    GradientMismatch, LayerError, InvalidArgument
        As :func:`gradcheck.check_layer`.
    """
    __tracebackhide__ = True
    family = family_of(problem, family or supports_of(layer).family)
    if options.method == "complex-step" and "complex128" not in supports_of(layer).dtypes:
        raise invalid("method", options.method, "the complex step evaluates the layer at "
                      "complex points; the layer does not claim complex128 (supports dtypes)")
    report = _checks(layer, problem, family, options)
    if report.passed and problem.dtype.kind == "f" and problem.dtype.itemsize < 8 \
            and "float64" in supports_of(layer).dtypes:
        wide = _checks(layer, widened(problem), family, options)
        if not wide.passed:
            report = wide
    if not report.passed:
        explanation = (explain_family(cast(Any, report.problem), family, report)
                       if options.explain else None)
        raise GradientMismatch(problem_text(describe_layer(layer), report, explanation), report)
    return report
