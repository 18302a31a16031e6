"""ConvProblem: one concrete convolution to check — data, upstream gradient and geometry."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gradcheck.errors import invalid, invalid_type
from gradcheck.spec import ConvSpec, output_shape


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
        if not isinstance(self.spec, ConvSpec):
            raise invalid_type("spec", self.spec, "expected a gradcheck.ConvSpec")
        for name in ("x", "w", "dy"):
            _as_array(name, getattr(self, name))
        if self.b is not None:
            _as_array("b", self.b)
        y_shape = output_shape(
            self.x.shape, self.w.shape, self.spec, None if self.b is None else self.b.shape
        )
        if self.dy.shape != y_shape:
            raise invalid("dy.shape", self.dy.shape, f"expected the output shape {y_shape}")

    @property
    def dtype(self) -> np.dtype:
        """The promoted dtype of the problem's arrays."""
        arrays = [self.x, self.w, self.dy] + ([] if self.b is None else [self.b])
        return np.result_type(*arrays)

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
