"""Call a user's layer defensively: anything it does wrong becomes a LayerError, not a verdict.

A layer that raises, returns the wrong number, shape or dtype of arrays, returns NaN/Inf,
mutates its inputs, is nondeterministic or is too slow has not had its gradient checked;
these are reported with a stable ``reason`` (the CLI's exit code 3).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from gradcheck.errors import LayerError, call_user
from gradcheck.geometry.problem import ConvProblem
from gradcheck.harness.request import DEFAULT_DEADLINE


def _call(what: str, fn: Callable[..., Any], args: tuple[Any, ...], deadline: float | None) -> Any:
    copies = [None if a is None or not isinstance(a, np.ndarray) else a.copy() for a in args]
    start = time.perf_counter()
    out = call_user(f"the layer's {what}", fn, *args)
    elapsed = time.perf_counter() - start
    names = ("dy", "x", "w", "b") if what == "backward" else ("x", "w", "b")
    for name, original, arg in zip(names, copies, args):
        if original is not None and not np.array_equal(original, arg, equal_nan=True):
            raise LayerError(
                f"the layer's {what} changed its input {name} in place "
                f"({int(np.sum(original != arg))} of {original.size} values): a layer must "
                "not mutate its arguments", "mutated-input",
            )
    if deadline is not None and elapsed > deadline:
        raise LayerError(
            f"the layer's {what} took {elapsed:.2f} s, over the deadline of {deadline:g} s "
            "per call (raise it with deadline=… or --deadline)", "slow",
        )
    return out


def _validate(
    name: str, value: Any, shape: tuple[int, ...], dtype: np.dtype, what: str
) -> np.ndarray:
    if value is None or not hasattr(value, "shape"):
        raise LayerError(
            f"the layer's {what} returned {type(value).__name__} for {name}: expected a numpy "
            f"array of shape {shape}", "returned-none" if value is None else "wrong-type",
        )
    array = np.asarray(value)
    if array.shape != shape:
        raise LayerError(
            f"the layer's {what} returned {name} of shape {array.shape}: expected {shape}",
            "wrong-shape",
        )
    if array.dtype != dtype:
        raise LayerError(
            f"the layer's {what} returned {name} of dtype {array.dtype}: expected {dtype} "
            "(the promoted dtype of the inputs)", "wrong-dtype",
        )
    if not np.all(np.isfinite(array)):
        bad = int(array.size - np.count_nonzero(np.isfinite(array)))
        raise LayerError(
            f"the layer's {what} returned {name} with {bad} NaN/Inf value(s) of {array.size}",
            "returned-nan",
        )
    return array


def call_forward(layer: Any, problem: ConvProblem, *, deadline: float | None = DEFAULT_DEADLINE,
                 x: np.ndarray | None = None, w: np.ndarray | None = None,
                 b: Any = "problem") -> np.ndarray:
    """``layer.forward`` on the problem (or on replaced x, w, b), validated.

    A replaced x may have another batch size (finite differences fold perturbations into the
    batch axis): y must then have that batch size, ``(len(x), F, O…)``.
    """
    p = problem
    x = p.x if x is None else x
    w = p.w if w is None else w
    b = p.b if isinstance(b, str) else b
    y = _call("forward", layer.forward, (x, w, b, p.spec), deadline)
    dtype = np.result_type(x, w, *(() if b is None else (b,)))
    return _validate("y", y, (len(x), *p.dy.shape[1:]), dtype, "forward")


def call_backward(layer: Any, problem: ConvProblem, *, deadline: float | None = DEFAULT_DEADLINE,
                  dy: np.ndarray | None = None, b: Any = "problem") -> tuple[Any, Any, Any]:
    """``layer.backward`` on the problem (or on a replaced δ / bias), validated."""
    p = problem
    dy = p.dy if dy is None else dy
    b = p.b if isinstance(b, str) else b
    out = _call("backward", layer.backward, (dy, p.x, p.w, b, p.spec), deadline)
    if out is None:
        raise LayerError("the layer's backward returned None: expected (dx, dw, db)",
                         "returned-none")
    if not isinstance(out, (tuple, list)) or len(out) != 3:
        count = len(out) if isinstance(out, (tuple, list)) else type(out).__name__
        raise LayerError(
            f"the layer's backward returned {count} value(s): expected (dx, dw, db), with "
            "db None when b is None", "wrong-count",
        )
    dtype = np.result_type(dy, p.x, p.w, *(() if b is None else (b,)))
    dx = _validate("dx", out[0], p.x.shape, dtype, "backward")
    dw = _validate("dw", out[1], p.w.shape, dtype, "backward")
    if b is None:
        if out[2] is not None:
            raise LayerError("the layer's backward returned a db for b=None: expected None",
                             "wrong-count")
        return dx, dw, None
    return dx, dw, _validate("db", out[2], b.shape, dtype, "backward")
