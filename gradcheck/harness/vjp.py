"""Check the hand-written VJP of *any* function, not only a convolution.

``check_vjp(f, vjp, inputs)`` compares ``vjp(δ, *inputs)`` with Richardson-extrapolated finite
differences of ``L = ⟨δ, f(*inputs)⟩`` in float64.  Unlike a convolution, an arbitrary f is
neither linear nor known, so the tolerance rests on a stated **rounding model** rather than
a proof: f and its VJP are taken to be computed as sums of at most κ products each, κ the
total number of input and output entries, so each evaluation of L is within
``ε = γ_κ·⟨|δ|, |f(x)|⟩`` and each analytic entry within ``γ_κ·‖g‖_∞`` of the exact value
(γ in each side's own dtype).  The numeric side adds Richardson's own truncation estimate.

Functions that are only piecewise differentiable (ReLU, max pooling, abs) have kinks where a
difference step that straddles one is wrong however small; entries that fail are re-examined
with one-sided derivatives, and when the left and right derivatives disagree beyond their
error estimates the point is reported as non-differentiable (:class:`NonDifferentiable`),
never as a gradient mismatch.  ``fuzz_vjp`` then simply draws another point.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from gradcheck.errors import GradcheckError, GradientMismatch, LayerError, invalid, invalid_type
from gradcheck.floating import gamma, unit_roundoff
from gradcheck.judge.result import CheckResult, compare_arrays
from gradcheck.witnesses.differences import numeric_gradient, step_size

#: How many failing entries are re-examined for a kink (the worst ones).
KINK_PROBES = 16


class NonDifferentiable(GradcheckError):
    """The function has a kink within a finite-difference step of the point checked.

    Attributes
    ----------
    entries : list of (argument index, flat index)
    """

    def __init__(self, message: str, entries: list[tuple[int, int]]) -> None:
        super().__init__(message)
        self.entries = entries


def _as_inputs(inputs: Any) -> tuple[np.ndarray, ...]:
    items = (inputs,) if isinstance(inputs, np.ndarray) else tuple(inputs)
    for i, a in enumerate(items):
        if not isinstance(a, np.ndarray):
            raise invalid_type(f"inputs[{i}]", a, "expected a numpy array")
        if a.dtype.kind != "f":
            raise invalid_type(f"inputs[{i}]", f"array of dtype {a.dtype}",
                               "expected a floating dtype")
        if not np.all(np.isfinite(a)):
            raise invalid(f"inputs[{i}]", "an array with NaN/Inf", "every value must be finite")
    return items


def _call(what: str, fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return fn(*args)
    except Exception as error:
        raise LayerError(f"{what} raised {type(error).__name__}: {error}", "raised") from error


def _gradients(vjp: Callable[..., Any], dy: np.ndarray, inputs: tuple[np.ndarray, ...]):
    out = _call("vjp", vjp, dy, *inputs)
    grads = (out,) if isinstance(out, np.ndarray) and len(inputs) == 1 else out
    if not isinstance(grads, (tuple, list)) or len(grads) != len(inputs):
        raise LayerError(f"vjp returned {type(out).__name__}: expected {len(inputs)} "
                         "gradient(s), one per input", "wrong-count")
    for i, (g, a) in enumerate(zip(grads, inputs)):
        if not isinstance(g, np.ndarray) or g.shape != a.shape:
            raise LayerError(f"vjp returned gradient {i} of shape {getattr(g, 'shape', None)}: "
                             f"expected {a.shape}", "wrong-shape")
        if not np.all(np.isfinite(g)):
            raise LayerError(f"vjp returned NaN/Inf in gradient {i}", "returned-nan")
    return tuple(grads)


def _loss(f: Callable[..., Any], dy: np.ndarray, inputs: tuple[np.ndarray, ...], i: int):
    """``L(points) = ⟨δ, f(…, point, …)⟩`` for a batch of points of input i, and its ε."""
    kappa = sum(a.size for a in inputs) + dy.size
    g64 = gamma(kappa, np.float64)

    def outputs(points: np.ndarray):
        for point in points:
            args = list(inputs)
            args[i] = point
            yield np.asarray(_call("f", f, *args), dtype=np.float64)

    def values(points: np.ndarray) -> np.ndarray:
        return np.array([float(np.sum(dy * y)) for y in outputs(points)])

    def error(points: np.ndarray) -> np.ndarray:
        return np.array([g64 * float(np.sum(np.abs(dy) * np.abs(y))) for y in outputs(points)])

    return values, error


def _one_sided(loss: Callable[[np.ndarray], np.ndarray], x: np.ndarray, j: int, h: float):
    """Richardson-extrapolated right and left derivatives along e_j, with error estimates."""
    flat = x.reshape(-1)

    def at(t: float) -> float:
        point = flat.copy()
        point[j] += t
        return float(loss(point.reshape(1, *x.shape))[0])

    base = at(0.0)
    right = [(at(t) - base) / t for t in (h, h / 2)]
    left = [(base - at(-t)) / t for t in (h, h / 2)]
    r_right, r_left = 2 * right[1] - right[0], 2 * left[1] - left[0]
    return (r_right, abs(r_right - right[1])), (r_left, abs(r_left - left[1]))


def _kinks(loss, error, x: np.ndarray, entries: np.ndarray, method: str) -> list[int]:
    """Entries whose left and right derivatives disagree beyond their error estimates."""
    kinks = []
    steps = step_size(method, x, np.float64).reshape(-1)
    for j in entries:
        h = float(steps[j])
        (right, e_right), (left, e_left) = _one_sided(loss, x, int(j), h)
        eps = float(error(x.reshape(1, *x.shape))[0])
        if abs(right - left) > e_right + e_left + 8 * eps / h:
            kinks.append(int(j))
    return kinks


def check_vjp(
    f: Callable[..., Any],
    vjp: Callable[..., Any],
    inputs: np.ndarray | Sequence[np.ndarray],
    *,
    dy: np.ndarray | None = None,
    seed: int = 0,
    method: str = "richardson",
) -> CheckResult:
    """Check a hand-written VJP against finite differences of f; raise on a mismatch.

    Parameters
    ----------
    f : callable
        ``f(*inputs) -> y``, any function of numpy arrays.
    vjp : callable
        ``vjp(dy, *inputs) -> (d_input_0, d_input_1, …)`` (or one array for one input).
    inputs : ndarray or sequence of ndarray
    dy : ndarray, optional
        The upstream gradient δ; default standard normal from ``seed``.
    method : {"richardson", "four-point", "central", "complex-step"}
        Finite-difference method of the numeric side (float64).

    Returns
    -------
    CheckResult
        When every entry agrees within the model's tolerance.

    Raises
    ------
    GradientMismatch
        Some gradient entry disagrees at a point where f is differentiable.
    NonDifferentiable
        Every disagreeing entry sits at a kink of f (a step straddles it).
    LayerError
        f or vjp raised or returned the wrong shape/count/NaN.
    """
    __tracebackhide__ = True
    inputs = _as_inputs(inputs)
    y = np.asarray(_call("f", f, *inputs))
    if dy is None:
        dy = np.random.default_rng(seed).standard_normal(y.shape).astype(y.dtype)
    elif dy.shape != y.shape:
        raise invalid("dy.shape", dy.shape, f"expected the output shape {y.shape}")
    grads = _gradients(vjp, dy, inputs)
    kappa = sum(a.size for a in inputs) + dy.size
    wide = tuple(a.astype(np.float64) for a in inputs)
    comparisons, kinks = [], []
    for i, (g, x) in enumerate(zip(grads, wide)):
        loss, error = _loss(f, dy.astype(np.float64), wide, i)
        numeric = numeric_gradient(loss, x, method=method, error_bound=error)
        g_bound = gamma(kappa, g.dtype) * float(np.abs(g).max(initial=0.0))
        bound = numeric.error + g_bound + unit_roundoff(np.float64) * np.abs(numeric.value)
        comparison = compare_arrays(f"d input {i}", f"{method} differences", g, numeric.value,
                                    bound)
        if not comparison.passed:
            failing = np.flatnonzero(np.abs(g - numeric.value).reshape(-1) > bound.reshape(-1))
            worst = failing[np.argsort(-np.abs(g - numeric.value).reshape(-1)[failing])]
            found = _kinks(loss, error, x, worst[:KINK_PROBES], method)
            if len(found) == min(len(failing), KINK_PROBES):
                kinks += [(i, j) for j in found]
                continue
        comparisons.append(comparison)
    result = CheckResult("vjp", tuple(comparisons),
                         f"rounding model γ_κ (κ = {kappa}) + {method} error estimate",
                         f"inputs {[a.shape for a in inputs]} -> y{y.shape}")
    if not result.passed:
        raise GradientMismatch(result.summary(), result)
    if kinks:
        raise NonDifferentiable(
            f"non-differentiable at this point: left and right derivatives differ at "
            f"{len(kinks)} entr{'y' if len(kinks) == 1 else 'ies'} {kinks[:5]}; draw another "
            "point or move it away from the kink", kinks)
    return result


def fuzz_vjp(
    f: Callable[..., Any],
    vjp: Callable[..., Any],
    strategy: st.SearchStrategy[Any],
    *,
    max_examples: int = 100,
    seed: int = 0,
    method: str = "richardson",
) -> None:
    """Fuzz ``check_vjp`` over inputs drawn from ``strategy``; re-draw at kinks.

    ``strategy`` draws one array or a tuple of arrays.  Raises the (shrunk) GradientMismatch
    or LayerError when one is found.
    """

    @hypothesis_seed(seed)
    @settings(max_examples=max_examples, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def run(inputs: Any) -> None:
        try:
            check_vjp(f, vjp, inputs, seed=seed, method=method)
        except NonDifferentiable:
            reject()

    run()
