"""ConvProblem: one concrete convolution to check — data, upstream gradient and geometry."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, TypeVar

import numpy as np

from gradcheck.errors import invalid, invalid_type
from gradcheck.geometry.spec import ConvSpec, output_shape


def _as_array(name: str, value: object) -> np.ndarray:
    if not isinstance(value, np.ndarray):
        raise invalid_type(name, value, "expected a numpy array")
    if value.dtype.kind not in "fc":
        raise invalid_type(
            name, f"array of dtype {value.dtype}", "expected a floating or complex dtype"
        )
    if not np.all(np.isfinite(value)):
        bad = int(np.size(value) - np.count_nonzero(np.isfinite(value)))
        raise invalid(name, f"array with {bad} NaN/Inf", "every value must be finite")
    return value


def validate_problem(kind: str, spec: object, spec_type: type, arrays: dict[str, Any],
                     y_shape: Callable[[], tuple[int, ...]]) -> None:
    """Validate a problem of any kind at construction.

    ``spec`` must be a ``spec_type``; every array (None allowed only for ``b``) finite and
    floating; ``dy`` shaped like the output, ``y_shape()`` (called once the arrays are known to
    be arrays, so a bad array is named before any shape rule runs).
    """
    if not isinstance(spec, spec_type):
        raise invalid_type("spec", spec, f"expected a gradcheck.{spec_type.__name__} "
                           f"(a {kind})")
    for name, value in arrays.items():
        if value is not None or name != "b":
            _as_array(name, value)
    expected = y_shape()
    if arrays["dy"].shape != expected:
        raise invalid("dy.shape", arrays["dy"].shape, f"expected the output shape {expected}")


def problem_dtype(*arrays: np.ndarray | None) -> np.dtype:
    """The promoted dtype of a problem's arrays (None, a missing bias, left out)."""
    return np.result_type(*(a for a in arrays if a is not None))


def content_key(spec: object, arrays: tuple[np.ndarray | None, ...]) -> str:
    """sha1 of the spec's repr and of the arrays' shapes and values, widened to float64 or
    complex128 — so a problem and its exact float64 cast share a key (every problem's ``key``)."""
    digest = hashlib.sha1(repr(spec).encode())
    for a in arrays:
        if a is None:
            digest.update(b"none")
            continue
        wide = a.astype(np.result_type(a.dtype, np.float64), copy=False)
        digest.update(repr(a.shape).encode())
        digest.update(np.ascontiguousarray(wide).tobytes())
    return digest.hexdigest()


@dataclass(frozen=True, eq=False)
class ConvProblem:
    """A convolution to check: ``y = conv(x, w) + b`` and the upstream gradient ``dy = δ``.

    Parameters
    ----------
    x : (N, C, S…)
    w : (F, C/G, K…)
    b : (F,) or None
    dy : (N, F, O…)
        The upstream gradient δ = dL/dy; the checked scalar is ``L = ⟨δ, y⟩``.
    spec : ConvSpec
    """

    x: np.ndarray
    w: np.ndarray
    b: np.ndarray | None
    dy: np.ndarray
    spec: ConvSpec

    def __post_init__(self) -> None:
        validate_problem(
            "convolution", self.spec, ConvSpec,
            {"x": self.x, "w": self.w, "b": self.b, "dy": self.dy},
            lambda: output_shape(self.x.shape, self.w.shape, self.spec,
                                 None if self.b is None else self.b.shape))

    @property
    def dtype(self) -> np.dtype:
        """The promoted dtype of the problem's arrays."""
        return problem_dtype(self.x, self.w, self.dy, self.b)

    def describe(self) -> str:
        """One line: shapes, geometry and dtype, as a person would write the configuration."""
        s = self.spec
        bias = "None" if self.b is None else f"{self.b.shape}"
        return (
            f"x{self.x.shape} w{self.w.shape} b={bias} -> y{self.dy.shape}; "
            f"stride={s.stride} padding={s.padding} dilation={s.dilation} "
            f"groups={s.groups} dtype={self.dtype}"
        )

    def __repr__(self) -> str:
        return f"ConvProblem({self.describe()})"

    @cached_property
    def key(self) -> str:
        """A digest of the problem's values and geometry, not of its dtype.

        Two problems with equal values — one the exact float64 cast of the other, or one
        rebuilt from a corpus file — share a key, so quantities that depend on the values only
        (the magnitudes behind every rounding bound) are computed once (:func:`remembered`).
        The arrays of a problem are not to be changed in place.
        """
        return content_key(self.spec, (self.x, self.w, self.b, self.dy))


def term_counts(problem: ConvProblem) -> dict[str, int]:
    """Number of products summed into one entry of each gradient (and of y, with its bias)."""
    p = problem
    kernel_taps = int(np.prod(p.w.shape[2:]))
    outputs_per_filter = p.dy.shape[0] * int(np.prod(p.dy.shape[2:]))
    return {
        "dx": (p.w.shape[0] // p.spec.groups) * kernel_taps,
        "dw": outputs_per_filter,
        "db": outputs_per_filter,
        "y": p.w.shape[1] * kernel_taps + 1,
    }


_T = TypeVar("_T")

#: Values remembered per (problem content, quantity); a check revisits only its latest few
#: problems (the problem, its float64 cast, the explanation's reruns), so a small LRU suffices.
_REMEMBERED: OrderedDict[tuple[str, str], Any] = OrderedDict()
_REMEMBERED_SIZE = 32


def remembered(problem: ConvProblem, quantity: str, compute: Callable[[], _T]) -> _T:
    """``compute()``, remembered under ``(problem.key, quantity)``.

    Only for quantities that depend on the problem's values, not on its dtype (see
    :attr:`ConvProblem.key`).
    """
    key = (problem.key, quantity)
    if key in _REMEMBERED:
        _REMEMBERED.move_to_end(key)
        return _REMEMBERED[key]
    value = compute()
    _REMEMBERED[key] = value
    while len(_REMEMBERED) > _REMEMBERED_SIZE:
        _REMEMBERED.popitem(last=False)
    return value
