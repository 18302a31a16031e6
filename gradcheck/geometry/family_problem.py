"""ConvTransposeProblem and PoolProblem: one concrete sibling of a convolution to check.

They mirror :class:`gradcheck.geometry.problem.ConvProblem`: frozen, validated at construction
(arrays finite and floating, ``dy`` shaped like the output), with ``dtype``, ``describe()`` and a
content ``key`` that ignores the dtype.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from gradcheck.geometry.family_spec import (
    ConvTransposeSpec,
    PoolSpec,
    conv_transpose_output_shape,
    pool_output_shape,
)
from gradcheck.geometry.problem import content_key, problem_dtype, validate_problem

__all__ = ["ConvTransposeProblem", "PoolProblem"]


@dataclass(frozen=True, eq=False)
class ConvTransposeProblem:
    """A transposed convolution to check: ``y = conv_transpose(x, w) + b`` and ``dy = δ``.

    Parameters
    ----------
    x : (N, C_in, S…)
    w : (C_in, C_out/G, K…)
        PyTorch's ConvTranspose layout.
    b : (C_out,) or None
    dy : (N, C_out, O…)
        The upstream gradient δ = dL/dy; the checked scalar is ``L = ⟨δ, y⟩``.
    spec : ConvTransposeSpec
    """

    x: np.ndarray
    w: np.ndarray
    b: np.ndarray | None
    dy: np.ndarray
    spec: ConvTransposeSpec

    def __post_init__(self) -> None:
        validate_problem(
            "transposed convolution", self.spec, ConvTransposeSpec,
            {"x": self.x, "w": self.w, "b": self.b, "dy": self.dy},
            lambda: conv_transpose_output_shape(self.x.shape, self.w.shape, self.spec,
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
            f"stride={s.stride} padding={s.padding} output_padding={s.output_padding} "
            f"dilation={s.dilation} groups={s.groups} dtype={self.dtype}"
        )

    def __repr__(self) -> str:
        return f"ConvTransposeProblem({self.describe()})"

    @cached_property
    def key(self) -> str:
        """A digest of the problem's values and geometry, not of its dtype (see ConvProblem.key).

        The arrays of a problem are not to be changed in place.
        """
        return content_key(self.spec, (self.x, self.w, self.b, self.dy))


@dataclass(frozen=True, eq=False)
class PoolProblem:
    """A pooling to check: ``y = pool(x)`` and ``dy = δ``; max or average is the layer's family.

    Parameters
    ----------
    x : (N, C, S…)
    dy : (N, C, O…)
        The upstream gradient δ = dL/dy; the checked scalar is ``L = ⟨δ, y⟩``.
    spec : PoolSpec
    """

    x: np.ndarray
    dy: np.ndarray
    spec: PoolSpec

    def __post_init__(self) -> None:
        validate_problem("pooling", self.spec, PoolSpec, {"x": self.x, "dy": self.dy},
                         lambda: pool_output_shape(self.x.shape, self.spec))

    @property
    def dtype(self) -> np.dtype:
        """The promoted dtype of the problem's arrays."""
        return problem_dtype(self.x, self.dy)

    def describe(self) -> str:
        """One line: shapes, geometry and dtype, as a person would write the configuration."""
        s = self.spec
        return (
            f"x{self.x.shape} -> y{self.dy.shape}; kernel_size={s.kernel_size} "
            f"stride={s.stride} padding={s.padding} dilation={s.dilation} "
            f"ceil_mode={s.ceil_mode} count_include_pad={s.count_include_pad} "
            f"dtype={self.dtype}"
        )

    def __repr__(self) -> str:
        return f"PoolProblem({self.describe()})"

    @cached_property
    def key(self) -> str:
        """A digest of the problem's values and geometry, not of its dtype (see ConvProblem.key)."""
        return content_key(self.spec, (self.x, self.dy))
